//! The local API: what the agency's own systems call (`/api/v1/…`, `/healthz`).
//!
//! Publishing goes through [`Publisher`]; reading goes straight to the store. Every refusal is a
//! problem+json document with its own `type`, and refused submissions are kept in quarantine with
//! the reason, so an operator can see what was sent and why it did not go through.

use std::sync::Arc;

use bytes::Bytes;
use hyper::body::Incoming;
use hyper::header::AUTHORIZATION;
use hyper::{Method, Request, StatusCode};
use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::Value;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::config::Token;
use crate::event::SignedEvent;
use crate::http::{self, storage_problem, Problem, Response};
use crate::identifiers::MemberId;
use crate::manifest::Trust;
use crate::metrics::Metrics;
use crate::publish::{Draft, PublishError, Published, Publisher};
use crate::schema::EventType;
use crate::store::{Quarantined, Store};

/// Most events one `GET /api/v1/events` returns.
pub const MAX_PAGE: usize = 1000;
/// Most events one batch request may carry.
pub const MAX_BATCH: usize = 1000;

/// What the local API handlers share.
pub struct LocalApi {
    pub member: MemberId,
    pub store: Store,
    pub publisher: Publisher,
    pub tokens: Vec<Token>,
    pub max_body_bytes: usize,
    pub metrics: Arc<Metrics>,
    /// The federation's manifest, when the node is a member.
    pub trust: Option<Arc<Trust>>,
}

impl LocalApi {
    /// Route one request.
    pub async fn handle(self: Arc<Self>, req: Request<Incoming>) -> Response {
        let path = req.uri().path().to_string();
        let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
        if segments.first() == Some(&"api") {
            if let Err(p) = self.authorize(&req) {
                return p.response();
            }
        }
        let result = match (req.method(), segments.as_slice()) {
            (&Method::GET, ["healthz"]) => Ok(http::json(
                StatusCode::OK,
                &serde_json::json!({"status": "ok"}),
            )),
            (&Method::GET, ["readyz"]) => Ok(self.readyz()),
            (&Method::GET, ["metrics"]) => Ok(http::with_type(
                StatusCode::OK,
                "text/plain; version=0.0.4",
                self.metrics.render(),
            )),
            (&Method::POST, ["api", "v1", "events"]) => self.post_event(req).await,
            (&Method::POST, ["api", "v1", "events", "batch"]) => self.post_batch(req).await,
            (&Method::GET, ["api", "v1", "events"]) => self.list_events(req.uri().query()),
            (&Method::GET, ["api", "v1", "events", id]) => self.get_event(id),
            (&Method::GET, ["api", "v1", "quarantine"]) => self.list_quarantine(req.uri().query()),
            (&Method::GET, ["api", "v1", "persons", pin]) => self.get_person(&req, pin),
            (&Method::GET, ["api", "v1", "persons", pin, "access-log"]) => self.get_access_log(pin),
            (&Method::GET, ["api", "v1", "kpi"]) => self.get_kpi(&req),
            (&Method::GET, ["api", "v1", "log", "checkpoint"]) => {
                crate::log_api::checkpoint(&self.store)
            }
            (&Method::GET, ["api", "v1", "log", "proof", "inclusion"]) => {
                crate::log_api::inclusion(&self.store, req.uri().query())
            }
            (&Method::GET, ["api", "v1", "log", "proof", "consistency"]) => {
                crate::log_api::consistency(&self.store, req.uri().query())
            }
            (&Method::GET, [""]) => Ok(http::with_type(
                StatusCode::OK,
                "text/html; charset=utf-8",
                crate::dashboard::PAGE,
            )),
            (
                _,
                ["healthz"]
                | ["readyz"]
                | ["metrics"]
                | ["api", "v1", "events", ..]
                | ["api", "v1", "quarantine"],
            ) => Err(Problem::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method-not-allowed",
                "Method not allowed",
                format!("{} is not allowed on {path}", req.method()),
            )),
            _ => Err(Problem::new(
                StatusCode::NOT_FOUND,
                "not-found",
                "Not found",
                format!("no resource at {path}"),
            )),
        };
        result.unwrap_or_else(|p| p.response())
    }

    /// Ready when the store answers and the manifest (if any) is usable; peers that cannot be
    /// reached make the node `degraded` (it still accepts and serves its own events).
    fn readyz(&self) -> Response {
        let store = match (self.metrics.store_failure(), self.store.last_position()) {
            (None, Ok(p)) => serde_json::json!({"ok": true, "events": p}),
            (Some(e), _) => {
                serde_json::json!({"ok": false, "error": format!("writes are failing: {e}")})
            }
            (None, Err(e)) => serde_json::json!({"ok": false, "error": e.to_string()}),
        };
        let manifest = self.trust.as_ref().map(|t| match t.usable() {
            Ok(m) => serde_json::json!({"ok": true, "serial": m.serial,
                "expires": m.expires.format(&time::format_description::well_known::Rfc3339).unwrap_or_default()}),
            Err(e) => serde_json::json!({"ok": false, "serial": t.held().serial, "error": e.to_string()}),
        });
        let peers = self.metrics.sync_snapshot();
        let ready = store["ok"] == true && manifest.as_ref().is_none_or(|m| m["ok"] == true);
        let forks = self
            .metrics
            .forks
            .load(std::sync::atomic::Ordering::Relaxed);
        let all_peers = peers.values().all(|s| s.connected) && forks == 0;
        let status = match (ready, all_peers) {
            (false, _) => "not-ready",
            (true, false) => "degraded",
            (true, true) => "ready",
        };
        let code = if ready {
            StatusCode::OK
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        };
        let own_sequence = *self.publisher.heads().own_sequence.borrow();
        let projected = crate::projector::cursor(&self.store).unwrap_or(0);
        let last = self.store.last_position().unwrap_or(0);
        let views =
            serde_json::json!({"cursor": projected, "behind": last.saturating_sub(projected)});
        http::json(
            code,
            &serde_json::json!({"status": status, "member": self.member, "ownSequence": own_sequence,
            "views": views, "logForks": forks, "store": store, "manifest": manifest, "peers": peers}),
        )
    }

    fn authorize(&self, req: &Request<Incoming>) -> Result<Option<&Token>, Problem> {
        if self.tokens.is_empty() {
            return Ok(None);
        }
        let presented = req
            .headers()
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        let found = presented.and_then(|p| {
            self.tokens
                .iter()
                .find(|t| constant_time_eq(t.secret.as_bytes(), p.as_bytes()))
        });
        match found {
            Some(t) => Ok(Some(t)),
            None => Err(Problem::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "Bearer token required",
                "this listener requires Authorization: Bearer <token> with a token from the node's tokens file",
            )),
        }
    }

    async fn post_event(&self, req: Request<Incoming>) -> Result<Response, Problem> {
        let body = self.read_json_body(req).await?;
        let value = self.parsed(&body)?;
        let draft = self
            .draft(&value, "")
            .map_err(|p| self.quarantine(p, &body))?;
        match self.publisher.publish(draft).await {
            Ok(p) => Ok(published_response(&p)),
            Err(e) => Err(self.quarantine(publish_problem(e, "/data"), &body)),
        }
    }

    async fn post_batch(&self, req: Request<Incoming>) -> Result<Response, Problem> {
        let body = self.read_json_body(req).await?;
        let value = self.parsed(&body)?;
        let Some(items) = value.get("events").and_then(Value::as_array) else {
            return Err(Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid-request",
                "Invalid batch",
                "a batch is {\"events\": [ {type, data, idempotencyKey?}, … ]}",
            )
            .field("/events", "required: an array of events"));
        };
        if items.len() > MAX_BATCH {
            return Err(Problem::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "batch-too-large",
                "Batch too large",
                format!("a batch carries at most {MAX_BATCH} events"),
            ));
        }
        let mut drafts = Vec::new();
        let mut results: Vec<Option<Value>> = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            match self.draft(item, &format!("/events/{i}")) {
                Ok(d) => {
                    drafts.push(d);
                    results.push(None);
                }
                Err(p) => {
                    let p = self.quarantine(p, item.to_string().as_bytes());
                    results.push(Some(item_error(i, &p)));
                }
            }
        }
        let mut outcomes = self.publisher.publish_batch(drafts).await.into_iter();
        let mut accepted = 0;
        let results: Vec<Value> = results
            .into_iter()
            .enumerate()
            .map(|(i, r)| match r {
                Some(err) => err,
                None => match outcomes.next() {
                    Some(Ok(p)) => {
                        accepted += 1;
                        serde_json::json!({"index": i, "status": 201, "id": p.id,
                            "sequence": p.sequence.to_string(), "position": p.position, "leafIndex": p.position - 1,
                            "replayed": p.replayed})
                    }
                    Some(Err(e)) => {
                        let body = items.get(i).map(Value::to_string).unwrap_or_default();
                        let p = self.quarantine(
                            publish_problem(e, &format!("/events/{i}/data")),
                            body.as_bytes(),
                        );
                        item_error(i, &p)
                    }
                    None => item_error(i, &publish_problem(PublishError::Stopped, "")),
                },
            })
            .collect();
        let rejected = results.len() - accepted;
        Ok(http::json(
            StatusCode::OK,
            &serde_json::json!({"accepted": accepted, "rejected": rejected, "results": results}),
        ))
    }

    fn list_events(&self, query: Option<&str>) -> Result<Response, Problem> {
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

    fn get_event(&self, id: &str) -> Result<Response, Problem> {
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

    fn get_person(&self, req: &Request<Incoming>, pin: &str) -> Result<Response, Problem> {
        let pin = valid_pin(pin)?;
        let view = crate::projector::person(&self.store, pin)
            .map_err(storage_problem)?
            .ok_or_else(|| {
                Problem::new(
                    StatusCode::NOT_FOUND,
                    "person-not-found",
                    "Person not found",
                    "this node holds no events about that person",
                )
            })?;
        let as_of = date_param(req.uri().query(), "asOf")?.unwrap_or_else(today);
        let who = Reader::of(req, self.authorize(req).ok().flatten());
        self.log_access(pin, &who, "registry view")?;
        let derived = view.derive(as_of);
        let mut body = serde_json::to_value(&view).unwrap_or_default();
        body["derived"] = serde_json::to_value(derived).unwrap_or_default();
        Ok(http::json(StatusCode::OK, &body))
    }

    fn get_access_log(&self, pin: &str) -> Result<Response, Problem> {
        let pin = valid_pin(pin)?;
        let records: Vec<Value> = self
            .store
            .access_log(pin, 1000)
            .map_err(storage_problem)?
            .iter()
            .filter_map(|b| serde_json::from_slice(b).ok())
            .collect();
        Ok(http::json(
            StatusCode::OK,
            &serde_json::json!({"records": records}),
        ))
    }

    fn get_kpi(&self, req: &Request<Incoming>) -> Result<Response, Problem> {
        let q = req.uri().query();
        let as_of = date_param(q, "asOf")?.unwrap_or_else(today);
        let params = crate::kpi::KpiParams {
            as_of,
            employment_service: self.employment_service(),
            from: date_param(q, "from")?,
            to: date_param(q, "to")?,
            structure_at: date_param(q, "structureAt")?,
        };
        let suppress = http::query_param(q, "suppress") != Some("false");
        let views = crate::projector::all(&self.store).map_err(storage_problem)?;
        let mut report = crate::kpi::compute(&views, &params, suppress);
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
                crate::kpi::to_csv(&report),
            ));
        }
        Ok(http::json(StatusCode::OK, &report))
    }

    /// The employment service: the publisher of employment-status in the manifest, or this node.
    fn employment_service(&self) -> MemberId {
        self.trust
            .as_ref()
            .and_then(|t| {
                t.held()
                    .policy(EventType::EmploymentStatus)
                    .and_then(|p| p.publishers.first().cloned())
            })
            .unwrap_or_else(|| self.member.clone())
    }

    /// Record a read before answering it; a read that cannot be logged is refused.
    fn log_access(&self, pin: &str, who: &Reader, what: &str) -> Result<(), Problem> {
        let now = OffsetDateTime::now_utc();
        let record = serde_json::json!({
            "time": now.format(&time::format_description::well_known::Rfc3339).unwrap_or_default(),
            "reader": who.reader, "user": who.user, "purpose": who.purpose,
            "what": what, "requestId": Uuid::now_v7(),
        });
        let mut batch = crate::store::WriteBatch::default();
        batch.log_access(
            pin,
            now.unix_timestamp_nanos() as u64,
            record.to_string().as_bytes(),
        );
        self.store
            .apply_other(batch)
            .and_then(|()| self.store.flush())
            .map_err(storage_problem)
    }

    fn list_quarantine(&self, query: Option<&str>) -> Result<Response, Problem> {
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

    async fn read_json_body(&self, req: Request<Incoming>) -> Result<Bytes, Problem> {
        http::require_json(&req)?;
        http::read_body(req, self.max_body_bytes).await
    }

    fn parsed(&self, body: &[u8]) -> Result<Value, Problem> {
        http::parse_json(body).map_err(|p| self.quarantine(p, body))
    }

    /// Turn `{type, data, idempotencyKey?}` into a draft; pointers are placed under `at`.
    fn draft(&self, value: &Value, at: &str) -> Result<Draft, Problem> {
        let invalid = || {
            Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid-request",
                "Invalid publish request",
                "a publish request is {\"type\": …, \"data\": {…}, \"idempotencyKey\"?: …}",
            )
        };
        let Some(obj) = value.as_object() else {
            return Err(invalid().field(at, "must be a JSON object"));
        };
        let mut problem = invalid();
        for k in obj.keys() {
            if !["type", "data", "idempotencyKey"].contains(&k.as_str()) {
                problem = problem.field(format!("{at}/{}", escape_pointer(k)), "unknown member");
            }
        }
        let event_type = match obj
            .get("type")
            .map(|t| t.as_str().map(str::parse::<EventType>))
        {
            Some(Some(Ok(t))) => Some(t),
            None => {
                problem = problem.field(format!("{at}/type"), "required");
                None
            }
            _ => {
                problem = problem.field(
                    format!("{at}/type"),
                    "unknown event type; expected returnee-record, training-enrolment or employment-status",
                );
                None
            }
        };
        let data = obj.get("data");
        if !data.is_some_and(Value::is_object) {
            problem = problem.field(format!("{at}/data"), "required: a JSON object");
        }
        let idempotency_key = match obj.get("idempotencyKey") {
            None => None,
            Some(Value::String(k)) if (1..=200).contains(&k.len()) => Some(k.clone()),
            Some(_) => {
                problem = problem.field(
                    format!("{at}/idempotencyKey"),
                    "must be a string of 1 to 200 characters",
                );
                None
            }
        };
        match (event_type, data) {
            (Some(event_type), Some(data)) if problem.errors.is_empty() => Ok(Draft {
                event_type,
                data: data.clone(),
                idempotency_key,
            }),
            _ => Err(problem),
        }
    }

    /// Keep a refused submission with its reason; returns the problem for the answer.
    fn quarantine(&self, problem: Problem, body: &[u8]) -> Problem {
        if problem.status >= 500 {
            return problem;
        }
        let record = Quarantined {
            number: 0,
            time: OffsetDateTime::now_utc(),
            origin: "local-api".into(),
            reason: problem.slug().to_string(),
            detail: serde_json::to_value(&problem.errors).unwrap_or_default(),
            body: String::from_utf8_lossy(body).into_owned(),
        };
        match self.store.quarantine(record) {
            Ok(number) => {
                self.metrics.count_quarantine("local-api", problem.slug());
                tracing::info!(reason = problem.slug(), number, "submission quarantined")
            }
            Err(e) => tracing::error!(error = %e, "cannot write quarantine record"),
        }
        problem
    }
}

fn escape_pointer(s: &str) -> String {
    s.replace('~', "~0").replace('/', "~1")
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn item_error(index: usize, p: &Problem) -> Value {
    serde_json::json!({"index": index, "status": p.status, "type": p.kind,
        "detail": p.detail, "errors": p.errors})
}

fn publish_problem(e: PublishError, data_at: &str) -> Problem {
    match e {
        PublishError::Invalid(errors) => Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "schema-invalid",
            "Data does not satisfy the schema",
            format!(
                "{} field(s) fail the schema of the event type",
                errors.len()
            ),
        )
        .schema_fields(data_at, &errors),
        PublishError::IdempotencyConflict => Problem::new(
            StatusCode::CONFLICT,
            "idempotency-conflict",
            "Idempotency key reused",
            "this idempotency key was used before for a different request",
        ),
        PublishError::Storage(reason) => storage_problem(reason),
        PublishError::Stopped => Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "shutting-down",
            "Node shutting down",
            "the node is stopping; retry with the same idempotency key",
        ),
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PublishedBody<'a> {
    id: Uuid,
    source: &'a MemberId,
    sequence: String,
    #[serde(rename = "type")]
    event_type: EventType,
    position: u64,
    /// The event's leaf in the node's Merkle log.
    leaf_index: u64,
    replayed: bool,
    jws: &'a RawValue,
}

fn raw(bytes: &[u8]) -> Result<&RawValue, Problem> {
    std::str::from_utf8(bytes)
        .ok()
        .and_then(|s| serde_json::from_str::<&RawValue>(s).ok())
        .ok_or_else(|| storage_problem("a stored event is not JSON"))
}

fn published_response(p: &Published) -> Response {
    let body = raw(&p.jws).map(|jws| PublishedBody {
        id: p.id,
        source: &p.source,
        sequence: p.sequence.to_string(),
        event_type: p.event_type,
        position: p.position,
        leaf_index: p.position - 1,
        replayed: p.replayed,
        jws,
    });
    match body {
        Ok(body) => {
            let mut r = http::json(StatusCode::CREATED, &body);
            if p.replayed {
                r.headers_mut().insert(
                    "idempotent-replayed",
                    hyper::header::HeaderValue::from_static("true"),
                );
            }
            r
        }
        Err(p) => p.response(),
    }
}

/// A stored event as the local feed shows it: position, leaf index, the decoded CloudEvent,
/// and the JWS exactly as stored (serialize this struct directly: going through a
/// `serde_json::Value` would reorder the JWS's members).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredItem<'a> {
    pub position: u64,
    pub leaf_index: u64,
    pub event: SignedEvent,
    pub jws: &'a RawValue,
}

pub fn stored_item(position: u64, bytes: &[u8]) -> Result<StoredItem<'_>, Problem> {
    let (signed, _) = SignedEvent::parse(bytes).map_err(|e| storage_problem(e.to_string()))?;
    Ok(StoredItem {
        position,
        leaf_index: position - 1,
        event: signed,
        jws: raw(bytes)?,
    })
}

#[derive(Serialize)]
struct Page<'a> {
    events: Vec<StoredItem<'a>>,
    next: u64,
}

/// Who is reading, for the access log.
struct Reader {
    reader: String,
    user: Option<String>,
    purpose: Option<String>,
}

impl Reader {
    fn of(req: &Request<Incoming>, token: Option<&Token>) -> Reader {
        let header = |name: &str| {
            req.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(String::from)
        };
        Reader {
            reader: token.map_or_else(|| "local".to_string(), |t| format!("local:{}", t.name)),
            user: header("x-road-userid"),
            purpose: header("x-road-issue")
                .or_else(|| http::query_param(req.uri().query(), "purpose").map(String::from)),
        }
    }
}

fn today() -> time::Date {
    OffsetDateTime::now_utc().date()
}

fn valid_pin(pin: &str) -> Result<&str, Problem> {
    pin.parse::<crate::identifiers::Pin>()
        .map(|_| pin)
        .map_err(|e| Problem::new(StatusCode::BAD_REQUEST, "bad-pin", "Bad PIN", e.to_string()))
}

fn date_param(query: Option<&str>, name: &str) -> Result<Option<time::Date>, Problem> {
    match http::query_param(query, name).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(v) => crate::view::date(v).map(Some).ok_or_else(|| {
            Problem::new(
                StatusCode::BAD_REQUEST,
                "bad-query",
                "Bad query parameter",
                format!("`{name}` must be a date YYYY-MM-DD"),
            )
        }),
    }
}
