//! End-to-end: three agency nodes exchanging events over mutual TLS on loopback ports chosen at
//! run time; and the operator's script, `config/federation.sh`, building a federation that works.

mod common;

use std::time::Duration;

use common::*;
use serde_json::json;

const ALL_PURPOSES: [&str; 3] = [
    "EMPLOYMENT_SERVICES",
    "TRAINING_SERVICES",
    "REINTEGRATION_CASE_MANAGEMENT",
];

#[test]
fn the_operator_script_builds_a_federation_that_exchanges_events() {
    let dir = tempfile::tempdir().unwrap();
    let ports = free_ports(6);
    let script = common::repo().join("config/federation.sh");
    let status = std::process::Command::new("bash")
        .arg(script)
        .arg(dir.path())
        .env("JOL", env!("CARGO_BIN_EXE_jol"))
        .env("MIGRATION_LOCAL", ports[0].to_string())
        .env("EMPLOYMENT_LOCAL", ports[1].to_string())
        .env("EDUCATION_LOCAL", ports[2].to_string())
        .env("MIGRATION_PEER", ports[3].to_string())
        .env("EMPLOYMENT_PEER", ports[4].to_string())
        .env("EDUCATION_PEER", ports[5].to_string())
        .env("STORE_ENGINE", "sled")
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "config/federation.sh failed");
    let start = |a: &str| {
        let folder = dir.path().join(a);
        let token = std::fs::read_to_string(folder.join("operator.token")).unwrap();
        register_token(&folder.join("node.toml"), token.trim());
        Node::start(&folder.join("node.toml"))
    };
    let (mig, emp) = (start("migration"), start("employment"));
    let id = publish_id(
        mig.addr,
        "returnee-record",
        &returnee("21503199012345", &[EMPLOYMENT], &["EMPLOYMENT_SERVICES"]),
    );
    assert!(arrives(emp.addr, MIGRATION, &id));
    assert!(
        dir.path().join("migration/data/conf").exists(),
        "the non-default engine, sled"
    );
    emp.stop();
    mig.stop();
}

#[test]
fn an_event_reaches_both_readers_and_consent_is_honoured() {
    let fed = Federation::build();
    let nodes: Vec<Node> = AGENCIES.iter().map(|a| fed.start(a)).collect();
    let (mig, emp, edu) = (nodes[0].addr, nodes[1].addr, nodes[2].addr);

    let everyone = returnee(
        "21503199012345",
        &[MIGRATION, EMPLOYMENT, EDUCATION],
        &ALL_PURPOSES,
    );
    let published = publish(mig, "returnee-record", &everyone);
    let id = published["id"].as_str().unwrap().to_string();
    for (name, addr) in [("employment", emp), ("education", edu)] {
        let took = eventually(Duration::from_secs(10), || {
            events_from(addr, MIGRATION)
                .iter()
                .any(|e| e["event"]["id"] == id.as_str())
        })
        .unwrap_or_else(|| panic!("the event never reached {name}"));
        eprintln!("returnee-record reached {name} in {took:?}");
    }

    // Consent to the employment service only: education sees a placeholder, not the event.
    let only_employment = returnee("11204198554321", &[EMPLOYMENT], &["EMPLOYMENT_SERVICES"]);
    let private = publish_id(mig, "returnee-record", &only_employment);
    let marker = publish_id(
        mig,
        "returnee-record",
        &returnee("21111199011111", &[EMPLOYMENT, EDUCATION], &ALL_PURPOSES),
    );
    assert!(arrives(edu, MIGRATION, &marker));
    assert!(
        events_from(edu, MIGRATION)
            .iter()
            .all(|e| e["event"]["id"] != private.as_str()),
        "education got an event without consent"
    );
    assert!(arrives(emp, MIGRATION, &private));

    // An employment status flows back to migration (its consent includes migration).
    let mut status = example("employment-status", "employment-started.json");
    status["person"]["pin"] = "21503199012345".into();
    let sid = publish_id(emp, "employment-status", &status);
    assert!(arrives(mig, EMPLOYMENT, &sid));

    // A withdrawal reaches the former recipients; later events about the person stop.
    let mut withdrawal = example("returnee-record", "consent-withdrawn.json");
    withdrawal["person"]["pin"] = "21503199012345".into();
    publish_id(mig, "returnee-record", &withdrawal);
    // At the employment service, what migration sent about the person is no longer served
    // (not even the withdrawal itself, which is received data) through the person view, and
    // the view says so; its own status still is.
    let served = eventually(Duration::from_secs(10), || {
        get(emp, "/api/v1/persons/21503199012345").json()["receivedDataWithheld"] == true
    });
    assert!(
        served.is_some(),
        "the withdrawal did not change what is served"
    );
    let view = get(emp, "/api/v1/persons/21503199012345").json();
    assert!(view["returnee"].is_null(), "{view}");
    assert!(
        view["events"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["source"] == EMPLOYMENT),
        "{view}"
    );
    assert_eq!(view["spells"].as_array().map(Vec::len), Some(1), "{view}");
    let mut later = example("returnee-record", "record-corrected.json");
    later["person"] = json!({"pin": "21503199012345"});
    later["supersedes"] = id.as_str().into();
    let lid = publish_id(mig, "returnee-record", &later);
    let after = publish_id(
        mig,
        "returnee-record",
        &returnee("21111199022222", &[EMPLOYMENT], &["EMPLOYMENT_SERVICES"]),
    );
    assert!(arrives(emp, MIGRATION, &after));
    assert!(
        events_from(emp, MIGRATION)
            .iter()
            .all(|e| e["event"]["id"] != lid.as_str()),
        "delivered after withdrawal"
    );

    // Sequences as stored by a reader have no gaps in what was delivered, and /readyz and
    // /metrics say what happened.
    let ready = get(emp, "/readyz").json();
    assert_eq!(ready["manifest"]["ok"], true, "{ready}");
    let metrics = String::from_utf8(get(mig, "/metrics").body).unwrap();
    assert!(
        metrics.contains("jol_feed_events_withheld_total"),
        "{metrics}"
    );
    assert!(!metrics.contains("21503199012345"));
    for n in nodes {
        n.stop();
    }
}

#[test]
fn a_subscriber_killed_mid_sync_ends_with_every_event_exactly_once() {
    let fed = Federation::build();
    let mig = fed.start("migration");
    let total = 3000;
    for chunk in 0..(total / 500) {
        let events: Vec<_> = (0..500)
            .map(|i| {
                let n = chunk * 500 + i;
                json!({"type": "returnee-record", "data": returnee(&pin(n), &[EMPLOYMENT], &["EMPLOYMENT_SERVICES"])})
            })
            .collect();
        let a = post_json(mig.addr, "/api/v1/events/batch", &json!({"events": events})).unwrap();
        assert_eq!(a.json()["accepted"], 500);
    }
    for wait_ms in [150, 400] {
        let emp = fed.start("employment");
        std::thread::sleep(Duration::from_millis(wait_ms));
        emp.kill();
    }
    let emp = fed.start("employment");
    let got = wait_for_events(emp.addr, MIGRATION, total, "employment");
    assert_eq!(got.len(), total);
    let mut ids = event_ids(&got);
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), total, "an event is stored twice");
    let seqs: Vec<String> = got
        .iter()
        .map(|e| e["event"]["sequence"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(seqs, (1..=total).map(|n| n.to_string()).collect::<Vec<_>>());
    emp.stop();
    mig.stop();
}

#[test]
fn a_publisher_that_was_down_is_caught_up_when_it_returns() {
    let fed = Federation::build();
    let emp = fed.start("employment");
    // Migration is down: employment keeps retrying with backoff.
    std::thread::sleep(Duration::from_millis(800));
    let ready = get(emp.addr, "/readyz").json();
    assert_eq!(ready["status"], "degraded", "{ready}");
    let mig = fed.start("migration");
    let id = publish_id(
        mig.addr,
        "returnee-record",
        &returnee("21503199012345", &[EMPLOYMENT], &["EMPLOYMENT_SERVICES"]),
    );
    assert!(
        eventually(Duration::from_secs(10), || events_from(emp.addr, MIGRATION)
            .len()
            == 1)
        .is_some()
    );
    mig.kill();
    // While migration is down the authority signs a newer manifest; only migration restarts
    // with it, and employment takes it up from migration when it reconnects.
    fed.authority(&["sign", "--out", fed.path("manifest.jws").to_str().unwrap()]);
    std::thread::sleep(Duration::from_millis(500));
    let mig = fed.start("migration");
    publish(
        mig.addr,
        "returnee-record",
        &returnee("21503199012346", &[EMPLOYMENT], &["EMPLOYMENT_SERVICES"]),
    );
    assert!(
        eventually(Duration::from_secs(10), || events_from(emp.addr, MIGRATION)
            .len()
            == 2)
        .is_some()
    );
    assert_eq!(
        events_from(emp.addr, MIGRATION)[0]["event"]["id"],
        id.as_str()
    );
    mig.stop();
    emp.stop();
}

/// A running node takes up a newer manifest without a restart: from its file when an operator
/// puts it in place, and from a publisher while it syncs when its own file stays old.
#[test]
fn a_newer_manifest_is_taken_up_by_running_nodes() {
    let fed = Federation::build_with(
        "min_backoff_ms = 50\nmax_backoff_ms = 400\nwait_secs = 1\nmanifest_ms = 200",
    );
    // Employment reads a copy of the manifest that nobody updates: only migration can tell it.
    let copy = fed.path("employment/manifest-copy.jws");
    std::fs::copy(fed.path("manifest.jws"), &copy).unwrap();
    let config = std::fs::read_to_string(fed.config("employment")).unwrap();
    let moved = config.replace("\"../manifest.jws\"", "\"manifest-copy.jws\"");
    assert_ne!(config, moved, "employment's config names no manifest file");
    std::fs::write(fed.config("employment"), moved).unwrap();
    let mig = fed.start("migration");
    let emp = fed.start("employment");
    let serial = |node: &Node| get(node.addr, "/readyz").json()["manifest"]["serial"].as_u64();
    let before = serial(&mig).unwrap();
    assert_eq!(serial(&emp), Some(before));
    fed.authority(&["sign", "--out", fed.path("manifest.jws").to_str().unwrap()]);
    let newer = Some(before + 1);
    assert!(
        eventually(Duration::from_secs(10), || serial(&mig) == newer).is_some(),
        "migration did not take up the manifest put in its file"
    );
    assert!(
        eventually(Duration::from_secs(10), || serial(&emp) == newer).is_some(),
        "employment did not take up the manifest from migration while syncing"
    );
    mig.stop();
    emp.stop();
}

#[test]
fn an_expired_manifest_stops_exchange_with_a_clear_error() {
    let fed = Federation::build();
    // The authority re-signs the manifest valid for three seconds only.
    let authority = jol::trust::authority::Authority::open(&fed.path("authority"));
    authority
        .sign_at(
            &fed.path("manifest.jws"),
            time::OffsetDateTime::now_utc(),
            time::Duration::seconds(3),
        )
        .unwrap();
    let mig = fed.start("migration");
    let emp = fed.start("employment");
    publish(
        mig.addr,
        "returnee-record",
        &returnee("21503199012345", &[EMPLOYMENT], &["EMPLOYMENT_SERVICES"]),
    );
    assert!(
        eventually(Duration::from_secs(10), || get(emp.addr, "/readyz").status
            == 503)
        .is_some(),
        "readyz never said the manifest expired"
    );
    let ready = get(emp.addr, "/readyz").json();
    assert_eq!(ready["status"], "not-ready");
    assert!(
        ready["manifest"]["error"]
            .as_str()
            .unwrap()
            .contains("expired"),
        "{ready}"
    );
    // Publishing locally still works; exchange does not.
    let later = publish_id(
        mig.addr,
        "returnee-record",
        &returnee("21503199012346", &[EMPLOYMENT], &["EMPLOYMENT_SERVICES"]),
    );
    // The subscriber refuses to exchange under the expired manifest: each sync attempt it makes
    // after the publish is counted as a manifest failure, and none of them took the event.
    let refused = || manifest_failures(emp.addr);
    let before = refused();
    assert!(
        eventually(Duration::from_secs(10), || refused() > before).is_some(),
        "the subscriber made no sync attempt refused for the manifest"
    );
    assert!(events_from(emp.addr, MIGRATION)
        .iter()
        .all(|e| e["event"]["id"] != later.as_str()));
    // A newer manifest (an operator restarts with it) resumes exchange.
    emp.stop();
    mig.stop();
    fed.authority(&["sign", "--out", fed.path("manifest.jws").to_str().unwrap()]);
    let mig = fed.start("migration");
    let emp = fed.start("employment");
    assert!(
        eventually(Duration::from_secs(10), || events_from(emp.addr, MIGRATION)
            .iter()
            .any(|e| e["event"]["id"] == later.as_str()))
        .is_some()
    );
    emp.stop();
    mig.stop();
}

/// How many of a node's sync attempts from migration were refused for the manifest (metrics).
fn manifest_failures(addr: std::net::SocketAddr) -> u64 {
    let metrics = String::from_utf8(get(addr, "/metrics").body).unwrap();
    let wanted = format!("jol_sync_failures_total{{from=\"{MIGRATION}\",kind=\"manifest\"}} ");
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(&wanted))
        .map_or(0, |n| n.trim().parse().unwrap())
}

#[test]
fn a_member_cannot_correct_another_members_record() {
    let fed = Federation::build();
    let mig = fed.start("migration");
    let emp = fed.start("employment");
    let record = publish_id(
        mig.addr,
        "returnee-record",
        &returnee("21503199012345", &[EMPLOYMENT], &["EMPLOYMENT_SERVICES"]),
    );
    assert!(arrives(emp.addr, MIGRATION, &record));
    // The employment service publishes a status that claims to supersede migration's record.
    let mut status = example("employment-status", "jobseeker-registered.json");
    status["person"]["pin"] = "21503199012345".into();
    status["event"] = "RECORD_CORRECTED".into();
    status["supersedes"] = record.as_str().into();
    let refused = post_json(
        emp.addr,
        "/api/v1/events",
        &json!({"type": "employment-status", "data": status}),
    )
    .unwrap();
    assert_eq!(
        refused.status,
        422,
        "{}",
        String::from_utf8_lossy(&refused.body)
    );
    let problem = refused.json();
    assert_eq!(
        problem["type"],
        "https://jol.example/problems/supersedes-foreign"
    );
    assert_eq!(problem["errors"][0]["pointer"], "/data/supersedes");
    // Migration's view of the person still has the record.
    let view = get(mig.addr, "/api/v1/persons/21503199012345").json();
    assert!(view["returnee"].is_object(), "{view}");
    emp.stop();
    mig.stop();
}

#[test]
fn a_status_published_before_consent_reaches_the_reader_once_consent_arrives() {
    let fed = Federation::build();
    let nodes: Vec<Node> = AGENCIES.iter().map(|a| fed.start(a)).collect();
    let (mig, emp, edu) = (nodes[0].addr, nodes[1].addr, nodes[2].addr);
    let pin = "21503199012345";
    // The employment service registers the person before their consent reaches it.
    let mut status = example("employment-status", "employment-started.json");
    status["person"]["pin"] = pin.into();
    let early = publish(emp, "employment-status", &status);
    let (early_id, early_sequence) = (
        early["id"].as_str().unwrap().to_string(),
        early["sequence"].as_str().unwrap().parse::<u64>().unwrap(),
    );
    // Migration has read past it (a placeholder: no consent), and does not have it.
    assert!(
        eventually(Duration::from_secs(10), || {
            get(mig, "/readyz").json()["peers"][EMPLOYMENT]["cursor"].as_u64()
                >= Some(early_sequence)
        })
        .is_some(),
        "migration never read past the status"
    );
    assert!(events_from(mig, EMPLOYMENT).is_empty());

    // Now the person consents to share with the employment service and migration.
    publish(
        mig,
        "returnee-record",
        &returnee(
            pin,
            &[MIGRATION, EMPLOYMENT],
            &["EMPLOYMENT_SERVICES", "REINTEGRATION_CASE_MANAGEMENT"],
        ),
    );
    // The status withheld earlier is offered again and arrives, once.
    assert!(
        arrives(mig, EMPLOYMENT, &early_id),
        "the early status never arrived"
    );
    assert_eq!(
        get(mig, "/api/v1/quarantine").json()["total"],
        0,
        "no second copy"
    );
    let copies = events_from(mig, EMPLOYMENT)
        .iter()
        .filter(|e| e["event"]["id"] == early_id.as_str())
        .count();
    assert_eq!(copies, 1);
    // Education, to whom the person did not consent, still does not have it.
    assert!(events_from(edu, EMPLOYMENT)
        .iter()
        .all(|e| e["event"]["id"] != early_id.as_str()));
    // The person's view at migration includes the job.
    let view = get(mig, &format!("/api/v1/persons/{pin}")).json();
    assert_eq!(view["spells"].as_array().map(Vec::len), Some(1), "{view}");
    for n in nodes {
        n.stop();
    }
}
