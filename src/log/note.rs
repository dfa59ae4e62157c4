//! Signed notes (c2sp.org/signed-note): a text ending in a newline, a blank line, then one or
//! more signature lines `— <key name> base64(key id || signature)`. Checkpoints
//! ([`super::checkpoint`]) are notes, and witnesses' co-signatures are note signatures.
//!
//! Owns: the strict parse of a note and of a signature line, verifier keys
//! (`<name>+<hex key id>+base64(type || key)`), key ids, and the two signature types Jol uses:
//! Ed25519 over the note text (type 0x01) and the Ed25519 `cosignature/v1` of
//! c2sp.org/tlog-cosignature (type 0x04, an 8-byte timestamp then the signature over
//! `cosignature/v1\ntime <t>\n` and the text). Signatures by keys the verifier does not know are
//! ignored, as the spec says; one by a known key that fails refuses the whole note.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use ed25519_dalek::{Signature as EdSignature, Signer, SigningKey, Verifier, VerifyingKey};
use sha2::{Digest, Sha256};

/// The largest note this node parses (text and signatures): a checkpoint with its co-signatures
/// is a few hundred bytes, and [`MAX_SIGNATURES`] lines of the largest kind fit with room.
pub const MAX_NOTE_BYTES: usize = 64 * 1024;
/// The most signature lines a note may carry (the spec asks for at least 16; Go's verifier takes
/// 100).
pub const MAX_SIGNATURES: usize = 100;

/// The em dash and space that begin a signature line.
const SIGNATURE_PREFIX: &str = "\u{2014} ";

/// Why a note, a signature line or a verifier key was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoteError {
    /// Over [`MAX_NOTE_BYTES`].
    #[error("the note is larger than {MAX_NOTE_BYTES} bytes")]
    TooLarge,
    /// Not UTF-8, or a control character.
    #[error("the note is not UTF-8 text without control characters other than newline")]
    NotText,
    /// No signature block.
    #[error("the note has no blank line followed by signature lines ending in a newline")]
    NoSignatureBlock,
    /// Over [`MAX_SIGNATURES`].
    #[error("the note carries more than {MAX_SIGNATURES} signatures")]
    TooManySignatures,
    /// A signature line is malformed.
    #[error("a signature line is not `— <key name> <base64>`: {0}")]
    BadSignatureLine(String),
    /// A key name is not valid.
    #[error("a key name is empty or holds a space or `+`")]
    BadKeyName,
    /// A verifier key is malformed.
    #[error("not a verifier key `<name>+<8 hex>+<base64>`: {0}")]
    BadVerifierKey(String),
    /// A known key's signature fails.
    #[error("the signature by {0} (a known key) does not verify")]
    BadSignature(String),
    /// No signature by a known key.
    #[error("no signature by a known key")]
    NoKnownSignature,
}

/// A note signature type this node knows (c2sp.org/signed-note, "Signature types").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyType {
    /// 0x01: Ed25519 over the note text (a log's signature of its checkpoint).
    Ed25519,
    /// 0x04: a timestamped Ed25519 `cosignature/v1` (c2sp.org/tlog-cosignature).
    Cosignature,
}

impl KeyType {
    /// The type's identifier byte.
    pub fn byte(self) -> u8 {
        match self {
            KeyType::Ed25519 => 0x01,
            KeyType::Cosignature => 0x04,
        }
    }

    fn of(byte: u8) -> Option<KeyType> {
        match byte {
            0x01 => Some(KeyType::Ed25519),
            0x04 => Some(KeyType::Cosignature),
            _ => None,
        }
    }
}

/// Whether `name` may name a key: non-empty, no Unicode space, no `+`.
pub fn valid_key_name(name: &str) -> bool {
    !name.is_empty() && !name.chars().any(|c| c.is_whitespace() || c == '+')
}

/// `SHA-256(name || "\n" || type || key)[:4]`, big-endian.
pub fn key_id(name: &str, key_type: KeyType, key: &VerifyingKey) -> u32 {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update(b"\n");
    h.update([key_type.byte()]);
    h.update(key.as_bytes());
    let d = h.finalize();
    u32::from_be_bytes([d[0], d[1], d[2], d[3]])
}

/// The message a `cosignature/v1` at `time` signs for a note text.
fn cosigned_message(time: u64, text: &str) -> Vec<u8> {
    format!("cosignature/v1\ntime {time}\n{text}").into_bytes()
}

/// A public key a note is checked with, by name and key id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifierKey {
    name: String,
    id: u32,
    key_type: KeyType,
    key: VerifyingKey,
}

impl VerifierKey {
    /// The key `key` under `name`, of `key_type`.
    pub fn new(name: &str, key_type: KeyType, key: VerifyingKey) -> Result<VerifierKey, NoteError> {
        if !valid_key_name(name) {
            return Err(NoteError::BadKeyName);
        }
        Ok(VerifierKey {
            name: name.to_string(),
            id: key_id(name, key_type, &key),
            key_type,
            key,
        })
    }

    /// The key's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The key id.
    pub fn id(&self) -> u32 {
        self.id
    }

    /// The signature type the key makes.
    pub fn key_type(&self) -> KeyType {
        self.key_type
    }

    /// Whether `signature` (by this key's name and id) verifies over `text`; for a
    /// co-signature, the time it states.
    fn verify(&self, text: &str, signature: &[u8]) -> Option<Option<u64>> {
        match self.key_type {
            KeyType::Ed25519 => {
                let sig = EdSignature::from_slice(signature).ok()?;
                self.key.verify(text.as_bytes(), &sig).ok().map(|()| None)
            }
            KeyType::Cosignature => {
                let (time, sig) = signature.split_first_chunk::<8>()?;
                let time = u64::from_be_bytes(*time);
                if time > i64::MAX as u64 {
                    return None;
                }
                let sig = EdSignature::from_slice(sig).ok()?;
                let message = cosigned_message(time, text);
                self.key.verify(&message, &sig).ok().map(|()| Some(time))
            }
        }
    }
}

impl std::str::FromStr for VerifierKey {
    type Err = NoteError;
    fn from_str(s: &str) -> Result<VerifierKey, NoteError> {
        let bad = |why: &str| NoteError::BadVerifierKey(why.to_string());
        let mut parts = s.splitn(3, '+');
        let (Some(name), Some(hex), Some(b64)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(bad("three parts separated by `+`"));
        };
        if !valid_key_name(name) {
            return Err(NoteError::BadKeyName);
        }
        let id = (hex.len() == 8 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
            .then(|| u32::from_str_radix(hex, 16).ok())
            .flatten()
            .ok_or_else(|| bad("the key id is not 8 hex digits"))?;
        let raw = STANDARD
            .decode(b64)
            .map_err(|_| bad("the key is not base64"))?;
        let (&type_byte, key) = raw.split_first().ok_or_else(|| bad("empty key"))?;
        let key_type = KeyType::of(type_byte).ok_or_else(|| {
            bad("the signature type is neither Ed25519 (0x01) nor cosignature/v1 (0x04)")
        })?;
        let key: [u8; 32] = key
            .try_into()
            .map_err(|_| bad("an Ed25519 key is 32 bytes"))?;
        let key = VerifyingKey::from_bytes(&key).map_err(|_| bad("not an Ed25519 public key"))?;
        let vkey = VerifierKey::new(name, key_type, key)?;
        if vkey.id != id {
            return Err(bad("the key id is not the hash of the name and key"));
        }
        Ok(vkey)
    }
}

impl std::fmt::Display for VerifierKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut raw = vec![self.key_type.byte()];
        raw.extend_from_slice(self.key.as_bytes());
        write!(f, "{}+{:08x}+{}", self.name, self.id, STANDARD.encode(raw))
    }
}

/// One signature line of a note.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoteSignature {
    /// The signer's key name.
    pub name: String,
    /// The signer's key id.
    pub id: u32,
    /// The signature after the key id.
    pub bytes: Vec<u8>,
}

impl NoteSignature {
    /// Parse one line, without its newline.
    pub fn parse_line(line: &str) -> Result<NoteSignature, NoteError> {
        let bad = || NoteError::BadSignatureLine(line.chars().take(80).collect());
        let rest = line.strip_prefix(SIGNATURE_PREFIX).ok_or_else(bad)?;
        let (name, b64) = rest.split_once(' ').ok_or_else(bad)?;
        if !valid_key_name(name) {
            return Err(NoteError::BadKeyName);
        }
        let raw = STANDARD.decode(b64).map_err(|_| bad())?;
        if raw.len() < 5 {
            return Err(bad());
        }
        let (id, bytes) = raw.split_at(4);
        Ok(NoteSignature {
            name: name.to_string(),
            id: u32::from_be_bytes([id[0], id[1], id[2], id[3]]),
            bytes: bytes.to_vec(),
        })
    }

    /// Signature lines, each ending in a newline (a witness's answer), at most
    /// [`MAX_NOTE_BYTES`] and [`MAX_SIGNATURES`] (counted while splitting, so a huge answer
    /// never becomes a huge list).
    pub fn parse_lines(text: &str) -> Result<Vec<NoteSignature>, NoteError> {
        if text.len() > MAX_NOTE_BYTES {
            return Err(NoteError::TooLarge);
        }
        let body = text.strip_suffix('\n').ok_or(NoteError::NoSignatureBlock)?;
        let mut lines = body.split('\n');
        let parsed = lines
            .by_ref()
            .take(MAX_SIGNATURES)
            .map(NoteSignature::parse_line)
            .collect::<Result<Vec<_>, _>>()?;
        if lines.next().is_some() {
            return Err(NoteError::TooManySignatures);
        }
        Ok(parsed)
    }

    /// The time a `cosignature/v1` states, read without checking it: the first 8 bytes of a
    /// signature of that type's length (8 + 64). For a co-signature already verified when it
    /// was kept; any other signature may give a meaningless number or `None`.
    pub fn stated_time(&self) -> Option<u64> {
        let (time, sig) = self.bytes.split_first_chunk::<8>()?;
        (sig.len() == 64).then(|| u64::from_be_bytes(*time))
    }

    /// The line, with its newline.
    pub fn line(&self) -> String {
        let mut raw = self.id.to_be_bytes().to_vec();
        raw.extend_from_slice(&self.bytes);
        format!("{SIGNATURE_PREFIX}{} {}\n", self.name, STANDARD.encode(raw))
    }
}

/// A signed note: its text (ending in a newline) and its signatures, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    text: String,
    signatures: Vec<NoteSignature>,
}

/// A signature a verifier key checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The signer's key name.
    pub name: String,
    /// The signer's key id.
    pub id: u32,
    /// The time a co-signature states.
    pub time: Option<u64>,
}

impl Note {
    /// A note of `text` (which must end in a newline and hold no control character other than
    /// newline) signed by nobody yet.
    pub fn new(text: String) -> Result<Note, NoteError> {
        if !text.ends_with('\n') || text.chars().any(|c| c < ' ' && c != '\n') {
            return Err(NoteError::NotText);
        }
        Ok(Note {
            text,
            signatures: Vec::new(),
        })
    }

    /// Parse a note strictly (c2sp.org/signed-note): UTF-8 without control characters but
    /// newline, the text separated from one or more signature lines by the last blank line,
    /// at most [`MAX_NOTE_BYTES`] and [`MAX_SIGNATURES`].
    pub fn parse(bytes: &[u8]) -> Result<Note, NoteError> {
        if bytes.len() > MAX_NOTE_BYTES {
            return Err(NoteError::TooLarge);
        }
        let all = std::str::from_utf8(bytes).map_err(|_| NoteError::NotText)?;
        if all.chars().any(|c| c < ' ' && c != '\n') {
            return Err(NoteError::NotText);
        }
        let split = all.rfind("\n\n").ok_or(NoteError::NoSignatureBlock)?;
        let (text, sigs) = (&all[..=split], &all[split + 2..]);
        if sigs.is_empty() {
            return Err(NoteError::NoSignatureBlock);
        }
        Ok(Note {
            text: text.to_string(),
            signatures: NoteSignature::parse_lines(sigs)?,
        })
    }

    /// The note's text, with its final newline.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The signature lines, in order.
    pub fn signatures(&self) -> &[NoteSignature] {
        &self.signatures
    }

    /// Add a signature line (a witness's co-signature), unless the note has it already or is
    /// full.
    pub fn add(&mut self, signature: NoteSignature) -> Result<(), NoteError> {
        if self.signatures.contains(&signature) {
            return Ok(());
        }
        if self.signatures.len() >= MAX_SIGNATURES {
            return Err(NoteError::TooManySignatures);
        }
        self.signatures.push(signature);
        Ok(())
    }

    /// Sign with an Ed25519 key (type 0x01) under `name`.
    pub fn sign(&mut self, name: &str, key: &SigningKey) -> Result<(), NoteError> {
        let vkey = VerifierKey::new(name, KeyType::Ed25519, key.verifying_key())?;
        let sig = key.sign(self.text.as_bytes());
        self.add(NoteSignature {
            name: vkey.name,
            id: vkey.id,
            bytes: sig.to_bytes().to_vec(),
        })
    }

    /// A `cosignature/v1` of this note by `key` under `name`, at `time` (POSIX seconds).
    pub fn cosign(
        &self,
        name: &str,
        key: &SigningKey,
        time: u64,
    ) -> Result<NoteSignature, NoteError> {
        let vkey = VerifierKey::new(name, KeyType::Cosignature, key.verifying_key())?;
        let sig = key.sign(&cosigned_message(time, &self.text));
        let mut bytes = time.to_be_bytes().to_vec();
        bytes.extend_from_slice(&sig.to_bytes());
        Ok(NoteSignature {
            name: vkey.name,
            id: vkey.id,
            bytes,
        })
    }

    /// The note with only the signatures by `keys` (matched by name and id, each line once):
    /// after [`Note::verify`] with the same keys, the lines that verified and no others.
    pub fn signed_by(&self, keys: &[VerifierKey]) -> Note {
        let mut signatures: Vec<NoteSignature> = Vec::new();
        for sig in &self.signatures {
            let known = keys.iter().any(|k| k.name == sig.name && k.id == sig.id);
            if known && !signatures.contains(sig) {
                signatures.push(sig.clone());
            }
        }
        Note {
            text: self.text.clone(),
            signatures,
        }
    }

    /// Check the signatures by `known` keys: every one that matches a known key's name and id
    /// must verify (else the whole note is refused), others are ignored, and at least one
    /// must be there. Returns those checked, in order. A line repeated exactly is checked once
    /// (a note of a hundred copies of one line costs one verification, not a hundred).
    pub fn verify(&self, known: &[VerifierKey]) -> Result<Vec<Verified>, NoteError> {
        let mut verified: Vec<Verified> = Vec::new();
        for (i, sig) in self.signatures.iter().enumerate() {
            let Some(key) = known.iter().find(|k| k.name == sig.name && k.id == sig.id) else {
                continue;
            };
            if self.signatures[..i].contains(sig) {
                continue;
            }
            let time = key
                .verify(&self.text, &sig.bytes)
                .ok_or_else(|| NoteError::BadSignature(sig.name.clone()))?;
            if !verified
                .iter()
                .any(|v| v.name == sig.name && v.id == sig.id)
            {
                verified.push(Verified {
                    name: sig.name.clone(),
                    id: sig.id,
                    time,
                });
            }
        }
        if verified.is_empty() {
            return Err(NoteError::NoKnownSignature);
        }
        Ok(verified)
    }

    /// The note as sent: text, blank line, signature lines.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = self.text.clone();
        out.push('\n');
        for s in &self.signatures {
            out.push_str(&s.line());
        }
        out.into_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PETER: &str = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
    const PETER_TEXT: &str = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n";
    const PETER_SIG: &str = "— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";

    /// Go's sumdb/note private key for PeterNeumann (type byte, then the seed).
    fn peter_key() -> SigningKey {
        let raw = STANDARD
            .decode("AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz")
            .unwrap();
        SigningKey::from_bytes(&raw[1..].try_into().unwrap())
    }

    #[test]
    fn go_sumdb_note_vector_signs_and_verifies_byte_for_byte() {
        let vkey: VerifierKey = PETER.parse().unwrap();
        assert_eq!(vkey.to_string(), PETER);
        assert_eq!(vkey.id(), 0xc74f20a3);
        assert_eq!(
            VerifierKey::new(
                "PeterNeumann",
                KeyType::Ed25519,
                peter_key().verifying_key()
            )
            .unwrap(),
            vkey
        );
        let mut note = Note::new(PETER_TEXT.into()).unwrap();
        note.sign("PeterNeumann", &peter_key()).unwrap();
        let expected = format!("{PETER_TEXT}\n{PETER_SIG}");
        assert_eq!(String::from_utf8(note.to_bytes()).unwrap(), expected);
        let parsed = Note::parse(expected.as_bytes()).unwrap();
        assert_eq!(parsed.text(), PETER_TEXT);
        assert_eq!(parsed.verify(&[vkey]).unwrap().len(), 1);
    }

    #[test]
    fn the_spec_example_note_verifies_with_its_vkey() {
        let vkey: VerifierKey =
            "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k"
                .parse()
                .unwrap();
        let note = "This is an example message.\n\n— example.com/foo Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM=\n";
        let parsed = Note::parse(note.as_bytes()).unwrap();
        assert_eq!(parsed.verify(&[vkey]).unwrap()[0].name, "example.com/foo");
    }

    #[test]
    fn unknown_signatures_are_ignored_a_bad_known_one_refuses_the_note() {
        let vkey: VerifierKey = PETER.parse().unwrap();
        let other = "— EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=\n";
        let both = format!("{PETER_TEXT}\n{other}{PETER_SIG}");
        assert!(Note::parse(both.as_bytes())
            .unwrap()
            .verify(std::slice::from_ref(&vkey))
            .is_ok());
        let only_other = format!("{PETER_TEXT}\n{other}");
        assert_eq!(
            Note::parse(only_other.as_bytes())
                .unwrap()
                .verify(std::slice::from_ref(&vkey)),
            Err(NoteError::NoKnownSignature)
        );
        let altered = format!("{}\n{PETER_SIG}", PETER_TEXT.replace("think", "thought"));
        assert_eq!(
            Note::parse(altered.as_bytes()).unwrap().verify(&[vkey]),
            Err(NoteError::BadSignature("PeterNeumann".into()))
        );
    }

    #[test]
    fn malformed_notes_are_refused_each_for_its_reason() {
        let sig = PETER_SIG;
        for (note, why) in [
            (format!("{PETER_TEXT}{sig}"), NoteError::NoSignatureBlock),
            (format!("{PETER_TEXT}\n"), NoteError::NoSignatureBlock),
            (
                format!("{PETER_TEXT}\n{}", sig.trim_end()),
                NoteError::NoSignatureBlock,
            ),
            (format!("a\tb\n\n{sig}"), NoteError::NotText),
            (
                format!("{PETER_TEXT}\n{}", sig.replace('—', "-")),
                NoteError::BadSignatureLine(
                    sig.replace('—', "-").trim_end().chars().take(80).collect(),
                ),
            ),
            (
                format!("{PETER_TEXT}\n— Peter+Neumann AAAAAAA=\n"),
                NoteError::BadKeyName,
            ),
            (
                format!("{PETER_TEXT}\n{}", sig.repeat(MAX_SIGNATURES + 1)),
                NoteError::TooManySignatures,
            ),
            ("x".repeat(MAX_NOTE_BYTES + 1), NoteError::TooLarge),
        ] {
            assert_eq!(Note::parse(note.as_bytes()), Err(why), "{note:.60}");
        }
        assert!(Note::parse(b"\xff\n\n").is_err());
        assert_eq!(Note::new("no newline".into()), Err(NoteError::NotText));
    }

    /// A witness's answer is read up to the HTTP client's 64 MiB bound: its signature lines are
    /// counted as they are split, and an answer larger than a note is refused before any split
    /// (64 MiB of newlines would otherwise become a vector of 64 million lines).
    #[test]
    fn signature_lines_are_bounded_before_they_are_split() {
        let newlines = "\n".repeat(MAX_NOTE_BYTES + 1);
        assert_eq!(
            NoteSignature::parse_lines(&newlines),
            Err(NoteError::TooLarge)
        );
        let many = PETER_SIG.repeat(MAX_SIGNATURES + 1);
        assert_eq!(
            NoteSignature::parse_lines(&many),
            Err(NoteError::TooManySignatures)
        );
        assert_eq!(NoteSignature::parse_lines(PETER_SIG).unwrap().len(), 1);
    }

    #[test]
    fn verifier_keys_parse_strictly() {
        for bad in [
            "PeterNeumann+c74f20a3",
            "PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
            "PeterNeumann+c74f20a+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
            "PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
            "Peter Neumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
            "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10",
        ] {
            assert!(bad.parse::<VerifierKey>().is_err(), "{bad}");
        }
    }

    #[test]
    fn a_cosignature_verifies_with_its_type_04_key_and_states_its_time() {
        let key = SigningKey::from_bytes(&[7; 32]);
        let mut note = Note::new("example.com/log\n2\nAAAA\n".into()).unwrap();
        note.sign("example.com/log", &peter_key()).unwrap();
        let cosig = note
            .cosign("witness.example/w1", &key, 1_679_315_147)
            .unwrap();
        note.add(cosig.clone()).unwrap();
        let witness = VerifierKey::new(
            "witness.example/w1",
            KeyType::Cosignature,
            key.verifying_key(),
        )
        .unwrap();
        let reparsed: VerifierKey = witness.to_string().parse().unwrap();
        assert_eq!(reparsed, witness);
        let checked = Note::parse(&note.to_bytes())
            .unwrap()
            .verify(&[witness])
            .unwrap();
        assert_eq!(checked[0].time, Some(1_679_315_147));
        // The same key as a plain note key (type 0x01) has another id: the line is not its.
        let plain =
            VerifierKey::new("witness.example/w1", KeyType::Ed25519, key.verifying_key()).unwrap();
        assert_eq!(note.verify(&[plain]), Err(NoteError::NoKnownSignature));
        assert_eq!(cosig.stated_time(), Some(1_679_315_147));
        assert_eq!(NoteSignature::parse_lines(&cosig.line()).unwrap(), [cosig]);
        // A plain Ed25519 signature (64 bytes) has no time of its shape.
        assert_eq!(note.signatures()[0].stated_time(), None);
    }
}
