//! Vacancies and course offers as this node holds them: the latest state of each, folded from
//! the `vacancy` and `course-offer` events (published here or received) by the projector, in the
//! same atomic write as the views. The newest event by business date, then log position, sets
//! the state; an event without a description (filled, withdrawn, closed) changes only whether
//! the offer is open, and keeps the last description.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::event::schema::EventType;
use crate::event::vocab::{CourseEvent, VacancyEvent};
use crate::event::Event;
use crate::store::{Store, StoreError, WriteBatch};

/// What an offer is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OfferKind {
    /// A vacancy (`vacancy` events).
    Vacancy,
    /// A course (`course-offer` events).
    Course,
}

impl OfferKind {
    /// The kind of offer an event type describes, if any.
    pub(crate) fn of(t: EventType) -> Option<OfferKind> {
        match t {
            EventType::Vacancy => Some(OfferKind::Vacancy),
            EventType::CourseOffer => Some(OfferKind::Course),
            _ => None,
        }
    }

    /// Its byte in the store's offer key space.
    fn byte(self) -> u8 {
        match self {
            OfferKind::Vacancy => 1,
            OfferKind::Course => 2,
        }
    }

    /// The field that names the offer in its events.
    fn id_field(self) -> &'static str {
        match self {
            OfferKind::Vacancy => "vacancyId",
            OfferKind::Course => "courseCode",
        }
    }
}

/// One offer's latest state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Offer {
    /// A vacancy or a course.
    pub kind: OfferKind,
    /// Its id (the events' `vacancyId` or `courseCode`).
    pub id: String,
    /// The member that publishes it.
    pub source: String,
    /// Whether it is open (the last event opened or described it).
    pub open: bool,
    /// Business date and log position of the event that set the state.
    pub event_date: String,
    /// See `event_date`.
    pub position: u64,
    /// The latest description (the event data of the last opening or update).
    pub description: Value,
}

impl Offer {
    /// The region (ISO 3166-2:KG) the offer is in, as its description states.
    pub(crate) fn region(&self) -> Option<&str> {
        self.description.get("region").and_then(Value::as_str)
    }
}

/// Whether the `event` of an offer's event opens (or describes) the offer, or ends it.
fn opens(kind: OfferKind, event: &Value) -> bool {
    match kind {
        OfferKind::Vacancy => matches!(
            VacancyEvent::deserialize(event),
            Ok(VacancyEvent::Opened | VacancyEvent::Updated)
        ),
        OfferKind::Course => matches!(
            CourseEvent::deserialize(event),
            Ok(CourseEvent::Offered | CourseEvent::Updated)
        ),
    }
}

/// The id an offer event names.
pub(crate) fn id_of(kind: OfferKind, data: &Value) -> Option<String> {
    data.get(kind.id_field())?.as_str().map(String::from)
}

/// The state after `event` (at `position`) given the `held` one; `None` if the event is not
/// an offer event.
pub(crate) fn fold(held: Option<Offer>, event: &Event, position: u64) -> Option<Offer> {
    let kind = OfferKind::of(event.event_type)?;
    let d = &event.data;
    let id = id_of(kind, d)?;
    let date = d.get("eventDate").and_then(Value::as_str).unwrap_or("");
    let describes = d.get("event").is_some_and(|event| opens(kind, event));
    if let Some(h) = &held {
        if (h.event_date.as_str(), h.position) >= (date, position) {
            return held;
        }
    }
    let description = match (describes, &held) {
        (true, _) | (false, None) => d.clone(),
        (false, Some(h)) => h.description.clone(),
    };
    Some(Offer {
        kind,
        id,
        source: event.source.to_string(),
        open: describes,
        event_date: date.to_string(),
        position,
        description,
    })
}

/// Stage an offer's new state.
pub(crate) fn stage(batch: &mut WriteBatch, offer: &Offer) {
    batch.set_offer(offer.kind.byte(), &offer.id, offer);
}

/// One offer as held.
pub(crate) fn get(store: &Store, kind: OfferKind, id: &str) -> Result<Option<Offer>, StoreError> {
    store.offer(kind.byte(), id)
}

/// Every offer of a kind as held.
pub fn all(store: &Store, kind: OfferKind) -> Result<Vec<Offer>, StoreError> {
    store.offers(kind.byte())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(t: EventType, data: Value) -> Event {
        let source = "central-server/GOV/70000002/employment".parse().unwrap();
        Event::new(source, t, 1, data)
    }

    #[test]
    fn the_newest_event_sets_the_state_and_a_filling_keeps_the_description() {
        let opened = event(
            EventType::Vacancy,
            serde_json::json!({"event": "VACANCY_OPENED", "eventDate": "2026-09-01", "vacancyId": "V1", "isco08": "7131"}),
        );
        let filled = event(
            EventType::Vacancy,
            serde_json::json!({"event": "VACANCY_FILLED", "eventDate": "2026-10-01", "vacancyId": "V1"}),
        );
        let o = fold(None, &opened, 1).unwrap();
        assert!(o.open);
        let f = fold(Some(o.clone()), &filled, 2).unwrap();
        assert!(!f.open);
        assert_eq!(f.description["isco08"], "7131");
        // The opening arriving again, later in the log, does not undo the newer filling.
        assert!(!fold(Some(f), &opened, 3).unwrap().open);
        assert!(fold(
            None,
            &event(EventType::EmploymentStatus, serde_json::json!({})),
            1
        )
        .is_none());
    }
}
