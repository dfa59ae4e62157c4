//! What an event is: identifiers (members, keys, PINs), signing keys, the JSON Schemas of the
//! event types and the closed vocabularies of their data as types (`vocab`), the JWS format,
//! and the CloudEvent with its signed form, whole or with its personal fields selectively
//! disclosable (`disclosure`: SD-JWT, RFC 9901).
//!
//! Owns: everything needed to build, sign, parse, verify and validate one event on its own.
//! Touches no store, no network and no federation state: whether a *member* may sign an event is `trust`'s question,
//! whether it is accepted from a peer is `federation::receipt`'s.

pub(crate) mod batch;
pub(crate) mod cloudevent;
pub mod disclosure;
pub mod identifiers;
pub(crate) mod json;
pub mod jws;
pub mod keys;
pub mod schema;
pub(crate) mod vocab;

/// How far apart agencies' clocks may be: an event's time may be this far in the future, and a
/// consent this far after the event that carries it.
pub const CLOCK_SKEW: time::Duration = time::Duration::minutes(5);

pub use cloudevent::{Event, EventError, SignedEvent, SupersedeError};
