//! The embedded engines' event log as append-only segment files: `DATA/log/NNNNNNNN.seg`, each
//! at most [`SEGMENT_BYTES`] (a record that does not fit starts the next file).
//!
//! A record is a fixed header and the event's bytes:
//!
//! | bytes | field |
//! |---|---|
//! | 4 | payload length (u32 BE) |
//! | 4 | flags (u32 BE): 0 live, 1 erased (payload zeroed, the stripped bytes are in the KV) |
//! | 8 | position (u64 BE) |
//! | 32 | Merkle leaf hash of the event |
//! | 4 | CRC-32 of flags, position, leaf and payload |
//!
//! The position → (segment, offset) index is held in memory (8 bytes an event) and rebuilt at
//! open by reading the headers; a record past the count the caller keeps (the store's commit
//! point), or one that does not parse, and everything after it is cut. What the files hold is
//! durable when [`Segments::sync`] returns.

use std::fs::{File, OpenOptions};
use std::io::{self, BufReader, Read};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use crate::merkle::Hash;

/// Bytes a segment file grows to before the next one is started.
pub(crate) const SEGMENT_BYTES: u64 = 64 * 1024 * 1024;
/// Encoded records are written out whenever this many are buffered.
const WRITE_BYTES: usize = 1 << 20;
/// Bytes of a record's header.
pub(super) const HEADER: usize = 52;
const LIVE: u32 = 0;
const ERASED: u32 = 1;

/// One record as read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(in crate::store) enum Record {
    /// The event's bytes, checksum verified.
    Live(Vec<u8>),
    /// Marked erased (zeroed by an erasure, or torn while being zeroed): its bytes are the KV's.
    Erased,
    /// The checksum does not match (torn while being zeroed, or altered behind the node's
    /// back): the KV's bytes if it holds them, else these, as stored (the audit then finds the
    /// event altered).
    Damaged(Vec<u8>),
}

/// Where a record is.
#[derive(Debug, Clone, Copy)]
struct At {
    segment: u32,
    offset: u32,
}

impl At {
    fn pack(self) -> u64 {
        (u64::from(self.segment) << 32) | u64::from(self.offset)
    }
    fn unpack(v: u64) -> At {
        At {
            segment: (v >> 32) as u32,
            offset: v as u32,
        }
    }
}

/// The segment files and the index over them.
pub(super) struct Segments {
    dir: PathBuf,
    state: RwLock<State>,
    /// One appender at a time (the writer; erasures are the writer's too), with the buffer it
    /// encodes into (kept: a fresh one per commit costs page faults).
    appending: Mutex<Vec<u8>>,
}

#[derive(Default)]
struct State {
    files: Vec<Arc<File>>,
    /// Bytes used in each file.
    ends: Vec<u64>,
    /// Record of position `p` at `index[p - 1]` ([`At::pack`]).
    index: Vec<u64>,
}

fn segment_name(n: usize) -> String {
    format!("{n:08}.seg")
}

fn checksum(flags: u32, position: u64, leaf: &Hash, payload: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&flags.to_be_bytes());
    h.update(&position.to_be_bytes());
    h.update(leaf);
    h.update(payload);
    h.finalize()
}

fn encode(into: &mut Vec<u8>, flags: u32, position: u64, leaf: &Hash, payload: &[u8]) {
    into.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    into.extend_from_slice(&flags.to_be_bytes());
    into.extend_from_slice(&position.to_be_bytes());
    into.extend_from_slice(leaf);
    into.extend_from_slice(&checksum(flags, position, leaf, payload).to_be_bytes());
    into.extend_from_slice(payload);
}

/// A parsed header.
struct Header {
    len: usize,
    flags: u32,
    position: u64,
    leaf: Hash,
    crc: u32,
}

fn header(b: &[u8; HEADER]) -> Header {
    let u32_at = |i: usize| u32::from_be_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
    let mut position = [0u8; 8];
    position.copy_from_slice(&b[8..16]);
    let mut leaf = [0u8; 32];
    leaf.copy_from_slice(&b[16..48]);
    Header {
        len: u32_at(0) as usize,
        flags: u32_at(4),
        position: u64::from_be_bytes(position),
        leaf,
        crc: u32_at(48),
    }
}

fn damaged(what: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what)
}

impl Segments {
    /// Open the segments in `dir` (created if missing), keeping the first `keep` records: what
    /// follows them is cut. Fewer than `keep` records is damage (an acknowledged event lost).
    pub(super) fn open(dir: &Path, keep: u64) -> io::Result<Segments> {
        crate::store::create_dir_durably(dir)?;
        let mut names: Vec<String> = std::fs::read_dir(dir)?
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".seg"))
            .collect();
        names.sort();
        let mut state = State::default();
        for (n, name) in names.iter().enumerate() {
            if *name != segment_name(n) {
                return Err(damaged(format!(
                    "{}: segment {name} out of order",
                    dir.display()
                )));
            }
        }
        // Read first, change nothing until the segments are known to hold what the KV
        // committed: a damaged store is refused as it is.
        let mut beyond = Vec::new();
        for name in &names {
            let path = dir.join(name);
            if state.index.len() as u64 >= keep {
                beyond.push(path);
                continue;
            }
            let file = OpenOptions::new().read(true).write(true).open(&path)?;
            let segment = state.files.len() as u32;
            let end = scan(&file, segment, keep, &mut state.index)?;
            state.files.push(Arc::new(file));
            state.ends.push(end);
        }
        if (state.index.len() as u64) < keep {
            return Err(damaged(format!(
                "{}: the segments hold {} events, the store committed {keep}",
                dir.display(),
                state.index.len()
            )));
        }
        for (file, &end) in state.files.iter().zip(&state.ends) {
            if file.metadata()?.len() > end {
                file.set_len(end)?;
                file.sync_all()?;
            }
        }
        // The last first: a crash part way leaves the files that remain numbered without a gap.
        for path in beyond.iter().rev() {
            std::fs::remove_file(path)?;
        }
        File::open(dir)?.sync_all()?;
        Ok(Segments {
            dir: dir.to_path_buf(),
            state: RwLock::new(state),
            appending: Mutex::new(Vec::new()),
        })
    }

    fn state(&self) -> io::Result<std::sync::RwLockReadGuard<'_, State>> {
        self.state
            .read()
            .map_err(|_| damaged("segment index lock".into()))
    }

    /// How many records the files hold (committed or not yet).
    #[cfg(test)]
    pub(super) fn len(&self) -> io::Result<u64> {
        Ok(self.state()?.index.len() as u64)
    }

    /// Append records (positions following the last one held), write them, and make them
    /// durable: returns after the fdatasync of every file written.
    pub(super) fn append(&self, records: &[(u64, &[u8], Hash)]) -> io::Result<()> {
        let mut buf = self
            .appending
            .lock()
            .map_err(|_| damaged("segment append lock".into()))?;
        buf.clear();
        let (mut segment, mut end, mut next, mut file) = {
            let s = self.state()?;
            (
                s.files.len().saturating_sub(1),
                s.ends.last().copied().unwrap_or(SEGMENT_BYTES),
                s.index.len() as u64 + 1,
                s.files.last().cloned(),
            )
        };
        let mut placed: Vec<u64> = Vec::with_capacity(records.len());
        let mut new_files: Vec<Arc<File>> = Vec::new();
        let mut touched: Vec<Arc<File>> = Vec::new();
        // Each file's end after this append, by segment number.
        let mut ends: Vec<(usize, u64)> = Vec::new();
        // Where in the current file `buf` starts.
        let mut start = end;
        for &(position, bytes, leaf) in records {
            if position != next {
                return Err(damaged(format!(
                    "segment append out of order: {position} after {}",
                    next - 1
                )));
            }
            let size = (HEADER + bytes.len()) as u64;
            if end > 0 && end + size > SEGMENT_BYTES {
                if let Some(f) = &file {
                    write_out(f, &mut buf, &mut start, &mut touched)?;
                    ends.push((segment, end));
                }
                segment = if file.is_none() { 0 } else { segment + 1 };
                let created = Arc::new(
                    OpenOptions::new()
                        .read(true)
                        .write(true)
                        .create_new(true)
                        .open(self.dir.join(segment_name(segment)))?,
                );
                new_files.push(created.clone());
                file = Some(created);
                (start, end) = (0, 0);
            }
            placed.push(
                At {
                    segment: segment as u32,
                    offset: end as u32,
                }
                .pack(),
            );
            encode(&mut buf, LIVE, position, &leaf, bytes);
            end += size;
            next += 1;
            if buf.len() >= WRITE_BYTES {
                if let Some(f) = &file {
                    write_out(f, &mut buf, &mut start, &mut touched)?;
                }
            }
        }
        if let Some(f) = &file {
            write_out(f, &mut buf, &mut start, &mut touched)?;
            ends.push((segment, end));
        }
        for f in &touched {
            f.sync_data()?;
        }
        if !new_files.is_empty() {
            for f in &new_files {
                f.sync_all()?;
            }
            File::open(&self.dir)?.sync_all()?;
        }
        let mut s = self
            .state
            .write()
            .map_err(|_| damaged("segment index lock".into()))?;
        for f in new_files {
            s.files.push(f);
            s.ends.push(0);
        }
        for (segment, end) in ends {
            s.ends[segment] = end;
        }
        s.index.extend(placed);
        Ok(())
    }

    fn locate(&self, position: u64) -> io::Result<Option<(Arc<File>, At)>> {
        let s = self.state()?;
        let Some(&packed) = position
            .checked_sub(1)
            .and_then(|i| s.index.get(i as usize))
        else {
            return Ok(None);
        };
        let at = At::unpack(packed);
        Ok(s.files.get(at.segment as usize).map(|f| (f.clone(), at)))
    }

    /// The payload size of each record from `first` on (at most `count`), from the index
    /// alone (nothing is read).
    pub(super) fn sizes(&self, first: u64, count: usize) -> io::Result<Vec<usize>> {
        let s = self.state()?;
        let from = first.saturating_sub(1) as usize;
        let to = (from + count).min(s.index.len());
        Ok((from..to)
            .map(|i| {
                let at = At::unpack(s.index[i]);
                let end = match s.index.get(i + 1).map(|&n| At::unpack(n)) {
                    Some(next) if next.segment == at.segment => u64::from(next.offset),
                    _ => s.ends[at.segment as usize],
                };
                (end - u64::from(at.offset)) as usize - HEADER
            })
            .collect())
    }

    /// The records of `first ..= last` (those held), read with one read per segment.
    pub(super) fn read_range(&self, first: u64, last: u64) -> io::Result<Vec<(u64, Record)>> {
        let spans = {
            let s = self.state()?;
            let last = last.min(s.index.len() as u64);
            let mut spans: Vec<(Arc<File>, u64, u64, u64)> = Vec::new(); // file, from, to, first
            for position in first.max(1)..=last {
                let at = At::unpack(s.index[position as usize - 1]);
                let end = match s.index.get(position as usize).map(|&n| At::unpack(n)) {
                    Some(next) if next.segment == at.segment => u64::from(next.offset),
                    _ => s.ends[at.segment as usize],
                };
                match spans.last_mut() {
                    Some(span) if Arc::ptr_eq(&span.0, &s.files[at.segment as usize]) => {
                        span.2 = end
                    }
                    _ => spans.push((
                        s.files[at.segment as usize].clone(),
                        u64::from(at.offset),
                        end,
                        position,
                    )),
                }
            }
            spans
        };
        let mut out = Vec::new();
        for (file, from, to, mut position) in spans {
            let mut buf = vec![0u8; (to - from) as usize];
            file.read_exact_at(&mut buf, from)?;
            let mut rest = buf.as_slice();
            while !rest.is_empty() {
                let (record, len) = parse(rest, position)?;
                out.push((position, record));
                rest = &rest[len..];
                position += 1;
            }
        }
        Ok(out)
    }

    /// The records at `positions` (any order; those not held are left out).
    pub(super) fn read_each(&self, positions: &[u64]) -> io::Result<Vec<(u64, Record)>> {
        let mut out = Vec::with_capacity(positions.len());
        let mut i = 0;
        while i < positions.len() {
            // Contiguous runs are read at once.
            let mut j = i + 1;
            while j < positions.len() && positions[j] == positions[j - 1] + 1 {
                j += 1;
            }
            out.extend(self.read_range(positions[i], positions[j - 1])?);
            i = j;
        }
        Ok(out)
    }

    /// The leaf hashes recorded for `first ..= last`.
    pub(super) fn leaves(&self, first: u64, last: u64) -> io::Result<Vec<Hash>> {
        let mut leaves = Vec::new();
        for position in first..=last {
            let (file, at) = self
                .locate(position)?
                .ok_or_else(|| damaged(format!("no record at position {position}")))?;
            let mut h = [0u8; HEADER];
            file.read_exact_at(&mut h, u64::from(at.offset))?;
            leaves.push(header(&h).leaf);
        }
        Ok(leaves)
    }

    /// Zero the record at `position` in place and mark it erased (its header, with the leaf,
    /// stays): not durable until [`Segments::sync_file_of`] or a later append's sync.
    pub(super) fn erase(&self, position: u64) -> io::Result<Option<Arc<File>>> {
        let _one = self
            .appending
            .lock()
            .map_err(|_| damaged("segment append lock".into()))?;
        let Some((file, at)) = self.locate(position)? else {
            return Ok(None);
        };
        let mut h = [0u8; HEADER];
        file.read_exact_at(&mut h, u64::from(at.offset))?;
        let held = header(&h);
        let zeros = vec![0u8; held.len];
        let mut buf = Vec::with_capacity(HEADER + held.len);
        encode(&mut buf, ERASED, position, &held.leaf, &zeros);
        file.write_all_at(&buf, u64::from(at.offset))?;
        Ok(Some(file))
    }

    /// Whether the record at `position` is zeroed as an erasure leaves it: marked, every
    /// payload byte 0, its checksum intact.
    pub(super) fn is_zeroed(&self, position: u64) -> io::Result<bool> {
        let Some((file, at)) = self.locate(position)? else {
            return Ok(false);
        };
        let mut h = [0u8; HEADER];
        file.read_exact_at(&mut h, u64::from(at.offset))?;
        let held = header(&h);
        let mut payload = vec![0u8; held.len];
        file.read_exact_at(&mut payload, u64::from(at.offset) + HEADER as u64)?;
        Ok(held.flags == ERASED
            && payload.iter().all(|b| *b == 0)
            && checksum(ERASED, position, &held.leaf, &payload) == held.crc)
    }

    /// Bytes the files take.
    pub(super) fn bytes(&self) -> u64 {
        self.state().map_or(0, |s| s.ends.iter().sum())
    }
}

/// Write what `buf` holds to `file` at `start`, move `start` past it and empty `buf`.
fn write_out(
    file: &Arc<File>,
    buf: &mut Vec<u8>,
    start: &mut u64,
    touched: &mut Vec<Arc<File>>,
) -> io::Result<()> {
    if buf.is_empty() {
        return Ok(());
    }
    file.write_all_at(buf, *start)?;
    *start += buf.len() as u64;
    buf.clear();
    if !touched.iter().any(|f| Arc::ptr_eq(f, file)) {
        touched.push(file.clone());
    }
    Ok(())
}

/// Parse the record at the start of `bytes`, expected at `position`: it and its length.
fn parse(bytes: &[u8], position: u64) -> io::Result<(Record, usize)> {
    let h: &[u8; HEADER] = bytes
        .get(..HEADER)
        .and_then(|h| h.try_into().ok())
        .ok_or_else(|| damaged(format!("record {position}: short header")))?;
    let h = header(h);
    let payload = bytes
        .get(HEADER..HEADER + h.len)
        .ok_or_else(|| damaged(format!("record {position}: short payload")))?;
    if h.position != position {
        return Err(damaged(format!(
            "record {position}: the header says {}",
            h.position
        )));
    }
    let intact = checksum(h.flags, h.position, &h.leaf, payload) == h.crc;
    let record = match (intact, h.flags) {
        (true, LIVE) => Record::Live(payload.to_vec()),
        (_, ERASED) => Record::Erased,
        _ => Record::Damaged(payload.to_vec()),
    };
    Ok((record, HEADER + h.len))
}

/// Read `file`'s headers in order, pushing each record's place on `index` until it holds
/// `keep`; returns the end of the last record kept (where the file is cut).
fn scan(file: &File, segment: u32, keep: u64, index: &mut Vec<u64>) -> io::Result<u64> {
    let len = file.metadata()?.len();
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let mut offset = 0u64;
    while (index.len() as u64) < keep && offset + HEADER as u64 <= len {
        let mut h = [0u8; HEADER];
        reader.read_exact(&mut h)?;
        let h = header(&h);
        let end = offset + (HEADER + h.len) as u64;
        if h.position != index.len() as u64 + 1 || end > len {
            break;
        }
        reader.seek_relative(h.len as i64)?;
        index.push(
            At {
                segment,
                offset: offset as u32,
            }
            .pack(),
        );
        offset = end;
    }
    Ok(offset)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaf(p: u64) -> Hash {
        [p as u8; 32]
    }

    fn append(s: &Segments, from: u64, to: u64) {
        let bodies: Vec<Vec<u8>> = (from..=to)
            .map(|p| format!("event {p}").into_bytes())
            .collect();
        let records: Vec<(u64, &[u8], Hash)> = (from..=to)
            .zip(&bodies)
            .map(|(p, b)| (p, b.as_slice(), leaf(p)))
            .collect();
        s.append(&records).unwrap();
    }

    #[test]
    fn records_read_back_and_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let s = Segments::open(dir.path(), 0).unwrap();
        append(&s, 1, 10);
        append(&s, 11, 12);
        assert_eq!(s.len().unwrap(), 12);
        let all = s.read_range(1, 100).unwrap();
        assert_eq!(all.len(), 12);
        assert_eq!(all[11], (12, Record::Live(b"event 12".to_vec())));
        assert_eq!(s.sizes(9, 5).unwrap(), [7, 8, 8, 8]);
        drop(s);
        let s = Segments::open(dir.path(), 12).unwrap();
        assert_eq!(s.read_each(&[3, 4, 9]).unwrap().len(), 3);
        assert_eq!(s.leaves(5, 6).unwrap(), [leaf(5), leaf(6)]);
    }

    /// What follows the count the store committed is cut at open, a torn tail included; fewer
    /// records than committed is refused.
    #[test]
    fn a_torn_or_uncommitted_tail_is_cut_and_a_short_log_refused() {
        let dir = tempfile::tempdir().unwrap();
        let s = Segments::open(dir.path(), 0).unwrap();
        append(&s, 1, 5);
        drop(s);
        let path = dir.path().join(segment_name(0));
        let whole = std::fs::metadata(&path).unwrap().len();
        let f = OpenOptions::new().write(true).open(&path).unwrap();
        f.set_len(whole - 3).unwrap(); // a torn last record
        drop(f);
        let s = Segments::open(dir.path(), 3).unwrap();
        assert_eq!(s.len().unwrap(), 3);
        append(&s, 4, 4);
        assert_eq!(
            s.read_range(4, 4).unwrap()[0].1,
            Record::Live(b"event 4".to_vec())
        );
        drop(s);
        assert!(Segments::open(dir.path(), 9).is_err());
    }

    #[test]
    fn an_erased_record_is_zeroed_and_keeps_its_leaf() {
        let dir = tempfile::tempdir().unwrap();
        let s = Segments::open(dir.path(), 0).unwrap();
        let secret = b"21503199012345 secret".to_vec();
        s.append(&[(1, b"before".as_slice(), leaf(1)), (2, &secret, leaf(2))])
            .unwrap();
        s.erase(2).unwrap().unwrap().sync_data().unwrap();
        assert_eq!(s.read_range(2, 2).unwrap()[0].1, Record::Erased);
        assert_eq!(s.leaves(2, 2).unwrap(), [leaf(2)]);
        let on_disk = std::fs::read(dir.path().join(segment_name(0))).unwrap();
        assert!(!on_disk.windows(secret.len()).any(|w| w == secret));
    }

    #[test]
    fn a_full_segment_starts_the_next() {
        let dir = tempfile::tempdir().unwrap();
        let s = Segments::open(dir.path(), 0).unwrap();
        let big = vec![7u8; (SEGMENT_BYTES / 3) as usize];
        for p in 1..=4 {
            s.append(&[(p, big.as_slice(), leaf(p))]).unwrap();
        }
        assert_eq!(s.state().unwrap().files.len(), 2);
        drop(s);
        let s = Segments::open(dir.path(), 4).unwrap();
        let read = s.read_range(2, 4).unwrap();
        assert_eq!(read.len(), 3);
        assert!(read.iter().all(|(_, r)| *r == Record::Live(big.clone())));
    }
}
