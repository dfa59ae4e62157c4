//! The issuer's status list (IETF Token Status List): one bit per credential issued, in the
//! order issued; 1 means revoked. A credential names its bit (`status.status_list`: `idx` and
//! the list's `uri`); the list is served as a signed token (`typ: statuslist+jwt`) whose
//! `status_list.lst` is the bits, zlib-compressed (RFC 1950) and base64url-encoded.
//!
//! The list is the store's ([`Meta::StatusList`]); the writer of the issuer's node is the only
//! one that grows it (issuing) or flips a bit (revocation), and each change is one store write.
//! The zlib stream is written with *stored* (uncompressed) deflate blocks: any inflater reads
//! it, the list stays small (a bit a credential), and no compression library is needed; the
//! reader here takes stored blocks only, which is what this issuer writes.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Value};

use super::key::IssuerKey;
use crate::store::{Meta, Store, StoreError};

/// The `typ` of a status list token.
pub const TYP: &str = "statuslist+jwt";

/// The status bits, as the store keeps them: the count of entries (u64 BE), then the bits.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StatusList {
    len: u64,
    bits: Vec<u8>,
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

    fn from_bytes(bytes: &[u8]) -> StatusList {
        let (len, bits) = bytes.split_at(8.min(bytes.len()));
        let len = len.try_into().map_or(0, u64::from_be_bytes);
        StatusList {
            len,
            bits: bits.to_vec(),
        }
    }

    pub(super) fn to_store(&self) -> Vec<u8> {
        let mut out = self.len.to_be_bytes().to_vec();
        out.extend_from_slice(&self.bits);
        out
    }

    /// A new entry, valid: its index.
    pub fn push(&mut self) -> u64 {
        let idx = self.len;
        self.len += 1;
        if self.bits.len() * 8 < self.len as usize {
            self.bits.push(0);
        }
        idx
    }

    /// How many entries the list has.
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
        if let Some(byte) = self.bits.get_mut((idx / 8) as usize) {
            *byte |= 1 << (idx % 8);
        }
        true
    }

    /// Whether entry `idx` is revoked (an entry past the end is not in the list: `None`).
    pub fn is_revoked(&self, idx: u64) -> Option<bool> {
        if idx >= self.len {
            return None;
        }
        let byte = self.bits.get((idx / 8) as usize)?;
        Some(byte & (1 << (idx % 8)) != 0)
    }

    /// The signed status list token for the list at `uri`, issued by `issuer`. At least one
    /// byte of bits, so an issuer without credentials still serves a list.
    pub fn token(&self, key: &IssuerKey, issuer: &str, uri: &str, iat: i64) -> String {
        let bits = if self.bits.is_empty() {
            vec![0]
        } else {
            self.bits.clone()
        };
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
        })
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
        let idx: Vec<u64> = (0..10).map(|_| list.push()).collect();
        assert_eq!(idx, (0..10).collect::<Vec<_>>());
        assert!(list.revoke(9));
        assert!(!list.revoke(10), "no such entry");
        assert_eq!(list.is_revoked(9), Some(true));
        assert_eq!(list.is_revoked(8), Some(false));
        assert_eq!(list.is_revoked(10), None);
        // Index 9 is bit 1 of byte 1, least significant first (Token Status List §4.1).
        assert_eq!(list.bits, vec![0, 0b10]);
        assert_eq!(StatusList::from_bytes(&list.to_store()), list);
    }

    #[test]
    fn the_token_carries_the_list_zlib_compressed() {
        let key = IssuerKey::generate("vc-1");
        let mut list = StatusList::default();
        list.push();
        list.push();
        list.revoke(1);
        let token = list.token(&key, "https://i.example", "https://i.example/status/1", 0);
        let jwks = json!({"keys": [key.jwk()]});
        let verified = super::super::key::verify_compact(&token, TYP, &jwks).unwrap();
        assert_eq!(verified.payload["sub"], "https://i.example/status/1");
        let read = StatusList::of_payload(&verified.payload).unwrap();
        assert_eq!(read.is_revoked(1), Some(true));
        assert_eq!(read.is_revoked(0), Some(false));
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
