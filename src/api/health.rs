//! `/readyz`: whether the node can do its work (store, manifest, peers, views).

use hyper::StatusCode;

use super::LocalApi;
use crate::event::identifiers::MemberId;
use crate::net::http::{self, Response};

impl LocalApi {
    /// Ready when the store answers and the manifest (if any) is usable; peers that cannot be
    /// reached make the node `degraded` (it still accepts and serves its own events).
    pub(super) fn readyz(&self) -> Response {
        let store = match (self.metrics.store_failure(), self.store.last_position()) {
            (None, Ok(p)) => serde_json::json!({"ok": true, "events": p}),
            (Some(e), _) => {
                serde_json::json!({"ok": false, "error": format!("writes are failing: {e}")})
            }
            (None, Err(e)) => serde_json::json!({"ok": false, "error": e.to_string()}),
        };
        let manifest = self.trust.as_ref().map(|t| match t.usable() {
            Ok(m) => serde_json::json!({"ok": true, "serial": m.serial,
                "expires": m.expires.format(&time::format_description::well_known::Rfc3339).unwrap_or_default()}),
            Err(e) => serde_json::json!({"ok": false, "serial": t.held().serial, "error": e.to_string()}),
        });
        let peers = self.metrics.sync_snapshot();
        let ready = store["ok"] == true && manifest.as_ref().is_none_or(|m| m["ok"] == true);
        let forks = self
            .metrics
            .forks
            .load(std::sync::atomic::Ordering::Relaxed);
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
        let not_kept = self.metrics.quarantine_full_total();
        if not_kept > 0 {
            warnings.push(format!(
                "the quarantine is full: {not_kept} refused submissions or events could not be kept (submissions were answered 507, received events wait at their publishers); raise [limits] quarantine_max_records or quarantine_max_bytes"
            ));
        }
        let caps = self.quarantine_caps;
        let quarantine = match self.store.quarantine_held() {
            Ok(held) => serde_json::json!({"records": held.records, "bytes": held.bytes,
                "maxRecords": caps.max_records, "maxBytes": caps.max_bytes,
                "publishers": self.quarantine_shares(peers.keys())}),
            Err(e) => serde_json::json!({"error": e.to_string()}),
        };
        let all_peers = peers.values().all(|s| s.connected) && forks == 0 && warnings.is_empty();
        let status = match (ready, all_peers) {
            (false, _) => "not-ready",
            (true, false) => "degraded",
            (true, true) => "ready",
        };
        let code = if ready {
            StatusCode::OK
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        };
        let own_sequence = *self.publisher.heads().own_sequence.borrow();
        let projected = crate::registry::projector::cursor(&self.store).unwrap_or(0);
        let last = self.store.last_position().unwrap_or(0);
        let erasures_pending = self.store.pending_erasures().map_or(0, |p| p.len());
        let views = serde_json::json!({"cursor": projected, "behind": last.saturating_sub(projected),
            "erasuresPending": erasures_pending});
        // What each reader's release log holds (`/readyz` of a reader says how far it took it).
        let releases: serde_json::Map<String, serde_json::Value> = self
            .trust
            .as_ref()
            .map(|t| {
                t.held()
                    .members
                    .iter()
                    .map(|m| m.id.clone())
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default()
            .into_iter()
            .filter(|m| m != &self.member)
            .map(|m| {
                let last = self.store.last_release(&m).unwrap_or(0);
                (m.to_string(), last.into())
            })
            .collect();
        http::json(
            code,
            &serde_json::json!({"status": status, "member": self.member, "ownSequence": own_sequence,
            "views": views, "logForks": forks, "store": store, "manifest": manifest, "peers": peers,
            "warnings": warnings, "releases": releases, "quarantine": quarantine,
            "role": self.role.borrow().name()}),
        )
    }

    /// What each publisher this node follows holds of its share of the quarantine, so an
    /// operator sees a peer filling it before the share is full.
    fn quarantine_shares<'a>(
        &self,
        publishers: impl Iterator<Item = &'a MemberId>,
    ) -> serde_json::Map<String, serde_json::Value> {
        let share = self.quarantine_share;
        publishers
            .map(|p| {
                let held = match self.store.quarantined_from(p.as_str()) {
                    Ok(h) => serde_json::json!({"records": h.records, "bytes": h.bytes,
                        "maxRecords": share.max_records, "maxBytes": share.max_bytes}),
                    Err(e) => serde_json::json!({"error": e.to_string()}),
                };
                (p.to_string(), held)
            })
            .collect()
    }
}
