//! Keeps the registry views up to date: follows the node's log and, for every person an event
//! is about, re-projects that person from all of their events. The views and the projector's
//! cursor change in one write with one commit point (on redb and sled the KV records the views
//! file's committed length with the cursor, `store/persons.rs`), so a crash at any point leaves
//! views that match a prefix of the log, and the projector carries on from there; a power loss
//! that took the views file's unsynced tail sends it back to the start of the log, marked as
//! being projected again until it reaches the end ([`whole`]: meanwhile nothing about persons
//! is answered from the views). Whoever decides from the views what cannot be taken back
//! (retention's erasures, a month's signed report) first waits until they hold the log as far
//! as it decides about ([`caught_up_with`]). A view names
//! the positions of every event it was built from, so no separate index of a person's events
//! is kept on the hot path (one random-key write per event less). [`rebuild`] throws the views
//! away and projects the whole log again; it must give the same views.

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::sync::watch;

use crate::event::disclosure::Fields;
use crate::event::identifiers::Pin;
use crate::event::schema::EventType;
use crate::event::SignedEvent;
use crate::policy::consent;
use crate::registry::erasure;
use crate::registry::offers::{self, OfferKind};
use crate::registry::view::{self, PersonView, Stored};
use crate::store::recent::Recent;
use crate::store::{Meta, Store, StoreError, WriteBatch};

const PAGE: usize = 1000;

/// The last log position the views include.
pub fn cursor(store: &Store) -> Result<u64, StoreError> {
    Ok(store
        .meta(&Meta::ViewCursor)?
        .and_then(|v| v.try_into().ok())
        .map_or(0, u64::from_be_bytes))
}

/// Whether the views may answer for persons and KPIs: not while they are being projected
/// again from the start of the log (after their file was found damaged or cut short by a power
/// loss, or a rebuild cleared them), where a person not reached yet would read as unknown.
pub fn whole(store: &Store) -> Result<bool, StoreError> {
    Ok(store.meta(&Meta::ViewsRebuilding)?.is_none())
}

/// Whether the views hold the log up to `head` and are [`whole`]: what may be decided from
/// them about that log.
pub(crate) fn holds(store: &Store, head: u64) -> Result<bool, StoreError> {
    Ok(cursor(store)? >= head && whole(store)?)
}

/// Whether the views [`holds`] the log up to `head`, waiting for them at most `within`:
/// `false` when they are still behind then (being projected again after a power loss, or far
/// behind).
pub(crate) async fn caught_up_with(
    store: &Store,
    head: u64,
    within: Duration,
) -> Result<bool, StoreError> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if holds(store, head)? {
            return Ok(true);
        }
        if tokio::time::Instant::now() >= deadline {
            return Ok(false);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Project every log entry after the projector's cursor, a page at a time, until caught up.
/// Returns the number of log entries taken.
pub(crate) fn catch_up(store: &Store) -> Result<u64, StoreError> {
    until_none_taken(|| step(store, None))
}

/// Run `take` until it takes nothing; returns how many it took in all.
fn until_none_taken(mut take: impl FnMut() -> Result<u64, StoreError>) -> Result<u64, StoreError> {
    let mut taken = 0;
    loop {
        match take()? {
            0 => return Ok(taken),
            n => taken += n,
        }
    }
}

/// A page of the log, parsed: its events by position, and the last position it covers (an
/// event that does not parse is left out of the views, and logged).
struct Page {
    events: Vec<(u64, SignedEvent)>,
    last: Option<u64>,
}

/// The next page of the log after `from`: as the writer left it in `recent` if it is still
/// there, else read from the store.
fn next_page(store: &Store, recent: Option<&Recent>, from: u64) -> Result<Page, StoreError> {
    if let Some(events) = recent.and_then(|r| r.from(from + 1, PAGE)) {
        let last = events.last().map(|(p, _)| *p);
        return Ok(Page { events, last });
    }
    let stored = store.range(from, PAGE)?;
    let last = stored.last().map(|(p, _)| *p);
    let parsed = stored
        .into_iter()
        .filter_map(|(position, bytes)| match SignedEvent::from_store(&bytes) {
            Ok(signed) => Some((position, signed)),
            Err(e) => {
                tracing::error!(position, error = %e, "a stored event does not parse; left out of the views");
                None
            }
        })
        .collect();
    Ok(Page {
        events: parsed,
        last,
    })
}

/// Project every log entry after the cursor, a page at a time, finishing no erasure; returns
/// the number taken. Called holding the writer's lock ([`crate::store::PersonStates`]), it
/// leaves the views up to date with the log until the lock is let go.
pub(crate) fn project_to_end(store: &Store) -> Result<u64, StoreError> {
    until_none_taken(|| project_page(store, None))
}

/// Project the next page of the log; once the views are up to date, finish what erasures left
/// pending (they need every event the erasure's commit came after folded in first). Returns
/// how many log entries the page took (0: up to date).
fn step(store: &Store, recent: Option<&Recent>) -> Result<u64, StoreError> {
    let taken = project_page(store, recent)?;
    if taken == 0 {
        crate::registry::erasure::finish_pending(store)?;
    }
    Ok(taken)
}

/// Project the next page of the log after the cursor; returns how many events it took (0: the
/// views are up to date).
fn project_page(store: &Store, recent: Option<&Recent>) -> Result<u64, StoreError> {
    let from = cursor(store)?;
    let Page { events: page, last } = next_page(store, recent, from)?;
    let Some(last) = last else {
        if !whole(store)? {
            let mut batch = WriteBatch::default();
            batch.views_rebuilt();
            store.apply_other(batch)?;
        }
        return Ok(0);
    };
    let taken = last - from;
    let mut by_person: BTreeMap<Pin, Vec<Stored>> = BTreeMap::new();
    let mut offers: BTreeMap<(OfferKind, String), Option<offers::Offer>> = BTreeMap::new();
    for (position, signed) in &page {
        fold_offer(store, &mut offers, signed.event(), *position)?;
        if let Some(pin) = person_of(*position, signed) {
            by_person.entry(pin).or_default().push(Stored {
                position: *position,
                event: signed.shared_event(),
            });
        }
    }
    let mut batch = WriteBatch::default();
    let pins: Vec<&str> = by_person.keys().map(Pin::expose).collect();
    let held: Vec<Option<PersonView>> = store.views_of(&pins)?;
    for ((pin, new), held) in by_person.iter().zip(held) {
        let view = updated(store, pin, held, new)?;
        batch.set_view(pin.expose(), &view);
    }
    for offer in offers.values().flatten() {
        offers::stage(&mut batch, offer);
    }
    crate::registry::attestations::stage(store, &mut batch, page.iter().map(|(_, s)| s.event()))?;
    batch.set_view_cursor(last);
    store.apply_other(batch)?;
    Ok(taken)
}

/// The person an event at `position` is about, if any: its `person.pin`, which every stored
/// personal event has in the PIN's form (the schemas check it); one that has not is left out
/// of the views, and logged (without it).
fn person_of(position: u64, signed: &SignedEvent) -> Option<Pin> {
    let pin = consent::person_pin(&signed.event().data)?;
    match pin.parse() {
        Ok(pin) => Some(pin),
        Err(e) => {
            tracing::error!(position, error = %e, "a stored event's PIN does not parse; left out of the views");
            None
        }
    }
}

/// The view of `pin` with the page's `new` events about them: projected from those if no view
/// is held (someone new: their events are all in this page), the held view extended if they
/// come in order, else projected again from the events at the positions the held view names
/// (read from the store) and the new ones (as the page has them).
fn updated(
    store: &Store,
    pin: &Pin,
    held: Option<PersonView>,
    new: &[Stored],
) -> Result<PersonView, StoreError> {
    let Some(mut view) = held else {
        return Ok(view::project(pin, new));
    };
    if view::extend(&mut view, new) {
        return Ok(view);
    }
    let fresh: std::collections::HashSet<u64> = new.iter().map(|s| s.position).collect();
    let mut held: Vec<u64> = view.events.iter().map(|e| e.position).collect();
    held.retain(|p| !fresh.contains(p));
    held.sort_unstable();
    held.dedup();
    let mut events = stored_at(store, &held, |_| Fields::All)?;
    events.extend(new.iter().cloned());
    Ok(view::project(pin, &events))
}

/// Fold a vacancy or course-offer event into the page's offers (read from the store the first
/// time an offer is seen in the page).
fn fold_offer(
    store: &Store,
    page: &mut BTreeMap<(OfferKind, String), Option<offers::Offer>>,
    event: &crate::event::Event,
    position: u64,
) -> Result<(), StoreError> {
    let Some(kind) = OfferKind::of(event.event_type) else {
        return Ok(());
    };
    let Some(id) = offers::id_of(kind, &event.data) else {
        return Ok(());
    };
    let held = match page.remove(&(kind, id.clone())) {
        Some(held) => held,
        None => offers::get(store, kind, &id)?,
    };
    page.insert((kind, id), offers::fold(held, event, position));
    Ok(())
}

/// The view of `pin` projected from the events at `positions` only (a subset of its view).
pub(crate) fn project_positions(
    store: &Store,
    pin: &Pin,
    positions: &[u64],
) -> Result<PersonView, StoreError> {
    Ok(view::project(
        pin,
        &stored_at(store, positions, |_| Fields::All)?,
    ))
}

/// The person's view from the events at `positions` as a reader would build it that holds,
/// of each event, only the fields `fields_of` gives its type (a member's grant).
pub fn project_positions_for(
    store: &Store,
    pin: &Pin,
    positions: &[u64],
    fields_of: impl Fn(EventType) -> Fields,
) -> Result<PersonView, StoreError> {
    Ok(view::project(pin, &stored_at(store, positions, fields_of)?))
}

/// The events at `positions`, read from the store and parsed, each with the fields `fields_of`
/// gives its type (a position it does not hold is left out).
fn stored_at(
    store: &Store,
    positions: &[u64],
    fields_of: impl Fn(EventType) -> Fields,
) -> Result<Vec<Stored>, StoreError> {
    let corrupt = |_| StoreError::Corrupt("stored event");
    let mut events = Vec::with_capacity(positions.len());
    for &position in positions {
        if let Some(bytes) = store.get(position)? {
            let mut signed = SignedEvent::from_store(&bytes).map_err(corrupt)?;
            let fields = fields_of(signed.event().event_type);
            if !signed.can_be_cut_to(&fields) {
                // Signed whole, for a reader granted less than every field: left out.
                continue;
            }
            let copy = signed
                .for_reader(&fields)
                .ok_or(StoreError::Corrupt("stored event"))?;
            if let std::borrow::Cow::Owned(fewer) = copy {
                signed = SignedEvent::from_store(&fewer).map_err(corrupt)?;
            }
            if signed.event().event_type.is_personal()
                && consent::person_pin(&signed.event().data).is_none()
            {
                // Erased: its disclosures, the PIN among them, are gone.
                continue;
            }
            events.push(Stored {
                position,
                event: signed.shared_event(),
            });
        }
    }
    Ok(events)
}

/// Drop all views and project the whole log again, in two passes that read each event about
/// twice (not once per page it shares a person with): index every event by person, then
/// project each person once. The index is scratch, dropped at the end (and by the next rebuild
/// if this one is interrupted).
pub fn rebuild(store: &Store) -> Result<u64, StoreError> {
    rebuild_with(store, &mut crate::progress::Quiet)
}

/// [`rebuild`], saying how far it is: the events indexed, then the persons' events projected.
pub fn rebuild_with(
    store: &Store,
    progress: &mut dyn crate::progress::Progress,
) -> Result<u64, StoreError> {
    store.clear_views()?;
    progress.start("rebuild-view: indexing", store.last_position()?);
    let mut indexed = 0;
    let mut after = 0;
    let mut taken = 0;
    loop {
        let page = store.range(after, PAGE * 10)?;
        let Some(last) = page.last().map(|(p, _)| *p) else {
            break;
        };
        let mut batch = WriteBatch::default();
        for (position, bytes) in &page {
            if let Ok(signed) = SignedEvent::from_store(bytes) {
                if let Some(pin) = person_of(*position, &signed) {
                    batch.index_person(pin.expose(), *position);
                    indexed += 1;
                }
            }
        }
        store.apply_other(batch)?;
        taken += page.len() as u64;
        progress.advance(page.len() as u64);
        after = last;
    }
    progress.start("rebuild-view: projecting", indexed);
    let mut batch = WriteBatch::default();
    let mut in_batch = 0;
    let mut current: Option<(Pin, Vec<u64>)> = None;
    let mut flush_person =
        |person: Option<(Pin, Vec<u64>)>, batch: &mut WriteBatch| -> Result<(), StoreError> {
            if let Some((pin, positions)) = person {
                let view = project_positions(store, &pin, &positions)?;
                batch.set_view(pin.expose(), &view);
                progress.advance(positions.len() as u64);
            }
            Ok(())
        };
    for entry in store.person_index() {
        let (pin, position) = entry?;
        let pin: Pin = pin
            .parse()
            .map_err(|_| StoreError::Corrupt("person index"))?;
        match &mut current {
            Some((p, positions)) if *p == pin => positions.push(position),
            _ => {
                flush_person(current.take(), &mut batch)?;
                in_batch += 1;
                if in_batch >= PAGE {
                    store.apply_other(std::mem::take(&mut batch))?;
                    in_batch = 0;
                }
                current = Some((pin, vec![position]));
            }
        }
    }
    flush_person(current.take(), &mut batch)?;
    batch.set_view_cursor(after);
    batch.views_rebuilt();
    store.apply_other(batch)?;
    store.flush()?;
    store.clear_person_index()?;
    progress.finish();
    Ok(taken)
}

/// A person's view, if the node holds events about them: as stored, or, while an erasure of
/// theirs waits for the projector, as it will stand once finished.
/// Both are read whether the person is held or not: on PostgreSQL each read is a round trip,
/// and a refusal of a person held must not take one more than that of a person not held.
pub(crate) fn person(store: &Store, pin: &Pin) -> Result<Option<PersonView>, StoreError> {
    let pending = store.pending_erasure(pin.expose())?;
    let Some(view) = store.view(pin.expose())? else {
        return Ok(None);
    };
    match pending {
        Some(erased) => erasure::as_finished(store, view, &erased),
        None => Ok(Some(view)),
    }
}

/// Every view the node holds, each as [`person`] gives it.
pub fn all(store: &Store) -> Result<Vec<PersonView>, StoreError> {
    let pending: std::collections::HashMap<String, Vec<u64>> =
        store.pending_erasures()?.into_iter().collect();
    let mut views = Vec::new();
    for view in store.views::<PersonView>() {
        let view = view?;
        let view = match pending.get(view.pin.expose()) {
            Some(erased) => erasure::as_finished(store, view, erased)?,
            None => Some(view),
        };
        views.extend(view);
    }
    Ok(views)
}

/// Follow the log as it grows until `stop` turns true (checked between pages, so a node with
/// a long backlog of views still stops at once). New events are projected as soon as they are
/// committed: an agency that reads a person right after its 201 sees what it published.
pub(crate) async fn run(
    store: Store,
    mut positions: watch::Receiver<u64>,
    recent: std::sync::Arc<Recent>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let (s, recent) = (store.clone(), recent.clone());
        match tokio::task::spawn_blocking(move || step(&s, Some(&recent))).await {
            Ok(Ok(n)) if n > 0 && !*stop.borrow() => continue,
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::error!(error = %e, "view projection failed; will retry"),
            Err(e) => tracing::error!(error = %e, "view projection task failed"),
        }
        if *stop.borrow() {
            return;
        }
        let seen = cursor(&store).unwrap_or(0);
        tokio::select! {
            _ = stop.changed() => return,
            _ = positions.wait_for(|p| *p > seen) => {}
            _ = tokio::time::sleep(Duration::from_secs(5)) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::identifiers::{KeyName, MemberId};
    use crate::event::keys;
    use crate::event::schema::{EventType, Schemas};
    use crate::event::Event;
    use crate::write::{Publisher, Signer};
    use rand::seq::SliceRandom;
    use serde_json::json;
    use std::sync::Arc;

    /// The education ministry's publisher on `store`.
    fn education(store: &Store) -> Publisher {
        education_and_writer(store).0
    }

    /// The education ministry's publisher on `store`, and its writer's thread.
    fn education_and_writer(store: &Store) -> (Publisher, std::thread::JoinHandle<()>) {
        let me: MemberId = "central-server/GOV/70000003/education".parse().unwrap();
        let signer = Signer {
            kid: KeyName::new(me.clone(), "k").unwrap(),
            member: me,
            key: keys::generate(),
            max_event_bytes: crate::budget::DEFAULT_MAX_EVENT_BYTES,
        };
        let schemas = Schemas::load().unwrap();
        Publisher::start(store.clone(), schemas, signer, Arc::default(), None).unwrap()
    }

    /// Three events about each of `persons` returnees (a return, a jobseeker registration, a
    /// job), shuffled.
    fn pathways(persons: u64) -> Vec<SignedEvent> {
        let mig: MemberId = "central-server/GOV/70000001/migration".parse().unwrap();
        let emp: MemberId = "central-server/GOV/70000002/employment".parse().unwrap();
        let mut events = Vec::new();
        for p in 0..persons {
            let pin = format!("2150319901{p:04}");
            events.push(event(&mig, EventType::ReturneeRecord, 1, json!({"event": "RETURN_REGISTERED", "eventDate": "2024-01-10",
                "person": {"pin": pin}, "return": {"date": "2024-01-05", "source": "BORDER_RECORD"}, "region": "KG-O"})));
            events.push(event(&emp, EventType::EmploymentStatus, 1, json!({"event": "JOBSEEKER_REGISTERED", "eventDate": format!("2024-02-{:02}", 1 + p % 27),
                "person": {"pin": pin}, "labourForceStatus": "UNEMPLOYED", "registration": {"office": "O", "region": "KG-O", "date": "2024-02-01"}})));
            events.push(event(&emp, EventType::EmploymentStatus, 1, json!({"event": "EMPLOYMENT_STARTED", "eventDate": "2024-06-01",
                "person": {"pin": pin}, "labourForceStatus": "EMPLOYED", "job": {"spellId": "S", "startDate": "2024-06-01",
                "icse18": "41", "formality": "INFORMAL", "contractDuration": "CASUAL", "isco08": "9313"}})));
        }
        events.shuffle(&mut rand::rng());
        events
    }

    /// `events` received by `publisher` in small groups, projecting between them, as a live
    /// node does.
    async fn receive_projecting(publisher: &Publisher, store: &Store, events: &[SignedEvent]) {
        for (i, chunk) in events.chunks(7).enumerate() {
            let source: MemberId = format!("x/GOV/{i}/feed").parse().unwrap();
            publisher
                .receive(
                    source,
                    chunk.to_vec(),
                    crate::write::ReceiveCursor::Sequence { after: 0, to: 1 },
                )
                .await
                .unwrap();
            catch_up(store).unwrap();
        }
    }

    fn event(source: &MemberId, t: EventType, seq: u64, data: serde_json::Value) -> SignedEvent {
        let key = keys::generate();
        let kid = KeyName::new(source.clone(), "k").unwrap();
        Event::new(source.clone(), t, seq, data).sign(&key, &kid)
    }

    #[tokio::test]
    async fn incremental_views_equal_a_rebuild_for_a_shuffled_stream() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let publisher = education(&store);
        receive_projecting(&publisher, &store, &pathways(40)).await;
        let incremental = all(&store).unwrap();
        assert_eq!(incremental.len(), 40);
        rebuild(&store).unwrap();
        assert!(whole(&store).unwrap(), "a finished rebuild answers again");
        let rebuilt = all(&store).unwrap();
        assert_eq!(incremental, rebuilt);
        assert!(rebuilt
            .iter()
            .all(|v| v.spells.len() == 1 && v.returnee.is_some()));
    }

    /// A views file that lost the tail its last writes appended (they are not fdatasynced: a
    /// power loss before the kernel wrote them back), while the KV had made its record of the
    /// file's length durable, is projected again from the log at open, to the views it held.
    #[tokio::test]
    async fn views_that_lost_their_unsynced_tail_are_projected_again_whole() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let (publisher, writer) = education_and_writer(&store);
        receive_projecting(&publisher, &store, &pathways(20)).await;
        let before = all(&store).unwrap();
        assert_eq!(before.len(), 20);
        store.flush().unwrap();
        drop((publisher, store));
        writer.join().unwrap();
        let views = std::fs::read_dir(dir.path().join("views"))
            .unwrap()
            .map(|f| f.unwrap().path())
            .find(|p| p.extension().is_some_and(|e| e == "views"))
            .unwrap();
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(&views)
            .unwrap();
        let len = file.metadata().unwrap().len();
        file.set_len(len - 100).unwrap();
        drop(file);

        let store = Store::open(dir.path()).unwrap();
        assert_eq!(cursor(&store).unwrap(), 0, "the projector starts over");
        assert!(all(&store).unwrap().is_empty());
        assert!(
            !whole(&store).unwrap(),
            "nothing is answered from them meanwhile"
        );
        let me: MemberId = "central-server/GOV/70000003/education".parse().unwrap();
        let rebuilding = |store: &Store, pin: &Pin| {
            let user = crate::registry::serve::LocalUser {
                node: &me,
                purpose: "REINTEGRATION_CASE_MANAGEMENT",
            };
            matches!(
                crate::registry::serve::person(store, pin, user).unwrap(),
                crate::registry::serve::Lookup::ViewsRebuilding
            )
        };
        let held = &before[0].pin;
        assert!(
            rebuilding(&store, held),
            "a person lookup is told the views are rebuilding"
        );
        // The same answer about someone never held: the refusal tells nothing of whom.
        let stranger: Pin = "21503199099999".parse().unwrap();
        assert!(rebuilding(&store, &stranger));
        catch_up(&store).unwrap();
        assert_eq!(all(&store).unwrap(), before);
        assert!(whole(&store).unwrap(), "whole once they hold the log");
        assert!(!rebuilding(&store, held));
        assert!(!rebuilding(&store, &stranger));
    }

    /// Whether the views hold the log up to a position: not while the projector is behind it
    /// (after the wait), at once when it is there.
    #[tokio::test]
    async fn caught_up_with_says_whether_the_views_hold_the_log() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let publisher = education(&store);
        let events = pathways(2);
        publisher
            .receive(
                "x/GOV/1/feed".parse().unwrap(),
                events,
                crate::write::ReceiveCursor::Sequence { after: 0, to: 1 },
            )
            .await
            .unwrap();
        let head = store.last_position().unwrap();
        let wait = Duration::from_millis(50);
        assert!(!caught_up_with(&store, head, wait).await.unwrap());
        catch_up(&store).unwrap();
        assert!(caught_up_with(&store, head, wait).await.unwrap());
        assert!(caught_up_with(&store, 0, Duration::ZERO).await.unwrap());
    }

    /// Between the writer's erasure and the projector finishing it, every read of a person
    /// (one, or all of them) is served the view as it will stand: without the erased values,
    /// and nobody when nothing remains.
    #[tokio::test]
    async fn a_pending_erasure_is_not_served_from_the_stale_view() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let schemas = Schemas::load().unwrap();
        let publisher = education(&store);
        let mig: MemberId = "central-server/GOV/70000001/migration".parse().unwrap();
        let emp: MemberId = "central-server/GOV/70000002/employment".parse().unwrap();
        let (key, kid) = (keys::generate(), KeyName::new(mig.clone(), "k").unwrap());
        let record = |seq: u64, pin: &str, name: &str| {
            let mut data: serde_json::Value = serde_json::from_str(include_str!(
                "../../tests/examples/returnee-record/valid/return-registered.json"
            ))
            .unwrap();
            data["person"] = json!({"pin": pin, "name": {"given": name, "family": "Uulu"}});
            let t = EventType::ReturneeRecord;
            Event::new(mig.clone(), t, seq, data).sign_selective(&key, &kid, schemas.disclosable(t))
        };
        let (alone, kept) = ("21503199012345", "21503199012346");
        let records = vec![record(1, alone, "Aibek"), record(2, kept, "Bakyt")];
        let status = event(
            &emp,
            EventType::EmploymentStatus,
            1,
            json!({"event": "JOBSEEKER_REGISTERED", "eventDate": "2024-02-01",
            "person": {"pin": kept}, "labourForceStatus": "UNEMPLOYED", "registration": {"office": "O", "region": "KG-O", "date": "2024-02-01"}}),
        );
        let page = |after: u64, to: u64| crate::write::ReceiveCursor::Sequence { after, to };
        let ids: Vec<_> = records.iter().map(|r| r.event().id).collect();
        publisher
            .receive(mig.clone(), records, page(0, 2))
            .await
            .unwrap();
        publisher
            .receive(emp, vec![status], page(0, 1))
            .await
            .unwrap();
        catch_up(&store).unwrap();
        let order = json!({
            "event": "ERASURE_ORDERED", "eventDate": "2026-12-05", "purpose": "EMPLOYMENT_SERVICES",
            "legalBasis": "Law on Personal Information, art. 12", "cause": "REQUEST",
            "erasureId": uuid::Uuid::now_v7(), "events": ids,
        });
        let order = Event::new(mig.clone(), EventType::Erasure, 3, order).sign(&key, &kid);
        publisher
            .receive(mig, vec![order], page(2, 3))
            .await
            .unwrap();

        // Not yet finished by the projector: the stored views still hold the names.
        let stored: PersonView = store.view(alone).unwrap().unwrap();
        assert!(stored.name.is_some(), "the erasure was finished already");
        let pin = |p: &str| p.parse::<Pin>().unwrap();
        assert_eq!(person(&store, &pin(alone)).unwrap(), None);
        let served = person(&store, &pin(kept)).unwrap().unwrap();
        assert_eq!((served.name.as_ref(), served.events.len()), (None, 1));
        assert_eq!(all(&store).unwrap(), vec![served.clone()]);
        // Once finished, the same.
        catch_up(&store).unwrap();
        assert_eq!(store.view::<PersonView>(alone).unwrap(), None);
        assert_eq!(person(&store, &pin(kept)).unwrap(), Some(served));
    }
}
