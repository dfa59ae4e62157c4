//! The registry reads: a person's view, their access log, and the KPI report. Every read of a
//! person's data is written to their access log before it is answered.

use hyper::body::Incoming;
use hyper::{Request, StatusCode};
use time::OffsetDateTime;

use super::LocalApi;
use crate::event::identifiers::MemberId;
use crate::event::schema::EventType;
use crate::net::http::{self, storage_problem, Problem, Response};
use crate::registry::access::{self, Outcome, Reader};

impl LocalApi {
    pub(super) fn get_person(
        &self,
        req: &Request<Incoming>,
        pin: &str,
        who: &Reader,
    ) -> Result<Response, Problem> {
        let as_of = date_param(req.uri().query(), "asOf")?.unwrap_or_else(today);
        let (_, view) = self.served_view(pin, who, "registry view")?;
        let derived = view.derive(as_of);
        let mut body = serde_json::to_value(&view).unwrap_or_default();
        body["derived"] = serde_json::to_value(derived).unwrap_or_default();
        body["competencyProfile"] =
            serde_json::to_value(crate::matching::profile::of(&view)).unwrap_or_default();
        Ok(http::json(StatusCode::OK, &body))
    }

    /// The person's view as this node serves it to `who`, for a read described by `what`: 404
    /// when it holds nothing, 403 (and the refusal logged) when the token's purpose is not one
    /// the person's consent names for what others sent, otherwise the read is logged first.
    pub(super) fn served_view<'p>(
        &self,
        pin: &'p str,
        who: &Reader,
        what: &str,
    ) -> Result<(&'p str, crate::registry::view::PersonView), Problem> {
        let pin = valid_pin(pin)?;
        let view = crate::registry::projector::person_as_served(&self.store, pin, &self.member)
            .map_err(storage_problem)?
            .ok_or_else(|| {
                Problem::new(
                    StatusCode::NOT_FOUND,
                    "person-not-found",
                    "Person not found",
                    "this node holds no events about that person",
                )
            })?;
        let purpose = who.purpose.as_deref().unwrap_or_default();
        if !view.may_serve(self.member.as_str(), purpose) {
            access::record_refusal(&self.store, who, what, pin, Outcome::RefusedNoConsent)
                .map_err(storage_problem)?;
            return Err(Problem::new(
                StatusCode::FORBIDDEN,
                "purpose-not-consented",
                "The person's consent does not cover this purpose",
                format!("the person's consent does not cover the purpose {purpose} of this token; the refusal is in the person's access log"),
            ));
        }
        access::record_reads(&self.store, who, what, [pin]).map_err(storage_problem)?;
        Ok((pin, view))
    }

    /// Who read the person's data, when and why, newest first (reading it is itself logged).
    pub(super) fn get_access_log(&self, pin: &str, who: &Reader) -> Result<Response, Problem> {
        let pin = valid_pin(pin)?;
        let records = access::log_of(&self.store, pin, 1000).map_err(storage_problem)?;
        access::record_reads(&self.store, who, "the person's access log", [pin])
            .map_err(storage_problem)?;
        Ok(http::json(
            StatusCode::OK,
            &serde_json::json!({"records": records}),
        ))
    }

    pub(super) fn get_kpi(&self, req: &Request<Incoming>) -> Result<Response, Problem> {
        let suppress = http::query_param(req.uri().query(), "suppress") != Some("false");
        kpi_answer(
            &self.store,
            self.trust.as_deref(),
            &self.member,
            req,
            suppress,
        )
    }
}

/// The KPI report asked for by `req`'s query (`asOf`, `from`, `to`, `structureAt`, `cohort`,
/// `breakdown`), as JSON or, with `Accept: text/csv`, CSV; cells under 5 suppressed when
/// `suppress`. Served by the local API and by X-Road's `jol-kpi` service.
pub(crate) fn kpi_answer(
    store: &crate::store::Store,
    trust: Option<&crate::trust::manifest::Trust>,
    me: &MemberId,
    req: &Request<Incoming>,
    suppress: bool,
) -> Result<Response, Problem> {
    let q = req.uri().query();
    let as_of = date_param(q, "asOf")?.unwrap_or_else(today);
    let views = crate::registry::projector::all(store).map_err(storage_problem)?;
    let params = crate::registry::kpi::KpiParams {
        as_of,
        employment_service: employment_service(trust, me),
        from: date_param(q, "from")?,
        to: date_param(q, "to")?,
        structure_at: date_param(q, "structureAt")?,
        with_a_match: crate::matching::market::persons_with_a_match_held(store, &views)
            .map_err(storage_problem)?,
    };
    let mut report = crate::registry::kpi::compute(&views, &params, suppress);
    if let Some(c) = http::query_param(q, "cohort").filter(|c| !c.is_empty()) {
        report.cohorts.retain(|k, _| k == c);
    }
    if let Some(b) = http::query_param(q, "breakdown") {
        let wanted: Vec<&str> = b.split(',').collect();
        report
            .breakdowns
            .retain(|k, _| wanted.contains(&k.as_str()));
    }
    let wants_csv = req
        .headers()
        .get(hyper::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/csv"));
    if wants_csv {
        return Ok(http::with_type(
            StatusCode::OK,
            "text/csv; charset=utf-8",
            crate::registry::kpi::to_csv(&report),
        ));
    }
    Ok(http::json(StatusCode::OK, &report))
}

/// The employment service: the publisher of employment-status in the manifest, or this node.
fn employment_service(trust: Option<&crate::trust::manifest::Trust>, me: &MemberId) -> MemberId {
    trust
        .and_then(|t| {
            t.held()
                .policy(EventType::EmploymentStatus)
                .and_then(|p| p.publishers.first().cloned())
        })
        .unwrap_or_else(|| me.clone())
}

fn today() -> time::Date {
    OffsetDateTime::now_utc().date()
}

pub(crate) fn valid_pin(pin: &str) -> Result<&str, Problem> {
    pin.parse::<crate::event::identifiers::Pin>()
        .map(|_| pin)
        .map_err(|e| Problem::new(StatusCode::BAD_REQUEST, "bad-pin", "Bad PIN", e.to_string()))
}

pub(crate) fn date_param(query: Option<&str>, name: &str) -> Result<Option<time::Date>, Problem> {
    match http::query_param(query, name).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(v) => crate::registry::view::date(v).map(Some).ok_or_else(|| {
            Problem::new(
                StatusCode::BAD_REQUEST,
                "bad-query",
                "Bad query parameter",
                format!("`{name}` must be a date YYYY-MM-DD"),
            )
        }),
    }
}
