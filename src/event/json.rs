//! Strict JSON for everything the node parses from outside: like `serde_json`, but an object
//! that names the same member twice is refused with the JSON pointer of the repeated member.
//!
//! JSON (RFC 8259) leaves duplicate names undefined: `serde_json` keeps the last value, other
//! parsers keep the first. For a signed event that would let two readers of the same signed
//! bytes see different persons, so Jol refuses such documents everywhere: local API bodies,
//! event payloads from peers, manifests.

use std::fmt;
use std::sync::Arc;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

/// Why bytes are not strict JSON.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JsonError {
    #[error("not valid JSON: {0}")]
    Syntax(#[source] SerdeError),
    #[error("the member at {pointer} appears twice in its object")]
    DuplicateKey { pointer: String },
}

/// serde_json's error, shared, so that the errors of the event layer that carry it stay `Clone`
/// and comparable: two are equal when they say the same at the same place (serde_json's error
/// has no equality of its own). It reads as serde_json's error, whose source it passes on.
#[derive(Debug, Clone)]
pub struct SerdeError(Arc<serde_json::Error>);

impl SerdeError {
    /// serde_json's error.
    pub(crate) fn get(&self) -> &serde_json::Error {
        &self.0
    }
}

impl From<serde_json::Error> for SerdeError {
    fn from(e: serde_json::Error) -> SerdeError {
        SerdeError(Arc::new(e))
    }
}

impl PartialEq for SerdeError {
    fn eq(&self, other: &SerdeError) -> bool {
        let (a, b) = (self.get(), other.get());
        (a.classify(), a.line(), a.column()) == (b.classify(), b.line(), b.column())
            && a.to_string() == b.to_string()
    }
}

impl Eq for SerdeError {}

impl fmt::Display for SerdeError {
    /// serde_json's message without the values it quotes: an `invalid type: string "…"`
    /// from a peer's event would otherwise carry a disclosure or a payload (a PIN, a name) into
    /// a quarantine record, a log line or an answer. Names of members, kinds and places stay.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&without_values(&self.0.to_string()))
    }
}

/// `message` with each value serde quotes replaced by `…`: every string (`"…"`, in Rust's
/// escaped form), and before the `, expected` that names what was wanted, every other value
/// serde puts in backticks (an integer, a float, a character, an unknown variant or member
/// name: the sender's, so possibly a PIN). What was expected, and the names of missing or
/// repeated members (the schema's own), stay.
fn without_values(message: &str) -> String {
    let strings_gone = without_strings(message);
    // The last `, expected`: a value of the sender's may hold the words, serde's own text after
    // them does not. (A syntax error, `expected `,` or `}``, has none, and keeps its marks.)
    let Some(at) = strings_gone.rfind(", expected") else {
        return strings_gone;
    };
    let (said, expected) = strings_gone.split_at(at);
    let ours = said.starts_with("missing field") || said.starts_with("duplicate field");
    // serde writes a name it does not know raw between backticks, so one holding backticks of
    // its own would end early: everything from the first to the last is the value.
    match (said.find('`'), said.rfind('`')) {
        (Some(first), Some(last)) if !ours && first < last => {
            format!("{}`…`{}{expected}", &said[..first], &said[last + 1..])
        }
        _ => strings_gone.clone(),
    }
}

/// `text` with each string in it (`"…"`, in Rust's escaped form) replaced by `"…"`.
fn without_strings(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(q) = rest.find('"') {
        out.push_str(&rest[..q]);
        out.push_str("\"…\"");
        rest = after_closing_quote(&rest[q + 1..]);
    }
    out.push_str(rest);
    out
}

/// What follows the closing `"` of an escaped string whose opening quote came before `text`.
fn after_closing_quote(text: &str) -> &str {
    let mut escaped = false;
    for (i, c) in text.char_indices() {
        match (escaped, c) {
            (true, _) => escaped = false,
            (false, '\\') => escaped = true,
            (false, '"') => return &text[i + 1..],
            _ => {}
        }
    }
    ""
}

impl std::error::Error for SerdeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}

/// Marks a duplicate inside serde's string errors; never seen outside this module.
const DUPLICATE: &str = "\u{0}duplicate-key\u{0}";

/// Parse `bytes` as one JSON value, refusing duplicate member names.
pub(crate) fn parse(bytes: &[u8]) -> Result<Value, JsonError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = Strict { path: Path::Root }
        .deserialize(&mut de)
        .and_then(|v| de.end().map(|()| v))
        .map_err(|e| {
            let text = e.to_string();
            match text.strip_prefix(DUPLICATE) {
                Some(rest) => JsonError::DuplicateKey {
                    // serde appends " at line L column C" to custom errors.
                    pointer: rest.split(DUPLICATE).next().unwrap_or_default().to_string(),
                },
                None => JsonError::Syntax(e.into()),
            }
        })?;
    Ok(value)
}

/// Parse strictly, then deserialize into `T`.
pub(crate) fn from_slice<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, JsonError> {
    let value = parse(bytes)?;
    serde_json::from_value(value).map_err(|e| JsonError::Syntax(e.into()))
}

/// Where in the document a value is; turned into a JSON pointer only when one is reported.
#[derive(Clone, Copy)]
enum Path<'a> {
    Root,
    Member(&'a Path<'a>, &'a str),
    Item(&'a Path<'a>, usize),
}

/// A member name as one reference token of a JSON pointer (RFC 6901: `~` as `~0`, `/` as
/// `~1`).
pub(crate) fn pointer_token(name: &str) -> String {
    let mut token = String::with_capacity(name.len());
    push_pointer_token(&mut token, name);
    token
}

/// Append `name` to `pointer` as one reference token ([`pointer_token`] without a new string;
/// a name with nothing to escape, nearly every one, is copied as it is).
pub(crate) fn push_pointer_token(pointer: &mut String, name: &str) {
    if !name.contains(['~', '/']) {
        pointer.push_str(name);
        return;
    }
    for c in name.chars() {
        match c {
            '~' => pointer.push_str("~0"),
            '/' => pointer.push_str("~1"),
            c => pointer.push(c),
        }
    }
}

/// One reference token of a JSON pointer as the member name it stands for (`~1` as `/`, then
/// `~0` as `~`, RFC 6901 §4); borrowed when it escapes nothing.
pub(crate) fn unescape_pointer_token(token: &str) -> std::borrow::Cow<'_, str> {
    match token.contains('~') {
        true => token.replace("~1", "/").replace("~0", "~").into(),
        false => token.into(),
    }
}

impl Path<'_> {
    /// The JSON pointer (RFC 6901) of this place.
    fn pointer(&self) -> String {
        match self {
            Path::Root => String::new(),
            Path::Member(parent, key) => {
                format!("{}/{}", parent.pointer(), pointer_token(key))
            }
            Path::Item(parent, i) => format!("{}/{i}", parent.pointer()),
        }
    }
}

/// A seed that builds a `Value` and knows where in the document it is.
struct Strict<'a> {
    path: Path<'a>,
}

impl<'de> DeserializeSeed<'de> for Strict<'_> {
    type Value = Value;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Strict<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        Number::from_f64(v)
            .map(Value::Number)
            .ok_or_else(|| E::custom("a number JSON cannot hold"))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(v) = seq.next_element_seed(Strict {
            path: Path::Item(&self.path, items.len()),
        })? {
            items.push(v);
        }
        Ok(Value::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut members = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let here = Path::Member(&self.path, &key);
            if members.contains_key(&key) {
                return Err(de::Error::custom(format!(
                    "{DUPLICATE}{}{DUPLICATE}",
                    here.pointer()
                )));
            }
            let value = map.next_value_seed(Strict { path: here })?;
            members.insert(key, value);
        }
        Ok(Value::Object(members))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// serde's messages quote the values they refuse; ours never repeat them, and keep the
    /// rest (what was expected, where).
    #[test]
    fn an_error_never_repeats_the_value_it_refuses() {
        let pin = "21503199012345";
        let disclosure = format!("[\\\"salt\\\", \\\"pin\\\", \\\"{pin}\\\"]");
        let doc = format!(r#"{{"disclosures": "{disclosure}"}}"#);
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct Header {
            disclosures: Vec<String>,
        }
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        enum Kind {
            Known,
        }
        #[derive(Debug, serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)]
        struct Person {
            pin: String,
        }
        let wrong_type = serde_json::from_str::<Header>(&doc).unwrap_err();
        let wrong_variant = serde_json::from_str::<Kind>(&format!(r#""{pin}""#)).unwrap_err();
        let a_number = serde_json::from_str::<Person>(&format!(r#"{{"pin": {pin}}}"#)).unwrap_err();
        let a_key =
            serde_json::from_str::<Person>(&format!(r#"{{"pin": "x", "{pin}": 1}}"#)).unwrap_err();
        for (raw, kept) in [
            (
                wrong_type,
                "invalid type: string \"…\", expected a sequence at line 1",
            ),
            (
                wrong_variant,
                "unknown variant `…`, expected `Known` at line 1",
            ),
            (
                a_number,
                "invalid type: integer `…`, expected a string at line 1",
            ),
            (a_key, "unknown field `…`, expected `pin` at line 1"),
        ] {
            assert!(raw.to_string().contains(pin), "the test's premise: {raw}");
            let ours = SerdeError::from(raw).to_string();
            assert!(!ours.contains(pin), "{ours}");
            assert!(ours.starts_with(kept), "{ours}");
        }
        assert_eq!(without_values("no quotes at line 1"), "no quotes at line 1");
        assert_eq!(
            without_values("unknown field `a, expected 2150`, expected `pin` at line 1"),
            "unknown field `…`, expected `pin` at line 1"
        );
        assert_eq!(
            without_values("unknown field `x` 12902199254321 `z`, expected `pin` at line 1"),
            "unknown field `…`, expected `pin` at line 1"
        );
        assert_eq!(
            without_values("expected `,` or `}` at line 1 column 9"),
            "expected `,` or `}` at line 1 column 9"
        );
        assert_eq!(
            without_values("missing field `pin` at line 1 column 2"),
            "missing field `pin` at line 1 column 2"
        );
        assert_eq!(without_values(r#"a "b\"c" d "e"#), r#"a "…" d "…""#);
    }

    #[test]
    fn parses_what_serde_json_parses() {
        let doc = br#"{"a": [1, -2, 3.5, "x", null, true, {"b": {}}], "c/d": "e~f"}"#;
        assert_eq!(
            parse(doc).unwrap(),
            serde_json::from_slice::<Value>(doc).unwrap()
        );
    }

    #[test]
    fn a_repeated_member_is_refused_with_its_pointer() {
        assert_eq!(
            parse(br#"{"person": {"pin": "1", "pin": "2"}}"#).unwrap_err(),
            JsonError::DuplicateKey {
                pointer: "/person/pin".into()
            }
        );
        assert_eq!(
            parse(br#"[{}, {"a/b": 1, "a/b": 2}]"#).unwrap_err(),
            JsonError::DuplicateKey {
                pointer: "/1/a~1b".into()
            }
        );
        // The same name in two different objects is fine.
        assert_eq!(
            parse(br#"{"a": {"x": 1}, "b": {"x": 2}}"#).unwrap(),
            json!({"a": {"x": 1}, "b": {"x": 2}})
        );
    }

    #[test]
    fn syntax_errors_and_trailing_bytes_are_refused() {
        assert!(matches!(parse(b"{"), Err(JsonError::Syntax(_))));
        assert!(matches!(parse(b"{} {}"), Err(JsonError::Syntax(_))));
        let deep = "[".repeat(200) + &"]".repeat(200);
        assert!(matches!(parse(deep.as_bytes()), Err(JsonError::Syntax(_))));
    }

    #[test]
    fn a_syntax_error_keeps_serde_json_s_error_as_its_source() {
        let err = parse(b"{\n  \"a\": }").unwrap_err();
        let source = std::error::Error::source(&err).expect("a source");
        let serde = source
            .downcast_ref::<SerdeError>()
            .expect("serde_json's error")
            .get();
        assert_eq!((serde.line(), serde.column()), (2, 8));
        assert!(serde.is_syntax());
        assert_eq!(err.to_string(), format!("not valid JSON: {serde}"));
        assert_eq!(
            err.clone(),
            err,
            "comparable and Clone, as the event errors need"
        );
    }
}
