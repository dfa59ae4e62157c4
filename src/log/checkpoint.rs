//! Signed checkpoints of a node's Merkle log, and witnesses' co-signatures.
//!
//! A checkpoint states "the log of ORIGIN had SIZE entries with root ROOT at TIME", signed as a
//! JWS with the node's event-signing key, so anyone with the manifest can check it. Peers that
//! sync from a node witness its checkpoints: they check each new one is consistent with the last
//! one they saw (an RFC 9162 consistency proof), co-sign it, and send the co-signature back. Two
//! checkpoints that cannot both be true are a fork: evidence that history was rewritten.

use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ed25519_dalek::SigningKey;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use tokio::sync::watch;

use crate::event::identifiers::{KeyName, MemberId};
use crate::event::jws::{self, Jws, Typ};
use crate::merkle::{self, Hash};
use crate::store::{SideLog, SideLogTree, Store};
use crate::trust::manifest::Manifest;

/// The signed statement about a log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Checkpoint {
    /// The member whose log it is (and who signs it).
    pub origin: MemberId,
    /// How many entries the log holds.
    pub size: u64,
    /// Root hash, base64url.
    pub root: String,
    /// When it was signed.
    #[serde(with = "time::serde::rfc3339")]
    pub time: OffsetDateTime,
    /// The quarantine log: how many records, and its root (base64url).
    #[serde(default)]
    pub quarantine_size: u64,
    /// The quarantine log's root.
    #[serde(default)]
    pub quarantine_root: String,
    /// The access log (reads of personal data): how many records, and its root (base64url).
    #[serde(default)]
    pub access_size: u64,
    /// The access log's root.
    #[serde(default)]
    pub access_root: String,
}

impl Checkpoint {
    /// The size and root this checkpoint states for a side log.
    pub(crate) fn side(&self, log: SideLog) -> (u64, &str) {
        match log {
            SideLog::Quarantine => (self.quarantine_size, &self.quarantine_root),
            SideLog::Access => (self.access_size, &self.access_root),
        }
    }
}

/// A witness's co-signature of a checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct Cosignature {
    pub(crate) witness: MemberId,
    pub origin: MemberId,
    pub size: u64,
    pub root: String,
    #[serde(with = "time::serde::rfc3339")]
    pub time: OffsetDateTime,
}

/// A statement a member signs about a log: what kind of signed object it is, and who signed it
/// when (the key must be valid for that member at that time).
pub trait Statement: Serialize + for<'de> Deserialize<'de> {
    /// The JWS `typ` the statement is signed as.
    const TYP: Typ;
    /// Who signed it, and when.
    fn signer(&self) -> (&MemberId, OffsetDateTime);
}

impl Statement for Checkpoint {
    const TYP: Typ = Typ::Checkpoint;
    fn signer(&self) -> (&MemberId, OffsetDateTime) {
        (&self.origin, self.time)
    }
}

impl Statement for Cosignature {
    const TYP: Typ = Typ::Cosignature;
    fn signer(&self) -> (&MemberId, OffsetDateTime) {
        (&self.witness, self.time)
    }
}

/// Why a checkpoint or co-signature was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum CheckpointError {
    #[error("not a signed checkpoint: {0}")]
    Format(String),
    #[error("the checkpoint's signature is not by a valid key of its origin: {0}")]
    Signature(String),
}

/// A hash as checkpoints and proofs write it (base64url).
pub fn encode_hash(h: &Hash) -> String {
    URL_SAFE_NO_PAD.encode(h)
}

/// A hash written as [`encode_hash`] writes it.
pub fn decode_hash(s: &str) -> Option<Hash> {
    URL_SAFE_NO_PAD.decode(s).ok()?.try_into().ok()
}

/// Sign a statement with the node's key.
pub fn sign<T: Statement>(statement: &T, key: &SigningKey, kid: &KeyName) -> Vec<u8> {
    jws::sign(
        key,
        kid,
        T::TYP,
        &serde_json::to_vec(statement).unwrap_or_default(),
    )
}

/// Read a signed statement without checking its signature (what this node stored itself).
pub(crate) fn read<T: Statement>(bytes: &[u8]) -> Result<T, CheckpointError> {
    let jws = Jws::parse(bytes, T::TYP).map_err(|e| CheckpointError::Format(e.to_string()))?;
    serde_json::from_slice(jws.payload()).map_err(|e| CheckpointError::Format(e.to_string()))
}

/// Verify a signed statement by its signer (a member of the manifest) at its time.
pub(crate) fn verify<T: Statement>(
    bytes: &[u8],
    manifest: &Manifest,
) -> Result<T, CheckpointError> {
    let jws = Jws::parse(bytes, T::TYP).map_err(|e| CheckpointError::Format(e.to_string()))?;
    let statement: T = serde_json::from_slice(jws.payload())
        .map_err(|e| CheckpointError::Format(e.to_string()))?;
    let (member, at) = statement.signer();
    let key = manifest
        .event_key(member, jws.kid(), at, None)
        .map_err(|p| CheckpointError::Signature(p.to_string()))?;
    jws.verify(&key)
        .map_err(|e| CheckpointError::Signature(e.to_string()))?;
    if !manifest.accepts_alg(member, jws.alg()) {
        return Err(CheckpointError::Signature(
            "EdDSA from a member the manifest does not mark as not yet migrated".into(),
        ));
    }
    Ok(statement)
}

pub(crate) fn verify_checkpoint(
    bytes: &[u8],
    manifest: &Manifest,
) -> Result<Checkpoint, CheckpointError> {
    verify(bytes, manifest)
}

pub(crate) fn verify_cosignature(
    bytes: &[u8],
    manifest: &Manifest,
) -> Result<Cosignature, CheckpointError> {
    verify(bytes, manifest)
}

/// What a witness concluded about a new checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Witnessed {
    /// Nothing seen before, or consistent with what was: co-sign it.
    Consistent,
    /// Not newer than the last one seen (same size, same root).
    Unchanged,
    /// The two cannot both be true.
    Fork(String),
}

/// Compare a new checkpoint with the last one seen, given the consistency proof between them.
pub(crate) fn judge(last: Option<&Checkpoint>, new: &Checkpoint, proof: &[Hash]) -> Witnessed {
    let Some(last) = last else {
        return Witnessed::Consistent;
    };
    let (Some(old_root), Some(new_root)) = (decode_hash(&last.root), decode_hash(&new.root)) else {
        return Witnessed::Fork("a root is not a hash".into());
    };
    if new.size < last.size {
        return Witnessed::Fork(format!(
            "the log shrank from {} to {} entries",
            last.size, new.size
        ));
    }
    if new.size == last.size {
        return if old_root == new_root {
            Witnessed::Unchanged
        } else {
            Witnessed::Fork(format!("two different roots for size {}", new.size))
        };
    }
    if merkle::verify_consistency(last.size, new.size, &old_root, &new_root, proof) {
        Witnessed::Consistent
    } else {
        Witnessed::Fork(format!(
            "size {} is not an extension of size {}",
            new.size, last.size
        ))
    }
}

/// Sign a checkpoint every `every` while the flushed log grows, until `stop`.
pub(crate) async fn run(
    store: Store,
    origin: MemberId,
    key: SigningKey,
    kid: KeyName,
    mut flushed: watch::Receiver<u64>,
    every: Duration,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let size = *flushed.borrow();
        let sides = side_sizes(&store);
        if let Err(e) = sign_if_grown(&store, &origin, &key, &kid, size) {
            tracing::error!(error = %e, "cannot sign a checkpoint");
        }
        tokio::select! {
            _ = stop.changed() => return,
            _ = tokio::time::sleep(every) => {}
        }
        tokio::select! {
            _ = stop.changed() => return,
            _ = flushed.wait_for(|s| *s > size) => {}
            _ = wait_for_side_logs(&store, sides) => {}
        }
    }
}

fn side_sizes(store: &Store) -> [u64; 2] {
    [SideLog::Quarantine, SideLog::Access].map(|log| store.side_len(log))
}

async fn wait_for_side_logs(store: &Store, seen: [u64; 2]) {
    while side_sizes(store) == seen {
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// The statement of the latest checkpoint this node signed, if any.
fn latest(store: &Store) -> Result<Option<Checkpoint>, crate::store::StoreError> {
    Ok(store
        .latest_checkpoint()?
        .and_then(|(_, b)| read::<Checkpoint>(&b).ok()))
}

/// Make sure a signed checkpoint covers the first `size` entries of the event log (what an
/// evidence bundle needs): the latest one when it does, so its witnesses' co-signatures stay
/// usable, or else a new one.
pub(crate) fn ensure_covers(
    store: &Store,
    origin: &MemberId,
    key: &SigningKey,
    kid: &KeyName,
    size: u64,
) -> Result<(), crate::store::StoreError> {
    if latest(store)?.is_some_and(|c| c.size >= size) {
        return Ok(());
    }
    sign_if_grown(store, origin, key, kid, size)
}

/// Sign a checkpoint of the first `size` log entries and the whole quarantine and access logs, if
/// any of them grew since the last checkpoint. The side logs are flushed first, so a checkpoint
/// never covers what a crash could take back.
pub fn sign_if_grown(
    store: &Store,
    origin: &MemberId,
    key: &SigningKey,
    kid: &KeyName,
    size: u64,
) -> Result<(), crate::store::StoreError> {
    store.flush()?;
    let [quarantine_size, access_size] = side_sizes(store);
    let covered = latest(store)?.is_some_and(|c| {
        c.size >= size && c.quarantine_size >= quarantine_size && c.access_size >= access_size
    });
    if covered || (size == 0 && quarantine_size == 0 && access_size == 0) {
        return Ok(());
    }
    let side_root =
        |log, size| merkle::root(&SideLogTree(store, log), size).map(|h| encode_hash(&h));
    let c = Checkpoint {
        origin: origin.clone(),
        size,
        root: encode_hash(&merkle::root(store, size)?),
        time: OffsetDateTime::now_utc(),
        quarantine_size,
        quarantine_root: side_root(SideLog::Quarantine, quarantine_size)?,
        access_size,
        access_root: side_root(SideLog::Access, access_size)?,
    };
    store.put_checkpoint(size, &sign(&c, key, kid))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ckpt(size: u64, root: Hash) -> Checkpoint {
        Checkpoint {
            origin: "a/b/c/d".parse().unwrap(),
            size,
            root: encode_hash(&root),
            time: OffsetDateTime::now_utc(),
            quarantine_size: 0,
            quarantine_root: String::new(),
            access_size: 0,
            access_root: String::new(),
        }
    }

    #[test]
    fn a_witness_accepts_extensions_and_flags_forks() {
        let tree = merkle::MemoryTree::new((0..20u8).map(|i| merkle::leaf_hash(&[i])));
        let r = |n| merkle::root(&tree, n).unwrap();
        let old = ckpt(7, r(7));
        let new = ckpt(15, r(15));
        let proof = merkle::consistency_proof(&tree, 7, 15).unwrap();
        assert_eq!(judge(None, &new, &[]), Witnessed::Consistent);
        assert_eq!(judge(Some(&old), &new, &proof), Witnessed::Consistent);
        assert_eq!(judge(Some(&old), &ckpt(7, r(7)), &[]), Witnessed::Unchanged);
        assert!(matches!(
            judge(Some(&old), &ckpt(7, r(8)), &[]),
            Witnessed::Fork(_)
        ));
        assert!(matches!(judge(Some(&new), &old, &[]), Witnessed::Fork(_)));
        // A history rewritten after the checkpoint was witnessed.
        let rewritten =
            merkle::MemoryTree::new((0..20u8).map(|i| merkle::leaf_hash(&[i ^ u8::from(i == 3)])));
        let forged = ckpt(15, merkle::root(&rewritten, 15).unwrap());
        let forged_proof = merkle::consistency_proof(&rewritten, 7, 15).unwrap();
        assert!(matches!(
            judge(Some(&old), &forged, &forged_proof),
            Witnessed::Fork(_)
        ));
    }
}
