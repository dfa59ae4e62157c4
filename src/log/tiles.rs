//! Hash tiles of the event log (c2sp.org/tlog-tiles): the path of a tile, `<L>/<N>[.p/<W>]` with
//! `N` in `x001/x234/067` elements, and the hashes a tile holds.
//!
//! Tile `N` at level `L` holds the hashes of the perfect subtrees of height `8·L` with indices
//! `256·N ..`: exactly what [`crate::merkle::Subtrees::perfect`] answers, so the store keeps
//! them however it likes. Only tiles of the tree the latest checkpoint covers are served; entry
//! bundles are not (events are personal data and keep their own routes and access log).

use crate::merkle::{Hash, Subtrees};

/// Hashes in a full tile.
pub const TILE_WIDTH: u64 = 256;

/// A tile named by its path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TilePath {
    /// 0..=63.
    pub level: u8,
    /// `N`.
    pub index: u64,
    /// `Some(1..=255)` for a partial tile.
    pub width: Option<u8>,
}

/// Why a tile path was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TileError {
    /// `tile/entries/…`.
    #[error("entry bundles are not served: events keep their own routes and access log")]
    Entries,
    /// A malformed path.
    #[error("not a tile path `<L>/<N>[.p/<W>]`: {0}")]
    Path(&'static str),
    /// Beyond the checkpointed tree.
    #[error("the tile is not in the tree of the latest checkpoint (size {0})")]
    NotCovered(u64),
}

impl TilePath {
    /// Parse the path segments after `tile/`.
    pub fn parse(segments: &[&str]) -> Result<TilePath, TileError> {
        let (&level, rest) = segments.split_first().ok_or(TileError::Path("empty"))?;
        if level == "entries" {
            return Err(TileError::Entries);
        }
        let level = decimal(level)
            .filter(|l| *l < 64)
            .ok_or(TileError::Path("L is not a decimal from 0 to 63"))? as u8;
        let (index_parts, width) = match rest {
            [.., last, w] if last.ends_with(".p") => {
                let w = decimal(w)
                    .filter(|w| (1..TILE_WIDTH).contains(w))
                    .ok_or(TileError::Path("W is not a decimal from 1 to 255"))?;
                (&rest[..rest.len() - 1], Some(w as u8))
            }
            _ => (rest, None),
        };
        let (last, leading) = index_parts.split_last().ok_or(TileError::Path("no N"))?;
        let last = if width.is_some() {
            &last[..last.len() - 2]
        } else {
            last
        };
        if leading.len() > 6 {
            return Err(TileError::Path("N has too many elements"));
        }
        if leading.first() == Some(&"x000") {
            // One tile, one path: the encoding has no leading zero elements.
            return Err(TileError::Path("N begins with a zero element"));
        }
        let mut index: u64 = 0;
        for part in leading {
            let digits = part.strip_prefix('x').ok_or(TileError::Path(
                "an element of N but the last lacks its `x`",
            ))?;
            index = push_element(index, digits)?;
        }
        index = push_element(index, last)?;
        Ok(TilePath {
            level,
            index,
            width,
        })
    }

    /// How many hashes the tile holds.
    pub fn count(&self) -> u64 {
        self.width.map_or(TILE_WIDTH, u64::from)
    }

    /// The tile's hashes, if the tree of `size` leaves holds them: a full tile, or a partial
    /// one of any width the tree has passed. A client that verified an older checkpoint asks
    /// for the partial tiles of its size, which tlog-tiles says a log must serve (at least
    /// until the full tile exists; serving them after it costs nothing and saves the client
    /// its fallback).
    pub fn hashes<S: Subtrees>(
        &self,
        source: &S,
        size: u64,
    ) -> Result<Result<Vec<Hash>, TileError>, S::Error> {
        let height = 8 * u32::from(self.level);
        let available = if height >= 64 { 0 } else { size >> height };
        let first = self.index.checked_mul(TILE_WIDTH);
        let in_tree = first
            .and_then(|first| first.checked_add(self.count()))
            .is_some_and(|end| end <= available);
        if !in_tree {
            return Ok(Err(TileError::NotCovered(size)));
        }
        let first = self.index * TILE_WIDTH;
        source.perfect_run(height, first, self.count()).map(Ok)
    }
}

/// A decimal with no leading zero (but `0`).
fn decimal(s: &str) -> Option<u64> {
    crate::log::checkpoint::parse_size(s)
}

/// `index * 1000 + element`, for a 3-digit element.
fn push_element(index: u64, digits: &str) -> Result<u64, TileError> {
    if digits.len() != 3 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(TileError::Path("an element of N is not 3 digits"));
    }
    let value: u64 = digits.parse().map_err(|_| TileError::Path("N"))?;
    index
        .checked_mul(1000)
        .and_then(|i| i.checked_add(value))
        .ok_or(TileError::Path("N is too large"))
}

impl std::fmt::Display for TilePath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/", self.level)?;
        let mut parts = Vec::new();
        let mut n = self.index;
        loop {
            parts.push(n % 1000);
            n /= 1000;
            if n == 0 {
                break;
            }
        }
        for (i, p) in parts.iter().rev().enumerate() {
            let x = if i + 1 < parts.len() { "x" } else { "" };
            let slash = if i + 1 < parts.len() { "/" } else { "" };
            write!(f, "{x}{p:03}{slash}")?;
        }
        if let Some(w) = self.width {
            write!(f, ".p/{w}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::merkle::{self, MemoryTree};

    fn parse(path: &str) -> Result<TilePath, TileError> {
        TilePath::parse(&path.split('/').collect::<Vec<_>>())
    }

    #[test]
    fn paths_parse_and_format_as_the_spec_writes_them() {
        let t = parse("0/x001/x234/067").unwrap();
        assert_eq!((t.level, t.index, t.width), (0, 1_234_067, None));
        assert_eq!(t.to_string(), "0/x001/x234/067");
        let p = parse("2/000.p/1").unwrap();
        assert_eq!((p.level, p.index, p.width), (2, 0, Some(1)));
        assert_eq!(p.to_string(), "2/000.p/1");
        assert_eq!(parse("entries/000"), Err(TileError::Entries));
        for bad in [
            "0/x000/000",
            "0/x000/x001/000",
            "0/x1000",
            "0/1000",
            "0/01",
            "00/000",
            "64/000",
            "0/000.p/0",
            "0/000.p/256",
            "0/000.p/01",
            "0/x001",
            "0/001/002",
            "0",
            "a/000",
            "0/x001/x002/x003/x004/x005/x006/x007/008",
        ] {
            assert!(matches!(parse(bad), Err(TileError::Path(_))), "{bad}");
        }
    }

    /// The spec's example: a tree of 70,000 leaves has 273 full level-0 tiles and a partial one
    /// of width 112, one full level-1 tile and a partial one of 17, and a level-2 tile of 1.
    #[test]
    fn which_tiles_a_tree_holds_and_what_is_in_them() {
        let tree = MemoryTree::new((0..70_000u32).map(|i| merkle::leaf_hash(&i.to_be_bytes())));
        let size = tree.len();
        let held = |p: &str| parse(p).unwrap().hashes(&tree, size).unwrap().is_ok();
        assert!(held("0/272") && !held("0/273") && held("0/273.p/112") && !held("0/273.p/113"));
        assert!(held("1/000") && held("1/001.p/17") && !held("1/001") && !held("1/001.p/18"));
        assert!(held("2/000.p/1") && !held("2/000.p/2") && !held("3/000.p/1"));
        assert!(!held("0/274.p/1"), "a tile past the edge");
        // The partial tiles of every smaller size: a client that verified an older checkpoint
        // asks for those.
        assert!(held("0/273.p/111") && held("0/273.p/1") && held("1/001.p/16"));
        assert!(held("0/272.p/5"), "a partial tile whose full tile exists");
        let older = MemoryTree::new((0..69_999u32).map(|i| merkle::leaf_hash(&i.to_be_bytes())));
        for path in ["0/273.p/111", "1/001.p/16"] {
            let tile = parse(path).unwrap();
            let now = tile.hashes(&tree, size).unwrap().unwrap();
            let then = tile.hashes(&older, older.len()).unwrap().unwrap();
            assert_eq!(now, then, "{path} as the tree of 69,999 served it");
        }
        let level1 = parse("1/000")
            .unwrap()
            .hashes(&tree, size)
            .unwrap()
            .unwrap();
        // Each level-1 hash is the root of a full level-0 tile.
        let first_tile = merkle::subtree(&tree, 0, 256).unwrap();
        assert_eq!(level1[0], first_tile);
        assert_eq!(level1.len(), 256);
    }
}
