//! The in-process bounds: each cost on its own (parse + validate, sign, verify, durable append),
//! the publish path without HTTP, and the store engine alone.

use std::sync::Arc;
use std::time::Instant;

use anyhow::Result;
use serde_json::Value;

use super::{dir_size, figure, member, peak_rss_mib, per_event_us, BenchArgs, Figure};
use crate::synthetic::sample_data;
use jol::event::identifiers::KeyName;
use jol::event::keys;
use jol::event::schema::{EventType, Schemas};
use jol::event::{Event, SignedEvent};
use jol::store::{Append, Store, WriteBatch};
use jol::write::{Draft, Publisher, Signer};

pub(super) async fn limit(args: &BenchArgs) -> Result<Vec<Figure>> {
    let n = args.events.max(1000);
    let schemas = Schemas::load()?;
    let key = keys::generate();
    let kid = KeyName::new(member(), "bench")?;
    let bodies: Vec<Vec<u8>> = (0..n.min(10_000))
        .map(|i| serde_json::to_vec(&sample_data(i)).unwrap_or_default())
        .collect();
    let mut figures = Vec::new();

    let t = Instant::now();
    for b in &bodies {
        let v: Value = serde_json::from_slice(b)?;
        let _ = schemas.validate(EventType::EmploymentStatus, &v);
    }
    figures.push(figure(
        "parse + validate (employment-status)",
        per_event_us(t.elapsed(), bodies.len()),
        "µs/event",
    ));

    let events: Vec<Event> = bodies
        .iter()
        .enumerate()
        .map(|(i, b)| {
            Event::new(
                member(),
                EventType::EmploymentStatus,
                i as u64 + 1,
                serde_json::from_slice(b).unwrap_or_default(),
            )
        })
        .collect();
    let t = Instant::now();
    let signed: Vec<SignedEvent> = events.iter().map(|e| e.sign(&key, &kid)).collect();
    figures.push(figure(
        "serialize + sign (Ed25519 JWS)",
        per_event_us(t.elapsed(), signed.len()),
        "µs/event",
    ));

    let t = Instant::now();
    for s in &signed {
        let (_, jws) = SignedEvent::parse(s.bytes())?;
        jws.verify(&key.verifying_key())?;
    }
    figures.push(figure(
        "parse + verify (strict)",
        per_event_us(t.elapsed(), signed.len()),
        "µs/event",
    ));

    let dir = tempfile::tempdir()?;
    let store = Store::open_with(&dir.path().join("append"), args.store)?;
    let t = Instant::now();
    durable_append(&store, &signed, false)?;
    figures.push(figure(
        "durable append, 256 events per flush",
        per_event_us(t.elapsed(), signed.len()),
        "µs/event",
    ));
    let t = Instant::now();
    durable_append(
        &Store::open_with(&dir.path().join("append-log"), args.store)?,
        &signed,
        true,
    )?;
    figures.push(figure(
        "  the same with the Merkle log kept",
        per_event_us(t.elapsed(), signed.len()),
        "µs/event",
    ));
    let t = Instant::now();
    for n in 0..200u64 {
        let mut batch = WriteBatch::default();
        let s = &signed[0];
        // Positions past the appended range, one event per flush.
        let pos = 1_000_000 + n;
        batch.append(Append {
            position: pos,
            source: &s.event().source,
            sequence: pos,
            id: uuid::Uuid::now_v7(),
            jws: s.bytes(),
            idempotency: None,
        });
        store.apply(batch)?;
        store.flush()?;
    }
    figures.push(figure(
        "one append + flush (fsync)",
        per_event_us(t.elapsed(), 200),
        "µs",
    ));

    // The publish path without HTTP: concurrent tasks, group commit.
    let signer = Signer {
        member: member(),
        kid,
        key,
        max_event_bytes: jol::budget::DEFAULT_MAX_EVENT_BYTES,
    };
    let (publisher, _writer) = Publisher::start(
        Store::open_with(&dir.path().join("publish"), args.store)?,
        schemas,
        signer,
        Arc::default(),
        None,
    )?;
    let bodies = Arc::new(bodies);
    let t = Instant::now();
    let tasks: Vec<_> = (0..args.clients.max(1))
        .map(|c| {
            let (p, bodies, clients) = (publisher.clone(), bodies.clone(), args.clients.max(1));
            tokio::spawn(async move {
                let mut i = c;
                while i < n {
                    let data: Value =
                        serde_json::from_slice(&bodies[i % bodies.len()]).unwrap_or_default();
                    let _ = p
                        .publish(Draft {
                            event_type: EventType::EmploymentStatus,
                            data,
                            idempotency_key: None,
                        })
                        .await;
                    i += clients;
                }
            })
        })
        .collect();
    for t in tasks {
        t.await?;
    }
    let elapsed = t.elapsed();
    figures.push(figure(
        format!("publish path in-process, {} tasks (limit)", args.clients),
        n as f64 / elapsed.as_secs_f64(),
        "events/s",
    ));
    Ok(figures)
}

/// The store engine alone, as a node uses it: appends with the Merkle log, a person view
/// rewritten with every event (the churn), then every view rewritten five times more, and a
/// reopen.
pub(super) fn store(args: &BenchArgs) -> Result<Vec<Figure>> {
    let n = args.events.max(1000);
    let key = keys::generate();
    let kid = KeyName::new(member(), "bench")?;
    let signed: Vec<SignedEvent> = (0..n)
        .map(|i| {
            Event::new(
                member(),
                EventType::EmploymentStatus,
                i as u64 + 1,
                sample_data(i),
            )
            .sign(&key, &kid)
        })
        .collect();
    let raw: u64 = signed.iter().map(|s| s.bytes().len() as u64).sum();
    let persons = (n / 5).max(1);
    let view = "v".repeat(600);
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("store");
    let store = Store::open_with(&path, args.store)?;
    let t = Instant::now();
    append_in_groups(&store, &signed, true, |batch, pos| {
        let pin = format!("{:014}", pos as usize % persons);
        batch.set_view(&pin, &view);
    })?;
    let write = t.elapsed();
    let written = dir_size(&path);
    for _ in 0..5 {
        for chunk in (0..persons).collect::<Vec<_>>().chunks(256) {
            let mut batch = WriteBatch::default();
            for p in chunk {
                batch.set_view(&format!("{p:014}"), &view);
            }
            store.apply_other(batch)?;
            store.flush()?;
        }
    }
    let churned = dir_size(&path);
    drop(store);
    let t = Instant::now();
    let store = Store::open_with(&path, args.store)?;
    let reopen = t.elapsed();
    let t = Instant::now();
    let views = store.views::<String>().count();
    let scan = t.elapsed();
    Ok(vec![
        figure(
            format!("{} appends with log and view, 256 per flush", args.store),
            n as f64 / write.as_secs_f64(),
            "events/s",
        ),
        figure("raw JWS bytes", raw as f64 / 1048576.0, "MiB"),
        figure(
            "store on disk after the appends",
            written as f64 / 1048576.0,
            "MiB",
        ),
        figure("  ratio to raw JWS", written as f64 / raw as f64, "×"),
        figure(
            format!("store on disk after rewriting {persons} views 5 times"),
            churned as f64 / 1048576.0,
            "MiB",
        ),
        figure(
            "reopen (clean shutdown)",
            reopen.as_secs_f64() * 1000.0,
            "ms",
        ),
        figure(
            format!("read all {views} views"),
            scan.as_secs_f64() * 1000.0,
            "ms",
        ),
        figure("peak RSS (whole process)", peak_rss_mib(), "MiB"),
    ])
}

/// Append `signed` in batches of 256, one flush each, optionally keeping the Merkle log as the
/// writer does (leaf of the compact JWS, completed subtrees in the same batch).
fn durable_append(store: &Store, signed: &[SignedEvent], keep_log: bool) -> Result<()> {
    append_in_groups(store, signed, keep_log, |_, _| {})
}

/// [`durable_append`] with `extra` staging more writes for each event (by position) in the same
/// batch, as the projector's view writes would be.
fn append_in_groups(
    store: &Store,
    signed: &[SignedEvent],
    keep_log: bool,
    mut extra: impl FnMut(&mut WriteBatch, u64),
) -> Result<()> {
    let mut frontier = jol::merkle::Frontier::default();
    for (chunk_no, chunk) in signed.chunks(256).enumerate() {
        let mut batch = WriteBatch::default();
        for (i, s) in chunk.iter().enumerate() {
            let pos = (chunk_no * 256 + i + 1) as u64;
            batch.append(Append {
                position: pos,
                source: &s.event().source,
                sequence: pos,
                id: s.event().id,
                jws: s.bytes(),
                idempotency: None,
            });
            if keep_log {
                for (level, index, hash) in frontier.append(jol::log::event_leaf(s.bytes())) {
                    batch.set_subtree(level, index, &hash);
                }
            }
            extra(&mut batch, pos);
        }
        store.apply(batch)?;
        store.flush()?;
    }
    Ok(())
}
