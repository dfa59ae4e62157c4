//! Jol: a federated data-exchange node for signed, schema-validated events.
pub mod api;
pub mod bench;
pub mod cli;
pub mod client;
pub mod config;
pub mod event;
pub mod http;
pub mod identifiers;
pub mod jws;
pub mod keys;
pub mod node;
pub mod publish;
pub mod schema;
pub mod server;
pub mod store;
