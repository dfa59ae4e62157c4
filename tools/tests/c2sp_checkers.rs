//! The checkers the C2SP end-to-end test (`c2sp_log.rs`) relies on give the right verdicts,
//! without Jol: Go's `golang.org/x/mod/sumdb/note` (our `noteverify`), the test witness
//! (`common::witness`, from c2sp.org/tlog-witness), the RFC 6962 code and the tile reader
//! (`common::tlog`), checked against the spec texts' examples, RFC 6962's test vectors and each
//! other. A checker that accepted a forged note, a bad proof or wrong tiles would make every
//! test built on it pass for nothing.

mod common;

use common::note::{self, Checkpoint, Note, NoteKey, Vkey, COSIGNATURE, ED25519};
use common::tlog::{self, Hash};
use common::tools::noteverify;
use common::witness::{submission, Witness};

/// The signed-note spec's example: a vkey and the note it verifies.
const SPEC_VKEY: &str = "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k";
const SPEC_NOTE: &str = "This is an example message.\n\n— example.com/foo Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM=\n";

const ORIGIN: &str = "example.test/log";
const PREFIX: &str = "/witness";

/// The leaf hashes of an in-test log of `n` entries.
fn leaves(n: usize) -> Vec<Hash> {
    (0..n)
        .map(|i| tlog::leaf_hash(format!("entry {i}").as_bytes()))
        .collect()
}

/// The checkpoint of the in-test tree over `leaves`, signed by `log`.
fn signed_checkpoint(log: &NoteKey, leaves: &[Hash]) -> String {
    let text = Checkpoint {
        origin: log.name.clone(),
        size: leaves.len() as u64,
        root: tlog::root(leaves),
        extensions: vec!["jol-quarantine 0 47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=".into()],
    }
    .text();
    format!("{text}\n{}", log.sign(&text))
}

/// POST an add-checkpoint body to the witness: status, content type, body.
fn add_checkpoint(witness: &Witness, body: &str) -> (u16, String, String) {
    let a = common::anonymous(
        witness.addr,
        "POST",
        &format!("{}/add-checkpoint", witness.prefix),
        &[],
        body.as_bytes(),
    )
    .unwrap();
    let content_type = a
        .headers
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-type: ")
                .map(str::to_string)
        })
        .unwrap_or_default();
    (
        a.status,
        content_type,
        String::from_utf8_lossy(&a.body).into_owned(),
    )
}

fn log_and_witness() -> (NoteKey, Witness) {
    let log = NoteKey::generate(ORIGIN);
    let witness = Witness::start("witness.test/w1", &[&log.vkey(ED25519).encode()], PREFIX);
    (log, witness)
}

#[test]
fn the_signed_note_example_verifies_with_go_and_with_ours_and_a_changed_byte_does_not() {
    let (ok, said) = noteverify(&[SPEC_VKEY], SPEC_NOTE);
    assert!(ok, "{said}");
    assert_eq!(
        said,
        "This is an example message.\nverified: example.com/foo\n"
    );
    let vkey = Vkey::parse(SPEC_VKEY).unwrap();
    assert_eq!(vkey.encode(), SPEC_VKEY, "our vkey encoding is the spec's");
    let parsed = Note::parse(SPEC_NOTE).unwrap();
    assert_eq!(
        vkey.verifies(&parsed.text, &parsed.signatures[0]),
        Some(true)
    );

    let changed = SPEC_NOTE.replace("example message", "example massage");
    let (ok, said) = noteverify(&[SPEC_VKEY], &changed);
    assert!(!ok, "Go accepted a changed note");
    assert!(said.contains("invalid signature"), "{said}");
    let parsed = Note::parse(&changed).unwrap();
    assert_eq!(
        vkey.verifies(&parsed.text, &parsed.signatures[0]),
        Some(false)
    );

    // A vkey whose key id does not match its name and key is refused by both.
    let wrong_id = SPEC_VKEY.replace("530d903a", "530d903b");
    assert!(!noteverify(&[&wrong_id], SPEC_NOTE).0);
    assert_eq!(Vkey::parse(&wrong_id), Err(note::Malformed::Vkey));
    // A note without the blank line before its signatures is malformed.
    assert!(!noteverify(&[SPEC_VKEY], &SPEC_NOTE.replace("\n\n", "\n")).0);
    assert_eq!(
        Note::parse(&SPEC_NOTE.replace("\n\n", "\n")),
        Err(note::Malformed::NoSignatureBlock)
    );
}

#[test]
fn noteverify_requires_a_good_signature_by_every_key_named_and_checks_cosignatures() {
    let log = NoteKey::generate(ORIGIN);
    let cosigner = NoteKey::generate("witness.test/w1");
    let text = Checkpoint {
        origin: ORIGIN.into(),
        size: 3,
        root: tlog::root(&leaves(3)),
        extensions: vec![],
    }
    .text();
    let log_vkey = log.vkey(ED25519).encode();
    let cosigner_vkey = cosigner.vkey(COSIGNATURE).encode();
    let signed = format!("{text}\n{}", log.sign(&text));
    let cosigned = format!("{signed}{}", cosigner.cosign(&text, 1_700_000_000));

    let (ok, said) = noteverify(&[&log_vkey, &cosigner_vkey], &cosigned);
    assert!(ok, "{said}");
    assert!(said.starts_with(&text), "{said}");
    assert!(said.contains("verified: example.test/log\n"), "{said}");
    assert!(said.contains("verified: witness.test/w1\n"), "{said}");

    // The cosignature is required when its key is named.
    let (ok, said) = noteverify(&[&log_vkey, &cosigner_vkey], &signed);
    assert!(!ok, "accepted without the cosignature");
    assert!(
        said.contains("no verified signature by witness.test/w1"),
        "{said}"
    );
    // A cosignature over another time than the one it carries, or by another key under the
    // witness's name, is refused.
    let forger = NoteKey::generate("witness.test/w1");
    let forged = format!("{signed}{}", forger.cosign(&text, 1_700_000_000));
    assert!(!noteverify(&[&log_vkey, &cosigner_vkey], &forged).0);
    let line = cosigner.cosign(&text, 1_700_000_000);
    let (name, b64) = line.trim_end().rsplit_once(' ').unwrap();
    let mut bytes = base64_decode(b64);
    bytes[4 + 7] ^= 1; // the timestamp's last byte
    let retimed = format!("{signed}{name} {}\n", base64_encode(&bytes));
    let (ok, said) = noteverify(&[&log_vkey, &cosigner_vkey], &retimed);
    assert!(!ok, "accepted a cosignature with another time");
    assert!(said.contains("invalid signature"), "{said}");
    // The cosigner's key as a note key (type 0x01) does not verify a cosignature, and the log's
    // signature is not a cosignature.
    let as_note_key = cosigner.vkey(ED25519).encode();
    assert!(!noteverify(&[&log_vkey, &as_note_key], &cosigned).0);
    let log_as_cosigner = log.vkey(COSIGNATURE).encode();
    assert!(!noteverify(&[&log_as_cosigner], &cosigned).0);
}

fn base64_decode(text: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .unwrap()
}

fn base64_encode(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// The Merkle tree hashes of RFC 6962's test data (the certificate-transparency reference
/// code's eight leaves), by tree size 1..=8.
const RFC6962_ROOTS: [&str; 8] = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
];

#[test]
fn the_merkle_code_gives_rfc_6962s_roots_and_its_consistency_proofs_verify_only_untouched() {
    let data: [&[u8]; 8] = [
        b"",
        b"\x00",
        b"\x10",
        b"\x20\x21",
        b"\x30\x31",
        b"\x40\x41\x42\x43",
        b"\x50\x51\x52\x53\x54\x55\x56\x57",
        b"\x60\x61\x62\x63\x64\x65\x66\x67\x68\x69\x6a\x6b\x6c\x6d\x6e\x6f",
    ];
    let rfc: Vec<Hash> = data.iter().map(|d| tlog::leaf_hash(d)).collect();
    assert_eq!(
        note::hex(&tlog::empty_root()),
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
    for (n, expected) in RFC6962_ROOTS.iter().enumerate() {
        assert_eq!(
            note::hex(&tlog::root(&rfc[..=n])),
            *expected,
            "size {}",
            n + 1
        );
    }

    let all = leaves(40);
    for n in 1..=all.len() {
        let new_root = tlog::root(&all[..n]);
        for m in 1..=n {
            let old_root = tlog::root(&all[..m]);
            let proof = tlog::consistency_proof(m, &all[..n]);
            let (m, n64) = (m as u64, n as u64);
            assert!(
                tlog::verify_consistency(m, n64, &old_root, &new_root, &proof),
                "{m} → {n}"
            );
            for i in 0..proof.len() {
                let mut bad = proof.clone();
                bad[i][0] ^= 1;
                assert!(
                    !tlog::verify_consistency(m, n64, &old_root, &new_root, &bad),
                    "{m} → {n}: element {i} changed"
                );
            }
            let shorter = &proof[..proof.len().saturating_sub(1)];
            if !proof.is_empty() {
                assert!(!tlog::verify_consistency(
                    m, n64, &old_root, &new_root, shorter
                ));
            }
            let mut longer = proof.clone();
            longer.push(new_root);
            assert!(!tlog::verify_consistency(
                m, n64, &old_root, &new_root, &longer
            ));
            if m < n64 {
                assert!(!tlog::verify_consistency(
                    m + 1,
                    n64,
                    &old_root,
                    &new_root,
                    &proof
                ));
                assert!(!tlog::verify_consistency(
                    m, n64, &new_root, &new_root, &proof
                ));
            }
        }
    }
}

#[test]
fn tile_paths_and_tiles_are_as_tlog_tiles_says_and_give_back_the_root() {
    assert_eq!(tlog::tile_index(1234067), "x001/x234/067");
    assert_eq!(tlog::tile_index(0), "000");
    assert_eq!(tlog::tile_index(1000), "x001/000");
    assert_eq!(tlog::tile_path(0, 1234067, 256), "tile/0/x001/x234/067");
    assert_eq!(tlog::tile_path(2, 5, 17), "tile/2/005.p/17");

    // The spec's example: a tree of 70,000 has 273 full level-0 tiles, a partial one of width
    // 112, one full level-1 tile, a partial one of width 17, and a partial level-2 tile of 1.
    let big = leaves(70_000);
    let tiles = tlog::tiles_of(&big);
    let count = |prefix: &str| tiles.keys().filter(|p| p.starts_with(prefix)).count();
    assert_eq!(count("tile/0/"), 274);
    assert!(tiles.contains_key("tile/0/272") && tiles.contains_key("tile/0/273.p/112"));
    assert_eq!(count("tile/1/"), 2);
    assert!(tiles.contains_key("tile/1/000") && tiles.contains_key("tile/1/001.p/17"));
    assert_eq!(count("tile/2/"), 1);
    assert!(tiles.contains_key("tile/2/000.p/1"));
    assert_eq!(tiles.len(), 277);
    // A tree of 256: a full level-0 tile and a partial level-1 tile of width 1.
    let mut of_256: Vec<String> = tlog::tiles_of(&big[..256]).into_keys().collect();
    of_256.sort();
    assert_eq!(of_256, ["tile/0/000", "tile/1/000.p/1"]);

    let from = |tiles: &std::collections::HashMap<String, Vec<u8>>, size: u64| {
        tlog::root_from_tiles(size, |path| tiles.get(path).cloned())
    };
    assert_eq!(from(&tiles, 70_000), Ok(tlog::root(&big)));
    for size in [
        0, 1, 2, 3, 7, 255, 256, 257, 511, 512, 513, 4_097, 65_535, 65_536, 65_537,
    ] {
        let tree = &big[..size];
        assert_eq!(
            from(&tlog::tiles_of(tree), size as u64),
            Ok(tlog::root(tree)),
            "{size}"
        );
    }

    // Served wrong: a changed hash gives another root, a short tile or a missing one is named.
    let mut changed = tiles.clone();
    changed.get_mut("tile/0/273.p/112").unwrap()[5] ^= 1;
    assert_ne!(from(&changed, 70_000), Ok(tlog::root(&big)));
    let mut short = tiles.clone();
    short.get_mut("tile/1/001.p/17").unwrap().truncate(32 * 16);
    assert_eq!(
        from(&short, 70_000),
        Err(tlog::TileError::WrongLength {
            path: "tile/1/001.p/17".into(),
            len: 32 * 16,
            expected: 32 * 17
        })
    );
    let mut missing = tiles.clone();
    missing.remove("tile/2/000.p/1");
    assert_eq!(
        from(&missing, 70_000),
        Err(tlog::TileError::Missing("tile/2/000.p/1".into()))
    );
}

#[test]
fn the_witness_cosigns_a_consistent_log_and_go_verifies_its_cosignature() {
    let (log, witness) = log_and_witness();
    let all = leaves(20);

    let first = signed_checkpoint(&log, &all[..5]);
    let (status, content_type, body) = add_checkpoint(&witness, &submission(0, &[], &first));
    assert_eq!(status, 200, "{body}");
    assert_eq!(content_type, "text/plain; charset=utf-8");
    assert!(
        body.starts_with("— witness.test/w1 ") && body.ends_with('\n'),
        "{body}"
    );
    let log_vkey = log.vkey(ED25519).encode();
    let (ok, said) = noteverify(&[&log_vkey, &witness.vkey()], &format!("{first}{body}"));
    assert!(ok, "{said}");
    assert!(said.contains("verified: witness.test/w1\n"), "{said}");
    let cosigned = Note::parse(&format!("{first}{body}")).unwrap();
    let witness_key = Vkey::parse(&witness.vkey()).unwrap();
    assert_eq!(
        witness_key.verifies(&cosigned.text, &cosigned.signatures[1]),
        Some(true)
    );

    let second = signed_checkpoint(&log, &all[..13]);
    let proof = tlog::consistency_proof(5, &all[..13]);
    let (status, _, body) = add_checkpoint(&witness, &submission(5, &proof, &second));
    assert_eq!(status, 200, "{body}");
    assert!(noteverify(&[&log_vkey, &witness.vkey()], &format!("{second}{body}")).0);
    assert_eq!(witness.latest(ORIGIN), Some((13, tlog::root(&all[..13]))));
    // The same checkpoint again, from its own size, with no proof: cosigned again.
    let (status, _, _) = add_checkpoint(&witness, &submission(13, &[], &second));
    assert_eq!(status, 200);

    let requests = witness.requests();
    assert_eq!(requests.len(), 3);
    assert_eq!(requests[1].path, "/witness/add-checkpoint");
    assert!(requests[1].body.starts_with("old 5\n"));
    assert!(requests[1].body.ends_with(&second));
    assert_eq!(requests[1].status, 200);
}

#[test]
fn the_witness_answers_every_refusal_with_the_status_tlog_witness_gives_it() {
    let (log, witness) = log_and_witness();
    let all = leaves(20);
    let at_5 = signed_checkpoint(&log, &all[..5]);
    let at_9 = signed_checkpoint(&log, &all[..9]);
    let proof = tlog::consistency_proof(5, &all[..9]);

    // Nothing cosigned yet: old size 5 conflicts with 0.
    let (status, content_type, body) = add_checkpoint(&witness, &submission(5, &proof, &at_9));
    assert_eq!(
        (status, content_type.as_str(), body.as_str()),
        (409, "text/x.tlog.size", "0\n")
    );
    // Old size 0 with a proof: the empty tree needs none.
    assert_eq!(
        add_checkpoint(&witness, &submission(0, &proof, &at_5)).0,
        422
    );
    assert_eq!(add_checkpoint(&witness, &submission(0, &[], &at_5)).0, 200);

    // A tampered proof.
    let mut bad = proof.clone();
    bad[0][31] ^= 1;
    assert_eq!(add_checkpoint(&witness, &submission(5, &bad, &at_9)).0, 422);
    // A proof to another tree than the checkpoint's.
    let other: Vec<Hash> = leaves(9).iter().map(|h| tlog::node_hash(h, h)).collect();
    let forked = signed_checkpoint(&log, &other);
    assert_eq!(
        add_checkpoint(&witness, &submission(5, &proof, &forked)).0,
        422
    );
    // Same size, other root: 409 ("If they don't match, the witness MUST respond with a 409
    // Conflict"), and not as a size to retry from.
    let other_5 = signed_checkpoint(&log, &other[..5]);
    let (status, content_type, _) = add_checkpoint(&witness, &submission(5, &[], &other_5));
    assert_eq!(status, 409);
    assert_ne!(content_type, "text/x.tlog.size");
    // Old size above the checkpoint's.
    assert_eq!(add_checkpoint(&witness, &submission(9, &[], &at_5)).0, 400);
    // A wrong old size: 409 naming the size the witness holds.
    let (status, content_type, body) = add_checkpoint(&witness, &submission(3, &proof, &at_9));
    assert_eq!(
        (status, content_type.as_str(), body.as_str()),
        (409, "text/x.tlog.size", "5\n")
    );
    // None of the refusals moved the witness.
    assert_eq!(witness.latest(ORIGIN), Some((5, tlog::root(&all[..5]))));

    // Unknown origin: 404.
    let stranger = NoteKey::generate("stranger.test/log");
    let theirs = signed_checkpoint(&stranger, &all[..5]);
    assert_eq!(
        add_checkpoint(&witness, &submission(0, &[], &theirs)).0,
        404
    );
    // The log's origin, signed by another key: no trusted signature, 403.
    let impostor = NoteKey::generate(ORIGIN);
    let forged = signed_checkpoint(&impostor, &all[..9]);
    assert_eq!(
        add_checkpoint(&witness, &submission(5, &proof, &forged)).0,
        403
    );
    // The log's key, but the text changed after signing: 403.
    let altered = at_9.replacen("\n9\n", "\n10\n", 1);
    assert_eq!(
        add_checkpoint(&witness, &submission(5, &proof, &altered)).0,
        403
    );
    // The log's good signature beside a bad one by the same key: 403.
    let (text, signature) = at_9.split_once("\n\n").unwrap();
    let (name, b64) = signature.trim_end().rsplit_once(' ').unwrap();
    let mut bytes = base64_decode(b64);
    bytes[10] ^= 1; // in the signature, after the key id
    let mixed = format!("{text}\n\n{signature}{name} {}\n", base64_encode(&bytes));
    assert_eq!(
        add_checkpoint(&witness, &submission(5, &proof, &mixed)).0,
        403
    );
    // Malformed bodies: 400.
    for body in [
        "".to_string(),
        at_9.clone(),
        submission(5, &proof, &at_9).replacen("old 5", "old 05", 1),
        submission(5, &proof, &at_9).replacen("old 5", "old -5", 1),
        submission(5, &proof, &at_9).replacen("old ", "size ", 1),
        submission(5, &proof, "not a note\n"),
        submission(5, &vec![all[0]; 64], &at_9),
    ] {
        assert_eq!(add_checkpoint(&witness, &body).0, 400, "{body:?}");
    }
    // A size-0 checkpoint needs the empty tree's root.
    let fresh = NoteKey::generate("fresh.test/log");
    let witness = Witness::start("witness.test/w2", &[&fresh.vkey(ED25519).encode()], PREFIX);
    let zero = Checkpoint {
        origin: fresh.name.clone(),
        size: 0,
        root: all[0],
        extensions: vec![],
    }
    .text();
    let zero = format!("{zero}\n{}", fresh.sign(&zero));
    assert_eq!(add_checkpoint(&witness, &submission(0, &[], &zero)).0, 422);
    assert_eq!(
        add_checkpoint(
            &witness,
            &submission(0, &[], &signed_checkpoint(&fresh, &[]))
        )
        .0,
        200
    );
    // Anything but POST <prefix>/add-checkpoint.
    let get = common::anonymous(witness.addr, "GET", "/witness/add-checkpoint", &[], b"").unwrap();
    assert_eq!(get.status, 405);
    let elsewhere = common::anonymous(witness.addr, "POST", "/add-checkpoint", &[], b"").unwrap();
    assert_eq!(elsewhere.status, 404);
}

#[test]
fn concurrent_submissions_from_one_old_size_get_one_cosignature_and_conflicts() {
    let (log, witness) = log_and_witness();
    let all = leaves(30);
    let bodies: Vec<String> = (1..=12)
        .map(|n| submission(0, &[], &signed_checkpoint(&log, &all[..n])))
        .collect();
    let statuses: Vec<u16> = std::thread::scope(|s| {
        let witness = &witness;
        let handles: Vec<_> = bodies
            .iter()
            .map(|body| s.spawn(move || add_checkpoint(witness, body).0))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 409).count(),
        11,
        "{statuses:?}"
    );
    let (size, root) = witness.latest(ORIGIN).unwrap();
    assert_eq!(root, tlog::root(&all[..size as usize]));
}
