//! The in-process bounds: each cost on its own (parse + validate, sign, verify), the publish path
//! without HTTP, and the store engine as the writer fills it.

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
use jol::store::{Store, WriteBatch};
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
/// rewritten with every event (the churn), then every view rewritten five times more, a
/// reopen, and a compaction (`jol store compact`: every entry rewritten into a new store).
pub(super) async fn store(args: &BenchArgs) -> Result<Vec<Figure>> {
    let n = args.events.max(1000);
    let persons = (n / 5).max(1);
    let view = "v".repeat(600);
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("store");
    let store = Store::open_with(&path, args.store)?;
    let t = Instant::now();
    let raw = publish_in_groups(store.clone(), n).await?;
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
    let compacted = store.compact()?;
    Ok(vec![
        figure(
            format!("{} appends through the writer, 256 per batch", args.store),
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
        figure(
            format!(
                "compact ({} entries rewritten)",
                compacted.entries.unwrap_or(0)
            ),
            compacted.took.as_secs_f64(),
            "s",
        ),
        figure(
            "store on disk after compaction",
            compacted.bytes_after as f64 / 1048576.0,
            "MiB",
        ),
        figure("peak RSS (whole process)", peak_rss_mib(), "MiB"),
    ])
}

/// Publish `n` events through the writer (the only code that appends to the log), 256 per
/// batch; the raw JWS bytes written. The writer has stopped when this returns.
async fn publish_in_groups(store: Store, n: usize) -> Result<u64> {
    let signer = Signer {
        member: member(),
        kid: KeyName::new(member(), "bench")?,
        key: keys::generate(),
        max_event_bytes: jol::budget::DEFAULT_MAX_EVENT_BYTES,
    };
    let (publisher, writer) =
        Publisher::start(store, Schemas::load()?, signer, Arc::default(), None)?;
    let mut raw = 0;
    for chunk in (0..n).collect::<Vec<_>>().chunks(256) {
        let drafts = chunk
            .iter()
            .map(|&i| Draft {
                event_type: EventType::EmploymentStatus,
                data: sample_data(i),
                idempotency_key: None,
            })
            .collect();
        for outcome in publisher.publish_batch(drafts).await {
            raw += outcome?.jws.len() as u64;
        }
    }
    drop(publisher);
    tokio::task::spawn_blocking(move || writer.join())
        .await?
        .map_err(|_| anyhow::anyhow!("the writer thread panicked"))?;
    Ok(raw)
}
