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
pub mod tokens;

use std::sync::Arc;

use hyper::body::Incoming;
use hyper::header::AUTHORIZATION;
use hyper::{Method, Request, StatusCode};

use crate::event::identifiers::MemberId;
use crate::net::http::{self, Problem, Response};
use crate::net::metrics::Metrics;
use crate::registry::access::Reader;
use crate::store::Store;
use crate::trust::manifest::Trust;
use crate::write::Publisher;
use tokens::Scope;

/// Most events one `GET /api/v1/events` returns.
pub const MAX_PAGE: usize = 1000;
/// Most events one batch request may carry.
pub const MAX_BATCH: usize = 1000;

/// What the local API handlers share.
pub struct LocalApi {
    pub member: MemberId,
    pub store: Store,
    pub publisher: Publisher,
    pub tokens: tokens::Tokens,
    /// Requests each token may make a second.
    pub rate_limits: tokens::RateLimits,
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
        let token = match scope_of(req.method(), &segments) {
            Some(scope) => match self.authorize(&req, scope) {
                Ok(token) => token,
                Err(p) => {
                    let wait = p
                        .extensions
                        .as_ref()
                        .and_then(|e| e.get("retryAfter"))
                        .cloned();
                    let mut response = p.response();
                    if let Some(seconds) = wait.and_then(|w| w.as_u64()) {
                        response.headers_mut().insert(
                            hyper::header::RETRY_AFTER,
                            hyper::header::HeaderValue::from(seconds),
                        );
                    }
                    return response;
                }
            },
            None => None,
        };
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
            (&Method::GET, ["api", "v1", "events"]) => {
                self.list_events(req.uri().query(), &reader_of(&req, token.as_ref()))
            }
            (&Method::GET, ["api", "v1", "events", id]) => {
                self.get_event(id, req.uri().query(), &reader_of(&req, token.as_ref()))
            }
            (&Method::GET, ["api", "v1", "quarantine"]) => {
                self.list_quarantine(req.uri().query(), &reader_of(&req, token.as_ref()))
            }
            (&Method::GET, ["api", "v1", "persons", pin]) => {
                self.get_person(&req, pin, token.as_ref())
            }
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

    /// The caller's token, when the node has tokens: 401 without a valid one, 403 when it
    /// lacks `scope`.
    fn authorize(
        &self,
        req: &Request<Incoming>,
        scope: Scope,
    ) -> Result<Option<tokens::Token>, Problem> {
        if !self.tokens.required() {
            return Ok(None);
        }
        let presented = req
            .headers()
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        let Some(token) = presented.and_then(|p| self.tokens.verify(p)) else {
            return Err(Problem::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "Bearer token required",
                "this listener requires Authorization: Bearer <token> with a valid, unexpired token (jol token create)",
            ));
        };
        if let Err(seconds) = self.rate_limits.take(&token.name) {
            return Err(Problem::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate-limited",
                "Too many requests",
                format!(
                    "this token's budget ({}/s) is spent; retry after {seconds} s",
                    self.rate_limits.per_second()
                ),
            )
            .with("retryAfter", seconds.into()));
        }
        if !token.allows(scope) {
            return Err(Problem::new(
                StatusCode::FORBIDDEN,
                "scope-missing",
                "Token lacks the scope",
                format!("this token lacks the scope {}", scope.as_str()),
            ));
        }
        Ok(Some(token))
    }
}

/// Who is reading, for the access log. With tokens, the purpose is the token's: a caller cannot
/// choose another. Without (a loopback-only node), what the caller states is recorded as stated.
fn reader_of(req: &Request<Incoming>, token: Option<&tokens::Token>) -> Reader {
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(String::from)
    };
    let stated = header("x-road-issue")
        .or_else(|| http::query_param(req.uri().query(), "purpose").map(String::from));
    Reader {
        reader: token.map_or_else(|| "local".to_string(), |t| format!("local:{}", t.name)),
        user: header("x-road-userid"),
        purpose: token.map(|t| t.purpose.clone()).or(stated),
    }
}

/// The scope a local API route needs (`None`: open, e.g. `/healthz`).
fn scope_of(method: &Method, segments: &[&str]) -> Option<Scope> {
    match (method, segments) {
        (&Method::POST, ["api", "v1", "events", ..]) => Some(Scope::Publish),
        (_, ["api", "v1", "persons", ..]) => Some(Scope::ReadPersons),
        (_, ["api", "v1", "kpi"]) => Some(Scope::ReadKpi),
        (_, ["api", ..]) => Some(Scope::ReadEvents),
        _ => None,
    }
}
