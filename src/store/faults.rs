//! Faults a test makes the store's next durable commits meet: the commit point refused after
//! the event log and the per-person files were written ahead of it, or a commit that lands and
//! is reported failed (a database whose connection dropped after it committed). What the
//! writer does after either is what a full disk or a lost connection makes it do in
//! production; these let its tests reach that path on purpose. A production build holds no
//! fault and cannot be given one ([`Faults`] is empty there).

/// How one commit fails.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(not(test), allow(dead_code))]
pub(crate) enum Fault {
    /// The KV's commit (the commit point) fails before it writes; what was appended to the
    /// event log and the per-person files ahead of it stays beyond what the KV records.
    Refused,
    /// The KV's commit lands, and the store reports it failed.
    LandedButReportedFailed,
}

/// The faults still to meet, in order, shared by every clone of one store.
#[cfg(test)]
#[derive(Clone, Default)]
pub(crate) struct Faults(std::sync::Arc<std::sync::Mutex<std::collections::VecDeque<Fault>>>);

/// A production build's faults: none.
#[cfg(not(test))]
#[derive(Clone, Default)]
pub(crate) struct Faults;

#[cfg(test)]
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

#[cfg(not(test))]
impl Faults {
    /// None, ever.
    pub(super) fn next(&self) -> Option<Fault> {
        None
    }
}
