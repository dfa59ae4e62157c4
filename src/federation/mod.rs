//! The exchange between nodes: the peer feed a publisher serves ([`feed`]), the subscriptions
//! that follow other members' feeds ([`sync`]), the checks every received event must pass
//! ([`receipt`]), the split-view check of publishers' checkpoints (`witness`), the tlog-witness
//! this node is for the other members' logs ([`witness_server`]), when a contradiction of a log
//! raises an alarm and how much evidence is kept (`alarm`), submitting this node's
//! checkpoints to its witnesses ([`cosigning`]), and the verifiable log's checkpoint and
//! proofs as HTTP answers ([`proofs`]: served on the peer listener, through `jol-feed`, and by
//! the local API).
//!
//! Owns: what crosses the peer listener and how it is judged. Stores only through
//! [`crate::write::Publisher`] (received events, cursors) and the store's quarantine.

mod alarm;
pub(crate) mod cosigning;
pub(crate) mod feed;
#[cfg(test)]
pub(crate) mod fixture;
pub mod proofs;
pub mod receipt;
pub mod sync;
mod witness;
pub(crate) mod witness_server;
