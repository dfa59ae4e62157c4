//! The access log: who read a person's data, when, why, and what. One record per read, written
//! and flushed before the data leaves the node, so "who looked at my data" is never missing a
//! read that happened; a read refused because the person's consent does not cover the reader's
//! purpose is recorded too. The records form a Merkle log of their own that the node's signed
//! checkpoint covers, so a removed or altered record shows in `jol audit`.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::store::{Store, StoreError};

/// One read of a person's data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccessRecord {
    #[serde(with = "time::serde::rfc3339")]
    pub time: OffsetDateTime,
    /// Who read: `local:TOKEN-NAME` (a bearer token), `dashboard:TOKEN-NAME` (signed in to the
    /// dashboard), `webhook:HOST:PORT` (the agency's own system, pushed to), `cli:COMMAND` (an
    /// operator at the node's console), or the member id of the reader's node (a feed page).
    pub reader: String,
    /// The official, as `X-Road-UserId` named them.
    pub user: Option<String>,
    /// Why: the token's purpose, or the purposes of the reader's grant.
    pub purpose: Option<String>,
    /// What was read.
    pub what: String,
    /// One id per request (a feed page delivering several events shares it).
    pub request_id: Uuid,
    /// The X-Road message id (`X-Road-Id`) of a read through X-Road.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
    /// Whether the data left the node.
    #[serde(default)]
    pub outcome: Outcome,
}

/// Whether a read was answered.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// The data was served.
    #[default]
    Served,
    /// Refused: the person's consent does not cover the reader's purpose.
    RefusedNoConsent,
}

/// One access-log entry as stored: the record and the PIN it is about.
#[derive(Serialize, Deserialize)]
struct Entry {
    #[serde(default)]
    pin: String,
    #[serde(flatten)]
    record: AccessRecord,
}

/// Who is reading: the reader's name, the official (`X-Road-UserId`), and the purpose.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reader {
    pub reader: String,
    pub user: Option<String>,
    pub purpose: Option<String>,
    /// The X-Road message id, for a read through X-Road.
    pub message_id: Option<String>,
}

impl Reader {
    /// The same reader, reading in the X-Road message `id`.
    pub fn with_message_id(mut self, id: Option<&str>) -> Reader {
        self.message_id = id.map(String::from);
        self
    }

    /// The record of this reader reading `what`, now.
    pub fn record(&self, what: &str, outcome: Outcome, request_id: Uuid) -> AccessRecord {
        AccessRecord {
            time: OffsetDateTime::now_utc(),
            reader: self.reader.clone(),
            user: self.user.clone(),
            purpose: self.purpose.clone(),
            what: what.to_string(),
            request_id,
            message_id: self.message_id.clone(),
            outcome,
        }
    }
}

/// Record that `who` read `what` about each of `pins`, durably, before the data leaves. A read
/// that cannot be recorded must not be answered: the caller refuses it on `Err`.
pub fn record_reads<'a>(
    store: &Store,
    who: &Reader,
    what: &str,
    pins: impl IntoIterator<Item = &'a str>,
) -> Result<(), StoreError> {
    let record = who.record(what, Outcome::Served, Uuid::now_v7());
    append(
        store,
        pins.into_iter()
            .map(|pin| (pin.to_string(), record.clone())),
    )
}

/// Record that `who` was refused `what` about `pin`, and why.
pub fn record_refusal(
    store: &Store,
    who: &Reader,
    what: &str,
    pin: &str,
    outcome: Outcome,
) -> Result<(), StoreError> {
    let record = who.record(what, outcome, Uuid::now_v7());
    append(store, [(pin.to_string(), record)])
}

/// Append records (each with the PIN it is about) to the access log, durably.
pub fn append(
    store: &Store,
    records: impl IntoIterator<Item = (String, AccessRecord)>,
) -> Result<(), StoreError> {
    let entries = records
        .into_iter()
        .map(|(pin, record)| {
            let bytes = serde_json::to_vec(&Entry {
                pin: pin.clone(),
                record,
            })
            .unwrap_or_default();
            (pin, bytes)
        })
        .collect();
    store.append_access(entries)
}

/// A person's access log, newest first.
pub fn log_of(store: &Store, pin: &str, limit: usize) -> Result<Vec<AccessRecord>, StoreError> {
    store
        .access_entries(pin, limit)?
        .iter()
        .map(|bytes| {
            serde_json::from_slice::<Entry>(bytes)
                .map(|e| e.record)
                .map_err(|_| StoreError::Corrupt("access record"))
        })
        .collect()
}

/// The PIN a stored or quarantined body is about, when it says: a signed event, a publish
/// request (`{type, data}`), or event data. Best effort: bodies refused as malformed may name
/// none.
pub fn pin_in(body: &[u8]) -> Option<String> {
    if let Ok((signed, _)) = crate::event::SignedEvent::parse(body) {
        return signed.event().pin().map(String::from);
    }
    if let Ok(jws) = crate::event::jws::Jws::parse(body, crate::event::jws::Typ::Event) {
        let v: serde_json::Value = serde_json::from_slice(jws.payload()).ok()?;
        return v["data"]["person"]["pin"].as_str().map(String::from);
    }
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    v["data"]["person"]["pin"]
        .as_str()
        .or_else(|| v["person"]["pin"].as_str())
        .map(String::from)
}
