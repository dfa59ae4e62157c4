//! Subscriptions: one task per `[[subscriptions]]` entry long-polls the publisher's feed over
//! mutual TLS, runs the receipt checks on each event, and stores the good ones together with the
//! advanced cursor in one durable write. Refused events go to quarantine with their reason and do
//! not hold up the ones after them. A gap in sequences is reported and fetched again. Failures
//! back off exponentially with jitter, capped, and recover by themselves.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use serde::Deserialize;
use time::OffsetDateTime;
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio_rustls::TlsConnector;

use crate::client::HttpClient;
use crate::event::SignedEvent;
use crate::identifiers::MemberId;
use crate::manifest::{ManifestError, Trust};
use crate::metrics::Metrics;
use crate::peer::ReceivedPage;
use crate::publish::Publisher;
use crate::receipt::{Checker, Rejection};
use crate::schema::{EventType, Schemas};
use crate::store::{Quarantined, Store};
use crate::tls::{self, Identity};

/// One subscription from the node config.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Subscription {
    pub from: MemberId,
    pub types: Vec<EventType>,
}

/// Tuning of the sync tasks.
#[derive(Debug, Clone, Copy, Deserialize)]
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
}

impl Default for SyncSettings {
    fn default() -> Self {
        SyncSettings {
            page_size: 500,
            wait_secs: 25,
            min_backoff_ms: 200,
            max_backoff_ms: 30_000,
        }
    }
}

/// Why a sync session ended. Texts carry no personal data.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    #[error("{0} is not a member in the manifest")]
    NotMember(MemberId),
    #[error("cannot reach {endpoint}: {detail}")]
    Connect { endpoint: String, detail: String },
    #[error("TLS with {endpoint} failed: {detail}")]
    Tls { endpoint: String, detail: String },
    #[error("feed request failed: {0}")]
    Http(String),
    #[error("the publisher answered {status} ({problem})")]
    Status { status: u16, problem: String },
    #[error("the feed page is not valid: {0}")]
    Decode(String),
    #[error("storage: {0}")]
    Store(String),
}

/// What every sync task of a node shares.
pub struct Syncer {
    pub me: MemberId,
    pub store: Store,
    pub trust: Arc<Trust>,
    pub schemas: Arc<Schemas>,
    pub publisher: Publisher,
    pub metrics: Arc<Metrics>,
    pub tls_cert: PathBuf,
    pub tls_key: PathBuf,
    pub settings: SyncSettings,
}

impl Syncer {
    /// Run one subscription until `stop` turns true.
    pub async fn run(self: Arc<Self>, sub: Subscription, mut stop: watch::Receiver<bool>) {
        let min = Duration::from_millis(self.settings.min_backoff_ms.max(1));
        let max = Duration::from_millis(self.settings.max_backoff_ms.max(1));
        let mut backoff = min;
        loop {
            let mut progressed = false;
            let ended = tokio::select! {
                _ = stop.changed() => return,
                r = self.session(&sub, &mut progressed) => r,
            };
            let Err(e) = ended else { return };
            if progressed {
                backoff = min;
            }
            tracing::warn!(from = %sub.from, error = %e, retry_ms = backoff.as_millis() as u64, "sync interrupted");
            self.metrics.sync_status(&sub.from, |s| {
                s.connected = false;
                s.last_error = Some(e.to_string());
            });
            let jittered = backoff.mul_f64(rand::rng().random_range(0.5..1.5));
            tokio::select! {
                _ = stop.changed() => return,
                _ = tokio::time::sleep(jittered) => {}
            }
            backoff = (backoff * 2).min(max);
        }
    }

    /// Connect, take up a newer manifest, then pull pages until something fails.
    async fn session(&self, sub: &Subscription, progressed: &mut bool) -> Result<(), SyncError> {
        let mut client = self.connect(&sub.from).await?;
        let (status, body) = client
            .get("/peer/v1/manifest")
            .await
            .map_err(|e| SyncError::Http(e.to_string()))?;
        if status.is_success() {
            match self.trust.offer(&body) {
                Ok(true) => {
                    tracing::info!(from = %sub.from, "took up a newer manifest from a peer")
                }
                Ok(false) | Err(ManifestError::Older { .. }) => {}
                Err(e) => {
                    tracing::warn!(from = %sub.from, error = %e, "peer offered a manifest that was refused")
                }
            }
        }
        self.metrics.sync_status(&sub.from, |s| {
            s.connected = true;
            s.last_error = None;
        });
        let types = sub
            .types
            .iter()
            .map(|t| t.as_str())
            .collect::<Vec<_>>()
            .join(",");
        loop {
            self.trust.usable()?;
            let cursor = self
                .store
                .cursor(&sub.from)
                .map_err(|e| SyncError::Store(e.to_string()))?;
            let path = format!(
                "/peer/v1/feed?after={cursor}&limit={}&wait={}&types={types}",
                self.settings.page_size, self.settings.wait_secs
            );
            let deadline = Duration::from_secs(self.settings.wait_secs + 15);
            let (status, body) = tokio::time::timeout(deadline, client.get(&path))
                .await
                .map_err(|_| SyncError::Http("the publisher did not answer in time".into()))?
                .map_err(|e| SyncError::Http(e.to_string()))?;
            if !status.is_success() {
                let problem = serde_json::from_slice::<serde_json::Value>(&body)
                    .ok()
                    .and_then(|v| v.get("type").and_then(|t| t.as_str()).map(String::from))
                    .unwrap_or_default();
                return Err(SyncError::Status {
                    status: status.as_u16(),
                    problem,
                });
            }
            let page: ReceivedPage =
                serde_json::from_slice(&body).map_err(|e| SyncError::Decode(e.to_string()))?;
            self.metrics.sync_status(&sub.from, |s| {
                s.connected = true;
                s.last_error = None;
                s.head = page.head;
                s.cursor = cursor;
            });
            let new_cursor = self.take(&sub.from, cursor, page).await?;
            if new_cursor > cursor {
                *progressed = true;
            }
            self.metrics
                .sync_status(&sub.from, |s| s.cursor = new_cursor);
        }
    }

    async fn connect(&self, from: &MemberId) -> Result<HttpClient, SyncError> {
        let manifest = self.trust.usable()?;
        let member = manifest
            .member(from)
            .ok_or_else(|| SyncError::NotMember(from.clone()))?;
        let endpoint = member.peer_endpoint.clone();
        let tls_err = |detail: String| SyncError::Tls {
            endpoint: endpoint.clone(),
            detail,
        };
        let ca = tls::certificate_from_pem(&manifest.ca_certificate)
            .map_err(|e| tls_err(e.to_string()))?;
        let identity =
            Identity::load(&self.tls_cert, &self.tls_key).map_err(|e| tls_err(e.to_string()))?;
        let config = tls::client_config(Some(identity), &ca, member.tls_key_sha256.clone())
            .map_err(|e| tls_err(e.to_string()))?;
        let tcp = tokio::time::timeout(Duration::from_secs(5), TcpStream::connect(&endpoint))
            .await
            .map_err(|_| SyncError::Connect {
                endpoint: endpoint.clone(),
                detail: "timed out".into(),
            })?
            .map_err(|e| SyncError::Connect {
                endpoint: endpoint.clone(),
                detail: e.to_string(),
            })?;
        let _ = tcp.set_nodelay(true);
        let tls = tokio::time::timeout(
            Duration::from_secs(10),
            TlsConnector::from(config).connect(tls::peer_server_name(), tcp),
        )
        .await
        .map_err(|_| tls_err("handshake timed out".into()))?
        .map_err(|e| tls_err(e.to_string()))?;
        HttpClient::over(tls, endpoint.clone())
            .await
            .map_err(|e| SyncError::Http(e.to_string()))
    }

    /// Check a page's events, quarantine the refused, store the rest with the new cursor.
    async fn take(
        &self,
        from: &MemberId,
        cursor: u64,
        page: ReceivedPage,
    ) -> Result<u64, SyncError> {
        let manifest = self.trust.usable()?;
        let checker = Checker {
            manifest: &manifest,
            me: &self.me,
            schemas: &self.schemas,
            store: &self.store,
        };
        let mut accepted: Vec<SignedEvent> = Vec::new();
        let mut ids = HashSet::new();
        let mut next = cursor;
        for item in page.events {
            if item.sequence != next + 1 {
                tracing::warn!(%from, expected = next + 1, got = item.sequence, "gap in the feed; fetching again from the cursor");
                self.metrics.sync_status(from, |s| s.gaps += 1);
                break;
            }
            next = item.sequence;
            let Some(raw) = item.jws else {
                if item.withheld.is_none() {
                    self.quarantine(
                        from,
                        &Rejection {
                            code: "feed-item-empty",
                            detail: format!(
                                "sequence {next} has neither an event nor a withheld reason"
                            ),
                            fields: Vec::new(),
                        },
                        "",
                    );
                }
                continue;
            };
            let bytes = raw.get().as_bytes();
            match checker.check(bytes, from, item.sequence) {
                Ok(signed) if ids.insert(signed.event().id) => accepted.push(signed),
                Ok(_) => self.quarantine(
                    from,
                    &Rejection {
                        code: "duplicate",
                        detail: "the same event twice in one page".into(),
                        fields: Vec::new(),
                    },
                    raw.get(),
                ),
                Err(rejection) => self.quarantine(from, &rejection, raw.get()),
            }
        }
        if next > cursor {
            self.publisher
                .receive(from.clone(), accepted, next)
                .await
                .map_err(|e| SyncError::Store(e.to_string()))?;
        }
        Ok(next)
    }

    fn quarantine(&self, from: &MemberId, r: &Rejection, body: &str) {
        if r.code == "duplicate" {
            self.metrics
                .duplicates
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        tracing::warn!(%from, reason = r.code, "received event quarantined");
        self.metrics.count_quarantine(from.as_str(), r.code);
        let record = Quarantined {
            number: 0,
            time: OffsetDateTime::now_utc(),
            origin: from.to_string(),
            reason: r.code.to_string(),
            detail: serde_json::json!({"detail": r.detail, "errors": r.fields}),
            body: body.to_string(),
        };
        if let Err(e) = self.store.quarantine(record) {
            tracing::error!(error = %e, "cannot write quarantine record");
        }
    }
}
