//! The append-only Merkle tree of RFC 9162 (Certificate Transparency 2.0), section 2.1: leaf
//! hash `SHA-256(0x00 || entry)`, node hash `SHA-256(0x01 || left || right)`, roots, inclusion
//! and consistency proofs, and their verification, written to the RFC's definitions and checked
//! against its published test vectors.
//!
//! A log entry is an event's JWS in compact serialization ([`crate::event::jws::compact`]), so a client
//! can rebuild the exact leaf from the flattened JSON it received.
//!
//! Proofs are computed from the hashes of perfect, aligned subtrees (`2^level` leaves starting at
//! `index * 2^level`), which a [`Subtrees`] source provides: the store keeps them as the log
//! grows, so a root or a proof costs O(log² n) lookups, not a pass over the log.

use sha2::{Digest, Sha256};

/// A SHA-256 hash.
pub type Hash = [u8; 32];

/// The root of the empty tree: SHA-256 of nothing.
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

/// RFC 9162: `MTH({d}) = SHA-256(0x00 || d)`.
pub fn leaf_hash(entry: &[u8]) -> Hash {
    leaf_hash_of(&[entry])
}

/// [`leaf_hash`] of the entry that is `parts` one after the other (not joined first).
pub fn leaf_hash_of(parts: &[&[u8]]) -> Hash {
    let mut h = Sha256::new();
    h.update([0u8]);
    for part in parts {
        h.update(part);
    }
    h.finalize().into()
}

/// RFC 9162: `SHA-256(0x01 || left || right)`.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// Where the hashes of perfect subtrees come from.
pub trait Subtrees {
    /// Why a subtree could not be read.
    type Error;
    /// The hash of leaves `[index << level, (index + 1) << level)`.
    fn perfect(&self, level: u32, index: u64) -> Result<Hash, Self::Error>;

    /// The hashes of the `count` perfect subtrees at `level` from `first` on, in order: one
    /// read where the source can make it one, one [`Subtrees::perfect`] each by default.
    fn perfect_run(&self, level: u32, first: u64, count: u64) -> Result<Vec<Hash>, Self::Error> {
        each_perfect(self, level, first, count)
    }
}

/// [`Subtrees::perfect_run`] one subtree at a time.
pub fn each_perfect<S: Subtrees + ?Sized>(
    s: &S,
    level: u32,
    first: u64,
    count: u64,
) -> Result<Vec<Hash>, S::Error> {
    (first..first.saturating_add(count))
        .map(|i| s.perfect(level, i))
        .collect()
}

/// The largest power of two smaller than `n` (n > 1).
fn split(n: u64) -> u64 {
    1 << (63 - (n - 1).leading_zeros())
}

/// `MTH(D[start:end])`.
pub fn subtree<S: Subtrees>(s: &S, start: u64, end: u64) -> Result<Hash, S::Error> {
    let n = end - start;
    if n.is_power_of_two() && start.is_multiple_of(n) {
        return s.perfect(n.trailing_zeros(), start >> n.trailing_zeros());
    }
    let k = split(n);
    Ok(node_hash(
        &subtree(s, start, start + k)?,
        &subtree(s, start + k, end)?,
    ))
}

/// The root of the first `size` leaves.
pub fn root<S: Subtrees>(s: &S, size: u64) -> Result<Hash, S::Error> {
    if size == 0 {
        return Ok(empty_root());
    }
    subtree(s, 0, size)
}

/// RFC 9162 `PATH(m, D[n])`: the inclusion proof of leaf `index` in the tree of `size` leaves.
pub fn inclusion_proof<S: Subtrees>(s: &S, index: u64, size: u64) -> Result<Vec<Hash>, S::Error> {
    let mut proof = Vec::new();
    path(s, index, 0, size, &mut proof)?;
    Ok(proof)
}

fn path<S: Subtrees>(
    s: &S,
    m: u64,
    start: u64,
    end: u64,
    out: &mut Vec<Hash>,
) -> Result<(), S::Error> {
    let n = end - start;
    if n <= 1 {
        return Ok(());
    }
    let k = split(n);
    if m < k {
        path(s, m, start, start + k, out)?;
        out.push(subtree(s, start + k, end)?);
    } else {
        path(s, m - k, start + k, end, out)?;
        out.push(subtree(s, start, start + k)?);
    }
    Ok(())
}

/// RFC 9162 `PROOF(m, D[n])`: the consistency proof between tree sizes `m` and `n`.
pub fn consistency_proof<S: Subtrees>(s: &S, m: u64, n: u64) -> Result<Vec<Hash>, S::Error> {
    let mut proof = Vec::new();
    if m > 0 && m < n {
        subproof(s, m, 0, n, true, &mut proof)?;
    }
    Ok(proof)
}

fn subproof<S: Subtrees>(
    s: &S,
    m: u64,
    start: u64,
    end: u64,
    complete: bool,
    out: &mut Vec<Hash>,
) -> Result<(), S::Error> {
    let n = end - start;
    if m == n {
        if !complete {
            out.push(subtree(s, start, end)?);
        }
        return Ok(());
    }
    let k = split(n);
    if m <= k {
        subproof(s, m, start, start + k, complete, out)?;
        out.push(subtree(s, start + k, end)?);
    } else {
        subproof(s, m - k, start + k, end, false, out)?;
        out.push(subtree(s, start, start + k)?);
    }
    Ok(())
}

/// RFC 9162 section 2.1.3.2: does `proof` show leaf `leaf` at `index` in the tree of `size`
/// leaves with root `root`?
pub fn verify_inclusion(leaf: &Hash, index: u64, size: u64, proof: &[Hash], root: &Hash) -> bool {
    if index >= size {
        return false;
    }
    let (mut fn_, mut sn) = (index, size - 1);
    let mut r = *leaf;
    for p in proof {
        if sn == 0 {
            return false;
        }
        if fn_ & 1 == 1 || fn_ == sn {
            r = node_hash(p, &r);
            while fn_ & 1 == 0 && fn_ != 0 {
                fn_ >>= 1;
                sn >>= 1;
            }
        } else {
            r = node_hash(&r, p);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    sn == 0 && &r == root
}

/// RFC 9162 section 2.1.4.2: does `proof` show that the tree of `first` leaves with root
/// `first_root` is a prefix of the tree of `second` leaves with root `second_root`?
pub fn verify_consistency(
    first: u64,
    second: u64,
    first_root: &Hash,
    second_root: &Hash,
    proof: &[Hash],
) -> bool {
    if first > second {
        return false;
    }
    if first == second {
        return proof.is_empty() && first_root == second_root;
    }
    if first == 0 {
        return proof.is_empty() && *first_root == empty_root();
    }
    if proof.is_empty() {
        return false;
    }
    let mut nodes: Vec<Hash> = Vec::with_capacity(proof.len() + 1);
    if first.is_power_of_two() {
        nodes.push(*first_root);
    }
    nodes.extend_from_slice(proof);
    let (mut fn_, mut sn) = (first - 1, second - 1);
    while fn_ & 1 == 1 {
        fn_ >>= 1;
        sn >>= 1;
    }
    let (mut fr, mut sr) = (nodes[0], nodes[0]);
    for c in &nodes[1..] {
        if sn == 0 {
            return false;
        }
        if fn_ & 1 == 1 || fn_ == sn {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            while fn_ & 1 == 0 && fn_ != 0 {
                fn_ >>= 1;
                sn >>= 1;
            }
        } else {
            sr = node_hash(&sr, c);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    &fr == first_root && &sr == second_root && sn == 0
}

/// The rightmost perfect subtrees of a growing tree: enough to append and to know the root.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Frontier {
    size: u64,
    /// (level, hash), levels strictly decreasing.
    peaks: Vec<(u32, Hash)>,
}

impl Frontier {
    /// The frontier of a tree of `size` leaves, from its perfect subtrees.
    pub fn load<S: Subtrees>(s: &S, size: u64) -> Result<Frontier, S::Error> {
        let mut peaks = Vec::new();
        let mut start = 0u64;
        for level in (0..64u32).rev() {
            if size & (1 << level) != 0 {
                peaks.push((level, s.perfect(level, start >> level)?));
                start += 1 << level;
            }
        }
        Ok(Frontier { size, peaks })
    }

    /// How many leaves the tree has.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Append a leaf hash; returns the perfect subtrees completed by it, `(level, index, hash)`,
    /// starting with the leaf itself at level 0.
    pub fn append(&mut self, leaf: Hash) -> Vec<(u32, u64, Hash)> {
        let index = self.size;
        let mut completed = vec![(0, index, leaf)];
        let (mut level, mut hash) = (0u32, leaf);
        while let Some(&(l, left)) = self.peaks.last() {
            if l != level {
                break;
            }
            self.peaks.pop();
            hash = node_hash(&left, &hash);
            level += 1;
            completed.push((level, index >> level, hash));
        }
        self.peaks.push((level, hash));
        self.size += 1;
        completed
    }

    /// The root of the tree so far.
    pub fn root(&self) -> Hash {
        let mut iter = self.peaks.iter().rev();
        let Some(&(_, mut acc)) = iter.next() else {
            return empty_root();
        };
        for (_, left) in iter {
            acc = node_hash(left, &acc);
        }
        acc
    }
}

/// A tree held in memory (tests, offline verification): every perfect subtree is kept, so roots
/// and proofs cost O(log² n) like the store's.
#[derive(Debug, Clone, Default)]
pub struct MemoryTree {
    /// `levels[l][i]`: the perfect subtree of `2^l` leaves starting at `i << l`.
    levels: Vec<Vec<Hash>>,
}

impl MemoryTree {
    /// A tree of `leaves`, in order.
    pub fn new(leaves: impl IntoIterator<Item = Hash>) -> MemoryTree {
        let mut t = MemoryTree::default();
        for l in leaves {
            t.push(l);
        }
        t
    }

    /// Append a leaf hash.
    pub fn push(&mut self, leaf: Hash) {
        let mut level = 0;
        let mut hash = leaf;
        loop {
            if self.levels.len() <= level {
                self.levels.push(Vec::new());
            }
            self.levels[level].push(hash);
            let row = &self.levels[level];
            if row.len() % 2 == 1 {
                break;
            }
            hash = node_hash(&row[row.len() - 2], &row[row.len() - 1]);
            level += 1;
        }
    }

    /// How many leaves the tree holds.
    pub fn len(&self) -> u64 {
        self.levels.first().map_or(0, |l| l.len() as u64)
    }

    /// Whether the tree holds no leaf.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The leaf hash at `index`.
    pub fn leaf(&self, index: u64) -> Hash {
        self.levels[0][index as usize]
    }
}

impl Subtrees for MemoryTree {
    type Error = std::convert::Infallible;
    fn perfect(&self, level: u32, index: u64) -> Result<Hash, Self::Error> {
        Ok(self.levels[level as usize][index as usize])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(s: &str) -> Hash {
        let bytes: Vec<u8> = (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect();
        bytes.try_into().unwrap()
    }

    /// RFC 6962 / Certificate Transparency reference inputs.
    fn ct_tree() -> MemoryTree {
        let entries: [&[u8]; 8] = [
            b"",
            &[0x00],
            &[0x10],
            &[0x20, 0x21],
            &[0x30, 0x31],
            &[0x40, 0x41, 0x42, 0x43],
            &[0x50, 0x51, 0x52, 0x53, 0x54, 0x55, 0x56, 0x57],
            &[
                0x60, 0x61, 0x62, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69, 0x6a, 0x6b, 0x6c, 0x6d,
                0x6e, 0x6f,
            ],
        ];
        MemoryTree::new(entries.iter().map(|e| leaf_hash(e)))
    }

    const ROOTS: [&str; 9] = [
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    ];

    #[test]
    fn a_leaf_of_parts_is_the_leaf_of_them_joined() {
        let joined = leaf_hash(b"header.payload.signature");
        assert_eq!(
            leaf_hash_of(&[b"header", b".", b"payload.", b"signature"]),
            joined
        );
        assert_eq!(leaf_hash_of(&[b"header.payload.signature"]), joined);
        assert_ne!(leaf_hash_of(&[b"header", b"payload", b"signature"]), joined);
    }

    #[test]
    fn roots_match_the_rfc_test_vectors() {
        let t = ct_tree();
        let mut f = Frontier::default();
        for n in 0..=8u64 {
            assert_eq!(root(&t, n).unwrap(), h(ROOTS[n as usize]), "size {n}");
            assert_eq!(f.root(), h(ROOTS[n as usize]), "frontier at {n}");
            if n < 8 {
                f.append(t.leaf(n));
            }
        }
    }

    #[test]
    fn proofs_match_the_rfc_test_vectors() {
        let t = ct_tree();
        let p0 = [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ];
        assert_eq!(inclusion_proof(&t, 0, 8).unwrap(), p0.map(h));
        let p5 = [
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ];
        assert_eq!(inclusion_proof(&t, 5, 8).unwrap(), p5.map(h));
        let c2 = [
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ];
        assert_eq!(consistency_proof(&t, 2, 8).unwrap(), c2.map(h));
        let c6 = [
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ];
        assert_eq!(consistency_proof(&t, 6, 8).unwrap(), c6.map(h));
        assert!(verify_consistency(
            6,
            8,
            &h(ROOTS[6]),
            &h(ROOTS[8]),
            &c6.map(h)
        ));
        assert!(verify_inclusion(&t.leaf(5), 5, 8, &p5.map(h), &h(ROOTS[8])));
    }

    #[test]
    fn every_proof_verifies_and_every_mangled_one_fails_up_to_300_leaves() {
        let leaves: Vec<Hash> = (0..300u32).map(|i| leaf_hash(&i.to_be_bytes())).collect();
        let t = MemoryTree::new(leaves.iter().copied());
        let mut f = Frontier::default();
        let mut roots = vec![empty_root()];
        for l in &leaves {
            f.append(*l);
            roots.push(f.root());
        }
        for n in 1..=300u64 {
            assert_eq!(roots[n as usize], root(&t, n).unwrap());
            let step = 1;
            for i in (0..n).step_by(step) {
                let p = inclusion_proof(&t, i, n).unwrap();
                assert!(
                    verify_inclusion(&leaves[i as usize], i, n, &p, &roots[n as usize]),
                    "{i}/{n}"
                );
                if let Some(first) = p.first() {
                    let mut bad = p.clone();
                    bad[0][0] ^= 1;
                    assert!(!verify_inclusion(
                        &leaves[i as usize],
                        i,
                        n,
                        &bad,
                        &roots[n as usize]
                    ));
                    assert!(!verify_inclusion(
                        &leaves[i as usize],
                        i,
                        n,
                        &p[1..],
                        &roots[n as usize]
                    ));
                    let _ = first;
                }
            }
            for m in (0..=n).step_by(step) {
                let p = consistency_proof(&t, m, n).unwrap();
                assert!(
                    verify_consistency(m, n, &roots[m as usize], &roots[n as usize], &p),
                    "{m}->{n}"
                );
                if !p.is_empty() {
                    let mut bad = p.clone();
                    bad[p.len() - 1][3] ^= 0x80;
                    assert!(!verify_consistency(
                        m,
                        n,
                        &roots[m as usize],
                        &roots[n as usize],
                        &bad
                    ));
                }
                if m > 0 && m < n {
                    // A rewritten history: same size, another root.
                    let mut other = roots[m as usize];
                    other[0] ^= 1;
                    assert!(!verify_consistency(m, n, &other, &roots[n as usize], &p));
                }
            }
        }
    }

    #[test]
    fn a_frontier_reloads_from_perfect_subtrees() {
        let t = MemoryTree::new((0..37u32).map(|i| leaf_hash(&i.to_be_bytes())));
        let f = Frontier::load(&t, 37).unwrap();
        assert_eq!(f.root(), root(&t, 37).unwrap());
    }
}
