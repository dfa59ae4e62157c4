//! The verifiable log, built on the RFC 9162 Merkle tree ([`crate::merkle`]) over the node's log
//! and its side logs, in the C2SP formats: signed notes (`note.rs`), checkpoints and witnesses'
//! co-signatures (`checkpoint.rs`), hash tiles (`tiles.rs`), the offline audit (`jol verify`)
//! and evidence bundles of tlog-proofs (`bundle.rs`). The faces serve its checkpoint, tiles and
//! proofs ([`crate::federation::proofs`]).
//!
//! Owns: proving that nothing stored was altered or dropped, and the one rule that gives a stored
//! event's leaf ([`event_leaf`]). Reads the store; the leaves themselves are written by the
//! writer, using that rule.

pub mod audit;
pub(crate) mod bundle;
pub mod checkpoint;
pub mod note;
pub mod tiles;

use crate::merkle::{leaf_hash, Hash};

/// The Merkle log leaf of a stored event: the RFC 9162 leaf hash of its JWS in compact
/// serialisation (`header.payload.signature`), or of the stored bytes themselves when they are not
/// a flattened JWS. Every writer of the log and every auditor of it calls this one function.
pub fn event_leaf(stored: &[u8]) -> Hash {
    match crate::event::jws::compact(stored) {
        Some(compact) => leaf_hash(&compact),
        None => leaf_hash(stored),
    }
}
