//! The embedded engines' event log, on a layout made for appending: the events in segment files
//! ([`segments`]), the Merkle hashes as tlog tiles ([`tiles`]), both under `DATA/log/`, beside
//! the key-value engine that keeps the indexes.
//!
//! One commit point: a group commit appends the events and the tiles they complete and
//! fdatasyncs them, *then* commits the KV batch that records the new log size
//! ([`Meta::LogSize`](super::Meta::LogSize)) with the indexes. At open the segments and tiles
//! are cut back to the size the KV holds, so an append whose KV commit did not land is gone,
//! and fewer events than the KV holds is refused as damage. An erasure keeps the event's
//! stripped bytes in the KV (`Space::Log`, the override) and zeroes the segment record in place
//! after that KV commit; an open finishes the zeroing of every override, so a crash between the
//! two leaves nothing personal on disk after the next start. PostgreSQL keeps the log in its
//! table (`jol_kv`) and has none of this.

use std::collections::HashMap;
use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use super::keys::{self, Meta};
use super::kv::{Kv, KvError, Op, Scan};
use crate::merkle::Hash;

mod segments;
mod tiles;

pub(super) use segments::Record;
use segments::Segments;
use tiles::Tiles;

/// The folder under the data directory.
pub(crate) const DIR: &str = "log";

/// The open event log.
pub(super) struct EventLog {
    segments: Segments,
    tiles: Tiles,
    /// Events the KV's commit point covers: what readers see.
    committed: AtomicU64,
    /// Events being erased, with their stripped bytes: from before the erasure's KV commit
    /// until their records are zeroed, reads give these instead of the records, so no reader
    /// gets an erased event's disclosures in between (nor after a zeroing that failed, until
    /// the next open finishes it).
    erasing: Mutex<HashMap<u64, Vec<u8>>>,
    /// Held from a KV commit that appends events until [`EventLog::commit`] publishes them: a
    /// reader that learned of a position from the KV's indexes waits on it
    /// ([`EventLog::await_published`]) rather than take the KV's word for the size, which sled shows
    /// before the commit is durable.
    publishing: Mutex<()>,
}

impl EventLog {
    /// Open the log in `dir`, keeping the `committed` events the KV records.
    pub(super) fn open(dir: &Path, committed: u64) -> io::Result<EventLog> {
        let segments = Segments::open(dir, committed)?;
        let tiles = Tiles::open(dir, committed, |first, last| segments.leaves(first, last))?;
        Ok(EventLog {
            segments,
            tiles,
            committed: AtomicU64::new(committed),
            erasing: Mutex::new(HashMap::new()),
            publishing: Mutex::new(()),
        })
    }

    /// Hold while committing an append to the KV and publishing it ([`EventLog::commit`]).
    pub(super) fn publishing(&self) -> std::sync::MutexGuard<'_, ()> {
        self.publishing
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Before reading positions up to `wanted` that the KV's indexes named: past the committed
    /// size, wait until the append whose KV commit the reader saw is published (or has
    /// failed), never taking the KV's own size, which sled shows before its commit is durable.
    pub(super) fn await_published(&self, wanted: u64) {
        if wanted > self.size() {
            drop(self.publishing());
        }
    }

    /// Events about to be erased (position, stripped bytes): read as stripped from now on.
    pub(super) fn erasing(&self, events: impl IntoIterator<Item = (u64, Vec<u8>)>) {
        if let Ok(mut erasing) = self.erasing.lock() {
            erasing.extend(events);
        }
    }

    /// The erasure of `positions` did not commit: read them as their records again.
    pub(super) fn not_erasing(&self, positions: &[u64]) {
        if let Ok(mut erasing) = self.erasing.lock() {
            positions.iter().for_each(|p| drop(erasing.remove(p)));
        }
    }

    /// `records` with those being erased read as their stripped bytes.
    fn overlaid(&self, mut records: Vec<(u64, Record)>) -> Vec<(u64, Record)> {
        let Ok(erasing) = self.erasing.lock() else {
            return records;
        };
        if erasing.is_empty() {
            return records;
        }
        for (position, record) in &mut records {
            if let Some(stripped) = erasing.get(position) {
                *record = Record::Live(stripped.clone());
            }
        }
        records
    }

    /// Append events (position, bytes, leaf hash) after the last one held and make them durable
    /// with the tiles they complete; not visible until [`EventLog::commit`].
    pub(super) fn append(&self, records: &[(u64, &[u8], Hash)]) -> io::Result<()> {
        self.segments.append(records)?;
        self.tiles.append(records.iter().map(|r| r.2))
    }

    /// The KV committed the log's size: readers see the events up to it.
    pub(super) fn commit(&self, size: u64) {
        self.committed.fetch_max(size, Ordering::Release);
    }

    /// Events the log holds, as committed.
    pub(super) fn size(&self) -> u64 {
        self.committed.load(Ordering::Acquire)
    }

    /// The records of `first ..= last`, as far as committed.
    pub(super) fn range(&self, first: u64, last: u64) -> io::Result<Vec<(u64, Record)>> {
        let last = last.min(self.size());
        if first > last {
            return Ok(Vec::new());
        }
        Ok(self.overlaid(self.segments.read_range(first, last)?))
    }

    /// The records at `positions` (ascending), those committed.
    pub(super) fn each(&self, positions: &[u64]) -> io::Result<Vec<(u64, Record)>> {
        let size = self.size();
        let held: Vec<u64> = positions.iter().copied().filter(|&p| p <= size).collect();
        Ok(self.overlaid(self.segments.read_each(&held)?))
    }

    /// The stored size of each committed record from `first` on, at most `count`.
    pub(super) fn sizes(&self, first: u64, count: usize) -> io::Result<Vec<usize>> {
        let held = self.size().saturating_sub(first.saturating_sub(1));
        let count = count.min(usize::try_from(held).unwrap_or(usize::MAX));
        self.segments.sizes(first, count)
    }

    /// Zero the records of erased events in place, durably (their stripped bytes are the KV's).
    pub(super) fn zero(&self, positions: &[u64]) -> io::Result<()> {
        let mut files: Vec<std::sync::Arc<std::fs::File>> = Vec::new();
        for &position in positions {
            if let Some(file) = self.segments.erase(position)? {
                if !files.iter().any(|f| std::sync::Arc::ptr_eq(f, &file)) {
                    files.push(file);
                }
            }
        }
        for file in files {
            file.sync_data()?;
        }
        // Zeroed: the records say erased and the KV holds the stripped bytes.
        self.not_erasing(positions);
        Ok(())
    }

    /// Whether the record at `position` is zeroed as an erasure leaves it.
    fn is_zeroed(&self, position: u64) -> io::Result<bool> {
        self.segments.is_zeroed(position)
    }

    /// The hash of a perfect subtree of the event log.
    pub(super) fn perfect(&self, level: u32, index: u64) -> io::Result<Hash> {
        self.tiles.perfect(level, index)
    }

    /// Bytes the log's files take.
    pub(super) fn bytes(&self) -> u64 {
        self.segments.bytes() + self.tiles.bytes()
    }
}

/// Events of a store written before the segments (its `Space::Log` keys past the log's size) are
/// moved into them, a page at a time: each page appended and synced, then one KV commit that
/// deletes its keys and records the new size, so a crash in between moves the page again. Their
/// leaves are the ones the KV recorded (an erased event's stored bytes are its stripped form).
pub(super) fn migrate_from_kv(kv: &Kv, log: &EventLog) -> Result<(), KvError> {
    const PAGE: usize = 4096;
    loop {
        let first = log.size() + 1;
        let page = kv.range(&keys::log(first), &keys::log(u64::MAX), PAGE)?;
        if page.is_empty() {
            return Ok(());
        }
        let mut records = Vec::with_capacity(page.len());
        let mut ops = Vec::with_capacity(page.len() + 1);
        for ((key, bytes), expected) in page.into_iter().zip(first..) {
            let position = position_of(&key)?;
            if position != expected {
                return Err(
                    damaged(format!("the KV's log skips from {expected} to {position}")).into(),
                );
            }
            let leaf: Hash = kv
                .get(&keys::subtree(0, position - 1))?
                .and_then(|v| v.try_into().ok())
                .ok_or_else(|| damaged(format!("no leaf recorded for event {position}")))?;
            records.push((position, bytes, leaf));
            ops.push(Op::Delete(key));
        }
        let size = first + records.len() as u64 - 1;
        let refs: Vec<(u64, &[u8], Hash)> = records
            .iter()
            .map(|(p, b, l)| (*p, b.as_slice(), *l))
            .collect();
        log.append(&refs)?;
        ops.push(Op::Put(
            keys::meta(&Meta::LogSize),
            size.to_be_bytes().into(),
        ));
        kv.commit(ops)?;
        log.commit(size);
        tracing::info!(events = size, "moved the store's events into segment files");
    }
}

/// Zero every erased event's record that is not zeroed yet in its segment (an erasure whose
/// commit landed before the zeroing did, or whose zeroing was torn): the KV's `Space::Log` keys are exactly those events.
pub(super) fn finish_erasures(kv: &Kv, log: &EventLog) -> Result<(), KvError> {
    let mut live = Vec::new();
    for entry in Scan::new(kv, &keys::Space::Log.all()) {
        let position = position_of(&entry?.0)?;
        if position <= log.size() && !log.is_zeroed(position)? {
            live.push(position);
        }
    }
    Ok(log.zero(&live)?)
}

fn position_of(key: &[u8]) -> Result<u64, KvError> {
    key.get(1..9)
        .and_then(|b| b.try_into().ok())
        .map(u64::from_be_bytes)
        .ok_or_else(|| damaged("a log key without a position".into()).into())
}

fn damaged(what: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what)
}

#[cfg(test)]
mod tests {
    use super::super::{Append, Engine, LogAppend, Store, WriteBatch};
    use super::*;
    use crate::event::identifiers::MemberId;
    use crate::merkle::{leaf_hash, MemoryTree, Subtrees};

    fn source() -> MemberId {
        "central-server/GOV/70000001/migration".parse().unwrap()
    }

    fn commit(store: &Store, positions: std::ops::RangeInclusive<u64>, body: &str) {
        let source = source();
        let bodies: Vec<(u64, Vec<u8>)> = positions
            .map(|p| (p, format!("{body} {p}").into_bytes()))
            .collect();
        let mut b = WriteBatch::default();
        for (p, bytes) in &bodies {
            b.append(
                LogAppend::for_tests(),
                Append {
                    position: *p,
                    source: &source,
                    sequence: *p,
                    id: uuid::Uuid::now_v7(),
                    jws: bytes,
                    leaf: leaf_hash(bytes),
                    idempotency: None,
                },
            );
        }
        store.commit(LogAppend::for_tests(), b).unwrap();
    }

    /// A reader past the committed size waits for an append being committed to be published,
    /// and sees only what was published (never a size the KV shows before its commit is
    /// durable, as sled does).
    #[test]
    fn a_reader_past_the_size_waits_for_the_append_being_committed() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_with(dir.path(), Engine::Sled).unwrap();
        commit(&store, 1..=2, "event");
        let log = store.event_log().unwrap().unwrap();
        let committing = log.publishing();
        std::thread::scope(|scope| {
            let reader = scope.spawn(|| {
                log.await_published(3);
                log.size()
            });
            std::thread::sleep(std::time::Duration::from_millis(50));
            assert!(!reader.is_finished(), "the reader waits");
            log.commit(3);
            drop(committing);
            assert_eq!(reader.join().unwrap(), 3);
        });
        // Nothing being committed: no wait.
        log.await_published(4);
        assert_eq!(log.size(), 3);
    }

    /// From the moment an erasure is about to commit until its records are zeroed (or, when the
    /// zeroing failed, until the next open finishes it), reads give the stripped bytes, never
    /// the record with the erased disclosures; an erasure that did not commit leaves the record
    /// read as it was.
    #[test]
    fn an_event_being_erased_reads_stripped_until_its_record_is_zeroed() {
        for engine in [Engine::Redb, Engine::Sled] {
            let dir = tempfile::tempdir().unwrap();
            let store = Store::open_with(dir.path(), engine).unwrap();
            commit(&store, 1..=3, "secret");
            let log = store.event_log().unwrap().unwrap();
            log.erasing([(2, b"stripped 2".to_vec())]);
            // The KV commit and the zeroing have not happened: the segment still holds it.
            assert_eq!(
                log.segments.read_each(&[2]).unwrap()[0].1,
                Record::Live(b"secret 2".to_vec())
            );
            assert_eq!(store.get(2).unwrap().unwrap(), b"stripped 2", "{engine}");
            let read: Vec<Vec<u8>> = store
                .range(0, 3)
                .unwrap()
                .into_iter()
                .map(|e| e.1)
                .collect();
            assert_eq!(
                read,
                [&b"secret 1"[..], b"stripped 2", b"secret 3"],
                "{engine}"
            );
            log.not_erasing(&[2]);
            assert_eq!(
                store.get(2).unwrap().unwrap(),
                b"secret 2",
                "{engine}: not erased after all"
            );
            // Zeroed: the overlay goes, the record says erased (its bytes are then the KV's).
            log.erasing([(3, b"stripped 3".to_vec())]);
            log.zero(&[3]).unwrap();
            assert!(log.erasing.lock().unwrap().is_empty());
            assert_eq!(log.range(3, 3).unwrap()[0].1, Record::Erased, "{engine}");
        }
    }

    /// Events appended and synced whose KV commit never landed (a crash between the two) are
    /// cut at the next open: the log, its tiles and the next position are the KV's.
    #[test]
    fn an_append_whose_kv_commit_did_not_land_is_cut_at_open() {
        for engine in [Engine::Redb, Engine::Sled] {
            let dir = tempfile::tempdir().unwrap();
            {
                let store = Store::open_with(dir.path(), engine).unwrap();
                commit(&store, 1..=300, "kept");
                let log = store.event_log().unwrap().unwrap();
                let lost: Vec<(u64, Vec<u8>)> = (301..=600)
                    .map(|p| (p, format!("lost {p}").into_bytes()))
                    .collect();
                let records: Vec<(u64, &[u8], Hash)> = lost
                    .iter()
                    .map(|(p, b)| (*p, b.as_slice(), leaf_hash(b)))
                    .collect();
                log.append(&records).unwrap();
                assert_eq!(store.last_position().unwrap(), 300, "{engine}: not visible");
            }
            let store = Store::open_with(dir.path(), engine).unwrap();
            assert_eq!(store.last_position().unwrap(), 300, "{engine}");
            assert_eq!(store.get(301).unwrap(), None);
            commit(&store, 301..=301, "new");
            assert_eq!(store.get(301).unwrap().unwrap(), b"new 301");
            let leaves: Vec<Hash> = (1..=300)
                .map(|p| leaf_hash(format!("kept {p}").as_bytes()))
                .chain([leaf_hash(b"new 301")])
                .collect();
            let tree = MemoryTree::new(leaves);
            assert_eq!(
                crate::merkle::root(&store, 301).unwrap(),
                crate::merkle::root(&tree, 301).unwrap(),
                "{engine}: the tiles past the commit point were cut"
            );
        }
    }

    /// A store whose events are keys of the KV (written before the segments) has them moved
    /// into segments at open, with the leaves the KV recorded; the KV keeps none of them.
    #[test]
    fn a_store_written_before_the_segments_is_moved_into_them() {
        let dir = tempfile::tempdir().unwrap();
        let bodies: Vec<Vec<u8>> = (1..=5000u64)
            .map(|p| format!("old {p}").into_bytes())
            .collect();
        {
            let kv = Kv::open(dir.path(), Engine::Redb).unwrap();
            let mut frontier = crate::merkle::Frontier::default();
            let mut ops = Vec::new();
            for (p, b) in (1u64..).zip(&bodies) {
                ops.push(Op::Put(keys::log(p), b.clone()));
                for (level, index, hash) in frontier.append(leaf_hash(b)) {
                    ops.push(Op::Put(keys::subtree(level, index), hash.to_vec()));
                }
            }
            kv.commit(ops).unwrap();
        }
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.last_position().unwrap(), 5000);
        assert_eq!(store.range(4998, 10).unwrap().len(), 2);
        assert_eq!(store.get(1).unwrap().unwrap(), b"old 1");
        let kv = store.kv().unwrap();
        assert_eq!(Scan::new(&kv, &keys::Space::Log.all()).count(), 0);
        let tree = MemoryTree::new(bodies.iter().map(|b| leaf_hash(b)));
        for size in [1, 256, 4097, 5000] {
            assert_eq!(
                crate::merkle::root(&store, size).unwrap(),
                crate::merkle::root(&tree, size).unwrap()
            );
        }
        assert_eq!(store.perfect(3, 7).unwrap(), tree.perfect(3, 7).unwrap());
    }

    /// An erased event's bytes are gone from the segment files once the erasure commits, and
    /// an erasure that committed but whose zeroing a crash prevented is finished at open.
    #[test]
    fn an_erased_event_is_zeroed_on_disk_even_after_a_crash_before_the_zeroing() {
        let secret = "21503199012345";
        let held = |dir: &Path| {
            let segment = std::fs::read(dir.join(DIR).join("00000000.seg")).unwrap();
            segment
                .windows(secret.len())
                .filter(|w| *w == secret.as_bytes())
                .count()
        };
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open(dir.path()).unwrap();
            commit(&store, 1..=3, secret);
            let mut b = WriteBatch::default();
            let erasure = uuid::Uuid::now_v7();
            b.erase_event(LogAppend::for_tests(), 2, b"stripped 2", &erasure);
            store.commit(LogAppend::for_tests(), b).unwrap();
            assert_eq!(store.get(2).unwrap().unwrap(), b"stripped 2");
            assert_eq!(
                store.get(3).unwrap().unwrap(),
                format!("{secret} 3").as_bytes()
            );
            // A crash after the KV commit of the next erasure, before its zeroing.
            store
                .kv()
                .unwrap()
                .commit(vec![Op::Put(keys::log(3), b"stripped 3".to_vec())])
                .unwrap();
        }
        assert_eq!(held(dir.path()), 2, "events 1 and 3 hold it");
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.get(3).unwrap().unwrap(), b"stripped 3");
        assert_eq!(store.range(0, 10).unwrap().len(), 3);
        assert_eq!(held(dir.path()), 1, "event 1, never erased, alone holds it");
    }
}
