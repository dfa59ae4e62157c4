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

use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

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
        })
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
        self.segments.read_range(first, last)
    }

    /// The records at `positions` (ascending), those committed.
    pub(super) fn each(&self, positions: &[u64]) -> io::Result<Vec<(u64, Record)>> {
        let size = self.size();
        let held: Vec<u64> = positions.iter().copied().filter(|&p| p <= size).collect();
        self.segments.read_each(&held)
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
