//! Jol: a federated data-exchange node for signed, schema-validated events.
pub mod identifiers;
pub mod schema;
