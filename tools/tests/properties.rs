//! Property tests (proptest): the event codec, the schema layer and the Merkle log.
//!
//! - Codec: any event signs, parses back to itself and verifies; any one byte changed in the
//!   JWS is refused (by the parser or by the signature).
//! - Schemas: documents generated from the schemas (every example, with its enum-valued and
//!   free-text fields drawn from what the schema allows) are accepted; a document with one field
//!   given the wrong type, or an unknown field added, is refused with a pointer to that field.
//! - Merkle: for any tree size and indexes, inclusion and consistency proofs from the store's
//!   algorithm verify, the frontier agrees with the full tree, and a changed leaf is caught.

mod common;

use std::path::Path;

use jol::event::identifiers::KeyName;
use jol::event::schema::{EventType, Schemas};
use jol::event::{Event, SignedEvent};
use jol::merkle::{self, MemoryTree};
use proptest::prelude::*;
use serde_json::{json, Value};

const MEMBER: &str = "central-server/GOV/70000001/migration";

/// `default` cases per property, or `PROPTEST_CASES` for a longer run.
fn cases(default: u32) -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default);
    ProptestConfig::with_cases(cases)
}

fn json_leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<i64>().prop_map(Value::from),
        any::<bool>().prop_map(Value::from),
        ".{0,40}".prop_map(Value::from),
        Just(Value::Null),
    ]
}

fn json_data() -> impl Strategy<Value = Value> {
    json_leaf()
        .prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
                prop::collection::btree_map("[a-zA-Z]{1,8}", inner, 0..4)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
        .prop_map(|v| json!({"person": {"pin": "21503199012345"}, "extra": v}))
}

proptest! {
    #![proptest_config(cases(200))]

    #[test]
    fn an_event_round_trips_and_any_changed_byte_is_refused(
        data in json_data(),
        sequence in 1u64..u64::MAX / 2,
        seed in any::<[u8; 32]>(),
        flip_at in any::<prop::sample::Index>(),
        flip_bits in 1u8..=255,
    ) {
        let key = ed25519_dalek::SigningKey::from_bytes(&seed);
        let kid: KeyName = format!("{MEMBER}#k1").parse().unwrap();
        let event = Event::new(MEMBER.parse().unwrap(), EventType::EmploymentStatus, sequence, data);
        let signed = event.sign(&key, &kid);
        let (back, jws) = SignedEvent::parse(signed.bytes()).unwrap();
        prop_assert_eq!(back.event().id, event.id);
        prop_assert_eq!(&back.event().sequence, &sequence.to_string());
        prop_assert_eq!(&back.event().data, &event.data);
        prop_assert!(jws.verify(&key.verifying_key()).is_ok());

        let mut bytes = signed.bytes().to_vec();
        let i = flip_at.index(bytes.len());
        bytes[i] ^= flip_bits;
        let refused = match SignedEvent::parse(&bytes) {
            Err(_) => true,
            Ok((_, jws)) => jws.verify(&key.verifying_key()).is_err(),
        };
        prop_assert!(refused, "byte {} changed and still accepted", i);
    }
}

// ---- schemas ----

/// The schema node at `pointer` (JSON pointer into a document), following `properties`,
/// `items`, `allOf` and `$ref`s into the common definitions.
fn schema_at<'a>(schema: &'a Value, common: &'a Value, pointer: &[String]) -> Option<&'a Value> {
    let mut node = resolve(schema, common, schema)?;
    for part in pointer {
        node = resolve(schema, common, node)?;
        let next = node
            .get("properties")
            .and_then(|p| p.get(part))
            .or_else(|| part.parse::<usize>().ok().and(node.get("items")))
            .or_else(|| {
                node.get("allOf")?.as_array()?.iter().find_map(|b| {
                    resolve(schema, common, b)?
                        .get("properties")
                        .and_then(|p| p.get(part))
                })
            })?;
        node = next;
    }
    resolve(schema, common, node)
}

fn resolve<'a>(schema: &'a Value, common: &'a Value, node: &'a Value) -> Option<&'a Value> {
    match node.get("$ref").and_then(Value::as_str) {
        None => Some(node),
        Some(r) => {
            let (doc, at) = match r.split_once('#') {
                Some(("common.v1.json", at)) => (common, at),
                Some(("", at)) => (common, at), // refs inside common.v1.json
                _ => (schema, r),
            };
            let target = doc.pointer(at)?;
            resolve(schema, common, target)
        }
    }
}

/// Every leaf of a document with its path.
fn leaves(v: &Value, path: &mut Vec<String>, out: &mut Vec<(Vec<String>, Value)>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                path.push(k.clone());
                leaves(x, path, out);
                path.pop();
            }
        }
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                path.push(i.to_string());
                leaves(x, path, out);
                path.pop();
            }
        }
        leaf => out.push((path.clone(), leaf.clone())),
    }
}

/// Every object of a document with its path.
fn objects(v: &Value, path: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
    match v {
        Value::Object(m) => {
            out.push(path.clone());
            for (k, x) in m {
                path.push(k.clone());
                objects(x, path, out);
                path.pop();
            }
        }
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                path.push(i.to_string());
                objects(x, path, out);
                path.pop();
            }
        }
        _ => {}
    }
}

fn pointer(path: &[String]) -> String {
    path.iter().map(|p| format!("/{p}")).collect()
}

/// Fields the generator leaves as the example has them: every property whose value a
/// conditional looks at or constrains (named under `properties` inside `if`, `then`, `else`), and sex and birth date (they
/// must agree with the PIN, `jolPinAgrees`).
fn steering(schemas: &[&Value]) -> std::collections::BTreeSet<String> {
    fn names(v: &Value, out: &mut std::collections::BTreeSet<String>) {
        match v {
            Value::Object(m) => {
                if let Some(Value::Object(props)) = m.get("properties") {
                    out.extend(props.keys().cloned());
                }
                m.values().for_each(|x| names(x, out));
            }
            Value::Array(a) => a.iter().for_each(|x| names(x, out)),
            _ => {}
        }
    }
    fn walk(v: &Value, out: &mut std::collections::BTreeSet<String>) {
        match v {
            Value::Object(m) => {
                for (k, x) in m {
                    if ["if", "then", "else"].contains(&k.as_str()) {
                        names(x, out);
                    } else {
                        walk(x, out);
                    }
                }
            }
            Value::Array(a) => a.iter().for_each(|x| walk(x, out)),
            _ => {}
        }
    }
    let mut out: std::collections::BTreeSet<String> = ["sex", "birthDate"].map(String::from).into();
    schemas.iter().for_each(|s| walk(s, &mut out));
    out
}

struct Corpus {
    schemas: std::sync::Arc<Schemas>,
    docs: Vec<(EventType, Value, Value)>,
    common: Value,
    steering: std::collections::BTreeSet<String>,
}

fn corpus() -> &'static Corpus {
    static CORPUS: std::sync::OnceLock<Corpus> = std::sync::OnceLock::new();
    CORPUS.get_or_init(|| {
        let root = common::repo();
        let read =
            |p: &Path| -> Value { serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap() };
        let mut docs = Vec::new();
        for t in EventType::ALL {
            let schema = read(&root.join(format!("schemas/{}.v1.json", t.as_str())));
            let dir = root.join("tests/examples").join(t.as_str()).join("valid");
            let mut files: Vec<_> = std::fs::read_dir(dir)
                .unwrap()
                .flatten()
                .map(|e| e.path())
                .collect();
            files.sort();
            for f in files {
                docs.push((t, read(&f), schema.clone()));
            }
        }
        let common = read(&root.join("schemas/common.v1.json"));
        let mut all: Vec<&Value> = docs.iter().map(|(_, _, s)| s).collect();
        all.push(&common);
        let steering = steering(&all);
        Corpus {
            schemas: Schemas::load().unwrap(),
            docs,
            common,
            steering,
        }
    })
}

/// A document generated from one example and its schema: each enum-valued leaf (outside the
/// steering fields) takes a value the schema lists, each free-text field a string of a length
/// the schema allows.
fn generated(
    doc_index: usize,
    picks: &[(prop::sample::Index, String)],
) -> (EventType, Value, Vec<String>) {
    let c = corpus();
    let (t, doc, schema) = &c.docs[doc_index % c.docs.len()];
    let mut doc = doc.clone();
    let mut all = Vec::new();
    leaves(&doc, &mut Vec::new(), &mut all);
    let mut changed = Vec::new();
    for ((path, _), (pick, text)) in all.iter().zip(picks.iter().cycle()) {
        let name = path.iter().rev().find(|p| p.parse::<usize>().is_err());
        if name.is_some_and(|n| c.steering.contains(n)) {
            continue;
        }
        let Some(node) = schema_at(schema, &c.common, path) else {
            continue;
        };
        let in_unique_array = path.last().is_some_and(|p| p.parse::<usize>().is_ok())
            && schema_at(schema, &c.common, &path[..path.len() - 1])
                .is_some_and(|a| a.get("uniqueItems") == Some(&json!(true)));
        if in_unique_array {
            continue;
        }
        let new = if let Some(options) = node.get("enum").and_then(Value::as_array) {
            options[pick.index(options.len())].clone()
        } else if node.get("type") == Some(&json!("string"))
            && node.get("pattern").is_none()
            && node.get("format").is_none()
        {
            let min = node.get("minLength").and_then(Value::as_u64).unwrap_or(0) as usize;
            let max = node.get("maxLength").and_then(Value::as_u64).unwrap_or(60) as usize;
            let mut s: String = text.chars().take(max).collect();
            while s.chars().count() < min {
                s.push('x');
            }
            Value::from(s)
        } else {
            continue;
        };
        *doc.pointer_mut(&pointer(path)).unwrap() = new;
        changed.push(pointer(path));
    }
    (*t, doc, changed)
}

proptest! {
    #![proptest_config(cases(300))]

    #[test]
    fn documents_generated_from_the_schemas_are_accepted(
        doc in 0usize..64,
        picks in prop::collection::vec((any::<prop::sample::Index>(), "\\PC{0,80}"), 1..16),
    ) {
        let (t, doc, changed) = generated(doc, &picks);
        let verdict = corpus().schemas.validate(t, &doc);
        prop_assert!(verdict.is_ok(), "{:?} after changing {:?}: {:?}", doc, changed, verdict);
    }

    #[test]
    fn a_field_of_the_wrong_type_is_refused_at_its_pointer(
        doc in 0usize..64,
        which in any::<prop::sample::Index>(),
    ) {
        let c = corpus();
        let (t, doc, _) = &c.docs[doc % c.docs.len()];
        let mut all = Vec::new();
        leaves(doc, &mut Vec::new(), &mut all);
        let (path, old) = &all[which.index(all.len())];
        let wrong = match old {
            Value::String(_) => json!(12345),
            Value::Number(_) => json!("12345"),
            Value::Bool(_) => json!("yes"),
            _ => json!([1]),
        };
        let mut bad = doc.clone();
        *bad.pointer_mut(&pointer(path)).unwrap() = wrong;
        let errors = c.schemas.validate(*t, &bad).expect_err("a mistyped field was accepted");
        let at = pointer(path);
        prop_assert!(
            errors.iter().any(|e| e.pointer == at),
            "mutated {} but errors point at {:?}", at, errors.iter().map(|e| &e.pointer).collect::<Vec<_>>()
        );
    }

    #[test]
    fn an_unknown_field_is_refused_at_its_object(
        doc in 0usize..64,
        which in any::<prop::sample::Index>(),
        name in "[a-z]{1,12}",
    ) {
        let c = corpus();
        let (t, doc, _) = &c.docs[doc % c.docs.len()];
        let mut all = Vec::new();
        objects(doc, &mut Vec::new(), &mut all);
        let path = &all[which.index(all.len())];
        let mut bad = doc.clone();
        let object = bad.pointer_mut(&pointer(path)).unwrap().as_object_mut().unwrap();
        prop_assume!(!object.contains_key(&format!("zz{name}")));
        object.insert(format!("zz{name}"), json!(1));
        let errors = c.schemas.validate(*t, &bad).expect_err("an unknown field was accepted");
        let at = pointer(path);
        let field = format!("{at}/zz{name}");
        prop_assert!(
            errors.iter().any(|e| e.pointer == at || e.pointer == field),
            "added {} but errors point at {:?}", field, errors.iter().map(|e| &e.pointer).collect::<Vec<_>>()
        );
    }
}

// ---- Merkle ----

fn leaf(i: u64) -> merkle::Hash {
    merkle::leaf_hash(&i.to_be_bytes())
}

proptest! {
    #![proptest_config(cases(300))]

    #[test]
    fn proofs_verify_and_a_changed_leaf_is_caught(
        size in 1u64..3000,
        i in any::<prop::sample::Index>(),
        m in any::<prop::sample::Index>(),
    ) {
        let tree = MemoryTree::new((0..size).map(leaf));
        let root = merkle::root(&tree, size).unwrap();
        let index = i.index(size as usize) as u64;
        let proof = merkle::inclusion_proof(&tree, index, size).unwrap();
        prop_assert!(merkle::verify_inclusion(&leaf(index), index, size, &proof, &root));
        prop_assert!(!merkle::verify_inclusion(&leaf(index + size), index, size, &proof, &root));

        let first = m.index(size as usize + 1) as u64;
        let first_root = merkle::root(&tree, first).unwrap();
        let proof = merkle::consistency_proof(&tree, first, size).unwrap();
        prop_assert!(merkle::verify_consistency(first, size, &first_root, &root, &proof));
        if first > 0 && first < size {
            // A different history of the first `first` leaves is not a prefix.
            let other = MemoryTree::new((0..first).map(|j| leaf(j + 1_000_000)));
            let other_root = merkle::root(&other, first).unwrap();
            prop_assert!(!merkle::verify_consistency(first, size, &other_root, &root, &proof));
        }

        let mut frontier = merkle::Frontier::default();
        for j in 0..size {
            frontier.append(leaf(j));
        }
        prop_assert_eq!(frontier.root(), root);
    }
}

/// The generator is not vacuous: across the examples it varies many fields.
#[test]
fn the_generator_varies_many_fields() {
    use proptest::strategy::ValueTree;
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let picks: Vec<_> = (0..5)
        .map(|_| {
            let i = any::<prop::sample::Index>()
                .new_tree(&mut runner)
                .unwrap()
                .current();
            (i, "text".to_string())
        })
        .collect();
    let mut varied = std::collections::BTreeSet::new();
    for d in 0..corpus().docs.len() {
        varied.extend(generated(d, &picks).2);
    }
    assert!(varied.len() >= 20, "only {varied:?}");
}
