//! Evidence bundles: a self-contained file with chosen events, their inclusion proofs, a signed
//! checkpoint (with its co-signatures) and the manifest, which `jol verify --bundle` checks with
//! nothing but the federation authority's public key.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use time::Date;

use crate::event::SignedEvent;
use crate::log::checkpoint::{self, decode_hash, encode_hash};
use crate::merkle;
use crate::policy::consent;
use crate::store::{Store, StoreError};
use crate::trust::manifest::Manifest;

pub(crate) const FORMAT: &str = "jol-evidence-bundle/1";

/// One event in a bundle.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Entry {
    pub(crate) leaf_index: u64,
    pub(crate) jws: Box<RawValue>,
    pub(crate) proof: Vec<String>,
}

/// The bundle file.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Bundle {
    pub(crate) format: String,
    pub(crate) manifest: Box<RawValue>,
    pub checkpoint: Box<RawValue>,
    pub(crate) cosignatures: Vec<Box<RawValue>>,
    pub(crate) tree_size: u64,
    pub(crate) events: Vec<Entry>,
}

/// Which events to export.
pub(crate) enum Selection {
    Person(String),
    Published { from: Date, to: Date },
}

fn raw(bytes: &[u8]) -> Result<Box<RawValue>, StoreError> {
    let text = String::from_utf8(bytes.to_vec()).map_err(|_| StoreError::Corrupt("stored JSON"))?;
    RawValue::from_string(text).map_err(|_| StoreError::Corrupt("stored JSON"))
}

/// Export the selected events covered by the latest checkpoint, saying how many of the
/// checkpoint's events it has looked at.
pub(crate) fn export_with(
    store: &Store,
    manifest_bytes: &[u8],
    selection: &Selection,
    progress: &mut dyn crate::progress::Progress,
) -> Result<Bundle, StoreError> {
    let (size, checkpoint) = store
        .latest_checkpoint()?
        .ok_or(StoreError::Corrupt("no checkpoint to prove against"))?;
    progress.start("export", size);
    let mut events = Vec::new();
    let mut after = 0;
    while after < size {
        let page = store.range(after, 10_000)?;
        let Some(last) = page.last().map(|(p, _)| *p) else {
            break;
        };
        let covered: Vec<_> = page.into_iter().filter(|(p, _)| *p <= size).collect();
        progress.advance(covered.len() as u64);
        for (position, bytes) in covered {
            let Ok((signed, _)) = SignedEvent::parse(&bytes) else {
                continue;
            };
            let e = signed.event();
            let wanted = match selection {
                Selection::Person(pin) => consent::person_pin(&e.data) == Some(pin.as_str()),
                Selection::Published { from, to } => e.time.date() >= *from && e.time.date() <= *to,
            };
            if wanted {
                let proof = merkle::inclusion_proof(store, position - 1, size)?;
                events.push(Entry {
                    leaf_index: position - 1,
                    jws: raw(&bytes)?,
                    proof: proof.iter().map(encode_hash).collect(),
                });
            }
        }
        after = last;
    }
    progress.finish();
    let cosignatures = store
        .cosignatures(size)?
        .iter()
        .map(|b| raw(b))
        .collect::<Result<_, _>>()?;
    Ok(Bundle {
        format: FORMAT.into(),
        manifest: raw(manifest_bytes)?,
        checkpoint: raw(&checkpoint)?,
        cosignatures,
        tree_size: size,
        events,
    })
}

/// What checking a bundle found.
#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct BundleReport {
    pub(crate) events: usize,
    pub(crate) tree_size: u64,
    pub origin: String,
    pub(crate) valid_cosignatures: Vec<String>,
    pub(crate) problems: Vec<String>,
}

/// Check a bundle with the authority's key alone.
pub(crate) fn verify(bundle: &Bundle, authority: &ed25519_dalek::VerifyingKey) -> BundleReport {
    let mut r = BundleReport {
        events: bundle.events.len(),
        tree_size: bundle.tree_size,
        ..BundleReport::default()
    };
    if bundle.format != FORMAT {
        r.problems
            .push(format!("unknown bundle format {}", bundle.format));
        return r;
    }
    let manifest = match Manifest::verify(bundle.manifest.get().as_bytes(), authority) {
        Ok(m) => m,
        Err(e) => {
            r.problems.push(format!("manifest: {e}"));
            return r;
        }
    };
    let c = match checkpoint::verify_checkpoint(bundle.checkpoint.get().as_bytes(), &manifest) {
        Ok(c) => c,
        Err(e) => {
            r.problems.push(format!("checkpoint: {e}"));
            return r;
        }
    };
    r.origin = c.origin.to_string();
    if c.size != bundle.tree_size {
        r.problems
            .push("the checkpoint's size is not the bundle's tree size".into());
    }
    let Some(root) = decode_hash(&c.root) else {
        r.problems
            .push("the checkpoint's root is not a hash".into());
        return r;
    };
    for cs in &bundle.cosignatures {
        match checkpoint::verify_cosignature(cs.get().as_bytes(), &manifest) {
            Ok(w) if w.origin == c.origin && w.size == c.size && w.root == c.root => {
                r.valid_cosignatures.push(w.witness.to_string())
            }
            Ok(_) => r
                .problems
                .push("a co-signature is for another checkpoint".into()),
            Err(e) => r.problems.push(format!("a co-signature: {e}")),
        }
    }
    for entry in &bundle.events {
        let bytes = entry.jws.get().as_bytes();
        let at = entry.leaf_index;
        let (signed, jws) = match SignedEvent::parse(bytes) {
            Ok(p) => p,
            Err(e) => {
                r.problems.push(format!("leaf {at}: {e}"));
                continue;
            }
        };
        let e = signed.event();
        match manifest.event_key(&e.source, jws.kid(), e.time, Some(signed.sequence())) {
            Ok(key) if jws.verify(&key).is_ok() => {}
            Ok(_) => r
                .problems
                .push(format!("leaf {at}: the event's signature does not verify")),
            Err(p) => r.problems.push(format!("leaf {at}: {p}")),
        }
        let proof: Option<Vec<_>> = entry.proof.iter().map(|h| decode_hash(h)).collect();
        let leaf = crate::log::event_leaf(bytes);
        if !proof.is_some_and(|p| merkle::verify_inclusion(&leaf, at, c.size, &p, &root)) {
            r.problems
                .push(format!("leaf {at}: not included in the checkpointed log"));
        }
    }
    r
}
