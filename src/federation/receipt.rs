//! The receipt checks a subscriber runs on every event from a peer, in a fixed order, each
//! failure with its own [`Reason`]: size (not larger than this node accepts), envelope, source
//! and sequence as the feed delivered them, time, signing key (registered for the source, valid
//! at the event's time, not revoked), signature, publisher allowed, reader allowed, schema known,
//! schema valid, duplicate.

use time::OffsetDateTime;

use crate::event::disclosure::Pointer;
use crate::event::identifiers::MemberId;
use crate::event::jws::{Jws, JwsError};
use crate::event::schema::{FieldError, Schemas};
use crate::event::{Event, EventError, SignedEvent};
use crate::store::Store;
use crate::trust::manifest::{EventFormat, KeyProblem, Manifest};
use ed25519_dalek::VerifyingKey;

pub use crate::event::CLOCK_SKEW;

/// Why something received from a peer was refused. The wire name ([`Reason::as_str`]) is what
/// quarantine records and the `reason` label of the metrics carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Reason {
    /// The signed event is larger than this node accepts (`[limits] max_event_bytes`).
    EventTooLarge,
    /// Not a flattened JWS of ours (structure, base64url, header).
    JwsMalformed,
    /// A JWS algorithm other than the one the exchange uses, or `EdDSA` from a member the
    /// manifest does not mark as not yet migrated.
    JwsAlgorithm,
    /// A signed object of another kind than an event (`typ`).
    JwsType,
    /// A JWS with a `crit` header.
    JwsCriticalHeader,
    /// A `kid` that is not `MEMBER#KEY`.
    JwsKid,
    /// The payload is not a CloudEvents event of this exchange.
    EnvelopeInvalid,
    /// The event's source is not the member whose feed delivered it.
    SourceMismatch,
    /// The feed's sequence and the signed sequence differ.
    SequenceMismatch,
    /// The event's time is beyond the clock-skew allowance.
    TimeInFuture,
    /// The key is not registered for the source.
    KeyUnknown,
    /// The key is registered for another member.
    KeyOfOtherMember,
    /// The key was not valid at the event's time.
    KeyNotValidAt,
    /// The key was revoked.
    KeyRevoked,
    /// The signature does not verify.
    SignatureInvalid,
    /// The manifest does not let the source publish the type.
    PublisherNotAllowed,
    /// The manifest does not let this node read the type.
    ReaderNotAllowed,
    /// The manifest names a schema version this node does not have.
    SchemaUnknown,
    /// The manifest this node holds has no policy for the event's type.
    TypeUnknown,
    /// The data fails the schema.
    SchemaInvalid,
    /// An SD-JWT's disclosures do not fit its signed part (unknown, repeated, malformed).
    DisclosureInvalid,
    /// The event is in a format the manifest does not let its member send.
    FormatNotAllowed,
    /// An SD-JWT carries a field its schema marks disclosable in the clear.
    DisclosableInClear,
    /// A consent dated after the event that carries it.
    ConsentAfterEvent,
    /// An event with this id is already held.
    Duplicate,
    /// A correction naming an event of another member, type or person.
    SupersedesForeign,
    /// The store could not answer the duplicate check.
    Storage,
    /// A feed item with neither an event nor a withheld reason.
    FeedItemEmpty,
    /// A checkpoint that does not verify.
    CheckpointInvalid,
    /// A checkpoint that contradicts one witnessed before.
    LogFork,
    /// An event the publisher served that the log its checkpoint commits to does not hold.
    LogSplit,
}

impl Reason {
    /// Evidence that a publisher's log misbehaved (a fork, a split), kept once per alarm: it
    /// is not held against the publisher's share of the quarantine, which the publisher could
    /// otherwise fill first so that its evidence would not be kept.
    pub(crate) fn is_evidence(self) -> bool {
        matches!(self, Reason::LogFork | Reason::LogSplit)
    }

    /// The stable wire name.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Reason::EventTooLarge => "event-too-large",
            Reason::JwsMalformed => "jws-malformed",
            Reason::JwsAlgorithm => "jws-algorithm",
            Reason::JwsType => "jws-type",
            Reason::JwsCriticalHeader => "jws-critical-header",
            Reason::JwsKid => "jws-kid",
            Reason::EnvelopeInvalid => "envelope-invalid",
            Reason::SourceMismatch => "source-mismatch",
            Reason::SequenceMismatch => "sequence-mismatch",
            Reason::TimeInFuture => "time-in-future",
            Reason::KeyUnknown => "key-unknown",
            Reason::KeyOfOtherMember => "key-of-other-member",
            Reason::KeyNotValidAt => "key-not-valid-at-time",
            Reason::KeyRevoked => "key-revoked",
            Reason::SignatureInvalid => "signature-invalid",
            Reason::PublisherNotAllowed => "publisher-not-allowed",
            Reason::ReaderNotAllowed => "reader-not-allowed",
            Reason::SchemaUnknown => "schema-unknown",
            Reason::TypeUnknown => "type-unknown",
            Reason::SchemaInvalid => "schema-invalid",
            Reason::DisclosureInvalid => "disclosure-invalid",
            Reason::FormatNotAllowed => "format-not-allowed",
            Reason::DisclosableInClear => "disclosable-in-clear",
            Reason::ConsentAfterEvent => "consent-after-event",
            Reason::Duplicate => "duplicate",
            Reason::SupersedesForeign => "supersedes-foreign",
            Reason::Storage => "storage",
            Reason::FeedItemEmpty => "feed-item-empty",
            Reason::CheckpointInvalid => "checkpoint-invalid",
            Reason::LogFork => "log-fork",
            Reason::LogSplit => "log-split",
        }
    }
}

impl Reason {
    /// Whether a later attempt may succeed without the publisher changing anything: a key or
    /// schema version or event type that a newer manifest may list, or a storage failure. Such an
    /// event is never quarantined and skipped; the subscriber retries it.
    pub(crate) fn is_retryable(self) -> bool {
        matches!(
            self,
            Reason::KeyUnknown | Reason::SchemaUnknown | Reason::TypeUnknown | Reason::Storage
        )
    }
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<&EventError> for Reason {
    fn from(e: &EventError) -> Reason {
        match e {
            EventError::Jws(
                JwsError::Malformed(_)
                | JwsError::UnprotectedHeader
                | JwsError::Base64(_)
                | JwsError::Header(_),
            ) => Reason::JwsMalformed,
            EventError::Jws(JwsError::Algorithm) => Reason::JwsAlgorithm,
            EventError::Jws(JwsError::Type { .. }) => Reason::JwsType,
            EventError::Jws(JwsError::Critical) => Reason::JwsCriticalHeader,
            EventError::Jws(JwsError::KeyId) => Reason::JwsKid,
            EventError::Jws(JwsError::Signature) => Reason::SignatureInvalid,
            EventError::Envelope(_) | EventError::Attribute(_) | EventError::Sequence => {
                Reason::EnvelopeInvalid
            }
            EventError::Json(_) => Reason::JwsMalformed,
            EventError::Disclosure(_) => Reason::DisclosureInvalid,
        }
    }
}

impl From<KeyProblem> for Reason {
    fn from(p: KeyProblem) -> Reason {
        match p {
            KeyProblem::Unknown => Reason::KeyUnknown,
            KeyProblem::OtherMember => Reason::KeyOfOtherMember,
            KeyProblem::NotValidAt => Reason::KeyNotValidAt,
            KeyProblem::Revoked => Reason::KeyRevoked,
        }
    }
}

/// Why a received event was refused: the reason and a detail without personal data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Rejection {
    pub(crate) reason: Reason,
    pub(crate) detail: String,
    pub(crate) fields: Vec<FieldError>,
}

impl Rejection {
    pub(crate) fn new(reason: Reason, detail: impl Into<String>) -> Rejection {
        Rejection {
            reason,
            detail: detail.into(),
            fields: Vec::new(),
        }
    }
}

/// The correction rule against events not stored yet (earlier in the same feed page).
pub(crate) fn check_supersedes_within(e: &Event, earlier: &[SignedEvent]) -> Result<(), Rejection> {
    let Some(target) = e.supersedes() else {
        return Ok(());
    };
    for held in earlier.iter().filter(|s| s.event().id == target) {
        e.may_supersede(held.event())
            .map_err(|why| Rejection::new(Reason::SupersedesForeign, why.to_string()))?;
    }
    Ok(())
}

/// A received event whose envelope passed, with the key its signature must verify with.
pub(crate) struct Envelope {
    signed: SignedEvent,
    jws: Jws,
    key: VerifyingKey,
}

fn bad_signature() -> Rejection {
    Rejection::new(
        Reason::SignatureInvalid,
        "the JWS signature does not verify with the key the manifest registers",
    )
}

/// Strict verification of one signature (RFC 8032, canonical encodings, no small-order points).
fn verify_one(e: &Envelope) -> Result<(), Rejection> {
    e.jws.verify(&e.key).map_err(|_| bad_signature())
}

/// Whether every signature verifies, checked as one Ed25519 batch per key (a page's events are
/// all its publisher's, so one batch; [`crate::event::batch`]: the key's terms summed, half the
/// multiscalar multiplication of ed25519-dalek's `verify_batch`, which was itself about 17 µs
/// per signature in batches of 64 against 40 µs for one strict verification). What strict
/// verification refuses and the batch can tell cheaply, it refuses too (a non-canonical s or
/// R, a small-order R). One difference is left: the batch equation is the cofactored one, so
/// it accepts a signature whose `R` is a large-order point plus a small-order one, which strict
/// verification refuses. Only the holder of the signing key can make one; a subscriber whose
/// batch passed stores it, one whose batch failed for another event verifies it alone and
/// quarantines it, and the node's audit (`jol audit`, strict) names it as a bad signature of its
/// publisher: a dishonest publisher can make receivers disagree, as it can by signing two
/// events with one id, and the disagreement is on record. (ed25519-dalek's batch, used before,
/// is cofactorless and accepted such a signature with a probability set by its weights.) Weak
/// (small-order) keys are refused when the manifest's key is looked up, as strict verification
/// refuses them.
fn verify_batch(envelopes: &[&Envelope]) -> bool {
    let mut by_key: Vec<(&VerifyingKey, Vec<crate::event::batch::Signed>)> = Vec::new();
    for e in envelopes {
        let signed = e.jws.parts();
        match by_key.iter_mut().find(|(key, _)| **key == e.key) {
            Some((_, batch)) => batch.push(signed),
            None => by_key.push((&e.key, vec![signed])),
        }
    }
    by_key
        .iter()
        .all(|(key, signed)| crate::event::batch::verify_by_one_key(key, signed))
}

/// What the checks need to know.
pub(crate) struct Checker<'a> {
    pub(crate) manifest: &'a Manifest,
    pub(crate) me: &'a MemberId,
    pub(crate) schemas: &'a Schemas,
    pub(crate) store: &'a Store,
    /// The largest signed event this node accepts.
    pub(crate) max_event_bytes: usize,
}

impl Checker<'_> {
    /// Check one event that `from`'s feed delivered at `sequence`.
    pub(crate) fn check(
        &self,
        bytes: &[u8],
        from: &MemberId,
        sequence: u64,
    ) -> Result<SignedEvent, Rejection> {
        let envelope = self.envelope(bytes, from, sequence)?;
        verify_one(&envelope)?;
        self.content(envelope)
    }

    /// Check a run of events `from`'s feed delivered (bytes and sequence each; `None` for an
    /// item without an event), verifying their signatures as one Ed25519 batch; verdicts in
    /// the same order, each as [`Checker::check`] would give it. When the batch fails, each
    /// signature is verified alone to find the bad ones.
    pub(crate) fn check_batch(
        &self,
        items: &[Option<(&[u8], u64)>],
        from: &MemberId,
    ) -> Vec<Option<Result<SignedEvent, Rejection>>> {
        let envelopes: Vec<Option<Result<Envelope, Rejection>>> = items
            .iter()
            .map(|item| item.map(|(bytes, sequence)| self.envelope(bytes, from, sequence)))
            .collect();
        let parsed: Vec<&Envelope> = envelopes.iter().flatten().flatten().collect();
        let batch_ok = verify_batch(&parsed);
        envelopes
            .into_iter()
            .map(|verdict| {
                let envelope = verdict?;
                Some(envelope.and_then(|e| {
                    if !batch_ok {
                        verify_one(&e)?;
                    }
                    self.content(e)
                }))
            })
            .collect()
    }

    /// The checks before the signature: the event is not larger than this node accepts, the
    /// JWS and event parse, the source and sequence are the feed's, the time is not ahead, and
    /// the manifest registers the key.
    fn envelope(
        &self,
        bytes: &[u8],
        from: &MemberId,
        sequence: u64,
    ) -> Result<Envelope, Rejection> {
        if bytes.len() > self.max_event_bytes {
            return Err(Rejection::new(
                Reason::EventTooLarge,
                format!(
                    "the signed event is {} bytes; this node accepts events of at most {} bytes",
                    bytes.len(),
                    self.max_event_bytes
                ),
            ));
        }
        let (signed, jws) = SignedEvent::parse(bytes)
            .map_err(|e| Rejection::new(Reason::from(&e), e.to_string()))?;
        let e = signed.event();
        if &e.source != from {
            return Err(Rejection::new(
                Reason::SourceMismatch,
                "the event's source is not the member whose feed delivered it",
            ));
        }
        if signed.sequence() != sequence {
            return Err(Rejection::new(
                Reason::SequenceMismatch,
                format!(
                    "the feed delivered sequence {sequence} but the signed event says {}",
                    e.sequence
                ),
            ));
        }
        if e.time > OffsetDateTime::now_utc() + CLOCK_SKEW {
            return Err(Rejection::new(
                Reason::TimeInFuture,
                "the event's time is beyond the clock-skew allowance",
            ));
        }
        let key = self
            .manifest
            .event_key(&e.source, jws.kid(), e.time, Some(signed.sequence()))
            .map_err(|p| Rejection::new(p.into(), format!("{} ({})", p, jws.kid())))?;
        Ok(Envelope { signed, jws, key })
    }

    /// The checks after the signature: algorithm, grants, schema, consent time, duplicates and
    /// corrections.
    fn content(&self, envelope: Envelope) -> Result<SignedEvent, Rejection> {
        let Envelope { signed, jws, .. } = envelope;
        let e = signed.event();
        if !self.manifest.accepts_alg(&e.source, jws.alg()) {
            return Err(Rejection::new(
                Reason::JwsAlgorithm,
                "EdDSA is accepted only from members the manifest marks as not yet migrated to Ed25519 (RFC 9864)",
            ));
        }
        if self.manifest.policy(e.event_type).is_none() {
            return Err(Rejection::new(
                Reason::TypeUnknown,
                format!("the manifest held does not list {} yet", e.event_type),
            ));
        }
        if !self.manifest.may_publish(&e.source, e.event_type) {
            return Err(Rejection::new(
                Reason::PublisherNotAllowed,
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
            return Err(Rejection::new(
                Reason::ReaderNotAllowed,
                format!("the manifest does not let this node read {}", e.event_type),
            ));
        }
        let policy_digest = self
            .manifest
            .policy(e.event_type)
            .map(|p| p.schema_digest.as_str());
        if policy_digest != Some(e.event_type.schema_digest()) {
            return Err(Rejection::new(
                Reason::SchemaUnknown,
                "the manifest names a schema version this node does not have",
            ));
        }
        self.check_format(&signed)?;
        let valid = if signed.is_selective() {
            self.schemas.validate_received(e.event_type, &e.data)
        } else {
            self.schemas.validate(e.event_type, &e.data)
        };
        if let Err(fields) = valid {
            return Err(Rejection {
                reason: Reason::SchemaInvalid,
                detail: format!("{} field(s) fail the schema", fields.len()),
                fields,
            });
        }
        if crate::policy::consent::carried(e)
            .is_some_and(|c| !crate::policy::consent::time_is_plausible(&c, e))
        {
            return Err(Rejection::new(
                Reason::ConsentAfterEvent,
                "the consent is dated after the event that carries it",
            ));
        }
        match self.store.position_of(&e.source, &e.id) {
            Ok(Some(_)) => {
                return Err(Rejection::new(
                    Reason::Duplicate,
                    "an event with this id is already held",
                ))
            }
            Ok(None) => {}
            Err(err) => return Err(Rejection::new(Reason::Storage, err.to_string())),
        }
        self.check_supersedes(e)?;
        self.within_grant(signed)
    }

    /// The event as far as this node's grant goes: a publisher still on an older manifest (a
    /// grant narrowed since) may send disclosures the manifest this node holds no longer lets it
    /// have; they are dropped here, before anything is stored. An event signed whole cannot be
    /// cut: it is refused unless the grant is every field.
    fn within_grant(&self, signed: SignedEvent) -> Result<SignedEvent, Rejection> {
        let fields = self
            .manifest
            .reader_fields(self.me, signed.event().event_type);
        let cut =
            match signed.for_reader(&fields) {
                None => return Err(Rejection::new(
                    Reason::ReaderNotAllowed,
                    "signed whole, the event holds fields the manifest does not let this node have",
                )),
                Some(std::borrow::Cow::Borrowed(_)) => return Ok(signed),
                Some(std::borrow::Cow::Owned(cut)) => cut,
            };
        SignedEvent::parse(&cut)
            .map(|(cut, _)| cut)
            .map_err(|e| Rejection::new(Reason::from(&e), e.to_string()))
    }

    /// The event's format is one its member may send, and an SD-JWT conceals every field its
    /// schema marks disclosable: a disclosable field in the clear could be neither withheld
    /// from a reader nor erased.
    fn check_format(&self, signed: &SignedEvent) -> Result<(), Rejection> {
        let e = signed.event();
        let format = if signed.is_selective() {
            EventFormat::SdJwt
        } else {
            EventFormat::Jws
        };
        if !self.manifest.accepts_format(&e.source, format) {
            return Err(Rejection::new(
                Reason::FormatNotAllowed,
                "the manifest does not let the source send events in this format",
            ));
        }
        if !signed.is_selective() {
            return Ok(());
        }
        let disclosed = |p: &Pointer| signed.disclosed().iter().any(|d| &d.pointer == p);
        if let Some(clear) = self
            .schemas
            .disclosable(e.event_type)
            .iter()
            .find(|p| e.data.pointer(p.as_str()).is_some() && !disclosed(p))
        {
            return Err(Rejection::new(
                Reason::DisclosableInClear,
                format!("{clear} is disclosable but was signed in the clear"),
            ));
        }
        Ok(())
    }

    /// A correction names an event of the same source and type about the same person. Only the
    /// events this node holds can be checked; the registry view ignores any other correction.
    fn check_supersedes(&self, e: &Event) -> Result<(), Rejection> {
        let Some(target) = e.supersedes() else {
            return Ok(());
        };
        let storage =
            |err: crate::store::StoreError| Rejection::new(Reason::Storage, err.to_string());
        let held = self.store.positions_of_id(&target).map_err(storage)?;
        for (_, position) in held {
            let Some(bytes) = self.store.get(position).map_err(storage)? else {
                continue;
            };
            let Ok((stored, _)) = SignedEvent::parse(&bytes) else {
                continue;
            };
            if let Err(why) = e.may_supersede(stored.event()) {
                return Err(Rejection::new(Reason::SupersedesForeign, why.to_string()));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::identifiers::KeyName;
    use crate::event::keys;
    use crate::event::schema::EventType;
    use crate::federation::fixture::member_entry;
    use crate::store::{Append, LogAppend, WriteBatch};
    use crate::trust::manifest::{ReaderGrant, TypePolicy};
    use ed25519_dalek::SigningKey;
    use time::Duration;

    /// Employment publishes employment-status; migration (this node) reads it.
    struct World {
        manifest: Manifest,
        schemas: std::sync::Arc<Schemas>,
        store: Store,
        me: MemberId,
        employment: MemberId,
        key: SigningKey,
        kid: KeyName,
        max_event_bytes: usize,
        _dir: tempfile::TempDir,
    }

    fn world() -> World {
        let now = OffsetDateTime::now_utc();
        let me: MemberId = "central-server/GOV/70000001/migration".parse().unwrap();
        let employment: MemberId = "central-server/GOV/70000002/employment".parse().unwrap();
        let key = keys::generate();
        let kid = KeyName::new(employment.clone(), "sign-1").unwrap();
        let t = EventType::EmploymentStatus;
        let manifest = Manifest {
            instance: "central-server".into(),
            serial: 1,
            issued: now,
            expires: now + Duration::days(1),
            authority: "central-server/GOV/70000000/authority".parse().unwrap(),
            ca_certificate: String::new(),
            members: vec![
                member_entry(&employment, &key),
                member_entry(&me, &keys::generate()),
            ],
            event_types: vec![TypePolicy::new(
                t,
                vec![employment.clone()],
                vec![ReaderGrant {
                    member: me.clone(),
                    purposes: vec!["EMPLOYMENT_SERVICES".into()],
                    fields: None,
                }],
            )],
        };
        let dir = tempfile::tempdir().unwrap();
        World {
            manifest,
            schemas: Schemas::load().unwrap(),
            store: Store::open(dir.path()).unwrap(),
            me,
            employment,
            key,
            kid,
            max_event_bytes: crate::budget::DEFAULT_MAX_EVENT_BYTES,
            _dir: dir,
        }
    }

    /// A valid employment-status document (the schema's own example).
    fn status_data() -> serde_json::Value {
        serde_json::from_str(include_str!(
            "../../tests/examples/employment-status/valid/employment-started.json"
        ))
        .unwrap()
    }

    impl World {
        fn event(&self, sequence: u64) -> Event {
            Event::new(
                self.employment.clone(),
                EventType::EmploymentStatus,
                sequence,
                status_data(),
            )
        }

        fn signed(&self, e: &Event) -> Vec<u8> {
            e.sign(&self.key, &self.kid).bytes().to_vec()
        }

        fn checker(&self) -> Checker<'_> {
            Checker {
                manifest: &self.manifest,
                me: &self.me,
                schemas: &self.schemas,
                store: &self.store,
                max_event_bytes: self.max_event_bytes,
            }
        }

        fn check(&self, bytes: &[u8], sequence: u64) -> Result<SignedEvent, Reason> {
            self.checker()
                .check(bytes, &self.employment, sequence)
                .map_err(|r| r.reason)
        }
    }

    #[test]
    fn a_batch_gives_each_event_the_verdict_it_gets_alone() {
        let w = world();
        let mut pages: Vec<Vec<u8>> = (1..=40).map(|n| w.signed(&w.event(n))).collect();
        // Event 7's signature broken (one character of the signature), event 9 not JSON.
        let text = String::from_utf8(pages[6].clone()).unwrap();
        let at = text.find("\"signature\":\"").unwrap() + 14;
        let other = if &text[at..at + 1] == "A" { "B" } else { "A" };
        pages[6] = format!("{}{other}{}", &text[..at], &text[at + 1..]).into_bytes();
        pages[8] = b"not json".to_vec();
        let checker = w.checker();
        let mut items: Vec<Option<(&[u8], u64)>> = pages
            .iter()
            .zip(1..)
            .map(|(p, n)| Some((p.as_slice(), n)))
            .collect();
        items.push(None);
        let batch = checker.check_batch(&items, &w.employment);
        assert_eq!(batch.len(), items.len());
        assert!(batch[40].is_none());
        for (n, verdict) in batch.iter().take(40).enumerate() {
            let alone = w.check(&pages[n], n as u64 + 1);
            let got = verdict.as_ref().unwrap().as_ref().map_err(|r| r.reason);
            assert_eq!(
                got.map(|s| s.sequence()),
                alone.map(|s| s.sequence()),
                "event {}",
                n + 1
            );
        }
        assert_eq!(
            batch[6].as_ref().unwrap().as_ref().unwrap_err().reason,
            Reason::SignatureInvalid
        );
        // All good: the batch alone decides.
        let good: Vec<Option<(&[u8], u64)>> = pages[..6]
            .iter()
            .zip(1..)
            .map(|(p, n)| Some((p.as_slice(), n)))
            .collect();
        assert!(checker
            .check_batch(&good, &w.employment)
            .iter()
            .all(|v| v.as_ref().unwrap().is_ok()));
    }

    /// Size comes first: an event larger than this node accepts is refused for that, whatever
    /// else is wrong with it, and is not retried.
    #[test]
    fn an_event_larger_than_this_node_accepts_is_refused_first() {
        let mut w = world();
        let signed = w.signed(&w.event(1));
        w.max_event_bytes = signed.len();
        assert!(w.check(&signed, 1).is_ok(), "at the limit");
        w.max_event_bytes = signed.len() - 1;
        assert_eq!(w.check(&signed, 1).unwrap_err(), Reason::EventTooLarge);
        assert_eq!(w.check(&signed, 2).unwrap_err(), Reason::EventTooLarge);
        assert!(!Reason::EventTooLarge.is_retryable());
    }

    /// Employment's event as an SD-JWT concealing what the schema marks disclosable, with only
    /// the disclosures of `fields` (all when `None`).
    fn selective(w: &World, sequence: u64, fields: Option<&[&str]>) -> Vec<u8> {
        let e = w.event(sequence);
        let signed = e.sign_selective(
            &w.key,
            &w.kid,
            w.schemas.disclosable(EventType::EmploymentStatus),
        );
        let fields = match fields {
            None => crate::event::disclosure::Fields::All,
            Some(list) => crate::event::disclosure::Fields::Only(
                list.iter().map(|p| p.parse().unwrap()).collect(),
            ),
        };
        signed.for_reader(&fields).expect("a copy").into_owned()
    }

    #[test]
    fn an_sd_jwt_passes_with_any_subset_of_its_disclosures_and_reveals_only_those() {
        let w = world();
        let whole = w.check(&selective(&w, 1, None), 1).unwrap();
        assert_eq!(whole.event().data, status_data());
        let two = w
            .check(
                &selective(&w, 1, Some(&["/person/pin", "/job/formality"])),
                1,
            )
            .unwrap();
        let data = &two.event().data;
        assert_eq!(data["person"]["pin"], status_data()["person"]["pin"]);
        assert_eq!(data["job"]["formality"], status_data()["job"]["formality"]);
        assert!(data["job"].get("isco08").is_none(), "{data}");
        assert!(data.get("labourForceStatus").is_none(), "{data}");
        // The always-visible fields came with the signed part.
        assert_eq!(data["job"]["startDate"], status_data()["job"]["startDate"]);
        assert_eq!(two.disclosed().len(), 2);
    }

    /// A publisher still on a manifest that granted this node more sends more: what the
    /// manifest this node holds does not grant is dropped before anything is stored, and an
    /// event signed whole for a narrower grant is refused.
    #[test]
    fn disclosures_beyond_this_nodes_grant_are_dropped_at_receipt() {
        let mut w = world();
        w.manifest.event_types[0].readers[0].fields = Some(vec!["/person/pin".parse().unwrap()]);
        let kept = w.check(&selective(&w, 1, None), 1).unwrap();
        let data = &kept.event().data;
        assert_eq!(data["person"]["pin"], status_data()["person"]["pin"]);
        assert!(data["job"].get("isco08").is_none(), "{data}");
        assert!(data.get("labourForceStatus").is_none(), "{data}");
        assert_eq!(kept.disclosed().len(), 1);
        let isco = status_data()["job"]["isco08"].to_string();
        assert!(
            !String::from_utf8_lossy(kept.bytes()).contains(isco.trim_matches('"')),
            "the stored bytes still disclose it"
        );
        let whole = w.signed(&w.event(1));
        assert_eq!(w.check(&whole, 1).unwrap_err(), Reason::ReaderNotAllowed);
    }

    #[test]
    fn an_sd_jwt_whose_disclosures_do_not_fit_or_that_shows_a_disclosable_field_is_refused() {
        let w = world();
        // A disclosure of another event of the same publisher: its digest is not in this one.
        let other = selective(&w, 1, Some(&["/person/pin"]));
        let mine = selective(&w, 1, Some(&["/person/pin"]));
        let theirs: serde_json::Value = serde_json::from_slice(&other).unwrap();
        let mut grafted: serde_json::Value = serde_json::from_slice(&mine).unwrap();
        grafted["header"] = theirs["header"].clone();
        let grafted = serde_json::to_vec(&grafted).unwrap();
        assert_eq!(w.check(&grafted, 1).unwrap_err(), Reason::DisclosureInvalid);
        // The PIN signed in the clear beside the digests: it could be neither withheld nor
        // erased.
        let e = w.event(1);
        let fields: Vec<crate::event::disclosure::Pointer> = w
            .schemas
            .disclosable(EventType::EmploymentStatus)
            .iter()
            .filter(|p| p.as_str() != "/person/pin")
            .cloned()
            .collect();
        let clear = e.sign_selective(&w.key, &w.kid, &fields);
        assert_eq!(
            w.check(clear.bytes(), 1).unwrap_err(),
            Reason::DisclosableInClear
        );
        // A disclosed value the schema refuses is refused like any field.
        let mut bad = w.event(1);
        bad.data["job"]["formality"] = "SOMETIMES".into();
        let bad = bad.sign_selective(
            &w.key,
            &w.kid,
            w.schemas.disclosable(EventType::EmploymentStatus),
        );
        assert_eq!(w.check(bad.bytes(), 1).unwrap_err(), Reason::SchemaInvalid);
    }

    #[test]
    fn a_format_the_manifest_does_not_let_the_member_send_is_refused() {
        let mut w = world();
        let sd = selective(&w, 1, None);
        let whole = w.signed(&w.event(1));
        for m in &mut w.manifest.members {
            m.event_formats = vec![crate::trust::manifest::EventFormat::Jws];
        }
        assert_eq!(w.check(&sd, 1).unwrap_err(), Reason::FormatNotAllowed);
        assert!(w.check(&whole, 1).is_ok());
        for m in &mut w.manifest.members {
            m.event_formats = vec![crate::trust::manifest::EventFormat::SdJwt];
        }
        assert!(w.check(&sd, 1).is_ok());
        assert_eq!(w.check(&whole, 1).unwrap_err(), Reason::FormatNotAllowed);
        // A manifest that names no format for the member: the format before SD-JWT only.
        for m in &mut w.manifest.members {
            m.event_formats = Vec::new();
        }
        assert_eq!(w.check(&sd, 1).unwrap_err(), Reason::FormatNotAllowed);
    }

    #[test]
    fn a_good_event_passes() {
        let w = world();
        let e = w.event(1);
        let signed = w.check(&w.signed(&e), 1).unwrap();
        assert_eq!(signed.event(), &e);
    }

    #[test]
    fn each_check_refuses_with_its_own_reason() {
        let w = world();
        assert_eq!(w.check(b"{}", 1).unwrap_err(), Reason::JwsMalformed);
        let not_an_event =
            crate::event::jws::sign(&w.key, &w.kid, crate::event::jws::Typ::Event, b"{\"x\":1}");
        assert_eq!(
            w.check(&not_an_event, 1).unwrap_err(),
            Reason::EnvelopeInvalid
        );

        let mut e = w.event(1);
        e.source = w.me.clone();
        assert_eq!(
            w.check(&w.signed(&e), 1).unwrap_err(),
            Reason::SourceMismatch
        );

        let e = w.event(2);
        assert_eq!(
            w.check(&w.signed(&e), 1).unwrap_err(),
            Reason::SequenceMismatch
        );

        let mut e = w.event(1);
        e.time = OffsetDateTime::now_utc() + Duration::hours(1);
        assert_eq!(w.check(&w.signed(&e), 1).unwrap_err(), Reason::TimeInFuture);

        let e = w.event(1);
        let other_kid = KeyName::new(w.employment.clone(), "sign-9").unwrap();
        let bytes = e.sign(&w.key, &other_kid).bytes().to_vec();
        assert_eq!(w.check(&bytes, 1).unwrap_err(), Reason::KeyUnknown);

        let foreign_kid = KeyName::new(w.me.clone(), "sign-1").unwrap();
        let bytes = e.sign(&w.key, &foreign_kid).bytes().to_vec();
        assert_eq!(w.check(&bytes, 1).unwrap_err(), Reason::KeyOfOtherMember);

        let mut e = w.event(1);
        e.time = OffsetDateTime::now_utc() - Duration::days(60);
        assert_eq!(
            w.check(&w.signed(&e), 1).unwrap_err(),
            Reason::KeyNotValidAt
        );

        let e = w.event(1);
        let bytes = e.sign(&keys::generate(), &w.kid).bytes().to_vec();
        assert_eq!(w.check(&bytes, 1).unwrap_err(), Reason::SignatureInvalid);

        let mut e = w.event(1);
        e.data = serde_json::json!({"event": "EMPLOYMENT_STARTED"});
        assert_eq!(
            w.check(&w.signed(&e), 1).unwrap_err(),
            Reason::SchemaInvalid
        );
    }

    #[test]
    fn grants_schema_versions_revocation_and_duplicates() {
        let e_bytes = |w: &World| w.signed(&w.event(1));

        let mut w = world();
        w.manifest.event_types[0].publishers.clear();
        assert_eq!(
            w.check(&e_bytes(&w), 1).unwrap_err(),
            Reason::PublisherNotAllowed
        );

        let mut w = world();
        w.manifest.event_types[0].readers.clear();
        assert_eq!(
            w.check(&e_bytes(&w), 1).unwrap_err(),
            Reason::ReaderNotAllowed
        );

        let mut w = world();
        w.manifest.event_types[0].schema_digest = "0".repeat(64);
        assert_eq!(w.check(&e_bytes(&w), 1).unwrap_err(), Reason::SchemaUnknown);

        let mut w = world();
        w.manifest.members[0].signing_keys[0].revoked =
            Some(OffsetDateTime::now_utc() - Duration::hours(1));
        assert_eq!(w.check(&e_bytes(&w), 1).unwrap_err(), Reason::KeyRevoked);

        let w = world();
        let bytes = e_bytes(&w);
        let signed = w.check(&bytes, 1).unwrap();
        let mut batch = WriteBatch::default();
        batch.append(
            LogAppend::for_tests(),
            Append {
                position: 1,
                source: &w.employment,
                sequence: 1,
                id: signed.event().id,
                jws: &bytes,
                leaf: [0; 32],
                idempotency: None,
            },
        );
        w.store.apply(LogAppend::for_tests(), batch).unwrap();
        assert_eq!(w.check(&bytes, 1).unwrap_err(), Reason::Duplicate);
    }

    #[test]
    fn the_earlier_check_decides_when_several_fail() {
        let w = world();
        // Wrong source, wrong sequence and a foreign signature: the source check comes first.
        let mut e = w.event(5);
        e.source = w.me.clone();
        let bytes = e.sign(&keys::generate(), &w.kid).bytes().to_vec();
        assert_eq!(w.check(&bytes, 1).unwrap_err(), Reason::SourceMismatch);
        // Right source, wrong sequence, foreign signature: the sequence check comes before the key.
        let e = w.event(5);
        let bytes = e.sign(&keys::generate(), &w.kid).bytes().to_vec();
        assert_eq!(w.check(&bytes, 1).unwrap_err(), Reason::SequenceMismatch);
        // Signature bad and schema bad: the signature check comes first.
        let mut e = w.event(1);
        e.data = serde_json::json!({});
        let bytes = e.sign(&keys::generate(), &w.kid).bytes().to_vec();
        assert_eq!(w.check(&bytes, 1).unwrap_err(), Reason::SignatureInvalid);
    }

    #[test]
    fn eddsa_only_from_members_not_yet_migrated_and_only_events_as_events() {
        use crate::event::jws::{sign_with, Alg, Typ};
        let w = world();
        let e = w.event(1);
        let payload = serde_json::to_vec(&e).unwrap();
        let legacy = sign_with(&w.key, &w.kid, Alg::EdDsa, None, &payload);
        assert_eq!(w.check(&legacy, 1).unwrap_err(), Reason::JwsAlgorithm);
        let mut w = w;
        w.manifest.members[0].legacy_eddsa = true;
        assert!(w.check(&legacy, 1).is_ok(), "a member not yet migrated");
        let as_checkpoint = sign_with(&w.key, &w.kid, Alg::Ed25519, Some(Typ::KpiReport), &payload);
        assert_eq!(w.check(&as_checkpoint, 1).unwrap_err(), Reason::JwsType);
    }

    #[test]
    fn a_correction_of_another_members_event_is_refused() {
        let w = world();
        // This node holds a migration record about the person.
        let record = Event::new(
            w.me.clone(),
            EventType::ReturneeRecord,
            1,
            serde_json::json!({"person": {"pin": "21503199012345"}}),
        );
        let bytes = record.sign(&keys::generate(), &KeyName::new(w.me.clone(), "k").unwrap());
        let mut batch = WriteBatch::default();
        batch.append(
            LogAppend::for_tests(),
            Append {
                position: 1,
                source: &w.me,
                sequence: 1,
                id: record.id,
                jws: bytes.bytes(),
                leaf: [0; 32],
                idempotency: None,
            },
        );
        w.store.apply(LogAppend::for_tests(), batch).unwrap();
        // The employment service's "correction" of it.
        let mut e = w.event(1);
        e.data["supersedes"] = record.id.to_string().into();
        e.data["person"]["pin"] = "21503199012345".into();
        assert_eq!(
            w.check(&w.signed(&e), 1).unwrap_err(),
            Reason::SupersedesForeign
        );
    }

    #[test]
    fn what_a_newer_manifest_may_cure_is_retryable_and_the_rest_is_not() {
        let mut w = world();
        w.manifest.event_types.clear();
        let bytes = w.signed(&w.event(1));
        assert_eq!(w.check(&bytes, 1).unwrap_err(), Reason::TypeUnknown);
        for r in [
            Reason::KeyUnknown,
            Reason::SchemaUnknown,
            Reason::TypeUnknown,
            Reason::Storage,
        ] {
            assert!(r.is_retryable(), "{r}");
        }
        for r in [
            Reason::SignatureInvalid,
            Reason::PublisherNotAllowed,
            Reason::SchemaInvalid,
            Reason::KeyRevoked,
            Reason::Duplicate,
            Reason::SupersedesForeign,
        ] {
            assert!(!r.is_retryable(), "{r}");
        }
    }

    #[test]
    fn a_consent_dated_after_its_event_is_refused() {
        let w = world();
        let mut e = Event::new(
            w.employment.clone(),
            EventType::EmploymentStatus,
            1,
            status_data(),
        );
        // Consent travels in returnee records; the rule is checked on whatever carries one.
        e.event_type = EventType::ReturneeRecord;
        e.dataschema = e.event_type.schema_uri();
        e.data = serde_json::json!({"consent": {"granted": true, "purposes": [], "recipients": [],
            "time": "2999-01-01T00:00:00Z"}});
        let c = crate::policy::consent::carried(&e).unwrap();
        assert!(!crate::policy::consent::time_is_plausible(&c, &e));
        e.data["consent"]["time"] = "2020-01-01T00:00:00Z".into();
        let c = crate::policy::consent::carried(&e).unwrap();
        assert!(crate::policy::consent::time_is_plausible(&c, &e));
    }

    /// What a feed page's item can be, for the receipt checks' property test.
    #[derive(Debug, Clone, Copy)]
    enum Item {
        Good,
        ForeignSignature,
        WrongSequence,
        FlippedByte(usize),
        SchemaInvalid,
        Garbage,
        Missing,
    }

    fn an_item() -> impl proptest::strategy::Strategy<Value = Item> {
        use proptest::prelude::*;
        prop_oneof![
            4 => Just(Item::Good),
            1 => Just(Item::ForeignSignature),
            1 => Just(Item::WrongSequence),
            1 => any::<usize>().prop_map(Item::FlippedByte),
            1 => Just(Item::SchemaInvalid),
            1 => Just(Item::Garbage),
            1 => Just(Item::Missing),
        ]
    }

    impl World {
        /// The bytes a feed serves at `sequence` for `item`, and the reason its check must give
        /// (`None`: accepted; a flipped byte may land where it only breaks the signature or the
        /// JSON, so any refusal does).
        fn item(&self, item: Item, sequence: u64) -> Option<(Vec<u8>, Option<Reason>)> {
            let good = self.signed(&self.event(sequence));
            Some(match item {
                Item::Good => (good, None),
                Item::ForeignSignature => (
                    self.event(sequence)
                        .sign(&keys::generate(), &self.kid)
                        .bytes()
                        .to_vec(),
                    Some(Reason::SignatureInvalid),
                ),
                Item::WrongSequence => (
                    self.signed(&self.event(sequence + 1)),
                    Some(Reason::SequenceMismatch),
                ),
                Item::FlippedByte(at) => {
                    let mut bytes = good;
                    let at = at % bytes.len();
                    bytes[at] ^= 0x01;
                    (bytes, Some(Reason::SignatureInvalid))
                }
                Item::SchemaInvalid => {
                    let mut e = self.event(sequence);
                    e.data = serde_json::json!({"event": "EMPLOYMENT_STARTED"});
                    (self.signed(&e), Some(Reason::SchemaInvalid))
                }
                Item::Garbage => (b"{not a jws".to_vec(), Some(Reason::JwsMalformed)),
                Item::Missing => return None,
            })
        }
    }

    /// Property (`PROPTEST_CASES` sets its size; 256 by default): whatever mix of good and bad
    /// events a page holds, checking it as one batch gives each item the verdict checking it
    /// alone gives, good events pass, and each kind of bad one is refused.
    #[test]
    fn a_batch_gives_every_item_the_verdict_it_gets_alone() {
        use proptest::test_runner::{Config, TestCaseError, TestRunner};
        let w = world();
        let mut runner = TestRunner::new(Config::default());
        let pages = proptest::collection::vec(an_item(), 1..12);
        let outcome = runner.run(&pages, |page| {
            let served: Vec<Option<(Vec<u8>, Option<Reason>)>> = page
                .iter()
                .enumerate()
                .map(|(i, item)| w.item(*item, i as u64 + 1))
                .collect();
            let items: Vec<Option<(&[u8], u64)>> = served
                .iter()
                .enumerate()
                .map(|(i, s)| s.as_ref().map(|(b, _)| (b.as_slice(), i as u64 + 1)))
                .collect();
            let batch = w.checker().check_batch(&items, &w.employment);
            for (i, (verdict, served)) in batch.iter().zip(&served).enumerate() {
                let alone = served.as_ref().map(|(b, _)| w.check(b, i as u64 + 1));
                let batched = verdict
                    .as_ref()
                    .map(|v| v.as_ref().map(|_| ()).map_err(|r| r.reason));
                let alone_reason = alone
                    .as_ref()
                    .map(|v| v.as_ref().map(|_| ()).map_err(|r| *r));
                if batched != alone_reason {
                    return Err(TestCaseError::fail(format!(
                        "item {i} ({:?}): batch {batched:?}, alone {alone_reason:?}",
                        page[i]
                    )));
                }
                let expected = served.as_ref().map(|(_, reason)| *reason);
                match (expected, batched) {
                    (None, None) => {}
                    (Some(None), Some(Ok(()))) => {}
                    (Some(Some(_)), Some(Err(_))) if matches!(page[i], Item::FlippedByte(_)) => {}
                    (Some(Some(want)), Some(Err(got))) if want == got => {}
                    (want, got) => {
                        return Err(TestCaseError::fail(format!(
                            "item {i} ({:?}): expected {want:?}, got {got:?}",
                            page[i]
                        )))
                    }
                }
            }
            Ok(())
        });
        if let Err(e) = outcome {
            panic!("{e}");
        }
    }
}
