//! Jol: a federated data-exchange node for signed, schema-validated events.
//!
//! Each agency runs one node. Its systems publish events through the node's local API; the node
//! validates, signs and stores them, and serves them to the other members over mutual TLS. Each
//! node follows the others' feeds, checks everything it receives, and assembles a registry view
//! per person and the reintegration KPIs from what consent lets it see. The design, its
//! invariants and where each promise is tested are in `docs/ARCHITECTURE.md`.
//!
//! This library and `jol-node` are the product. What the tests, the benchmarks and the demo
//! need beside it (the synthetic population, the federation builder, the X-Road stand-in, a
//! throwaway PostgreSQL) is in `tools/` (jol-tools, throwaway-pg), which builds on it; nothing
//! here uses them.
//!
//! # Map
//!
//! | folder | owns |
//! |---|---|
//! | [`event`] | identifiers, keys, schemas, JWS, the CloudEvent and its signed form, the log-leaf rule |
//! | [`store`] | the one storage interface, its key spaces and the engines (redb, the default; sled; PostgreSQL) |
//! | [`trust`] | the signed manifest, mutual-TLS verifiers, certificates, the authority |
//! | [`write`] | the publisher handle and the single writer thread (sequence, sign, group commit) |
//! | [`federation`] | the peer feed, subscriptions (sync), receipt checks, witnessing |
//! | [`registry`] | consent, the person view, the projector, KPIs |
//! | [`matching`] | vacancies and courses, competency profiles, the matching score (ESCO, ISCO-08) |
//! | [`log`] | the leaf rule, checkpoints, proofs, audit, evidence bundles |
//! | [`merkle`] | the RFC 9162 Merkle tree itself (a leaf module: hashes, frontier, proofs) |
//! | [`cores`] | spreading one piece of CPU work over the cores (a leaf module) |
//! | [`budget`] | byte budgets: the largest answer, feed page, event and listing, and the rule that fills a page (a leaf module) |
//! | [`progress`] | how far long work over the log has got: events done of the total, rate, time left (a leaf module) |
//! | [`api`] | the local API: routing and auth, then one file per group of handlers |
//! | [`net`] | HTTP plumbing, accept loop, client, webhook, metrics |
//! | [`node`] | configuration and starting a node (listeners, writer, sync, projector) |
//! | [`xroad`] | X-Road (Tunduk) as a transport: the provider face |
//! | [`cli`] | the node's command line (`jol-node`; jol-tools' `jol` adds `demo`, `bench` and the X-Road stand-in) |
//!
//! # A published event
//!
//! 1. `POST /api/v1/events` reaches [`api::LocalApi::handle`], which checks the token and parses
//!    the body into a [`write::Draft`].
//! 2. [`write::Publisher::publish`] validates the data against its schema
//!    ([`event::schema::Schemas::validate`]) in the caller's task and queues it.
//! 3. The writer thread assigns the position and sequence, builds and signs the
//!    [`event::Event`] ([`event::Event::sign`]), stages the event, its indexes, consent state
//!    and its log leaf ([`log::event_leaf`]) in one [`store::WriteBatch`], applies it, and
//!    [`store::Store::flush`]es; only then is the caller answered 201.
//! 4. The [`registry::projector`] folds the new entry into the person's view.
//!
//! # A received event
//!
//! 1. A subscription task in [`federation::sync`] long-polls the publisher's
//!    [`federation::feed`] over mutual TLS (both ends verified by [`trust::tls`]).
//! 2. Each event of a page passes [`federation::receipt::Checker::check`]: JWS parse, key and
//!    member in the manifest, signature, grant, schema, sequence, duplicate.
//! 3. Good events go to [`write::Publisher::receive`] together with the new cursor: the writer
//!    stores them and the cursor in one batch and flushes before the cursor counts as advanced.
//!    Refused events go to quarantine with their reason.
//! 4. The projector folds them into the views, as for a published event.

#![forbid(unsafe_code)]

// `missing_docs` (Cargo.toml) holds for the public API: what other crates (jol-tools, the fuzz
// target, `jol-node`) use; everything else is `pub(crate)` or narrower. `trust::manifest` still
// carries an `allow` (issue 28).

pub mod api;
pub mod budget;
pub mod cli;
pub(crate) mod cores;
pub mod credentials;
pub mod event;
pub mod federation;
#[cfg(any(fuzzing, test))]
pub mod fuzzing;
pub mod log;
pub mod matching;
pub mod merkle;
pub mod net;
pub mod node;
pub(crate) mod policy;
pub mod ports;
pub mod progress;
pub mod registry;
pub mod store;
pub mod trust;
pub mod write;
pub mod xroad;
