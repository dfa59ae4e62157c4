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

impl AccessRecord {
    /// Stage this record in `batch` for the person `pin`.
    pub fn stage(&self, batch: &mut WriteBatch, pin: &str) {
        batch.log_access(pin, self.time.unix_timestamp_nanos() as u64, self);
    }
}
