//! Subscriptions: one task per `[[subscriptions]]` entry long-polls the publisher's feed over
//! mutual TLS, runs the receipt checks on each event, and stores the good ones together with the
//! advanced cursor in one durable write. Refused events go to quarantine with their reason and do
//! not hold up the ones after them. A gap in sequences is reported and fetched again. Failures
//! back off exponentially with jitter, capped, and recover by themselves.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use ed25519_dalek::SigningKey;
use rand::Rng;
use serde::{Deserialize, Serialize};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio_rustls::TlsConnector;

use crate::event::identifiers::MemberId;
use crate::event::json::SerdeError;
use crate::event::schema::{EventType, Schemas};
use crate::event::SignedEvent;
use crate::federation::feed::ReceivedPage;
use crate::federation::receipt::{self, Checker, Reason, Rejection};
use crate::net::client::{ClientError, HttpClient};
use crate::net::metrics::Metrics;
use crate::store::{
    Meta, QuarantineCaps, QuarantineError, QuarantineFull, Quarantined, Store, StoreError,
};
use crate::trust::manifest::{ManifestError, Trust};
use crate::trust::tls::{self, Identity};
use crate::write::{PublishError, Publisher, ReceiveCursor, Receiving};

/// One subscription from the node config.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Subscription {
    /// The publisher.
    pub from: MemberId,
    /// The types asked of it.
    pub types: Vec<EventType>,
    /// Through this X-Road security server (`http(s)://host:port`): the publisher's `jol-feed`
    /// service under `/r1/{publisher}/jol-feed/v1`. Without it: directly over Jol's mutual TLS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub via: Option<String>,
}

/// Tuning of the sync tasks.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SyncSettings {
    /// Events asked for per feed request.
    pub page_size: u64,
    /// Long-poll time asked of the publisher, seconds.
    pub wait_secs: u64,
    /// First retry delay after a failure, milliseconds.
    pub min_backoff_ms: u64,
    /// Longest retry delay, milliseconds.
    pub max_backoff_ms: u64,
    /// How long new events gather at the publisher before a caught-up subscriber asks for
    /// them, milliseconds: at a high rate, a feed page, its write and its projection then carry
    /// many events instead of a few each, for at most this much more latency. 0 asks at once.
    pub gather_ms: u64,
    /// How often this node signs a checkpoint of its log while it grows, milliseconds.
    pub checkpoint_ms: u64,
    /// How often to witness a publisher's checkpoint while syncing, milliseconds.
    pub witness_ms: u64,
    /// How often to ask a publisher for its manifest while syncing (and to read the manifest
    /// file again), milliseconds: a newer one (a grant narrowed, a member or key removed) is
    /// taken up within this long, not only when a session starts or the node restarts.
    pub manifest_ms: u64,
    /// How often this node erases what the manifest's retention no longer lets it keep, seconds
    /// (and once at start).
    pub retention_sweep_secs: u64,
    /// How often this node checks whether a month closed whose KPI report it has not signed
    /// yet, seconds (and once at start).
    pub kpi_report_secs: u64,
    /// How long a peer may take to send a complete answer, beyond the long-poll wait,
    /// milliseconds: a peer that hangs or trickles is cut off after it.
    pub answer_timeout_ms: u64,
    /// Most quarantine records kept from one publisher: beyond it, what that peer sends wrong is
    /// counted (`jol_quarantine_dropped_total`) and reported in `/readyz`, not kept.
    pub quarantine_cap: u64,
    /// Most bytes of quarantine records (as stored) kept from one publisher, beyond which the
    /// same: a peer sending its largest events wrong would pass the whole quarantine's byte cap
    /// long before its record cap, and leave no room for what the others send wrong. At least
    /// 4,096 (the config refuses less: it could keep nothing).
    pub quarantine_cap_bytes: u64,
}

impl SyncSettings {
    /// What one publisher may hold of the quarantine.
    pub(crate) fn quarantine_share(&self) -> QuarantineCaps {
        QuarantineCaps {
            max_records: self.quarantine_cap,
            max_bytes: self.quarantine_cap_bytes,
        }
    }
}

impl Default for SyncSettings {
    fn default() -> Self {
        SyncSettings {
            page_size: 1000,
            wait_secs: 25,
            min_backoff_ms: 200,
            max_backoff_ms: 30_000,
            gather_ms: 20,
            checkpoint_ms: 2_000,
            witness_ms: 5_000,
            manifest_ms: 60_000,
            retention_sweep_secs: 3_600,
            kpi_report_secs: 3_600,
            answer_timeout_ms: 15_000,
            quarantine_cap: 100_000,
            quarantine_cap_bytes: 128 << 20,
        }
    }
}

/// Why a sync session ended. Texts carry no personal data.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SyncError {
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    #[error("{0} is not a member in the manifest")]
    NotMember(MemberId),
    #[error("cannot reach {endpoint}: {source}")]
    Connect {
        endpoint: String,
        source: std::io::Error,
    },
    #[error("TLS with {endpoint} failed: {source}")]
    Tls {
        endpoint: String,
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("request to the publisher failed: {0}")]
    Http(#[source] ClientError),
    /// The task carrying the request for the next page ended without an answer (it panicked
    /// or was cancelled).
    #[error("the request for the next page ended: {0}")]
    Ahead(#[source] tokio::task::JoinError),
    #[error("the publisher sent no complete answer within {0:?}")]
    Timeout(Duration),
    #[error("the publisher's answer is larger than {0} bytes")]
    TooLarge(usize),
    #[error("the publisher answered {status} ({problem})")]
    Status { status: u16, problem: String },
    #[error("X-Road answered {status}: {kind} ({message})")]
    XRoad {
        status: u16,
        kind: String,
        message: String,
    },
    #[error("the security server: {0}")]
    Via(#[from] crate::net::xroad::XRoadError),
    #[error("the feed page is not valid: {0}")]
    Decode(#[source] SerdeError),
    #[error("storage: {0}")]
    Store(#[from] StoreError),
    #[error("sequence {sequence} was refused for now ({reason}: {detail}); retrying after taking up the peer's newest manifest")]
    Retry {
        sequence: u64,
        reason: Reason,
        detail: String,
    },
    #[error("a proof could not be fetched from the publisher: {0}")]
    ProofFetch(#[from] ProofFetchError),
    #[error("storing received events failed: {0}")]
    Publish(#[from] PublishError),
    /// A refused event (or evidence) could not be kept: the cursor stays before it, so it is
    /// fetched and refused again once the quarantine has room.
    #[error("a refused event waits at the publisher until the quarantine can keep it: {0}")]
    QuarantineFull(QuarantineFull),
}

/// Why a proof asked of the publisher did not come: never evidence of a fork.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ProofFetchError {
    #[error("the publisher answered {0} for a proof")]
    Status(hyper::StatusCode),
    #[error("the proof is not JSON: {0}")]
    NotJson(#[source] SerdeError),
    #[error("the proof answer is malformed: {0}")]
    Malformed(&'static str),
}

impl From<ClientError> for SyncError {
    fn from(e: ClientError) -> SyncError {
        match e {
            ClientError::TimedOut(d) => SyncError::Timeout(d),
            ClientError::TooLarge(n) => SyncError::TooLarge(n),
            other => SyncError::Http(other),
        }
    }
}

impl SyncError {
    /// A short code for the metrics label `kind`.
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            SyncError::Manifest(_) => "manifest",
            SyncError::NotMember(_) => "not-member",
            SyncError::Connect { .. } => "connect",
            SyncError::Tls { .. } => "tls",
            SyncError::Http(_) | SyncError::Ahead(_) => "http",
            SyncError::Timeout(_) => "timeout",
            SyncError::TooLarge(_) => "too-large",
            SyncError::Status { .. } => "status",
            SyncError::XRoad { .. } => "xroad",
            SyncError::Via(_) => "connect",
            SyncError::Decode(_) => "decode",
            SyncError::Store(_) | SyncError::Publish(_) => "store",
            SyncError::Retry { .. } => "retry",
            SyncError::ProofFetch(_) => "proof-fetch",
            SyncError::QuarantineFull(_) => "quarantine-full",
        }
    }
}

/// Run the receipt checks of a page's events on every core, each core's share of the page with
/// its signatures verified as one batch (signature verification dominates a catch-up); verdicts
/// come back in page order, `None` for items without an event.
fn check_in_parallel(
    checker: &Checker<'_>,
    items: &[crate::federation::feed::ReceivedItem],
    from: &MemberId,
) -> Vec<Option<Result<SignedEvent, Rejection>>> {
    let check_all = |chunk: &[crate::federation::feed::ReceivedItem]| -> Vec<_> {
        let items: Vec<Option<(&[u8], u64)>> = chunk
            .iter()
            .map(|item| Some((item.jws.as_ref()?.get().as_bytes(), item.sequence)))
            .collect();
        checker.check_batch(&items, from)
    };
    crate::cores::blocking(|| crate::cores::map_chunks(items, 16, check_all))
}

/// Ask the feed for one page and decode it; an X-Road fault or an error status ends the session.
async fn fetch_page(client: &mut HttpClient, path: &str) -> Result<ReceivedPage, SyncError> {
    let (status, body) = client.get(path).await.map_err(SyncError::from)?;
    decode_page(status, &body)
}

/// A feed answer as the subscriber reads it: an X-Road fault, an error status (with its
/// problem type, if the body names one) or a page.
pub(crate) fn decode_page(
    status: hyper::StatusCode,
    body: &[u8],
) -> Result<ReceivedPage, SyncError> {
    if let Some(f) = crate::net::xroad::Fault::recognise(body) {
        return Err(SyncError::XRoad {
            status: status.as_u16(),
            kind: f.kind,
            message: f.message,
        });
    }
    if !status.is_success() {
        let problem = serde_json::from_slice::<serde_json::Value>(body)
            .ok()
            .and_then(|v| v.get("type").and_then(|t| t.as_str()).map(String::from))
            .unwrap_or_default();
        return Err(SyncError::Status {
            status: status.as_u16(),
            problem,
        });
    }
    serde_json::from_slice(body).map_err(|e| SyncError::Decode(e.into()))
}

/// Whether the publisher holds more than `page` brought: it ended before the publisher's head
/// (full, or ended by its byte budget). Otherwise the session is caught up, and the next request
/// waits for new events.
fn more_waiting(page: &ReceivedPage) -> bool {
    page.events.last().is_some_and(|e| e.sequence < page.head)
}

/// Where the next page starts, if that is known before this one is checked: after its last
/// sequence, when its events run on from `cursor` (taken whole, they move the cursor there) and
/// it brought no releases (which move the release cursor).
fn next_page_after(
    events: &[crate::federation::feed::ReceivedItem],
    cursor: u64,
    brought_releases: bool,
) -> Option<u64> {
    let last = events.last()?.sequence;
    (!brought_releases && last == cursor + events.len() as u64).then_some(last)
}

/// The delay before a subscription's next session after one failed (before jitter): the first
/// `min_backoff_ms`, then twice the one before after each failure, up to `max_backoff_ms`; the
/// first again after a session that made progress.
pub(super) struct Backoff {
    min: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    pub(super) fn new(settings: &SyncSettings) -> Backoff {
        let min = Duration::from_millis(settings.min_backoff_ms.max(1));
        Backoff {
            min,
            max: Duration::from_millis(settings.max_backoff_ms.max(1)),
            next: min,
        }
    }

    /// The delay after a failed session; `progressed`: it stored something before it failed.
    pub(super) fn after_failure(&mut self, progressed: bool) -> Duration {
        if progressed {
            self.next = self.min;
        }
        let delay = self.next;
        self.next = (delay * 2).min(self.max);
        delay
    }
}

/// A session's connection to the publisher: idle, or carrying the request for the next page
/// while the current one is checked and stored (a catch-up then overlaps the publisher's reading
/// and the transfer of page N+1 with the checks and the durable write of page N).
enum Line {
    Idle(HttpClient),
    Asked(Ahead),
}

impl Line {
    /// The connection back, with the page asked ahead if it starts at the cursors the store now
    /// holds (otherwise it is dropped and asked again).
    async fn settle(
        self,
        cursor: u64,
        release_cursor: u64,
    ) -> Result<(HttpClient, Option<ReceivedPage>), SyncError> {
        match self {
            Line::Idle(client) => Ok((client, None)),
            Line::Asked(mut ahead) => {
                let (client, page) = (&mut ahead.task).await.map_err(SyncError::Ahead)?;
                let wanted = (ahead.after, ahead.release_after) == (cursor, release_cursor);
                Ok((client, if wanted { Some(page?) } else { None }))
            }
        }
    }
}

/// A feed request sent ahead, on a task that owns the connection until it is answered; aborted
/// when dropped (a session that ends does not wait for a long poll it no longer wants).
struct Ahead {
    after: u64,
    release_after: u64,
    task: tokio::task::JoinHandle<(HttpClient, Result<ReceivedPage, SyncError>)>,
}

impl Ahead {
    /// Send the request after `gather` (new events gather at the publisher meanwhile).
    fn send(
        mut client: HttpClient,
        after: u64,
        release_after: u64,
        path: String,
        gather: Duration,
    ) -> Ahead {
        let task = tokio::spawn(async move {
            if !gather.is_zero() {
                tokio::time::sleep(gather).await;
            }
            let page = fetch_page(&mut client, &path).await;
            (client, page)
        });
        Ahead {
            after,
            release_after,
            task,
        }
    }
}

impl Drop for Ahead {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A page after the receipt checks: the events to store, the sequence the cursor moves to, and
/// the rejection that ended the page early if a newer manifest or a working store may cure it.
struct Checked {
    accepted: Vec<SignedEvent>,
    next: u64,
    retry: Option<SyncError>,
}

/// What a page's checks have taken so far: the events to store, and the ids held (these and
/// the page in flight's).
struct Taken {
    accepted: Vec<SignedEvent>,
    ids: HashSet<uuid::Uuid>,
}

/// A page handed to the writer, its write not answered yet.
struct Writing {
    receiving: Receiving,
    /// The cursor its write moves to.
    to: u64,
    /// Its events, which the next page's checks must see as held.
    events: Vec<SignedEvent>,
}

/// What every sync task of a node shares.
pub(crate) struct Syncer {
    pub(crate) me: MemberId,
    pub(crate) store: Store,
    pub(crate) trust: Arc<Trust>,
    pub(crate) schemas: Arc<Schemas>,
    pub(crate) publisher: Publisher,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) tls_cert: PathBuf,
    pub(crate) tls_key: PathBuf,
    pub(crate) settings: SyncSettings,
    /// This node's key, to co-sign the checkpoints it witnesses.
    pub(crate) witness_key: SigningKey,
    /// Held while a submitted checkpoint is checked against the record and replaces it
    /// (`witness_server`), so two submissions cannot roll the record back.
    pub(crate) witnessing: std::sync::Mutex<()>,
    /// Held while an alarm about a log is decided and recorded (`alarm`), so two cannot both
    /// take its last evidence slot.
    pub(crate) alarms: std::sync::Mutex<()>,
    /// The TLS with this node's X-Road security server, for `via = "https://…"`.
    pub(crate) xroad: Option<crate::net::xroad::XRoadConfig>,
    /// The largest signed event this node accepts (`[limits] max_event_bytes`).
    pub(crate) max_event_bytes: usize,
    /// The most the quarantine keeps (`[limits]`).
    pub(crate) quarantine_caps: QuarantineCaps,
}

impl Syncer {
    /// Run one subscription until `stop` turns true.
    pub(crate) async fn run(self: Arc<Self>, sub: Subscription, mut stop: watch::Receiver<bool>) {
        let mut backoff = Backoff::new(&self.settings);
        loop {
            let mut progressed = false;
            let ended = tokio::select! {
                _ = stop.changed() => return,
                r = self.session(&sub, &mut progressed) => r,
            };
            let Err(e) = ended else { return };
            let delay = backoff.after_failure(progressed);
            tracing::warn!(from = %sub.from, error = %e, retry_ms = delay.as_millis() as u64, "sync interrupted");
            self.metrics.sync_status(&sub.from, |s| {
                s.connected = false;
                s.last_error = Some(e.to_string());
                *s.failures.entry(e.kind()).or_default() += 1;
                if let SyncError::XRoad { kind, .. } = &e {
                    let family = crate::net::xroad::FaultFamily::of(kind);
                    *s.xroad_faults.entry(family).or_default() += 1;
                }
            });
            let jittered = delay.mul_f64(rand::rng().random_range(0.5..1.5));
            tokio::select! {
                _ = stop.changed() => return,
                _ = tokio::time::sleep(jittered) => {}
            }
        }
    }

    /// Connect, take up a newer manifest, then pull pages until something fails.
    async fn session(&self, sub: &Subscription, progressed: &mut bool) -> Result<(), SyncError> {
        let mut client = self.connect(sub).await?;
        self.take_up_manifest(&mut client, &sub.from).await?;
        let mut manifest_at = std::time::Instant::now();
        self.metrics.sync_status(&sub.from, |s| {
            s.connected = true;
            s.last_error = None;
        });
        let mut witnessed_at: Option<std::time::Instant> = None;
        let types = sub
            .types
            .iter()
            .map(|t| t.as_str())
            .collect::<Vec<_>>()
            .join(",");
        let mut line = Line::Idle(client);
        let mut cursor = self.store.cursor(&sub.from)?;
        self.metrics.sync_status(&sub.from, |s| s.cursor = cursor);
        // The page handed to the writer and not answered yet: the next one is checked meanwhile.
        let mut writing: Option<Writing> = None;
        loop {
            self.trust.usable()?;
            let release_cursor = self.release_cursor(&sub.from)?;
            let (mut client, asked) = line.settle(cursor, release_cursor).await?;
            let due = witnessed_at
                .is_none_or(|t| t.elapsed() >= Duration::from_millis(self.settings.witness_ms));
            if due {
                self.witness(&mut client, &sub.from).await?;
                witnessed_at = Some(std::time::Instant::now());
            }
            if manifest_at.elapsed() >= Duration::from_millis(self.settings.manifest_ms) {
                self.take_up_manifest(&mut client, &sub.from).await?;
                manifest_at = std::time::Instant::now();
            }
            let mut page = match asked {
                Some(page) => page,
                None => {
                    let path = self.feed_path(cursor, release_cursor, &types);
                    fetch_page(&mut client, &path).await?
                }
            };
            self.metrics.sync_status(&sub.from, |s| {
                s.connected = true;
                s.last_error = None;
                s.head = page.head;
            });
            let released = std::mem::take(&mut page.released);
            // A page that ends before the publisher's head (full, or ended by its byte budget):
            // more is waiting there already. Otherwise this session is caught up: the next
            // request waits for new events.
            let more_waiting = more_waiting(&page);
            // While this page is checked and stored, the next one is on its way, if where it
            // starts is known.
            let ahead = next_page_after(&page.events, cursor, !released.is_empty());
            // Caught up: let new events gather at the publisher before asking.
            let gather = match more_waiting {
                true => Duration::ZERO,
                false => Duration::from_millis(self.settings.gather_ms),
            };
            line = match ahead {
                Some(after) => {
                    let path = self.feed_path(after, release_cursor, &types);
                    Line::Asked(Ahead::send(client, after, release_cursor, path, gather))
                }
                None => Line::Idle(client),
            };
            let in_flight = writing.as_ref().map_or(&[][..], |w| w.events.as_slice());
            let checked = self.check_page(&sub.from, cursor, page, in_flight)?;
            let handed = self
                .hand_over(&sub.from, cursor, checked.next, checked.accepted)
                .await?;
            if let Some(before) = writing.take() {
                self.written(&sub.from, before, progressed).await?;
            }
            writing = handed;
            cursor = checked.next;
            // Caught up, ended early, or releases to take: nothing stays with the writer
            // unanswered.
            if !more_waiting || checked.retry.is_some() || !released.is_empty() {
                if let Some(page) = writing.take() {
                    self.written(&sub.from, page, progressed).await?;
                }
            }
            if let Some(e) = checked.retry {
                return Err(e);
            }
            let new_release_cursor = self
                .take_released(&sub.from, release_cursor, released)
                .await?;
            if new_release_cursor > release_cursor {
                *progressed = true;
            }
            self.metrics
                .sync_status(&sub.from, |s| s.release_cursor = new_release_cursor);
        }
    }

    /// Ask the publisher for its manifest and offer it to this node's trust: a newer one is
    /// taken up, an older or equal one changes nothing, a refused one is logged.
    async fn take_up_manifest(
        &self,
        client: &mut HttpClient,
        from: &MemberId,
    ) -> Result<(), SyncError> {
        let (status, body) = client.get("/manifest").await.map_err(SyncError::from)?;
        if let Some(f) = crate::net::xroad::Fault::recognise(&body) {
            return Err(SyncError::XRoad {
                status: status.as_u16(),
                kind: f.kind,
                message: f.message,
            });
        }
        if !status.is_success() {
            return Ok(());
        }
        match self.trust.offer(&body) {
            Ok(true) => tracing::info!(from = %from, "took up a newer manifest from a peer"),
            Ok(false) | Err(ManifestError::Older { .. }) => {}
            Err(e) => {
                tracing::warn!(from = %from, error = %e, "peer offered a manifest that was refused")
            }
        }
        Ok(())
    }

    /// Hand a checked page to the writer: its events and the cursor moved from `after` to `to`,
    /// in one durable write to be answered later ([`Syncer::written`]).
    async fn hand_over(
        &self,
        from: &MemberId,
        after: u64,
        to: u64,
        events: Vec<SignedEvent>,
    ) -> Result<Option<Writing>, SyncError> {
        if to <= after {
            return Ok(None);
        }
        let cursor = ReceiveCursor::Sequence { after, to };
        let receiving = self
            .publisher
            .hand_over(from.clone(), events.clone(), cursor)
            .await?;
        Ok(Some(Writing {
            receiving,
            to,
            events,
        }))
    }

    /// Wait for a handed-over page to be stored; its cursor is then durable.
    async fn written(
        &self,
        from: &MemberId,
        page: Writing,
        progressed: &mut bool,
    ) -> Result<(), SyncError> {
        page.receiving.stored().await?;
        *progressed = true;
        self.metrics.sync_status(from, |s| s.cursor = page.to);
        Ok(())
    }

    /// The feed request for the events after `cursor` and the releases after `release_cursor`.
    fn feed_path(&self, cursor: u64, release_cursor: u64, types: &str) -> String {
        format!(
            "/feed?after={cursor}&limit={}&wait={}&types={types}&released_after={release_cursor}",
            self.settings.page_size, self.settings.wait_secs
        )
    }

    /// A connection to the publisher's feed: through the security server named by `via`, or
    /// directly over mutual TLS. Either way its paths are the feed's resources (`/feed`, …).
    async fn connect(&self, sub: &Subscription) -> Result<HttpClient, SyncError> {
        let deadline = Duration::from_secs(self.settings.wait_secs)
            + Duration::from_millis(self.settings.answer_timeout_ms);
        let Some(via) = &sub.via else {
            return Ok(self
                .connect_direct(&sub.from)
                .await?
                .with_prefix(crate::federation::feed::PEER_PREFIX.into()));
        };
        let base = crate::net::xroad::BaseUrl::parse(via)?;
        let tls = match (&self.xroad, base.tls) {
            (Some(x), true) => Some(crate::net::xroad::security_server_tls(x)?),
            _ => None,
        };
        Ok(base
            .connect(tls, deadline)
            .await?
            .with_prefix(format!(
                "{}{}",
                base.path,
                crate::net::xroad::feed_prefix(&sub.from)
            ))
            .with_xroad_client(self.me.to_string()))
    }

    pub(super) async fn connect_direct(&self, from: &MemberId) -> Result<HttpClient, SyncError> {
        let manifest = self.trust.usable()?;
        let member = manifest
            .member(from)
            .ok_or_else(|| SyncError::NotMember(from.clone()))?;
        let endpoint = member.peer_endpoint.clone();
        let tls_err = |source: Box<dyn std::error::Error + Send + Sync>| SyncError::Tls {
            endpoint: endpoint.clone(),
            source,
        };
        let ca =
            tls::certificate_from_pem(&manifest.ca_certificate).map_err(|e| tls_err(e.into()))?;
        let identity =
            Identity::load(&self.tls_cert, &self.tls_key).map_err(|e| tls_err(e.into()))?;
        let config = tls::client_config(Some(identity), &ca, member.tls_key_sha256.clone())
            .map_err(|e| tls_err(e.into()))?;
        let connect_err = |source| SyncError::Connect {
            endpoint: endpoint.clone(),
            source,
        };
        let tcp = tokio::time::timeout(Duration::from_secs(5), TcpStream::connect(&endpoint))
            .await
            .map_err(|_| connect_err(std::io::ErrorKind::TimedOut.into()))?
            .map_err(connect_err)?;
        let _ = tcp.set_nodelay(true);
        let tls = tokio::time::timeout(
            Duration::from_secs(10),
            TlsConnector::from(config).connect(tls::peer_server_name(), tcp),
        )
        .await
        .map_err(|_| tls_err("handshake timed out".into()))?
        .map_err(|e| tls_err(e.into()))?;
        let deadline = Duration::from_secs(self.settings.wait_secs)
            + Duration::from_millis(self.settings.answer_timeout_ms);
        HttpClient::over(tls, endpoint.clone())
            .await
            .map(|c| c.with_deadline(deadline))
            .map_err(SyncError::from)
    }

    /// Check a page's events and quarantine the refused. `in_flight` are the events of the page
    /// before, handed to the writer and not stored yet: an event already among them is a
    /// duplicate, and a correction of one of them follows the same rule as within a page.
    fn check_page(
        &self,
        from: &MemberId,
        cursor: u64,
        page: ReceivedPage,
        in_flight: &[SignedEvent],
    ) -> Result<Checked, SyncError> {
        let manifest = self.trust.usable()?;
        let checker = self.checker(&manifest);
        // The contiguous run of the page; a gap ends it and is fetched again from the cursor.
        let mut items = page.events;
        if let Some(gap) = items
            .iter()
            .zip(cursor + 1..)
            .position(|(item, expected)| item.sequence != expected)
        {
            let got = items[gap].sequence;
            tracing::warn!(%from, expected = cursor + 1 + gap as u64, got, "gap in the feed; fetching again from the cursor");
            self.metrics.sync_status(from, |s| s.gaps += 1);
            items.truncate(gap);
        }
        let mut verdicts = check_in_parallel(&checker, &items, from).into_iter();
        let mut taken = Taken {
            accepted: Vec::new(),
            ids: in_flight.iter().map(|s| s.event().id).collect(),
        };
        let mut next = cursor;
        let mut retry = None;
        for item in items {
            let verdict = verdicts.next().flatten();
            // A rejection a newer manifest or a working store may cure: the cursor stops before
            // it, and the session ends so the next one takes up the peer's newest manifest.
            if let Some(Err(r)) = verdict
                .as_ref()
                .filter(|v| v.as_ref().is_err_and(|r| r.reason.is_retryable()))
            {
                retry = Some(SyncError::Retry {
                    sequence: item.sequence,
                    reason: r.reason,
                    detail: r.detail.clone(),
                });
                break;
            }
            let sequence = item.sequence;
            // A refusal the quarantine cannot keep: the cursor stops before it (nothing lost).
            if let Err(e) = self.take(from, item, verdict, in_flight, &mut taken) {
                retry = Some(e);
                break;
            }
            next = sequence;
        }
        Ok(Checked {
            accepted: taken.accepted,
            next,
            retry,
        })
    }

    /// Take one item of a page after its receipt checks: a good event joins `taken`, a refused
    /// one is quarantined. Fails when the quarantine cannot keep the refusal.
    fn take(
        &self,
        from: &MemberId,
        item: crate::federation::feed::ReceivedItem,
        verdict: Option<Result<SignedEvent, Rejection>>,
        in_flight: &[SignedEvent],
        taken: &mut Taken,
    ) -> Result<(), SyncError> {
        let Some(raw) = item.jws else {
            if item.withheld.is_some() {
                return Ok(());
            }
            let detail = format!(
                "sequence {} has neither an event nor a withheld reason",
                item.sequence
            );
            return self.quarantine(from, &Rejection::new(Reason::FeedItemEmpty, detail), "");
        };
        let Some(verdict) = verdict else {
            return Ok(());
        };
        // A correction of an event not stored yet (earlier in this page, or in the page being
        // stored), which the receipt check could not see, follows the same rule.
        let verdict = verdict.and_then(|signed| {
            receipt::check_supersedes_within(signed.event(), in_flight)?;
            receipt::check_supersedes_within(signed.event(), &taken.accepted)?;
            Ok(signed)
        });
        match verdict {
            Ok(signed) if taken.ids.insert(signed.event().id) => {
                taken.accepted.push(signed);
                Ok(())
            }
            Ok(_) => self.quarantine(
                from,
                &Rejection::new(
                    Reason::Duplicate,
                    "the same event twice in this page or the one before it",
                ),
                raw.get(),
            ),
            Err(rejection) => self.quarantine(from, &rejection, raw.get()),
        }
    }

    /// The receipt checks under `manifest`.
    fn checker<'a>(&'a self, manifest: &'a crate::trust::manifest::Manifest) -> Checker<'a> {
        Checker {
            manifest,
            me: &self.me,
            schemas: &self.schemas,
            store: &self.store,
            max_event_bytes: self.max_event_bytes,
        }
    }

    /// The last number of `from`'s release log for this node that was taken.
    fn release_cursor(&self, from: &MemberId) -> Result<u64, SyncError> {
        Ok(self
            .store
            .meta(&Meta::ReleaseCursor(from.clone()))?
            .and_then(|v| v.try_into().ok())
            .map_or(0, u64::from_be_bytes))
    }

    /// Take the events the publisher released to this node (withheld when published, admitted
    /// by a later consent): the same receipt checks, in release order, with the release cursor
    /// advanced in the same durable write as the events. A retryable rejection stops there.
    async fn take_released(
        &self,
        from: &MemberId,
        cursor: u64,
        items: Vec<crate::federation::feed::ReceivedItem>,
    ) -> Result<u64, SyncError> {
        let manifest = self.trust.usable()?;
        let checker = self.checker(&manifest);
        let mut accepted: Vec<SignedEvent> = Vec::new();
        let mut next = cursor;
        let mut retry = None;
        for item in items {
            let Some(number) = item.release.filter(|n| *n > next) else {
                continue;
            };
            if let Some(raw) = &item.jws {
                let kept = match checker.check(raw.get().as_bytes(), from, item.sequence) {
                    Ok(signed) => {
                        accepted.push(signed);
                        Ok(())
                    }
                    Err(r) if r.reason.is_retryable() => Err(SyncError::Retry {
                        sequence: item.sequence,
                        reason: r.reason,
                        detail: r.detail,
                    }),
                    Err(r) => self.quarantine(from, &r, raw.get()),
                };
                if let Err(e) = kept {
                    retry = Some(e);
                    break;
                }
            }
            next = number;
        }
        if next > cursor {
            self.publisher
                .receive(from.clone(), accepted, ReceiveCursor::Release(next))
                .await?;
        }
        match retry {
            Some(e) => Err(e),
            None => Ok(next),
        }
    }

    /// Keep a refused event (or a peer's evidence) with its reason. What a publisher sends wrong
    /// beyond its share of the quarantine ([`SyncSettings::quarantine_share`]) is counted, not
    /// kept; evidence of a fork or a split ([`Reason::is_evidence`]) is not held to the share.
    /// When the quarantine itself cannot keep it (full, or the store failing), this fails: the
    /// caller stops before it, so it is fetched and refused again later rather than lost.
    pub(super) fn quarantine(
        &self,
        from: &MemberId,
        r: &Rejection,
        body: &str,
    ) -> Result<(), SyncError> {
        let record = Quarantined::new(
            from.to_string(),
            r.reason.as_str().to_string(),
            serde_json::json!({"detail": r.detail, "errors": r.fields}),
            body.to_string(),
        );
        let share = match r.reason.is_evidence() {
            true => QuarantineCaps::NONE,
            false => self.settings.quarantine_share(),
        };
        match self.store.quarantine(record, self.quarantine_caps, share) {
            Ok(_) => {
                if r.reason == Reason::Duplicate {
                    self.metrics
                        .duplicates
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
                tracing::warn!(%from, reason = r.reason.as_str(), "received event quarantined");
                self.metrics
                    .count_quarantine(from.as_str(), r.reason.as_str());
                Ok(())
            }
            Err(QuarantineError::ShareFull(full)) => {
                if self.metrics.count_sync(from, |s| &mut s.quarantine_dropped) == 1 {
                    tracing::warn!(%from, %full, "a refused event from this peer does not fit its share of the quarantine; it and the others that do not are counted, not kept");
                }
                Ok(())
            }
            Err(QuarantineError::Full(full)) => {
                self.metrics.count_quarantine_full(from.as_str());
                tracing::warn!(%from, reason = r.reason.as_str(), %full, "a refused event waits at its publisher");
                Err(SyncError::QuarantineFull(full))
            }
            Err(QuarantineError::Store(e)) => {
                tracing::error!(error = %e, "cannot write quarantine record");
                Err(SyncError::Store(e))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::budget::Budget;
    use crate::event::Event;
    use crate::federation::feed::ReceivedItem;
    use crate::federation::fixture::{returnee, Federation, Node};
    use crate::net::metrics::SyncStatus;
    use serde_json::value::RawValue;

    /// The employment service's node, following the migration agency's feed.
    struct World {
        fed: Federation,
        node: Node,
        syncer: Syncer,
    }

    fn world_with(settings: SyncSettings, caps: QuarantineCaps) -> World {
        let fed = Federation::new();
        let node = fed.node(&fed.employment);
        let syncer = node.syncer(settings, caps);
        World { fed, node, syncer }
    }

    fn world() -> World {
        world_with(SyncSettings::default(), QuarantineCaps::NONE)
    }

    impl World {
        fn from(&self) -> &MemberId {
            &self.fed.migration
        }

        /// The publisher's event of `sequence`: a returnee record, its consent naming this node.
        fn event(&self, sequence: u64) -> Event {
            let pin = format!("2150319901{sequence:04}");
            Event::new(
                self.from().clone(),
                EventType::ReturneeRecord,
                sequence,
                returnee(&pin, &[&self.fed.employment]),
            )
        }

        /// The publisher's event of `sequence`, signed with its key.
        fn signed(&self, sequence: u64) -> SignedEvent {
            self.signed_as(self.event(sequence), "sign-1")
        }

        /// `event` signed with the publisher's key under the name `key` (the manifest lists
        /// only `sign-1`).
        fn signed_as(&self, event: Event, key: &str) -> SignedEvent {
            let kid = crate::event::identifiers::KeyName::new(self.from().clone(), key).unwrap();
            event.sign(self.fed.key(self.from()), &kid)
        }

        fn check(
            &self,
            cursor: u64,
            events: Vec<ReceivedItem>,
            in_flight: &[SignedEvent],
        ) -> Checked {
            let head = events.last().map_or(cursor, |i| i.sequence);
            self.syncer
                .check_page(self.from(), cursor, page(events, head), in_flight)
                .unwrap()
        }

        /// The quarantine's records, oldest first: (reason, body).
        fn quarantined(&self) -> Vec<(String, String)> {
            self.node
                .store
                .quarantined(0, 100, &mut Budget::unlimited())
                .unwrap()
                .into_iter()
                .map(|q| {
                    assert_eq!(q.origin, self.from().as_str());
                    (q.reason, q.body)
                })
                .collect()
        }

        fn status(&self) -> SyncStatus {
            let mut status = SyncStatus::default();
            self.node
                .metrics
                .sync_status(self.from(), |s| status = s.clone());
            status
        }
    }

    fn item(sequence: u64, signed: &SignedEvent) -> ReceivedItem {
        let jws = String::from_utf8(signed.bytes().to_vec()).unwrap();
        ReceivedItem {
            release: None,
            sequence,
            jws: Some(RawValue::from_string(jws).unwrap()),
            withheld: None,
        }
    }

    fn placeholder(sequence: u64, withheld: Option<&str>) -> ReceivedItem {
        ReceivedItem {
            release: None,
            sequence,
            jws: None,
            withheld: withheld.map(String::from),
        }
    }

    fn released(number: u64, item: ReceivedItem) -> ReceivedItem {
        ReceivedItem {
            release: Some(number),
            ..item
        }
    }

    fn page(events: Vec<ReceivedItem>, head: u64) -> ReceivedPage {
        ReceivedPage {
            events,
            next: 0,
            head,
            released: Vec::new(),
            release_head: None,
        }
    }

    fn sequences(events: &[SignedEvent]) -> Vec<u64> {
        events.iter().map(SignedEvent::sequence).collect()
    }

    fn retry_of(checked: &Checked) -> Option<(u64, Reason)> {
        match &checked.retry {
            Some(SyncError::Retry {
                sequence, reason, ..
            }) => Some((*sequence, *reason)),
            None => None,
            Some(other) => panic!("not a retry: {other}"),
        }
    }

    #[test]
    fn more_is_waiting_only_when_a_page_ends_before_the_publishers_head() {
        let upto = |last: u64| {
            (1..=last)
                .map(|s| placeholder(s, Some("no-consent")))
                .collect()
        };
        assert!(more_waiting(&page(upto(2), 5)), "ended early");
        assert!(!more_waiting(&page(upto(5), 5)), "caught up");
        assert!(
            !more_waiting(&page(Vec::new(), 5)),
            "nothing after the cursor"
        );
    }

    #[test]
    fn the_next_page_is_asked_ahead_only_after_a_run_from_the_cursor_without_releases() {
        let at = |sequences: &[u64]| -> Vec<ReceivedItem> {
            sequences
                .iter()
                .map(|s| placeholder(*s, Some("no-consent")))
                .collect()
        };
        assert_eq!(next_page_after(&at(&[3, 4, 5]), 2, false), Some(5));
        assert_eq!(next_page_after(&at(&[3, 4, 5]), 2, true), None, "releases");
        assert_eq!(next_page_after(&at(&[3, 5]), 2, false), None, "a gap");
        assert_eq!(
            next_page_after(&at(&[4, 5]), 2, false),
            None,
            "not from the cursor"
        );
        assert_eq!(next_page_after(&[], 2, false), None, "an empty page");
    }

    fn backoff(min_backoff_ms: u64, max_backoff_ms: u64) -> Backoff {
        Backoff::new(&SyncSettings {
            min_backoff_ms,
            max_backoff_ms,
            ..SyncSettings::default()
        })
    }

    #[test]
    fn the_backoff_doubles_after_each_failure_up_to_its_cap() {
        let mut b = backoff(200, 1000);
        let delays: Vec<u128> = (0..6).map(|_| b.after_failure(false).as_millis()).collect();
        assert_eq!(delays, [200, 400, 800, 1000, 1000, 1000]);
        let mut zero = backoff(0, 0);
        assert_eq!(
            zero.after_failure(false),
            Duration::from_millis(1),
            "never 0"
        );
        assert_eq!(zero.after_failure(false), Duration::from_millis(1));
    }

    #[test]
    fn a_session_that_made_progress_starts_the_backoff_over() {
        let mut b = backoff(200, 30_000);
        for _ in 0..5 {
            b.after_failure(false);
        }
        assert_eq!(b.after_failure(true).as_millis(), 200);
        assert_eq!(b.after_failure(false).as_millis(), 400);
    }

    #[tokio::test]
    async fn good_events_are_taken_and_the_cursor_moves_to_the_pages_end() {
        let w = world();
        let items = (1..=3).map(|s| item(s, &w.signed(s))).collect();
        let checked = w.check(0, items, &[]);
        assert_eq!(sequences(&checked.accepted), [1, 2, 3]);
        assert_eq!(checked.next, 3);
        assert!(checked.retry.is_none());
        assert!(w.quarantined().is_empty());
    }

    /// A refusal no newer manifest can cure is kept in quarantine, with the body as received,
    /// and does not hold up the events after it.
    #[tokio::test]
    async fn a_permanent_refusal_is_quarantined_and_the_cursor_passes_it() {
        let w = world();
        let forged = w
            .event(2)
            .sign(&crate::event::keys::generate(), &Federation::kid(w.from()));
        let forged_item = item(2, &forged);
        let body = forged_item.jws.as_ref().unwrap().get().to_string();
        let checked = w.check(
            0,
            vec![item(1, &w.signed(1)), forged_item, item(3, &w.signed(3))],
            &[],
        );
        assert_eq!(sequences(&checked.accepted), [1, 3]);
        assert_eq!(checked.next, 3);
        assert!(checked.retry.is_none());
        assert_eq!(w.quarantined(), [("signature-invalid".to_string(), body)]);
    }

    /// A refusal a newer manifest may cure (a key the manifest held does not list yet) ends the
    /// page before it: nothing after it is taken and nothing is quarantined, and the session
    /// ends to take up the publisher's manifest.
    #[tokio::test]
    async fn a_retryable_refusal_ends_the_page_before_it_and_quarantines_nothing() {
        let w = world();
        let rotated = w.signed_as(w.event(2), "sign-2");
        let checked = w.check(
            0,
            vec![
                item(1, &w.signed(1)),
                item(2, &rotated),
                item(3, &w.signed(3)),
            ],
            &[],
        );
        assert_eq!(sequences(&checked.accepted), [1]);
        assert_eq!(checked.next, 1);
        assert_eq!(retry_of(&checked), Some((2, Reason::KeyUnknown)));
        assert!(w.quarantined().is_empty());
    }

    #[tokio::test]
    async fn a_gap_ends_the_page_where_it_is_and_is_counted() {
        let w = world();
        let items = [1, 2, 4].map(|s| item(s, &w.signed(s))).into();
        let checked = w.check(0, items, &[]);
        assert_eq!(sequences(&checked.accepted), [1, 2]);
        assert_eq!(checked.next, 2);
        assert!(checked.retry.is_none());
        assert_eq!(w.status().gaps, 1);
        assert!(w.quarantined().is_empty());
    }

    /// A placeholder is a sequence the reader may not have: passed, nothing kept. An item with
    /// neither an event nor a reason is the publisher's fault: kept in quarantine, and passed.
    #[tokio::test]
    async fn a_placeholder_is_passed_and_an_empty_item_is_quarantined() {
        let w = world();
        let checked = w.check(
            0,
            vec![
                placeholder(1, Some("no-consent")),
                placeholder(2, None),
                item(3, &w.signed(3)),
            ],
            &[],
        );
        assert_eq!(sequences(&checked.accepted), [3]);
        assert_eq!(checked.next, 3);
        assert_eq!(
            w.quarantined(),
            [("feed-item-empty".to_string(), String::new())]
        );
    }

    /// The same event (by id) twice, in one page or in this page and the one being written, is
    /// stored once; the second is a duplicate.
    #[tokio::test]
    async fn an_event_already_in_the_page_or_the_one_being_written_is_a_duplicate() {
        let w = world();
        let first = w.signed(1);
        let mut again = w.event(2);
        again.id = first.event().id;
        let again = w.signed_as(again, "sign-1");
        let checked = w.check(0, vec![item(1, &first), item(2, &again)], &[]);
        assert_eq!(sequences(&checked.accepted), [1]);
        assert_eq!(checked.next, 2);

        let in_flight = w.signed(3);
        let mut same = w.event(4);
        same.id = in_flight.event().id;
        let checked = w.check(3, vec![item(4, &w.signed_as(same, "sign-1"))], &[in_flight]);
        assert!(checked.accepted.is_empty());
        assert_eq!(checked.next, 4);
        let reasons: Vec<String> = w.quarantined().into_iter().map(|(r, _)| r).collect();
        assert_eq!(reasons, ["duplicate", "duplicate"]);
        assert_eq!(
            w.node
                .metrics
                .duplicates
                .load(std::sync::atomic::Ordering::Relaxed),
            2
        );
    }

    /// When the quarantine cannot keep a refusal the cursor stops before it: it is fetched and
    /// refused again once there is room, never passed unrecorded.
    #[tokio::test]
    async fn a_refusal_the_quarantine_cannot_keep_stops_the_cursor_before_it() {
        let full = QuarantineCaps {
            max_records: 0,
            max_bytes: u64::MAX,
        };
        let w = world_with(SyncSettings::default(), full);
        let checked = w.check(
            0,
            vec![
                item(1, &w.signed(1)),
                placeholder(2, None),
                item(3, &w.signed(3)),
            ],
            &[],
        );
        assert_eq!(sequences(&checked.accepted), [1]);
        assert_eq!(checked.next, 1);
        assert!(matches!(checked.retry, Some(SyncError::QuarantineFull(_))));
    }

    /// Beyond a publisher's share of the quarantine what it sends wrong is counted, not kept,
    /// and passed: one peer cannot fill the quarantine for all.
    #[tokio::test]
    async fn beyond_a_peers_share_of_the_quarantine_refusals_are_counted_not_kept() {
        let settings = SyncSettings {
            quarantine_cap: 1,
            ..SyncSettings::default()
        };
        let w = world_with(settings, QuarantineCaps::NONE);
        let checked = w.check(
            0,
            vec![
                placeholder(1, None),
                placeholder(2, None),
                item(3, &w.signed(3)),
            ],
            &[],
        );
        assert_eq!(sequences(&checked.accepted), [3]);
        assert_eq!(checked.next, 3);
        assert_eq!(w.quarantined().len(), 1);
        assert_eq!(w.status().quarantine_dropped, 1);
    }

    /// Evidence of a fork or a split is kept whatever the publisher's share holds: a publisher
    /// that filled its share first cannot have its evidence dropped.
    #[tokio::test]
    async fn evidence_against_a_publisher_is_kept_beyond_its_share() {
        let settings = SyncSettings {
            quarantine_cap: 1,
            ..SyncSettings::default()
        };
        let w = world_with(settings, QuarantineCaps::NONE);
        let from = w.from().clone();
        let junk = Rejection::new(Reason::SignatureInvalid, "junk");
        w.syncer.quarantine(&from, &junk, "x").unwrap();
        w.syncer.quarantine(&from, &junk, "y").unwrap();
        assert_eq!(w.quarantined().len(), 1, "the share is full");
        for reason in [Reason::LogFork, Reason::LogSplit] {
            let evidence = Rejection::new(reason, "two checkpoints contradict each other");
            w.syncer.quarantine(&from, &evidence, "{}").unwrap();
        }
        let kept: Vec<String> = w.quarantined().into_iter().map(|(r, _)| r).collect();
        assert_eq!(kept, ["signature-invalid", "log-fork", "log-split"]);
    }

    /// The share is capped in bytes too: a record that would take the peer's bytes past it is
    /// counted, not kept, while smaller ones still fit; the count is kept with the store.
    #[tokio::test]
    async fn beyond_a_peers_share_of_the_quarantine_in_bytes_refusals_are_counted_not_kept() {
        let mut w = world();
        let from = w.from().clone();
        let small = Rejection::new(Reason::Duplicate, "small");
        w.syncer.quarantine(&from, &small, "x").unwrap();
        let one = w.syncer.store.quarantined_from(from.as_str()).unwrap();
        assert_eq!(one.records, 1);
        assert_eq!(one.bytes, w.syncer.store.quarantine_held().unwrap().bytes);

        let settings = SyncSettings {
            quarantine_cap_bytes: one.bytes * 2 + 10,
            ..SyncSettings::default()
        };
        w.syncer = w.node.syncer(settings, QuarantineCaps::NONE);
        w.syncer
            .quarantine(&from, &small, &"y".repeat(200))
            .unwrap();
        assert_eq!(
            w.quarantined().len(),
            1,
            "too large for what is left of the share"
        );
        assert_eq!(w.status().quarantine_dropped, 1);
        w.syncer.quarantine(&from, &small, "z").unwrap();
        assert_eq!(w.quarantined().len(), 2, "a smaller one still fits");
        let two = w.syncer.store.quarantined_from(from.as_str()).unwrap();
        assert_eq!(two.records, 2);
        assert_eq!(two.bytes, w.syncer.store.quarantine_held().unwrap().bytes);
    }

    /// The events a page's checks took are stored with the cursor at the last sequence they
    /// passed, in one write; a page that passed nothing writes nothing.
    #[tokio::test]
    async fn a_stored_page_moves_the_cursor_to_the_last_sequence_it_passed() {
        let w = world();
        let from = w.from().clone();
        let checked = w.check(
            0,
            vec![
                item(1, &w.signed(1)),
                placeholder(2, Some("no-consent")),
                item(3, &w.signed_as(w.event(3), "sign-2")),
            ],
            &[],
        );
        assert_eq!(checked.next, 2);
        let writing = w
            .syncer
            .hand_over(&from, 0, checked.next, checked.accepted)
            .await
            .unwrap()
            .expect("a write");
        let mut progressed = false;
        w.syncer
            .written(&from, writing, &mut progressed)
            .await
            .unwrap();
        assert!(progressed);
        assert_eq!(w.node.store.cursor(&from).unwrap(), 2);
        assert_eq!(w.status().cursor, 2);
        assert_eq!(w.node.store.last_position().unwrap(), 1, "one event stored");
        let nothing = w.syncer.hand_over(&from, 2, 2, Vec::new()).await.unwrap();
        assert!(nothing.is_none());
    }

    /// Releases are taken in their order, each once: the release cursor moves to the last one
    /// passed (a released placeholder included), in the same write as the events.
    #[tokio::test]
    async fn releases_move_the_release_cursor_and_each_is_taken_once() {
        let w = world();
        let from = w.from().clone();
        let (second, fifth) = (w.signed(2), w.signed(5));
        let releases = || {
            vec![
                released(1, item(2, &second)),
                released(2, placeholder(3, Some("no-consent"))),
                released(3, item(5, &fifth)),
            ]
        };
        let first = releases().into_iter().take(1).collect();
        assert_eq!(w.syncer.take_released(&from, 0, first).await.unwrap(), 1);
        assert_eq!(w.syncer.release_cursor(&from).unwrap(), 1);
        assert_eq!(w.node.store.last_position().unwrap(), 1);

        assert_eq!(
            w.syncer.take_released(&from, 1, releases()).await.unwrap(),
            3
        );
        assert_eq!(w.syncer.release_cursor(&from).unwrap(), 3);
        assert_eq!(w.node.store.last_position().unwrap(), 2, "the fifth only");
        assert!(
            w.quarantined().is_empty(),
            "the first skipped, not refused as held"
        );
        let feed_cursor = w.node.store.cursor(&from).unwrap();
        assert_eq!(feed_cursor, 0, "the feed's cursor is its own");

        assert_eq!(
            w.syncer.take_released(&from, 3, releases()).await.unwrap(),
            3
        );
        assert_eq!(w.node.store.last_position().unwrap(), 2);
        assert!(w.quarantined().is_empty());
    }

    /// In the release log as in the feed: a refusal a newer manifest may cure stops the release
    /// cursor before it, a permanent one is quarantined and passed.
    #[tokio::test]
    async fn a_retryable_release_stops_the_release_cursor_before_it() {
        let w = world();
        let from = w.from().clone();
        let forged = w
            .event(3)
            .sign(&crate::event::keys::generate(), &Federation::kid(w.from()));
        let releases = vec![
            released(1, item(2, &w.signed(2))),
            released(2, item(3, &forged)),
            released(3, item(5, &w.signed_as(w.event(5), "sign-2"))),
            released(4, item(6, &w.signed(6))),
        ];
        let stopped = w.syncer.take_released(&from, 0, releases).await;
        assert!(
            matches!(
                stopped,
                Err(SyncError::Retry {
                    sequence: 5,
                    reason: Reason::KeyUnknown,
                    ..
                })
            ),
            "{stopped:?}"
        );
        assert_eq!(w.syncer.release_cursor(&from).unwrap(), 2);
        assert_eq!(w.node.store.last_position().unwrap(), 1);
        let reasons: Vec<String> = w.quarantined().into_iter().map(|(r, _)| r).collect();
        assert_eq!(reasons, ["signature-invalid"]);
    }
}
