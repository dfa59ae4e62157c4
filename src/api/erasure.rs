//! The erasure routes: an operator orders a person's erasure (`POST
//! /api/v1/persons/{pin}/erasure`, scope admin) and reads its record with each holder's
//! confirmation (`GET /api/v1/erasures/{id}`). The order names this node's own events about the
//! person and the members that received them; the writer does the rest ([`crate::write::erasure`]).

use std::time::Duration;

use hyper::body::Incoming;
use hyper::{Request, StatusCode};
use serde::Deserialize;
use uuid::Uuid;

use super::registry::valid_pin;
use super::LocalApi;
use crate::event::identifiers::Pin;
use crate::net::http::{self, storage_problem, Problem, ProblemKind, Response};
use crate::policy::access;
use crate::registry::projector;
use crate::write::erasure::{Cause, ErasureOrder, ErasureRecord};

/// How long an order waits for the views to take in what the log holds (the order is read from
/// the person's view).
const VIEWS_WAIT: Duration = Duration::from_secs(10);

/// What an operator sends to order an erasure.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct ErasureRequest {
    pub(crate) legal_basis: String,
    pub(crate) reason: String,
}

impl ErasureRequest {
    /// Read an order's body: exactly the two strings, each of its allowed length.
    pub(crate) fn parse(body: &[u8]) -> Result<ErasureRequest, Problem> {
        let request: ErasureRequest = serde_json::from_slice(body).map_err(|_| {
            Problem::new(
                ProblemKind::InvalidRequest,
                "an erasure is a JSON object with exactly two strings: {\"legalBasis\": …, \"reason\": …}",
            )
        })?;
        request.check()?;
        Ok(request)
    }

    fn check(&self) -> Result<(), Problem> {
        let bad = |at: &str, why: &str| {
            Problem::new(
                ProblemKind::InvalidRequest,
                "an erasure is {\"legalBasis\": …, \"reason\": …}",
            )
            .field(at, why)
        };
        if !(3..=300).contains(&self.legal_basis.chars().count()) {
            return Err(bad(
                "/legalBasis",
                "3 to 300 characters: the act that requires the erasure",
            ));
        }
        if !(1..=500).contains(&self.reason.chars().count()) {
            return Err(bad("/reason", "1 to 500 characters"));
        }
        Ok(())
    }
}

impl LocalApi {
    /// Order the erasure of the person's events this node published: 202 with the record once
    /// the erasure and the signed order are durable.
    pub(super) async fn post_erasure(
        &self,
        req: Request<Incoming>,
        pin: &str,
        purpose: Option<String>,
    ) -> Result<Response, Problem> {
        let pin = valid_pin(pin)?;
        let body = self.read_json_body(req).await?;
        let request = ErasureRequest::parse(&body)?;
        self.views_caught_up().await?;
        let (positions, ids) = self.own_events_of(&pin)?;
        let order = ErasureOrder {
            id: Uuid::now_v7(),
            holders: access::delivered_to(
                &self.store,
                &pin,
                &ids.iter().map(String::as_str).collect::<Vec<_>>(),
            )
            .map_err(storage_problem)?,
            pin,
            positions,
            legal_basis: request.legal_basis,
            reason: request.reason,
            purpose: purpose.unwrap_or_else(|| "REINTEGRATION_CASE_MANAGEMENT".into()),
            cause: Cause::Request,
        };
        let ordered = self
            .publisher
            .erase(order)
            .await
            .map_err(|e| super::publish::publish_problem(e, ""))?;
        Ok(http::json(StatusCode::ACCEPTED, &ordered.record))
    }

    /// The record of erasure `id`.
    pub(super) fn get_erasure(&self, id: &str) -> Result<Response, Problem> {
        let id: Uuid = id
            .parse()
            .map_err(|_| Problem::new(ProblemKind::BadEventId, "an erasure id is a UUID"))?;
        match self
            .store
            .erasure::<ErasureRecord>(&id)
            .map_err(storage_problem)?
        {
            Some(record) => Ok(http::json(StatusCode::OK, &record)),
            None => Err(Problem::new(
                ProblemKind::ErasureNotFound,
                "this node ordered or carried out no erasure with that id",
            )),
        }
    }

    /// Wait, a bounded time, until the views hold everything the log held when asked.
    async fn views_caught_up(&self) -> Result<(), Problem> {
        let head = *self.publisher.heads().position.borrow();
        match projector::caught_up_with(&self.store, head, VIEWS_WAIT).await {
            Ok(true) => Ok(()),
            Ok(false) => Err(Problem::new(
                ProblemKind::ViewsBehind,
                "the views are still taking in the log; retry the erasure in a moment",
            )),
            Err(e) => Err(storage_problem(e)),
        }
    }

    /// The positions and ids of the events about `pin` this node published.
    fn own_events_of(&self, pin: &Pin) -> Result<(Vec<u64>, Vec<String>), Problem> {
        let view = projector::person(&self.store, pin).map_err(storage_problem)?;
        Ok(view
            .iter()
            .flat_map(|v| &v.events)
            .filter(|e| e.source == self.member)
            .map(|e| (e.position, e.id.clone()))
            .unzip())
    }
}
