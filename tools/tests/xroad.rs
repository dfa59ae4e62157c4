//! Jol behind X-Road, end to end: three agencies, each behind its own **stand-in** security
//! server (`jol xroad-standin`; a real security server cannot run here), the stand-ins talking
//! mutual TLS to each other and pinned TLS to the nodes' provider faces. Events flow through
//! them with nothing lost or doubled, also when a stand-in is killed and restarted mid-sync;
//! authorisation, the persons service's access log, and the provider face's gate are checked
//! through the same path an X-Road client takes.

mod common;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use common::*;

const NOBODY: &str = "central-server/GOV/70000009/nobody";

/// The tests here start nine processes each (nodes, faces' nodes, stand-ins): one layout at a
/// time keeps them within the machine's two cores. (Ports no longer race: `jol::ports`
/// never hands one out twice in a process, and never one the kernel could give a connection.)
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// The federation behind stand-ins, with every node and stand-in running.
struct Tunduk {
    _turn: std::sync::MutexGuard<'static, ()>,
    fed: Federation,
    standins: Vec<(String, std::path::PathBuf, Option<StandInProcess>)>,
    nodes: Vec<Node>,
}

impl Tunduk {
    fn start() -> Tunduk {
        let turn = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
        let fed =
            Federation::build_with("min_backoff_ms = 50\nmax_backoff_ms = 400\nwait_secs = 2");
        let laid = fed.behind_xroad();
        let standins = laid
            .iter()
            .map(|s| {
                (
                    s.folder.clone(),
                    s.config.clone(),
                    Some(StandInProcess::start(&s.config)),
                )
            })
            .collect();
        let nodes = AGENCIES.iter().map(|a| fed.start(a)).collect();
        Tunduk {
            _turn: turn,
            fed,
            standins,
            nodes,
        }
    }

    fn node(&self, agency: &str) -> &Node {
        &self.nodes[AGENCIES.iter().position(|a| *a == agency).unwrap()]
    }

    /// Where `agency`'s own systems call its security server.
    fn ss(&self, agency: &str) -> std::net::SocketAddr {
        self.standins
            .iter()
            .find(|(f, _, _)| f == agency)
            .and_then(|(_, _, p)| p.as_ref())
            .unwrap()
            .consumers
    }

    fn kill_ss(&mut self, agency: &str) {
        let s = self
            .standins
            .iter_mut()
            .find(|(f, _, _)| f == agency)
            .unwrap();
        s.2.take().unwrap().kill();
    }

    fn restart_ss(&mut self, agency: &str) {
        let s = self
            .standins
            .iter_mut()
            .find(|(f, _, _)| f == agency)
            .unwrap();
        s.2 = Some(StandInProcess::start(&s.1));
    }
}

/// A call an X-Road client makes to its own security server.
fn via_ss(ss: std::net::SocketAddr, client: &str, path: &str, headers: &[(&str, &str)]) -> Answer {
    let mut all = vec![("X-Road-Client", client)];
    all.extend_from_slice(headers);
    anonymous(ss, "GET", path, &all, b"").unwrap()
}

#[test]
fn events_flow_through_security_servers_with_nothing_lost_or_doubled() {
    let mut t = Tunduk::start();
    let (mig, emp) = (t.node("migration").addr, t.node("employment").addr);
    // migration → employment: a returnee who consents to the employment service.
    let pins: Vec<String> = (0..20).map(|i| format!("215031990{i:05}")).collect();
    for pin in &pins {
        publish(
            mig,
            "returnee-record",
            &returnee(
                pin,
                &[MIGRATION, EMPLOYMENT],
                &["REINTEGRATION_CASE_MANAGEMENT", "EMPLOYMENT_SERVICES"],
            ),
        );
    }
    assert!(
        eventually(Duration::from_secs(20), || events_from(emp, MIGRATION)
            .len()
            == 20)
        .is_some(),
        "the returnee records did not reach employment through the stand-ins"
    );
    // employment → migration, with employment's security server killed mid-sync and restarted.
    let mut published = HashSet::new();
    for (i, pin) in pins.iter().enumerate() {
        let mut data = employment_data(i, &format!("x-{i}"));
        data["person"]["pin"] = pin.as_str().into();
        published.insert(publish_id(emp, "employment-status", &data));
        if i == 9 {
            t.kill_ss("employment");
        }
    }
    std::thread::sleep(Duration::from_millis(500));
    t.restart_ss("employment");
    let arrived = eventually(Duration::from_secs(30), || {
        events_from(mig, EMPLOYMENT).len() >= published.len()
    });
    assert!(
        arrived.is_some(),
        "not everything arrived after the stand-in came back"
    );
    let got = event_ids(&events_from(mig, EMPLOYMENT));
    assert_eq!(got.len(), published.len(), "nothing doubled");
    assert_eq!(
        got.into_iter().collect::<HashSet<_>>(),
        published,
        "nothing lost"
    );
    // The interruption is counted as what it was.
    let metrics = String::from_utf8(get(mig, "/metrics").body).unwrap();
    assert!(metrics.contains("jol_sync_failures_total"), "{metrics}");
    // The feed came through X-Road; the other members' witnesses co-signed the checkpoint
    // (submitted to their peer listeners).
    assert!(eventually(Duration::from_secs(15), || {
        let c = get(emp, "/api/v1/log/checkpoint");
        c.status == 200
            && jol::log::checkpoint::read(&c.body).is_ok_and(|c| c.note.signatures().len() > 1)
    })
    .is_some());
    // The only way between the nodes is through the security servers: with migration's own
    // stand-in down, nothing new reaches it; back up, it does.
    t.kill_ss("migration");
    let mut data = employment_data(99, "x-99");
    data["person"]["pin"] = pins[0].as_str().into();
    let late = publish_id(emp, "employment-status", &data);
    std::thread::sleep(Duration::from_secs(3));
    assert!(!events_from(mig, EMPLOYMENT)
        .iter()
        .any(|e| e["event"]["id"] == late.as_str()));
    t.restart_ss("migration");
    assert!(arrives(mig, EMPLOYMENT, &late));
    let config = std::fs::read_to_string(t.fed.config("migration")).unwrap();
    assert!(config.contains("via = \"http://127.0.0.1:"), "{config}");
}

#[test]
fn through_the_proxy_a_client_without_a_grant_is_refused_and_persons_is_logged() {
    let t = Tunduk::start();
    let mig = t.node("migration").addr;
    let pin = "21503199012345";
    publish(
        mig,
        "returnee-record",
        &returnee(pin, &[EMPLOYMENT], &["EMPLOYMENT_SERVICES"]),
    );
    let ss = t.ss("employment");

    // A subsystem the manifest grants nothing: 403 from Jol, passed through, with X-Road's headers.
    let feed = format!("/r1/{MIGRATION}/jol-feed/v1/feed?after=0");
    let refused = via_ss(ss, NOBODY, &feed, &[]);
    assert_eq!(
        refused.status,
        403,
        "{}",
        String::from_utf8_lossy(&refused.body)
    );
    assert_eq!(
        refused.json()["type"],
        "https://jol.example/problems/not-a-reader"
    );
    let headers = refused.headers.to_ascii_lowercase();
    for h in [
        "x-road-id:",
        "x-road-request-id:",
        "x-road-request-hash:",
        "x-road-service:",
    ] {
        assert!(headers.contains(h), "{h} missing: {headers}");
    }
    // A granted client reads the feed through the same path; the person's access log names the
    // official and the message that X-Road's headers named.
    let ok = via_ss(
        ss,
        EMPLOYMENT,
        &feed,
        &[
            ("X-Road-UserId", "KG-FEED-OFFICIAL"),
            ("X-Road-Id", "msg-feed-1"),
        ],
    );
    assert_eq!(ok.status, 200);
    assert!(!ok.json()["events"].as_array().unwrap().is_empty());
    let log = get(mig, &format!("/api/v1/persons/{pin}/access-log")).json();
    let feed_read = log["records"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["reader"] == EMPLOYMENT && r["messageId"] == "msg-feed-1")
        .unwrap_or_else(|| panic!("the feed read through X-Road is not logged: {log}"));
    assert_eq!(feed_read["user"], "KG-FEED-OFFICIAL");
    assert_eq!(feed_read["purpose"], "EMPLOYMENT_SERVICES");

    // jol-persons serves the person's view as projected: wait for the projector (on a loaded
    // machine it can lag the 201 by more than this test takes to get here).
    wait_for_views(mig);
    // jol-persons: the official and the issue are required…
    let person = format!("/r1/{MIGRATION}/jol-persons/v1/persons/{pin}");
    let anonymous_official = via_ss(ss, EMPLOYMENT, &person, &[]);
    assert_eq!(anonymous_official.status, 400);
    assert_eq!(anonymous_official.json()["header"], "x-road-userid");
    // …and with them the read is served and logged with the user, the issue and the message id.
    let seen = via_ss(
        ss,
        EMPLOYMENT,
        &person,
        &[
            ("X-Road-UserId", "KG21503199000017"),
            ("X-Road-Issue", "CASE-2026-118"),
            ("X-Road-Id", "msg-0001"),
        ],
    );
    assert_eq!(seen.status, 200, "{}", String::from_utf8_lossy(&seen.body));
    assert_eq!(seen.json()["pin"], pin);
    let log = get(mig, &format!("/api/v1/persons/{pin}/access-log")).json();
    let record = log["records"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| {
            r["reader"] == EMPLOYMENT && r["what"] == "registry view through X-Road (jol-persons)"
        })
        .unwrap_or_else(|| panic!("{log}"));
    assert_eq!(record["user"], "KG21503199000017");
    assert_eq!(
        record["purpose"], "EMPLOYMENT_SERVICES",
        "the grant's purpose, not the issue"
    );
    assert_eq!(record["issue"], "CASE-2026-118");
    assert_eq!(record["messageId"], "msg-0001");
    // The education ministry is not named in this person's consent: refused exactly as a PIN
    // the migration agency never recorded is, and both are logged.
    let edu = via_ss(
        t.ss("education"),
        EDUCATION,
        &person,
        &[("X-Road-UserId", "KG1"), ("X-Road-Issue", "X")],
    );
    let stranger = "21503199099999";
    let unknown = via_ss(
        t.ss("education"),
        EDUCATION,
        &format!("/r1/{MIGRATION}/jol-persons/v1/persons/{stranger}"),
        &[("X-Road-UserId", "KG1"), ("X-Road-Issue", "X")],
    );
    assert_eq!(edu.status, 404);
    assert_eq!((unknown.status, unknown.json()), (edu.status, edu.json()));
    // A resource the service does not have is refused without repeating its path, which names
    // the person (the answer passes through both security servers' message logs).
    let deeper = via_ss(
        t.ss("education"),
        EDUCATION,
        &format!("/r1/{MIGRATION}/jol-kpi/v1/persons/{pin}"),
        &[("X-Road-UserId", "KG1"), ("X-Road-Issue", "X")],
    );
    assert_eq!(deeper.status, 404);
    assert!(
        !String::from_utf8_lossy(&deeper.body).contains(pin),
        "{}",
        deeper.json()
    );
    for (who, outcome) in [
        (pin, "refused-no-consent"),
        (stranger, "refused-nothing-held"),
    ] {
        let log = get(mig, &format!("/api/v1/persons/{who}/access-log")).json();
        assert!(
            log["records"]
                .as_array()
                .unwrap()
                .iter()
                .any(|r| r["reader"] == EDUCATION && r["outcome"] == outcome),
            "{who}: {log}"
        );
    }
    // The KPIs, suppressed, for any member.
    let kpi = via_ss(
        ss,
        EMPLOYMENT,
        &format!("/r1/{MIGRATION}/jol-kpi/v1/kpi"),
        &[],
    );
    assert_eq!(kpi.status, 200);

    // X-Road's own errors: an unknown service, and a request without X-Road-Client.
    let unknown = via_ss(
        ss,
        EMPLOYMENT,
        &format!("/r1/{MIGRATION}/no-such-service/v1/x"),
        &[],
    );
    assert_eq!(unknown.status, 500);
    assert!(unknown
        .headers
        .to_ascii_lowercase()
        .contains("x-road-error: server.serverproxy.unknownservice"));
    assert_eq!(unknown.json()["type"], "Server.ServerProxy.UnknownService");
    let no_client = anonymous(ss, "GET", &feed, &[], b"").unwrap();
    assert_eq!(no_client.status, 400);
    assert_eq!(no_client.json()["type"], "Client.InvalidRequest");
    // Each service describes itself in OpenAPI 3.1, ready to register.
    let doc = via_ss(
        ss,
        EMPLOYMENT,
        &format!("/r1/{MIGRATION}/jol-persons/v1/openapi.json"),
        &[],
    );
    assert_eq!(doc.json()["openapi"], "3.1.0");
}

#[test]
fn the_provider_face_answers_only_its_security_server_and_within_max_wait() {
    let t = Tunduk::start();
    let face = t.node("migration").xroad.expect("a provider face");
    // Plain HTTP to a face that requires its security server's certificate: no answer.
    let plain = anonymous(
        face,
        "GET",
        "/jol-feed/v1/manifest",
        &[("X-Road-Client", EMPLOYMENT)],
        b"",
    );
    assert!(plain.is_err(), "plain HTTP was answered: {plain:?}");
    // A long-poll asked for 60 s is held at most max_wait_secs (20 s in this layout): through
    // the security server the answer comes within the wait the node allows.
    let started = Instant::now();
    let answer = via_ss(
        t.ss("employment"),
        EMPLOYMENT,
        &format!("/r1/{MIGRATION}/jol-feed/v1/feed?after=1000000&wait=60"),
        &[],
    );
    let held = started.elapsed();
    assert_eq!(answer.status, 200);
    assert!(
        held >= Duration::from_secs(15) && held < Duration::from_secs(40),
        "held {held:?}"
    );
}

#[test]
fn an_allow_from_face_refuses_other_addresses() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let face_port = free_ports(1)[0];
    let fed = Federation::build();
    let config = fed.config("migration");
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        format!("{text}\n[xroad]\nprovider_listen = \"127.0.0.1:{face_port}\"\nallow_from = [\"10.9.9.9\"]\n"),
    )
    .unwrap();
    let node = fed.start("migration");
    let face = node.xroad.unwrap();
    let refused = anonymous(
        face,
        "GET",
        "/jol-feed/v1/manifest",
        &[("X-Road-Client", EMPLOYMENT)],
        b"",
    );
    assert!(
        refused.is_err(),
        "a caller outside allow_from was answered: {refused:?}"
    );
}
