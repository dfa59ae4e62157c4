//! Finishing an erasure at this node, after the writer committed it: what is left of the
//! person here is projected again from the events that remain, or, when none remain, forgotten:
//! the view, the consent state, the access log's index and the withheld records go, and every
//! access-log entry and quarantine record that named the person is rewritten without them
//! (marked redacted, so the audit still verifies the side logs). A person who keeps other data
//! here loses the quarantine bodies naming them that the erasures' orderers sent. The writer
//! leaves a pending record per person in the same write as the erasure; this deletes it in the
//! same write as the work, so a crash in between redoes it, and the projector runs it whenever
//! it is caught up with the log.

use std::collections::{HashMap, HashSet};

use uuid::Uuid;

use crate::event::identifiers::Pin;
use crate::policy::access::{self, Access, Official, Outcome, Reader};
use crate::registry::attestations::Attestation;
use crate::registry::projector;
use crate::registry::view::PersonView;
use crate::store::{PersonStates, SideLog, Store, StoreError, WriteBatch};
use crate::write::erasure::{Cause, ErasureRecord};

/// How many quarantine records are read at a time when looking for the person.
const QUARANTINE_PAGE: usize = 1000;

/// Finish every pending erasure; returns how many persons it finished. The quarantine is read
/// once for all of them.
///
/// Each person is finished holding the lock the writer holds across its rounds
/// ([`crate::store::PersonStates`]): the views are first brought up to date with what the
/// writer committed since the projector last looked (one of those events may be about this
/// person, who then keeps data here), and the person's pending record is read again, so a round
/// that merged another erasure into it or stated consent under the PIN is wholly before
/// (and seen) or wholly after. The lock goes to the writer, if it waits, between two persons.
pub fn finish_pending(store: &Store) -> Result<usize, StoreError> {
    let pending = store.pending_erasures()?;
    if pending.is_empty() {
        return Ok(0);
    }
    let persons: HashSet<Pin> = pending.iter().filter_map(|(p, _)| p.parse().ok()).collect();
    let (mut quarantined, mut read_to) = (HashMap::new(), 0);
    quarantine_naming(store, &persons, &mut read_to, &mut quarantined)?;
    let mut finished = 0;
    for (pin, _) in &pending {
        let held = store.person_states().hold();
        projector::project_to_end(store)?;
        // What was quarantined since (the writer ran rounds between two persons).
        quarantine_naming(store, &persons, &mut read_to, &mut quarantined)?;
        if let Some(erased) = store.pending_erasure(pin)? {
            finish_one(store, pin, &erased, &mut quarantined)?;
            finished += 1;
        }
        PersonStates::hand_over(held);
    }
    Ok(finished)
}

/// Finish the erasure of `pin`'s `erased` positions, in one write with its pending record's
/// deletion.
fn finish_one(
    store: &Store,
    pin: &str,
    erased: &[u64],
    quarantined: &mut HashMap<Pin, Vec<u64>>,
) -> Result<(), StoreError> {
    let mut batch = WriteBatch::default();
    match pin.parse::<Pin>() {
        Ok(pin) => {
            let numbers = quarantined.remove(&pin).unwrap_or_default();
            finish(store, &pin, erased, &numbers, &mut batch)?
        }
        // A key the writer made from a parsed PIN; anything else is damage: drop the record.
        Err(_) => batch.clear_pending_erasure(pin),
    }
    store.apply_other(batch)
}

/// The person's view as it stands once the pending erasure of `erased` is finished, when the
/// projector has not finished it yet: what every read of a person is served from
/// ([`projector::person`], [`projector::all`]), so an erased value is not served from the
/// view in between. `None`: nothing remains.
pub(crate) fn as_finished(
    store: &Store,
    view: PersonView,
    erased: &[u64],
) -> Result<Option<PersonView>, StoreError> {
    let erased: HashSet<u64> = erased.iter().copied().collect();
    let pin = view.pin.clone();
    what_remains(store, Some(&view), &pin, &erased)
}

/// `view` projected again from its events that neither `erased` names nor the store records
/// as erased; `None` when none remain.
fn what_remains(
    store: &Store,
    view: Option<&PersonView>,
    pin: &Pin,
    erased: &HashSet<u64>,
) -> Result<Option<PersonView>, StoreError> {
    let mut remaining = Vec::new();
    for position in view
        .iter()
        .flat_map(|v| v.events.iter().map(|e| e.position))
    {
        if !is_erased(store, erased, position)? {
            remaining.push(position);
        }
    }
    remaining.sort_unstable();
    remaining.dedup();
    if remaining.is_empty() {
        return Ok(None);
    }
    projector::project_positions(store, pin, &remaining).map(Some)
}

/// Whether the event at `position` is erased: named by the erasure being finished (`erased`),
/// or recorded as erased by the store.
fn is_erased(store: &Store, erased: &HashSet<u64>, position: u64) -> Result<bool, StoreError> {
    Ok(erased.contains(&position) || store.erased(position)?.is_some())
}

/// The person's view projected again from what remains, or the person forgotten; `quarantined`
/// numbers the quarantine records that name them.
fn finish(
    store: &Store,
    pin: &Pin,
    erased: &[u64],
    quarantined: &[u64],
    batch: &mut WriteBatch,
) -> Result<(), StoreError> {
    let erased: HashSet<u64> = erased.iter().copied().collect();
    let erasure = match erased.iter().min() {
        Some(&position) => store.erased(position)?.unwrap_or_else(Uuid::nil),
        None => Uuid::nil(),
    };
    let old_view: Option<PersonView> = store.view(pin.expose())?;
    if let Some(view) = what_remains(store, old_view.as_ref(), pin, &erased)? {
        // A refused copy of an erased event may sit in the quarantine with its values: what
        // the erasures' orderers sent about the person goes; what others sent stays theirs.
        let erasures = erasures_behind(store, &erased)?;
        let origins: Option<HashSet<String>> = (erasures.iter())
            .map(|(_, record)| record.as_ref().map(ErasureRecord::origin))
            .collect();
        redact_quarantine(store, quarantined, &erasure, origins.as_ref(), batch)?;
        forget_credentials_of_erased(store, pin, old_view.as_ref(), &erased, batch)?;
        batch.set_view(pin.expose(), &view);
        batch.clear_pending_erasure(pin.expose());
        return record_in_access_log(store, pin, &erasures);
    }
    for (number, entry) in store.access_entries_numbered(pin.expose())? {
        batch.redact_side(
            SideLog::Access,
            number,
            &access::without(&entry, pin)?,
            &erasure,
        );
    }
    redact_quarantine(store, quarantined, &erasure, None, batch)?;
    store.forget_person(pin.expose(), batch)
}

/// The copies this node keeps of credentials it issued to the person for events now erased
/// (an erasure that leaves the person other data here): each repeats what its event said of
/// the person, so it goes with it. The holder keeps their credential; the status list still
/// says it is not revoked, as when the person is forgotten whole, and its entry (nothing of the
/// person) is kept so that it can still be revoked.
fn forget_credentials_of_erased(
    store: &Store,
    pin: &Pin,
    view: Option<&PersonView>,
    erased: &HashSet<u64>,
    batch: &mut WriteBatch,
) -> Result<(), StoreError> {
    for e in view.iter().flat_map(|v| &v.events) {
        if !is_erased(store, erased, e.position)? {
            continue;
        }
        let Ok(id) = Uuid::parse_str(&e.id) else {
            continue;
        };
        let attested: Option<Attestation> = store.attestation(e.source.as_str(), &id)?;
        let Some(credential) = attested.map(|a| a.credential_id) else {
            continue;
        };
        if store.credential_holder(&credential)?.as_deref() == Some(pin.expose()) {
            batch.delete_credential(pin.expose(), &credential);
        }
    }
    Ok(())
}

/// The erasures that stripped the events at `erased`, each once (in the order first met), with
/// its record where this node holds one.
fn erasures_behind(
    store: &Store,
    erased: &HashSet<u64>,
) -> Result<Vec<(Uuid, Option<ErasureRecord>)>, StoreError> {
    let mut erasures: Vec<(Uuid, Option<ErasureRecord>)> = Vec::new();
    for &position in erased {
        let Some(id) = store.erased(position)? else {
            continue;
        };
        if erasures.iter().all(|(known, _)| *known != id) {
            erasures.push((id, store.erasure(&id)?));
        }
    }
    Ok(erasures)
}

/// The person keeps data here: their access log says what was erased, by whom, under which
/// legal basis (each erasure once, however many of its events were theirs).
fn record_in_access_log(
    store: &Store,
    pin: &Pin,
    erasures: &[(Uuid, Option<ErasureRecord>)],
) -> Result<(), StoreError> {
    for (id, record) in erasures {
        let Some(record) = record else {
            continue;
        };
        let who = Reader::member(&record.ordered_by, None, &Official::default());
        let what = format!(
            "erasure {id} ({}) of events from {}; legal basis: {}",
            match record.cause {
                Cause::Request => "on request",
                Cause::Retention => "at the end of their retention",
            },
            record.ordered_by,
            record.legal_basis
        );
        access::log(store, &who, [Access::new(pin, what, Outcome::Erased)])?;
    }
    Ok(())
}

/// The numbers of the quarantine records after record `after` that name any of `persons`,
/// added to `found` by person (numbers only: a hostile share of the quarantine cannot fill the
/// memory); `after` moves to the last record read.
fn quarantine_naming(
    store: &Store,
    persons: &HashSet<Pin>,
    after: &mut u64,
    found: &mut HashMap<Pin, Vec<u64>>,
) -> Result<(), StoreError> {
    loop {
        let page = store.side_entries(SideLog::Quarantine, *after, QUARANTINE_PAGE)?;
        let Some(&(last, _)) = page.last() else {
            return Ok(());
        };
        for (number, bytes) in page {
            for pin in access::pins_in(&bytes) {
                if persons.contains(&pin) {
                    found.entry(pin).or_default().push(number);
                }
            }
        }
        *after = last;
    }
}

/// Rewrite each quarantine record numbered in `numbers` (that came from one of `origins`,
/// when given) without its body (what was refused and why stay; the bytes go).
fn redact_quarantine(
    store: &Store,
    numbers: &[u64],
    erasure: &Uuid,
    origins: Option<&HashSet<String>>,
    batch: &mut WriteBatch,
) -> Result<(), StoreError> {
    for &number in numbers {
        let entry = store.side_entries(SideLog::Quarantine, number.saturating_sub(1), 1)?;
        let Some((_, bytes)) = entry.into_iter().find(|(n, _)| *n == number) else {
            continue;
        };
        let mut record: serde_json::Value =
            serde_json::from_slice(&bytes).map_err(|_| StoreError::Corrupt("quarantine record"))?;
        let origin = record["origin"].as_str().unwrap_or_default();
        if origins.is_some_and(|o| !o.contains(origin)) {
            continue;
        }
        record["body"] = format!("erased by erasure {erasure}").into();
        record["detail"] = serde_json::Value::Null;
        let rewritten =
            serde_json::to_vec(&record).map_err(|_| StoreError::Corrupt("quarantine record"))?;
        batch.redact_side(SideLog::Quarantine, number, &rewritten, erasure);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::identifiers::{KeyName, MemberId};
    use crate::event::keys;
    use crate::event::schema::{EventType, Schemas};
    use crate::event::{Event, SignedEvent};
    use crate::store::{QuarantineCaps, Quarantined, LOCAL_ORIGIN};
    use crate::write::{Draft, Publisher, ReceiveCursor, Signer};
    use serde_json::json;
    use std::sync::Arc;

    const PIN: &str = "21503199012345";

    fn member(s: &str) -> MemberId {
        format!("central-server/GOV/{s}").parse().unwrap()
    }

    /// `data` from `source` at `sequence`, signed by a key of its own, as an SD-JWT.
    fn signed(
        source: &MemberId,
        t: EventType,
        sequence: u64,
        data: serde_json::Value,
    ) -> SignedEvent {
        let kid = KeyName::new(source.clone(), "sign-1").unwrap();
        let schemas = Schemas::load().unwrap();
        Event::new(source.clone(), t, sequence, data).sign_selective(
            &keys::generate(),
            &kid,
            schemas.disclosable(t),
        )
    }

    fn example(path: &str) -> serde_json::Value {
        let root = env!("CARGO_MANIFEST_DIR");
        let text = std::fs::read_to_string(format!("{root}/tests/examples/{path}")).unwrap();
        let mut data: serde_json::Value = serde_json::from_str(&text).unwrap();
        data["person"]["pin"] = PIN.into();
        data
    }

    async fn receive(p: &Publisher, source: &MemberId, events: Vec<SignedEvent>, after: u64) {
        let to = after + events.len() as u64;
        let cursor = ReceiveCursor::Sequence { after, to };
        let receiving = p.hand_over(source.clone(), events, cursor).await.unwrap();
        receiving.stored().await.unwrap();
    }

    /// The quarantine's bodies, by origin.
    fn bodies(store: &Store) -> Vec<(String, String)> {
        let entries = store.side_entries(SideLog::Quarantine, 0, 100).unwrap();
        entries
            .iter()
            .map(|(_, bytes)| {
                let record: serde_json::Value = serde_json::from_slice(bytes).unwrap();
                let text = |k: &str| record[k].as_str().unwrap_or_default().to_string();
                (text("origin"), text("body"))
            })
            .collect()
    }

    /// A person's story at the employment service as others told it: the migration agency's
    /// returnee record and the education ministry's enrolment, both in the views.
    struct Story {
        store: Store,
        p: Publisher,
        migration: MemberId,
        education: MemberId,
        record: SignedEvent,
        enrolment: SignedEvent,
        /// Where the record and the enrolment are in the log.
        record_at: u64,
        enrolment_at: u64,
    }

    async fn story(dir: &tempfile::TempDir) -> Story {
        let store = Store::open(dir.path()).unwrap();
        let me = member("70000002/employment");
        let signer = Signer {
            kid: KeyName::new(me.clone(), "sign-1").unwrap(),
            member: me.clone(),
            key: keys::generate(),
            max_event_bytes: crate::budget::DEFAULT_MAX_EVENT_BYTES,
        };
        let schemas = Schemas::load().unwrap();
        let (p, _writer) =
            Publisher::start(store.clone(), schemas, signer, Arc::default(), None).unwrap();
        let (migration, education) = (member("70000001/migration"), member("70000003/education"));
        let t = EventType::ReturneeRecord;
        let record = signed(
            &migration,
            t,
            1,
            example("returnee-record/valid/return-registered.json"),
        );
        receive(&p, &migration, vec![record.clone()], 0).await;
        let t = EventType::TrainingEnrolment;
        let enrolment = signed(
            &education,
            t,
            1,
            example("training-enrolment/valid/completed.json"),
        );
        receive(&p, &education, vec![enrolment.clone()], 0).await;
        projector::catch_up(&store).unwrap();
        let position_of = |s: &SignedEvent| {
            let e = s.event();
            store.position_of(&e.source, &e.id).unwrap().unwrap()
        };
        let (record_at, enrolment_at) = (position_of(&record), position_of(&enrolment));
        Story {
            store,
            p,
            migration,
            education,
            record,
            enrolment,
            record_at,
            enrolment_at,
        }
    }

    /// The service's own status of the person; returns its position.
    async fn publish_own(p: &Publisher) -> u64 {
        let status = Draft {
            event_type: EventType::EmploymentStatus,
            data: example("employment-status/valid/employment-started.json"),
            idempotency_key: None,
        };
        p.publish(status).await.unwrap().position
    }

    /// The order of `erasing`'s publisher to erase it, as the next event of theirs.
    fn order(erasing: &SignedEvent) -> SignedEvent {
        let e = erasing.event();
        let order = json!({
            "event": "ERASURE_ORDERED", "eventDate": "2026-12-05",
            "purpose": "EMPLOYMENT_SERVICES", "cause": "REQUEST",
            "legalBasis": "Law on Personal Information, art. 12",
            "erasureId": Uuid::now_v7(), "events": [e.id],
        });
        signed(&e.source, EventType::Erasure, 2, order)
    }

    /// The positions the person's view names.
    fn view_of(store: &Store) -> Vec<u64> {
        let view: PersonView = store.view(PIN).unwrap().unwrap();
        view.events.iter().map(|e| e.position).collect()
    }

    #[tokio::test]
    async fn two_members_erasures_pending_at_once_are_finished_together() {
        let dir = tempfile::tempdir().unwrap();
        let story = story(&dir).await;
        let (store, p) = (&story.store, &story.p);
        let (migration, education) = (&story.migration, &story.education);
        let own = publish_own(p).await;
        projector::catch_up(store).unwrap();

        // Two erasures before the projector finishes either: the migration agency's order for
        // its record and the education ministry's for its enrolment.
        receive(p, migration, vec![order(&story.record)], 1).await;
        receive(p, education, vec![order(&story.enrolment)], 1).await;
        let mut pending = store.pending_erasure(PIN).unwrap().unwrap();
        pending.sort_unstable();
        assert_eq!(pending, [story.record_at, story.enrolment_at]);

        // Refused copies naming the person, from each of the three.
        for origin in [migration.as_str(), LOCAL_ORIGIN, education.as_str()] {
            let body = format!(r#"{{"person": {{"pin": "{PIN}"}}}}"#);
            let refused =
                Quarantined::new(origin.into(), "schema-invalid".into(), json!(null), body);
            let none = QuarantineCaps::NONE;
            store.quarantine(refused, none, none).unwrap();
        }
        projector::catch_up(store).unwrap();

        assert_eq!(store.pending_erasure(PIN).unwrap(), None);
        assert_eq!(
            view_of(store),
            [own],
            "only the service's own event remains"
        );
        // What the two orderers sent about the person goes; the service's own stays.
        for (origin, body) in bodies(store) {
            let redacted = body.starts_with("erased by erasure");
            let ordered = origin == migration.as_str() || origin == education.as_str();
            assert_eq!(redacted, ordered, "{origin}: {body}");
        }
    }

    /// An erasure that leaves the person other data here takes the copies of the credentials
    /// this node issued for the erased events with it (each repeats what its event said of the
    /// person); a credential for an event that remains keeps its copy.
    #[tokio::test]
    async fn a_credential_copy_goes_with_the_erased_event_it_attests() {
        let dir = tempfile::tempdir().unwrap();
        let story = story(&dir).await;
        let (store, p) = (&story.store, &story.p);
        let (for_enrolment, for_record) = (Uuid::now_v7(), Uuid::now_v7());
        let mut batch = WriteBatch::default();
        for (signed, credential) in [
            (&story.enrolment, for_enrolment),
            (&story.record, for_record),
        ] {
            let e = signed.event();
            let attestation = Attestation {
                credential_id: credential,
                vct: "https://issuer.example/vct/course-completion".into(),
                revoked: false,
            };
            batch.set_attestation(e.source.as_str(), &e.id, &attestation);
            batch.set_credential(
                PIN,
                &credential,
                &json!({"sdJwt": "the person's name and course"}),
            );
        }
        store.apply_other(batch).unwrap();

        receive(p, &story.education, vec![order(&story.enrolment)], 1).await;
        projector::catch_up(store).unwrap();
        assert_eq!(store.pending_erasure(PIN).unwrap(), None);
        assert_eq!(
            view_of(store),
            [story.record_at],
            "the person keeps the record"
        );
        assert_eq!(store.credential_holder(&for_enrolment).unwrap(), None);
        assert_eq!(
            store.credential_holder(&for_record).unwrap().as_deref(),
            Some(PIN)
        );
        let copies: Vec<serde_json::Value> = store.credentials_of(PIN).unwrap();
        assert_eq!(copies.len(), 1, "only the copy for the event that remains");
    }

    /// The projector found itself up to date and went to finish an erasure, and the writer
    /// committed an event about the same person first: that event is projected before the
    /// erasure is finished, so the person keeps it (and their consent state) rather than being
    /// forgotten while holding new data here.
    #[tokio::test]
    async fn an_erasure_is_finished_after_the_events_committed_before_it() {
        let dir = tempfile::tempdir().unwrap();
        let story = story(&dir).await;
        let (store, p) = (&story.store, &story.p);
        receive(p, &story.migration, vec![order(&story.record)], 1).await;
        receive(p, &story.education, vec![order(&story.enrolment)], 1).await;
        assert!(store.consent::<serde_json::Value>(PIN).unwrap().is_some());
        // The person comes back to the service before the projector takes the erasures.
        let again = publish_own(p).await;

        assert_eq!(finish_pending(store).unwrap(), 1);
        assert_eq!(store.pending_erasure(PIN).unwrap(), None);
        assert_eq!(
            view_of(store),
            [again],
            "the new event is the person's view"
        );
        assert!(
            store.consent::<serde_json::Value>(PIN).unwrap().is_some(),
            "the consent state stays while the person has data here"
        );
    }

    /// A second erasure merged into the person's pending record while the projector waits
    /// for the lock (as the writer merges it in a round) is finished with the first: the
    /// record is read again under the lock, not taken from the list read before it. Nothing
    /// of the person remains: they are forgotten.
    #[tokio::test]
    async fn an_erasure_merged_while_the_projector_waits_is_finished_too() {
        let dir = tempfile::tempdir().unwrap();
        let story = story(&dir).await;
        let store = &story.store;
        receive(&story.p, &story.migration, vec![order(&story.record)], 1).await;
        assert_eq!(
            store.pending_erasure(PIN).unwrap().unwrap(),
            [story.record_at]
        );

        let held = store.person_states().hold();
        let finishing = std::thread::spawn({
            let store = store.clone();
            move || finish_pending(&store)
        });
        std::thread::sleep(std::time::Duration::from_millis(200));
        assert!(!finishing.is_finished(), "finished while the lock was held");
        let mut batch = WriteBatch::default();
        batch.set_pending_erasure(PIN, &[story.record_at, story.enrolment_at]);
        store.apply_other(batch).unwrap();
        drop(held);

        assert_eq!(finishing.join().unwrap().unwrap(), 1);
        assert_eq!(store.pending_erasure(PIN).unwrap(), None);
        let view: Option<PersonView> = store.view(PIN).unwrap();
        assert!(view.is_none(), "both erasures were finished");
    }
}
