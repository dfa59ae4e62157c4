//! Who may address a listener at all: the `Host` a request names must be one of the listener's
//! names (a web page that rebinds its own DNS name to 127.0.0.1 is refused with 421), and a
//! state-changing request from a browser must come from the listener's own origin (a
//! cross-origin POST is refused with 403). Checked before anything else, on every route of the
//! local API and of the X-Road provider face. A state change by a dashboard session (its cookie
//! the only credential) must also say where it comes from: [`session_may_change_state`].

use hyper::header::{HOST, ORIGIN};
use hyper::{Method, Request};

use crate::net::http::Problem;
use crate::net::http::ProblemKind;

/// The names a listener answers to.
#[derive(Debug, Clone)]
pub(crate) struct HostNames {
    names: Vec<String>,
    /// The config key that adds names (said in a refusal).
    key: &'static str,
}

impl HostNames {
    /// The names configured under `key` plus the listen address, `localhost`, `127.0.0.1` and
    /// `::1`.
    pub(crate) fn new(
        listen: std::net::SocketAddr,
        configured: &[String],
        key: &'static str,
    ) -> HostNames {
        let mut names: Vec<String> = configured.iter().map(|n| n.to_ascii_lowercase()).collect();
        names.extend([
            listen.ip().to_string(),
            "localhost".into(),
            "127.0.0.1".into(),
            "::1".into(),
        ]);
        HostNames { names, key }
    }

    /// Refuse a request whose `Host` is not one of ours, or a cross-origin state change.
    pub(crate) fn check<B>(&self, req: &Request<B>) -> Result<(), Problem> {
        let host = req
            .headers()
            .get(HOST)
            .and_then(|h| h.to_str().ok())
            .or_else(|| req.uri().authority().map(|a| a.as_str()))
            .unwrap_or_default();
        if !self.names.iter().any(|n| n == &host_name(host)) {
            return Err(Problem::new(
                ProblemKind::UnknownHost,
                format!(
                    "the Host header names no name this listener answers to ({})",
                    self.key
                ),
            ));
        }
        let origin = req.headers().get(ORIGIN).and_then(|o| o.to_str().ok());
        if let Some(origin) = origin.filter(|_| changes_state(req.method())) {
            let same = origin
                .strip_prefix("http://")
                .or_else(|| origin.strip_prefix("https://"))
                .is_some_and(|o| o.eq_ignore_ascii_case(host));
            if !same {
                return Err(Problem::new(
                    ProblemKind::CrossOrigin,
                    "a state-changing request from a web page of another origin is refused",
                ));
            }
        }
        Ok(())
    }
}

/// Whether a request of `method` may change state (anything but a read).
fn changes_state(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// A state change whose only credential is a dashboard session's cookie (and signing in or out,
/// which makes or ends one) must carry an `Origin` ([`HostNames::check`] has made sure it is
/// our own): a browser sends one with every such request of a page, and a request without one
/// did not come from our page. The cookie's
/// SameSite=Strict keeps other sites out; this keeps out what SameSite counts as the same
/// site (another port of the same host) in a browser that leaves `Origin` out.
pub(crate) fn session_may_change_state<B>(req: &Request<B>) -> Result<(), Problem> {
    if changes_state(req.method()) && !req.headers().contains_key(ORIGIN) {
        return Err(Problem::new(
            ProblemKind::CrossOrigin,
            "a state-changing request of a dashboard session must carry the Origin of the dashboard's page",
        ));
    }
    Ok(())
}

/// The host part of a `Host` value (`name`, `name:port`, `[v6]:port`), lower-case.
fn host_name(host: &str) -> String {
    let name = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => host.rsplit_once(':').map_or(host, |(n, _)| n),
    };
    name.to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(method: &str, host: &str, origin: Option<&str>) -> Request<()> {
        let mut b = Request::builder().method(method).uri("/api/v1/events");
        b = b.header(HOST, host);
        if let Some(o) = origin {
            b = b.header(ORIGIN, o);
        }
        b.body(()).unwrap()
    }

    #[test]
    fn a_session_changes_state_only_with_an_origin() {
        assert!(session_may_change_state(&req("GET", "127.0.0.1:8080", None)).is_ok());
        let bare = session_may_change_state(&req("POST", "127.0.0.1:8080", None)).unwrap_err();
        assert_eq!(bare.status, 403);
        assert!(session_may_change_state(&req(
            "DELETE",
            "127.0.0.1:8080",
            Some("http://127.0.0.1:8080")
        ))
        .is_ok());
    }

    #[test]
    fn only_our_names_and_our_origin() {
        let names = HostNames::new(
            "127.0.0.1:8080".parse().unwrap(),
            &["jol.mig.gov.kg".into()],
            "[local] names",
        );
        assert!(names.check(&req("GET", "127.0.0.1:8080", None)).is_ok());
        assert!(names.check(&req("GET", "localhost:8080", None)).is_ok());
        assert!(names.check(&req("GET", "[::1]:8080", None)).is_ok());
        assert!(names.check(&req("GET", "JOL.mig.gov.kg", None)).is_ok());
        let rebound = names
            .check(&req("GET", "evil.example:8080", None))
            .unwrap_err();
        assert_eq!(rebound.status, 421);
        assert!(
            rebound.detail.contains("[local] names"),
            "{}",
            rebound.detail
        );
        assert!(names
            .check(&req(
                "POST",
                "127.0.0.1:8080",
                Some("http://127.0.0.1:8080")
            ))
            .is_ok());
        let cross = names
            .check(&req("POST", "127.0.0.1:8080", Some("http://evil.example")))
            .unwrap_err();
        assert_eq!(cross.status, 403);
        // Reading with a foreign Origin is the browser's same-origin policy's business.
        assert!(names
            .check(&req("GET", "127.0.0.1:8080", Some("http://evil.example")))
            .is_ok());
    }
}
