//! Jol behind X-Road (Tunduk): X-Road's Message Protocol for REST (r1) as a transport.
//!
//! - [`provider`]: the face a security server calls (`[xroad] provider_listen`), offering the
//!   services `jol-feed` (the feed, manifest, checkpoint and proofs, as on the peer listener),
//!   `jol-persons` (a person's view, for a client the manifest and the person's consent allow)
//!   and `jol-kpi` (the KPI report, small cells suppressed). The caller is the `X-Road-Client`
//!   header, trusted only from the node's security server: pinned mutual TLS, or plain HTTP from
//!   the addresses in `allow_from` (no default: with neither the node does not start).
//! - the consumer side lives in [`crate::federation::sync`]: a subscription with `via` fetches
//!   the publisher's `jol-feed` through this node's own security server.
//! - the stand-in security server of the tests and the demo is not the node's: it is jol-tools'
//!   `standin`.
//!
//! The protocol pieces both sides share (headers, service codes, error JSON, addresses, the
//! `[xroad]` settings) are in [`crate::net::xroad`]. Everything Jol adds (signed events, validation, consent, the verifiable log) travels inside
//! X-Road unchanged.

pub(crate) mod openapi;
pub(crate) mod provider;

pub use crate::net::xroad::{Service, XRoadConfig};
