//! How a person's stored view is packed: its JSON compressed as one LZ4 block behind a header.
//!
//! A view is rewritten with every event about its person and repeats the same names (`spellId`,
//! `eventDate`, the source's member id) once per event, so it compresses five-fold for the cost
//! of a few microseconds; a view of ten events is ~4.7 KiB of JSON, more than a B-tree page,
//! and ~0.9 KiB packed (BENCHMARKS.md, "Packed views"). A stored value that does not start with
//! [`MAGIC`] is JSON as written before views were packed, and reads back unchanged.
//!
//! The header names both lengths, so the packed bytes can be found and opened in a raw file as
//! well as through the store (the privacy tests look for a person's values on disk that way).

use std::borrow::Cow;

/// The first bytes of a packed record. A JSON text never starts with a NUL.
pub const MAGIC: &[u8; 4] = b"\0jz1";
/// The magic, then the JSON's length and the block's length (u32, little-endian).
const HEADER: usize = MAGIC.len() + 8;
/// LZ4 cannot expand a block more than about this many times (each further 255 bytes of a
/// match cost one byte of the block), so a header claiming more is damage, not a record to
/// allocate for.
const MAX_RATIO: usize = 255;

/// A packed record that does not open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PackedError {
    /// Fewer bytes than a header, or no magic.
    #[error("the packed record's header is cut short")]
    Header,
    /// The header's lengths do not fit the bytes there are, or claim more than LZ4 can expand.
    #[error("the packed record's lengths do not fit its bytes")]
    Lengths,
    /// The block is not LZ4, or decompresses to another length than the header says.
    #[error("the packed record's LZ4 block does not decompress to its length")]
    Block,
}

/// Pack `json` (a JSON text too long for the header's lengths, 4 GiB and more, is kept as it is).
pub fn pack(json: &[u8]) -> Vec<u8> {
    let Ok(raw_len) = u32::try_from(json.len()) else {
        return json.to_vec();
    };
    let block = lz4_flex::block::compress(json);
    let Ok(block_len) = u32::try_from(block.len()) else {
        return json.to_vec();
    };
    let mut out = Vec::with_capacity(HEADER + block.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&raw_len.to_le_bytes());
    out.extend_from_slice(&block_len.to_le_bytes());
    out.extend_from_slice(&block);
    out
}

/// The JSON of a stored record: unpacked if it is packed, as it is otherwise.
pub fn unpack(stored: &[u8]) -> Result<Cow<'_, [u8]>, PackedError> {
    if !stored.starts_with(MAGIC) {
        return Ok(Cow::Borrowed(stored));
    }
    let (json_len, block_len) = lengths(stored).ok_or(PackedError::Header)?;
    let block = &stored[HEADER..];
    if block.len() != block_len || json_len > block_len.saturating_mul(MAX_RATIO) {
        return Err(PackedError::Lengths);
    }
    let json = lz4_flex::block::decompress(block, json_len).map_err(|_| PackedError::Block)?;
    match json.len() == json_len {
        true => Ok(Cow::Owned(json)),
        false => Err(PackedError::Block),
    }
}

/// The JSON's length and the block's, from the header that starts `bytes`.
fn lengths(bytes: &[u8]) -> Option<(usize, usize)> {
    let header = bytes.get(..HEADER).filter(|h| h.starts_with(MAGIC))?;
    let length = |at: usize| -> Option<usize> {
        let le: [u8; 4] = header.get(at..at + 4)?.try_into().ok()?;
        usize::try_from(u32::from_le_bytes(le)).ok()
    };
    Some((length(MAGIC.len())?, length(MAGIC.len() + 4)?))
}

/// Every packed record in `bytes` (a raw file: a page of the store, a stale copy), wherever its
/// magic is, opened as far as its block opens and no further than `max_json` bytes: what
/// someone with the disk reads of the views in it, damaged or cut short included. The privacy
/// tests search a node's files this way.
pub fn opened_in(bytes: &[u8], max_json: usize) -> Vec<Vec<u8>> {
    let mut opened = Vec::new();
    for at in 0..bytes.len() {
        let rest = &bytes[at..];
        let Some((json_len, block_len)) = lengths(rest) else {
            continue;
        };
        let block = &rest[HEADER..rest.len().min(HEADER.saturating_add(block_len))];
        let bound = json_len
            .min(max_json)
            .min(block.len().saturating_mul(MAX_RATIO));
        let mut json = vec![0u8; bound];
        // On an error the bytes decoded before it stay in `json`.
        let _ = lz4_flex::block::decompress_into(block, &mut json);
        opened.push(json);
    }
    opened
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(events: usize) -> Vec<u8> {
        let refs: Vec<_> = (0..events)
            .map(|i| {
                serde_json::json!({"event": "EMPLOYMENT_STARTED", "eventDate": "2024-07-15",
                    "position": i, "source": "central-server/GOV/70000002/employment",
                    "type": "employment-status"})
            })
            .collect();
        serde_json::to_vec(&serde_json::json!({"pin": "21505199012345", "events": refs})).unwrap()
    }

    #[test]
    fn a_view_packs_smaller_and_unpacks_to_the_same_json() {
        for events in [0, 1, 10, 1000] {
            let json = view(events);
            let packed = pack(&json);
            assert!(packed.starts_with(MAGIC));
            if events >= 10 {
                assert!(packed.len() * 3 < json.len(), "{events}: {}", packed.len());
            }
            assert_eq!(unpack(&packed).unwrap().as_ref(), json.as_slice());
        }
    }

    #[test]
    fn json_stored_before_packing_reads_back_unchanged() {
        let json = view(3);
        assert!(matches!(unpack(&json).unwrap(), Cow::Borrowed(b) if b == json.as_slice()));
    }

    #[test]
    fn damage_is_named_never_allocated_for_or_taken_as_a_view() {
        let packed = pack(&view(10));
        assert_eq!(unpack(&packed[..6]), Err(PackedError::Header));
        assert_eq!(
            unpack(&packed[..packed.len() - 1]),
            Err(PackedError::Lengths)
        );
        let mut longer = packed.clone();
        longer.push(b'x');
        assert_eq!(unpack(&longer), Err(PackedError::Lengths));
        // A header claiming a huge JSON from a small block is refused before any allocation.
        let mut huge = packed.clone();
        huge[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(unpack(&huge), Err(PackedError::Lengths));
        // A claimed length the block does not decompress to.
        let mut short = packed.clone();
        let raw = u32::from_le_bytes(short[4..8].try_into().unwrap());
        short[4..8].copy_from_slice(&(raw - 1).to_le_bytes());
        assert_eq!(unpack(&short), Err(PackedError::Block));
        // Any byte flipped, header included: an error or other bytes, never a panic.
        for i in 0..packed.len() {
            for flip in [0x01, 0x55, 0xff] {
                let mut flipped = packed.clone();
                flipped[i] ^= flip;
                let _ = unpack(&flipped);
                let _ = opened_in(&flipped, 1 << 20);
            }
        }
    }

    #[test]
    fn the_records_in_raw_bytes_open_even_cut_short_or_overwritten() {
        let json = view(10);
        let record = pack(&json);
        let mut file = b"page header".to_vec();
        file.extend_from_slice(&record);
        file.extend_from_slice(b"the next record");
        assert_eq!(opened_in(&file, usize::MAX), std::slice::from_ref(&json));
        // The tail of the record overwritten by a later page: the JSON before it still opens.
        let mut damaged = file[..11 + record.len() / 2].to_vec();
        damaged.extend_from_slice(&[0xAB; 64]);
        let opened = opened_in(&damaged, usize::MAX);
        assert!(
            opened[0].starts_with(&json[..100]),
            "{:?}",
            &opened[0][..100]
        );
        // A header claiming more than the caller takes is opened that far only (up to the last
        // whole LZ4 sequence that fits; the rest stays zero).
        let capped = opened_in(&file, 50);
        assert_eq!(capped[0].len(), 50);
        let decoded: Vec<u8> = capped[0].iter().copied().take_while(|&b| b != 0).collect();
        assert!(
            decoded.len() > 20 && json.starts_with(&decoded),
            "{decoded:?}"
        );
        assert!(opened_in(b"no records here", usize::MAX).is_empty());
    }
}
