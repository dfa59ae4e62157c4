//! `/readyz`: whether the node can do its work (store, manifest, peers, views), as one typed
//! answer ([`Readiness`]) that the OpenAPI description's `Ready` schema describes field by field.

use std::collections::BTreeMap;

use hyper::StatusCode;
use serde::Serialize;

use super::LocalApi;
use crate::event::identifiers::MemberId;
use crate::net::http::{self, Response};
use crate::net::metrics::SyncStatus;
use crate::store::{QuarantineCaps, QuarantineHeld};

/// The answer of `/readyz`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Readiness<'a> {
    status: Status,
    member: &'a MemberId,
    /// The last sequence this node gave its own events.
    own_sequence: u64,
    views: Views,
    /// Peers' checkpoints found inconsistent with ones witnessed before.
    log_forks: u64,
    store: StoreCheck,
    /// `None` for a node outside a federation.
    manifest: Option<ManifestCheck>,
    peers: BTreeMap<MemberId, SyncStatus>,
    /// What an operator must look at, in words.
    warnings: Vec<String>,
    /// Each other member's release log: the last number this node gave it.
    releases: BTreeMap<MemberId, u64>,
    quarantine: Quarantine,
    /// The replica's role (`writer` for an embedded store).
    role: &'static str,
}

/// The node's state in one word.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
enum Status {
    /// Everything works.
    Ready,
    /// The node works, but a peer is unreachable, a fork was seen, or a warning stands.
    Degraded,
    /// The store or the manifest cannot be used: answered 503.
    NotReady,
}

/// How far the registry views are.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Views {
    /// The last log position projected.
    cursor: u64,
    /// Log positions not projected yet.
    behind: u64,
    /// Erasures whose views are still to be redone.
    erasures_pending: usize,
}

/// Whether the store answers, and how many events it holds.
#[derive(Debug, Serialize)]
struct StoreCheck {
    ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    events: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

/// Whether the trust manifest is usable.
#[derive(Debug, Serialize)]
struct ManifestCheck {
    ok: bool,
    serial: u64,
    /// When it expires (RFC 3339), for a usable one.
    #[serde(skip_serializing_if = "Option::is_none")]
    expires: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

/// How much a quarantine (or one publisher's share of it) holds, against its caps.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Held {
    records: u64,
    bytes: u64,
    max_records: u64,
    max_bytes: u64,
}

impl Held {
    fn of(held: QuarantineHeld, caps: QuarantineCaps) -> Held {
        Held {
            records: held.records,
            bytes: held.bytes,
            max_records: caps.max_records,
            max_bytes: caps.max_bytes,
        }
    }
}

/// One count of the quarantine, or why it could not be read.
#[derive(Debug, Serialize)]
#[serde(untagged)]
enum Counted<T> {
    Held(T),
    Failed { error: String },
}

impl<T> From<Result<T, crate::store::StoreError>> for Counted<T> {
    fn from(result: Result<T, crate::store::StoreError>) -> Counted<T> {
        match result {
            Ok(held) => Counted::Held(held),
            Err(e) => Counted::Failed {
                error: e.to_string(),
            },
        }
    }
}

/// The whole quarantine, and each followed publisher's share of it.
#[derive(Debug, Serialize)]
struct WholeQuarantine {
    #[serde(flatten)]
    held: Held,
    publishers: BTreeMap<MemberId, Counted<Held>>,
}

type Quarantine = Counted<WholeQuarantine>;

impl LocalApi {
    /// Ready when the store answers and the manifest (if any) is usable; peers that cannot be
    /// reached make the node `degraded` (it still accepts and serves its own events).
    pub(super) fn readyz(&self) -> Response {
        let store = self.store_check();
        let manifest = self.manifest_check();
        let peers = self.metrics.sync_snapshot();
        let ready = store.ok && manifest.as_ref().is_none_or(|m| m.ok);
        let log_forks = self
            .metrics
            .forks
            .load(std::sync::atomic::Ordering::Relaxed);
        let warnings = self.warnings(&peers);
        let all_peers =
            peers.values().all(|s| s.connected) && log_forks == 0 && warnings.is_empty();
        let status = match (ready, all_peers) {
            (false, _) => Status::NotReady,
            (true, false) => Status::Degraded,
            (true, true) => Status::Ready,
        };
        let answer = Readiness {
            status,
            member: &self.member,
            own_sequence: *self.publisher.heads().own_sequence.borrow(),
            views: self.views(),
            log_forks,
            store,
            manifest,
            quarantine: self.quarantine_held(peers.keys()),
            peers,
            warnings,
            releases: self.releases(),
            role: self.role.borrow().name(),
        };
        let code = if ready {
            StatusCode::OK
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        };
        http::json(code, &answer)
    }

    fn store_check(&self) -> StoreCheck {
        let failed = |error: String| StoreCheck {
            ok: false,
            events: None,
            error: Some(error),
        };
        match (self.metrics.store_failure(), self.store.last_position()) {
            (None, Ok(p)) => StoreCheck {
                ok: true,
                events: Some(p),
                error: None,
            },
            (Some(e), _) => failed(format!("writes are failing: {e}")),
            (None, Err(e)) => failed(e.to_string()),
        }
    }

    fn manifest_check(&self) -> Option<ManifestCheck> {
        let trust = self.trust.as_ref()?;
        Some(match trust.usable() {
            Ok(m) => ManifestCheck {
                ok: true,
                serial: m.serial,
                expires: Some(
                    m.expires
                        .format(&time::format_description::well_known::Rfc3339)
                        .unwrap_or_default(),
                ),
                error: None,
            },
            Err(e) => ManifestCheck {
                ok: false,
                serial: trust.held().serial,
                expires: None,
                error: Some(e.to_string()),
            },
        })
    }

    /// What an operator must act on: a peer flooding its share of the quarantine, or a full
    /// quarantine.
    fn warnings(&self, peers: &BTreeMap<MemberId, SyncStatus>) -> Vec<String> {
        let mut warnings: Vec<String> = peers
            .iter()
            .filter(|(_, s)| s.quarantine_dropped > 0)
            .map(|(from, s)| {
                format!(
                    "{from} floods the quarantine: its share is full and {} refused events were not kept",
                    s.quarantine_dropped
                )
            })
            .collect();
        let failing = self.metrics.webhook_failing();
        if failing > 0 {
            warnings.push(format!(
                "the webhook has failed {failing} deliveries in a row: it retries with backoff and every event after the failing one waits (the node's log says why)"
            ));
        }
        let not_kept = self.metrics.quarantine_full_total();
        if not_kept > 0 {
            warnings.push(format!(
                "the quarantine is full: {not_kept} refused submissions or events could not be kept (submissions were answered 507, received events wait at their publishers); raise [limits] quarantine_max_records or quarantine_max_bytes"
            ));
        }
        warnings
    }

    fn views(&self) -> Views {
        let cursor = crate::registry::projector::cursor(&self.store).unwrap_or(0);
        let last = self.store.last_position().unwrap_or(0);
        Views {
            cursor,
            behind: last.saturating_sub(cursor),
            erasures_pending: self.store.pending_erasures().map_or(0, |p| p.len()),
        }
    }

    /// What each reader's release log holds (`/readyz` of a reader says how far it took it).
    fn releases(&self) -> BTreeMap<MemberId, u64> {
        let Some(trust) = &self.trust else {
            return BTreeMap::new();
        };
        let members: Vec<MemberId> = trust.held().members.iter().map(|m| m.id.clone()).collect();
        members
            .into_iter()
            .filter(|m| m != &self.member)
            .map(|m| {
                let last = self.store.last_release(&m).unwrap_or(0);
                (m, last)
            })
            .collect()
    }

    /// How full the quarantine is, and each publisher's share that this node follows, so an
    /// operator sees a peer filling it before the share is full.
    fn quarantine_held<'a>(&self, publishers: impl Iterator<Item = &'a MemberId>) -> Quarantine {
        self.store
            .quarantine_held()
            .map(|held| WholeQuarantine {
                held: Held::of(held, self.quarantine_caps),
                publishers: publishers
                    .map(|p| {
                        let share = self.store.quarantined_from(p.as_str());
                        let share = share.map(|h| Held::of(h, self.quarantine_share));
                        (p.clone(), share.into())
                    })
                    .collect(),
            })
            .into()
    }
}
