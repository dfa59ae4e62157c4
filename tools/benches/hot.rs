//! Criterion benchmarks of the hot functions: sign (a whole JWS and an SD-JWT), a reader's copy
//! of an SD-JWT, verify (one and in batches), validate each event type, and the Merkle leaf. Run
//! with
//! `cargo bench --bench hot`; `jol bench` measures the same paths end to end.

use std::hint::black_box;
use std::path::Path;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use jol::event::disclosure::Fields;
use jol::event::identifiers::{KeyName, MemberId};
use jol::event::jws::{Jws, Typ};
use jol::event::schema::{EventType, Schemas};
use jol::event::{Event, SignedEvent};
use jol::merkle::{self, Frontier};
use serde_json::Value;

fn member() -> MemberId {
    "central-server/GOV/70000002/employment".parse().unwrap()
}

fn kid() -> KeyName {
    format!("{}#bench", member()).parse().unwrap()
}

fn example(t: EventType) -> Value {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/examples")
        .join(t.as_str())
        .join("valid");
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    files.sort();
    serde_json::from_slice(&std::fs::read(&files[0]).unwrap()).unwrap()
}

fn signed_events(n: usize) -> (ed25519_dalek::SigningKey, Vec<SignedEvent>) {
    let key = jol::event::keys::generate();
    let events = (0..n)
        .map(|i| {
            Event::new(
                member(),
                EventType::EmploymentStatus,
                i as u64 + 1,
                jol_tools::synthetic::sample_data(i),
            )
            .sign(&key, &kid())
        })
        .collect();
    (key, events)
}

fn signatures(c: &mut Criterion) {
    let key = jol::event::keys::generate();
    let event = Event::new(
        member(),
        EventType::EmploymentStatus,
        1,
        jol_tools::synthetic::sample_data(1),
    );
    c.bench_function("sign (serialize + Ed25519 JWS)", |b| {
        b.iter(|| black_box(event.sign(&key, &kid())))
    });
    let signed = event.sign(&key, &kid());
    let public = key.verifying_key();
    c.bench_function("parse JWS + verify (strict)", |b| {
        b.iter(|| {
            let jws = Jws::parse(black_box(signed.bytes()), Typ::Event).unwrap();
            jws.verify(&public).unwrap()
        })
    });
    let jws = Jws::parse(signed.bytes(), Typ::Event).unwrap();
    c.bench_function("verify only (strict)", |b| {
        b.iter(|| jws.verify(&public).unwrap())
    });
    selective(c, &key);

    let (key, events) = signed_events(64);
    let parsed: Vec<Jws> = events
        .iter()
        .map(|s| Jws::parse(s.bytes(), Typ::Event).unwrap())
        .collect();
    let messages: Vec<&[u8]> = parsed.iter().map(|j| j.parts().0).collect();
    let sigs: Vec<ed25519_dalek::Signature> = parsed.iter().map(|j| *j.parts().1).collect();
    let keys = vec![key.verifying_key(); parsed.len()];
    let mut group = c.benchmark_group("batch verify");
    group.throughput(Throughput::Elements(64));
    group.bench_function("64 signatures", |b| {
        b.iter(|| ed25519_dalek::verify_batch(&messages, &sigs, &keys).unwrap())
    });
    group.finish();
}

/// The publisher's SD-JWT of a returnee record (each disclosable field concealed, signed, the
/// stored form with every disclosure), a subscriber's parse of it (before the signature check),
/// and the copy the feed writes for a reader granted none of the disclosable fields.
fn selective(c: &mut Criterion, key: &ed25519_dalek::SigningKey) {
    let schemas = Schemas::load().unwrap();
    let t = EventType::ReturneeRecord;
    let event = Event::new(member(), t, 1, example(t));
    let fields = schemas.disclosable(t);
    c.bench_function("sign as SD-JWT (conceal + Ed25519 + disclosures)", |b| {
        b.iter_batched(
            || event.clone(),
            |e| black_box(e.sign_selective(key, &kid(), fields)),
            BatchSize::SmallInput,
        )
    });
    let signed = event.clone().sign_selective(key, &kid(), fields);
    c.bench_function("parse an SD-JWT event (JWS, envelope, disclosures)", |b| {
        b.iter(|| black_box(SignedEvent::parse(signed.bytes()).unwrap()))
    });
    let none = Fields::Only(Default::default());
    c.bench_function("a reader's copy of an SD-JWT (fewer disclosures)", |b| {
        b.iter(|| black_box(signed.for_reader(&none).map(|copy| copy.len())))
    });
}

fn validation(c: &mut Criterion) {
    let schemas = Schemas::load().unwrap();
    let mut group = c.benchmark_group("validate");
    for t in EventType::ALL {
        let doc = example(t);
        group.bench_function(t.as_str(), |b| {
            b.iter(|| schemas.validate(t, black_box(&doc)).unwrap())
        });
    }
    group.finish();
}

fn storage(c: &mut Criterion) {
    // The durable append itself is measured through the writer (`jol bench store`): only the
    // writer can append to the log.
    let (_, events) = signed_events(1);
    let leaf_event = &events[0];
    c.bench_function(
        "Merkle leaf (compact JWS + leaf hash + frontier append)",
        |b| {
            b.iter_batched(
                Frontier::default,
                |mut frontier| {
                    let entry = jol::event::jws::compact(leaf_event.bytes()).unwrap();
                    black_box(frontier.append(merkle::leaf_hash(&entry)))
                },
                BatchSize::SmallInput,
            )
        },
    );
    c.bench_function(
        "Merkle leaf of an event signed or parsed here (members found then + leaf hash + frontier append)",
        |b| {
            b.iter_batched(
                Frontier::default,
                |mut frontier| {
                    black_box(frontier.append(jol::log::signed_event_leaf(leaf_event)))
                },
                BatchSize::SmallInput,
            )
        },
    );
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(std::time::Duration::from_secs(3)).warm_up_time(std::time::Duration::from_secs(1));
    targets = signatures, validation, storage
}
criterion_main!(benches);
