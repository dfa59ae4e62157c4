//! Local delivery by webhook: the events the node holds are POSTed, in log order, to the
//! agency's URL, retrying with capped exponential backoff until a 2xx. The cursor lives in the
//! store, so a restart resumes where delivery stopped. Delivery is at-least-once: the receiver
//! deduplicates on the event id.
//!
//! The agency's system is a reader like any other: each event goes through the consent decision
//! (`registry::serve`) for the webhook's purpose (`local.webhook_purpose`), so it gets the node's
//! own events and, of what other members sent, only what the person's consent names this node
//! and that purpose for. Without a purpose it gets no received personal data. An event it may
//! not have is skipped (the refusal is in the person's access log) and not delivered later.

use std::time::Duration;

use bytes::Bytes;
use tokio::sync::watch;

use crate::net::client::HttpClient;
use crate::store::{Meta, Store};

const PAGE: usize = 100;

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
}

/// Deliver until `stop` turns true.
pub(crate) async fn run(
    hook: Webhook,
    store: Store,
    mut positions: watch::Receiver<u64>,
    mut stop: watch::Receiver<bool>,
) {
    let mut backoff = Duration::from_millis(200);
    let mut client: Option<HttpClient> = None;
    loop {
        let cursor = store
            .meta(&Meta::WebhookCursor)
            .ok()
            .flatten()
            .and_then(|v| v.try_into().ok())
            .map_or(0, u64::from_be_bytes);
        if *positions.borrow() <= cursor {
            tokio::select! {
                _ = stop.changed() => return,
                _ = positions.wait_for(|p| *p > cursor) => continue,
            }
        }
        match deliver_page(&hook, &store, &mut client, cursor).await {
            Ok(()) => backoff = Duration::from_millis(200),
            Err(e) => {
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

async fn deliver_page(
    hook: &Webhook,
    store: &Store,
    client: &mut Option<HttpClient>,
    cursor: u64,
) -> Result<(), String> {
    use crate::policy::access::{self, Access, Outcome, Reader, ReaderId};
    let url = &hook.url;
    let page = store.range(cursor, PAGE).map_err(|e| e.to_string())?;
    let reader = ReaderId::Webhook {
        host_port: url.host_port.clone(),
    };
    let who = Reader::local(reader, None, hook.purpose.clone());
    let user = crate::registry::serve::LocalUser {
        node: &hook.member,
        purpose: hook.purpose.as_deref().unwrap_or_default(),
    };
    let items = page
        .iter()
        .map(|(position, bytes)| crate::event::cloudevent::StoredItem::parse(*position, bytes))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())?;
    let events: Vec<&crate::event::Event> = items.iter().map(|i| i.event.event()).collect();
    // The page's consent decisions, its persons' consent read once.
    let decisions =
        crate::registry::serve::events(store, &events, user).map_err(|e| e.to_string())?;
    for (item, may) in items.iter().zip(decisions) {
        let (position, event) = (item.position, item.event.event());
        // Logged before the data leaves, or as refused.
        let read = Access::of_event(
            event,
            "event delivered to the webhook",
            Outcome::of_decision(may),
        )
        .map_err(|e| e.to_string())?;
        access::log(store, &who, read).map_err(|e| e.to_string())?;
        if !may {
            store
                .set_meta_lazy(&Meta::WebhookCursor, &position.to_be_bytes())
                .map_err(|e| e.to_string())?;
            continue;
        }
        let body = serde_json::to_vec(item).map_err(|e| e.to_string())?;
        if client.is_none() {
            *client = Some(
                HttpClient::connect_to(&url.host_port)
                    .await
                    .map_err(|e| e.to_string())?,
            );
        }
        let Some(c) = client.as_mut() else { continue };
        let (status, _) = c
            .post_json(&url.path, Bytes::from(body))
            .await
            .map_err(|e| e.to_string())?;
        if !status.is_success() {
            return Err(format!("the webhook answered {status}"));
        }
        store
            .set_meta_lazy(&Meta::WebhookCursor, &position.to_be_bytes())
            .map_err(|e| e.to_string())?;
    }
    store.flush().map_err(|e| e.to_string())
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
