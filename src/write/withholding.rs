//! Consent that stays fair over time: what the writer records when it withholds an own event
//! from a reader, and what it releases when a later consent admits that reader.
//!
//! When the writer appends one of this member's own events about a person, it decides for each
//! reader the manifest grants the type whether the person's consent (as held at that moment)
//! admits the reader. Each reader it does not admit gets a *withheld* record. When the person's
//! consent changes (a returnee record published here or received from the migration agency),
//! every withheld record the new consent admits is appended to that reader's *release log*, in
//! sequence order, and marked released, in the same atomic write as the consent change. The peer
//! feed serves each reader its release log beside the ordinary feed, so an event withheld for
//! lack of consent reaches the reader exactly once, whenever consent comes, however the reader's
//! polling was timed. The ordinary feed keeps serving a placeholder for it.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use crate::event::identifiers::MemberId;
use crate::event::{Event, SignedEvent};
use crate::policy::consent::{self, ConsentState};
use crate::store::{LogAppend, Store, StoreError, WriteBatch};
use crate::trust::manifest::Trust;

/// The writer's view of withheld events and release logs during one group commit.
pub(super) struct Withholding {
    /// The federation's manifest; without it (a node that only publishes locally) nothing is
    /// withheld from anyone.
    trust: Option<Arc<Trust>>,
    /// The next release number of each reader, once known.
    next_release: HashMap<MemberId, u64>,
    /// Withheld records staged this round (not readable from the store yet), by reader and PIN.
    staged: HashMap<(MemberId, String), Vec<(u64, Event)>>,
    /// Releases staged this round (the store still says "withheld"), by reader and position.
    released: HashSet<(MemberId, u64)>,
    /// Every reader something may be withheld from, in the store or staged: read from the store
    /// when the writer starts, grown as records are staged (a failed round's or an erasure's
    /// records gone leave their reader in it, which costs only a look). A consent looks for
    /// records withheld from these readers alone, not from each member of the federation.
    holding: HashSet<String>,
}

impl Withholding {
    /// The writer's withholding under `trust` (none: nothing is withheld), knowing from `store`
    /// whom anything is withheld from already.
    pub(super) fn new(trust: Option<Arc<Trust>>, store: &Store) -> Result<Withholding, StoreError> {
        let holding = match trust.is_some() {
            true => store.withheld_readers()?.into_iter().collect(),
            false => HashSet::new(),
        };
        Ok(Withholding {
            trust,
            next_release: HashMap::new(),
            staged: HashMap::new(),
            released: HashSet::new(),
            holding,
        })
    }

    /// Whether anything can be withheld (the node is a federation member).
    pub(super) fn is_active(&self) -> bool {
        self.trust.is_some()
    }

    /// The own event `event` about `pin` was staged at `position` under consent `state`: record
    /// every granted reader the consent does not admit.
    pub(super) fn on_publish(
        &mut self,
        event: &Event,
        pin: &str,
        position: u64,
        state: Option<&ConsentState>,
        batch: &mut WriteBatch,
    ) {
        let Some(trust) = &self.trust else { return };
        let manifest = trust.held();
        let Some(policy) = manifest.policy(event.event_type) else {
            return;
        };
        for grant in &policy.readers {
            if consent::decide(event, state, &grant.member, &grant.purposes).is_err() {
                batch.set_withheld(&grant.member, pin, position, false);
                if !self.holding.contains(grant.member.as_str()) {
                    self.holding.insert(grant.member.to_string());
                }
                self.staged
                    .entry((grant.member.clone(), pin.to_string()))
                    .or_default()
                    .push((position, event.clone()));
            }
        }
    }

    /// The consent of `pin` is now `state`: release to each reader what it now admits.
    pub(super) fn on_consent(
        &mut self,
        store: &Store,
        pin: &str,
        state: &ConsentState,
        batch: &mut WriteBatch,
    ) -> Result<(), StoreError> {
        let Some(trust) = self.trust.clone() else {
            return Ok(());
        };
        let manifest = trust.held();
        let readers = manifest
            .members
            .iter()
            .map(|m| &m.id)
            .filter(|reader| self.holding.contains(reader.as_str()));
        for reader in readers.collect::<Vec<_>>() {
            let pending = self.pending(store, reader, pin)?;
            for (position, event) in pending {
                let Some(purposes) = manifest.reader_purposes(reader, event.event_type) else {
                    continue;
                };
                if consent::decide(&event, Some(state), reader, purposes).is_ok() {
                    let number = self.next_release(store, reader)?;
                    batch.release(LogAppend::writer(), reader, number, position);
                    batch.set_withheld(reader, pin, position, true);
                    self.released.insert((reader.clone(), position));
                }
            }
        }
        Ok(())
    }

    /// What is withheld from `reader` about `pin` and not released yet, in position order.
    fn pending(
        &mut self,
        store: &Store,
        reader: &MemberId,
        pin: &str,
    ) -> Result<Vec<(u64, Event)>, StoreError> {
        let mut pending = Vec::new();
        for (position, released) in store.withheld(reader, pin)? {
            if released || self.released.contains(&(reader.clone(), position)) {
                continue;
            }
            let bytes = store
                .get(position)?
                .ok_or(StoreError::Corrupt("a withheld record names no event"))?;
            let signed =
                SignedEvent::from_store(&bytes).map_err(|_| StoreError::Corrupt("stored event"))?;
            pending.push((position, signed.event().clone()));
        }
        if let Some(staged) = self.staged.get(&(reader.clone(), pin.to_string())) {
            pending.extend(
                staged
                    .iter()
                    .filter(|(p, _)| !self.released.contains(&(reader.clone(), *p)))
                    .cloned(),
            );
        }
        Ok(pending)
    }

    fn next_release(&mut self, store: &Store, reader: &MemberId) -> Result<u64, StoreError> {
        let next = match self.next_release.get(reader) {
            Some(n) => *n,
            None => store.last_release(reader)? + 1,
        };
        self.next_release.insert(reader.clone(), next + 1);
        Ok(next)
    }

    /// The round is over: forget what it staged; after a failed commit, forget the counters
    /// too (they are read from the store again).
    pub(super) fn end_round(&mut self, committed: bool) {
        self.staged.clear();
        self.released.clear();
        if !committed {
            self.next_release.clear();
        }
    }
}
