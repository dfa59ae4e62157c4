//! The local API: what the agency's own systems call (`/api/v1/…`, `/healthz`).
//!
//! Publishing goes through [`Publisher`]; reading goes straight to the store. Every refusal is a
//! problem+json document with its own `type`, and refused submissions are kept in quarantine with
//! the reason, so an operator can see what was sent and why it did not go through.

pub(crate) mod budget;
mod credentials;
pub(crate) mod dashboard;
pub(crate) mod erasure;
mod events;
mod health;
mod matching;
pub(crate) mod openapi;
pub(crate) mod origin;
pub(crate) mod publish;
pub(crate) mod registry;
pub(crate) mod routes;
pub(crate) mod session;
pub mod tokens;

use std::sync::Arc;

use hyper::body::Incoming;
use hyper::header::AUTHORIZATION;
use hyper::{Method, Request, StatusCode};

use crate::event::identifiers::MemberId;
use crate::net::http::{self, Problem, ProblemKind, Response};
use crate::net::metrics::Metrics;
use crate::policy::access::{Reader, ReaderId, TokenVia};
use crate::registry::serve::LocalUser;
use crate::store::Store;
use crate::trust::manifest::Trust;
use crate::write::Publisher;
use routes::{Access, Route};
use tokens::{Scope, Unreadable};

/// Most events one `GET /api/v1/events` returns.
pub(crate) const MAX_PAGE: usize = 1000;
/// Most events one batch request may carry.
pub(crate) const MAX_BATCH: usize = 1000;

/// What the local API handlers share.
pub(crate) struct LocalApi {
    pub(crate) member: MemberId,
    pub(crate) store: Store,
    pub(crate) publisher: Publisher,
    pub(crate) tokens: tokens::Tokens,
    /// Requests each token may make a second.
    pub(crate) rate_limits: budget::RateLimits<String>,
    /// Refused dashboard sign-ins each client address may make a minute.
    pub(crate) signin_limits: budget::RateLimits<std::net::IpAddr>,
    pub(crate) max_body_bytes: usize,
    /// The most the quarantine keeps of refused submissions.
    pub(crate) quarantine_caps: crate::store::QuarantineCaps,
    /// What each publisher may hold of it (`[sync]`), shown in `/readyz`.
    pub(crate) quarantine_share: crate::store::QuarantineCaps,
    /// How long a client may take to send a request body.
    pub(crate) body_deadline: std::time::Duration,
    pub(crate) metrics: Arc<Metrics>,
    /// The federation's manifest, when the node is a member.
    pub(crate) trust: Option<Arc<Trust>>,
    /// The names the node answers to (`Host`), and so its origin.
    pub(crate) names: origin::HostNames,
    /// Dashboard sessions signed in with a token (this listener's cookie, at most
    /// `[local] max_sessions`).
    pub(crate) sessions: session::Sessions,
    /// Whether this replica is the member's writer (`/readyz` says).
    pub(crate) role: tokio::sync::watch::Receiver<crate::store::postgres::lease::Role>,
    /// The credential issuer, when the node issues credentials.
    pub(crate) credentials: Option<Arc<crate::credentials::issuer::Issuer>>,
}

impl LocalApi {
    /// Route one request: check the `Host` and origin, then which route it is, who is calling
    /// and with what scope, then serve.
    pub(crate) async fn handle(self: Arc<Self>, req: Request<Incoming>) -> Response {
        if let Err(p) = self.names.check(&req) {
            return p.response();
        }
        let path = req.uri().path().to_string();
        let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
        let result = match Route::of(req.method(), &segments) {
            Some(route) => self.serve(route, req).await,
            None => Err(unknown_route(req.method(), &segments)),
        };
        result.unwrap_or_else(|p| p.response())
    }

    /// Serve `route`: the caller is checked first when the route's access asks for a token,
    /// then the route's handler answers: those that read a body or wait on the writer here,
    /// the others ([`Self::serve_from_store`]) where blocking work may run.
    async fn serve(&self, route: Route<'_>, req: Request<Incoming>) -> Result<Response, Problem> {
        let caller = match route.access() {
            Access::Open => None,
            Access::Token(scope) => Some(self.authorize(&req, scope)?),
        };
        match route {
            Route::SignIn => self.sign_in(req).await,
            Route::Publish => self.post_event(req).await,
            Route::PublishBatch => self.post_batch(req).await,
            Route::RevokeCredential { id } => self.revoke_credential(id, req).await,
            Route::Erase { pin } => {
                let purpose = signed_in(caller)?.reader().purpose;
                self.post_erasure(req, pin, purpose).await
            }
            // Store reads, durable access-log writes and scans of every view: off the
            // runtime's other tasks (peer sync, the feed, other callers), which it hands to
            // its other threads meanwhile.
            route => crate::cores::blocking(|| self.serve_from_store(route, &req, caller)),
        }
    }

    /// Serve a route whose handler works on the store alone (see [`Self::serve`]).
    fn serve_from_store(
        &self,
        route: Route<'_>,
        req: &Request<Incoming>,
        caller: Option<Caller>,
    ) -> Result<Response, Problem> {
        let query = req.uri().query();
        match route {
            Route::Healthz => Ok(http::json(
                StatusCode::OK,
                &serde_json::json!({"status": "ok"}),
            )),
            Route::Dashboard => Ok(self.dashboard_page(req)),
            Route::SignInPage => Ok(dashboard::signin_page(StatusCode::OK, None)),
            Route::SignOut => self.sign_out(req),
            Route::OpenApi => Ok(http::json(StatusCode::OK, &openapi::local_api())),
            Route::Readyz => Ok(self.readyz()),
            Route::Metrics => Ok(http::with_type(
                StatusCode::OK,
                "text/plain; version=0.0.4",
                self.metrics.render(),
            )),
            Route::Session => Ok(signed_in(caller)?.describe()),
            Route::Events => self.list_events(query, &signed_in(caller)?.reader()),
            Route::Event { id } => self.get_event(id, query, &signed_in(caller)?.reader()),
            Route::Quarantine => self.list_quarantine(query, &signed_in(caller)?),
            Route::Person { pin } => self.get_person(req, pin, &signed_in(caller)?.reader()),
            Route::AccessLog { pin } => self.get_access_log(pin, &signed_in(caller)?),
            Route::Kpi => self.get_kpi(req, &signed_in(caller)?),
            Route::KpiReports => self.kpi_reports(),
            Route::KpiReport { month } => self.kpi_report(month),
            Route::SkillsGap => self.skills_gap(query, &signed_in(caller)?),
            Route::Vacancies => {
                self.list_offers(crate::registry::offers::OfferKind::Vacancy, query)
            }
            Route::Courses => self.list_offers(crate::registry::offers::OfferKind::Course, query),
            Route::Matches { pin } => self.person_matches(req, pin, &signed_in(caller)?.reader()),
            Route::PersonCourses { pin } => self.person_courses(pin, &signed_in(caller)?.reader()),
            Route::PersonCredentials { pin } => {
                self.person_credentials(pin, &signed_in(caller)?.reader())
            }
            Route::Erasure { id } => self.get_erasure(id),
            Route::Candidates { id } => {
                self.vacancy_candidates(req, id, &signed_in(caller)?.reader())
            }
            Route::Checkpoint => crate::federation::proofs::checkpoint(&self.store),
            Route::Tile { tile } => crate::federation::proofs::tile(&self.store, &tile.join("/")),
            Route::InclusionProof => crate::federation::proofs::inclusion(&self.store, query),
            Route::ConsistencyProof => crate::federation::proofs::consistency(&self.store, query),
            Route::SignIn
            | Route::Publish
            | Route::PublishBatch
            | Route::RevokeCredential { .. }
            | Route::Erase { .. } => Err(Problem::new(
                ProblemKind::Internal,
                "an asynchronous route reached the store's dispatcher",
            )),
        }
    }

    /// This node's consent decision for a user reading as `who`.
    fn user<'a>(&'a self, who: &'a Reader) -> LocalUser<'a> {
        LocalUser {
            node: &self.member,
            purpose: who.purpose.as_deref().unwrap_or_default(),
        }
    }

    /// The token behind the request's dashboard session, if it is live and the token still
    /// valid (revoking the token ends its sessions).
    fn session_token<B>(&self, req: &Request<B>) -> Result<Option<tokens::Token>, Unreadable> {
        let Some(id) = self.sessions.cookie().id_of(req) else {
            return Ok(None);
        };
        match self.sessions.token_digest(id) {
            Some(digest) => self.tokens.by_digest(&digest),
            None => Ok(None),
        }
    }

    /// The caller: a bearer token, or the token behind a dashboard session. 401 without a valid
    /// one (or when the tokens file cannot be read), 429 when its budget is spent, 403 when it
    /// lacks `scope`.
    fn authorize(&self, req: &Request<Incoming>, scope: Option<Scope>) -> Result<Caller, Problem> {
        let bearer = req
            .headers()
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        let (token, via) = match bearer {
            Some(presented) => (self.tokens.verify(presented), TokenVia::Bearer),
            None => (self.session_token(req), TokenVia::Dashboard),
        };
        let caller = token
            .map_err(Unreadable::problem)?
            .map(|token| Caller { token, via });
        let caller = signed_in(caller)?;
        if caller.via == TokenVia::Dashboard {
            origin::session_may_change_state(req)?;
        }
        if let Err(seconds) = self.rate_limits.take(&caller.token.name) {
            return Err(Problem::new(
                ProblemKind::RateLimited,
                format!(
                    "this token's budget ({}/s) is spent; retry after {seconds} s",
                    self.rate_limits.per_second()
                ),
            )
            .with("retryAfter", seconds.into()));
        }
        match scope {
            Some(scope) if !caller.token.allows(scope) => Err(Problem::new(
                ProblemKind::ScopeMissing,
                format!("this token lacks the scope {}", scope.as_str()),
            )
            .with("scope", scope.as_str().into())),
            _ => Ok(caller),
        }
    }
}

/// An authenticated caller of the local API.
pub(crate) struct Caller {
    token: tokens::Token,
    /// How it proved who it is: a bearer token, or a dashboard session's cookie.
    via: TokenVia,
}

impl Caller {
    /// Who is reading, for the access log: the token (and whether through the dashboard), its
    /// holder and its purpose. Nothing of it comes from the request: a caller cannot state
    /// another purpose or official.
    fn reader(&self) -> Reader {
        let reader = ReaderId::Token {
            name: self.token.name.clone(),
            via: self.via,
        };
        Reader::local(
            reader,
            Some(self.token.name.clone()),
            Some(self.token.purpose.clone()),
        )
    }

    /// Whether the caller may use `scope`.
    fn allows(&self, scope: Scope) -> bool {
        self.token.allows(scope)
    }

    /// `GET /api/v1/session`: the caller's token name, scopes and purpose (never the secret).
    fn describe(&self) -> Response {
        http::json(
            StatusCode::OK,
            &serde_json::json!({
                "name": self.token.name,
                "scopes": self.token.scopes,
                "purpose": self.token.purpose,
                "via": match self.via { TokenVia::Bearer => "bearer", TokenVia::Dashboard => "session" },
            }),
        )
    }
}

/// The caller of a route that needs one, or 401. [`LocalApi::serve`] checks the caller of every
/// route whose access asks for a token before its handler runs; a handler that needs a caller
/// on a route open to all is refused as if no token had come.
fn signed_in(caller: Option<Caller>) -> Result<Caller, Problem> {
    caller.ok_or_else(|| {
        Problem::new(
                ProblemKind::Unauthorized,
                "this listener requires Authorization: Bearer <token> with a valid, unexpired token (jol token create), or a dashboard session (/signin)",
        )
    })
}

/// 405 for a known path with another method, 404 otherwise. The path itself is not repeated
/// (a person's path carries a PIN, and the answer comes before any token is checked): a 405
/// names the route's template.
fn unknown_route(method: &Method, segments: &[&str]) -> Problem {
    let known = [Method::GET, Method::POST]
        .iter()
        .find_map(|m| Route::of(m, segments));
    match known {
        Some(route) => Problem::new(
            ProblemKind::MethodNotAllowed,
            format!("{method} is not allowed on {}", route.spec().path),
        ),
        None => Problem::new(
            ProblemKind::NotFound,
            "no resource at this path (the routes are in /api/v1/openapi.json)",
        ),
    }
}
