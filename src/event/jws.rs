//! JWS in flattened JSON serialization (RFC 7515 §7.2.2) with Ed25519 signatures.
//!
//! The payload bytes are kept verbatim: what was signed is what is stored and forwarded. Jol signs
//! with the fully-specified `alg: "Ed25519"` of RFC 9864; the deprecated polymorphic `EdDSA`
//! (RFC 8037) is still parsed, and [`Jws::alg`] tells the caller which it was so the manifest can
//! decide whether the signer may still use it. Every signed object names what it is in `typ`
//! ([`Typ`]), and parsing refuses an object of another kind than the one expected, so a
//! checkpoint can never be passed off as an event or the other way round. Parsing is strict: the
//! JWS and its protected header JSON objects (not arrays of their members), a `kid` naming a
//! signing key, no `crit` extensions, no unprotected header (except the
//! `disclosures` of a selectively disclosable event, [`Typ::SdEvent`]: an SD-JWT in the flattened
//! JWS JSON serialization of RFC 9901 §8.1, whose signature covers only the protected header and
//! the payload), and canonical base64url without padding.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};

use crate::event::identifiers::KeyName;
use crate::event::json::SerdeError;

/// Why a JWS was refused. Each variant is a distinct reason code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwsError {
    /// Not a flattened JWS JSON object.
    #[error("not a flattened JWS JSON object: {0}")]
    Malformed(#[source] SerdeError),
    /// An unprotected header on anything but a selectively disclosable event, or holding
    /// anything but its disclosures.
    #[error(
        "only a selectively disclosable event has an unprotected header, and only its disclosures"
    )]
    UnprotectedHeader,
    /// A member that is not canonical base64url.
    #[error("the {0} member is not canonical base64url without padding")]
    Base64(&'static str),
    /// The protected header is not a JSON object with alg and kid.
    #[error("the protected header is not a JSON object with alg and kid: {0}")]
    Header(#[source] SerdeError),
    /// Neither Ed25519 nor EdDSA.
    #[error("alg must be Ed25519 (or EdDSA from a member not yet migrated)")]
    Algorithm,
    /// Another kind of signed object than the one expected.
    #[error("typ is {found:?}, but a {expected} is expected here")]
    Type {
        /// The kind expected.
        expected: Typ,
        /// The `typ` it names, if any.
        found: Option<String>,
    },
    /// The header names critical extensions.
    #[error("the header names critical extensions this node does not understand")]
    Critical,
    /// `kid` is not a key name.
    #[error("kid is not a signing key name MEMBER-ID#KEYNAME")]
    KeyId,
    /// The signature does not verify.
    #[error("the signature does not verify")]
    Signature,
}

impl JwsError {
    /// A stable reason code for quarantine records and metrics.
    pub(crate) fn code(&self) -> &'static str {
        match self {
            JwsError::Malformed(_)
            | JwsError::UnprotectedHeader
            | JwsError::Base64(_)
            | JwsError::Header(_) => "jws-malformed",
            JwsError::Algorithm => "jws-algorithm",
            JwsError::Type { .. } => "jws-type",
            JwsError::Critical => "jws-critical-header",
            JwsError::KeyId => "jws-kid",
            JwsError::Signature => "signature-invalid",
        }
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Flattened<'a> {
    protected: &'a str,
    payload: &'a str,
    signature: &'a str,
    /// The unprotected header: only a selectively disclosable event has one, holding its
    /// disclosures (RFC 9901 §8.1, the flattened JWS JSON serialization of an SD-JWT).
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    header: Option<Unprotected<'a>>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Unprotected<'a> {
    #[serde(borrow)]
    disclosures: Vec<&'a str>,
}

/// A flattened JWS or a JOSE header read from `text`: a JSON object only (serde would read a
/// struct from an array of its members in order too, which no JOSE library sends or takes).
fn from_object<'a, T: Deserialize<'a>>(text: &'a [u8]) -> Result<T, serde_json::Error> {
    let first = text.iter().find(|b| !b.is_ascii_whitespace());
    if first != Some(&b'{') {
        return Err(<serde_json::Error as serde::de::Error>::custom(
            "not a JSON object",
        ));
    }
    serde_json::from_slice(text)
}

/// Where the signed members of a flattened JWS lie in its JSON text, as byte ranges: its
/// compact serialization (the log's leaf) and its copies with fewer disclosures (what a reader is
/// handed) are made from these without parsing the text again. Located when the JWS is parsed
/// or signed; they name ranges of that text only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Members {
    protected: (usize, usize),
    payload: (usize, usize),
    signature: (usize, usize),
    /// The length of the text they were found in.
    text: usize,
}

impl Members {
    /// Those of `flattened`, by parsing it; `None` when it is not a flattened JWS.
    pub(crate) fn of(flattened: &[u8]) -> Option<Members> {
        let f = from_object::<Flattened>(flattened).ok()?;
        Members::locate(flattened, &f)
    }

    /// Those of `f`, parsed from `text`: its members are strings borrowed from it (a string
    /// holding an escape is not borrowed, so such a text is refused as it is parsed).
    fn locate(text: &[u8], f: &Flattened) -> Option<Members> {
        let start = text.as_ptr() as usize;
        let range = |member: &str| {
            let from = (member.as_ptr() as usize).checked_sub(start)?;
            let to = from.checked_add(member.len())?;
            (to <= text.len()).then_some((from, to))
        };
        Some(Members {
            protected: range(f.protected)?,
            payload: range(f.payload)?,
            signature: range(f.signature)?,
            text: text.len(),
        })
    }

    /// The members `protected`, `payload` and `signature` in `text`, the text they were
    /// located in; `None` for a text of another length (or one not text at those ranges).
    pub(crate) fn in_text<'a>(&self, text: &'a [u8]) -> Option<[&'a str; 3]> {
        if text.len() != self.text {
            return None;
        }
        let member = |(from, to): (usize, usize)| {
            text.get(from..to).and_then(|b| std::str::from_utf8(b).ok())
        };
        Some([
            member(self.protected)?,
            member(self.payload)?,
            member(self.signature)?,
        ])
    }
}

impl Flattened<'_> {
    /// The object as JSON text, exactly as serde_json writes it. Its members are base64url, or
    /// were read from JSON as borrowed strings (which hold nothing JSON escapes), so they are
    /// copied as they are instead of through serde_json's escaping writer (the feed writes one
    /// for each event it delivers with fewer disclosures); a member holding a character JSON
    /// escapes still goes through serde_json.
    fn to_json(&self) -> Vec<u8> {
        self.to_located_json().0
    }

    /// [`Flattened::to_json`], with where its signed members are in it (`None` for a text
    /// serde_json wrote: one with escapes, which no parse of ours takes).
    fn to_located_json(&self) -> (Vec<u8>, Option<Members>) {
        let disclosures = self.header.as_ref().map_or(&[][..], |h| &h.disclosures[..]);
        let parts = [self.protected, self.payload, self.signature];
        let members = || parts.iter().chain(disclosures);
        if !members().all(|s| needs_no_escape(s)) {
            return (serde_json::to_vec(self).unwrap_or_default(), None);
        }
        let mut out = Vec::with_capacity(members().map(|s| s.len() + 3).sum::<usize>() + 64);
        out.extend_from_slice(b"{\"protected\":");
        let protected = push_string(&mut out, self.protected);
        out.extend_from_slice(b",\"payload\":");
        let payload = push_string(&mut out, self.payload);
        out.extend_from_slice(b",\"signature\":");
        let signature = push_string(&mut out, self.signature);
        if self.header.is_some() {
            out.extend_from_slice(b",\"header\":{\"disclosures\":[");
            for (i, d) in disclosures.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                push_string(&mut out, d);
            }
            out.extend_from_slice(b"]}");
        }
        out.push(b'}');
        let members = Members {
            protected,
            payload,
            signature,
            text: out.len(),
        };
        (out, Some(members))
    }
}

/// Whether `s` goes into a JSON string as it is: no quote, backslash or control character.
/// Every byte is looked at (no early return), which lets the compiler check many at once.
fn needs_no_escape(s: &str) -> bool {
    s.bytes()
        .fold(true, |ok, b| ok & (b >= 0x20) & (b != b'"') & (b != b'\\'))
}

/// `s` (which [`needs_no_escape`]) as a JSON string; returns where its characters are in `out`.
fn push_string(out: &mut Vec<u8>, s: &str) -> (usize, usize) {
    out.push(b'"');
    let from = out.len();
    out.extend_from_slice(s.as_bytes());
    let to = out.len();
    out.push(b'"');
    (from, to)
}

#[derive(Serialize, Deserialize)]
struct Header {
    alg: String,
    kid: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    typ: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    cty: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    crit: Option<serde_json::Value>,
}

/// The content type our events carry in the protected header.
pub(crate) const CONTENT_TYPE: &str = "application/cloudevents+json";

/// What a signed object is: its `typ` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Typ {
    /// A CloudEvent of the exchange, signed whole (the format before selective disclosure).
    Event,
    /// A CloudEvent of the exchange whose personal fields are selectively disclosable: an
    /// SD-JWT (RFC 9901) in the flattened JWS JSON serialization.
    SdEvent,
    /// The federation manifest, signed by the authority.
    Manifest,
    /// A node's KPI report of a closed month, as it was when the month closed.
    KpiReport,
}

impl Typ {
    /// The `typ` header value.
    pub fn as_str(self) -> &'static str {
        match self {
            Typ::Event => "jol-event+jws",
            Typ::SdEvent => "jol-event+sd-jwt",
            Typ::Manifest => "jol-manifest+jws",
            Typ::KpiReport => "jol-kpi-report+jws",
        }
    }
}

impl std::fmt::Display for Typ {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The signature algorithm a JWS names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alg {
    /// `Ed25519` (RFC 9864): what Jol signs with.
    Ed25519,
    /// `EdDSA` (RFC 8037, deprecated by RFC 9864): accepted only from members the manifest marks
    /// as not yet migrated.
    EdDsa,
}

impl Alg {
    /// Its name in the header.
    pub fn as_str(self) -> &'static str {
        match self {
            Alg::Ed25519 => "Ed25519",
            Alg::EdDsa => "EdDSA",
        }
    }
}

/// Sign `payload` as a `typ` object and return the flattened JWS as JSON bytes.
pub fn sign(key: &SigningKey, kid: &KeyName, typ: Typ, payload: &[u8]) -> Vec<u8> {
    sign_with(key, kid, Alg::Ed25519, Some(typ), payload)
}

/// Sign with an explicit algorithm name and `typ` (tests use it to act as a member that has not
/// migrated to RFC 9864 yet).
pub(crate) fn sign_with(
    key: &SigningKey,
    kid: &KeyName,
    alg: Alg,
    typ: Option<Typ>,
    payload: &[u8],
) -> Vec<u8> {
    sign_disclosing_with(key, kid, alg, typ, payload, []).0
}

/// Sign `payload` as a `typ` object and return the flattened JWS with `disclosures` as its
/// unprotected header (none: no header), as [`with_disclosures`] would make it, in one step.
pub fn sign_disclosing<'d>(
    key: &SigningKey,
    kid: &KeyName,
    typ: Typ,
    payload: &[u8],
    disclosures: impl IntoIterator<Item = &'d str>,
) -> Vec<u8> {
    sign_disclosing_with(key, kid, Alg::Ed25519, Some(typ), payload, disclosures).0
}

/// [`sign_disclosing`], with where the signed members are in the text.
pub(crate) fn sign_located<'d>(
    key: &SigningKey,
    kid: &KeyName,
    typ: Typ,
    payload: &[u8],
    disclosures: impl IntoIterator<Item = &'d str>,
) -> (Vec<u8>, Option<Members>) {
    sign_disclosing_with(key, kid, Alg::Ed25519, Some(typ), payload, disclosures)
}

fn sign_disclosing_with<'d>(
    key: &SigningKey,
    kid: &KeyName,
    alg: Alg,
    typ: Option<Typ>,
    payload: &[u8],
    disclosures: impl IntoIterator<Item = &'d str>,
) -> (Vec<u8>, Option<Members>) {
    let header = Header {
        alg: alg.as_str().into(),
        kid: kid.to_string(),
        typ: typ.map(|t| t.as_str().to_string()),
        cty: matches!(typ, Some(Typ::Event | Typ::SdEvent)).then(|| CONTENT_TYPE.into()),
        crit: None,
    };
    let header_json = serde_json::to_vec(&header).unwrap_or_default();
    let protected = URL_SAFE_NO_PAD.encode(header_json);
    let payload = URL_SAFE_NO_PAD.encode(payload);
    let signature = key.sign(signing_input(&protected, &payload).as_bytes());
    let signature = URL_SAFE_NO_PAD.encode(signature.to_bytes());
    let disclosures: Vec<&str> = disclosures.into_iter().collect();
    Flattened {
        protected: &protected,
        payload: &payload,
        signature: &signature,
        header: (!disclosures.is_empty()).then_some(Unprotected { disclosures }),
    }
    .to_located_json()
}

/// The same flattened JWS with `disclosures` as its unprotected header (none: no header). The
/// signed part is copied verbatim; `None` when `flattened` is not a flattened JWS.
pub fn with_disclosures<'d>(
    flattened: &[u8],
    disclosures: impl IntoIterator<Item = &'d str>,
) -> Option<Vec<u8>> {
    with_disclosures_at(flattened, &Members::of(flattened)?, disclosures)
}

/// [`with_disclosures`] of a flattened JWS whose members are known to be at `members`.
pub(crate) fn with_disclosures_at<'d>(
    flattened: &[u8],
    members: &Members,
    disclosures: impl IntoIterator<Item = &'d str>,
) -> Option<Vec<u8>> {
    let [protected, payload, signature] = members.in_text(flattened)?;
    let disclosures: Vec<&str> = disclosures.into_iter().collect();
    Some(
        Flattened {
            protected,
            payload,
            signature,
            header: (!disclosures.is_empty()).then_some(Unprotected { disclosures }),
        }
        .to_json(),
    )
}

/// The compact serialization (`protected.payload.signature`) of a flattened JWS: the same JWS
/// in a form any party can rebuild exactly, whatever key order or whitespace the JSON came in.
/// The Merkle log hashes this ([`crate::log::event_leaf`], which hashes the three members where
/// they are instead of joining them first).
pub fn compact(flattened: &[u8]) -> Option<Vec<u8>> {
    let [protected, payload, signature] = Members::of(flattened)?.in_text(flattened)?;
    Some(format!("{protected}.{payload}.{signature}").into_bytes())
}

fn signing_input(protected: &str, payload: &str) -> String {
    let mut s = String::with_capacity(protected.len() + payload.len() + 1);
    s.push_str(protected);
    s.push('.');
    s.push_str(payload);
    s
}

fn decode(member: &'static str, s: &str) -> Result<Vec<u8>, JwsError> {
    // The engine rejects padding and non-zero trailing bits, so each byte string has one form.
    URL_SAFE_NO_PAD
        .decode(s)
        .map_err(|_| JwsError::Base64(member))
}

/// A parsed, not yet verified, JWS.
#[derive(Debug, Clone)]
pub struct Jws {
    members: Members,
    alg: Alg,
    kid: KeyName,
    typ: Typ,
    signing_input: String,
    payload: Vec<u8>,
    signature: Signature,
    disclosures: Vec<String>,
}

impl Jws {
    /// Parse flattened-JSON JWS bytes of an `expected` object. Does not verify the signature.
    ///
    /// An `Ed25519` object must name its `typ`; an `EdDSA` one (written before RFC 9864) may
    /// lack it, but if it names one it must be the expected one.
    pub fn parse(bytes: &[u8], expected: Typ) -> Result<Jws, JwsError> {
        let f = from_object::<Flattened>(bytes).map_err(|e| JwsError::Malformed(e.into()))?;
        let members = Members::locate(bytes, &f).ok_or_else(|| {
            JwsError::Malformed(
                <serde_json::Error as serde::de::Error>::custom("a member outside the text").into(),
            )
        })?;
        let header: Header = from_object(&decode("protected", f.protected)?)
            .map_err(|e| JwsError::Header(e.into()))?;
        let alg = match header.alg.as_str() {
            "Ed25519" => Alg::Ed25519,
            "EdDSA" => Alg::EdDsa,
            _ => return Err(JwsError::Algorithm),
        };
        let typ = match (&header.typ, alg) {
            (Some(t), _) if t == expected.as_str() => Some(expected),
            (Some(t), _) if expected == Typ::Event && t == Typ::SdEvent.as_str() => {
                Some(Typ::SdEvent)
            }
            (Some(_), _) => None,
            (None, Alg::EdDsa) => Some(expected),
            (None, Alg::Ed25519) => None,
        };
        let Some(typ) = typ else {
            return Err(JwsError::Type {
                expected,
                found: header.typ,
            });
        };
        if f.header.is_some() && typ != Typ::SdEvent {
            return Err(JwsError::UnprotectedHeader);
        }
        if header.crit.is_some() {
            return Err(JwsError::Critical);
        }
        let kid: KeyName = header.kid.parse().map_err(|_| JwsError::KeyId)?;
        let payload = decode("payload", f.payload)?;
        let signature: [u8; 64] = decode("signature", f.signature)?
            .try_into()
            .map_err(|_| JwsError::Base64("signature"))?;
        Ok(Jws {
            members,
            alg,
            kid,
            typ,
            signing_input: signing_input(f.protected, f.payload),
            payload,
            signature: Signature::from_bytes(&signature),
            disclosures: f
                .header
                .map(|h| h.disclosures.into_iter().map(String::from).collect())
                .unwrap_or_default(),
        })
    }

    /// Where its signed members are in the text it was parsed from.
    pub(crate) fn members(&self) -> Members {
        self.members
    }

    /// The algorithm the header names.
    pub(crate) fn alg(&self) -> Alg {
        self.alg
    }

    /// What the object is (`Typ::SdEvent` when an event was asked for and an SD-JWT came).
    pub fn typ(&self) -> Typ {
        self.typ
    }

    /// The disclosures of a selectively disclosable event, as they came (none otherwise).
    pub fn disclosures(&self) -> &[String] {
        &self.disclosures
    }

    /// The signing key's name.
    pub(crate) fn kid(&self) -> &KeyName {
        &self.kid
    }

    /// The exact payload bytes.
    pub fn payload(&self) -> &[u8] {
        &self.payload
    }

    /// Verify with the strict Ed25519 rules (no small-order keys, no malleable signatures).
    pub fn verify(&self, key: &VerifyingKey) -> Result<(), JwsError> {
        key.verify_strict(self.signing_input.as_bytes(), &self.signature)
            .map_err(|_| JwsError::Signature)
    }

    /// The signed message and signature, for batch verification.
    pub fn parts(&self) -> (&[u8], &Signature) {
        (self.signing_input.as_bytes(), &self.signature)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::keys;

    fn kid() -> KeyName {
        "central-server/GOV/70000001/migration#sign-1"
            .parse()
            .unwrap()
    }

    /// Where the signed members are is found alike when the JWS is signed, when it is parsed,
    /// and in a text that came with its members in another order and with whitespace; each is
    /// the member itself, and a copy with fewer disclosures made from them is the one a parse
    /// makes.
    #[test]
    fn the_members_are_found_alike_when_signed_parsed_or_reordered() {
        let key = keys::generate();
        let (signed, members) = sign_located(
            &key,
            &kid(),
            Typ::SdEvent,
            b"{\"_sd\":[]}",
            ["WyJhIiwiYiJd", "WyJjIl0"],
        );
        let members = members.unwrap();
        assert_eq!(Members::of(&signed), Some(members));
        assert_eq!(Jws::parse(&signed, Typ::Event).unwrap().members(), members);
        let f: Flattened = serde_json::from_slice(&signed).unwrap();
        assert_eq!(
            members.in_text(&signed),
            Some([f.protected, f.payload, f.signature])
        );
        let reordered = format!(
            "{{ \"header\" : {{\"disclosures\":[\"WyJhIiwiYiJd\"]}},\n \"signature\":\"{}\", \"payload\": \"{}\",\"protected\":\"{}\" }}",
            f.signature, f.payload, f.protected
        );
        let at = Jws::parse(reordered.as_bytes(), Typ::Event)
            .unwrap()
            .members();
        assert_ne!(at, members);
        assert_eq!(
            at.in_text(reordered.as_bytes()),
            Some([f.protected, f.payload, f.signature])
        );
        for disclosures in [&[][..], &["WyJjIl0"][..]] {
            assert_eq!(
                with_disclosures_at(reordered.as_bytes(), &at, disclosures.iter().copied()),
                with_disclosures(&signed, disclosures.iter().copied()),
            );
        }
        // Ranges name nothing in a text of another length.
        assert_eq!(members.in_text(&signed[..signed.len() / 2]), None);
        assert_eq!(members.in_text(reordered.as_bytes()), None);
    }

    /// A flattened JWS and its protected header are JSON objects: serde would read either
    /// struct from an array of its members in order, which is refused as malformed.
    #[test]
    fn a_jws_or_header_written_as_an_array_is_refused() {
        let key = keys::generate();
        let signed = sign(&key, &kid(), Typ::Event, b"{}");
        let f: Flattened = serde_json::from_slice(&signed).unwrap();
        let array = format!(
            "[\"{}\",\"{}\",\"{}\"]",
            f.protected, f.payload, f.signature
        );
        assert!(matches!(
            Jws::parse(array.as_bytes(), Typ::Event),
            Err(JwsError::Malformed(_))
        ));
        assert_eq!(Members::of(array.as_bytes()), None);
        assert_eq!(
            crate::log::event_leaf(array.as_bytes()),
            crate::merkle::leaf_hash(array.as_bytes())
        );
        let header = format!("[\"Ed25519\",\"{}\",\"{}\"]", kid(), Typ::Event.as_str());
        let protected = URL_SAFE_NO_PAD.encode(header);
        let text = format!(
            "{{\"protected\":\"{protected}\",\"payload\":\"{}\",\"signature\":\"{}\"}}",
            f.payload, f.signature
        );
        assert!(matches!(
            Jws::parse(text.as_bytes(), Typ::Event),
            Err(JwsError::Header(_))
        ));
    }

    /// A flattened JWS is written exactly as serde_json writes it: copied where its members
    /// need no escaping, through serde_json where one does.
    #[test]
    fn a_flattened_jws_is_written_as_serde_json_writes_it() {
        let odd = [
            "a\"b",
            "back\\slash",
            "line\nbreak",
            "\u{1f}",
            "кириллица",
            "é/\u{7f}",
        ];
        let members = ["eyJhbGciOiJFZDI1NTE5In0", "", "x-_0"]
            .into_iter()
            .chain(odd);
        for (i, member) in members.enumerate() {
            for disclosures in [vec![], vec![member], vec!["WyJzYWx0Il0", member, "Zm9v"]] {
                let f = Flattened {
                    protected: if i % 2 == 0 { member } else { "cHJvdA" },
                    payload: member,
                    signature: "c2ln",
                    header: (!disclosures.is_empty()).then_some(Unprotected { disclosures }),
                };
                let written = f.to_json();
                assert_eq!(written, serde_json::to_vec(&f).unwrap(), "{member:?}");
                let back: Flattened = match serde_json::from_slice(&written) {
                    Ok(back) => back,
                    // A member with escapes is not read back borrowed; it was written right.
                    Err(_) => continue,
                };
                assert_eq!(back.payload, member);
            }
        }
    }

    #[test]
    fn signs_and_verifies_the_exact_payload() {
        let key = keys::generate();
        let jws = sign(&key, &kid(), Typ::Event, b"{\"a\":1}");
        let parsed = Jws::parse(&jws, Typ::Event).unwrap();
        assert_eq!(parsed.payload(), b"{\"a\":1}");
        assert_eq!(parsed.kid(), &kid());
        parsed.verify(&key.verifying_key()).unwrap();
        assert_eq!(
            parsed.verify(&keys::generate().verifying_key()),
            Err(JwsError::Signature)
        );
    }

    #[test]
    fn a_flipped_payload_byte_fails_verification() {
        let key = keys::generate();
        let jws = sign(&key, &kid(), Typ::Event, b"{\"a\":1}");
        let v: serde_json::Value = serde_json::from_slice(&jws).unwrap();
        let mut payload = URL_SAFE_NO_PAD
            .decode(v["payload"].as_str().unwrap())
            .unwrap();
        payload[5] ^= 1;
        let mut tampered = v.clone();
        tampered["payload"] = URL_SAFE_NO_PAD.encode(&payload).into();
        let parsed = Jws::parse(&serde_json::to_vec(&tampered).unwrap(), Typ::Event).unwrap();
        assert_eq!(
            parsed.verify(&key.verifying_key()),
            Err(JwsError::Signature)
        );
    }

    #[test]
    fn refuses_other_algorithms_crit_and_loose_base64() {
        let enc = |h: &str| URL_SAFE_NO_PAD.encode(h);
        let doc = |p: String| {
            format!(
                r#"{{"protected":"{p}","payload":"e30","signature":"{}"}}"#,
                "A".repeat(86)
            )
        };
        let none = doc(enc(r#"{"alg":"none","kid":"a/b/c/d#k"}"#));
        assert_eq!(
            Jws::parse(none.as_bytes(), Typ::Event).unwrap_err(),
            JwsError::Algorithm
        );
        let hs = doc(enc(r#"{"alg":"HS256","kid":"a/b/c/d#k"}"#));
        assert_eq!(
            Jws::parse(hs.as_bytes(), Typ::Event).unwrap_err(),
            JwsError::Algorithm
        );
        let crit = doc(enc(r#"{"alg":"EdDSA","kid":"a/b/c/d#k","crit":["exp"]}"#));
        assert_eq!(
            Jws::parse(crit.as_bytes(), Typ::Event).unwrap_err(),
            JwsError::Critical
        );
        let padded = doc(format!("{}=", enc(r#"{"alg":"EdDSA","kid":"a/b/c/d#k"}"#)));
        assert_eq!(
            Jws::parse(padded.as_bytes(), Typ::Event).unwrap_err(),
            JwsError::Base64("protected")
        );
        let bad_kid = doc(enc(r#"{"alg":"EdDSA","kid":"nobody"}"#));
        assert_eq!(
            Jws::parse(bad_kid.as_bytes(), Typ::Event).unwrap_err(),
            JwsError::KeyId
        );
        let extra = r#"{"protected":"e30","payload":"e30","signature":"","header":{}}"#;
        assert!(matches!(
            Jws::parse(extra.as_bytes(), Typ::Event),
            Err(JwsError::Malformed(_))
        ));
    }

    #[test]
    fn ed25519_objects_name_their_type_and_only_that_type_parses() {
        let key = keys::generate();
        let checkpoint = sign(&key, &kid(), Typ::KpiReport, b"{}");
        assert!(Jws::parse(&checkpoint, Typ::KpiReport).is_ok());
        assert_eq!(
            Jws::parse(&checkpoint, Typ::Event).unwrap_err(),
            JwsError::Type {
                expected: Typ::Event,
                found: Some("jol-kpi-report+jws".into())
            }
        );
        let untyped = sign_with(&key, &kid(), Alg::Ed25519, None, b"{}");
        assert!(matches!(
            Jws::parse(&untyped, Typ::Event),
            Err(JwsError::Type { found: None, .. })
        ));
        let header: serde_json::Value = serde_json::from_slice(
            &URL_SAFE_NO_PAD
                .decode(
                    serde_json::from_slice::<serde_json::Value>(&checkpoint).unwrap()["protected"]
                        .as_str()
                        .unwrap(),
                )
                .unwrap(),
        )
        .unwrap();
        assert_eq!(header["alg"], "Ed25519");
        assert_eq!(header["typ"], "jol-kpi-report+jws");
        assert!(header.get("cty").is_none(), "only events carry cty");
    }

    #[test]
    fn legacy_eddsa_parses_and_says_so() {
        let key = keys::generate();
        let old = sign_with(&key, &kid(), Alg::EdDsa, None, b"{}");
        let parsed = Jws::parse(&old, Typ::Event).unwrap();
        assert_eq!(parsed.alg(), Alg::EdDsa);
        parsed.verify(&key.verifying_key()).unwrap();
        let typed_wrong = sign_with(&key, &kid(), Alg::EdDsa, Some(Typ::Manifest), b"{}");
        assert!(Jws::parse(&typed_wrong, Typ::Event).is_err());
        let new = sign(&key, &kid(), Typ::Event, b"{}");
        assert_eq!(Jws::parse(&new, Typ::Event).unwrap().alg(), Alg::Ed25519);
    }
}
