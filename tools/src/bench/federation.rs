//! `jol bench federation`: the three-agency federation as the demo lays it out, each node a
//! separate `jol serve` process (mutual TLS, subscriptions, projectors, checkpoints, witnessing),
//! with the migration agency's local API driven by 32 keep-alive clients publishing a returnee
//! record about a new person per request (consenting to both other agencies), first at a steady
//! offered rate, then as fast as the node answers.
//!
//! For each phase: the publish rate achieved; each subscriber's lag (events published but not
//! yet stored there) over time, its largest value and how long after the load stops it is back
//! to 0; end-to-end latency percentiles, from the 201 to the event being in the subscriber's
//! registry view; and the CPU each node process spent per event published. The subscribers are
//! watched through `/readyz` every [`SAMPLE`]: an event counts as visible at the first sample
//! whose view cursor covers where the subscriber stored it, so latencies are upper bounds within
//! one sampling interval.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use bytes::Bytes;
use serde_json::{json, Value};

use super::{figure, percentile, BenchArgs, Figure};
use crate::federation::{self, LaidOut};
use crate::synthetic::population::Population;
use jol::net::client::{Endpoint, HttpClient};

/// How often the subscribers are asked how far they are.
const SAMPLE: Duration = Duration::from_millis(10);
/// Publishing clients.
const CLIENTS: usize = 32;
/// How long the subscribers get to catch up after the load stops.
const SETTLE: Duration = Duration::from_secs(60);

/// A `jol serve` child, killed when dropped.
struct NodeProcess {
    child: Child,
    endpoint: Endpoint,
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl NodeProcess {
    fn start(laid: &LaidOut) -> Result<NodeProcess> {
        let exe = std::env::current_exe().context("where is this jol binary")?;
        let mut child = Command::new(exe)
            .args(["serve", "--config"])
            .arg(&laid.config)
            .env("RUST_LOG", "error")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .context("start jol serve")?;
        let stdout = child.stdout.take().context("the node's stdout")?;
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line)?;
        let v: Value = serde_json::from_str(&line)
            .with_context(|| format!("{} did not report its address: {line:?}", laid.folder))?;
        let addr = v["listening"]["local"]
            .as_str()
            .context("no local address")?
            .parse()?;
        Ok(NodeProcess {
            child,
            endpoint: Endpoint {
                addr,
                token: laid.operator_token.clone(),
            },
        })
    }

    /// CPU time (user + system) the process has used so far.
    fn cpu(&self) -> Duration {
        super::cpu_time(Some(self.child.id()))
    }
}

/// One look at a subscriber.
#[derive(Debug, Clone, Copy)]
struct Sample {
    at: Instant,
    /// The migration agency's sequence the subscriber has stored up to.
    cursor: u64,
    /// The subscriber's log size, and how far its views have been projected.
    stored: u64,
    projected: u64,
    /// Whether its sync task is connected to the migration agency.
    connected: bool,
}

/// Ask a subscriber (over a kept-alive connection) how far it is.
async fn look(client: &mut HttpClient, source: &str) -> Result<Sample> {
    let (_, body) = client.get("/readyz").await?;
    let v: Value = serde_json::from_slice(&body)?;
    let peer = &v["peers"][source];
    Ok(Sample {
        at: Instant::now(),
        cursor: peer["cursor"].as_u64().unwrap_or(0),
        stored: v["store"]["events"].as_u64().unwrap_or(0),
        projected: v["views"]["cursor"].as_u64().unwrap_or(0),
        connected: peer["connected"] == true,
    })
}

pub(super) async fn federation(args: &BenchArgs) -> Result<Vec<Figure>> {
    let dir = tempfile::tempdir()?;
    let mut plan = federation::three_agencies()?;
    plan.engine = args.store;
    let laid = federation::create(dir.path(), &plan)?;
    for l in &laid {
        unlimited(&l.config, args.gather_ms)?;
    }
    let nodes: HashMap<String, NodeProcess> = laid
        .iter()
        .map(|l| Ok((l.folder.clone(), NodeProcess::start(l)?)))
        .collect::<Result<_>>()?;
    let source = federation::MIGRATION;
    let subscribers = ["employment", "education"];
    wait_connected(&nodes, &subscribers, source).await?;

    let persons = Population::generate(
        (args.rate * args.seconds + 12_000 * args.seconds) as usize,
        args.seconds,
    );
    let records: Arc<Vec<String>> = Arc::new(
        persons
            .persons
            .iter()
            .map(|p| json!({"type": "returnee-record", "data": crate::synthetic::population::returnee_record(p).data}).to_string())
            .collect(),
    );
    let mut figures = Vec::new();
    let mut next = 0usize;
    for (phase, rate) in [("offered", Some(args.rate)), ("saturation", None)] {
        let label = match rate {
            Some(r) => format!("{phase} {r}/s"),
            None => phase.to_string(),
        };
        let run = Phase {
            nodes: &nodes,
            subscribers: &subscribers,
            source,
            records: records.clone(),
            first: next,
            seconds: args.seconds,
            rate,
        };
        let (published, mut phase_figures) = run.measure(&label).await?;
        next += published;
        figures.append(&mut phase_figures);
    }
    Ok(figures)
}

/// Lift the per-token request budget: the benchmark measures the node, not its protection.
/// And set the time new events gather, if the command line gives it.
fn unlimited(config: &Path, gather_ms: Option<u64>) -> Result<()> {
    let mut node = jol::node::config::NodeConfig::load(config)?;
    node.local.requests_per_token_per_second = super::UNLIMITED_REQUESTS;
    if let Some(ms) = gather_ms {
        node.sync.gather_ms = ms;
    }
    jol::node::layout::write_config(config, &node)?;
    Ok(())
}

async fn wait_connected(
    nodes: &HashMap<String, NodeProcess>,
    subscribers: &[&str],
    source: &str,
) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut clients = Vec::new();
    for s in subscribers {
        clients.push(nodes[*s].endpoint.connect().await?);
    }
    loop {
        let mut all = true;
        for client in &mut clients {
            all &= look(client, source).await?.connected;
        }
        if all {
            return Ok(());
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "the subscribers did not connect to the migration agency within 30 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// One phase of load.
struct Phase<'a> {
    nodes: &'a HashMap<String, NodeProcess>,
    subscribers: &'a [&'a str],
    source: &'a str,
    records: Arc<Vec<String>>,
    /// The first record this phase publishes.
    first: usize,
    seconds: u64,
    /// Events per second offered; `None`: as fast as the node answers.
    rate: Option<u64>,
}

impl Phase<'_> {
    /// Run the phase; returns how many events it published and its figures.
    async fn measure(&self, label: &str) -> Result<(usize, Vec<Figure>)> {
        let cpu_before: HashMap<&str, Duration> = self
            .nodes
            .iter()
            .map(|(name, n)| (name.as_str(), n.cpu()))
            .collect();
        let mut commits_before = HashMap::new();
        for (name, n) in self.nodes {
            commits_before.insert(name.as_str(), Commits::so_far(&n.endpoint).await?);
        }
        let acked: Arc<Mutex<Vec<(u64, Instant)>>> = Arc::default();
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        // Each subscriber's samples, taken by its watcher and read by the settle loop below.
        let samples: Vec<Arc<Mutex<Vec<Sample>>>> =
            self.subscribers.iter().map(|_| Arc::default()).collect();
        let watchers: Vec<_> = self
            .subscribers
            .iter()
            .zip(&samples)
            .map(|(s, samples)| {
                let endpoint = self.nodes[*s].endpoint.clone();
                let source = self.source.to_string();
                let stop = stop.clone();
                let samples = samples.clone();
                tokio::spawn(async move {
                    let mut client = endpoint.connect().await?;
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        let sample = look(&mut client, &source).await?;
                        if let Ok(mut all) = samples.lock() {
                            all.push(sample);
                        }
                        tokio::time::sleep(SAMPLE).await;
                    }
                    anyhow::Ok(())
                })
            })
            .collect();
        let started = Instant::now();
        let until = started + Duration::from_secs(self.seconds);
        let budget = self.records.len() - self.first;
        let per_client = budget / CLIENTS;
        let drivers: Vec<_> = (0..CLIENTS)
            .map(|c| {
                let endpoint = self.nodes["migration"].endpoint.clone();
                let records = self.records.clone();
                let acked = acked.clone();
                let from = self.first + c * per_client;
                let interval = self
                    .rate
                    .map(|r| Duration::from_secs_f64(CLIENTS as f64 / r.max(1) as f64));
                tokio::spawn(async move {
                    let mut client = endpoint.connect().await?;
                    let mut tick = interval.map(tokio::time::interval);
                    let mut sent = 0;
                    for body in records[from..from + per_client].iter() {
                        if Instant::now() >= until {
                            break;
                        }
                        if let Some(t) = tick.as_mut() {
                            t.tick().await;
                        }
                        let (status, answer) = client
                            .post_json("/api/v1/events", Bytes::from(body.clone()))
                            .await?;
                        anyhow::ensure!(status.is_success(), "publish failed: {status}");
                        let v: Value = serde_json::from_slice(&answer)?;
                        let sequence = v["sequence"]
                            .as_str()
                            .and_then(|s| s.parse().ok())
                            .or_else(|| v["sequence"].as_u64())
                            .context("no sequence in the answer")?;
                        if let Ok(mut a) = acked.lock() {
                            a.push((sequence, Instant::now()));
                        }
                        sent += 1;
                    }
                    anyhow::Ok(sent)
                })
            })
            .collect();
        let mut published = 0;
        for d in drivers {
            published += d.await??;
        }
        let load_time = started.elapsed();
        let load_end = Instant::now();
        let mut acks = acked.lock().map(|a| a.clone()).unwrap_or_default();
        acks.sort_unstable();
        let head = acks.last().map_or(0, |a| a.0);
        // Let the subscribers catch up, then stop watching.
        let settle_until = Instant::now() + SETTLE;
        loop {
            let done = samples.iter().all(|taken| {
                let latest = taken.lock().ok().and_then(|all| all.last().copied());
                latest.is_some_and(|s| s.cursor >= head && s.projected >= s.stored)
            });
            if done || Instant::now() > settle_until {
                break;
            }
            tokio::time::sleep(SAMPLE).await;
        }
        tokio::time::sleep(SAMPLE * 3).await;
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let mut figures = vec![figure(
            format!("{label}: published (32 clients, a new person each)"),
            published as f64 / load_time.as_secs_f64(),
            "events/s",
        )];
        for ((s, w), taken) in self.subscribers.iter().zip(watchers).zip(&samples) {
            w.await??;
            let taken = taken.lock().map(|all| all.clone()).unwrap_or_default();
            figures.extend(subscriber_figures(label, s, &taken, &acks, load_end));
        }
        for (name, n) in self.nodes {
            let spent = n.cpu().saturating_sub(cpu_before[name.as_str()]);
            figures.push(figure(
                format!("{label}: CPU of the {name} node per event published"),
                spent.as_secs_f64() * 1e6 / published.max(1) as f64,
                "µs",
            ));
            let commits = Commits::so_far(&n.endpoint)
                .await?
                .since(commits_before[name.as_str()]);
            figures.push(figure(
                format!("{label}: events per group commit at the {name} node"),
                commits.events / commits.count.max(1.0),
                "events",
            ));
            figures.push(figure(
                format!("{label}: mean group commit (write to fsync) at the {name} node"),
                commits.seconds * 1e3 / commits.count.max(1.0),
                "ms",
            ));
        }
        Ok((published, figures))
    }
}

/// What a node's writer has committed so far, from its `/metrics`: its group commits, their
/// time summed, and the events published and received in them.
#[derive(Debug, Clone, Copy)]
struct Commits {
    count: f64,
    seconds: f64,
    events: f64,
}

impl Commits {
    async fn so_far(endpoint: &Endpoint) -> Result<Commits> {
        let mut client = endpoint.connect().await?;
        let (status, body) = client.get("/metrics").await?;
        anyhow::ensure!(status.is_success(), "/metrics answered {status}");
        let text = String::from_utf8_lossy(&body);
        let value = |name: &str| super::metric_in(&text, &format!("{name} ")).unwrap_or(0.0);
        Ok(Commits {
            count: value("jol_writer_commit_seconds_count"),
            seconds: value("jol_writer_commit_seconds_sum"),
            events: value("jol_events_published_total") + value("jol_events_received_total"),
        })
    }

    fn since(self, before: Commits) -> Commits {
        Commits {
            count: self.count - before.count,
            seconds: self.seconds - before.seconds,
            events: self.events - before.events,
        }
    }
}

/// A subscriber's lag and end-to-end latency from its samples.
fn subscriber_figures(
    label: &str,
    name: &str,
    samples: &[Sample],
    acks: &[(u64, Instant)],
    load_end: Instant,
) -> Vec<Figure> {
    // Lag at each sample: events acknowledged by then and not yet stored here.
    let mut max_lag = 0u64;
    let mut a = 0;
    for s in samples {
        while a < acks.len() && acks[a].1 <= s.at {
            a += 1;
        }
        let acked_head = acks[..a].iter().map(|x| x.0).max().unwrap_or(0);
        max_lag = max_lag.max(acked_head.saturating_sub(s.cursor));
    }
    let head = acks.iter().map(|x| x.0).max().unwrap_or(0);
    let caught_up = samples
        .iter()
        .find(|s| s.at >= load_end && s.cursor >= head)
        .map_or(f64::NAN, |s| {
            s.at.duration_since(load_end).as_secs_f64() * 1e3
        });
    // Both the acknowledged sequences (sorted) and the samples' cursors only grow: walk them
    // together.
    let mut latencies = Vec::with_capacity(acks.len());
    let (mut stored_at, mut visible_at) = (0, 0);
    for (sequence, acked_at) in acks {
        while stored_at < samples.len() && samples[stored_at].cursor < *sequence {
            stored_at += 1;
        }
        let Some(stored) = samples.get(stored_at) else {
            break;
        };
        visible_at = visible_at.max(stored_at);
        while visible_at < samples.len() && samples[visible_at].projected < stored.stored {
            visible_at += 1;
        }
        let Some(visible) = samples.get(visible_at) else {
            break;
        };
        latencies.push(visible.at.saturating_duration_since(*acked_at));
    }
    latencies.sort_unstable();
    vec![
        figure(
            format!("{label}: {name} largest lag"),
            max_lag as f64,
            "events",
        ),
        figure(
            format!("{label}: {name} lag back to 0 after the load stopped"),
            caught_up,
            "ms",
        ),
        figure(
            format!("{label}: {name} publish → in its view p50"),
            percentile(&latencies, 0.50),
            "ms",
        ),
        figure(
            format!("{label}: {name} publish → in its view p99"),
            percentile(&latencies, 0.99),
            "ms",
        ),
    ]
}
