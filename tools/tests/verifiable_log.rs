//! The verifiable log end to end: signed checkpoints, proofs a client checks itself, `jol verify`
//! catching an altered or removed entry, a crash that leaves a log that still verifies, and
//! witnesses that co-sign checkpoints and raise the alarm when history is rewritten.

mod common;

use std::process::Command;
use std::time::Duration;

use common::*;
use jol::log::checkpoint::{decode_hash, SignedCheckpoint};
use jol::log::note::{KeyType, VerifierKey};
use jol::merkle;
use serde_json::{json, Value};

/// The latest checkpoint note a node serves, parsed (its signatures not checked here).
fn latest(addr: std::net::SocketAddr) -> Option<SignedCheckpoint> {
    let a = get(addr, "/api/v1/log/checkpoint");
    if a.status != 200 {
        return None;
    }
    assert_eq!(a.header("content-type"), Some("text/plain; charset=utf-8"));
    Some(jol::log::checkpoint::read(&a.body).expect("a checkpoint note"))
}

/// The hashes of a proof as the proof routes answer it.
fn proof_hashes(answer: &Value) -> Vec<merkle::Hash> {
    answer["proof"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| decode_hash(h.as_str().unwrap()).unwrap())
        .collect()
}

/// Wait for the checkpoint of `size` entries.
fn checkpoint(addr: std::net::SocketAddr, size: u64) -> SignedCheckpoint {
    let reached = eventually_some(Duration::from_secs(10), || {
        latest(addr).filter(|c| c.checkpoint.size == size)
    });
    reached.unwrap_or_else(|| panic!("no checkpoint of size {size}: {:?}", latest(addr)))
}

/// Edit a stopped node's store directly, as an attacker with the disk would: `edit` gets the
/// record under `prefix` + `number` and returns its replacement (`None` deletes it).
fn behind_the_nodes_back(
    data: &std::path::Path,
    prefix: u8,
    number: u64,
    edit: impl FnOnce(Option<Vec<u8>>) -> Option<Vec<u8>>,
) {
    use jol::store::kv::{Kv, Op};
    let engine = jol::store::Engine::of(data).expect("a store");
    let kv = Kv::open(data, engine).unwrap();
    let mut k = vec![prefix];
    k.extend_from_slice(&number.to_be_bytes());
    let op = match edit(kv.get(&k).unwrap()) {
        Some(v) => Op::Put(k, v),
        None => Op::Delete(k),
    };
    kv.apply(vec![op]).unwrap();
    kv.flush().unwrap();
}

/// Edit the event at `position` in the embedded engines' segment files (`DATA/log/`, the record
/// layout of `src/store/log/segments.rs`: a 52-byte header, length first, then the payload):
/// `Some` rewrites its payload in place (same length), `None` zeroes it and marks it erased, as
/// an erasure does, without the stripped bytes an erasure keeps.
fn behind_the_nodes_back_in_segments(
    data: &std::path::Path,
    position: u64,
    edit: impl FnOnce(Vec<u8>) -> Option<Vec<u8>>,
) {
    const HEADER: usize = 52;
    let path = data.join("log").join("00000000.seg");
    let mut bytes = std::fs::read(&path).unwrap();
    let mut at = 0usize;
    for _ in 1..position {
        let len = u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
        at += HEADER + len;
    }
    let len = u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
    let payload = at + HEADER..at + HEADER + len;
    match edit(bytes[payload.clone()].to_vec()) {
        Some(v) => bytes[payload].copy_from_slice(&v),
        None => {
            bytes[at + 4..at + 8].copy_from_slice(&1u32.to_be_bytes());
            bytes[payload].fill(0);
        }
    }
    std::fs::write(&path, bytes).unwrap();
}

fn verify_cmd(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_jol"))
        .arg("verify")
        .args(args)
        .output()
        .unwrap()
}

fn publish_n(addr: std::net::SocketAddr, from: usize, n: usize) {
    for i in from..from + n {
        let a = post_json(
            addr,
            "/api/v1/events",
            &json!({"type": "employment-status", "data": employment_data(i, &format!("c-{i}"))}),
        )
        .unwrap();
        assert_eq!(a.status, 201);
        assert_eq!(a.json()["leafIndex"], i as u64);
    }
}

#[test]
fn checkpoints_and_proofs_verify_and_jol_verify_catches_tampering() {
    let dir = NodeDir::new("");
    dir.append_config("[sync]\ncheckpoint_ms = 100\n");
    let node = dir.start();
    publish_n(node.addr, 0, 20);
    let c20 = checkpoint(node.addr, 20);
    publish_n(node.addr, 20, 30);
    let c50 = checkpoint(node.addr, 50);
    let root20 = c20.checkpoint.root;
    let root50 = c50.checkpoint.root;

    // The checkpoint is a note signed with the node's key under its log's origin, the verifier
    // key `jol log vkey` prints.
    let key = jol::event::keys::read_public(&dir.path().join("sign.pub.pem")).unwrap();
    let origin = &c50.checkpoint.origin;
    assert!(origin.ends_with("/jol-log"), "{origin}");
    let vkey = VerifierKey::new(origin, KeyType::Ed25519, key).unwrap();
    c50.note.verify(std::slice::from_ref(&vkey)).unwrap();
    let printed = Command::new(env!("CARGO_BIN_EXE_jol"))
        .args(["log", "vkey", "--config"])
        .arg(dir.path().join("node.toml"))
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&printed.stdout),
        format!("{vkey}\n")
    );

    // The tiles of the checkpointed tree give its root: 50 leaves are one partial level-0 tile.
    let tile = get(node.addr, "/api/v1/log/tile/0/000.p/50");
    assert_eq!(tile.status, 200);
    assert_eq!(
        tile.header("content-type"),
        Some("application/octet-stream")
    );
    let leaves = tile
        .body
        .chunks(32)
        .map(|h| <[u8; 32]>::try_from(h).unwrap());
    let rebuilt = merkle::MemoryTree::new(leaves);
    assert_eq!(merkle::root(&rebuilt, 50).unwrap(), root50);
    assert_eq!(get(node.addr, "/api/v1/log/tile/0/000.p/51").status, 404);

    // Inclusion: the client hashes the event bytes itself.
    let events = all_events(node.addr);
    for leaf in [0usize, 7, 19, 33, 49] {
        let p = get(
            node.addr,
            &format!("/api/v1/log/proof/inclusion?leaf={leaf}&size=50"),
        )
        .json();
        let proof = proof_hashes(&p);
        let j = &events[leaf]["jws"];
        let compact = format!(
            "{}.{}.{}",
            j["protected"].as_str().unwrap(),
            j["payload"].as_str().unwrap(),
            j["signature"].as_str().unwrap()
        );
        assert!(
            merkle::verify_inclusion(
                &merkle::leaf_hash(compact.as_bytes()),
                leaf as u64,
                50,
                &proof,
                &root50
            ),
            "leaf {leaf}"
        );
    }
    let p = get(node.addr, "/api/v1/log/proof/consistency?from=20&to=50").json();
    let proof = proof_hashes(&p);
    assert!(merkle::verify_consistency(20, 50, &root20, &root50, &proof));
    assert_eq!(
        get(node.addr, "/api/v1/log/proof/inclusion?leaf=60&size=50").status,
        400
    );
    // Two refused submissions: the quarantine log grows and the next checkpoint covers it.
    for _ in 0..2 {
        let bad = request(
            node.addr,
            "POST",
            "/api/v1/events",
            &[("Content-Type", "application/json")],
            b"{oops",
        )
        .unwrap();
        assert_eq!(bad.status, 400);
    }
    // Two more reads of the events, a page each: with the listing above, three requests, each
    // one access-log entry for all the persons it read.
    for after in [0, 25] {
        let page = get(node.addr, &format!("/api/v1/events?after={after}&limit=25"));
        assert_eq!(page.status, 200);
    }
    let covered = eventually_some(Duration::from_secs(10), || {
        let c = latest(node.addr)?.checkpoint;
        // The reads above are in the access log, covered as well.
        (c.quarantine.size == 2 && c.access.size >= 3).then_some(())
    });
    assert!(
        covered.is_some(),
        "no checkpoint covers the quarantine and access logs"
    );
    // A side log's consistency proof (what a witness asks for, since add-checkpoint proves the
    // event log alone): between two checkpoints' access-log heads, it verifies.
    let before = latest(node.addr).unwrap().checkpoint.access;
    assert_eq!(get(node.addr, "/api/v1/events?after=0&limit=5").status, 200);
    let after = eventually_some(Duration::from_secs(10), || {
        let access = latest(node.addr)?.checkpoint.access;
        (access.size > before.size).then_some(access)
    })
    .expect("a checkpoint covering one more read");
    let p = get(
        node.addr,
        &format!(
            "/api/v1/log/proof/consistency?log=jol-access&from={}&to={}",
            before.size, after.size
        ),
    )
    .json();
    assert_eq!(p["log"], "jol-access", "{p}");
    let proof = proof_hashes(&p);
    assert!(merkle::verify_consistency(
        before.size,
        after.size,
        &before.root,
        &after.root,
        &proof
    ));
    let past = format!(
        "/api/v1/log/proof/consistency?log=jol-access&from=1&to={}",
        after.size + 1_000
    );
    assert_eq!(get(node.addr, &past).status, 400);
    assert_eq!(
        get(
            node.addr,
            "/api/v1/log/proof/consistency?log=jol-other&from=1&to=1"
        )
        .status,
        400
    );
    node.stop();

    let data = dir.path().join("data");
    let ok = verify_cmd(&["--data-dir", data.to_str().unwrap()]);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stdout)
    );

    // Change one byte of a stored event behind the node's back.
    behind_the_nodes_back_in_segments(&data, 7, |mut v| {
        let at = v.len() / 2;
        v[at] = if v[at] == b'A' { b'B' } else { b'A' };
        Some(v)
    });
    let altered = verify_cmd(&["--data-dir", data.to_str().unwrap()]);
    assert!(!altered.status.success());
    let text = String::from_utf8_lossy(&altered.stderr);
    assert!(
        text.contains("first problem at 7") && text.contains("altered"),
        "{text}"
    );

    // Remove an event.
    behind_the_nodes_back_in_segments(&data, 3, |_| None);
    let removed = verify_cmd(&["--data-dir", data.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&removed.stderr);
    assert!(
        text.contains("first problem at 3") && text.contains("missing"),
        "{text}"
    );

    // Remove quarantine evidence: the quarantine log no longer matches its signed root.
    behind_the_nodes_back(&data, b'Q', 1, |_| None);
    let dropped = verify_cmd(&["--data-dir", data.to_str().unwrap(), "--json"]);
    let report: Value = serde_json::from_slice(&dropped.stdout).unwrap();
    let problems = report["findings"].to_string();
    assert!(problems.contains("quarantine record missing"), "{problems}");

    // Rewrite who read a person's data: the access log no longer matches its signed root.
    behind_the_nodes_back(&data, b'G', 2, |v| {
        let text = String::from_utf8(v.expect("access record 2 is stored")).unwrap();
        Some(
            text.replace("local:operator", "local:somebody")
                .into_bytes(),
        )
    });
    let rewritten = verify_cmd(&["--data-dir", data.to_str().unwrap(), "--json"]);
    let report: Value = serde_json::from_slice(&rewritten.stdout).unwrap();
    let problems = report["findings"].to_string();
    assert!(
        problems.contains("the access log's signed root is not the root of its stored records"),
        "{problems}"
    );
    // Remove one: missing.
    behind_the_nodes_back(&data, b'G', 1, |_| None);
    let dropped = verify_cmd(&["--data-dir", data.to_str().unwrap(), "--json"]);
    let report: Value = serde_json::from_slice(&dropped.stdout).unwrap();
    let problems = report["findings"].to_string();
    assert!(problems.contains("access log record missing"), "{problems}");
}

#[test]
fn a_node_killed_during_appends_restarts_with_a_log_that_verifies() {
    let dir = NodeDir::new("");
    dir.append_config("[sync]\ncheckpoint_ms = 50\n");
    for round in 0..3 {
        let node = dir.start();
        let addr = node.addr;
        let workers: Vec<_> = (0..4)
            .map(|w| {
                std::thread::spawn(move || {
                    for i in 0.. {
                        let body = json!({"type": "employment-status", "data": employment_data(i, &format!("r{round}-w{w}-{i}"))});
                        if post_json(addr, "/api/v1/events", &body).map(|a| a.status).ok() != Some(201) {
                            return;
                        }
                    }
                })
            })
            .collect();
        std::thread::sleep(Duration::from_millis(200 + 150 * round));
        node.kill();
        for w in workers {
            w.join().unwrap();
        }
    }
    let out = verify_cmd(&["--data-dir", dir.path().join("data").to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn witnesses_cosign_checkpoints_and_raise_the_alarm_when_history_is_rewritten() {
    let fed = Federation::build_with("checkpoint_ms = 100\nwitness_ms = 100\nmin_backoff_ms = 50\nmax_backoff_ms = 300\nwait_secs = 1");
    let mig = fed.start("migration");
    let emp = fed.start("employment");
    let edu = fed.start("education");
    for i in 0..5 {
        publish(
            mig.addr,
            "returnee-record",
            &returnee(
                &format!("2150319901234{i}"),
                &[EMPLOYMENT, EDUCATION],
                &["EMPLOYMENT_SERVICES", "TRAINING_SERVICES"],
            ),
        );
    }
    // Migration submits its checkpoint to both other members, whose witnesses co-sign it; it
    // serves their co-signatures with its own signature.
    let cosigned = eventually_some(Duration::from_secs(15), || {
        latest(mig.addr).filter(|c| c.checkpoint.size == 5 && c.note.signatures().len() >= 3)
    });
    let cosigned = cosigned.unwrap_or_else(|| panic!("{:?}", latest(mig.addr)));
    let names: Vec<&str> = cosigned
        .note
        .signatures()
        .iter()
        .map(|s| s.name.as_str())
        .collect();
    for witness in [EMPLOYMENT, EDUCATION] {
        assert!(
            names.contains(&format!("{witness}/jol-witness").as_str()),
            "{names:?}"
        );
    }
    assert_eq!(get(emp.addr, "/readyz").json()["logForks"], 0);

    // Migration's access log grows with every page the subscribers read. Their split-view
    // checks prove each growth with a side-log consistency proof: proofs are counted, none is
    // left unchecked, and no alarm.
    let counter = |name: &str| metric(emp.addr, &format!("{name}{{from=\"{MIGRATION}\"}} "));
    let proven = || counter("jol_witness_side_proofs_total").expect("the side-proof counter");
    let before = proven();
    for i in 5..8 {
        publish(
            mig.addr,
            "returnee-record",
            &returnee(
                &format!("2150319901234{i}"),
                &[EMPLOYMENT],
                &["EMPLOYMENT_SERVICES"],
            ),
        );
    }
    let grown = eventually(Duration::from_secs(15), || proven() > before);
    assert!(grown.is_some(), "no side-log proof was verified");
    assert_eq!(counter("jol_witness_side_unchecked_total"), Some(0));
    assert_eq!(get(emp.addr, "/readyz").json()["logForks"], 0);

    // Migration's history is thrown away and rewritten: a new log from scratch.
    mig.kill();
    std::fs::remove_dir_all(fed.path("migration/data")).unwrap();
    let mig = fed.start("migration");
    publish(
        mig.addr,
        "returnee-record",
        &returnee("21503199099999", &[EMPLOYMENT], &["EMPLOYMENT_SERVICES"]),
    );
    let alarmed = eventually(Duration::from_secs(15), || {
        get(emp.addr, "/readyz").json()["logForks"].as_u64() >= Some(1)
    });
    assert!(alarmed.is_some(), "{}", get(emp.addr, "/readyz").json());
    let ready = get(emp.addr, "/readyz").json();
    assert_eq!(ready["status"], "degraded");
    let q = get(emp.addr, "/api/v1/quarantine").json();
    let fork = q["records"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["reason"] == "log-fork")
        .expect("fork evidence in quarantine");
    let evidence: Value = serde_json::from_str(fork["body"].as_str().unwrap()).unwrap();
    for note in [&evidence["previous"], &evidence["new"]] {
        let note = note.as_str().unwrap_or_default();
        assert!(
            jol::log::checkpoint::read(note.as_bytes()).is_ok(),
            "{evidence}"
        );
    }
    let metrics = String::from_utf8(get(emp.addr, "/metrics").body).unwrap();
    assert!(metrics.contains("jol_log_forks_total 1"), "{metrics}");
    for n in [mig, emp, edu] {
        n.stop();
    }
}

/// `jol export --pin PIN --config CONFIG --out OUT` on a stopped node.
fn export(config: &std::path::Path, pin: &str, out: &std::path::Path) {
    jol([
        "export".as_ref(),
        "--pin".as_ref(),
        pin.as_ref(),
        "--config".as_ref(),
        config.as_os_str(),
        "--out".as_ref(),
        out.as_os_str(),
    ]);
}

#[test]
fn an_evidence_bundle_verifies_with_the_authority_key_alone_and_tampering_shows() {
    let fed = Federation::build_with("checkpoint_ms = 100\nwitness_ms = 100\nwait_secs = 1");
    let mig = fed.start("migration");
    let emp = fed.start("employment");
    let pin = "21503199012345";
    publish(
        mig.addr,
        "returnee-record",
        &returnee(pin, &[EMPLOYMENT], &["EMPLOYMENT_SERVICES"]),
    );
    publish(
        mig.addr,
        "returnee-record",
        &returnee("21503199012346", &[EMPLOYMENT], &["EMPLOYMENT_SERVICES"]),
    );
    let mut withdrawal = example("returnee-record", "consent-withdrawn.json");
    withdrawal["person"]["pin"] = pin.into();
    publish(mig.addr, "returnee-record", &withdrawal);
    // Wait for a co-signed checkpoint that covers all three events (an earlier one may be
    // co-signed while the last is not signed yet).
    let cosigned = eventually_some(Duration::from_secs(10), || {
        latest(mig.addr).filter(|c| c.checkpoint.size == 3 && c.note.signatures().len() >= 2)
    });
    assert!(cosigned.is_some());
    // Employment's own log holds what it received about the person, under its own checkpoint.
    let received = eventually_some(Duration::from_secs(10), || {
        latest(emp.addr).filter(|c| c.checkpoint.size >= 1)
    });
    assert!(received.is_some());
    mig.stop();
    emp.stop();

    let bundle = fed.path("bundle.json");
    let config = fed.config("migration");
    // A file left readable by others before: the bundle (personal data) is its owner's alone.
    std::fs::write(&bundle, "").unwrap();
    export(&config, pin, &bundle);
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&bundle).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "{mode:o}");
    // The export is a read of the person's data: in their access log, as the operator's.
    let mig = fed.start("migration");
    let log = get(mig.addr, &format!("/api/v1/persons/{pin}/access-log")).json();
    assert!(
        log["records"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["reader"] == "cli:export"
                && r["what"] == "events exported in an evidence bundle (jol export)"),
        "{log}"
    );
    mig.stop();
    let authority = fed.path("authority/authority.pub.pem");
    let check = |file: &std::path::Path| {
        common::jol_output([
            "verify".as_ref(),
            "--json".as_ref(),
            "--bundle".as_ref(),
            file.as_os_str(),
            "--authority-key".as_ref(),
            authority.as_os_str(),
        ])
    };
    let ok = check(&bundle);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stdout)
    );
    let report: Value = serde_json::from_slice(&ok.stdout).unwrap();
    assert_eq!(
        report["events"], 2,
        "both events about the person, and only those"
    );
    assert_eq!(
        report["validCosignatures"][0],
        format!("{EMPLOYMENT}/jol-witness")
    );
    // Each event's proof is a c2sp.org/tlog-proof.
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&bundle).unwrap()).unwrap();
    assert_eq!(doc["format"], "jol-evidence-bundle/2");
    let proof = doc["events"][0]["proof"].as_str().unwrap();
    assert!(
        proof.starts_with("c2sp.org/tlog-proof@v1\nindex "),
        "{proof}"
    );

    assert_eq!(
        report["logs"],
        json!([{"origin": format!("{MIGRATION}/jol-log"), "treeSize": 3,
            "witnessedBy": [format!("{EMPLOYMENT}/jol-witness")]}])
    );

    // Employment's export of the same person joined to migration's: one bundle, two logs, each
    // event proven in its own, and both named.
    let theirs = fed.path("bundle-employment.json");
    let emp_config = fed.config("employment");
    export(&emp_config, pin, &theirs);
    let mut joined: Value =
        serde_json::from_str(&std::fs::read_to_string(&bundle).unwrap()).unwrap();
    let other: Value = serde_json::from_str(&std::fs::read_to_string(&theirs).unwrap()).unwrap();
    let mine = joined["events"].as_array().unwrap().len();
    joined["events"]
        .as_array_mut()
        .unwrap()
        .extend(other["events"].as_array().unwrap().iter().cloned());
    let both = fed.path("bundle-joined.json");
    std::fs::write(&both, joined.to_string()).unwrap();
    let ok = check(&both);
    let report: Value = serde_json::from_slice(&ok.stdout).unwrap();
    assert!(ok.status.success(), "{report}");
    assert!(report["events"].as_u64().unwrap() > mine as u64, "{report}");
    let origins: Vec<&str> = report["logs"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|l| l["origin"].as_str())
        .collect();
    assert_eq!(
        origins,
        [
            format!("{MIGRATION}/jol-log"),
            format!("{EMPLOYMENT}/jol-log")
        ],
        "{report}"
    );

    // The log's own member co-signing its own checkpoint witnesses nothing: a line by
    // `<migration>/jol-witness` (the member's witness name, its key) added to every proof's
    // checkpoint still verifies, and is not counted as a co-signature.
    let key = jol::event::keys::read_private(&fed.path("migration/keys/sign.pem")).unwrap();
    let member: jol::event::identifiers::MemberId = MIGRATION.parse().unwrap();
    let mut doc: Value = serde_json::from_str(&std::fs::read_to_string(&bundle).unwrap()).unwrap();
    for event in doc["events"].as_array_mut().unwrap() {
        let proof = event["proof"].as_str().unwrap().to_string();
        let at = proof.find(&format!("{MIGRATION}/jol-log\n")).unwrap();
        let note = jol::log::note::Note::parse(&proof.as_bytes()[at..]).unwrap();
        let own = jol::log::checkpoint::cosign(&note, &member, &key);
        event["proof"] = format!("{proof}{}", own.line()).into();
    }
    let self_witnessed = fed.path("self-witnessed.json");
    std::fs::write(&self_witnessed, doc.to_string()).unwrap();
    let ok = check(&self_witnessed);
    let report: Value = serde_json::from_slice(&ok.stdout).unwrap();
    assert!(ok.status.success(), "{report}");
    assert_eq!(
        report["validCosignatures"],
        json!([format!("{EMPLOYMENT}/jol-witness")]),
        "{report}"
    );

    // Change one character of an event's payload inside the bundle.
    let text = std::fs::read_to_string(&bundle).unwrap();
    let mut doc: Value = serde_json::from_str(&text).unwrap();
    let payload = doc["events"][1]["jws"]["payload"]
        .as_str()
        .unwrap()
        .to_string();
    let flipped = flip_char(&payload, 20);
    doc["events"][1]["jws"]["payload"] = flipped.into();
    let tampered = fed.path("tampered.json");
    std::fs::write(&tampered, doc.to_string()).unwrap();
    let bad = check(&tampered);
    assert!(!bad.status.success());
    let report: Value = serde_json::from_slice(&bad.stdout).unwrap();
    let problems = report["problems"].to_string();
    assert!(problems.contains("leaf 2"), "{problems}");
}
