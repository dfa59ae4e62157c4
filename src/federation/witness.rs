//! Witnessing: each subscription periodically fetches the publisher's latest signed checkpoint,
//! checks it is consistent with the last one it accepted (a consistency proof), checks that the
//! events the publisher's feed served this node since the last check are in the tree the
//! checkpoint commits to (an inclusion proof each), co-signs it and sends the co-signature back.
//!
//! A checkpoint that contradicts an earlier one is a fork (`log-fork`); a served event that the
//! checkpointed log does not hold is a split view (`log-split`: the publisher shows readers
//! something other than its log). Either is counted, logged, and kept in quarantine with the
//! signed evidence, and the checkpoint is not co-signed. A proof that cannot be fetched is only a
//! fetch failure: counted, and tried again at the next round.

/// Most inclusion proofs one witnessing round asks for (the rest wait for the next round).
const INCLUSION_CHECKS_PER_ROUND: u64 = 256;

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
        let (status, body) = client.get("/checkpoint").await?;
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
            let path = format!("/proof/consistency?from={}&to={}", l.size, new.size);
            let v = fetch_proof(client, &path).await?;
            proof = hashes(&v["proof"]);
        }
        let judged = checkpoint::judge(last.as_ref(), &new, &proof);
        if let Witnessed::Fork(reason) = &judged {
            return self.alarm(from, reason, last_bytes.as_deref(), &bytes);
        }
        // Whether new or already seen, the checkpoint must hold what the feed served since.
        if let Some(split) = self.check_inclusions(client, from, &new).await? {
            return self.split(from, &split, &bytes);
        }
        match judged {
            Witnessed::Unchanged | Witnessed::Fork(_) => Ok(()),
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
                    .post_json("/cosignature", bytes::Bytes::from(signed))
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
        )
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
        )?;
        self.store.set_meta(&alarmed, new).map_err(SyncError::from)
    }

    /// Check that the events `from`'s feed served this node since the last check are in the
    /// tree `checkpoint` commits to. Returns the first one that is not, with why.
    async fn check_inclusions(
        &self,
        client: &mut HttpClient,
        from: &MemberId,
        checkpoint: &Checkpoint,
    ) -> Result<Option<Split>, SyncError> {
        let Some(root) = checkpoint::decode_hash(&checkpoint.root) else {
            return Ok(None); // a malformed root was already refused by the signature check
        };
        let done_key = Meta::InclusionChecked(from.clone());
        let done = self
            .store
            .meta(&done_key)?
            .and_then(|v| v.try_into().ok())
            .map_or(0, u64::from_be_bytes);
        let held = self.store.cursor(from)?;
        let mut checked = done;
        for sequence in done + 1..=held.min(done + INCLUSION_CHECKS_PER_ROUND) {
            let Some(position) = self.store.position_of_sequence(from, sequence)? else {
                checked = sequence; // withheld from this node: nothing held to check
                continue;
            };
            let Some(bytes) = self.store.get(position)? else {
                break;
            };
            let path = format!("/proof/event?sequence={sequence}&size={}", checkpoint.size);
            let answer = match client.get(&path).await? {
                (status, _) if status == hyper::StatusCode::CONFLICT => break, // not covered yet
                (status, _) if status == hyper::StatusCode::NOT_FOUND => {
                    return Ok(Some(Split {
                        sequence,
                        event: bytes,
                        reason: "the publisher's log holds no event with the sequence it served"
                            .into(),
                    }))
                }
                (status, body) if status.is_success() => {
                    serde_json::from_slice::<serde_json::Value>(&body)
                        .map_err(|e| SyncError::ProofFetch(e.to_string()))?
                }
                (status, _) => {
                    return Err(SyncError::ProofFetch(format!(
                        "the publisher answered {status}"
                    )))
                }
            };
            let index = answer["leafIndex"].as_u64().unwrap_or(u64::MAX);
            let leaf = crate::log::event_leaf(&bytes);
            let proof = hashes(&answer["proof"]);
            if !crate::merkle::verify_inclusion(&leaf, index, checkpoint.size, &proof, &root) {
                return Ok(Some(Split {
                    sequence,
                    event: bytes,
                    reason: format!(
                        "the event served at sequence {sequence} is not in the log the checkpoint of size {} commits to",
                        checkpoint.size
                    ),
                }));
            }
            checked = sequence;
        }
        if checked > done {
            self.store.set_meta(&done_key, &checked.to_be_bytes())?;
        }
        Ok(None)
    }

    /// A split view: count it, keep the served event and the signed checkpoint as evidence.
    fn split(&self, from: &MemberId, split: &Split, checkpoint: &[u8]) -> Result<(), SyncError> {
        let alarmed = Meta::ForkAlarm(from.clone());
        if self.store.meta(&alarmed)?.as_deref() == Some(checkpoint) {
            return Ok(()); // raised already for this checkpoint
        }
        self.metrics
            .forks
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        tracing::error!(%from, sequence = split.sequence, "LOG SPLIT: an event the publisher served is not in the log its checkpoint commits to");
        let evidence = serde_json::json!({
            "sequence": split.sequence,
            "event": serde_json::from_slice::<serde_json::Value>(&split.event).ok(),
            "checkpoint": serde_json::from_slice::<serde_json::Value>(checkpoint).ok(),
        });
        self.quarantine(
            from,
            &Rejection::new(Reason::LogSplit, split.reason.clone()),
            &evidence.to_string(),
        )?;
        Ok(self.store.set_meta(&alarmed, checkpoint)?)
    }
}

/// A served event the checkpointed log does not hold.
struct Split {
    sequence: u64,
    event: Vec<u8>,
    reason: String,
}

/// GET a proof; anything but a 2xx JSON answer is a fetch failure (never evidence of a fork).
async fn fetch_proof(client: &mut HttpClient, path: &str) -> Result<serde_json::Value, SyncError> {
    let (status, body) = client.get(path).await?;
    if !status.is_success() {
        return Err(SyncError::ProofFetch(format!(
            "the publisher answered {status} for a proof"
        )));
    }
    serde_json::from_slice(&body).map_err(|e| SyncError::ProofFetch(e.to_string()))
}

/// The base64url hashes of a proof.
fn hashes(v: &serde_json::Value) -> Vec<crate::merkle::Hash> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|h| h.as_str().and_then(checkpoint::decode_hash))
        .collect()
}
