//! When a contradiction of another member's log raises an alarm, and how much of its evidence
//! is kept: the one rule for the witness's fork alarms (`witness_server`, a submission) and the
//! split-view check's fork and split alarms (`witness`).
//!
//! Evidence goes to the quarantine, which every member's refused events share, and is not held
//! to a member's share there (a fork must be kept whoever causes it). So it is bounded here:
//! the same statement (a note's text, whatever signature lines it carries) raises once, and at
//! most [`MAX_EVIDENCE`] statements of each [`Evidence`] kind are kept per log; further ones
//! are counted in `jol_log_forks_total` and logged sparingly. The kinds are counted apart so a
//! log cannot use up the slots of two contradicting notes (a fork it cannot deny) with alarms
//! of the weaker kinds, which it can cause at will (a bad proof of its own, an older note
//! served as its latest). The state is `Meta::ForkAlarm` (JSON); a record is written only after
//! its evidence is in the quarantine, so evidence whose write failed is raised again.

use std::sync::atomic::Ordering::Relaxed;

use serde::{Deserialize, Serialize};

use super::sync::{SyncError, Syncer};
use crate::event::identifiers::MemberId;
use crate::log::checkpoint::encode_std;
use crate::log::note::Note;
use crate::store::Meta;

/// Most statements of one kind kept as evidence per log.
pub(super) const MAX_EVIDENCE: usize = 8;

/// What a contradiction shows, by how much the log could cause it without having forked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Evidence {
    /// Two notes the log signed that cannot both be true: a fork by themselves.
    Contradiction,
    /// A proof from the log that failed, or an older note it served as its latest.
    FailedProof,
    /// An event the log served that its checkpoint does not hold.
    Split,
}

/// The alarms raised about one log (`Meta::ForkAlarm`).
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Raised {
    /// The digests (base64) of the statements kept as evidence, by kind.
    contradiction: Vec<String>,
    failed_proof: Vec<String>,
    split: Vec<String>,
    /// The last statement raised, kept or not (a value written before this state: its note).
    last: Option<String>,
    /// Alarms counted and logged past the evidence kept.
    counted_only: u64,
}

impl Raised {
    /// The state as stored; a value written before it was JSON (the last note alarmed) is
    /// taken as that note's statement raised last.
    fn read(stored: Option<&[u8]>) -> Raised {
        match stored {
            None => Raised::default(),
            Some(bytes) => serde_json::from_slice(bytes).unwrap_or_else(|_| Raised {
                last: Some(statement_digest(bytes)),
                ..Raised::default()
            }),
        }
    }

    fn kept(&mut self, evidence: Evidence) -> &mut Vec<String> {
        match evidence {
            Evidence::Contradiction => &mut self.contradiction,
            Evidence::FailedProof => &mut self.failed_proof,
            Evidence::Split => &mut self.split,
        }
    }

    /// Whether `digest` was raised already as `evidence` (or last, whatever its kind).
    fn holds(&mut self, evidence: Evidence, digest: &String) -> bool {
        self.last.as_ref() == Some(digest) || self.kept(evidence).contains(digest)
    }
}

/// What identifies a statement: the digest of its note's text (the signature lines, which
/// anyone may add or reorder, left out), or of its bytes when it is no note.
fn statement_digest(statement: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    let digest: [u8; 32] = match Note::parse(statement) {
        Ok(note) => Sha256::digest(note.text().as_bytes()).into(),
        Err(_) => Sha256::digest(statement).into(),
    };
    encode_std(&digest)
}

impl Syncer {
    /// Raise an alarm about `from`'s log for `statement` (the signed note that shows it), as
    /// `evidence`: nothing if it was raised before; else `keep` (which logs it and puts its
    /// evidence in the quarantine) while this log's evidence of that kind has room, counted
    /// and logged only after that.
    pub(super) fn raise(
        &self,
        from: &MemberId,
        evidence: Evidence,
        statement: &[u8],
        keep: impl FnOnce() -> Result<(), SyncError>,
    ) -> Result<(), SyncError> {
        let _one_at_a_time = self
            .alarms
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let key = Meta::ForkAlarm(from.clone());
        let mut raised = Raised::read(self.store.meta(&key)?.as_deref());
        let digest = statement_digest(statement);
        if raised.holds(evidence, &digest) {
            return Ok(());
        }
        raised.last = Some(digest.clone());
        if raised.kept(evidence).len() < MAX_EVIDENCE {
            keep()?;
            raised.kept(evidence).push(digest);
            self.metrics.forks.fetch_add(1, Relaxed);
            return Ok(self.store.set_meta(&key, &encode(&raised))?);
        }
        self.metrics.forks.fetch_add(1, Relaxed);
        raised.counted_only += 1;
        if raised.counted_only.is_power_of_two() {
            tracing::error!(%from, ?evidence, counted_only = raised.counted_only,
                "LOG FORK again: this log's evidence of the kind is full; counted, not kept");
        }
        // Only a count: made durable with the next flush.
        Ok(self.store.set_meta_lazy(&key, &encode(&raised))?)
    }
}

fn encode(raised: &Raised) -> Vec<u8> {
    serde_json::to_vec(raised).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_statement_is_its_text_whatever_its_signature_lines() {
        let key = ed25519_dalek::SigningKey::from_bytes(&[3; 32]);
        let mut one = Note::new("example.org/log\n5\nAAAA\n".into()).unwrap();
        one.sign("example.org/log", &key).unwrap();
        let mut padded = one.clone();
        padded.sign("junk.example/pad", &key).unwrap();
        let digest = |n: &Note| statement_digest(&n.to_bytes());
        assert_eq!(digest(&one), digest(&padded));
        let mut other = Note::new("example.org/log\n6\nAAAA\n".into()).unwrap();
        other.sign("example.org/log", &key).unwrap();
        assert_ne!(digest(&one), digest(&other));
    }

    #[test]
    fn a_state_written_before_counts_its_note_as_raised_last() {
        let note = b"example.org/log\n5\nAAAA\n\n\xe2\x80\x94 example.org/log AAAA\n";
        let mut raised = Raised::read(Some(note));
        assert!(raised.holds(Evidence::Split, &statement_digest(note)));
        assert!(raised.kept(Evidence::Contradiction).is_empty());
        let stored = encode(&raised);
        assert_eq!(Raised::read(Some(&stored)).last, raised.last);
    }
}
