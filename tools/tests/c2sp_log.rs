//! A node's log in the transparency ecosystem's formats, checked by code we did not write: its
//! checkpoint verifies with Go's `golang.org/x/mod/sumdb/note` against the key `jol log vkey`
//! prints; a witness written from c2sp.org/tlog-witness (`common::witness`) co-signs it through
//! `add-checkpoint`, consistency proofs and a lost witness state (409) included, and the node
//! then serves that co-signature; the root recomputed from the served tiles (c2sp.org/tlog-tiles,
//! `common::tlog`) is the checkpoint's; the routes refuse what an attacker tries; and in a
//! federation every member co-signs the others' checkpoints as a cosignature/v1 witness.

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use common::note::{Checkpoint, Note, Vkey, COSIGNATURE, ED25519};
use common::tools::noteverify;
use common::witness::Witness;
use common::*;

const WITNESS: &str = "witness.test/w1";

/// `jol log vkey --config C`: the node's note verifier key, the only line it prints.
fn log_vkey(config: &Path) -> String {
    let out = jol([
        "log".as_ref(),
        "vkey".as_ref(),
        "--config".as_ref(),
        config.as_os_str(),
    ]);
    assert_eq!(
        out.lines().count(),
        1,
        "more than the vkey on stdout: {out:?}"
    );
    out.trim_end().to_string()
}

/// The cosigner vkey of a member's node: its event key, type 0x04, named `<member>/jol-witness`.
fn witness_vkey(member: &str, log_vkey: &str) -> String {
    Vkey {
        name: format!("{member}/jol-witness"),
        kind: COSIGNATURE,
        key: Vkey::parse(log_vkey).unwrap().key,
    }
    .encode()
}

/// The checkpoint the node serves now, as text, if it serves one.
fn served(addr: SocketAddr) -> Option<String> {
    let a = get(addr, "/api/v1/log/checkpoint");
    (a.status == 200).then(|| String::from_utf8(a.body).expect("a note is UTF-8"))
}

/// Wait (up to 20 s) for a served checkpoint of a size in `sizes` with a signature line by each
/// of `signers`; the note.
fn checkpoint_signed_by(
    addr: SocketAddr,
    sizes: std::ops::RangeInclusive<u64>,
    signers: &[&str],
) -> String {
    let mut last = None;
    let found = eventually(Duration::from_secs(20), || {
        last = served(addr);
        last.as_deref().is_some_and(|text| {
            let Ok(note) = Note::parse(text) else {
                return false;
            };
            Checkpoint::parse(&note.text).is_ok_and(|c| sizes.contains(&c.size))
                && signers
                    .iter()
                    .all(|s| note.signatures.iter().any(|sig| sig.name == *s))
        })
    });
    assert!(
        found.is_some(),
        "no checkpoint of a size in {sizes:?} signed by {signers:?}; last served: {last:?}"
    );
    last.unwrap()
}

/// The root of the node's tree of `size`, from its tile route.
fn root_from_served_tiles(addr: SocketAddr, size: u64) -> [u8; 32] {
    common::tlog::root_from_tiles(size, |path| {
        let a = get(addr, &format!("/api/v1/log/{path}"));
        assert_eq!(
            a.status,
            200,
            "{path}: {}",
            String::from_utf8_lossy(&a.body)
        );
        assert!(
            a.headers
                .to_ascii_lowercase()
                .contains("content-type: application/octet-stream"),
            "{path}: {}",
            a.headers
        );
        Some(a.body)
    })
    .unwrap_or_else(|e| panic!("tiles of size {size}: {e}"))
}

fn publish_employment(addr: SocketAddr, from: usize, n: usize) {
    for i in from..from + n {
        publish(
            addr,
            "employment-status",
            &employment_data(i, &format!("c-{i}")),
        );
    }
}

/// A lone node whose checkpoints go to `witness`.
fn node_witnessed_by(witness: &Witness, dir: &NodeDir) -> Node {
    dir.append_config(&format!(
        "[sync]\ncheckpoint_ms = 50\n[[witnesses]]\nurl = \"{}\"\nvkey = \"{}\"\n",
        witness.url(),
        witness.vkey()
    ));
    dir.start()
}

#[test]
fn a_checkpoint_verifies_with_go_is_cosigned_by_an_outside_witness_and_its_tiles_give_its_root() {
    let dir = NodeDir::new("");
    let vkey = log_vkey(&dir.config);
    let origin = format!("{MEMBER}/jol-log");
    let parsed = Vkey::parse(&vkey).unwrap_or_else(|e| panic!("{vkey}: {e}"));
    assert_eq!(
        (parsed.name.as_str(), parsed.kind),
        (origin.as_str(), ED25519)
    );
    let witness = Witness::start(WITNESS, &[&vkey], "/witness");
    let node = node_witnessed_by(&witness, &dir);

    publish_employment(node.addr, 0, 3);
    let note = checkpoint_signed_by(node.addr, 3..=3, &[&origin, WITNESS]);
    let a = get(node.addr, "/api/v1/log/checkpoint");
    assert!(
        a.headers
            .to_ascii_lowercase()
            .contains("content-type: text/plain; charset=utf-8"),
        "{}",
        a.headers
    );

    // (a) Go verifies the log's signature with the key `jol log vkey` printed.
    let (ok, said) = noteverify(&[&vkey], &note);
    assert!(ok, "{said}\n{note}");
    let text = Note::parse(&note).unwrap().text;
    assert!(said.starts_with(&text), "{said}");
    let checkpoint = Checkpoint::parse(&text).unwrap();
    assert_eq!(checkpoint.origin, origin);
    assert_eq!(checkpoint.extensions.len(), 2, "{text}");
    assert!(
        checkpoint.extensions[0].starts_with("jol-quarantine "),
        "{text}"
    );
    assert!(
        checkpoint.extensions[1].starts_with("jol-access "),
        "{text}"
    );
    // Any byte changed, in the text or a signature, and Go refuses it.
    let root_at = note.find('\n').unwrap() + 3;
    assert!(
        !noteverify(&[&vkey], &flip_char(&note, root_at)).0,
        "a changed root verified"
    );
    let sig_at = note.find("— ").unwrap() + "— ".len() + origin.len() + 10;
    assert!(
        !noteverify(&[&vkey], &flip_char(&note, sig_at)).0,
        "a changed signature verified"
    );
    // Another node's key does not verify it.
    let other = NodeDir::new("");
    assert!(!noteverify(&[&log_vkey(&other.config)], &note).0);

    // (b) The witness was asked through add-checkpoint, cosigned, and the node serves its
    // cosignature, which Go verifies with the witness's vkey.
    let (ok, said) = noteverify(&[&vkey, &witness.vkey()], &note);
    assert!(ok, "{said}\n{note}");
    assert!(said.contains(&format!("verified: {WITNESS}\n")), "{said}");
    let requests = witness.requests();
    assert!(
        requests.iter().all(|r| r.status == 200),
        "the node sent what the witness refused: {requests:#?}"
    );
    for r in &requests {
        let sent = r.submission().expect("an add-checkpoint body");
        assert!(noteverify(&[&vkey], &sent.note).0, "{}", r.body);
    }
    assert!(requests
        .iter()
        .any(|r| r.submission().unwrap().note.starts_with(&text)));

    // (c) The root recomputed from the served tiles is the checkpoint's.
    assert_eq!(root_from_served_tiles(node.addr, 3), checkpoint.root);

    // The log grows: the witness gets a consistency proof from what it cosigned, and checks it.
    publish_employment(node.addr, 3, 4);
    let note = checkpoint_signed_by(node.addr, 7..=7, &[&origin, WITNESS]);
    assert!(noteverify(&[&vkey, &witness.vkey()], &note).0, "{note}");
    let grown = witness
        .requests()
        .into_iter()
        .filter_map(|r| r.submission().filter(|_| r.status == 200))
        .find(|s| s.note.contains(&format!("{origin}\n7\n")))
        .expect("the witness cosigned size 7");
    assert!(
        grown.old > 0 && grown.old < 7 && !grown.proof.is_empty(),
        "{grown:?}"
    );
    let checkpoint = Checkpoint::parse(&Note::parse(&note).unwrap().text).unwrap();
    assert_eq!(root_from_served_tiles(node.addr, 7), checkpoint.root);
    assert_eq!(witness.latest(&origin), Some((7, checkpoint.root)));

    // The witness loses its state: the node's next submission gets 409 naming size 0, and the
    // node submits again from there, as tlog-witness says.
    witness.forget(&origin);
    let before = witness.requests().len();
    publish_employment(node.addr, 7, 2);
    let note = checkpoint_signed_by(node.addr, 9..=9, &[&origin, WITNESS]);
    assert!(noteverify(&[&vkey, &witness.vkey()], &note).0, "{note}");
    assert!(eventually(Duration::from_secs(10), || witness
        .latest(&origin)
        .map(|l| l.0)
        == Some(9))
    .is_some());
    let after: Vec<_> = witness.requests().split_off(before);
    let conflict = after
        .iter()
        .position(|r| r.status == 409)
        .unwrap_or_else(|| panic!("no 409 after the witness forgot: {after:#?}"));
    assert_eq!(after[conflict].answer, "0\n");
    assert!(
        after[conflict..]
            .iter()
            .any(|r| r.status == 200 && r.submission().unwrap().old == 0),
        "{after:#?}"
    );
    node.stop();
}

#[test]
fn the_log_routes_refuse_what_an_attacker_tries() {
    let dir = NodeDir::new("");
    dir.append_config("[sync]\ncheckpoint_ms = 50\n");
    let node = dir.start();
    let origin = format!("{MEMBER}/jol-log");
    publish_employment(node.addr, 0, 3);
    checkpoint_signed_by(node.addr, 3..=3, &[&origin]);
    assert_eq!(get(node.addr, "/api/v1/log/tile/0/000.p/3").status, 200);

    // Without a token, or with one the node never issued: 401.
    for path in ["/api/v1/log/checkpoint", "/api/v1/log/tile/0/000.p/3"] {
        let none = anonymous(node.addr, "GET", path, &[], b"").unwrap();
        assert_eq!(none.status, 401, "{path}");
        let forged = anonymous(
            node.addr,
            "GET",
            path,
            &[("Authorization", "Bearer not-a-token-of-this-node")],
            b"",
        )
        .unwrap();
        assert_eq!(forged.status, 401, "{path}");
    }

    // Paths that are not tiles of the path encoding: refused, with a problem naming it. (A
    // trailing slash is not among them: the local API reads every path without its outer
    // slashes.)
    let malformed = [
        "tile/0/0",
        "tile/0/0000",
        "tile/0/00",
        "tile/00/000.p/3",
        "tile/64/000",
        "tile/-1/000",
        "tile/0/abc",
        "tile/0/x000/000.p/3",
        "tile/0/x/000",
        "tile/0/000.p/0",
        "tile/0/000.p/256",
        "tile/0/000.p/03",
        "tile/0/000.p/",
        "tile/0/000.p",
        "tile/0/000.p/3.p/3",
        "tile/0/../0/000.p/3",
        "tile/0/%30%30%30.p/3",
        "tile/0",
        "tile/",
        "tile/18446744073709551616/000",
        "tile/0/x18446744073709551616/000",
    ];
    // Tiles of the path encoding that the checkpoint's tree does not have.
    let absent = [
        "tile/0/000",
        "tile/0/000.p/4",
        "tile/0/000.p/255",
        "tile/0/001.p/3",
        "tile/0/x001/000.p/3",
        "tile/1/000.p/1",
        "tile/1/000",
        "tile/63/000.p/1",
    ];
    // Entry bundles are not served: events keep their own routes and access log.
    let entries = [
        "tile/entries/000.p/3",
        "tile/entries/000",
        "tile/entries/x001/000",
    ];
    for path in malformed.iter().chain(&absent).chain(&entries) {
        let a = get(node.addr, &format!("/api/v1/log/{path}"));
        let expected: &[u16] = if absent.contains(path) || entries.contains(path) {
            &[404]
        } else {
            &[400, 404]
        };
        assert!(
            expected.contains(&a.status),
            "{path}: {} {}",
            a.status,
            String::from_utf8_lossy(&a.body)
        );
        assert!(
            a.headers
                .to_ascii_lowercase()
                .contains("content-type: application/problem+json"),
            "{path}: {}",
            a.headers
        );
    }
    node.stop();
}

#[test]
fn every_member_cosigns_the_others_checkpoints_as_a_c2sp_witness() {
    let fed = Federation::build_with(
        "checkpoint_ms = 100\nwitness_ms = 100\nmin_backoff_ms = 50\nmax_backoff_ms = 300\nwait_secs = 1",
    );
    let members = [
        ("migration", MIGRATION),
        ("employment", EMPLOYMENT),
        ("education", EDUCATION),
    ];
    let vkeys: Vec<String> = members
        .iter()
        .map(|(agency, _)| log_vkey(&fed.config(agency)))
        .collect();
    let nodes: Vec<Node> = members
        .iter()
        .map(|(agency, _)| fed.start(agency))
        .collect();
    publish(
        nodes[0].addr,
        "returnee-record",
        &returnee(
            "21503199012345",
            &[EMPLOYMENT, EDUCATION],
            &["EMPLOYMENT_SERVICES"],
        ),
    );
    publish(
        nodes[1].addr,
        "employment-status",
        &employment_data(1, "c-1"),
    );
    publish(
        nodes[2].addr,
        "course-offer",
        &example("course-offer", "offered.json"),
    );

    for (i, (agency, member)) in members.iter().enumerate() {
        let origin = format!("{member}/jol-log");
        let others: Vec<(&str, String)> = members
            .iter()
            .zip(&vkeys)
            .filter(|((_, m), _)| m != member)
            .map(|((_, m), vkey)| (*m, witness_vkey(m, vkey)))
            .collect();
        let names: Vec<String> = others
            .iter()
            .map(|(m, _)| format!("{m}/jol-witness"))
            .collect();
        let signers: Vec<&str> = std::iter::once(origin.as_str())
            .chain(names.iter().map(String::as_str))
            .collect();
        let note = checkpoint_signed_by(nodes[i].addr, 1..=u64::MAX, &signers);
        let mut keys = vec![vkeys[i].as_str()];
        keys.extend(others.iter().map(|(_, v)| v.as_str()));
        let (ok, said) = noteverify(&keys, &note);
        assert!(ok, "{agency}: {said}\n{note}");
        for name in &names {
            assert!(
                said.contains(&format!("verified: {name}\n")),
                "{agency}: {said}"
            );
        }
    }
    for node in nodes {
        node.stop();
    }
}
