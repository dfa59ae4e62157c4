//! The CloudEvents 1.0 event of the exchange and its signed, stored form.
//!
//! An [`Event`] is built by the publishing node, serialized once, signed as a JWS, and from then
//! on only the JWS bytes travel. A [`SignedEvent`] is those bytes with the parsed envelope beside
//! them; the signed part is never re-serialized. A selectively disclosable event
//! ([`Event::sign_selective`], an SD-JWT) travels with the disclosures its holder may have
//! ([`SignedEvent::for_reader`]); its envelope's `data` is what those disclosures reveal.

use std::sync::Arc;

use ed25519_dalek::SigningKey;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::event::disclosure::{self, Disclosed, Fields, Pointer, SdError};
use crate::event::identifiers::{KeyName, MemberId};
use crate::event::json::SerdeError;
use crate::event::jws::{self, Jws, JwsError, Typ};
use crate::event::schema::EventType;

/// Why stored or received bytes are not an event of ours.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    /// Not a JWS of an event.
    #[error(transparent)]
    Jws(#[from] JwsError),
    /// The payload is not an envelope of this exchange.
    #[error("the payload is not a CloudEvents 1.0 event of this exchange: {0}")]
    Envelope(#[source] SerdeError),
    /// An attribute of the envelope is not what this exchange requires.
    #[error("the payload is not a CloudEvents 1.0 event of this exchange: {0}")]
    Attribute(BadAttribute),
    /// The payload is not strict JSON.
    #[error("the payload: {0}")]
    Json(crate::event::json::JsonError),
    /// The sequence is not a decimal number from 1.
    #[error("sequence must be a decimal number from 1")]
    Sequence,
    /// An SD-JWT's disclosures do not fit its signed part.
    #[error("the disclosures do not fit the signed part: {0}")]
    Disclosure(#[from] SdError),
}

impl EventError {
    /// A stable reason code for quarantine records and metrics.
    pub(crate) fn code(&self) -> &'static str {
        match self {
            EventError::Jws(e) => e.code(),
            EventError::Envelope(_) | EventError::Attribute(_) | EventError::Sequence => {
                "envelope-invalid"
            }
            EventError::Json(_) => "jws-malformed",
            EventError::Disclosure(_) => "disclosure-invalid",
        }
    }
}

/// Which attribute of a well-formed envelope is not what this exchange requires.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BadAttribute {
    /// `specversion` is not 1.0.
    #[error("specversion must be \"1.0\"")]
    SpecVersion,
    /// `datacontenttype` is not JSON.
    #[error("datacontenttype must be application/json")]
    ContentType,
    /// `dataschema` is not the type's schema.
    #[error("dataschema does not name the schema of this type")]
    DataSchema,
    /// `id` is not a UUIDv7.
    #[error("id must be a UUIDv7")]
    IdVersion,
}

/// Why a correction may not supersede the event it names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SupersedeError {
    /// The named event is another member's.
    #[error("supersedes names an event of another member: a member corrects only its own events")]
    OtherSource,
    /// The named event is of another type.
    #[error("supersedes names an event of another type: a correction is of the type it corrects")]
    OtherType,
    /// The named event is about another person.
    #[error("supersedes names an event about another person")]
    OtherPerson,
    /// No event of this member has that id.
    #[error("supersedes names no event this member published")]
    Unknown,
}

/// A CloudEvents 1.0 event with this exchange's required attributes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Event {
    pub(crate) specversion: String,
    /// Its id (a UUIDv7), unique for its source.
    pub id: Uuid,
    /// The member that published it.
    pub source: MemberId,
    /// Its type.
    #[serde(rename = "type")]
    pub event_type: EventType,
    /// When it was published.
    #[serde(with = "time::serde::rfc3339")]
    pub time: OffsetDateTime,
    pub(crate) dataschema: String,
    pub(crate) datacontenttype: String,
    /// Its sequence among its source's events (a decimal number from 1, as CloudEvents'
    /// sequence extension writes it).
    pub sequence: String,
    /// The data, valid against its type's schema.
    pub data: Value,
}

impl Event {
    /// A new event from `source` with a fresh UUIDv7 and the current time.
    pub fn new(source: MemberId, event_type: EventType, sequence: u64, data: Value) -> Event {
        Event {
            specversion: "1.0".into(),
            id: Uuid::now_v7(),
            source,
            event_type,
            time: OffsetDateTime::now_utc(),
            dataschema: event_type.schema_uri(),
            datacontenttype: "application/json".into(),
            sequence: sequence.to_string(),
            data,
        }
    }

    /// The sequence as a number; `None` unless it is a canonical decimal from 1.
    pub fn sequence_number(&self) -> Option<u64> {
        let n: u64 = self.sequence.parse().ok()?;
        (n >= 1 && n.to_string() == self.sequence).then_some(n)
    }

    /// The PIN of the person the event is about (every schema requires `person.pin`).
    pub(crate) fn pin(&self) -> Option<&str> {
        self.data.get("person")?.get("pin")?.as_str()
    }

    /// The person's earlier PINs, when a correction changed the PIN (`person.pinHistory`).
    pub(crate) fn pin_history(&self) -> impl Iterator<Item = &str> {
        self.data
            .get("person")
            .and_then(|p| p.get("pinHistory"))
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
    }

    /// The id of the event this one corrects, when it is a correction.
    pub(crate) fn supersedes(&self) -> Option<Uuid> {
        self.data.get("supersedes")?.as_str()?.parse().ok()
    }

    /// The correction rule: an event may supersede only an event of the same source and type
    /// about the same person. Checked at publish, at receipt, and again by the registry view.
    pub(crate) fn may_supersede(&self, target: &Event) -> Result<(), SupersedeError> {
        if target.source != self.source {
            Err(SupersedeError::OtherSource)
        } else if target.event_type != self.event_type {
            Err(SupersedeError::OtherType)
        } else if target.pin() != self.pin() && !self.pin_history().any(|p| Some(p) == target.pin())
        {
            Err(SupersedeError::OtherPerson)
        } else {
            Ok(())
        }
    }

    /// Sign the serialized event whole (the format before selective disclosure); the result is
    /// what is stored and forwarded.
    pub fn sign(&self, key: &SigningKey, kid: &KeyName) -> SignedEvent {
        self.clone().into_signed(key, kid)
    }

    /// [`Event::sign`] of an event the caller gives up (no copy of it is made).
    pub(crate) fn into_signed(self, key: &SigningKey, kid: &KeyName) -> SignedEvent {
        let payload = serde_json::to_vec(&self).unwrap_or_default();
        let (bytes, members) = jws::sign_located(key, kid, Typ::Event, &payload, []);
        SignedEvent {
            bytes: bytes.into(),
            members,
            event: Arc::new(self),
            disclosed: Arc::new([]),
            selective: false,
        }
    }

    /// Sign the event as an SD-JWT: each of `fields` present in the data is concealed behind a
    /// salted digest and travels as a disclosure beside the signed part. The stored form holds
    /// every disclosure; a reader gets those its grant allows ([`SignedEvent::for_reader`]).
    pub fn sign_selective(
        mut self,
        key: &SigningKey,
        kid: &KeyName,
        fields: &[Pointer],
    ) -> SignedEvent {
        // Concealed in place and put back after the payload is written, not on a copy.
        let (payload, disclosed) = match disclosure::conceal_reversibly(&mut self.data, fields) {
            Some((disclosed, taken)) => {
                let payload = serde_json::to_vec(&self).unwrap_or_default();
                taken.restore(&mut self.data);
                (payload, disclosed)
            }
            None => {
                let mut concealed = self.clone();
                let disclosed = disclosure::conceal(&mut concealed.data, fields);
                (
                    serde_json::to_vec(&concealed).unwrap_or_default(),
                    disclosed,
                )
            }
        };
        let (bytes, members) = jws::sign_located(
            key,
            kid,
            Typ::SdEvent,
            &payload,
            disclosed.iter().map(|d| d.encoded.as_str()),
        );
        SignedEvent {
            bytes: bytes.into(),
            members,
            event: Arc::new(self),
            disclosed: disclosed.into(),
            selective: true,
        }
    }

    fn check(&self) -> Result<(), EventError> {
        let bad = |what| Err(EventError::Attribute(what));
        if self.specversion != "1.0" {
            return bad(BadAttribute::SpecVersion);
        }
        if self.datacontenttype != "application/json" {
            return bad(BadAttribute::ContentType);
        }
        if self.dataschema != self.event_type.schema_uri() {
            return bad(BadAttribute::DataSchema);
        }
        if self.id.get_version_num() != 7 {
            return bad(BadAttribute::IdVersion);
        }
        self.sequence_number().ok_or(EventError::Sequence)?;
        Ok(())
    }
}

/// The stored form of an event: the JWS bytes, and the envelope parsed from them (with the
/// data its disclosures reveal, for a selectively disclosable event).
#[derive(Debug, Clone)]
pub struct SignedEvent {
    bytes: Arc<[u8]>,
    /// Where the signed members are in `bytes` (`None` only for a text no parse of ours takes).
    members: Option<jws::Members>,
    event: Arc<Event>,
    disclosed: Arc<[Disclosed]>,
    selective: bool,
}

impl SignedEvent {
    /// Parse stored or received JWS bytes (the signature is checked separately, see [`Jws`]).
    /// The disclosures of an SD-JWT must each match a digest of the signed part, once.
    pub fn parse(bytes: &[u8]) -> Result<(SignedEvent, Jws), EventError> {
        let jws = Jws::parse(bytes, Typ::Event)?;
        let payload = crate::event::json::parse(jws.payload()).map_err(EventError::Json)?;
        let mut event: Event =
            serde_json::from_value(payload).map_err(|e| EventError::Envelope(e.into()))?;
        event.check()?;
        let disclosed = reveal(&mut event, &jws)?;
        let signed = SignedEvent {
            bytes: bytes.into(),
            members: Some(jws.members()),
            event: Arc::new(event),
            disclosed,
            selective: jws.typ() == Typ::SdEvent,
        };
        Ok((signed, jws))
    }

    /// Parse an event this node stored: the store holds only events that passed
    /// [`SignedEvent::parse`] and the checks on their way in, so the payload is read straight
    /// into the envelope, without the strict JSON pass (duplicate members, nesting) and the
    /// envelope checks that guard the way in. The audit (`jol verify`) uses the strict parse.
    pub(crate) fn from_store(bytes: &[u8]) -> Result<SignedEvent, EventError> {
        let jws = Jws::parse(bytes, Typ::Event)?;
        let mut event: Event =
            serde_json::from_slice(jws.payload()).map_err(|e| EventError::Envelope(e.into()))?;
        let disclosed = reveal(&mut event, &jws)?;
        Ok(SignedEvent {
            bytes: bytes.into(),
            members: Some(jws.members()),
            event: Arc::new(event),
            disclosed,
            selective: jws.typ() == Typ::SdEvent,
        })
    }

    /// Whether the event is an SD-JWT (its personal fields selectively disclosable).
    pub fn is_selective(&self) -> bool {
        self.selective
    }

    /// The disclosures these bytes hold, each with the field it discloses.
    pub fn disclosed(&self) -> &[Disclosed] {
        &self.disclosed
    }

    /// Whether a copy holding no more than `fields` can be cut from these bytes: always from an
    /// SD-JWT; from an event signed whole (before selective disclosure) only for every field.
    pub fn can_be_cut_to(&self, fields: &Fields) -> bool {
        self.selective || matches!(fields, Fields::All)
    }

    /// The bytes a reader whose grant allows `fields` is handed: the signed part verbatim, with
    /// only the disclosures of allowed fields. `None` when no copy within `fields` can be cut
    /// from them (an event signed whole for a narrower grant, [`SignedEvent::can_be_cut_to`];
    /// damaged bytes): the reader gets nothing rather than more than its grant.
    pub fn for_reader(&self, fields: &Fields) -> Option<std::borrow::Cow<'_, [u8]>> {
        if !self.can_be_cut_to(fields) {
            return None;
        }
        if matches!(fields, Fields::All)
            || !self.disclosed.iter().any(|d| !fields.allows(&d.pointer))
        {
            return Some(std::borrow::Cow::Borrowed(&self.bytes));
        }
        let kept = self
            .disclosed
            .iter()
            .filter(|d| fields.allows(&d.pointer))
            .map(|d| d.encoded.as_str());
        let fewer = match &self.members {
            Some(members) => jws::with_disclosures_at(&self.bytes, members, kept),
            None => jws::with_disclosures(&self.bytes, kept),
        };
        fewer.map(std::borrow::Cow::Owned)
    }

    /// Where the signed members are in [`SignedEvent::bytes`], as located when the event was
    /// parsed or signed.
    pub(crate) fn members(&self) -> Option<jws::Members> {
        self.members
    }

    /// The event, shared.
    pub(crate) fn shared_event(&self) -> Arc<Event> {
        self.event.clone()
    }

    /// The JWS bytes, as stored and served.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The envelope.
    pub fn event(&self) -> &Event {
        &self.event
    }

    /// Its sequence.
    pub fn sequence(&self) -> u64 {
        self.event.sequence_number().unwrap_or(0)
    }

    /// The event's data, all of it (an SD-JWT's disclosed fields included), for making the
    /// event again; a copy only while another holder shares the event.
    pub(crate) fn into_data(self) -> Value {
        Arc::try_unwrap(self.event).map_or_else(|shared| shared.data.clone(), |event| event.data)
    }
}

/// Put an SD-JWT's disclosures back into the event's data (nothing to do for a JWS).
fn reveal(event: &mut Event, jws: &Jws) -> Result<Arc<[Disclosed]>, EventError> {
    if jws.typ() != Typ::SdEvent {
        return Ok(Arc::new([]));
    }
    let disclosures: Vec<&str> = jws.disclosures().iter().map(String::as_str).collect();
    Ok(disclosure::reveal(&mut event.data, &disclosures)?.into())
}

/// Serializes as the decoded CloudEvent (the JWS bytes are served beside it, verbatim).
impl Serialize for SignedEvent {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.event.serialize(s)
    }
}

/// A stored event as the local API and webhooks present it: its position in this node's log, its
/// Merkle leaf index, the decoded CloudEvent, and the JWS bytes verbatim (as a raw JSON value, so
/// its members keep their order).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct StoredItem<'a> {
    pub(crate) position: u64,
    pub(crate) leaf_index: u64,
    pub event: SignedEvent,
    pub jws: &'a serde_json::value::RawValue,
}

impl<'a> StoredItem<'a> {
    /// Present the bytes stored at `position` (positions start at 1; leaf `position - 1`).
    pub(crate) fn parse(position: u64, bytes: &'a [u8]) -> Result<StoredItem<'a>, EventError> {
        let event = SignedEvent::from_store(bytes)?;
        Ok(StoredItem {
            position,
            leaf_index: position.saturating_sub(1),
            event,
            jws: raw_json(bytes)?,
        })
    }
}

/// The JWS bytes as a raw JSON value (flattened JWS is a JSON object).
pub(crate) fn raw_json(bytes: &[u8]) -> Result<&serde_json::value::RawValue, EventError> {
    serde_json::from_slice(bytes).map_err(|e| EventError::Envelope(e.into()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::keys;
    use serde_json::json;

    #[test]
    fn a_signed_event_parses_back_to_the_same_event() {
        let key = keys::generate();
        let source: MemberId = "central-server/GOV/70000001/migration".parse().unwrap();
        let kid = KeyName::new(source.clone(), "sign-1").unwrap();
        let event = Event::new(source, EventType::ReturneeRecord, 7, json!({"x": 1}));
        let signed = event.sign(&key, &kid);
        let (parsed, jws) = SignedEvent::parse(signed.bytes()).unwrap();
        jws.verify(&key.verifying_key()).unwrap();
        assert_eq!(parsed.event(), &event);
        assert_eq!(parsed.sequence(), 7);
        assert_eq!(jws.payload(), serde_json::to_vec(&event).unwrap());
    }

    #[test]
    fn an_sd_jwt_event_verifies_and_keeps_its_leaf_with_any_subset_of_disclosures() {
        let key = keys::generate();
        let source: MemberId = "central-server/GOV/70000001/migration".parse().unwrap();
        let kid = KeyName::new(source.clone(), "sign-1").unwrap();
        let data = json!({"event": "X", "person": {"pin": "21503199012345", "sex": "F"}});
        let event = Event::new(source, EventType::ReturneeRecord, 3, data.clone());
        let whole = event.clone().into_signed(&key, &kid);
        let fields: Vec<Pointer> = ["/person/pin", "/person/sex"]
            .iter()
            .map(|p| p.parse().unwrap())
            .collect();
        let signed = event.sign_selective(&key, &kid, &fields);
        assert!(signed.is_selective());
        assert_eq!(signed.event().data, data, "the signer keeps the data whole");
        assert!(!String::from_utf8_lossy(signed.bytes()).contains("21503199012345"));
        let (parsed, jws) = SignedEvent::parse(signed.bytes()).unwrap();
        jws.verify(&key.verifying_key()).unwrap();
        assert_eq!(parsed.event().data, data);
        let only_pin = Fields::Only([fields[0].clone()].into());
        let fewer = signed.for_reader(&only_pin).unwrap();
        let (partial, jws) = SignedEvent::parse(&fewer).unwrap();
        jws.verify(&key.verifying_key()).unwrap();
        assert_eq!(
            partial.event().data,
            json!({"event": "X", "person": {"pin": "21503199012345"}})
        );
        let none = jws::with_disclosures(signed.bytes(), []).unwrap();
        let (erased, _) = SignedEvent::parse(&none).unwrap();
        assert_eq!(erased.event().data, json!({"event": "X", "person": {}}));
        // One signed part, one leaf: the log never depends on a disclosure, and the leaf the
        // writer takes from where the members were found is the auditor's, from the bytes.
        assert_eq!(jws::compact(signed.bytes()), jws::compact(&fewer));
        assert_eq!(jws::compact(signed.bytes()), jws::compact(&none));
        let leaf = crate::log::event_leaf(signed.bytes());
        assert_eq!(
            leaf,
            crate::merkle::leaf_hash(&jws::compact(signed.bytes()).unwrap())
        );
        for bytes in [signed.bytes(), &fewer[..], &none[..]] {
            let (parsed, _) = SignedEvent::parse(bytes).unwrap();
            assert_eq!(crate::log::signed_event_leaf(&parsed), leaf);
        }
        assert_eq!(crate::log::signed_event_leaf(&signed), leaf);
        assert_eq!(
            crate::log::signed_event_leaf(&whole),
            crate::merkle::leaf_hash(&jws::compact(whole.bytes()).unwrap())
        );
        // Every field granted: the stored bytes as they are.
        assert_eq!(&*signed.for_reader(&Fields::All).unwrap(), signed.bytes());
        // Bytes no copy can be cut from give a reader with a narrower grant nothing, not all.
        let damaged = SignedEvent {
            bytes: Arc::from(&b"not a JWS"[..]),
            members: None,
            ..signed.clone()
        };
        assert_eq!(damaged.for_reader(&only_pin), None);
        assert!(damaged.for_reader(&Fields::All).is_some());
    }

    /// Data that holds an `_sd` of its own is concealed on a copy: the signer's event keeps it
    /// as it was, and the signed part holds the digests beside it.
    #[test]
    fn data_with_its_own_sd_member_is_signed_from_a_copy() {
        let key = keys::generate();
        let source: MemberId = "central-server/GOV/70000001/migration".parse().unwrap();
        let kid = KeyName::new(source.clone(), "sign-1").unwrap();
        let data = json!({"event": "X", "person": {"pin": "21503199012345", "_sd": ["own"]}});
        let event = Event::new(source, EventType::ReturneeRecord, 3, data.clone());
        let fields: Vec<Pointer> = vec!["/person/pin".parse().unwrap()];
        let signed = event.sign_selective(&key, &kid, &fields);
        assert_eq!(signed.event().data, data);
        let (_, jws) = SignedEvent::parse(signed.bytes()).unwrap_or_else(|e| panic!("{e}"));
        jws.verify(&key.verifying_key()).unwrap();
        let payload: serde_json::Value = serde_json::from_slice(jws.payload()).unwrap();
        assert_eq!(
            payload["data"]["person"]["_sd"].as_array().unwrap().len(),
            2
        );
    }

    #[test]
    fn an_unprotected_header_is_only_for_the_disclosures_of_an_sd_jwt() {
        let key = keys::generate();
        let source: MemberId = "a/b/c/d".parse().unwrap();
        let kid = KeyName::new(source.clone(), "k").unwrap();
        let whole = Event::new(source, EventType::EmploymentStatus, 1, json!({})).sign(&key, &kid);
        let mut with_header: serde_json::Value = serde_json::from_slice(whole.bytes()).unwrap();
        with_header["header"] = json!({"disclosures": []});
        let bytes = serde_json::to_vec(&with_header).unwrap();
        assert_eq!(
            SignedEvent::parse(&bytes).unwrap_err().code(),
            "jws-malformed"
        );
    }

    #[test]
    fn sequences_are_canonical_decimals_from_one() {
        let source: MemberId = "a/b/c/d".parse().unwrap();
        let mut e = Event::new(source, EventType::EmploymentStatus, 1, json!({}));
        for (s, ok) in [
            ("1", true),
            ("0", false),
            ("01", false),
            ("-1", false),
            ("x", false),
        ] {
            e.sequence = s.into();
            assert_eq!(e.sequence_number().is_some(), ok, "{s}");
        }
    }

    /// The correction rule's property test (`PROPTEST_CASES` sets its size; 256 by default).
    mod properties {
        use super::*;
        use proptest::prelude::*;

        const SOURCES: [&str; 2] = [
            "central-server/GOV/70000001/migration",
            "central-server/GOV/70000002/employment",
        ];
        const PINS: [&str; 3] = ["21503199012345", "11203198500001", "20101195000007"];

        /// An event of one of two sources and three types about one of three persons, with
        /// zero to two earlier PINs.
        fn an_event() -> impl Strategy<Value = Event> {
            let types = &EventType::ALL[..3];
            (
                proptest::sample::select(&SOURCES[..]),
                proptest::sample::select(types),
                proptest::sample::select(&PINS[..]),
                proptest::sample::subsequence(&PINS[..], 0..=2),
            )
                .prop_map(|(source, event_type, pin, history)| {
                    let person = if history.is_empty() {
                        json!({"pin": pin})
                    } else {
                        json!({"pin": pin, "pinHistory": history})
                    };
                    let source: MemberId = source.parse().unwrap();
                    Event::new(source, event_type, 1, json!({"person": person}))
                })
        }

        proptest! {
            #[test]
            fn a_correction_supersedes_only_its_own_sources_event_of_its_type_about_its_person(
                correction in an_event(),
                target in an_event(),
            ) {
                let history: Vec<&str> = correction.pin_history().collect();
                let same_person =
                    target.pin() == correction.pin() || history.iter().any(|p| Some(*p) == target.pin());
                let expected = if target.source != correction.source {
                    Err(SupersedeError::OtherSource)
                } else if target.event_type != correction.event_type {
                    Err(SupersedeError::OtherType)
                } else if !same_person {
                    Err(SupersedeError::OtherPerson)
                } else {
                    Ok(())
                };
                prop_assert_eq!(correction.may_supersede(&target), expected);
            }
        }
    }
}
