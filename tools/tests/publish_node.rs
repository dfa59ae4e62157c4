//! End-to-end: a real `jol serve` process on loopback with a real store.

mod common;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use serde_json::{json, Value};

#[test]
fn publishes_every_example_and_reads_it_back_signed() {
    let dir = NodeDir::new("");
    let node = dir.start();
    let key = jol::event::keys::read_public(&dir.path().join("sign.pub.pem")).unwrap();
    let mut ids = Vec::new();
    for (t, file) in [
        ("returnee-record", "return-registered.json"),
        ("training-enrolment", "enrolled.json"),
        ("employment-status", "employment-started.json"),
    ] {
        let a = post_json(
            node.addr,
            "/api/v1/events",
            &json!({"type": t, "data": example(t, file)}),
        )
        .unwrap();
        assert_eq!(a.status, 201, "{}", String::from_utf8_lossy(&a.body));
        let body = a.json();
        assert_eq!(body["type"], t);
        assert_eq!(body["source"], MEMBER);
        ids.push((
            body["id"].as_str().unwrap().to_string(),
            body["sequence"].clone(),
        ));
        // The answer carries the signed event; it verifies with the node's public key.
        let jws = serde_json::to_vec(&body["jws"]).unwrap();
        let (signed, parsed) = jol::event::SignedEvent::parse(&jws).unwrap();
        parsed.verify(&key).unwrap();
        assert_eq!(signed.event().id.to_string(), body["id"].as_str().unwrap());
    }
    assert_eq!(
        ids.iter()
            .map(|(_, s)| s.as_str().unwrap())
            .collect::<Vec<_>>(),
        ["1", "2", "3"]
    );
    let events = all_events(node.addr);
    assert_eq!(events.len(), 3);
    assert_eq!(events[2]["event"]["type"], "employment-status");
    let one = get(node.addr, &format!("/api/v1/events/{}", ids[1].0));
    assert_eq!(one.status, 200);
    assert_eq!(one.json()["event"]["data"]["enrolmentId"], "EDU-2024-0042");
    assert_eq!(
        get(
            node.addr,
            "/api/v1/events/01890a5d-ac96-774b-bcce-b302099a8057"
        )
        .status,
        404
    );
    assert_eq!(get(node.addr, "/healthz").status, 200);
    node.stop();
}

#[test]
fn bad_input_gets_its_own_clear_error_and_is_quarantined() {
    let dir = NodeDir::new("max_body_bytes = 4096\n");
    let node = dir.start();
    let addr = node.addr;
    let json_ct = [("Content-Type", "application/json")];

    let malformed = request(addr, "POST", "/api/v1/events", &json_ct, b"{\"type\": ").unwrap();
    assert_eq!(malformed.status, 400);
    assert!(malformed.headers.contains("application/problem+json"));
    assert_eq!(
        malformed.json()["type"],
        "https://jol.example/problems/malformed-json"
    );

    let utf8 = request(
        addr,
        "POST",
        "/api/v1/events",
        &json_ct,
        b"{\"type\": \"\xff\"}",
    )
    .unwrap();
    assert_eq!(utf8.status, 400);
    assert!(utf8.json()["detail"].as_str().unwrap().contains("UTF-8"));

    let no_ct = request(addr, "POST", "/api/v1/events", &[], b"{}").unwrap();
    assert_eq!(no_ct.status, 415);
    assert!(no_ct.json()["type"]
        .as_str()
        .unwrap()
        .ends_with("missing-content-type"));
    let wrong_ct = request(
        addr,
        "POST",
        "/api/v1/events",
        &[("Content-Type", "text/plain")],
        b"{}",
    )
    .unwrap();
    assert_eq!(wrong_ct.status, 415);

    let big = vec![b' '; 5000];
    let too_big = request(addr, "POST", "/api/v1/events", &json_ct, &big).unwrap();
    assert_eq!(too_big.status, 413);

    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let deep = request(addr, "POST", "/api/v1/events", &json_ct, deep.as_bytes());
    // Either refused as too large or as malformed (recursion limit): never a crash.
    assert!(matches!(deep.map(|a| a.status), Ok(400 | 413)));

    // The same member twice: JSON parsers disagree on which counts, so it is refused.
    let twice = br#"{"type": "employment-status", "data": {"person": {"pin": "21503199012345", "pin": "11204198554321"}}}"#;
    let twice = request(addr, "POST", "/api/v1/events", &json_ct, twice).unwrap();
    assert_eq!(twice.status, 400);
    let twice = twice.json();
    assert_eq!(twice["type"], "https://jol.example/problems/duplicate-key");
    assert_eq!(twice["errors"][0]["pointer"], "/data/person/pin");
    assert!(!twice.to_string().contains("11204198554321"), "{twice}");

    // A consent dated after the event that records it (a future-dated consent would otherwise
    // look newer than a later withdrawal).
    let mut early = example("returnee-record", "return-registered.json");
    early["consent"]["time"] = "2999-01-01T00:00:00Z".into();
    let early = post_json(
        addr,
        "/api/v1/events",
        &json!({"type": "returnee-record", "data": early}),
    )
    .unwrap();
    assert_eq!(
        early.status,
        422,
        "{}",
        String::from_utf8_lossy(&early.body)
    );
    assert_eq!(early.json()["errors"][0]["pointer"], "/data/consent/time");

    let unknown = post_json(
        addr,
        "/api/v1/events",
        &json!({"type": "tax-record", "data": {}}),
    )
    .unwrap();
    assert_eq!(unknown.status, 422);
    assert_eq!(unknown.json()["errors"][0]["pointer"], "/type");

    let extra = post_json(
        addr,
        "/api/v1/events",
        &json!({"type": "employment-status", "data": {}, "colour": 1}),
    )
    .unwrap();
    assert_eq!(extra.json()["errors"][0]["pointer"], "/colour");

    let mut data = example("employment-status", "employment-started.json");
    data["person"]["pin"] = "23002199012345".into();
    data["job"]["icse18"] = "99".into();
    let invalid = post_json(
        addr,
        "/api/v1/events",
        &json!({"type": "employment-status", "data": data}),
    )
    .unwrap();
    assert_eq!(invalid.status, 422);
    let body = invalid.json();
    let pointers: HashSet<&str> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["pointer"].as_str().unwrap())
        .collect();
    assert!(
        pointers.contains("/data/person/pin") && pointers.contains("/data/job/icse18"),
        "{body}"
    );
    assert!(
        !invalid.body.windows(14).any(|w| w == b"23002199012345"),
        "the PIN is echoed"
    );

    assert_eq!(get(addr, "/api/v2/nothing").status, 404);
    assert_eq!(
        request(addr, "DELETE", "/api/v1/events", &[], b"")
            .unwrap()
            .status,
        405
    );
    // A refused path is not repeated in the answer (a person's path carries a PIN, and these
    // answers come before any token is checked): a 405 names the route's template.
    let pin = "23002199012345";
    let wrong_method =
        request(addr, "DELETE", &format!("/api/v1/persons/{pin}"), &[], b"").unwrap();
    assert_eq!(wrong_method.status, 405);
    let said = String::from_utf8_lossy(&wrong_method.body);
    assert!(
        said.contains("/api/v1/persons/{pin}") && !said.contains(pin),
        "{said}"
    );
    let no_such = get(addr, &format!("/api/v1/persons/{pin}/history"));
    assert_eq!(no_such.status, 404);
    assert!(!String::from_utf8_lossy(&no_such.body).contains(pin));

    // The node still serves, and everything refused is in quarantine with its reason.
    let good = post_json(addr, "/api/v1/events", &json!({"type": "employment-status", "data": example("employment-status", "employment-started.json")})).unwrap();
    assert_eq!(good.status, 201);
    // A refused path without a token, as anyone who reaches the listener: the same answers for
    // a person the node holds (the one just published) and for one it does not, neither naming
    // the PIN.
    let held_pin = example("employment-status", "employment-started.json")["person"]["pin"]
        .as_str()
        .unwrap()
        .to_string();
    for (method, tail, status) in [("DELETE", "", 405), ("GET", "/history", 404)] {
        let answers: Vec<(u16, Vec<u8>)> = [held_pin.as_str(), "21503199099999"]
            .iter()
            .map(|pin| {
                let path = format!("/api/v1/persons/{pin}{tail}");
                let answer = anonymous(addr, method, &path, &[], b"").unwrap();
                let said = String::from_utf8_lossy(&answer.body);
                assert!(!said.contains(pin), "{method} {path}: {said}");
                (answer.status, answer.body)
            })
            .collect();
        assert_eq!(answers[0].0, status, "{method} …{tail}");
        assert_eq!(answers[0], answers[1], "{method} …{tail} tells who is held");
    }
    let q = get(addr, "/api/v1/quarantine").json();
    let reasons = quarantine_reasons(&q);
    for reason in [
        "malformed-json",
        "duplicate-key",
        "invalid-request",
        "schema-invalid",
    ] {
        assert!(reasons.contains(&reason), "{reasons:?}");
    }
    node.stop();
}

#[test]
fn a_slow_client_is_cut_off_and_others_are_served() {
    let dir = NodeDir::new("header_timeout_secs = 1\n");
    let node = dir.start();
    let started = Instant::now();
    let mut slow = std::net::TcpStream::connect(node.addr).unwrap();
    use std::io::{Read, Write};
    slow.write_all(b"POST /api/v1/events HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    assert_eq!(get(node.addr, "/healthz").status, 200);
    slow.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut buf = Vec::new();
    let _ = slow.read_to_end(&mut buf);
    // Closed by the configured 1 s header timeout: not before it, and not long after it (the
    // margin covers a loaded 2-core CI machine; a connection held open would take the full 10 s
    // read timeout).
    let held = started.elapsed();
    assert!(
        held >= Duration::from_millis(900) && held < Duration::from_secs(4),
        "the half-sent request was held {held:?}, not about the 1 s header timeout"
    );
    node.stop();
}

#[test]
fn tokens_are_required_scoped_and_carry_the_purpose() {
    let dir = NodeDir::new("");
    let config = dir.config.to_str().unwrap().to_string();
    let create = |name: &str, scopes: &str, purpose: &str| {
        jol([
            "token",
            "--config",
            &config,
            "create",
            "--name",
            name,
            "--scopes",
            scopes,
            "--purpose",
            purpose,
        ])
        .trim()
        .to_string()
    };
    let publisher = create("case-system", "publish", "EMPLOYMENT_SERVICES");
    let officer = create(
        "officer-desk",
        "read-persons,read-events",
        "EMPLOYMENT_SERVICES",
    );
    let tokens = dir.path().join("tokens.toml");
    let stored = std::fs::read_to_string(&tokens).unwrap();
    assert!(!stored.contains(&publisher) && stored.contains("case-system"));
    let listed = jol(["token", "--config", &config, "list"]);
    assert!(
        listed.contains("officer-desk\tread-persons,read-events\tEMPLOYMENT_SERVICES"),
        "{listed}"
    );

    // A tokens file others can read stops the node, naming the file and the fix.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&tokens, std::fs::Permissions::from_mode(0o644)).unwrap();
    let refused = std::process::Command::new(env!("CARGO_BIN_EXE_jol"))
        .args(["serve", "--config"])
        .arg(&dir.config)
        .output()
        .unwrap();
    assert!(!refused.status.success());
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(
        said.contains(&tokens.display().to_string()) && said.contains("chmod 600"),
        "{said}"
    );
    std::fs::set_permissions(&tokens, std::fs::Permissions::from_mode(0o600)).unwrap();

    let node = dir.start();
    let bearer = |t: &str| format!("Bearer {t}");
    let mut data = example("employment-status", "employment-started.json");
    data["person"]["pin"] = "21503199012345".into();
    let body = json!({"type": "employment-status", "data": data});
    let post = |auth: Option<&str>| {
        let mut headers = vec![("Content-Type", "application/json".to_string())];
        if let Some(a) = auth {
            headers.push(("Authorization", a.to_string()));
        }
        let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        anonymous(
            node.addr,
            "POST",
            "/api/v1/events",
            &headers,
            body.to_string().as_bytes(),
        )
        .unwrap()
    };
    assert_eq!(post(None).status, 401);
    assert_eq!(post(Some("Bearer nope")).status, 401);
    let wrong_scope = post(Some(&bearer(&officer)));
    assert_eq!(wrong_scope.status, 403);
    assert!(wrong_scope.json()["detail"]
        .as_str()
        .unwrap()
        .contains("publish"));
    assert_eq!(post(Some(&bearer(&publisher))).status, 201);
    let read = |path: &str, token: &str| {
        request(
            node.addr,
            "GET",
            path,
            &[
                ("Authorization", &bearer(token)),
                ("X-Road-Issue", "SOMETHING-ELSE"),
            ],
            b"",
        )
        .unwrap()
    };
    assert_eq!(
        read("/api/v1/persons/21503199012345", &publisher).status,
        403
    );
    assert!(
        eventually(Duration::from_secs(10), || read(
            "/api/v1/persons/21503199012345",
            &officer
        )
        .status
            == 200)
        .is_some(),
        "the officer's token never read the person"
    );
    // The access log records the token's name and purpose, not what the caller claimed.
    let log = read("/api/v1/persons/21503199012345/access-log", &officer).json();
    assert_eq!(log["records"][0]["reader"], "local:officer-desk");
    assert_eq!(log["records"][0]["purpose"], "EMPLOYMENT_SERVICES");
    // A desk is not shown which official read (at another agency, their personal code): the
    // data protection officer (admin) is.
    assert!(
        log["records"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["user"].is_null()),
        "{log}"
    );
    let whole = get(node.addr, "/api/v1/persons/21503199012345/access-log").json();
    assert_eq!(whole["records"][0]["user"], "officer-desk", "{whole}");
    assert_eq!(get(node.addr, "/healthz").status, 200);
    // A revoked token is refused by the running node.
    jol([
        "token",
        "--config",
        &config,
        "revoke",
        "--name",
        "officer-desk",
    ]);
    assert_eq!(read("/api/v1/events", &officer).status, 401);
    node.stop();
}

#[test]
fn retries_with_an_idempotency_key_return_the_first_result() {
    let dir = NodeDir::new("");
    let node = dir.start();
    let body = json!({"type": "employment-status", "data": employment_data(1, "c-1"), "idempotencyKey": "case-1"});
    let first = post_json(node.addr, "/api/v1/events", &body).unwrap();
    let again = post_json(node.addr, "/api/v1/events", &body).unwrap();
    assert_eq!((first.status, again.status), (201, 201));
    assert_eq!(first.json()["id"], again.json()["id"]);
    assert!(again
        .headers
        .to_ascii_lowercase()
        .contains("idempotent-replayed: true"));
    let other = json!({"type": "employment-status", "data": employment_data(2, "c-2"), "idempotencyKey": "case-1"});
    assert_eq!(
        post_json(node.addr, "/api/v1/events", &other)
            .unwrap()
            .status,
        409
    );
    assert_eq!(all_events(node.addr).len(), 1);
    node.stop();
}

#[test]
fn a_batch_lists_each_item_and_sequences_continue_after_restart() {
    let dir = NodeDir::new("");
    let node = dir.start();
    let mut bad = employment_data(2, "b-2");
    bad["job"]["formality"] = "MAYBE".into();
    let batch = json!({"events": [
        {"type": "employment-status", "data": employment_data(1, "b-1")},
        {"type": "employment-status", "data": bad},
        {"type": "nope", "data": {}},
        {"type": "employment-status", "data": employment_data(3, "b-3")},
    ]});
    let a = post_json(node.addr, "/api/v1/events/batch", &batch).unwrap();
    assert_eq!(a.status, 200);
    let body = a.json();
    assert_eq!(
        (body["accepted"].as_u64(), body["rejected"].as_u64()),
        (Some(2), Some(2))
    );
    let r = body["results"].as_array().unwrap();
    assert_eq!(r[0]["sequence"], "1");
    assert_eq!(r[1]["errors"][0]["pointer"], "/events/1/data/job/formality");
    assert_eq!(r[2]["errors"][0]["pointer"], "/events/2/type");
    assert_eq!(r[3]["sequence"], "2");
    // Each item refused (by its shape, by the writer's validation) is kept in quarantine as
    // it was sent.
    let q = get(node.addr, "/api/v1/quarantine").json();
    let kept = |reason: &str| -> serde_json::Value {
        let record = q["records"]
            .as_array()
            .unwrap()
            .iter()
            .find(|record| record["reason"] == reason)
            .unwrap_or_else(|| panic!("no {reason} in {q}"));
        serde_json::from_str(record["body"].as_str().unwrap()).unwrap()
    };
    assert_eq!(kept("invalid-request"), batch["events"][2]);
    assert_eq!(kept("schema-invalid"), batch["events"][1]);
    // The group commits that made them durable are counted, with their time.
    let text = String::from_utf8(get(node.addr, "/metrics").body).unwrap();
    assert_eq!(metric_in(&text, "jol_events_published_total "), Some(2));
    let commits = metric_in(&text, "jol_writer_commit_seconds_count ").unwrap();
    assert!(
        (1..=2).contains(&commits),
        "{commits} commits for one batch"
    );
    let took: f64 = text
        .lines()
        .find_map(|l| l.strip_prefix("jol_writer_commit_seconds_sum "))
        .and_then(|v| v.parse().ok())
        .unwrap();
    assert!(took > 0.0, "{text}");
    node.stop();

    let node = dir.start();
    let a = post_json(
        node.addr,
        "/api/v1/events",
        &json!({"type": "employment-status", "data": employment_data(4, "b-4")}),
    )
    .unwrap();
    assert_eq!(a.json()["sequence"], "3");
    node.stop();
}

/// Publish concurrently with idempotency keys, SIGKILL the node at a random moment, restart,
/// retry what was in flight, and check: every acknowledged event is there exactly once, with the
/// sequence it was acknowledged with, and sequences have no gaps. `JOL_CRASH_ROUNDS` sets rounds.
#[test]
fn sigkill_during_concurrent_publishing_loses_and_duplicates_nothing() {
    let rounds: usize = env_number("JOL_CRASH_ROUNDS").unwrap_or(4);
    let dir = NodeDir::new("");
    let acked: Arc<Mutex<HashMap<String, (String, String)>>> = Arc::default();
    let mut next_case = 0usize;
    let mut pending: Vec<String> = Vec::new();
    for round in 0..rounds {
        let node = dir.start();
        // Retry what the previous crash left unanswered, with the same keys.
        for key in pending.drain(..) {
            let body = json!({"type": "employment-status", "data": employment_data(1, &key), "idempotencyKey": key});
            let a = post_json(node.addr, "/api/v1/events", &body).unwrap();
            assert_eq!(a.status, 201);
            let v = a.json();
            acked.lock().unwrap().insert(
                key,
                (
                    v["id"].as_str().unwrap().into(),
                    v["sequence"].as_str().unwrap().into(),
                ),
            );
        }
        let addr = node.addr;
        let stop_at = Instant::now() + Duration::from_millis(150 + (round as u64 * 137) % 450);
        let in_flight: Arc<Mutex<Vec<String>>> = Arc::default();
        let workers: Vec<_> = (0..8)
            .map(|w| {
                let (acked, in_flight) = (acked.clone(), in_flight.clone());
                let first = next_case + w * 100_000;
                std::thread::spawn(move || {
                    for n in first.. {
                        let key = format!("case-{n}");
                        let body = json!({"type": "employment-status", "data": employment_data(1, &key), "idempotencyKey": key});
                        match post_json(addr, "/api/v1/events", &body) {
                            Ok(a) if a.status == 201 => {
                                let v = a.json();
                                acked.lock().unwrap().insert(key, (v["id"].as_str().unwrap().into(), v["sequence"].as_str().unwrap().into()));
                            }
                            _ => {
                                in_flight.lock().unwrap().push(key);
                                return;
                            }
                        }
                    }
                })
            })
            .collect();
        while Instant::now() < stop_at {
            std::thread::sleep(Duration::from_millis(5));
        }
        node.kill();
        for w in workers {
            w.join().unwrap();
        }
        next_case += 8 * 100_000;
        pending = in_flight.lock().unwrap().clone();
    }
    let node = dir.start();
    for key in pending.drain(..) {
        let body = json!({"type": "employment-status", "data": employment_data(1, &key), "idempotencyKey": key});
        assert_eq!(
            post_json(node.addr, "/api/v1/events", &body)
                .unwrap()
                .status,
            201
        );
    }
    let events = all_events(node.addr);
    let acked = acked.lock().unwrap();
    assert!(
        acked.len() > rounds * 8,
        "too few events were published: {}",
        acked.len()
    );
    eprintln!(
        "{rounds} crash rounds: {} events stored, {} acknowledged",
        events.len(),
        acked.len()
    );
    let mut by_case: HashMap<String, Vec<&Value>> = HashMap::new();
    for (i, e) in events.iter().enumerate() {
        assert_eq!(
            e["event"]["sequence"],
            (i + 1).to_string(),
            "gap or disorder at {i}"
        );
        by_case
            .entry(e["event"]["data"]["caseRef"].as_str().unwrap().into())
            .or_default()
            .push(e);
    }
    for (key, (id, seq)) in acked.iter() {
        let found = by_case
            .get(key)
            .unwrap_or_else(|| panic!("acknowledged {key} is lost"));
        assert_eq!(found.len(), 1, "{key} stored {} times", found.len());
        assert_eq!(found[0]["event"]["id"], id.as_str());
        assert_eq!(found[0]["event"]["sequence"], seq.as_str());
    }
    for (key, found) in &by_case {
        assert_eq!(found.len(), 1, "{key} stored twice");
    }
    node.stop();
}

#[test]
fn the_webhook_gets_every_event_in_order_and_retries_until_accepted() {
    use std::io::{BufReader, Write};
    let hook = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let hook_addr = hook.local_addr().unwrap();
    let received: Arc<Mutex<Vec<Value>>> = Arc::default();
    let got = received.clone();
    std::thread::spawn(move || {
        let mut answered = 0;
        for stream in hook.incoming() {
            let Ok(stream) = stream else { return };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut stream = stream;
            while let Some(body) = read_request(&mut reader) {
                answered += 1;
                // The first delivery fails: the node must retry it.
                let status = if answered == 1 {
                    "500 Internal Server Error"
                } else {
                    "204 No Content"
                };
                if answered > 1 {
                    got.lock()
                        .unwrap()
                        .push(serde_json::from_slice(&body).unwrap());
                }
                write!(stream, "HTTP/1.1 {status}\r\nContent-Length: 0\r\n\r\n").unwrap();
            }
        }
    });
    let dir = NodeDir::new(&format!("webhook = \"http://{hook_addr}/jol\"\n"));
    let node = dir.start();
    for i in 0..5 {
        publish(
            node.addr,
            "employment-status",
            &employment_data(i, &format!("w-{i}")),
        );
    }
    assert!(
        eventually(Duration::from_secs(10), || received.lock().unwrap().len()
            >= 5)
        .is_some(),
        "webhook did not get every event"
    );
    let positions: Vec<u64> = received
        .lock()
        .unwrap()
        .iter()
        .map(|v| v["position"].as_u64().unwrap())
        .collect();
    assert_eq!(positions, [1, 2, 3, 4, 5]);
    // Each delivery is in the person's access log, as the webhook's read.
    let pin = received.lock().unwrap()[0]["event"]["data"]["person"]["pin"]
        .as_str()
        .unwrap()
        .to_string();
    let log = get(node.addr, &format!("/api/v1/persons/{pin}/access-log")).json();
    let deliveries = log["records"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| {
            r["reader"].as_str().unwrap().starts_with("webhook:")
                && r["what"] == "event delivered to the webhook"
        })
        .count();
    // Once, though the first delivery was retried.
    assert_eq!(deliveries, 1, "{log}");
    // The failure is counted, and over once a delivery went through.
    assert_eq!(metric(node.addr, "jol_webhook_failures_total "), Some(1));
    let over = eventually(Duration::from_secs(10), || {
        metric(node.addr, "jol_webhook_failing ") == Some(0)
    });
    assert!(over.is_some(), "still counted as failing");
    node.stop();
}

/// A webhook nobody answers, whether nothing listens or a listener takes the request and never
/// answers: the node keeps the events for it, counts the failures and says so in `/readyz`
/// (degraded, with a warning), naming no person.
#[test]
fn a_webhook_that_keeps_failing_is_reported_in_readyz() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let refused = closed.local_addr().unwrap();
    drop(closed);
    // Bound and never accepted: the connection is made, the request sent, no answer comes.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    for addr in [refused, silent.local_addr().unwrap()] {
        webhook_failing_is_reported(addr);
    }
}

fn webhook_failing_is_reported(addr: std::net::SocketAddr) {
    let dir = NodeDir::new(&format!(
        "webhook = \"http://{addr}/jol\"\nwebhook_timeout_secs = 2\n"
    ));
    let node = dir.start();
    let data = employment_data(0, "w-0");
    publish(node.addr, "employment-status", &data);
    let warned = eventually(Duration::from_secs(30), || {
        let ready = get(node.addr, "/readyz").json();
        ready["status"] == "degraded"
            && ready["warnings"]
                .as_array()
                .is_some_and(|w| w.iter().any(|w| w.as_str().unwrap().contains("webhook")))
    });
    assert!(warned.is_some(), "{}", get(node.addr, "/readyz").json());
    let ready = String::from_utf8(get(node.addr, "/readyz").body).unwrap();
    assert!(!ready.contains(data["person"]["pin"].as_str().unwrap()));
    assert!(metric(node.addr, "jol_webhook_failing ").is_some_and(|n| n >= 1));
    node.stop();
}

#[test]
fn every_path_that_shows_personal_data_logs_the_read_first() {
    let dir = NodeDir::new("");
    let node = dir.start();
    let data = employment_data(7, "a-1");
    let pin = data["person"]["pin"].as_str().unwrap().to_string();
    let id = publish(node.addr, "employment-status", &data)["id"]
        .as_str()
        .unwrap()
        .to_string();
    // A refused submission about the same person lands in quarantine with its body.
    let mut bad = data.clone();
    bad["labourForceStatus"] = "SOMETHING".into();
    assert_eq!(
        post_json(
            node.addr,
            "/api/v1/events",
            &json!({"type": "employment-status", "data": bad})
        )
        .unwrap()
        .status,
        422
    );
    assert_eq!(get(node.addr, "/api/v1/events").status, 200);
    assert_eq!(get(node.addr, &format!("/api/v1/events/{id}")).status, 200);
    assert_eq!(get(node.addr, "/api/v1/quarantine").status, 200);
    let what = |addr| -> Vec<String> {
        get(addr, &format!("/api/v1/persons/{pin}/access-log")).json()["records"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["what"].as_str().unwrap().to_string())
            .collect()
    };
    let records = get(node.addr, &format!("/api/v1/persons/{pin}/access-log")).json();
    let first = &records["records"][0];
    assert_eq!(first["reader"], "local:operator", "{records}");
    assert_eq!(first["purpose"], OPERATOR_PURPOSE);
    let logged = what(node.addr);
    for expected in [
        "events listed through the local API",
        "an event read through the local API",
        "a quarantined submission read through the local API",
        "the person's access log",
    ] {
        assert!(
            logged.iter().any(|w| w == expected),
            "{expected}: {logged:?}"
        );
    }
    // The command line reads a stopped node's data, for a purpose, decided and logged too.
    node.stop();
    let config = dir.config.to_str().unwrap();
    let view = |pin: &str| {
        jol_output([
            "view",
            pin,
            "--config",
            config,
            "--purpose",
            OPERATOR_PURPOSE,
        ])
    };
    let seen = view(&pin);
    assert!(
        seen.status.success(),
        "{}",
        String::from_utf8_lossy(&seen.stderr)
    );
    assert!(String::from_utf8_lossy(&seen.stdout).contains(&pin));
    // A person the node holds nothing about: refused as a token's lookup is, and logged.
    let stranger = "21503199099999";
    let refused = view(stranger);
    assert!(!refused.status.success());
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(said.contains("holds nothing about that person"), "{said}");
    let node = dir.start();
    let records = get(node.addr, &format!("/api/v1/persons/{pin}/access-log")).json();
    let read = &records["records"][0];
    assert_eq!(read["what"], "registry view (jol view)", "{records}");
    assert_eq!(read["purpose"], OPERATOR_PURPOSE);
    assert_eq!(read["outcome"], "served");
    let asked = get(node.addr, &format!("/api/v1/persons/{stranger}/access-log")).json();
    assert_eq!(
        asked["records"][0]["outcome"], "refused-nothing-held",
        "{asked}"
    );
    node.stop();
}

#[test]
fn huge_strings_many_fields_and_idle_connections_leave_the_node_serving() {
    let dir = NodeDir::new("header_timeout_secs = 1\n");
    let node = dir.start();
    let mut data = example("employment-status", "employment-started.json");
    data["legalBasis"] = "x".repeat(100_000).into();
    let long = post_json(
        node.addr,
        "/api/v1/events",
        &json!({"type": "employment-status", "data": data}),
    )
    .unwrap();
    assert_eq!(long.status, 422);
    assert_eq!(long.json()["errors"][0]["pointer"], "/data/legalBasis");

    let mut data = example("employment-status", "employment-started.json");
    for i in 0..10_000 {
        data[format!("field{i}")] = i.into();
    }
    let many = post_json(
        node.addr,
        "/api/v1/events",
        &json!({"type": "employment-status", "data": data}),
    )
    .unwrap();
    assert_eq!(many.status, 422);
    assert!(many.body.len() < 1_000_000, "the answer stays bounded");

    // 200 connections that never send a byte: cut off by the header timeout, others served.
    let idle: Vec<_> = (0..200)
        .map(|_| std::net::TcpStream::connect(node.addr).unwrap())
        .collect();
    let good = post_json(node.addr, "/api/v1/events", &json!({"type": "employment-status", "data": example("employment-status", "employment-started.json")})).unwrap();
    assert_eq!(good.status, 201);
    std::thread::sleep(Duration::from_millis(1500));
    use std::io::Read;
    let closed = idle
        .into_iter()
        .filter(|s| {
            let mut s = s;
            s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
            let mut buf = [0u8; 1];
            match s.read(&mut buf) {
                Ok(0) => true,
                Ok(_) => false,
                // A timeout means the node kept it open; a reset means it closed it.
                Err(e) => !matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ),
            }
        })
        .count();
    assert_eq!(
        closed, 200,
        "idle connections are closed by the header timeout"
    );
    assert_eq!(get(node.addr, "/healthz").status, 200);
    node.stop();
}

#[test]
fn a_foreign_host_and_a_cross_origin_post_are_refused() {
    let dir = NodeDir::new("");
    let node = dir.start();
    // What a page that rebinds its own DNS name to 127.0.0.1 sends: its own name as Host.
    use std::io::{Read, Write};
    let mut raw = std::net::TcpStream::connect(node.addr).unwrap();
    raw.write_all(
        b"GET /api/v1/events HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n",
    )
    .unwrap();
    let mut answer = String::new();
    raw.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 421"), "{answer}");
    assert!(answer.contains("unknown-host"), "{answer}");

    let body = json!({"type": "employment-status", "data": example("employment-status", "employment-started.json")});
    let cross = request(
        node.addr,
        "POST",
        "/api/v1/events",
        &[
            ("Content-Type", "application/json"),
            ("Origin", "http://evil.example"),
        ],
        body.to_string().as_bytes(),
    )
    .unwrap();
    assert_eq!(cross.status, 403);
    assert_eq!(
        cross.json()["type"],
        "https://jol.example/problems/cross-origin"
    );
    let same = request(
        node.addr,
        "POST",
        "/api/v1/events",
        &[
            ("Content-Type", "application/json"),
            ("Origin", &format!("http://{}", node.addr)),
        ],
        body.to_string().as_bytes(),
    )
    .unwrap();
    assert_eq!(same.status, 201);
    // Nothing was published by the refused requests.
    assert_eq!(
        get(node.addr, "/api/v1/events").json()["events"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    node.stop();
}

#[test]
fn a_slow_body_is_cut_off_and_others_are_served() {
    let dir = NodeDir::new("body_timeout_secs = 1\n");
    let node = dir.start();
    use std::io::{Read, Write};
    let started = Instant::now();
    let mut slow = std::net::TcpStream::connect(node.addr).unwrap();
    let host = node.addr.to_string();
    slow.write_all(
        format!("POST /api/v1/events HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: 500\r\n\r\n{{\"type\":", token_of(node.addr)).as_bytes(),
    )
    .unwrap();
    assert_eq!(
        get(node.addr, "/healthz").status,
        200,
        "others are served meanwhile"
    );
    slow.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut answer = String::new();
    let _ = slow.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("body-timeout"), "{answer}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the slow body held the connection {:?}",
        started.elapsed()
    );
    node.stop();
}

#[test]
fn a_token_over_its_budget_is_told_to_wait() {
    let dir = NodeDir::new("requests_per_token_per_second = 1\n");
    let config = dir.config.to_str().unwrap().to_string();
    let token = jol([
        "token",
        "--config",
        &config,
        "create",
        "--name",
        "reader",
        "--scopes",
        "read-events",
        "--purpose",
        "EMPLOYMENT_SERVICES",
    ])
    .trim()
    .to_string();
    let node = dir.start();
    let auth = format!("Bearer {token}");
    let answers: Vec<Answer> = (0..10)
        .map(|_| {
            request(
                node.addr,
                "GET",
                "/api/v1/events",
                &[("Authorization", &auth)],
                b"",
            )
            .unwrap()
        })
        .collect();
    assert_eq!(answers[0].status, 200);
    let limited = answers
        .iter()
        .find(|a| a.status == 429)
        .expect("ten requests at once exceed a budget of 1/s with bursts of 2");
    assert!(
        limited
            .headers
            .to_ascii_lowercase()
            .contains("retry-after: 1"),
        "{}",
        limited.headers
    );
    assert_eq!(
        limited.json()["type"],
        "https://jol.example/problems/rate-limited"
    );
    node.stop();
}

/// While the views are projected again from the log (their file was cut short, as a power loss
/// that came before the unsynced views reached the disk leaves it), every question about
/// persons is refused alike, 503 `views-behind`, whether the node holds the person or not, and
/// nothing is written to anyone's access log: nothing about them was looked up. Once the views
/// hold the log again, the person is served and that one read is logged.
#[test]
fn while_the_views_are_projected_again_every_person_read_is_refused_alike_and_logs_nothing() {
    if test_engine() == "postgres" {
        return; // the views are rows of its table: no file a power loss cuts
    }
    // Enough events that projecting them again takes seconds, not the first request's time.
    let events: usize = env_number("JOL_TEST_REBUILD_EVENTS").unwrap_or(20_000);
    let dir = NodeDir::new("");
    let node = dir.start();
    for first in (0..events).step_by(1000) {
        let batch: Vec<Value> = (first..(first + 1000).min(events))
            .map(|i| json!({"type": "employment-status", "data": employment_data(i, "r-1")}))
            .collect();
        let answer = post_json(node.addr, "/api/v1/events/batch", &json!({"events": batch}));
        assert_eq!(answer.unwrap().status, 200);
    }
    let held = employment_data(0, "r-1")["person"]["pin"]
        .as_str()
        .unwrap()
        .to_string();
    let stranger = "21503199099999";
    let first = node.addr;
    let person = |pin: &str| get(first, &format!("/api/v1/persons/{pin}"));
    let log_of = |addr, pin: &str| -> Vec<Value> {
        let a = get(addr, &format!("/api/v1/persons/{pin}/access-log"));
        assert_eq!(a.status, 200, "{}", String::from_utf8_lossy(&a.body));
        a.json()["records"].as_array().unwrap().clone()
    };
    eventually(Duration::from_secs(120), || person(&held).status == 200)
        .expect("the views hold the published events");
    // Read first, then logged: the answer lists what came before this read.
    let before = log_of(first, &held).len();
    node.stop();

    let views = dir.path().join("data/views");
    for file in std::fs::read_dir(&views)
        .unwrap()
        .map(|f| f.unwrap().path())
    {
        let file = std::fs::OpenOptions::new().write(true).open(file).unwrap();
        let len = file.metadata().unwrap().len();
        file.set_len(len / 2).unwrap();
    }
    let node = dir.start();
    let addr = node.addr;
    let asked = [
        get(addr, &format!("/api/v1/persons/{held}")),
        get(addr, &format!("/api/v1/persons/{stranger}")),
        get(addr, &format!("/api/v1/persons/{held}/matches")),
        get(addr, "/api/v1/kpi"),
    ];
    for a in &asked {
        assert_eq!(a.status, 503, "{}", String::from_utf8_lossy(&a.body));
        assert_eq!(
            a.json()["type"],
            "https://jol.example/problems/views-behind"
        );
    }
    assert_eq!(
        asked[0].json()["detail"],
        asked[1].json()["detail"],
        "the refusal says the same of a person held and of a stranger"
    );
    assert!(get(addr, "/readyz").json()["views"]["behind"].as_u64() > Some(0));

    let mut served = 0;
    eventually(Duration::from_secs(120), || {
        let a = get(addr, &format!("/api/v1/persons/{held}"));
        served += usize::from(a.status == 200);
        a.status == 200
    })
    .expect("the views hold the log again");
    assert_eq!(served, 1);
    let after: Vec<(Value, Value)> = log_of(addr, &held)
        .into_iter()
        .map(|r| (r["outcome"].clone(), r["what"].clone()))
        .collect();
    assert_eq!(
        after.len(),
        before + 2,
        "the access-log read before the restart and the one view served since, nothing for the refusals: {:?}",
        &after[..after.len().min(5)]
    );
    assert!(
        log_of(addr, stranger).is_empty(),
        "a stranger asked about while the views were behind has no access-log record"
    );
    node.stop();
}
