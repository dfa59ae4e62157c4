//! HTTP plumbing shared by every listener and client: bodies under limits and problem+json
//! answers ([`http`]), the accept loop with TLS and timeouts ([`server`]), the HTTP client used
//! towards peers ([`client`]), webhook delivery ([`webhook`]), Prometheus metrics
//! ([`metrics`]), loopback ports for laid-out federations ([`ports`]) and X-Road's REST protocol as a transport ([`xroad`]).
//!
//! Owns: bytes on the wire. Knows nothing about events beyond what a webhook forwards.

pub mod client;
pub mod http;
pub mod metrics;
pub mod ports;
pub mod server;
pub mod webhook;
pub mod xroad;
