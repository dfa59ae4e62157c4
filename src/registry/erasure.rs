//! Finishing an erasure at this node, after the writer committed it: what is left of the
//! person here is projected again from the events that remain, or, when none remain, forgotten:
//! the view, the consent state, the access log's index and the withheld records go, and every
//! access-log entry and quarantine record that named the person is rewritten without them
//! (marked redacted, so the audit still verifies the side logs). A person who keeps other data
//! here loses the quarantine bodies naming them that the erasure's orderer sent. The writer leaves a pending
//! record per person in the same write as the erasure; this deletes it in the same write as
//! the work, so a crash in between redoes it, and the projector runs it whenever it is caught
//! up with the log.

use std::collections::{HashMap, HashSet};

use uuid::Uuid;

use crate::event::identifiers::Pin;
use crate::policy::access::{self, Access, Official, Outcome, Reader};
use crate::registry::projector;
use crate::registry::view::PersonView;
use crate::store::{SideLog, Store, StoreError, WriteBatch};
use crate::write::erasure::{Cause, ErasureRecord};

/// How many quarantine records are read at a time when looking for the person.
const QUARANTINE_PAGE: usize = 1000;

/// Quarantine records as stored, each with its number.
type Records = Vec<(u64, Vec<u8>)>;

/// Finish every pending erasure; returns how many persons it finished. The quarantine is read
/// once for all of them.
pub fn finish_pending(store: &Store) -> Result<usize, StoreError> {
    let pending = store.pending_erasures()?;
    if pending.is_empty() {
        return Ok(0);
    }
    let persons: HashSet<Pin> = pending.iter().filter_map(|(p, _)| p.parse().ok()).collect();
    let mut quarantined = quarantine_naming(store, &persons)?;
    for (pin, erased) in &pending {
        let mut batch = WriteBatch::default();
        match pin.parse::<Pin>() {
            Ok(pin) => {
                let records = quarantined.remove(&pin).unwrap_or_default();
                finish(store, &pin, erased, &records, &mut batch)?
            }
            // A key the writer made from a parsed PIN; anything else is damage: drop the record.
            Err(_) => batch.clear_pending_erasure(pin),
        }
        store.apply_other(batch)?;
    }
    Ok(pending.len())
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
        if !erased.contains(&position) && store.erased(position)?.is_none() {
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

/// The person's view projected again from what remains, or the person forgotten; `quarantined`
/// holds the quarantine records that name them.
fn finish(
    store: &Store,
    pin: &Pin,
    erased: &[u64],
    quarantined: &[(u64, Vec<u8>)],
    batch: &mut WriteBatch,
) -> Result<(), StoreError> {
    let erased: HashSet<u64> = erased.iter().copied().collect();
    let erasure = match erased.iter().next() {
        Some(&position) => store.erased(position)?.unwrap_or_else(Uuid::nil),
        None => Uuid::nil(),
    };
    let view: Option<PersonView> = store.view(pin.expose())?;
    if let Some(view) = what_remains(store, view.as_ref(), pin, &erased)? {
        // A refused copy of an erased event may sit in the quarantine with its values: what
        // the erasure's orderer sent about the person goes; what others sent stays theirs.
        let origin = store
            .erasure::<ErasureRecord>(&erasure)?
            .map(|record| record.origin());
        redact_quarantine(quarantined, &erasure, origin.as_deref(), batch)?;
        batch.set_view(pin.expose(), &view);
        batch.clear_pending_erasure(pin.expose());
        return record_in_access_log(store, pin, &erased);
    }
    for (number, entry) in store.access_entries_numbered(pin.expose())? {
        batch.redact_side(
            SideLog::Access,
            number,
            &access::without(&entry, pin)?,
            &erasure,
        );
    }
    redact_quarantine(quarantined, &erasure, None, batch)?;
    store.forget_person(pin.expose(), batch)
}

/// The person keeps data here: their access log says what was erased, by whom, under which
/// legal basis (each erasure once, however many of its events were theirs).
fn record_in_access_log(store: &Store, pin: &Pin, erased: &HashSet<u64>) -> Result<(), StoreError> {
    let mut ids: Vec<Uuid> = Vec::new();
    for &position in erased {
        if let Some(id) = store.erased(position)? {
            if !ids.contains(&id) {
                ids.push(id);
            }
        }
    }
    for id in ids {
        let Some(record) = store.erasure::<ErasureRecord>(&id)? else {
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

/// The quarantine records (number, bytes) that name each of `persons`, in one reading of the
/// quarantine.
fn quarantine_naming(
    store: &Store,
    persons: &HashSet<Pin>,
) -> Result<HashMap<Pin, Records>, StoreError> {
    let mut found: HashMap<Pin, Records> = HashMap::new();
    let mut after = 0;
    loop {
        let page = store.side_entries(SideLog::Quarantine, after, QUARANTINE_PAGE)?;
        let Some(&(last, _)) = page.last() else {
            return Ok(found);
        };
        for (number, bytes) in page {
            for pin in access::pins_in(&bytes) {
                if persons.contains(&pin) {
                    found.entry(pin).or_default().push((number, bytes.clone()));
                }
            }
        }
        after = last;
    }
}

/// Rewrite each of `records` (that came from `origin`, when given) without its body (what was
/// refused and why stay; the bytes go).
fn redact_quarantine(
    records: &[(u64, Vec<u8>)],
    erasure: &Uuid,
    origin: Option<&str>,
    batch: &mut WriteBatch,
) -> Result<(), StoreError> {
    for (number, bytes) in records {
        let mut record: serde_json::Value =
            serde_json::from_slice(bytes).map_err(|_| StoreError::Corrupt("quarantine record"))?;
        if origin.is_some_and(|o| record["origin"] != o) {
            continue;
        }
        record["body"] = format!("erased by erasure {erasure}").into();
        record["detail"] = serde_json::Value::Null;
        let rewritten =
            serde_json::to_vec(&record).map_err(|_| StoreError::Corrupt("quarantine record"))?;
        batch.redact_side(SideLog::Quarantine, *number, &rewritten, erasure);
    }
    Ok(())
}
