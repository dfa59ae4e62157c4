//! JWS in flattened JSON serialization (RFC 7515 §7.2.2) with EdDSA over Ed25519 (RFC 8037).
//!
//! The payload bytes are kept verbatim: what was signed is what is stored and forwarded. Parsing
//! is strict: only `alg: EdDSA`, a `kid` naming a signing key, no `crit` extensions, no
//! unprotected header, and canonical base64url without padding.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};

use crate::event::identifiers::KeyName;

/// Why a JWS was refused. Each variant is a distinct reason code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwsError {
    #[error("not a flattened JWS JSON object: {0}")]
    Malformed(String),
    #[error("the {0} member is not canonical base64url without padding")]
    Base64(&'static str),
    #[error("the protected header is not a JSON object with alg and kid: {0}")]
    Header(String),
    #[error("alg must be EdDSA")]
    Algorithm,
    #[error("the header names critical extensions this node does not understand")]
    Critical,
    #[error("kid is not a signing key name MEMBER-ID#KEYNAME")]
    KeyId,
    #[error("the signature does not verify")]
    Signature,
}

impl JwsError {
    /// A stable reason code for quarantine records and metrics.
    pub fn code(&self) -> &'static str {
        match self {
            JwsError::Malformed(_) | JwsError::Base64(_) | JwsError::Header(_) => "jws-malformed",
            JwsError::Algorithm => "jws-algorithm",
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
}

#[derive(Serialize, Deserialize)]
struct Header {
    alg: String,
    kid: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    cty: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    crit: Option<serde_json::Value>,
}

/// The content type our events carry in the protected header.
pub const CONTENT_TYPE: &str = "application/cloudevents+json";

/// Sign `payload` and return the flattened JWS as JSON bytes.
pub fn sign(key: &SigningKey, kid: &KeyName, payload: &[u8]) -> Vec<u8> {
    let header = Header {
        alg: "EdDSA".into(),
        kid: kid.to_string(),
        cty: Some(CONTENT_TYPE.into()),
        crit: None,
    };
    let header_json = serde_json::to_vec(&header).unwrap_or_default();
    let protected = URL_SAFE_NO_PAD.encode(header_json);
    let payload = URL_SAFE_NO_PAD.encode(payload);
    let signature = key.sign(signing_input(&protected, &payload).as_bytes());
    let signature = URL_SAFE_NO_PAD.encode(signature.to_bytes());
    serde_json::to_vec(&Flattened {
        protected: &protected,
        payload: &payload,
        signature: &signature,
    })
    .unwrap_or_default()
}

/// The compact serialization (`protected.payload.signature`) of a flattened JWS: the same JWS
/// in a form any party can rebuild exactly, whatever key order or whitespace the JSON came in.
/// The Merkle log hashes this.
pub fn compact(flattened: &[u8]) -> Option<Vec<u8>> {
    let f: Flattened = serde_json::from_slice(flattened).ok()?;
    Some(format!("{}.{}.{}", f.protected, f.payload, f.signature).into_bytes())
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
    kid: KeyName,
    signing_input: String,
    payload: Vec<u8>,
    signature: Signature,
}

impl Jws {
    /// Parse flattened-JSON JWS bytes. Does not verify the signature.
    pub fn parse(bytes: &[u8]) -> Result<Jws, JwsError> {
        let f: Flattened =
            serde_json::from_slice(bytes).map_err(|e| JwsError::Malformed(e.to_string()))?;
        let header: Header = serde_json::from_slice(&decode("protected", f.protected)?)
            .map_err(|e| JwsError::Header(e.to_string()))?;
        if header.alg != "EdDSA" {
            return Err(JwsError::Algorithm);
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
            kid,
            signing_input: signing_input(f.protected, f.payload),
            payload,
            signature: Signature::from_bytes(&signature),
        })
    }

    /// The signing key's name.
    pub fn kid(&self) -> &KeyName {
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

    #[test]
    fn signs_and_verifies_the_exact_payload() {
        let key = keys::generate();
        let jws = sign(&key, &kid(), b"{\"a\":1}");
        let parsed = Jws::parse(&jws).unwrap();
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
        let jws = sign(&key, &kid(), b"{\"a\":1}");
        let v: serde_json::Value = serde_json::from_slice(&jws).unwrap();
        let mut payload = URL_SAFE_NO_PAD
            .decode(v["payload"].as_str().unwrap())
            .unwrap();
        payload[5] ^= 1;
        let mut tampered = v.clone();
        tampered["payload"] = URL_SAFE_NO_PAD.encode(&payload).into();
        let parsed = Jws::parse(&serde_json::to_vec(&tampered).unwrap()).unwrap();
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
            Jws::parse(none.as_bytes()).unwrap_err(),
            JwsError::Algorithm
        );
        let hs = doc(enc(r#"{"alg":"HS256","kid":"a/b/c/d#k"}"#));
        assert_eq!(Jws::parse(hs.as_bytes()).unwrap_err(), JwsError::Algorithm);
        let crit = doc(enc(r#"{"alg":"EdDSA","kid":"a/b/c/d#k","crit":["exp"]}"#));
        assert_eq!(Jws::parse(crit.as_bytes()).unwrap_err(), JwsError::Critical);
        let padded = doc(format!("{}=", enc(r#"{"alg":"EdDSA","kid":"a/b/c/d#k"}"#)));
        assert_eq!(
            Jws::parse(padded.as_bytes()).unwrap_err(),
            JwsError::Base64("protected")
        );
        let bad_kid = doc(enc(r#"{"alg":"EdDSA","kid":"nobody"}"#));
        assert_eq!(Jws::parse(bad_kid.as_bytes()).unwrap_err(), JwsError::KeyId);
        let extra = r#"{"protected":"e30","payload":"e30","signature":"","header":{}}"#;
        assert!(matches!(
            Jws::parse(extra.as_bytes()),
            Err(JwsError::Malformed(_))
        ));
    }
}
