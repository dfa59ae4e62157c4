//! Byte budgets: how large an answer between nodes may be, how large the pages built under that
//! bound are, and the one rule that fills a page under a budget.
//!
//! Every size relation is written here, so none can drift from another: a subscriber reads an
//! answer of at most [`MAX_ANSWER_BYTES`]; a feed page is built under [`FEED_PAGE_BYTES`] well
//! below it; no node may be configured to sign or accept an event larger than one page's budget
//! ([`MAX_EVENT_BYTES_CEILING`]), so every event fits in a page some subscriber reads. The local
//! API's listings are built under [`LISTING_BYTES`].
//!
//! A page takes records in order while they fit ([`Budget::take`]), and always its first one,
//! so a reader that pages on from the last record it got makes progress whatever one record
//! weighs. A leaf module: it knows nothing of the rest of the crate.

/// The largest answer a node reads from another (a feed page, a manifest, a proof): what a
/// subscriber accepts.
pub const MAX_ANSWER_BYTES: usize = 64 << 20;

/// The budget of each part of a feed page: its events, then its releases. Each part holds at
/// least one entry, so a page is at most twice this (the first release may come after events
/// that took the whole budget), which leaves half of [`MAX_ANSWER_BYTES`] for its framing.
pub const FEED_PAGE_BYTES: usize = MAX_ANSWER_BYTES / 4;

/// The largest signed event (JWS bytes) a node may be configured to publish or accept
/// (`[limits] max_event_bytes`): one event alone within a feed page's budget.
pub const MAX_EVENT_BYTES_CEILING: usize = FEED_PAGE_BYTES;

/// The default of `[limits] max_event_bytes`.
pub const DEFAULT_MAX_EVENT_BYTES: usize = 1 << 20;

/// The largest answer of a local-API listing (`GET /api/v1/events`, `/api/v1/quarantine`),
/// unless its one record is larger.
pub const LISTING_BYTES: usize = 4 << 20;

/// What an answer holds beside its records (braces, `next`, `head`, `total`…): its records'
/// budget is what is left of the answer's.
pub const ANSWER_FRAMING: usize = 1024;

/// A page being filled under a byte budget.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    left: usize,
    /// What each record costs beside its own bytes (its place in the answer's JSON).
    per_record: usize,
    taken: usize,
    closed: bool,
}

impl Budget {
    /// A page of at most `bytes` (beyond its first record).
    pub fn new(bytes: usize) -> Budget {
        Budget {
            left: bytes,
            per_record: 0,
            taken: 0,
            closed: false,
        }
    }

    /// No bound: every record is taken.
    pub fn unlimited() -> Budget {
        Budget::new(usize::MAX)
    }

    /// Each record also costs `bytes` (the framing the answer wraps it in).
    pub fn per_record(self, bytes: usize) -> Budget {
        Budget {
            per_record: bytes,
            ..self
        }
    }

    /// Whether a record of `size` bytes goes in the page: the first always, each later one while
    /// it fits in what is left. Once one is refused the page is closed, so a page is always a run
    /// of records from where it starts (the reader pages on from the last one).
    pub fn take(&mut self, size: usize) -> bool {
        let cost = size.saturating_add(self.per_record);
        if self.closed || (self.taken > 0 && cost > self.left) {
            self.closed = true;
            return false;
        }
        self.left = self.left.saturating_sub(cost);
        self.taken += 1;
        true
    }

    /// The bytes left for what follows (a feed page's releases after its events).
    pub fn left(&self) -> usize {
        self.left
    }
}

/// How many of `sizes`, in order, `budget` takes ([`Budget::take`]).
pub fn fitting(sizes: impl IntoIterator<Item = usize>, mut budget: Budget) -> usize {
    sizes.into_iter().take_while(|s| budget.take(*s)).count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_takes_records_while_they_fit_and_always_the_first() {
        assert_eq!(fitting([40, 40, 40], Budget::new(100)), 2);
        assert_eq!(fitting([40, 60, 1], Budget::new(100)), 2);
        assert_eq!(fitting([500, 1], Budget::new(100)), 1, "the first always");
        assert_eq!(fitting([], Budget::new(100)), 0);
        assert_eq!(fitting([10; 9], Budget::new(100).per_record(10)), 5);
    }

    #[test]
    fn a_page_is_a_run_a_smaller_record_after_a_refused_one_stays_out() {
        let mut b = Budget::new(100);
        assert!(b.take(90));
        assert!(!b.take(20));
        assert!(
            !b.take(5),
            "a record after a refused one would leave a hole"
        );
        assert_eq!(b.left(), 10);
    }

    #[test]
    fn the_relations_hold() {
        const { assert!(2 * FEED_PAGE_BYTES + ANSWER_FRAMING < MAX_ANSWER_BYTES) };
        const { assert!(MAX_EVENT_BYTES_CEILING <= FEED_PAGE_BYTES) };
        const { assert!(DEFAULT_MAX_EVENT_BYTES < MAX_EVENT_BYTES_CEILING) };
        const { assert!(ANSWER_FRAMING < LISTING_BYTES) };
    }
}
