//! Evidence bundles: a self-contained file with chosen events, each with its
//! c2sp.org/tlog-proof (leaf index, inclusion proof, and the checkpoint note with its witnesses'
//! co-signatures), and the manifest, which `jol verify --bundle` checks with nothing but the
//! federation authority's public key.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use time::Date;

use crate::event::identifiers::MemberId;
use crate::event::SignedEvent;
use crate::log::checkpoint::{self, decode_std, encode_std, Checkpoint};
use crate::log::note::Note;
use crate::merkle::{self, Hash};
use crate::policy::consent;
use crate::store::{Store, StoreError};
use crate::trust::manifest::Manifest;

/// The bundle's format: version 2 carries each event's proof as a c2sp.org/tlog-proof text.
pub(crate) const FORMAT: &str = "jol-evidence-bundle/2";

/// The first line of a tlog-proof.
const TLOG_PROOF: &str = "c2sp.org/tlog-proof@v1";

/// One event in a bundle: the event as stored and its tlog-proof.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Entry {
    pub(crate) jws: Box<RawValue>,
    /// A c2sp.org/tlog-proof: the leaf index, the inclusion proof and the checkpoint note with
    /// its co-signatures.
    pub(crate) proof: String,
}

/// The bundle file.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Bundle {
    pub(crate) format: String,
    pub(crate) manifest: Box<RawValue>,
    pub(crate) events: Vec<Entry>,
}

/// A c2sp.org/tlog-proof (without extra data, which Jol does not use).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TlogProof {
    pub(crate) index: u64,
    pub(crate) proof: Vec<Hash>,
    /// The checkpoint note, verbatim.
    pub(crate) checkpoint: Vec<u8>,
}

impl TlogProof {
    pub(crate) fn to_text(&self) -> String {
        let mut out = format!("{TLOG_PROOF}\nindex {}\n", self.index);
        for h in &self.proof {
            out.push_str(&encode_std(h));
            out.push('\n');
        }
        out.push('\n');
        out.push_str(&String::from_utf8_lossy(&self.checkpoint));
        out
    }

    /// Parse a tlog-proof; one with an `extra` line is refused (Jol writes none).
    pub(crate) fn parse(text: &str) -> Result<TlogProof, &'static str> {
        let rest = text
            .strip_prefix(TLOG_PROOF)
            .and_then(|r| r.strip_prefix('\n'))
            .ok_or("not a c2sp.org/tlog-proof@v1")?;
        let (head, checkpoint) = rest
            .split_once("\n\n")
            .ok_or("no blank line before the checkpoint")?;
        let mut lines = head.split('\n');
        let index = lines
            .next()
            .and_then(|l| l.strip_prefix("index "))
            .and_then(checkpoint::parse_size)
            .ok_or("no `index N` line")?;
        let proof = lines
            .map(|l| decode_std(l).ok_or("a proof line is not a base64 hash"))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(TlogProof {
            index,
            proof,
            checkpoint: checkpoint.as_bytes().to_vec(),
        })
    }
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
    let size = store
        .latest_checkpoint()?
        .ok_or(StoreError::Corrupt("no checkpoint to prove against"))?
        .0;
    let checkpoint = checkpoint::latest_cosigned(store)?
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
                let proof = TlogProof {
                    index: position - 1,
                    proof,
                    checkpoint: checkpoint.clone(),
                };
                events.push(Entry {
                    jws: raw(&bytes)?,
                    proof: proof.to_text(),
                });
            }
        }
        after = last;
    }
    progress.finish();
    Ok(Bundle {
        format: FORMAT.into(),
        manifest: raw(manifest_bytes)?,
        events,
    })
}

/// What checking a bundle found.
#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct BundleReport {
    pub(crate) events: usize,
    /// Each log the events were proven in (a bundle may join several members' exports), with
    /// the largest of its trees an event was proven in.
    pub(crate) logs: Vec<ProvenIn>,
    /// The witnesses (cosigner names) whose co-signatures verified on any of the bundle's
    /// checkpoints, with a key from the manifest (the federation members' witness keys); which
    /// of them witnessed every event of a log is its `witnessedBy`.
    pub(crate) valid_cosignatures: Vec<String>,
    /// Co-signatures by names this check knows no key of (an outside witness): not checked.
    pub(crate) unchecked_cosignatures: Vec<String>,
    pub(crate) problems: Vec<String>,
}

/// One log a bundle's events were proven in.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ProvenIn {
    /// The checkpoint's origin (`<member id>/jol-log`).
    pub(crate) origin: String,
    /// The largest of its checkpoints an event was proven against.
    pub(crate) tree_size: u64,
    /// The witnesses whose co-signature verified on every checkpoint of this log that an event
    /// was proven against: each of this log's events is witnessed by them.
    pub(crate) witnessed_by: Vec<String>,
    /// The root of each size a checkpoint was seen at.
    #[serde(skip)]
    roots: std::collections::BTreeMap<u64, Hash>,
}

impl BundleReport {
    /// Count a checkpoint an event was proven against, co-signed by `witnesses`; two of one
    /// log at one size with different roots are a fork, and a problem.
    fn proven_in(&mut self, c: &Checkpoint, witnesses: &[String]) {
        let at = match self.logs.iter().position(|l| l.origin == c.origin) {
            Some(at) => at,
            None => {
                self.logs.push(ProvenIn {
                    origin: c.origin.clone(),
                    tree_size: 0,
                    witnessed_by: witnesses.to_vec(),
                    roots: Default::default(),
                });
                self.logs.len() - 1
            }
        };
        let log = &mut self.logs[at];
        log.tree_size = log.tree_size.max(c.size);
        log.witnessed_by.retain(|w| witnesses.contains(w));
        if *log.roots.entry(c.size).or_insert(c.root) != c.root {
            self.problems.push(format!(
                "two checkpoints of {} at size {} with different roots: the log forked",
                c.origin, c.size
            ));
        }
    }
}

/// Check a bundle with the authority's key alone: each event's signature, its tlog-proof's
/// checkpoint against the log key of its origin in the manifest, every co-signature by a
/// member's witness, and the inclusion proof.
pub(crate) fn verify(bundle: &Bundle, authority: &ed25519_dalek::VerifyingKey) -> BundleReport {
    let mut r = BundleReport {
        events: bundle.events.len(),
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
    for entry in &bundle.events {
        let bytes = entry.jws.get().as_bytes();
        let proof = match TlogProof::parse(&entry.proof) {
            Ok(p) => p,
            Err(e) => {
                r.problems.push(format!("a proof: {e}"));
                continue;
            }
        };
        let at = proof.index;
        let signed = match checkpoint::verify_at(
            &proof.checkpoint,
            &manifest,
            checkpoint::KeysAt::NotRevoked,
        ) {
            Ok(c) => c,
            Err(e) => {
                r.problems.push(format!("leaf {at}: checkpoint: {e}"));
                continue;
            }
        };
        let c = &signed.checkpoint;
        let witnesses = check_cosignatures(&signed.note, c, &manifest, &mut r);
        r.proven_in(c, &witnesses);
        let (event, jws) = match SignedEvent::parse(bytes) {
            Ok(p) => p,
            Err(e) => {
                r.problems.push(format!("leaf {at}: {e}"));
                continue;
            }
        };
        let e = event.event();
        match manifest.event_key(&e.source, jws.kid(), e.time, Some(event.sequence())) {
            Ok(key) if jws.verify(&key).is_ok() => {}
            Ok(_) => r
                .problems
                .push(format!("leaf {at}: the event's signature does not verify")),
            Err(p) => r.problems.push(format!("leaf {at}: {p}")),
        }
        let leaf = crate::log::event_leaf(bytes);
        if !merkle::verify_inclusion(&leaf, at, c.size, &proof.proof, &c.root) {
            r.problems
                .push(format!("leaf {at}: not included in the checkpointed log"));
        }
    }
    r
}

/// Check the co-signatures of a checkpoint note by the federation's witnesses; name those by
/// witnesses whose key the manifest does not give. The log's own member co-signing its own
/// checkpoint witnesses nothing and is not counted. Returns the witnesses whose co-signature
/// verified.
fn check_cosignatures(
    note: &Note,
    c: &Checkpoint,
    manifest: &Manifest,
    r: &mut BundleReport,
) -> Vec<String> {
    let log_member = c.member();
    let mut valid = Vec::new();
    for sig in note.signatures() {
        let Some(member) = sig
            .name
            .strip_suffix("/jol-witness")
            .and_then(|m| m.parse::<MemberId>().ok())
        else {
            let is_log = checkpoint::member_of_origin(&sig.name).is_some();
            if !is_log {
                name_once(&mut r.unchecked_cosignatures, &sig.name);
            }
            continue;
        };
        if log_member.as_ref() == Some(&member) {
            continue;
        }
        let keys = checkpoint::witness_keys(manifest, &member, checkpoint::KeysAt::NotRevoked);
        let only_this: Vec<_> = keys.into_iter().filter(|k| k.id() == sig.id).collect();
        let mut one = Note::new(note.text().to_string()).expect("a parsed note's text");
        if one.add(sig.clone()).is_err() {
            continue;
        }
        match one.verify(&only_this) {
            Ok(_) => {
                name_once(&mut r.valid_cosignatures, &sig.name);
                name_once(&mut valid, &sig.name);
            }
            Err(crate::log::note::NoteError::NoKnownSignature) => {
                name_once(&mut r.unchecked_cosignatures, &sig.name);
            }
            Err(e) => r
                .problems
                .push(format!("a co-signature by {}: {e}", sig.name)),
        }
    }
    valid
}

/// Add `name` to `names` unless it is there already.
fn name_once(names: &mut Vec<String>, name: &str) {
    if !names.iter().any(|n| n == name) {
        names.push(name.to_string());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::checkpoint::TreeHead;

    fn checkpoint(origin: &str, size: u64, root: Hash) -> Checkpoint {
        let empty = TreeHead {
            size: 0,
            root: merkle::empty_root(),
        };
        Checkpoint {
            origin: origin.into(),
            size,
            root,
            quarantine: empty,
            access: empty,
        }
    }

    /// Events of one bundle proven against two checkpoints of one log at one size with
    /// different roots: the log showed two histories, and the check says so.
    #[test]
    fn two_roots_for_one_size_of_one_log_are_a_fork() {
        let mut r = BundleReport::default();
        r.proven_in(&checkpoint("a/b/c/d/jol-log", 3, [1; 32]), &[]);
        r.proven_in(&checkpoint("a/b/c/d/jol-log", 5, [2; 32]), &[]);
        r.proven_in(&checkpoint("a/b/c/d/jol-log", 3, [1; 32]), &[]);
        r.proven_in(&checkpoint("a/b/c/e/jol-log", 3, [7; 32]), &[]);
        assert!(r.problems.is_empty(), "{:?}", r.problems);
        assert_eq!(r.logs.len(), 2);
        assert_eq!(r.logs[0].tree_size, 5);

        r.proven_in(&checkpoint("a/b/c/d/jol-log", 3, [9; 32]), &[]);
        assert_eq!(r.problems.len(), 1, "{:?}", r.problems);
        assert!(r.problems[0].contains("size 3"), "{}", r.problems[0]);
    }

    /// A log's events are witnessed by those who co-signed every checkpoint they were proven
    /// against: one co-signed checkpoint does not make the bundle's other events witnessed.
    #[test]
    fn a_log_is_witnessed_by_those_who_cosigned_each_of_its_checkpoints() {
        let names = |n: &[&str]| n.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let mut r = BundleReport::default();
        r.proven_in(
            &checkpoint("a/b/c/d/jol-log", 3, [1; 32]),
            &names(&["w1", "w2"]),
        );
        r.proven_in(
            &checkpoint("a/b/c/d/jol-log", 5, [2; 32]),
            &names(&["w2", "w3"]),
        );
        r.proven_in(&checkpoint("a/b/c/e/jol-log", 4, [3; 32]), &names(&["w1"]));
        assert_eq!(r.logs[0].witnessed_by, names(&["w2"]));
        assert_eq!(r.logs[1].witnessed_by, names(&["w1"]));
        r.proven_in(&checkpoint("a/b/c/d/jol-log", 6, [4; 32]), &[]);
        assert!(r.logs[0].witnessed_by.is_empty());
    }
}
