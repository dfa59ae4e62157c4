//! The local API: what the agency's own systems call (`/api/v1/…`, `/healthz`).
//!
//! Publishing goes through [`Publisher`]; reading goes straight to the store. Every refusal is a
//! problem+json document with its own `type`, and refused submissions are kept in quarantine with
//! the reason, so an operator can see what was sent and why it did not go through.

pub mod dashboard;
mod events;
mod health;
pub mod origin;
mod publish;
mod registry;

use std::sync::Arc;

use hyper::body::Incoming;
use hyper::header::AUTHORIZATION;
use hyper::{Method, Request, StatusCode};

use crate::event::identifiers::MemberId;
use crate::net::http::{self, Problem, Response};
use crate::net::metrics::Metrics;
use crate::store::Store;
use crate::trust::manifest::Trust;
use crate::write::Publisher;

/// A named bearer token for the local API.
#[derive(Clone)]
pub struct Token {
    pub name: String,
    pub secret: String,
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Token({})", self.name)
    }
}

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
    /// How long a client may take to send a request body.
    pub body_deadline: std::time::Duration,
    pub metrics: Arc<Metrics>,
    /// The federation's manifest, when the node is a member.
    pub trust: Option<Arc<Trust>>,
    /// The names the node answers to (`Host`), and so its origin.
    pub names: origin::HostNames,
}

impl LocalApi {
    /// Route one request.
    pub async fn handle(self: Arc<Self>, req: Request<Incoming>) -> Response {
        if let Err(p) = self.names.check(&req) {
            return p.response();
        }
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
            (&Method::GET, ["api", "v1", "events", id]) => self.get_event(id, req.uri().query()),
            (&Method::GET, ["api", "v1", "quarantine"]) => self.list_quarantine(req.uri().query()),
            (&Method::GET, ["api", "v1", "persons", pin]) => self.get_person(&req, pin),
            (&Method::GET, ["api", "v1", "persons", pin, "access-log"]) => self.get_access_log(pin),
            (&Method::GET, ["api", "v1", "kpi"]) => self.get_kpi(&req),
            (&Method::GET, ["api", "v1", "log", "checkpoint"]) => {
                crate::log::proofs::checkpoint(&self.store)
            }
            (&Method::GET, ["api", "v1", "log", "proof", "inclusion"]) => {
                crate::log::proofs::inclusion(&self.store, req.uri().query())
            }
            (&Method::GET, ["api", "v1", "log", "proof", "consistency"]) => {
                crate::log::proofs::consistency(&self.store, req.uri().query())
            }
            (&Method::GET, [""]) => Ok(http::with_type(
                StatusCode::OK,
                "text/html; charset=utf-8",
                dashboard::PAGE,
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
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
