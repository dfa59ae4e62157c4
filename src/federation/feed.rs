//! The peer API (`/peer/v1/…`), served over mutual TLS to other members' nodes.
//!
//! - `GET /peer/v1/feed?after=N&limit=M&wait=S&types=a,b`: this node's own events after
//!   sequence N, in order. Events the caller may not have (type not granted, type not asked for,
//!   no consent) appear as placeholders `{sequence, withheld}` so the caller sees no gap.
//!   With `wait`, the request is held (up to 30 s) until something new is published.
//! - `GET /peer/v1/manifest`: the signed manifest this node holds, so newer ones spread.

use std::sync::Arc;
use std::time::Duration;

use hyper::body::Incoming;
use hyper::{Method, Request, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::event::identifiers::MemberId;
use crate::event::schema::EventType;
use crate::event::SignedEvent;
use crate::net::http::{self, Problem, Response};
use crate::net::metrics::Metrics;
use crate::registry::access::AccessRecord;
use crate::registry::consent::{self, ConsentState, Withheld};
use crate::store::{Store, StoreError};
use crate::trust::manifest::{Manifest, Trust};
use crate::write::Heads;

/// Longest long-poll a peer may ask for.
pub const MAX_WAIT_SECS: u64 = 30;
/// Most events per feed page.
pub const MAX_FEED_PAGE: u64 = 1000;

/// One entry of a feed page as sent.
#[derive(Serialize)]
struct FeedItem<'a> {
    sequence: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    jws: Option<&'a RawValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    withheld: Option<&'static str>,
}

#[derive(Serialize)]
struct FeedPage<'a> {
    events: Vec<FeedItem<'a>>,
    next: u64,
    head: u64,
}

/// One entry of a feed page as received.
#[derive(Debug, Deserialize)]
pub struct ReceivedItem {
    pub sequence: u64,
    #[serde(default)]
    pub jws: Option<Box<RawValue>>,
    #[serde(default)]
    pub withheld: Option<String>,
}

/// A feed page as received.
#[derive(Debug, Deserialize)]
pub struct ReceivedPage {
    pub events: Vec<ReceivedItem>,
    pub next: u64,
    pub head: u64,
}

/// What the peer handlers share.
pub struct PeerApi {
    pub member: MemberId,
    pub store: Store,
    pub trust: Arc<Trust>,
    pub heads: Heads,
    pub metrics: Arc<Metrics>,
}

fn storage(e: StoreError) -> Problem {
    http::storage_problem(e)
}

impl PeerApi {
    pub async fn handle(self: Arc<Self>, caller: MemberId, req: Request<Incoming>) -> Response {
        let path = req.uri().path().to_string();
        let result = match (req.method(), path.as_str()) {
            (&Method::GET, "/peer/v1/feed") => self.feed(&caller, req.uri().query()).await,
            (&Method::GET, "/peer/v1/checkpoint") => crate::log::proofs::checkpoint(&self.store),
            (&Method::GET, "/peer/v1/proof/inclusion") => {
                crate::log::proofs::inclusion(&self.store, req.uri().query())
            }
            (&Method::GET, "/peer/v1/proof/consistency") => {
                crate::log::proofs::consistency(&self.store, req.uri().query())
            }
            (&Method::POST, "/peer/v1/cosignature") => self.cosignature(&caller, req).await,
            (&Method::GET, "/peer/v1/manifest") => Ok(http::with_type(
                StatusCode::OK,
                "application/jose+json",
                bytes::Bytes::copy_from_slice(&self.trust.held_bytes()),
            )),
            _ => Err(Problem::new(
                StatusCode::NOT_FOUND,
                "not-found",
                "Not found",
                format!("no peer resource at {path}"),
            )),
        };
        result.unwrap_or_else(|p| p.response())
    }

    /// A witness sends its co-signature of one of this node's checkpoints.
    async fn cosignature(
        &self,
        caller: &MemberId,
        req: Request<Incoming>,
    ) -> Result<Response, Problem> {
        let body = http::read_body(req, 64 * 1024).await?;
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

    async fn feed(&self, caller: &MemberId, query: Option<&str>) -> Result<Response, Problem> {
        use std::sync::atomic::Ordering::Relaxed;
        self.metrics.feed_requests.fetch_add(1, Relaxed);
        let manifest = self.trust.usable().map_err(|e| {
            Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "manifest-expired",
                "Manifest expired",
                e.to_string(),
            )
        })?;
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
        let wait = http::query_u64(query, "wait", 0)?.min(MAX_WAIT_SECS);
        let requested = requested_types(query)?;

        let mut head = self.heads.own_sequence.clone();
        if *head.borrow() <= after && wait > 0 {
            let _ = tokio::time::timeout(Duration::from_secs(wait), head.wait_for(|h| *h > after))
                .await;
        }
        let head = *head.borrow();
        let end = head.min(after.saturating_add(limit));
        let mut stored = Vec::new();
        for sequence in after + 1..=end {
            let bytes = self
                .store
                .position_of_sequence(&self.member, sequence)
                .and_then(|p| p.map(|p| self.store.get(p)).transpose())
                .map_err(storage)?
                .flatten();
            match bytes {
                Some(b) => stored.push((sequence, b)),
                None => break,
            }
        }
        let mut events = Vec::with_capacity(stored.len());
        let mut access = crate::store::WriteBatch::default();
        let now = time::OffsetDateTime::now_utc();
        let request_id = uuid::Uuid::now_v7();
        for (sequence, bytes) in &stored {
            match self.decide(&manifest, caller, &requested, bytes)? {
                Ok(delivered) => {
                    AccessRecord {
                        time: now,
                        reader: caller.to_string(),
                        user: None,
                        purpose: Some(delivered.purposes.join(", ")),
                        what: format!(
                            "event {} ({}) delivered to the reader's node",
                            delivered.id, delivered.event_type
                        ),
                        request_id,
                    }
                    .stage(&mut access, &delivered.pin);
                    let raw = std::str::from_utf8(bytes)
                        .ok()
                        .and_then(|s| serde_json::from_str::<&RawValue>(s).ok());
                    events.push(FeedItem {
                        sequence: *sequence,
                        jws: raw,
                        withheld: None,
                    });
                    self.metrics.feed_events_delivered.fetch_add(1, Relaxed);
                }
                Err(w) => {
                    events.push(FeedItem {
                        sequence: *sequence,
                        jws: None,
                        withheld: Some(w.code()),
                    });
                    self.metrics.feed_events_withheld.fetch_add(1, Relaxed);
                }
            }
        }
        if !events.is_empty() {
            // The access log is durable before the data leaves the node.
            self.store
                .apply_other(access)
                .and_then(|()| self.store.flush())
                .map_err(storage)?;
        }
        let next = events.last().map_or(after, |e| e.sequence);
        Ok(http::json(StatusCode::OK, &FeedPage { events, next, head }))
    }

    /// Whether the stored event may go to `caller`; the outer error is a storage failure.
    fn decide(
        &self,
        manifest: &Manifest,
        caller: &MemberId,
        requested: &Option<Vec<EventType>>,
        bytes: &[u8],
    ) -> Result<Result<Delivered, Withheld>, Problem> {
        let (signed, _) =
            SignedEvent::parse(bytes).map_err(|e| storage(StoreError::Corrupt(e.code())))?;
        let event = signed.event();
        let Some(purposes) = manifest.reader_purposes(caller, event.event_type) else {
            return Ok(Err(Withheld::NotAuthorised));
        };
        if requested
            .as_ref()
            .is_some_and(|r| !r.contains(&event.event_type))
        {
            return Ok(Err(Withheld::NotRequested));
        }
        let Some(pin) = consent::person_pin(&event.data) else {
            return Ok(Err(Withheld::NoConsent));
        };
        let state: Option<ConsentState> = self.store.consent(pin).map_err(storage)?;
        Ok(
            consent::decide(event, state.as_ref(), caller, purposes).map(|()| Delivered {
                pin: pin.to_string(),
                id: event.id.to_string(),
                event_type: event.event_type,
                purposes: purposes.to_vec(),
            }),
        )
    }
}

/// What the access log needs of a delivered event.
struct Delivered {
    pin: String,
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
