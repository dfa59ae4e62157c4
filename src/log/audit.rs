//! Offline audit of a node's verifiable log: recompute the Merkle tree from the stored events,
//! check each event's signature and each signed checkpoint against the recomputed roots, and
//! report problems by log index. Runs on a stopped node's data dir; needs no running node.

use serde::Serialize;

use crate::event::SignedEvent;
use crate::log::checkpoint;
use crate::merkle::{self, MemoryTree};
use crate::store::{SideLog, Store, StoreError};
use crate::trust::manifest::Manifest;

/// One problem found, at a log position (1-based) or checkpoint size.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub(crate) position: u64,
    pub(crate) problem: String,
}

/// What the audit saw.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Audit {
    /// How many log entries it read.
    pub entries: u64,
    pub(crate) checkpoints: u64,
    /// JWS checkpoints from before checkpoints were C2SP notes: not checked.
    pub(crate) legacy_checkpoints: u64,
    pub(crate) quarantine_records: u64,
    pub(crate) access_records: u64,
    pub(crate) signatures_checked: bool,
    /// The root of the log's Merkle tree (base64url).
    pub root: String,
    /// Events whose disclosures an erasure deleted: their signed parts verify as before.
    pub erased_events: u64,
    /// Side-log records an erasure rewrote without the person: checked against the leaf
    /// recorded when they were appended.
    pub redacted_records: u64,
    /// Each problem it found; none for a sound log.
    pub findings: Vec<Finding>,
}

/// Audit the store; with a manifest, event and checkpoint signatures are checked too.
pub fn audit(store: &Store, manifest: Option<&Manifest>) -> Result<Audit, StoreError> {
    audit_with(store, manifest, &mut crate::progress::Quiet)
}

/// [`audit`], saying how many of the log's events it has checked.
pub fn audit_with(
    store: &Store,
    manifest: Option<&Manifest>,
    progress: &mut dyn crate::progress::Progress,
) -> Result<Audit, StoreError> {
    progress.start("verify", store.last_position()?);
    let mut report = Audit {
        signatures_checked: manifest.is_some(),
        ..Audit::default()
    };
    let mut tree = MemoryTree::default();
    let mut expected = 1u64;
    let mut after = 0;
    let mut stood_in = 0;
    'log: loop {
        let page = store.range(after, 10_000)?;
        let Some(last) = page.last().map(|(p, _)| *p) else {
            break;
        };
        for (position, bytes) in &page {
            if let Some(gap) = too_far(stood_in, expected, *position, "log entries") {
                report.findings.push(gap);
                break 'log;
            }
            while expected < *position {
                report.findings.push(Finding {
                    position: expected,
                    problem: "entry missing from the log".into(),
                });
                tree.push([0; 32]);
                expected += 1;
                stood_in += 1;
            }
            let leaf = crate::log::event_leaf(bytes);
            match store.perfect_leaf(position - 1) {
                Ok(recorded) if recorded == leaf => {}
                Ok(_) => report.findings.push(Finding { position: *position, problem: "entry altered: its hash differs from the leaf recorded when it was appended".into() }),
                Err(_) => report.findings.push(Finding { position: *position, problem: "no Merkle leaf recorded for the entry".into() }),
            }
            tree.push(leaf);
            check_event(*position, bytes, manifest, &mut report.findings);
            expected += 1;
        }
        progress.advance(page.len() as u64);
        after = last;
    }
    progress.finish();
    report.entries = tree.len();
    report.erased_events = store.erased_count()?;
    let quarantine = side_tree(store, SideLog::Quarantine, &mut report)?;
    report.quarantine_records = quarantine.len();
    let access = side_tree(store, SideLog::Access, &mut report)?;
    report.access_records = access.len();
    let root = |n: u64| merkle::root(&tree, n).unwrap_or_else(|e| match e {});
    report.root = checkpoint::encode_hash(&root(report.entries));
    for entry in store.checkpoints() {
        let (size, bytes) = entry?;
        if bytes.first() == Some(&b'{') {
            // A JWS checkpoint signed before checkpoints became signed notes: kept, not checked.
            report.legacy_checkpoints += 1;
            continue;
        }
        report.checkpoints += 1;
        let statement = match manifest {
            Some(m) => checkpoint::verify_at(&bytes, m, checkpoint::KeysAt::NotRevoked),
            None => checkpoint::read(&bytes),
        };
        let c = match statement {
            Ok(signed) => signed.checkpoint,
            Err(e) => {
                report.findings.push(Finding {
                    position: size,
                    problem: format!("checkpoint {size}: {e}"),
                });
                continue;
            }
        };
        if c.size > report.entries {
            report.findings.push(Finding {
                position: size,
                problem: format!(
                    "checkpoint {size} covers more entries than the log holds ({})",
                    report.entries
                ),
            });
        } else if c.root != root(c.size) {
            report.findings.push(Finding { position: size, problem: format!("checkpoint {size}: its signed root is not the root of the stored entries: history was altered") });
        }
        for (log, tree) in [
            (SideLog::Quarantine, &quarantine),
            (SideLog::Access, &access),
        ] {
            if let Some(problem) = side_log_problem(&c, log, tree) {
                report.findings.push(Finding {
                    position: size,
                    problem,
                });
            }
        }
    }
    report.findings.sort_by_key(|f| f.position);
    Ok(report)
}

/// What is wrong with a side log against a checkpoint that covers it, if anything.
fn side_log_problem(c: &checkpoint::Checkpoint, log: SideLog, tree: &MemoryTree) -> Option<String> {
    let checkpoint::TreeHead { size, root } = c.side(log);
    let name = log.name();
    if size > tree.len() {
        return Some(format!(
            "checkpoint {} covers {size} records of the {name}, which holds {}",
            c.size,
            tree.len()
        ));
    }
    let altered = size > 0 && Some(root) != merkle::root(tree, size).ok();
    altered.then(|| {
        format!(
            "checkpoint {}: the {name}'s signed root is not the root of its stored records: records were altered or removed",
            c.size
        )
    })
}

/// The most missing entries of one log that the audit stands in for with empty leaves (each a
/// finding of its own), in all.
const MAX_GAP: u64 = 1 << 20;

/// A record at `found` when `expected` is next and `stood_in` entries were stood in for
/// already, past [`MAX_GAP`] in all: records numbered far past the log's end (forged, or
/// damaged keys), at once or a gap at a time. One finding, and the log is read no further:
/// standing in for every entry up to them could take more memory than the machine has.
fn too_far(stood_in: u64, expected: u64, found: u64, what: &str) -> Option<Finding> {
    let gap = found.saturating_sub(expected);
    (stood_in.saturating_add(gap) > MAX_GAP).then(|| Finding {
        position: expected,
        problem: format!(
            "{what} missing from {expected} up to a record numbered {found}: too far past the log's end to stand in for; the rest of this log is not read"
        ),
    })
}

/// Recompute a side log from its records; a missing number is a finding. A record an erasure
/// rewrote counts with the leaf recorded when it was appended (its content is gone on purpose;
/// the erasure that rewrote it is recorded, and counted in the report).
fn side_tree(store: &Store, log: SideLog, report: &mut Audit) -> Result<MemoryTree, StoreError> {
    let redacted = store.redacted_numbers(log)?;
    let mut tree = MemoryTree::default();
    let mut after = 0;
    let mut stood_in = 0;
    'log: loop {
        let page = store.side_entries(log, after, 10_000)?;
        let Some(last) = page.last().map(|(n, _)| *n) else {
            break;
        };
        for (number, bytes) in page {
            if let Some(gap) = too_far(stood_in, tree.len() + 1, number, log.name()) {
                report.findings.push(gap);
                break 'log;
            }
            while tree.len() + 1 < number {
                report.findings.push(Finding {
                    position: tree.len() + 1,
                    problem: format!("{} record missing", log.name()),
                });
                tree.push([0; 32]);
                stood_in += 1;
            }
            if redacted.contains(&number) {
                report.redacted_records += 1;
                tree.push(store.side_leaf(log, number)?);
            } else {
                tree.push(merkle::leaf_hash(&bytes));
            }
        }
        after = last;
    }
    Ok(tree)
}

fn check_event(
    position: u64,
    bytes: &[u8],
    manifest: Option<&Manifest>,
    findings: &mut Vec<Finding>,
) {
    let (signed, jws) = match SignedEvent::parse(bytes) {
        Ok(p) => p,
        Err(e) => {
            findings.push(Finding {
                position,
                problem: format!("entry does not parse: {e}"),
            });
            return;
        }
    };
    let Some(m) = manifest else { return };
    let e = signed.event();
    match m.event_key(&e.source, jws.kid(), e.time, Some(signed.sequence())) {
        Ok(key) if jws.verify(&key).is_ok() => {}
        Ok(_) => findings.push(Finding {
            position,
            problem: "the event's signature does not verify".into(),
        }),
        Err(p) => findings.push(Finding {
            position,
            problem: format!("the event's signing key: {p}"),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::checkpoint::{Checkpoint, TreeHead};

    /// A record numbered far past the log's end is one finding that ends the log's reading,
    /// not a million empty leaves and more.
    #[test]
    fn a_record_far_past_the_end_is_one_finding_not_a_gap_filled() {
        assert!(too_far(0, 1, 1 + MAX_GAP, "log entries").is_none());
        assert!(too_far(0, 10, 3, "log entries").is_none());
        // Gaps each within the bound are stopped once they add up past it.
        assert!(too_far(MAX_GAP - 5, 9, 14, "log entries").is_none());
        assert!(too_far(MAX_GAP - 5, 9, 15, "log entries").is_some());
        let gap = too_far(0, 1, u64::MAX, "access log records").unwrap();
        assert_eq!(gap.position, 1);
        assert!(
            gap.problem.contains("access log records missing from 1"),
            "{}",
            gap.problem
        );
    }

    /// A node upgraded from JWS checkpoints keeps them; the audit counts them apart and checks
    /// the notes signed since.
    #[test]
    fn jws_checkpoints_from_before_notes_are_counted_apart_not_findings() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store
            .put_checkpoint(0, br#"{"protected":"e30","payload":"e30","signature":""}"#)
            .unwrap();
        let empty = TreeHead {
            size: 0,
            root: merkle::empty_root(),
        };
        let c = Checkpoint {
            origin: "a/b/c/d/jol-log".into(),
            size: 0,
            root: [7; 32],
            quarantine: empty,
            access: empty,
        };
        let key = ed25519_dalek::SigningKey::from_bytes(&[1; 32]);
        let report = audit(&store, None).unwrap();
        assert_eq!((report.legacy_checkpoints, report.checkpoints), (1, 0));
        assert!(report.findings.is_empty(), "{:?}", report.findings);
        store
            .put_checkpoint(1, &checkpoint::sign(&c, &key))
            .unwrap();
        let report = audit(&store, None).unwrap();
        assert_eq!(report.checkpoints, 1);
        assert!(
            report.findings[0]
                .problem
                .contains("its signed root is not the root"),
            "{:?}",
            report.findings
        );
    }
}
