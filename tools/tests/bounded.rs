//! End-to-end: the work a request can cause is bounded. A feed page stays within what a
//! subscriber accepts however large its events; an event larger than the node signs or accepts
//! is refused and kept in quarantine; the quarantine is capped by count and bytes, and when full
//! refuses honestly, keeps what it held and loses nothing received; listings stay within their
//! byte budget and page through everything. Real nodes, real TLS, real stores.

mod common;

use std::path::Path;
use std::time::Duration;

use common::*;
use serde_json::{json, Value};

/// A returnee record for `pin`, consented to employment, of about `bytes` of JSON: the consent
/// names many more recipients (each a valid member id of 198 characters).
fn large_returnee(pin: &str, bytes: usize) -> Value {
    let mut data = returnee(pin, &[EMPLOYMENT], &["EMPLOYMENT_SERVICES"]);
    let (x, y) = ("x".repeat(64), "y".repeat(64));
    let padding = (0..bytes / 201).map(|i| Value::from(format!("pad{i:061}/GOV/{x}/{y}")));
    data["consent"]["recipients"] = std::iter::once(Value::from(EMPLOYMENT))
        .chain(padding)
        .collect();
    data
}

/// Publish, at the migration agency, a small record with the consent of each person `i` of
/// `persons` to the employment service (so the received data about them may be read there).
fn consent_first(mig: std::net::SocketAddr, persons: &[usize]) {
    for i in persons {
        publish(
            mig,
            "returnee-record",
            &returnee(&pin(*i), &[EMPLOYMENT], &["EMPLOYMENT_SERVICES"]),
        );
    }
}

fn append_to(config: &Path, text: &str) {
    let before = std::fs::read_to_string(config).unwrap();
    std::fs::write(config, before + text).unwrap();
}

/// A lone node with these `[limits]` (its folder is kept as long as the node runs).
fn limited_node(limits: &str) -> (NodeDir, Node) {
    let dir = NodeDir::new("");
    dir.append_config(&format!("[limits]\n{limits}"));
    let node = dir.start();
    (dir, node)
}

/// POST `body` as it is to the publish route, declared JSON.
fn post_raw(addr: std::net::SocketAddr, body: &[u8]) -> Answer {
    let json = [("Content-Type", "application/json")];
    request(addr, "POST", "/api/v1/events", &json, body).unwrap()
}

fn publish_body(t: &str, data: &Value) -> Value {
    json!({"type": t, "data": data})
}

fn quarantine_page(addr: std::net::SocketAddr, after: u64) -> Answer {
    get(
        addr,
        &format!("/api/v1/quarantine?after={after}&limit=1000"),
    )
}

/// Every quarantine record, paged through with `next`; panics on a page over the budget.
fn whole_quarantine(addr: std::net::SocketAddr) -> Vec<Value> {
    let (mut after, mut records) = (0, Vec::new());
    loop {
        let page = quarantine_page(addr, after);
        assert_eq!(page.status, 200);
        let v = page.json();
        let got = v["records"].as_array().unwrap().clone();
        if got.is_empty() {
            return records;
        }
        assert!(
            page.body.len() <= jol::budget::LISTING_BYTES || got.len() == 1,
            "a quarantine page of {} records is {} bytes",
            got.len(),
            page.body.len()
        );
        after = v["next"].as_u64().unwrap();
        records.extend(got);
    }
}

/// What `/readyz` says of the subscription to `from`.
fn subscription(addr: std::net::SocketAddr, from: &str) -> Value {
    get(addr, "/readyz").json()["peers"][from].clone()
}

/// While its subscriber is down, a publisher takes events of about a megabyte each, more than
/// 64 MiB of them: the subscriber's catch-up page would be larger than any subscriber reads,
/// and it asked for that page for ever. Each page now ends at its byte budget, and every event
/// arrives.
#[test]
fn a_feed_of_large_events_reaches_the_subscriber_in_pages_it_accepts() {
    let fed = Federation::build();
    let mig = fed.start("migration");
    let count = jol::budget::MAX_ANSWER_BYTES / 930_000 + 1;
    let mut ids = Vec::new();
    for i in 0..count {
        let published = publish(
            mig.addr,
            "returnee-record",
            &large_returnee(&pin(i), 720_000),
        );
        let jws = published["jws"].to_string().len();
        assert!(
            (900_000..=jol::budget::DEFAULT_MAX_EVENT_BYTES).contains(&jws),
            "each event is about a megabyte signed, under the default limit: {jws}"
        );
        ids.push(published["id"].as_str().unwrap().to_string());
    }
    let emp = fed.start("employment");
    let caught_up = eventually(Duration::from_secs(120), || {
        subscription(emp.addr, MIGRATION)["cursor"].as_u64() == Some(count as u64)
    });
    let status = subscription(emp.addr, MIGRATION);
    assert!(
        caught_up.is_some(),
        "the subscriber never took the whole feed: {status}"
    );
    assert_eq!(
        metric(
            emp.addr,
            &format!("jol_sync_failures_total{{from=\"{MIGRATION}\",kind=\"too-large\"}}")
        ),
        None,
        "no page was larger than the subscriber reads"
    );
    let held: Vec<String> = event_ids(&events_from(emp.addr, MIGRATION));
    assert_eq!(held, ids, "every event, in order, once");
    emp.stop();
    mig.stop();
}

/// An event whose signed form would pass `[limits] max_event_bytes` is refused at publish with
/// a problem naming its size and the limit, kept in quarantine, and takes no sequence; in a
/// batch, only that item is refused.
#[test]
fn an_event_too_large_once_signed_is_refused_at_publish_and_kept_in_quarantine() {
    let (_dir, node) = limited_node("max_event_bytes = 8192\n");
    // About 6 KB of data: under the body limit, over 8 KiB once signed (base64url and envelope).
    let large = publish_body("returnee-record", &large_returnee(&pin(1), 6_000));
    let answer = post_json(node.addr, "/api/v1/events", &large).unwrap();
    assert_eq!(
        answer.status,
        413,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
    assert!(answer.headers.contains("application/problem+json"));
    let problem = answer.json();
    assert!(problem["type"]
        .as_str()
        .unwrap()
        .ends_with("/event-too-large"));
    let size = problem["size"].as_u64().unwrap();
    assert!(size > 8192, "{problem}");
    assert_eq!(problem["limit"], 8192);
    let detail = problem["detail"].as_str().unwrap();
    assert!(
        detail.contains(&size.to_string()) && detail.contains("8192"),
        "{detail}"
    );
    assert!(!detail.contains(&pin(1)), "no personal data in the detail");

    let small = publish(
        node.addr,
        "returnee-record",
        &returnee(&pin(2), &[EMPLOYMENT], &["EMPLOYMENT_SERVICES"]),
    );
    assert_eq!(small["sequence"], "1", "the refused event took no sequence");

    let batch = json!({"events": [
        publish_body("returnee-record", &returnee(&pin(3), &[EMPLOYMENT], &["EMPLOYMENT_SERVICES"])),
        large,
    ]});
    let answer = post_json(node.addr, "/api/v1/events/batch", &batch).unwrap();
    assert_eq!(answer.status, 200);
    let results = answer.json()["results"].clone();
    assert_eq!(results[0]["status"], 201);
    assert_eq!(results[1]["status"], 413);
    assert!(results[1]["type"]
        .as_str()
        .unwrap()
        .ends_with("/event-too-large"));

    let kept = whole_quarantine(node.addr);
    assert_eq!(
        quarantine_reasons(&json!({"records": kept})),
        ["event-too-large"; 2]
    );
    let body: Value = serde_json::from_str(kept[0]["body"].as_str().unwrap()).unwrap();
    assert_eq!(
        body,
        publish_body("returnee-record", &large_returnee(&pin(1), 6_000))
    );
    node.stop();
}

/// A subscriber that accepts smaller events than its publisher signs quarantines a larger one
/// as `event-too-large`, not retried: the events after it still arrive.
#[test]
fn a_received_event_larger_than_the_subscriber_accepts_is_quarantined_not_retried() {
    let fed = Federation::build();
    append_to(
        &fed.config("employment"),
        "[limits]\nmax_event_bytes = 16384\n",
    );
    let (mig, emp) = (fed.start("migration"), fed.start("employment"));
    // The person's consent reaches the employment service first, so its operator may read what
    // the migration agency sends about them, the refused body included.
    consent_first(mig.addr, &[1]);
    let large = publish_id(
        mig.addr,
        "returnee-record",
        &large_returnee(&pin(1), 30_000),
    );
    let after = publish_id(
        mig.addr,
        "returnee-record",
        &returnee(&pin(2), &[EMPLOYMENT], &["EMPLOYMENT_SERVICES"]),
    );
    assert!(
        arrives(emp.addr, MIGRATION, &after),
        "the event after it arrives"
    );
    let kept = whole_quarantine(emp.addr);
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert_eq!(kept[0]["origin"], MIGRATION);
    assert_eq!(kept[0]["reason"], "event-too-large");
    assert!(kept[0]["body"].as_str().unwrap().contains("signature"));
    assert!(!event_ids(&events_from(emp.addr, MIGRATION)).contains(&large));
    assert_eq!(subscription(emp.addr, MIGRATION)["cursor"], 3);
    emp.stop();
    mig.stop();
}

/// A schema-invalid submission tagged `n` (its caseRef), with `padding` bytes of junk.
fn invalid(n: usize, padding: usize) -> Value {
    let mut data = employment_data(n, &format!("CASE-{n}"));
    data["junk"] = "j".repeat(padding).into();
    publish_body("employment-status", &data)
}

/// Submit `invalid(n, padding)`.
fn submit_invalid(addr: std::net::SocketAddr, n: usize, padding: usize) -> Answer {
    post_json(addr, "/api/v1/events", &invalid(n, padding)).unwrap()
}

/// The quarantine keeps at most `quarantine_max_records`: beyond it a refused submission is
/// answered 507 `quarantine-full` (naming what was wrong with it and what the operator does),
/// counted, and nothing already kept is dropped; valid events are still published.
#[test]
fn a_full_quarantine_refuses_submissions_and_keeps_what_it_held() {
    let (_dir, node) = limited_node("quarantine_max_records = 3\n");
    for n in 0..3 {
        assert_eq!(submit_invalid(node.addr, n, 10).status, 422);
    }
    let full = submit_invalid(node.addr, 3, 10);
    assert_eq!(full.status, 507, "{}", String::from_utf8_lossy(&full.body));
    let problem = full.json();
    assert!(problem["type"]
        .as_str()
        .unwrap()
        .ends_with("/quarantine-full"));
    assert!(problem["refusal"]["type"]
        .as_str()
        .unwrap()
        .ends_with("/schema-invalid"));
    let detail = problem["detail"].as_str().unwrap();
    assert!(detail.contains("quarantine_max_records"), "{detail}");
    let malformed = post_raw(node.addr, b"{not json");
    assert_eq!(malformed.status, 507);
    let batch = json!({"events": [invalid(4, 10)]});
    let answer = post_json(node.addr, "/api/v1/events/batch", &batch).unwrap();
    assert_eq!(answer.json()["results"][0]["status"], 507);

    let kept = whole_quarantine(node.addr);
    let cases: Vec<String> = kept
        .iter()
        .map(|r| {
            let body: Value = serde_json::from_str(r["body"].as_str().unwrap()).unwrap();
            body["data"]["caseRef"].as_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(cases, ["CASE-0", "CASE-1", "CASE-2"], "what was kept stays");
    assert_eq!(
        metric(node.addr, "jol_quarantine_full_total{origin=\"local-api\"}"),
        Some(3)
    );
    let ready = get(node.addr, "/readyz").json();
    assert_eq!(ready["quarantine"]["records"], 3);
    assert!(ready["warnings"].to_string().contains("quarantine is full"));
    publish(
        node.addr,
        "employment-status",
        &employment_data(9, "CASE-9"),
    );
    node.stop();
}

/// The quarantine's bytes are capped too: a large refused body that does not fit is refused
/// 507, and a small one that still fits is kept.
#[test]
fn the_quarantine_is_capped_by_bytes_too() {
    let (_dir, node) = limited_node("quarantine_max_bytes = 20000\n");
    for n in 0..3 {
        assert_eq!(submit_invalid(node.addr, n, 5_000).status, 422);
    }
    let large = submit_invalid(node.addr, 3, 5_000);
    assert_eq!(large.status, 507);
    assert!(large.json()["detail"]
        .as_str()
        .unwrap()
        .contains("quarantine_max_bytes"));
    let small = submit_invalid(node.addr, 4, 0);
    assert_eq!(small.status, 422, "a small refusal still fits");
    let ready = get(node.addr, "/readyz").json();
    assert_eq!(ready["quarantine"]["records"], 4);
    assert!(ready["quarantine"]["bytes"].as_u64().unwrap() <= 20_000);
    node.stop();
}

/// A subscriber whose quarantine is full does not move its cursor past an event it refuses:
/// the event waits at the publisher, with the ones after it, and once the operator raises the
/// cap it is kept and the rest arrive. Nothing received is lost.
#[test]
fn refused_received_events_wait_while_the_quarantine_is_full_and_nothing_is_lost() {
    let fed = Federation::build();
    let config = fed.config("employment");
    append_to(
        &config,
        "[limits]\nmax_event_bytes = 16384\nquarantine_max_records = 1\n",
    );
    let (mig, emp) = (fed.start("migration"), fed.start("employment"));
    consent_first(mig.addr, &[0, 1]);
    for i in 0..2 {
        publish(
            mig.addr,
            "returnee-record",
            &large_returnee(&pin(i), 30_000),
        );
    }
    let last = publish_id(
        mig.addr,
        "returnee-record",
        &returnee(&pin(3), &[EMPLOYMENT], &["EMPLOYMENT_SERVICES"]),
    );
    let full = format!("jol_quarantine_full_total{{origin=\"{MIGRATION}\"}}");
    let retried = eventually(Duration::from_secs(30), || {
        metric(emp.addr, &full).is_some_and(|n| n >= 2)
    });
    assert!(retried.is_some(), "{}", subscription(emp.addr, MIGRATION));
    // Each retry's session clears the error when it connects and sets it again when the page
    // is refused: read the status between the two.
    let status = eventually_some(Duration::from_secs(30), || {
        let s = subscription(emp.addr, MIGRATION);
        s["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("quarantine"))
            .then_some(s)
    })
    .unwrap_or_else(|| {
        panic!(
            "the error never named the quarantine: {}",
            subscription(emp.addr, MIGRATION)
        )
    });
    assert_eq!(
        status["cursor"], 3,
        "the cursor stops before the event not kept: {status}"
    );
    assert!(status["failures"]["quarantine-full"].as_u64().unwrap() >= 2);
    assert!(!event_ids(&events_from(emp.addr, MIGRATION)).contains(&last));
    assert_eq!(whole_quarantine(emp.addr).len(), 1);
    emp.stop();

    let raised = std::fs::read_to_string(&config).unwrap().replace(
        "quarantine_max_records = 1\n",
        "quarantine_max_records = 10\n",
    );
    std::fs::write(&config, raised).unwrap();
    let emp = fed.start("employment");
    assert!(arrives(emp.addr, MIGRATION, &last), "the rest arrives");
    let kept = whole_quarantine(emp.addr);
    assert_eq!(
        quarantine_reasons(&json!({"records": kept})),
        ["event-too-large"; 2]
    );
    let sequences: Vec<String> = kept
        .iter()
        .map(|r| {
            let jws: Value = serde_json::from_str(r["body"].as_str().unwrap()).unwrap();
            let payload = jws["payload"].as_str().unwrap();
            let event: Value = serde_json::from_slice(
                &base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, payload)
                    .unwrap(),
            )
            .unwrap();
            event["sequence"].as_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(
        sequences,
        ["3", "4"],
        "both refused events are kept, once each"
    );
    emp.stop();
    mig.stop();
}

/// Listings stop at their byte budget: a quarantine of very large bodies and a log of large
/// events are listed in pages under `LISTING_BYTES`, and paging on with `next` returns all.
#[test]
fn listings_stay_under_their_byte_budget_and_page_through_everything() {
    let node_dir = NodeDir::new("");
    let node = node_dir.start();
    let body = |n: usize| format!("{{\"broken\": {n}, \"padding\": \"{}", "p".repeat(900_000));
    for n in 0..10 {
        assert_eq!(post_raw(node.addr, body(n).as_bytes()).status, 400);
    }
    let first = quarantine_page(node.addr, 0);
    assert!(
        first.body.len() <= jol::budget::LISTING_BYTES,
        "{} bytes",
        first.body.len()
    );
    assert!(first.json()["records"].as_array().unwrap().len() < 10);
    let kept = whole_quarantine(node.addr);
    let bodies: Vec<&str> = kept.iter().map(|r| r["body"].as_str().unwrap()).collect();
    assert_eq!(bodies, (0..10).map(body).collect::<Vec<_>>());

    let mut ids = Vec::new();
    for i in 0..10 {
        ids.push(publish_id(
            node.addr,
            "returnee-record",
            &large_returnee(&pin(i), 600_000),
        ));
    }
    let (mut after, mut listed) = (0, Vec::new());
    loop {
        let page = get(
            node.addr,
            &format!("/api/v1/events?after={after}&limit=1000"),
        );
        assert!(
            page.body.len() <= jol::budget::LISTING_BYTES,
            "an events page of {} bytes",
            page.body.len()
        );
        let v = page.json();
        let events = v["events"].as_array().unwrap().clone();
        if events.is_empty() {
            break;
        }
        after = v["next"].as_u64().unwrap();
        listed.extend(events);
    }
    assert_eq!(event_ids(&listed), ids);
    node.stop();
}
