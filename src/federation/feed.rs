//! The peer API (`/peer/v1/…`), served over mutual TLS to other members' nodes.
//!
//! - `GET /peer/v1/feed?after=N&limit=M&wait=S&types=a,b`: this node's own events after
//!   sequence N, in order. Events the caller may not have (type not granted, type not asked for,
//!   no consent) appear as placeholders `{sequence, withheld}` so the caller sees no gap.
//!   With `wait`, the request is held (up to 30 s) until something new is published. A page
//!   ends early, after at least one event, when the next would pass its byte budget
//!   ([`crate::budget::FEED_PAGE_BYTES`]), and so does the release log beside it: every page is
//!   one a subscriber accepts, and `next` says where the following one starts.
//! - `GET /peer/v1/manifest`: the signed manifest this node holds, so newer ones spread.
//!
//! Under an expired manifest nothing but the manifest is served to members: every other route
//! answers 503 `manifest-expired` ([`serving_manifest`], which the X-Road faces ask too).

use std::sync::Arc;
use std::time::Duration;

use hyper::body::Incoming;
use hyper::{Method, Request, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::budget::{Budget, FEED_PAGE_BYTES};
use crate::event::identifiers::{MemberId, Pin};
use crate::event::schema::EventType;
use crate::event::SignedEvent;
use crate::net::http::{self, Problem, Response};
use crate::net::metrics::Metrics;
use crate::policy::access::{Access, Official, Outcome, Reader};
use crate::policy::consent::{self, ConsentState, Withheld};
use crate::store::{Store, StoreError};
use crate::trust::manifest::{Manifest, Trust};
use crate::write::Heads;

/// Longest long-poll a peer may ask for.
pub const MAX_WAIT_SECS: u64 = 30;
/// Most events per feed page.
pub const MAX_FEED_PAGE: u64 = 1000;

/// What a feed item takes in a page beside its JWS (`{"release":N,"sequence":N,"jws":…},` or a
/// placeholder `{"sequence":N,"withheld":"…"},`), counted against the page's budget.
const ITEM_FRAMING: usize = 80;

/// The budget of one part of a feed page (its events, or its releases), `bytes` at most.
fn page_budget(bytes: usize) -> Budget {
    Budget::new(bytes).per_record(ITEM_FRAMING)
}

/// One entry of a feed page as sent.
#[derive(Serialize)]
struct FeedItem<'a> {
    /// The number in the caller's release log (release entries only).
    #[serde(skip_serializing_if = "Option::is_none")]
    release: Option<u64>,
    sequence: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    jws: Option<&'a RawValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    withheld: Option<&'static str>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct FeedPage<'a> {
    events: Vec<FeedItem<'a>>,
    next: u64,
    head: u64,
    /// The caller's release log after `released_after`, when asked for.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    released: Vec<FeedItem<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    release_head: Option<u64>,
}

/// One entry of a feed page as received.
#[derive(Debug, Deserialize)]
pub struct ReceivedItem {
    /// The number in this node's release log at the publisher (release entries only).
    #[serde(default)]
    pub release: Option<u64>,
    pub sequence: u64,
    #[serde(default)]
    pub jws: Option<Box<RawValue>>,
    #[serde(default)]
    pub withheld: Option<String>,
}

/// A feed page as received.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReceivedPage {
    pub events: Vec<ReceivedItem>,
    pub next: u64,
    pub head: u64,
    #[serde(default)]
    pub released: Vec<ReceivedItem>,
    #[serde(default)]
    pub release_head: Option<u64>,
}

/// What the peer handlers share.
pub struct PeerApi {
    pub member: MemberId,
    pub store: Store,
    pub trust: Arc<Trust>,
    pub heads: Heads,
    pub metrics: Arc<Metrics>,
}

/// Where the feed's resources live on the peer listener.
pub const PEER_PREFIX: &str = "/peer/v1";

fn not_found(path: &str) -> Problem {
    Problem::new(
        StatusCode::NOT_FOUND,
        "not-found",
        "Not found",
        format!("no peer resource at {path}"),
    )
}

fn storage(e: StoreError) -> Problem {
    http::storage_problem(e)
}

/// The manifest members may be served under now, or 503 `manifest-expired`: the one rule every
/// face that serves members asks before it serves data or proofs (the peer listener and
/// X-Road's `jol-feed` through [`PeerApi::serve`], `jol-persons`, `jol-kpi`). The manifest
/// itself stays served: a newer one is how a member recovers.
pub fn serving_manifest(trust: &Trust) -> Result<Arc<Manifest>, Problem> {
    trust.usable().map_err(|e| {
        Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "manifest-expired",
            "Manifest expired",
            e.to_string(),
        )
    })
}

impl PeerApi {
    /// A request on the peer listener: the feed's resources under `/peer/v1`.
    pub async fn handle(self: Arc<Self>, caller: MemberId, req: Request<Incoming>) -> Response {
        let path = req.uri().path().to_string();
        match path.strip_prefix(PEER_PREFIX) {
            Some(resource) => {
                self.serve(&caller, &Official::default(), req, resource, MAX_WAIT_SECS)
                    .await
            }
            None => not_found(&path).response(),
        }
    }

    /// One of the feed's resources (`/feed`, `/checkpoint`, `/proof/…`, `/cosignature`,
    /// `/manifest`) for `caller`, whichever way it came: the peer listener or X-Road's
    /// `jol-feed` service (then `official` is what X-Road's headers said, for the access log). A
    /// long-poll waits at most `max_wait` seconds. Under an expired manifest only the manifest
    /// is served.
    pub async fn serve(
        &self,
        caller: &MemberId,
        official: &Official,
        req: Request<Incoming>,
        resource: &str,
        max_wait: u64,
    ) -> Response {
        let query = req.uri().query();
        let is_manifest = (req.method(), resource) == (&Method::GET, "/manifest");
        if !is_manifest {
            if let Err(expired) = serving_manifest(&self.trust) {
                return expired.response();
            }
        }
        let result = match (req.method(), resource) {
            (&Method::GET, "/feed") => self.feed(caller, official, query, max_wait).await,
            (&Method::GET, "/checkpoint") => crate::federation::proofs::checkpoint(&self.store),
            (&Method::GET, "/proof/inclusion") => {
                crate::federation::proofs::inclusion(&self.store, query)
            }
            (&Method::GET, "/proof/event") => {
                crate::federation::proofs::event_inclusion(&self.store, &self.member, query)
            }
            (&Method::GET, "/proof/consistency") => {
                crate::federation::proofs::consistency(&self.store, query)
            }
            (&Method::POST, "/cosignature") => self.cosignature(caller, req).await,
            (&Method::GET, "/manifest") => Ok(http::with_type(
                StatusCode::OK,
                "application/jose+json",
                bytes::Bytes::copy_from_slice(&self.trust.held_bytes()),
            )),
            _ => Err(not_found(req.uri().path())),
        };
        result.unwrap_or_else(|p| p.response())
    }

    /// A witness sends its co-signature of one of this node's checkpoints.
    async fn cosignature(
        &self,
        caller: &MemberId,
        req: Request<Incoming>,
    ) -> Result<Response, Problem> {
        let body = http::read_body(req, 64 * 1024, http::BODY_DEADLINE).await?;
        let manifest = self.trust.held();
        let refused = |detail: String| {
            Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "cosignature-invalid",
                "Co-signature refused",
                detail,
            )
        };
        let c = crate::log::checkpoint::verify_cosignature(&body, &manifest)
            .map_err(|e| refused(e.to_string()))?;
        if &c.witness != caller || c.origin != self.member {
            return Err(refused(
                "a co-signature must be by the caller, of this node's checkpoint".into(),
            ));
        }
        let ours = self
            .store
            .checkpoints()
            .filter_map(Result::ok)
            .find(|(size, _)| *size == c.size)
            .and_then(|(_, b)| crate::log::checkpoint::verify_checkpoint(&b, &manifest).ok());
        if ours.map(|o| o.root) != Some(c.root.clone()) {
            return Err(refused(
                "this node signed no checkpoint with that size and root".into(),
            ));
        }
        self.store
            .put_cosignature(c.size, caller.as_str(), &body)
            .map_err(storage)?;
        Ok(http::json(
            StatusCode::CREATED,
            &serde_json::json!({"size": c.size, "witness": caller}),
        ))
    }

    async fn feed(
        &self,
        caller: &MemberId,
        official: &Official,
        query: Option<&str>,
        max_wait: u64,
    ) -> Result<Response, Problem> {
        use std::sync::atomic::Ordering::Relaxed;
        self.metrics.feed_requests.fetch_add(1, Relaxed);
        let manifest = serving_manifest(&self.trust)?;
        if manifest.readable_types(caller).is_empty() {
            return Err(Problem::new(
                StatusCode::FORBIDDEN,
                "not-a-reader",
                "Not a reader",
                "the manifest grants the caller no event type",
            ));
        }
        let after = http::query_u64(query, "after", 0)?;
        let limit = http::query_u64(query, "limit", 500)?.clamp(1, MAX_FEED_PAGE);
        let wait = http::query_u64(query, "wait", 0)?.min(max_wait);
        let requested = requested_types(query)?;

        let released_after = http::query_param(query, "released_after")
            .map(|_| http::query_u64(query, "released_after", 0))
            .transpose()?;
        let release_head = match released_after {
            Some(_) => Some(self.store.last_release(caller).map_err(storage)?),
            None => None,
        };
        let releases_waiting = release_head.zip(released_after).is_some_and(|(h, a)| h > a);
        let mut head = self.heads.own_sequence.clone();
        let mut position = self.heads.position.clone();
        position.borrow_and_update();
        if *head.borrow() <= after && wait > 0 && !releases_waiting {
            // Woken by a new own event, or by any commit when the caller follows its release log
            // (a consent received from a peer may release withheld events).
            let follows_releases = released_after.is_some();
            let _ = tokio::time::timeout(Duration::from_secs(wait), async {
                tokio::select! {
                    _ = head.wait_for(|h| *h > after) => {}
                    _ = position.changed(), if follows_releases => {}
                }
            })
            .await;
        }
        let head = *head.borrow();
        let end = head.min(after.saturating_add(limit));
        let mut events_budget = page_budget(FEED_PAGE_BYTES);
        let stored = self
            .store
            .events_of_source(&self.member, after, end, &mut events_budget)
            .map_err(storage)?;
        let releases = match released_after {
            Some(after) => self
                .store
                .releases(caller, after, limit as usize)
                .map_err(storage)?,
            None => Vec::new(),
        };
        // The releases take what the events left of the budget, and at least one.
        let mut releases_budget = page_budget(events_budget.left());
        let mut released_bytes = Vec::with_capacity(releases.len());
        for (number, position) in &releases {
            let bytes = self
                .store
                .get(*position)
                .map_err(storage)?
                .ok_or_else(|| storage(StoreError::Corrupt("a release names no event")))?;
            if !releases_budget.take(bytes.len()) {
                break;
            }
            released_bytes.push((*number, bytes));
        }
        let mut access = Vec::new();
        // Access-log what is delivered, count both; returns the withheld reason, if any.
        let mut deliver = |delivered: Result<Delivered, Withheld>| match delivered {
            Ok(d) => {
                let what = format!(
                    "event {} ({}) delivered to the reader's node",
                    d.id, d.event_type
                );
                if let Some(pin) = d.pin {
                    access.push(Access {
                        purpose: Some(d.purposes.join(", ")),
                        ..Access::new(&pin, what, Outcome::Served)
                    });
                }
                self.metrics.feed_events_delivered.fetch_add(1, Relaxed);
                None
            }
            Err(w) => {
                self.metrics.feed_events_withheld.fetch_add(1, Relaxed);
                Some(w.code())
            }
        };
        // Parsed by the writer if it was committed lately, else parsed here.
        let own: Vec<SignedEvent> = stored
            .iter()
            .map(
                |(_, position, bytes)| match self.heads.recent.get(*position) {
                    Some(signed) => Ok(signed),
                    None => parse_stored(bytes),
                },
            )
            .collect::<Result<_, _>>()?;
        let released_events: Vec<SignedEvent> = released_bytes
            .iter()
            .map(|(_, bytes)| parse_stored(bytes))
            .collect::<Result<_, _>>()?;
        let facts = self.facts(caller, &own, &stored, &released_events)?;
        let mut events = Vec::with_capacity(stored.len());
        for ((sequence, position, bytes), signed) in stored.iter().zip(&own) {
            let decision = self.decide(
                &manifest,
                caller,
                &requested,
                signed,
                Some(*position),
                &facts,
            );
            let withheld = deliver(decision);
            events.push(FeedItem {
                release: None,
                sequence: *sequence,
                jws: delivered_jws(bytes, withheld),
                withheld,
            });
        }
        let mut released = Vec::with_capacity(released_bytes.len());
        for ((number, bytes), signed) in released_bytes.iter().zip(&released_events) {
            let decision = self.decide(&manifest, caller, &None, signed, None, &facts);
            let withheld = deliver(decision);
            released.push(FeedItem {
                release: Some(*number),
                sequence: signed.sequence(),
                jws: delivered_jws(bytes, withheld),
                withheld,
            });
        }
        // The access log is durable before the data leaves the node (its flush off the runtime's
        // threads: they serve the other requests meanwhile).
        let store = self.store.clone();
        let reader = Reader::member(caller, None, official);
        tokio::task::spawn_blocking(move || crate::policy::access::log(&store, &reader, access))
            .await
            .map_err(|_| http::storage_problem("the access-log write ended before it was durable"))?
            .map_err(storage)?;
        let next = events.last().map_or(after, |e| e.sequence);
        Ok(http::json(
            StatusCode::OK,
            &FeedPage {
                events,
                next,
                head,
                released,
                release_head,
            },
        ))
    }

    /// What the page's consent decisions need from the store, read once for the whole page:
    /// each person's consent state now, and which own events were withheld from `caller`.
    fn facts(
        &self,
        caller: &MemberId,
        own: &[SignedEvent],
        stored: &[(u64, u64, Vec<u8>)],
        released: &[SignedEvent],
    ) -> Result<Facts, Problem> {
        let mut pins: Vec<&str> = own.iter().chain(released).filter_map(pin_of).collect();
        pins.sort_unstable();
        pins.dedup();
        let states: Vec<Option<ConsentState>> = self.store.consents(&pins).map_err(storage)?;
        let own_events: Vec<(&str, u64)> = own
            .iter()
            .zip(stored)
            .filter_map(|(s, (_, position, _))| pin_of(s).map(|pin| (pin, *position)))
            .collect();
        let withheld = self
            .store
            .were_withheld(caller, &own_events)
            .map_err(storage)?;
        Ok(Facts {
            consent: pins.into_iter().map(str::to_string).zip(states).collect(),
            withheld: own_events
                .iter()
                .zip(withheld)
                .filter(|(_, w)| *w)
                .map(|((_, position), _)| *position)
                .collect(),
        })
    }

    /// Whether the stored event may go to `caller`, by the page's `facts`.
    fn decide(
        &self,
        manifest: &Manifest,
        caller: &MemberId,
        requested: &Option<Vec<EventType>>,
        signed: &SignedEvent,
        position: Option<u64>,
        facts: &Facts,
    ) -> Result<Delivered, Withheld> {
        let event = signed.event();
        let Some(purposes) = manifest.reader_purposes(caller, event.event_type) else {
            return Err(Withheld::NotAuthorised);
        };
        if requested
            .as_ref()
            .is_some_and(|r| !r.contains(&event.event_type))
        {
            return Err(Withheld::NotRequested);
        }
        if !event.event_type.is_personal() {
            // Not about a person: the grant is all it takes.
            return Ok(Delivered {
                pin: None,
                id: event.id.to_string(),
                event_type: event.event_type,
                purposes: purposes.to_vec(),
            });
        }
        // A personal event names its person by PIN; without one no consent can admit it.
        let Some(pin) = consent::person_pin(&event.data).and_then(|p| p.parse::<Pin>().ok()) else {
            return Err(Withheld::NoConsent);
        };
        // An own event withheld from the caller when it was published reaches it only through
        // the caller's release log, once a consent admits it.
        if position.is_some_and(|p| facts.withheld.contains(&p)) {
            return Err(Withheld::NoConsent);
        }
        let state = facts.consent.get(pin.expose()).and_then(Option::as_ref);
        consent::decide(event, state, caller, purposes).map(|()| Delivered {
            pin: Some(pin),
            id: event.id.to_string(),
            event_type: event.event_type,
            purposes: purposes.to_vec(),
        })
    }
}

/// The PIN of a personal event (what consent applies to).
fn pin_of(s: &SignedEvent) -> Option<&str> {
    let event = s.event();
    event
        .event_type
        .is_personal()
        .then(|| consent::person_pin(&event.data))
        .flatten()
}

/// The store's answers a page's consent decisions take.
struct Facts {
    /// Each person's consent state now (`None`: no consent held).
    consent: std::collections::HashMap<String, Option<ConsentState>>,
    /// Positions of own events withheld from the reader when they were published.
    withheld: std::collections::HashSet<u64>,
}

/// A stored event, parsed once for all the feed does with it; damage is a storage failure.
fn parse_stored(bytes: &[u8]) -> Result<SignedEvent, Problem> {
    SignedEvent::from_store(bytes).map_err(|e| storage(StoreError::Corrupt(e.code())))
}

/// The stored JWS bytes as a raw JSON value, served verbatim, unless withheld.
fn delivered_jws<'a>(bytes: &'a [u8], withheld: Option<&str>) -> Option<&'a RawValue> {
    if withheld.is_some() {
        return None;
    }
    std::str::from_utf8(bytes)
        .ok()
        .and_then(|s| serde_json::from_str::<&RawValue>(s).ok())
}

/// What the access log needs of a delivered event.
struct Delivered {
    /// The person the event is about (none for a vacancy or a course offer).
    pin: Option<Pin>,
    id: String,
    event_type: EventType,
    purposes: Vec<String>,
}

fn requested_types(query: Option<&str>) -> Result<Option<Vec<EventType>>, Problem> {
    let Some(list) = http::query_param(query, "types").filter(|l| !l.is_empty()) else {
        return Ok(None);
    };
    list.split(',')
        .map(|t| {
            t.parse::<EventType>().map_err(|e| {
                Problem::new(
                    StatusCode::BAD_REQUEST,
                    "bad-query",
                    "Bad query parameter",
                    format!("types: {e}"),
                )
            })
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}
