//! The dashboard at `/` of the local listener: one self-contained page (no external CDN) that
//! draws the KPIs from `/api/v1/kpi` and looks up a person by PIN, in ru, ky and en. It is
//! behind a sign-in: `/signin` takes a token and opens a server-side session (see
//! [`super::session`]); the page's API calls carry the session cookie, so every lookup is in the
//! person's access log under the token's name and purpose. Aggregates need `read-kpi`, person
//! lookups `read-persons`.
//!
//! Refused sign-ins are budgeted per client address (`[local] signin_failures_per_minute`,
//! default 5): only refusals count, so a desk that signs in many times a day is never held up,
//! and once an address has spent its budget every sign-in from it is answered 429 with
//! `retryAfter` until the budget refills, the right token too (otherwise the limit would still
//! tell a guesser which guess was right). Behind a reverse proxy every client shares the
//! proxy's address, and so its budget.

use hyper::body::Incoming;
use hyper::header::{HeaderValue, LOCATION, SET_COOKIE};
use hyper::{Request, StatusCode};

use super::tokens::{digest, Scope, Token, Unreadable};
use super::LocalApi;
use crate::net::http::{self, Problem, ProblemKind, Response};
use crate::net::server::ClientAddr;

/// The dashboard page, built into the binary.
pub(crate) const PAGE: &str = include_str!("dashboard_page/index.html");
/// The sign-in page; `<!--message-->` is where a refusal is said.
const SIGNIN: &str = include_str!("dashboard_page/signin.html");

/// Scopes that let a token use the dashboard at all.
const DASHBOARD_SCOPES: [Scope; 2] = [Scope::ReadKpi, Scope::ReadPersons];

/// Why a sign-in was refused (fixed texts: nothing the caller sent is echoed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SignInRefusal {
    UnknownToken,
    NoDashboardScope,
    /// The tokens file cannot be read: no token signs in (not the caller's doing).
    TokensUnreadable,
    /// The form did not come from the node's own page (no `Origin`).
    NotFromOurPage,
}

impl SignInRefusal {
    fn message(self) -> &'static str {
        match self {
            SignInRefusal::UnknownToken => {
                "That token is not valid here (unknown, revoked or expired)."
            }
            SignInRefusal::NoDashboardScope => {
                "That token has neither read-kpi nor read-persons: it cannot use the dashboard."
            }
            SignInRefusal::TokensUnreadable => {
                "This node cannot read its token list: no token can sign in until an operator repairs it."
            }
            SignInRefusal::NotFromOurPage => {
                "Sign in from this page: the form you sent did not say it came from it."
            }
        }
    }

    /// Whether the refusal spends the client address's budget (a wrong token does; the node's
    /// own trouble does not).
    fn counts(self) -> bool {
        !matches!(
            self,
            SignInRefusal::TokensUnreadable | SignInRefusal::NotFromOurPage
        )
    }

    fn page(self) -> Response {
        let status = match self {
            SignInRefusal::NoDashboardScope | SignInRefusal::NotFromOurPage => {
                StatusCode::FORBIDDEN
            }
            SignInRefusal::UnknownToken | SignInRefusal::TokensUnreadable => {
                StatusCode::UNAUTHORIZED
            }
        };
        signin_page(status, Some(self))
    }
}

/// The sign-in page, with a refusal said on it.
pub(crate) fn signin_page(status: StatusCode, refusal: Option<SignInRefusal>) -> Response {
    let message = refusal.map_or(String::new(), |r| {
        format!("<p class=\"refused\" role=\"alert\">{}</p>", r.message())
    });
    let mut response = http::with_type(
        status,
        "text/html; charset=utf-8",
        SIGNIN.replace("<!--message-->", &message),
    );
    no_store(&mut response);
    response
}

impl LocalApi {
    /// `GET /`: the dashboard for a signed-in browser, otherwise off to `/signin`.
    pub(super) fn dashboard_page(&self, req: &Request<Incoming>) -> Response {
        if !matches!(self.session_token(req), Ok(Some(_))) {
            return see_other("/signin", None);
        }
        let mut response = http::with_type(StatusCode::OK, "text/html; charset=utf-8", PAGE);
        no_store(&mut response);
        response
    }

    /// `POST /signin` with a form field `token`: a session for a valid token with a dashboard
    /// scope, then off to `/`. A wrong token spends the client address's budget of refusals,
    /// and once it is spent wrong tokens are answered 429. The right token always signs in:
    /// behind the agency's reverse proxy every official shares one address, and a budget that
    /// refused them all would let anyone who can reach the page lock them out with a few wrong
    /// tokens a minute. Guessing gains nothing from it: a token is 256 random bits.
    pub(super) async fn sign_in(&self, req: Request<Incoming>) -> Result<Response, Problem> {
        // A page of another origin cannot sign a browser in to a session of its choosing
        // (a form sent without an Origin did not come from our page).
        if super::origin::session_may_change_state(&req).is_err() {
            return Ok(SignInRefusal::NotFromOurPage.page());
        }
        // Without an address (not from the listener) the unspecified one: one shared budget.
        let client = req.extensions().get::<ClientAddr>().map_or(
            std::net::IpAddr::from(std::net::Ipv6Addr::UNSPECIFIED),
            |c| c.0.ip(),
        );
        let body = http::read_body(req, 4096, self.body_deadline).await?;
        let presented = form_field(&body, "token").unwrap_or_default();
        let presented = presented.trim();
        match self.dashboard_token(presented) {
            Ok(token) => {
                tracing::info!(token = %token.name, "dashboard sign-in");
                let id = self.sessions.open(&digest(presented));
                Ok(see_other("/", Some(self.sessions.cookie().set(&id))))
            }
            Err(refusal) => {
                if refusal.counts() {
                    self.signin_limits
                        .take(&client)
                        .map_err(too_many_sign_ins)?;
                }
                Ok(refusal.page())
            }
        }
    }

    /// The token presented at sign-in, if it may use the dashboard.
    fn dashboard_token(&self, presented: &str) -> Result<Token, SignInRefusal> {
        let token = self
            .tokens
            .verify(presented)
            .map_err(|Unreadable| SignInRefusal::TokensUnreadable)?
            .ok_or(SignInRefusal::UnknownToken)?;
        if !DASHBOARD_SCOPES.iter().any(|s| token.allows(*s)) {
            return Err(SignInRefusal::NoDashboardScope);
        }
        Ok(token)
    }

    /// `POST /signout`: the session ends and its cookie is removed.
    pub(super) fn sign_out(&self, req: &Request<Incoming>) -> Result<Response, Problem> {
        // Ending a session changes state by its cookie alone: the same Origin rule as every
        // other such request (a page on another port of the host could sign officials out).
        super::origin::session_may_change_state(req)?;
        let cookie = self.sessions.cookie();
        if let Some(id) = cookie.id_of(req) {
            self.sessions.close(id);
        }
        Ok(see_other("/signin", Some(cookie.clear())))
    }
}

/// 429: the client address has spent its budget of refused sign-ins.
fn too_many_sign_ins(seconds: u64) -> Problem {
    Problem::new(
                ProblemKind::SigninRateLimited,
                format!("too many refused sign-ins from this address ([local] signin_failures_per_minute); retry after {seconds} s"),
    )
    .with("retryAfter", seconds.into())
}

/// 303 to `location`, setting a cookie if given.
fn see_other(location: &'static str, cookie: Option<HeaderValue>) -> Response {
    let mut response = http::with_type(StatusCode::SEE_OTHER, "text/plain", location);
    response
        .headers_mut()
        .insert(LOCATION, HeaderValue::from_static(location));
    if let Some(c) = cookie {
        response.headers_mut().insert(SET_COOKIE, c);
    }
    no_store(&mut response);
    response
}

/// What every answer of the dashboard's own pages carries: never cached (the page shows persons
/// as the session's token may see them), never framed by another page (a framing page could
/// overlay it and take a signed-in official's clicks), its type never guessed.
fn no_store(response: &mut Response) {
    use hyper::header::{
        CACHE_CONTROL, CONTENT_SECURITY_POLICY, X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS,
    };
    let headers = response.headers_mut();
    for (name, value) in [
        (CACHE_CONTROL, "no-store"),
        (CONTENT_SECURITY_POLICY, "frame-ancestors 'none'"),
        (X_FRAME_OPTIONS, "DENY"),
        (X_CONTENT_TYPE_OPTIONS, "nosniff"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
}

/// A field of an `application/x-www-form-urlencoded` body, percent-decoded.
fn form_field(body: &[u8], name: &str) -> Option<String> {
    let text = std::str::from_utf8(body).ok()?;
    text.split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(k, _)| *k == name)
        .and_then(|(_, v)| percent_decode(v))
}

fn percent_decode(v: &str) -> Option<String> {
    let bytes = v.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_fields_are_percent_decoded() {
        assert_eq!(
            form_field(b"a=1&token=jol_ab%2Dc+d", "token").as_deref(),
            Some("jol_ab-c d")
        );
        assert_eq!(form_field(b"token=%zz", "token"), None);
        assert_eq!(form_field(b"other=1", "token"), None);
    }

    #[test]
    fn a_refusal_is_said_on_the_sign_in_page_without_echoing_input() {
        let page = SIGNIN.replace("<!--message-->", SignInRefusal::UnknownToken.message());
        assert!(page.contains("not valid here"));
        assert!(SIGNIN.contains("<!--message-->"));
    }
}
