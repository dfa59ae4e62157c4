//! The exchange between nodes: the peer feed a publisher serves ([`feed`]), the subscriptions
//! that follow other members' feeds ([`sync`]), the checks every received event must pass
//! ([`receipt`]), and witnessing of publishers' checkpoints.
//!
//! Owns: what crosses the peer listener and how it is judged. Stores only through
//! [`crate::write::Publisher`] (received events, cursors) and the store's quarantine.

pub mod feed;
pub mod receipt;
pub mod sync;
mod witness;
