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

use crate::event::cloudevent::SignedEvent;
use crate::event::jws::Members;
use crate::merkle::{leaf_hash, leaf_hash_of, Hash};

/// The Merkle log leaf of a stored event: the RFC 9162 leaf hash of its JWS in compact
/// serialisation (`header.payload.signature`), or of the stored bytes themselves when they are not
/// a flattened JWS. Every writer of the log and every auditor of it comes here (the writer
/// through [`signed_event_leaf`]).
pub fn event_leaf(stored: &[u8]) -> Hash {
    leaf_at(stored, Members::of(stored))
}

/// [`event_leaf`] of an event parsed or signed here, from where its members were found then
/// (its JSON is not parsed again; it is if they were not found).
pub fn signed_event_leaf(signed: &SignedEvent) -> Hash {
    let members = signed.members().or_else(|| Members::of(signed.bytes()));
    leaf_at(signed.bytes(), members)
}

/// The leaf of `stored` whose signed members are at `members`.
fn leaf_at(stored: &[u8], members: Option<Members>) -> Hash {
    match members.and_then(|m| m.in_text(stored)) {
        Some([protected, payload, signature]) => leaf_hash_of(&[
            protected.as_bytes(),
            b".",
            payload.as_bytes(),
            b".",
            signature.as_bytes(),
        ]),
        None => leaf_hash(stored),
    }
}
