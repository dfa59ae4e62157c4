//! Reading the node's log and quarantine: `GET /api/v1/events`, `/api/v1/events/{id}`,
//! `/api/v1/quarantine`. What the caller's token may not be served by the person's consent
//! (`registry::serve`) is a placeholder in a listing and "not found" by id, and every person
//! touched is in their access log, served or refused.
//! A listing ends early, after at least one record, when the next would pass
//! [`LISTING_BYTES`]; `next` says where the following page starts.

use hyper::StatusCode;
use serde::Serialize;
use uuid::Uuid;

use super::tokens::Scope;
use super::{Caller, LocalApi, MAX_PAGE};
use crate::budget::{Budget, ANSWER_FRAMING, LISTING_BYTES};
use crate::event::cloudevent::StoredItem;
use crate::net::http::{self, storage_problem, Problem, ProblemKind, Response};
use crate::policy::access::{self, pins_in, Access, Outcome, Reader};
use crate::policy::consent::Withheld;
use crate::registry::serve;

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
        let items = page
            .iter()
            .map(|(pos, bytes)| stored_item(*pos, bytes))
            .collect::<Result<Vec<_>, _>>()?;
        let events: Vec<&crate::event::Event> = items.iter().map(|i| i.event.event()).collect();
        let allowed =
            serve::events(&self.store, &events, self.user(who)).map_err(storage_problem)?;
        let mut accesses = Vec::new();
        let mut listed = Vec::with_capacity(items.len());
        for (item, may) in items.into_iter().zip(allowed) {
            let what = "events listed through the local API";
            let read = Access::of_event(item.event.event(), what, Outcome::of_decision(may));
            accesses.extend(read.map_err(storage_problem)?);
            listed.push(match may {
                true => Listed::Event(item),
                false => Listed::Withheld {
                    position: item.position,
                    withheld: Withheld::NoConsent.code(),
                },
            });
        }
        access::log(&self.store, who, accesses).map_err(storage_problem)?;
        Ok(http::json(
            StatusCode::OK,
            &Page {
                events: listed,
                next,
            },
        ))
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
                ProblemKind::EventNotFound,
                "this node holds no event with that id that this token may read",
            )
        };
        let id: Uuid = id
            .parse()
            .map_err(|_| Problem::new(ProblemKind::BadEventId, "an event id is a UUID"))?;
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
                    ProblemKind::AmbiguousEventId,
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
        let may = serve::event(&self.store, item.event.event(), self.user(who))
            .map_err(storage_problem)?;
        let what = "an event read through the local API";
        let read = Access::of_event(item.event.event(), what, Outcome::of_decision(may));
        access::log(&self.store, who, read.map_err(storage_problem)?).map_err(storage_problem)?;
        match may {
            true => Ok(http::json(StatusCode::OK, &item)),
            false => Err(not_found()),
        }
    }

    /// Refused input with its reasons. Each body is served as [`serve::refused_body`] decides
    /// (the agency's own; a peer's to an `admin` token under the consent of every person it
    /// names; none naming a person whose erasure is still being finished), else withheld (its
    /// reason, origin and size remain). Every person a served or withheld body names is logged.
    pub(super) fn list_quarantine(
        &self,
        query: Option<&str>,
        caller: &Caller,
    ) -> Result<Response, Problem> {
        let who = &caller.reader();
        let (after, limit) = page_params(query)?;
        // A record is listed as it is stored, and a comma.
        let mut budget = Budget::new(LISTING_BYTES - ANSWER_FRAMING).per_record(1);
        let mut records = self
            .store
            .quarantined(after, limit, &mut budget)
            .map_err(storage_problem)?;
        let user = self.user(who);
        let admin = caller.allows(Scope::Admin);
        let mut accesses = Vec::new();
        for record in &mut records {
            let pins = pins_in(record.body.as_bytes());
            let decision = serve::refused_body(&self.store, &record.origin, &pins, user, admin)
                .map_err(storage_problem)?;
            let may = decision.is_ok();
            accesses.extend(pins.iter().map(|pin| {
                Access::new(
                    pin,
                    "a quarantined submission read through the local API",
                    Outcome::of_decision(may),
                )
            }));
            if let Err(withheld) = decision {
                record.detail["bodyWithheld"] = withheld.code().into();
                record.detail["bodyBytes"] = record.body.len().into();
                record.body = String::new();
            }
        }
        access::log(&self.store, who, accesses).map_err(storage_problem)?;
        let next = records.last().map_or(after, |r| r.number());
        Ok(http::json(
            StatusCode::OK,
            &serde_json::json!({"records": records, "next": next, "total": self.store.quarantine_len()}),
        ))
    }
}

/// One item of a listing: the event, or where it sits and why it is not served.
#[derive(Serialize)]
#[serde(untagged)]
enum Listed<'a> {
    Event(StoredItem<'a>),
    Withheld {
        position: u64,
        withheld: &'static str,
    },
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
    events: Vec<Listed<'a>>,
    next: u64,
}
