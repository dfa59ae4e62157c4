//! Signed notes, verifier keys, checkpoints and Ed25519 cosignatures, written for the tests from
//! the C2SP texts alone (c2sp.org/signed-note, tlog-checkpoint, tlog-cosignature), not from
//! Jol's code: the tests' second implementation of the formats the node speaks.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use ed25519_dalek::{Signer, SigningKey, Verifier, VerifyingKey};
use sha2::{Digest, Sha256};

/// Signature type of an Ed25519 note signature (signed-note).
pub const ED25519: u8 = 0x01;
/// Signature type of an Ed25519 cosignature/v1 (tlog-cosignature).
pub const COSIGNATURE: u8 = 0x04;

/// Why a note, vkey or checkpoint was not read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Malformed {
    #[error("a note is UTF-8 without control characters other than newline")]
    Characters,
    #[error("no blank line before the signatures, or they do not end in a newline")]
    NoSignatureBlock,
    #[error("a signature line is not `— <name> <base64>`")]
    SignatureLine,
    #[error("a vkey is `<name>+<8 hex>+<base64(type || key)>` with a 32-byte Ed25519 key")]
    Vkey,
    #[error("a checkpoint's text is origin, size and root lines, then non-empty extensions")]
    Checkpoint,
}

/// A key name: non-empty, without spaces or `+` (signed-note).
fn is_key_name(name: &str) -> bool {
    !name.is_empty() && !name.contains(|c: char| c.is_whitespace() || c == '+')
}

/// `SHA-256(name || 0x0A || type || public key)[:4]`.
pub fn key_id(name: &str, kind: u8, key: &VerifyingKey) -> [u8; 4] {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update([b'\n', kind]);
    h.update(key.as_bytes());
    let digest: [u8; 32] = h.finalize().into();
    [digest[0], digest[1], digest[2], digest[3]]
}

/// A verifier key: a name, a signature type and an Ed25519 public key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vkey {
    pub name: String,
    pub kind: u8,
    pub key: VerifyingKey,
}

impl Vkey {
    /// `<name>+<hex key id>+<base64(type || key)>`.
    pub fn encode(&self) -> String {
        let mut material = vec![self.kind];
        material.extend_from_slice(self.key.as_bytes());
        format!(
            "{}+{}+{}",
            self.name,
            hex(&self.id()),
            STANDARD.encode(material)
        )
    }

    pub fn id(&self) -> [u8; 4] {
        key_id(&self.name, self.kind, &self.key)
    }

    /// Read a vkey, refusing one whose key id is not the one its name, type and key give.
    pub fn parse(text: &str) -> Result<Vkey, Malformed> {
        let mut parts = text.trim_end().splitn(3, '+');
        let (Some(name), Some(id), Some(material)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(Malformed::Vkey);
        };
        let material = STANDARD.decode(material).map_err(|_| Malformed::Vkey)?;
        let (&kind, key) = material.split_first().ok_or(Malformed::Vkey)?;
        let key: [u8; 32] = key.try_into().map_err(|_| Malformed::Vkey)?;
        let key = VerifyingKey::from_bytes(&key).map_err(|_| Malformed::Vkey)?;
        let vkey = Vkey {
            name: name.to_string(),
            kind,
            key,
        };
        if !is_key_name(name) || id != hex(&vkey.id()) {
            return Err(Malformed::Vkey);
        }
        Ok(vkey)
    }

    /// Whether `sig` (a note's signature line) is by this key, and verifies over `text`.
    /// `None` when the line is not this key's (name or id differ): a note ignores it.
    pub fn verifies(&self, text: &str, sig: &SignatureLine) -> Option<bool> {
        if sig.name != self.name || sig.id() != Some(self.id()) {
            return None;
        }
        let body = &sig.bytes[4..];
        Some(match self.kind {
            ED25519 => ed25519(body).is_some_and(|s| self.key.verify(text.as_bytes(), &s).is_ok()),
            COSIGNATURE => cosigned(body).is_some_and(|(time, s)| {
                self.key
                    .verify(cosigned_message(time, text).as_bytes(), &s)
                    .is_ok()
            }),
            _ => false,
        })
    }
}

fn ed25519(bytes: &[u8]) -> Option<ed25519_dalek::Signature> {
    Some(ed25519_dalek::Signature::from_bytes(bytes.try_into().ok()?))
}

/// A cosignature's `timestamped_signature`: 8-byte big-endian time, 64-byte signature.
fn cosigned(bytes: &[u8]) -> Option<(u64, ed25519_dalek::Signature)> {
    let (time, sig) = bytes.split_at_checked(8)?;
    let time = u64::from_be_bytes(time.try_into().ok()?);
    (time < 1 << 63).then_some(())?;
    Some((time, ed25519(sig)?))
}

/// What a cosignature/v1 signs: `cosignature/v1\ntime <t>\n` and the note text.
fn cosigned_message(time: u64, text: &str) -> String {
    format!("cosignature/v1\ntime {time}\n{text}")
}

/// Lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A signer: a key name and an Ed25519 key, signing notes (type 0x01) or cosigning (0x04).
pub struct NoteKey {
    pub name: String,
    pub key: SigningKey,
}

impl NoteKey {
    /// A fresh random key under `name`.
    pub fn generate(name: &str) -> NoteKey {
        NoteKey {
            name: name.to_string(),
            key: SigningKey::from_bytes(&rand::random()),
        }
    }

    pub fn vkey(&self, kind: u8) -> Vkey {
        Vkey {
            name: self.name.clone(),
            kind,
            key: self.key.verifying_key(),
        }
    }

    /// The signature line of an Ed25519 note signature over `text`.
    pub fn sign(&self, text: &str) -> String {
        let sig = self.key.sign(text.as_bytes()).to_bytes();
        self.line(ED25519, &sig)
    }

    /// The signature line of a cosignature/v1 over `text` at `time` (POSIX seconds).
    pub fn cosign(&self, text: &str, time: u64) -> String {
        let sig = self.key.sign(cosigned_message(time, text).as_bytes());
        let mut stamped = time.to_be_bytes().to_vec();
        stamped.extend_from_slice(&sig.to_bytes());
        self.line(COSIGNATURE, &stamped)
    }

    fn line(&self, kind: u8, sig: &[u8]) -> String {
        let mut bytes = self.vkey(kind).id().to_vec();
        bytes.extend_from_slice(sig);
        format!("— {} {}\n", self.name, STANDARD.encode(bytes))
    }
}

/// One signature line of a note.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureLine {
    pub name: String,
    /// The decoded signature: key id (4 bytes) and the signature proper.
    pub bytes: Vec<u8>,
}

impl SignatureLine {
    pub fn id(&self) -> Option<[u8; 4]> {
        self.bytes.get(..4)?.try_into().ok()
    }
}

/// A signed note split into its text and signature lines (nothing verified yet).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    /// The text, with its final newline, without the blank line.
    pub text: String,
    pub signatures: Vec<SignatureLine>,
}

impl Note {
    pub fn parse(note: &str) -> Result<Note, Malformed> {
        if note.chars().any(|c| c < ' ' && c != '\n') {
            return Err(Malformed::Characters);
        }
        let split = note.rfind("\n\n").ok_or(Malformed::NoSignatureBlock)?;
        let (text, lines) = (&note[..split + 1], &note[split + 2..]);
        if lines.is_empty() || !lines.ends_with('\n') {
            return Err(Malformed::NoSignatureBlock);
        }
        let signatures = lines
            .lines()
            .map(|line| {
                let rest = line.strip_prefix("— ").ok_or(Malformed::SignatureLine)?;
                let (name, b64) = rest.split_once(' ').ok_or(Malformed::SignatureLine)?;
                let bytes = STANDARD.decode(b64).map_err(|_| Malformed::SignatureLine)?;
                if !is_key_name(name) || bytes.len() < 5 {
                    return Err(Malformed::SignatureLine);
                }
                Ok(SignatureLine {
                    name: name.to_string(),
                    bytes,
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(Note {
            text: text.to_string(),
            signatures,
        })
    }
}

/// A checkpoint's text (tlog-checkpoint).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub origin: String,
    pub size: u64,
    pub root: [u8; 32],
    pub extensions: Vec<String>,
}

impl Checkpoint {
    pub fn parse(text: &str) -> Result<Checkpoint, Malformed> {
        let body = text.strip_suffix('\n').ok_or(Malformed::Checkpoint)?;
        let mut lines = body.split('\n');
        let (Some(origin), Some(size), Some(root)) = (lines.next(), lines.next(), lines.next())
        else {
            return Err(Malformed::Checkpoint);
        };
        let extensions: Vec<String> = lines.map(str::to_string).collect();
        if origin.is_empty() || extensions.iter().any(String::is_empty) {
            return Err(Malformed::Checkpoint);
        }
        Ok(Checkpoint {
            origin: origin.to_string(),
            size: decimal(size).ok_or(Malformed::Checkpoint)?,
            root: hash(root).ok_or(Malformed::Checkpoint)?,
            extensions,
        })
    }

    /// The note text: origin, size, root, extensions, each ending in a newline.
    pub fn text(&self) -> String {
        let mut text = format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            STANDARD.encode(self.root)
        );
        for line in &self.extensions {
            text.push_str(line);
            text.push('\n');
        }
        text
    }
}

/// An ASCII decimal with no leading zeroes (`0` itself allowed).
pub fn decimal(text: &str) -> Option<u64> {
    let canonical = !text.is_empty()
        && text.bytes().all(|b| b.is_ascii_digit())
        && (text == "0" || !text.starts_with('0'));
    canonical.then(|| text.parse().ok()).flatten()
}

/// A base64 (standard) SHA-256 hash.
pub fn hash(text: &str) -> Option<[u8; 32]> {
    STANDARD.decode(text).ok()?.try_into().ok()
}
