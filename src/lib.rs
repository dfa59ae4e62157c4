//! Jol: a federated data-exchange node for signed, schema-validated events.
pub mod identifiers;
pub mod schema;
pub mod event;
pub mod jws;
pub mod keys;
pub mod store;
pub mod publish;
pub mod config;
pub mod http;
pub mod api;
pub mod server;
pub mod node;
pub mod client;
pub mod cli;
pub mod bench;
