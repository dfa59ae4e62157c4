//! Benchmarks with real nodes on loopback: publishing through the local API, a subscriber
//! catching up over mutual TLS, views and KPIs over a population, and end-to-end latency.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use bytes::Bytes;
use serde_json::{json, Value};

use super::{
    cpu_time, dir_size, figure, member, peak_rss_mib, per_event_us, percentile, BenchArgs, Figure,
};
use crate::federation::operator_token;
use crate::standin::{StandIn, StandInConfig};
use crate::synthetic::sample_data;
use jol::event::identifiers::{KeyName, MemberId};
use jol::event::keys;
use jol::event::schema::{EventType, Schemas};
use jol::event::{Event, SignedEvent};
use jol::net::client::{Endpoint, HttpClient};
use jol::node::config::NodeConfig;
use jol::node::RunningNode;
use jol::store::{Store, WriteBatch};
use jol::write::{Publisher, Signer};
use throwaway_pg::Cluster;

/// A lone node for the publish benchmark, and its local API with an operator token.
/// On `postgres`, the node's database is in a throwaway cluster, returned to be kept.
async fn bench_node(
    dir: &Path,
    engine: jol::store::Engine,
) -> Result<(RunningNode, Endpoint, Option<Cluster>)> {
    let key = keys::generate();
    keys::write_private(&dir.join("sign.pem"), &key)?;
    let mut text = format!(
        "member = \"{}\"\ndata_dir = \"data\"\nstore_engine = \"{engine}\"\n[signing]\nkey_file = \"sign.pem\"\nkey_name = \"bench\"\n[local]\nlisten = \"127.0.0.1:0\"\nrequests_per_token_per_second = {}\n",
        member(),
        super::UNLIMITED_REQUESTS
    );
    let cluster = match engine {
        jol::store::Engine::Postgres => {
            let cluster = Cluster::start(&[])?;
            let url = cluster.database("bench")?;
            text.push_str(&format!("[store]\nurl = {url:?}\n"));
            Some(cluster)
        }
        _ => None,
    };
    let config = NodeConfig::parse(&text, dir).map_err(anyhow::Error::msg)?;
    let token = operator_token(&config.local.tokens_file, "bench")?;
    let node = RunningNode::start(&config).await?;
    let endpoint = Endpoint {
        addr: node.local_addr(),
        token,
    };
    Ok((node, endpoint, cluster))
}

/// The request bodies `drive` sends, made before its clock starts (the load generator's JSON
/// is not the node's work): one event each, or `batch` events each.
fn bodies(requests: usize, batch: usize) -> Vec<Bytes> {
    let event = |n: usize| json!({"type": "employment-status", "data": sample_data(n)});
    (0..requests)
        .map(|r| {
            let body = match batch {
                0 | 1 => event(r),
                _ => json!({"events": (0..batch).map(|k| event(r * batch + k)).collect::<Vec<Value>>()}),
            };
            Bytes::from(body.to_string())
        })
        .collect()
}

async fn drive(
    endpoint: &Endpoint,
    clients: usize,
    requests: usize,
    batch: usize,
) -> Result<(Duration, Vec<Duration>)> {
    let path = match batch {
        0 | 1 => "/api/v1/events",
        _ => "/api/v1/events/batch",
    };
    let bodies = std::sync::Arc::new(bodies(requests, batch));
    let mut conns = Vec::new();
    for _ in 0..clients {
        conns.push(endpoint.connect().await?);
    }
    let start = Instant::now();
    let tasks: Vec<_> = conns
        .into_iter()
        .enumerate()
        .map(|(c, mut client)| {
            let bodies = bodies.clone();
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                for body in bodies.iter().skip(c).step_by(clients) {
                    let t = Instant::now();
                    match client.post_json(path, body.clone()).await {
                        Ok((s, _)) if s.is_success() => latencies.push(t.elapsed()),
                        Ok((s, b)) => {
                            return Err(anyhow::anyhow!(
                                "node answered {s}: {}",
                                String::from_utf8_lossy(&b)
                            ))
                        }
                        Err(e) => return Err(e.into()),
                    }
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

pub(super) async fn publish(args: &BenchArgs) -> Result<Vec<Figure>> {
    let dir = tempfile::tempdir()?;
    let (node, endpoint, _cluster) = bench_node(dir.path(), args.store)
        .await
        .context("starting the bench node")?;
    let n = args.events.max(args.clients);
    let mut figures = Vec::new();

    let trips = jol::store::postgres::round_trips();
    let cpu = cpu_time(None);
    let (elapsed, lat) = drive(&endpoint, args.clients, n, 1).await?;
    let cpu = cpu_time(None).saturating_sub(cpu);
    figures.push(figure(
        format!("single-event requests, {} clients", args.clients),
        lat.len() as f64 / elapsed.as_secs_f64(),
        "events/s",
    ));
    figures.push(figure(
        "  CPU per event (node and clients, one process)",
        per_event_us(cpu, lat.len()),
        "µs",
    ));
    if args.store == jol::store::Engine::Postgres {
        let per_event = (jol::store::postgres::round_trips() - trips) as f64 / lat.len() as f64;
        figures.push(figure("  PostgreSQL round trips per event", per_event, ""));
    }
    figures.push(figure("  latency p50", percentile(&lat, 0.50), "ms"));
    figures.push(figure("  latency p95", percentile(&lat, 0.95), "ms"));
    figures.push(figure("  latency p99", percentile(&lat, 0.99), "ms"));

    if args.batch > 1 {
        let requests = (n / args.batch).max(args.clients);
        let cpu = cpu_time(None);
        let (elapsed, lat) = drive(&endpoint, args.clients, requests, args.batch).await?;
        let cpu = cpu_time(None).saturating_sub(cpu);
        figures.push(figure(
            format!("batch requests of {}, {} clients", args.batch, args.clients),
            (lat.len() * args.batch) as f64 / elapsed.as_secs_f64(),
            "events/s",
        ));
        figures.push(figure(
            "  CPU per event (node and clients, one process)",
            per_event_us(cpu, lat.len() * args.batch),
            "µs",
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

/// Two members laid out: their configs, the publisher's operator token, the stand-in security
/// servers to start first (with `xroad`), and the PostgreSQL cluster to keep (on `postgres`).
struct TwoNodes {
    publisher: NodeConfig,
    subscriber: NodeConfig,
    token: String,
    standins: Vec<StandInConfig>,
    _cluster: Option<Cluster>,
}

/// Build a two-member federation (publisher: employment, reader: migration) in `dir` with the
/// authority library; with `xroad`, behind stand-in security servers.
fn two_node_federation(dir: &Path, engine: jol::store::Engine, xroad: bool) -> Result<TwoNodes> {
    use crate::federation::{create, free_loopback, FederationPlan, MemberPlan};
    use jol::federation::sync::{Subscription, SyncSettings};
    let publisher = member();
    let subscriber: MemberId = "central-server/GOV/70000001/migration".parse()?;
    let plan_member =
        |folder: &str, id: &MemberId, publishes, subscriptions| -> Result<MemberPlan> {
            Ok(MemberPlan {
                folder: folder.into(),
                id: id.clone(),
                names: Default::default(),
                // Every holder of personal data publishes and reads erasures (the manifest
                // requires it).
                publishes: vec![publishes, EventType::Erasure],
                purpose: "REINTEGRATION_CASE_MANAGEMENT".into(),
                subscriptions,
                local_listen: free_loopback()?,
                peer_listen: free_loopback()?,
            })
        };
    let mut plan = FederationPlan {
        members: vec![
            plan_member("node0", &publisher, EventType::EmploymentStatus, vec![])?,
            plan_member(
                "node1",
                &subscriber,
                EventType::ReturneeRecord,
                vec![Subscription {
                    from: publisher.clone(),
                    types: vec![EventType::EmploymentStatus],
                    via: None,
                }],
            )?,
        ],
        engine,
        databases: Default::default(),
        sync: SyncSettings::default(),
        manifest_days: 1,
        fields: Vec::new(),
    };
    let cluster = match engine {
        jol::store::Engine::Postgres => Some(crate::federation::on_throwaway_postgres(&mut plan)?),
        _ => None,
    };
    let configs = create(dir, &plan)?;
    let mut standins = Vec::new();
    if xroad {
        for s in crate::behind_xroad::behind_standins(dir, &configs)? {
            standins.push(StandInConfig::load(&s.config)?);
        }
    }
    let load = |i: usize| -> Result<NodeConfig> {
        let laid = configs.get(i).context("two configs")?;
        Ok(NodeConfig::load(&laid.config)?)
    };
    let token = configs
        .first()
        .map(|l| l.operator_token.clone())
        .context("two configs")?;
    Ok(TwoNodes {
        publisher: load(0)?,
        subscriber: load(1)?,
        token,
        standins,
        _cluster: cluster,
    })
}

/// One subscriber catching up `events` events from one publisher over mutual TLS.
pub(super) async fn sync(args: &BenchArgs) -> Result<Vec<Figure>> {
    let dir = tempfile::tempdir()?;
    let nodes = two_node_federation(dir.path(), args.store, args.xroad)?;
    let (publisher_config, subscriber_config, token, standin_configs) = (
        &nodes.publisher,
        &nodes.subscriber,
        &nodes.token,
        &nodes.standins,
    );
    let mut standins = Vec::new();
    for c in standin_configs {
        standins.push(StandIn::start(c).await?);
    }
    let publisher = RunningNode::start(publisher_config).await?;
    let n = args.events;
    // Consent: every synthetic person consented to the reader for case management.
    let persons = n.min(100_000);
    let reader = subscriber_config.member.to_string();
    // Consent first, as in life: events published before it would be withheld and released
    // only when a consent recorded through the writer admits the reader.
    grant_consent(&publisher, persons, &reader)?;
    let mut client = HttpClient::connect(publisher.local_addr())
        .await?
        .with_token(Some(token.clone()));
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
    let start = Instant::now();
    let cpu = cpu_time(None);
    let trips_before = jol::store::postgres::round_trips();
    let subscriber = RunningNode::start(subscriber_config).await?;
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
    let cpu = cpu_time(None).saturating_sub(cpu);
    let trips = jol::store::postgres::round_trips() - trips_before;
    let mut figures = vec![
        figure(
            format!("publish {n} events (batches of 1000)"),
            publish_rate,
            "events/s",
        ),
        figure(
            format!(
                "catch-up of {n} events {} (verify + validate + store)",
                if args.xroad {
                    "through two stand-in X-Road security servers"
                } else {
                    "over mTLS"
                }
            ),
            n as f64 / elapsed.as_secs_f64(),
            "events/s",
        ),
        figure(
            "  CPU per event caught up (both nodes, one process)",
            per_event_us(cpu, n),
            "µs",
        ),
        figure("peak RSS (both nodes, one process)", peak_rss_mib(), "MiB"),
    ];
    if args.store == jol::store::Engine::Postgres {
        figures.push(figure(
            "PostgreSQL round trips per event caught up (both nodes)",
            trips as f64 / n as f64,
            "",
        ));
    }
    subscriber.stop().await;
    publisher.stop().await;
    for s in standins {
        s.stop().await;
    }
    Ok(figures)
}

/// Write consent records straight into the publisher's store (the benchmark measures sync, not
/// the migration agency's workflow).
fn grant_consent(node: &RunningNode, persons: usize, reader: &str) -> Result<()> {
    let consent = json!({"current": {"granted": true, "purposes": ["REINTEGRATION_CASE_MANAGEMENT"],
        "recipients": [reader], "time": "2024-01-01T00:00:00Z"}, "former_recipients": []});
    let mut batch = WriteBatch::default();
    for i in 0..persons {
        if let Some(pin) = sample_data(i)["person"]["pin"].as_str() {
            batch.set_consent(pin, &consent);
        }
    }
    node.store().apply_other(batch)?;
    Ok(node.store().flush()?)
}

/// Rebuilding the views and computing every KPI for a population of `--events / 5` persons
/// (about five events each), stored as received events in a fresh store.
pub(super) async fn view(args: &BenchArgs) -> Result<Vec<Figure>> {
    use crate::synthetic::population::Population;
    let persons = (args.events / 5).max(100);
    let dir = tempfile::tempdir()?;
    let store = Store::open_with(&dir.path().join("data"), args.store)?;
    let signer = Signer {
        member: member(),
        kid: KeyName::new(member(), "bench")?,
        key: keys::generate(),
        max_event_bytes: jol::budget::DEFAULT_MAX_EVENT_BYTES,
    };
    let (publisher, _writer) = Publisher::start(
        store.clone(),
        Schemas::load()?,
        signer,
        Arc::default(),
        None,
    )?;
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
                let after = events[0].sequence().saturating_sub(1);
                let to = events.last().map_or(0, SignedEvent::sequence);
                stored += events.len();
                let cursor = jol::write::ReceiveCursor::Sequence { after, to };
                publisher.receive(source, events, cursor).await?;
            }
        }
    }
    let load = t.elapsed();
    let t = Instant::now();
    let s = store.clone();
    tokio::task::spawn_blocking(move || jol::registry::projector::rebuild(&s)).await??;
    let rebuild = t.elapsed();
    let t = Instant::now();
    let views = jol::registry::projector::all(&store)?;
    let read = t.elapsed();
    let t = Instant::now();
    let params = jol::registry::kpi::KpiParams {
        as_of: jol::registry::view::date("2026-12-31").context("date")?,
        employment_service: "central-server/GOV/70000010/employment".parse()?,
        from: None,
        to: None,
        structure_at: None,
        with_a_match: None,
    };
    let report = jol::registry::kpi::compute(&views, &params, true);
    let kpis = t.elapsed();
    let t = Instant::now();
    let checkpoint_key = keys::generate();
    jol::log::checkpoint::sign_if_grown(
        &store,
        &member(),
        &checkpoint_key,
        store.last_position()?,
    )?;
    let audit = jol::log::audit::audit(&store, None)?;
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

/// A steady offered rate published at one node: latency from the publisher's 201 to the event
/// being visible in the subscriber's registry view (stored, and projected).
pub(super) async fn e2e(args: &BenchArgs) -> Result<Vec<Figure>> {
    use std::collections::HashMap;
    use std::sync::Mutex;
    let dir = tempfile::tempdir()?;
    let nodes = two_node_federation(dir.path(), args.store, false)?;
    let (publisher_config, token) = (&nodes.publisher, &nodes.token);
    let mut subscriber_config = nodes.subscriber.clone();
    subscriber_config.sync.wait_secs = 25;
    let publisher = RunningNode::start(publisher_config).await?;
    let reader = subscriber_config.member.to_string();
    let total = (args.rate * args.seconds) as usize;
    grant_consent(&publisher, total.min(100_000), &reader)?;
    let subscriber = RunningNode::start(&subscriber_config).await?;
    let acked: std::sync::Arc<Mutex<HashMap<uuid::Uuid, Instant>>> = Default::default();
    let clients = 8u64;
    let per_client = Duration::from_secs_f64(clients as f64 / args.rate.max(1) as f64);
    let endpoint = Endpoint {
        addr: publisher.local_addr(),
        token: token.clone(),
    };
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..clients {
        let acked = acked.clone();
        let n = total as u64 / clients;
        let endpoint = endpoint.clone();
        tasks.push(tokio::spawn(async move {
            let mut client = endpoint.connect().await?;
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
        let cursor = jol::registry::projector::cursor(&store)?;
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
