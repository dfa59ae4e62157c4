//! Faults a test makes the store's next durable commits meet (test builds only): the commit
//! point refused after the event log and the per-person files were written ahead of it, or a
//! commit that lands and is reported failed (a database whose connection dropped after it
//! committed). What the writer does after either is what a full disk or a lost connection
//! makes it do in production; these let its tests reach that path on purpose.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

/// How one commit fails.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Fault {
    /// The KV's commit (the commit point) fails before it writes; what was appended to the
    /// event log and the per-person files ahead of it stays beyond what the KV records.
    Refused,
    /// The KV's commit lands, and the store reports it failed.
    LandedButReportedFailed,
}

/// The faults still to meet, in order, shared by every clone of one store.
#[derive(Clone, Default)]
pub(crate) struct Faults(Arc<Mutex<VecDeque<Fault>>>);

impl Faults {
    /// The next durable commit meets `fault` (after those injected before it).
    pub(crate) fn inject(&self, fault: Fault) {
        self.0.lock().expect("faults lock").push_back(fault);
    }

    /// The fault the commit now starting meets, if any.
    pub(super) fn next(&self) -> Option<Fault> {
        self.0.lock().expect("faults lock").pop_front()
    }
}
