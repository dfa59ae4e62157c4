//! The event types and their JSON Schemas (2020-12), compiled once and shared.
//!
//! The schema files under `schemas/` are built into the binary, so a node validates exactly what
//! the repository ships and the manifest's schema digests name those bytes. Two keywords of our
//! own express rules plain JSON Schema cannot: `jolPinAgrees` (sex and birth date agree with the
//! PIN) and `jolNotBefore` (later dates are not before the first, e.g. no end before the
//! start); a third, `jolDisclosable`, marks the personal fields an event carries as selective
//! disclosures ([`Schemas::disclosable`], `event::disclosure`). They form the Jol registry
//! vocabulary, declared in the meta-schema `schemas/jol-meta.v1.json` as optional, so a
//! standard 2020-12 validator processes the schemas and skips just these. Error reasons are masked:
//! they name the field and the rule, never the value, which may be personal data.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use jsonschema::{paths::Location, Keyword, Retrieve, Uri, ValidationError, Validator};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::event::disclosure::Pointer;
use crate::event::identifiers::{Pin, Sex};

/// Where our schemas live by name; `$ref`s between them resolve against this base.
pub(crate) const SCHEMA_BASE: &str = "https://jol.example/schemas/";

const COMMON: &str = include_str!("../../schemas/common.v1.json");
const RETURNEE_RECORD: &str = include_str!("../../schemas/returnee-record.v1.json");
const TRAINING_ENROLMENT: &str = include_str!("../../schemas/training-enrolment.v1.json");
const EMPLOYMENT_STATUS: &str = include_str!("../../schemas/employment-status.v1.json");
const VACANCY: &str = include_str!("../../schemas/vacancy.v1.json");
const COURSE_OFFER: &str = include_str!("../../schemas/course-offer.v1.json");
const ERASURE: &str = include_str!("../../schemas/erasure.v1.json");
const CREDENTIAL_ISSUED: &str = include_str!("../../schemas/credential-issued.v1.json");
/// The dialect: JSON Schema 2020-12 plus the Jol registry vocabulary (`jolPinAgrees`,
/// `jolNotBefore`), declared optional so standard validators process the schemas.
pub(crate) const META: &str = include_str!("../../schemas/jol-meta.v1.json");

/// The event types of the exchange: three about a person (consent applies), four not
/// (vacancies and course offers, for matching; erasures, which name events and never a person;
/// credentials issued, which name a credential and the event it attests, never its holder).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum EventType {
    /// `returnee-record`: the migration agency's record of a return (carries the consent).
    ReturneeRecord,
    /// `training-enrolment`: a course enrolment and its outcome.
    TrainingEnrolment,
    /// `employment-status`: registration, profiling, referrals, jobs.
    EmploymentStatus,
    /// `vacancy`: an open job (not about a person).
    Vacancy,
    /// `course-offer`: a course on offer (not about a person).
    CourseOffer,
    /// `erasure`: an erasure ordered by a member, or a holder's confirmation (names events,
    /// never a person).
    Erasure,
    /// `credential-issued`: a credential issued or revoked, naming the event it attests.
    CredentialIssued,
}

impl EventType {
    /// Every type.
    pub const ALL: [EventType; 7] = [
        EventType::ReturneeRecord,
        EventType::TrainingEnrolment,
        EventType::EmploymentStatus,
        EventType::Vacancy,
        EventType::CourseOffer,
        EventType::Erasure,
        EventType::CredentialIssued,
    ];

    /// Its name (`returnee-record`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::ReturneeRecord => "returnee-record",
            EventType::TrainingEnrolment => "training-enrolment",
            EventType::EmploymentStatus => "employment-status",
            EventType::Vacancy => "vacancy",
            EventType::CourseOffer => "course-offer",
            EventType::Erasure => "erasure",
            EventType::CredentialIssued => "credential-issued",
        }
    }

    /// Whether events of this type are about a person (carry `person.pin`; consent applies).
    pub(crate) fn is_personal(self) -> bool {
        !matches!(
            self,
            EventType::Vacancy
                | EventType::CourseOffer
                | EventType::Erasure
                | EventType::CredentialIssued
        )
    }

    /// The `dataschema` URI: names type and version.
    pub(crate) fn schema_uri(self) -> String {
        format!("{SCHEMA_BASE}{}.v1.json", self.as_str())
    }

    /// The schema file's exact bytes, as shipped.
    pub(crate) fn schema_source(self) -> &'static str {
        match self {
            EventType::ReturneeRecord => RETURNEE_RECORD,
            EventType::TrainingEnrolment => TRAINING_ENROLMENT,
            EventType::EmploymentStatus => EMPLOYMENT_STATUS,
            EventType::Vacancy => VACANCY,
            EventType::CourseOffer => COURSE_OFFER,
            EventType::Erasure => ERASURE,
            EventType::CredentialIssued => CREDENTIAL_ISSUED,
        }
    }

    /// SHA-256 (hex) of the schema file together with the shared definitions it uses (computed
    /// once per process: every received event is checked against it).
    pub(crate) fn schema_digest(self) -> &'static str {
        static DIGESTS: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
        let digests = DIGESTS.get_or_init(|| {
            EventType::ALL
                .iter()
                .map(|t| {
                    let mut h = Sha256::new();
                    h.update(t.schema_source().as_bytes());
                    h.update(COMMON.as_bytes());
                    hex(&h.finalize())
                })
                .collect()
        });
        digests.get(self.index()).map_or("", String::as_str)
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Lower-case hex of bytes.
pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// A type name that is not one of ours.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown event type; expected one of returnee-record, training-enrolment, employment-status, vacancy, course-offer, erasure, credential-issued"
)]
pub struct UnknownType;

impl FromStr for EventType {
    type Err = UnknownType;
    fn from_str(s: &str) -> Result<Self, UnknownType> {
        EventType::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or(UnknownType)
    }
}

impl TryFrom<String> for EventType {
    type Error = UnknownType;
    fn try_from(s: String) -> Result<Self, UnknownType> {
        s.parse()
    }
}

impl From<EventType> for String {
    fn from(t: EventType) -> String {
        t.as_str().to_string()
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One failing field: where (JSON pointer into the document), which rule, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldError {
    /// The JSON pointer of the field.
    pub pointer: String,
    /// The schema keyword that failed.
    pub keyword: String,
    /// Why, without the value.
    pub reason: String,
    /// For a missing required field, the pointer to it (not sent: the pointer and reason say it).
    #[serde(skip)]
    pub missing: Option<String>,
}

/// A schema that does not compile: a bug in the shipped files, found at start-up.
#[derive(Debug, thiserror::Error)]
#[error("schema {uri} does not compile: {message}")]
pub struct SchemaError {
    uri: String,
    message: String,
}

/// The compiled validators of every event type, and each type's disclosable fields.
pub struct Schemas {
    validators: Vec<Validator>,
    disclosable: Vec<Vec<Pointer>>,
}

impl fmt::Debug for Schemas {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Schemas")
    }
}

impl Schemas {
    /// Compile all schemas. Done once at start-up; share the result (it is `Sync`).
    pub fn load() -> Result<Arc<Schemas>, SchemaError> {
        let validators = EventType::ALL
            .into_iter()
            .map(|t| compile(t.schema_uri(), t.schema_source()))
            .collect::<Result<Vec<_>, _>>()?;
        let disclosable = EventType::ALL
            .into_iter()
            .map(disclosable_fields)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Arc::new(Schemas {
            validators,
            disclosable,
        }))
    }

    /// The fields of type `t` its schema marks `jolDisclosable`, in the schema's order: what a
    /// publisher conceals behind digests and a grant may name.
    pub fn disclosable(&self, t: EventType) -> &[Pointer] {
        self.disclosable.get(t.index()).map_or(&[], Vec::as_slice)
    }

    /// Validate what a reader received of an event of type `t`: the always-visible fields and
    /// the disclosed ones against the schema, a disclosable field that was not disclosed to it
    /// not missed. (The publisher validated the whole document before signing.)
    pub fn validate_received(&self, t: EventType, data: &Value) -> Result<(), Vec<FieldError>> {
        let Err(errors) = self.validate(t, data) else {
            return Ok(());
        };
        let disclosable = self.disclosable(t);
        let errors: Vec<FieldError> = errors
            .into_iter()
            .filter(|e| {
                !(e.keyword == "required"
                    && e.missing
                        .as_ref()
                        .is_some_and(|m| disclosable.iter().any(|p| p.as_str() == m)))
            })
            .collect();
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }

    /// Validate `data` as the payload of an event of type `t`. Every failing field is listed.
    pub fn validate(&self, t: EventType, data: &Value) -> Result<(), Vec<FieldError>> {
        let validator = &self.validators[t.index()];
        if validator.is_valid(data) {
            return Ok(());
        }
        let mut errors: Vec<FieldError> = validator
            .iter_errors(data)
            .map(|e| FieldError {
                pointer: e.instance_path().as_str().to_string(),
                keyword: e.kind().keyword().to_string(),
                reason: e.masked().to_string(),
                missing: match e.kind() {
                    jsonschema::error::ValidationErrorKind::Required { property } => {
                        property.as_str().map(|name| {
                            format!(
                                "{}/{}",
                                e.instance_path().as_str(),
                                crate::event::json::pointer_token(name)
                            )
                        })
                    }
                    _ => None,
                },
            })
            .collect();
        errors.sort_by(|a, b| a.pointer.cmp(&b.pointer));
        errors.dedup();
        Err(errors)
    }
}

/// The fields a type's schema marks `jolDisclosable`: properties of the document, and of the
/// objects it holds (through `$ref`s to shared definitions), two levels deep. A disclosable
/// field holding a disclosable field is a mistake in the schema, refused at start-up.
fn disclosable_fields(t: EventType) -> Result<Vec<Pointer>, SchemaError> {
    let fail = |message: String| SchemaError {
        uri: t.schema_uri(),
        message,
    };
    let schema: Value = serde_json::from_str(t.schema_source()).map_err(|e| fail(e.to_string()))?;
    let common: Value = serde_json::from_str(COMMON).map_err(|e| fail(e.to_string()))?;
    let mut found = Vec::new();
    collect_disclosable(&schema, &common, "", 0, &mut found).map_err(fail)?;
    Ok(found)
}

fn collect_disclosable(
    schema: &Value,
    common: &Value,
    at: &str,
    depth: usize,
    found: &mut Vec<Pointer>,
) -> Result<(), String> {
    let Some(properties) = resolve(schema, common)
        .get("properties")
        .and_then(Value::as_object)
    else {
        return Ok(());
    };
    for (name, sub) in properties {
        let pointer = format!("{at}/{}", crate::event::json::pointer_token(name));
        if sub.get("jolDisclosable") == Some(&Value::Bool(true)) {
            let mut inner = Vec::new();
            collect_disclosable(sub, common, &pointer, depth + 1, &mut inner)?;
            if !inner.is_empty() {
                return Err(format!(
                    "{pointer} is disclosable and holds disclosable fields"
                ));
            }
            found.push(
                pointer
                    .parse()
                    .map_err(|_| format!("{pointer} is not a pointer"))?,
            );
        } else if depth < 2 {
            collect_disclosable(sub, common, &pointer, depth + 1, found)?;
        }
    }
    Ok(())
}

/// A property's schema, or the shared definition its `$ref` names.
fn resolve<'a>(schema: &'a Value, common: &'a Value) -> &'a Value {
    let reference = schema
        .get("$ref")
        .and_then(Value::as_str)
        .unwrap_or_default();
    match reference
        .strip_prefix("common.v1.json#")
        .or_else(|| reference.strip_prefix('#'))
    {
        Some(pointer) => common.pointer(pointer).unwrap_or(schema),
        None => schema,
    }
}

fn compile(uri: String, source: &str) -> Result<Validator, SchemaError> {
    let fail = |message: String| SchemaError {
        uri: uri.clone(),
        message,
    };
    let schema: Value = serde_json::from_str(source).map_err(|e| fail(e.to_string()))?;
    jsonschema::draft202012::options()
        .should_validate_formats(true)
        .should_ignore_unknown_formats(false)
        .with_format("kg-pin", |s: &str| s.parse::<Pin>().is_ok())
        .with_keyword("jolPinAgrees", |_, _, _| Ok(Box::new(PinAgrees)))
        .with_keyword("jolNotBefore", not_before_factory)
        .with_retriever(Embedded)
        .build(&schema)
        .map_err(|e| fail(e.to_string()))
}

/// Serves the shipped schema files for `$ref`s; refuses to fetch anything else.
struct Embedded;

impl Retrieve for Embedded {
    fn retrieve(
        &self,
        uri: &Uri<String>,
    ) -> Result<Value, Box<dyn std::error::Error + Send + Sync>> {
        let name = uri.as_str().strip_prefix(SCHEMA_BASE).unwrap_or_default();
        let source = match name {
            "common.v1.json" => COMMON,
            "returnee-record.v1.json" => RETURNEE_RECORD,
            "training-enrolment.v1.json" => TRAINING_ENROLMENT,
            "employment-status.v1.json" => EMPLOYMENT_STATUS,
            "vacancy.v1.json" => VACANCY,
            "course-offer.v1.json" => COURSE_OFFER,
            "erasure.v1.json" => ERASURE,
            "credential-issued.v1.json" => CREDENTIAL_ISSUED,
            "jol-meta.v1.json" => META,
            _ => return Err(format!("{uri} is not a schema shipped with jol").into()),
        };
        Ok(serde_json::from_str(source)?)
    }
}

/// `jolPinAgrees`: on a person object, `sex` and `birthDate` (where given) agree with `pin`.
struct PinAgrees;

impl PinAgrees {
    fn problem(instance: &Value) -> Option<&'static str> {
        let pin: Pin = instance.get("pin")?.as_str()?.parse().ok()?;
        if let Some(sex) = instance.get("sex").and_then(Value::as_str) {
            let expected = match pin.sex() {
                Sex::Female => "F",
                Sex::Male => "M",
            };
            if sex != expected {
                return Some("sex does not agree with the sex digit of the PIN");
            }
        }
        if let Some(date) = instance.get("birthDate").and_then(Value::as_str) {
            if date != pin.birth_date().to_string() {
                return Some("birthDate does not agree with the birth date in the PIN");
            }
        }
        None
    }
}

impl<'i> Keyword<'i> for PinAgrees {
    fn validate(&self, instance: &'i Value) -> Result<(), ValidationError<'i>> {
        match PinAgrees::problem(instance) {
            Some(reason) => Err(ValidationError::custom(reason)),
            None => Ok(()),
        }
    }
    fn is_valid(&self, instance: &'i Value) -> bool {
        PinAgrees::problem(instance).is_none()
    }
}

/// `jolNotBefore: ["start", "plannedEnd", "end"]`: each later date present is not before
/// the first; the later ones are not ordered among themselves.
struct NotBefore(Vec<String>);

fn not_before_factory<'a>(
    _parent: &'a Map<String, Value>,
    value: &'a Value,
    _path: Location,
) -> Result<Box<dyn for<'i> Keyword<'i>>, ValidationError<'a>> {
    let fields = value
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(String::from)
                .collect()
        })
        .ok_or_else(|| ValidationError::schema("jolNotBefore takes an array of field names"))?;
    Ok(Box::new(NotBefore(fields)))
}

impl NotBefore {
    /// Each later date that is present is not before the first; the later ones are not ordered
    /// among themselves.
    fn problem(&self, instance: &Value) -> Option<String> {
        let (first_field, later) = self.0.split_first()?;
        let first = instance.get(first_field).and_then(Value::as_str)?;
        later.iter().find_map(|field| {
            let date = instance.get(field).and_then(Value::as_str)?;
            // ISO 8601 calendar dates compare correctly as strings.
            (date < first).then(|| format!("{field} is before {first_field}"))
        })
    }
}

impl<'i> Keyword<'i> for NotBefore {
    fn validate(&self, instance: &'i Value) -> Result<(), ValidationError<'i>> {
        match self.problem(instance) {
            Some(reason) => Err(ValidationError::custom(reason)),
            None => Ok(()),
        }
    }
    fn is_valid(&self, instance: &'i Value) -> bool {
        self.problem(instance).is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn employment(extra: Value) -> Value {
        let mut doc = json!({
            "event": "STATUS_OBSERVED",
            "eventDate": "2024-03-01",
            "purpose": "EMPLOYMENT_SERVICES",
            "legalBasis": "Law on Employment Promotion, art. 12",
            "person": {"pin": "21503199012345"},
            "labourForceStatus": "UNEMPLOYED"
        });
        if let (Some(d), Some(e)) = (doc.as_object_mut(), extra.as_object()) {
            d.extend(e.clone());
        }
        doc
    }

    #[test]
    fn types_round_trip_by_name() {
        for t in EventType::ALL {
            assert_eq!(t.as_str().parse::<EventType>(), Ok(t));
        }
        assert!("returnee".parse::<EventType>().is_err());
    }

    #[test]
    fn all_schemas_compile_and_a_minimal_document_passes() {
        let schemas = Schemas::load().unwrap();
        schemas
            .validate(EventType::EmploymentStatus, &employment(json!({})))
            .unwrap();
    }

    #[test]
    fn errors_name_the_field_and_never_the_value() {
        let schemas = Schemas::load().unwrap();
        let doc = employment(json!({"person": {"pin": "22902199112345"}}));
        let errors = schemas
            .validate(EventType::EmploymentStatus, &doc)
            .unwrap_err();
        assert!(
            errors.iter().any(|e| e.pointer == "/person/pin"),
            "{errors:?}"
        );
        assert!(
            errors.iter().all(|e| !e.reason.contains("2290219")),
            "{errors:?}"
        );
    }

    #[test]
    fn the_date_order_keyword_catches_backwards_dates() {
        let schemas = Schemas::load().unwrap();
        let job = json!({"spellId": "s1", "startDate": "2024-05-01", "endDate": "2024-04-01",
            "icse18": "41", "formality": "INFORMAL", "contractDuration": "PERMANENT", "isco08": "7112"});
        let doc = employment(json!({"labourForceStatus": "EMPLOYED", "job": job}));
        let errors = schemas
            .validate(EventType::EmploymentStatus, &doc)
            .unwrap_err();
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(errors[0].pointer, "/job");
        assert_eq!(errors[0].reason, "endDate is before startDate");
    }

    /// Each type's digest is SHA-256 over its schema file and the common definitions, as the
    /// files in `schemas/` hold them, in lower-case hex (computed here from the files, apart
    /// from `schema_digest`); types differ.
    #[test]
    fn digests_are_the_sha256_of_the_shipped_files() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas");
        let common = std::fs::read(dir.join("common.v1.json")).unwrap();
        for t in EventType::ALL {
            let own = std::fs::read(dir.join(format!("{}.v1.json", t.as_str()))).unwrap();
            let expected: String = Sha256::digest([own, common.clone()].concat())
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            assert_eq!(t.schema_digest(), expected, "{}", t.as_str());
        }
        assert_ne!(
            EventType::ReturneeRecord.schema_digest(),
            EventType::EmploymentStatus.schema_digest()
        );
    }
}
