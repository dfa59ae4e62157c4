//! Checkpoints of a node's Merkle log as c2sp.org/tlog-checkpoint signed notes, and witnesses'
//! `cosignature/v1` co-signatures of them (c2sp.org/tlog-cosignature).
//!
//! A node's log has the origin `<member id>/jol-log` ([`log_origin`]); its checkpoint body is
//! the origin, the size and the base64 root, then two extension lines for the side logs,
//! `jol-quarantine <size> <root>` and `jol-access <size> <root>`. The node's Ed25519
//! event-signing key signs it as a note (type 0x01, key name = the origin), so anyone with the
//! manifest, or with the verifier key `jol log vkey` prints, can check it. The same key
//! co-signs other members' checkpoints as the witness `<member id>/jol-witness`
//! ([`witness_name`]; type 0x04, whose message starts `cosignature/v1`, so the two never sign
//! the same bytes). Two checkpoints that cannot both be true are a fork ([`judge`]).

use std::time::Duration;

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use ed25519_dalek::SigningKey;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use tokio::sync::watch;

use super::note::{KeyType, Note, NoteError, NoteSignature, VerifierKey};
use crate::event::identifiers::MemberId;
use crate::merkle::{self, Hash};
use crate::store::{SideLog, SideLogTree, Store};
use crate::trust::manifest::Manifest;

/// What follows the member id in its log's origin.
const LOG_SUFFIX: &str = "/jol-log";
/// What follows the member id in its witness's name.
const WITNESS_SUFFIX: &str = "/jol-witness";

/// The origin of `member`'s log: `<member id>/jol-log`.
pub fn log_origin(member: &MemberId) -> String {
    format!("{member}{LOG_SUFFIX}")
}

/// The cosigner name of `member`'s witness: `<member id>/jol-witness`.
pub fn witness_name(member: &MemberId) -> String {
    format!("{member}{WITNESS_SUFFIX}")
}

/// The member whose log `origin` names, if it names one.
pub fn member_of_origin(origin: &str) -> Option<MemberId> {
    origin.strip_suffix(LOG_SUFFIX)?.parse().ok()
}

/// A Merkle tree's size and root.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TreeHead {
    /// How many leaves.
    pub size: u64,
    /// The RFC 9162 root of those leaves.
    pub root: Hash,
}

/// The statement a checkpoint makes about a node's logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// The log's origin line (`<member id>/jol-log`).
    pub origin: String,
    /// How many events the log holds.
    pub size: u64,
    /// The event log's RFC 9162 root.
    pub root: Hash,
    /// The quarantine log (`jol-quarantine` extension line).
    pub quarantine: TreeHead,
    /// The access log (`jol-access` extension line).
    pub access: TreeHead,
}

/// Why a checkpoint or co-signature was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckpointError {
    /// The note itself is malformed.
    #[error("not a signed note: {0}")]
    Note(NoteError),
    /// The note's text is not a Jol checkpoint.
    #[error("not a Jol checkpoint body: {0}")]
    Body(&'static str),
    /// The origin names no member's log.
    #[error("the origin {0:?} is not the log of a member of the manifest")]
    UnknownOrigin(String),
    #[error("{0} has no Ed25519 event key valid now: a member whose keys are not Ed25519 (not yet migrated) cannot sign notes")]
    /// The member has no key that can sign a note now.
    NoNoteKey(MemberId),
    /// No valid signature by the origin's keys.
    #[error("the checkpoint's signature is not by a valid key of its origin: {0}")]
    Signature(NoteError),
}

/// How much of an origin a refusal repeats: whoever sent a note chose it, up to the note's size.
const ORIGIN_SAID: usize = 200;

/// An origin as a refusal, a log line or a quarantine record repeats it: at most
/// [`ORIGIN_SAID`] characters.
pub(crate) fn said_origin(origin: &str) -> String {
    origin.chars().take(ORIGIN_SAID).collect()
}

/// A hash as proofs and checkpoints in JSON write it (base64url).
pub fn encode_hash(h: &Hash) -> String {
    URL_SAFE_NO_PAD.encode(h)
}

/// A hash written as [`encode_hash`] writes it.
pub fn decode_hash(s: &str) -> Option<Hash> {
    URL_SAFE_NO_PAD.decode(s).ok()?.try_into().ok()
}

/// A hash as notes, tiles' neighbours and tlog-proofs write it (standard base64, padded).
pub fn encode_std(h: &Hash) -> String {
    STANDARD.encode(h)
}

/// A hash written as [`encode_std`] writes it.
pub fn decode_std(s: &str) -> Option<Hash> {
    STANDARD.decode(s).ok()?.try_into().ok()
}

/// A decimal with no leading zero (but `0`).
pub(crate) fn parse_size(s: &str) -> Option<u64> {
    let canonical = s == "0" || (!s.starts_with('0') && !s.is_empty());
    (canonical && s.bytes().all(|b| b.is_ascii_digit()))
        .then(|| s.parse().ok())
        .flatten()
}

/// The side logs, in the order a checkpoint states them.
pub const SIDE_LOGS: [SideLog; 2] = [SideLog::Quarantine, SideLog::Access];

/// A side log's name: its checkpoint line's first word, and what a proof request's `log=` says.
pub fn side_log_name(log: SideLog) -> &'static str {
    match log {
        SideLog::Quarantine => "jol-quarantine",
        SideLog::Access => "jol-access",
    }
}

/// The side log `name` names ([`side_log_name`]).
pub fn side_log_named(name: &str) -> Option<SideLog> {
    SIDE_LOGS.into_iter().find(|l| side_log_name(*l) == name)
}

impl Checkpoint {
    /// The size and root this checkpoint states for a side log.
    pub fn side(&self, log: SideLog) -> TreeHead {
        match log {
            SideLog::Quarantine => self.quarantine,
            SideLog::Access => self.access,
        }
    }

    /// The member whose log this is, if the origin names one.
    pub fn member(&self) -> Option<MemberId> {
        member_of_origin(&self.origin)
    }

    /// The note text (c2sp.org/tlog-checkpoint).
    pub fn body(&self) -> String {
        format!(
            "{}\n{}\n{}\njol-quarantine {} {}\njol-access {} {}\n",
            self.origin,
            self.size,
            encode_std(&self.root),
            self.quarantine.size,
            encode_std(&self.quarantine.root),
            self.access.size,
            encode_std(&self.access.root),
        )
    }

    /// Parse a note text as [`Checkpoint::body`] writes it, strictly.
    pub fn parse_body(text: &str) -> Result<Checkpoint, CheckpointError> {
        let body = text
            .strip_suffix('\n')
            .ok_or(CheckpointError::Body("no final newline"))?;
        let lines: Vec<&str> = body.split('\n').collect();
        let [origin, size, root, quarantine, access] = lines[..] else {
            return Err(CheckpointError::Body(
                "not five lines: origin, size, root, jol-quarantine, jol-access",
            ));
        };
        if origin.is_empty() || origin.chars().any(|c| c.is_whitespace() || c == '+') {
            return Err(CheckpointError::Body(
                "the origin is empty or holds a space or `+`",
            ));
        }
        let side = |line: &str, name: &str| -> Result<TreeHead, CheckpointError> {
            let bad = CheckpointError::Body("a side log line is not `<name> <size> <base64 root>`");
            let rest = line.strip_prefix(name).and_then(|r| r.strip_prefix(' '));
            let (size, root) = rest.and_then(|r| r.split_once(' ')).ok_or(bad.clone())?;
            Ok(TreeHead {
                size: parse_size(size).ok_or(bad.clone())?,
                root: decode_std(root).ok_or(bad)?,
            })
        };
        Ok(Checkpoint {
            origin: origin.to_string(),
            size: parse_size(size).ok_or(CheckpointError::Body(
                "the size is not a decimal without leading zeros",
            ))?,
            root: decode_std(root).ok_or(CheckpointError::Body(
                "the root is not a base64 SHA-256 hash",
            ))?,
            quarantine: side(quarantine, side_log_name(SideLog::Quarantine))?,
            access: side(access, side_log_name(SideLog::Access))?,
        })
    }
}

/// A checkpoint with the note it was read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedCheckpoint {
    /// What it states.
    pub checkpoint: Checkpoint,
    /// The note, with every signature it carried.
    pub note: Note,
}

/// Sign a checkpoint with the node's key: the note, with the log's signature only.
pub fn sign(c: &Checkpoint, key: &SigningKey) -> Vec<u8> {
    let mut note = Note::new(c.body()).expect("a checkpoint body is note text");
    note.sign(&c.origin, key)
        .expect("an origin is a valid key name");
    note.to_bytes()
}

/// Read a signed checkpoint without checking its signatures (what this node stored itself).
pub fn read(bytes: &[u8]) -> Result<SignedCheckpoint, CheckpointError> {
    let note = Note::parse(bytes).map_err(CheckpointError::Note)?;
    let checkpoint = Checkpoint::parse_body(note.text())?;
    Ok(SignedCheckpoint { checkpoint, note })
}

/// When a member's keys must be valid to sign a note.
#[derive(Debug, Clone, Copy)]
pub enum KeysAt {
    /// At this time (a live checkpoint: now).
    Time(OffsetDateTime),
    /// Any key of the member not revoked (an audit of stored checkpoints signed by keys since
    /// rotated out).
    NotRevoked,
}

impl KeysAt {
    /// The keys valid now: what a live checkpoint or co-signature is checked with.
    pub fn now() -> KeysAt {
        KeysAt::Time(OffsetDateTime::now_utc())
    }
}

/// `member`'s Ed25519 event keys valid `at`, as note verifier keys of type `key_type` under
/// `name`.
fn member_keys(
    manifest: &Manifest,
    member: &MemberId,
    name: &str,
    key_type: KeyType,
    at: KeysAt,
) -> Result<Vec<VerifierKey>, CheckpointError> {
    let entries = manifest
        .member(member)
        .map(|m| m.signing_keys.as_slice())
        .unwrap_or_default();
    let keys: Vec<VerifierKey> = entries
        .iter()
        .filter(|e| match at {
            KeysAt::Time(t) => {
                e.not_before <= t && t <= e.not_after && e.revoked.is_none_or(|r| t < r)
            }
            KeysAt::NotRevoked => e.revoked.is_none() && e.revoked_after_sequence.is_none(),
        })
        .filter_map(|e| e.public_key.key())
        .filter_map(|k| VerifierKey::new(name, key_type, *k).ok())
        .collect();
    if keys.is_empty() {
        return Err(CheckpointError::NoNoteKey(member.clone()));
    }
    Ok(keys)
}

/// The verifier keys of `member`'s log (its Ed25519 event keys under its origin).
pub fn log_keys(
    manifest: &Manifest,
    member: &MemberId,
    at: KeysAt,
) -> Result<Vec<VerifierKey>, CheckpointError> {
    member_keys(manifest, member, &log_origin(member), KeyType::Ed25519, at)
}

/// The cosigner keys of `member`'s witness valid `at` (its Ed25519 event keys as
/// `cosignature/v1` keys under its witness name): a live co-signature is checked with the keys
/// valid now, stored evidence with any key not revoked, as the log's own signature is.
pub fn witness_keys(manifest: &Manifest, member: &MemberId, at: KeysAt) -> Vec<VerifierKey> {
    member_keys(
        manifest,
        member,
        &witness_name(member),
        KeyType::Cosignature,
        at,
    )
    .unwrap_or_default()
}

/// Verify a checkpoint note by its origin's log keys valid `at`: the origin must be the log of
/// a member of the manifest, and a signature by one of its keys must verify (signatures by
/// other keys, witnesses' among them, are ignored).
pub fn verify_at(
    bytes: &[u8],
    manifest: &Manifest,
    at: KeysAt,
) -> Result<SignedCheckpoint, CheckpointError> {
    verified(bytes, manifest, at).map(|(signed, _)| signed)
}

/// [`verify_at`], and the log keys it checked with.
fn verified(
    bytes: &[u8],
    manifest: &Manifest,
    at: KeysAt,
) -> Result<(SignedCheckpoint, Vec<VerifierKey>), CheckpointError> {
    let signed = read(bytes)?;
    let member = signed
        .checkpoint
        .member()
        .filter(|m| manifest.member(m).is_some())
        .ok_or_else(|| CheckpointError::UnknownOrigin(said_origin(&signed.checkpoint.origin)))?;
    let keys = log_keys(manifest, &member, at)?;
    signed
        .note
        .verify(&keys)
        .map_err(CheckpointError::Signature)?;
    Ok((signed, keys))
}

/// [`verify_at`] with the keys valid now.
pub fn verify(bytes: &[u8], manifest: &Manifest) -> Result<SignedCheckpoint, CheckpointError> {
    verify_at(bytes, manifest, KeysAt::now())
}

/// [`verify`], the note keeping only the log's own signature lines (those checked): what a
/// witness records of a submitted checkpoint, without the lines of keys nobody checked that a
/// submitter may have added.
pub fn verify_log_signed(
    bytes: &[u8],
    manifest: &Manifest,
) -> Result<SignedCheckpoint, CheckpointError> {
    let (mut signed, keys) = verified(bytes, manifest, KeysAt::now())?;
    signed.note = signed.note.signed_by(&keys);
    Ok(signed)
}

/// This node's `cosignature/v1` of a checkpoint note, as its witness, dated now.
pub fn cosign(note: &Note, me: &MemberId, key: &SigningKey) -> NoteSignature {
    let now = OffsetDateTime::now_utc().unix_timestamp().max(0) as u64;
    note.cosign(&witness_name(me), key, now)
        .expect("a witness name is a valid key name")
}

/// The digest a stored co-signature is kept with: the note text it signs, so a co-signature
/// of an earlier checkpoint of the same size (the side logs grew) is never served with a
/// later one.
pub fn text_digest(text: &str) -> [u8; 32] {
    Sha256::digest(text.as_bytes()).into()
}

/// Keep a witness's co-signature line of the checkpoint whose text is `text`.
pub fn keep_cosignature(
    store: &Store,
    size: u64,
    text: &str,
    signature: &NoteSignature,
) -> Result<(), crate::store::StoreError> {
    let mut value = text_digest(text).to_vec();
    value.extend_from_slice(signature.line().as_bytes());
    store.put_cosignature(size, &signature.name, &value)
}

/// The latest checkpoint with every co-signature this node holds for it: the note as served.
/// A co-signature dated past the clock skew ahead of now is left out: none is kept so since
/// such were refused, but a store may hold one kept before.
pub fn latest_cosigned(store: &Store) -> Result<Option<Vec<u8>>, crate::store::StoreError> {
    let Some((size, bytes)) = store.latest_checkpoint()? else {
        return Ok(None);
    };
    let mut signed = read(&bytes).map_err(|_| crate::store::StoreError::Corrupt("checkpoint"))?;
    let digest = text_digest(signed.note.text());
    let now = OffsetDateTime::now_utc().unix_timestamp();
    for kept in store.cosignatures(size)? {
        let Some(line) = kept.strip_prefix(&digest[..]) else {
            continue; // a co-signature of an earlier checkpoint of this size
        };
        let line = std::str::from_utf8(line).unwrap_or_default();
        let Ok(sig) = NoteSignature::parse_line(line.trim_end_matches('\n')) else {
            continue;
        };
        if sig
            .stated_time()
            .is_some_and(|t| seconds_ahead(t, now).is_some())
        {
            continue;
        }
        let _ = signed.note.add(sig);
    }
    Ok(Some(signed.note.to_bytes()))
}

/// How far a co-signature dated `time` is ahead of `now` (both Unix seconds), if that is more
/// than two clocks may differ ([`crate::event::CLOCK_SKEW`]). A witness's clock that far ahead
/// would date its statement when it could not yet have made it; tlog-cosignature lets a
/// verifier refuse such a co-signature, and this node neither keeps nor serves one.
pub(crate) fn seconds_ahead(time: u64, now: i64) -> Option<u64> {
    let ahead = i128::from(time) - i128::from(now);
    (ahead > i128::from(crate::event::CLOCK_SKEW.whole_seconds()))
        .then(|| u64::try_from(ahead).unwrap_or(u64::MAX))
}

/// What a witness concluded about a new checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Witnessed {
    /// Nothing seen before, or it extends what was: co-sign it.
    Consistent,
    /// The same size and root as the last one seen (its side logs may have grown).
    Unchanged,
    /// The two signed notes cannot both be true, whoever presents them: one size with two roots
    /// (of the log or a side log), or one log grown while another shrank.
    Fork(String),
    /// An older checkpoint than the last one seen (no head larger, one smaller): a fork only when
    /// the log presents it as its latest, since anyone may replay its old notes.
    Stale(String),
    /// The consistency proof does not show the new tree extends the last one: a fork only when
    /// the log itself sent the proof.
    BadProof(String),
}

/// The log and its side logs as a checkpoint states them, each with its extension name.
pub(crate) fn heads(c: &Checkpoint) -> [(&'static str, TreeHead); 3] {
    [
        (
            "log",
            TreeHead {
                size: c.size,
                root: c.root,
            },
        ),
        (side_log_name(SideLog::Quarantine), c.quarantine),
        (side_log_name(SideLog::Access), c.access),
    ]
}

/// How one of a log's heads (the event log's, or a side log's) moved from one checkpoint to
/// another.
pub(crate) enum HeadMove {
    /// The same size and root.
    Same,
    /// It grew: whether from the same history, only a consistency proof says.
    Grew,
    /// It shrank: why (an older note, or a fork if another head grew).
    Shrank(String),
    /// Two roots for one size: why.
    Forked(String),
}

/// How the head `name` moved from `was` to `now`.
pub(crate) fn head_move(name: &str, was: TreeHead, now: TreeHead) -> HeadMove {
    if now.size == was.size && now.root != was.root {
        HeadMove::Forked(format!(
            "two different roots for size {} of the {name}",
            now.size
        ))
    } else if now.size < was.size {
        HeadMove::Shrank(format!(
            "the {name} shrank from {} to {} entries",
            was.size, now.size
        ))
    } else if now.size > was.size {
        HeadMove::Grew
    } else {
        HeadMove::Same
    }
}

/// Compare a new checkpoint with the last one seen, given the consistency proof between them.
/// A log signs checkpoints whose every head (the log and each side log) is at least the last
/// one's, so two notes that disagree at one size, or where one head grew and another shrank,
/// contradict each other; one with every head at most the last one's is older.
pub fn judge(last: Option<&Checkpoint>, new: &Checkpoint, proof: &[Hash]) -> Witnessed {
    let Some(last) = last else {
        return Witnessed::Consistent;
    };
    let (mut shrank, mut grew) = (None, None);
    for ((name, was), (_, now)) in heads(last).into_iter().zip(heads(new)) {
        match head_move(name, was, now) {
            HeadMove::Forked(why) => return Witnessed::Fork(why),
            HeadMove::Shrank(why) => {
                shrank.get_or_insert(why);
            }
            HeadMove::Grew => {
                grew.get_or_insert(name);
            }
            HeadMove::Same => {}
        }
    }
    match (shrank, grew) {
        (Some(why), Some(name)) => return Witnessed::Fork(format!("{why} while the {name} grew")),
        (Some(why), None) => return Witnessed::Stale(why),
        (None, _) => {}
    }
    if new.size == last.size {
        Witnessed::Unchanged
    } else if merkle::verify_consistency(last.size, new.size, &last.root, &new.root, proof) {
        Witnessed::Consistent
    } else {
        Witnessed::BadProof(format!(
            "size {} is not an extension of size {}",
            new.size, last.size
        ))
    }
}

/// Sign a checkpoint every `every` while the flushed log grows, until `stop`.
pub(crate) async fn run(
    store: Store,
    member: MemberId,
    key: SigningKey,
    mut flushed: watch::Receiver<u64>,
    every: Duration,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let size = *flushed.borrow();
        let sides = side_sizes(&store);
        if let Err(e) = sign_if_grown(&store, &member, &key, size) {
            tracing::error!(error = %e, "cannot sign a checkpoint");
        }
        tokio::select! {
            _ = stop.changed() => return,
            _ = tokio::time::sleep(every) => {}
        }
        tokio::select! {
            _ = stop.changed() => return,
            _ = flushed.wait_for(|s| *s > size) => {}
            _ = wait_for_side_logs(&store, sides) => {}
        }
    }
}

fn side_sizes(store: &Store) -> [u64; 2] {
    [SideLog::Quarantine, SideLog::Access].map(|log| store.side_len(log))
}

async fn wait_for_side_logs(store: &Store, seen: [u64; 2]) {
    while side_sizes(store) == seen {
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// The latest checkpoint this node signed, if any.
pub fn latest(store: &Store) -> Result<Option<Checkpoint>, crate::store::StoreError> {
    Ok(store
        .latest_checkpoint()?
        .and_then(|(_, b)| read(&b).ok())
        .map(|s| s.checkpoint))
}

/// Make sure a signed checkpoint covers the first `size` entries of the event log (what an
/// evidence bundle needs): the latest one when it does, so its witnesses' co-signatures stay
/// usable, or else a new one.
pub(crate) fn ensure_covers(
    store: &Store,
    member: &MemberId,
    key: &SigningKey,
    size: u64,
) -> Result<(), crate::store::StoreError> {
    if latest(store)?.is_some_and(|c| c.size >= size) {
        return Ok(());
    }
    sign_if_grown(store, member, key, size)
}

/// Sign a checkpoint of the first `size` log entries and the whole quarantine and access logs, if
/// any of them grew since the last checkpoint. The side logs are flushed first, so a checkpoint
/// never covers what a crash could take back.
pub fn sign_if_grown(
    store: &Store,
    member: &MemberId,
    key: &SigningKey,
    size: u64,
) -> Result<(), crate::store::StoreError> {
    store.flush()?;
    let [quarantine_size, access_size] = side_sizes(store);
    let covered = latest(store)?.is_some_and(|c| {
        c.size >= size && c.quarantine.size >= quarantine_size && c.access.size >= access_size
    });
    if covered || (size == 0 && quarantine_size == 0 && access_size == 0) {
        return Ok(());
    }
    let side = |log, size| {
        merkle::root(&SideLogTree(store, log), size).map(|root| TreeHead { size, root })
    };
    let c = Checkpoint {
        origin: log_origin(member),
        size,
        root: merkle::root(store, size)?,
        quarantine: side(SideLog::Quarantine, quarantine_size)?,
        access: side(SideLog::Access, access_size)?,
    };
    store.put_checkpoint(size, &sign(&c, key))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ckpt(size: u64, root: Hash) -> Checkpoint {
        let empty = TreeHead {
            size: 0,
            root: merkle::empty_root(),
        };
        Checkpoint {
            origin: "a/b/c/d/jol-log".into(),
            size,
            root,
            quarantine: empty,
            access: empty,
        }
    }

    /// Signing and co-signing take a member's names as note key names without checking again:
    /// every character a member id may hold is one a key name may.
    #[test]
    fn every_member_id_names_a_valid_origin_and_witness() {
        let all = "central-server/GOV/A-Za-z0-9'(),-.=?/sub.system=1";
        let member: MemberId = all.parse().unwrap();
        assert!(super::super::note::valid_key_name(&log_origin(&member)));
        assert!(super::super::note::valid_key_name(&witness_name(&member)));
        let key = SigningKey::from_bytes(&[7; 32]);
        let mut c = ckpt(0, merkle::empty_root());
        c.origin = log_origin(&member);
        let signed = read(&sign(&c, &key)).unwrap();
        assert_eq!(signed.checkpoint.origin, c.origin);
        cosign(&signed.note, &member, &key);
    }

    #[test]
    fn a_cosignature_is_ahead_only_past_the_clock_skew() {
        let skew = crate::event::CLOCK_SKEW.whole_seconds() as u64;
        let now = 1_700_000_000i64;
        let at = |ahead: u64| seconds_ahead(now as u64 + ahead, now);
        assert_eq!(at(0), None);
        assert_eq!(at(skew), None);
        assert_eq!(at(skew + 1), Some(skew + 1));
        assert_eq!(seconds_ahead(0, now), None, "the past is not ahead");
        assert_eq!(seconds_ahead(i64::MAX as u64, -1), Some(1u64 << 63));
    }

    #[test]
    fn a_witness_accepts_extensions_and_flags_forks() {
        let tree = merkle::MemoryTree::new((0..20u8).map(|i| merkle::leaf_hash(&[i])));
        let r = |n| merkle::root(&tree, n).unwrap();
        let old = ckpt(7, r(7));
        let new = ckpt(15, r(15));
        let proof = merkle::consistency_proof(&tree, 7, 15).unwrap();
        assert_eq!(judge(None, &new, &[]), Witnessed::Consistent);
        assert_eq!(judge(Some(&old), &new, &proof), Witnessed::Consistent);
        assert_eq!(judge(Some(&old), &ckpt(7, r(7)), &[]), Witnessed::Unchanged);
        assert!(matches!(
            judge(Some(&old), &ckpt(7, r(8)), &[]),
            Witnessed::Fork(_)
        ));
        assert!(matches!(judge(Some(&new), &old, &[]), Witnessed::Stale(_)));
        // A history rewritten after the checkpoint was witnessed.
        let rewritten =
            merkle::MemoryTree::new((0..20u8).map(|i| merkle::leaf_hash(&[i ^ u8::from(i == 3)])));
        let forged = ckpt(15, merkle::root(&rewritten, 15).unwrap());
        let forged_proof = merkle::consistency_proof(&rewritten, 7, 15).unwrap();
        assert!(matches!(
            judge(Some(&old), &forged, &forged_proof),
            Witnessed::BadProof(_)
        ));
    }

    #[test]
    fn a_checkpoint_body_round_trips_and_is_parsed_strictly() {
        let c = ckpt(3, [9; 32]);
        let body = c.body();
        assert!(body.starts_with("a/b/c/d/jol-log\n3\nCQkJ"));
        assert!(body.contains("\njol-quarantine 0 47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n"));
        assert_eq!(Checkpoint::parse_body(&body), Ok(c.clone()));
        for bad in [
            body.replace("\n3\n", "\n03\n"),
            body.replace("\n3\n", "\n-3\n"),
            body.replace("jol-access", "jol-axxess"),
            body.trim_end().to_string(),
            format!("{body}extra\n"),
            body.replace("a/b/c/d/jol-log", "a b"),
        ] {
            assert!(Checkpoint::parse_body(&bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_signed_checkpoint_verifies_with_the_vkey_of_its_origin() {
        let key = SigningKey::from_bytes(&[3; 32]);
        let c = ckpt(3, [9; 32]);
        let bytes = sign(&c, &key);
        let signed = read(&bytes).unwrap();
        let vkey = VerifierKey::new(&c.origin, KeyType::Ed25519, key.verifying_key()).unwrap();
        assert!(signed.note.verify(&[vkey]).is_ok());
        assert_eq!(signed.checkpoint, c);
        assert_eq!(
            member_of_origin(&c.origin),
            Some("a/b/c/d".parse().unwrap())
        );
        assert_eq!(member_of_origin("a/b/c/d"), None);
    }
}
