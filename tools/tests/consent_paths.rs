//! End-to-end, as an attacker would try it: every read of a person's data is decided by the
//! person's consent and the reader's purpose, on every path, and a refusal tells nothing. Real
//! nodes on loopback, real TLS between them, real stores in temp folders.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::*;
use serde_json::{json, Value};

/// The person's access log as the node's operator (admin) reads it.
fn access_log(addr: SocketAddr, pin: &str) -> Vec<Value> {
    let a = get(addr, &format!("/api/v1/persons/{pin}/access-log"));
    assert_eq!(a.status, 200, "{}", String::from_utf8_lossy(&a.body));
    a.json()["records"].as_array().unwrap().clone()
}

/// Whether the access log has a record with each of `fields` (name, value).
fn has_record(log: &[Value], fields: &[(&str, &str)]) -> bool {
    log.iter()
        .any(|r| fields.iter().all(|(name, value)| r[*name] == *value))
}

/// Every item of the node's event listing, placeholders included, as `token` gets them.
fn listing(addr: SocketAddr, token: &str) -> Vec<Value> {
    let page = as_token(addr, token, "/api/v1/events?limit=1000");
    assert_eq!(page.status, 200, "{}", String::from_utf8_lossy(&page.body));
    page.json()["events"].as_array().unwrap().clone()
}

const PIN: &str = "21503199012345";
/// A well-formed PIN no node holds anything about.
const STRANGER: &str = "21503199099999";

#[test]
fn a_purpose_the_person_never_consented_to_reads_nothing_received_on_any_path() {
    let fed = Federation::build();
    let mig = fed.start("migration");
    let emp = fed.start("employment");
    let id = publish_id(
        mig.addr,
        "returnee-record",
        &returnee(PIN, &[MIGRATION, EMPLOYMENT], &["EMPLOYMENT_SERVICES"]),
    );
    assert!(
        arrives(emp.addr, MIGRATION, &id),
        "the record never arrived"
    );
    wait_for_views(emp.addr);
    let stats = create_token(
        &fed.config("employment"),
        "statistics-office",
        "read-events,read-persons",
        "STATISTICS",
    );

    // The person: refused exactly as a person nobody holds (status and body), both logged.
    let held = as_token(emp.addr, &stats, &format!("/api/v1/persons/{PIN}"));
    let unknown = as_token(emp.addr, &stats, &format!("/api/v1/persons/{STRANGER}"));
    assert_eq!(held.status, 404, "{}", String::from_utf8_lossy(&held.body));
    assert_eq!((held.status, held.json()), (unknown.status, unknown.json()));
    for path in ["matches", "courses", "access-log"] {
        let a = as_token(emp.addr, &stats, &format!("/api/v1/persons/{PIN}/{path}"));
        assert_eq!(
            a.status,
            404,
            "{path}: {}",
            String::from_utf8_lossy(&a.body)
        );
    }

    // The log: a placeholder where the received record sits, nothing of the person in it.
    let page = as_token(emp.addr, &stats, "/api/v1/events?limit=1000");
    assert_eq!(page.status, 200);
    assert!(
        !String::from_utf8_lossy(&page.body).contains(PIN),
        "the listing shows the person"
    );
    let items = page.json()["events"].as_array().unwrap().clone();
    assert!(
        items.iter().any(|e| e["withheld"] == "no-consent"),
        "{items:?}"
    );
    // By id: the same answer as an id nobody holds.
    let by_id = as_token(emp.addr, &stats, &format!("/api/v1/events/{id}"));
    let no_such = as_token(
        emp.addr,
        &stats,
        &format!("/api/v1/events/{}", uuid::Uuid::now_v7()),
    );
    assert_eq!(by_id.status, 404);
    assert_eq!(
        (by_id.status, by_id.json()),
        (no_such.status, no_such.json())
    );

    // A ranking of candidates for a vacancy names nobody the token may not read.
    let mut vacancy = example("vacancy", "opened.json");
    vacancy["vacancyId"] = "V-CONSENT".into();
    publish(emp.addr, "vacancy", &vacancy);
    wait_for_views(emp.addr);
    let path = "/api/v1/vacancies/V-CONSENT/candidates?limit=100";
    let ranked = as_token(emp.addr, &stats, path);
    assert_eq!(
        ranked.status,
        200,
        "{}",
        String::from_utf8_lossy(&ranked.body)
    );
    assert!(!String::from_utf8_lossy(&ranked.body).contains(PIN));
    assert!(String::from_utf8_lossy(&get(emp.addr, path).body).contains(PIN));

    // The operator reads for the consented purpose: served.
    assert_eq!(get(emp.addr, &format!("/api/v1/persons/{PIN}")).status, 200);
    let one = get(emp.addr, &format!("/api/v1/events/{id}"));
    assert_eq!(one.status, 200);

    // Every attempt is in the person's log, refused; the stranger's too.
    let log = access_log(emp.addr, PIN);
    for what in [
        "registry view",
        "events listed through the local API",
        "an event read through the local API",
        "vacancies matched to the person",
    ] {
        let refusal = [
            ("reader", "local:statistics-office"),
            ("outcome", "refused-no-consent"),
            ("what", what),
        ];
        assert!(
            has_record(&log, &refusal),
            "no refusal of {what:?} logged: {log:?}"
        );
    }
    let stranger = access_log(emp.addr, STRANGER);
    let refusal = [
        ("reader", "local:statistics-office"),
        ("outcome", "refused-nothing-held"),
    ];
    assert!(has_record(&stranger, &refusal), "{stranger:?}");
}

#[test]
fn the_access_log_names_the_token_holder_never_a_header_the_caller_sets() {
    let dir = NodeDir::new("");
    let node = dir.start();
    publish(
        node.addr,
        "returnee-record",
        &returnee(PIN, &[MEMBER], &["EMPLOYMENT_SERVICES"]),
    );
    wait_for_views(node.addr);
    let forged = request(
        node.addr,
        "GET",
        &format!("/api/v1/persons/{PIN}"),
        &[
            ("X-Road-UserId", "someone-else"),
            ("X-Road-Issue", "made-up"),
        ],
        b"",
    )
    .unwrap();
    assert_eq!(forged.status, 200);
    let log = access_log(node.addr, PIN);
    let read = log
        .iter()
        .find(|r| r["what"] == "registry view")
        .unwrap_or_else(|| panic!("{log:?}"));
    assert_eq!(read["user"], "operator", "{read}");
    assert_eq!(read["reader"], "local:operator");
    assert!(read.get("issue").is_none(), "{read}");
}

#[test]
fn dropping_an_agency_from_a_consent_reaches_it_and_it_stops_serving_what_it_received() {
    let fed = Federation::build();
    let mig = fed.start("migration");
    let emp = fed.start("employment");
    let edu = fed.start("education");
    let purposes = ["EMPLOYMENT_SERVICES", "TRAINING_SERVICES"];
    let first = publish_id(
        mig.addr,
        "returnee-record",
        &returnee(PIN, &[MIGRATION, EMPLOYMENT, EDUCATION], &purposes),
    );
    assert!(
        arrives(edu.addr, MIGRATION, &first),
        "never reached education"
    );
    wait_for_views(edu.addr);
    assert_eq!(get(edu.addr, &format!("/api/v1/persons/{PIN}")).status, 200);

    // A new consent that still grants, but no longer names the education ministry.
    publish(
        mig.addr,
        "returnee-record",
        &returnee(PIN, &[MIGRATION, EMPLOYMENT], &purposes),
    );
    // It reaches the ministry (it is in its log, as a placeholder: nothing received about the
    // person is served any more, the new record included).
    let operator = token_of(edu.addr);
    let reached = eventually(Duration::from_secs(20), || {
        let items = listing(edu.addr, &operator);
        items.len() == 2 && items.iter().all(|e| e["withheld"] == "no-consent")
    });
    assert!(
        reached.is_some(),
        "the change never reached education: {:?}",
        listing(edu.addr, &operator)
    );
    wait_for_views(edu.addr);
    let person = get(edu.addr, &format!("/api/v1/persons/{PIN}"));
    assert_eq!(
        person.status,
        404,
        "{}",
        String::from_utf8_lossy(&person.body)
    );
    // The employment service, still named, still reads the person.
    assert!(eventually(Duration::from_secs(20), || {
        events_from(emp.addr, MIGRATION).len() == 2
    })
    .is_some());
    wait_for_views(emp.addr);
    assert_eq!(get(emp.addr, &format!("/api/v1/persons/{PIN}")).status, 200);
}

#[test]
fn aggregates_stay_aggregates_unless_an_admin_asks_and_is_logged() {
    let dir = NodeDir::new("");
    let node = dir.start();
    publish(
        node.addr,
        "returnee-record",
        &returnee(PIN, &[MEMBER], &["EMPLOYMENT_SERVICES"]),
    );
    wait_for_views(node.addr);
    let analyst = create_token(&dir.config, "analyst", "read-kpi", "STATISTICS");
    for path in [
        "/api/v1/kpi?suppress=false&breakdown=region",
        "/api/v1/skills-gap?suppress=false",
    ] {
        let refused = as_token(node.addr, &analyst, path);
        assert_eq!(refused.status, 403, "{path}");
        assert_eq!(
            refused.json()["type"],
            "https://jol.example/problems/suppression-needs-admin"
        );
        assert_eq!(
            as_token(
                node.addr,
                &analyst,
                &path
                    .replace("suppress=false&", "")
                    .replace("?suppress=false", "")
            )
            .status,
            200
        );
    }
    // The operator's admin token may, and every counted person has the read in their log.
    assert_eq!(get(node.addr, "/api/v1/kpi?suppress=false").status, 200);
    let log = access_log(node.addr, PIN);
    let read = [
        ("what", "the KPI report with small cells shown"),
        ("reader", "local:operator"),
    ];
    assert!(has_record(&log, &read), "{log:?}");
}

#[test]
fn reading_the_quarantine_logs_every_person_any_refused_body_names() {
    let dir = NodeDir::new("");
    let node = dir.start();
    let other = "10101199000001";
    // A batch whose second event is refused, and a body that is not JSON at all.
    let batch = json!({"events": [
        {"type": "returnee-record", "data": returnee(PIN, &[MEMBER], &["EMPLOYMENT_SERVICES"])},
        {"type": "returnee-record", "data": {"person": {"pin": other}}},
    ]});
    let a = post_json(node.addr, "/api/v1/events/batch", &batch).unwrap();
    assert!(a.status < 500, "{}", String::from_utf8_lossy(&a.body));
    let broken =
        format!("{{\"type\": \"returnee-record\", \"data\": {{\"person\": {{\"pin\": \"{PIN}\"");
    let a = request(
        node.addr,
        "POST",
        "/api/v1/events",
        &[("Content-Type", "application/json")],
        broken.as_bytes(),
    )
    .unwrap();
    assert_eq!(a.status, 400, "{}", String::from_utf8_lossy(&a.body));
    let q = get(node.addr, "/api/v1/quarantine?limit=1000");
    assert_eq!(q.status, 200);
    let what = "a quarantined submission read through the local API";
    for pin in [PIN, other] {
        let log = access_log(node.addr, pin);
        assert!(
            has_record(&log, &[("what", what)]),
            "{pin}: the quarantine read is not logged: {log:?}"
        );
    }
}

#[test]
fn a_refused_body_a_peer_sent_is_read_only_by_an_admin_under_the_persons_consent() {
    let fed = Federation::build();
    let config = fed.config("employment");
    let text = std::fs::read_to_string(&config).unwrap() + "[limits]\nmax_event_bytes = 16384\n";
    std::fs::write(&config, text).unwrap();
    let (mig, emp) = (fed.start("migration"), fed.start("employment"));
    let consent = returnee(PIN, &[EMPLOYMENT], &["EMPLOYMENT_SERVICES"]);
    publish(mig.addr, "returnee-record", &consent);
    // Larger than the employment service accepts: quarantined there, with its body.
    let mut large = consent.clone();
    large["consent"]["recipients"] = json!(std::iter::once(EMPLOYMENT.to_string())
        .chain((0..150).map(|i| format!("pad{i:061}/GOV/{}/{}", "x".repeat(64), "y".repeat(64))))
        .collect::<Vec<_>>());
    publish(mig.addr, "returnee-record", &large);
    let kept = eventually(Duration::from_secs(20), || {
        get(emp.addr, "/api/v1/quarantine").json()["records"]
            .as_array()
            .is_some_and(|r| !r.is_empty())
    });
    assert!(kept.is_some(), "nothing was quarantined");
    // Not to a token without admin, even one reading for the purpose the person consented to.
    let desk = create_token(&config, "case-desk", "read-events", "EMPLOYMENT_SERVICES");
    let theirs = as_token(emp.addr, &desk, "/api/v1/quarantine");
    assert_eq!(theirs.status, 200);
    assert!(!String::from_utf8_lossy(&theirs.body).contains("signature"));
    let record = &theirs.json()["records"][0];
    assert_eq!(record["body"], "", "{record}");
    assert_eq!(record["detail"]["bodyWithheld"], "not-authorised");
    // Not to an administrator reading for a purpose the person did not consent to.
    let stats = create_token(&config, "statistics-office", "admin", "STATISTICS");
    let theirs = as_token(emp.addr, &stats, "/api/v1/quarantine");
    assert!(!String::from_utf8_lossy(&theirs.body).contains("signature"));
    let record = &theirs.json()["records"][0];
    assert_eq!(record["detail"]["bodyWithheld"], "no-consent", "{record}");
    let operators = get(emp.addr, "/api/v1/quarantine").json();
    assert!(operators["records"][0]["body"]
        .as_str()
        .unwrap()
        .contains("signature"));
    let log = access_log(emp.addr, PIN);
    let refusal = [
        ("reader", "local:statistics-office"),
        ("outcome", "refused-no-consent"),
    ];
    assert!(has_record(&log, &refusal), "{log:?}");
}

/// A webhook receiver on loopback that answers 204 and keeps each body, holding its first
/// answer until `release` is sent. Returns its address and what it received.
fn held_webhook(
    release: std::sync::mpsc::Receiver<()>,
) -> (SocketAddr, std::sync::Arc<std::sync::Mutex<Vec<Value>>>) {
    use std::io::{BufReader, Write};
    let hook = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = hook.local_addr().unwrap();
    let received: std::sync::Arc<std::sync::Mutex<Vec<Value>>> = Default::default();
    let got = received.clone();
    std::thread::spawn(move || {
        let mut release = Some(release);
        for stream in hook.incoming() {
            let Ok(mut stream) = stream else { return };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            while let Some(body) = read_request(&mut reader) {
                got.lock()
                    .unwrap()
                    .push(serde_json::from_slice(&body).unwrap());
                if let Some(gate) = release.take() {
                    let _ = gate.recv();
                }
                write!(
                    stream,
                    "HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n"
                )
                .unwrap();
            }
        }
    });
    (addr, received)
}

#[test]
fn a_withdrawal_committed_while_the_webhook_delivers_holds_for_every_event_after_it() {
    let fed = Federation::build();
    let mig = fed.start("migration");
    let emp = fed.start("employment");
    let purposes = ["EMPLOYMENT_SERVICES"];
    let consenting = returnee(PIN, &[MIGRATION, EMPLOYMENT], &purposes);
    let ids: Vec<String> = (0..3)
        .map(|_| publish_id(mig.addr, "returnee-record", &consenting))
        .collect();
    assert!(ids.iter().all(|id| arrives(emp.addr, MIGRATION, id)));
    emp.stop();

    // The employment service's own system gets events by webhook, for employment services; its
    // first delivery is held until the person has withdrawn the employment service's consent.
    let (release, gate) = std::sync::mpsc::channel();
    let (hook, received) = held_webhook(gate);
    let config = fed.config("employment");
    let text = std::fs::read_to_string(&config).unwrap().replacen(
        "[local]\n",
        &format!(
            "[local]\nwebhook = \"http://{hook}/jol\"\nwebhook_purpose = \"EMPLOYMENT_SERVICES\"\n"
        ),
        1,
    );
    std::fs::write(&config, text).unwrap();
    let emp = fed.start("employment");
    assert!(
        eventually(Duration::from_secs(20), || received.lock().unwrap().len()
            == 1)
        .is_some(),
        "the webhook got nothing"
    );
    publish(
        mig.addr,
        "returnee-record",
        &returnee(PIN, &[MIGRATION], &purposes),
    );
    let operator = token_of(emp.addr);
    let withdrawn = eventually(Duration::from_secs(20), || {
        listing(emp.addr, &operator).len() == 4
    });
    assert!(
        withdrawn.is_some(),
        "the withdrawal never reached employment"
    );
    release.send(()).unwrap();

    // Every event after the held one is decided when it is delivered: none goes out.
    let decided = eventually(Duration::from_secs(20), || {
        let log = access_log(emp.addr, PIN);
        let webhook = |r: &&Value| r["what"] == "event delivered to the webhook";
        log.iter().filter(webhook).count() == 4
    });
    assert!(decided.is_some(), "{:?}", access_log(emp.addr, PIN));
    let delivered: Vec<Value> = received
        .lock()
        .unwrap()
        .iter()
        .map(|b| b["event"]["id"].clone())
        .collect();
    assert_eq!(
        delivered,
        [ids[0].as_str()],
        "delivered after the withdrawal"
    );
    let log = access_log(emp.addr, PIN);
    let refused = log
        .iter()
        .filter(|r| {
            r["what"] == "event delivered to the webhook" && r["outcome"] == "refused-no-consent"
        })
        .count();
    assert_eq!(refused, 3, "{log:?}");
}
