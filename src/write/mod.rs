//! The write path: everything that ends in an event being stored.
//!
//! [`Publisher`] is the handle callers hold (the local API for the agency's own events, the sync
//! tasks for events received from peers); the writer thread behind it is the *only* code that
//! appends to the log, assigns positions and sequences, signs, and flushes. Nothing is
//! acknowledged before the flush that covers it.

mod publisher;
mod withholding;
mod writer;

/// The capability to append to the log: [`crate::store::WriteBatch::append`] (and the log's
/// cursor, subtree and release writes) and [`crate::store::Store::commit`]/[`Store::apply`]
/// take one, and only this module can make one, so the compiler keeps "the writer is the only
/// code that appends" true: the projector, the side logs and every other crate of the workspace
/// write through [`crate::store::Store::apply_other`] or through a [`Publisher`].
///
/// Outside the crate (the tools, the benchmarks, the end-to-end tests) neither way to make one
/// compiles:
///
/// ```compile_fail
/// let _ = jol::write::LogAppend(());
/// ```
///
/// ```compile_fail
/// let _ = jol::write::LogAppend::new();
/// ```
///
/// [`Store::apply`]: crate::store::Store::apply
#[derive(Debug, Clone, Copy)]
pub struct LogAppend(());

impl LogAppend {
    /// Private: visible in `crate::write` (the writer, withholding) and nowhere else.
    fn new() -> LogAppend {
        LogAppend(())
    }

    /// For the store's and the receipt's unit tests, which stage appends by hand.
    #[cfg(test)]
    pub(crate) fn for_tests() -> LogAppend {
        LogAppend(())
    }
}

pub use publisher::{
    Draft, Heads, Outcome, PublishError, Published, Publisher, ReceiveCursor, Receiving, Signer,
};
