//! The node's durable storage, behind one narrow interface, on redb (the default, by
//! measurement) or sled 0.34 in a data directory (see [`kv`]), or on PostgreSQL for a member
//! with several replicas (see [`postgres`]).
//!
//! Everything that must change together lives in one ordered table under key prefixes, so a
//! [`WriteBatch`] is applied atomically: an event, its per-source sequence index, its id index and
//! its idempotency record appear together or not at all. Nothing written is durable until
//! [`Store::flush`] returns; callers acknowledge only after that (the writer groups many events
//! into one flush). Rejected input is kept in quarantine, and every read of personal data in the
//! access log; each is numbered, with a Merkle log of its own ([`SideLog`]) that the signed
//! checkpoint covers, so dropping evidence is as detectable as dropping an event.
//!
//! The key spaces, and the only code that builds keys, are in [`keys`]. What is deleted or
//! overwritten stays in the engines' files until [`Store::compact`] rewrites them ([`compact`]).
//!
//! Why long: this is the whole storage interface, every read and write the node makes, in one
//! place; the key spaces (`keys.rs`) and the engines (`kv.rs`) have their own files, and a fifth
//! of this one is the conformance tests both engines must pass.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::budget::Budget;
use crate::event::identifiers::MemberId;

pub mod compact;
mod erasure;
pub(crate) mod faults;
pub(crate) mod keys;
pub mod kv;
mod log;
pub mod packed;
mod persons;
pub mod postgres;
pub(crate) mod recent;
mod redb_engine;
mod reports;

pub use compact::CompactReport;
use keys::Space;
pub use keys::{Meta, SideLog};

use kv::{prefix_end, Kv, KvError, Op, Scan};
pub use kv::{Engine, Location};
use persons::{Kept, Opened, PersonFile};
pub use postgres::PgSettings;

/// Whether a write must be durable before the call returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Durable {
    Yes,
    /// With the next flush.
    Later,
}

/// A storage failure. The text names the operation; the engine's own message follows.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The store could not be opened.
    #[error("cannot open the store at {at}: {source}")]
    Open {
        /// Where it is.
        at: String,
        /// The engine's error.
        source: KvError,
    },
    /// The store is of another engine than the config names.
    #[error("the store at {path} is a {found} store, not {wanted}")]
    WrongEngine {
        /// Where it is.
        path: PathBuf,
        /// Its engine.
        found: Engine,
        /// The config's.
        wanted: Engine,
    },
    /// An operation failed.
    #[error("store {op} failed: {source}")]
    Io {
        /// Which.
        op: &'static str,
        /// The engine's error.
        source: KvError,
    },
    /// A record does not decode: damage, never a default.
    #[error("store holds a damaged record under {0}")]
    Corrupt(&'static str),
    /// The store is being reopened after a failure.
    #[error("the store at {0} is closed (being reopened after a failure)")]
    Closed(String),
    /// Compaction needs the store alone and waited in vain for other users to let go.
    #[error("the store at {at} is still in use after {waited:?}: compaction needs it alone (try again when the node is idle, or stop it and run `jol store compact`)")]
    InUse {
        /// The store.
        at: String,
        /// How long compaction waited.
        waited: std::time::Duration,
    },
}

impl StoreError {
    /// Whether this failure means another replica is the writer (not a storage fault).
    pub(crate) fn is_not_writer(&self) -> bool {
        matches!(
            self,
            StoreError::Io {
                source: KvError::Postgres(postgres::PgError::NotWriter),
                ..
            }
        )
    }
}

/// A failure inside a locked side-log append.
impl From<KvError> for StoreError {
    fn from(source: KvError) -> StoreError {
        StoreError::Io {
            op: "side log",
            source,
        }
    }
}

/// A failure of a per-person file ([`persons`]).
impl From<std::io::Error> for StoreError {
    fn from(e: std::io::Error) -> StoreError {
        StoreError::Io {
            op: "per-person file",
            source: KvError::from(e),
        }
    }
}

fn io(op: &'static str) -> impl FnOnce(KvError) -> StoreError {
    move |source| StoreError::Io { op, source }
}

/// A record as stored: JSON. Every record type is a plain struct, so serializing cannot fail.
fn record<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).unwrap_or_default()
}

/// Entries of a numbered space (the log, a side log) with their numbers; a key without one is
/// damage, named by `what`.
fn numbered(
    entries: Vec<kv::Entry>,
    what: &'static str,
) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
    entries
        .into_iter()
        .map(|(k, v)| Ok((u64_at(&k, 1).ok_or(StoreError::Corrupt(what))?, v)))
        .collect()
}

/// A stored record read back; what does not decode is damage, named by `what`.
fn decode<T: DeserializeOwned>(bytes: &[u8], what: &'static str) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|_| StoreError::Corrupt(what))
}

/// A stored person view, packed ([`packed`]) or as JSON stored before views were packed.
fn decode_view<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, StoreError> {
    let json = packed::unpack(bytes).map_err(|_| StoreError::Corrupt("person view"))?;
    decode(&json, "person view")
}

/// A read of a per-person file that failed.
fn kept_read(e: std::io::Error) -> StoreError {
    io("read")(KvError::from(e))
}

/// The KV key of a person's record of one kind (PostgreSQL's; the embedded engines' before
/// the per-person files).
fn kept_key(kept: Kept, pin: &str) -> Vec<u8> {
    match kept {
        Kept::Views => keys::view(pin),
        Kept::Consents => keys::consent(pin),
    }
}

/// Open the embedded engines' file of one kind of per-person records at what the KV records.
/// A store that records none (created before the files, or new) has its records moved over
/// from the KV. A damaged views file starts over empty, with the projector's cursor at the
/// start of the log (the views are a fold of it); damaged consent states are refused.
fn open_person_file(
    kv: &Kv,
    location: &Location,
    kept: Kept,
) -> Result<Option<std::sync::Arc<PersonFile>>, KvError> {
    let Location::Dir { dir, .. } = location else {
        return Ok(None);
    };
    let opened = match kv.get(&keys::meta(&kept.meta()))? {
        // A file the KV does not know of is the KV's loss, not a store from before the files,
        // unless it is the first move's, cut short (it starts over).
        None if kept == Kept::Consents
            && PersonFile::newest_generation(kept, dir)? > 0
            && kv.get(&keys::meta(&kept.starting()))?.is_none() =>
        {
            return Err(consents_damaged(
                "the store records no file, and one is there",
            ))
        }
        None => return person_file_from_kv(kv, dir, kept).map(|f| Some(std::sync::Arc::new(f))),
        Some(recorded) => match persons::At::decode(&recorded) {
            Some(at) => PersonFile::open(kept, dir, at)?,
            None => Opened::Damaged("the file's recorded length does not decode".into()),
        },
    };
    let file = match (opened, kept) {
        (Opened::Intact(file), _) => file,
        (Opened::Damaged(why), Kept::Views) => {
            tracing::error!(%why, "the views file is damaged, or short after a power loss (its writes are not fdatasynced); projecting the views again from the log");
            let generation = PersonFile::newest_generation(kept, dir)? + 1;
            let fresh = PersonFile::create(kept, dir, generation)?;
            let mut reset = vec![recorded_at(kept, fresh.at()?)];
            reset.extend(views_reset());
            kv.commit(reset)?;
            fresh.delete_other_generations()?;
            fresh
        }
        (Opened::Damaged(why), Kept::Consents) => return Err(consents_damaged(&why)),
    };
    Ok(Some(std::sync::Arc::new(file)))
}

/// What sends the views back to the start of the log: the projector's cursor at 0, and the
/// views marked as being projected again until it reaches the end ([`Meta::ViewsRebuilding`]).
fn views_reset() -> [Op; 2] {
    [
        Op::Put(keys::meta(&Meta::ViewCursor), 0u64.to_be_bytes().to_vec()),
        Op::Put(keys::meta(&Meta::ViewsRebuilding), Vec::new()),
    ]
}

/// The KV's record of where a per-person file stands (its commit point).
fn recorded_at(kept: Kept, at: persons::At) -> Op {
    Op::Put(keys::meta(&kept.meta()), at.encode().to_vec())
}

/// The consent states cannot be read as committed: the node does not start (consent is never
/// taken as absent). Names no person.
fn consents_damaged(why: &str) -> KvError {
    let what = format!(
        "the consent states are damaged ({why}); the file is left as it is: restore the data \
         directory (its KV and consents/ together) from one backup"
    );
    KvError::from(std::io::Error::new(std::io::ErrorKind::InvalidData, what))
}

/// A file of one kind holding the records the KV holds, which are deleted from it in the
/// commit that records the file.
fn person_file_from_kv(kv: &Kv, dir: &Path, kept: Kept) -> Result<PersonFile, KvError> {
    let starting = keys::meta(&kept.starting());
    kv.commit(vec![Op::Put(starting.clone(), Vec::new())])?;
    let file = PersonFile::create(kept, dir, 1)?;
    let prefix = kept_key(kept, "");
    let mut changes = Vec::new();
    for entry in Scan::new(kv, &prefix) {
        let (key, record) = entry?;
        let pin = std::str::from_utf8(&key[prefix.len()..])
            .map_err(|_| KvError::from(std::io::Error::other("a record keyed by no PIN")))?;
        changes.push((pin.to_string(), Some(record)));
    }
    file.write(&changes, |at| {
        let mut ops: Vec<Op> = changes
            .iter()
            .map(|(pin, _)| Op::Delete(kept_key(kept, pin)))
            .collect();
        ops.push(recorded_at(kept, at));
        ops.push(Op::Delete(starting));
        kv.commit(ops)
    })?;
    file.delete_other_generations()?;
    Ok(file)
}

/// Make `dir` and any of its missing parents so that a crash cannot lose them: each folder
/// made is fsynced, and so is the folder holding it (a file made in it is then found after a
/// power loss once it is synced itself).
pub(in crate::store) fn create_dir_durably(dir: &Path) -> std::io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    let parent = dir.parent().filter(|p| !p.as_os_str().is_empty());
    if let Some(parent) = parent {
        create_dir_durably(parent)?;
    }
    match std::fs::create_dir(dir) {
        // Made meanwhile by another opener: as good.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && dir.is_dir() => {}
        Err(e) => return Err(e),
        Ok(()) => {}
    }
    std::fs::File::open(dir)?.sync_all()?;
    match parent {
        Some(parent) => std::fs::File::open(parent)?.sync_all(),
        None => Ok(()),
    }
}

fn u64_at(bytes: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_be_bytes(bytes.get(at..at + 8)?.try_into().ok()?))
}

/// An idempotency record: where the first result is, and a digest of the request that made it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Idempotency {
    pub(crate) position: u64,
    pub(crate) digest: [u8; 32],
}

/// The capability to append to the log: [`WriteBatch::append`] (and the log's cursor, subtree
/// and release writes, and the writer's own state, [`WriteBatch::set_meta`]) and [`Store::apply`]/[`Store::commit`] take one, and only the writer
/// (`crate::write`) makes one. Other crates of the workspace (the tools, the benchmarks, the
/// end-to-end tests) cannot make one at all, so they append through a `write::Publisher`; inside
/// the crate, `tests/layers.rs` checks that only `src/write/` calls [`LogAppend::writer`]. The
/// projector and the side logs write with [`Store::apply_other`] and their own append paths.
///
/// Outside the crate neither way to make one compiles:
///
/// ```compile_fail
/// let _ = jol::store::LogAppend(());
/// ```
///
/// ```compile_fail
/// let _ = jol::store::LogAppend::writer();
/// ```
#[derive(Debug, Clone, Copy)]
pub struct LogAppend(());

impl LogAppend {
    /// The writer's (`crate::write`) alone: `tests/layers.rs` checks that no other code of `src/`
    /// calls it, and outside the crate it does not exist.
    pub(crate) fn writer() -> LogAppend {
        LogAppend(())
    }

    /// For the store's and the receipt's unit tests, which stage appends by hand.
    #[cfg(test)]
    pub(crate) fn for_tests() -> LogAppend {
        LogAppend(())
    }
}

/// One entry of a person's access-log index.
pub(crate) enum Indexed {
    /// The number of an access-log entry.
    Number(u64),
    /// A record from before the access log was numbered, stored in the index itself.
    Record(Vec<u8>),
}

/// One event to append.
pub(crate) struct Append<'a> {
    pub(crate) position: u64,
    pub(crate) source: &'a MemberId,
    pub(crate) sequence: u64,
    pub(crate) id: Uuid,
    pub(crate) jws: &'a [u8],
    /// Its Merkle leaf hash (`crate::log::event_leaf`).
    pub(crate) leaf: crate::merkle::Hash,
    pub(crate) idempotency: Option<(&'a str, [u8; 32])>,
}

/// Appends staged for one atomic apply.
#[derive(Default)]
pub struct WriteBatch {
    ops: Vec<Op>,
    /// Events appended: (position, bytes, leaf hash), in position order.
    events: Vec<(u64, Vec<u8>, crate::merkle::Hash)>,
    /// Perfect subtrees of the event log the writer's frontier completed (kept as keys on
    /// PostgreSQL; the embedded engines' tiles hash their own).
    subtrees: Vec<(u32, u64, crate::merkle::Hash)>,
    /// Events an erasure stripped, with their stripped bytes (their segment records are zeroed
    /// after the commit, and read as these until then).
    erased: Vec<(u64, Vec<u8>)>,
    /// Views stored or deleted (`None`), packed, and consent states: in their own files on
    /// the embedded engines ([`persons`]), keys of the KV on PostgreSQL.
    views: Vec<persons::Change>,
    consents: Vec<persons::Change>,
    len: usize,
}

impl WriteBatch {
    fn put(&mut self, key: Vec<u8>, value: impl AsRef<[u8]>) {
        self.ops.push(Op::Put(key, value.as_ref().to_vec()));
    }

    /// Stage one event of the log with its indexes (the writer's alone: see [`LogAppend`]).
    pub(crate) fn append(&mut self, _: LogAppend, a: Append<'_>) {
        let pos = a.position.to_be_bytes();
        self.events.push((a.position, a.jws.to_vec(), a.leaf));
        self.put(keys::sequence(a.source, a.sequence), pos);
        self.put(keys::id(a.source, &a.id), pos);
        if let Some((k, digest)) = a.idempotency {
            let mut v = pos.to_vec();
            v.extend_from_slice(&digest);
            self.put(keys::idempotency(k), v);
        }
        self.len += 1;
    }

    /// Record a person's current consent (serialized by the caller) with the events that set it.
    pub fn set_consent<T: Serialize>(&mut self, pin: &str, consent: &T) {
        self.consents.push((pin.to_string(), Some(record(consent))));
    }

    /// Delete a person's consent state.
    pub(crate) fn delete_consent(&mut self, pin: &str) {
        self.consents.push((pin.to_string(), None));
    }

    /// Store a person's projected view.
    pub fn set_view<T: Serialize>(&mut self, pin: &str, view: &T) {
        self.views
            .push((pin.to_string(), Some(packed::pack(&record(view)))));
    }

    /// Delete a person's view.
    pub(crate) fn delete_view(&mut self, pin: &str) {
        self.views.push((pin.to_string(), None));
    }

    /// Record that the event at `position` is about `pin`.
    pub(crate) fn index_person(&mut self, pin: &str, position: u64) {
        self.put(keys::person_event(pin, position), []);
    }

    /// Record the hash of a perfect Merkle subtree (see [`crate::merkle`]).
    pub(crate) fn set_subtree(&mut self, _: LogAppend, level: u32, index: u64, hash: &[u8; 32]) {
        self.subtrees.push((level, index, *hash));
    }

    /// Store a named piece of the writer's state with the events it goes with (a publisher's
    /// release cursor: the writer's alone, see [`LogAppend`]).
    pub(crate) fn set_meta(&mut self, _: LogAppend, name: &Meta, value: &[u8]) {
        self.put(keys::meta(name), value);
    }

    /// Record what a credential says of the event (`source`, `id`) it attests.
    pub fn set_attestation<T: Serialize>(&mut self, source: &str, id: &Uuid, attestation: &T) {
        self.put(keys::attestation(source, id), record(attestation));
    }

    /// Store the credential issuer's status list and, when it moved, its cursor in the log.
    pub fn set_credential_state(&mut self, status_list: &[u8], cursor: Option<u64>) {
        self.put(keys::meta(&Meta::StatusList), status_list);
        if let Some(position) = cursor {
            self.put(keys::meta(&Meta::CredentialCursor), position.to_be_bytes());
        }
    }

    /// Store a credential issued to `pin` (and, under its id, whose it is).
    pub fn set_credential<T: Serialize>(&mut self, pin: &str, id: &Uuid, credential: &T) {
        self.put(keys::credential(pin, id), record(credential));
        self.put(keys::credential_holder(id), pin.as_bytes());
    }

    /// Store what revoking credential `id` takes (nothing of its holder): it outlives the copy.
    pub fn set_credential_entry<T: Serialize>(&mut self, id: &Uuid, entry: &T) {
        self.put(keys::credential_entry(id), record(entry));
    }

    /// Every credential copy has its entry now.
    pub fn credential_entries_kept(&mut self) {
        self.put(keys::meta(&Meta::CredentialEntriesKept), [1]);
    }

    /// The views hold the whole log again: they answer persons and KPIs
    /// ([`Meta::ViewsRebuilding`]).
    pub(crate) fn views_rebuilt(&mut self) {
        self.ops
            .push(Op::Delete(keys::meta(&Meta::ViewsRebuilding)));
    }

    /// Store the last log position the view projector folded in, with the views it folded.
    pub(crate) fn set_view_cursor(&mut self, position: u64) {
        self.put(keys::meta(&Meta::ViewCursor), position.to_be_bytes());
    }

    /// Store the latest state of an offer (a vacancy or a course; `kind` is its byte).
    pub(crate) fn set_offer<T: Serialize>(&mut self, kind: u8, id: &str, offer: &T) {
        self.put(keys::offer(kind, id), record(offer));
    }

    /// Record that the own event at `position` about `pin` was withheld from `reader` when it was
    /// published (`released`: a later consent admitted it and it is in the release log).
    pub(crate) fn set_withheld(
        &mut self,
        reader: &MemberId,
        pin: &str,
        position: u64,
        released: bool,
    ) {
        self.put(keys::withheld(reader, pin, position), [u8::from(released)]);
    }

    /// Append `position` to `reader`'s release log as release `number`.
    pub(crate) fn release(&mut self, _: LogAppend, reader: &MemberId, number: u64, position: u64) {
        self.put(keys::release(reader, number), position.to_be_bytes());
    }

    /// Advance the cursor of `source` in the same atomic write as the events received with it.
    pub(crate) fn set_cursor(&mut self, _: LogAppend, source: &MemberId, sequence: u64) {
        self.put(keys::cursor(source), sequence.to_be_bytes());
        self.len += 1;
    }

    /// How many events (and cursors) it stages.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether it stages no event (and no cursor).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// Why something was put in quarantine, and what it was. Its number is the store's to assign:
/// a caller makes a record with [`Quarantined::new`] and cannot set one.
///
/// ```compile_fail
/// fn renumber(q: &mut jol::store::Quarantined) {
///     q.number = 7;
/// }
/// ```
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub(crate) struct Quarantined {
    /// Assigned by the store when it keeps the record ([`Store::quarantine`]); 0 before.
    #[serde(default)]
    number: u64,
    #[serde(with = "time::serde::rfc3339")]
    pub(crate) time: OffsetDateTime,
    /// Where it came from: [`LOCAL_ORIGIN`] or the member id of the peer.
    pub(crate) origin: String,
    /// A stable reason code, e.g. `schema-invalid`, `signature-invalid`.
    pub(crate) reason: String,
    /// Human-readable detail (never personal data).
    pub(crate) detail: serde_json::Value,
    /// The bytes as received (base64 is not needed: stored as lossy UTF-8 text).
    pub(crate) body: String,
}

impl Quarantined {
    /// A record of input refused now, not yet numbered (the store numbers it).
    pub(crate) fn new(
        origin: String,
        reason: String,
        detail: serde_json::Value,
        body: String,
    ) -> Self {
        Quarantined {
            number: 0,
            time: OffsetDateTime::now_utc(),
            origin,
            reason,
            detail,
            body,
        }
    }

    /// Its number in the quarantine log (0 until the store has kept it).
    pub(crate) fn number(&self) -> u64 {
        self.number
    }
}

/// The quarantine origin of what the node's own systems submitted through the local API.
pub(crate) const LOCAL_ORIGIN: &str = "local-api";

/// The most the quarantine holds (`[limits] quarantine_max_records` and
/// `quarantine_max_bytes`): a refused submission that would pass either is refused as
/// [`QuarantineFull`], and nothing already kept is dropped for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuarantineCaps {
    pub(crate) max_records: u64,
    /// Of stored records (each as its JSON).
    pub(crate) max_bytes: u64,
}

impl QuarantineCaps {
    /// No cap (tools and tests that keep everything).
    pub const NONE: QuarantineCaps = QuarantineCaps {
        max_records: u64::MAX,
        max_bytes: u64::MAX,
    };

    /// Whether a record of `bytes` may join what the quarantine `held`.
    fn admit(self, held: QuarantineHeld, bytes: usize) -> bool {
        held.records < self.max_records && held.bytes.saturating_add(bytes as u64) <= self.max_bytes
    }
}

/// What the quarantine holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct QuarantineHeld {
    pub(crate) records: u64,
    pub(crate) bytes: u64,
}

/// The writes that record `share` as what `origin` holds of the quarantine.
fn share_ops(origin: &str, share: QuarantineHeld) -> [Op; 2] {
    let count = |name: Meta, n: u64| Op::Put(keys::meta(&name), n.to_be_bytes().to_vec());
    [
        count(Meta::QuarantinedFrom(origin.to_string()), share.records),
        count(Meta::QuarantinedBytesFrom(origin.to_string()), share.bytes),
    ]
}

/// A record was not kept: the quarantine is at one of its caps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "the quarantine is full: it holds {} records ({} bytes) and keeps at most {} records ({} bytes)",
    held.records, held.bytes, caps.max_records, caps.max_bytes
)]
pub struct QuarantineFull {
    pub(crate) held: QuarantineHeld,
    pub(crate) caps: QuarantineCaps,
}

/// Why a record was not put in quarantine.
#[derive(Debug, thiserror::Error)]
pub(crate) enum QuarantineError {
    #[error(transparent)]
    Full(#[from] QuarantineFull),
    /// The record's origin holds as much of the quarantine as its share allows.
    #[error(
        "the sender's share of the quarantine is full: it holds {} records ({} bytes) and may hold at most {} records ({} bytes)",
        .0.held.records, .0.held.bytes, .0.caps.max_records, .0.caps.max_bytes
    )]
    ShareFull(QuarantineFull),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A failure inside the locked append.
impl From<KvError> for QuarantineError {
    fn from(e: KvError) -> QuarantineError {
        QuarantineError::Store(e.into())
    }
}

/// How long [`Store::compact`] waits for the store's other users to let go of its engine.
pub const COMPACT_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

/// The node's store.
#[derive(Clone)]
pub struct Store {
    /// The open engine; empty while [`Store::reopen`] swaps it.
    slot: std::sync::Arc<std::sync::RwLock<Option<Kv>>>,
    engine: Engine,
    /// Appends to each side log ([`SideLog`] order) are serialized here (the event log has its
    /// writer thread).
    side_logs: std::sync::Arc<[std::sync::Mutex<crate::merkle::Frontier>; 2]>,
    /// The embedded engines' event log (segments and tiles, [`log`]); none on PostgreSQL,
    /// which keeps the log in its table. Replaced with the engine by [`Store::reopen`].
    events: std::sync::Arc<std::sync::RwLock<Option<std::sync::Arc<log::EventLog>>>>,
    /// The embedded engines' files of views and of consent states ([`persons`]); none on
    /// PostgreSQL, which keeps both as keys of its table.
    views: Option<std::sync::Arc<PersonFile>>,
    consents: Option<std::sync::Arc<PersonFile>>,
    /// The lock over what several tasks write about a person ([`PersonStates`]).
    person_states: PersonStates,
    location: Location,
    /// Faults the next durable commits meet (test builds; none in production).
    faults: faults::Faults,
}

/// The lock over what the writer, the projector and the credential issuer write about a
/// person: the consent state and the withheld records (the writer's, read and written again by
/// each round that states consent), the pending erasure (the writer's, merged by each erasure of
/// the person), the issuer's copies of the person's credentials, and the deletion of all of them
/// when the projector finishes an erasure that leaves nothing of the person here. The writer
/// holds it across a round's staging and commit, the projector while it finishes one person,
/// the issuer while it stores a credential: so none writes from a reading another changed in
/// between (an erased consent state brought back, a second erasure's pending record deleted
/// unfinished, a credential stored for a person just forgotten). All of them run in the one
/// process holding the writer role, on the one `Store` it opened (each `Store::open_*` makes a
/// lock of its own).
#[derive(Clone, Default)]
pub struct PersonStates(std::sync::Arc<parking_lot::Mutex<()>>);

impl PersonStates {
    /// Hold the lock until the guard is dropped or [`PersonStates::hand_over`]ed.
    pub fn hold(&self) -> parking_lot::MutexGuard<'_, ()> {
        self.0.lock()
    }

    /// Let go of the lock, to whoever waits for it first: one that takes it again at once
    /// (the projector between two persons) does not keep the writer waiting.
    pub fn hand_over(held: parking_lot::MutexGuard<'_, ()>) {
        parking_lot::MutexGuard::unlock_fair(held);
    }
}

impl Store {
    /// Open the store in `dir` with the engine it was created with, or create one with the
    /// default engine.
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        Store::open_with(dir, Engine::of(dir).unwrap_or_default())
    }

    /// Open the store in `dir`, creating it with `engine` if there is none; an existing store
    /// of the other engine is an error (nothing is converted silently).
    pub fn open_with(dir: &Path, engine: Engine) -> Result<Store, StoreError> {
        Store::open_at(Location::Dir {
            dir: dir.to_path_buf(),
            engine,
            cache_mib: kv::DEFAULT_CACHE_MIB,
        })
    }

    /// Open the store in a PostgreSQL database, creating Jol's schema in an empty one.
    pub(crate) fn open_postgres(settings: &PgSettings) -> Result<Store, StoreError> {
        Store::open_at(Location::Postgres(settings.clone()))
    }

    /// Open the store at `location`. A directory holding a store of another engine is an error
    /// (nothing is converted silently).
    pub(crate) fn open_at(location: Location) -> Result<Store, StoreError> {
        if let Location::Dir { dir, engine, .. } = &location {
            if let Some(found) = Engine::of(dir).filter(|f| f != engine) {
                return Err(StoreError::WrongEngine {
                    path: dir.clone(),
                    found,
                    wanted: *engine,
                });
            }
        }
        let kv = Kv::open_at(&location).map_err(|source| StoreError::Open {
            at: location.to_string(),
            source,
        })?;
        let opened = |kept| {
            open_person_file(&kv, &location, kept).map_err(|source| StoreError::Open {
                at: location.to_string(),
                source,
            })
        };
        let (views, consents) = (opened(Kept::Views)?, opened(Kept::Consents)?);
        let store = Store {
            slot: std::sync::Arc::new(std::sync::RwLock::new(Some(kv))),
            engine: location.engine(),
            side_logs: Default::default(),
            events: Default::default(),
            views,
            consents,
            person_states: PersonStates::default(),
            location,
            faults: Default::default(),
        };
        store.open_event_log()?;
        store.load_side_frontiers()?;
        store.count_quarantine()?;
        Ok(store)
    }

    /// In a store written before the quarantine's bytes, or each origin's records and bytes,
    /// were counted, measure them once. The scan runs before the quarantine's append lock is
    /// taken (on PostgreSQL that lock is a transaction the other replicas' quarantine writes
    /// wait for); under the lock the measure is written if no record was appended meanwhile,
    /// else taken again there.
    fn count_quarantine(&self) -> Result<(), StoreError> {
        let log = SideLog::Quarantine;
        let measured_at = self.side_len(log);
        if measured_at == 0 || self.meta(&Meta::QuarantineSharesCounted)?.is_some() {
            return Ok(());
        }
        let measured = self.measure_quarantine(measured_at)?;
        let _appends = self.side_logs[log as usize]
            .lock()
            .map_err(|_| StoreError::Corrupt("side log lock"))?;
        self.kv()?.locked(&keys::meta(&log.size()), true, |size| {
            if self.meta(&Meta::QuarantineSharesCounted)?.is_some() {
                return Ok(Vec::new()); // another replica counted them meanwhile
            }
            let records = size.and_then(|v| u64_at(&v, 0)).unwrap_or(0);
            let (total, shares) = match records == measured_at {
                true => measured,
                false => self.measure_quarantine(records)?,
            };
            let mut ops = vec![
                Op::Put(
                    keys::meta(&Meta::QuarantineBytes),
                    total.to_be_bytes().to_vec(),
                ),
                Op::Put(keys::meta(&Meta::QuarantineSharesCounted), Vec::new()),
            ];
            for (origin, share) in shares {
                ops.extend(share_ops(&origin, share));
            }
            Ok::<_, StoreError>(ops)
        })
    }

    /// The bytes the quarantine's first `records` take, in all and by origin (records that do
    /// not parse are counted in all, under no origin).
    fn measure_quarantine(
        &self,
        records: u64,
    ) -> Result<(u64, BTreeMap<String, QuarantineHeld>), StoreError> {
        let (mut total, mut shares) = (0u64, BTreeMap::new());
        self.each_quarantined(records, |v| {
            let size = v.len() as u64;
            total += size;
            if let Ok(record) = serde_json::from_slice::<Quarantined>(v) {
                let share: &mut QuarantineHeld = shares.entry(record.origin).or_default();
                share.records += 1;
                share.bytes += size;
            }
        })?;
        Ok((total, shares))
    }

    /// Each of the quarantine's first `records` as stored, oldest first, read a page at a time.
    fn each_quarantined(
        &self,
        records: u64,
        mut each: impl FnMut(&[u8]),
    ) -> Result<(), StoreError> {
        let mut after = 0;
        while after < records {
            let mut page = Budget::new(crate::budget::LISTING_BYTES);
            let entries = self.side_entries_within(SideLog::Quarantine, after, 1024, &mut page)?;
            let Some(&(last, _)) = entries.last() else {
                break;
            };
            entries.iter().for_each(|(_, v)| each(v));
            after = last;
        }
        Ok(())
    }

    /// The PostgreSQL engine under this store, when it is one (for the writer lease and the
    /// change notifications of replicas).
    pub fn postgres(&self) -> Option<std::sync::Arc<postgres::PgKv>> {
        self.kv().ok().and_then(|kv| kv.postgres().cloned())
    }

    /// How long the writer must wait before a commit that erases (PostgreSQL: until the lease
    /// this replica took has run out for its previous holder, whose window may still be read;
    /// the embedded engines never wait).
    pub(crate) fn erasures_wait(&self) -> std::time::Duration {
        self.postgres()
            .map_or(std::time::Duration::ZERO, |pg| pg.erasures_wait())
    }

    fn load_side_frontiers(&self) -> Result<(), StoreError> {
        for log in [SideLog::Quarantine, SideLog::Access] {
            let size = self.side_len(log);
            let frontier = crate::merkle::Frontier::load(&SideLogTree(self, log), size)?;
            if let Ok(mut f) = self.side_logs[log as usize].lock() {
                *f = frontier;
            }
        }
        Ok(())
    }

    /// Close the engine and open it again, for every holder of this store at once. Engines
    /// refuse all work after an I/O error (a full disk, say) until they are reopened; what was
    /// applied but not flushed may be gone afterwards, so callers reload their counters.
    pub(crate) fn reopen(&self) -> Result<(), StoreError> {
        let mut slot = self
            .slot
            .write()
            .map_err(|_| StoreError::Corrupt("store lock"))?;
        if slot.as_ref().is_some_and(|kv| kv.postgres().is_some()) {
            // The pool reconnects by itself, and the lease's epoch cell must stay the one shared.
            drop(slot);
            return self.load_side_frontiers();
        }
        // Until they are read again at what the reopened KV records, the per-person files
        // answer nothing (never consent states older than the events the KV shows).
        for file in self.person_files() {
            file.unsettle();
        }
        drop(slot.take());
        let kv = Kv::open_at(&self.location).map_err(|source| StoreError::Open {
            at: self.location.to_string(),
            source,
        })?;
        *slot = Some(kv);
        drop(slot);
        self.open_event_log()?;
        self.reload_person_files()?;
        self.load_side_frontiers()
    }

    /// Read the per-person files again at what the reopened KV records.
    fn reload_person_files(&self) -> Result<(), StoreError> {
        for kept in Kept::ALL {
            self.settle(kept)?;
        }
        Ok(())
    }

    /// Open the embedded engines' event log at the size the KV committed (cutting what follows
    /// it), move the events of a store written before the segments into them, and finish
    /// zeroing the records of erased events.
    fn open_event_log(&self) -> Result<(), StoreError> {
        let Location::Dir { dir, .. } = &self.location else {
            return Ok(());
        };
        let kv = self.kv()?;
        let opened = || -> Result<log::EventLog, KvError> {
            let committed = kv.get(&keys::meta(&Meta::LogSize))?;
            let committed = committed.and_then(|v| u64_at(&v, 0)).unwrap_or(0);
            let log = log::EventLog::open(&dir.join(log::DIR), committed)?;
            log::migrate_from_kv(&kv, &log)?;
            log::finish_erasures(&kv, &log)?;
            Ok(log)
        };
        let log = opened().map_err(|source| StoreError::Open {
            at: self.location.to_string(),
            source,
        })?;
        *self
            .events
            .write()
            .map_err(|_| StoreError::Corrupt("event log lock"))? = Some(std::sync::Arc::new(log));
        Ok(())
    }

    fn event_log(&self) -> Result<Option<std::sync::Arc<log::EventLog>>, StoreError> {
        Ok(self
            .events
            .read()
            .map_err(|_| StoreError::Corrupt("event log lock"))?
            .clone())
    }

    /// Rewrite the store so that nothing deleted or overwritten is left in its files (see
    /// [`compact`]): an embedded engine is copied entry by entry into a new store that replaces
    /// it; Jol's PostgreSQL tables are rewritten by `VACUUM FULL`. The store stays usable
    /// meanwhile: every other user of this store waits while an embedded engine is rewritten
    /// (and fails with [`StoreError::InUse`] when one keeps its handle past
    /// [`COMPACT_WAIT`]); on PostgreSQL each replica waits while a table is rewritten.
    pub fn compact(&self) -> Result<CompactReport, StoreError> {
        let started = std::time::Instant::now();
        let (dir, engine) = match &self.location {
            Location::Dir { dir, engine, .. } => (dir.clone(), *engine),
            Location::Postgres(_) => {
                let kv = self.kv()?;
                let pg = kv.postgres().ok_or(StoreError::Corrupt("store engine"))?;
                let bytes_before = pg.size_on_disk();
                pg.vacuum_full()
                    .map_err(|e| io("compact")(KvError::from(e)))?;
                return Ok(CompactReport {
                    engine: Engine::Postgres,
                    entries: None,
                    bytes_before,
                    bytes_after: pg.size_on_disk(),
                    took: started.elapsed(),
                });
            }
        };
        let bytes_before = compact::bytes_under(&dir);
        let entries = self.with_engine_alone(|kv| compact::rewrite(kv, &dir, engine))?;
        for kept in Kept::ALL {
            self.rewrite_person_file(kept)?;
        }
        Ok(CompactReport {
            engine,
            entries: Some(entries),
            bytes_before,
            bytes_after: compact::bytes_under(&dir),
            took: started.elapsed(),
        })
    }

    /// Take the embedded engine from every user of this store, wait until no copy of its handle
    /// is left, hand it to `work` (which closes it), and open the store again for everyone,
    /// whether `work` succeeded or not.
    fn with_engine_alone<T>(
        &self,
        work: impl FnOnce(Kv) -> Result<T, KvError>,
    ) -> Result<T, StoreError> {
        let mut slot = self
            .slot
            .write()
            .map_err(|_| StoreError::Corrupt("store lock"))?;
        let kv = slot
            .take()
            .ok_or_else(|| StoreError::Closed(self.location.to_string()))?;
        let waiting = std::time::Instant::now();
        while !kv.held_alone() {
            if waiting.elapsed() > COMPACT_WAIT {
                *slot = Some(kv);
                return Err(StoreError::InUse {
                    at: self.location.to_string(),
                    waited: COMPACT_WAIT,
                });
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        let done = work(kv).map_err(io("compact"));
        let kv = Kv::open_at(&self.location).map_err(|source| StoreError::Open {
            at: self.location.to_string(),
            source,
        })?;
        *slot = Some(kv);
        done
    }

    fn kv(&self) -> Result<Kv, StoreError> {
        self.slot
            .read()
            .ok()
            .and_then(|s| s.clone())
            .ok_or_else(|| StoreError::Closed(self.location.to_string()))
    }

    /// The engine under this store.
    pub fn engine(&self) -> Engine {
        self.engine
    }

    /// Bytes the store takes on disk.
    pub fn size_on_disk(&self) -> u64 {
        let dir = match &self.location {
            Location::Dir { dir, .. } => dir.as_path(),
            Location::Postgres(_) => Path::new(""),
        };
        let log = self.event_log().ok().flatten().map_or(0, |l| l.bytes());
        let persons: u64 = self.person_files().map(PersonFile::bytes).sum();
        self.kv().map_or(0, |kv| kv.size_on_disk(dir)) + log + persons
    }

    fn get_raw(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.kv()?.get(key).map_err(io("read"))
    }

    fn last_under(&self, prefix: &[u8]) -> Result<Option<kv::Entry>, StoreError> {
        self.kv()?
            .last(prefix, &prefix_end(prefix))
            .map_err(io("read"))
    }

    fn scan(&self, prefix: &[u8]) -> impl Iterator<Item = Result<kv::Entry, StoreError>> {
        let (scan, closed) = match self.kv() {
            Ok(kv) => (Some(Scan::new(&kv, prefix)), None),
            Err(e) => (None, Some(Err(e))),
        };
        closed
            .into_iter()
            .chain(scan.into_iter().flatten().map(|r| r.map_err(io("read"))))
    }

    /// Apply staged appends atomically (not yet durable: call [`Store::flush`]).
    pub fn apply(&self, _: LogAppend, batch: WriteBatch) -> Result<(), StoreError> {
        self.write(batch, Durable::Later)
    }

    /// Apply staged appends atomically and make them, with everything applied before, durable
    /// (one write where [`Store::apply`] then [`Store::flush`] may be two). Returns after the
    /// fsync.
    pub(crate) fn commit(&self, _: LogAppend, batch: WriteBatch) -> Result<(), StoreError> {
        self.write(batch, Durable::Yes)
    }

    /// Write a batch. On PostgreSQL its events and subtrees are keys of the one table. On the
    /// embedded engines (see [`log`]) the events and the tiles they complete are appended and
    /// fdatasynced first, then the KV batch records the new log size with the indexes (the
    /// commit point), then the records of erased events are zeroed; a batch that erases is
    /// made durable before that, whatever `durable` says.
    fn write(&self, mut batch: WriteBatch, durable: Durable) -> Result<(), StoreError> {
        let consents = std::mem::take(&mut batch.consents);
        let views = std::mem::take(&mut batch.views);
        self.write_kept(Kept::Consents, consents, batch, |batch| {
            self.write_kept(Kept::Views, views, batch, |batch| {
                self.write_kv(batch, durable)
            })
        })?;
        for kept in Kept::ALL {
            if self
                .person_file(kept)
                .is_some_and(PersonFile::wants_rewrite)
            {
                if let Err(e) = self.rewrite_person_file(kept) {
                    // What was written is committed; the dead records wait for a later rewrite.
                    tracing::error!(error = %e, file = kept.dir(), "rewriting a per-person file failed");
                }
            }
        }
        Ok(())
    }

    /// Read a per-person file again at what the KV records, if a failed write or a reopen
    /// left it unsettled.
    fn settle(&self, kept: Kept) -> Result<(), StoreError> {
        let Some(file) = self.person_file(kept) else {
            return Ok(());
        };
        if !file.is_unsettled() {
            return Ok(());
        }
        let at = self
            .meta(&kept.meta())?
            .as_deref()
            .and_then(persons::At::decode)
            .ok_or(StoreError::Corrupt("per-person file's length"))?;
        Ok(file.reload(at)?)
    }

    fn person_file(&self, kept: Kept) -> Option<&PersonFile> {
        match kept {
            Kept::Views => self.views.as_deref(),
            Kept::Consents => self.consents.as_deref(),
        }
    }

    /// The embedded engines' per-person files (none on PostgreSQL).
    fn person_files(&self) -> impl Iterator<Item = &PersonFile> {
        Kept::ALL
            .into_iter()
            .filter_map(|kept| self.person_file(kept))
    }

    /// Write `changes` of one kind and then `batch` with `then`: on the embedded engines to the
    /// kind's file, whose new length the batch records (the commit point); on PostgreSQL as
    /// keys of the batch.
    fn write_kept(
        &self,
        kept: Kept,
        changes: Vec<persons::Change>,
        mut batch: WriteBatch,
        then: impl FnOnce(WriteBatch) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let Some(file) = self.person_file(kept) else {
            for (pin, record) in changes {
                batch.ops.push(match record {
                    Some(record) => Op::Put(kept_key(kept, &pin), record),
                    None => Op::Delete(kept_key(kept, &pin)),
                });
            }
            return then(batch);
        };
        if changes.is_empty() {
            return then(batch);
        }
        self.settle(kept)?;
        file.write(&changes, |at| {
            batch.ops.push(recorded_at(kept, at));
            then(batch)
        })
    }

    /// Copy the live records of a per-person file into its next generation, recorded durably.
    fn rewrite_person_file(&self, kept: Kept) -> Result<(), StoreError> {
        let Some(file) = self.person_file(kept) else {
            return Ok(());
        };
        let rewritten = file.rewrite(|at| {
            self.kv()?
                .commit(vec![recorded_at(kept, at)])
                .map_err(io("write"))
        });
        if rewritten.is_err() {
            // A failed commit left the file unsettled: read it again at whichever generation
            // the KV now records, so reads need not wait for the next write.
            let _ = self.settle(kept);
        }
        rewritten
    }

    /// [`Store::write`] of everything but the per-person files.
    fn write_kv(&self, batch: WriteBatch, durable: Durable) -> Result<(), StoreError> {
        let kv = self.kv()?;
        let WriteBatch {
            mut ops,
            events,
            subtrees,
            erased,
            ..
        } = batch;
        let Some(log) = self.event_log()? else {
            // The appends go first: an event erased in the batch that appends it (received in
            // the same round as its order) keeps the stripped bytes the batch puts after.
            let appends = events
                .into_iter()
                .map(|(position, bytes, _)| Op::Append(keys::log(position), bytes));
            ops.splice(0..0, appends);
            for (level, index, hash) in subtrees {
                ops.push(Op::Put(keys::subtree(level, index), hash.to_vec()));
            }
            return match durable {
                Durable::Yes => self.commit_point(&kv, ops),
                Durable::Later => kv.apply(ops),
            }
            .map_err(io("write"));
        };
        let size = events.last().map(|e| e.0);
        if let Some(size) = size {
            let records: Vec<(u64, &[u8], crate::merkle::Hash)> = events
                .iter()
                .map(|(p, b, leaf)| (*p, b.as_slice(), *leaf))
                .collect();
            log.append(&records).map_err(|e| io("append")(e.into()))?;
            ops.push(Op::Put(
                keys::meta(&Meta::LogSize),
                size.to_be_bytes().into(),
            ));
        }
        // Readers that learn of the new positions from the KV wait until the log publishes them.
        let publishing = size.map(|_| log.publishing());
        // From here until their records are zeroed, readers get the erased events stripped.
        let erased_positions: Vec<u64> = erased.iter().map(|(p, _)| *p).collect();
        log.erasing(erased);
        let written = match durable == Durable::Yes || !erased_positions.is_empty() {
            true => self.commit_point(&kv, ops),
            false => kv.apply(ops),
        };
        // A failed commit may have landed all the same (sled applies, then flushes): the
        // events stay read as stripped, erring towards hiding, until the writer's repair opens
        // the log again at what the KV holds (and an erasure that landed is zeroed then).
        written.map_err(io("write"))?;
        if let Some(size) = size {
            log.commit(size);
        }
        drop(publishing);
        if let Err(e) = log.zero(&erased_positions) {
            // The erasure is committed; the next open zeroes what is left (`log::finish_erasures`).
            tracing::error!(error = %e, "zeroing erased events in the segments failed");
        }
        Ok(())
    }

    /// The KV commit that makes a write durable: its commit point (where a test's injected
    /// fault strikes, [`faults`]).
    fn commit_point(&self, kv: &Kv, ops: Vec<Op>) -> Result<(), KvError> {
        let injected = || KvError::Io(std::io::Error::other("a fault injected by a test"));
        match self.faults.next() {
            None => kv.commit(ops),
            Some(faults::Fault::Refused) => Err(injected()),
            Some(faults::Fault::LandedButReportedFailed) => {
                kv.commit(ops)?;
                Err(injected())
            }
        }
    }

    /// Test builds: the next durable commit meets `fault` (after those injected before it).
    #[cfg(test)]
    pub(crate) fn inject(&self, fault: faults::Fault) {
        self.faults.inject(fault);
    }

    /// The events of `records` as stored: a live record's bytes; an erased one's stripped bytes
    /// from the KV (left out when the KV has none: the event is missing); a damaged one's from
    /// the KV when it holds them (an erasure torn while zeroing), else as the segment holds them.
    fn resolve(&self, records: Vec<(u64, log::Record)>) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        let elsewhere: Vec<Vec<u8>> = records
            .iter()
            .filter(|(_, r)| !matches!(r, log::Record::Live(_)))
            .map(|(p, _)| keys::log(*p))
            .collect();
        let mut stripped = match elsewhere.is_empty() {
            true => Vec::new(),
            false => self.kv()?.get_many(&elsewhere).map_err(io("read"))?,
        }
        .into_iter();
        Ok(records
            .into_iter()
            .filter_map(|(p, r)| match r {
                log::Record::Live(bytes) => Some((p, bytes)),
                log::Record::Erased => stripped.next().flatten().map(|b| (p, b)),
                log::Record::Damaged(held) => Some((p, stripped.next().flatten().unwrap_or(held))),
            })
            .collect())
    }

    /// The committed events of `first ..= last` from the embedded log (as far as committed: a
    /// range read follows the log's end, it waits for nothing).
    fn log_range(
        &self,
        log: &log::EventLog,
        first: u64,
        last: u64,
    ) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        let records = log.range(first, last).map_err(|e| io("read")(e.into()))?;
        self.resolve(records)
    }

    /// Make everything applied so far durable. Returns after the fsync.
    pub fn flush(&self) -> Result<(), StoreError> {
        self.kv()?.flush().map_err(io("flush"))
    }

    /// The highest position in the log, 0 when empty.
    pub fn last_position(&self) -> Result<u64, StoreError> {
        if let Some(log) = self.event_log()? {
            return Ok(log.size());
        }
        match self.last_under(&Space::Log.all())? {
            Some((k, _)) => u64_at(&k, 1).ok_or(StoreError::Corrupt("log key")),
            None => Ok(0),
        }
    }

    /// The highest sequence stored for `source`, 0 when none.
    pub(crate) fn last_sequence(&self, source: &MemberId) -> Result<u64, StoreError> {
        let prefix = keys::sequences_of(source);
        match self.last_under(&prefix)? {
            Some((k, _)) => u64_at(&k, prefix.len()).ok_or(StoreError::Corrupt("sequence key")),
            None => Ok(0),
        }
    }

    /// The event at `position`.
    pub fn get(&self, position: u64) -> Result<Option<Vec<u8>>, StoreError> {
        let Some(log) = self.event_log()? else {
            return self.get_raw(&keys::log(position));
        };
        // A position asked for by number came from the KV's indexes.
        log.await_published(position);
        Ok(self
            .log_range(&log, position, position)?
            .pop()
            .map(|(_, b)| b))
    }

    /// The stored event `source`/`id`, parsed; `None` when the store holds no such event, an
    /// error when the id index points to nothing or to bytes that do not parse (damage).
    pub(crate) fn event_of(
        &self,
        source: &MemberId,
        id: &Uuid,
    ) -> Result<Option<crate::event::SignedEvent>, StoreError> {
        let Some(position) = self.position_of(source, id)? else {
            return Ok(None);
        };
        let bytes = self
            .get(position)?
            .ok_or(StoreError::Corrupt("id index points to no event"))?;
        crate::event::SignedEvent::from_store(&bytes)
            .map(Some)
            .map_err(|_| StoreError::Corrupt("stored event"))
    }

    /// Where the event with this id is stored.
    pub(crate) fn position_of(
        &self,
        source: &MemberId,
        id: &Uuid,
    ) -> Result<Option<u64>, StoreError> {
        if let Some(v) = self.get_raw(&keys::id(source, id))? {
            return u64_at(&v, 0)
                .map(Some)
                .ok_or(StoreError::Corrupt("id index"));
        }
        // A store written before events were identified by source and id indexes the id alone.
        Ok(self
            .positions_of_id(id)?
            .into_iter()
            .find(|(s, _)| s == source)
            .map(|(_, p)| p))
    }

    /// The own events about `pin` withheld from `reader` at publication: (position, released).
    pub(crate) fn withheld(
        &self,
        reader: &MemberId,
        pin: &str,
    ) -> Result<Vec<(u64, bool)>, StoreError> {
        let prefix = keys::withheld_about(reader, pin);
        self.scan(&prefix)
            .map(|r| {
                let (k, v) = r?;
                let position =
                    u64_at(&k, prefix.len()).ok_or(StoreError::Corrupt("withheld key"))?;
                Ok((position, v.first() == Some(&1)))
            })
            .collect()
    }

    /// Every reader something is withheld from here (released or not), each once. The records
    /// are keyed by reader first: each reader is found by seeking past the one before (a read a
    /// reader, not one a record).
    pub(crate) fn withheld_readers(&self) -> Result<Vec<String>, StoreError> {
        let mut from = keys::Space::Withheld.all();
        let end = kv::prefix_end(&from);
        let mut readers = Vec::new();
        while let Some((key, _)) = self.kv()?.range(&from, &end, 1).map_err(io("read"))?.pop() {
            let reader =
                keys::withheld_reader(&key).ok_or(StoreError::Corrupt("withheld record's key"))?;
            from = kv::prefix_end(&keys::withheld_from(reader));
            let reader = String::from_utf8(reader.to_vec())
                .map_err(|_| StoreError::Corrupt("withheld record's reader"))?;
            readers.push(reader);
        }
        Ok(readers)
    }

    /// The last number of `reader`'s release log (0: nothing released yet).
    pub(crate) fn last_release(&self, reader: &MemberId) -> Result<u64, StoreError> {
        let prefix = keys::releases_of(reader);
        match self.last_under(&prefix)? {
            Some((k, _)) => u64_at(&k, prefix.len()).ok_or(StoreError::Corrupt("release key")),
            None => Ok(0),
        }
    }

    /// `reader`'s releases after `after`: (release number, position).
    pub(crate) fn releases(
        &self,
        reader: &MemberId,
        after: u64,
        limit: usize,
    ) -> Result<Vec<(u64, u64)>, StoreError> {
        let prefix = keys::releases_of(reader);
        self.kv()?
            .range(
                &keys::release(reader, after.saturating_add(1)),
                &keys::release(reader, u64::MAX),
                limit,
            )
            .map_err(io("read"))?
            .into_iter()
            .map(|(k, v)| {
                Ok((
                    u64_at(&k, prefix.len()).ok_or(StoreError::Corrupt("release key"))?,
                    u64_at(&v, 0).ok_or(StoreError::Corrupt("release"))?,
                ))
            })
            .collect()
    }

    /// Every event this node holds with `id`, whatever its source: (source, position).
    pub(crate) fn positions_of_id(&self, id: &Uuid) -> Result<Vec<(MemberId, u64)>, StoreError> {
        let prefix = keys::ids(id);
        self.scan(&prefix)
            .map(|r| {
                let (k, v) = r?;
                let position = u64_at(&v, 0).ok_or(StoreError::Corrupt("id index"))?;
                let source = match &k[prefix.len()..] {
                    [] => self.source_at(position)?,
                    s => std::str::from_utf8(s)
                        .ok()
                        .and_then(|s| s.parse().ok())
                        .ok_or(StoreError::Corrupt("id index source"))?,
                };
                Ok((source, position))
            })
            .collect()
    }

    /// The source of the event stored at `position` (for id index entries without one).
    fn source_at(&self, position: u64) -> Result<MemberId, StoreError> {
        let bytes = self
            .get(position)?
            .ok_or(StoreError::Corrupt("id index points to no event"))?;
        crate::event::SignedEvent::parse(&bytes)
            .map(|(signed, _)| signed.event().source.clone())
            .map_err(|_| StoreError::Corrupt("stored event"))
    }

    /// Where the event `source`/`sequence` is stored.
    pub(crate) fn position_of_sequence(
        &self,
        source: &MemberId,
        sequence: u64,
    ) -> Result<Option<u64>, StoreError> {
        let v = self.get_raw(&keys::sequence(source, sequence))?;
        v.map(|v| u64_at(&v, 0).ok_or(StoreError::Corrupt("sequence index")))
            .transpose()
    }

    /// Where `source`'s events with sequences after `after` up to `end` are, as (sequence,
    /// position), stopping at the first sequence not stored; one read of the index.
    pub(crate) fn positions_of_source(
        &self,
        source: &MemberId,
        after: u64,
        end: u64,
    ) -> Result<Vec<(u64, u64)>, StoreError> {
        if end <= after {
            return Ok(Vec::new());
        }
        let prefix = keys::sequences_of(source);
        let limit = usize::try_from(end - after).unwrap_or(usize::MAX);
        let index = self
            .kv()?
            .range(
                &keys::sequence(source, after.saturating_add(1)),
                &keys::sequence(source, end.saturating_add(1)),
                limit,
            )
            .map_err(io("read"))?;
        let mut found = Vec::with_capacity(index.len());
        for ((k, v), expected) in index.into_iter().zip(after + 1..) {
            let sequence = u64_at(&k, prefix.len()).ok_or(StoreError::Corrupt("sequence key"))?;
            if sequence != expected {
                break;
            }
            let position = u64_at(&v, 0).ok_or(StoreError::Corrupt("sequence index"))?;
            found.push((sequence, position));
        }
        Ok(found)
    }

    /// The events at `found` (sequence, position, as [`Store::positions_of_source`] gives
    /// them), as (sequence, position, JWS), stopping before the first `budget` does not take
    /// (which is not read) and at the first not stored; one read whatever the count.
    pub(crate) fn events_located(
        &self,
        found: Vec<(u64, u64)>,
        budget: &mut Budget,
    ) -> Result<Vec<(u64, u64, Vec<u8>)>, StoreError> {
        if let Some(log) = self.event_log()? {
            return self.events_at(&log, found, budget);
        }
        let log_keys: Vec<Vec<u8>> = found.iter().map(|(_, p)| keys::log(*p)).collect();
        let events = self
            .kv()?
            .get_many_within(&log_keys, budget)
            .map_err(io("read"))?;
        Ok(found
            .into_iter()
            .zip(events)
            .map_while(|((s, p), e)| e.map(|e| (s, p, e)))
            .collect())
    }

    /// The events at `found` (sequence, position) from the embedded log, as many as `budget`
    /// takes by their stored sizes (what it does not take is not read).
    fn events_at(
        &self,
        log: &log::EventLog,
        found: Vec<(u64, u64)>,
        budget: &mut Budget,
    ) -> Result<Vec<(u64, u64, Vec<u8>)>, StoreError> {
        let highest = found.iter().map(|(_, p)| *p).max().unwrap_or(0);
        log.await_published(highest);
        let mut taken = Vec::with_capacity(found.len());
        for (sequence, position) in found {
            let size = log.sizes(position, 1).map_err(|e| io("read")(e.into()))?;
            match size.first() {
                Some(&size) if budget.take(size) => taken.push((sequence, position)),
                _ => break,
            }
        }
        let positions: Vec<u64> = taken.iter().map(|(_, p)| *p).collect();
        let records = log.each(&positions).map_err(|e| io("read")(e.into()))?;
        let events = self.resolve(records)?;
        Ok(taken
            .into_iter()
            .zip(events)
            .map_while(|((s, p), (q, e))| (p == q).then_some((s, p, e)))
            .collect())
    }

    /// Many people's current consent records (see [`Store::consent`]), in the order asked.
    pub(crate) fn consents<T: DeserializeOwned>(
        &self,
        pins: &[&str],
    ) -> Result<Vec<Option<T>>, StoreError> {
        self.records_of(Kept::Consents, pins, |v| decode(v, "consent state"))
    }

    /// The person's record of one kind, as stored.
    fn kept(&self, kept: Kept, pin: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.settle(kept)?;
        match self.person_file(kept) {
            Some(file) => file.get(pin).map_err(kept_read),
            None => self.get_raw(&kept_key(kept, pin)),
        }
    }

    /// The records of one kind of each PIN, in the order asked, in one read, each read by
    /// `decode`.
    fn records_of<T: DeserializeOwned>(
        &self,
        kept: Kept,
        pins: &[&str],
        decode: fn(&[u8]) -> Result<T, StoreError>,
    ) -> Result<Vec<Option<T>>, StoreError> {
        self.settle(kept)?;
        let stored = match self.person_file(kept) {
            Some(file) => file.get_many(pins).map_err(kept_read)?,
            None => {
                let keys: Vec<Vec<u8>> = pins.iter().map(|p| kept_key(kept, p)).collect();
                self.kv()?.get_many(&keys).map_err(io("read"))?
            }
        };
        stored
            .into_iter()
            .map(|v| v.map(|v| decode(&v)).transpose())
            .collect()
    }

    /// Which of these own events (pin, position) were withheld from `reader` at publication.
    pub(crate) fn were_withheld(
        &self,
        reader: &MemberId,
        events: &[(&str, u64)],
    ) -> Result<Vec<bool>, StoreError> {
        let keys: Vec<Vec<u8>> = events
            .iter()
            .map(|(pin, position)| keys::withheld(reader, pin, *position))
            .collect();
        Ok(self
            .kv()?
            .get_many(&keys)
            .map_err(io("read"))?
            .iter()
            .map(Option::is_some)
            .collect())
    }

    /// Up to `limit` events after `position`, in log order.
    pub fn range(&self, after: u64, limit: usize) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        if let Some(log) = self.event_log()? {
            let last = after.saturating_add(limit as u64);
            return self.log_range(&log, after.saturating_add(1), last);
        }
        let start = keys::log(after.saturating_add(1));
        let entries = self
            .kv()?
            .range(&start, &keys::log(u64::MAX), limit)
            .map_err(io("read"))?;
        numbered(entries, "log key")
    }

    /// Up to `limit` events after `position`, in log order, as many as `budget` takes by their
    /// sizes (what it does not take is not read).
    pub(crate) fn range_within(
        &self,
        after: u64,
        limit: usize,
        budget: &mut Budget,
    ) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        if let Some(log) = self.event_log()? {
            let first = after.saturating_add(1);
            let sizes = log.sizes(first, limit).map_err(|e| io("read")(e.into()))?;
            let taken = sizes.into_iter().take_while(|s| budget.take(*s)).count() as u64;
            return match taken {
                0 => Ok(Vec::new()),
                n => self.log_range(&log, first, after + n),
            };
        }
        let start = keys::log(after.saturating_add(1));
        let entries = self
            .kv()?
            .range_within(&start, &keys::log(u64::MAX), limit, budget)
            .map_err(io("read"))?;
        numbered(entries, "log key")
    }

    /// The idempotency record for a key, if a request with it was stored.
    pub(crate) fn idempotency(
        &self,
        idempotency_key: &str,
    ) -> Result<Option<Idempotency>, StoreError> {
        let v = self.get_raw(&keys::idempotency(idempotency_key))?;
        v.map(|v| {
            let position = u64_at(&v, 0).ok_or(StoreError::Corrupt("idempotency record"))?;
            let digest = v
                .get(8..40)
                .and_then(|d| d.try_into().ok())
                .ok_or(StoreError::Corrupt("idempotency record"))?;
            Ok(Idempotency { position, digest })
        })
        .transpose()
    }

    /// A named piece of node state (e.g. the current manifest), if stored.
    pub(crate) fn meta(&self, name: &Meta) -> Result<Option<Vec<u8>>, StoreError> {
        let v = self.get_raw(&keys::meta(name))?;
        Ok(v)
    }

    /// Store a named piece of node state without waiting for a flush.
    pub(crate) fn set_meta_lazy(&self, name: &Meta, value: &[u8]) -> Result<(), StoreError> {
        self.put_one(keys::meta(name), value)
    }

    /// Store a named piece of node state durably (flushes). The manifest may be stored by any
    /// replica ([`Meta::is_shared`]); the rest by the writer only.
    pub(crate) fn set_meta(&self, name: &Meta, value: &[u8]) -> Result<(), StoreError> {
        if name.is_shared() {
            return self.put_shared(keys::meta(name), value);
        }
        self.put_one(keys::meta(name), value)?;
        self.flush()
    }

    /// A durable write any replica may make (records every version of which is as good).
    fn put_shared(&self, key: Vec<u8>, value: &[u8]) -> Result<(), StoreError> {
        self.kv()?
            .commit_shared(vec![Op::Put(key, value.to_vec())])
            .map_err(io("write"))
    }

    fn put_one(&self, key: Vec<u8>, value: &[u8]) -> Result<(), StoreError> {
        self.kv()?
            .apply(vec![Op::Put(key, value.to_vec())])
            .map_err(io("write"))
    }

    /// A person's current consent record, as stored by [`WriteBatch::set_consent`].
    /// A damaged record is an error, never taken as "no consent held".
    pub(crate) fn consent<T: DeserializeOwned>(&self, pin: &str) -> Result<Option<T>, StoreError> {
        self.kept(Kept::Consents, pin)?
            .map(|v| decode(&v, "consent state"))
            .transpose()
    }

    /// A person's stored view.
    pub(crate) fn view<T: DeserializeOwned>(&self, pin: &str) -> Result<Option<T>, StoreError> {
        self.kept(Kept::Views, pin)?
            .map(|v| decode_view(&v))
            .transpose()
    }

    /// Many people's stored views, in the order asked (one read).
    pub(crate) fn views_of<T: DeserializeOwned>(
        &self,
        pins: &[&str],
    ) -> Result<Vec<Option<T>>, StoreError> {
        self.records_of(Kept::Views, pins, decode_view)
    }

    /// Every stored view, in PIN order.
    pub fn views<T: DeserializeOwned + 'static>(
        &self,
    ) -> Box<dyn Iterator<Item = Result<T, StoreError>> + '_> {
        if let Err(e) = self.settle(Kept::Views) {
            return Box::new(std::iter::once(Err(e)));
        }
        let Some(views) = &self.views else {
            return Box::new(
                self.scan(&Space::View.all())
                    .map(|r| r.and_then(|(_, v)| decode_view(&v))),
            );
        };
        match views.each() {
            Ok(each) => Box::new(each.map(|r| r.map_err(kept_read).and_then(|v| decode_view(&v)))),
            Err(e) => Box::new(std::iter::once(Err(kept_read(e)))),
        }
    }

    /// Every (pin, position) of the person index, in PIN order.
    pub(crate) fn person_index(
        &self,
    ) -> impl Iterator<Item = Result<(String, u64), StoreError>> + '_ {
        self.scan(&Space::PersonEvent.all()).map(|r| {
            let (k, _) = r?;
            let split = k
                .len()
                .checked_sub(9)
                .ok_or(StoreError::Corrupt("person index"))?;
            let pin = String::from_utf8(k[1..split].to_vec())
                .map_err(|_| StoreError::Corrupt("person index"))?;
            let position = u64_at(&k, split + 1).ok_or(StoreError::Corrupt("person index"))?;
            Ok((pin, position))
        })
    }

    /// Drop every view and the person index (before a rebuild).
    pub(crate) fn clear_views(&self) -> Result<(), StoreError> {
        match &self.views {
            // The cursor goes back with the views: a rebuild cut short is started again by the
            // projector, never taken for views up to date.
            Some(views) => views.clear(|at| {
                let mut reset = vec![recorded_at(Kept::Views, at)];
                reset.extend(views_reset());
                self.kv()?.commit(reset).map_err(io("write"))
            })?,
            // Durably before the first view goes: a clearing cut short never leaves the cursor
            // claiming views that are gone.
            None => {
                self.kv()?
                    .commit(views_reset().into())
                    .map_err(io("write"))?;
                self.clear_space(Space::View)?
            }
        }
        self.clear_person_index()
    }

    /// Drop the person index: a rebuild's scratch (and what stores written before views named
    /// their events' positions kept).
    pub(crate) fn clear_person_index(&self) -> Result<(), StoreError> {
        self.clear_space(Space::PersonEvent)
    }

    fn clear_space(&self, space: Space) -> Result<(), StoreError> {
        let keys: Vec<Vec<u8>> = self
            .scan(&space.all())
            .map(|r| r.map(|(k, _)| k))
            .collect::<Result<_, _>>()?;
        for chunk in keys.chunks(10_000) {
            let ops = chunk.iter().map(|k| Op::Delete(k.clone())).collect();
            self.kv()?.apply(ops).map_err(io("write"))?;
        }
        Ok(())
    }

    /// The latest state of one offer.
    pub(crate) fn offer<T: DeserializeOwned>(
        &self,
        kind: u8,
        id: &str,
    ) -> Result<Option<T>, StoreError> {
        self.get_raw(&keys::offer(kind, id))?
            .map(|v| decode(&v, "offer"))
            .transpose()
    }

    /// Every offer of one kind, by id.
    pub(crate) fn offers<T: DeserializeOwned>(&self, kind: u8) -> Result<Vec<T>, StoreError> {
        self.scan(&keys::offers(kind))
            .map(|r| r.and_then(|(_, v)| decode(&v, "offer")))
            .collect()
    }

    /// A credential issued to `pin`, by its id.
    pub fn credential<T: DeserializeOwned>(
        &self,
        pin: &str,
        id: &Uuid,
    ) -> Result<Option<T>, StoreError> {
        self.get_raw(&keys::credential(pin, id))?
            .map(|v| decode(&v, "credential"))
            .transpose()
    }

    /// Every credential issued to `pin`, by id.
    pub fn credentials_of<T: DeserializeOwned>(&self, pin: &str) -> Result<Vec<T>, StoreError> {
        self.scan(&keys::credentials_of(pin))
            .map(|r| r.and_then(|(_, v)| decode(&v, "credential")))
            .collect()
    }

    /// The credential its publisher issued for the event (`source`, `id`), if any.
    pub fn attestation<T: DeserializeOwned>(
        &self,
        source: &str,
        id: &Uuid,
    ) -> Result<Option<T>, StoreError> {
        self.get_raw(&keys::attestation(source, id))?
            .map(|v| decode(&v, "attestation"))
            .transpose()
    }

    /// What revoking credential `id` takes, if this issuer issued it.
    pub fn credential_entry<T: DeserializeOwned>(
        &self,
        id: &Uuid,
    ) -> Result<Option<T>, StoreError> {
        self.get_raw(&keys::credential_entry(id))?
            .map(|v| decode(&v, "credential entry"))
            .transpose()
    }

    /// Every credential copy this node keeps, whoever holds it (the issuer's one look at them
    /// all: keeping the entries of a store from before them).
    pub fn every_credential<T: DeserializeOwned>(&self) -> Result<Vec<T>, StoreError> {
        self.scan(&Space::Credential.all())
            .map(|r| r.and_then(|(_, v)| decode(&v, "credential")))
            .collect()
    }

    /// Whose credential `id` is (its holder's PIN), if this node issued it.
    pub fn credential_holder(&self, id: &Uuid) -> Result<Option<String>, StoreError> {
        Ok(self
            .get_raw(&keys::credential_holder(id))?
            .map(|v| String::from_utf8_lossy(&v).into_owned()))
    }

    /// The lock taken before writing a person's state ([`PersonStates`]: the writer, the
    /// projector finishing an erasure, the credential issuer).
    pub fn person_states(&self) -> &PersonStates {
        &self.person_states
    }

    /// Apply a batch that is not an append (views, access log): not flushed here.
    pub fn apply_other(&self, batch: WriteBatch) -> Result<(), StoreError> {
        self.write(batch, Durable::Later)
    }

    /// Keep a signed checkpoint of this node's log (by tree size).
    pub(crate) fn put_checkpoint(&self, size: u64, bytes: &[u8]) -> Result<(), StoreError> {
        self.put_one(keys::checkpoint(size), bytes)?;
        self.flush()
    }

    /// The latest signed checkpoint, with its size.
    pub(crate) fn latest_checkpoint(&self) -> Result<Option<(u64, Vec<u8>)>, StoreError> {
        self.last_under(&Space::Checkpoint.all())?
            .map(|(k, v)| {
                Ok((
                    u64_at(&k, 1).ok_or(StoreError::Corrupt("checkpoint key"))?,
                    v,
                ))
            })
            .transpose()
    }

    /// Every signed checkpoint, oldest first.
    pub(crate) fn checkpoints(
        &self,
    ) -> impl Iterator<Item = Result<(u64, Vec<u8>), StoreError>> + '_ {
        self.scan(&Space::Checkpoint.all()).map(|r| {
            let (k, v) = r?;
            Ok((
                u64_at(&k, 1).ok_or(StoreError::Corrupt("checkpoint key"))?,
                v,
            ))
        })
    }

    /// Keep a witness's co-signature of one of this node's checkpoints.
    pub(crate) fn put_cosignature(
        &self,
        size: u64,
        witness: &str,
        bytes: &[u8],
    ) -> Result<(), StoreError> {
        // Any replica may take a witness's co-signature (it is the witness's, whoever keeps it).
        self.put_shared(keys::cosignature(size, witness), bytes)
    }

    /// The co-signatures received for the checkpoint of `size`.
    pub(crate) fn cosignatures(&self, size: u64) -> Result<Vec<Vec<u8>>, StoreError> {
        self.scan(&keys::cosignatures(size))
            .map(|r| r.map(|(_, v)| v))
            .collect()
    }

    /// The last contiguous sequence received from `source` (0: nothing yet).
    pub(crate) fn cursor(&self, source: &MemberId) -> Result<u64, StoreError> {
        let v = self.get_raw(&keys::cursor(source))?;
        v.map(|v| u64_at(&v, 0).ok_or(StoreError::Corrupt("cursor")))
            .transpose()
            .map(Option::unwrap_or_default)
    }

    /// Keep rejected input with its reason, unless that would pass one of `caps` (the whole
    /// quarantine's) or `share` (what the record's origin may hold of it): what is kept already
    /// is never dropped for it. Both are checked under the quarantine's append lock, with the
    /// record as it is stored. Written without waiting for a flush.
    pub(crate) fn quarantine(
        &self,
        mut record: Quarantined,
        caps: QuarantineCaps,
        share: QuarantineCaps,
    ) -> Result<u64, QuarantineError> {
        let origin = record.origin.clone();
        self.append_side(SideLog::Quarantine, Durable::Later, |number, batch| {
            record.number = number;
            let entry = serde_json::to_vec(&record).unwrap_or_default();
            let held = QuarantineHeld {
                records: number - 1,
                bytes: self.quarantine_bytes(number - 1)?,
            };
            // The share first: what its origin may not have kept is passed, whether or not the
            // whole quarantine has room, while a refusal the quarantine has no room for waits.
            let from = self.quarantined_from(&origin)?;
            if !share.admit(from, entry.len()) {
                let full = QuarantineFull {
                    held: from,
                    caps: share,
                };
                return Err(QuarantineError::ShareFull(full));
            }
            if !caps.admit(held, entry.len()) {
                return Err(QuarantineError::Full(QuarantineFull { held, caps }));
            }
            let size = entry.len() as u64;
            batch.put(
                keys::meta(&Meta::QuarantineBytes),
                held.bytes.saturating_add(size).to_be_bytes(),
            );
            let from = QuarantineHeld {
                records: from.records + 1,
                bytes: from.bytes.saturating_add(size),
            };
            batch.ops.extend(share_ops(&origin, from));
            batch.put(keys::meta(&Meta::QuarantineSharesCounted), []);
            Ok(vec![entry])
        })
    }

    /// How much the quarantine holds.
    pub(crate) fn quarantine_held(&self) -> Result<QuarantineHeld, StoreError> {
        let records = self.side_len(SideLog::Quarantine);
        Ok(QuarantineHeld {
            records,
            bytes: self.quarantine_bytes(records)?,
        })
    }

    /// The bytes the quarantine's `records` take: counted with each append (and once when a
    /// store from before they were counted is opened), else measured.
    fn quarantine_bytes(&self, records: u64) -> Result<u64, StoreError> {
        if let Some(v) = self.meta(&Meta::QuarantineBytes)? {
            return u64_at(&v, 0).ok_or(StoreError::Corrupt("quarantine size in bytes"));
        }
        let mut bytes = 0u64;
        self.each_quarantined(records, |v| bytes += v.len() as u64)?;
        Ok(bytes)
    }

    /// How much of the quarantine came from `origin`: its records, and their bytes as stored.
    pub(crate) fn quarantined_from(&self, origin: &str) -> Result<QuarantineHeld, StoreError> {
        let count = |name: Meta| -> Result<u64, StoreError> {
            Ok(self.meta(&name)?.and_then(|v| u64_at(&v, 0)).unwrap_or(0))
        };
        Ok(QuarantineHeld {
            records: count(Meta::QuarantinedFrom(origin.to_string()))?,
            bytes: count(Meta::QuarantinedBytesFrom(origin.to_string()))?,
        })
    }

    /// Quarantined records after `number`, oldest first, as many as `budget` takes by their
    /// stored sizes (what it does not take is not read).
    pub(crate) fn quarantined(
        &self,
        after: u64,
        limit: usize,
        budget: &mut Budget,
    ) -> Result<Vec<Quarantined>, StoreError> {
        self.side_entries_within(SideLog::Quarantine, after, limit, budget)?
            .into_iter()
            .map(|(_, v)| {
                serde_json::from_slice(&v).map_err(|_| StoreError::Corrupt("quarantine record"))
            })
            .collect()
    }

    /// How many records the quarantine holds.
    pub(crate) fn quarantine_len(&self) -> usize {
        self.side_len(SideLog::Quarantine) as usize
    }

    /// Append entries to the access log, each indexed under every PIN it is about, and flush: a
    /// read is answered only once its record is durable.
    pub(crate) fn append_access(
        &self,
        reads: Vec<(Vec<String>, Vec<u8>)>,
    ) -> Result<(), StoreError> {
        if reads.is_empty() {
            return Ok(());
        }
        self.append_side::<StoreError>(SideLog::Access, Durable::Yes, |first, batch| {
            let mut entries = Vec::with_capacity(reads.len());
            for (number, (pins, entry)) in (first..).zip(reads) {
                for pin in pins {
                    batch.put(keys::access(&pin, number), number.to_be_bytes());
                }
                entries.push(entry);
            }
            Ok(entries)
        })?;
        Ok(())
    }

    /// A person's access-log entries, newest first, as stored.
    pub(crate) fn access_entries(
        &self,
        pin: &str,
        limit: usize,
    ) -> Result<Vec<Vec<u8>>, StoreError> {
        self.access_index(pin, limit)?
            .into_iter()
            .map(|indexed| match indexed {
                Indexed::Number(number) => {
                    self.get_raw(&SideLog::Access.entry(number))?
                        .ok_or(StoreError::Corrupt(
                            "access-log entry named by a person's index",
                        ))
                }
                Indexed::Record(record) => Ok(record),
            })
            .collect()
    }

    /// A person's access-log index, newest first, at most `limit` entries: each the number of an
    /// access-log entry, or (written before the access log was numbered) the record itself.
    pub(crate) fn access_index(&self, pin: &str, limit: usize) -> Result<Vec<Indexed>, StoreError> {
        self.scan(&keys::accesses(pin))
            .take(limit)
            .map(|r| {
                let (_, v) = r?;
                Ok(match u64_at(&v, 0).filter(|_| v.len() == 8) {
                    Some(number) => Indexed::Number(number),
                    None => Indexed::Record(v),
                })
            })
            .collect()
    }

    /// Append entries to a side log (durably now, or with the next flush), with what else `build`
    /// stages in the same write; `build` is told the number of the first entry and returns the
    /// entries. Returns that number. The log's size is read and written in one locked step
    /// ([`Kv::locked`]), so appends from several replicas of a PostgreSQL store stay gap-free; a
    /// size another replica moved is caught up with before appending.
    fn append_side<E: From<StoreError> + From<KvError>>(
        &self,
        log: SideLog,
        durable: Durable,
        build: impl FnOnce(u64, &mut WriteBatch) -> Result<Vec<Vec<u8>>, E>,
    ) -> Result<u64, E> {
        let mut frontier = self.side_logs[log as usize]
            .lock()
            .map_err(|_| StoreError::Corrupt("side log lock"))?;
        let size_key = keys::meta(&log.size());
        let mut appended = None;
        self.kv()?
            .locked(&size_key, durable == Durable::Yes, |size| {
                let size = size
                    .and_then(|v| v.try_into().ok())
                    .map_or(0, u64::from_be_bytes);
                if size != frontier.size() {
                    *frontier = crate::merkle::Frontier::load(&SideLogTree(self, log), size)?;
                }
                let first = size + 1;
                let mut batch = WriteBatch::default();
                let entries = build(first, &mut batch)?;
                let mut next = frontier.clone();
                for (number, entry) in (first..).zip(entries) {
                    let leaf = crate::merkle::leaf_hash(&entry);
                    batch.put(log.entry(number), entry);
                    for (level, index, hash) in next.append(leaf) {
                        batch.put(log.subtree(level, index), hash);
                    }
                }
                batch.put(size_key.clone(), next.size().to_be_bytes());
                appended = Some((first, next));
                Ok::<_, E>(batch.ops)
            })?;
        let (first, next) = appended.ok_or(StoreError::Corrupt("side log"))?;
        *frontier = next;
        Ok(first)
    }

    /// A side log's entries as stored, after `number`, oldest first.
    pub(crate) fn side_entries(
        &self,
        log: SideLog,
        after: u64,
        limit: usize,
    ) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        let start = log.entry(after.saturating_add(1));
        let end = log.entry(u64::MAX);
        let entries = self.kv()?.range(&start, &end, limit).map_err(io("read"))?;
        numbered(entries, "side-log key")
    }

    /// [`Store::side_entries`], as many as `budget` takes by their sizes.
    fn side_entries_within(
        &self,
        log: SideLog,
        after: u64,
        limit: usize,
        budget: &mut Budget,
    ) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        let start = log.entry(after.saturating_add(1));
        let end = log.entry(u64::MAX);
        let entries = self
            .kv()?
            .range_within(&start, &end, limit, budget)
            .map_err(io("read"))?;
        numbered(entries, "side-log key")
    }

    /// How many entries a side log holds.
    pub(crate) fn side_len(&self, log: SideLog) -> u64 {
        self.meta(&log.size())
            .ok()
            .flatten()
            .and_then(|v| v.try_into().ok())
            .map_or(0, u64::from_be_bytes)
    }
}

impl Store {
    /// The Merkle leaf hash of log entry `index` (position `index + 1`).
    pub(crate) fn perfect_leaf(&self, index: u64) -> Result<crate::merkle::Hash, StoreError> {
        crate::merkle::Subtrees::perfect(self, 0, index)
    }
}

/// A side log's perfect subtrees, for its root and proofs.
pub(crate) struct SideLogTree<'a>(pub &'a Store, pub SideLog);

impl crate::merkle::Subtrees for SideLogTree<'_> {
    type Error = StoreError;
    fn perfect(&self, level: u32, index: u64) -> Result<crate::merkle::Hash, StoreError> {
        let v = self
            .0
            .get_raw(&self.1.subtree(level, index))?
            .ok_or(StoreError::Corrupt("missing side-log subtree"))?;
        v.as_slice()
            .try_into()
            .map_err(|_| StoreError::Corrupt("side-log subtree"))
    }
}

/// The event log's perfect subtrees: from the tiles on the embedded engines (the hashes the
/// tile routes serve, `8·L` for tile level `L`), from the table on PostgreSQL.
impl crate::merkle::Subtrees for Store {
    type Error = StoreError;
    fn perfect(&self, level: u32, index: u64) -> Result<crate::merkle::Hash, StoreError> {
        if let Some(log) = self.event_log()? {
            return log
                .perfect(level, index)
                .map_err(|_| StoreError::Corrupt("missing Merkle subtree"));
        }
        let v = self
            .get_raw(&keys::subtree(level, index))?
            .ok_or(StoreError::Corrupt("missing Merkle subtree"))?;
        v.as_slice()
            .try_into()
            .map_err(|_| StoreError::Corrupt("Merkle subtree"))
    }

    /// On PostgreSQL one range read of the table (a tile is 256 hashes: one round trip, not
    /// 256); the embedded engines' tiles read their own.
    fn perfect_run(
        &self,
        level: u32,
        first: u64,
        count: u64,
    ) -> Result<Vec<crate::merkle::Hash>, StoreError> {
        if self.event_log()?.is_some() {
            return crate::merkle::each_perfect(self, level, first, count);
        }
        let end = first.saturating_add(count);
        let limit = usize::try_from(count).unwrap_or(usize::MAX);
        let run = self
            .kv()?
            .range(
                &keys::subtree(level, first),
                &keys::subtree(level, end),
                limit,
            )
            .map_err(io("read"))?;
        if run.len() as u64 != count {
            return Err(StoreError::Corrupt("missing Merkle subtree"));
        }
        run.into_iter()
            .map(|(_, v)| {
                v.as_slice()
                    .try_into()
                    .map_err(|_| StoreError::Corrupt("Merkle subtree"))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;
    use std::time::Duration;

    use crate::store::postgres::lease::{self, Role};
    use tokio::sync::watch;

    /// A store to test on one engine: embedded ones in a temporary folder, PostgreSQL in a
    /// database of its own in the test cluster (held as the writer).
    struct Fixture {
        engine: Engine,
        dir: tempfile::TempDir,
        pg: Option<PgSettings>,
        lease: Option<watch::Receiver<Role>>,
    }

    impl Fixture {
        /// One fixture per engine (PostgreSQL's as [`postgres::test_database`] says).
        fn all() -> Vec<Fixture> {
            let mut all: Vec<Fixture> = [Engine::Sled, Engine::Redb]
                .into_iter()
                .map(|engine| Fixture {
                    engine,
                    dir: tempfile::tempdir().unwrap(),
                    pg: None,
                    lease: None,
                })
                .collect();
            let Some(pg) = postgres::test_database("the PostgreSQL engine") else {
                return all;
            };
            all.push(Fixture {
                engine: Engine::Postgres,
                dir: tempfile::tempdir().unwrap(),
                pg: Some(pg),
                lease: None,
            });
            all
        }

        /// Open (or open again) the store.
        fn open(&mut self) -> Store {
            self.lease = None;
            match &self.pg {
                None => Store::open_with(self.dir.path(), self.engine).unwrap(),
                Some(settings) => {
                    let store = Store::open_postgres(settings).unwrap();
                    let kv = store.postgres().unwrap();
                    let held = lease::acquire(&kv, "test".into(), Duration::from_secs(20));
                    self.lease = Some(held.unwrap());
                    store
                }
            }
        }
    }

    fn member() -> MemberId {
        "central-server/GOV/70000001/migration".parse().unwrap()
    }

    /// What an erasure deleted or overwrote is in none of the store's files after
    /// [`Store::compact`], in the clear or base64url; every other entry reads back identical,
    /// also after reopening. On PostgreSQL the files are the database's in the cluster.
    #[test]
    fn compaction_leaves_no_erased_value_on_disk() {
        use compact::tests::{every_entry, files_holding, write_then_erase, ERASED, ERASED_PACKED};
        const VIEW_ERASED: &str = "Views-File-Erased-5d1e";
        const CONSENT_ERASED: &str = "Consent-File-Erased-8b2f";
        for mut fixture in Fixture::all() {
            let engine = fixture.engine;
            let store = fixture.open();
            let files = || match &fixture.pg {
                None => fixture.dir.path().to_path_buf(),
                Some(pg) => postgres::test_database_files(pg),
            };
            write_then_erase(&store.kv().unwrap());
            // A view rewritten without the value, another deleted: on the embedded engines
            // their old versions are in the views file until it is rewritten.
            let mut b = WriteBatch::default();
            b.set_view("21503199012345", &serde_json::json!({"name": VIEW_ERASED}));
            b.set_view("21503199012346", &serde_json::json!({"name": VIEW_ERASED}));
            b.set_consent(
                "21503199012347",
                &serde_json::json!({"note": CONSENT_ERASED}),
            );
            store.apply_other(b).unwrap();
            let mut b = WriteBatch::default();
            b.set_view("21503199012345", &serde_json::json!({"name": "(erased)"}));
            b.delete_view("21503199012346");
            store.forget_person("21503199012347", &mut b).unwrap();
            store.apply_other(b).unwrap();
            // The per-person files move to their next generation.
            let moved = Kept::ALL.map(|k| keys::meta(&k.meta()));
            let every_entry = |kv: &Kv| {
                let mut entries = every_entry(kv);
                entries.retain(|(k, _)| !moved.contains(k));
                entries
            };
            let entries = every_entry(&store.kv().unwrap());
            for value in [ERASED, ERASED_PACKED, VIEW_ERASED, CONSENT_ERASED] {
                assert!(
                    !files_holding(&files(), value).is_empty(),
                    "{engine}: the erased {value} was on disk before"
                );
            }
            let report = store.compact().unwrap();
            assert_eq!(report.engine, engine);
            assert!(report.bytes_after > 0, "{engine}: {report}");
            for value in [ERASED, ERASED_PACKED, VIEW_ERASED, CONSENT_ERASED] {
                let holding = files_holding(&files(), value);
                assert!(holding.is_empty(), "{engine}: {value}: {holding:?}");
            }
            assert_eq!(every_entry(&store.kv().unwrap()), entries, "{engine}");
            drop(store);
            let store = fixture.open();
            assert_eq!(every_entry(&store.kv().unwrap()), entries, "{engine}");
            let kept: Option<Value> = store.view("21503199012345").unwrap();
            assert_eq!(
                kept,
                Some(serde_json::json!({"name": "(erased)"})),
                "{engine}"
            );
            assert_eq!(
                store.view::<Value>("21503199012346").unwrap(),
                None,
                "{engine}"
            );
            let forgotten: Option<Value> = store.consent("21503199012347").unwrap();
            assert_eq!(forgotten, None, "{engine}");
        }
    }

    /// A view is stored packed on every engine and reads back through each read (one, many,
    /// all); a view stored as JSON before views were packed reads back the same way; a packed
    /// view that does not open is damage, never another view or no view.
    #[test]
    fn views_are_stored_packed_and_json_views_stored_before_still_read() {
        let (packed_pin, json_pin, damaged_pin) = ("21503199012345", "21503199012346", "2");
        let view = serde_json::json!({"pin": packed_pin, "events": ["a", "b", "c"]});
        let old = serde_json::json!({"pin": json_pin, "events": []});
        for mut fixture in Fixture::all() {
            let engine = fixture.engine;
            let store = fixture.open();
            // As a store written before the views had their own file held them: keys of the
            // KV (a JSON view from before views were packed among them), moved over at open.
            let packed = packed::pack(&serde_json::to_vec(&view).unwrap());
            assert!(packed.starts_with(packed::MAGIC));
            let mut damaged = packed.clone();
            damaged.truncate(packed.len() - 1);
            let mut b = WriteBatch::default();
            b.put(keys::view(packed_pin), &packed);
            b.put(keys::view(json_pin), serde_json::to_vec(&old).unwrap());
            b.put(keys::view(damaged_pin), damaged);
            b.ops.push(Op::Delete(keys::meta(&Meta::ViewsAt)));
            store.apply_other(b).unwrap();
            store.flush().unwrap();
            drop(store);
            let store = fixture.open();
            let in_kv = store.get_raw(&keys::view(packed_pin)).unwrap();
            assert_eq!(in_kv.is_some(), engine == Engine::Postgres, "{engine}");
            assert_eq!(
                store.view(packed_pin).unwrap(),
                Some(view.clone()),
                "{engine}"
            );
            assert_eq!(store.view(json_pin).unwrap(), Some(old.clone()), "{engine}");
            let many: Vec<Option<Value>> = store.views_of(&[json_pin, "3", packed_pin]).unwrap();
            assert_eq!(
                many,
                [Some(old.clone()), None, Some(view.clone())],
                "{engine}"
            );
            let err = store.view::<Value>(damaged_pin).unwrap_err();
            assert!(
                matches!(err, StoreError::Corrupt("person view")),
                "{engine}: {err}"
            );
            let mut b = WriteBatch::default();
            b.delete_view(damaged_pin);
            store.apply_other(b).unwrap();
            let all: Vec<Value> = store.views().map(Result::unwrap).collect();
            assert_eq!(all, [view.clone(), old.clone()], "{engine}");
            // Stored now, packed, and read back after another open.
            let mut b = WriteBatch::default();
            b.set_view(damaged_pin, &old);
            store.apply_other(b).unwrap();
            drop(store);
            let store = fixture.open();
            assert_eq!(
                store.view(damaged_pin).unwrap(),
                Some(old.clone()),
                "{engine}"
            );
            let all: Vec<Value> = store.views().map(Result::unwrap).collect();
            assert_eq!(all.len(), 3, "{engine}");
        }
    }

    /// Flip the last byte of every file of one kind of per-person records under `dir`.
    fn damage_last_byte(dir: &Path, kept: Kept) {
        for file in std::fs::read_dir(dir.join(kept.dir())).unwrap() {
            let path = file.unwrap().path();
            let mut bytes = std::fs::read(&path).unwrap();
            let last = bytes.len() - 1;
            bytes[last] ^= 0xff;
            std::fs::write(&path, bytes).unwrap();
        }
    }

    /// Folders are made with every missing parent, and making one that is there is no error.
    #[test]
    fn folders_are_made_with_their_parents() {
        let dir = tempfile::tempdir().unwrap();
        let deep = dir.path().join("a/b/c");
        create_dir_durably(&deep).unwrap();
        assert!(deep.is_dir());
        create_dir_durably(&deep).unwrap();
        std::fs::write(dir.path().join("file"), b"").unwrap();
        assert!(create_dir_durably(&dir.path().join("file")).is_err());
    }

    /// Consent states held in the KV before the per-person files are moved into theirs at open
    /// and read back, also after another open; a damaged file of consent states is refused at
    /// open with what is wrong (never read as "no consent held").
    #[test]
    fn consent_states_move_to_their_file_and_a_damaged_one_is_refused() {
        let (before, after) = ("21503199012345", "21503199012346");
        for engine in [Engine::Redb, Engine::Sled] {
            let dir = tempfile::tempdir().unwrap();
            let store = Store::open_with(dir.path(), engine).unwrap();
            let mut b = WriteBatch::default();
            b.put(keys::consent(before), record(&"granted before"));
            b.ops.push(Op::Delete(keys::meta(&Meta::ConsentsAt)));
            store.apply_other(b).unwrap();
            store.flush().unwrap();
            drop(store);
            // A file the KV does not record is not taken for a store from before the files.
            let err = Store::open_with(dir.path(), engine)
                .err()
                .unwrap()
                .to_string();
            assert!(err.contains("records no file"), "{engine}: {err}");
            // The same, while the first move is marked begun (a crash between making the file
            // and the commit that records it): the file is that move's, and it starts over.
            {
                let kv = Kv::open_at(&Location::Dir {
                    dir: dir.path().to_path_buf(),
                    engine,
                    cache_mib: kv::DEFAULT_CACHE_MIB,
                })
                .unwrap();
                kv.commit(vec![Op::Put(
                    keys::meta(&Kept::Consents.starting()),
                    Vec::new(),
                )])
                .unwrap();
            }
            std::fs::write(
                dir.path()
                    .join(Kept::Consents.dir())
                    .join(Kept::Consents.file_name(1)),
                b"half a move",
            )
            .unwrap();
            let store = Store::open_with(dir.path(), engine).unwrap();
            assert_eq!(
                store.get_raw(&keys::consent(before)).unwrap(),
                None,
                "{engine}"
            );
            assert_eq!(store.meta(&Kept::Consents.starting()).unwrap(), None);
            let mut b = WriteBatch::default();
            b.set_consent(after, &"granted after");
            store.apply_other(b).unwrap();
            drop(store);
            let store = Store::open_with(dir.path(), engine).unwrap();
            let held: Vec<Option<String>> = store.consents(&[after, "1", before]).unwrap();
            assert_eq!(
                held,
                [
                    Some("granted after".into()),
                    None,
                    Some("granted before".into())
                ],
                "{engine}"
            );
            drop(store);
            damage_last_byte(dir.path(), Kept::Consents);
            let err = Store::open_with(dir.path(), engine)
                .err()
                .unwrap()
                .to_string();
            assert!(
                err.contains("consent states are damaged"),
                "{engine}: {err}"
            );
            assert!(err.contains("checksum"), "{engine}: {err}");
        }
    }

    /// The embedded engines' views file is cut back to what the KV committed, and a damaged
    /// one starts over with the projector's cursor at the start of the log (the views are a
    /// fold of it).
    #[test]
    fn a_damaged_views_file_sends_the_projector_back_to_the_start() {
        for engine in [Engine::Redb, Engine::Sled] {
            let dir = tempfile::tempdir().unwrap();
            let store = Store::open_with(dir.path(), engine).unwrap();
            let mut b = WriteBatch::default();
            b.set_view("21503199012345", &1);
            b.set_view_cursor(7);
            store.apply_other(b).unwrap();
            store.flush().unwrap();
            drop(store);
            let store = Store::open_with(dir.path(), engine).unwrap();
            assert_eq!(store.view("21503199012345").unwrap(), Some(1), "{engine}");
            assert_eq!(
                store.meta(&Meta::ViewCursor).unwrap(),
                Some(7u64.to_be_bytes().to_vec())
            );
            drop(store);
            damage_last_byte(dir.path(), Kept::Views);
            let store = Store::open_with(dir.path(), engine).unwrap();
            assert_eq!(
                store.view::<u32>("21503199012345").unwrap(),
                None,
                "{engine}"
            );
            assert_eq!(
                store.meta(&Meta::ViewCursor).unwrap(),
                Some(0u64.to_be_bytes().to_vec())
            );
            let mut b = WriteBatch::default();
            b.set_view("21503199012345", &2);
            store.apply_other(b).unwrap();
            drop(store);
            let store = Store::open_with(dir.path(), engine).unwrap();
            assert_eq!(store.view("21503199012345").unwrap(), Some(2), "{engine}");
        }
    }

    /// A running node's other users wait while its store is compacted: what another thread
    /// commits meanwhile is all there afterwards.
    #[test]
    fn compaction_while_the_store_is_in_use_loses_nothing() {
        for engine in [Engine::Redb, Engine::Sled] {
            let dir = tempfile::tempdir().unwrap();
            let store = Store::open_with(dir.path(), engine).unwrap();
            let writing = store.clone();
            let writer = std::thread::spawn(move || {
                for i in 0u32..300 {
                    let mut b = WriteBatch::default();
                    b.set_view(&format!("{i:011}"), &i);
                    writing.apply_other(b).unwrap();
                }
            });
            for _ in 0..3 {
                store.compact().unwrap();
            }
            writer.join().unwrap();
            store.compact().unwrap();
            let views: Vec<u32> = store.views().map(Result::unwrap).collect();
            assert_eq!(views, (0..300).collect::<Vec<_>>(), "{engine}");
        }
    }

    fn append(store: &Store, source: &MemberId, position: u64, sequence: u64, idem: Option<&str>) {
        let mut b = WriteBatch::default();
        stage_append(&mut b, source, position, sequence, idem);
        store.apply(LogAppend::for_tests(), b).unwrap();
    }

    /// Stage the event `event {position}` of `source` at `position` and `sequence`.
    fn stage_append(
        b: &mut WriteBatch,
        source: &MemberId,
        position: u64,
        sequence: u64,
        idem: Option<&str>,
    ) {
        b.append(
            LogAppend::for_tests(),
            Append {
                position,
                source,
                sequence,
                id: Uuid::now_v7(),
                jws: format!("event {position}").as_bytes(),
                leaf: [0; 32],
                idempotency: idem.map(|k| (k, [7u8; 32])),
            },
        );
    }

    #[test]
    fn positions_and_sequences_survive_reopening() {
        for mut fixture in Fixture::all() {
            let (a, b): (MemberId, MemberId) = (member(), "x/GOV/1/y".parse().unwrap());
            {
                let store = fixture.open();
                assert_eq!(store.last_position().unwrap(), 0);
                assert_eq!(store.last_sequence(&a).unwrap(), 0);
                append(&store, &a, 1, 1, None);
                append(&store, &b, 2, 1, None);
                append(&store, &a, 3, 2, Some("retry-me"));
                store.flush().unwrap();
            }
            let store = fixture.open();
            assert_eq!(store.last_position().unwrap(), 3);
            assert_eq!(store.last_sequence(&a).unwrap(), 2);
            assert_eq!(store.last_sequence(&b).unwrap(), 1);
            assert_eq!(store.position_of_sequence(&a, 2).unwrap(), Some(3));
            let idem = store.idempotency("retry-me").unwrap().unwrap();
            assert_eq!(idem.position, 3);
            assert_eq!(idem.digest, [7u8; 32]);
            assert_eq!(store.idempotency("other").unwrap(), None);
            let all = store.range(0, 10).unwrap();
            assert_eq!(all.iter().map(|(p, _)| *p).collect::<Vec<_>>(), [1, 2, 3]);
            assert_eq!(store.range(1, 1).unwrap()[0].1, b"event 2");
        }
    }

    /// A run of perfect subtrees (what a tile serves) reads as each one does, on every
    /// engine (on PostgreSQL in one range read), and a run past what is stored is refused.
    #[test]
    fn a_run_of_subtrees_reads_as_each_one() {
        use crate::merkle::Subtrees;
        for mut fixture in Fixture::all() {
            let store = fixture.open();
            let source = member();
            let mut tree = crate::merkle::Frontier::default();
            let mut b = WriteBatch::default();
            for position in 1..=300u64 {
                let leaf = crate::merkle::leaf_hash(&position.to_be_bytes());
                for (level, index, hash) in tree.append(leaf) {
                    b.set_subtree(LogAppend::for_tests(), level, index, &hash);
                }
                stage_append(&mut b, &source, position, position, None);
                b.events.last_mut().unwrap().2 = leaf;
            }
            store.apply(LogAppend::for_tests(), b).unwrap();
            for (level, first, count) in [(0, 0, 256), (0, 256, 44), (1, 0, 150), (8, 0, 1)] {
                let run = store.perfect_run(level, first, count).unwrap();
                let each = crate::merkle::each_perfect(&store, level, first, count).unwrap();
                assert_eq!(run, each, "{} level {level}", fixture.engine);
            }
            assert!(store.perfect_run(0, 256, 45).is_err(), "{}", fixture.engine);
        }
    }

    #[test]
    fn the_id_index_finds_events() {
        for mut fixture in Fixture::all() {
            let store = fixture.open();
            let id = Uuid::now_v7();
            let mut b = WriteBatch::default();
            b.append(
                LogAppend::for_tests(),
                Append {
                    position: 1,
                    source: &member(),
                    sequence: 1,
                    id,
                    jws: b"e",
                    leaf: [0; 32],
                    idempotency: None,
                },
            );
            assert_eq!(b.len(), 1);
            store.apply(LogAppend::for_tests(), b).unwrap();
            assert_eq!(store.position_of(&member(), &id).unwrap(), Some(1));
            assert_eq!(store.position_of(&member(), &Uuid::now_v7()).unwrap(), None);
            let other: MemberId = "central-server/GOV/70000009/other".parse().unwrap();
            assert_eq!(store.position_of(&other, &id).unwrap(), None);
            assert_eq!(store.positions_of_id(&id).unwrap(), [(member(), 1)]);
        }
    }

    fn refused(reason: &str, body: &str) -> Quarantined {
        Quarantined {
            number: 0,
            time: OffsetDateTime::UNIX_EPOCH,
            origin: "local-api".into(),
            reason: reason.into(),
            detail: serde_json::Value::Null,
            body: body.into(),
        }
    }

    #[test]
    fn quarantine_keeps_records_in_order() {
        for mut fixture in Fixture::all() {
            let store = fixture.open();
            for reason in ["schema-invalid", "malformed-json"] {
                store
                    .quarantine(
                        refused(reason, "{"),
                        QuarantineCaps::NONE,
                        QuarantineCaps::NONE,
                    )
                    .unwrap();
            }
            let all = store.quarantined(0, 10, &mut Budget::unlimited()).unwrap();
            assert_eq!(all.len(), 2);
            assert_eq!(all[1].reason, "malformed-json");
            let after_first = store.quarantined(all[0].number(), 10, &mut Budget::unlimited());
            assert_eq!(after_first.unwrap().len(), 1);
            assert_eq!(store.quarantine_len(), 2);
        }
    }

    /// Each origin's share of the quarantine is counted in records and bytes as its records
    /// are kept, a record past `share` is refused under the append lock with nothing dropped,
    /// and a store written before the shares were counted measures them once when it opens.
    #[test]
    fn each_origins_share_of_the_quarantine_is_counted_and_capped() {
        for mut fixture in Fixture::all() {
            let store = fixture.open();
            let share = |store: &Store, origin: &str| store.quarantined_from(origin).unwrap();
            let from = |origin: &str, body: &str| Quarantined {
                origin: origin.into(),
                ..refused("signature-invalid", body)
            };
            assert_eq!(share(&store, "peer"), QuarantineHeld::default());
            let none = QuarantineCaps::NONE;
            store.quarantine(from("peer", "{"), none, none).unwrap();
            let one = store.quarantine_held().unwrap();
            assert_eq!(share(&store, "peer"), one);

            let two_records = QuarantineCaps {
                max_records: 2,
                max_bytes: u64::MAX,
            };
            let large = "x".repeat(500);
            let few_bytes = QuarantineCaps {
                max_records: u64::MAX,
                max_bytes: one.bytes + 100,
            };
            let refused_large = store.quarantine(from("peer", &large), none, few_bytes);
            assert!(
                matches!(refused_large, Err(QuarantineError::ShareFull(f)) if f.held == one),
                "{refused_large:?}"
            );
            store
                .quarantine(from("peer", "{"), none, two_records)
                .unwrap();
            let third = store.quarantine(from("peer", "{"), none, two_records);
            assert!(
                matches!(third, Err(QuarantineError::ShareFull(_))),
                "{third:?}"
            );
            // Past its share as well as past a full quarantine: passed as past its share.
            let no_room = QuarantineCaps {
                max_records: 0,
                max_bytes: 0,
            };
            let both = store.quarantine(from("peer", "{"), no_room, two_records);
            assert!(
                matches!(both, Err(QuarantineError::ShareFull(_))),
                "{both:?}"
            );
            store
                .quarantine(from("other", &large), none, two_records)
                .unwrap();
            let held = store.quarantine_held().unwrap();
            let (peer, other) = (share(&store, "peer"), share(&store, "other"));
            assert_eq!((peer.records, other.records), (2, 1));
            assert_eq!(peer.bytes + other.bytes, held.bytes);

            // Refusals arriving at once cannot pass the share between them.
            let one_more = QuarantineCaps {
                max_records: 3,
                max_bytes: u64::MAX,
            };
            let barrier = std::sync::Barrier::new(4);
            let kept = std::thread::scope(|scope| {
                let tries: Vec<_> = (0..4)
                    .map(|_| {
                        scope.spawn(|| {
                            barrier.wait();
                            store.quarantine(from("peer", "{"), none, one_more).is_ok()
                        })
                    })
                    .collect();
                tries
                    .into_iter()
                    .filter_map(|t| t.join().unwrap().then_some(()))
                    .count()
            });
            assert_eq!(kept, 1, "one of four fits");
            let (peer, other) = (share(&store, "peer"), share(&store, "other"));
            let held = store.quarantine_held().unwrap();
            assert_eq!(peer.records, 3);
            assert_eq!(peer.bytes + other.bytes, held.bytes);

            // A store from before: no shares, no total; measured once at open.
            let mut b = WriteBatch::default();
            for name in [
                Meta::QuarantineSharesCounted,
                Meta::QuarantineBytes,
                Meta::QuarantinedFrom("peer".into()),
                Meta::QuarantinedBytesFrom("peer".into()),
                Meta::QuarantinedFrom("other".into()),
                Meta::QuarantinedBytesFrom("other".into()),
            ] {
                b.ops.push(Op::Delete(keys::meta(&name)));
            }
            store.apply_other(b).unwrap();
            store.flush().unwrap();
            assert_eq!(share(&store, "peer"), QuarantineHeld::default());
            drop(store);
            let store = fixture.open();
            assert_eq!(share(&store, "peer"), peer);
            assert_eq!(share(&store, "other"), other);
            assert_eq!(store.quarantine_held().unwrap(), held);
        }
    }

    /// A full quarantine refuses the next record and keeps every one it held; its size in bytes
    /// is counted with each record, and measured in a store written before it was counted.
    #[test]
    fn a_full_quarantine_refuses_and_keeps_what_it_held() {
        for mut fixture in Fixture::all() {
            let store = fixture.open();
            let body = "x".repeat(1000);
            let one = serde_json::to_vec(&Quarantined {
                number: 1,
                ..refused("schema-invalid", &body)
            })
            .unwrap()
            .len() as u64;
            let caps = QuarantineCaps {
                max_records: 3,
                max_bytes: 2 * one + one / 2,
            };
            for _ in 0..2 {
                store
                    .quarantine(refused("schema-invalid", &body), caps, QuarantineCaps::NONE)
                    .unwrap();
            }
            let full =
                store.quarantine(refused("schema-invalid", &body), caps, QuarantineCaps::NONE);
            let Err(QuarantineError::Full(full)) = full else {
                panic!("{full:?}");
            };
            assert_eq!(full.held.records, 2);
            assert_eq!(full.held.bytes, 2 * one);
            let small =
                store.quarantine(refused("malformed-json", "{"), caps, QuarantineCaps::NONE);
            assert!(small.is_ok(), "a smaller record still fits: {small:?}");
            let by_count =
                store.quarantine(refused("malformed-json", "{"), caps, QuarantineCaps::NONE);
            assert!(matches!(by_count, Err(QuarantineError::Full(_))));
            assert_eq!(store.quarantine_len(), 3);
            let held = store.quarantine_held().unwrap();
            assert_eq!(held.records, 3);
            let kept = store.quarantined(0, 10, &mut Budget::unlimited()).unwrap();
            let stored: u64 = kept
                .iter()
                .map(|r| serde_json::to_vec(r).unwrap().len() as u64)
                .sum();
            assert_eq!(held.bytes, stored, "as served, byte for byte");
            // A store from before the bytes were counted measures them, and counts them once
            // when it is opened.
            store
                .apply_other({
                    let mut b = WriteBatch::default();
                    b.ops.push(Op::Delete(keys::meta(&Meta::QuarantineBytes)));
                    b.ops
                        .push(Op::Delete(keys::meta(&Meta::QuarantineSharesCounted)));
                    b
                })
                .unwrap();
            store.flush().unwrap();
            assert_eq!(store.quarantine_held().unwrap(), held);
            drop(store);
            let store = fixture.open();
            let counted = store.meta(&Meta::QuarantineBytes).unwrap();
            assert_eq!(counted, Some(held.bytes.to_be_bytes().to_vec()));
        }
    }

    /// An event erased in the batch that appends it (an order received in the same round as
    /// the event it names) is stored stripped, on every engine, and stays so after reopening.
    #[test]
    fn an_event_erased_in_the_batch_that_appends_it_is_stored_stripped() {
        for mut fixture in Fixture::all() {
            let store = fixture.open();
            let id = Uuid::now_v7();
            let mut b = WriteBatch::default();
            stage_append(&mut b, &member(), 1, 1, None);
            b.erase_event(LogAppend::for_tests(), 1, b"signed part", &id);
            store.apply(LogAppend::for_tests(), b).unwrap();
            assert_eq!(store.get(1).unwrap().unwrap(), b"signed part");
            assert_eq!(store.erased(1).unwrap(), Some(id));
            drop(store);
            let store = fixture.open();
            assert_eq!(store.get(1).unwrap().unwrap(), b"signed part");
        }
    }

    /// Reads under a budget stop before the record that would pass it (the first always), on
    /// every engine, and page on from there.
    #[test]
    fn reads_under_a_budget_stop_before_the_record_that_passes_it() {
        for mut fixture in Fixture::all() {
            let store = fixture.open();
            for i in 0..5 {
                let body = "y".repeat(if i == 0 { 5000 } else { 1000 });
                store
                    .quarantine(
                        refused("schema-invalid", &body),
                        QuarantineCaps::NONE,
                        QuarantineCaps::NONE,
                    )
                    .unwrap();
            }
            let first = store.quarantined(0, 10, &mut Budget::new(100)).unwrap();
            assert_eq!(first.len(), 1, "the first always, however large");
            let page = store.quarantined(1, 10, &mut Budget::new(2500)).unwrap();
            assert_eq!(
                page.iter().map(Quarantined::number).collect::<Vec<_>>(),
                [2, 3]
            );
            let m = member();
            for seq in 1..=4 {
                append(&store, &m, seq, seq, None);
            }
            let mut budget = Budget::new(15);
            let found = store.positions_of_source(&m, 0, 4).unwrap();
            assert_eq!(found, [(1, 1), (2, 2), (3, 3), (4, 4)]);
            let events = store.events_located(found, &mut budget).unwrap();
            assert_eq!(events.len(), 2, "each event is 7 bytes: {events:?}");
            let listed = store.range_within(2, 10, &mut Budget::new(7)).unwrap();
            assert_eq!(listed.iter().map(|(p, _)| *p).collect::<Vec<_>>(), [3]);
        }
    }

    #[test]
    fn views_index_checkpoints_cursors_and_access_log() {
        for mut fixture in Fixture::all() {
            let store = fixture.open();
            let mut b = WriteBatch::default();
            for (pin, pos) in [
                ("21503199012345", 2),
                ("21503199012345", 1),
                ("10101199000001", 3),
            ] {
                b.index_person(pin, pos);
                b.set_view(pin, &pin);
            }
            b.set_cursor(LogAppend::for_tests(), &member(), 41);
            store.apply(LogAppend::for_tests(), b).unwrap();
            store
                .append_access(vec![(vec!["21503199012345".into()], b"older".to_vec())])
                .unwrap();
            store
                .append_access(vec![
                    (vec!["21503199012345".into()], b"newer".to_vec()),
                    (vec!["10101199000001".into()], b"other".to_vec()),
                ])
                .unwrap();
            assert_eq!(store.side_len(SideLog::Access), 3);
            store.put_checkpoint(5, b"five").unwrap();
            store.put_checkpoint(9, b"nine").unwrap();
            store.put_cosignature(9, "w1", b"sig").unwrap();
            let index: Vec<_> = store.person_index().map(Result::unwrap).collect();
            assert_eq!(index.len(), 3);
            assert_eq!(index[0], ("10101199000001".to_string(), 3));
            assert_eq!(store.views::<String>().count(), 2);
            assert_eq!(store.cursor(&member()).unwrap(), 41);
            assert_eq!(store.cursor(&"x/GOV/1/y".parse().unwrap()).unwrap(), 0);
            assert_eq!(
                store.access_entries("21503199012345", 10).unwrap(),
                [b"newer".to_vec(), b"older".to_vec()]
            );
            assert_eq!(
                store.latest_checkpoint().unwrap(),
                Some((9, b"nine".to_vec()))
            );
            assert_eq!(store.checkpoints().count(), 2);
            assert_eq!(store.cosignatures(9).unwrap(), [b"sig".to_vec()]);
            store.clear_views().unwrap();
            assert_eq!(store.views::<String>().count(), 0);
            assert_eq!(store.person_index().count(), 0);
            store.set_meta(&Meta::Manifest, b"v").unwrap();
            drop(store);
            let store = match fixture.pg {
                Some(_) => fixture.open(),
                None => Store::open(fixture.dir.path()).unwrap(),
            };
            assert_eq!(
                store.engine(),
                fixture.engine,
                "the engine is recognised on reopening"
            );
            assert_eq!(store.meta(&Meta::Manifest).unwrap(), Some(b"v".to_vec()));
            // A record that does not decode is damage, never a default.
            let mut b = WriteBatch::default();
            b.set_consent("21503199012345", &"not a consent state");
            store.apply(LogAppend::for_tests(), b).unwrap();
            assert!(matches!(
                store.consent::<std::collections::BTreeMap<String, String>>("21503199012345"),
                Err(StoreError::Corrupt("consent state"))
            ));
        }
    }

    #[test]
    fn a_store_of_the_other_engine_is_not_opened() {
        let dir = tempfile::tempdir().unwrap();
        drop(Store::open_with(dir.path(), Engine::Redb).unwrap());
        let err = Store::open_with(dir.path(), Engine::Sled).err().unwrap();
        assert!(
            err.to_string().contains("is a redb store, not sled"),
            "{err}"
        );
    }

    /// Two replicas of one PostgreSQL store appending to the access log at once: every entry
    /// numbered once, no gap, one Merkle tree over them; and only the lease holder writes.
    #[test]
    fn replicas_share_side_logs_and_only_the_writer_writes() {
        let Some(mut fixture) = Fixture::all().pop().filter(|f| f.pg.is_some()) else {
            return;
        };
        let writer = fixture.open();
        let standby = Store::open_postgres(fixture.pg.as_ref().unwrap()).unwrap();
        let refused = standby.set_meta(&Meta::ViewCursor, b"m").unwrap_err();
        assert!(refused.is_not_writer(), "{refused}");
        let mut batch = WriteBatch::default();
        batch.set_cursor(LogAppend::for_tests(), &member(), 7);
        assert!(standby
            .commit(LogAppend::for_tests(), batch)
            .unwrap_err()
            .is_not_writer());
        // What any replica may store: the manifest, a witness's co-signature.
        standby.set_meta(&Meta::Manifest, b"m").unwrap();
        standby.put_cosignature(3, "w", b"sig").unwrap();
        assert_eq!(writer.meta(&Meta::Manifest).unwrap(), Some(b"m".to_vec()));
        std::thread::scope(|s| {
            for store in [&writer, &standby] {
                s.spawn(move || {
                    for i in 0..40 {
                        let entry = format!("read {i}").into_bytes();
                        store
                            .append_access(vec![(vec!["21503199012345".into()], entry)])
                            .unwrap();
                    }
                });
            }
        });
        for store in [&writer, &standby] {
            assert_eq!(store.side_len(SideLog::Access), 80);
        }
        let numbers: Vec<u64> = writer
            .side_entries(SideLog::Access, 0, 100)
            .unwrap()
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        assert_eq!(numbers, (1..=80).collect::<Vec<_>>());
        let frontier = crate::merkle::Frontier::load(&SideLogTree(&standby, SideLog::Access), 80);
        assert_eq!(
            frontier.unwrap().size(),
            80,
            "every subtree of the tree is stored"
        );
        assert_eq!(
            writer.access_entries("21503199012345", 100).unwrap().len(),
            80
        );
    }
}
