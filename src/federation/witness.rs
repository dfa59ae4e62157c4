//! Witnessing: each subscription periodically fetches the publisher's latest signed checkpoint,
//! checks it is consistent with the last one it accepted (a consistency proof), co-signs it and
//! sends the co-signature back. A checkpoint that contradicts an earlier one is a fork: counted,
//! logged, and both signed checkpoints kept in quarantine as evidence.

use time::OffsetDateTime;

use super::receipt::{Reason, Rejection};
use super::sync::{SyncError, Syncer};
use crate::event::identifiers::MemberId;
use crate::log::checkpoint::{self, Checkpoint, Cosignature, Witnessed};
use crate::net::client::HttpClient;
use crate::store::Meta;

impl Syncer {
    /// Witness the publisher's latest checkpoint: check it against the last one seen, co-sign it
    /// and send the co-signature back; raise the alarm on a fork.
    pub(super) async fn witness(
        &self,
        client: &mut HttpClient,
        from: &MemberId,
    ) -> Result<(), SyncError> {
        let (status, body) = client.get("/peer/v1/checkpoint").await?;
        if !status.is_success() {
            return Ok(()); // no checkpoint yet
        }
        let answer: serde_json::Value =
            serde_json::from_slice(&body).map_err(|e| SyncError::Decode(e.to_string()))?;
        let bytes = serde_json::to_vec(&answer["checkpoint"]).unwrap_or_default();
        let manifest = self.trust.usable()?;
        let new = match checkpoint::verify_checkpoint(&bytes, &manifest) {
            Ok(c) if &c.origin == from => c,
            Ok(_) => return self.bad_checkpoint(from, "a checkpoint of another origin", &bytes),
            Err(e) => return self.bad_checkpoint(from, &e.to_string(), &bytes),
        };
        let seen_key = Meta::Witnessed(from.clone());
        let last_bytes = self.store.meta(&seen_key)?;
        let last: Option<Checkpoint> = last_bytes.as_deref().and_then(|b| checkpoint::read(b).ok());
        let mut proof = Vec::new();
        if let Some(l) = last.as_ref().filter(|l| l.size < new.size) {
            let path = format!("/peer/v1/proof/consistency?from={}&to={}", l.size, new.size);
            let (status, body) = client.get(&path).await?;
            if status.is_success() {
                let v: serde_json::Value =
                    serde_json::from_slice(&body).map_err(|e| SyncError::Decode(e.to_string()))?;
                proof = v["proof"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|h| h.as_str().and_then(checkpoint::decode_hash))
                    .collect();
            }
        }
        match checkpoint::judge(last.as_ref(), &new, &proof) {
            Witnessed::Unchanged => Ok(()),
            Witnessed::Fork(reason) => self.alarm(from, &reason, last_bytes.as_deref(), &bytes),
            Witnessed::Consistent => {
                self.store.set_meta(&seen_key, &bytes)?;
                let cosig = Cosignature {
                    witness: self.me.clone(),
                    origin: from.clone(),
                    size: new.size,
                    root: new.root.clone(),
                    time: OffsetDateTime::now_utc(),
                };
                let signed = checkpoint::sign(&cosig, &self.witness_key, &self.witness_kid);
                self.store
                    .set_meta(&Meta::Cosigned(from.clone()), &signed)?;
                let (status, _) = client
                    .post_json("/peer/v1/cosignature", bytes::Bytes::from(signed))
                    .await?;
                if !status.is_success() {
                    tracing::warn!(%from, %status, "the publisher refused our co-signature");
                }
                tracing::debug!(%from, size = new.size, "witnessed and co-signed a checkpoint");
                Ok(())
            }
        }
    }

    /// A checkpoint that is not validly signed by the publisher: kept in quarantine, not taken.
    fn bad_checkpoint(&self, from: &MemberId, reason: &str, bytes: &[u8]) -> Result<(), SyncError> {
        tracing::warn!(%from, reason, "the publisher served a checkpoint that does not verify");
        let body = String::from_utf8_lossy(bytes);
        self.quarantine(
            from,
            &Rejection::new(Reason::CheckpointInvalid, reason),
            &body,
        );
        Ok(())
    }

    /// A fork: count it, keep both signed checkpoints as evidence, log it.
    fn alarm(
        &self,
        from: &MemberId,
        reason: &str,
        previous: Option<&[u8]>,
        new: &[u8],
    ) -> Result<(), SyncError> {
        let alarmed = Meta::ForkAlarm(from.clone());
        if self.store.meta(&alarmed).ok().flatten().as_deref() == Some(new) {
            return Ok(());
        }
        self.metrics
            .forks
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        tracing::error!(%from, reason, "LOG FORK: the publisher's checkpoint contradicts one witnessed before");
        let evidence = serde_json::json!({
            "previous": previous.and_then(|b| serde_json::from_slice::<serde_json::Value>(b).ok()),
            "new": serde_json::from_slice::<serde_json::Value>(new).ok(),
        });
        self.quarantine(
            from,
            &Rejection::new(Reason::LogFork, reason),
            &evidence.to_string(),
        );
        self.store.set_meta(&alarmed, new).map_err(SyncError::from)
    }
}
