//! Looking for a value on disk as an attacker with the disk would: its bytes in the clear, as a
//! JSON string escapes it, and in base64url at each of the three alignments it can take inside
//! a longer base64url text (a disclosure, a JWS payload); in a file's clear bytes and inside
//! every packed record in it (a person's view, LZ4-compressed: `jol::store::packed`), opened.

use std::path::{Path, PathBuf};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jol::store::packed;

/// Every form `value` can take in a node's files.
pub fn forms(value: &str) -> Vec<Vec<u8>> {
    let mut forms = vec![value.as_bytes().to_vec()];
    let escaped = serde_json::to_string(value).unwrap();
    forms.push(escaped.trim_matches('"').as_bytes().to_vec());
    let ascii: String = value
        .chars()
        .map(|c| match c.is_ascii() {
            true => c.to_string(),
            false => {
                let mut units = [0u16; 2];
                c.encode_utf16(&mut units)
                    .iter()
                    .map(|u| format!("\\u{u:04x}"))
                    .collect()
            }
        })
        .collect();
    forms.push(ascii.into_bytes());
    // Inside a longer base64url text the value starts at byte offset 0, 1 or 2 of a 3-byte
    // group: encode it behind that many filler bytes, and keep the characters that depend on
    // the value's bytes alone.
    for lead in 0..3usize {
        let mut bytes = vec![0u8; lead];
        bytes.extend_from_slice(value.as_bytes());
        let encoded = URL_SAFE_NO_PAD.encode(&bytes);
        let skip = match lead {
            0 => 0,
            1 => 2,
            _ => 3,
        };
        let whole = (bytes.len() / 3) * 4;
        if whole > skip + 4 {
            forms.push(encoded.as_bytes()[skip..whole].to_vec());
        }
    }
    forms
}

/// Every regular file under `dir`.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(files(&path));
        } else if path.is_file() {
            out.push(path);
        }
    }
    out
}

/// How much of a packed record's JSON the search opens (a test node's views are far smaller; a
/// stray magic in a file must not make it allocate what the header claims).
const PACKED_JSON_MAX: usize = 16 << 20;

/// The files under `dir` that hold `value` in any of its [`forms`], in the clear or inside a
/// packed record, whole, cut short or overwritten in part.
pub fn files_holding(dir: &Path, value: &str) -> Vec<PathBuf> {
    let forms = forms(value);
    files(dir)
        .into_iter()
        .filter(|path| {
            let bytes = std::fs::read(path).unwrap_or_default();
            let holds = |text: &[u8]| forms.iter().any(|f| contains(text, f));
            holds(&bytes)
                || packed::opened_in(&bytes, PACKED_JSON_MAX)
                    .iter()
                    .any(|json| holds(json))
        })
        .collect()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_is_found_in_each_of_its_forms() {
        let value = "Жумабеков-Test";
        let dir = tempfile::tempdir().unwrap();
        for (i, text) in [
            format!("x{value}y"),
            serde_json::to_string(&serde_json::json!({"a": value})).unwrap(),
            format!(
                "{{\"a\":\"{}\"}}",
                String::from_utf8(forms(value)[2].clone()).unwrap()
            ),
        ]
        .iter()
        .enumerate()
        {
            std::fs::write(dir.path().join(format!("{i}")), text).unwrap();
        }
        for lead in ["", "a", "ab"] {
            let blob = URL_SAFE_NO_PAD.encode(format!("[\"salt\",{lead}\"{value}\"]"));
            std::fs::write(dir.path().join(format!("b64{lead}")), blob).unwrap();
        }
        assert_eq!(files_holding(dir.path(), value).len(), 6);
        assert!(files_holding(dir.path(), "nowhere-to-be-found").is_empty());
    }

    #[test]
    fn a_value_is_found_inside_a_packed_record_where_its_bytes_are_not_in_the_clear() {
        let value = "Жумабеков-Test";
        // The second name repeats the first one's start, which LZ4 then refers back to: the
        // value's bytes are not contiguous in the packed record.
        let json = serde_json::to_vec(&serde_json::json!({"a": "Жумабеков-Other", "b": value}));
        let record = packed::pack(&json.unwrap());
        assert!(!contains(&record, value.as_bytes()));
        let mut file = b"page header".to_vec();
        file.extend_from_slice(&record);
        file.extend_from_slice(b"next page");
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("jol.redb"), file).unwrap();
        assert_eq!(files_holding(dir.path(), value).len(), 1);
        assert!(files_holding(dir.path(), "Жумабеков-Third").is_empty());
    }
}
