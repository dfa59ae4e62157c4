//! Retention: what the manifest says may be kept only so long is erased when that time is over.
//!
//! A type's `retentionDays` in the manifest keeps its events about a person that many days
//! after the person's last event at this node (by business date, `eventDate`). Each node sweeps
//! its own published events: at start and then every `[sync] retention_sweep_secs`, every
//! person whose last event is older than a type's retention has that type's events this node
//! published erased, exactly as an operator's erasure is (`write::erasure`, cause
//! `RETENTION`): the signed order reaches every member that received them, each erases its
//! copies and confirms. A sweep decides only from views that hold the whole log as it was when
//! the sweep began (else it waits for the next). The sweep logs what it erased, never whom.

use std::time::Duration;

use time::Date;
use tokio::sync::watch;
use uuid::Uuid;

use crate::event::identifiers::MemberId;
use crate::policy::access;
use crate::registry::view::PersonView;
use crate::store::{Store, StoreError};
use crate::trust::manifest::{Manifest, Trust};
use crate::write::erasure::{Cause, ErasureOrder};
use crate::write::{PublishError, Publisher};

/// What one sweep found to erase: a person and the positions of this node's expired events.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Expired {
    pub view: PersonView,
    pub positions: Vec<u64>,
    pub legal_basis: String,
}

/// The persons with events of this node's whose retention ended before `today`.
pub(crate) fn expired(
    store: &Store,
    manifest: &Manifest,
    me: &MemberId,
    today: Date,
) -> Result<Vec<Expired>, StoreError> {
    let mut found = Vec::new();
    for view in store.views::<PersonView>() {
        let view = view?;
        let Some(last) = view.events.iter().map(|e| e.event_date).max() else {
            continue;
        };
        let mut positions = Vec::new();
        let mut bases = Vec::new();
        for e in view.events.iter().filter(|e| &e.source == me) {
            let t = e.event_type;
            let Some(days) = manifest.policy(t).and_then(|p| p.retention_days) else {
                continue;
            };
            if crate::registry::view::days_after(last, i64::from(days))
                .is_some_and(|end| end < today)
            {
                positions.push(e.position);
                let basis = format!(
                    "retention of {t} set by the federation manifest (serial {}): {days} days after the person's last event",
                    manifest.serial
                );
                if !bases.contains(&basis) {
                    bases.push(basis);
                }
            }
        }
        if !positions.is_empty() {
            found.push(Expired {
                view,
                positions,
                legal_basis: bases.join("; "),
            });
        }
    }
    Ok(found)
}

/// How long a sweep waits for the views to hold the log as it was when the sweep began.
const VIEWS_WAIT: Duration = Duration::from_secs(30);

/// Erase everything expired at `today`; returns how many persons' events were erased. Nothing,
/// until the views hold the log as it was when the sweep began.
pub(crate) async fn sweep(
    store: &Store,
    trust: &Trust,
    publisher: &Publisher,
    me: &MemberId,
    today: Date,
) -> Result<usize, PublishError> {
    let Ok(manifest) = trust.usable() else {
        return Ok(0);
    };
    let storage = |e: StoreError| PublishError::Storage(std::sync::Arc::new(e));
    // A person's last event decides, and a view not yet holding it (the views projected again
    // after a power loss, or behind) would erase what is still to be kept: an erasure cannot
    // be taken back.
    let head = store.last_position().map_err(storage)?;
    if !crate::registry::projector::caught_up_with(store, head, VIEWS_WAIT)
        .await
        .map_err(storage)?
    {
        tracing::warn!(
            "retention: the views do not hold the whole log yet; the sweep waits for the next"
        );
        return Ok(0);
    }
    let expired = expired(store, &manifest, me, today).map_err(storage)?;
    let mut erased = 0;
    for person in expired {
        let order = ErasureOrder {
            id: Uuid::now_v7(),
            holders: holders(store, &person).map_err(storage)?,
            pin: person.view.pin.clone(),
            positions: person.positions,
            legal_basis: person.legal_basis,
            reason: "the retention period ended".into(),
            // The writer takes the erased events' own purpose.
            purpose: String::new(),
            cause: Cause::Retention,
        };
        match publisher.erase(order).await {
            Ok(done) => {
                erased += 1;
                tracing::info!(erasure = %done.record.id, events = done.record.erased, "retention: a person's expired events erased");
            }
            Err(PublishError::NothingToErase) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(erased)
}

/// The members this node delivered the person's expired events to.
fn holders(store: &Store, person: &Expired) -> Result<Vec<MemberId>, StoreError> {
    let ids: Vec<&str> = person
        .view
        .events
        .iter()
        .filter(|e| person.positions.contains(&e.position))
        .map(|e| e.id.as_str())
        .collect();
    access::delivered_to(store, &person.view.pin, &ids)
}

/// Sweep at start, then every `every`, until `stop`.
pub(crate) async fn run(
    store: Store,
    trust: std::sync::Arc<Trust>,
    publisher: Publisher,
    me: MemberId,
    every: Duration,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let today = time::OffsetDateTime::now_utc().date();
        if let Err(e) = sweep(&store, &trust, &publisher, &me, today).await {
            tracing::error!(error = %e, "retention sweep failed; will retry");
        }
        tokio::select! {
            _ = stop.changed() => return,
            _ = tokio::time::sleep(every) => {}
        }
    }
}
