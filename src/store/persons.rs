//! What the embedded engines keep per person and rewrite often, on a layout made for that: the
//! registry views (rewritten by the projector with every event about the person) and the
//! consent states (by the writer with every consent statement), each kind in one append-only
//! file, `DATA/views/NNNNNNNN.views` and `DATA/consents/NNNNNNNN.consents` (one generation at
//! a time), with the index PIN → record in memory. In the KV's B-tree each such write (most
//! often for a person not seen before, at a random key) dirtied a page of its own; here it is
//! one sequential write.
//!
//! A record is a header and a body:
//!
//! | bytes | field |
//! |---|---|
//! | 4 | body length (u32 BE) |
//! | 4 | CRC-32 of the body |
//! | 1 | PIN length (the body from here) |
//! | n | PIN |
//! | 1 | 1: the person's record follows; 0: it is deleted |
//! | … | the record (a packed view, `store/packed.rs`; a consent state's JSON) |
//!
//! The commit point is the KV's: a write appends its records (and, for consent states,
//! fdatasyncs them: [`Kept::synced_on_write`]), *then* the KV batch records the file's
//! generation and length ([`Kept::meta`]) with what the records go with (the projector's
//! cursor, the writer's group commit), under one lock so the lengths are recorded in order. For
//! views the KV's record may reach the disk before their bytes do. At open the file is cut back
//! to that length (durably, before anything is written over what was cut); a file shorter than
//! it (for views, a power loss before the kernel wrote their tail back), or a record within it
//! that does not parse, is damage ([`Opened::Damaged`]: the views are projected again from the log,
//! a node whose consent states are damaged does not start). Versions that were rewritten or deleted
//! stay in the file until the live records are copied into the next generation's file, when the
//! dead bytes outweigh the live ones, and at `jol store compact` (an erased person's old records
//! are gone from the files then, as from the KV's pages).

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

/// Which records a file keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kept {
    /// Registry views, packed (the projector's).
    Views,
    /// Consent states (the writer's).
    Consents,
}

impl Kept {
    /// Every kind, each with its own file.
    pub(super) const ALL: [Kept; 2] = [Kept::Views, Kept::Consents];

    /// The folder under the data directory, and the files' extension.
    pub(super) fn dir(self) -> &'static str {
        match self {
            Kept::Views => "views",
            Kept::Consents => "consents",
        }
    }

    /// Where the KV records the file's generation and committed length.
    pub(super) fn meta(self) -> super::Meta {
        match self {
            Kept::Views => super::Meta::ViewsAt,
            Kept::Consents => super::Meta::ConsentsAt,
        }
    }

    /// Present in the KV while a file of this kind is first being made.
    pub(super) fn starting(self) -> super::Meta {
        super::Meta::FileStarting(self.dir())
    }

    pub(super) fn file_name(self, generation: u64) -> String {
        format!("{generation:08}.{}", self.dir())
    }

    /// Whether each write is fdatasynced before the KV records the file's new length. Consent
    /// states are: a node whose consent states are damaged does not start. Views are not: they
    /// are a fold of the log, and a views file found shorter than the KV records (the kernel
    /// had not written its tail back when the power went) is projected again from the log at
    /// open, as a damaged one is. A fdatasync per projector page was 5–6 % of the CPU per
    /// event where pages are small (BENCHMARKS.md, sixteenth sitting).
    fn synced_on_write(self) -> bool {
        match self {
            Kept::Consents => true,
            Kept::Views => false,
        }
    }
}
/// Bytes of a record's header.
const HEADER: usize = 8;
/// Capacity of the encoding buffer kept between writes.
const BUFFER_KEPT: usize = 4 * 1024 * 1024;
/// A record at least this large is written from where it is, not copied into the buffer.
const DIRECT_BYTES: usize = 256 * 1024;
/// Dead bytes below which the file is never rewritten.
const DEAD_BYTES_KEPT: u64 = 8 * 1024 * 1024;

/// Where a file stands, as the KV records it: the generation's file and how many of its
/// bytes are committed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct At {
    pub(super) generation: u64,
    pub(super) len: u64,
}

impl At {
    pub(super) fn encode(self) -> [u8; 16] {
        let mut b = [0u8; 16];
        b[..8].copy_from_slice(&self.generation.to_be_bytes());
        b[8..].copy_from_slice(&self.len.to_be_bytes());
        b
    }

    pub(super) fn decode(bytes: &[u8]) -> Option<At> {
        Some(At {
            generation: u64::from_be_bytes(bytes.get(..8)?.try_into().ok()?),
            len: u64::from_be_bytes(bytes.get(8..16)?.try_into().ok()?),
        })
    }
}

/// One change to a person's record: the record, or `None` when it is deleted.
pub(super) type Change = (String, Option<Vec<u8>>);

/// Where a person's record is in the file.
#[derive(Debug, Clone, Copy)]
struct Slot {
    offset: u64,
    len: u32,
}

/// An open file of per-person records.
pub(super) struct PersonFile {
    kept: Kept,
    dir: PathBuf,
    state: RwLock<State>,
    /// One writer at a time, from its append until the KV has recorded it, with the buffer it
    /// encodes into.
    appending: Mutex<Vec<u8>>,
    /// The committed length at the last rewrite that failed (0: none failed).
    rewrite_failed_at: AtomicU64,
    /// Set when a KV commit of a write failed (it may have landed all the same) or the KV is
    /// being reopened: reads and writes are refused until [`PersonFile::reload`] has read the
    /// file again at what the KV records.
    unsettled: AtomicBool,
}

struct State {
    file: Arc<File>,
    at: At,
    index: BTreeMap<Box<str>, Slot>,
    /// Bytes of the records the index names.
    live: u64,
}

impl State {
    /// The record of `pin` at `slot` is now its latest: held (`kept`) or deleted.
    fn index(&mut self, pin: &str, slot: Slot, kept: bool) {
        let replaced = match kept {
            true => self.index.insert(pin.into(), slot),
            false => self.index.remove(pin),
        };
        self.live -= replaced.map_or(0, |r| u64::from(r.len));
        self.live += if kept { u64::from(slot.len) } else { 0 };
    }
}

/// What [`PersonFile::open`] found.
pub(super) enum Opened {
    /// The committed records, as the KV records them.
    Intact(PersonFile),
    /// The file is missing, short, or damaged within its committed length (why): left as it
    /// is, for the caller to start a new generation or refuse to open.
    Damaged(String),
}

fn damaged(what: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what)
}

/// A lock a panicking holder left poisoned.
fn poisoned<T>(_: T) -> io::Error {
    io::Error::other("person file lock poisoned")
}

/// A new, empty file at `path` (one that was there is emptied).
fn new_file(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)
}

impl PersonFile {
    /// Open the generation the KV records at `at`, cut to its committed length, and delete
    /// every other generation's file (an interrupted rewrite's, or the one it replaced).
    pub(super) fn open(kept: Kept, dir: &Path, at: At) -> io::Result<Opened> {
        let dir = dir.join(kept.dir());
        let dir = dir.as_path();
        super::create_dir_durably(dir)?;
        match PersonFile::read_generation(kept, dir, at) {
            Ok(file) => {
                file.delete_other_generations()?;
                Ok(Opened::Intact(file))
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::InvalidData
                        | io::ErrorKind::NotFound
                        | io::ErrorKind::UnexpectedEof
                ) =>
            {
                Ok(Opened::Damaged(e.to_string()))
            }
            Err(e) => Err(e),
        }
    }

    /// A new, empty generation's file under the data directory `dir` (nothing recorded in the
    /// KV yet).
    pub(super) fn create(kept: Kept, dir: &Path, generation: u64) -> io::Result<PersonFile> {
        PersonFile::create_in(kept, &dir.join(kept.dir()), generation)
    }

    fn create_in(kept: Kept, dir: &Path, generation: u64) -> io::Result<PersonFile> {
        super::create_dir_durably(dir)?;
        let file = new_file(&dir.join(kept.file_name(generation)))?;
        file.sync_all()?;
        File::open(dir)?.sync_all()?;
        Ok(PersonFile::with(
            kept,
            dir,
            State {
                file: Arc::new(file),
                at: At { generation, len: 0 },
                index: BTreeMap::new(),
                live: 0,
            },
        ))
    }

    fn with(kept: Kept, dir: &Path, state: State) -> PersonFile {
        PersonFile {
            kept,
            dir: dir.to_path_buf(),
            state: RwLock::new(state),
            appending: Mutex::new(Vec::new()),
            rewrite_failed_at: AtomicU64::new(0),
            unsettled: AtomicBool::new(false),
        }
    }

    fn read_generation(kept: Kept, dir: &Path, at: At) -> io::Result<PersonFile> {
        let path = dir.join(kept.file_name(at.generation));
        let file = OpenOptions::new().read(true).write(true).open(&path)?;
        let on_disk = file.metadata()?.len();
        if on_disk < at.len {
            return Err(damaged(format!(
                "{} holds {on_disk} bytes, {} committed",
                path.display(),
                at.len
            )));
        }
        cut(&file, at.len)?;
        let file = Arc::new(file);
        let mut state = State {
            file: file.clone(),
            at,
            index: BTreeMap::new(),
            live: 0,
        };
        let mut reader = io::BufReader::with_capacity(1 << 20, &*file);
        let mut offset = 0u64;
        let mut body = Vec::new();
        while offset < at.len {
            let len = read_record(&mut reader, &mut body, at.len - offset)
                .map_err(|e| damaged(format!("{} at byte {offset}: {e}", path.display())))?;
            let (pin, record) = parse_body(&body).ok_or_else(|| {
                damaged(format!(
                    "{} at byte {offset}: a record without a PIN",
                    path.display()
                ))
            })?;
            let slot = Slot {
                offset,
                len: len as u32,
            };
            state.index(pin, slot, record.is_some());
            offset += len as u64;
        }
        if offset != at.len {
            return Err(damaged(format!(
                "{}: a record runs past the {} committed bytes",
                path.display(),
                at.len
            )));
        }
        Ok(PersonFile::with(kept, dir, state))
    }

    /// The newest generation whose file is under the data directory `dir` (0: none).
    pub(super) fn newest_generation(kept: Kept, dir: &Path) -> io::Result<u64> {
        let ours = format!(".{}", kept.dir());
        let mut newest = 0;
        let Ok(entries) = std::fs::read_dir(dir.join(kept.dir())) else {
            return Ok(0);
        };
        for entry in entries {
            let name = entry?.file_name();
            let name = name.to_string_lossy();
            if let Some(n) = name.strip_suffix(&ours).and_then(|n| n.parse().ok()) {
                newest = newest.max(n);
            }
        }
        Ok(newest)
    }

    /// Delete every other generation's file of this kind.
    pub(super) fn delete_other_generations(&self) -> io::Result<()> {
        let keep = self.kept.file_name(self.at()?.generation);
        let ours = format!(".{}", self.kept.dir());
        for entry in std::fs::read_dir(&self.dir)? {
            let entry = entry?;
            let name = entry.file_name();
            if name.to_string_lossy().ends_with(&ours) && name.to_string_lossy() != keep {
                std::fs::remove_file(entry.path())?;
            }
        }
        Ok(())
    }

    fn state(&self) -> io::Result<std::sync::RwLockReadGuard<'_, State>> {
        self.state.read().map_err(poisoned)
    }

    /// The state for reading: refused while the file is unsettled (never an index that may not
    /// match what the KV shows).
    fn settled(&self) -> io::Result<std::sync::RwLockReadGuard<'_, State>> {
        // Checked under the lock: a failed commit unsettles the file before it lets go of it.
        let state = self.state()?;
        if self.is_unsettled() {
            return Err(io::Error::other(format!(
                "the {} file awaits reading again after a failed write",
                self.kept.dir()
            )));
        }
        Ok(state)
    }

    /// Whether [`PersonFile::reload`] must run before the next read or write.
    pub(super) fn is_unsettled(&self) -> bool {
        self.unsettled.load(Ordering::SeqCst)
    }

    /// Refuse reads and writes until [`PersonFile::reload`] (the KV is being reopened).
    pub(super) fn unsettle(&self) {
        self.unsettled.store(true, Ordering::SeqCst);
    }

    /// Where the file stands (what the KV must record).
    pub(super) fn at(&self) -> io::Result<At> {
        Ok(self.state()?.at)
    }

    /// Bytes the file takes.
    pub(super) fn bytes(&self) -> u64 {
        self.state().map_or(0, |s| s.at.len)
    }

    /// Append `changes`, fdatasync them (where [`Kept::synced_on_write`]), and hand the new [`At`]
    /// to `commit` (the KV batch that records it); the index changes once that succeeds. A failed
    /// append is cut back; a failed commit unsettles the file (it may have landed).
    pub(super) fn write<E: From<io::Error>>(
        &self,
        changes: &[Change],
        commit: impl FnOnce(At) -> Result<(), E>,
    ) -> Result<(), E> {
        let mut buf = self.appending.lock().map_err(poisoned)?;
        let (file, before) = {
            let s = self.settled()?;
            (s.file.clone(), s.at)
        };
        buf.clear();
        let mut slots = Vec::with_capacity(changes.len());
        let written = append(&file, &mut buf, before.len, changes, &mut slots).and_then(|end| {
            match self.kept.synced_on_write() {
                true => file.sync_data().map(|()| end),
                false => Ok(end),
            }
        });
        if buf.capacity() > BUFFER_KEPT {
            *buf = Vec::new();
        }
        let end = match written {
            Ok(end) => end,
            Err(e) => {
                if cut(&file, before.len).is_err() {
                    // Read again (and cut again) before the next write lands on those bytes.
                    self.unsettle();
                }
                return Err(e.into());
            }
        };
        let after = At {
            generation: before.generation,
            len: end,
        };
        // Readers wait from the KV commit until the index shows what it made visible (a
        // consent state is never older than the events committed with it, nor a view than
        // the projector's cursor).
        let mut s = self.state.write().map_err(poisoned)?;
        if let Err(e) = commit(after) {
            // The commit may have landed all the same (sled applies, then flushes): the records
            // stay, and the file is read again at whatever the KV then records.
            self.unsettle();
            return Err(e);
        }
        s.at = after;
        for ((pin, record), slot) in changes.iter().zip(slots) {
            s.index(pin, slot, record.is_some());
        }
        Ok(())
    }

    /// Read the file again at what a reopened KV records (what was applied to the KV but not
    /// made durable may be gone from it, and the file is cut back to match).
    pub(super) fn reload(&self, at: At) -> io::Result<()> {
        let _writes = self.appending.lock().map_err(poisoned)?;
        let again = PersonFile::read_generation(self.kept, &self.dir, at)?;
        let state = again.state.into_inner().map_err(poisoned)?;
        *self.state.write().map_err(poisoned)? = state;
        self.unsettled.store(false, Ordering::SeqCst);
        Ok(())
    }

    /// Whether the dead versions outweigh the live records enough to rewrite the file.
    pub(super) fn wants_rewrite(&self) -> bool {
        let failed_at = self.rewrite_failed_at.load(Ordering::Relaxed);
        self.state().is_ok_and(|s| {
            let dead = s.at.len - s.live;
            dead > DEAD_BYTES_KEPT && dead > s.live && s.at.len > failed_at + DEAD_BYTES_KEPT
        })
    }

    /// Copy the live records into the next generation's file (fdatasynced), hand its [`At`] to
    /// `commit` (which must make the KV's record of it durable), then switch to it and delete
    /// the old file. Writes wait meanwhile; reads go on from the old file.
    pub(super) fn rewrite<E: From<io::Error>>(
        &self,
        commit: impl FnOnce(At) -> Result<(), E>,
    ) -> Result<(), E> {
        self.next_generation(true, commit)
    }

    /// Start the next generation's file empty (a rebuild of the views), as [`PersonFile::rewrite`].
    pub(super) fn clear<E: From<io::Error>>(
        &self,
        commit: impl FnOnce(At) -> Result<(), E>,
    ) -> Result<(), E> {
        self.next_generation(false, commit)
    }

    fn next_generation<E: From<io::Error>>(
        &self,
        keep_live: bool,
        commit: impl FnOnce(At) -> Result<(), E>,
    ) -> Result<(), E> {
        let _writes = self.appending.lock().map_err(poisoned)?;
        let (file, at, slots) = {
            let s = self.state()?;
            let slots: Vec<(Box<str>, Slot)> = match keep_live {
                true => s.index.iter().map(|(p, s)| (p.clone(), *s)).collect(),
                false => Vec::new(),
            };
            (s.file.clone(), s.at, slots)
        };
        let generation = at.generation + 1;
        let path = self.dir.join(self.kept.file_name(generation));
        let copied = copy_records(&file, &slots, &path).and_then(|(new, index, len)| {
            File::open(&self.dir)?.sync_all()?;
            Ok((new, index, len))
        });
        let (new, index, len) = match copied {
            Ok(copied) => copied,
            Err(e) => return Err(self.rewrite_failed(&path, at, e.into())),
        };
        let new_at = At { generation, len };
        if let Err(e) = commit(new_at) {
            // The commit may have landed all the same (sled applies, then flushes; redb may have
            // written its header when the fsync failed): both files stay, the file is read
            // again at whatever the KV then records, and the next open deletes the other one.
            self.rewrite_failed_at.store(at.len, Ordering::Relaxed);
            self.unsettle();
            return Err(e);
        }
        {
            let mut s = self.state.write().map_err(poisoned)?;
            *s = State {
                file: Arc::new(new),
                at: new_at,
                index,
                live: len,
            };
        }
        std::fs::remove_file(self.dir.join(self.kept.file_name(at.generation)))?;
        File::open(&self.dir)?.sync_all()?;
        Ok(())
    }

    /// A rewrite that failed before the KV could record it: its file goes, and none is tried
    /// again until the file has grown.
    fn rewrite_failed<E>(&self, path: &Path, at: At, e: E) -> E {
        let _ = std::fs::remove_file(path);
        self.rewrite_failed_at.store(at.len, Ordering::Relaxed);
        e
    }

    /// The record of `pin`, if one is held.
    pub(super) fn get(&self, pin: &str) -> io::Result<Option<Vec<u8>>> {
        Ok(self.get_many(&[pin])?.pop().flatten())
    }

    /// The records of `pins`, in the order asked. Records near each other in the file (a page's
    /// consent states, appended in one round) are read with one system call.
    pub(super) fn get_many(&self, pins: &[&str]) -> io::Result<Vec<Option<Vec<u8>>>> {
        let (file, slots): (Arc<File>, Vec<Option<Slot>>) = {
            let s = self.settled()?;
            (
                s.file.clone(),
                pins.iter().map(|p| s.index.get(*p).copied()).collect(),
            )
        };
        let mut held: Vec<(usize, Slot)> = (slots.iter().enumerate())
            .filter_map(|(i, slot)| slot.map(|slot| (i, slot)))
            .collect();
        held.sort_by_key(|(_, slot)| slot.offset);
        let mut out = vec![None; pins.len()];
        for run in runs(&held) {
            if let [(i, slot)] = run {
                // Alone (a large view, say): read straight into the buffer returned.
                out[*i] = Some(read_record_of(&file, *slot, Some(pins[*i]))?);
                continue;
            }
            let (start, end) = (run[0].1.offset, run_end(run));
            let mut bytes = vec![0u8; (end - start) as usize];
            file.read_exact_at(&mut bytes, start)?;
            for &(i, slot) in run {
                let at = (slot.offset - start) as usize;
                let record = bytes[at..at + slot.len as usize].to_vec();
                out[i] = Some(record_of(record, slot, Some(pins[i]))?);
            }
        }
        Ok(out)
    }

    /// Every record, in PIN order, read as the iterator goes.
    pub(super) fn each(&self) -> io::Result<impl Iterator<Item = io::Result<Vec<u8>>>> {
        let s = self.settled()?;
        let file = s.file.clone();
        let slots: Vec<Slot> = s.index.values().copied().collect();
        Ok(slots
            .into_iter()
            .map(move |slot| read_record_of(&file, slot, None)))
    }

    /// How many persons have a record.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.state().map_or(0, |s| s.index.len())
    }
}

/// Cut `file` back to `len` bytes, durably when that shortens it. The bytes past `len` will be
/// written over by later records; were the cut itself lost (a filesystem that commits the
/// views file's metadata apart from the KV's), those later records are not fdatasynced
/// ([`Kept::synced_on_write`]) and a power loss could bring back the old records at their
/// offsets, each intact, as if committed.
fn cut(file: &File, len: u64) -> io::Result<()> {
    if file.metadata()?.len() > len {
        file.set_len(len)?;
        file.sync_all()?;
    }
    Ok(())
}

/// Copy the records at `slots` of `from` into a new file at `path`, fdatasynced; returns it
/// with the index over it and its length.
fn copy_records(
    from: &File,
    slots: &[(Box<str>, Slot)],
    path: &Path,
) -> io::Result<(File, BTreeMap<Box<str>, Slot>, u64)> {
    let mut out = io::BufWriter::with_capacity(1 << 20, new_file(path)?);
    let mut index = BTreeMap::new();
    let mut len = 0u64;
    let mut chunk = vec![0u8; 64 * 1024];
    for (pin, slot) in slots {
        // In chunks: a record can be as large as a view that names a great many events.
        let mut copied = 0u64;
        while copied < u64::from(slot.len) {
            let n = chunk.len().min((u64::from(slot.len) - copied) as usize);
            from.read_exact_at(&mut chunk[..n], slot.offset + copied)?;
            out.write_all(&chunk[..n])?;
            copied += n as u64;
        }
        index.insert(
            pin.clone(),
            Slot {
                offset: len,
                len: slot.len,
            },
        );
        len += u64::from(slot.len);
    }
    let new = out.into_inner().map_err(|e| e.into_error())?;
    new.sync_all()?;
    Ok((new, index, len))
}

/// Write the records of `changes` at `at`, small ones gathered in `buf`, a large one (a view
/// that names a great many events) from where it is, without a copy; returns where they end and
/// pushes each one's slot.
fn append(
    file: &File,
    buf: &mut Vec<u8>,
    mut at: u64,
    changes: &[Change],
    slots: &mut Vec<Slot>,
) -> io::Result<u64> {
    for (pin, record) in changes {
        let offset = at + buf.len() as u64;
        let data = record.as_deref().unwrap_or_default();
        let len = encode_prefix(buf, pin, record.as_deref())?;
        if data.len() < DIRECT_BYTES {
            buf.extend_from_slice(data);
        } else {
            file.write_all_at(buf, at)?;
            at += buf.len() as u64;
            buf.clear();
            file.write_all_at(data, at)?;
            at += data.len() as u64;
        }
        slots.push(Slot {
            offset,
            len: len as u32,
        });
    }
    file.write_all_at(buf, at)?;
    Ok(at + buf.len() as u64)
}

/// Encode one record's header, PIN and flag into `buf` (its checksum covers `record`, which the
/// caller writes next); returns the whole record's length.
fn encode_prefix(buf: &mut Vec<u8>, pin: &str, record: Option<&[u8]>) -> io::Result<usize> {
    let pin_len = u8::try_from(pin.len())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "a PIN over 255 bytes"))?;
    let data = record.unwrap_or_default();
    let body_len = 1 + pin.len() + 1 + data.len();
    let body_len32 = u32::try_from(body_len)
        .ok()
        .filter(|l| l.checked_add(HEADER as u32).is_some())
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "a record over 4 GiB"))?;
    let start = buf.len();
    buf.extend_from_slice(&body_len32.to_be_bytes());
    buf.extend_from_slice(&[0; 4]);
    buf.push(pin_len);
    buf.extend_from_slice(pin.as_bytes());
    buf.push(u8::from(record.is_some()));
    let mut crc = crc32fast::Hasher::new();
    crc.update(&buf[start + HEADER..]);
    crc.update(data);
    buf[start + 4..start + HEADER].copy_from_slice(&crc.finalize().to_be_bytes());
    Ok(HEADER + body_len)
}

/// Read the next record's body into `body`; returns the record's length.
/// A record longer than `within` bytes is damage (read no further).
fn read_record(from: &mut impl Read, body: &mut Vec<u8>, within: u64) -> io::Result<usize> {
    let mut header = [0u8; HEADER];
    from.read_exact(&mut header)?;
    let (len, crc) = header_fields(&header);
    let len = len as usize;
    if (HEADER + len) as u64 > within {
        return Err(damaged(format!(
            "a record of {} bytes where {within} are left",
            HEADER + len
        )));
    }
    body.resize(len, 0);
    from.read_exact(body)?;
    if crc32fast::hash(body) != crc {
        return Err(damaged("checksum does not match".into()));
    }
    Ok(HEADER + len)
}

/// A header's body length and CRC-32.
fn header_fields(header: &[u8; HEADER]) -> (u32, u32) {
    let [l0, l1, l2, l3, c0, c1, c2, c3] = *header;
    (
        u32::from_be_bytes([l0, l1, l2, l3]),
        u32::from_be_bytes([c0, c1, c2, c3]),
    )
}

/// A body's PIN and record (`None`: deleted).
fn parse_body(body: &[u8]) -> Option<(&str, Option<&[u8]>)> {
    let pin_len = usize::from(*body.first()?);
    let pin = std::str::from_utf8(body.get(1..1 + pin_len)?).ok()?;
    let rest = body.get(1 + pin_len..)?;
    match rest.split_first()? {
        (1, view) => Some((pin, Some(view))),
        (0, []) => Some((pin, None)),
        _ => None,
    }
}

/// The record at `slot`, checksum verified, and of `pin` when one is given (a slot read after
/// the file was read again elsewhere may name another person's record).
fn read_record_of(file: &File, slot: Slot, pin: Option<&str>) -> io::Result<Vec<u8>> {
    let mut record = vec![0u8; slot.len as usize];
    file.read_exact_at(&mut record, slot.offset)?;
    record_of(record, slot, pin)
}

/// The record read from `slot`, checksum verified and of `pin` when one is given.
fn record_of(mut record: Vec<u8>, slot: Slot, pin: Option<&str>) -> io::Result<Vec<u8>> {
    let (header, body) = record.split_at(HEADER.min(record.len()));
    let fields = <&[u8; HEADER]>::try_from(header).ok().map(header_fields);
    if fields != Some((body.len() as u32, crc32fast::hash(body))) {
        return Err(damaged(format!(
            "the per-person file's record at byte {} does not match its checksum",
            slot.offset
        )));
    }
    // One copy of the record, however large (a view can name a million events): the header and
    // PIN are drained off the front.
    let start = match parse_body(body) {
        Some((of, Some(kept))) if pin.is_none_or(|p| p == of) => record.len() - kept.len(),
        _ => {
            return Err(damaged(format!(
                "the per-person file's record at byte {} is not the one indexed",
                slot.offset
            )))
        }
    };
    record.drain(..start);
    Ok(record)
}

/// Records this close to the one before them are read in the same system call.
const READ_GAP: u64 = 4096;
/// A run read in one system call is at most this long (a large record is read alone).
const READ_RUN: u64 = 256 * 1024;

/// `held` (sorted by offset) split into runs each read with one system call.
fn runs(held: &[(usize, Slot)]) -> Vec<&[(usize, Slot)]> {
    let mut runs = Vec::new();
    let mut first = 0;
    for i in 1..=held.len() {
        let ends = match held.get(i) {
            None => true,
            Some((_, next)) => {
                let (start, end) = (held[first].1.offset, run_end(&held[first..i]));
                next.offset > end + READ_GAP || next.offset + u64::from(next.len) - start > READ_RUN
            }
        };
        if ends {
            runs.push(&held[first..i]);
            first = i;
        }
    }
    runs.retain(|r| !r.is_empty());
    runs
}

/// Where the last record of a run ends.
fn run_end(run: &[(usize, Slot)]) -> u64 {
    run.iter()
        .map(|(_, s)| s.offset + u64::from(s.len))
        .max()
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(pin: &str, view: Option<&str>) -> Change {
        (pin.to_string(), view.map(|v| v.as_bytes().to_vec()))
    }

    /// Write `changes`, recording the new length in `at` as the KV would.
    fn write(views: &PersonFile, at: &mut At, changes: &[Change]) {
        views
            .write(changes, |new| {
                *at = new;
                Ok::<_, io::Error>(())
            })
            .unwrap();
    }

    /// Alter the views file of `at`'s generation under `dir`, and open it: why it is damaged.
    fn damaged_at_open(dir: &Path, at: At, alter: impl FnOnce(&mut Vec<u8>)) -> String {
        let path = dir.join("views").join(Kept::Views.file_name(at.generation));
        let mut bytes = std::fs::read(&path).unwrap();
        alter(&mut bytes);
        std::fs::write(&path, bytes).unwrap();
        match PersonFile::open(Kept::Views, dir, at).unwrap() {
            Opened::Damaged(why) => why,
            Opened::Intact(_) => panic!("a damaged file was taken as intact"),
        }
    }

    /// An empty views file of generation 1 in a new folder, and where it stands.
    fn fresh() -> (tempfile::TempDir, PersonFile, At) {
        let dir = tempfile::tempdir().unwrap();
        let views = PersonFile::create(Kept::Views, dir.path(), 1).unwrap();
        let at = views.at().unwrap();
        (dir, views, at)
    }

    fn opened(dir: &Path, at: At) -> PersonFile {
        match PersonFile::open(Kept::Views, dir, at).unwrap() {
            Opened::Intact(v) => v,
            Opened::Damaged(why) => panic!("damaged: {why}"),
        }
    }

    #[test]
    fn views_read_back_and_survive_reopening() {
        let (dir, views, mut at) = fresh();
        write(
            &views,
            &mut at,
            &[change("1", Some("a")), change("2", Some("b"))],
        );
        write(
            &views,
            &mut at,
            &[change("1", Some("a2")), change("2", None)],
        );
        assert_eq!(views.get("1").unwrap(), Some(b"a2".to_vec()));
        assert_eq!(views.get("2").unwrap(), None);
        drop(views);
        let views = opened(dir.path(), at);
        assert_eq!(
            views.get_many(&["2", "1", "3"]).unwrap(),
            vec![None, Some(b"a2".to_vec()), None]
        );
        assert_eq!(views.len(), 1);
        let all: Vec<Vec<u8>> = views.each().unwrap().map(Result::unwrap).collect();
        assert_eq!(all, vec![b"a2".to_vec()]);
    }

    #[test]
    fn what_the_kv_did_not_record_is_cut_and_a_short_or_damaged_file_starts_over() {
        let (dir, views, mut at) = fresh();
        write(&views, &mut at, &[change("1", Some("a"))]);
        let committed = at;
        write(&views, &mut at, &[change("1", Some("uncommitted"))]);
        drop(views);
        let views = opened(dir.path(), committed);
        assert_eq!(views.get("1").unwrap(), Some(b"a".to_vec()));
        assert_eq!(views.at().unwrap(), committed);
        drop(views);

        let short = At {
            len: committed.len + 1,
            ..committed
        };
        let Opened::Damaged(why) = PersonFile::open(Kept::Views, dir.path(), short).unwrap() else {
            panic!("a short file was taken as intact");
        };
        assert!(why.contains("committed"), "{why}");
        assert!(
            dir.path()
                .join("views")
                .join(Kept::Views.file_name(1))
                .exists(),
            "the damaged file was not kept for its owner"
        );
        let fresh = PersonFile::create(Kept::Views, dir.path(), 2).unwrap();
        let mut at = fresh.at().unwrap();
        write(&fresh, &mut at, &[change("1", Some("abc"))]);
        drop(fresh);
        let why = damaged_at_open(dir.path(), at, |bytes| {
            let last = bytes.len() - 1;
            bytes[last] ^= 1;
        });
        assert!(why.contains("checksum"), "{why}");
    }

    #[test]
    fn a_rewrite_keeps_only_the_live_views_and_an_unrecorded_one_is_dropped_at_open() {
        let (dir, views, mut at) = fresh();
        for i in 0..50 {
            write(
                &views,
                &mut at,
                &[change("1", Some(&format!("v{i}"))), change("2", Some("x"))],
            );
        }
        write(&views, &mut at, &[change("2", None)]);
        let before = at.len;
        views
            .rewrite(|new| {
                at = new;
                Ok::<_, io::Error>(())
            })
            .unwrap();
        assert_eq!(at.generation, 2);
        assert!(at.len < before / 50, "{} of {before}", at.len);
        assert_eq!(views.get("1").unwrap(), Some(b"v49".to_vec()));
        assert_eq!(views.get("2").unwrap(), None);
        assert!(!dir
            .path()
            .join("views")
            .join(Kept::Views.file_name(1))
            .exists());
        // A rewrite the KV never recorded (a crash before its commit): its file goes at open.
        std::fs::write(
            dir.path().join("views").join(Kept::Views.file_name(3)),
            b"half a rewrite",
        )
        .unwrap();
        drop(views);
        let views = opened(dir.path(), at);
        assert_eq!(views.get("1").unwrap(), Some(b"v49".to_vec()));
        assert!(!dir
            .path()
            .join("views")
            .join(Kept::Views.file_name(3))
            .exists());
        let files = std::fs::read_dir(dir.path().join("views")).unwrap().count();
        assert_eq!(files, 1);
    }

    /// A rewrite whose KV commit failed may have landed all the same: the new generation's
    /// file stays, the file answers nothing until it is read again at what the KV records,
    /// either generation reads back whole, and the next open keeps only the one recorded.
    #[test]
    fn a_rewrite_whose_commit_failed_keeps_both_generations_until_the_next_open() {
        let (dir, views, mut at) = fresh();
        for i in 0..20 {
            write(&views, &mut at, &[change("1", Some(&format!("v{i}")))]);
        }
        let failed = views.rewrite(|_| Err(io::Error::other("the commit failed")));
        assert!(failed.is_err());
        let file = |g| dir.path().join("views").join(Kept::Views.file_name(g));
        assert!(
            file(1).exists() && file(2).exists(),
            "both generations stay"
        );
        assert!(views.is_unsettled());
        assert!(views.get("1").is_err(), "nothing is answered meanwhile");
        let landed = At {
            generation: 2,
            len: std::fs::metadata(file(2)).unwrap().len(),
        };
        for recorded in [at, landed] {
            views.reload(recorded).unwrap();
            assert_eq!(views.get("1").unwrap(), Some(b"v19".to_vec()));
        }
        drop(views);
        let views = opened(dir.path(), landed);
        assert_eq!(views.get("1").unwrap(), Some(b"v19".to_vec()));
        assert!(
            !file(1).exists(),
            "the open keeps only the generation recorded"
        );
    }

    /// A record too large to copy into the buffer is written from where it is, between small
    /// ones, and reads back, also after a rewrite and another open.
    #[test]
    fn a_large_record_among_small_ones_reads_back() {
        let (dir, views, mut at) = fresh();
        let large: Vec<u8> = (0..DIRECT_BYTES * 2 + 7).map(|i| (i % 251) as u8).collect();
        let changes = vec![
            change("1", Some("a")),
            ("2".to_string(), Some(large.clone())),
            change("3", Some("c")),
        ];
        write(&views, &mut at, &changes);
        write(&views, &mut at, &changes);
        assert_eq!(views.get("2").unwrap(), Some(large.clone()));
        views
            .rewrite(|new| {
                at = new;
                Ok::<_, io::Error>(())
            })
            .unwrap();
        drop(views);
        let views = opened(dir.path(), at);
        assert_eq!(
            views.get_many(&["3", "2", "1"]).unwrap(),
            vec![Some(b"c".to_vec()), Some(large), Some(b"a".to_vec())]
        );
    }

    /// Records read together come back each in its place, neighbours in one read, records far
    /// apart or large in reads of their own, a PIN asked twice twice.
    #[test]
    fn many_records_read_at_once_come_back_in_the_order_asked() {
        let (_dir, views, mut at) = fresh();
        let large: Vec<u8> = vec![7; READ_RUN as usize];
        let far: Vec<u8> = vec![8; READ_GAP as usize * 2];
        let changes: Vec<Change> = (0..40)
            .map(|i| (i.to_string(), Some(format!("v{i}").into_bytes())))
            .chain([
                ("far".to_string(), Some(far)),
                ("big".to_string(), Some(large.clone())),
            ])
            .chain((40..45).map(|i| (i.to_string(), Some(format!("v{i}").into_bytes()))))
            .collect();
        write(&views, &mut at, &changes);
        let asked = ["44", "big", "0", "none", "39", "0", "40"];
        let got = views.get_many(&asked).unwrap();
        let text = |i: usize| {
            got[i]
                .as_deref()
                .map(|v| String::from_utf8_lossy(v).to_string())
        };
        assert_eq!(text(0).as_deref(), Some("v44"));
        assert_eq!(got[1].as_deref(), Some(large.as_slice()));
        assert_eq!(text(2).as_deref(), Some("v0"));
        assert_eq!(got[3], None);
        assert_eq!(text(4).as_deref(), Some("v39"));
        assert_eq!(text(5).as_deref(), Some("v0"));
        assert_eq!(text(6).as_deref(), Some("v40"));
    }

    #[test]
    fn a_length_past_the_committed_bytes_is_damage_not_an_allocation() {
        let (dir, views, mut at) = fresh();
        write(
            &views,
            &mut at,
            &[change("1", Some("a")), change("2", Some("b"))],
        );
        drop(views);
        let why = damaged_at_open(dir.path(), at, |bytes| {
            bytes[..4].copy_from_slice(&0xffff_fff0u32.to_be_bytes());
        });
        assert!(why.contains("are left"), "{why}");
    }

    /// After the KV is reopened (an I/O error), the file follows what it records now: writes
    /// it no longer holds are cut, and later writes go after what it holds.
    #[test]
    fn a_reload_follows_the_reopened_kv() {
        let (dir, views, mut at) = fresh();
        write(&views, &mut at, &[change("1", Some("a"))]);
        let durable = at;
        write(
            &views,
            &mut at,
            &[change("1", Some("lost")), change("2", Some("lost"))],
        );
        views.reload(durable).unwrap();
        assert_eq!(views.get("1").unwrap(), Some(b"a".to_vec()));
        assert_eq!(views.get("2").unwrap(), None);
        assert_eq!(views.at().unwrap(), durable);
        write(&views, &mut at, &[change("3", Some("c"))]);
        drop(views);
        let views = opened(dir.path(), at);
        assert_eq!(
            views.get_many(&["1", "2", "3"]).unwrap(),
            vec![Some(b"a".to_vec()), None, Some(b"c".to_vec())]
        );
    }

    #[test]
    fn a_failed_commit_leaves_the_views_as_they_were() {
        let (dir, views, mut at) = fresh();
        write(&views, &mut at, &[change("1", Some("a"))]);
        let failed = views.write(&[change("1", Some("b"))], |_| {
            Err(io::Error::other("the KV refused"))
        });
        assert!(failed.is_err());
        // Refused until read again at what the KV records (here: the commit did not land).
        assert!(views.get("1").is_err());
        assert!(views
            .write(&[change("2", Some("c"))], |_| Ok::<_, io::Error>(()))
            .is_err());
        views.reload(at).unwrap();
        assert_eq!(views.get("1").unwrap(), Some(b"a".to_vec()));
        assert_eq!(views.at().unwrap(), at);
        write(&views, &mut at, &[change("2", Some("c"))]);
        drop(views);
        let views = opened(dir.path(), at);
        assert_eq!(views.get("1").unwrap(), Some(b"a".to_vec()));
        assert_eq!(views.get("2").unwrap(), Some(b"c".to_vec()));
    }
}
