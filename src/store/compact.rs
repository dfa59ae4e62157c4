//! Store maintenance that makes deleted and overwritten values gone from the store's files
//! (`jol store --config C compact`, [`super::Store::compact`]): what an erasure deletes must not
//! linger in pages an engine freed but did not overwrite.
//!
//! Neither embedded engine promises that on its own. redb's `Database::compact` moves live pages
//! towards the start of the file and truncates the free tail, but a freed page in the middle
//! keeps its old bytes until it is reused, and redb never zeroes a page it frees. sled's
//! garbage collector rewrites a segment's live pages elsewhere and marks the segment free for
//! reuse; only segments found free while recovering at start are overwritten, so an old value
//! stays in the file until its segment is written again.
//!
//! So the embedded engines are rewritten: every live entry, in key order, is copied into a fresh
//! store of the same engine in `DIR/compacting`, flushed, and fsynced with its folder; the list
//! of its files is written beside them; the folder is renamed `DIR/compacted` (the commit
//! point); then each new file is renamed over the old one of that name and the old files the
//! new store does not have are removed. A crash
//! - before the rename leaves the old store intact and a `compacting` folder, removed at the
//!   next open ([`recover`]);
//! - after it leaves a complete copy, whose move the next open finishes: a store file is the
//!   new one when the list names it and `compacted` no longer holds it, so finishing twice is
//!   finishing once.
//!
//! The copy needs free space for the live data beside the old store; when the disk fills
//! before the commit point, compaction fails and the old store is untouched.
//!
//! The rewrite needs the engine's files alone. `jol store compact` runs on a stopped node: while
//! a node runs, redb and sled hold their lock on the files and the command's open fails, saying
//! the node is running. A running node may call [`super::Store::compact`] itself: it takes the
//! store's handle away from every user (they wait), waits for the last copy of it to be dropped,
//! and hands every user the new store when done.
//!
//! "Gone" means gone from the store's files. The filesystem may keep the old file's blocks
//! (unlinked, not zeroed) until it reuses them, and a journal or a snapshot of the volume may
//! keep copies: that is the disk's encryption and the operator's retention. On PostgreSQL the
//! store's tables are rewritten by `VACUUM FULL` ([`super::postgres::PgKv::vacuum_full`]); the
//! WAL, its archives and base backups are the operator's retention.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;

use super::kv::{Engine, Kv, KvError, Op, REDB_FILE};

/// The folder a copy is written in; the old store is intact while it exists.
pub const COPYING: &str = "compacting";
/// The same folder once the copy is complete: the commit point.
pub const COPIED: &str = "compacted";
/// In the copy's folder: the engine, then the name of each of the copy's files, one a line.
const LIST: &str = "jol-compact-files";
/// Entries copied per batch.
const PAGE: usize = 4096;
/// The page cache of the copy (it is written once, in key order, and read never).
const COPY_CACHE_BYTES: u64 = 16 * 1024 * 1024;
/// Every key begins with its key space's prefix byte, an ASCII letter (`keys.rs`), so every key
/// is below this one.
const AFTER_EVERY_KEY: &[u8] = &[u8::MAX];

/// What a compaction did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CompactReport {
    /// The engine compacted.
    pub engine: Engine,
    /// Entries copied (an embedded engine); PostgreSQL rewrites its tables itself.
    pub entries: Option<u64>,
    /// Bytes the store took on disk before and after.
    pub bytes_before: u64,
    /// Bytes the store takes on disk after.
    pub bytes_after: u64,
    /// How long it took.
    pub took: Duration,
}

impl fmt::Display for CompactReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} store compacted", self.engine)?;
        if let Some(n) = self.entries {
            write!(f, " ({n} entries rewritten)")?;
        }
        write!(
            f,
            ": {} bytes before, {} after, in {:.2} s",
            self.bytes_before,
            self.bytes_after,
            self.took.as_secs_f64()
        )
    }
}

/// Rewrite the embedded store in `dir` from `old`, its only handle (dropped before the swap);
/// returns the entries copied. Afterwards `dir` holds the new store, to be opened again.
pub(super) fn rewrite(old: Kv, dir: &Path, engine: Engine) -> Result<u64, KvError> {
    let entries = copy_aside(old, dir, engine)?;
    finish(dir)?;
    Ok(entries)
}

/// Everything up to the commit point: the complete copy, durable, in `dir/compacted`.
fn copy_aside(old: Kv, dir: &Path, engine: Engine) -> Result<u64, KvError> {
    let copying = dir.join(COPYING);
    remove_if_there(&copying)?;
    let entries = copy(&old, &copying, engine)?;
    drop(old);
    let files = store_files(&copying, engine)?;
    let list = std::iter::once(engine.to_string())
        .chain(files.iter().map(|f| name_of(f)))
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(copying.join(LIST), list)?;
    sync_tree(&copying)?;
    std::fs::rename(&copying, dir.join(COPIED))?;
    sync_dir(dir)?;
    Ok(entries)
}

/// At open, before the engine: a copy left half-written is removed, a complete one is moved in.
pub(super) fn recover(dir: &Path) -> io::Result<()> {
    match dir.join(COPIED).is_dir() {
        true => finish(dir),
        false => remove_if_there(&dir.join(COPYING)),
    }
}

/// Bytes of every file under `dir`.
pub(super) fn bytes_under(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => bytes_under(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

/// Copy every entry of `old`, in key order, into a new store of `engine` at `to`, durably.
fn copy(old: &Kv, to: &Path, engine: Engine) -> Result<u64, KvError> {
    let new = Kv::open_cached(to, engine, COPY_CACHE_BYTES)?;
    let mut start = Vec::new();
    let mut copied = 0u64;
    loop {
        let page = old.range(&start, AFTER_EVERY_KEY, PAGE)?;
        let last_page = page.len() < PAGE;
        if let Some((k, _)) = page.last() {
            start = k.clone();
            start.push(0);
        }
        copied += page.len() as u64;
        new.apply(page.into_iter().map(|(k, v)| Op::Put(k, v)).collect())?;
        if last_page {
            break;
        }
    }
    new.flush()?;
    Ok(copied)
}

/// Move the complete copy in `dir/compacted` over the store, and remove what the old store had
/// that the new one has not. Each step can be done again after a crash.
fn finish(dir: &Path) -> io::Result<()> {
    let copied = dir.join(COPIED);
    let (engine, names) = read_list(&copied.join(LIST))?;
    for name in &names {
        let from = copied.join(name);
        if from.exists() {
            replace(&from, &dir.join(name))?;
        }
    }
    for old in store_files(dir, engine)? {
        if !names.contains(&name_of(&old)) {
            remove_if_there(&old)?;
        }
    }
    sync_dir(dir)?;
    std::fs::remove_dir_all(&copied)?;
    sync_dir(dir)
}

/// The engine and file names a copy's list holds; a list that is not one is an error, never a
/// guess (the store would be half moved).
fn read_list(path: &Path) -> io::Result<(Engine, Vec<String>)> {
    let damaged = |why: &str| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "{}: {why}; the store's compaction cannot be finished",
                path.display()
            ),
        )
    };
    let text = std::fs::read_to_string(path).map_err(|e| damaged(&e.to_string()))?;
    let mut lines = text.lines();
    let engine: Engine = lines
        .next()
        .and_then(|l| l.parse().ok())
        .ok_or_else(|| damaged("no engine on its first line"))?;
    let names: Vec<String> = lines.map(str::to_string).collect();
    if names.iter().any(|n| !is_store_file(engine, n)) {
        return Err(damaged("it names a file that is not the engine's"));
    }
    Ok((engine, names))
}

/// The files and folders of `engine`'s store directly under `dir`.
fn store_files(dir: &Path, engine: Engine) -> io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if is_store_file(engine, &name_of(&path)) {
            files.push(path);
        }
    }
    Ok(files)
}

/// Whether `name` is a file (or folder) an engine keeps in its store's directory.
fn is_store_file(engine: Engine, name: &str) -> bool {
    match engine {
        Engine::Redb => name == REDB_FILE,
        Engine::Sled => matches!(name, "conf" | "db" | "blobs") || name.starts_with("snap."),
        Engine::Postgres => false,
    }
}

fn name_of(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Put `from` where `to` is: a file by one rename; a folder by removing the old one first
/// (a crash between the two leaves `from` to be moved again).
fn replace(from: &Path, to: &Path) -> io::Result<()> {
    if to.is_dir() {
        std::fs::remove_dir_all(to)?;
    }
    std::fs::rename(from, to)
}

fn remove_if_there(path: &Path) -> io::Result<()> {
    let removed = match path.is_dir() {
        true => std::fs::remove_dir_all(path),
        false => std::fs::remove_file(path),
    };
    match removed {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

/// fsync every file and folder under `dir`, and `dir` itself.
fn sync_tree(dir: &Path) -> io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        match entry.file_type()?.is_dir() {
            true => sync_tree(&entry.path())?,
            false => std::fs::File::open(entry.path())?.sync_all()?,
        }
    }
    sync_dir(dir)
}

/// fsync a folder, so the renames and removals in it are durable.
fn sync_dir(dir: &Path) -> io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
pub(super) mod tests {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine as _;

    use super::super::kv::Scan;
    use super::super::packed;
    use super::*;

    /// Every form `value` can take in a store's files: in the clear, JSON-escaped, and in
    /// base64url at each of the three alignments it can have inside a longer base64url text
    /// (the characters that depend on the value's bytes alone).
    fn forms(value: &str) -> Vec<Vec<u8>> {
        let escaped = serde_json::to_string(value).unwrap_or_default();
        let mut forms = vec![
            value.as_bytes().to_vec(),
            escaped.trim_matches('"').as_bytes().to_vec(),
        ];
        for (lead, skip) in [(0usize, 0usize), (1, 2), (2, 3)] {
            let mut bytes = vec![0u8; lead];
            bytes.extend_from_slice(value.as_bytes());
            let encoded = URL_SAFE_NO_PAD.encode(&bytes);
            forms.push(encoded.as_bytes()[skip..bytes.len() / 3 * 4].to_vec());
        }
        forms
    }

    /// The files under `dir` that hold `value` in any of its [`forms`], in the clear or inside a
    /// packed record (`packed::opened_in`).
    pub(in crate::store) fn files_holding(dir: &Path, value: &str) -> Vec<PathBuf> {
        let forms = forms(value);
        let mut holding = Vec::new();
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                holding.extend(files_holding(&path, value));
                continue;
            }
            let bytes = std::fs::read(&path).unwrap_or_default();
            let holds = |text: &[u8]| {
                forms
                    .iter()
                    .any(|f| text.windows(f.len()).any(|w| w == f.as_slice()))
            };
            if holds(&bytes) || packed::opened_in(&bytes, 1 << 20).iter().any(|j| holds(j)) {
                holding.push(path);
            }
        }
        holding
    }

    /// The value an erasure deletes, in the clear (`P1`) and base64url-encoded behind a salt as
    /// in a disclosure (`P2`), among live data; then `P1` is overwritten and `P2` deleted.
    pub(in crate::store) const ERASED: &str = "Zarina-Erased-7f3a9c";
    /// The value of a packed view (`P3`), whose bytes are not in the clear in it (LZ4 refers
    /// back to the name before it for most of them); then `P3` is deleted.
    pub(in crate::store) const ERASED_PACKED: &str = "Aibek-Packed-3c9e51";

    pub(in crate::store) fn write_then_erase(kv: &Kv) {
        let live = (0u32..3000)
            .map(|i| {
                let value = format!(
                    "{{\"name\":\"person {i}\",\"pad\":\"{}\"}}",
                    "x".repeat(i as usize % 200)
                );
                Op::Put(
                    [b"P".as_slice(), &i.to_be_bytes()].concat(),
                    value.into_bytes(),
                )
            })
            .collect();
        kv.commit(live).unwrap();
        let disclosure = URL_SAFE_NO_PAD.encode(format!("[\"salt\",\"name\",\"{ERASED}\"]"));
        kv.commit(vec![
            Op::Put(
                b"P1".to_vec(),
                format!("{{\"name\":\"{ERASED}\"}}").into_bytes(),
            ),
            Op::Put(b"P2".to_vec(), disclosure.into_bytes()),
            Op::Put(b"P3".to_vec(), packed_view()),
        ])
        .unwrap();
        kv.commit(vec![
            Op::Put(b"P1".to_vec(), b"{\"name\":\"(erased)\"}".to_vec()),
            Op::Delete(b"P2".to_vec()),
            Op::Delete(b"P3".to_vec()),
        ])
        .unwrap();
    }

    fn packed_view() -> Vec<u8> {
        let json = format!("{{\"other\":\"Aibek-Packed-000000\",\"name\":\"{ERASED_PACKED}\"}}");
        let packed = packed::pack(json.as_bytes());
        assert!(!packed
            .windows(ERASED_PACKED.len())
            .any(|w| w == ERASED_PACKED.as_bytes()));
        packed
    }

    pub(in crate::store) fn every_entry(kv: &Kv) -> Vec<super::super::kv::Entry> {
        Scan::new(kv, b"").map(Result::unwrap).collect()
    }

    fn store_with_an_erasure(dir: &Path, engine: Engine) -> Vec<super::super::kv::Entry> {
        let kv = Kv::open(dir, engine).unwrap();
        write_then_erase(&kv);
        every_entry(&kv)
    }

    const EMBEDDED: [Engine; 2] = [Engine::Redb, Engine::Sled];

    /// A crash while the copy is written leaves a half-written copy beside the store: the next
    /// open removes it, and the store is as it was.
    #[test]
    fn a_half_written_copy_is_discarded_at_open() {
        for engine in EMBEDDED {
            let dir = tempfile::tempdir().unwrap();
            let entries = store_with_an_erasure(dir.path(), engine);
            {
                let half = Kv::open(&dir.path().join(COPYING), engine).unwrap();
                half.commit(vec![Op::Put(b"P1".to_vec(), b"half".to_vec())])
                    .unwrap();
            }
            let kv = Kv::open(dir.path(), engine).unwrap();
            assert!(!dir.path().join(COPYING).exists(), "{engine}");
            assert_eq!(every_entry(&kv), entries, "{engine}");
        }
    }

    /// A crash after the commit point, before or while the copy's files are moved in: the next
    /// open finishes the move, and the store holds the same entries and the erased value in none
    /// of its files.
    #[test]
    fn a_complete_copy_is_moved_in_at_open_however_far_the_move_went() {
        for (engine, moved_by_hand) in [
            (Engine::Redb, 0),
            (Engine::Sled, 0),
            (Engine::Sled, 1),
            (Engine::Sled, 2),
        ] {
            let dir = tempfile::tempdir().unwrap();
            let entries = store_with_an_erasure(dir.path(), engine);
            let kv = Kv::open(dir.path(), engine).unwrap();
            copy_aside(kv, dir.path(), engine).unwrap();
            let copied = dir.path().join(COPIED);
            let (_, names) = read_list(&copied.join(LIST)).unwrap();
            for name in names.iter().take(moved_by_hand) {
                replace(&copied.join(name), &dir.path().join(name)).unwrap();
            }
            let kv = Kv::open(dir.path(), engine).unwrap();
            assert!(!copied.exists(), "{engine}");
            assert_eq!(every_entry(&kv), entries, "{engine}");
            let holding = files_holding(dir.path(), ERASED);
            assert!(holding.is_empty(), "{engine}: {holding:?}");
        }
    }

    /// A copy's list naming anything but the engine's files is refused, not followed.
    #[test]
    fn a_list_naming_other_files_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let list = dir.path().join(LIST);
        std::fs::write(&list, "redb\n../../etc/passwd").unwrap();
        assert!(read_list(&list).is_err());
        std::fs::write(&list, "sled\nconf\ndb\nsnap.00000000000001A2").unwrap();
        assert_eq!(read_list(&list).unwrap().1.len(), 3);
    }

    /// The search finds a value in the clear and at each base64url alignment.
    #[test]
    fn the_forms_of_a_value_are_found() {
        let dir = tempfile::tempdir().unwrap();
        for lead in ["", "a", "ab"] {
            let blob = URL_SAFE_NO_PAD.encode(format!("[\"salt\",{lead}\"{ERASED}\"]"));
            std::fs::write(dir.path().join(format!("b64{lead}")), blob).unwrap();
        }
        std::fs::write(dir.path().join("clear"), format!("x{ERASED}y")).unwrap();
        assert_eq!(files_holding(dir.path(), ERASED).len(), 4);
        assert!(files_holding(dir.path(), "Nowhere-To-Be-Found").is_empty());
    }
}
