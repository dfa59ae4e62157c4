//! Selective disclosure of an event's personal fields (SD-JWT, RFC 9901).
//!
//! A selectively disclosable event is signed once with each disclosable field replaced by a
//! salted digest: the field leaves its object, a *disclosure* `[salt, name, value]` (JSON,
//! base64url) is made of it, and the SHA-256 of that disclosure's text (base64url) joins the
//! object's `_sd` array. The signature covers only the digests, so a holder can be handed any
//! subset of the disclosures (each reader what its grant allows), and deleting a disclosure
//! erases the value while the signed part, its Merkle leaf and every proof stay as they were.
//! The salt (128 random bits) keeps a digest from being guessed back into its value.
//!
//! Which fields are disclosable is declared in the type's schema (`jolDisclosable`, see
//! [`crate::event::schema::Schemas::disclosable`]); this module only conceals and reveals. Jol
//! discloses object members only (no array-element disclosures, no disclosure inside another),
//! digests with `sha-256` (the RFC's default: events carry no `_sd_alg`).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::RngCore;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// The member of an object that holds its digests.
const SD: &str = "_sd";
/// The member of an array element disclosure (RFC 9901 §4.2.4.2); Jol does not use them.
const ARRAY_ELEMENT: &str = "...";

/// A JSON pointer (RFC 6901) into an event's `data` naming a field, e.g. `/person/pin`.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(try_from = "String", into = "String")]
pub struct Pointer(String);

/// A pointer that is not one: it must be empty or start with `/`, and `~` only escapes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a field is named by a JSON pointer into the event's data, such as /person/pin")]
pub struct PointerError;

impl Pointer {
    /// The pointer to `name` inside the object at `parent`.
    fn child(parent: &str, name: &str) -> Pointer {
        let mut pointer = String::with_capacity(parent.len() + 1 + name.len());
        pointer.push_str(parent);
        pointer.push('/');
        crate::event::json::push_pointer_token(&mut pointer, name);
        Pointer(pointer)
    }

    /// The pointer's text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The pointer to the object holding the field, and the field's name.
    fn split(&self) -> Option<(&str, String)> {
        let (parent, last) = self.0.rsplit_once('/')?;
        Some((
            parent,
            crate::event::json::unescape_pointer_token(last).into_owned(),
        ))
    }
}

impl std::str::FromStr for Pointer {
    type Err = PointerError;
    fn from_str(s: &str) -> Result<Pointer, PointerError> {
        let escapes_ok = s
            .match_indices('~')
            .all(|(i, _)| matches!(s.as_bytes().get(i + 1), Some(b'0' | b'1')));
        if s.starts_with('/') && s.len() > 1 && escapes_ok && !s.contains("//") {
            Ok(Pointer(s.to_string()))
        } else {
            Err(PointerError)
        }
    }
}

impl TryFrom<String> for Pointer {
    type Error = PointerError;
    fn try_from(s: String) -> Result<Pointer, PointerError> {
        s.parse()
    }
}

impl From<Pointer> for String {
    fn from(p: Pointer) -> String {
        p.0
    }
}

impl std::fmt::Display for Pointer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The field naming the person an event is about (every personal type has it, disclosable).
pub const PERSON_PIN: &str = "/person/pin";

/// The fields a reader may receive of an event type: every field (a grant that names none, as
/// before selective disclosure) or only those named.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Fields {
    /// Every field the event holds.
    #[default]
    All,
    /// Only these disclosable fields (the always-visible ones come with the signed part).
    Only(std::collections::BTreeSet<Pointer>),
}

impl Fields {
    /// How an access-log record names what was handed over.
    pub fn describe(&self) -> String {
        match self {
            Fields::All => "every field".into(),
            Fields::Only(set) => {
                let list: Vec<&str> = set.iter().map(Pointer::as_str).collect();
                format!("the always-visible fields and {}", list.join(", "))
            }
        }
    }

    /// Of these fields, only the one naming the person (the always-visible ones come with the
    /// signed part): what a member is told of a consent change that no longer names it.
    pub fn the_person_only(&self) -> Fields {
        let pin = Pointer(PERSON_PIN.to_string());
        Fields::Only(self.allows(&pin).then_some(pin).into_iter().collect())
    }

    /// Whether the disclosure of the field at `pointer` may be handed over.
    pub fn allows(&self, pointer: &Pointer) -> bool {
        match self {
            Fields::All => true,
            Fields::Only(set) => set.contains(pointer),
        }
    }
}

/// One disclosure and the field it discloses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disclosed {
    /// Where the field sits in the event's data.
    pub pointer: Pointer,
    /// The disclosure as it travels: base64url of `[salt, name, value]`.
    pub encoded: String,
}

/// Why the disclosures of an event do not fit its signed part. Never names a value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SdError {
    /// Not base64url of a JSON array `[salt, name, value]`.
    #[error("disclosure {0} is not base64url of a JSON array [salt, name, value]")]
    Malformed(usize),
    /// Names `_sd` or `...`.
    #[error("disclosure {0} names the reserved member _sd or ...")]
    Reserved(usize),
    /// Its digest is not in the signed part.
    #[error("disclosure {0} matches no digest in the signed part")]
    Unknown(usize),
    /// The same disclosure given twice.
    #[error("disclosure {0} is given twice")]
    Twice(usize),
    /// Names a field its object already holds.
    #[error("disclosure {0} names a field its object already holds")]
    Collides(usize),
    /// Digests repeated, or an `_sd` that is not an array of strings.
    #[error(
        "the signed part holds a digest twice, or an _sd member that is not an array of digests"
    )]
    Digests,
    /// An array element digest.
    #[error("the signed part holds an array element digest (...), which Jol events do not use")]
    ArrayElement,
}

/// The digest of a disclosure: base64url(SHA-256(its text)).
fn digest(encoded: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(encoded.as_bytes()))
}

/// The length of a digest's text: 32 bytes in base64url without padding.
const DIGEST_TEXT: usize = 43;

/// [`digest`], written into `text` (the reveal looks up one per disclosure, no string kept).
/// `None` if it does not fit, which 32 bytes always do: never an empty digest that an
/// `_sd: [""]` would match.
fn digest_in<'t>(encoded: &str, text: &'t mut [u8; DIGEST_TEXT]) -> Option<&'t str> {
    let written = URL_SAFE_NO_PAD
        .encode_slice(Sha256::digest(encoded.as_bytes()), text)
        .ok()?;
    std::str::from_utf8(text.get(..written)?)
        .ok()
        .filter(|d| d.len() == DIGEST_TEXT)
}

fn salt() -> String {
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Replace each field of `fields` present in `data` by a digest in its object's `_sd`, and
/// return the disclosures in the order of `fields`. Fields absent from `data` are skipped.
/// Each `_sd` array is sorted, so the digests' order says nothing about the fields'.
pub fn conceal(data: &mut Value, fields: &[Pointer]) -> Vec<Disclosed> {
    conceal_taking(data, fields).0
}

/// [`conceal`], keeping the values it took out so that [`Taken::restore`] puts `data` back as
/// it was (the signer's way of concealing without a copy of the event). `None`, and `data`
/// untouched, when `data` already holds an `_sd` of its own: the restore could not tell its
/// digests from the ones added.
pub fn conceal_reversibly(data: &mut Value, fields: &[Pointer]) -> Option<(Vec<Disclosed>, Taken)> {
    if holds_sd(data) {
        return None;
    }
    Some(conceal_taking(data, fields))
}

/// The fields [`conceal_reversibly`] took out of an event's data: the pointer to each one's
/// object, its name and its value, in the order taken.
#[derive(Debug)]
pub struct Taken(Vec<(String, String, Value)>);

impl Taken {
    /// Put every field back where it was taken from, and remove the `_sd` members the
    /// concealing added (the data held none before), newest first so that a field taken from
    /// inside another comes back into it.
    pub fn restore(self, data: &mut Value) {
        for (parent, name, value) in self.0.into_iter().rev() {
            if let Some(object) = data.pointer_mut(&parent).and_then(Value::as_object_mut) {
                object.remove(SD);
                object.insert(name, value);
            }
        }
    }
}

fn conceal_taking(data: &mut Value, fields: &[Pointer]) -> (Vec<Disclosed>, Taken) {
    let mut disclosed = Vec::new();
    let mut taken = Vec::new();
    for pointer in fields {
        let Some((parent, name)) = pointer.split() else {
            continue;
        };
        let Some(object) = data.pointer_mut(parent).and_then(Value::as_object_mut) else {
            continue;
        };
        let Some(value) = object.remove(&name) else {
            continue;
        };
        // A tuple is written as the array `[salt, name, value]`, the value borrowed.
        let text = serde_json::to_string(&(salt(), &name, &value)).unwrap_or_default();
        let encoded = URL_SAFE_NO_PAD.encode(text);
        let digests = object.entry(SD).or_insert_with(|| Value::Array(Vec::new()));
        if let Value::Array(digests) = digests {
            digests.push(digest(&encoded).into());
        }
        disclosed.push(Disclosed {
            pointer: pointer.clone(),
            encoded,
        });
        taken.push((parent.to_string(), name, value));
    }
    sort_digests(data);
    (disclosed, Taken(taken))
}

/// Whether any object in `value` has an `_sd` member.
fn holds_sd(value: &Value) -> bool {
    match value {
        Value::Object(map) => map.contains_key(SD) || map.values().any(holds_sd),
        Value::Array(items) => items.iter().any(holds_sd),
        _ => false,
    }
}

fn sort_digests(value: &mut Value) {
    match value {
        Value::Object(map) => {
            if let Some(Value::Array(digests)) = map.get_mut(SD) {
                digests.sort_by(|a, b| a.as_str().cmp(&b.as_str()));
            }
            map.values_mut().for_each(sort_digests);
        }
        Value::Array(items) => items.iter_mut().for_each(sort_digests),
        _ => {}
    }
}

/// Put the `disclosures` back into the concealed `data` (RFC 9901 §7.1: every disclosure's
/// digest must be in the signed part, once; none may be given twice; digests unique), then
/// remove every `_sd`. What was not disclosed stays absent. Returns each disclosure with the
/// field it disclosed, in the order given.
pub fn reveal(data: &mut Value, disclosures: &[&str]) -> Result<Vec<Disclosed>, SdError> {
    let mut signed = Digests::default();
    signed.collect(data, &mut String::new())?;
    let mut disclosed = Vec::with_capacity(disclosures.len());
    let mut text = [0u8; DIGEST_TEXT];
    for (i, encoded) in disclosures.iter().enumerate() {
        let (name, mut value) = decode(encoded).ok_or(SdError::Malformed(i))?;
        if name == SD || name == ARRAY_ELEMENT {
            return Err(SdError::Reserved(i));
        }
        let digest = digest_in(encoded, &mut text).ok_or(SdError::Unknown(i))?;
        let parent = signed.take(digest, i)?;
        let object = object_at(data, parent).ok_or(SdError::Unknown(i))?;
        if object.contains_key(&name) {
            return Err(SdError::Collides(i));
        }
        disclosed.push(Disclosed {
            pointer: Pointer::child(parent, &name),
            encoded: (*encoded).to_string(),
        });
        // Jol discloses no digest inside another: any `_sd` a disclosed value holds goes too.
        remove_digests(&mut value);
        object.insert(name, value);
    }
    // Every `_sd` of the signed part is in an object `collect` listed.
    for parent in &signed.objects {
        if let Some(object) = object_at(data, parent) {
            object.remove(SD);
        }
    }
    Ok(disclosed)
}

/// The digests of a signed part, each with the object holding it.
#[derive(Default)]
struct Digests {
    /// Each digest → the index of its object in `objects`, and whether a disclosure took it.
    places: std::collections::HashMap<String, (usize, bool)>,
    /// The pointer of every object holding an `_sd`.
    objects: Vec<String>,
}

impl Digests {
    /// Every digest of `value` (at pointer `at`, a buffer the walk extends and cuts back).
    fn collect(&mut self, value: &Value, at: &mut String) -> Result<(), SdError> {
        use std::fmt::Write;
        match value {
            Value::Object(map) => {
                if map.contains_key(ARRAY_ELEMENT) {
                    return Err(SdError::ArrayElement);
                }
                if let Some(digests) = map.get(SD) {
                    let digests = digests.as_array().ok_or(SdError::Digests)?;
                    let object = self.objects.len();
                    self.objects.push(at.clone());
                    for d in digests {
                        let d = d.as_str().ok_or(SdError::Digests)?;
                        if self.places.insert(d.to_string(), (object, false)).is_some() {
                            return Err(SdError::Digests);
                        }
                    }
                }
                // Only an object or an array can hold digests: the walk skips the rest.
                for (name, v) in map
                    .iter()
                    .filter(|(name, v)| name.as_str() != SD && holds(v))
                {
                    let len = at.len();
                    at.push('/');
                    crate::event::json::push_pointer_token(at, name);
                    self.collect(v, at)?;
                    at.truncate(len);
                }
            }
            Value::Array(items) => {
                for (i, v) in items.iter().enumerate().filter(|(_, v)| holds(v)) {
                    let len = at.len();
                    let _ = write!(at, "/{i}");
                    self.collect(v, at)?;
                    at.truncate(len);
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// The pointer of the object holding `digest`, which disclosure `i` takes: refused when
    /// the signed part has no such digest or another disclosure took it.
    fn take(&mut self, digest: &str, i: usize) -> Result<&str, SdError> {
        match self.places.get_mut(digest) {
            None => Err(SdError::Unknown(i)),
            Some((_, true)) => Err(SdError::Twice(i)),
            Some((object, taken)) => {
                *taken = true;
                Ok(self.objects[*object].as_str())
            }
        }
    }
}

/// The object at `pointer` (one [`Digests::collect`] built) in `data`.
fn object_at<'a>(data: &'a mut Value, pointer: &str) -> Option<&'a mut Map<String, Value>> {
    let mut at = data;
    for token in pointer.split('/').skip(1) {
        at = match at {
            Value::Object(map) => {
                map.get_mut(crate::event::json::unescape_pointer_token(token).as_ref())?
            }
            Value::Array(items) => items.get_mut(token.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    at.as_object_mut()
}

/// Whether `value` may hold other values (and so digests).
fn holds(value: &Value) -> bool {
    value.is_object() || value.is_array()
}

fn remove_digests(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.remove(SD);
            map.values_mut().for_each(remove_digests);
        }
        Value::Array(items) => items.iter_mut().for_each(remove_digests),
        _ => {}
    }
}

/// A disclosure's claim name and value (`[salt, name, value]`, base64url, the salt a string);
/// `None` when it is not one. Parsed strictly: a value that is an object or an array goes
/// through the parser that refuses duplicate members (a scalar cannot hold any).
pub(crate) fn decode(encoded: &str) -> Option<(String, Value)> {
    let text = URL_SAFE_NO_PAD.decode(encoded).ok()?;
    let (Salt, name, raw): (Salt, String, &serde_json::value::RawValue) =
        serde_json::from_slice(&text).ok()?;
    let raw = raw.get();
    let value = match raw.trim_start().starts_with(['{', '[']) {
        true => crate::event::json::parse(raw.as_bytes()).ok()?,
        false => serde_json::from_str(raw).ok()?,
    };
    Some((name, value))
}

/// A disclosure's salt: any JSON string, not kept.
struct Salt;

impl<'de> serde::Deserialize<'de> for Salt {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Salt, D::Error> {
        struct Visit;
        impl serde::de::Visitor<'_> for Visit {
            type Value = Salt;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a string salt")
            }
            fn visit_str<E: serde::de::Error>(self, _: &str) -> Result<Salt, E> {
                Ok(Salt)
            }
        }
        d.deserialize_str(Visit)
    }
}

/// Whether `data` (concealed, as signed) holds any `_sd` at all: a selectively disclosable
/// event whose personal fields are all in the clear is no such event.
pub fn has_digests(data: &Map<String, Value>) -> bool {
    data.contains_key(SD)
        || data
            .values()
            .any(|v| v.as_object().is_some_and(has_digests))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pointers(list: &[&str]) -> Vec<Pointer> {
        list.iter().map(|p| p.parse().unwrap()).collect()
    }

    fn record() -> Value {
        json!({"event": "RETURN_REGISTERED", "person": {"pin": "21503199012345",
            "name": {"given": "Aibek", "family": "Usenov"}}, "region": "KG-C"})
    }

    #[test]
    fn concealed_fields_leave_only_digests_and_come_back_when_disclosed() {
        let mut data = record();
        let d = conceal(
            &mut data,
            &pointers(&["/person/pin", "/person/name", "/region"]),
        );
        assert_eq!(d.len(), 3);
        let text = data.to_string();
        assert!(
            !text.contains("21503199012345") && !text.contains("Aibek"),
            "{text}"
        );
        assert!(!text.contains("KG-C"), "{text}");
        assert_eq!(data["person"]["_sd"].as_array().unwrap().len(), 2);
        let mut back = data.clone();
        let all: Vec<&str> = d.iter().map(|d| d.encoded.as_str()).collect();
        let revealed = reveal(&mut back, &all).unwrap();
        assert_eq!(back, record());
        assert_eq!(revealed, d);
    }

    #[test]
    fn a_reversible_conceal_gives_the_same_digests_and_puts_the_data_back() {
        let mut data = record();
        let fields = pointers(&["/person/pin", "/person/name", "/region"]);
        let (d, taken) = conceal_reversibly(&mut data, &fields).unwrap();
        let concealed = data.clone();
        assert_eq!(d.len(), 3);
        assert_eq!(concealed["person"][SD].as_array().unwrap().len(), 2);
        taken.restore(&mut data);
        assert_eq!(data, record(), "back as it was, no _sd left");
        // A field taken from inside one taken after it comes back into it.
        let mut nested = record();
        let inside = pointers(&["/person/pin", "/person"]);
        let (_, taken) = conceal_reversibly(&mut nested, &inside).unwrap();
        assert!(nested.get("person").is_none());
        taken.restore(&mut nested);
        assert_eq!(nested, record());
        // The concealed form reveals to the same data, as conceal's does.
        let mut back = concealed;
        let all: Vec<&str> = d.iter().map(|d| d.encoded.as_str()).collect();
        reveal(&mut back, &all).unwrap();
        assert_eq!(back, record());
        // Data holding an `_sd` of its own is not concealed in place.
        let mut own = record();
        own["person"]["_sd"] = json!(["x"]);
        let before = own.clone();
        assert!(conceal_reversibly(&mut own, &fields).is_none());
        assert_eq!(own, before);
    }

    #[test]
    fn a_subset_of_disclosures_reveals_only_those_fields() {
        let mut data = record();
        let d = conceal(
            &mut data,
            &pointers(&["/person/pin", "/person/name", "/region"]),
        );
        let mut partial = data.clone();
        reveal(&mut partial, &[d[0].encoded.as_str()]).unwrap();
        assert_eq!(
            partial,
            json!({"event": "RETURN_REGISTERED", "person": {"pin": "21503199012345"}})
        );
    }

    #[test]
    fn salts_make_each_disclosure_unique() {
        let (mut a, mut b) = (record(), record());
        let p = pointers(&["/person/pin"]);
        assert_ne!(conceal(&mut a, &p), conceal(&mut b, &p));
        assert_ne!(a, b);
    }

    #[test]
    fn foreign_repeated_altered_or_colliding_disclosures_are_refused() {
        let mut data = record();
        let d = conceal(&mut data, &pointers(&["/person/pin", "/region"]));
        let pin = d[0].encoded.as_str();
        assert_eq!(
            reveal(&mut data.clone(), &[pin, pin]),
            Err(SdError::Twice(1))
        );
        let mut other = record();
        let foreign = conceal(&mut other, &pointers(&["/region"]));
        assert_eq!(
            reveal(&mut data.clone(), &[foreign[0].encoded.as_str()]),
            Err(SdError::Unknown(0))
        );
        // An altered value is another disclosure: its digest is nowhere in the signed part.
        let altered = URL_SAFE_NO_PAD.encode(
            String::from_utf8(URL_SAFE_NO_PAD.decode(pin).unwrap())
                .unwrap()
                .replace("21503199012345", "21503199012346"),
        );
        assert_eq!(
            reveal(&mut data.clone(), &[altered.as_str()]),
            Err(SdError::Unknown(0))
        );
        // A digest whose field is also in the clear: the disclosure would overwrite it.
        let mut clear = data.clone();
        clear["person"]["pin"] = json!("21503199012345");
        assert_eq!(reveal(&mut clear, &[pin]), Err(SdError::Collides(0)));
        assert_eq!(
            reveal(&mut data.clone(), &["not base64!"]),
            Err(SdError::Malformed(0))
        );
    }

    #[test]
    fn a_signed_part_with_repeated_digests_or_array_elements_is_refused() {
        let mut data = record();
        conceal(&mut data, &pointers(&["/person/pin"]));
        let mut twice = data.clone();
        let d = twice["person"]["_sd"][0].clone();
        twice["region_sd"] = json!({"_sd": [d]});
        assert_eq!(reveal(&mut twice, &[]), Err(SdError::Digests));
        let mut array = data.clone();
        array["list"] = json!([{"...": "x"}]);
        assert_eq!(reveal(&mut array, &[]), Err(SdError::ArrayElement));
        let mut no_disclosure = data.clone();
        reveal(&mut no_disclosure, &[]).unwrap();
        assert_eq!(
            no_disclosure,
            json!({"event": "RETURN_REGISTERED",
            "person": {"name": {"given": "Aibek", "family": "Usenov"}}, "region": "KG-C"})
        );
    }

    #[test]
    fn a_disclosure_is_a_three_member_array_with_a_string_salt_and_name() {
        let encode = |text: &str| URL_SAFE_NO_PAD.encode(text);
        let decoded = |text: &str| decode(&encode(text));
        assert_eq!(
            decoded(r#"["s\u0061lt", "pin", "21503199012345"]"#),
            Some(("pin".to_string(), json!("21503199012345")))
        );
        assert_eq!(
            decoded(r#" ["salt","name", {"given": "Aibek"}] "#),
            Some(("name".to_string(), json!({"given": "Aibek"})))
        );
        for refused in [
            r#"["salt", "pin"]"#,
            r#"["salt", "pin", 1, 2]"#,
            r#"[1, "pin", 1]"#,
            r#"["salt", 2, 1]"#,
            r#"{"salt": "pin"}"#,
            r#"["salt", "name", {"given": "A", "given": "B"}]"#,
            r#"["salt", "pin", 1] x"#,
        ] {
            assert_eq!(decoded(refused), None, "{refused}");
        }
    }

    #[test]
    fn fields_in_arrays_and_under_escaped_names_come_back() {
        let original = json!({
            "list": [{"pin": "21503199012345", "keep": 1}],
            "a/b~c": {"name": "Aibek"},
        });
        let mut data = original.clone();
        let d = conceal(&mut data, &pointers(&["/list/0/pin", "/a~1b~0c/name"]));
        assert_eq!(data["list"][0]["_sd"].as_array().map(Vec::len), Some(1));
        let encoded: Vec<&str> = d.iter().map(|d| d.encoded.as_str()).collect();
        let revealed = reveal(&mut data, &encoded).unwrap();
        assert_eq!(data, original);
        assert_eq!(revealed, d);
    }

    #[test]
    fn a_digest_inside_a_disclosed_value_is_removed_with_the_others() {
        let mut data = json!({"person": {"_sd": []}});
        let text = r#"["salt", "name", {"given": "Aibek", "_sd": ["x"]}]"#;
        let inner = URL_SAFE_NO_PAD.encode(text);
        data["person"]["_sd"] = json!([digest(&inner)]);
        reveal(&mut data, &[inner.as_str()]).unwrap();
        assert_eq!(data, json!({"person": {"name": {"given": "Aibek"}}}));
    }

    #[test]
    fn pointers_are_checked_and_escape_as_rfc_6901_says() {
        for bad in ["", "/", "person", "/a~2", "/a//b"] {
            assert!(bad.parse::<Pointer>().is_err(), "{bad}");
        }
        assert_eq!(Pointer::child("/a", "b/c~d").as_str(), "/a/b~1c~0d");
        assert_eq!(
            "/a/b~1c~0d".parse::<Pointer>().unwrap().split(),
            Some(("/a", "b/c~d".to_string()))
        );
    }
}
