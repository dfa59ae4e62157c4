//! The local API's routes, in one enum: [`Route`] has one variant per route, carrying its path
//! parameters. [`Route::of`] is the one place a request's method and path are matched;
//! [`Route::spec`] says, for each variant, its path template, who may call it and what it
//! answers. The handlers dispatch on the variant (`super::LocalApi::handle`), access is checked
//! from its spec before, and the OpenAPI description ([`super::openapi`]) is generated from the
//! specs of [`Route::ALL`], so none of the three can drift from the others, and a route without
//! a spec or a handler does not compile.

use hyper::Method;

use super::tokens::Scope;

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    /// No token: `/healthz` and the dashboard's sign-in.
    Open,
    /// A valid token, with this scope (`None`: any scope).
    Token(Option<Scope>),
}

/// What a successful answer carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Body {
    /// JSON described by this component schema.
    Json(&'static str),
    /// A web page.
    Html,
    /// Prometheus text.
    Metrics,
    /// A redirect (`Location`).
    Redirect,
    /// A signed note (c2sp.org/signed-note), `text/plain; charset=utf-8`.
    Note,
    /// Raw bytes, `application/octet-stream` (a hash tile).
    Bytes,
}

/// The kind of a query parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Param {
    Integer,
    /// An integer the route cannot do without.
    RequiredInteger,
    Date,
    Text,
}

/// A route of the local API, with its path parameters (as the request spelled them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Route<'a> {
    Healthz,
    Dashboard,
    SignInPage,
    SignIn,
    SignOut,
    Readyz,
    Metrics,
    OpenApi,
    Session,
    Publish,
    PublishBatch,
    Events,
    Event {
        id: &'a str,
    },
    Quarantine,
    Checkpoint,
    /// A hash tile: the path segments after `tile/` (`<L>/<N>[.p/<W>]`, `N` itself in
    /// segments).
    Tile {
        tile: &'a [&'a str],
    },
    InclusionProof,
    ConsistencyProof,
    Person {
        pin: &'a str,
    },
    AccessLog {
        pin: &'a str,
    },
    Matches {
        pin: &'a str,
    },
    PersonCourses {
        pin: &'a str,
    },
    Erase {
        pin: &'a str,
    },
    Erasure {
        id: &'a str,
    },
    PersonCredentials {
        pin: &'a str,
    },
    RevokeCredential {
        id: &'a str,
    },
    Vacancies,
    Courses,
    Candidates {
        id: &'a str,
    },
    SkillsGap,
    Kpi,
    KpiReports,
    KpiReport {
        month: &'a str,
    },
}

/// What a route is: its method and path, who may call it, what it answers.
#[derive(Debug, Clone)]
pub(crate) struct Spec {
    pub(crate) method: Method,
    /// The path, with `{name}` for a path parameter.
    pub(crate) path: &'static str,
    pub(crate) access: Access,
    pub(crate) summary: &'static str,
    /// The success status and what it carries.
    pub(crate) ok: (u16, Body),
    /// The refusals this route may answer besides those of every guarded route (problem+json).
    pub(crate) refusals: &'static [u16],
    /// Query parameters: name, and whether it is an integer (else a string).
    pub(crate) query: &'static [(&'static str, Param)],
    /// The request body's component schema, for a POST.
    pub(crate) request: Option<&'static str>,
}

const PAGE: &[(&str, Param)] = &[("after", Param::Integer), ("limit", Param::Integer)];
const WRITE: &[u16] = &[400, 408, 409, 413, 415, 422, 503, 507];

impl<'a> Route<'a> {
    /// Every route, once, its path parameters named as in its template (`{pin}`): what the
    /// OpenAPI description lists. (`tests::every_route_is_routed_back_to_itself` checks each
    /// against [`Route::of`].)
    pub(crate) const ALL: [Route<'static>; 33] = [
        Route::Healthz,
        Route::Dashboard,
        Route::SignInPage,
        Route::SignIn,
        Route::SignOut,
        Route::Readyz,
        Route::Metrics,
        Route::OpenApi,
        Route::Session,
        Route::Publish,
        Route::PublishBatch,
        Route::Events,
        Route::Event { id: "{id}" },
        Route::Quarantine,
        Route::Checkpoint,
        Route::Tile {
            tile: &["{L}", "{N}"],
        },
        Route::InclusionProof,
        Route::ConsistencyProof,
        Route::Person { pin: "{pin}" },
        Route::AccessLog { pin: "{pin}" },
        Route::Matches { pin: "{pin}" },
        Route::PersonCourses { pin: "{pin}" },
        Route::Erase { pin: "{pin}" },
        Route::Erasure { id: "{id}" },
        Route::PersonCredentials { pin: "{pin}" },
        Route::RevokeCredential { id: "{id}" },
        Route::Vacancies,
        Route::Courses,
        Route::Candidates { id: "{id}" },
        Route::SkillsGap,
        Route::Kpi,
        Route::KpiReports,
        Route::KpiReport { month: "{month}" },
    ];

    /// The route `method` and `segments` (the path split at `/`, without its outer slashes)
    /// name, if any. A path parameter is never empty.
    pub(crate) fn of(method: &Method, segments: &'a [&'a str]) -> Option<Route<'a>> {
        use Route::*;
        // `/` is the one path with an empty segment; anywhere else one names no route.
        if segments != [""] && segments.contains(&"") {
            return None;
        }
        let route = match (method.as_str(), segments) {
            ("GET", ["healthz"]) => Healthz,
            ("GET", [""]) => Dashboard,
            ("GET", ["signin"]) => SignInPage,
            ("POST", ["signin"]) => SignIn,
            ("POST", ["signout"]) => SignOut,
            ("GET", ["readyz"]) => Readyz,
            ("GET", ["metrics"]) => Metrics,
            ("GET", ["openapi.json"]) => OpenApi,
            ("GET", ["api", "v1", "session"]) => Session,
            ("POST", ["api", "v1", "events"]) => Publish,
            ("POST", ["api", "v1", "events", "batch"]) => PublishBatch,
            ("GET", ["api", "v1", "events"]) => Events,
            ("GET", ["api", "v1", "events", id]) => Event { id },
            ("GET", ["api", "v1", "quarantine"]) => Quarantine,
            ("GET", ["api", "v1", "log", "checkpoint"]) => Checkpoint,
            ("GET", ["api", "v1", "log", "tile", tile @ ..]) if !tile.is_empty() => Tile { tile },
            ("GET", ["api", "v1", "log", "proof", "inclusion"]) => InclusionProof,
            ("GET", ["api", "v1", "log", "proof", "consistency"]) => ConsistencyProof,
            ("GET", ["api", "v1", "persons", pin]) => Person { pin },
            ("GET", ["api", "v1", "persons", pin, "access-log"]) => AccessLog { pin },
            ("GET", ["api", "v1", "persons", pin, "matches"]) => Matches { pin },
            ("GET", ["api", "v1", "persons", pin, "courses"]) => PersonCourses { pin },
            ("POST", ["api", "v1", "persons", pin, "erasure"]) => Erase { pin },
            ("GET", ["api", "v1", "erasures", id]) => Erasure { id },
            ("GET", ["api", "v1", "persons", pin, "credentials"]) => PersonCredentials { pin },
            ("POST", ["api", "v1", "credentials", id, "revocation"]) => RevokeCredential { id },
            ("GET", ["api", "v1", "vacancies"]) => Vacancies,
            ("GET", ["api", "v1", "courses"]) => Courses,
            ("GET", ["api", "v1", "vacancies", id, "candidates"]) => Candidates { id },
            ("GET", ["api", "v1", "skills-gap"]) => SkillsGap,
            ("GET", ["api", "v1", "kpi"]) => Kpi,
            ("GET", ["api", "v1", "kpi", "reports"]) => KpiReports,
            ("GET", ["api", "v1", "kpi", "reports", month]) => KpiReport { month },
            _ => return None,
        };
        Some(route)
    }

    /// Who may call the route.
    pub(crate) fn access(&self) -> Access {
        self.spec().access
    }

    /// The route's method, path template, access and answers.
    #[rustfmt::skip]
    pub(crate) fn spec(&self) -> Spec {
        use Route::*;
        match self {
            Healthz => Spec { method: Method::GET, path: "/healthz", access: Access::Open, summary: "Liveness", ok: (200, Body::Json("Health")), refusals: &[], query: &[], request: None },
            Dashboard => Spec { method: Method::GET, path: "/", access: Access::Open, summary: "The dashboard (without a session: to /signin)", ok: (200, Body::Html), refusals: &[303], query: &[], request: None },
            SignInPage => Spec { method: Method::GET, path: "/signin", access: Access::Open, summary: "The dashboard's sign-in page", ok: (200, Body::Html), refusals: &[], query: &[], request: None },
            SignIn => Spec { method: Method::POST, path: "/signin", access: Access::Open, summary: "Sign in to the dashboard with a token (form field `token`)", ok: (303, Body::Redirect), refusals: &[400, 401, 403, 408, 413, 429], query: &[], request: Some("SignIn") },
            SignOut => Spec { method: Method::POST, path: "/signout", access: Access::Open, summary: "End the dashboard session", ok: (303, Body::Redirect), refusals: &[403], query: &[], request: None },
            Readyz => Spec { method: Method::GET, path: "/readyz", access: Access::Token(Some(Scope::Monitor)), summary: "Readiness: store, manifest, peers, warnings", ok: (200, Body::Json("Ready")), refusals: &[503], query: &[], request: None },
            Metrics => Spec { method: Method::GET, path: "/metrics", access: Access::Token(Some(Scope::Monitor)), summary: "Prometheus metrics", ok: (200, Body::Metrics), refusals: &[], query: &[], request: None },
            OpenApi => Spec { method: Method::GET, path: "/openapi.json", access: Access::Open, summary: "This description (OpenAPI 3.1)", ok: (200, Body::Json("OpenApi")), refusals: &[], query: &[], request: None },
            Session => Spec { method: Method::GET, path: "/api/v1/session", access: Access::Token(None), summary: "The caller's token: name, scopes, purpose", ok: (200, Body::Json("Session")), refusals: &[], query: &[], request: None },
            Publish => Spec { method: Method::POST, path: "/api/v1/events", access: Access::Token(Some(Scope::Publish)), summary: "Publish one event", ok: (201, Body::Json("Published")), refusals: WRITE, query: &[], request: Some("PublishRequest") },
            PublishBatch => Spec { method: Method::POST, path: "/api/v1/events/batch", access: Access::Token(Some(Scope::Publish)), summary: "Publish up to 1000 events in one group commit", ok: (200, Body::Json("BatchAnswer")), refusals: WRITE, query: &[], request: Some("BatchRequest") },
            Events => Spec { method: Method::GET, path: "/api/v1/events", access: Access::Token(Some(Scope::ReadEvents)), summary: "The node's log, in order (what the token's purpose may not be served by consent is a placeholder)", ok: (200, Body::Json("EventPage")), refusals: &[400, 503], query: PAGE, request: None },
            Event { .. } => Spec { method: Method::GET, path: "/api/v1/events/{id}", access: Access::Token(Some(Scope::ReadEvents)), summary: "One event by id (`source` picks one when ids collide; 404 when the token may not read it)", ok: (200, Body::Json("StoredItem")), refusals: &[400, 404, 409, 503], query: &[("source", Param::Text)], request: None },
            Quarantine => Spec { method: Method::GET, path: "/api/v1/quarantine", access: Access::Token(Some(Scope::ReadEvents)), summary: "Refused input with its reasons", ok: (200, Body::Json("QuarantinePage")), refusals: &[400, 503], query: PAGE, request: None },
            Checkpoint => Spec { method: Method::GET, path: "/api/v1/log/checkpoint", access: Access::Token(None), summary: "The latest checkpoint (c2sp.org/tlog-checkpoint): a signed note with the log's signature and every witness co-signature this node holds", ok: (200, Body::Note), refusals: &[404, 503], query: &[], request: None },
            Tile { .. } => Spec { method: Method::GET, path: "/api/v1/log/tile/{L}/{N}", access: Access::Token(None), summary: "A hash tile of the checkpointed tree (c2sp.org/tlog-tiles: `N` as `x001/x234/067`, a partial tile as `{N}.p/{W}`); entry bundles are not served", ok: (200, Body::Bytes), refusals: &[400, 404, 503], query: &[], request: None },
            InclusionProof => Spec { method: Method::GET, path: "/api/v1/log/proof/inclusion", access: Access::Token(Some(Scope::ReadEvents)), summary: "RFC 9162 inclusion proof of a leaf", ok: (200, Body::Json("Proof")), refusals: &[400, 404, 409, 503], query: &[("leaf", Param::RequiredInteger), ("size", Param::RequiredInteger)], request: None },
            ConsistencyProof => Spec { method: Method::GET, path: "/api/v1/log/proof/consistency", access: Access::Token(Some(Scope::ReadEvents)), summary: "RFC 9162 consistency proof between two sizes of the event log, or of the side log `log` names (jol-quarantine, jol-access)", ok: (200, Body::Json("Proof")), refusals: &[400, 404, 409, 503], query: &[("from", Param::RequiredInteger), ("to", Param::RequiredInteger), ("log", Param::Text)], request: None },
            Person { .. } => Spec { method: Method::GET, path: "/api/v1/persons/{pin}", access: Access::Token(Some(Scope::ReadPersons)), summary: "A person's registry view with their competency profile (the read is access-logged first)", ok: (200, Body::Json("PersonView")), refusals: &[400, 403, 404, 503], query: &[("asOf", Param::Date)], request: None },
            AccessLog { .. } => Spec { method: Method::GET, path: "/api/v1/persons/{pin}/access-log", access: Access::Token(Some(Scope::ReadPersons)), summary: "Who read the person's data, when and why (for a token that may read the person, or admin)", ok: (200, Body::Json("AccessLog")), refusals: &[400, 404, 503], query: &[], request: None },
            Matches { .. } => Spec { method: Method::GET, path: "/api/v1/persons/{pin}/matches", access: Access::Token(Some(Scope::ReadPersons)), summary: "Open vacancies ranked for the person, each score explained (logged as a read)", ok: (200, Body::Json("Matches")), refusals: &[400, 403, 404, 503], query: &[("limit", Param::Integer)], request: None },
            Erase { .. } => Spec { method: Method::POST, path: "/api/v1/persons/{pin}/erasure", access: Access::Token(Some(Scope::Admin)), summary: "Erase the person's events this node published, here and at every member that received them (the signed parts stay: proofs keep verifying)", ok: (202, Body::Json("ErasureRecord")), refusals: &[400, 404, 408, 413, 415, 422, 503], query: &[], request: Some("ErasureRequest") },
            Erasure { .. } => Spec { method: Method::GET, path: "/api/v1/erasures/{id}", access: Access::Token(Some(Scope::Admin)), summary: "An erasure's record: what was erased, under which legal basis, and when each holder confirmed", ok: (200, Body::Json("ErasureRecord")), refusals: &[400, 404, 503], query: &[], request: None },
            PersonCourses { .. } => Spec { method: Method::GET, path: "/api/v1/persons/{pin}/courses", access: Access::Token(Some(Scope::ReadPersons)), summary: "Courses that teach the skills the person lacks for their best vacancies (logged as a read)", ok: (200, Body::Json("CourseSuggestions")), refusals: &[400, 403, 404, 503], query: &[], request: None },
            PersonCredentials { .. } => Spec { method: Method::GET, path: "/api/v1/persons/{pin}/credentials", access: Access::Token(Some(Scope::ReadPersons)), summary: "The credentials this node issued to the person: each SD-JWT VC, its QR code (SVG) and status (logged as a read); each with only the disclosures whose value the view served to the token holds too (`hidden` says what is withheld and why)", ok: (200, Body::Json("Credentials")), refusals: &[400, 403, 404, 503], query: &[], request: None },
            RevokeCredential { .. } => Spec { method: Method::POST, path: "/api/v1/credentials/{id}/revocation", access: Access::Token(Some(Scope::Admin)), summary: "Revoke a credential this node issued (JSON body with a `reason`): its status list entry is set and the list re-signed; the answer names the credential and its revocation, not its content", ok: (200, Body::Json("Revoked")), refusals: &[400, 404, 408, 409, 413, 415, 422, 503], query: &[], request: Some("RevocationRequest") },
            Vacancies => Spec { method: Method::GET, path: "/api/v1/vacancies", access: Access::Token(Some(Scope::ReadEvents)), summary: "The vacancies this node holds (open ones; `open=false` for all)", ok: (200, Body::Json("Offers")), refusals: &[503], query: &[("open", Param::Text)], request: None },
            Courses => Spec { method: Method::GET, path: "/api/v1/courses", access: Access::Token(Some(Scope::ReadEvents)), summary: "The course offers this node holds (open ones; `open=false` for all)", ok: (200, Body::Json("Offers")), refusals: &[503], query: &[("open", Param::Text)], request: None },
            Candidates { .. } => Spec { method: Method::GET, path: "/api/v1/vacancies/{id}/candidates", access: Access::Token(Some(Scope::ReadPersons)), summary: "Persons ranked for a vacancy, among those the token may see; each returned person's read is logged", ok: (200, Body::Json("Candidates")), refusals: &[400, 404, 503], query: &[("limit", Param::Integer)], request: None },
            SkillsGap => Spec { method: Method::GET, path: "/api/v1/skills-gap", access: Access::Token(Some(Scope::ReadKpi)), summary: "For each region: the skills open vacancies demand that returnees lack, and courses that teach them (aggregates; suppress=false needs admin and is logged)", ok: (200, Body::Json("SkillsGap")), refusals: &[403, 503], query: &[("suppress", Param::Text)], request: None },
            Kpi => Spec { method: Method::GET, path: "/api/v1/kpi", access: Access::Token(Some(Scope::ReadKpi)), summary: "The reintegration KPIs (JSON, or CSV with Accept: text/csv; suppress=false needs admin and is logged)", ok: (200, Body::Json("KpiReport")), refusals: &[400, 403, 503], query: &[("asOf", Param::Date), ("from", Param::Date), ("to", Param::Date), ("structureAt", Param::Date), ("cohort", Param::Text), ("breakdown", Param::Text), ("suppress", Param::Text)], request: None },
            KpiReports => Spec { method: Method::GET, path: "/api/v1/kpi/reports", access: Access::Token(Some(Scope::ReadKpi)), summary: "The signed KPI report of each closed month, as it was when the month closed (never rewritten: an erasure after it does not change it)", ok: (200, Body::Json("KpiReports")), refusals: &[503], query: &[], request: None },
            KpiReport { .. } => Spec { method: Method::GET, path: "/api/v1/kpi/reports/{month}", access: Access::Token(Some(Scope::ReadKpi)), summary: "One closed month's signed KPI report (YYYY-MM): the report and its JWS", ok: (200, Body::Json("SignedKpiReport")), refusals: &[400, 404, 503], query: &[], request: None },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(path: &str) -> Vec<&str> {
        path.trim_matches('/').split('/').collect()
    }

    fn access_of(method: &Method, path: &str) -> Option<Access> {
        Route::of(method, &split(path)).map(|r| r.access())
    }

    #[test]
    fn templates_match_their_paths_only() {
        let get = Method::GET;
        assert_eq!(
            Route::of(&get, &split("/api/v1/persons/21503199012345")),
            Some(Route::Person {
                pin: "21503199012345"
            })
        );
        assert_eq!(
            access_of(&get, "/api/v1/persons/21503199012345/access-log"),
            Some(Access::Token(Some(Scope::ReadPersons)))
        );
        assert_eq!(access_of(&get, "/api/v1/persons"), None);
        assert_eq!(access_of(&get, "/api/v1/persons//matches"), None);
        assert_eq!(access_of(&get, "/"), Some(Access::Open));
        assert_eq!(access_of(&Method::DELETE, "/api/v1/events"), None);
        assert_eq!(
            Route::of(&Method::POST, &split("/api/v1/events/batch")),
            Some(Route::PublishBatch)
        );
        assert_eq!(
            Route::of(&get, &split("/api/v1/events/batch")),
            Some(Route::Event { id: "batch" }),
            "GET of an id that happens to be `batch`: a 400, not a publish"
        );
    }

    #[test]
    fn every_route_is_routed_back_to_itself() {
        for route in Route::ALL {
            let spec = route.spec();
            assert_eq!(
                Route::of(&spec.method, &split(spec.path)),
                Some(route),
                "{} {}",
                spec.method,
                spec.path
            );
        }
    }

    #[test]
    fn every_route_is_listed_once() {
        for (i, a) in Route::ALL.iter().enumerate() {
            assert!(!Route::ALL[i + 1..].contains(a), "{a:?} twice");
        }
    }
}
