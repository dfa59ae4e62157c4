//! `POST /api/v1/events` and `/api/v1/events/batch`: the agency publishes. Each request is
//! checked here, handed to the [`crate::write::Publisher`], and refused submissions are kept in
//! quarantine with the reason.

use bytes::Bytes;
use hyper::body::Incoming;
use hyper::{Request, StatusCode};
use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::Value;
use uuid::Uuid;

use super::{LocalApi, MAX_BATCH};
use crate::event::identifiers::MemberId;
use crate::event::schema::EventType;
use crate::net::http::{self, storage_problem, Problem, ProblemKind, Response};
use crate::store::{QuarantineCaps, QuarantineError, QuarantineFull, Quarantined};
use crate::write::{Draft, PublishError, Published};

impl LocalApi {
    pub(super) async fn post_event(&self, req: Request<Incoming>) -> Result<Response, Problem> {
        let body = self.read_json_body(req).await?;
        let value = self.parsed(&body)?;
        let draft = draft(value, "").map_err(|p| self.quarantine(p, &body))?;
        match self.publisher.publish(draft).await {
            Ok(p) => Ok(published_response(&p)),
            Err(e) => Err(self.quarantine(publish_problem(e, "/data"), &body)),
        }
    }

    pub(super) async fn post_batch(&self, req: Request<Incoming>) -> Result<Response, Problem> {
        let body = self.read_json_body(req).await?;
        let items = into_batch_items(self.parsed(&body)?)?;
        let mut texts = ItemTexts::of(&body);
        let mut drafts = Vec::new();
        let mut results: Vec<Option<Value>> = Vec::with_capacity(items.len());
        for (i, item) in items.into_iter().enumerate() {
            match draft(item, &format!("/events/{i}")) {
                Ok(d) => {
                    drafts.push(d);
                    results.push(None);
                }
                Err(p) => {
                    let p = self.quarantine(p, texts.get(i));
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
                        let p = self.quarantine(
                            publish_problem(e, &format!("/events/{i}/data")),
                            texts.get(i),
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

    pub(super) async fn read_json_body(&self, req: Request<Incoming>) -> Result<Bytes, Problem> {
        http::require_json(&req)?;
        http::read_body(req, self.max_body_bytes, self.body_deadline).await
    }

    fn parsed(&self, body: &[u8]) -> Result<Value, Problem> {
        http::parse_json(body).map_err(|p| self.quarantine(p, body))
    }

    /// Keep a refused submission with its reason; returns the problem for the answer: the
    /// refusal, or `quarantine-full` when the quarantine cannot keep it.
    fn quarantine(&self, problem: Problem, body: &[u8]) -> Problem {
        if problem.status >= 500 {
            return problem;
        }
        let record = Quarantined::new(
            crate::store::LOCAL_ORIGIN.into(),
            problem.slug().to_string(),
            serde_json::to_value(&problem.errors).unwrap_or_default(),
            String::from_utf8_lossy(body).into_owned(),
        );
        match self
            .store
            .quarantine(record, self.quarantine_caps, QuarantineCaps::NONE)
        {
            Ok(number) => {
                self.metrics
                    .count_quarantine(crate::store::LOCAL_ORIGIN, problem.slug());
                tracing::info!(reason = problem.slug(), number, "submission quarantined");
                problem
            }
            // The local API's submissions have no share beside the caps.
            Err(QuarantineError::Full(full) | QuarantineError::ShareFull(full)) => {
                self.metrics
                    .count_quarantine_full(crate::store::LOCAL_ORIGIN);
                tracing::warn!(reason = problem.slug(), %full, "a refused submission was not kept");
                quarantine_full(&problem, &full)
            }
            Err(QuarantineError::Store(e)) => {
                tracing::error!(error = %e, "cannot write quarantine record");
                problem
            }
        }
    }
}

/// The events of a batch body, `{"events": [...]}` with at most [`MAX_BATCH`] of them.
pub(crate) fn batch_items(value: &Value) -> Result<&[Value], Problem> {
    let Some(items) = value.get("events").and_then(Value::as_array) else {
        return Err(Problem::new(
            ProblemKind::InvalidRequest,
            "a batch is {\"events\": [ {type, data, idempotencyKey?}, … ]}",
        )
        .field("/events", "required: an array of events"));
    };
    if items.len() > MAX_BATCH {
        return Err(Problem::new(
            ProblemKind::BatchTooLarge,
            format!("a batch carries at most {MAX_BATCH} events"),
        ));
    }
    Ok(items)
}

/// [`batch_items`], taken out of the body: each item's data becomes its draft's, not copied.
fn into_batch_items(value: Value) -> Result<Vec<Value>, Problem> {
    batch_items(&value)?;
    match value {
        Value::Object(mut body) => match body.remove("events") {
            Some(Value::Array(items)) => Ok(items),
            _ => Ok(Vec::new()),
        },
        _ => Ok(Vec::new()),
    }
}

/// The items of a batch body as the caller wrote them, for the quarantine: found when the
/// first item is refused (a batch published whole never looks), once for all of them.
struct ItemTexts<'b> {
    body: &'b [u8],
    items: Option<Vec<&'b RawValue>>,
}

impl<'b> ItemTexts<'b> {
    fn of(body: &'b [u8]) -> ItemTexts<'b> {
        ItemTexts { body, items: None }
    }

    /// Item `i` as sent; empty if the body has no such item.
    fn get(&mut self, i: usize) -> &'b [u8] {
        #[derive(serde::Deserialize)]
        struct Items<'a> {
            #[serde(borrow)]
            events: Vec<&'a RawValue>,
        }
        let body = self.body;
        let items = self.items.get_or_insert_with(|| {
            serde_json::from_slice::<Items>(body).map_or_else(|_| Vec::new(), |items| items.events)
        });
        items.get(i).map_or(&[], |item| item.get().as_bytes())
    }
}

/// Turn `{type, data, idempotencyKey?}` into a draft; pointers are placed under `at`.
pub(crate) fn draft(value: Value, at: &str) -> Result<Draft, Problem> {
    let invalid = || {
        Problem::new(
            ProblemKind::InvalidRequest,
            "a publish request is {\"type\": …, \"data\": {…}, \"idempotencyKey\"?: …}",
        )
    };
    let Some(obj) = value.as_object() else {
        return Err(invalid().field(at, "must be a JSON object"));
    };
    let mut problem = invalid();
    for k in obj.keys() {
        if !["type", "data", "idempotencyKey"].contains(&k.as_str()) {
            problem = problem.field(
                format!("{at}/{}", crate::event::json::pointer_token(k)),
                "unknown member",
            );
        }
    }
    let event_type = match obj
        .get("type")
        .map(|t| t.as_str().map(str::parse::<EventType>))
    {
        Some(Some(Ok(EventType::Erasure))) => {
            problem = problem.field(
                format!("{at}/type"),
                "erasures are made by POST /api/v1/persons/{pin}/erasure, which erases what they name",
            );
            None
        }
        Some(Some(Ok(EventType::CredentialIssued))) => {
            problem = problem.field(
                format!("{at}/type"),
                "credential events are published by the node's credential issuer; POST /api/v1/credentials/{id}/revocation revokes one",
            );
            None
        }
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
        Some(Value::String(k)) if k.starts_with(crate::credentials::issuer::KEY_PREFIX) => {
            problem = problem.field(
                format!("{at}/idempotencyKey"),
                "keys starting with credential/ are the credential issuer's",
            );
            None
        }
        Some(Value::String(k)) if (1..=200).contains(&k.len()) => Some(k.clone()),
        Some(_) => {
            problem = problem.field(
                format!("{at}/idempotencyKey"),
                "must be a string of 1 to 200 characters",
            );
            None
        }
    };
    if !problem.errors.is_empty() {
        return Err(problem);
    }
    // The request's data becomes the draft's: moved, not copied.
    let data = match value {
        Value::Object(mut obj) => obj.remove("data"),
        _ => None,
    };
    match (event_type, data) {
        (Some(event_type), Some(data)) => Ok(Draft {
            event_type,
            data,
            idempotency_key,
        }),
        _ => Err(problem),
    }
}

/// 507: a refused submission that the full quarantine cannot keep. Nothing of it is stored; the
/// refusal it had is named, so the client still learns what was wrong with it.
fn quarantine_full(refusal: &Problem, full: &QuarantineFull) -> Problem {
    Problem::new(
        ProblemKind::QuarantineFull,
        format!(
            "this submission was refused ({}) and could not be kept for the operator: {full}. \
             Nothing was stored. The quarantine is a tamper-evident log that is never cleared: \
             the operator raises [limits] quarantine_max_records or quarantine_max_bytes",
            refusal.slug()
        ),
    )
    .with("refusal", serde_json::to_value(refusal).unwrap_or_default())
}

fn item_error(index: usize, p: &Problem) -> Value {
    serde_json::json!({"index": index, "status": p.status, "type": p.kind,
        "detail": p.detail, "errors": p.errors})
}

pub(super) fn publish_problem(e: PublishError, data_at: &str) -> Problem {
    match e {
        PublishError::Invalid(errors) => Problem::new(
                ProblemKind::SchemaInvalid,
                format!(
                "{} field(s) fail the schema of the event type",
                errors.len()
            ),
        )
        .schema_fields(data_at, &errors),
        PublishError::Supersedes(e) => Problem::new(
                ProblemKind::SupersedesForeign,
                "a correction supersedes only an event of the same member and type about the same person",
        )
        .field(format!("{data_at}/supersedes"), e.to_string()),
        PublishError::TooLarge { size, limit } => Problem::new(
                ProblemKind::EventTooLarge,
                format!(
                "signed, this event would be {size} bytes; this node publishes events of at most \
                 {limit} bytes ([limits] max_event_bytes), so that every reader can take them"
            ),
        )
        .with("size", size.into())
        .with("limit", limit.into())
        .field(data_at, "too large once signed"),
        PublishError::ConsentAfterEvent => Problem::new(
                ProblemKind::ConsentAfterEvent,
                "a consent cannot be dated after the event that records it (beyond the allowed clock skew)",
        )
        .field(format!("{data_at}/consent/time"), "after the event's time"),
        PublishError::IdempotencyConflict => Problem::new(
                ProblemKind::IdempotencyConflict,
                "this idempotency key was used before for a different request",
        ),
        PublishError::NotWriter => not_writer(),
        PublishError::Storage(reason) if reason.is_not_writer() => not_writer(),
        PublishError::Storage(reason) => storage_problem(reason),
        // Only a received page carries a cursor; a publish never meets this.
        PublishError::CursorMoved { .. } => Problem::new(
                ProblemKind::Internal,
                "the writer refused a received page",
        ),
        PublishError::Stopped => Problem::new(
                ProblemKind::ShuttingDown,
                "the node is stopping; retry with the same idempotency key",
        ),
        PublishError::NothingToErase => Problem::new(
                ProblemKind::NothingToErase,
                "this node holds no event it published about the person that is still to be erased",
        ),
    }
}

/// A publish that reached a standby replica. Answered, not forwarded: the load balancer in front
/// of the replicas sends the retry on (to the writer, or to the replica that takes over), the
/// writer's address is not something a standby should hand out, and a forwarded request would
/// need a second hop whose failure the client could not tell from ours.
fn not_writer() -> Problem {
    Problem::new(
                ProblemKind::NotWriter,
                "this replica of the member is a standby and another one is the writer; retry (with the same idempotency key): the load balancer sends the retry on",
    )
    .with("retryAfter", serde_json::json!(1))
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
    crate::event::cloudevent::raw_json(bytes).map_err(|e| storage_problem(e.to_string()))
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A refused item is quarantined as the caller wrote it, found again in the body by its
    /// index; an index the body does not have gives nothing.
    #[test]
    fn a_batch_item_is_found_again_as_it_was_sent() {
        let body = br#"{"events": [ {"type": "a"}, {"type" : "b",  "data": {"x": [1, 2]}} ],
            "other": 1}"#;
        let mut texts = ItemTexts::of(body);
        assert_eq!(texts.get(1), br#"{"type" : "b",  "data": {"x": [1, 2]}}"#);
        assert_eq!(texts.get(0), br#"{"type": "a"}"#);
        assert_eq!(texts.get(2), b"");
        assert_eq!(ItemTexts::of(b"[1]").get(0), b"");
    }

    /// What only the node's own parts make is refused to the local API's clients: erasure
    /// events, credential events (a client with the publish scope could otherwise revoke a
    /// credential, which takes an admin token), and the credential issuer's idempotency keys.
    #[test]
    fn the_node_s_own_events_and_keys_are_not_a_client_s() {
        use serde_json::json;
        let pointers = |v: Value| -> Vec<String> {
            draft(v, "")
                .unwrap_err()
                .errors
                .into_iter()
                .map(|e| e.pointer)
                .collect()
        };
        for t in ["erasure", "credential-issued"] {
            assert_eq!(pointers(json!({"type": t, "data": {}})), ["/type"], "{t}");
        }
        let squatting = json!({"type": "employment-status", "data": {},
            "idempotencyKey": "credential/01937e1c-5a1b-7cc2-9a4e-3f7e2b1d0c11/revoked"});
        assert_eq!(pointers(squatting), ["/idempotencyKey"]);
        let own = json!({"type": "employment-status", "data": {}, "idempotencyKey": "mine/1"});
        assert_eq!(
            draft(own, "").unwrap().idempotency_key.as_deref(),
            Some("mine/1")
        );
    }

    /// The items are moved out of the body in order; a body that is not a batch is refused
    /// as `batch_items` refuses it.
    #[test]
    fn batch_items_are_taken_out_of_the_body_in_order() {
        let items = into_batch_items(serde_json::json!({"events": [{"n": 1}, {"n": 2}]})).unwrap();
        assert_eq!(
            items,
            [serde_json::json!({"n": 1}), serde_json::json!({"n": 2})]
        );
        let refused = into_batch_items(serde_json::json!({"event": []})).unwrap_err();
        assert_eq!(refused.errors[0].pointer, "/events");
        let most = vec![serde_json::json!({}); MAX_BATCH];
        assert_eq!(
            into_batch_items(serde_json::json!({"events": most}))
                .unwrap()
                .len(),
            MAX_BATCH
        );
        let more = vec![serde_json::json!({}); MAX_BATCH + 1];
        let refused = into_batch_items(serde_json::json!({"events": more})).unwrap_err();
        assert!(
            refused.kind.ends_with("batch-too-large"),
            "{}",
            refused.kind
        );
    }
}
