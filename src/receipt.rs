//! The receipt checks a subscriber runs on every event from a peer, in the order DESIGN.md
//! gives, each failure with its own reason code: envelope, signature (by a key of the source that
//! was valid at the event's time and not revoked), publisher allowed, reader allowed, schema,
//! duplicate.

use time::{Duration, OffsetDateTime};

use crate::event::SignedEvent;
use crate::identifiers::MemberId;
use crate::manifest::Manifest;
use crate::schema::{FieldError, Schemas};
use crate::store::Store;

/// How far in the future an event's time may be (clock skew between agencies).
pub const CLOCK_SKEW: Duration = Duration::minutes(5);

/// Why a received event was refused: a stable code and a detail without personal data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub code: &'static str,
    pub detail: String,
    pub fields: Vec<FieldError>,
}

fn reject(code: &'static str, detail: impl Into<String>) -> Rejection {
    Rejection {
        code,
        detail: detail.into(),
        fields: Vec::new(),
    }
}

/// What the checks need to know.
pub struct Checker<'a> {
    pub manifest: &'a Manifest,
    pub me: &'a MemberId,
    pub schemas: &'a Schemas,
    pub store: &'a Store,
}

impl Checker<'_> {
    /// Check one event that `from`'s feed delivered at `sequence`.
    pub fn check(
        &self,
        bytes: &[u8],
        from: &MemberId,
        sequence: u64,
    ) -> Result<SignedEvent, Rejection> {
        let (signed, jws) =
            SignedEvent::parse(bytes).map_err(|e| reject(e.code(), e.to_string()))?;
        let e = signed.event();
        if &e.source != from {
            return Err(reject(
                "source-mismatch",
                "the event's source is not the member whose feed delivered it",
            ));
        }
        if signed.sequence() != sequence {
            return Err(reject(
                "sequence-mismatch",
                format!(
                    "the feed delivered sequence {sequence} but the signed event says {}",
                    e.sequence
                ),
            ));
        }
        if e.time > OffsetDateTime::now_utc() + CLOCK_SKEW {
            return Err(reject(
                "time-in-future",
                "the event's time is beyond the clock-skew allowance",
            ));
        }
        let key = self
            .manifest
            .event_key(&e.source, jws.kid(), e.time)
            .map_err(|p| reject(p.code(), format!("{} ({})", p, jws.kid())))?;
        jws.verify(&key).map_err(|_| {
            reject(
                "signature-invalid",
                "the JWS signature does not verify with the key the manifest registers",
            )
        })?;
        if !self.manifest.may_publish(&e.source, e.event_type) {
            return Err(reject(
                "publisher-not-allowed",
                format!(
                    "the manifest does not let the source publish {}",
                    e.event_type
                ),
            ));
        }
        if self
            .manifest
            .reader_purposes(self.me, e.event_type)
            .is_none()
        {
            return Err(reject(
                "reader-not-allowed",
                format!("the manifest does not let this node read {}", e.event_type),
            ));
        }
        let policy_digest = self
            .manifest
            .policy(e.event_type)
            .map(|p| p.schema_digest.as_str());
        if policy_digest != Some(e.event_type.schema_digest().as_str()) {
            return Err(reject(
                "schema-unknown",
                "the manifest names a schema version this node does not have",
            ));
        }
        if let Err(fields) = self.schemas.validate(e.event_type, &e.data) {
            return Err(Rejection {
                code: "schema-invalid",
                detail: format!("{} field(s) fail the schema", fields.len()),
                fields,
            });
        }
        match self.store.position_of(&e.id) {
            Ok(Some(_)) => Err(reject("duplicate", "an event with this id is already held")),
            Ok(None) => Ok(signed),
            Err(err) => Err(reject("storage", err.to_string())),
        }
    }
}
