//! The events of the latest commits, parsed, by log position.
//!
//! Not a storage engine: an in-memory window beside the store. The writer holds every event it
//! stores parsed (it built or checked it); after a commit is durable it leaves them here, so
//! that the projector and the feed, which follow the log a few milliseconds behind, take them as
//! they are instead of reading and parsing the stored bytes again. Bounded: the oldest make room
//! for the newest, and a reader that finds a position missing (too old, written by another
//! replica, or before a restart) reads the store as before.
//! Only committed events enter, in position order, so what is here is what the store holds;
//! a round that erases empties the window before its commit, so no reader takes an erased
//! event from it once the erasure has landed.
//!
//! A replica of a PostgreSQL store holds its window only while its writer lease is known to be
//! its own ([`Recent::usable_until`], set by the lease task): once another replica may have
//! taken the lease (and erased what the window holds), readers take the store's events, even
//! before this replica learns it was deposed.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Instant, SystemTime};

use crate::event::SignedEvent;

/// How many events are kept by default: a few pages of the projector and the feed.
pub(crate) const DEFAULT_CAPACITY: usize = 2048;

/// How many times its capacity the window holds at most, to keep one large commit whole.
const LARGEST_COMMIT_KEPT: usize = 4;

/// The latest committed events, parsed (see the module doc).
pub(crate) struct Recent {
    capacity: usize,
    held: Mutex<Held>,
}

/// Contiguous positions `first ..` and their events.
#[derive(Default)]
struct Held {
    first: u64,
    events: VecDeque<SignedEvent>,
    /// Past this instant nothing held is handed out; `None`: no limit (an embedded store).
    /// Checked on both clocks: the monotonic one stops while the machine is suspended, the
    /// wall clock does not (a suspended writer's lease runs out in the database meanwhile).
    until: Option<(Instant, SystemTime)>,
}

impl Held {
    fn next(&self) -> u64 {
        self.first + self.events.len() as u64
    }

    /// Where `position` is (or would be) in `events`; `None` if it is before the window, or
    /// the window may not be read now.
    fn offset(&self, position: u64) -> Option<usize> {
        if self.until.is_some_and(|(monotonic, wall)| {
            Instant::now() >= monotonic || SystemTime::now() >= wall
        }) {
            return None;
        }
        usize::try_from(position.checked_sub(self.first)?).ok()
    }
}

impl Recent {
    pub(crate) fn new(capacity: usize) -> Recent {
        Recent {
            capacity,
            held: Mutex::new(Held::default()),
        }
    }

    /// Keep the events a commit made durable, the first at `first` and the rest after it: all
    /// of them up to [`LARGEST_COMMIT_KEPT`] times the capacity, and of the earlier ones as
    /// many as the capacity leaves room for. A commit larger than the capacity (many batches
    /// in one round) is so kept whole until the next: its events were all in memory for the
    /// commit, and the projector and the feed are about to take them. A commit that does not
    /// follow the last one kept (a failed commit that landed, a restart) starts the window
    /// again.
    pub(crate) fn committed(&self, first: u64, events: Vec<SignedEvent>) {
        if self.capacity == 0 {
            return;
        }
        let Ok(mut held) = self.held.lock() else {
            return;
        };
        if held.events.is_empty() || held.next() != first {
            held.events.clear();
            held.first = first;
        }
        let keep = self
            .capacity
            .max(events.len().min(self.capacity * LARGEST_COMMIT_KEPT));
        held.events.extend(events);
        let over = held.events.len().saturating_sub(keep);
        held.events.drain(..over);
        held.first += over as u64;
    }

    /// Hand nothing out from `until` on, until it is moved again: the writer lease is known to be
    /// this replica's until then (the lease task moves it forward with each renewal, and to now
    /// when a renewal fails). Events committed meanwhile are still kept, for when it moves on.
    pub(crate) fn usable_until(&self, until: Instant) {
        let wall = SystemTime::now() + until.saturating_duration_since(Instant::now());
        if let Ok(mut held) = self.held.lock() {
            held.until = Some((until, wall));
        }
    }

    /// Forget every event held (an erasure changed stored events: readers take the store's).
    pub(crate) fn clear(&self) {
        if let Ok(mut held) = self.held.lock() {
            held.events.clear();
        }
    }

    /// The event at `position`, if it is still here.
    pub(crate) fn get(&self, position: u64) -> Option<SignedEvent> {
        let held = self.held.lock().ok()?;
        held.events.get(held.offset(position)?).cloned()
    }

    /// Whether the event at `position` is still here ([`Recent::get`] without taking it).
    pub(crate) fn holds(&self, position: u64) -> bool {
        self.held.lock().is_ok_and(|held| {
            held.offset(position)
                .is_some_and(|offset| offset < held.events.len())
        })
    }

    /// Up to `limit` events from `from` on, if `from` is still here (else none: read the store).
    pub(crate) fn from(&self, from: u64, limit: usize) -> Option<Vec<(u64, SignedEvent)>> {
        let held = self.held.lock().ok()?;
        let offset = held.offset(from)?;
        if offset >= held.events.len() {
            return None;
        }
        Some(
            (from..)
                .zip(held.events.range(offset..).take(limit).cloned())
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::identifiers::{KeyName, MemberId};
    use crate::event::keys;
    use crate::event::Event;

    fn signed(sequence: u64) -> SignedEvent {
        let member: MemberId = "central-server/GOV/70000001/migration".parse().unwrap();
        let key = keys::generate();
        let kid = KeyName::new(member.clone(), "k1").unwrap();
        Event::new(
            member,
            crate::event::schema::EventType::ReturneeRecord,
            sequence,
            serde_json::json!({}),
        )
        .sign(&key, &kid)
    }

    fn sequences(events: &[(u64, SignedEvent)]) -> Vec<(u64, u64)> {
        events.iter().map(|(p, s)| (*p, s.sequence())).collect()
    }

    #[test]
    fn nothing_is_handed_out_past_the_time_it_is_usable_until() {
        let recent = Recent::new(8);
        recent.committed(1, vec![signed(1), signed(2)]);
        recent.usable_until(Instant::now() + std::time::Duration::from_secs(60));
        assert!(recent.holds(2));
        assert_eq!(recent.from(1, 10).map(|e| e.len()), Some(2));
        recent.usable_until(Instant::now());
        assert!(recent.get(1).is_none());
        assert!(!recent.holds(2));
        assert!(recent.from(1, 10).is_none());
        // Commits go on being kept, and are handed out once the lease is confirmed again.
        recent.committed(3, vec![signed(3)]);
        recent.usable_until(Instant::now() + std::time::Duration::from_secs(60));
        assert_eq!(recent.get(3).map(|s| s.sequence()), Some(3));
        assert_eq!(recent.from(1, 10).map(|e| e.len()), Some(3));
    }

    #[test]
    fn keeps_the_latest_within_its_capacity() {
        let recent = Recent::new(3);
        recent.committed(1, vec![signed(1), signed(2)]);
        recent.committed(3, vec![signed(3), signed(4)]);
        assert!(recent.get(1).is_none(), "the oldest made room");
        assert_eq!(recent.get(2).map(|s| s.sequence()), Some(2));
        assert_eq!(recent.get(4).map(|s| s.sequence()), Some(4));
        assert!(recent.get(5).is_none());
        let held: Vec<u64> = (0..=5).filter(|p| recent.holds(*p)).collect();
        assert_eq!(held, [2, 3, 4], "holds says what get finds");
        assert_eq!(
            sequences(&recent.from(3, 10).unwrap()),
            vec![(3, 3), (4, 4)]
        );
        assert!(
            recent.from(1, 10).is_none(),
            "no longer here: read the store"
        );
        assert!(recent.from(5, 10).is_none());
    }

    #[test]
    fn a_commit_larger_than_the_capacity_is_kept_whole_until_the_next() {
        let recent = Recent::new(2);
        recent.committed(1, vec![signed(1), signed(2)]);
        recent.committed(3, (3..=6).map(signed).collect());
        let held: Vec<u64> = (0..=7).filter(|p| recent.holds(*p)).collect();
        assert_eq!(held, [3, 4, 5, 6], "the whole commit, nothing before it");
        recent.committed(7, vec![signed(7)]);
        let held: Vec<u64> = (0..=7).filter(|p| recent.holds(*p)).collect();
        assert_eq!(held, [6, 7], "back to the capacity");
        recent.committed(8, (8..=20).map(signed).collect());
        let held: Vec<u64> = (0..=20).filter(|p| recent.holds(*p)).collect();
        assert_eq!(
            held,
            (13..=20).collect::<Vec<u64>>(),
            "never past four times it"
        );
    }

    #[test]
    fn a_commit_that_does_not_follow_starts_again() {
        let recent = Recent::new(10);
        recent.committed(1, vec![signed(1), signed(2)]);
        recent.committed(7, vec![signed(7)]);
        assert!(recent.get(2).is_none());
        assert_eq!(sequences(&recent.from(7, 10).unwrap()), vec![(7, 7)]);
    }

    #[test]
    fn capacity_zero_keeps_nothing() {
        let recent = Recent::new(0);
        recent.committed(1, vec![signed(1)]);
        assert!(recent.get(1).is_none());
    }
}
