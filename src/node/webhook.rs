//! Local delivery by webhook: the events the node holds are POSTed, in log order, to the
//! agency's URL, retrying with capped exponential backoff until a 2xx. The cursor lives in the
//! store, so a restart resumes where delivery stopped. Delivery is at-least-once: the receiver
//! deduplicates on the event id.
//!
//! The agency's system is a reader like any other: each event goes through the consent decision
//! (`registry::serve`) for the webhook's purpose (`local.webhook_purpose`), so it gets the node's
//! own events and, of what other members sent, only what the person's consent names this node
//! and that purpose for. Without a purpose it gets no received personal data. Each event is
//! read, decided and logged just before it is sent, so a withdrawal or an erasure committed
//! while the events before it went out holds for it. An event it may not have is skipped (the
//! refusal is in the person's access log) and not delivered later. Failed deliveries are counted
//! in the metrics, and `/readyz` warns while they fail in a row.

use std::time::Duration;

use bytes::Bytes;
use tokio::sync::watch;

use crate::event::cloudevent::StoredItem;
use crate::net::client::HttpClient;
use crate::net::metrics::Metrics;
use crate::policy::access::{self, Access, Outcome, Reader, ReaderId};
use crate::registry::serve::{self, LocalUser};
use crate::store::{Meta, Store};

/// Events delivered between two flushes of the cursor.
const PAGE: u64 = 100;

/// Why a webhook URL is not usable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookUrlError {
    #[error("only http://host:port/path is supported")]
    Scheme,
    #[error("give host:port")]
    HostPort,
}

/// Where the webhook goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct WebhookUrl {
    pub(crate) host_port: String,
    pub(crate) path: String,
}

impl WebhookUrl {
    /// Parse `http://host:port/path` (plain HTTP, for the agency's internal network).
    pub(crate) fn parse(url: &str) -> Result<WebhookUrl, WebhookUrlError> {
        let rest = url.strip_prefix("http://").ok_or(WebhookUrlError::Scheme)?;
        let (host_port, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        if !host_port.contains(':') || host_port.starts_with(':') {
            return Err(WebhookUrlError::HostPort);
        }
        Ok(WebhookUrl {
            host_port: host_port.to_string(),
            path: path.to_string(),
        })
    }
}

/// A webhook: where it goes, and for which purpose its receiver reads.
#[derive(Debug, Clone)]
pub(crate) struct Webhook {
    pub(crate) url: WebhookUrl,
    /// This node.
    pub member: crate::event::identifiers::MemberId,
    pub(crate) purpose: Option<String>,
    /// How long one delivery may take, connecting included (`local.webhook_timeout_secs`): one
    /// that does not answer within it counts as failed and is retried.
    pub(crate) deadline: Duration,
}

/// Deliver until `stop` turns true.
pub(crate) async fn run(
    hook: Webhook,
    store: Store,
    metrics: std::sync::Arc<Metrics>,
    mut positions: watch::Receiver<u64>,
    mut stop: watch::Receiver<bool>,
) {
    let mut backoff = Duration::from_millis(200);
    let mut client: Option<HttpClient> = None;
    let mut logged = Logged::default();
    loop {
        let cursor = store
            .meta(&Meta::WebhookCursor)
            .ok()
            .flatten()
            .and_then(|v| v.try_into().ok())
            .map_or(0, u64::from_be_bytes);
        let head = *positions.borrow();
        if head <= cursor {
            tokio::select! {
                _ = stop.changed() => return,
                _ = positions.wait_for(|p| *p > cursor) => continue,
            }
        }
        match deliver_page(&hook, &store, &mut client, &mut logged, cursor, head).await {
            Ok(()) => {
                metrics.webhook_delivered();
                backoff = Duration::from_millis(200);
            }
            Err(e) => {
                metrics.webhook_failed();
                client = None;
                tracing::warn!(error = %e, retry_ms = backoff.as_millis() as u64, "webhook delivery failed");
                tokio::select! {
                    _ = stop.changed() => return,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(30));
            }
        }
    }
}

/// The last decision logged: a delivery retried after a failure is logged again only when its
/// decision changed, so a receiver that keeps failing does not fill the person's access log.
#[derive(Debug, Default)]
struct Logged(Option<(u64, bool)>);

/// Deliver the events after `cursor` up to `head`, a page at most, one by one.
async fn deliver_page(
    hook: &Webhook,
    store: &Store,
    client: &mut Option<HttpClient>,
    logged: &mut Logged,
    cursor: u64,
    head: u64,
) -> Result<(), String> {
    let who = Reader::local(
        ReaderId::Webhook {
            host_port: hook.url.host_port.clone(),
        },
        None,
        hook.purpose.clone(),
    );
    for position in cursor + 1..=head.min(cursor + PAGE) {
        deliver_one(hook, store, client, logged, &who, position).await?;
        store
            .set_meta_lazy(&Meta::WebhookCursor, &position.to_be_bytes())
            .map_err(|e| e.to_string())?;
    }
    store.flush().map_err(|e| e.to_string())
}

/// Deliver the event at `position` if the webhook's reader may have it: read, decided and
/// logged just before it is sent (a withdrawal or an erasure committed while the events before
/// it were delivered holds for it), and skipped when refused.
async fn deliver_one(
    hook: &Webhook,
    store: &Store,
    client: &mut Option<HttpClient>,
    logged: &mut Logged,
    who: &Reader,
    position: u64,
) -> Result<(), String> {
    let Some(bytes) = store.get(position).map_err(|e| e.to_string())? else {
        return Err(format!("the log holds no event at {position}"));
    };
    let item = StoredItem::parse(position, &bytes).map_err(|e| e.to_string())?;
    let user = LocalUser {
        node: &hook.member,
        purpose: hook.purpose.as_deref().unwrap_or_default(),
    };
    let event = item.event.event();
    let may = serve::event(store, event, user).map_err(|e| e.to_string())?;
    // Logged before the data leaves, or as refused.
    if logged.0 != Some((position, may)) {
        let what = "event delivered to the webhook";
        let read =
            Access::of_event(event, what, Outcome::of_decision(may)).map_err(|e| e.to_string())?;
        access::log(store, who, read).map_err(|e| e.to_string())?;
        logged.0 = Some((position, may));
    }
    if !may {
        return Ok(());
    }
    let body = serde_json::to_vec(&item).map_err(|e| e.to_string())?;
    let c = match client {
        Some(c) => c,
        None => {
            let connecting = HttpClient::connect_to(&hook.url.host_port);
            let connected = tokio::time::timeout(hook.deadline, connecting)
                .await
                .map_err(|_| "connecting to the webhook timed out".to_string())?
                .map_err(|e| e.to_string())?;
            client.insert(connected.with_deadline(hook.deadline))
        }
    };
    let (status, _) = c
        .post_json(&hook.url.path, Bytes::from(body))
        .await
        .map_err(|e| e.to_string())?;
    match status.is_success() {
        true => Ok(()),
        false => Err(format!("the webhook answered {status}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_plain_http_with_host_and_port() {
        let u = WebhookUrl::parse("http://127.0.0.1:9000/jol/events").unwrap();
        assert_eq!(
            (u.host_port.as_str(), u.path.as_str()),
            ("127.0.0.1:9000", "/jol/events")
        );
        assert_eq!(WebhookUrl::parse("http://hook:80").unwrap().path, "/");
        assert!(WebhookUrl::parse("https://x:1/").is_err());
        assert!(WebhookUrl::parse("http://nohost/").is_err());
    }
}
