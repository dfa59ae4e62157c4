//! The event log's Merkle hashes as tlog tiles (c2sp.org/tlog-tiles): tile level `L` holds the
//! hashes of tree level `8·L`, 256 to a tile. Full tiles are appended once to `DATA/log/tiles-L`
//! (32 bytes a hash) and fsynced with the commit that completes them; the right edge (the hashes
//! of each level's incomplete tile) is kept in memory and rebuilt at open from the last full
//! tiles of the level below and the log's leaves. Any perfect subtree is hashed up from the at
//! most 128 hashes of its tile level under it ([`Tiles::perfect`]).

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use crate::merkle::{node_hash, Hash};

/// Hashes in a full tile.
const WIDTH: u64 = 256;
/// Bytes of a full tile.
const TILE_BYTES: u64 = WIDTH * 32;

/// The tile files and the right edge.
pub(super) struct Tiles {
    dir: PathBuf,
    state: RwLock<State>,
}

#[derive(Default)]
struct State {
    /// Tile level `L`'s file.
    files: Vec<Arc<File>>,
    /// Full tiles in each file.
    full: Vec<u64>,
    /// Each level's incomplete tile.
    edge: Vec<Vec<Hash>>,
}

fn damaged(what: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what)
}

/// The hash of the perfect subtree over `hashes` (a power of two of them).
fn hash_up(mut hashes: Vec<Hash>) -> Hash {
    while hashes.len() > 1 {
        hashes = hashes.chunks(2).map(|p| node_hash(&p[0], &p[1])).collect();
    }
    hashes.first().copied().unwrap_or_default()
}

fn read_hashes(file: &File, from: u64, count: usize) -> io::Result<Vec<Hash>> {
    let mut buf = vec![0u8; count * 32];
    file.read_exact_at(&mut buf, from * 32)?;
    Ok(buf
        .chunks_exact(32)
        .map(|c| {
            let mut h = [0u8; 32];
            h.copy_from_slice(c);
            h
        })
        .collect())
}

impl State {
    fn level(&mut self, dir: &Path, level: usize) -> io::Result<()> {
        while self.files.len() <= level {
            let path = dir.join(format!("tiles-{}", self.files.len()));
            let made = !path.exists();
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(path)?;
            if made {
                // Its entry in the folder survives a power loss with the tiles synced into it.
                File::open(dir)?.sync_all()?;
            }
            self.files.push(Arc::new(file));
            self.full.push(0);
            self.edge.push(Vec::new());
        }
        Ok(())
    }

    /// The hashes of tree level `8·level` from `from`, `count` of them, all in one tile.
    fn hashes(&self, level: usize, from: u64, count: usize) -> io::Result<Vec<Hash>> {
        let (Some(file), Some(&full), Some(edge)) = (
            self.files.get(level),
            self.full.get(level),
            self.edge.get(level),
        ) else {
            return Err(damaged(format!("no tile level {level}")));
        };
        if from + count as u64 <= full * WIDTH {
            return read_hashes(file, from, count);
        }
        let start = (from - full * WIDTH) as usize;
        edge.get(start..start + count)
            .map(<[Hash]>::to_vec)
            .ok_or_else(|| damaged(format!("tile level {level} has no hash {from}")))
    }
}

impl Tiles {
    /// Open the tiles of a log of `size` leaves in `dir`, cutting full tiles past it; `leaves`
    /// reads the log's recorded leaf hashes of positions `first ..= last`.
    pub(super) fn open(
        dir: &Path,
        size: u64,
        leaves: impl FnOnce(u64, u64) -> io::Result<Vec<Hash>>,
    ) -> io::Result<Tiles> {
        let mut state = State::default();
        let mut level = 0usize;
        loop {
            let hashes = size >> (8 * level);
            let exists = dir.join(format!("tiles-{level}")).exists();
            if hashes == 0 && !exists {
                break;
            }
            state.level(dir, level)?;
            let full = hashes / WIDTH;
            let file = state.files[level].clone();
            let held = file.metadata()?.len();
            if held < full * TILE_BYTES {
                return Err(damaged(format!(
                    "{}: tile level {level} holds {} full tiles, the log needs {full}",
                    dir.display(),
                    held / TILE_BYTES
                )));
            }
            if held > full * TILE_BYTES {
                file.set_len(full * TILE_BYTES)?;
                file.sync_all()?;
            }
            state.full[level] = full;
            level += 1;
        }
        // The right edge, bottom up: the leaves of level 0's incomplete tile, then each higher
        // level's from the full tiles below it.
        if let Some(full) = state.full.first().copied() {
            let first = full * WIDTH + 1;
            if first <= size {
                state.edge[0] = leaves(first, size)?;
            }
        }
        for level in 1..state.files.len() {
            let below = state.full[level - 1];
            let from = state.full[level] * WIDTH;
            let mut edge = Vec::new();
            for tile in from..below {
                edge.push(hash_up(read_hashes(
                    &state.files[level - 1],
                    tile * WIDTH,
                    WIDTH as usize,
                )?));
            }
            state.edge[level] = edge;
        }
        Ok(Tiles {
            dir: dir.to_path_buf(),
            state: RwLock::new(state),
        })
    }

    /// Append leaves: each tile they complete is written to its file (and its root joins the
    /// level above). Returns after the fdatasync of every file written.
    pub(super) fn append(&self, leaves: impl IntoIterator<Item = Hash>) -> io::Result<()> {
        let mut written: Vec<Arc<File>> = Vec::new();
        {
            let mut s = self
                .state
                .write()
                .map_err(|_| damaged("tile lock".into()))?;
            s.level(&self.dir, 0)?;
            for leaf in leaves {
                s.edge[0].push(leaf);
                let mut level = 0;
                while s.edge[level].len() as u64 == WIDTH {
                    let tile = std::mem::take(&mut s.edge[level]);
                    let bytes: Vec<u8> = tile.iter().flatten().copied().collect();
                    let file = s.files[level].clone();
                    // Written under the lock: a reader sees a full tile only once it is there.
                    file.write_all_at(&bytes, s.full[level] * TILE_BYTES)?;
                    if !written.iter().any(|f| Arc::ptr_eq(f, &file)) {
                        written.push(file);
                    }
                    s.full[level] += 1;
                    s.level(&self.dir, level + 1)?;
                    s.edge[level + 1].push(hash_up(tile));
                    level += 1;
                }
            }
        }
        for file in written {
            file.sync_data()?;
        }
        Ok(())
    }

    /// The hash of the perfect subtree `index` of tree level `level`.
    pub(super) fn perfect(&self, level: u32, index: u64) -> io::Result<Hash> {
        let (tile_level, rise) = ((level / 8) as usize, level % 8);
        let s = self.state.read().map_err(|_| damaged("tile lock".into()))?;
        let hashes = s.hashes(tile_level, index << rise, 1 << rise)?;
        Ok(hash_up(hashes))
    }

    /// Bytes the files take.
    pub(super) fn bytes(&self) -> u64 {
        self.state
            .read()
            .map_or(0, |s| s.full.iter().sum::<u64>() * TILE_BYTES)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::merkle::{leaf_hash, root, MemoryTree, Subtrees};

    struct Over<'a>(&'a Tiles);
    impl Subtrees for Over<'_> {
        type Error = io::Error;
        fn perfect(&self, level: u32, index: u64) -> io::Result<Hash> {
            self.0.perfect(level, index)
        }
    }

    fn leaves(n: u64) -> Vec<Hash> {
        (0..n).map(|i| leaf_hash(&i.to_be_bytes())).collect()
    }

    /// Every root and subtree the tiles answer equals the in-memory tree's, before and after
    /// reopening (the right edge rebuilt), across full tiles of two levels.
    #[test]
    fn tiles_answer_as_the_tree_does_across_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let all = leaves(256 * 256 + 300);
        let tree = MemoryTree::new(all.clone());
        let tiles = Tiles::open(dir.path(), 0, |_, _| Ok(Vec::new())).unwrap();
        for chunk in all.chunks(1000) {
            tiles.append(chunk.iter().copied()).unwrap();
        }
        let check = |t: &Tiles, size: u64| {
            for n in [1, 255, 256, 257, 65_536, 65_537, size] {
                assert_eq!(
                    root(&Over(t), n).unwrap(),
                    root(&tree_of(&all, n), n).unwrap()
                );
            }
            assert_eq!(t.perfect(9, 3).unwrap(), tree.perfect(9, 3).unwrap());
            assert_eq!(t.perfect(16, 0).unwrap(), tree.perfect(16, 0).unwrap());
        };
        let size = all.len() as u64;
        check(&tiles, size);
        drop(tiles);
        let reopened = Tiles::open(dir.path(), size, |first, last| {
            Ok(all[first as usize - 1..last as usize].to_vec())
        })
        .unwrap();
        check(&reopened, size);
        // A log cut back at open cuts the tiles past it.
        drop(reopened);
        let cut = Tiles::open(dir.path(), 600, |first, last| {
            Ok(all[first as usize - 1..last as usize].to_vec())
        })
        .unwrap();
        assert_eq!(
            root(&Over(&cut), 600).unwrap(),
            root(&tree_of(&all, 600), 600).unwrap()
        );
        cut.append(all[600..700].iter().copied()).unwrap();
        assert_eq!(
            root(&Over(&cut), 700).unwrap(),
            root(&tree_of(&all, 700), 700).unwrap()
        );
    }

    fn tree_of(all: &[Hash], n: u64) -> MemoryTree {
        MemoryTree::new(all[..n as usize].to_vec())
    }
}
