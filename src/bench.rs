//! `jol bench`: reproducible measurements of the node on this machine.
//!
//! - `limit`: the in-process bound: each cost on its own (parse + validate, sign, verify, durable
//!   append) and the publish path without HTTP (validate, sign, group-committed append).
//! - `publish`: events/s and latency through the local API with concurrent keep-alive clients,
//!   single-event and batch requests, every one acknowledged durably.
//!
//! Each run makes its own node in a temporary folder on loopback.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use bytes::Bytes;
use clap::{Args, ValueEnum};
use serde::Serialize;
use serde_json::{json, Value};

use crate::client::HttpClient;
use crate::config::NodeConfig;
use crate::event::{Event, SignedEvent};
use crate::identifiers::{KeyName, MemberId};
use crate::keys;
use crate::node::RunningNode;
use crate::publish::{Draft, Publisher, Signer};
use crate::schema::{EventType, Schemas};
use crate::store::{Append, Store, WriteBatch};

#[derive(Args, Debug, Clone)]
pub struct BenchArgs {
    /// Which benchmark.
    #[arg(value_enum)]
    pub which: Which,
    /// Events to publish (limit, publish).
    #[arg(long, default_value_t = 50_000)]
    pub events: usize,
    /// Concurrent clients (publish) or tasks (limit).
    #[arg(long, default_value_t = 32)]
    pub clients: usize,
    /// Events per batch request (publish); 1 = single-event requests only.
    #[arg(long, default_value_t = 100)]
    pub batch: usize,
    /// Offered rate for `e2e`, events per second.
    #[arg(long, default_value_t = 2000)]
    pub rate: u64,
    /// Duration of `e2e`, seconds.
    #[arg(long, default_value_t = 30)]
    pub seconds: u64,
    /// The store engine of the nodes and stores the benchmark creates.
    #[arg(long, default_value = "sled")]
    pub store: crate::store::Engine,
    /// Print one JSON document instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Which {
    Limit,
    Publish,
    Sync,
    View,
    E2e,
    Store,
}

/// One measured figure.
#[derive(Debug, Clone, Serialize)]
pub struct Figure {
    pub name: String,
    pub value: f64,
    pub unit: &'static str,
}

fn figure(name: impl Into<String>, value: f64, unit: &'static str) -> Figure {
    Figure {
        name: name.into(),
        value,
        unit,
    }
}

pub async fn run(args: BenchArgs) -> Result<()> {
    let figures = match args.which {
        Which::Limit => limit(&args).await?,
        Which::Publish => publish(&args).await?,
        Which::Sync => sync(&args).await?,
        Which::View => view(&args).await?,
        Which::E2e => e2e(&args).await?,
        Which::Store => store(&args)?,
    };
    if args.json {
        println!(
            "{}",
            json!({"benchmark": format!("{:?}", args.which).to_lowercase(),
                   "machine": machine(), "figures": figures})
        );
    } else {
        println!("jol bench {:?} on {}", args.which, machine());
        for f in &figures {
            println!("  {:<52} {:>12.1} {}", f.name, f.value, f.unit);
        }
    }
    Ok(())
}

fn machine() -> String {
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!("{cpus} cores, {}", std::env::consts::ARCH)
}

/// A valid employment-status document for synthetic person `i` (about 600 bytes).
pub fn sample_data(i: usize) -> Value {
    let pin = format!(
        "2{:02}{:02}19{:02}{:05}",
        1 + i % 28,
        1 + (i / 28) % 12,
        70 + i % 30,
        i % 100_000
    );
    json!({
        "event": "EMPLOYMENT_STARTED",
        "eventDate": "2024-03-01",
        "purpose": "EMPLOYMENT_SERVICES",
        "legalBasis": "Law of the Kyrgyz Republic on Employment Promotion, art. 12",
        "caseRef": format!("ES-2024-{i:07}"),
        "person": {"pin": pin},
        "labourForceStatus": "EMPLOYED",
        "job": {
            "spellId": format!("spell-{i}"),
            "startDate": "2024-03-01",
            "icse18": "41",
            "formality": "FORMAL",
            "formalityEvidence": "SOCIAL_FUND_CONTRIBUTIONS",
            "contractDuration": "PERMANENT",
            "isco08": "7112",
            "isic": "4100",
            "region": "KG-O"
        }
    })
}

fn per_event_us(total: Duration, n: usize) -> f64 {
    total.as_secs_f64() * 1e6 / n.max(1) as f64
}

fn member() -> MemberId {
    "central-server/GOV/70000002/employment"
        .parse()
        .unwrap_or_else(|_| unreachable!("constant member id"))
}

async fn limit(args: &BenchArgs) -> Result<Vec<Figure>> {
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
    };
    let (publisher, _writer) = Publisher::start(
        Store::open_with(&dir.path().join("publish"), args.store)?,
        schemas,
        signer,
        Arc::default(),
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
fn store(args: &BenchArgs) -> Result<Vec<Figure>> {
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
    let view = vec![b'v'; 600];
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("store");
    let store = Store::open_with(&path, args.store)?;
    let t = Instant::now();
    append_in_groups(&store, &signed, true, |batch, pos| {
        let pin = format!("{:014}", pos as usize % persons);
        batch.index_person(&pin, pos);
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
    let views = store.views().count();
    let scan = t.elapsed();
    Ok(vec![
        figure(
            format!(
                "{} appends with log, index and view, 256 per flush",
                args.store
            ),
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
/// batch, as the projector's index and view writes would be.
fn append_in_groups(
    store: &Store,
    signed: &[SignedEvent],
    keep_log: bool,
    mut extra: impl FnMut(&mut WriteBatch, u64),
) -> Result<()> {
    let mut frontier = crate::merkle::Frontier::default();
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
                let entry = crate::jws::compact(s.bytes()).unwrap_or_default();
                for (level, index, hash) in frontier.append(crate::merkle::leaf_hash(&entry)) {
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

async fn bench_node(dir: &Path, engine: crate::store::Engine) -> Result<RunningNode> {
    let key = keys::generate();
    keys::write_private(&dir.join("sign.pem"), &key)?;
    let text = format!(
        "member = \"{}\"\ndata_dir = \"data\"\nstore_engine = \"{engine}\"\n[signing]\nkey_file = \"sign.pem\"\nkey_name = \"bench\"\n[local]\nlisten = \"127.0.0.1:0\"\n",
        member()
    );
    let config = NodeConfig::parse(&text, dir).map_err(anyhow::Error::msg)?;
    Ok(RunningNode::start(&config).await?)
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1e3
}

/// Peak resident set of this process (node and clients together), in MiB.
pub fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(0.0, |kib| kib / 1024.0)
}

async fn drive(
    addr: std::net::SocketAddr,
    clients: usize,
    requests: usize,
    batch: usize,
) -> Result<(Duration, Vec<Duration>)> {
    let mut conns = Vec::new();
    for _ in 0..clients {
        conns.push(HttpClient::connect(addr).await?);
    }
    let start = Instant::now();
    let tasks: Vec<_> = conns
        .into_iter()
        .enumerate()
        .map(|(c, mut client)| {
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut r = c;
                while r < requests {
                    let (path, body) = if batch <= 1 {
                        ("/api/v1/events", json!({"type": "employment-status", "data": sample_data(r)}))
                    } else {
                        let events: Vec<Value> = (0..batch).map(|k| json!({"type": "employment-status", "data": sample_data(r * batch + k)})).collect();
                        ("/api/v1/events/batch", json!({"events": events}))
                    };
                    let t = Instant::now();
                    match client.post_json(path, Bytes::from(body.to_string())).await {
                        Ok((s, _)) if s.is_success() => latencies.push(t.elapsed()),
                        Ok((s, b)) => return Err(anyhow::anyhow!("node answered {s}: {}", String::from_utf8_lossy(&b))),
                        Err(e) => return Err(e.into()),
                    }
                    r += clients;
                }
                Ok(latencies)
            })
        })
        .collect();
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await??);
    }
    let elapsed = start.elapsed();
    all.sort();
    Ok((elapsed, all))
}

async fn publish(args: &BenchArgs) -> Result<Vec<Figure>> {
    let dir = tempfile::tempdir()?;
    let node = bench_node(dir.path(), args.store)
        .await
        .context("starting the bench node")?;
    let addr = node.local_addr();
    let n = args.events.max(args.clients);
    let mut figures = Vec::new();

    let (elapsed, lat) = drive(addr, args.clients, n, 1).await?;
    figures.push(figure(
        format!("single-event requests, {} clients", args.clients),
        lat.len() as f64 / elapsed.as_secs_f64(),
        "events/s",
    ));
    figures.push(figure("  latency p50", percentile(&lat, 0.50), "ms"));
    figures.push(figure("  latency p95", percentile(&lat, 0.95), "ms"));
    figures.push(figure("  latency p99", percentile(&lat, 0.99), "ms"));

    if args.batch > 1 {
        let requests = (n / args.batch).max(args.clients);
        let (elapsed, lat) = drive(addr, args.clients, requests, args.batch).await?;
        figures.push(figure(
            format!("batch requests of {}, {} clients", args.batch, args.clients),
            (lat.len() * args.batch) as f64 / elapsed.as_secs_f64(),
            "events/s",
        ));
        figures.push(figure(
            "  request latency p50",
            percentile(&lat, 0.50),
            "ms",
        ));
        figures.push(figure(
            "  request latency p99",
            percentile(&lat, 0.99),
            "ms",
        ));
    }
    figures.push(figure(
        "peak RSS (node and clients, one process)",
        peak_rss_mib(),
        "MiB",
    ));
    node.stop().await;
    Ok(figures)
}

/// Build a two-member federation (publisher: employment, reader: migration) in `dir` with the
/// authority library, and return the two node configs.
fn two_node_federation(
    dir: &Path,
    engine: crate::store::Engine,
) -> Result<(NodeConfig, NodeConfig)> {
    use crate::authority::{node_tls_key, Authority};
    use crate::manifest::{Member, Names, SigningKeyEntry};
    let authority = Authority::init(
        &dir.join("authority"),
        "central-server",
        "central-server/GOV/70000000/authority".parse()?,
        30,
    )?;
    let ids = [
        member(),
        "central-server/GOV/70000001/migration".parse::<MemberId>()?,
    ];
    let mut ports = Vec::new();
    for _ in &ids {
        let l = std::net::TcpListener::bind("127.0.0.1:0")?;
        ports.push(l.local_addr()?.port());
    }
    let mut configs = Vec::new();
    for (i, id) in ids.iter().enumerate() {
        let node = dir.join(format!("node{i}"));
        let key = keys::generate();
        keys::write_private(&node.join("sign.pem"), &key)?;
        let csr = node_tls_key(id, &node.join("tls.pem"))?;
        let cert = authority.issue_cert(id, &std::fs::read_to_string(csr)?, 30)?;
        std::fs::write(node.join("tls.cert.pem"), &cert)?;
        let now = time::OffsetDateTime::now_utc();
        authority.add_member(Member {
            id: id.clone(),
            names: Names::default(),
            peer_endpoint: format!("127.0.0.1:{}", ports[i]),
            tls_key_sha256: crate::tls::spki_sha256(&crate::tls::certificate_from_pem(&cert)?)?,
            signing_keys: vec![SigningKeyEntry {
                name: "bench".into(),
                public_key: keys::public_b64(&key.verifying_key()),
                not_before: now - time::Duration::hours(1),
                not_after: now + time::Duration::days(1),
                revoked: None,
            }],
        })?;
        let subscription = if i == 1 {
            format!(
                "[[subscriptions]]\nfrom = \"{}\"\ntypes = [\"employment-status\"]\n",
                ids[0]
            )
        } else {
            String::new()
        };
        let text = format!(
            "member = \"{id}\"\ndata_dir = \"data\"\nstore_engine = \"{engine}\"\n[signing]\nkey_file = \"sign.pem\"\nkey_name = \"bench\"\n[local]\nlisten = \"127.0.0.1:0\"\n[federation]\nauthority_key = \"../authority/authority.pub.pem\"\nmanifest = \"../manifest.jws\"\npeer_listen = \"127.0.0.1:{}\"\ntls_cert = \"tls.cert.pem\"\ntls_key = \"tls.pem\"\n{subscription}",
            ports[i]
        );
        configs.push(NodeConfig::parse(&text, &node).map_err(anyhow::Error::msg)?);
    }
    authority.grant_publish(EventType::EmploymentStatus, &ids[0])?;
    authority.grant_read(
        EventType::EmploymentStatus,
        &ids[1],
        vec!["REINTEGRATION_CASE_MANAGEMENT".into()],
    )?;
    authority.grant_publish(EventType::ReturneeRecord, &ids[1])?;
    authority.sign(&dir.join("manifest.jws"), 1)?;
    let subscriber = configs.pop().context("two configs")?;
    let publisher = configs.pop().context("two configs")?;
    Ok((publisher, subscriber))
}

/// One subscriber catching up `events` events from one publisher over mutual TLS.
async fn sync(args: &BenchArgs) -> Result<Vec<Figure>> {
    let dir = tempfile::tempdir()?;
    let (publisher_config, subscriber_config) = two_node_federation(dir.path(), args.store)?;
    let publisher = RunningNode::start(&publisher_config).await?;
    let n = args.events;
    // Consent: every synthetic person consented to the reader for case management.
    let persons = n.min(100_000);
    let reader = subscriber_config.member.to_string();
    let mut client = HttpClient::connect(publisher.local_addr()).await?;
    let start = Instant::now();
    let mut published = 0;
    while published < n {
        let events: Vec<Value> = (published..(published + 1000).min(n))
            .map(|i| json!({"type": "employment-status", "data": sample_data(i % persons)}))
            .collect();
        published += events.len();
        let (status, body) = client
            .post_json(
                "/api/v1/events/batch",
                Bytes::from(json!({"events": events}).to_string()),
            )
            .await?;
        anyhow::ensure!(
            status.is_success(),
            "publishing failed: {}",
            String::from_utf8_lossy(&body)
        );
    }
    let publish_rate = n as f64 / start.elapsed().as_secs_f64();
    grant_consent(&publisher, persons, &reader)?;
    let start = Instant::now();
    let subscriber = RunningNode::start(&subscriber_config).await?;
    let deadline = Instant::now() + Duration::from_secs(600);
    while subscriber
        .metrics()
        .received
        .load(std::sync::atomic::Ordering::Relaxed)
        < n as u64
    {
        anyhow::ensure!(
            Instant::now() < deadline,
            "the subscriber did not catch up in 10 minutes"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let elapsed = start.elapsed();
    let figures = vec![
        figure(
            format!("publish {n} events (batches of 1000)"),
            publish_rate,
            "events/s",
        ),
        figure(
            format!("catch-up of {n} events over mTLS (verify + validate + store)"),
            n as f64 / elapsed.as_secs_f64(),
            "events/s",
        ),
        figure("peak RSS (both nodes, one process)", peak_rss_mib(), "MiB"),
    ];
    subscriber.stop().await;
    publisher.stop().await;
    Ok(figures)
}

/// Write consent records straight into the publisher's store (the benchmark measures sync, not
/// the migration agency's workflow).
fn grant_consent(node: &RunningNode, persons: usize, reader: &str) -> Result<()> {
    let consent = json!({"current": {"granted": true, "purposes": ["REINTEGRATION_CASE_MANAGEMENT"],
        "recipients": [reader], "time": "2024-01-01T00:00:00Z"}, "former_recipients": []});
    let consent = consent.to_string();
    let mut batch = WriteBatch::default();
    for i in 0..persons {
        if let Some(pin) = sample_data(i)["person"]["pin"].as_str() {
            batch.set_consent(pin, consent.as_bytes());
        }
    }
    node.store().apply(batch)?;
    Ok(node.store().flush()?)
}

/// Rebuilding the views and computing every KPI for a population of `--events / 5` persons
/// (about five events each), stored as received events in a fresh store.
async fn view(args: &BenchArgs) -> Result<Vec<Figure>> {
    use crate::population::Population;
    let persons = (args.events / 5).max(100);
    let dir = tempfile::tempdir()?;
    let store = Store::open_with(&dir.path().join("data"), args.store)?;
    let signer = Signer {
        member: member(),
        kid: KeyName::new(member(), "bench")?,
        key: keys::generate(),
    };
    let (publisher, _writer) =
        Publisher::start(store.clone(), Schemas::load()?, signer, Arc::default())?;
    let pop = Population::generate(persons, 1);
    let key = keys::generate();
    let t = Instant::now();
    let mut stored = 0usize;
    let mut sequences: std::collections::HashMap<&str, u64> = std::collections::HashMap::new();
    for phase in pop.events() {
        for chunk in phase.chunks(5000) {
            // Sign on both cores; the events are stored as if received from their agencies.
            let signed: Vec<(String, SignedEvent)> = std::thread::scope(|s| {
                let halves: Vec<_> = chunk
                    .chunks(chunk.len().div_ceil(2).max(1))
                    .map(|half| {
                        let base: Vec<(String, u64)> = half
                            .iter()
                            .map(|p| {
                                let seq = sequences.entry(p.agency).or_default();
                                *seq += 1;
                                (p.agency.to_string(), *seq)
                            })
                            .collect();
                        let key = &key;
                        s.spawn(move || {
                            half.iter()
                                .zip(base)
                                .map(|(p, (agency, seq))| {
                                    let source: MemberId = format!(
                                        "central-server/GOV/7000000{}/{agency}",
                                        agency.len()
                                    )
                                    .parse()
                                    .unwrap_or_else(|_| member());
                                    let kid = KeyName::new(source.clone(), "bench")
                                        .unwrap_or_else(|_| unreachable!("constant key name"));
                                    let mut data = p.data.clone();
                                    if p.corrects.is_some() {
                                        data["supersedes"] =
                                            "01890a5d-ac96-774b-bcce-b302099a8057".into();
                                    }
                                    (
                                        agency,
                                        Event::new(source, p.event_type, seq, data).sign(key, &kid),
                                    )
                                })
                                .collect::<Vec<_>>()
                        })
                    })
                    .collect();
                halves
                    .into_iter()
                    .flat_map(|h| h.join().unwrap_or_default())
                    .collect()
            });
            let mut by_source: std::collections::BTreeMap<String, Vec<SignedEvent>> =
                std::collections::BTreeMap::new();
            for (agency, s) in signed {
                by_source.entry(agency).or_default().push(s);
            }
            for (_, events) in by_source {
                let source = events[0].event().source.clone();
                let last = events.last().map_or(0, SignedEvent::sequence);
                stored += events.len();
                publisher.receive(source, events, last).await?;
            }
        }
    }
    let load = t.elapsed();
    let t = Instant::now();
    let s = store.clone();
    tokio::task::spawn_blocking(move || crate::projector::rebuild(&s)).await??;
    let rebuild = t.elapsed();
    let t = Instant::now();
    let views = crate::projector::all(&store)?;
    let read = t.elapsed();
    let t = Instant::now();
    let params = crate::kpi::KpiParams {
        as_of: crate::view::date("2026-12-31").context("date")?,
        employment_service: "central-server/GOV/70000010/employment".parse()?,
        from: None,
        to: None,
        structure_at: None,
    };
    let report = crate::kpi::compute(&views, &params, true);
    let kpis = t.elapsed();
    let t = Instant::now();
    let checkpoint_key = keys::generate();
    crate::checkpoint::sign_if_grown(
        &store,
        &member(),
        &checkpoint_key,
        &KeyName::new(member(), "bench")?,
        store.last_position()?,
    )?;
    let audit = crate::audit::audit(&store, None)?;
    let verify = t.elapsed();
    anyhow::ensure!(
        audit.findings.is_empty(),
        "the benchmark's own log does not verify: {:?}",
        audit.findings.first()
    );
    let size = dir_size(&dir.path().join("data"));
    Ok(vec![
        figure(
            format!("events stored ({} persons)", views.len()),
            stored as f64,
            "events",
        ),
        figure(
            "  load (sign on 2 cores + durable append)",
            stored as f64 / load.as_secs_f64(),
            "events/s",
        ),
        figure("rebuild all views from the log", rebuild.as_secs_f64(), "s"),
        figure("read all views", read.as_secs_f64(), "s"),
        figure(
            format!(
                "compute all KPIs ({} cohorts, 5 breakdowns)",
                report.cohorts.len()
            ),
            kpis.as_secs_f64(),
            "s",
        ),
        figure(
            format!(
                "verify the whole log offline ({} entries, jol verify)",
                audit.entries
            ),
            verify.as_secs_f64(),
            "s",
        ),
        figure("store size on disk", size as f64 / 1048576.0, "MiB"),
        figure("peak RSS (whole process)", peak_rss_mib(), "MiB"),
    ])
}

fn dir_size(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| match e.metadata() {
                    Ok(m) if m.is_dir() => dir_size(&e.path()),
                    Ok(m) => m.len(),
                    Err(_) => 0,
                })
                .sum()
        })
        .unwrap_or(0)
}

/// A steady offered rate published at one node: latency from the publisher's 201 to the event
/// being visible in the subscriber's registry view (stored, and projected).
async fn e2e(args: &BenchArgs) -> Result<Vec<Figure>> {
    use std::collections::HashMap;
    use std::sync::Mutex;
    let dir = tempfile::tempdir()?;
    let (publisher_config, mut subscriber_config) = two_node_federation(dir.path(), args.store)?;
    subscriber_config.sync.wait_secs = 25;
    let publisher = RunningNode::start(&publisher_config).await?;
    let reader = subscriber_config.member.to_string();
    let total = (args.rate * args.seconds) as usize;
    grant_consent(&publisher, total.min(100_000), &reader)?;
    let subscriber = RunningNode::start(&subscriber_config).await?;
    let acked: std::sync::Arc<Mutex<HashMap<uuid::Uuid, Instant>>> = Default::default();
    let clients = 8u64;
    let per_client = Duration::from_secs_f64(clients as f64 / args.rate.max(1) as f64);
    let addr = publisher.local_addr();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..clients {
        let acked = acked.clone();
        let n = total as u64 / clients;
        tasks.push(tokio::spawn(async move {
            let mut client = HttpClient::connect(addr).await?;
            let mut tick = tokio::time::interval(per_client);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
            for i in 0..n {
                tick.tick().await;
                let data = sample_data(((c * n + i) as usize) % 100_000);
                let body = json!({"type": "employment-status", "data": data}).to_string();
                let (status, answer) = client
                    .post_json("/api/v1/events", Bytes::from(body))
                    .await?;
                anyhow::ensure!(status.is_success(), "publish failed: {status}");
                let v: Value = serde_json::from_slice(&answer)?;
                if let Some(id) = v["id"].as_str().and_then(|s| s.parse().ok()) {
                    if let Ok(mut a) = acked.lock() {
                        a.insert(id, Instant::now());
                    }
                }
            }
            anyhow::Ok(())
        }));
    }
    // Watch the subscriber: an event is visible once the projector's cursor has passed it.
    let store = subscriber.store().clone();
    let mut latencies = Vec::with_capacity(total);
    let mut seen = 0u64;
    let deadline = Instant::now() + Duration::from_secs(args.seconds + 60);
    while latencies.len() < (total as u64 / clients * clients) as usize && Instant::now() < deadline
    {
        let cursor = crate::projector::cursor(&store)?;
        if cursor > seen {
            let now = Instant::now();
            for (_, bytes) in store.range(seen, (cursor - seen) as usize)? {
                if let Ok((signed, _)) = SignedEvent::parse(&bytes) {
                    if let Some(t) = acked
                        .lock()
                        .ok()
                        .and_then(|a| a.get(&signed.event().id).copied())
                    {
                        latencies.push(now.saturating_duration_since(t));
                    }
                }
            }
            seen = cursor;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    for t in tasks {
        t.await??;
    }
    let elapsed = started.elapsed();
    latencies.sort();
    let figures = vec![
        figure(
            format!(
                "offered {} events/s for {} s; published",
                args.rate, args.seconds
            ),
            latencies.len() as f64 / elapsed.as_secs_f64(),
            "events/s",
        ),
        figure(
            "201 at publisher → in subscriber's view, p50",
            percentile(&latencies, 0.50),
            "ms",
        ),
        figure("  p99", percentile(&latencies, 0.99), "ms"),
        figure(
            "  max",
            latencies.last().map_or(0.0, |d| d.as_secs_f64() * 1e3),
            "ms",
        ),
        figure("events measured", latencies.len() as f64, "events"),
    ];
    subscriber.stop().await;
    publisher.stop().await;
    Ok(figures)
}
