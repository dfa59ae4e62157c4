//! The provider face: what the node's X-Road security server calls. The security server maps
//! `/r1/{this member}/{service code}/{path}` to the service's base URL registered on it
//! (`https://this-node:port/{service code}`) and calls `{base URL}{path}` with the X-Road
//! headers; so this listener serves, per service:
//!
//! | service | paths |
//! |---|---|
//! | `jol-feed` | `/v1/feed`, `/v1/manifest`, `/v1/log/checkpoint`, `/v1/log/tile/…`, `/v1/proof/…` |
//! | `jol-persons` | `/v1/persons/{pin}` |
//! | `jol-kpi` | `/v1/kpi` |
//!
//! and `/v1/openapi.json` under each. The caller is `X-Road-Client`, believed because only the
//! security server can reach this listener (see [`crate::net::server::Gate`]: pinned TLS, or
//! plain HTTP from the addresses the operator named, never a default); it is authorised
//! against the manifest exactly as a peer member is. A request must name one of the face's
//! names in `Host` (421 otherwise, as on the local API: [`HostNames`]), and under an expired
//! manifest every service but the manifest answers 503
//! ([`crate::federation::feed::serving_manifest`]).

use std::sync::Arc;

use hyper::body::Incoming;
use hyper::{HeaderMap, Method, Request, StatusCode};

use crate::api::origin::HostNames;
use crate::api::registry::{date_param, kpi_answer, valid_pin, views_whole, Cells};
use crate::event::identifiers::MemberId;
use crate::event::schema::EventType;
use crate::federation::feed::{serving_manifest, PeerApi};
use crate::net::http::{
    self, storage_problem_for_peer as storage_problem, Problem, ProblemKind, Response,
};
use crate::net::xroad::{header, Service};
use crate::policy::access::{self, Access, Official, Outcome, Reader};
use crate::policy::consent::{self, Audience, ConsentState, Facts};

/// What the provider face's handlers share.
pub(crate) struct ProviderFace {
    pub feed: Arc<PeerApi>,
    /// The longest long-poll the face holds.
    pub max_wait_secs: u64,
    /// The names the face answers to (`Host`).
    pub names: HostNames,
}

impl ProviderFace {
    /// Route one call from the security server.
    pub(crate) async fn handle(self: Arc<Self>, req: Request<Incoming>) -> Response {
        if let Err(p) = self.names.check(&req) {
            return p.response();
        }
        let path = req.uri().path().to_string();
        let Some((service, resource)) = resource_of(&path) else {
            return not_found().response();
        };
        if req.method() == Method::GET && resource == "/openapi.json" {
            return http::json(StatusCode::OK, &super::openapi::service(service));
        }
        let client = match client_of(req.headers()) {
            Ok(c) => c,
            Err(p) => return p.response(),
        };
        let official = official_of(req.headers());
        let answer = match service {
            Service::Feed => {
                return self
                    .feed
                    .serve(&client, &official, req, resource, self.max_wait_secs)
                    .await
            }
            // A store read with a durable access-log write, and a scan of every view: off the
            // runtime's other tasks, which it hands to its other threads meanwhile.
            Service::Persons => match resource.strip_prefix("/persons/") {
                Some(pin) if req.method() == Method::GET => {
                    crate::cores::blocking(|| self.person(&req, &client, pin))
                }
                _ => Err(not_found()),
            },
            Service::Kpi if req.method() == Method::GET && resource == "/kpi" => {
                crate::cores::blocking(|| self.kpi(&req, &client))
            }
            Service::Kpi => Err(not_found()),
        };
        answer.unwrap_or_else(|p| p.response())
    }

    /// `jol-persons`: the person's view as this member recorded it, for a client that reads
    /// this member's types and whom the person's consent names for a purpose of its grant (the
    /// one decision, `policy::consent::may_serve`, per event). The official (`X-Road-UserId`)
    /// and the issue (`X-Road-Issue`) are required and written to the person's access log with
    /// the message id, the client and its grant's purposes. A person this member recorded
    /// nothing about and one the client may not read get the same answer, both logged.
    fn person(
        &self,
        req: &Request<Incoming>,
        client: &MemberId,
        pin: &str,
    ) -> Result<Response, Problem> {
        let manifest = serving_manifest(&self.feed.trust)?;
        let pin = valid_pin(pin)?;
        let official = official_of(req.headers());
        required_header(req.headers(), header::USER_ID)?;
        required_header(req.headers(), header::ISSUE)?;
        let store = &self.feed.store;
        let me = &self.feed.member;
        let readable: Vec<(EventType, Vec<String>)> = EventType::ALL
            .into_iter()
            .filter(|t| manifest.may_publish(me, *t))
            .filter_map(|t| Some((t, manifest.reader_purposes(client, t)?.to_vec())))
            .collect();
        if readable.is_empty() {
            return Err(Problem::new(
                ProblemKind::NotAReader,
                "the manifest grants the client none of this member's event types",
            ));
        }
        let mut purposes: Vec<String> = readable.iter().flat_map(|(_, p)| p.clone()).collect();
        purposes.sort_unstable();
        purposes.dedup();
        let who = Reader::member(client, Some(purposes.join(", ")), &official);
        let what = "registry view through X-Road (jol-persons)";
        views_whole(store).map_err(Problem::for_peer)?;
        let view = crate::registry::projector::person(store, &pin).map_err(storage_problem)?;
        let state: Option<ConsentState> = store.consent(pin.expose()).map_err(storage_problem)?;
        let own: Vec<u64> = view
            .iter()
            .flat_map(|v| &v.events)
            .filter(|e| &e.source == me)
            .filter_map(|e| {
                let (t, purposes) = readable.iter().find(|(t, _)| *t == e.event_type)?;
                let facts = Facts {
                    source: e.source.as_str(),
                    event_type: *t,
                    carries: None,
                    attests: false,
                };
                let to = Audience::Member {
                    id: client,
                    purposes,
                };
                consent::may_serve(facts, state.as_ref(), to).ok()?;
                Some(e.position)
            })
            .collect();
        if own.is_empty() {
            let outcome = match view {
                Some(_) => Outcome::RefusedNoConsent,
                None => Outcome::RefusedNothingHeld,
            };
            access::log(store, &who, [Access::new(&pin, what, outcome)])
                .map_err(storage_problem)?;
            return Err(Problem::new(
                ProblemKind::PersonNotFound,
                "this member holds nothing about that person that the client may read; the request is in the person's access log",
            ));
        }
        let served = crate::registry::projector::project_positions_for(store, &pin, &own, |t| {
            manifest.reader_fields(client, t)
        })
        .map_err(storage_problem)?;
        access::record_reads(store, &who, what, [&pin]).map_err(storage_problem)?;
        let as_of = date_param(req.uri().query(), "asOf")?
            .unwrap_or_else(|| time::OffsetDateTime::now_utc().date());
        let mut body = serde_json::to_value(&served).unwrap_or_default();
        body["derived"] = serde_json::to_value(served.derive(as_of)).unwrap_or_default();
        Ok(http::json(StatusCode::OK, &body))
    }

    /// `jol-kpi`: the KPI report for any member of the federation, small cells always
    /// suppressed.
    fn kpi(&self, req: &Request<Incoming>, client: &MemberId) -> Result<Response, Problem> {
        let manifest = serving_manifest(&self.feed.trust)?;
        if manifest.member(client).is_none() {
            return Err(Problem::new(
                ProblemKind::NotAMember,
                "the client is not a member in the manifest",
            ));
        }
        kpi_answer(
            &self.feed.store,
            Some(&self.feed.trust),
            &self.feed.member,
            req,
            &Cells::Suppressed,
        )
        .map_err(Problem::for_peer)
    }
}

/// The service a path of this face calls and the resource under its `/v1`, from
/// `/{service code}/v1{resource}` (the security server's mapping of `/r1/{member}/{code}/…`).
pub(crate) fn resource_of(path: &str) -> Option<(Service, &str)> {
    let (code, rest) = path
        .trim_start_matches('/')
        .split_once('/')
        .unwrap_or((path.trim_start_matches('/'), ""));
    let service = Service::from_code(code)?;
    let resource = rest.strip_prefix("v1")?;
    (resource.is_empty() || resource.starts_with('/')).then_some((service, resource))
}

/// What X-Road's headers say about the official behind a call, for the access log.
pub(crate) fn official_of(headers: &HeaderMap) -> Official {
    let header = |name| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(|v| v.chars().take(MAX_HEADER_CHARS).collect::<String>())
    };
    Official {
        user: header(header::USER_ID),
        issue: header(header::ISSUE),
        message_id: header(header::ID),
    }
}

/// The most characters of an X-Road header kept in the access log.
const MAX_HEADER_CHARS: usize = 256;

/// The calling subsystem, from `X-Road-Client`.
pub(crate) fn client_of(headers: &HeaderMap) -> Result<MemberId, Problem> {
    let value = required_header(headers, header::CLIENT)?;
    value.parse().map_err(|e| {
        Problem::new(
            ProblemKind::BadClient,
            format!("X-Road-Client must be INSTANCE/CLASS/MEMBER/SUBSYSTEM: {e}"),
        )
    })
}

fn required_header(headers: &HeaderMap, name: &str) -> Result<String, Problem> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.trim().is_empty())
        .map(String::from)
        .ok_or_else(|| {
            Problem::new(
                ProblemKind::MissingHeader,
                format!("this service needs the {name} header"),
            )
            .with("header", name.into())
        })
}

/// An unknown service resource. The path is not repeated: a person's resource carries a PIN,
/// and the answer goes through both security servers' message logs.
fn not_found() -> Problem {
    Problem::new(
        ProblemKind::NotFound,
        "no service resource at this path (each service's resources are in its /openapi.json)",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_official_is_logged_trimmed_and_never_blank() {
        // Found by fuzz/fuzz_targets/xroad_face.rs's rule: 256 blanks and a name were kept as
        // 256 blanks (cut to the length kept before the blanks were looked at).
        let mut headers = HeaderMap::new();
        let padded = format!("{}EE1234", " ".repeat(300));
        headers.insert(header::USER_ID, padded.parse().unwrap());
        headers.insert(header::ISSUE, "   ".parse().unwrap());
        let official = official_of(&headers);
        assert_eq!(official.user.as_deref(), Some("EE1234"));
        assert_eq!(official.issue, None);
        let long = "x".repeat(1000);
        headers.insert(header::ID, long.parse().unwrap());
        assert_eq!(
            official_of(&headers).message_id.map(|m| m.len()),
            Some(MAX_HEADER_CHARS)
        );
    }

    #[test]
    fn a_path_names_a_service_and_a_resource_under_v1() {
        assert_eq!(
            resource_of("/jol-feed/v1/feed"),
            Some((Service::Feed, "/feed"))
        );
        assert_eq!(resource_of("/jol-kpi/v1"), Some((Service::Kpi, "")));
        for path in [
            "/jol-feed/v1feed",
            "/jol-feed",
            "/other/v1/feed",
            "/jol-persons/v2/x",
            "",
        ] {
            assert_eq!(resource_of(path), None, "{path}");
        }
    }
}
