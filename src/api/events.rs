//! Reading the node's log and quarantine: `GET /api/v1/events`, `/api/v1/events/{id}`,
//! `/api/v1/quarantine`.

use hyper::StatusCode;
use serde::Serialize;
use uuid::Uuid;

use super::{LocalApi, MAX_PAGE};
use crate::event::cloudevent::StoredItem;
use crate::net::http::{self, storage_problem, Problem, Response};

impl LocalApi {
    pub(super) fn list_events(&self, query: Option<&str>) -> Result<Response, Problem> {
        let after = http::query_u64(query, "after", 0)?;
        let limit = http::query_u64(query, "limit", 100)?.clamp(1, MAX_PAGE as u64) as usize;
        let page = self.store.range(after, limit).map_err(storage_problem)?;
        let next = page.last().map_or(after, |(p, _)| *p);
        let events = page
            .iter()
            .map(|(pos, bytes)| stored_item(*pos, bytes))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(http::json(StatusCode::OK, &Page { events, next }))
    }

    pub(super) fn get_event(&self, id: &str) -> Result<Response, Problem> {
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
        let pos = self
            .store
            .position_of(&id)
            .map_err(storage_problem)?
            .ok_or_else(not_found)?;
        let bytes = self
            .store
            .get(pos)
            .map_err(storage_problem)?
            .ok_or_else(not_found)?;
        Ok(http::json(StatusCode::OK, &stored_item(pos, &bytes)?))
    }

    pub(super) fn list_quarantine(&self, query: Option<&str>) -> Result<Response, Problem> {
        let after = http::query_u64(query, "after", 0)?;
        let limit = http::query_u64(query, "limit", 100)?.clamp(1, MAX_PAGE as u64) as usize;
        let records = self
            .store
            .quarantined(after, limit)
            .map_err(storage_problem)?;
        let next = records.last().map_or(after, |r| r.number);
        Ok(http::json(
            StatusCode::OK,
            &serde_json::json!({"records": records, "next": next, "total": self.store.quarantine_len()}),
        ))
    }
}

fn stored_item(position: u64, bytes: &[u8]) -> Result<StoredItem<'_>, Problem> {
    StoredItem::parse(position, bytes).map_err(|e| storage_problem(e.to_string()))
}

#[derive(Serialize)]
struct Page<'a> {
    events: Vec<StoredItem<'a>>,
    next: u64,
}
