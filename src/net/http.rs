//! HTTP plumbing shared by the listeners: bodies read under a size limit, JSON answers, and
//! RFC 9457 problem details naming each failing field by JSON pointer.

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_LENGTH, CONTENT_TYPE};
use hyper::{Request, StatusCode};
use serde::{Deserialize, Serialize};

use crate::event::schema::FieldError;
pub use crate::net::problems::ProblemKind;

/// An answer with its whole body.
pub type Response = hyper::Response<Full<Bytes>>;

/// Base of the `type` URIs of our problem documents.
pub(crate) const PROBLEM_BASE: &str = "https://jol.example/problems/";

/// A JSON answer.
pub fn json(status: StatusCode, body: &impl Serialize) -> Response {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    with_type(status, "application/json", bytes)
}

/// A body with its content type.
pub fn with_type(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<Bytes>,
) -> Response {
    let mut r = hyper::Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

/// An RFC 9457 problem: a stable slug (the `type`), a title, a detail, and failing fields.
#[derive(Debug, Clone, Serialize)]
pub struct Problem {
    /// The `type` URI, ending in the kind's slug.
    #[serde(rename = "type")]
    pub kind: String,
    pub(crate) title: String,
    /// The HTTP status.
    pub status: u16,
    /// What was wrong, for a person to read.
    pub detail: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) errors: Vec<ProblemField>,
    /// Extension members (RFC 9457 §3.2), e.g. the candidates of an ambiguous id.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub(crate) extensions: Option<Box<serde_json::Map<String, serde_json::Value>>>,
}

/// One failing field of a problem (`pointer` into the request body).
#[derive(Debug, Clone, Serialize)]
pub(crate) struct ProblemField {
    pub(crate) pointer: String,
    pub detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) keyword: Option<String>,
}

impl Problem {
    /// A problem of `kind` (its slug, status and title from [`ProblemKind`]) with `detail`.
    pub(crate) fn new(kind: ProblemKind, detail: impl Into<String>) -> Problem {
        Problem {
            kind: format!("{PROBLEM_BASE}{}", kind.slug()),
            title: kind.title().into(),
            status: kind.status().as_u16(),
            detail: detail.into(),
            errors: Vec::new(),
            extensions: None,
        }
    }

    /// Whether `body`, an answer another node sent, is a problem of `kind` (its `type` URI;
    /// the status alone may come from a proxy in between, or a node without the route).
    pub(crate) fn answers_as(body: &[u8], kind: ProblemKind) -> bool {
        #[derive(Deserialize)]
        struct Typed<'a> {
            #[serde(rename = "type", borrow)]
            kind: std::borrow::Cow<'a, str>,
        }
        serde_json::from_slice::<Typed<'_>>(body).is_ok_and(|t| {
            t.kind
                .strip_prefix(PROBLEM_BASE)
                .is_some_and(|slug| slug == kind.slug())
        })
    }

    /// This problem as told to a peer: a storage failure's cause stays in this node's log
    /// ([`storage_problem_for_peer`]); any other problem as it is.
    pub(crate) fn for_peer(self) -> Problem {
        match self.slug() == ProblemKind::StorageUnavailable.slug() {
            true => storage_problem_for_peer(self.detail),
            false => self,
        }
    }

    /// The slug of the `type` URI, used as the quarantine reason code.
    pub(crate) fn slug(&self) -> &str {
        self.kind.strip_prefix(PROBLEM_BASE).unwrap_or(&self.kind)
    }

    /// Add an extension member (`retryAfter`, in seconds, is also sent as `Retry-After`).
    pub(crate) fn with(mut self, name: &str, value: serde_json::Value) -> Problem {
        self.extensions
            .get_or_insert_with(Default::default)
            .insert(name.into(), value);
        self
    }

    /// Add a failing field.
    pub(crate) fn field(
        mut self,
        pointer: impl Into<String>,
        detail: impl Into<String>,
    ) -> Problem {
        self.errors.push(ProblemField {
            pointer: pointer.into(),
            detail: detail.into(),
            keyword: None,
        });
        self
    }

    /// Add schema errors, each pointer placed under `prefix` (e.g. `/data`).
    pub(crate) fn schema_fields(mut self, prefix: &str, errors: &[FieldError]) -> Problem {
        self.errors.extend(errors.iter().map(|e| ProblemField {
            pointer: format!("{prefix}{}", e.pointer),
            detail: e.reason.clone(),
            keyword: Some(e.keyword.clone()),
        }));
        self
    }

    /// The problem+json answer (with `Retry-After` when the problem says when to retry).
    pub fn response(&self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let bytes = serde_json::to_vec(self).unwrap_or_default();
        let mut response = with_type(status, "application/problem+json", bytes);
        let retry_after = self.extensions.as_ref().and_then(|e| e.get("retryAfter"));
        if let Some(seconds) = retry_after.and_then(serde_json::Value::as_u64) {
            response
                .headers_mut()
                .insert(hyper::header::RETRY_AFTER, seconds.into());
        }
        response
    }
}

/// 503: the store failed (the node says why; it keeps serving what it can).
pub(crate) fn storage_problem(e: impl std::fmt::Display) -> Problem {
    Problem::new(ProblemKind::StorageUnavailable, e.to_string())
}

/// The store failed, as told to a peer: the cause is logged here and not sent (a store's error
/// may name its files or its database's messages; a peer needs only to know to try again).
pub(crate) fn storage_problem_for_peer(e: impl std::fmt::Display) -> Problem {
    tracing::error!(error = %e, "the store failed while answering a peer");
    Problem::new(
        ProblemKind::StorageUnavailable,
        "the node's storage is unavailable now; try again later",
    )
}

/// The request must declare a JSON body.
pub(crate) fn require_json(req: &Request<Incoming>) -> Result<(), Problem> {
    let declared = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        });
    match declared.as_deref() {
        Some("application/json") => Ok(()),
        Some(t) if t.starts_with("application/") && t.ends_with("+json") => Ok(()),
        Some(_) => Err(Problem::new(
            ProblemKind::UnsupportedMediaType,
            "the body must be JSON: send Content-Type: application/json",
        )),
        None => Err(Problem::new(
            ProblemKind::MissingContentType,
            "the request has no Content-Type header: send Content-Type: application/json",
        )),
    }
}

/// Read the whole body, refusing one larger than `limit` bytes (before reading it, where the
/// client declared its length).
/// How long a peer may take to send a request body it started (the local API's is configured).
pub const BODY_DEADLINE: std::time::Duration = std::time::Duration::from_secs(10);

/// Read a request body of at most `limit` bytes within `deadline`: a sender that trickles or
/// stops cannot hold a connection slot longer than that (408).
pub async fn read_body(
    req: Request<Incoming>,
    limit: usize,
    deadline: std::time::Duration,
) -> Result<Bytes, Problem> {
    let too_large = || {
        Problem::new(
            ProblemKind::BodyTooLarge,
            format!("the body is larger than this node accepts ({limit} bytes)"),
        )
    };
    let declared = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    let collected = tokio::time::timeout(deadline, Limited::new(req.into_body(), limit).collect())
        .await
        .map_err(|_| {
            Problem::new(
                ProblemKind::BodyTimeout,
                format!("the body did not arrive within {} s", deadline.as_secs()),
            )
        })?;
    match collected {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(too_large()),
        Err(e) => Err(Problem::new(ProblemKind::BodyUnreadable, e.to_string())),
    }
}

/// Parse a JSON body, naming where it is malformed (line and column, never content).
pub(crate) fn parse_json(body: &[u8]) -> Result<serde_json::Value, Problem> {
    use crate::event::json::{self, JsonError};
    json::parse(body).map_err(|e| match e {
        JsonError::DuplicateKey { pointer } => Problem::new(
                ProblemKind::DuplicateKey,
                "an object names the same member twice; JSON parsers disagree on which one counts, so the request is refused",
        )
        .field(pointer, "appears twice in its object"),
        JsonError::Syntax(_) if std::str::from_utf8(body).is_err() => Problem::new(
                ProblemKind::MalformedJson,
                "the body is not valid UTF-8",
        ),
        JsonError::Syntax(e) => Problem::new(
                ProblemKind::MalformedJson,
                format!("the body is not valid JSON: {e}"),
        ),
    })
}

/// The query parameter `name`, if present.
pub fn query_param<'a>(query: Option<&'a str>, name: &str) -> Option<&'a str> {
    query?
        .split('&')
        .filter_map(|kv| kv.split_once('=').or(Some((kv, ""))))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// A numeric query parameter, with a problem naming it when it is not a number.
pub(crate) fn query_u64(query: Option<&str>, name: &str, default: u64) -> Result<u64, Problem> {
    match query_param(query, name) {
        None => Ok(default),
        Some(v) => v.parse().map_err(|_| {
            Problem::new(
                ProblemKind::BadQuery,
                format!("query parameter `{name}` must be a non-negative integer"),
            )
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_params_are_found_by_name() {
        assert_eq!(query_param(Some("after=5&limit=10"), "limit"), Some("10"));
        assert_eq!(query_param(Some("after"), "after"), Some(""));
        assert_eq!(query_param(None, "after"), None);
        assert_eq!(query_u64(Some("after=5"), "after", 0).unwrap(), 5);
        assert!(query_u64(Some("after=x"), "after", 0).is_err());
    }

    #[test]
    fn a_peer_is_told_the_store_failed_but_not_why() {
        let cause = "io error at /var/lib/jol/data/jol.redb: disk full";
        let p = storage_problem_for_peer(cause);
        assert_eq!(p.slug(), "storage-unavailable");
        assert!(
            !p.detail.contains("/var/lib") && !p.detail.contains("disk"),
            "{}",
            p.detail
        );
    }

    #[test]
    fn malformed_json_says_where_not_what() {
        let p = parse_json(b"{\"pin\": 215031990123").unwrap_err();
        assert_eq!(p.slug(), "malformed-json");
        assert!(!p.detail.contains("21503"), "{}", p.detail);
        let p = parse_json(&[b'"', 0xff, b'"']).unwrap_err();
        assert!(p.detail.contains("UTF-8"), "{}", p.detail);
    }
}
