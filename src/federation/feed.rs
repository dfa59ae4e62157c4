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
//! - `GET /peer/v1/log/checkpoint`, `GET /peer/v1/log/tile/…`, `GET /peer/v1/proof/…`: the
//!   verifiable log ([`crate::federation::proofs`]).
//! - `POST /peer/v1/witness/add-checkpoint`: the tlog-witness this node is for the other
//!   members' logs ([`crate::federation::witness_server`]).
//!
//! Under an expired manifest nothing but the manifest is served to members: every other route
//! answers 503 `manifest-expired` ([`serving_manifest`], which the X-Road faces ask too).

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use hyper::body::Incoming;
use hyper::{Method, Request, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use std::borrow::Cow;

use crate::budget::{Budget, FEED_PAGE_BYTES};
use crate::event::disclosure::Fields;
use crate::event::identifiers::{MemberId, Pin};
use crate::event::schema::EventType;
use crate::event::SignedEvent;
use crate::net::http::{self, Problem, ProblemKind, Response};
use crate::net::metrics::Metrics;
use crate::policy::access::{Access, Official, Outcome, Reader};
use crate::policy::consent::{self, Admitted, ConsentState, Withheld};
use crate::store::{Store, StoreError};
use crate::trust::manifest::{Manifest, Trust};
use crate::write::Heads;

/// Longest long-poll a peer may ask for.
pub(crate) const MAX_WAIT_SECS: u64 = 30;
/// Most events per feed page.
pub(crate) const MAX_FEED_PAGE: u64 = 1000;

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
    jws: Option<Cow<'a, RawValue>>,
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
pub(crate) struct ReceivedItem {
    /// The number in this node's release log at the publisher (release entries only).
    #[serde(default)]
    pub(crate) release: Option<u64>,
    pub(crate) sequence: u64,
    #[serde(default)]
    pub(crate) jws: Option<Box<RawValue>>,
    #[serde(default)]
    pub(crate) withheld: Option<String>,
}

/// A feed page as received.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ReceivedPage {
    pub(crate) events: Vec<ReceivedItem>,
    /// Where the page ends (the subscriber goes by its items; the tests read it).
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) next: u64,
    pub(crate) head: u64,
    #[serde(default)]
    pub(crate) released: Vec<ReceivedItem>,
    /// The newest release for the reader (the subscriber goes by the releases; the tests read
    /// it).
    #[serde(default)]
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) release_head: Option<u64>,
}

/// What the peer handlers share.
pub(crate) struct PeerApi {
    pub(crate) member: MemberId,
    pub(crate) store: Store,
    pub(crate) trust: Arc<Trust>,
    pub(crate) heads: Heads,
    pub(crate) metrics: Arc<Metrics>,
    /// The tlog-witness this node is for the other members' logs (`add-checkpoint`).
    pub(crate) witness: Option<Arc<crate::federation::sync::Syncer>>,
}

/// Where the feed's resources live on the peer listener.
pub(crate) const PEER_PREFIX: &str = "/peer/v1";
/// The witness's `add-checkpoint`, under [`PEER_PREFIX`] (its submission prefix is
/// `https://<peer listener>/peer/v1/witness`).
pub(crate) const WITNESS: &str = "/witness/add-checkpoint";

/// 404 for a path the peer listener or `jol-feed` does not serve. The path is not repeated:
/// a caller's mistake may carry a PIN, and the answer passes through security servers' logs.
fn not_found() -> Problem {
    Problem::new(
        ProblemKind::NotFound,
        "no such peer resource (served: /feed, /log/checkpoint, /log/tile/…, /proof/inclusion, \
         /proof/event, /proof/consistency, /manifest)",
    )
}

/// A store failure as a peer is told it: the cause is logged, not sent.
fn storage(e: StoreError) -> Problem {
    http::storage_problem_for_peer(e)
}

/// The manifest members may be served under now, or 503 `manifest-expired`: the one rule every
/// face that serves members asks before it serves data or proofs (the peer listener and
/// X-Road's `jol-feed` through [`PeerApi::serve`], `jol-persons`, `jol-kpi`). The manifest
/// itself stays served: a newer one is how a member recovers.
pub(crate) fn serving_manifest(trust: &Trust) -> Result<Arc<Manifest>, Problem> {
    trust
        .usable()
        .map_err(|e| Problem::new(ProblemKind::ManifestExpired, e.to_string()))
}

impl PeerApi {
    /// A request on the peer listener: the feed's resources under `/peer/v1`.
    pub(crate) async fn handle(
        self: Arc<Self>,
        caller: MemberId,
        req: Request<Incoming>,
    ) -> Response {
        let path = req.uri().path().to_string();
        match path.strip_prefix(PEER_PREFIX) {
            Some(WITNESS) if req.method() == Method::POST => {
                match (&self.witness, serving_manifest(&self.trust)) {
                    (_, Err(expired)) => expired.response(),
                    (Some(w), Ok(_)) => w.add_checkpoint(&caller, req).await,
                    (None, Ok(_)) => not_found().response(),
                }
            }
            Some(resource) => {
                self.serve(&caller, &Official::default(), req, resource, MAX_WAIT_SECS)
                    .await
            }
            None => not_found().response(),
        }
    }

    /// One of the feed's resources (`/feed`, `/log/checkpoint`, `/log/tile/…`, `/proof/…`,
    /// `/manifest`) for `caller`, whichever way it came: the peer listener or X-Road's
    /// `jol-feed` service (then `official` is what X-Road's headers said, for the access log). A
    /// long-poll waits at most `max_wait` seconds. Under an expired manifest only the manifest
    /// is served.
    pub(crate) async fn serve(
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
            (&Method::GET, "/log/checkpoint") => crate::federation::proofs::checkpoint(&self.store),
            (&Method::GET, tile) if tile.starts_with("/log/tile/") => {
                crate::federation::proofs::tile(&self.store, &tile["/log/tile/".len()..])
            }
            (&Method::GET, "/proof/inclusion") => {
                crate::federation::proofs::inclusion(&self.store, query)
            }
            (&Method::GET, "/proof/event") => {
                crate::federation::proofs::event_inclusion(&self.store, &self.member, query)
            }
            (&Method::GET, "/proof/consistency") => {
                crate::federation::proofs::consistency(&self.store, query)
            }
            (&Method::GET, "/manifest") => Ok(http::with_type(
                StatusCode::OK,
                "application/jose+json",
                bytes::Bytes::copy_from_slice(&self.trust.held_bytes()),
            )),
            _ => Err(not_found()),
        };
        result.unwrap_or_else(|p| p.response())
    }

    /// `GET /feed`: parse the request, wait for news (long-poll), read the page under its
    /// budget, decide each event, log what is delivered, then answer.
    async fn feed(
        &self,
        caller: &MemberId,
        official: &Official,
        query: Option<&str>,
        max_wait: u64,
    ) -> Result<Response, Problem> {
        self.metrics.feed_requests.fetch_add(1, Relaxed);
        let manifest = serving_manifest(&self.trust)?;
        if manifest.readable_types(caller).is_empty() {
            return Err(Problem::new(
                ProblemKind::NotAReader,
                "the manifest grants the caller no event type",
            ));
        }
        let ask = FeedQuery::parse(query, max_wait)?;
        let release_head = match ask.released_after {
            Some(_) => Some(self.store.last_release(caller).map_err(storage)?),
            None => None,
        };
        let head = self.wait(&ask, release_head).await;
        let page = self.read(caller, &ask, head)?;
        let facts = self.facts(
            &manifest,
            caller,
            &page.own,
            &page.stored,
            &page.released_events,
        )?;
        let decided = self.decide_page(&manifest, caller, &ask, &page, &facts);
        self.log(caller, official, decided.access).await?;
        let next = decided.events.last().map_or(ask.after, |e| e.sequence);
        Ok(http::json(
            StatusCode::OK,
            &FeedPage {
                events: decided.events,
                next,
                head,
                released: decided.released,
                release_head,
            },
        ))
    }

    /// Hold the request, at most `ask.wait` seconds, while there is nothing to send: no own
    /// event after the cursor and no release after the release cursor (`release_head`). Woken by
    /// a new own event, or by any commit when the caller follows its release log (a consent
    /// received from a peer may release withheld events). Returns the own head to read up to.
    async fn wait(&self, ask: &FeedQuery, release_head: Option<u64>) -> u64 {
        let releases_waiting = release_head
            .zip(ask.released_after)
            .is_some_and(|(h, a)| h > a);
        let mut head = self.heads.own_sequence.clone();
        let mut position = self.heads.position.clone();
        position.borrow_and_update();
        if *head.borrow() <= ask.after && ask.wait > 0 && !releases_waiting {
            let follows_releases = ask.released_after.is_some();
            let after = ask.after;
            let _ = tokio::time::timeout(Duration::from_secs(ask.wait), async {
                tokio::select! {
                    _ = head.wait_for(|h| *h > after) => {}
                    _ = position.changed(), if follows_releases => {}
                }
            })
            .await;
        }
        // Copied out first: the borrow ends before the receiver does.
        let now = *head.borrow();
        now
    }

    /// The page's records, up to `head`, parsed: own events after the cursor (at most
    /// `ask.limit`), then the caller's releases after its release cursor, each part ending
    /// early when the next record would pass the page's byte budget; the releases take what
    /// the events left of it, and at least one.
    fn read(&self, caller: &MemberId, ask: &FeedQuery, head: u64) -> Result<Page, Problem> {
        let end = head.min(ask.after.saturating_add(ask.limit));
        let mut events_budget = page_budget(FEED_PAGE_BYTES);
        let (stored, own) = self.own_events(ask.after, end, &mut events_budget)?;
        let released = match ask.released_after {
            Some(after) => self.read_releases(caller, after, ask.limit, events_budget.left())?,
            None => Vec::new(),
        };
        let released_events: Vec<SignedEvent> = released
            .iter()
            .map(|(_, bytes)| parse_stored(bytes))
            .collect::<Result<_, _>>()?;
        Ok(Page {
            stored,
            own,
            released,
            released_events,
        })
    }

    /// Own events with sequences after `after` up to `end`, as (sequence, position) and parsed,
    /// while `budget` takes them: those the writer committed lately as it parsed them, the
    /// others (in runs) read from the store and parsed here.
    fn own_events(
        &self,
        after: u64,
        end: u64,
        budget: &mut Budget,
    ) -> Result<(Vec<Located>, Vec<SignedEvent>), Problem> {
        let found = self
            .store
            .positions_of_source(&self.member, after, end)
            .map_err(storage)?;
        let mut located = Vec::with_capacity(found.len());
        let mut own = Vec::with_capacity(found.len());
        let mut rest = found.as_slice();
        while let Some(&(sequence, position)) = rest.first() {
            if let Some(signed) = self.heads.recent.get(position) {
                if !budget.take(signed.bytes().len()) {
                    break;
                }
                located.push((sequence, position));
                own.push(signed);
                rest = &rest[1..];
                continue;
            }
            // At least the one just missed: the loop moves on whatever the window does.
            let run = rest
                .iter()
                .position(|(_, p)| self.heads.recent.holds(*p))
                .unwrap_or(rest.len())
                .max(1);
            let read = self
                .store
                .events_located(rest[..run].to_vec(), budget)
                .map_err(storage)?;
            let whole = read.len() == run;
            for (sequence, position, bytes) in read {
                located.push((sequence, position));
                own.push(parse_stored(&bytes)?);
            }
            if !whole {
                break;
            }
            rest = &rest[run..];
        }
        Ok((located, own))
    }

    /// The caller's release log after `after` (at most `limit` entries): each entry's number
    /// and the released event's bytes, while they fit in `bytes` (and at least one).
    fn read_releases(
        &self,
        caller: &MemberId,
        after: u64,
        limit: u64,
        bytes: usize,
    ) -> Result<Vec<(u64, Vec<u8>)>, Problem> {
        let releases = self
            .store
            .releases(caller, after, limit as usize)
            .map_err(storage)?;
        let mut budget = page_budget(bytes);
        let mut released = Vec::with_capacity(releases.len());
        for (number, position) in releases {
            let bytes = self
                .store
                .get(position)
                .map_err(storage)?
                .ok_or_else(|| storage(StoreError::Corrupt("a release names no event")))?;
            if !budget.take(bytes.len()) {
                break;
            }
            released.push((number, bytes));
        }
        Ok(released)
    }

    /// Each of the page's records decided ([`Self::decide`]): delivered, or a placeholder
    /// naming why it is withheld; what is delivered about a person goes to the access log.
    fn decide_page<'a>(
        &self,
        manifest: &Manifest,
        caller: &MemberId,
        ask: &FeedQuery,
        page: &'a Page,
        facts: &Facts,
    ) -> Decided<'a> {
        let mut decided = Decided {
            events: Vec::with_capacity(page.stored.len()),
            released: Vec::with_capacity(page.released.len()),
            access: Vec::new(),
        };
        for ((sequence, position), signed) in page.stored.iter().zip(&page.own) {
            let decision =
                self.decide(manifest, caller, &ask.types, signed, Some(*position), facts);
            let jws = delivered_jws(signed, &decision);
            let withheld = decided.account(&self.metrics, decision);
            decided.events.push(FeedItem {
                release: None,
                sequence: *sequence,
                jws,
                withheld,
            });
        }
        for ((number, _), signed) in page.released.iter().zip(&page.released_events) {
            let decision = self.decide(manifest, caller, &None, signed, None, facts);
            let jws = delivered_jws(signed, &decision);
            let withheld = decided.account(&self.metrics, decision);
            decided.released.push(FeedItem {
                release: Some(*number),
                sequence: signed.sequence(),
                jws,
                withheld,
            });
        }
        decided
    }

    /// Write the page's access-log entry, durably, before the page leaves the node (its flush
    /// off the runtime's threads: they serve the other requests meanwhile).
    async fn log(
        &self,
        caller: &MemberId,
        official: &Official,
        access: Vec<Access>,
    ) -> Result<(), Problem> {
        let store = self.store.clone();
        let reader = Reader::member(caller, None, official);
        tokio::task::spawn_blocking(move || crate::policy::access::log(&store, &reader, access))
            .await
            .map_err(|_| http::storage_problem("the access-log write ended before it was durable"))?
            .map_err(storage)
    }

    /// What the page's consent decisions need from the store, read once for the whole page:
    /// each person's consent state now, and which own events were withheld from `caller`.
    fn facts(
        &self,
        manifest: &Manifest,
        caller: &MemberId,
        own: &[SignedEvent],
        stored: &[Located],
        released: &[SignedEvent],
    ) -> Result<Facts, Problem> {
        let attested = match manifest.reader_purposes(caller, EventType::CredentialIssued) {
            Some(_) => self.attested_persons(own.iter().chain(released))?,
            None => Default::default(),
        };
        let person = |s: &SignedEvent| -> Option<String> {
            pin_of(s)
                .map(str::to_string)
                .or_else(|| attested.get(&s.event().id).cloned())
        };
        let mut pins: Vec<String> = own.iter().chain(released).filter_map(person).collect();
        pins.sort_unstable();
        pins.dedup();
        let asked: Vec<&str> = pins.iter().map(String::as_str).collect();
        let states: Vec<Option<ConsentState>> = self.store.consents(&asked).map_err(storage)?;
        let own_events: Vec<(String, u64)> = own
            .iter()
            .zip(stored)
            .filter_map(|(s, (_, position))| person(s).map(|pin| (pin, *position)))
            .collect();
        let asked: Vec<(&str, u64)> = own_events.iter().map(|(p, n)| (p.as_str(), *n)).collect();
        let withheld = self.store.were_withheld(caller, &asked).map_err(storage)?;
        Ok(Facts {
            consent: pins.into_iter().zip(states).collect(),
            withheld: own_events
                .iter()
                .zip(withheld)
                .filter(|(_, w)| *w)
                .map(|((_, position), _)| *position)
                .collect(),
            attested,
        })
    }

    /// The person each own `credential-issued` among `events` is about (that of the event it
    /// attests, read from the store), by the credential event's id: credentials are few, and
    /// one whose attested event is unknown or stripped of its PIN (erased) is about nobody
    /// known, so no consent admits it.
    fn attested_persons<'a>(
        &self,
        events: impl Iterator<Item = &'a SignedEvent>,
    ) -> Result<std::collections::HashMap<uuid::Uuid, String>, Problem> {
        let mut persons = std::collections::HashMap::new();
        for signed in events {
            let event = signed.event();
            let Some(id) = consent::attested(event) else {
                continue;
            };
            let Some(attested) = self.store.event_of(&event.source, &id).map_err(storage)? else {
                continue;
            };
            if let Some(pin) = attested.event().pin() {
                persons.insert(event.id, pin.to_string());
            }
        }
        Ok(persons)
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
        let attests = consent::attested(event).is_some();
        if !event.event_type.is_personal() && !attests {
            // Not about a person: the grant is all it takes.
            return Ok(Delivered {
                pin: None,
                id: event.id.to_string(),
                event_type: event.event_type,
                purposes: purposes.to_vec(),
                fields: Fields::All,
            });
        }
        // A personal event names its person by PIN, a credential the person of the event it
        // attests; without one no consent can admit it.
        let pin = match attests {
            true => facts.attested.get(&event.id).map(String::as_str),
            false => consent::person_pin(&event.data),
        };
        let Some(pin) = pin.and_then(|p| p.parse::<Pin>().ok()) else {
            return Err(Withheld::NoConsent);
        };
        // An own event withheld from the caller when it was published reaches it only through
        // the caller's release log, once a consent admits it.
        if position.is_some_and(|p| facts.withheld.contains(&p)) {
            return Err(Withheld::NoConsent);
        }
        let state = facts.consent.get(pin.expose()).and_then(Option::as_ref);
        let grant = manifest.reader_fields(caller, event.event_type);
        let fields = match consent::decide(event, state, caller, purposes)? {
            Admitted::Event => grant,
            Admitted::ConsentChange if signed.is_selective() => grant.the_person_only(),
            // Signed whole, a consent change cannot be cut down to itself: a member granted
            // every field gets it whole (told to stop, it stops serving what it holds), any
            // other gets nothing more than its grant, that is nothing.
            Admitted::ConsentChange => grant,
        };
        // An event signed whole cannot be cut to a narrower grant: nothing rather than more.
        if !signed.can_be_cut_to(&fields) {
            return Err(Withheld::NotAuthorised);
        }
        Ok(Delivered {
            pin: Some(pin),
            id: event.id.to_string(),
            event_type: event.event_type,
            purposes: purposes.to_vec(),
            fields,
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
    /// The person each own `credential-issued` of the page is about, by its id.
    attested: std::collections::HashMap<uuid::Uuid, String>,
}

/// What a feed request asks for, from its query.
pub(crate) struct FeedQuery {
    /// The last own sequence the caller holds.
    pub(crate) after: u64,
    /// Most events (and most releases) in the page.
    pub(crate) limit: u64,
    /// Longest the request may be held while nothing is new, in seconds.
    pub(crate) wait: u64,
    /// The types the caller asks for (`None`: every type).
    pub(crate) types: Option<Vec<EventType>>,
    /// The caller's release cursor, when it follows its release log.
    pub(crate) released_after: Option<u64>,
}

impl FeedQuery {
    /// `after`, `limit` (1 to [`MAX_FEED_PAGE`], 500 if not given), `wait` (at most
    /// `max_wait`), `types` and `released_after`; 400 naming the parameter that is wrong.
    pub(crate) fn parse(query: Option<&str>, max_wait: u64) -> Result<FeedQuery, Problem> {
        Ok(FeedQuery {
            after: http::query_u64(query, "after", 0)?,
            limit: http::query_u64(query, "limit", 500)?.clamp(1, MAX_FEED_PAGE),
            wait: http::query_u64(query, "wait", 0)?.min(max_wait),
            types: requested_types(query)?,
            released_after: http::query_param(query, "released_after")
                .map(|_| http::query_u64(query, "released_after", 0))
                .transpose()?,
        })
    }
}

/// A page's records as read, each parsed once.
struct Page {
    /// Own events after the cursor.
    stored: Vec<Located>,
    /// The same events, parsed.
    own: Vec<SignedEvent>,
    /// The caller's releases: number in its release log, the released event's JWS.
    released: Vec<(u64, Vec<u8>)>,
    /// The released events, parsed.
    released_events: Vec<SignedEvent>,
}

/// Where an own event is: its sequence and its position in the log.
type Located = (u64, u64);

/// A page's records, decided.
struct Decided<'a> {
    events: Vec<FeedItem<'a>>,
    released: Vec<FeedItem<'a>>,
    /// What the page delivers about persons, for the access log.
    access: Vec<Access>,
}

impl Decided<'_> {
    /// Count a decision, and add a delivered event about a person to the access log; returns
    /// the withheld reason, if any.
    fn account(
        &mut self,
        metrics: &Metrics,
        decision: Result<Delivered, Withheld>,
    ) -> Option<&'static str> {
        match decision {
            Ok(d) => {
                let what = format!(
                    "event {} ({}) delivered to the reader's node: {}",
                    d.id,
                    d.event_type,
                    d.fields.describe()
                );
                if let Some(pin) = d.pin {
                    self.access.push(Access {
                        purpose: Some(d.purposes.join(", ")),
                        ..Access::new(&pin, what, Outcome::Served)
                    });
                }
                metrics.feed_events_delivered.fetch_add(1, Relaxed);
                None
            }
            Err(w) => {
                metrics.feed_events_withheld.fetch_add(1, Relaxed);
                Some(w.code())
            }
        }
    }
}

/// A stored event, parsed once for all the feed does with it; damage is a storage failure.
fn parse_stored(bytes: &[u8]) -> Result<SignedEvent, Problem> {
    SignedEvent::from_store(bytes).map_err(|e| storage(StoreError::Corrupt(e.code())))
}

/// What a delivered event is sent as: its signed part verbatim with the disclosures the
/// reader's grant allows, as a raw JSON value (none when it is withheld, or when its bytes
/// are damaged so that no copy within the grant can be cut: nothing rather than too much).
fn delivered_jws<'a>(
    signed: &'a SignedEvent,
    decision: &Result<Delivered, Withheld>,
) -> Option<Cow<'a, RawValue>> {
    let fields = &decision.as_ref().ok()?.fields;
    match signed.for_reader(fields)? {
        Cow::Borrowed(bytes) => std::str::from_utf8(bytes)
            .ok()
            .and_then(|s| serde_json::from_str::<&RawValue>(s).ok())
            .map(Cow::Borrowed),
        Cow::Owned(bytes) => String::from_utf8(bytes)
            .ok()
            .and_then(|s| RawValue::from_string(s).ok())
            .map(Cow::Owned),
    }
}

/// What the access log needs of a delivered event.
struct Delivered {
    /// The person the event is about (none for a vacancy or a course offer).
    pin: Option<Pin>,
    id: String,
    event_type: EventType,
    purposes: Vec<String>,
    /// The fields the reader's grant lets it receive.
    fields: Fields,
}

fn requested_types(query: Option<&str>) -> Result<Option<Vec<EventType>>, Problem> {
    let Some(list) = http::query_param(query, "types").filter(|l| !l.is_empty()) else {
        return Ok(None);
    };
    list.split(',')
        .map(|t| {
            t.parse::<EventType>()
                .map_err(|e| Problem::new(ProblemKind::BadQuery, format!("types: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::budget::MAX_EVENT_BYTES_CEILING;
    use crate::federation::fixture::{returnee, vacancy, withdrawal, Federation, Node};
    use crate::policy::access::log_of;
    use crate::store::SideLog;
    use http_body_util::BodyExt;

    const A: &str = "21503199012345";
    const B: &str = "21503199012346";
    const C: &str = "21503199012347";

    /// The peer API of `node`, called in-process.
    fn peer_api(node: &Node) -> PeerApi {
        PeerApi {
            member: node.member.clone(),
            store: node.store.clone(),
            trust: node.trust.clone(),
            heads: node.publisher.heads(),
            metrics: node.metrics.clone(),
            witness: None,
        }
    }

    /// What `reader` is answered for `query`, without waiting.
    async fn ask(api: &PeerApi, reader: &MemberId, query: &str) -> Result<Response, Problem> {
        api.feed(reader, &Official::default(), Some(query), 0).await
    }

    /// The page `reader` gets for `query`, as a subscriber decodes it.
    async fn page(api: &PeerApi, reader: &MemberId, query: &str) -> ReceivedPage {
        let answer = ask(api, reader, query)
            .await
            .unwrap_or_else(|p| panic!("{query}: {} {}", p.status, p.detail));
        assert_eq!(answer.status(), StatusCode::OK);
        let body = answer.into_body().collect().await.unwrap().to_bytes();
        serde_json::from_slice(&body).unwrap()
    }

    /// Each item as (sequence, "event") or (sequence, the withheld reason).
    fn shape(items: &[ReceivedItem]) -> Vec<(u64, &str)> {
        items
            .iter()
            .map(|i| match (&i.jws, &i.withheld) {
                (Some(_), None) => (i.sequence, "event"),
                (None, Some(w)) => (i.sequence, w.as_str()),
                _ => panic!(
                    "sequence {}: neither an event nor a placeholder",
                    i.sequence
                ),
            })
            .collect()
    }

    /// A batch large enough for the writer to sign ahead on several threads, one record of it
    /// signed too large (the records after it are made again at the sequence they get): each
    /// published record is an SD-JWT whose signature and disclosures verify and whose revealed
    /// data is the record sent, at contiguous sequences.
    #[tokio::test]
    async fn a_batch_signed_ahead_is_stored_as_whole_sd_jwts_at_contiguous_sequences() {
        let fed = Federation::new();
        // Each record signs to about 3,500 bytes; the one with a long legal basis to 3,800.
        let node = fed.node_under(&fed.migration, &fed.manifest, 3_600);
        let pins: Vec<String> = (0..40).map(|n| format!("215031990{n:05}")).collect();
        let mut records: Vec<serde_json::Value> = pins
            .iter()
            .map(|pin| returnee(pin, &[&fed.employment, &fed.education]))
            .collect();
        records[2]["legalBasis"] = "l".repeat(300).into();
        let drafts = records.iter().map(|data| crate::write::Draft {
            event_type: EventType::ReturneeRecord,
            data: data.clone(),
            idempotency_key: None,
        });
        let out = node.publisher.publish_batch(drafts.collect()).await;
        assert!(
            matches!(out[2], Err(crate::write::PublishError::TooLarge { .. })),
            "{:?}",
            out[2]
        );
        let mut sequences = Vec::new();
        for (i, outcome) in out.iter().enumerate().filter(|(i, _)| *i != 2) {
            let published = outcome.as_ref().unwrap();
            sequences.push(published.sequence);
            let bytes = node.store.get(published.position).unwrap().unwrap();
            let (signed, jws) = SignedEvent::parse(&bytes).unwrap();
            jws.verify(&fed.key(&fed.migration).verifying_key())
                .unwrap();
            assert_eq!(jws.typ(), crate::event::jws::Typ::SdEvent);
            assert!(!signed.disclosed().is_empty(), "fields concealed");
            assert_eq!(signed.event().data, records[i], "record {i} revealed whole");
        }
        assert_eq!(sequences, (1..=39).collect::<Vec<u64>>());
    }

    #[tokio::test]
    async fn what_a_reader_may_not_have_comes_as_a_placeholder_with_no_gap_in_sequences() {
        let fed = Federation::new();
        let node = fed.node(&fed.migration);
        let both = [&fed.employment, &fed.education];
        let first = node
            .publish(EventType::ReturneeRecord, returnee(A, &both))
            .await;
        node.publish(EventType::ReturneeRecord, returnee(B, &[&fed.employment]))
            .await;
        node.publish(EventType::Vacancy, vacancy()).await;
        node.publish(EventType::ReturneeRecord, withdrawal(C)).await;
        let api = peer_api(&node);

        let education = page(&api, &fed.education, "after=0").await;
        assert_eq!(
            shape(&education.events),
            [
                (1, "event"),
                (2, "no-consent"),
                (3, "not-authorised"),
                (4, "no-consent")
            ]
        );
        assert_eq!((education.next, education.head), (4, 4));
        assert_eq!(
            education.events[0].jws.as_ref().unwrap().get().as_bytes(),
            &first.jws[..],
            "the stored JWS, verbatim"
        );

        let employment = page(&api, &fed.employment, "after=0").await;
        assert_eq!(
            shape(&employment.events),
            [(1, "event"), (2, "event"), (3, "event"), (4, "no-consent")]
        );
        let vacancies = page(&api, &fed.employment, "after=1&types=vacancy").await;
        assert_eq!(
            shape(&vacancies.events),
            [(2, "not-requested"), (3, "event"), (4, "not-requested")]
        );
        assert_eq!(vacancies.next, 4);
    }

    /// Events the writer committed lately come from its window, older ones from the store: a
    /// page is the same whichever of its events are still in the window, and in any mix.
    #[tokio::test]
    async fn a_page_is_the_same_whether_its_events_come_from_the_window_or_the_store() {
        let fed = Federation::new();
        let node = fed.node(&fed.migration);
        let both = [&fed.employment, &fed.education];
        for pin in [A, B, C] {
            node.publish(EventType::ReturneeRecord, returnee(pin, &both))
                .await;
        }
        node.publish(EventType::Vacancy, vacancy()).await;
        let api = peer_api(&node);
        let recent = &api.heads.recent;
        let window: Vec<SignedEvent> = (1..=4).filter_map(|p| recent.get(p)).collect();
        assert_eq!(
            window.len(),
            4,
            "the writer left its four events in the window"
        );
        let body = || async {
            let answer = ask(&api, &fed.employment, "after=0").await.unwrap();
            let bytes = answer.into_body().collect().await.unwrap().to_bytes();
            String::from_utf8(bytes.to_vec()).unwrap()
        };

        let from_window = body().await;
        recent.clear();
        let from_store = body().await;
        recent.committed(3, window[2..].to_vec());
        assert!(recent.get(2).is_none() && recent.get(3).is_some());
        let mixed = body().await;
        recent.clear();
        recent.committed(2, window[1..3].to_vec());
        let window_between = body().await;

        assert!(from_window.contains(r#""sequence":4"#), "{from_window}");
        assert_eq!(from_store, from_window);
        assert_eq!(mixed, from_window);
        assert_eq!(window_between, from_window);
    }

    /// Consent is decided when the page is read, by the consent held then: after a withdrawal
    /// the record the reader was served before is a placeholder, and the withdrawal itself
    /// reaches the reader it tells to stop (and only the readers a consent ever named).
    #[tokio::test]
    async fn the_feed_decides_by_the_consent_held_when_the_page_is_read() {
        let fed = Federation::new();
        let node = fed.node(&fed.migration);
        node.publish(EventType::ReturneeRecord, returnee(A, &[&fed.employment]))
            .await;
        let api = peer_api(&node);
        let before = page(&api, &fed.employment, "after=0").await;
        assert_eq!(shape(&before.events), [(1, "event")]);

        node.publish(EventType::ReturneeRecord, withdrawal(A)).await;
        let after = page(&api, &fed.employment, "after=0").await;
        assert_eq!(shape(&after.events), [(1, "no-consent"), (2, "event")]);
        // The withdrawal tells the member to stop, and nothing else the record says of the
        // person: the PIN and the always-visible fields (the consent among them).
        let told = after.events[1].jws.as_ref().unwrap().get().as_bytes();
        let (told, _) = SignedEvent::parse(told).unwrap();
        let disclosed: Vec<&str> = told
            .disclosed()
            .iter()
            .map(|d| d.pointer.as_str())
            .collect();
        assert_eq!(disclosed, ["/person/pin"]);
        assert_eq!(told.event().data["person"], serde_json::json!({"pin": A}));
        assert!(told.event().data["consent"]["granted"] == false);
        assert!(told.event().data.get("return").is_some(), "always visible");
        let pin: crate::event::identifiers::Pin = A.parse().unwrap();
        let logged = log_of(&node.store, &pin, 10).unwrap();
        assert!(
            logged[0]
                .what
                .ends_with("the always-visible fields and /person/pin"),
            "{}",
            logged[0].what
        );
        let never_named = page(&api, &fed.education, "after=0").await;
        assert_eq!(
            shape(&never_named.events),
            [(1, "no-consent"), (2, "no-consent")]
        );
    }

    /// An event signed whole (a publisher the manifest has not moved to SD-JWT) cannot be cut
    /// to a grant of some fields: that reader gets a placeholder, never every field; a reader
    /// granted every field gets it.
    #[tokio::test]
    async fn an_event_signed_whole_reaches_no_reader_granted_less_than_every_field() {
        let fed = Federation::new();
        let mut manifest = fed.manifest.clone();
        for m in &mut manifest.members {
            m.event_formats = vec![crate::trust::manifest::EventFormat::Jws];
        }
        for policy in &mut manifest.event_types {
            for grant in &mut policy.readers {
                if grant.member == fed.education {
                    grant.fields = Some(vec!["/person/pin".parse().unwrap()]);
                }
            }
        }
        let node = fed.node_under(
            &fed.migration,
            &manifest,
            crate::budget::DEFAULT_MAX_EVENT_BYTES,
        );
        let both = [&fed.employment, &fed.education];
        let published = node
            .publish(EventType::ReturneeRecord, returnee(A, &both))
            .await;
        let api = peer_api(&node);
        let narrow = page(&api, &fed.education, "after=0").await;
        assert_eq!(shape(&narrow.events), [(1, "not-authorised")]);
        let whole = page(&api, &fed.employment, "after=0").await;
        assert_eq!(shape(&whole.events), [(1, "event")]);
        assert_eq!(
            whole.events[0].jws.as_ref().unwrap().get().as_bytes(),
            &published.jws[..]
        );
        let pin: crate::event::identifiers::Pin = A.parse().unwrap();
        let logged = log_of(&node.store, &pin, 10).unwrap();
        assert_eq!(logged.len(), 1, "only the delivery is a read");
        assert!(
            logged[0].what.ends_with("every field"),
            "{}",
            logged[0].what
        );
        // A whole-signed withdrawal reaches the member granted every field whole (it must learn
        // to stop); the member granted some fields gets nothing more than its grant.
        let withdrawn = node.publish(EventType::ReturneeRecord, withdrawal(A)).await;
        let whole = page(&api, &fed.employment, "after=0").await;
        assert_eq!(shape(&whole.events), [(1, "no-consent"), (2, "event")]);
        assert_eq!(
            whole.events[1].jws.as_ref().unwrap().get().as_bytes(),
            &withdrawn.jws[..]
        );
        let narrow = page(&api, &fed.education, "after=0").await;
        assert_eq!(
            shape(&narrow.events),
            [(1, "no-consent"), (2, "not-authorised")]
        );
    }

    #[tokio::test]
    async fn an_unknown_type_asked_for_is_refused_with_a_problem_naming_the_parameter() {
        let refused = requested_types(Some("after=0&types=returnee-record,salary")).unwrap_err();
        assert_eq!(refused.status, 400);
        assert!(refused.kind.ends_with("/bad-query"), "{}", refused.kind);
        assert!(
            refused.detail.starts_with("types: ") && refused.detail.contains("returnee-record"),
            "names the parameter and the types there are: {}",
            refused.detail
        );
        assert_eq!(
            requested_types(Some("types=returnee-record,vacancy")).unwrap(),
            Some(vec![EventType::ReturneeRecord, EventType::Vacancy])
        );
        assert_eq!(requested_types(Some("types=")).unwrap(), None, "every type");
        assert_eq!(requested_types(None).unwrap(), None);

        // The feed refuses it rather than serving every type.
        let fed = Federation::new();
        let node = fed.node(&fed.migration);
        let fed_refused = ask(&peer_api(&node), &fed.employment, "types=salary")
            .await
            .unwrap_err();
        assert_eq!((fed_refused.status, fed_refused.kind), (400, refused.kind));
    }

    /// One access-log entry per page, indexed under each person delivered: the same request in
    /// each person's log, with the reader and its grant's purpose; a person whose data was
    /// withheld is not in it, and an event about nobody is logged under nobody.
    #[tokio::test]
    async fn a_pages_access_log_entry_lists_each_delivered_person_and_none_withheld() {
        let fed = Federation::new();
        let node = fed.node(&fed.migration);
        let a = node
            .publish(EventType::ReturneeRecord, returnee(A, &[&fed.employment]))
            .await;
        let b = node
            .publish(EventType::ReturneeRecord, returnee(B, &[&fed.employment]))
            .await;
        node.publish(EventType::ReturneeRecord, withdrawal(C)).await;
        node.publish(EventType::Vacancy, vacancy()).await;
        page(&peer_api(&node), &fed.employment, "after=0").await;

        assert_eq!(node.store.side_len(SideLog::Access), 1, "one entry");
        let pin = |p: &str| p.parse::<crate::event::identifiers::Pin>().unwrap();
        let [of_a] = &log_of(&node.store, &pin(A), 10).unwrap()[..] else {
            panic!("one read of A")
        };
        let [of_b] = &log_of(&node.store, &pin(B), 10).unwrap()[..] else {
            panic!("one read of B")
        };
        assert_eq!(of_a.request_id, of_b.request_id);
        for (read, published) in [(of_a, &a), (of_b, &b)] {
            assert_eq!(
                read.reader,
                crate::policy::access::ReaderId::Member(fed.employment.clone())
            );
            assert_eq!(read.purpose.as_deref(), Some("EMPLOYMENT_SERVICES"));
            assert_eq!(read.outcome, Outcome::Served);
            assert!(
                read.what.contains(&published.id.to_string()),
                "{}",
                read.what
            );
        }
        assert!(
            log_of(&node.store, &pin(C), 10).unwrap().is_empty(),
            "withheld"
        );
    }

    /// A `credential-issued` is about the person whose event it attests: a member that
    /// person's consent does not name gets a placeholder (as for the event), and gets the
    /// credential through its release log once a later consent names it; the delivery is in
    /// that person's access log.
    #[tokio::test]
    async fn a_credential_reaches_only_members_the_attested_persons_consent_names() {
        let mut fed = Federation::new();
        let grant = |member: &MemberId| crate::trust::manifest::ReaderGrant {
            member: member.clone(),
            purposes: vec!["TRAINING_SERVICES".into()],
            fields: None,
        };
        let readers = vec![grant(&fed.employment), grant(&fed.education)];
        fed.manifest
            .event_types
            .push(crate::trust::manifest::TypePolicy::new(
                EventType::CredentialIssued,
                vec![fed.migration.clone()],
                readers,
            ));
        let node = fed.node(&fed.migration);
        let attested = node
            .publish(EventType::ReturneeRecord, returnee(B, &[&fed.employment]))
            .await;
        let mut credential: serde_json::Value = serde_json::from_str(include_str!(
            "../../tests/examples/credential-issued/valid/issued.json"
        ))
        .unwrap();
        credential["attests"] =
            serde_json::json!({"source": fed.migration, "id": attested.id.to_string()});
        node.publish(EventType::CredentialIssued, credential).await;
        let api = peer_api(&node);
        let named = page(&api, &fed.employment, "after=0").await;
        assert_eq!(shape(&named.events), [(1, "event"), (2, "event")]);
        let other = page(&api, &fed.education, "after=0&released_after=0").await;
        assert_eq!(
            shape(&other.events),
            [(1, "no-consent"), (2, "no-consent")],
            "a credential of a person whose consent does not name the reader"
        );
        let both = [&fed.employment, &fed.education];
        node.publish(EventType::ReturneeRecord, returnee(B, &both))
            .await;
        let after = page(&api, &fed.education, "after=2&released_after=0").await;
        assert_eq!(shape(&after.released), [(1, "event"), (2, "event")]);
        let reads = log_of(&node.store, &B.parse().unwrap(), 20).unwrap();
        let credential_reads = reads
            .iter()
            .filter(|r| r.what.contains("credential-issued"))
            .count();
        assert_eq!(credential_reads, 2, "{reads:?}");
    }

    /// An event withheld from a reader when published reaches it once a later consent admits
    /// it, through its release log beside the page (logged as read); the ordinary feed keeps
    /// its placeholder, and a caller that does not follow its release log gets none.
    #[tokio::test]
    async fn a_released_event_comes_in_the_release_log_and_its_place_stays_a_placeholder() {
        let fed = Federation::new();
        let node = fed.node(&fed.migration);
        let withheld = node
            .publish(EventType::ReturneeRecord, returnee(B, &[&fed.employment]))
            .await;
        let api = peer_api(&node);
        let before = page(&api, &fed.education, "after=0&released_after=0").await;
        assert_eq!(shape(&before.events), [(1, "no-consent")]);
        assert!(before.released.is_empty());
        assert_eq!(before.release_head, Some(0));

        let both = [&fed.employment, &fed.education];
        node.publish(EventType::ReturneeRecord, returnee(B, &both))
            .await;
        let after = page(&api, &fed.education, "after=1&released_after=0").await;
        assert_eq!(shape(&after.events), [(2, "event")]);
        assert_eq!(shape(&after.released), [(1, "event")]);
        assert_eq!(after.released[0].release, Some(1));
        assert_eq!(
            after.released[0].jws.as_ref().unwrap().get().as_bytes(),
            &withheld.jws[..]
        );
        assert_eq!(after.release_head, Some(1));
        let reads = log_of(&node.store, &B.parse().unwrap(), 10).unwrap();
        assert!(
            reads.iter().any(|r| r.reader
                == crate::policy::access::ReaderId::Member(fed.education.clone())
                && r.what.contains(&withheld.id.to_string())),
            "the release is logged as read: {reads:?}"
        );

        let again = page(&api, &fed.education, "after=0&released_after=1").await;
        assert_eq!(shape(&again.events), [(1, "no-consent"), (2, "event")]);
        assert!(again.released.is_empty(), "taken already");
        assert_eq!(again.release_head, Some(1));
        let not_following = page(&api, &fed.education, "after=0").await;
        assert!(not_following.released.is_empty());
        assert_eq!(not_following.release_head, None);
    }

    /// What was withheld before the node's writer restarted is released by a consent given
    /// after it: the writer reads from the store whom anything is withheld from.
    #[tokio::test]
    async fn a_consent_after_a_restart_releases_what_was_withheld_before_it() {
        let fed = Federation::new();
        let node = fed.node(&fed.migration);
        let withheld = node
            .publish(EventType::ReturneeRecord, returnee(B, &[&fed.employment]))
            .await;
        let node = node.restarted();
        let both = [&fed.employment, &fed.education];
        node.publish(EventType::ReturneeRecord, returnee(B, &both))
            .await;
        let after = page(&peer_api(&node), &fed.education, "after=1&released_after=0").await;
        assert_eq!(shape(&after.released), [(1, "event")]);
        assert_eq!(
            after.released[0].jws.as_ref().unwrap().get().as_bytes(),
            &withheld.jws[..]
        );
    }

    #[tokio::test]
    async fn under_an_expired_manifest_the_feed_serves_nothing() {
        let fed = Federation::new();
        assert!(serving_manifest(&fed.node(&fed.migration).trust).is_ok());
        let mut expired = fed.manifest.clone();
        expired.expires = time::OffsetDateTime::now_utc() - time::Duration::seconds(1);
        let node = fed.node_under(&fed.migration, &expired, MAX_EVENT_BYTES_CEILING);
        let refused = serving_manifest(&node.trust).unwrap_err();
        assert_eq!(refused.status, 503);
        assert!(
            refused.kind.ends_with("/manifest-expired"),
            "{}",
            refused.kind
        );
        assert!(refused.detail.contains("expired"), "{}", refused.detail);
        let feed = ask(&peer_api(&node), &fed.employment, "after=0")
            .await
            .unwrap_err();
        assert_eq!((feed.status, feed.kind), (503, refused.kind));
    }

    #[tokio::test]
    async fn a_member_granted_no_type_is_not_a_reader() {
        let fed = Federation::new();
        let node = fed.node(&fed.migration);
        let refused = ask(&peer_api(&node), &fed.migration, "after=0")
            .await
            .unwrap_err();
        assert_eq!(refused.status, 403);
        assert!(refused.kind.ends_with("/not-a-reader"), "{}", refused.kind);
    }

    /// A returnee record about `pin` whose consent names `recipients`, padded to about
    /// `jws_bytes` once signed with earlier PINs of the person (17 bytes of JSON each; the
    /// payload is base64url in the JWS, 4/3 of its size).
    fn large_returnee(pin: &str, recipients: &[&MemberId], jws_bytes: usize) -> serde_json::Value {
        let mut data = returnee(pin, recipients);
        data["person"]["pinHistory"] = (0..jws_bytes * 3 / 4 / 17)
            .map(|i| {
                serde_json::Value::from(format!("20101{}{:05}", 1950 + i / 100_000, i % 100_000))
            })
            .collect();
        data
    }

    /// A page's events end when the next would pass the budget, after at least one; its
    /// releases take what the events left, and at least one: the release here is larger than
    /// what is left and still comes. The page says more is waiting (`next` before `head`).
    #[tokio::test]
    async fn the_budget_ends_a_page_early_but_never_leaves_a_part_empty() {
        let fed = Federation::new();
        let node = fed.node_under(&fed.migration, &fed.manifest, MAX_EVENT_BYTES_CEILING);
        let size = FEED_PAGE_BYTES * 2 / 5;
        let both = [&fed.employment, &fed.education];
        let withheld = node
            .publish(
                EventType::ReturneeRecord,
                large_returnee(A, &[&fed.employment], size),
            )
            .await;
        node.publish(EventType::ReturneeRecord, returnee(A, &both))
            .await;
        let mut sizes = Vec::new();
        for _ in 0..3 {
            let p = node
                .publish(EventType::ReturneeRecord, large_returnee(B, &both, size))
                .await;
            sizes.push(p.jws.len() + ITEM_FRAMING);
        }
        // Two events fit in the budget, three do not, and what two leave is less than the
        // release takes.
        assert!(sizes[0] + sizes[1] <= FEED_PAGE_BYTES);
        assert!(sizes.iter().sum::<usize>() > FEED_PAGE_BYTES);
        assert!(FEED_PAGE_BYTES - sizes[0] - sizes[1] < withheld.jws.len() + ITEM_FRAMING);

        let api = peer_api(&node);
        let full = page(&api, &fed.education, "after=2&released_after=0").await;
        assert_eq!(shape(&full.events), [(3, "event"), (4, "event")]);
        assert_eq!((full.next, full.head), (4, 5), "more is waiting");
        assert_eq!(shape(&full.released), [(1, "event")]);
        let rest = page(&api, &fed.education, "after=4&released_after=1").await;
        assert_eq!(shape(&rest.events), [(5, "event")]);
        assert_eq!((rest.next, rest.head), (5, 5));
    }

    /// What the budget counts for an item beside its JWS covers what the page spends on it,
    /// whether it goes as the event or as a placeholder in its place.
    #[test]
    fn an_items_framing_is_within_what_the_budget_counts_for_it() {
        let fed = Federation::new();
        let signed = fed.signed(&fed.migration, 1, EventType::Vacancy, vacancy());
        let jws: &RawValue = serde_json::from_slice(signed.bytes()).unwrap();
        let counted = signed.bytes().len() + ITEM_FRAMING;
        let spent = |item: &FeedItem| serde_json::to_string(item).unwrap().len() + ",".len();
        let event = FeedItem {
            release: Some(u64::MAX),
            sequence: u64::MAX,
            jws: Some(Cow::Borrowed(jws)),
            withheld: None,
        };
        assert!(spent(&event) <= counted, "{} > {counted}", spent(&event));
        for reason in [
            Withheld::NotAuthorised,
            Withheld::NotRequested,
            Withheld::NoConsent,
        ] {
            let placeholder = FeedItem {
                jws: None,
                withheld: Some(reason.code()),
                ..event
            };
            assert!(spent(&placeholder) <= counted, "{}", reason.code());
        }
    }
}
