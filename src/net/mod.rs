//! HTTP plumbing shared by every listener and client: bodies under limits and problem+json
//! answers ([`http`]), the accept loop with TLS and timeouts ([`server`]), the HTTP client used
//! towards peers ([`client`]), webhook delivery ([`webhook`]) and Prometheus metrics
//! ([`metrics`]).
//!
//! Owns: bytes on the wire. Knows nothing about events beyond what a webhook forwards.

pub mod client;
pub mod http;
pub mod metrics;
pub mod server;
pub mod webhook;
