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
use crate::registry::projector;
use crate::registry::view::PersonView;
use crate::store::{SideLog, Store, StoreError, WriteBatch};
use crate::write::erasure::{Cause, ErasureRecord};

/// How many quarantine records are read at a time when looking for the person.
const QUARANTINE_PAGE: usize = 1000;

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
                let numbers = quarantined.remove(&pin).unwrap_or_default();
                finish(store, &pin, erased, &numbers, &mut batch)?
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
    let view: Option<PersonView> = store.view(pin.expose())?;
    if let Some(view) = what_remains(store, view.as_ref(), pin, &erased)? {
        // A refused copy of an erased event may sit in the quarantine with its values: what
        // the erasures' orderers sent about the person goes; what others sent stays theirs.
        let erasures = erasures_behind(store, &erased)?;
        let origins: Option<HashSet<String>> = (erasures.iter())
            .map(|(_, record)| record.as_ref().map(ErasureRecord::origin))
            .collect();
        redact_quarantine(store, quarantined, &erasure, origins.as_ref(), batch)?;
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

/// The numbers of the quarantine records that name each of `persons`, in one reading of the
/// quarantine (numbers only: a hostile share of it cannot fill the memory).
fn quarantine_naming(
    store: &Store,
    persons: &HashSet<Pin>,
) -> Result<HashMap<Pin, Vec<u64>>, StoreError> {
    let mut found: HashMap<Pin, Vec<u64>> = HashMap::new();
    let mut after = 0;
    loop {
        let page = store.side_entries(SideLog::Quarantine, after, QUARANTINE_PAGE)?;
        let Some(&(last, _)) = page.last() else {
            return Ok(found);
        };
        for (number, bytes) in page {
            for pin in access::pins_in(&bytes) {
                if persons.contains(&pin) {
                    found.entry(pin).or_default().push(number);
                }
            }
        }
        after = last;
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
