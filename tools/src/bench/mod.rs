//! `jol bench`: reproducible measurements of the node on this machine.
//!
//! - `limit`: the in-process bound: each cost on its own (parse + validate, sign, verify, durable
//!   append) and the publish path without HTTP (validate, sign, group-committed append).
//! - `publish`: events/s and latency through the local API with concurrent keep-alive clients,
//!   single-event and batch requests, every one acknowledged durably.
//! - `federation`: the three-agency federation as separate processes under a steady and then a
//!   saturating load at the migration agency: publish rate, subscribers' lag and
//!   publish-to-view latency, CPU per event per node.
//!
//! Each run makes its own node in a temporary folder on loopback.

mod federation;
mod inprocess;
mod matching;
mod nodes;

use std::path::Path;
use std::time::Duration;

use anyhow::Result;
use clap::{Args, ValueEnum};
use serde::Serialize;
use serde_json::json;

use jol::event::identifiers::MemberId;

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
    /// Offered rate for `e2e` and `federation`, events per second.
    #[arg(long, default_value_t = 2000)]
    pub rate: u64,
    /// Duration of `e2e`, and of each phase of `federation`, seconds.
    #[arg(long, default_value_t = 30)]
    pub seconds: u64,
    /// The store engine of the nodes and stores the benchmark creates.
    #[arg(long, default_value_t = jol::store::Engine::default())]
    pub store: jol::store::Engine,
    /// `federation`: the nodes' `[sync] gather_ms` instead of its default.
    #[arg(long)]
    pub gather_ms: Option<u64>,
    /// Print one JSON document instead of a table.
    #[arg(long)]
    pub json: bool,
    /// `sync`: the subscriber fetches through two STAND-IN X-Road security servers instead of
    /// directly over mutual TLS.
    #[arg(long)]
    pub xroad: bool,
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Which {
    Limit,
    Publish,
    Sync,
    View,
    E2e,
    Store,
    /// The three-agency federation as separate processes: the migration node's local API
    /// driven at `--rate` for `--seconds`, then at saturation; publish rate, subscribers' lag,
    /// publish-to-view latency, CPU per event per node.
    Federation,
    /// The matching score at scale (one person vs 10,000 vacancies; one vacancy vs 100,000
    /// persons).
    Match,
}

/// The per-token request budget of every node a benchmark starts: a benchmark measures the
/// node, not the budget that protects it.
const UNLIMITED_REQUESTS: u32 = 1_000_000;

/// One measured figure.
#[derive(Debug, Clone, Serialize)]
pub struct Figure {
    pub name: String,
    pub value: f64,
    pub unit: &'static str,
}

/// The value of the metric whose line starts with `line_start` (name and labels, then a
/// space) in a node's `/metrics` text; none if it is not there or does not parse as `T`.
pub fn metric_in<T: std::str::FromStr>(text: &str, line_start: &str) -> Option<T> {
    text.lines()
        .find_map(|l| l.strip_prefix(line_start))
        .and_then(|n| n.trim().parse().ok())
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
        Which::Limit => inprocess::limit(&args).await?,
        Which::Publish => nodes::publish(&args).await?,
        Which::Sync => nodes::sync(&args).await?,
        Which::View => nodes::view(&args).await?,
        Which::E2e => nodes::e2e(&args).await?,
        Which::Federation => federation::federation(&args).await?,
        Which::Store => inprocess::store(&args).await?,
        Which::Match => matching::matching()?,
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

fn per_event_us(total: Duration, n: usize) -> f64 {
    total.as_secs_f64() * 1e6 / n.max(1) as f64
}

fn member() -> MemberId {
    "central-server/GOV/70000002/employment"
        .parse()
        .unwrap_or_else(|_| unreachable!("constant member id"))
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1e3
}

/// CPU time (user + system) process `pid` has used so far (this process when `None`); zero
/// where `/proc` does not say.
fn cpu_time(pid: Option<u32>) -> Duration {
    let stat = match pid {
        Some(pid) => format!("/proc/{pid}/stat"),
        None => "/proc/self/stat".to_string(),
    };
    let ticks = std::fs::read_to_string(stat)
        .ok()
        .and_then(|s| {
            // Fields after the command name (which may hold spaces) are space-separated; utime
            // and stime are fields 14 and 15, in clock ticks (100 per second on Linux).
            let rest = s.rsplit_once(')')?.1;
            let f: Vec<&str> = rest.split_whitespace().collect();
            Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
        })
        .unwrap_or(0);
    Duration::from_secs_f64(ticks as f64 / 100.0)
}

/// Peak resident set of this process (node and clients together), in MiB.
fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(0.0, |kib| kib / 1024.0)
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
