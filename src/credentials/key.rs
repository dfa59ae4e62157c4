//! The credential key: ES256 (ECDSA on P-256 with SHA-256), the algorithm every wallet and
//! verifier of the EU wallet profile (HAIP) must accept. It is not the node's event key (Ed25519,
//! which signs the log): losing or rotating one does not touch the other.
//!
//! This module owns the key file (PKCS#8 PEM, mode 0600), its public JWK (`kid`, `x`, `y`), the
//! retired keys' public JWKs (a rotated-out key stays in the issuer's JWKS so that what it signed
//! keeps verifying: [`RetiredKey`], [`Jwks`]), and compact JWS in both directions:
//! [`IssuerKey::sign`] and [`verify_compact`].

use std::path::{Path, PathBuf};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use p256::ecdsa::signature::{Signer, Verifier};
use p256::ecdsa::{Signature, SigningKey, VerifyingKey};
use p256::pkcs8::{DecodePrivateKey, EncodePrivateKey, LineEnding};
use serde_json::{json, Value};

/// The JWS algorithm of every credential and status list.
pub const ALG: &str = "ES256";

/// Why the credential key could not be made or read.
#[derive(Debug, thiserror::Error)]
pub enum CredentialKeyError {
    /// The file cannot be read.
    #[error("cannot read the credential key {path}: {source}")]
    Read {
        /// The key file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file holds no P-256 key in PKCS#8 PEM.
    #[error("{path} is not a P-256 private key in PKCS#8 PEM")]
    Format {
        /// The key file.
        path: PathBuf,
    },
    /// The file cannot be written, or exists.
    #[error(transparent)]
    Write(#[from] crate::event::keys::KeyError),
    /// A retired key's file holds no P-256 public JWK with a `kid`.
    #[error("{path} is not a P-256 public JWK with a kid (as `jol credential jwk` prints one)")]
    RetiredFormat {
        /// The JWK file.
        path: PathBuf,
    },
    /// Two keys of the JWKS would carry the same `kid`: a verifier could not tell which one a
    /// credential names.
    #[error("the kid {0:?} names two keys of the issuer's JWKS (the signing key's key_name and the retired keys must differ)")]
    KidTwice(String),
}

/// The issuer's signing key and the `kid` its JWK and every JWS header carry.
#[derive(Clone)]
pub struct IssuerKey {
    key: SigningKey,
    kid: String,
}

impl std::fmt::Debug for IssuerKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "IssuerKey({})", self.kid)
    }
}

impl IssuerKey {
    /// A fresh key from the operating system's random source.
    pub fn generate(kid: &str) -> IssuerKey {
        use rand::RngCore;
        loop {
            let mut bytes = [0u8; 32];
            rand::rng().fill_bytes(&mut bytes);
            // A scalar of zero or past the group order (odds ~2^-32) is drawn again.
            if let Ok(key) = SigningKey::from_slice(&bytes) {
                return IssuerKey {
                    key,
                    kid: kid.to_string(),
                };
            }
        }
    }

    /// Read the key at `path` (PKCS#8 PEM), its `kid` given by the config.
    pub fn read(path: &Path, kid: &str) -> Result<IssuerKey, CredentialKeyError> {
        let pem = std::fs::read_to_string(path).map_err(|source| CredentialKeyError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let key = SigningKey::from_pkcs8_pem(&pem).map_err(|_| CredentialKeyError::Format {
            path: path.to_path_buf(),
        })?;
        Ok(IssuerKey {
            key,
            kid: kid.to_string(),
        })
    }

    /// Write the key to a new file at `path` (mode 0600); an existing file is never replaced.
    pub fn write(&self, path: &Path) -> Result<(), CredentialKeyError> {
        let pem =
            self.key
                .to_pkcs8_pem(LineEnding::LF)
                .map_err(|_| CredentialKeyError::Format {
                    path: path.to_path_buf(),
                })?;
        crate::event::keys::write_new(path, pem.as_bytes(), 0o600)?;
        Ok(())
    }

    /// The key's `kid`.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The public key as a JWK (RFC 7517), as `/.well-known/jwt-vc-issuer` publishes it.
    pub fn jwk(&self) -> Value {
        jwk_of(self.key.verifying_key(), &self.kid)
    }

    /// A compact JWS of `payload` with `typ`, `alg: ES256` and this key's `kid` in its header.
    pub fn sign(&self, typ: &str, payload: &Value) -> String {
        let header = json!({"alg": ALG, "typ": typ, "kid": self.kid});
        let signing_input = format!("{}.{}", b64_json(&header), b64_json(payload));
        let signature: Signature = self.key.sign(signing_input.as_bytes());
        format!(
            "{signing_input}.{}",
            URL_SAFE_NO_PAD.encode(signature.to_bytes())
        )
    }
}

fn b64_json(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(value).unwrap_or_default())
}

/// A key the issuer signed with before a rotation: only its public JWK, read from a file
/// (`[credentials] retired_keys`). It signs nothing; it stays in the JWKS for as long as the
/// credentials and status lists it signed are to verify.
#[derive(Debug, Clone, PartialEq)]
pub struct RetiredKey {
    jwk: Value,
}

impl RetiredKey {
    /// Read the public JWK at `path`. Only the public point and the `kid` are kept: a JWK that
    /// also holds the private scalar (`d`) is published without it.
    pub fn read(path: &Path) -> Result<RetiredKey, CredentialKeyError> {
        let bytes = std::fs::read(path).map_err(|source| CredentialKeyError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let refused = || CredentialKeyError::RetiredFormat {
            path: path.to_path_buf(),
        };
        let jwk = crate::event::json::parse(&bytes).map_err(|_| refused())?;
        let kid = jwk
            .get("kid")
            .and_then(Value::as_str)
            .filter(|kid| !kid.is_empty())
            .ok_or_else(refused)?;
        let key = key_of_jwk(&jwk).ok_or_else(refused)?;
        Ok(RetiredKey {
            jwk: jwk_of(&key, kid),
        })
    }

    /// Its `kid`.
    pub fn kid(&self) -> &str {
        self.jwk
            .get("kid")
            .and_then(Value::as_str)
            .unwrap_or_default()
    }
}

/// The issuer's JWKS: the signing key first, then the retired keys, each `kid` once.
#[derive(Debug, Clone, PartialEq)]
pub struct Jwks(Value);

impl Jwks {
    /// The JWKS of `signing` and `retired`; refused when a `kid` would name two keys.
    pub fn new(signing: &IssuerKey, retired: &[RetiredKey]) -> Result<Jwks, CredentialKeyError> {
        let mut kids = vec![signing.kid()];
        for key in retired {
            if kids.contains(&key.kid()) {
                return Err(CredentialKeyError::KidTwice(key.kid().to_string()));
            }
            kids.push(key.kid());
        }
        let keys: Vec<Value> = std::iter::once(signing.jwk())
            .chain(retired.iter().map(|k| k.jwk.clone()))
            .collect();
        Ok(Jwks(json!({ "keys": keys })))
    }

    /// As JSON (`{"keys": [...]}`), what the issuer metadata's `jwks` holds.
    pub fn json(&self) -> &Value {
        &self.0
    }
}

/// The issuer's keys as `[credentials]` names them: the key it signs with, and the JWKS it
/// publishes (that key and the retired ones).
#[derive(Debug, Clone)]
pub struct IssuerKeys {
    /// What credentials and status lists are signed with now.
    pub signing: IssuerKey,
    /// What verifiers are given.
    pub jwks: Jwks,
}

impl IssuerKeys {
    /// Read the signing key and the retired keys `config` names.
    pub fn read(config: &super::CredentialsConfig) -> Result<IssuerKeys, CredentialKeyError> {
        let signing = IssuerKey::read(&config.key_file, &config.key_name)?;
        let retired = config
            .retired_keys
            .iter()
            .map(|path| RetiredKey::read(path))
            .collect::<Result<Vec<_>, _>>()?;
        IssuerKeys::new(signing, &retired)
    }

    /// `signing`, with `retired` beside it in the JWKS.
    pub fn new(
        signing: IssuerKey,
        retired: &[RetiredKey],
    ) -> Result<IssuerKeys, CredentialKeyError> {
        let jwks = Jwks::new(&signing, retired)?;
        Ok(IssuerKeys { signing, jwks })
    }
}

/// The JWK of a P-256 public key.
fn jwk_of(key: &VerifyingKey, kid: &str) -> Value {
    let point = key.to_sec1_point(false);
    let bytes = point.as_bytes();
    // Uncompressed SEC1: 0x04, x (32 bytes), y (32 bytes).
    let x = bytes.get(1..33).unwrap_or_default();
    let y = bytes.get(33..65).unwrap_or_default();
    json!({"kty": "EC", "crv": "P-256", "x": URL_SAFE_NO_PAD.encode(x),
           "y": URL_SAFE_NO_PAD.encode(y), "kid": kid, "alg": ALG, "use": "sig"})
}

/// A P-256 public key from its JWK, if it is one.
fn key_of_jwk(jwk: &Value) -> Option<VerifyingKey> {
    if jwk.get("kty")?.as_str()? != "EC" || jwk.get("crv")?.as_str()? != "P-256" {
        return None;
    }
    let coordinate = |name: &str| URL_SAFE_NO_PAD.decode(jwk.get(name)?.as_str()?).ok();
    let (x, y) = (coordinate("x")?, coordinate("y")?);
    if x.len() != 32 || y.len() != 32 {
        return None;
    }
    let mut sec1 = Vec::with_capacity(65);
    sec1.push(4);
    sec1.extend_from_slice(&x);
    sec1.extend_from_slice(&y);
    VerifyingKey::from_sec1_bytes(&sec1).ok()
}

/// Why a compact JWS was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwsError {
    /// Not three base64url parts of JSON.
    #[error("not a compact JWS (three base64url parts of JSON)")]
    Malformed,
    /// Another `typ` than the one expected.
    #[error("the header's typ is {0:?}, not {1}")]
    Typ(Option<String>, &'static str),
    /// Another algorithm than ES256.
    #[error("the header's alg is {0:?}, not ES256")]
    Alg(Option<String>),
    /// No key of the JWKS has the header's `kid`.
    #[error("no key of the issuer's JWKS has the kid {0:?}")]
    UnknownKey(Option<String>),
    /// The signature does not verify.
    #[error("the signature does not verify with the issuer's key")]
    Signature,
}

/// A verified JWS: its header and payload.
#[derive(Debug, Clone)]
pub struct Verified {
    /// The protected header.
    pub header: Value,
    /// The payload.
    pub payload: Value,
}

/// Verify a compact JWS of `typ` with ES256 and the key of `jwks` (`{"keys": [...]}`) its
/// header's `kid` names (or the only key, when the header names none).
pub fn verify_compact(token: &str, typ: &'static str, jwks: &Value) -> Result<Verified, JwsError> {
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(JwsError::Malformed);
    };
    let json_of = |part: &str| -> Result<Value, JwsError> {
        let bytes = URL_SAFE_NO_PAD
            .decode(part)
            .map_err(|_| JwsError::Malformed)?;
        crate::event::json::parse(&bytes).map_err(|_| JwsError::Malformed)
    };
    let (header, payload) = (json_of(h)?, json_of(p)?);
    let text = |name: &str| header.get(name).and_then(Value::as_str).map(String::from);
    if text("typ").as_deref() != Some(typ) {
        return Err(JwsError::Typ(text("typ"), typ));
    }
    if text("alg").as_deref() != Some(ALG) {
        return Err(JwsError::Alg(text("alg")));
    }
    let keys = jwks.get("keys").and_then(Value::as_array);
    let kid = text("kid");
    let jwk = keys.and_then(|keys| match &kid {
        Some(kid) => keys
            .iter()
            .find(|k| k.get("kid").and_then(Value::as_str) == Some(kid)),
        None if keys.len() == 1 => keys.first(),
        None => None,
    });
    let key = jwk.and_then(key_of_jwk).ok_or(JwsError::UnknownKey(kid))?;
    let sig = URL_SAFE_NO_PAD.decode(s).map_err(|_| JwsError::Malformed)?;
    let sig = Signature::from_slice(&sig).map_err(|_| JwsError::Signature)?;
    key.verify(format!("{h}.{p}").as_bytes(), &sig)
        .map_err(|_| JwsError::Signature)?;
    Ok(Verified { header, payload })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwks(key: &IssuerKey) -> Value {
        json!({"keys": [key.jwk()]})
    }

    #[test]
    fn a_signed_token_verifies_with_its_jwk_and_nothing_else() {
        let key = IssuerKey::generate("vc-1");
        let token = key.sign("dc+sd-jwt", &json!({"iss": "https://issuer.example"}));
        let ok = verify_compact(&token, "dc+sd-jwt", &jwks(&key)).unwrap();
        assert_eq!(ok.payload["iss"], "https://issuer.example");
        assert_eq!(ok.header["kid"], "vc-1");

        let other = IssuerKey::generate("vc-1");
        assert_eq!(
            verify_compact(&token, "dc+sd-jwt", &jwks(&other)).unwrap_err(),
            JwsError::Signature
        );
        let renamed = IssuerKey::generate("vc-2");
        assert!(matches!(
            verify_compact(&token, "dc+sd-jwt", &jwks(&renamed)),
            Err(JwsError::UnknownKey(_))
        ));
        assert!(matches!(
            verify_compact(&token, "statuslist+jwt", &jwks(&key)),
            Err(JwsError::Typ(..))
        ));
        let mut tampered = token.clone();
        tampered.insert(tampered.find('.').unwrap() + 2, 'A');
        assert!(verify_compact(&tampered, "dc+sd-jwt", &jwks(&key)).is_err());
    }

    #[test]
    fn what_a_retired_key_signed_verifies_under_the_jwks_after_a_rotation() {
        let dir = tempfile::tempdir().unwrap();
        let old = IssuerKey::generate("credential-1");
        let token = old.sign("dc+sd-jwt", &json!({"iss": "x"}));
        // The operator pastes the private JWK by mistake: only the public point is kept.
        let mut pasted = old.jwk();
        pasted["d"] = json!("c2VjcmV0");
        let path = dir.path().join("credential-1.jwk");
        std::fs::write(&path, pasted.to_string()).unwrap();
        let retired = RetiredKey::read(&path).unwrap();
        assert_eq!(
            (retired.kid(), retired.jwk.get("d")),
            ("credential-1", None)
        );
        let new = IssuerKey::generate("credential-2");
        let jwks = Jwks::new(&new, std::slice::from_ref(&retired)).unwrap();
        assert_eq!(
            jwks.json()["keys"][0],
            new.jwk(),
            "the signing key comes first"
        );
        assert!(verify_compact(&token, "dc+sd-jwt", jwks.json()).is_ok());
        assert_eq!(
            verify_compact(&token, "dc+sd-jwt", &json!({"keys": [new.jwk()]})).unwrap_err(),
            JwsError::UnknownKey(Some("credential-1".into())),
            "without it the old credential no longer verifies"
        );
        let again = IssuerKey::generate("credential-1");
        assert!(matches!(
            Jwks::new(&again, std::slice::from_ref(&retired)),
            Err(CredentialKeyError::KidTwice(kid)) if kid == "credential-1"
        ));
        assert!(Jwks::new(&new, &[retired.clone(), retired]).is_err());
    }

    #[test]
    fn a_retired_key_file_that_is_no_public_p256_jwk_is_refused_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let key = IssuerKey::generate("credential-1");
        let mut no_kid = key.jwk();
        no_kid.as_object_mut().unwrap().remove("kid");
        let mut other_curve = key.jwk();
        other_curve["crv"] = json!("P-384");
        let pem = key.key.to_pkcs8_pem(LineEnding::LF).unwrap().to_string();
        for (name, body) in [
            ("no-kid", no_kid.to_string()),
            ("p384", other_curve.to_string()),
            ("pem", pem),
            ("twice", r#"{"kid": "a", "kid": "b"}"#.to_string()),
        ] {
            let path = dir.path().join(name);
            std::fs::write(&path, body).unwrap();
            let err = RetiredKey::read(&path).unwrap_err();
            assert!(err.to_string().contains(name), "{name}: {err}");
        }
        assert!(matches!(
            RetiredKey::read(&dir.path().join("absent")),
            Err(CredentialKeyError::Read { .. })
        ));
    }

    #[test]
    fn the_key_file_round_trips_and_is_never_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys/credential.pem");
        let key = IssuerKey::generate("vc-1");
        key.write(&path).unwrap();
        let read = IssuerKey::read(&path, "vc-1").unwrap();
        assert_eq!(read.jwk(), key.jwk());
        assert!(key.write(&path).is_err());
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
