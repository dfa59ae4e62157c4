//! The course-completion credential: which events earn one, what it says, and how it is held.
//!
//! An SD-JWT VC (`typ: dc+sd-jwt`, ES256): the issuer, the type (`vct`), its id (`jti`), its
//! status list entry, the course (title in ky/ru/en, hours, provider, completion date), the
//! credential awarded and its learning outcomes as ESCO skills with their labels, all in the
//! clear; the person's PIN, name and birth date as selectively disclosable claims (SD-JWT,
//! `event::disclosure`), so the holder can show the course without them. Its compact form is
//! `<JWS>~<disclosure>~…~` (no key binding).

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use time::OffsetDateTime;
use uuid::Uuid;

use super::key::IssuerKey;
use crate::event::disclosure::{self, Pointer};
use crate::event::schema::EventType;
use crate::event::Event;
use crate::registry::view::PersonView;

/// The purpose the credential events are published for.
pub const PURPOSE: &str = "TRAINING_SERVICES";

/// The `typ` of the credential's JWS.
pub const TYP: &str = "dc+sd-jwt";

/// The claims a holder may leave out of a presentation, in the order their disclosures follow
/// the JWS.
pub const DISCLOSABLE: [&str; 4] = ["pin", "given_name", "family_name", "birthdate"];

/// Whether `event` earns its person a credential: a training enrolment certified, or completed
/// with a credential awarded.
pub fn earned_by(event: &Event) -> bool {
    if event.event_type != EventType::TrainingEnrolment {
        return false;
    }
    match event.data.get("event").and_then(Value::as_str) {
        Some("CERTIFIED") => true,
        Some("COMPLETED") => event.data.get("credential").is_some(),
        _ => false,
    }
}

/// The id of the credential `event` earns: the same for the same event, so issuing again after
/// a crash names the same credential (and its event's idempotency key is the same).
pub fn id_for(event: &Event) -> Uuid {
    id_of(event.source.as_str(), &event.id)
}

/// [`id_for`] the event `event_id` of `source`.
pub fn id_of(source: &str, event_id: &Uuid) -> Uuid {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(b"jol course-completion credential\0");
    h.update(source.as_bytes());
    h.update(b"\0");
    h.update(event_id.as_bytes());
    let digest = h.finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_custom_bytes(bytes).into_uuid()
}

/// The event a credential attests: its publisher and id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attests {
    /// The attested event's publisher.
    pub source: String,
    /// The attested event's id.
    pub id: Uuid,
}

/// Why and when a credential was revoked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Revocation {
    /// When it was revoked.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// Why, in the operator's words (kept on the issuer's node only).
    pub reason: String,
}

/// A credential as the issuer's store keeps it (`Space::Credential`, under its holder's PIN).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Held {
    /// Its id (the `jti`, as `urn:uuid:`).
    pub id: Uuid,
    /// Its type (`vct`).
    pub vct: String,
    /// The SD-JWT VC, compact, with every disclosure.
    pub sd_jwt: String,
    /// Its entry in the issuer's status list.
    pub status_idx: u64,
    /// When it was issued.
    #[serde(with = "time::serde::rfc3339")]
    pub issued_at: OffsetDateTime,
    /// The event it attests.
    pub attests: Attests,
    /// The course's title, for listing it.
    pub title: Value,
    /// The legal basis of the attested event (its credential events carry it too).
    pub legal_basis: Value,
    /// Its revocation, once revoked.
    pub revoked: Option<Revocation>,
}

impl Held {
    /// What revoking it takes, without the person: its entry, kept beside the copy.
    pub fn entry(&self) -> Entry {
        Entry {
            id: self.id,
            vct: self.vct.clone(),
            status_idx: self.status_idx,
            attests: self.attests.clone(),
            legal_basis: self.legal_basis.clone(),
            revoked_at: self.revoked.as_ref().map(|r| r.at),
        }
    }
}

/// What the issuer keeps of a credential apart from its holder's copy (`Space::CredentialEntry`,
/// by id): its entry in the status list and what its revocation event says, nothing of the
/// person. An erasure deletes the copy and the record of whose it was, not this, so the
/// credential the holder keeps can still be revoked (an award annulled later).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Entry {
    /// The credential's id.
    pub id: Uuid,
    /// Its type (`vct`).
    pub vct: String,
    /// Its entry in the issuer's status list.
    pub status_idx: u64,
    /// The event it attests.
    pub attests: Attests,
    /// The legal basis of the attested event.
    pub legal_basis: Value,
    /// When it was revoked (the reason stays with the copy: an operator's words may name the
    /// person).
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub revoked_at: Option<OffsetDateTime>,
}

/// A revocation done: which credential, and why and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Revoked {
    /// The credential's id.
    pub id: Uuid,
    /// The revocation.
    pub revoked: Revocation,
}

/// What a credential is issued from: the event that earned it, the person's view as the node
/// holds it (for the course, provider, name and birth date the event does not repeat), and
/// where it sits in the issuer's world.
pub struct Issue<'a> {
    /// The event that earned it.
    pub event: &'a Event,
    /// The person's view as the node holds it (course, provider, name, birth date).
    pub view: Option<&'a PersonView>,
    /// The issuer's URL (`iss`).
    pub issuer: &'a str,
    /// The credential's type (`vct`).
    pub vct: &'a str,
    /// The status list's URL.
    pub status_uri: &'a str,
    /// The credential's entry in it.
    pub status_idx: u64,
    /// When it is issued (`iat`).
    pub now: OffsetDateTime,
}

impl Issue<'_> {
    /// The credential, signed with `key`; `None` when the event names no person.
    pub fn sign(&self, key: &IssuerKey) -> Option<Held> {
        let pin = self.event.pin()?.to_string();
        let data = &self.event.data;
        let id = id_for(self.event);
        let enrolment = self.enrolment();
        let course = data
            .get("course")
            .or_else(|| enrolment.and_then(|e| e.course.as_ref()))
            .cloned()
            .unwrap_or(Value::Null);
        let provider = data
            .get("provider")
            .or_else(|| enrolment.and_then(|e| e.provider.as_ref()))
            .and_then(|p| p.get("name"))
            .cloned();
        let credential = data.get("credential").cloned().unwrap_or(Value::Null);
        let title = course
            .get("title")
            .or_else(|| credential.get("title"))
            .cloned()
            .unwrap_or(Value::Null);
        // The course's end as the event or the enrolment has it, else the event's date.
        let completion = data
            .pointer("/dates/end")
            .cloned()
            .or_else(|| {
                let e = enrolment?;
                Some(iso_date(e.completed_on.or(e.end)?).into())
            })
            .or_else(|| data.get("eventDate").cloned())
            .unwrap_or(Value::Null);
        let mut claims = json!({
            "iss": self.issuer,
            "iat": self.now.unix_timestamp(),
            "vct": self.vct,
            "jti": format!("urn:uuid:{id}"),
            "_sd_alg": "sha-256",
            "status": {"status_list": {"idx": self.status_idx, "uri": self.status_uri}},
            "course": strip_nulls(json!({
                "code": course.get("code"),
                "title": title,
                "hours": course.get("hours"),
                "provider": provider,
                "completion_date": completion,
            })),
            "award": strip_nulls(json!({
                "type": credential.get("type"),
                "title": credential.get("title"),
                "awarding_body": credential.get("awardingBody"),
                "issue_date": credential.get("issueDate"),
            })),
            "learning_outcomes": learning_outcomes(&course, &credential),
        });
        let person = person_claims(&pin, self.view);
        if let Some(map) = claims.as_object_mut() {
            map.extend(person);
        }
        let disclosable: Vec<Pointer> = DISCLOSABLE
            .iter()
            .filter_map(|name| format!("/{name}").parse().ok())
            .collect();
        let disclosures = disclosure::conceal(&mut claims, &disclosable);
        let mut sd_jwt = key.sign(TYP, &claims);
        for d in &disclosures {
            sd_jwt.push('~');
            sd_jwt.push_str(&d.encoded);
        }
        sd_jwt.push('~');
        Some(Held {
            id,
            vct: self.vct.to_string(),
            sd_jwt,
            status_idx: self.status_idx,
            issued_at: self.now,
            attests: Attests {
                source: self.event.source.to_string(),
                id: self.event.id,
            },
            title,
            legal_basis: data.get("legalBasis").cloned().unwrap_or(Value::Null),
            revoked: None,
        })
    }

    /// The enrolment of the view this event is about (the course and provider as enrolled).
    fn enrolment(&self) -> Option<&crate::registry::view::Enrolment> {
        let id = self.event.data.get("enrolmentId")?.as_str()?;
        self.view?.enrolments.iter().find(|e| e.enrolment_id == id)
    }
}

/// The person's claims: the PIN, the birth date (the view's, else the one the PIN encodes)
/// and the name when the view holds one. What a credential says of the person, and what a
/// reader served `view` may be shown of it ([`Held::as_served_with`]).
fn person_claims(pin: &str, view: Option<&PersonView>) -> Map<String, Value> {
    let mut person = Map::new();
    person.insert("pin".into(), pin.into());
    let name = view.and_then(|v| v.name.as_ref());
    for (claim, part) in [("given_name", "given"), ("family_name", "family")] {
        if let Some(v) = name.and_then(|n| n.get(part)).and_then(Value::as_str) {
            person.insert(claim.into(), v.into());
        }
    }
    let from_pin = pin
        .parse::<crate::event::identifiers::Pin>()
        .ok()
        .map(|p| p.birth_date());
    if let Some(date) = view.and_then(|v| v.birth_date).or(from_pin) {
        person.insert("birthdate".into(), iso_date(date).into());
    }
    person
}

impl Held {
    /// The SD-JWT VC as given to a reader that is served `view` of the person: of the person's
    /// claims, only the disclosures whose value that view holds too travel (not a name another
    /// member sent that is withheld from the reader, nor one erased since the credential was
    /// issued). The signature still verifies; the rest is as if the holder had left those
    /// claims out.
    pub fn as_served_with(&self, view: &PersonView) -> String {
        let shown = person_claims(view.pin.expose(), Some(view));
        let mut parts = self.sd_jwt.split('~');
        let mut out = parts.next().unwrap_or_default().to_string();
        for encoded in parts.filter(|p| !p.is_empty()) {
            let keep = disclosure::decode(encoded)
                .is_some_and(|(name, value)| shown.get(&name) == Some(&value));
            if keep {
                out.push('~');
                out.push_str(encoded);
            }
        }
        out.push('~');
        out
    }
}

/// The ESCO skills the course teaches and the credential's outcomes name, each once, with the
/// labels of the shipped ESCO subset (or the outcome's own description).
fn learning_outcomes(course: &Value, credential: &Value) -> Value {
    let esco = crate::matching::esco::CodeLists::get();
    let mut seen = std::collections::BTreeSet::new();
    let mut out = Vec::new();
    let course_skills = course
        .get("skills")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(|uri| (uri.to_string(), None));
    let outcomes = credential
        .get("learningOutcomes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|o| {
            (
                o.get("esco")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
                o.get("description").cloned(),
            )
        });
    for (uri, description) in course_skills.chain(outcomes) {
        if !uri.is_empty() && !seen.insert(uri.clone()) {
            continue;
        }
        let label = esco
            .skill(&uri)
            .and_then(|l| serde_json::to_value(l).ok())
            .or(description);
        out.push(strip_nulls(
            json!({"esco": (!uri.is_empty()).then_some(uri), "label": label}),
        ));
    }
    Value::Array(out)
}

/// A date as credentials and events write it (`YYYY-MM-DD`).
pub fn iso_date(d: time::Date) -> String {
    format!("{}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

/// An object without its null members.
fn strip_nulls(mut value: Value) -> Value {
    if let Some(map) = value.as_object_mut() {
        map.retain(|_, v| !v.is_null());
    }
    value
}
