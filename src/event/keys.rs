//! Ed25519 signing keys on disk: PKCS#8 PEM for the private key, SPKI PEM for the public one.
//!
//! A private key file is written with mode 0600 and never leaves the node that made it.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use base64::Engine;
use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use ed25519_dalek::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey};
use ed25519_dalek::{SigningKey, VerifyingKey};
use rand::RngCore;

/// Why a key could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// A key file could not be read.
    #[error("cannot read key file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A key file could not be written.
    #[error("cannot write key file {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A key file is not an Ed25519 key in PEM.
    #[error("key file {path} is not an Ed25519 {kind} key in PEM: {detail}")]
    Format {
        /// The file.
        path: PathBuf,
        /// Which key: private (PKCS#8) or public (SPKI).
        kind: &'static str,
        /// The parser's message.
        detail: String,
    },
    /// The key file exists already.
    #[error("refusing to overwrite existing key file {0}")]
    Exists(PathBuf),
}

/// A fresh signing key from the operating system's random source.
pub fn generate() -> SigningKey {
    let mut secret = [0u8; 32];
    rand::rng().fill_bytes(&mut secret);
    SigningKey::from_bytes(&secret)
}

/// The private key as PKCS#8 PEM.
pub(crate) fn private_pem(key: &SigningKey) -> String {
    key.to_pkcs8_pem(LineEnding::LF)
        .map(|pem| pem.to_string())
        .unwrap_or_default()
}

/// The public key as SPKI PEM.
pub fn public_pem(key: &VerifyingKey) -> String {
    key.to_public_key_pem(LineEnding::LF).unwrap_or_default()
}

/// The raw public key, base64url without padding (as in a JWK's `x`).
pub(crate) fn public_b64(key: &VerifyingKey) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(key.as_bytes())
}

/// Parse a raw base64url public key (as [`public_b64`] writes it).
pub(crate) fn public_from_b64(s: &str) -> Option<VerifyingKey> {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s)
        .ok()?;
    VerifyingKey::from_bytes(&bytes.try_into().ok()?).ok()
}

/// A raw Ed25519 public key as the trust manifest writes it (base64url, [`public_b64`]),
/// decoded once when the manifest is read: checking a page of events then costs no point
/// decompression per event. Text that is not a usable key (bad base64url, not a point on the
/// curve, a weak key) is kept as written and verifies nothing. Two keys are equal when their
/// text is; the text is what is serialized back, so a manifest re-serializes as it was signed.
#[derive(Debug, Clone)]
pub struct RawPublicKey {
    text: String,
    key: Option<VerifyingKey>,
}

impl RawPublicKey {
    /// The manifest's text of a public key.
    pub fn of(key: &VerifyingKey) -> RawPublicKey {
        RawPublicKey::from_text(public_b64(key))
    }

    fn from_text(text: String) -> RawPublicKey {
        let key = public_from_b64(&text).filter(|k| !k.is_weak());
        RawPublicKey { text, key }
    }

    /// The key, unless the text is not a usable Ed25519 public key.
    pub(crate) fn key(&self) -> Option<&VerifyingKey> {
        self.key.as_ref()
    }
}

impl PartialEq for RawPublicKey {
    fn eq(&self, other: &RawPublicKey) -> bool {
        self.text == other.text
    }
}

impl Eq for RawPublicKey {}

impl serde::Serialize for RawPublicKey {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

impl<'de> serde::Deserialize<'de> for RawPublicKey {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<RawPublicKey, D::Error> {
        String::deserialize(d).map(RawPublicKey::from_text)
    }
}

/// Write a private key (mode 0600) and refuse to replace an existing one.
pub fn write_private(path: &Path, key: &SigningKey) -> Result<(), KeyError> {
    write_new(path, private_pem(key).as_bytes(), 0o600)
}

/// Write a public key (mode 0644) and refuse to replace an existing one.
pub fn write_public(path: &Path, key: &VerifyingKey) -> Result<(), KeyError> {
    write_new(path, public_pem(key).as_bytes(), 0o644)
}

/// Write `contents` to a new file with `mode` (its folder made), refusing to replace one.
pub(crate) fn write_new(path: &Path, contents: &[u8], mode: u32) -> Result<(), KeyError> {
    use std::os::unix::fs::OpenOptionsExt;
    if path.exists() {
        return Err(KeyError::Exists(path.to_path_buf()));
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir).map_err(|source| KeyError::Write {
            path: path.to_path_buf(),
            source,
        })?;
    }
    let write = || -> std::io::Result<()> {
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(path)?;
        f.write_all(contents)?;
        f.sync_all()
    };
    write().map_err(|source| KeyError::Write {
        path: path.to_path_buf(),
        source,
    })
}

fn read(path: &Path) -> Result<String, KeyError> {
    fs::read_to_string(path).map_err(|source| KeyError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// Read a PKCS#8 PEM private key.
pub fn read_private(path: &Path) -> Result<SigningKey, KeyError> {
    SigningKey::from_pkcs8_pem(&read(path)?).map_err(|e| KeyError::Format {
        path: path.to_path_buf(),
        kind: "private (PKCS#8)",
        detail: e.to_string(),
    })
}

/// Read an SPKI PEM public key.
pub fn read_public(path: &Path) -> Result<VerifyingKey, KeyError> {
    VerifyingKey::from_public_key_pem(&read(path)?).map_err(|e| KeyError::Format {
        path: path.to_path_buf(),
        kind: "public (SPKI)",
        detail: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_through_pem_files() {
        let dir = tempfile::tempdir().unwrap();
        let key = generate();
        let private = dir.path().join("k.pem");
        let public = dir.path().join("k.pub.pem");
        write_private(&private, &key).unwrap();
        write_public(&public, &key.verifying_key()).unwrap();
        assert_eq!(read_private(&private).unwrap().to_bytes(), key.to_bytes());
        assert_eq!(read_public(&public).unwrap(), key.verifying_key());
        assert!(matches!(
            write_private(&private, &key),
            Err(KeyError::Exists(_))
        ));
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(&private).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let b64 = public_b64(&key.verifying_key());
        assert_eq!(public_from_b64(&b64), Some(key.verifying_key()));
    }

    #[test]
    fn a_raw_public_key_is_decoded_once_and_written_back_as_read() {
        let key = generate().verifying_key();
        let raw: RawPublicKey =
            serde_json::from_value(serde_json::json!(public_b64(&key))).unwrap();
        assert_eq!(raw.key(), Some(&key));
        assert_eq!(raw, RawPublicKey::of(&key));
        assert_eq!(
            serde_json::to_value(&raw).unwrap(),
            serde_json::json!(public_b64(&key))
        );
        // Not a key: kept as written, verifies nothing.
        for text in ["not base64!", "AAAA", &public_b64(&VerifyingKey::default())] {
            let raw: RawPublicKey = serde_json::from_value(serde_json::json!(text)).unwrap();
            assert_eq!(raw.key(), None, "{text}");
            assert_eq!(serde_json::to_value(&raw).unwrap(), serde_json::json!(text));
        }
    }

    #[test]
    fn a_public_key_is_not_a_private_key() {
        let dir = tempfile::tempdir().unwrap();
        let public = dir.path().join("k.pub.pem");
        write_public(&public, &generate().verifying_key()).unwrap();
        assert!(matches!(
            read_private(&public),
            Err(KeyError::Format { .. })
        ));
    }
}
