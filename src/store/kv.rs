//! The ordered key-value engine under the store: redb (the default) or sled in a data directory,
//! chosen when a store is created and recognised from its files afterwards, so an existing store
//! keeps its engine whatever the default; or a table in PostgreSQL ([`super::postgres`]) that
//! several replicas of one member share. redb is the default by measurement (BENCHMARKS.md, "Store engines"): a
//! node holding a million events takes 1.6 times its raw JWS on disk against sled's 2.5, about
//! a third less memory, and catches up faster; sled is beta and unmaintained upstream. Both give
//! the same four things the store needs: point reads, ordered range reads, atomic batches that are
//! not yet durable, and a flush that makes everything applied before it durable (on PostgreSQL
//! every batch is a transaction, durable when it returns, and a flush has nothing left to do).

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

use redb::Durability;

use super::postgres::{PgError, PgKv, PgSettings};
use super::redb_engine::Redb;
use crate::budget::Budget;
use serde::{Deserialize, Serialize};

/// The embedded engines' page cache unless the config says otherwise (`store_cache_mib`; sled's
/// own default, 1 GiB, is far more than a node needs).
pub(crate) const DEFAULT_CACHE_MIB: u64 = 16;
/// The file a redb store keeps in its directory.
pub(crate) const REDB_FILE: &str = "jol.redb";

/// Which engine holds a store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Engine {
    /// sled, in the data directory.
    Sled,
    /// redb, in the data directory (the default).
    #[default]
    Redb,
    /// A PostgreSQL database the replicas share.
    Postgres,
}

impl fmt::Display for Engine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Engine::Sled => "sled",
            Engine::Redb => "redb",
            Engine::Postgres => "postgres",
        })
    }
}

impl FromStr for Engine {
    type Err = String;
    fn from_str(s: &str) -> Result<Engine, String> {
        match s {
            "sled" => Ok(Engine::Sled),
            "redb" => Ok(Engine::Redb),
            "postgres" => Ok(Engine::Postgres),
            other => Err(format!(
                "unknown store engine {other:?} (redb, sled or postgres)"
            )),
        }
    }
}

impl Engine {
    /// The engine of an existing store in `dir`, or `None` when the directory holds none.
    pub fn of(dir: &Path) -> Option<Engine> {
        if dir.join(REDB_FILE).exists() {
            Some(Engine::Redb)
        } else if dir.join("conf").exists() || dir.join("db").exists() {
            Some(Engine::Sled)
        } else {
            None
        }
    }
}

/// Where a store is: a data directory with an embedded engine, or a PostgreSQL database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// An embedded engine's files, with its page cache's bound.
    Dir {
        /// The data directory.
        dir: PathBuf,
        /// The engine.
        engine: Engine,
        /// The page cache, MiB.
        cache_mib: u64,
    },
    /// A PostgreSQL database.
    Postgres(PgSettings),
}

impl Location {
    /// The engine that holds it.
    pub fn engine(&self) -> Engine {
        match self {
            Location::Dir { engine, .. } => *engine,
            Location::Postgres(_) => Engine::Postgres,
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Dir { dir, .. } => write!(f, "{}", dir.display()),
            Location::Postgres(settings) => f.write_str(&settings.describe()),
        }
    }
}

/// An engine failure; the text is the engine's own.
#[derive(Debug, thiserror::Error)]
pub enum KvError {
    /// PostgreSQL's failure.
    #[error(transparent)]
    Postgres(#[from] PgError),
    /// sled's failure.
    #[error(transparent)]
    Sled(#[from] sled::Error),
    /// redb's failure, as text (with the I/O error that broke the database, when there was one).
    #[error("{0}")]
    Redb(String),
    /// An I/O failure.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// A key and its value.
pub(crate) type Entry = (Vec<u8>, Vec<u8>);

/// One change in a batch.
pub enum Op {
    /// Store the value under the key.
    Put(Vec<u8>, Vec<u8>),
    /// Remove the key.
    Delete(Vec<u8>),
    /// Store the value under a key that must be new: a new position of the log. PostgreSQL
    /// refuses the whole transaction if the key exists, so a commit that landed after the
    /// writer took it for failed (its connection lost, the server still running it) makes the
    /// writer's next round fail and repair instead of writing over what peers may have read;
    /// the embedded engines (one process, one writer, which reads its counters back from the
    /// store after a failure) store it as [`Op::Put`].
    Append(Vec<u8>, Vec<u8>),
}

impl Op {
    /// The key the op writes.
    pub(crate) fn key(&self) -> &[u8] {
        match self {
            Op::Put(k, _) | Op::Delete(k) | Op::Append(k, _) => k,
        }
    }
}

/// An open engine. Cloning shares it; [`Kv::held_alone`] says whether this is the only handle.
#[derive(Clone)]
pub enum Kv {
    /// sled: the database and its one tree.
    Sled(Arc<Sled>),
    /// redb.
    Redb(Arc<Redb>),
    /// PostgreSQL.
    Postgres(Arc<PgKv>),
}

/// An open sled database and the store's one tree in it.
pub struct Sled {
    db: sled::Db,
    main: sled::Tree,
}

impl Kv {
    pub(crate) fn open_at(location: &Location) -> Result<Kv, KvError> {
        match location {
            Location::Dir {
                dir,
                engine,
                cache_mib,
            } => Kv::open_cached(dir, *engine, cache_mib.saturating_mul(1024 * 1024)),
            Location::Postgres(settings) => Ok(Kv::Postgres(Arc::new(PgKv::open(settings)?))),
        }
    }

    /// Open an embedded engine in `dir` with the default cache.
    pub fn open(dir: &Path, engine: Engine) -> Result<Kv, KvError> {
        Kv::open_cached(dir, engine, DEFAULT_CACHE_MIB * 1024 * 1024)
    }

    /// Open an embedded engine in `dir` with a page cache of at most `cache_bytes`.
    pub(crate) fn open_cached(dir: &Path, engine: Engine, cache_bytes: u64) -> Result<Kv, KvError> {
        match engine {
            Engine::Postgres => Err(KvError::Io(std::io::Error::other(
                "a PostgreSQL store is opened by its url ([store] url), not a directory",
            ))),
            Engine::Sled => {
                super::compact::recover(dir)?;
                let db = open_sled(dir, cache_bytes)?;
                let main = db.open_tree("main")?;
                Ok(Kv::Sled(Arc::new(Sled { db, main })))
            }
            Engine::Redb => {
                super::create_dir_durably(dir)?;
                super::compact::recover(dir)?;
                let db = Redb::open(&dir.join(REDB_FILE), cache_bytes)?;
                // The file's entry in its folder, as durable as what redb syncs into it.
                std::fs::File::open(dir)?.sync_all()?;
                Ok(Kv::Redb(Arc::new(db)))
            }
        }
    }

    /// Which engine this is.
    pub fn engine(&self) -> Engine {
        match self {
            Kv::Sled(_) => Engine::Sled,
            Kv::Redb(_) => Engine::Redb,
            Kv::Postgres(_) => Engine::Postgres,
        }
    }

    /// Whether no other handle shares this engine (no clone of it is alive): what
    /// [`super::compact`] waits for before it rewrites an embedded engine's files. A PostgreSQL
    /// pool is never taken away, so it is never held alone.
    pub fn held_alone(&self) -> bool {
        match self {
            Kv::Sled(s) => Arc::strong_count(s) == 1,
            Kv::Redb(db) => Arc::strong_count(db) == 1,
            Kv::Postgres(_) => false,
        }
    }

    /// The PostgreSQL engine, when that is what this is.
    pub fn postgres(&self) -> Option<&Arc<PgKv>> {
        match self {
            Kv::Postgres(pg) => Some(pg),
            _ => None,
        }
    }

    /// The value under `key`.
    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, KvError> {
        match self {
            Kv::Sled(s) => Ok(s.main.get(key)?.map(|v| v.to_vec())),
            Kv::Redb(db) => db.get(key),
            Kv::Postgres(pg) => Ok(pg.get(key)?),
        }
    }

    /// The values of many keys, in the order asked (one read transaction, one round trip).
    pub(crate) fn get_many(&self, keys: &[Vec<u8>]) -> Result<Vec<Option<Vec<u8>>>, KvError> {
        match self {
            Kv::Sled(s) => keys
                .iter()
                .map(|k| Ok(s.main.get(k)?.map(|v| v.to_vec())))
                .collect(),
            Kv::Redb(db) => db.get_many(keys, &mut Budget::unlimited()),
            Kv::Postgres(pg) => Ok(pg.get_many(keys)?),
        }
    }

    /// The values of the first of `keys`, in the order asked, that `budget` takes by their sizes
    /// (a missing key is `None` and costs nothing): what is not taken is not read into memory.
    pub(crate) fn get_many_within(
        &self,
        keys: &[Vec<u8>],
        budget: &mut Budget,
    ) -> Result<Vec<Option<Vec<u8>>>, KvError> {
        match self {
            Kv::Sled(s) => {
                let mut values = Vec::with_capacity(keys.len());
                for k in keys {
                    let v = s.main.get(k)?;
                    if v.as_ref().is_some_and(|v| !budget.take(v.len())) {
                        break;
                    }
                    values.push(v.map(|v| v.to_vec()));
                }
                Ok(values)
            }
            Kv::Redb(db) => db.get_many(keys, budget),
            Kv::Postgres(pg) => Ok(pg.get_many_within(keys, budget)?),
        }
    }

    /// Apply the changes atomically; durable only after the next [`Kv::flush`].
    pub fn apply(&self, ops: Vec<Op>) -> Result<(), KvError> {
        self.write(ops, Durability::None)
    }

    /// Apply the changes atomically and make them, and everything applied before, durable;
    /// returns after the fsync. On redb this is one transaction where `apply` then `flush`
    /// would be two.
    pub(crate) fn commit(&self, ops: Vec<Op>) -> Result<(), KvError> {
        match self {
            Kv::Sled(_) => {
                self.write(ops, Durability::None)?;
                self.flush()
            }
            Kv::Redb(_) => self.write(ops, Durability::Immediate),
            Kv::Postgres(pg) => Ok(pg.write(ops)?),
        }
    }

    /// Apply and make durable a change any replica may make (see [`PgKv::write_shared`]).
    pub(crate) fn commit_shared(&self, ops: Vec<Op>) -> Result<(), KvError> {
        match self {
            Kv::Postgres(pg) => Ok(pg.write_shared(ops)?),
            _ => self.commit(ops),
        }
    }

    /// Read `counter`, and apply durably, in one atomic step, what `build` makes of its value;
    /// callers of one process serialize themselves, and on PostgreSQL a lock shared with every
    /// other replica serializes them across processes too (see [`PgKv::locked`]).
    /// `durable: false` lets an embedded engine leave it to the next flush.
    pub(crate) fn locked<E: From<KvError>>(
        &self,
        counter: &[u8],
        durable: bool,
        build: impl FnOnce(Option<Vec<u8>>) -> Result<Vec<Op>, E>,
    ) -> Result<(), E> {
        match self {
            Kv::Postgres(pg) => pg.locked(counter, build).map_err(KvError::from)?,
            _ => {
                let ops = build(self.get(counter)?)?;
                match durable {
                    true => Ok(self.commit(ops)?),
                    false => Ok(self.apply(ops)?),
                }
            }
        }
    }

    fn write(&self, ops: Vec<Op>, durability: Durability) -> Result<(), KvError> {
        match self {
            Kv::Sled(s) => {
                let mut batch = sled::Batch::default();
                for op in ops {
                    match op {
                        Op::Put(k, v) | Op::Append(k, v) => batch.insert(k, v),
                        Op::Delete(k) => batch.remove(k),
                    }
                }
                Ok(s.main.apply_batch(batch)?)
            }
            Kv::Redb(db) => db.write(ops, durability),
            Kv::Postgres(pg) => Ok(pg.write(ops)?),
        }
    }

    /// Make everything applied so far durable; returns after the fsync.
    pub fn flush(&self) -> Result<(), KvError> {
        match self {
            Kv::Sled(s) => s.db.flush().map(|_| ()).map_err(KvError::from),
            Kv::Redb(db) => db.flush(),
            Kv::Postgres(_) => Ok(()),
        }
    }

    /// Up to `limit` entries with `start <= key < end`, in key order.
    pub fn range(&self, start: &[u8], end: &[u8], limit: usize) -> Result<Vec<Entry>, KvError> {
        match self {
            Kv::Postgres(pg) => Ok(pg.range(start, end, limit)?),
            _ => self.range_within(start, end, limit, &mut Budget::unlimited()),
        }
    }

    /// Up to `limit` entries with `start <= key < end`, in key order, as many as `budget` takes
    /// by their values' sizes: what is not taken is not read into memory.
    pub(crate) fn range_within(
        &self,
        start: &[u8],
        end: &[u8],
        limit: usize,
        budget: &mut Budget,
    ) -> Result<Vec<Entry>, KvError> {
        match self {
            Kv::Sled(s) => {
                let mut entries = Vec::new();
                for r in s.main.range(start..end).take(limit) {
                    let (k, v) = r?;
                    if !budget.take(v.len()) {
                        break;
                    }
                    entries.push((k.to_vec(), v.to_vec()));
                }
                Ok(entries)
            }
            Kv::Redb(db) => db.range(start, end, limit, budget),
            Kv::Postgres(pg) => Ok(pg.range_within(start, end, limit, budget)?),
        }
    }

    /// The last entry with `start <= key < end`.
    pub(crate) fn last(&self, start: &[u8], end: &[u8]) -> Result<Option<Entry>, KvError> {
        match self {
            Kv::Sled(s) => match s.main.range(start..end).next_back() {
                Some(r) => {
                    let (k, v) = r?;
                    Ok(Some((k.to_vec(), v.to_vec())))
                }
                None => Ok(None),
            },
            Kv::Redb(db) => db.last(start, end),
            Kv::Postgres(pg) => Ok(pg.last(start, end)?),
        }
    }

    /// Bytes the engine's files take on disk.
    pub fn size_on_disk(&self, dir: &Path) -> u64 {
        match self {
            Kv::Sled(s) => s.db.size_on_disk().unwrap_or(0),
            Kv::Redb(_) => std::fs::metadata(dir.join(REDB_FILE)).map_or(0, |m| m.len()),
            Kv::Postgres(pg) => pg.size_on_disk(),
        }
    }
}

/// Open sled in `dir`. A handle dropped a moment ago in this process can still hold the
/// directory's lock while sled's background flusher winds down, so a lock conflict is retried
/// for up to two seconds before it is reported.
fn open_sled(dir: &Path, cache_bytes: u64) -> Result<sled::Db, KvError> {
    let config = sled::Config::new()
        .path(dir)
        .mode(sled::Mode::HighThroughput)
        .cache_capacity(cache_bytes);
    let mut attempts = 0;
    loop {
        match config.open() {
            Err(sled::Error::Io(e))
                if e.to_string().contains("could not acquire lock") && attempts < 100 =>
            {
                attempts += 1;
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            other => return Ok(other?),
        }
    }
}

/// The first key after every key that starts with `prefix`.
pub(crate) fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < u8::MAX {
            end.push(last + 1);
            return end;
        }
    }
    vec![u8::MAX; prefix.len() + 1]
}

/// Entries under `prefix`, in key order, read a page at a time.
pub(crate) struct Scan {
    kv: Kv,
    next: Vec<u8>,
    end: Vec<u8>,
    page: std::vec::IntoIter<Entry>,
    done: bool,
}

const SCAN_PAGE: usize = 1024;

impl Scan {
    pub(crate) fn new(kv: &Kv, prefix: &[u8]) -> Scan {
        Scan {
            kv: kv.clone(),
            next: prefix.to_vec(),
            end: prefix_end(prefix),
            page: Vec::new().into_iter(),
            done: false,
        }
    }
}

impl Iterator for Scan {
    type Item = Result<Entry, KvError>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(entry) = self.page.next() {
            return Some(Ok(entry));
        }
        if self.done {
            return None;
        }
        match self.kv.range(&self.next, &self.end, SCAN_PAGE) {
            Ok(page) => {
                self.done = page.len() < SCAN_PAGE;
                if let Some((k, _)) = page.last() {
                    self.next = k.clone();
                    self.next.push(0);
                }
                self.page = page.into_iter();
                self.page.next().map(Ok)
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_end_is_the_first_key_after_the_prefix() {
        assert_eq!(prefix_end(b"P"), b"Q");
        assert_eq!(prefix_end(&[b'X', 1, 0]), [b'X', 1, 1]);
        assert_eq!(prefix_end(&[b'X', 0xff]), [b'Y']);
    }

    /// The same operations give the same answers on both engines, across a reopen.
    #[test]
    fn both_engines_answer_alike() {
        for engine in [Engine::Sled, Engine::Redb] {
            let dir = tempfile::tempdir().unwrap();
            {
                let kv = Kv::open(dir.path(), engine).unwrap();
                let ops = (0u32..3000)
                    .map(|i| Op::Put([b"A".as_slice(), &i.to_be_bytes()].concat(), vec![1; 10]))
                    .chain([Op::Put(b"B1".to_vec(), b"x".to_vec())])
                    .collect();
                kv.apply(ops).unwrap();
                kv.apply(vec![Op::Delete(
                    [b"A".as_slice(), &7u32.to_be_bytes()].concat(),
                )])
                .unwrap();
                kv.flush().unwrap();
            }
            assert_eq!(Engine::of(dir.path()), Some(engine));
            let kv = Kv::open(dir.path(), engine).unwrap();
            assert_eq!(kv.get(b"B1").unwrap(), Some(b"x".to_vec()));
            assert_eq!(kv.get(b"B2").unwrap(), None);
            let all: Vec<_> = Scan::new(&kv, b"A").map(Result::unwrap).collect();
            assert_eq!(all.len(), 2999, "{engine}");
            assert!(all.windows(2).all(|w| w[0].0 < w[1].0));
            let (last, _) = kv.last(b"A", &prefix_end(b"A")).unwrap().unwrap();
            assert_eq!(last, [b"A".as_slice(), &2999u32.to_be_bytes()].concat());
            assert_eq!(kv.range(b"A", b"B", 5).unwrap().len(), 5);
            assert_eq!(kv.last(b"C", b"D").unwrap(), None);
        }
    }
}
