//! The issuer's public listener (`[credentials] public_listen`, reached at `[credentials]
//! issuer` through the agency's proxy): what anyone checking a credential needs, and nothing
//! personal. Its routes, all `GET`, each in [`PublicRoute`]:
//!
//! - `/.well-known/jwt-vc-issuer` (+ the issuer's path): the issuer metadata, its URL and JWKS;
//! - `vct/course-completion`: the credential type's metadata (names and claims in ky/ru/en);
//! - `status/1`: the status list token (`application/statuslist+jwt`);
//! - `` and `verify`: the verification page, which takes the credential from the page itself
//!   (pasted, scanned, or in the URL's fragment, which never reaches a server) and checks it in
//!   the browser against the JWKS above.
//!
//! The last three are under the issuer URL's path. Everything here is the same for every caller
//! and carries no person: the status list is bits, the credentials stay with their holders.

use std::sync::Arc;

use hyper::body::Incoming;
use hyper::header::{HeaderValue, CACHE_CONTROL};
use hyper::{Method, Request, StatusCode};
use serde_json::{json, Value};

use super::issuer::Issuer;
use crate::net::http::{self, Problem, ProblemKind, Response};

/// The type metadata's path under the issuer URL.
pub const VCT_PATH: &str = "vct/course-completion";
/// The status list's path under the issuer URL.
pub const STATUS_PATH: &str = "status/1";
/// The verification page.
pub const PAGE: &str = include_str!("verify_page/index.html");

/// A route of the public listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PublicRoute {
    /// The issuer metadata, `/.well-known/jwt-vc-issuer`.
    Metadata,
    /// The credential type's metadata, at the `vct` URL.
    TypeMetadata,
    /// The status list token.
    StatusList,
    /// The verification page.
    Page,
}

impl PublicRoute {
    /// Every route, once (a test walks them all).
    pub const ALL: [PublicRoute; 4] = [
        PublicRoute::Metadata,
        PublicRoute::TypeMetadata,
        PublicRoute::StatusList,
        PublicRoute::Page,
    ];

    /// The route at `path` of an issuer whose metadata is at `metadata_path` and whose URL has
    /// the path `base` (`""` for none).
    fn of(path: &str, metadata_path: &str, base: &str) -> Option<PublicRoute> {
        if path == metadata_path {
            return Some(PublicRoute::Metadata);
        }
        let rest = path.strip_prefix(base)?;
        match rest.trim_start_matches('/') {
            VCT_PATH => Some(PublicRoute::TypeMetadata),
            STATUS_PATH => Some(PublicRoute::StatusList),
            "" | "verify" => Some(PublicRoute::Page),
            _ => None,
        }
    }

    /// The path this route is served at by the issuer of `config`.
    pub fn path(self, config: &super::CredentialsConfig) -> String {
        let base = config.issuer_path();
        match self {
            PublicRoute::Metadata => config.metadata_path(),
            PublicRoute::TypeMetadata => format!("{base}/{VCT_PATH}"),
            PublicRoute::StatusList => format!("{base}/{STATUS_PATH}"),
            PublicRoute::Page => format!("{base}/verify"),
        }
    }
}

/// Answer one request of the public listener.
pub async fn handle(issuer: Arc<Issuer>, req: Request<Incoming>) -> Response {
    let path = req.uri().path();
    let route = PublicRoute::of(
        path,
        &issuer.config.metadata_path(),
        issuer.config.issuer_path(),
    );
    let answer = match (route, req.method()) {
        (Some(route), &Method::GET) => Ok(serve(&issuer, route).await),
        (Some(_), method) => Err(Problem::new(
            ProblemKind::MethodNotAllowed,
            format!("{method} is not allowed here: every resource of the issuer is read with GET"),
        )),
        (None, _) => Err(Problem::new(
            ProblemKind::NotFound,
            "no resource of the issuer at this path",
        )),
    };
    answer.unwrap_or_else(|p| p.response())
}

async fn serve(issuer: &Arc<Issuer>, route: PublicRoute) -> Response {
    let mut response = match route {
        PublicRoute::Metadata => http::json(StatusCode::OK, &issuer.metadata()),
        PublicRoute::TypeMetadata => http::json(StatusCode::OK, &type_metadata(issuer)),
        PublicRoute::StatusList => match issuer.status_token_for_anyone().await {
            Ok(token) => http::with_type(StatusCode::OK, "application/statuslist+jwt", token),
            // Nothing personal in the cause, but the listener is public: said without it.
            Err(_) => Problem::new(
                ProblemKind::StorageUnavailable,
                "the status list cannot be read now; retry in a moment",
            )
            .response(),
        },
        PublicRoute::Page => http::with_type(StatusCode::OK, "text/html; charset=utf-8", PAGE),
    };
    let headers = response.headers_mut();
    // The status list changes at a revocation: a verifier must not be served an old one.
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert("access-control-allow-origin", HeaderValue::from_static("*"));
    if route == PublicRoute::Page {
        headers.insert(
            "content-security-policy",
            HeaderValue::from_static(
                "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src 'self' data:",
            ),
        );
        headers.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    }
    response
}

/// SD-JWT VC type metadata of the course-completion credential: its names and its claims in
/// ky/ru/en, and which claims the holder may leave out.
fn type_metadata(issuer: &Issuer) -> Value {
    let claim = |path: &[&str], sd: &str, [ky, ru, en]: [&str; 3]| {
        json!({"path": path, "sd": sd, "display": [
            {"lang": "ky", "label": ky}, {"lang": "ru", "label": ru}, {"lang": "en", "label": en}]})
    };
    json!({
        "vct": issuer.config.vct(),
        "name": "Course completion",
        "description": "A retraining course completed by a returnee, with its learning outcomes as ESCO skills",
        "display": [
            {"lang": "ky", "name": "Курсту аяктоо", "description": "Кайра даярдоо курсун аяктагандыгы жана анын ESCO көндүмдөрү"},
            {"lang": "ru", "name": "Окончание курса", "description": "Пройденный курс переподготовки и его результаты обучения (навыки ESCO)"},
            {"lang": "en", "name": "Course completion", "description": "A retraining course completed, with its learning outcomes as ESCO skills"}
        ],
        "claims": [
            claim(&["course", "title"], "never", ["Курс", "Курс", "Course"]),
            claim(&["course", "hours"], "never", ["Саат", "Часы", "Hours"]),
            claim(&["course", "provider"], "never", ["Окутуучу", "Организация", "Provider"]),
            claim(&["course", "completion_date"], "never", ["Аяктаган күнү", "Дата окончания", "Completed on"]),
            claim(&["learning_outcomes"], "never", ["Көндүмдөр (ESCO)", "Навыки (ESCO)", "Skills (ESCO)"]),
            claim(&["pin"], "always", ["ПИН", "ПИН", "Personal number (PIN)"]),
            claim(&["given_name"], "always", ["Аты", "Имя", "Given name"]),
            claim(&["family_name"], "always", ["Фамилиясы", "Фамилия", "Family name"]),
            claim(&["birthdate"], "always", ["Туулган күнү", "Дата рождения", "Birth date"]),
        ],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_is_found_at_its_path_and_nothing_else_is() {
        let of = |p: &str| PublicRoute::of(p, "/.well-known/jwt-vc-issuer/edu", "/edu");
        assert_eq!(
            of("/.well-known/jwt-vc-issuer/edu"),
            Some(PublicRoute::Metadata)
        );
        assert_eq!(
            of("/edu/vct/course-completion"),
            Some(PublicRoute::TypeMetadata)
        );
        assert_eq!(of("/edu/status/1"), Some(PublicRoute::StatusList));
        assert_eq!(of("/edu/verify"), Some(PublicRoute::Page));
        assert_eq!(of("/edu"), Some(PublicRoute::Page));
        for none in [
            "/status/1",
            "/edu/status/2",
            "/edu/credentials",
            "/.well-known/jwt-vc-issuer",
        ] {
            assert_eq!(of(none), None, "{none}");
        }
    }
}
