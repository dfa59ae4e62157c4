//! Counters and sync status, rendered as Prometheus text for `/metrics` and as JSON for
//! `/readyz`. Labels carry member ids, event types and reason codes only: never personal data.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use serde::Serialize;

use crate::event::identifiers::MemberId;
use crate::net::xroad::FaultFamily;

/// The state of one subscription's sync task.
#[derive(Debug, Clone, Default, Serialize)]
pub(crate) struct SyncStatus {
    pub(crate) connected: bool,
    /// Last contiguous sequence stored from the publisher.
    pub(crate) cursor: u64,
    /// The publisher's latest sequence, as last reported.
    pub(crate) head: u64,
    pub(crate) last_error: Option<String>,
    pub(crate) gaps: u64,
    /// Sessions that ended in failure, by kind (`connect`, `timeout`, `decode`, …).
    pub(crate) failures: BTreeMap<&'static str, u64>,
    /// Refused events not kept because the publisher's share of the quarantine is full.
    pub(crate) quarantine_dropped: u64,
    /// The last number of the publisher's release log for this node that was taken.
    pub(crate) release_cursor: u64,
    /// X-Road's own errors on the way to the publisher, by the family of their type (never the
    /// type itself: it is the remote side's text).
    pub(crate) xroad_faults: BTreeMap<FaultFamily, u64>,
    /// Witness rounds whose split-view check could not be made: the publisher did not serve
    /// its checkpoint.
    pub(crate) witness_unchecked: u64,
    /// Side-log consistency proofs the split-view check verified.
    pub(crate) side_logs_proven: u64,
    /// Witness rounds whose side logs were not checked: the publisher gave no side-log proof.
    pub(crate) side_logs_unchecked: u64,
}

/// The node's counters.
#[derive(Default)]
pub struct Metrics {
    pub(crate) published: AtomicU64,
    pub received: AtomicU64,
    pub(crate) duplicates: AtomicU64,
    pub(crate) feed_requests: AtomicU64,
    pub(crate) feed_events_delivered: AtomicU64,
    pub feed_events_withheld: AtomicU64,
    /// Peers' checkpoints found inconsistent with ones witnessed before (evidence in quarantine).
    pub(crate) forks: AtomicU64,
    /// Group commits the store refused (disk full, I/O error).
    pub(crate) store_write_failures: AtomicU64,
    /// Webhook deliveries that failed, and how many in a row until the last one that went
    /// through (`/readyz` warns while it is not 0).
    webhook_failures: AtomicU64,
    webhook_failing: AtomicU64,
    /// Group commits the writer made durable, and their time in microseconds, summed.
    commits: AtomicU64,
    commit_micros: AtomicU64,
    quarantined: Mutex<BTreeMap<(String, String), u64>>,
    /// Refused submissions and events not kept because the quarantine was full, by origin.
    quarantine_full: Mutex<BTreeMap<String, u64>>,
    sync: Mutex<BTreeMap<MemberId, SyncStatus>>,
    /// Why the last write to the store failed, until one succeeds again.
    store_failure: Mutex<Option<String>>,
}

impl Metrics {
    pub(crate) fn count_quarantine(&self, origin: &str, reason: &str) {
        if let Ok(mut q) = self.quarantined.lock() {
            *q.entry((origin.to_string(), reason.to_string()))
                .or_default() += 1;
        }
    }

    /// The writer made a group commit durable; writing it and its fsync took `took`.
    pub(crate) fn count_commit(&self, took: std::time::Duration) {
        let micros = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        self.commit_micros.fetch_add(micros, Ordering::Relaxed);
        self.commits.fetch_add(1, Ordering::Relaxed);
    }

    /// A refused submission or event from `origin` was not kept: the quarantine is full.
    pub(crate) fn count_quarantine_full(&self, origin: &str) {
        if let Ok(mut q) = self.quarantine_full.lock() {
            *q.entry(origin.to_string()).or_default() += 1;
        }
    }

    /// A webhook delivery failed (it is retried; the events after it wait).
    pub(crate) fn webhook_failed(&self) {
        self.webhook_failures.fetch_add(1, Ordering::Relaxed);
        self.webhook_failing.fetch_add(1, Ordering::Relaxed);
    }

    /// A webhook delivery went through.
    pub(crate) fn webhook_delivered(&self) {
        self.webhook_failing.store(0, Ordering::Relaxed);
    }

    /// How many webhook deliveries have failed in a row (0: the last one went through).
    pub(crate) fn webhook_failing(&self) -> u64 {
        self.webhook_failing.load(Ordering::Relaxed)
    }

    /// How many refusals the full quarantine could not keep.
    pub(crate) fn quarantine_full_total(&self) -> u64 {
        self.quarantine_full
            .lock()
            .map(|q| q.values().sum())
            .unwrap_or(0)
    }

    /// The store refused a write: `/readyz` reports it until a write succeeds.
    pub(crate) fn store_failed(&self, reason: String) {
        self.store_write_failures.fetch_add(1, Ordering::Relaxed);
        self.store_failing(reason);
    }

    /// The store is still failing, for this reason (not another refused commit).
    pub(crate) fn store_failing(&self, reason: String) {
        if let Ok(mut f) = self.store_failure.lock() {
            *f = Some(reason);
        }
    }

    /// A write succeeded: the store is healthy again.
    pub(crate) fn store_recovered(&self) {
        if let Ok(mut f) = self.store_failure.lock() {
            *f = None;
        }
    }

    pub(crate) fn store_failure(&self) -> Option<String> {
        self.store_failure.lock().ok().and_then(|f| f.clone())
    }

    pub fn quarantined_total(&self) -> u64 {
        self.quarantined
            .lock()
            .map(|q| q.values().sum())
            .unwrap_or(0)
    }

    /// Update the status of the subscription to `from`.
    pub(crate) fn sync_status(&self, from: &MemberId, f: impl FnOnce(&mut SyncStatus)) {
        if let Ok(mut s) = self.sync.lock() {
            f(s.entry(from.clone()).or_default());
        }
    }

    /// Add one to the counter `which` of `from`'s status; returns its new value (so a caller
    /// can log the first time, or every so many).
    pub(crate) fn count_sync(
        &self,
        from: &MemberId,
        which: impl FnOnce(&mut SyncStatus) -> &mut u64,
    ) -> u64 {
        let mut count = 0;
        self.sync_status(from, |s| {
            let counter = which(s);
            *counter += 1;
            count = *counter;
        });
        count
    }

    pub(crate) fn sync_snapshot(&self) -> BTreeMap<MemberId, SyncStatus> {
        self.sync.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Prometheus text exposition.
    pub(crate) fn render(&self) -> String {
        let mut out = String::new();
        let counter = |out: &mut String, name: &str, help: &str, v: &AtomicU64| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}",
                v.load(Ordering::Relaxed)
            );
        };
        counter(
            &mut out,
            "jol_events_published_total",
            "Events this node published (acknowledged durably).",
            &self.published,
        );
        counter(
            &mut out,
            "jol_events_received_total",
            "Events received from peers, verified and stored.",
            &self.received,
        );
        counter(
            &mut out,
            "jol_events_duplicate_total",
            "Received events already held (quarantined as duplicate).",
            &self.duplicates,
        );
        counter(
            &mut out,
            "jol_feed_requests_total",
            "Feed requests served to peers.",
            &self.feed_requests,
        );
        counter(
            &mut out,
            "jol_feed_events_delivered_total",
            "Events delivered to peers.",
            &self.feed_events_delivered,
        );
        counter(
            &mut out,
            "jol_feed_events_withheld_total",
            "Events withheld from peers (not authorised, no consent).",
            &self.feed_events_withheld,
        );
        counter(
            &mut out,
            "jol_store_write_failures_total",
            "Group commits the store refused (nothing in them was acknowledged).",
            &self.store_write_failures,
        );
        counter(
            &mut out,
            "jol_webhook_failures_total",
            "Webhook deliveries that failed (each is retried; the events after it wait).",
            &self.webhook_failures,
        );
        let _ = writeln!(
            out,
            "# HELP jol_webhook_failing Webhook deliveries failed in a row since the last that went through.\n# TYPE jol_webhook_failing gauge\njol_webhook_failing {}",
            self.webhook_failing()
        );
        let _ = writeln!(
            out,
            "# HELP jol_writer_commit_seconds Group commits the writer made durable (count) and the time from the start of each one's write to its fsync, or on PostgreSQL its commit (sum): the mean commit latency, and against the events published and received, how many events a commit covers.\n# TYPE jol_writer_commit_seconds summary\njol_writer_commit_seconds_sum {:.6}\njol_writer_commit_seconds_count {}",
            self.commit_micros.load(Ordering::Relaxed) as f64 / 1e6,
            self.commits.load(Ordering::Relaxed)
        );
        counter(
            &mut out,
            "jol_log_forks_total",
            "Peer checkpoints inconsistent with ones witnessed before.",
            &self.forks,
        );
        let _ = writeln!(out, "# HELP jol_quarantined_total Submissions and events quarantined, by origin and reason.\n# TYPE jol_quarantined_total counter");
        if let Ok(q) = self.quarantined.lock() {
            for ((origin, reason), n) in q.iter() {
                let _ = writeln!(
                    out,
                    "jol_quarantined_total{{origin=\"{}\",reason=\"{}\"}} {n}",
                    label(origin),
                    label(reason)
                );
            }
        }
        let _ = writeln!(out, "# HELP jol_quarantine_full_total Refused submissions and events not kept because the quarantine was full (a submission answered 507, an event waiting at its publisher), by origin.\n# TYPE jol_quarantine_full_total counter");
        if let Ok(q) = self.quarantine_full.lock() {
            for (origin, n) in q.iter() {
                let _ = writeln!(
                    out,
                    "jol_quarantine_full_total{{origin=\"{}\"}} {n}",
                    label(origin)
                );
            }
        }
        let _ = writeln!(out, "# HELP jol_sync_lag_events Publisher head minus stored cursor, per subscription.\n# TYPE jol_sync_lag_events gauge");
        let _ = writeln!(out, "# HELP jol_sync_connected Whether the subscription's last exchange succeeded.\n# TYPE jol_sync_connected gauge");
        for (from, s) in self.sync_snapshot() {
            let from = label(from.as_str());
            let _ = writeln!(
                out,
                "jol_sync_lag_events{{from=\"{from}\"}} {}",
                s.head.saturating_sub(s.cursor)
            );
            let _ = writeln!(
                out,
                "jol_sync_connected{{from=\"{from}\"}} {}",
                u8::from(s.connected)
            );
            let _ = writeln!(out, "jol_sync_cursor{{from=\"{from}\"}} {}", s.cursor);
            let _ = writeln!(out, "jol_sync_gaps_total{{from=\"{from}\"}} {}", s.gaps);
            let _ = writeln!(
                out,
                "jol_quarantine_dropped_total{{from=\"{from}\"}} {}",
                s.quarantine_dropped
            );
            let _ = writeln!(
                out,
                "jol_witness_unchecked_total{{from=\"{from}\"}} {}",
                s.witness_unchecked
            );
            let _ = writeln!(
                out,
                "jol_witness_side_proofs_total{{from=\"{from}\"}} {}",
                s.side_logs_proven
            );
            let _ = writeln!(
                out,
                "jol_witness_side_unchecked_total{{from=\"{from}\"}} {}",
                s.side_logs_unchecked
            );
            for (kind, n) in &s.failures {
                let _ = writeln!(
                    out,
                    "jol_sync_failures_total{{from=\"{from}\",kind=\"{kind}\"}} {n}"
                );
            }
            for (family, n) in &s.xroad_faults {
                let _ = writeln!(
                    out,
                    "jol_xroad_faults_total{{from=\"{from}\",type=\"{}\"}} {n}",
                    family.as_str()
                );
            }
        }
        out
    }
}

fn label(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_labels() {
        let m = Metrics::default();
        m.published.fetch_add(3, Ordering::Relaxed);
        m.count_quarantine("local-api", "schema-invalid");
        m.count_quarantine("local-api", "schema-invalid");
        m.count_quarantine_full("local-api");
        let from: MemberId = "central-server/GOV/70000001/migration".parse().unwrap();
        m.sync_status(&from, |s| {
            s.head = 10;
            s.cursor = 7;
        });
        m.count_commit(std::time::Duration::from_micros(1_500));
        m.count_commit(std::time::Duration::from_micros(250));
        let text = m.render();
        assert!(text.contains("jol_events_published_total 3"));
        assert!(text.contains("# TYPE jol_writer_commit_seconds summary\n"));
        assert!(text.contains("jol_writer_commit_seconds_sum 0.001750\n"));
        assert!(text.contains("jol_writer_commit_seconds_count 2\n"));
        assert!(text
            .contains("jol_quarantined_total{origin=\"local-api\",reason=\"schema-invalid\"} 2"));
        assert!(
            text.contains("jol_sync_lag_events{from=\"central-server/GOV/70000001/migration\"} 3")
        );
        assert_eq!(m.quarantined_total(), 2);
        assert!(text.contains("jol_quarantine_full_total{origin=\"local-api\"} 1"));
        assert_eq!(m.quarantine_full_total(), 1);
    }

    #[test]
    fn a_thousand_fault_types_make_a_handful_of_label_values() {
        let m = Metrics::default();
        let from: MemberId = "central-server/GOV/70000001/migration".parse().unwrap();
        for i in 0..1000 {
            let kind = match i % 4 {
                0 => format!("Server.ServerProxy.Made{i}"),
                1 => format!("Client.Up{i}"),
                2 => format!("Server.Nonsense{i}\"}} 1\njol_forged_total{{x=\"{i}"),
                _ => format!("evil-{i}"),
            };
            m.sync_status(&from, |s| {
                *s.xroad_faults.entry(FaultFamily::of(&kind)).or_default() += 1;
            });
        }
        let text = m.render();
        let labels: std::collections::BTreeSet<&str> = text
            .lines()
            .filter(|l| l.starts_with("jol_xroad_faults_total"))
            .filter_map(|l| l.split("type=\"").nth(1)?.split('"').next())
            .collect();
        assert!(labels.len() <= FaultFamily::ALL.len(), "{labels:?}");
        assert_eq!(
            labels,
            ["Client", "Server.ServerProxy", "other"]
                .into_iter()
                .collect()
        );
        assert!(!text.contains("jol_forged_total"), "{text}");
        assert!(text.contains("type=\"other\"} 500"), "{text}");
    }
}
