//! HTTP plumbing shared by every listener and client: bodies under limits and problem+json
//! answers ([`http`]), the accept loop with TLS and timeouts ([`server`]), the HTTP client used
//! towards peers ([`client`]), Prometheus metrics ([`metrics`]) and X-Road's REST protocol as a
//! transport ([`xroad`]).
//!
//! Owns: bytes on the wire. Knows nothing about events, consent or the log: it sits just above
//! the store and the trust material, and below everything that serves.

pub mod client;
pub mod http;
pub(crate) mod metrics;
pub(crate) mod problems;
pub mod server;
pub mod xroad;
