//! The local API's routes, in one table: each route's method and path, who may call it, what it
//! answers. [`access_of`] decides access from it, and the OpenAPI description
//! ([`super::openapi`]) is generated from it, so the two cannot drift apart.

use hyper::Method;

use super::tokens::Scope;

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// No token: `/healthz` and the dashboard's sign-in.
    Open,
    /// A valid token, with this scope (`None`: any scope).
    Token(Option<Scope>),
    /// No such route.
    Unknown,
}

/// What a successful answer carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Body {
    /// JSON described by this component schema.
    Json(&'static str),
    /// A web page.
    Html,
    /// Prometheus text.
    Metrics,
    /// A redirect (`Location`).
    Redirect,
}

/// One route.
#[derive(Debug, Clone, Copy)]
pub struct Route {
    pub method: &'static str,
    /// The path, with `{name}` for a path parameter.
    pub path: &'static str,
    pub access: Access,
    pub summary: &'static str,
    /// The success status and what it carries.
    pub ok: (u16, Body),
    /// The refusals this route may answer besides those of every guarded route (problem+json).
    pub refusals: &'static [u16],
    /// Query parameters: name, and whether it is an integer (else a string).
    pub query: &'static [(&'static str, Param)],
    /// The request body's component schema, for a POST.
    pub request: Option<&'static str>,
}

/// The kind of a query parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Param {
    Integer,
    /// An integer the route cannot do without.
    RequiredInteger,
    Date,
    Text,
}

const PAGE: &[(&str, Param)] = &[("after", Param::Integer), ("limit", Param::Integer)];
const WRITE: &[u16] = &[400, 408, 409, 413, 415, 422, 503, 507];

/// Every route of the local API.
#[rustfmt::skip]
pub const ROUTES: &[Route] = &[
    Route { method: "GET", path: "/healthz", access: Access::Open, summary: "Liveness", ok: (200, Body::Json("Health")), refusals: &[], query: &[], request: None },
    Route { method: "GET", path: "/", access: Access::Open, summary: "The dashboard (without a session: to /signin)", ok: (200, Body::Html), refusals: &[303], query: &[], request: None },
    Route { method: "GET", path: "/signin", access: Access::Open, summary: "The dashboard's sign-in page", ok: (200, Body::Html), refusals: &[], query: &[], request: None },
    Route { method: "POST", path: "/signin", access: Access::Open, summary: "Sign in to the dashboard with a token (form field `token`)", ok: (303, Body::Redirect), refusals: &[400, 401, 403, 408, 413, 429], query: &[], request: Some("SignIn") },
    Route { method: "POST", path: "/signout", access: Access::Open, summary: "End the dashboard session", ok: (303, Body::Redirect), refusals: &[], query: &[], request: None },
    Route { method: "GET", path: "/readyz", access: Access::Token(Some(Scope::Monitor)), summary: "Readiness: store, manifest, peers, warnings", ok: (200, Body::Json("Ready")), refusals: &[503], query: &[], request: None },
    Route { method: "GET", path: "/metrics", access: Access::Token(Some(Scope::Monitor)), summary: "Prometheus metrics", ok: (200, Body::Metrics), refusals: &[], query: &[], request: None },
    Route { method: "GET", path: "/openapi.json", access: Access::Open, summary: "This description (OpenAPI 3.1)", ok: (200, Body::Json("OpenApi")), refusals: &[], query: &[], request: None },
    Route { method: "GET", path: "/api/v1/session", access: Access::Token(None), summary: "The caller's token: name, scopes, purpose", ok: (200, Body::Json("Session")), refusals: &[], query: &[], request: None },
    Route { method: "POST", path: "/api/v1/events", access: Access::Token(Some(Scope::Publish)), summary: "Publish one event", ok: (201, Body::Json("Published")), refusals: WRITE, query: &[], request: Some("PublishRequest") },
    Route { method: "POST", path: "/api/v1/events/batch", access: Access::Token(Some(Scope::Publish)), summary: "Publish up to 1000 events in one group commit", ok: (200, Body::Json("BatchAnswer")), refusals: WRITE, query: &[], request: Some("BatchRequest") },
    Route { method: "GET", path: "/api/v1/events", access: Access::Token(Some(Scope::ReadEvents)), summary: "The node's log, in order (what the token's purpose may not be served by consent is a placeholder)", ok: (200, Body::Json("EventPage")), refusals: &[400, 503], query: PAGE, request: None },
    Route { method: "GET", path: "/api/v1/events/{id}", access: Access::Token(Some(Scope::ReadEvents)), summary: "One event by id (`source` picks one when ids collide; 404 when the token may not read it)", ok: (200, Body::Json("StoredItem")), refusals: &[400, 404, 409, 503], query: &[("source", Param::Text)], request: None },
    Route { method: "GET", path: "/api/v1/quarantine", access: Access::Token(Some(Scope::ReadEvents)), summary: "Refused input with its reasons", ok: (200, Body::Json("QuarantinePage")), refusals: &[400, 503], query: PAGE, request: None },
    Route { method: "GET", path: "/api/v1/log/checkpoint", access: Access::Token(Some(Scope::ReadEvents)), summary: "The latest signed checkpoint and its co-signatures", ok: (200, Body::Json("CheckpointAnswer")), refusals: &[404, 503], query: &[], request: None },
    Route { method: "GET", path: "/api/v1/log/proof/inclusion", access: Access::Token(Some(Scope::ReadEvents)), summary: "RFC 9162 inclusion proof of a leaf", ok: (200, Body::Json("Proof")), refusals: &[400, 404, 409, 503], query: &[("leaf", Param::RequiredInteger), ("size", Param::RequiredInteger)], request: None },
    Route { method: "GET", path: "/api/v1/log/proof/consistency", access: Access::Token(Some(Scope::ReadEvents)), summary: "RFC 9162 consistency proof between two sizes", ok: (200, Body::Json("Proof")), refusals: &[400, 404, 409, 503], query: &[("from", Param::RequiredInteger), ("to", Param::RequiredInteger)], request: None },
    Route { method: "GET", path: "/api/v1/persons/{pin}", access: Access::Token(Some(Scope::ReadPersons)), summary: "A person's registry view with their competency profile (the read is access-logged first)", ok: (200, Body::Json("PersonView")), refusals: &[400, 403, 404, 503], query: &[("asOf", Param::Date)], request: None },
    Route { method: "GET", path: "/api/v1/persons/{pin}/access-log", access: Access::Token(Some(Scope::ReadPersons)), summary: "Who read the person's data, when and why (for a token that may read the person, or admin)", ok: (200, Body::Json("AccessLog")), refusals: &[400, 404, 503], query: &[], request: None },
    Route { method: "GET", path: "/api/v1/persons/{pin}/matches", access: Access::Token(Some(Scope::ReadPersons)), summary: "Open vacancies ranked for the person, each score explained (logged as a read)", ok: (200, Body::Json("Matches")), refusals: &[400, 403, 404, 503], query: &[("limit", Param::Integer)], request: None },
    Route { method: "GET", path: "/api/v1/persons/{pin}/courses", access: Access::Token(Some(Scope::ReadPersons)), summary: "Courses that teach the skills the person lacks for their best vacancies (logged as a read)", ok: (200, Body::Json("CourseSuggestions")), refusals: &[400, 403, 404, 503], query: &[], request: None },
    Route { method: "GET", path: "/api/v1/vacancies", access: Access::Token(Some(Scope::ReadEvents)), summary: "The vacancies this node holds (open ones; `open=false` for all)", ok: (200, Body::Json("Offers")), refusals: &[503], query: &[("open", Param::Text)], request: None },
    Route { method: "GET", path: "/api/v1/courses", access: Access::Token(Some(Scope::ReadEvents)), summary: "The course offers this node holds (open ones; `open=false` for all)", ok: (200, Body::Json("Offers")), refusals: &[503], query: &[("open", Param::Text)], request: None },
    Route { method: "GET", path: "/api/v1/vacancies/{id}/candidates", access: Access::Token(Some(Scope::ReadPersons)), summary: "Persons ranked for a vacancy, among those the token may see; each returned person's read is logged", ok: (200, Body::Json("Candidates")), refusals: &[400, 404, 503], query: &[("limit", Param::Integer)], request: None },
    Route { method: "GET", path: "/api/v1/skills-gap", access: Access::Token(Some(Scope::ReadKpi)), summary: "For each region: the skills open vacancies demand that returnees lack, and courses that teach them (aggregates; suppress=false needs admin and is logged)", ok: (200, Body::Json("SkillsGap")), refusals: &[403, 503], query: &[("suppress", Param::Text)], request: None },
    Route { method: "GET", path: "/api/v1/kpi", access: Access::Token(Some(Scope::ReadKpi)), summary: "The reintegration KPIs (JSON, or CSV with Accept: text/csv; suppress=false needs admin and is logged)", ok: (200, Body::Json("KpiReport")), refusals: &[400, 403, 503], query: &[("asOf", Param::Date), ("from", Param::Date), ("to", Param::Date), ("structureAt", Param::Date), ("cohort", Param::Text), ("breakdown", Param::Text), ("suppress", Param::Text)], request: None },
];

/// The route `method` and `segments` (the path split at `/`) name, if any.
pub fn route_of(method: &Method, segments: &[&str]) -> Option<&'static Route> {
    ROUTES
        .iter()
        .find(|r| r.method == method.as_str() && matches(r.path, segments))
}

/// Who may call `method` on the path of `segments`.
pub fn access_of(method: &Method, segments: &[&str]) -> Access {
    route_of(method, segments).map_or(Access::Unknown, |r| r.access)
}

/// Whether a path template (`/api/v1/persons/{pin}`) matches the path's segments.
fn matches(template: &str, segments: &[&str]) -> bool {
    let parts: Vec<&str> = template.trim_matches('/').split('/').collect();
    parts.len() == segments.len()
        && parts
            .iter()
            .zip(segments)
            .all(|(p, s)| (p.starts_with('{') && !s.is_empty()) || p == s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(path: &str) -> Vec<&str> {
        path.trim_matches('/').split('/').collect()
    }

    #[test]
    fn templates_match_their_paths_only() {
        let get = Method::GET;
        assert_eq!(
            access_of(&get, &split("/api/v1/persons/21503199012345")),
            Access::Token(Some(Scope::ReadPersons))
        );
        assert_eq!(
            access_of(&get, &split("/api/v1/persons/21503199012345/access-log")),
            Access::Token(Some(Scope::ReadPersons))
        );
        assert_eq!(access_of(&get, &split("/api/v1/persons")), Access::Unknown);
        assert_eq!(access_of(&get, &split("/")), Access::Open);
        assert_eq!(
            access_of(&Method::DELETE, &split("/api/v1/events")),
            Access::Unknown
        );
        assert_eq!(
            access_of(&Method::POST, &split("/api/v1/events/batch")),
            Access::Token(Some(Scope::Publish))
        );
        assert_eq!(
            access_of(&get, &split("/api/v1/events/batch")),
            Access::Token(Some(Scope::ReadEvents)),
            "GET of an id that happens to be `batch`: a 400, not a publish"
        );
    }

    #[test]
    fn every_route_is_listed_once() {
        for (i, a) in ROUTES.iter().enumerate() {
            for b in &ROUTES[i + 1..] {
                assert!(
                    a.method != b.method || a.path != b.path,
                    "{} {} twice",
                    a.method,
                    a.path
                );
            }
        }
    }
}
