//! Drives a synthetic [`Population`] through running nodes' local APIs, as each agency's
//! information system would: the three agencies at once, in batches, so consent races the
//! events it governs (see [`publish`]).

use std::cell::RefCell;
use std::collections::HashMap;
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde_json::{json, Value};

use crate::synthetic::population::{Planned, Population};
use jol::net::client::Endpoint;

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

/// Publish the population as the agencies' systems would, concurrently: the migration agency's
/// records (each with the person's consent) and later corrections, the employment service's and
/// the education ministry's pathway events, all at once, each agency in its own order of
/// business dates. Consent therefore races the events it governs, as in life; the exchange's
/// release logs make the outcome independent of who wins. Withdrawals (dated after every
/// pathway event) come last, once what preceded them has been delivered.
/// `progress(done, total)` is called as batches complete.
pub async fn publish(
    pop: &Population,
    local: &HashMap<String, Endpoint>,
    settle: Duration,
    progress: impl FnMut(usize, usize),
) -> Result<Published, LoadError> {
    let [records, pathway, later] = pop.events();
    let (corrections, withdrawals): (Vec<Planned>, Vec<Planned>) =
        later.into_iter().partition(|p| p.corrects.is_some());
    let total = records.len() + pathway.len() + corrections.len() + withdrawals.len();
    let tally = RefCell::new(Tally {
        done: 0,
        total,
        progress,
        published: Published::new(),
    });
    let mut streams: HashMap<&str, Vec<Planned>> = HashMap::new();
    for p in records.into_iter().chain(pathway) {
        streams.entry(p.agency).or_default().push(p);
    }
    for planned in streams.values_mut() {
        planned.sort_by(|a, b| business_date(a).cmp(business_date(b)));
    }
    let migration = streams.remove("migration").unwrap_or_default();
    let employment = streams.remove("employment").unwrap_or_default();
    let education = streams.remove("education").unwrap_or_default();
    let record_ids = RefCell::new(HashMap::new());
    let (m, e, d) = tokio::join!(
        async {
            stream(local, "migration", migration, &tally, &record_ids).await?;
            stream(local, "migration", corrections, &tally, &record_ids).await
        },
        stream(local, "employment", employment, &tally, &record_ids),
        stream(local, "education", education, &tally, &record_ids),
    );
    m.and(e).and(d)?;
    settled(local, settle).await?;
    stream(local, "migration", withdrawals, &tally, &record_ids).await?;
    settled(local, settle).await?;
    Ok(tally.into_inner().published)
}

/// What the concurrent streams count together.
struct Tally<F> {
    done: usize,
    total: usize,
    progress: F,
    published: Published,
}

fn business_date(p: &Planned) -> &str {
    p.data["eventDate"].as_str().unwrap_or("")
}

/// Publish one agency's events in order, in batches, through its own connection. A correction
/// names the record it supersedes by the id the node gave it.
async fn stream<F: FnMut(usize, usize)>(
    local: &HashMap<String, Endpoint>,
    agency: &str,
    planned: Vec<Planned>,
    tally: &RefCell<Tally<F>>,
    record_ids: &RefCell<HashMap<String, String>>,
) -> Result<(), LoadError> {
    let endpoint = local
        .get(agency)
        .ok_or_else(|| LoadError::NoAgency(agency.into()))?;
    let mut client = endpoint
        .connect()
        .await
        .map_err(|e| LoadError::Http(e.to_string()))?;
    for chunk in planned.chunks(BATCH) {
        let events: Vec<Value> = chunk
            .iter()
            .map(|p| {
                let mut data = p.data.clone();
                if let Some(id) = p
                    .corrects
                    .as_ref()
                    .and_then(|pin| record_ids.borrow().get(pin).cloned())
                {
                    data["supersedes"] = id.into();
                }
                json!({"type": p.event_type, "data": data})
            })
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
            if p.event_type == jol::event::schema::EventType::ReturneeRecord && p.corrects.is_none()
            {
                if let (Some(pin), Some(id)) = (p.data["person"]["pin"].as_str(), r["id"].as_str())
                {
                    record_ids
                        .borrow_mut()
                        .entry(pin.to_string())
                        .or_insert_with(|| id.to_string());
                }
            }
        }
        let mut t = tally.borrow_mut();
        *t.published.entry(agency.to_string()).or_default() += chunk.len() as u64;
        t.done += chunk.len();
        let (done, total) = (t.done, t.total);
        (t.progress)(done, total);
    }
    Ok(())
}

/// Wait until every node's cursor for every peer equals that peer's own last sequence, and the
/// views have caught up.
pub async fn settled(local: &HashMap<String, Endpoint>, limit: Duration) -> Result<(), LoadError> {
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

async fn is_settled(local: &HashMap<String, Endpoint>) -> Result<bool, LoadError> {
    let mut ready = HashMap::new();
    for endpoint in local.values() {
        let mut c = endpoint
            .connect()
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
        let me = v["member"].as_str().unwrap_or_default();
        for (from, status) in peers {
            let Some(publisher) = ready.get(from) else {
                return Ok(false);
            };
            // Everything the publisher has, in its feed and in its release log for this reader.
            let released = publisher["releases"][me].as_u64().unwrap_or(0);
            if status["cursor"] != publisher["ownSequence"]
                || status["release_cursor"].as_u64().unwrap_or(0) != released
            {
                return Ok(false);
            }
        }
        if v["views"]["behind"] != 0 {
            return Ok(false);
        }
    }
    Ok(true)
}
