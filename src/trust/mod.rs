//! Who belongs to the federation and how they prove it: the signed manifest (members, keys,
//! endpoints, event types, grants), the TLS configuration and verifiers for mutual TLS between
//! nodes (`tls`) and for pinned TLS with an X-Road security server (`pinned`), certificates
//! issued from CSRs, and the authority's own library (init, members, grants, sign).
//!
//! Owns: every decision "is this key / certificate / member / grant valid now". Touches the store
//! only to persist the newest manifest; never events, views or cursors.

pub mod authority;
pub(crate) mod certs;
// Not documented yet (issue 28): the manifest is being changed meanwhile.
#[allow(missing_docs)]
pub mod manifest;
pub mod pinned;
pub mod tls;
