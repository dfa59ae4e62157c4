//! Reading the node's log and quarantine: `GET /api/v1/events`, `/api/v1/events/{id}`,
//! `/api/v1/quarantine`. A listing ends early, after at least one record, when the next would
//! pass [`LISTING_BYTES`]; `next` says where the following page starts.

use hyper::StatusCode;
use serde::Serialize;
use uuid::Uuid;

use super::{LocalApi, MAX_PAGE};
use crate::budget::{Budget, ANSWER_FRAMING, LISTING_BYTES};
use crate::event::cloudevent::StoredItem;
use crate::net::http::{self, storage_problem, Problem, Response};
use crate::registry::access::{pin_in, record_reads, Reader};

impl LocalApi {
    pub(super) fn list_events(
        &self,
        query: Option<&str>,
        who: &Reader,
    ) -> Result<Response, Problem> {
        let (after, limit) = page_params(query)?;
        // An event is listed twice, decoded and as its JWS (the longer of the two: its payload
        // is the event in base64url), so its JWS counts twice against the listing's budget.
        let mut budget = Budget::new((LISTING_BYTES - ANSWER_FRAMING) / 2).per_record(32);
        let page = self
            .store
            .range_within(after, limit, &mut budget)
            .map_err(storage_problem)?;
        let next = page.last().map_or(after, |(p, _)| *p);
        let events = page
            .iter()
            .map(|(pos, bytes)| stored_item(*pos, bytes))
            .collect::<Result<Vec<_>, _>>()?;
        let pins: Vec<&str> = events
            .iter()
            .filter_map(|e| e.event.event().pin())
            .collect();
        record_reads(
            &self.store,
            who,
            "events listed through the local API",
            pins,
        )
        .map_err(storage_problem)?;
        Ok(http::json(StatusCode::OK, &Page { events, next }))
    }

    /// One event by id. An event is identified by its source and id: `?source=MEMBER-ID` picks
    /// one when members' ids collide, and without it an ambiguous id answers 409 with the
    /// candidates.
    pub(super) fn get_event(
        &self,
        id: &str,
        query: Option<&str>,
        who: &Reader,
    ) -> Result<Response, Problem> {
        let not_found = || {
            Problem::new(
                StatusCode::NOT_FOUND,
                "event-not-found",
                "Event not found",
                "this node holds no event with that id",
            )
        };
        let id: Uuid = id.parse().map_err(|_| {
            Problem::new(
                StatusCode::BAD_REQUEST,
                "bad-event-id",
                "Bad event id",
                "an event id is a UUID",
            )
        })?;
        let mut candidates = self.store.positions_of_id(&id).map_err(storage_problem)?;
        if let Some(source) = http::query_param(query, "source") {
            candidates.retain(|(s, _)| s.as_str() == source);
        }
        let pos = match candidates.as_slice() {
            [] => return Err(not_found()),
            [(_, pos)] => *pos,
            many => {
                let listed: Vec<_> = many
                    .iter()
                    .map(|(source, position)| serde_json::json!({"source": source, "position": position}))
                    .collect();
                return Err(Problem::new(
                    StatusCode::CONFLICT,
                    "ambiguous-event-id",
                    "Ambiguous event id",
                    "events of several members carry this id; name one with ?source=MEMBER-ID",
                )
                .with("candidates", serde_json::Value::Array(listed)));
            }
        };
        let bytes = self
            .store
            .get(pos)
            .map_err(storage_problem)?
            .ok_or_else(not_found)?;
        let item = stored_item(pos, &bytes)?;
        let pin = item.event.event().pin();
        record_reads(&self.store, who, "an event read through the local API", pin)
            .map_err(storage_problem)?;
        Ok(http::json(StatusCode::OK, &item))
    }

    pub(super) fn list_quarantine(
        &self,
        query: Option<&str>,
        who: &Reader,
    ) -> Result<Response, Problem> {
        let (after, limit) = page_params(query)?;
        // A record is listed as it is stored, and a comma.
        let mut budget = Budget::new(LISTING_BYTES - ANSWER_FRAMING).per_record(1);
        let records = self
            .store
            .quarantined(after, limit, &mut budget)
            .map_err(storage_problem)?;
        let pins: Vec<String> = records
            .iter()
            .filter_map(|r| pin_in(r.body.as_bytes()))
            .collect();
        record_reads(
            &self.store,
            who,
            "quarantined submissions read through the local API",
            pins.iter().map(String::as_str),
        )
        .map_err(storage_problem)?;
        let next = records.last().map_or(after, |r| r.number);
        Ok(http::json(
            StatusCode::OK,
            &serde_json::json!({"records": records, "next": next, "total": self.store.quarantine_len()}),
        ))
    }
}

/// `?after=N&limit=M` of a paged listing (limit 1 to MAX_PAGE, default 100).
fn page_params(query: Option<&str>) -> Result<(u64, usize), Problem> {
    let after = http::query_u64(query, "after", 0)?;
    let limit = http::query_u64(query, "limit", 100)?.clamp(1, MAX_PAGE as u64) as usize;
    Ok((after, limit))
}

fn stored_item(position: u64, bytes: &[u8]) -> Result<StoredItem<'_>, Problem> {
    StoredItem::parse(position, bytes).map_err(|e| storage_problem(e.to_string()))
}

#[derive(Serialize)]
struct Page<'a> {
    events: Vec<StoredItem<'a>>,
    next: u64,
}
