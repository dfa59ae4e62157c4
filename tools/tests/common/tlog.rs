//! RFC 6962 Merkle trees and tlog-tiles for the tests, written from RFC 6962 §2.1, RFC 9162
//! §2.1.4.2 and c2sp.org/tlog-tiles alone, not from Jol's code: tree heads, consistency proofs
//! (built and verified), tile paths, the tiles of a tree, and a tree's root recomputed from its
//! tiles.

use std::collections::HashMap;

use sha2::{Digest, Sha256};

pub type Hash = [u8; 32];

/// Hashes in a full tile.
pub const TILE_WIDTH: u64 = 256;

/// `SHA-256(0x00 || data)`.
pub fn leaf_hash(data: &[u8]) -> Hash {
    Sha256::new()
        .chain_update([0])
        .chain_update(data)
        .finalize()
        .into()
}

/// `SHA-256(0x01 || left || right)`.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    Sha256::new()
        .chain_update([1])
        .chain_update(left)
        .chain_update(right)
        .finalize()
        .into()
}

/// The root of the empty tree: the hash of the empty string.
pub fn empty_root() -> Hash {
    Sha256::digest(b"").into()
}

/// The largest power of two smaller than `n` (n > 1).
fn split(n: usize) -> usize {
    1 << (usize::BITS - 1 - (n - 1).leading_zeros())
}

/// MTH over the leaves' hashes (RFC 6962 §2.1).
pub fn root(leaves: &[Hash]) -> Hash {
    match leaves.len() {
        0 => empty_root(),
        1 => leaves[0],
        n => {
            let k = split(n);
            node_hash(&root(&leaves[..k]), &root(&leaves[k..]))
        }
    }
}

/// PROOF(m, D[n]) of RFC 6962 §2.1.2, for 0 < m ≤ n = `leaves.len()`.
pub fn consistency_proof(m: usize, leaves: &[Hash]) -> Vec<Hash> {
    subproof(m, leaves, true)
}

fn subproof(m: usize, leaves: &[Hash], whole: bool) -> Vec<Hash> {
    let n = leaves.len();
    if m == n {
        return if whole { vec![] } else { vec![root(leaves)] };
    }
    let k = split(n);
    let (mut proof, other) = if m <= k {
        (subproof(m, &leaves[..k], whole), root(&leaves[k..]))
    } else {
        (subproof(m - k, &leaves[k..], false), root(&leaves[..k]))
    };
    proof.push(other);
    proof
}

/// Whether `proof` shows the tree of `second` leaves with root `second_root` extends the one of
/// `first` leaves with root `first_root` (RFC 9162 §2.1.4.2; equal sizes need equal roots and
/// no proof; the empty tree is consistent with every tree, without proof).
pub fn verify_consistency(
    first: u64,
    second: u64,
    first_root: &Hash,
    second_root: &Hash,
    proof: &[Hash],
) -> bool {
    if first == second {
        return proof.is_empty() && first_root == second_root;
    }
    if first == 0 {
        return proof.is_empty();
    }
    if first > second || proof.is_empty() {
        return false;
    }
    let mut path = Vec::with_capacity(proof.len() + 1);
    if first.is_power_of_two() {
        path.push(*first_root);
    }
    path.extend_from_slice(proof);
    let (mut f, mut s) = (first - 1, second - 1);
    while f & 1 == 1 {
        f >>= 1;
        s >>= 1;
    }
    let (mut fr, mut sr) = (path[0], path[0]);
    for c in &path[1..] {
        if s == 0 {
            return false;
        }
        if f & 1 == 1 || f == s {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            while f & 1 == 0 && f != 0 {
                f >>= 1;
                s >>= 1;
            }
        } else {
            sr = node_hash(&sr, c);
        }
        f >>= 1;
        s >>= 1;
    }
    fr == *first_root && sr == *second_root && s == 0
}

/// A tile index in the path encoding: 3-digit elements, all but the last prefixed with `x`
/// (1234067 is `x001/x234/067`).
pub fn tile_index(n: u64) -> String {
    let mut elements = vec![format!("{:03}", n % 1000)];
    let mut rest = n / 1000;
    while rest > 0 {
        elements.push(format!("x{:03}", rest % 1000));
        rest /= 1000;
    }
    elements.reverse();
    elements.join("/")
}

/// `tile/<L>/<N>`, with `.p/<W>` when `width` is less than a full tile's.
pub fn tile_path(level: u32, index: u64, width: u64) -> String {
    let full = format!("tile/{level}/{}", tile_index(index));
    if width == TILE_WIDTH {
        full
    } else {
        format!("{full}.p/{width}")
    }
}

/// The width of tile `index` at `level` in a tree of `size` leaves: full, or the partial width
/// `floor(size / 256^level) mod 256`.
fn width(size: u64, level: u32, index: u64) -> u64 {
    let entries = level_entries(size, level);
    if (index + 1) * TILE_WIDTH <= entries {
        TILE_WIDTH
    } else {
        entries % TILE_WIDTH
    }
}

/// How many hashes level `level` holds in a tree of `size` leaves: `floor(size / 256^level)`.
fn level_entries(size: u64, level: u32) -> u64 {
    size.checked_shr(8 * level).unwrap_or(0)
}

/// Every tile of the tree over `leaves` (full and partial, every level), by path.
pub fn tiles_of(leaves: &[Hash]) -> HashMap<String, Vec<u8>> {
    let mut tiles = HashMap::new();
    let mut level_hashes = leaves.to_vec();
    let mut level = 0;
    while !level_hashes.is_empty() {
        for (index, tile) in level_hashes.chunks(TILE_WIDTH as usize).enumerate() {
            tiles.insert(
                tile_path(level, index as u64, tile.len() as u64),
                tile.concat(),
            );
        }
        level_hashes = level_hashes
            .chunks_exact(TILE_WIDTH as usize)
            .map(root)
            .collect();
        level += 1;
    }
    tiles
}

/// Why a root could not be recomputed from tiles.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TileError {
    #[error("tile {0} could not be fetched")]
    Missing(String),
    #[error("tile {path} has {len} bytes, not {expected}")]
    WrongLength {
        path: String,
        len: usize,
        expected: usize,
    },
}

/// The root of the tree of `size` leaves, from its tiles as `fetch` gives them by path
/// (`tile/0/x001/234.p/7`): the tree split into the perfect subtrees of `size`'s binary
/// digits, largest first, each hashed from the tile level just below its height, then joined
/// right to left as RFC 6962's MTH joins them.
pub fn root_from_tiles(
    size: u64,
    mut fetch: impl FnMut(&str) -> Option<Vec<u8>>,
) -> Result<Hash, TileError> {
    let mut fetched: HashMap<String, Vec<u8>> = HashMap::new();
    let mut subtrees = Vec::new();
    let mut start = 0u64;
    for height in (0..64).rev() {
        if size & (1 << height) == 0 {
            continue;
        }
        let (level, below) = (height / 8, height % 8);
        let first = start >> (8 * level);
        let index = first / TILE_WIDTH;
        let path = tile_path(level, index, width(size, level, index));
        if !fetched.contains_key(&path) {
            let tile = fetch(&path).ok_or_else(|| TileError::Missing(path.clone()))?;
            let expected = width(size, level, index) as usize * 32;
            if tile.len() != expected {
                return Err(TileError::WrongLength {
                    path,
                    len: tile.len(),
                    expected,
                });
            }
            fetched.insert(path.clone(), tile);
        }
        let offset = (first % TILE_WIDTH) as usize;
        let hashes: Vec<Hash> = fetched[&path]
            .chunks_exact(32)
            .skip(offset)
            .take(1 << below)
            .map(|h| h.try_into().expect("32 bytes"))
            .collect();
        subtrees.push(root(&hashes));
        start += 1 << height;
    }
    Ok(match subtrees.split_last() {
        None => empty_root(),
        Some((last, rest)) => rest
            .iter()
            .rev()
            .fold(*last, |right, left| node_hash(left, &right)),
    })
}
