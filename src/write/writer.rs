//! The single writer thread: the only code that appends to the log.
//!
//! It takes every job waiting in its queue (publishes from the local API, pages received by the
//! sync tasks), assigns positions and the node's own sequences, checks idempotency, signs (a
//! large round's events ahead, on every core), stages each event with its indexes, consent
//! state and Merkle leaf in one [`WriteBatch`], applies it and covers it all with a single
//! flush, during which it signs ahead the events of the jobs queued behind the round. Only
//! then are the callers answered: nothing is acknowledged (no 201, no cursor advance) that a
//! crash could take back, and many events share one fsync. After each commit the writer
//! announces the new heads, which wakes long-polls.

use std::collections::HashMap;
use std::sync::Arc;

use time::OffsetDateTime;
use tokio::sync::mpsc;
use uuid::Uuid;

use super::erasure::{
    self, ErasureOrder, ErasureOrdered, ErasureRecord, Holder, OrderSays, Says, Strip,
};
use super::publisher::{
    HeadSenders, Job, Outcome, PublishError, Published, Ready, ReceiveCursor, Signer,
};
use super::withholding::Withholding;
use crate::event::identifiers::MemberId;
use crate::event::schema::{EventType, Schemas};
use crate::event::{Event, SignedEvent};
use crate::merkle::Frontier;
use crate::net::metrics::Metrics;
use crate::policy::consent::{self, ConsentState};
use crate::store::{Append, LogAppend, Meta, Store, StoreError, WriteBatch};
use crate::trust::manifest::{EventFormat, Trust};

/// How many queued jobs one group commit takes at most.
const MAX_JOBS_PER_COMMIT: usize = 4096;

/// How many events each thread signs ahead at least: below twice this a round's events are
/// signed in turn (a thread costs about what a signature does).
const SIGN_AHEAD_PER_THREAD: usize = 16;

/// How many events are signed ahead between two looks at whether to go on while a round is
/// flushed: a few milliseconds of signing at most.
const SIGN_WHILE_FLUSHING: usize = 8 * SIGN_AHEAD_PER_THREAD;

/// What signing an event needs, shared by the threads that sign ahead.
struct Signing<'a> {
    format: EventFormat,
    signer: &'a Signer,
    schemas: &'a Schemas,
}

impl Signing<'_> {
    /// An SD-JWT concealing the fields the type's schema marks disclosable, or (before the
    /// federation moved to it) a whole JWS.
    fn sign(&self, event: Event) -> SignedEvent {
        let (key, kid) = (&self.signer.key, &self.signer.kid);
        match self.format {
            EventFormat::SdJwt => {
                let disclosable = self.schemas.disclosable(event.event_type);
                event.sign_selective(key, kid, disclosable)
            }
            EventFormat::Jws => event.into_signed(key, kid),
        }
    }
}

/// A received page holds an erasure order or confirmation (this node may publish its own
/// confirmation while staging it).
fn brings_erasure(events: &[SignedEvent]) -> bool {
    events
        .iter()
        .any(|e| e.event().event_type == EventType::Erasure)
}

/// Stage `positions` as what is still to erase of `pin`'s events, for the rest of the round too.
fn keep_pending_erasure(round: &mut Round, pin: &str, positions: Vec<u64>) {
    round.batch.set_pending_erasure(pin, &positions);
    round.pending_erasures.insert(pin.to_string(), positions);
}

/// Whether `jobs` publish enough events to sign them ahead, spread over threads.
fn worth_signing_ahead(jobs: &[Job]) -> bool {
    let publishing: usize = jobs
        .iter()
        .map(|job| match job {
            Job::Publish { items, .. } => items.len(),
            _ => 0,
        })
        .sum();
    publishing >= 2 * SIGN_AHEAD_PER_THREAD
}

/// `round` and the jobs queued behind it, up to [`MAX_JOBS_PER_COMMIT`]; never waits.
fn take_queued(queue: &mut mpsc::Receiver<Job>, mut round: Vec<Job>) -> Vec<Job> {
    while round.len() < MAX_JOBS_PER_COMMIT {
        match queue.try_recv() {
            Ok(job) => round.push(job),
            Err(_) => break,
        }
    }
    round
}

/// The single writer: owns the counters, signs, appends, flushes.
pub(super) struct Writer {
    store: Store,
    signer: Signer,
    /// Which fields of each type are signed as selective disclosures.
    schemas: Arc<Schemas>,
    /// The manifest, which says the format this member signs in (none in some tests: `jws`).
    trust: Option<Arc<Trust>>,
    metrics: Arc<Metrics>,
    /// Withheld own events and the readers' release logs.
    withholding: Withholding,
    /// The Merkle tree over the log; leaf `position - 1` is the event at `position`.
    tree: Frontier,
    next_sequence: u64,
    next_position: u64,
    heads: Arc<HeadSenders>,
    /// A commit failed: the store is reopened (and the counters reloaded) before the next one.
    broken: bool,
    /// Each publisher's feed cursor as committed, read from the store when first needed and
    /// after a failed commit.
    cursors: HashMap<MemberId, u64>,
}

/// What one group commit has staged so far.
#[derive(Default)]
struct Round {
    /// The position of the round's first event (the others follow it in `events`).
    first_position: u64,
    batch: WriteBatch,
    idempotency: HashMap<String, ([u8; 32], Published)>,
    consents: HashMap<String, ConsentState>,
    /// Events staged this round, by (source, id): an event's identity.
    ids: std::collections::HashSet<(MemberId, Uuid)>,
    published: u64,
    received: u64,
    /// A read the round depended on failed: nothing of the round may be committed.
    failed: Option<StoreError>,
    /// Each publisher's feed cursor as this round leaves it.
    cursors: HashMap<MemberId, u64>,
    /// The events staged, in position order (kept parsed for the projector and the feed once
    /// the commit is durable).
    events: Vec<SignedEvent>,
    /// Erasure records staged this round, by id (a confirmation may follow its order).
    erasures: HashMap<Uuid, ErasureRecord>,
    /// The round erased stored events: the window of parsed events is dropped before its commit.
    erased: bool,
    /// Each person's positions still to erase as this round leaves them: two erasures about
    /// one person in a round (this node's order, a received one) add up.
    pending_erasures: HashMap<String, Vec<u64>>,
}

impl Round {
    /// The event `source`/`id` staged in this round, with its position.
    fn staged(&self, source: &MemberId, id: &Uuid) -> Option<(u64, &SignedEvent)> {
        if !self.ids.contains(&(source.clone(), *id)) {
            return None;
        }
        (self.first_position..)
            .zip(&self.events)
            .find(|(_, s)| &s.event().source == source && &s.event().id == id)
    }
}

type Reply = Box<dyn FnOnce(Option<&Arc<StoreError>>) + Send>;

impl Writer {
    pub(super) fn new(
        store: Store,
        signer: Signer,
        schemas: Arc<Schemas>,
        metrics: Arc<Metrics>,
        trust: Option<Arc<Trust>>,
        heads: Arc<HeadSenders>,
    ) -> Result<Writer, StoreError> {
        let withholding = Withholding::new(trust.clone(), &store)?;
        let mut w = Writer {
            store,
            signer,
            schemas,
            trust: trust.clone(),
            metrics,
            withholding,
            tree: Frontier::default(),
            next_sequence: 0,
            next_position: 0,
            heads,
            broken: false,
            cursors: HashMap::new(),
        };
        w.reload_counters()?;
        w.announce();
        Ok(w)
    }

    fn announce(&self) {
        self.heads
            .advance(self.next_sequence - 1, self.next_position - 1);
    }

    fn reload_counters(&mut self) -> Result<(), StoreError> {
        self.next_sequence = self.store.last_sequence(&self.signer.member)? + 1;
        self.next_position = self.store.last_position()? + 1;
        self.tree = Frontier::load(&self.store, self.next_position - 1)?;
        Ok(())
    }

    /// Stage the Merkle leaf of the event appended at the next position (same atomic write);
    /// returns it.
    fn stage_leaf(&mut self, signed: &SignedEvent, batch: &mut WriteBatch) -> crate::merkle::Hash {
        let leaf = crate::log::signed_event_leaf(signed);
        for (level, index, hash) in self.tree.append(leaf) {
            batch.set_subtree(LogAppend::writer(), level, index, &hash);
        }
        leaf
    }

    pub(super) fn run(mut self, mut jobs: mpsc::Receiver<Job>) {
        let mut next = Vec::new();
        loop {
            if next.is_empty() {
                match jobs.blocking_recv() {
                    Some(first) => next.push(first),
                    None => break,
                }
            }
            let round = take_queued(&mut jobs, std::mem::take(&mut next));
            next = self.commit(round, &mut jobs);
        }
        if let Err(e) = self.store.flush() {
            tracing::error!(error = %e, "final flush failed");
        }
    }

    /// After a failed commit, reopen the store and reload the counters from what it holds (a
    /// commit reported failed may still have landed: a database that lost the connection after
    /// committing). Until that works, nothing is committed: counters not reloaded could reuse a
    /// position the store already holds.
    fn repair(&mut self) -> Result<(), StoreError> {
        match self.store.reopen().and_then(|()| self.reload_counters()) {
            Ok(()) => {
                self.broken = false;
                tracing::warn!("store reopened after a failed write; publishing resumes");
                Ok(())
            }
            Err(e) => {
                tracing::error!(error = %e, "store still failing");
                self.metrics.store_failing(e.to_string());
                Err(e)
            }
        }
    }

    /// One group commit: stage every job, apply, flush, then answer and announce. Returns the
    /// jobs taken from `queue` for the next round while the flush ran ([`Writer::flush_round`]).
    fn commit(&mut self, mut jobs: Vec<Job>, queue: &mut mpsc::Receiver<Job>) -> Vec<Job> {
        let mut round = Round::default();
        if self.broken {
            round.failed = self.repair().err();
        }
        let (first_sequence, first_position) = (self.next_sequence, self.next_position);
        round.first_position = first_position;
        let tree_before = self.tree.clone();
        if round.failed.is_none() {
            self.sign_ahead(&mut jobs);
        }
        // From the round's first read of a person's state to its commit (`PersonStates`).
        let states = self.store.person_states().clone();
        let mut held = Some(states.hold());
        let replies: Vec<Reply> = jobs
            .into_iter()
            .map(|job| self.stage_job(job, &mut round))
            .collect();
        let wrote = !round.batch.is_empty();
        if round.erased {
            // Before the commit: the window may hold the erased events parsed with their
            // disclosures, and once the erasure lands no reader may take them from it.
            self.heads.recent.clear();
            // Nor from the window of a previous writer still running after it was replaced.
            let wait = self.store.erasures_wait();
            if !wait.is_zero() {
                tracing::info!(
                    wait_ms = wait.as_millis() as u64,
                    "an erasure waits for the previous writer's lease to run out"
                );
                std::thread::sleep(wait);
            }
        }
        let mut next = Vec::new();
        let durable = if let Some(e) = round.failed.take() {
            Err(e)
        } else if !wrote {
            Ok(())
        } else {
            let batch = std::mem::take(&mut round.batch);
            match round.erased {
                // The next round's checks must see what this one erased.
                true => self.flush(batch),
                false => {
                    next = take_queued(queue, Vec::new());
                    self.flush_round(batch, round.published, &mut next, &mut held)
                }
            }
        };
        drop(held);
        let failure = durable.err().map(|e| {
            tracing::error!(error = %e, "group commit failed; its events are not acknowledged");
            self.metrics.store_failed(e.to_string());
            (self.next_sequence, self.next_position) = (first_sequence, first_position);
            self.tree = tree_before;
            // A failed commit may still have landed: the cursors are read again when needed.
            self.cursors.clear();
            self.broken = true;
            let _ = self.repair();
            Arc::new(e)
        });
        if failure.is_none() {
            use std::sync::atomic::Ordering::Relaxed;
            if wrote {
                self.metrics.store_recovered();
            }
            self.cursors.extend(std::mem::take(&mut round.cursors));
            self.metrics.published.fetch_add(round.published, Relaxed);
            self.metrics.received.fetch_add(round.received, Relaxed);
            // A round that erased may have staged an event it erased (received in an earlier
            // page of the same round than its order): its events are read from the store.
            if !round.erased {
                self.heads.recent.committed(first_position, round.events);
            }
            self.announce();
        }
        self.withholding.end_round(failure.is_none());
        for reply in replies {
            reply(failure.as_ref());
        }
        next
    }

    /// Apply and flush a round's batch. When the jobs queued behind it (`next`) publish enough
    /// to sign ahead, their events are signed on a thread of their own while this one flushes,
    /// at the sequences they get if it lands: the cores sign while the disk writes. Should it
    /// fail, what was signed ahead is dropped and signed again with its round. The checks
    /// made before signing read the store as it is before or after this batch, which for
    /// them is the same; a batch that erases is flushed alone ([`Writer::commit`]).
    fn flush_round(
        &self,
        batch: WriteBatch,
        published: u64,
        next: &mut [Job],
        held: &mut Option<parking_lot::MutexGuard<'_, ()>>,
    ) -> Result<(), StoreError> {
        use std::sync::atomic::{AtomicBool, Ordering};
        if !worth_signing_ahead(next) {
            return self.flush(batch);
        }
        let (done, landed) = (AtomicBool::new(false), AtomicBool::new(false));
        let flushed = std::thread::scope(|scope| {
            // While the flush runs, and after it (if it landed) no further than the round's
            // own number of events: its callers wait at most about as long again as their
            // events took to sign.
            let signing = scope.spawn(|| {
                self.sign_ahead_while(next, SIGN_WHILE_FLUSHING, |signed| {
                    !done.load(Ordering::Acquire)
                        || (landed.load(Ordering::Relaxed) && (signed as u64) < published)
                })
            });
            let flushed = self.flush(batch);
            // The persons' states are committed: whoever waits for them need not wait for the
            // signing too.
            drop(held.take());
            landed.store(flushed.is_ok(), Ordering::Relaxed);
            done.store(true, Ordering::Release);
            signing
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
            flushed
        });
        if flushed.is_err() {
            // Checked against a store the failed flush may have left otherwise (sled shows
            // a batch before its fsync): signed again, from their data, in their round.
            for job in next.iter_mut() {
                if let Job::Publish { items, .. } = job {
                    for item in items.iter_mut().filter(|i| i.ahead.is_some()) {
                        item.data = item.take_data();
                    }
                }
            }
        }
        flushed
    }

    /// Apply and flush a round's batch, timed for the metrics.
    fn flush(&self, batch: WriteBatch) -> Result<(), StoreError> {
        let started = std::time::Instant::now();
        let committed = self.store.commit(LogAppend::writer(), batch);
        if committed.is_ok() {
            self.metrics.count_commit(started.elapsed());
        }
        committed
    }

    /// Stage one job; returns how to answer it once the commit's fate is known.
    fn stage_job(&mut self, job: Job, round: &mut Round) -> Reply {
        match job {
            Job::Publish { items, reply } => {
                let outcomes: Vec<Outcome> = items
                    .into_iter()
                    .map(|item| self.stage(item, round))
                    .collect();
                Box::new(move |failure| {
                    let outcomes = outcomes
                        .into_iter()
                        .map(|o| match (o, failure) {
                            (Ok(p), Some(reason)) if !p.replayed => {
                                Err(PublishError::Storage(reason.clone()))
                            }
                            (o, _) => o,
                        })
                        .collect();
                    let _ = reply.send(outcomes);
                })
            }
            Job::Erase { order, reply } => {
                let ordered = self.stage_erasure(order, round);
                Box::new(move |failure| {
                    let answer = match (ordered, failure) {
                        (Ok(_), Some(reason)) => Err(PublishError::Storage(reason.clone())),
                        (answer, _) => answer,
                    };
                    let _ = reply.send(answer);
                })
            }
            Job::Receive {
                source,
                events,
                cursor,
                reply,
            } => {
                let stored = self.stage_received(&source, events, cursor, round);
                Box::new(move |failure| {
                    let answer = match (stored, failure) {
                        (Err(refused), _) => Err(refused),
                        (Ok(_), Some(reason)) => Err(PublishError::Storage(reason.clone())),
                        (Ok(stored), None) => Ok(stored),
                    };
                    let _ = reply.send(answer);
                })
            }
        }
    }

    /// Stage a received page, unless it does not start where its publisher's cursor stands.
    fn stage_received(
        &mut self,
        source: &MemberId,
        events: Vec<SignedEvent>,
        cursor: ReceiveCursor,
        round: &mut Round,
    ) -> Result<usize, PublishError> {
        if let ReceiveCursor::Sequence { after, .. } = cursor {
            let held = self
                .cursor_of(source, round)
                .map_err(|e| PublishError::Storage(Arc::new(e)))?;
            if held != after {
                return Err(PublishError::CursorMoved {
                    expected: after,
                    held,
                });
            }
        }
        let mut stored = 0;
        for signed in events {
            let e = signed.event();
            if !round.ids.insert((e.source.clone(), e.id)) {
                continue;
            }
            let leaf = self.stage_leaf(&signed, &mut round.batch);
            round.batch.append(
                LogAppend::writer(),
                Append {
                    position: self.next_position,
                    source,
                    sequence: signed.sequence(),
                    id: e.id,
                    jws: signed.bytes(),
                    leaf,
                    idempotency: None,
                },
            );
            self.stage_consent(e, round);
            self.next_position += 1;
            round.received += 1;
            let erasure = (e.event_type == EventType::Erasure).then(|| signed.clone());
            // In position order: a confirmation the erasure causes comes after it.
            round.events.push(signed);
            if let Some(erasure) = erasure {
                self.stage_received_erasure(&erasure, round);
            }
            stored += 1;
        }
        match cursor {
            ReceiveCursor::Sequence { to, .. } => {
                round.batch.set_cursor(LogAppend::writer(), source, to);
                round.cursors.insert(source.clone(), to);
            }
            ReceiveCursor::Release(number) => round.batch.set_meta(
                LogAppend::writer(),
                &Meta::ReleaseCursor(source.clone()),
                &number.to_be_bytes(),
            ),
        }
        Ok(stored)
    }

    /// An erasure this node orders: strip the person's own events named by `order`, stage what
    /// the projector finishes, publish the signed order and keep its record, all in this round.
    fn stage_erasure(
        &mut self,
        mut order: ErasureOrder,
        round: &mut Round,
    ) -> Result<ErasureOrdered, PublishError> {
        let storage = |e: StoreError| PublishError::Storage(Arc::new(e));
        let (mut ids, mut stripped, mut not_erasable) = (Vec::new(), Vec::new(), 0);
        for &position in &order.positions {
            match erasure::strip(&self.store, position, &self.signer.member, Some(&order.pin))
                .map_err(storage)?
            {
                Strip::Stripped {
                    id, bytes, purpose, ..
                } => {
                    if order.purpose.is_empty() {
                        order.purpose = purpose.unwrap_or_default();
                    }
                    ids.push(id);
                    stripped.push((position, bytes));
                }
                Strip::WholeJws => not_erasable += 1,
                Strip::Nothing => {}
            }
        }
        if ids.is_empty() {
            return Err(PublishError::NothingToErase);
        }
        // Everything that can refuse the order comes before anything of it is staged: an
        // order refused must leave the events whole, and one staged must strip them.
        let mut pending = self
            .pending_erasure(order.pin.expose(), round)
            .map_err(storage)?;
        let now = OffsetDateTime::now_utc();
        let data = erasure::order_data(&order, &ids, now.date());
        let published = self.stage(
            Ready {
                event_type: EventType::Erasure,
                data,
                idempotency: None,
                ahead: None,
            },
            round,
        )?;
        for (position, bytes) in &stripped {
            round
                .batch
                .erase_event(LogAppend::writer(), *position, bytes, &order.id);
            pending.push(*position);
        }
        keep_pending_erasure(round, order.pin.expose(), pending);
        let record = ErasureRecord {
            id: order.id,
            ordered_by: self.signer.member.clone(),
            at: now,
            legal_basis: order.legal_basis,
            cause: order.cause,
            reason: Some(order.reason),
            erased: ids.len() as u64,
            not_erasable,
            event: published.id,
            holders: order
                .holders
                .into_iter()
                .map(|member| Holder {
                    member,
                    confirmed: None,
                    erased: None,
                })
                .collect(),
        };
        round.batch.set_erasure(&record.id, &record);
        round.erasures.insert(record.id, record.clone());
        round.erased = true;
        Ok(ErasureOrdered { record })
    }

    /// A received erasure event: an order from its source (erase this node's copies of the
    /// source's events it names, and confirm), or a holder's confirmation of this node's order.
    fn stage_received_erasure(&mut self, signed: &SignedEvent, round: &mut Round) {
        let e = signed.event();
        match erasure::says(&e.data) {
            Some(Says::Order(order)) => self.carry_out(&e.source, order, round),
            Some(Says::Confirmation(c)) if c.publisher == self.signer.member => {
                // A record that cannot be read fails the round (the page comes again): a
                // confirmation passed over would be missing from the record for good.
                let mut record = match self.erasure_record(&c.erasure_id, round) {
                    Ok(Some(record)) => record,
                    Ok(None) => return,
                    Err(e) => {
                        round.failed.get_or_insert(e);
                        return;
                    }
                };
                if record.confirm(&e.source, e.time, c.erased) {
                    round.batch.set_erasure(&record.id, &record);
                    round.erasures.insert(record.id, record);
                }
            }
            _ => {}
        }
    }

    /// Erase this node's copies of the events `order` names (`source`'s own only), stage what
    /// the projector finishes, and publish the confirmation, in this round.
    fn carry_out(&mut self, source: &MemberId, order: OrderSays, round: &mut Round) {
        // An erasure id names one erasure: an order reusing one this node holds a record of is
        // not taken, so no member can overwrite the record of another's erasure (or this
        // node's own, with its holders' confirmations).
        match self.store.erasure::<ErasureRecord>(&order.erasure_id) {
            Ok(None) if !round.erasures.contains_key(&order.erasure_id) => {}
            Ok(_) => {
                tracing::warn!(erasure = %order.erasure_id, from = %source, "an erasure order reuses the id of an erasure this node holds a record of; not carried out");
                return;
            }
            Err(e) => {
                round.failed.get_or_insert(e);
                return;
            }
        }
        let mut by_person: HashMap<String, Vec<u64>> = HashMap::new();
        for id in &order.events {
            let found = self.store.position_of(source, id).and_then(|p| match p {
                Some(position) => {
                    erasure::strip(&self.store, position, source, None).map(|s| Some((position, s)))
                }
                // Received earlier in this round (a page handed over before the order's):
                // erased before it is stored.
                None => match round.staged(source, id) {
                    Some((position, signed)) => erasure::strip_bytes(signed.bytes(), source, None)
                        .map(|s| Some((position, s))),
                    None => Ok(None),
                },
            });
            match found {
                Ok(Some((position, Strip::Stripped { pin, bytes, .. }))) => {
                    round.batch.erase_event(
                        LogAppend::writer(),
                        position,
                        &bytes,
                        &order.erasure_id,
                    );
                    by_person
                        .entry(pin.expose().to_string())
                        .or_default()
                        .push(position);
                }
                Ok(_) => {}
                Err(e) => {
                    round.failed.get_or_insert(e);
                    return;
                }
            }
        }
        let erased: u64 = by_person.values().map(|p| p.len() as u64).sum();
        if erased == 0 {
            return;
        }
        for (pin, positions) in &by_person {
            if let Err(e) = self.stage_pending_erasure(pin, positions, round) {
                round.failed.get_or_insert(e);
                return;
            }
        }
        let now = OffsetDateTime::now_utc();
        let data = erasure::confirmation_data(&order, source, erased, now.date());
        let confirmation = self.stage(
            Ready {
                event_type: EventType::Erasure,
                data,
                idempotency: None,
                ahead: None,
            },
            round,
        );
        let Ok(confirmation) = confirmation else {
            round.failed.get_or_insert(StoreError::Corrupt(
                "an erasure confirmation could not be staged",
            ));
            return;
        };
        let record = ErasureRecord {
            id: order.erasure_id,
            ordered_by: source.clone(),
            at: now,
            legal_basis: order.legal_basis,
            cause: order.cause,
            reason: None,
            erased,
            not_erasable: 0,
            event: confirmation.id,
            holders: Vec::new(),
        };
        round.batch.set_erasure(&record.id, &record);
        round.erasures.insert(record.id, record);
        round.erased = true;
    }

    /// Stage the positions of `pin`'s events the projector must finish erasing, with those an
    /// earlier erasure left pending before the projector finished it.
    fn stage_pending_erasure(
        &self,
        pin: &str,
        positions: &[u64],
        round: &mut Round,
    ) -> Result<(), StoreError> {
        let mut all = self.pending_erasure(pin, round)?;
        all.extend(positions);
        keep_pending_erasure(round, pin, all);
        Ok(())
    }

    /// The positions of `pin`'s events still to erase: as this round left them, else stored.
    fn pending_erasure(&self, pin: &str, round: &Round) -> Result<Vec<u64>, StoreError> {
        match round.pending_erasures.get(pin) {
            Some(staged) => Ok(staged.clone()),
            None => Ok(self.store.pending_erasure(pin)?.unwrap_or_default()),
        }
    }

    /// The record of erasure `id`: staged this round, else as stored.
    fn erasure_record(
        &self,
        id: &Uuid,
        round: &Round,
    ) -> Result<Option<ErasureRecord>, StoreError> {
        if let Some(staged) = round.erasures.get(id) {
            return Ok(Some(staged.clone()));
        }
        self.store.erasure(id)
    }

    /// The feed cursor of `source` as this round sees it: staged in this round, else committed
    /// (read from the store the first time it is asked for).
    fn cursor_of(&mut self, source: &MemberId, round: &Round) -> Result<u64, StoreError> {
        if let Some(&staged) = round.cursors.get(source) {
            return Ok(staged);
        }
        if let Some(&held) = self.cursors.get(source) {
            return Ok(held);
        }
        let held = self.store.cursor(source)?;
        self.cursors.insert(source.clone(), held);
        Ok(held)
    }

    /// If `event` carries a consent, stage the new state under the person's PIN, narrow the
    /// consent held under each PIN a correction moved them from ([`consent::narrowed`]: what
    /// was recorded under an old PIN is the person's, and a withdrawal must reach it), and
    /// release to each reader what the new states admit of the own events withheld from it. A
    /// correction links the PINs even without a consent statement; nothing is taken over from
    /// the earlier PIN. A consent state that cannot be read fails the whole round (never taken
    /// as "none held").
    fn stage_consent(&mut self, event: &Event, round: &mut Round) {
        let Some(pin) = event.pin() else {
            return;
        };
        let statement = consent::carried(event);
        let stated = consent::Stated::by(event);
        let moved_from = match self.corrected_from(event, round) {
            Ok(from) => from,
            Err(e) => {
                round.failed.get_or_insert(e);
                return;
            }
        };
        let Some(earlier) = self.linked_by(moved_from, round) else {
            return;
        };
        if statement.is_none() && earlier.is_empty() {
            return;
        }
        let Some(held) = self.consent_of(pin, round) else {
            return;
        };
        // A statement arriving after a later one of its publisher (a release) does not become
        // current: the earlier PINs are then narrowed by the current one too, below.
        let late = matches!((&held, &stated), (Some(h), Some(s)) if h.has_seen_after(s));
        // Nothing is taken over from an earlier PIN: the person states consent under this one.
        let state = match (&statement, held) {
            (Some(c), held) => consent::merge(held, c.clone(), stated.clone()),
            (None, Some(held)) => held,
            (None, None) => ConsentState::without_consent(event.time),
        };
        let state = state.with_earlier_pins(pin, earlier.iter().map(String::as_str));
        let linked: Vec<String> = state.earlier_pins().map(String::from).collect();
        let (current, current_stated) = state.current();
        let current = (current.clone(), current_stated.cloned());
        self.stage_state(pin, state, round);
        let Some(c) = statement else {
            return;
        };
        // Narrowed where a state is held: a PIN forgotten here since it was linked stays so. By
        // the statement, and when it arrived late by the one current under this PIN too (each
        // as its publisher's order allows under the earlier PIN): what narrowing in order would
        // have made.
        for old in linked {
            match self.consent_of(&old, round) {
                Some(Some(held)) => {
                    let mut state = consent::narrowed(held, &c, stated.clone());
                    if late {
                        state = consent::narrowed(state, &current.0, current.1.clone());
                    }
                    self.stage_state(&old, state, round)
                }
                Some(None) => {}
                None => return,
            }
        }
    }

    /// The PIN whose consent decides whether other members are sent `event`, when anything
    /// may be withheld: its person's, or for a `credential-issued` the person of the own event
    /// it attests (staged in the round or stored; none when that event is unknown or erased,
    /// and then no member is sent the credential). `Err` when the attested event cannot be
    /// read: the round fails rather than publish a credential withheld from no one.
    fn person_of<'e>(
        &self,
        event: &'e Event,
        round: &Round,
    ) -> Result<Option<std::borrow::Cow<'e, str>>, StoreError> {
        if !self.withholding.is_active() {
            return Ok(None);
        }
        if let Some(pin) = event.pin() {
            return Ok(Some(pin.into()));
        }
        let Some(id) = consent::attested(event) else {
            return Ok(None);
        };
        let pin = self.own_event(round, &event.source, &id, |attested| {
            attested.pin().map(String::from)
        })?;
        Ok(pin.flatten().map(std::borrow::Cow::Owned))
    }

    /// The PINs a correction moving the person from `from` links: `from` and those linked under
    /// it, when it holds a consent state (else there is nothing to narrow there); `None` when
    /// its state cannot be read (the round is then failed).
    fn linked_by(&self, from: Option<String>, round: &mut Round) -> Option<Vec<String>> {
        let Some(from) = from else {
            return Some(Vec::new());
        };
        Some(match self.consent_of(&from, round)? {
            Some(state) => std::iter::once(from.clone())
                .chain(state.earlier_pins().map(String::from))
                .collect(),
            None => Vec::new(),
        })
    }

    /// The PIN a returnee record moves its person from: that of the record it supersedes (the
    /// same publisher's, as the correction rule has it) when it differs and the correction
    /// lists it in `pinHistory`. PINs are linked only so: listing a PIN is not enough to tie a
    /// stranger's consent to the person. `Err` when the superseded record cannot be read.
    fn corrected_from(&self, event: &Event, round: &Round) -> Result<Option<String>, StoreError> {
        let (Some(target), Some(pin)) = (event.supersedes(), event.pin()) else {
            return Ok(None);
        };
        if event.event_type != EventType::ReturneeRecord {
            return Ok(None);
        }
        let old = self.own_event(round, &event.source, &target, |superseded| {
            (superseded.event_type == EventType::ReturneeRecord)
                .then(|| superseded.pin().map(String::from))
                .flatten()
        })?;
        Ok(old
            .flatten()
            .filter(|old| old != pin && event.pin_history().any(|p| p == old)))
    }

    /// Stage `state` as the consent held under `pin`, with the releases it brings.
    fn stage_state(&mut self, pin: &str, state: ConsentState, round: &mut Round) {
        round.batch.set_consent(pin, &state);
        if let Err(e) = self
            .withholding
            .on_consent(&self.store, pin, &state, &mut round.batch)
        {
            round.failed.get_or_insert(e);
        }
        round.consents.insert(pin.to_string(), state);
    }

    /// The consent state of `pin` as this round sees it; `None` when it cannot be read (the
    /// round is then failed), `Some(None)` when none is held.
    fn consent_of(&self, pin: &str, round: &mut Round) -> Option<Option<ConsentState>> {
        if let Some(s) = round.consents.get(pin) {
            return Some(Some(s.clone()));
        }
        match self.store.consent::<ConsentState>(pin) {
            Ok(held) => Some(held),
            Err(e) => {
                round.failed.get_or_insert(e);
                None
            }
        }
    }

    /// What signing takes, in the format the manifest gives this member.
    fn signing(&self) -> Signing<'_> {
        let format = self.trust.as_ref().map_or(EventFormat::Jws, |t| {
            t.held().signing_format(&self.signer.member)
        });
        Signing {
            format,
            signer: &self.signer,
            schemas: &self.schemas,
        }
    }

    /// Make and sign, spread over the cores, the events the round's publish jobs are expected
    /// to become, each at the sequence it will get if every item before it is published
    /// ([`Ready::ahead`]). Signing is most of the writer's work and needs nothing the round
    /// stages; [`Writer::stage`] still decides every item in order and signs again whatever
    /// did not come out as expected.
    fn sign_ahead(&self, jobs: &mut [Job]) {
        self.sign_ahead_while(jobs, usize::MAX, |_| true);
    }

    /// [`Writer::sign_ahead`], `slice` events at a time, for as long as `go_on` says after
    /// each slice (given how many are signed); the items not reached keep their data and are
    /// signed with their round.
    fn sign_ahead_while(&self, jobs: &mut [Job], slice: usize, go_on: impl Fn(usize) -> bool) {
        if !worth_signing_ahead(jobs) {
            return;
        }
        let signing = self.signing();
        // Made and checked a slice at a time: an item not reached is not looked at.
        let mut expected = self.expected(jobs);
        let mut signed_ahead = 0;
        loop {
            let (items, events): (Vec<&mut Ready>, Vec<Event>) =
                expected.by_ref().take(slice).unzip();
            if items.is_empty() {
                break;
            }
            let signed =
                crate::cores::map_owned(events, SIGN_AHEAD_PER_THREAD, |e| signing.sign(e));
            signed_ahead += signed.len();
            for (item, signed) in items.into_iter().zip(signed) {
                item.ahead = Some(signed);
            }
            if !go_on(signed_ahead) {
                break;
            }
        }
    }

    /// The events the round's publish items are expected to become, unsigned, in order, each
    /// made and checked as it is taken. An item a check can tell now will not be published (a
    /// replay, a correction the rule refuses, an implausible consent time) takes no sequence
    /// and keeps its data. Nothing is
    /// expected past a job that publishes events of its own: an erasure order, or a page
    /// bringing one (this node confirms it). What no check can tell before signing (an event
    /// signed too large) puts the items after it off by one: they are signed again in turn.
    fn expected<'j>(
        &'j self,
        jobs: &'j mut [Job],
    ) -> impl Iterator<Item = (&'j mut Ready, Event)> + 'j {
        let mut keys = std::collections::HashSet::new();
        let mut sequence = self.next_sequence;
        jobs.iter_mut()
            .take_while(|job| match job {
                Job::Publish { .. } => true,
                Job::Receive { events, .. } => !brings_erasure(events),
                Job::Erase { .. } => false,
            })
            .flat_map(|job| match job {
                Job::Publish { items, .. } => items.iter_mut(),
                _ => Default::default(),
            })
            .filter_map(move |item| {
                if let Some((key, digest)) = &item.idempotency {
                    let fresh = keys.insert(key.clone())
                        && matches!(self.earlier_result(key, digest, &HashMap::new()), Ok(None));
                    if !fresh {
                        return None;
                    }
                }
                if item.ahead.as_ref().map(SignedEvent::sequence) == Some(sequence) {
                    // Signed ahead while the round before this one was flushed.
                    sequence += 1;
                    return None;
                }
                let data = item.take_data();
                let event = Event::new(self.signer.member.clone(), item.event_type, sequence, data);
                if self.check_publishable(&event).is_err() {
                    item.data = event.data;
                    return None;
                }
                sequence += 1;
                Some((item, event))
            })
    }

    /// The item's event, signed: the one signed ahead if it got the sequence that is next, or
    /// else made and signed now (from the data the one signed ahead took). One signed ahead
    /// passed [`Writer::check_publishable`] when it was made ([`Writer::expected`]), and the
    /// checks read only the event and the store, which the round does not change before its
    /// commit.
    fn signed_event(&self, mut item: Ready) -> Result<SignedEvent, PublishError> {
        if let Some(signed) = item.ahead.take_if(|a| a.sequence() == self.next_sequence) {
            return Ok(signed);
        }
        let data = item.take_data();
        let event = Event::new(
            self.signer.member.clone(),
            item.event_type,
            self.next_sequence,
            data,
        );
        self.check_publishable(&event)?;
        Ok(self.signing().sign(event))
    }

    /// What refuses an event before it is signed: a correction of an event it may not
    /// supersede, a consent given after the event.
    fn check_publishable(&self, event: &Event) -> Result<(), PublishError> {
        self.check_supersedes(event)?;
        match consent::carried(event).is_none_or(|c| consent::time_is_plausible(&c, event)) {
            true => Ok(()),
            false => Err(PublishError::ConsentAfterEvent),
        }
    }

    fn stage(&mut self, mut item: Ready, round: &mut Round) -> Outcome {
        if let Some((key, digest)) = &item.idempotency {
            if let Some(earlier) = self.earlier_result(key, digest, &round.idempotency)? {
                return Ok(earlier);
            }
        }
        let idempotency = item.idempotency.take();
        let signed = self.signed_event(item)?;
        let event = signed.shared_event();
        if signed.bytes().len() > self.signer.max_event_bytes {
            return Err(PublishError::TooLarge {
                size: signed.bytes().len(),
                limit: self.signer.max_event_bytes,
            });
        }
        self.stage_consent(&event, round);
        round.ids.insert((event.source.clone(), event.id));
        round.published += 1;
        let leaf = self.stage_leaf(&signed, &mut round.batch);
        round.batch.append(
            LogAppend::writer(),
            Append {
                position: self.next_position,
                source: &self.signer.member,
                sequence: self.next_sequence,
                id: event.id,
                jws: signed.bytes(),
                leaf,
                idempotency: idempotency.as_ref().map(|(k, d)| (k.as_str(), *d)),
            },
        );
        let person = match self.person_of(&event, round) {
            Ok(person) => person,
            Err(e) => {
                round.failed.get_or_insert(e);
                None
            }
        };
        if let Some(pin) = person {
            if let Some(state) = self.consent_of(&pin, round) {
                self.withholding.on_publish(
                    &event,
                    &pin,
                    self.next_position,
                    state.as_ref(),
                    &mut round.batch,
                );
            }
        }
        let published = Published {
            id: event.id,
            source: event.source.clone(),
            event_type: event.event_type,
            sequence: self.next_sequence,
            position: self.next_position,
            jws: signed.bytes().into(),
            replayed: false,
        };
        if let Some((key, digest)) = idempotency {
            round.idempotency.insert(key, (digest, published.clone()));
        }
        self.next_sequence += 1;
        self.next_position += 1;
        round.events.push(signed);
        Ok(published)
    }

    /// A correction names one of this member's own events of the same type about the same
    /// person ([`Event::may_supersede`]).
    fn check_supersedes(&self, event: &Event) -> Result<(), PublishError> {
        let Some(target) = event.supersedes() else {
            return Ok(());
        };
        let Some(stored) = self
            .store
            .event_of(&event.source, &target)
            .map_err(|e| PublishError::Storage(Arc::new(e)))?
        else {
            return Err(crate::event::SupersedeError::Unknown.into());
        };
        Ok(event.may_supersede(stored.event())?)
    }

    /// `read` of this member's event `source`/`id` as the round has it, staged or stored;
    /// `None` when neither holds it, an error when the store cannot say.
    fn own_event<T>(
        &self,
        round: &Round,
        source: &MemberId,
        id: &Uuid,
        read: impl FnOnce(&Event) -> T,
    ) -> Result<Option<T>, StoreError> {
        if let Some((_, staged)) = round.staged(source, id) {
            return Ok(Some(read(staged.event())));
        }
        Ok(self.store.event_of(source, id)?.map(|s| read(s.event())))
    }

    /// The first result of an earlier request with this idempotency key, this round or stored.
    fn earlier_result(
        &self,
        key: &str,
        digest: &[u8; 32],
        seen: &HashMap<String, ([u8; 32], Published)>,
    ) -> Result<Option<Published>, PublishError> {
        let storage = |e: StoreError| PublishError::Storage(Arc::new(e));
        let (earlier_digest, published) = if let Some((d, p)) = seen.get(key) {
            (*d, p.clone())
        } else if let Some(record) = self.store.idempotency(key).map_err(storage)? {
            let bytes = self
                .store
                .get(record.position)
                .map_err(storage)?
                .ok_or_else(|| storage(StoreError::Corrupt("idempotency target")))?;
            let signed = SignedEvent::from_store(&bytes)
                .map_err(|_| storage(StoreError::Corrupt("stored event")))?;
            (record.digest, published_from(&signed, record.position))
        } else {
            return Ok(None);
        };
        if &earlier_digest != digest {
            return Err(PublishError::IdempotencyConflict);
        }
        Ok(Some(Published {
            replayed: true,
            ..published
        }))
    }
}

fn published_from(signed: &SignedEvent, position: u64) -> Published {
    let e = signed.event();
    Published {
        id: e.id,
        source: e.source.clone(),
        event_type: e.event_type,
        sequence: signed.sequence(),
        position,
        jws: signed.bytes().into(),
        replayed: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::identifiers::KeyName;
    use crate::event::keys;
    use crate::event::schema::{EventType, Schemas};
    use crate::store::faults::Fault;
    use crate::write::{Draft, Publisher};
    use serde_json::json;

    fn signer() -> Signer {
        let member: MemberId = "central-server/GOV/70000002/employment".parse().unwrap();
        Signer {
            kid: KeyName::new(member.clone(), "sign-1").unwrap(),
            member,
            key: keys::generate(),
            max_event_bytes: crate::budget::DEFAULT_MAX_EVENT_BYTES,
        }
    }

    /// The employment service's signer, refusing events signed larger than `bytes`.
    fn limited_to(bytes: usize) -> Signer {
        Signer {
            max_event_bytes: bytes,
            ..signer()
        }
    }

    /// The employment service's publisher on `store`.
    fn started(store: &Store) -> Publisher {
        started_as(store, signer())
    }

    /// A publisher on `store` signing with `signer`.
    fn started_as(store: &Store, signer: Signer) -> Publisher {
        let schemas = Schemas::load().unwrap();
        let (p, _writer) =
            Publisher::start(store.clone(), schemas, signer, Arc::default(), None).unwrap();
        p
    }

    /// The example returnee record's data, about `person`.
    fn returnee_record(person: serde_json::Value) -> serde_json::Value {
        let mut data: serde_json::Value = serde_json::from_str(include_str!(
            "../../tests/examples/returnee-record/valid/return-registered.json"
        ))
        .unwrap();
        data["person"] = person;
        data
    }

    fn draft(pin: &str, key: Option<&str>) -> Draft {
        Draft {
            event_type: EventType::EmploymentStatus,
            data: json!({"event": "STATUS_OBSERVED", "eventDate": "2024-03-01",
                "purpose": "EMPLOYMENT_SERVICES", "legalBasis": "Law on Employment Promotion",
                "person": {"pin": pin}, "labourForceStatus": "UNEMPLOYED"}),
            idempotency_key: key.map(String::from),
        }
    }

    #[tokio::test]
    async fn sequences_are_contiguous_across_restarts_and_retries_replay() {
        let dir = tempfile::tempdir().unwrap();
        let schemas = Schemas::load().unwrap();
        let first_id;
        {
            let store = Store::open(dir.path()).unwrap();
            let (p, writer) =
                Publisher::start(store, schemas.clone(), signer(), Arc::default(), None).unwrap();
            let a = p
                .publish(draft("21503199012345", Some("k1")))
                .await
                .unwrap();
            let b = p.publish(draft("21503199012346", None)).await.unwrap();
            assert_eq!((a.sequence, b.sequence), (1, 2));
            first_id = a.id;
            drop(p);
            writer.join().unwrap();
        }
        let store = Store::open(dir.path()).unwrap();
        let (p, _writer) =
            Publisher::start(store, schemas, signer(), Arc::default(), None).unwrap();
        let retry = p
            .publish(draft("21503199012345", Some("k1")))
            .await
            .unwrap();
        assert!(retry.replayed);
        assert_eq!((retry.id, retry.sequence), (first_id, 1));
        let conflict = p.publish(draft("21503199012399", Some("k1"))).await;
        assert!(matches!(conflict, Err(PublishError::IdempotencyConflict)));
        let c = p.publish(draft("21503199012347", None)).await.unwrap();
        assert_eq!((c.sequence, c.position), (3, 3));
    }

    /// While another task holds the lock over a person's state (the projector forgetting the
    /// person, say), a round neither reads nor writes it: the statement it stages merges into
    /// what that task left (here, nothing), not into a state read before and written back.
    #[tokio::test]
    async fn a_round_reads_a_persons_state_only_once_the_lock_is_let_go() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let pin = "21503199012345";
        let stranger: MemberId = "central-server/GOV/70000009/other".parse().unwrap();
        let earlier = consent::Consent {
            granted: true,
            purposes: vec!["EMPLOYMENT_SERVICES".into()],
            recipients: vec![stranger],
            time: time::macros::datetime!(2024-01-01 0:00 UTC),
            method: None,
        };
        let mut batch = WriteBatch::default();
        batch.set_consent(pin, &consent::merge(None, earlier, None));
        store.apply_other(batch).unwrap();
        let p = started(&store);

        let (taken, is_taken) = std::sync::mpsc::channel();
        let (forget, forgotten) = std::sync::mpsc::channel::<()>();
        let holder = std::thread::spawn({
            let store = store.clone();
            move || {
                let _held = store.person_states().hold();
                taken.send(()).unwrap();
                let _ = forgotten.recv();
                let mut batch = WriteBatch::default();
                batch.delete_consent(pin);
                store.apply_other(batch).unwrap();
            }
        });
        is_taken.recv().unwrap();
        let data = returnee_record(json!({ "pin": pin }));
        let publishing = tokio::spawn({
            let p = p.clone();
            async move {
                let record = Draft {
                    event_type: EventType::ReturneeRecord,
                    data,
                    idempotency_key: None,
                };
                p.publish(record).await
            }
        });
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        assert!(
            !publishing.is_finished(),
            "published while the lock was held"
        );
        forget.send(()).unwrap();
        holder.join().unwrap();
        publishing.await.unwrap().unwrap();

        let state: serde_json::Value = store.consent(pin).unwrap().unwrap();
        let text = state.to_string();
        assert!(text.contains("70000002/employment"), "{text}");
        assert!(
            !text.contains("70000009/other"),
            "the forgotten state came back: {text}"
        );
    }

    #[tokio::test]
    async fn a_batch_publishes_the_valid_and_reports_the_invalid() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let p = started(&store);
        let out = p
            .publish_batch(vec![
                draft("21503199012345", Some("same")),
                draft("not-a-pin", None),
                draft("21503199012345", Some("same")),
            ])
            .await;
        assert_eq!(out.len(), 3);
        let first = out[0].as_ref().unwrap();
        assert!(matches!(&out[1], Err(PublishError::Invalid(e)) if e[0].pointer == "/person/pin"));
        let third = out[2].as_ref().unwrap();
        assert!(third.replayed && third.id == first.id);
    }

    /// An event whose signed form passes the limit is refused before anything is staged: the
    /// next event takes the sequence it would have had.
    #[tokio::test]
    async fn an_event_signed_larger_than_the_limit_is_refused_and_takes_no_sequence() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let limited = limited_to(1400);
        let p = started_as(&store, limited);
        let small = p.publish(draft("21503199012345", None)).await.unwrap();
        assert!(small.jws.len() <= 1400, "{}", small.jws.len());
        let mut large = draft("21503199012346", None);
        large.data["legalBasis"] = "l".repeat(300).into();
        large.data["caseRef"] = "c".repeat(100).into();
        let refused = p.publish(large).await;
        assert!(
            matches!(refused, Err(PublishError::TooLarge { size, limit: 1400 }) if size > 1400),
            "{refused:?}"
        );
        let next = p.publish(draft("21503199012347", None)).await.unwrap();
        assert_eq!((next.sequence, next.position), (2, 2));
    }

    /// The event each outcome names, as stored: signed by `key`, at the sequence and position
    /// the outcome says, about the PIN `pins` gives in outcome order.
    fn assert_stored(
        store: &Store,
        key: &ed25519_dalek::VerifyingKey,
        outcomes: &[(&Published, &str)],
    ) {
        for (published, pin) in outcomes {
            let bytes = store.get(published.position).unwrap().unwrap();
            let (signed, jws) = SignedEvent::parse(&bytes).unwrap();
            jws.verify(key).unwrap();
            assert_eq!(signed.sequence(), published.sequence);
            assert_eq!(signed.event().id, published.id);
            assert_eq!(signed.event().pin(), Some(*pin));
        }
    }

    /// A batch large enough to be signed ahead on several threads comes out as it would in
    /// turn: contiguous sequences, each event signed and carrying its own data.
    #[tokio::test]
    async fn a_batch_signed_ahead_is_published_in_order_with_every_signature_good() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let signer = signer();
        let key = signer.key.verifying_key();
        let p = started_as(&store, signer);
        let pins: Vec<String> = (0..40).map(|n| format!("215031990{n:05}")).collect();
        let out = p
            .publish_batch(pins.iter().map(|pin| draft(pin, None)).collect())
            .await;
        let published: Vec<&Published> = out.iter().map(|o| o.as_ref().unwrap()).collect();
        let sequences: Vec<u64> = published.iter().map(|p| p.sequence).collect();
        assert_eq!(sequences, (1..=40).collect::<Vec<u64>>());
        let named: Vec<(&Published, &str)> = published
            .into_iter()
            .zip(pins.iter().map(String::as_str))
            .collect();
        assert_stored(&store, &key, &named);
    }

    /// Items of a batch that do not come out as signed ahead (one refused after signing, a
    /// replay within the batch and one of an earlier batch) take no sequence: the events after
    /// them are made again at the sequence they get, with their own data.
    #[tokio::test]
    async fn items_refused_or_replayed_inside_a_batch_signed_ahead_leave_no_gap() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let limited = limited_to(1400);
        let key = limited.key.verifying_key();
        let p = started_as(&store, limited);
        let earlier = p
            .publish(draft("21503199000099", Some("earlier")))
            .await
            .unwrap();
        let pins: Vec<String> = (0..40).map(|n| format!("215031990{n:05}")).collect();
        let mut drafts: Vec<Draft> = pins.iter().map(|pin| draft(pin, None)).collect();
        drafts[0].idempotency_key = Some("first".into());
        drafts[3].data["legalBasis"] = "l".repeat(300).into();
        drafts[3].data["caseRef"] = "c".repeat(100).into();
        drafts[6] = draft(&pins[0], Some("first"));
        drafts[9] = draft("21503199000099", Some("earlier"));
        let out = p.publish_batch(drafts).await;
        assert!(
            matches!(out[3], Err(PublishError::TooLarge { .. })),
            "{:?}",
            out[3]
        );
        let first = out[0].as_ref().unwrap();
        let replay = out[6].as_ref().unwrap();
        assert!(replay.replayed && replay.id == first.id && replay.sequence == first.sequence);
        let again = out[9].as_ref().unwrap();
        assert!(again.replayed && again.id == earlier.id);
        let fresh: Vec<(&Published, &str)> = out
            .iter()
            .zip(&pins)
            .enumerate()
            .filter(|(i, _)| ![3, 6, 9].contains(i))
            .map(|(_, (o, pin))| (o.as_ref().unwrap(), pin.as_str()))
            .collect();
        let sequences: Vec<u64> = fresh.iter().map(|(p, _)| p.sequence).collect();
        assert_eq!(sequences, (2..=38).collect::<Vec<u64>>());
        assert_stored(&store, &key, &fresh);
    }

    /// Signing ahead predicts the sequence each item gets: a replay within the round, a
    /// correction of an event nobody published and a consent dated after its event take none.
    #[test]
    fn signing_ahead_gives_each_item_the_sequence_it_will_get() {
        let dir = tempfile::tempdir().unwrap();
        let writer = writer(Store::open(dir.path()).unwrap());
        let mut late = ready("21503199000003", None);
        late.event_type = EventType::ReturneeRecord;
        late.data["consent"] = json!({"granted": true, "purposes": ["EMPLOYMENT_SERVICES"],
            "recipients": ["central-server/GOV/70000001/migration"],
            "time": "2999-01-01T00:00:00Z"});
        let mut unknown_correction = ready("21503199000004", None);
        unknown_correction.data["supersedes"] = Uuid::now_v7().to_string().into();
        let publish = |items| publish_job(items).0;
        let mut jobs = vec![
            publish(vec![
                ready("21503199000001", Some("k")),
                ready("21503199000002", None),
                late,
                ready("21503199000001", Some("k")),
                unknown_correction,
            ]),
            publish(
                (4..40)
                    .map(|n| ready(&format!("215031990000{n:02}"), None))
                    .collect(),
            ),
        ];
        writer.sign_ahead(&mut jobs);
        let Job::Publish { items, .. } = &jobs[0] else {
            unreachable!()
        };
        let sequence = |r: &Ready| r.ahead.as_ref().map(SignedEvent::sequence);
        let firsts: Vec<Option<u64>> = items.iter().map(sequence).collect();
        assert_eq!(firsts, [Some(1), Some(2), None, None, None]);
        assert_eq!(
            items[2].data["person"]["pin"], "21503199000003",
            "data kept"
        );
        let Job::Publish { items, .. } = &jobs[1] else {
            unreachable!()
        };
        let seconds: Vec<Option<u64>> = items.iter().map(sequence).collect();
        assert_eq!(seconds, (3..39).map(Some).collect::<Vec<_>>());
    }

    /// A writer on `store` with no manifest, its heads going nowhere.
    fn writer(store: Store) -> Writer {
        let heads = Arc::new(HeadSenders {
            own_sequence: tokio::sync::watch::channel(0).0,
            position: tokio::sync::watch::channel(0).0,
            recent: Arc::new(crate::store::recent::Recent::new(16)),
        });
        let schemas = Schemas::load().unwrap();
        Writer::new(store, signer(), schemas, Arc::default(), None, heads).unwrap()
    }

    /// An employment status about `pin` ready for the writer, under idempotency `key`.
    fn ready(pin: &str, key: Option<&str>) -> Ready {
        Ready {
            event_type: EventType::EmploymentStatus,
            data: draft(pin, None).data,
            idempotency: key.map(|k| (k.to_string(), [7; 32])),
            ahead: None,
        }
    }

    /// A publish job of `items`, and where its outcomes arrive.
    fn publish_job(items: Vec<Ready>) -> (Job, tokio::sync::oneshot::Receiver<Vec<Outcome>>) {
        let (reply, outcomes) = tokio::sync::oneshot::channel();
        (Job::Publish { items, reply }, outcomes)
    }

    /// A publish job of an employment status about each of `pins`, without idempotency keys.
    fn job_about(pins: &[String]) -> (Job, tokio::sync::oneshot::Receiver<Vec<Outcome>>) {
        publish_job(pins.iter().map(|pin| ready(pin, None)).collect())
    }

    fn pins(range: std::ops::Range<u64>) -> Vec<String> {
        range.map(|n| format!("215031990{n:05}")).collect()
    }

    /// The sequences the items of a publish job were signed ahead at.
    fn signed_at(job: &Job) -> Vec<Option<u64>> {
        let Job::Publish { items, .. } = job else {
            unreachable!()
        };
        items
            .iter()
            .map(|r| r.ahead.as_ref().map(SignedEvent::sequence))
            .collect()
    }

    /// Every item of a publish job was signed ahead about the PIN `pins` gives in order.
    fn assert_signed_with_own_data(job: &Job, pins: &[String]) {
        let Job::Publish { items, .. } = job else {
            unreachable!()
        };
        for (item, pin) in items.iter().zip(pins) {
            let signed = item.ahead.as_ref().expect("signed ahead");
            assert_eq!(signed.event().pin(), Some(pin.as_str()));
        }
    }

    /// A writer on a fresh store, the job of a first round (40 events) and a job of 40 more
    /// queued behind it, with where each job's outcomes arrive.
    struct QueuedBehind {
        dir: tempfile::TempDir,
        store: Store,
        writer: Writer,
        tx: mpsc::Sender<Job>,
        queue: mpsc::Receiver<Job>,
        first: Option<Job>,
        first_out: tokio::sync::oneshot::Receiver<Vec<Outcome>>,
        queued_pins: Vec<String>,
        queued_out: tokio::sync::oneshot::Receiver<Vec<Outcome>>,
    }

    impl QueuedBehind {
        fn new() -> QueuedBehind {
            let dir = tempfile::tempdir().unwrap();
            let store = Store::open(dir.path()).unwrap();
            let writer = writer(store.clone());
            let (tx, queue) = mpsc::channel(4);
            let (first, first_out) = job_about(&pins(0..40));
            let queued_pins = pins(40..80);
            let (queued, queued_out) = job_about(&queued_pins);
            tx.try_send(queued).unwrap();
            QueuedBehind {
                dir,
                store,
                writer,
                tx,
                queue,
                first: Some(first),
                first_out,
                queued_pins,
                queued_out,
            }
        }

        /// Commit the first round; returns the jobs taken for the next while it flushed.
        fn commit_first(&mut self) -> Vec<Job> {
            let first = self.first.take().expect("committed once");
            self.writer.commit(vec![first], &mut self.queue)
        }

        /// Commit `next` and what else is queued as the next round.
        fn commit_next(&mut self, next: Vec<Job>) -> Vec<Job> {
            let round = take_queued(&mut self.queue, next);
            self.writer.commit(round, &mut self.queue)
        }

        /// The queued job's outcomes, each published, stored about its PIN and signed well.
        fn queued_published(&mut self) -> Vec<Published> {
            let out = self.queued_out.try_recv().unwrap();
            let published: Vec<Published> = out.into_iter().map(Result::unwrap).collect();
            let named: Vec<(&Published, &str)> = published
                .iter()
                .zip(self.queued_pins.iter().map(String::as_str))
                .collect();
            assert_stored(&self.store, &self.key(), &named);
            published
        }

        fn key(&self) -> ed25519_dalek::VerifyingKey {
            self.writer.signer.key.verifying_key()
        }
    }

    /// The jobs queued behind a round are taken while its flush runs and their events signed
    /// at the sequences they get after it; the next round publishes those very events, and
    /// signs in turn a job that joined the queue after the flush, behind them.
    #[test]
    fn the_jobs_queued_behind_a_round_are_signed_while_it_is_flushed() {
        let mut f = QueuedBehind::new();
        let next = f.commit_first();
        assert_eq!(next.len(), 1, "the queued job is the next round");
        assert_eq!(signed_at(&next[0]), (41..=80).map(Some).collect::<Vec<_>>());
        let ids: Vec<Uuid> = match &next[0] {
            Job::Publish { items, .. } => items
                .iter()
                .map(|r| r.ahead.as_ref().unwrap().event().id)
                .collect(),
            _ => unreachable!(),
        };

        let (late, late_out) = publish_job(vec![ready("21503199099999", None)]);
        f.tx.try_send(late).unwrap();
        assert!(f.commit_next(next).is_empty());
        let published = f.queued_published();
        assert_eq!(published.iter().map(|p| p.id).collect::<Vec<_>>(), ids);
        let late = late_out.blocking_recv().unwrap();
        let late = late[0].as_ref().unwrap();
        assert_eq!(late.sequence, 81);
        assert_stored(&f.store, &f.key(), &[(late, "21503199099999")]);
    }

    /// Signing ahead while a flush runs stops after the slice at which it is told to (given
    /// how many are signed so far): the items not reached keep their data and are signed with
    /// their round, after those that were.
    #[test]
    fn signing_ahead_while_a_flush_runs_stops_when_told() {
        let dir = tempfile::tempdir().unwrap();
        let writer = writer(Store::open(dir.path()).unwrap());
        let pins = pins(0..40);
        let (job, _) = job_about(&pins);
        let mut jobs = vec![job];
        writer.sign_ahead_while(&mut jobs, 16, |signed| signed < 20);
        let reached: Vec<Option<u64>> = (1..=32).map(Some).chain([None; 8]).collect();
        assert_eq!(signed_at(&jobs[0]), reached);
        writer.sign_ahead(&mut jobs);
        assert_eq!(signed_at(&jobs[0]), (1..=40).map(Some).collect::<Vec<_>>());
        assert_signed_with_own_data(&jobs[0], &pins);
    }

    /// Events signed ahead at sequences a failed flush took back are made again at the
    /// sequences they get, each with its own data; those still at their sequence are kept.
    #[test]
    fn events_signed_ahead_at_sequences_taken_back_are_signed_again() {
        let dir = tempfile::tempdir().unwrap();
        let mut writer = writer(Store::open(dir.path()).unwrap());
        let pins = pins(0..40);
        let (job, _) = job_about(&pins);
        let mut jobs = vec![job];
        writer.next_sequence = 41;
        writer.sign_ahead(&mut jobs);
        assert_eq!(signed_at(&jobs[0]), (41..=80).map(Some).collect::<Vec<_>>());
        let kept = |jobs: &[Job]| match &jobs[0] {
            Job::Publish { items, .. } => items[0].ahead.as_ref().unwrap().event().id,
            _ => unreachable!(),
        };
        let before = kept(&jobs);

        writer.sign_ahead(&mut jobs);
        assert_eq!(
            kept(&jobs),
            before,
            "an event at its sequence is not signed again"
        );
        writer.next_sequence = 1;
        writer.sign_ahead(&mut jobs);
        assert_eq!(signed_at(&jobs[0]), (1..=40).map(Some).collect::<Vec<_>>());
        assert_signed_with_own_data(&jobs[0], &pins);
    }

    /// A round whose commit is refused at its commit point (its events already appended to
    /// the segments and the tiles) answers every caller with a storage error and leaves
    /// nothing: the store is reopened at what it committed, what was signed ahead while the
    /// flush ran is dropped, and the next round publishes at the sequences and positions the
    /// failed one had, every signature good, the tiles' tree the writer's, across a restart.
    #[test]
    fn a_round_whose_commit_is_refused_leaves_nothing_and_the_next_takes_its_place() {
        let mut f = QueuedBehind::new();
        f.store.inject(Fault::Refused);
        let next = f.commit_first();
        let refused = f.first_out.try_recv().unwrap();
        assert_eq!(refused.len(), 40);
        assert!(
            refused
                .iter()
                .all(|o| matches!(o, Err(PublishError::Storage(_)))),
            "{refused:?}"
        );
        assert_eq!(f.store.last_position().unwrap(), 0);
        assert_eq!(next.len(), 1, "the queued job is the next round");
        assert_eq!(signed_at(&next[0]), [None; 40], "signed ahead, dropped");

        f.commit_next(next);
        let published = f.queued_published();
        let at: Vec<(u64, u64)> = published.iter().map(|p| (p.sequence, p.position)).collect();
        assert_eq!(at, (1..=40).map(|n| (n, n)).collect::<Vec<_>>());
        let root = f.writer.tree.root();
        assert_eq!(crate::merkle::root(&f.store, 40).unwrap(), root);
        let QueuedBehind {
            dir, store, writer, ..
        } = f;
        drop((writer, store));
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.last_position().unwrap(), 40);
        assert_eq!(crate::merkle::root(&store, 40).unwrap(), root);
    }

    /// A commit that landed and was reported failed (a database that lost the connection
    /// after committing) is found by the repair: its caller was told it failed, a retry under
    /// the same idempotency key gets the event that landed, and the next event takes the next
    /// sequence instead of one the store already holds.
    #[tokio::test]
    async fn a_commit_reported_failed_that_landed_is_replayed_not_doubled() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let p = started(&store);
        store.inject(Fault::LandedButReportedFailed);
        let failed = p.publish(draft("21503199012345", Some("k1"))).await;
        assert!(
            matches!(failed, Err(PublishError::Storage(_))),
            "{failed:?}"
        );
        assert_eq!(store.last_position().unwrap(), 1, "it landed");

        let retry = p
            .publish(draft("21503199012345", Some("k1")))
            .await
            .unwrap();
        assert!(retry.replayed);
        assert_eq!((retry.sequence, retry.position), (1, 1));
        let next = p.publish(draft("21503199012346", None)).await.unwrap();
        assert_eq!((next.sequence, next.position), (2, 2));
        let stored = SignedEvent::from_store(&store.get(2).unwrap().unwrap()).unwrap();
        assert_eq!(stored.event().id, next.id);
    }

    /// A consent stated in a round whose commit is refused is not the person's, and one
    /// stated in a commit that landed though reported failed is: the consent states' file,
    /// written ahead of the commit point, is read again at what the KV recorded. Both hold
    /// after a restart.
    #[tokio::test]
    async fn a_consent_in_a_refused_round_is_not_the_persons() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let (p, writer) = Publisher::start(
            store.clone(),
            Schemas::load().unwrap(),
            signer(),
            Arc::default(),
            None,
        )
        .unwrap();
        let pin = "21503199012345";
        let record = || Draft {
            event_type: EventType::ReturneeRecord,
            data: returnee_record(json!({ "pin": pin })),
            idempotency_key: None,
        };
        store.inject(Fault::Refused);
        let refused = p.publish(record()).await;
        assert!(
            matches!(refused, Err(PublishError::Storage(_))),
            "{refused:?}"
        );
        let state: Option<serde_json::Value> = store.consent(pin).unwrap();
        assert_eq!(state, None);

        let landed = "21503199012346";
        store.inject(Fault::LandedButReportedFailed);
        let reported = p.publish(Draft {
            event_type: EventType::ReturneeRecord,
            data: returnee_record(json!({ "pin": landed })),
            idempotency_key: None,
        });
        let reported = reported.await;
        assert!(
            matches!(reported, Err(PublishError::Storage(_))),
            "{reported:?}"
        );
        // The repair reloads the file at what the KV recorded: the state is there.
        let state: Option<serde_json::Value> = store.consent(landed).unwrap();
        assert!(state.is_some(), "stated: the commit landed");

        p.publish(record()).await.unwrap();
        let state: Option<serde_json::Value> = store.consent(pin).unwrap();
        assert!(state.is_some(), "stated once it landed");
        drop((p, store));
        writer.join().unwrap();
        let store = Store::open(dir.path()).unwrap();
        for pin in [pin, landed] {
            let state: Option<serde_json::Value> = store.consent(pin).unwrap();
            assert!(state.is_some(), "and after a restart");
        }
    }

    /// An erasure whose commit is refused erases nothing (the record is read whole, nothing is
    /// left pending) and can be ordered again, which then erases.
    #[tokio::test]
    async fn an_erasure_whose_commit_is_refused_erases_nothing_until_ordered_again() {
        use crate::federation::fixture::{returnee, Federation};
        let f = Federation::new();
        let node = f.node(&f.migration);
        let pin = "21503199012345";
        let published = node
            .publish(EventType::ReturneeRecord, returnee(pin, &[&f.employment]))
            .await;
        let order = || ErasureOrder {
            id: Uuid::now_v7(),
            pin: pin.parse().unwrap(),
            positions: vec![published.position],
            holders: vec![],
            legal_basis: "Law on Personal Information, art. 12".into(),
            reason: "the person asked".into(),
            purpose: String::new(),
            cause: super::super::erasure::Cause::Request,
        };
        let pin_held = || {
            let held = node.store.get(published.position).unwrap().unwrap();
            let held = SignedEvent::from_store(&held).unwrap();
            held.event().pin().map(String::from)
        };
        node.store.inject(Fault::Refused);
        let refused = node.publisher.erase(order()).await;
        assert!(
            matches!(refused, Err(PublishError::Storage(_))),
            "{refused:?}"
        );
        assert_eq!(pin_held().as_deref(), Some(pin), "the record stays whole");
        assert_eq!(node.store.pending_erasure(pin).unwrap(), None);

        node.publisher.erase(order()).await.unwrap();
        assert_eq!(pin_held(), None, "erased once ordered again");
    }

    /// Two erasures about one person staged in one round (this node's order and a received
    /// one) leave the positions of both still to erase, not only the second's.
    #[test]
    fn pending_erasures_staged_twice_in_a_round_add_up() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let writer = writer(store.clone());
        let pin = "21503199012345";
        let mut round = Round::default();
        writer.stage_pending_erasure(pin, &[3], &mut round).unwrap();
        writer.stage_pending_erasure(pin, &[7], &mut round).unwrap();
        store.commit(LogAppend::writer(), round.batch).unwrap();
        assert_eq!(store.pending_erasure(pin).unwrap(), Some(vec![3, 7]));
    }

    /// An order whose signed event comes out larger than the limit is refused and erases
    /// nothing: the person's record stays whole and no erasure is left pending.
    #[tokio::test]
    async fn an_order_refused_when_signed_leaves_the_events_whole() {
        use crate::federation::fixture::{returnee, Federation};
        let f = Federation::new();
        let node = f.node_under(&f.migration, &f.manifest, 8_000);
        let pin = "21503199012345";
        let record = returnee(pin, &[&f.employment]);
        let published = node.publish(EventType::ReturneeRecord, record).await;
        let order = ErasureOrder {
            id: Uuid::now_v7(),
            pin: pin.parse().unwrap(),
            positions: vec![published.position],
            holders: vec![],
            legal_basis: "l".repeat(10_000),
            reason: "the person asked".into(),
            purpose: String::new(),
            cause: super::super::erasure::Cause::Request,
        };
        let refused = node.publisher.erase(order).await;
        assert!(
            matches!(refused, Err(PublishError::TooLarge { .. })),
            "{refused:?}"
        );
        let held = node.store.get(published.position).unwrap().unwrap();
        let held = SignedEvent::from_store(&held).unwrap();
        assert_eq!(held.event().pin(), Some(pin), "the record stays whole");
        assert_eq!(node.store.pending_erasure(pin).unwrap(), None);
    }

    /// What a writer made of migration's returnee record about Aibek and an order by
    /// `orderer` to erase it, handed over in two pages before it committed either.
    struct OrderedInOneRound {
        /// The record as stored still holds the person's values.
        whole: bool,
        /// This node's own events: an erasure confirmation.
        published: u64,
        /// The record is in the window of parsed events.
        in_window: bool,
    }

    async fn order_in_the_same_round(orderer: &str) -> OrderedInOneRound {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let schemas = Schemas::load().unwrap();
        let own = signer();
        let me = own.member.clone();
        let (p, _w) =
            Publisher::start(store.clone(), schemas.clone(), own, Arc::default(), None).unwrap();
        let signer_of = |member: &MemberId| {
            let kid = KeyName::new(member.clone(), "sign-1").unwrap();
            (keys::generate(), kid)
        };
        let source: MemberId = "central-server/GOV/70000001/migration".parse().unwrap();
        let (key, kid) = signer_of(&source);
        let data = returnee_record(json!({"pin": "21503199012345", "name": "Aibek"}));
        let t = EventType::ReturneeRecord;
        let record = crate::event::Event::new(source.clone(), t, 1, data).sign_selective(
            &key,
            &kid,
            schemas.disclosable(t),
        );
        let orderer: MemberId = orderer.parse().unwrap();
        let (order_key, order_kid) = signer_of(&orderer);
        let order = json!({
            "event": "ERASURE_ORDERED", "eventDate": "2026-12-05", "purpose": "EMPLOYMENT_SERVICES",
            "legalBasis": "Law on Personal Information, art. 12", "cause": "REQUEST",
            "erasureId": Uuid::now_v7(), "events": [record.event().id],
        });
        let order = crate::event::Event::new(orderer.clone(), EventType::Erasure, 1, order)
            .sign(&order_key, &order_kid);
        let page = |after: u64, to: u64| ReceiveCursor::Sequence { after, to };
        let (order_after, order_to) = if orderer == source { (1, 2) } else { (0, 1) };
        let first = p
            .hand_over(source.clone(), vec![record.clone()], page(0, 1))
            .await
            .unwrap();
        let second = p
            .hand_over(orderer, vec![order], page(order_after, order_to))
            .await
            .unwrap();
        first.stored().await.unwrap();
        second.stored().await.unwrap();

        let position = store
            .position_of(&source, &record.event().id)
            .unwrap()
            .unwrap();
        let held = store.get(position).unwrap().unwrap();
        let held = SignedEvent::from_store(&held).unwrap();
        OrderedInOneRound {
            whole: held.event().pin().is_some()
                || String::from_utf8_lossy(held.bytes()).contains("Aibek"),
            published: store.last_sequence(&me).unwrap(),
            in_window: p.heads().recent.get(position).is_some(),
        }
    }

    /// A correction that moves the person to a new PIN links the PINs: a withdrawal given under
    /// the new PIN alone holds for what was recorded under the old one too, and nothing given
    /// under the new PIN widens what the old one holds (it may be a stranger's, mistyped).
    /// Listing a PIN without correcting a record under it links nothing.
    #[tokio::test]
    async fn a_withdrawal_after_a_pin_correction_narrows_the_consent_under_the_earlier_pin() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let p = started(&store);
        let (old, new) = ("12902199254321", "12902199212345");
        let employment: MemberId = "central-server/GOV/70000002/employment".parse().unwrap();
        let record = |pin: &str, recipients: &[&MemberId]| {
            let mut data = returnee_record(json!({ "pin": pin }));
            data["consent"]["recipients"] = json!(recipients);
            Draft {
                event_type: EventType::ReturneeRecord,
                data,
                idempotency_key: None,
            }
        };
        let first = p.publish(record(old, &[&employment])).await.unwrap();
        let mut correction: serde_json::Value = serde_json::from_str(include_str!(
            "../../tests/examples/returnee-record/valid/record-corrected.json"
        ))
        .unwrap();
        correction["supersedes"] = first.id.to_string().into();
        let correction = Draft {
            event_type: EventType::ReturneeRecord,
            data: correction,
            idempotency_key: None,
        };
        p.publish(correction).await.unwrap();
        // What the employment service may be sent about the person, under either PIN.
        let may_read = |pin: &str| may_send(&store, pin, employment.as_str());
        // Nothing is taken over: under the new PIN the person has stated nothing yet.
        assert!(
            !may_read(new),
            "a consent was taken over from the earlier PIN"
        );
        assert!(may_read(old));
        p.publish(record(new, &[&employment])).await.unwrap();
        assert!(may_read(new) && may_read(old));

        // Withdrawn from the employment service, under the new PIN only.
        let other: MemberId = "central-server/GOV/70000003/education".parse().unwrap();
        p.publish(record(new, &[&other])).await.unwrap();
        assert!(!may_read(new));
        assert!(
            !may_read(old),
            "the withdrawal did not reach the earlier PIN"
        );
        // A grant under the new PIN never widens what the earlier one holds.
        p.publish(record(new, &[&employment])).await.unwrap();
        assert!(may_read(new));
        assert!(!may_read(old), "a grant under the new PIN widened the old");

        // Listing a stranger's PIN as an earlier one, without correcting a record under it,
        // ties nothing: the stranger's consent stays theirs.
        let stranger = "21503199012345";
        p.publish(record(stranger, &[&employment])).await.unwrap();
        let mut claims = record(new, &[&other]);
        claims.data["person"]["pinHistory"] = json!([stranger]);
        p.publish(claims).await.unwrap();
        assert!(may_read(stranger), "a listed PIN took the person's consent");
    }

    /// An order that reuses the id of an erasure this node holds a record of is not carried
    /// out: the first erasure's record stays as it was.
    #[tokio::test]
    async fn an_order_reusing_an_erasure_id_does_not_overwrite_its_record() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let schemas = Schemas::load().unwrap();
        let p = started(&store);
        let erasure_id = Uuid::now_v7();
        let mut erased = Vec::new();
        for source in [
            "central-server/GOV/70000001/migration",
            "central-server/GOV/70000003/education",
        ] {
            let source: MemberId = source.parse().unwrap();
            let (key, kid) = (keys::generate(), KeyName::new(source.clone(), "k").unwrap());
            let data = returnee_record(json!({"pin": "21503199012345"}));
            let t = EventType::ReturneeRecord;
            let record = crate::event::Event::new(source.clone(), t, 1, data).sign_selective(
                &key,
                &kid,
                schemas.disclosable(t),
            );
            let order = json!({
                "event": "ERASURE_ORDERED", "eventDate": "2026-12-05", "purpose": "EMPLOYMENT_SERVICES",
                "legalBasis": "Law on Personal Information, art. 12", "cause": "REQUEST",
                "erasureId": erasure_id, "events": [record.event().id],
            });
            let order = crate::event::Event::new(source.clone(), EventType::Erasure, 2, order)
                .sign(&key, &kid);
            let page = ReceiveCursor::Sequence { after: 0, to: 2 };
            p.receive(source.clone(), vec![record.clone(), order], page)
                .await
                .unwrap();
            let position = store
                .position_of(&source, &record.event().id)
                .unwrap()
                .unwrap();
            let held = SignedEvent::from_store(&store.get(position).unwrap().unwrap()).unwrap();
            // Erased: stored without its disclosures.
            erased.push(held.disclosed().is_empty());
        }
        let record: ErasureRecord = store.erasure(&erasure_id).unwrap().unwrap();
        assert_eq!(
            record.ordered_by.as_str(),
            "central-server/GOV/70000001/migration"
        );
        assert_eq!(erased, [true, false], "the second order was carried out");
    }

    /// A returnee record withheld from this node and released after a later record reached it
    /// (its consent named another member) does not put its earlier consent back: the later
    /// one, which names employment and no longer education, stays the person's.
    #[tokio::test]
    async fn a_record_released_after_a_later_one_does_not_bring_back_its_consent() {
        let pin = "21503199012345";
        let may_send = received_out_of_order(
            &[
                Said {
                    pin,
                    to: EDUCATION,
                    corrects: None,
                },
                Said {
                    pin,
                    to: EMPLOYMENT,
                    corrects: None,
                },
            ],
            &[1],
        )
        .await;
        assert!(may_send(pin, EMPLOYMENT));
        assert!(
            !may_send(pin, EDUCATION),
            "the released record's consent came back"
        );
    }

    /// A record of migration's as this node receives it: under `pin`, its consent naming `to`,
    /// a correction of the record `corrects` (at that index) when given.
    struct Said<'a> {
        pin: &'a str,
        to: &'a str,
        corrects: Option<usize>,
    }

    /// Migration's records `said` (sequences 1, 2, …), the page bringing those at `paged`
    /// (the others withheld from this node), then a release of the rest: whether a member may
    /// then be sent this node's own data under a PIN ([`may_send`]).
    async fn received_out_of_order(
        said: &[Said<'_>],
        paged: &[usize],
    ) -> impl Fn(&str, &str) -> bool {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let schemas = Schemas::load().unwrap();
        let p = started(&store);
        let source: MemberId = "central-server/GOV/70000001/migration".parse().unwrap();
        let (key, kid) = (keys::generate(), KeyName::new(source.clone(), "k").unwrap());
        let mut signed: Vec<SignedEvent> = Vec::new();
        for (i, s) in said.iter().enumerate() {
            let mut data = match s.corrects {
                None => returnee_record(json!({ "pin": s.pin })),
                Some(target) => {
                    let mut c: serde_json::Value = serde_json::from_str(include_str!(
                        "../../tests/examples/returnee-record/valid/record-corrected.json"
                    ))
                    .unwrap();
                    c["supersedes"] = signed[target].event().id.to_string().into();
                    c["person"]["pin"] = s.pin.into();
                    c["person"]["pinHistory"] = json!([said[target].pin]);
                    c["consent"] = signed[0].event().data["consent"].clone();
                    c
                }
            };
            data["consent"]["recipients"] = json!([s.to]);
            let t = EventType::ReturneeRecord;
            signed.push(
                crate::event::Event::new(source.clone(), t, i as u64 + 1, data).sign_selective(
                    &key,
                    &kid,
                    schemas.disclosable(t),
                ),
            );
        }
        let page = ReceiveCursor::Sequence {
            after: 0,
            to: said.len() as u64,
        };
        let first: Vec<SignedEvent> = paged.iter().map(|i| signed[*i].clone()).collect();
        p.receive(source.clone(), first, page).await.unwrap();
        let rest: Vec<SignedEvent> = (0..said.len())
            .filter(|i| !paged.contains(i))
            .map(|i| signed[i].clone())
            .collect();
        let releases = rest.len() as u64;
        p.receive(source.clone(), rest, ReceiveCursor::Release(releases))
            .await
            .unwrap();
        move |pin: &str, member: &str| {
            let _ = &dir;
            may_send(&store, pin, member)
        }
    }

    /// Whether this node may send `member` (reading for employment services) its own data about
    /// `pin`, by the consent it holds.
    fn may_send(store: &Store, pin: &str, member: &str) -> bool {
        let state: Option<ConsentState> = store.consent(pin).unwrap();
        let member: MemberId = member.parse().unwrap();
        let status = crate::event::Event::new(
            member.clone(),
            EventType::EmploymentStatus,
            1,
            draft(pin, None).data,
        );
        let purposes = ["EMPLOYMENT_SERVICES".to_string()];
        consent::decide(&status, state.as_ref(), &member, &purposes).is_ok()
    }

    const EMPLOYMENT: &str = "central-server/GOV/70000002/employment";
    const EDUCATION: &str = "central-server/GOV/70000003/education";

    /// A PIN correction and the record before it, released to this node after a later record
    /// under the new PIN reached it: the earlier PIN ends narrowed by every statement, as in
    /// order, not only by those released late; and a correction released after a later record
    /// under the earlier PIN does not narrow that later one.
    #[tokio::test]
    async fn a_correction_released_late_narrows_the_earlier_pin_as_in_order() {
        let (old, new) = ("12902199254321", "12902199212345");
        let may_read = received_out_of_order(
            &[
                Said {
                    pin: old,
                    to: EMPLOYMENT,
                    corrects: None,
                },
                Said {
                    pin: new,
                    to: EMPLOYMENT,
                    corrects: Some(0),
                },
                Said {
                    pin: new,
                    to: EDUCATION,
                    corrects: None,
                },
            ],
            &[2],
        )
        .await;
        assert!(!may_read(new, EMPLOYMENT));
        assert!(
            !may_read(old, EMPLOYMENT),
            "the earlier PIN still admits a member the later statement dropped"
        );
        // In order: the correction narrows the old PIN to employment, then a record under the
        // old PIN itself grants again, as any later statement does.
        let may_read = received_out_of_order(
            &[
                Said {
                    pin: old,
                    to: EDUCATION,
                    corrects: None,
                },
                Said {
                    pin: new,
                    to: EDUCATION,
                    corrects: Some(0),
                },
                Said {
                    pin: old,
                    to: EMPLOYMENT,
                    corrects: None,
                },
            ],
            &[0, 2],
        )
        .await;
        assert!(
            may_read(old, EMPLOYMENT),
            "the late correction narrowed a later statement"
        );
    }

    /// An order received in the same round as the event it names (the two pages handed to the
    /// writer before it committed either) erases that event before it is stored: the event is
    /// stored stripped, the confirmation is published, and it never enters the window.
    #[tokio::test]
    async fn an_order_erases_an_event_received_in_the_same_round() {
        let ordered = order_in_the_same_round("central-server/GOV/70000001/migration").await;
        assert!(!ordered.whole, "stored with its disclosures");
        assert_eq!(ordered.published, 1, "the confirmation");
        assert!(!ordered.in_window);
    }

    /// Another member's order naming an event staged in the same round erases nothing: only
    /// an event's own publisher may have it erased.
    #[tokio::test]
    async fn another_members_order_does_not_erase_an_event_staged_in_its_round() {
        let ordered = order_in_the_same_round("central-server/GOV/70000003/education").await;
        assert!(ordered.whole, "stripped on a foreign order");
        assert_eq!(ordered.published, 0, "no confirmation");
    }

    /// A holder's confirmation of this node's erasure whose record cannot be read fails the
    /// round, so the page comes again, instead of being passed over for good.
    #[tokio::test]
    async fn a_confirmation_of_an_erasure_whose_record_cannot_be_read_fails_its_page() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let p = started(&store);
        let me = signer().member;
        // This node's record of its erasure, damaged.
        let erasure_id = Uuid::now_v7();
        let mut damaged = WriteBatch::default();
        damaged.set_erasure(&erasure_id, &"not an erasure record");
        store.apply_other(damaged).unwrap();
        let holder: MemberId = "central-server/GOV/70000003/education".parse().unwrap();
        let kid = KeyName::new(holder.clone(), "sign-1").unwrap();
        let confirmation = json!({
            "event": "ERASURE_CONFIRMED", "eventDate": "2026-12-05",
            "purpose": "EMPLOYMENT_SERVICES", "legalBasis": "Law on Personal Information, art. 12",
            "erasureId": erasure_id, "publisher": me, "erased": 1,
        });
        let confirmation =
            crate::event::Event::new(holder.clone(), EventType::Erasure, 1, confirmation)
                .sign(&keys::generate(), &kid);
        let page = ReceiveCursor::Sequence { after: 0, to: 1 };
        let stored = p
            .hand_over(holder.clone(), vec![confirmation], page)
            .await
            .unwrap()
            .stored()
            .await;
        assert!(
            matches!(stored, Err(PublishError::Storage(_))),
            "{stored:?}"
        );
        // Nothing of the page landed: it comes again once the record can be read.
        assert_eq!(store.cursor(&holder).unwrap(), 0);
        assert_eq!(store.last_position().unwrap(), 0);
    }

    /// Received pages must follow the cursor the writer holds: two handed over back to back are
    /// both stored; one that does not start at the cursor is refused and nothing of it stored.
    #[tokio::test]
    async fn a_received_page_that_does_not_follow_the_cursor_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let p = started(&store);
        let source: MemberId = "central-server/GOV/70000001/migration".parse().unwrap();
        let kid = KeyName::new(source.clone(), "sign-1").unwrap();
        let key = keys::generate();
        let event = |sequence: u64| {
            crate::event::cloudevent::Event::new(
                source.clone(),
                EventType::EmploymentStatus,
                sequence,
                draft(&format!("2150319901{sequence:04}"), None).data,
            )
            .sign(&key, &kid)
        };
        let page = |after: u64, to: u64| ReceiveCursor::Sequence { after, to };
        let first = p
            .hand_over(source.clone(), vec![event(1), event(2)], page(0, 2))
            .await
            .unwrap();
        let second = p
            .hand_over(source.clone(), vec![event(3)], page(2, 3))
            .await
            .unwrap();
        assert_eq!(first.stored().await.unwrap(), 2);
        assert_eq!(second.stored().await.unwrap(), 1);
        assert_eq!(store.cursor(&source).unwrap(), 3);
        let stale = p.receive(source.clone(), vec![event(5)], page(4, 5)).await;
        assert!(
            matches!(
                stale,
                Err(PublishError::CursorMoved {
                    expected: 4,
                    held: 3
                })
            ),
            "{stale:?}"
        );
        assert_eq!(store.cursor(&source).unwrap(), 3);
        assert_eq!(store.last_position().unwrap(), 3);
    }
}
