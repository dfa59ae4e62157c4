//! The issuer's status list (IETF Token Status List): one bit per credential, 1 meaning
//! revoked. A credential names its bit (`status.status_list`: `idx` and the list's `uri`); the
//! list is served as a signed token (`typ: statuslist+jwt`) whose `status_list.lst` is the bits,
//! zlib-compressed (RFC 1950) and base64url-encoded.
//!
//! What the list must not tell (the draft's herd privacy): how many credentials were issued,
//! in what order, or which bits are live. So the list is never shorter than [`MIN_ENTRIES`]
//! and doubles when half of it is taken, and each credential takes an entry drawn at random
//! among the free ones ([`StatusList::choose`]); which entries are taken is kept beside the
//! bits, in the store only, so that no entry is ever given twice (an erased person's
//! credential keeps its entry: the holder's copy still names it).
//!
//! The list is the store's ([`Meta::StatusList`]); the writer of the issuer's node is the only
//! one that takes an entry (issuing) or flips a bit (revocation), and each change is one store
//! write. The zlib stream is written with *stored* (uncompressed) deflate blocks: any inflater
//! reads it, the list stays small (a bit an entry), and no compression library is needed; the
//! reader here takes stored blocks only, which is what this issuer writes.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Value};

use super::key::IssuerKey;
use crate::store::{Meta, Store, StoreError};

/// The `typ` of a status list token.
pub const TYP: &str = "statuslist+jwt";

/// The fewest entries a served list has (2 KiB of bits): a list that grew with every credential
/// would tell anyone how many were issued, and each holder's place in the order.
pub const MIN_ENTRIES: u64 = 16_384;

/// Marks the stored form with the taken entries (a list stored before began with its entry
/// count, a u64 whose first byte is 0 for any real count).
const STORED_V2: &[u8; 4] = b"SL2\0";

/// The status bits and which entries are taken, as the store keeps them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StatusList {
    /// Entries, a multiple of 8 (0 before the first credential, else at least [`MIN_ENTRIES`]).
    len: u64,
    /// A bit an entry, least significant first: revoked.
    bits: Vec<u8>,
    /// A bit an entry: given to a credential (never served).
    taken: Vec<u8>,
}

impl StatusList {
    /// The list the store holds (empty when none).
    pub fn load(store: &Store) -> Result<StatusList, StoreError> {
        Ok(store
            .meta(&Meta::StatusList)?
            .map(|b| StatusList::from_bytes(&b))
            .unwrap_or_default())
    }

    /// Keep the list (durably).
    pub fn save(&self, store: &Store) -> Result<(), StoreError> {
        store.set_meta(&Meta::StatusList, &self.to_store())
    }

    /// The stored form: [`STORED_V2`], the entry count (u64 BE), the bits, the taken entries.
    /// A list stored before entries were drawn at random (the count, then the bits, entries
    /// given in order from 0) reads as that many entries taken, grown to the least size.
    fn from_bytes(bytes: &[u8]) -> StatusList {
        let Some(rest) = bytes.strip_prefix(STORED_V2) else {
            let (len, bits) = bytes.split_at(8.min(bytes.len()));
            let issued = len.try_into().map_or(0, u64::from_be_bytes);
            let mut list = StatusList::default();
            if issued == 0 {
                return list;
            }
            list.grow_to(issued);
            for idx in 0..issued {
                set(&mut list.taken, idx);
                if bit(bits, idx) {
                    set(&mut list.bits, idx);
                }
            }
            return list;
        };
        let (len, rest) = rest.split_at(8.min(rest.len()));
        let len = len.try_into().map_or(0, u64::from_be_bytes);
        let (bits, taken) = rest.split_at(rest.len() / 2);
        StatusList {
            len,
            bits: bits.to_vec(),
            taken: taken.to_vec(),
        }
    }

    pub(super) fn to_store(&self) -> Vec<u8> {
        let mut out = STORED_V2.to_vec();
        out.extend_from_slice(&self.len.to_be_bytes());
        out.extend_from_slice(&self.bits);
        out.extend_from_slice(&self.taken);
        out
    }

    /// A free entry drawn at random, for the next credential: in the list as it will be once
    /// [`StatusList::take`] has grown it (it doubles when half of it is taken). Nothing is
    /// taken until then: a credential that never reaches the store leaves its entry free.
    pub fn choose(&self) -> u64 {
        use rand::Rng;
        let len = self.len_after_taking_one();
        let mut rng = rand::rng();
        loop {
            // At most half the entries are taken: two draws on average.
            let idx = rng.random_range(0..len);
            if !bit(&self.taken, idx) {
                return idx;
            }
        }
    }

    /// Give entry `idx` (from [`StatusList::choose`]) to a credential, growing the list to hold
    /// it; false when it was given before.
    pub fn take(&mut self, idx: u64) -> bool {
        if bit(&self.taken, idx) {
            return false;
        }
        self.grow_to(self.len_after_taking_one().max(idx + 1));
        set(&mut self.taken, idx);
        true
    }

    /// [`StatusList::choose`] then [`StatusList::take`].
    #[cfg(test)]
    pub(crate) fn take_one(&mut self) -> u64 {
        let idx = self.choose();
        self.take(idx);
        idx
    }

    /// How many entries the list has once one more is taken: at least [`MIN_ENTRIES`], and
    /// twice as many as are taken.
    fn len_after_taking_one(&self) -> u64 {
        let mut len = self.len.max(MIN_ENTRIES);
        while (self.taken_count() + 1) * 2 > len {
            len *= 2;
        }
        len
    }

    /// Grow to at least `entries` (a multiple of 8, [`MIN_ENTRIES`] at least); the entries
    /// held keep their places.
    fn grow_to(&mut self, entries: u64) {
        let len = entries.max(MIN_ENTRIES).div_ceil(8) * 8;
        if len > self.len {
            self.len = len;
            self.bits.resize((len / 8) as usize, 0);
            self.taken.resize((len / 8) as usize, 0);
        }
    }

    /// How many entries are given to credentials.
    pub fn taken_count(&self) -> u64 {
        self.taken.iter().map(|b| u64::from(b.count_ones())).sum()
    }

    /// How many entries the list has (taken or not).
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the list has no entry.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Clear entry `idx` (tests: a revocation whose bit never reached the store).
    #[cfg(test)]
    pub(crate) fn unrevoke_for_tests(&mut self, idx: u64) {
        if let Some(byte) = self.bits.get_mut((idx / 8) as usize) {
            *byte &= !(1 << (idx % 8));
        }
    }

    /// Mark entry `idx` revoked; false when the list has no such entry.
    pub fn revoke(&mut self, idx: u64) -> bool {
        if idx >= self.len {
            return false;
        }
        set(&mut self.bits, idx);
        true
    }

    /// Whether entry `idx` is revoked (an entry past the end is not in the list: `None`).
    pub fn is_revoked(&self, idx: u64) -> Option<bool> {
        if idx >= self.len {
            return None;
        }
        Some(bit(&self.bits, idx))
    }

    /// The signed status list token for the list at `uri`, issued by `issuer`: the bits of
    /// every entry, [`MIN_ENTRIES`] at least (an issuer without credentials serves a list as
    /// long as one with a few).
    pub fn token(&self, key: &IssuerKey, issuer: &str, uri: &str, iat: i64) -> String {
        let mut bits = self.bits.clone();
        bits.resize(bits.len().max((MIN_ENTRIES / 8) as usize), 0);
        let payload = json!({
            "iss": issuer,
            "sub": uri,
            "iat": iat,
            "status_list": {"bits": 1, "lst": URL_SAFE_NO_PAD.encode(zlib_stored(&bits))},
        });
        key.sign(TYP, &payload)
    }

    /// The list a verified token's payload holds (`status_list.bits` 1, `lst` as this issuer
    /// writes it), if it is one.
    pub fn of_payload(payload: &Value) -> Option<StatusList> {
        let list = payload.get("status_list")?;
        if list.get("bits")?.as_u64()? != 1 {
            return None;
        }
        let compressed = URL_SAFE_NO_PAD.decode(list.get("lst")?.as_str()?).ok()?;
        let bits = unzlib_stored(&compressed)?;
        Some(StatusList {
            len: bits.len() as u64 * 8,
            bits,
            taken: Vec::new(),
        })
    }
}

/// Entry `idx` of a bit array, least significant bit first (Token Status List §4.1).
fn bit(bytes: &[u8], idx: u64) -> bool {
    bytes
        .get((idx / 8) as usize)
        .is_some_and(|byte| byte & (1 << (idx % 8)) != 0)
}

/// Set entry `idx` of a bit array that holds it.
fn set(bytes: &mut [u8], idx: u64) {
    if let Some(byte) = bytes.get_mut((idx / 8) as usize) {
        *byte |= 1 << (idx % 8);
    }
}

/// A zlib stream (RFC 1950) of `data` in stored deflate blocks (RFC 1951 §3.2.4).
fn zlib_stored(data: &[u8]) -> Vec<u8> {
    // CMF 0x78 (deflate, 32 KiB window), FLG 0x01 (no dictionary, fastest; 0x7801 % 31 == 0).
    let mut out = vec![0x78, 0x01];
    let mut chunks = data.chunks(u16::MAX as usize).peekable();
    if chunks.peek().is_none() {
        out.extend_from_slice(&[1, 0, 0, 0xff, 0xff]);
    }
    while let Some(chunk) = chunks.next() {
        let last = chunks.peek().is_none();
        let len = chunk.len() as u16;
        out.push(u8::from(last));
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(chunk);
    }
    out.extend_from_slice(&adler32(data).to_be_bytes());
    out
}

/// The data of a zlib stream of stored blocks, checked against its Adler-32; `None` for any
/// other stream.
fn unzlib_stored(stream: &[u8]) -> Option<Vec<u8>> {
    let (header, mut rest) = (stream.get(..2)?, stream.get(2..)?);
    if header[0] & 0x0f != 8 || u16::from_be_bytes([header[0], header[1]]) % 31 != 0 {
        return None;
    }
    let mut data = Vec::new();
    loop {
        let block_header = *rest.first()?;
        // BTYPE 00 (stored) only; the rest of the first byte is padding.
        if block_header & 0b110 != 0 {
            return None;
        }
        let len = u16::from_le_bytes([*rest.get(1)?, *rest.get(2)?]);
        let nlen = u16::from_le_bytes([*rest.get(3)?, *rest.get(4)?]);
        if len != !nlen {
            return None;
        }
        data.extend_from_slice(rest.get(5..5 + len as usize)?);
        rest = rest.get(5 + len as usize..)?;
        if block_header & 1 == 1 {
            break;
        }
    }
    (rest == adler32(&data).to_be_bytes()).then_some(data)
}

fn adler32(data: &[u8]) -> u32 {
    let (mut a, mut b) = (1u32, 0u32);
    for &byte in data {
        a = (a + u32::from(byte)) % 65521;
        b = (b + a) % 65521;
    }
    (b << 16) | a
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revoking_flips_exactly_the_entry_named() {
        let mut list = StatusList::default();
        let idx: Vec<u64> = (0..10).map(|_| list.take_one()).collect();
        assert_eq!(list.len(), MIN_ENTRIES);
        assert!(list.revoke(idx[9]));
        assert!(!list.revoke(MIN_ENTRIES), "no such entry");
        assert_eq!(list.is_revoked(idx[9]), Some(true));
        assert_eq!(list.is_revoked(idx[8]), Some(false));
        assert_eq!(list.is_revoked(MIN_ENTRIES), None);
        // Least significant bit first (Token Status List §4.1).
        let byte = list.bits[(idx[9] / 8) as usize];
        assert_eq!(byte, 1 << (idx[9] % 8));
        assert_eq!(StatusList::from_bytes(&list.to_store()), list);
    }

    #[test]
    fn entries_are_drawn_at_random_never_twice_and_the_list_doubles_at_half() {
        let mut list = StatusList::default();
        let taken: Vec<u64> = (0..MIN_ENTRIES / 2).map(|_| list.take_one()).collect();
        let mut distinct = taken.clone();
        distinct.sort_unstable();
        distinct.dedup();
        assert_eq!(distinct.len(), taken.len(), "no entry given twice");
        assert_eq!(
            (list.len(), list.taken_count()),
            (MIN_ENTRIES, MIN_ENTRIES / 2)
        );
        // Not handed out in order: the first ten are not 0..10 (odds of that ~2^-140).
        assert_ne!(taken[..10], (0..10).collect::<Vec<_>>());
        assert!(!list.take(taken[0]), "a taken entry is not given again");
        list.take_one();
        assert_eq!(list.len(), 2 * MIN_ENTRIES, "half taken: the list doubles");
        assert_eq!(StatusList::from_bytes(&list.to_store()), list);
        // A chosen entry that never reached the store is free again.
        let chosen = list.choose();
        assert!(list.take(chosen));
    }

    #[test]
    fn a_list_stored_in_order_keeps_its_entries_and_grows_to_the_least_size() {
        // As stored before: three entries given in order, the second revoked.
        let mut before = 3u64.to_be_bytes().to_vec();
        before.push(0b010);
        let list = StatusList::from_bytes(&before);
        assert_eq!((list.len(), list.taken_count()), (MIN_ENTRIES, 3));
        assert_eq!(
            (0..4).map(|i| list.is_revoked(i)).collect::<Vec<_>>(),
            [Some(false), Some(true), Some(false), Some(false)]
        );
        let next = list.choose();
        assert!(next > 2, "an entry given before is not given again: {next}");
        assert_eq!(StatusList::from_bytes(&[]), StatusList::default());
    }

    #[test]
    fn the_token_carries_the_list_zlib_compressed_at_its_least_size() {
        let key = IssuerKey::generate("vc-1");
        let mut list = StatusList::default();
        let (a, b) = (list.take_one(), list.take_one());
        list.revoke(b);
        let jwks = json!({"keys": [key.jwk()]});
        let read = |list: &StatusList| {
            let token = list.token(&key, "https://i.example", "https://i.example/status/1", 0);
            let verified = super::super::key::verify_compact(&token, TYP, &jwks).unwrap();
            assert_eq!(verified.payload["sub"], "https://i.example/status/1");
            StatusList::of_payload(&verified.payload).unwrap()
        };
        let served = read(&list);
        assert_eq!(served.is_revoked(b), Some(true));
        assert_eq!(served.is_revoked(a), Some(false));
        assert_eq!(served.len(), MIN_ENTRIES);
        assert!(
            served.taken.is_empty(),
            "which entries are taken is never served"
        );
        assert_eq!(read(&StatusList::default()).len(), MIN_ENTRIES);
    }

    #[test]
    fn the_zlib_stream_is_standard() {
        // Adler-32 of "Wikipedia", the usual check value.
        assert_eq!(adler32(b"Wikipedia"), 0x11E6_0398);
        let big: Vec<u8> = (0..70_000u32).map(|i| i as u8).collect();
        for data in [&b""[..], b"\x01\x02", &big] {
            assert_eq!(unzlib_stored(&zlib_stored(data)).as_deref(), Some(data));
        }
        let mut broken = zlib_stored(b"abc");
        *broken.last_mut().unwrap() ^= 1;
        assert_eq!(unzlib_stored(&broken), None);
    }
}
