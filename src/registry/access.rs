//! The access log: who read a person's data, when, why, and what. One record per read, written
//! and flushed before the data leaves the node, so "who looked at my data" is never missing a
//! read that happened.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::store::WriteBatch;

/// One read of a person's data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccessRecord {
    #[serde(with = "time::serde::rfc3339")]
    pub time: OffsetDateTime,
    /// Who read: `local:TOKEN-NAME`, `local`, or the member id of the reader's node.
    pub reader: String,
    /// The official, as `X-Road-UserId` named them.
    pub user: Option<String>,
    /// Why: the case or purpose given with the read, or the purposes of the reader's grant.
    pub purpose: Option<String>,
    /// What was read.
    pub what: String,
    /// One id per request (a feed page delivering several events shares it).
    pub request_id: Uuid,
}

/// Who is reading: the reader's name, the official (`X-Road-UserId`), and the purpose.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reader {
    pub reader: String,
    pub user: Option<String>,
    pub purpose: Option<String>,
}

/// Record that `who` read `what` about each of `pins`, durably, before the data leaves. A read
/// that cannot be recorded must not be answered: the caller refuses it on `Err`.
pub fn record_reads<'a>(
    store: &crate::store::Store,
    who: &Reader,
    what: &str,
    pins: impl IntoIterator<Item = &'a str>,
) -> Result<(), crate::store::StoreError> {
    let mut batch = WriteBatch::default();
    let time = OffsetDateTime::now_utc();
    let request_id = Uuid::now_v7();
    let mut any = false;
    for pin in pins {
        AccessRecord {
            time,
            reader: who.reader.clone(),
            user: who.user.clone(),
            purpose: who.purpose.clone(),
            what: what.to_string(),
            request_id,
        }
        .stage(&mut batch, pin);
        any = true;
    }
    if !any {
        return Ok(());
    }
    store.apply_other(batch)?;
    store.flush()
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

impl AccessRecord {
    /// Stage this record in `batch` for the person `pin`.
    pub fn stage(&self, batch: &mut WriteBatch, pin: &str) {
        batch.log_access(pin, self.time.unix_timestamp_nanos() as u64, self);
    }
}
