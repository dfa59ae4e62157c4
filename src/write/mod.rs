//! The write path: everything that ends in an event being stored.
//!
//! [`Publisher`] is the handle callers hold (the local API for the agency's own events, the sync
//! tasks for events received from peers); the writer thread behind it is the *only* code that
//! appends to the log, assigns positions and sequences, signs, and flushes. Nothing is
//! acknowledged before the flush that covers it. Erasure (`erasure`) is the writer's too: it is
//! the one other change of a stored event (its disclosures deleted, its signed part kept).

pub mod erasure;
mod publisher;
mod withholding;
mod writer;

pub use publisher::{
    Draft, Heads, Outcome, PublishError, Published, Publisher, ReceiveCursor, Receiving, Signer,
};
