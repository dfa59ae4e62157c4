//! Drives a synthetic [`Population`] through running nodes' local APIs, as each agency's
//! information system would: phase by phase, in batches, waiting for the federation to settle
//! between phases (so that consent decisions do not race the events they govern).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde_json::{json, Value};

use crate::net::client::HttpClient;
use crate::synthetic::population::{Planned, Population};

/// Why driving the population failed.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("no local address for agency {0}")]
    NoAgency(String),
    #[error("{0}")]
    Http(String),
    #[error("the node refused events: {0}")]
    Refused(String),
    #[error("the federation did not settle within {0:?}")]
    NotSettled(Duration),
}

const BATCH: usize = 500;

/// Counts per agency of what was published.
pub type Published = HashMap<String, u64>;

/// Publish all three phases; `progress(done, total)` is called as batches complete.
pub async fn publish(
    pop: &Population,
    local: &HashMap<String, SocketAddr>,
    settle: Duration,
    mut progress: impl FnMut(usize, usize),
) -> Result<Published, LoadError> {
    let phases = pop.events();
    let total: usize = phases.iter().map(Vec::len).sum();
    let mut done = 0;
    let mut published = Published::new();
    let mut clients: HashMap<String, HttpClient> = HashMap::new();
    for (agency, addr) in local {
        let c = HttpClient::connect(*addr)
            .await
            .map_err(|e| LoadError::Http(e.to_string()))?;
        clients.insert(agency.clone(), c);
    }
    let mut record_ids: HashMap<String, String> = HashMap::new();
    for phase in phases {
        let mut by_agency: HashMap<&str, Vec<Planned>> = HashMap::new();
        for mut p in phase {
            if let Some(pin) = &p.corrects {
                if let Some(id) = record_ids.get(pin) {
                    p.data["supersedes"] = id.as_str().into();
                }
            }
            by_agency.entry(p.agency).or_default().push(p);
        }
        for (agency, planned) in by_agency {
            let client = clients
                .get_mut(agency)
                .ok_or_else(|| LoadError::NoAgency(agency.into()))?;
            for chunk in planned.chunks(BATCH) {
                let events: Vec<Value> = chunk
                    .iter()
                    .map(|p| json!({"type": p.event_type, "data": p.data}))
                    .collect();
                let (status, body) = client
                    .post_json(
                        "/api/v1/events/batch",
                        Bytes::from(json!({"events": events}).to_string()),
                    )
                    .await
                    .map_err(|e| LoadError::Http(e.to_string()))?;
                let answer: Value =
                    serde_json::from_slice(&body).map_err(|e| LoadError::Http(e.to_string()))?;
                if !status.is_success() || answer["rejected"] != 0 {
                    return Err(LoadError::Refused(answer.to_string()));
                }
                for (p, r) in chunk
                    .iter()
                    .zip(answer["results"].as_array().into_iter().flatten())
                {
                    if p.event_type == crate::event::schema::EventType::ReturneeRecord
                        && p.corrects.is_none()
                    {
                        if let (Some(pin), Some(id)) =
                            (p.data["person"]["pin"].as_str(), r["id"].as_str())
                        {
                            record_ids
                                .entry(pin.to_string())
                                .or_insert_with(|| id.to_string());
                        }
                    }
                }
                *published.entry(agency.to_string()).or_default() += chunk.len() as u64;
                done += chunk.len();
                progress(done, total);
            }
        }
        settled(local, settle).await?;
    }
    Ok(published)
}

/// Wait until every node's cursor for every peer equals that peer's own last sequence, and the
/// views have caught up.
pub async fn settled(
    local: &HashMap<String, SocketAddr>,
    limit: Duration,
) -> Result<(), LoadError> {
    let start = Instant::now();
    loop {
        if is_settled(local).await.unwrap_or(false) {
            return Ok(());
        }
        if start.elapsed() > limit {
            return Err(LoadError::NotSettled(limit));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn is_settled(local: &HashMap<String, SocketAddr>) -> Result<bool, LoadError> {
    let mut ready = HashMap::new();
    for addr in local.values() {
        let mut c = HttpClient::connect(*addr)
            .await
            .map_err(|e| LoadError::Http(e.to_string()))?;
        let (_, body) = c
            .get("/readyz")
            .await
            .map_err(|e| LoadError::Http(e.to_string()))?;
        let v: Value = serde_json::from_slice(&body).map_err(|e| LoadError::Http(e.to_string()))?;
        ready.insert(v["member"].as_str().unwrap_or_default().to_string(), v);
    }
    for v in ready.values() {
        let Some(peers) = v["peers"].as_object() else {
            continue;
        };
        for (from, status) in peers {
            let head = ready
                .get(from)
                .map(|r| r["ownSequence"].clone())
                .unwrap_or(Value::Null);
            if status["cursor"] != head {
                return Ok(false);
            }
        }
        if v["views"]["behind"] != 0 {
            return Ok(false);
        }
    }
    Ok(true)
}
