//! The witness every node is for the other members' logs: `POST /peer/v1/witness/add-checkpoint`
//! (c2sp.org/tlog-witness). A member submits its new checkpoint with a consistency proof from
//! the size this witness last co-signed; the witness checks the log's signature (the origin
//! `<member>/jol-log`, the member's Ed25519 event keys valid now), the proof, and answers its
//! `cosignature/v1` line, as `<me>/jol-witness`.
//!
//! Owns: the record of the last co-signed checkpoint per origin (`Meta::Witnessed`, with this
//! node's line in `Meta::Cosigned`), checked and replaced under one lock so two submissions
//! cannot roll it back. A checkpoint that contradicts the recorded one, when the contradiction is
//! the log's own (the same size with another root, or a bad proof sent by the log itself, not
//! replayed by another member) is a fork: counted, kept in quarantine with both notes as
//! evidence (`log-fork`), never co-signed.

use hyper::StatusCode;

use super::alarm::Evidence;
use super::receipt::{Reason, Rejection};
use super::sync::{SyncError, Syncer};
use crate::event::identifiers::MemberId;
use crate::log::checkpoint::{self, Checkpoint, CheckpointError, SignedCheckpoint, Witnessed};
use crate::log::note::{Note, MAX_NOTE_BYTES};
use crate::merkle::{self, Hash};
use crate::net::http::{self, Problem, ProblemKind, Response};
use crate::store::Meta;

/// The most consistency proof lines a request may carry (the spec's bound: a proof in a tree
/// of 2^64 leaves).
pub(crate) const MAX_PROOF_LINES: usize = 63;
/// The largest request body: the old size line, the proof lines and the note.
pub(crate) const MAX_BODY_BYTES: usize = 32 + MAX_PROOF_LINES * 46 + 1 + MAX_NOTE_BYTES;

/// Why a submission was not co-signed, each with the status tlog-witness gives it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Refusal {
    #[error("{0}")]
    Malformed(String),
    #[error("the origin {0:?} is not the log of another member of the manifest")]
    UnknownOrigin(String),
    #[error("{0}")]
    Untrusted(String),
    #[error("the old size is not the size this witness last co-signed ({0})")]
    Conflict(u64),
    #[error("{0}")]
    Inconsistent(String),
    /// The size this witness last co-signed, with another root: 409 as the spec says, but not
    /// as `text/x.tlog.size` (a submitter would retry from the same size for ever).
    #[error("{0}")]
    RootMismatch(String),
}

impl Refusal {
    /// The answer: problem+json, but a 409 is the size as `text/x.tlog.size`, as the spec says.
    pub(crate) fn response(&self) -> Response {
        let kind = match self {
            Refusal::Malformed(_) => ProblemKind::WitnessBadRequest,
            Refusal::UnknownOrigin(_) => ProblemKind::WitnessUnknownOrigin,
            Refusal::Untrusted(_) => ProblemKind::WitnessUntrusted,
            Refusal::Conflict(size) => {
                return http::with_type(
                    StatusCode::CONFLICT,
                    "text/x.tlog.size",
                    format!("{size}\n"),
                )
            }
            Refusal::Inconsistent(_) => ProblemKind::WitnessInconsistent,
            Refusal::RootMismatch(_) => ProblemKind::WitnessRootMismatch,
        };
        Problem::new(kind, self.to_string()).response()
    }
}

/// Why a submission got no co-signature: refused as the spec says, or this node failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum WitnessError {
    #[error(transparent)]
    Refused(#[from] Refusal),
    #[error(transparent)]
    Failed(#[from] SyncError),
}

impl From<crate::store::StoreError> for WitnessError {
    fn from(e: crate::store::StoreError) -> WitnessError {
        WitnessError::Failed(e.into())
    }
}

/// What a peer is told when this node could not witness its checkpoint. A standby replica
/// (behind the member's load balancer) says so and that a retry reaches the writer, which keeps
/// the witness record; any other failure is logged here, and the peer learns only that it may
/// submit again (the cause is this node's business).
fn failed(e: &SyncError) -> Problem {
    if matches!(e, SyncError::Store(s) if s.is_not_writer()) {
        tracing::debug!("a standby replica was asked to witness a checkpoint");
        return Problem::new(
            ProblemKind::NotWriter,
            "this replica of the member is a standby and the writer keeps the witness record; submit again (the load balancer sends it on)",
        )
        .with("retryAfter", serde_json::json!(1));
    }
    tracing::error!(error = %e, "the witness cannot record a checkpoint");
    Problem::new(
        ProblemKind::StorageUnavailable,
        "the witness cannot record the checkpoint now; submit it again later",
    )
}

/// An `add-checkpoint` body: the old size line, the consistency proof lines, a blank line, the
/// checkpoint note.
pub(crate) fn request_body(old: u64, proof: &[Hash], note: &[u8]) -> Vec<u8> {
    let mut body = format!("old {old}\n");
    for h in proof {
        body.push_str(&checkpoint::encode_std(h));
        body.push('\n');
    }
    body.push('\n');
    let mut body = body.into_bytes();
    body.extend_from_slice(note);
    body
}

/// An `add-checkpoint` body as sent.
#[derive(Debug)]
pub(crate) struct Request {
    pub(crate) old: u64,
    pub(crate) proof: Vec<Hash>,
    pub(crate) note: Vec<u8>,
}

impl Request {
    /// Read a body as c2sp.org/tlog-witness writes it: `old N`, at most 63 proof lines, a blank
    /// line, the checkpoint note.
    pub(crate) fn parse(body: &[u8]) -> Result<Request, Refusal> {
        let bad = |why: &str| Refusal::Malformed(format!("not an add-checkpoint body: {why}"));
        let text = std::str::from_utf8(body).map_err(|_| bad("not UTF-8"))?;
        let (first, mut rest) = text
            .split_once('\n')
            .ok_or_else(|| bad("no old size line"))?;
        let old = first
            .strip_prefix("old ")
            .and_then(checkpoint::parse_size)
            .ok_or_else(|| bad("the first line is not `old <size>`"))?;
        let mut proof = Vec::new();
        loop {
            let (line, after) = rest
                .split_once('\n')
                .ok_or_else(|| bad("no empty line before the checkpoint"))?;
            rest = after;
            if line.is_empty() {
                break;
            }
            if proof.len() == MAX_PROOF_LINES {
                return Err(bad("more than 63 consistency proof lines"));
            }
            proof.push(
                checkpoint::decode_std(line)
                    .ok_or_else(|| bad("a proof line is not a base64 hash"))?,
            );
        }
        Ok(Request {
            old,
            proof,
            note: rest.as_bytes().to_vec(),
        })
    }
}

impl Syncer {
    /// Serve `add-checkpoint` from `caller` (a member, authenticated by the peer listener).
    pub(crate) async fn add_checkpoint(
        &self,
        caller: &MemberId,
        req: hyper::Request<hyper::body::Incoming>,
    ) -> Response {
        let body = match http::read_body(req, MAX_BODY_BYTES, http::BODY_DEADLINE).await {
            Ok(b) => b,
            Err(p) => return p.response(),
        };
        // Its check and record wait on a lock and the store's flush: off the runtime's threads.
        match crate::cores::blocking(|| self.witness_submission(caller, &body)) {
            Ok(line) => http::with_type(StatusCode::OK, "text/plain; charset=utf-8", line),
            Err(WitnessError::Refused(refusal)) => refusal.response(),
            Err(WitnessError::Failed(e)) => failed(&e).response(),
        }
    }

    /// Check a submission and, when it passes, record and co-sign it: the cosignature line.
    pub(crate) fn witness_submission(
        &self,
        caller: &MemberId,
        body: &[u8],
    ) -> Result<String, WitnessError> {
        let request = Request::parse(body)?;
        let (signed, origin) = self.verify_submitted(&request.note)?;
        // What is recorded or kept as evidence: the note as its log signed it.
        let note = signed.note.to_bytes();
        let new = &signed.checkpoint;
        if request.old > new.size {
            return Err(Refusal::Malformed(format!(
                "the old size {} is larger than the checkpoint's {}",
                request.old, new.size
            ))
            .into());
        }
        let _one_at_a_time = self
            .witnessing
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let seen_key = Meta::Witnessed(origin.clone());
        let last_bytes = self.store.meta(&seen_key)?;
        let last = recorded_checkpoint(last_bytes.as_deref())?;
        let recorded = last.as_ref().map_or(0, |l| l.size);
        if request.old != recorded {
            return Err(Refusal::Conflict(recorded).into());
        }
        let inconsistent = |why: String| Err(Refusal::Inconsistent(why).into());
        // The empty tree has one root, for the event log and each side log alike.
        if let Some((name, _)) = checkpoint::heads(new)
            .into_iter()
            .find(|(_, head)| head.size == 0 && head.root != merkle::empty_root())
        {
            return inconsistent(format!(
                "the {name} of size 0 must have the empty tree's root"
            ));
        }
        if request.old == 0 && !request.proof.is_empty() {
            return inconsistent("from old size 0 the consistency proof must be empty".into());
        }
        // Two notes that contradict prove a fork by themselves; a bad proof does only when the
        // log itself sent it (anyone may replay its old notes). An older note proves nothing,
        // whoever sends it: a submission does not claim to be the log's latest, and the log's
        // own submitter may send a checkpoint that a newer one, taken up by this witness's
        // split-view check meanwhile, has passed. The split-view check, which asks the log for
        // its latest, is where an older note is a rollback (`witness.rs`).
        match checkpoint::judge(last.as_ref(), new, &request.proof) {
            Witnessed::Unchanged if !request.proof.is_empty() => {
                return inconsistent(format!(
                    "from old size {} to the same size the consistency proof must be empty",
                    request.old
                ));
            }
            Witnessed::Consistent | Witnessed::Unchanged => {}
            Witnessed::Fork(why) => {
                let evidence = Evidence::Contradiction;
                self.alarm(&origin, evidence, &why, last_bytes.as_deref(), &note)?;
                // The event log's root for the size co-signed: 409 (c2sp.org/tlog-witness); a
                // side log's contradiction is Jol's own extension, refused as inconsistent.
                let second_root = last
                    .as_ref()
                    .is_some_and(|l| l.size == new.size && l.root != new.root);
                return match second_root {
                    true => Err(Refusal::RootMismatch(why).into()),
                    false => inconsistent(why),
                };
            }
            Witnessed::BadProof(why) => {
                if caller == &origin {
                    let evidence = Evidence::FailedProof;
                    self.alarm(&origin, evidence, &why, last_bytes.as_deref(), &note)?;
                }
                return inconsistent(why);
            }
            Witnessed::Stale(why) => return inconsistent(why),
        }
        // The first note co-signed is kept too: nothing the check saw comes before it.
        let sides_grew = checkpoint::SIDE_LOGS
            .into_iter()
            .any(|l| last.as_ref().is_none_or(|l0| l0.side(l) != new.side(l)));
        if sides_grew {
            // add-checkpoint proves the event log alone: the split-view check proves these.
            super::witness::keep_pending(&self.store, &origin, &note)?;
        }
        let line = checkpoint::cosign(&signed.note, &self.me, &self.witness_key).line();
        // One flush for both: the record, then this node's line, made durable together.
        self.store.set_meta_lazy(&seen_key, &note)?;
        self.store
            .set_meta(&Meta::Cosigned(origin.clone()), line.as_bytes())?;
        tracing::debug!(%origin, size = new.size, "co-signed a checkpoint");
        Ok(line)
    }

    /// Take up a checkpoint of `from`'s log that the split-view check verified (from the
    /// recorded size `old`, with `proof`), through the same check and record as a submission.
    /// A record that moved meanwhile (a submission won the race) is left as it is.
    pub(super) fn take_up(
        &self,
        from: &MemberId,
        old: u64,
        proof: &[Hash],
        note: &[u8],
    ) -> Result<(), SyncError> {
        match self.witness_submission(from, &request_body(old, proof, note)) {
            Ok(_) => Ok(()),
            Err(WitnessError::Refused(r)) => {
                tracing::debug!(%from, refusal = %r, "the witness did not take up a checked checkpoint");
                Ok(())
            }
            Err(WitnessError::Failed(e)) => Err(e),
        }
    }

    /// The checkpoint of another member's log, validly signed by one of its keys valid now.
    fn verify_submitted(&self, note: &[u8]) -> Result<(SignedCheckpoint, MemberId), Refusal> {
        let malformed = |e: &dyn std::fmt::Display| Refusal::Malformed(e.to_string());
        let parsed = Note::parse(note).map_err(|e| malformed(&e))?;
        let origin_line = parsed.text().split('\n').next().unwrap_or_default();
        let manifest = self
            .trust
            .usable()
            .map_err(|e| Refusal::Untrusted(e.to_string()))?;
        let member = checkpoint::member_of_origin(origin_line)
            .filter(|m| m != &self.me && manifest.member(m).is_some())
            .ok_or_else(|| Refusal::UnknownOrigin(checkpoint::said_origin(origin_line)))?;
        match checkpoint::verify_log_signed(note, &manifest) {
            Ok(signed) => Ok((signed, member)),
            Err(e @ (CheckpointError::Note(_) | CheckpointError::Body(_))) => Err(malformed(&e)),
            Err(e @ CheckpointError::UnknownOrigin(_)) => {
                Err(Refusal::UnknownOrigin(e.to_string()))
            }
            Err(e @ (CheckpointError::NoNoteKey(_) | CheckpointError::Signature(_))) => {
                Err(Refusal::Untrusted(e.to_string()))
            }
        }
    }

    /// A fork: count it, log it and keep both signed notes as evidence, as
    /// [`Syncer::raise`] allows.
    pub(super) fn alarm(
        &self,
        from: &MemberId,
        evidence: Evidence,
        reason: &str,
        previous: Option<&[u8]>,
        new: &[u8],
    ) -> Result<(), SyncError> {
        self.raise(from, evidence, new, || {
            tracing::error!(%from, reason, "LOG FORK: the log's checkpoint contradicts one witnessed before");
            let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
            let notes = serde_json::json!({
                "previous": previous.map(text),
                "new": text(new),
            });
            self.quarantine(
                from,
                &Rejection::new(Reason::LogFork, reason),
                &notes.to_string(),
            )
        })
    }
}

/// The checkpoint the witness recorded for a log, if any. A record that does not read is
/// damage, not a log seen for the first time: trusting the next note on first use would let a
/// rolled-back log through.
pub(super) fn recorded_checkpoint(
    record: Option<&[u8]>,
) -> Result<Option<Checkpoint>, crate::store::StoreError> {
    record
        .map(|b| checkpoint::read(b).map(|s| s.checkpoint))
        .transpose()
        .map_err(|_| crate::store::StoreError::Corrupt("the witness's record of a log"))
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering::Relaxed;

    use super::*;
    use crate::budget::Budget;
    use crate::federation::fixture::Federation;
    use crate::federation::sync::SyncSettings;
    use crate::log::checkpoint::{Checkpoint, TreeHead};
    use crate::log::note::{KeyType, NoteSignature, VerifierKey};
    use crate::merkle::MemoryTree;
    use crate::store::QuarantineCaps;

    struct World {
        fed: Federation,
        node: crate::federation::fixture::Node,
        syncer: Syncer,
        tree: MemoryTree,
    }

    fn world() -> World {
        let fed = Federation::new();
        let node = fed.node(&fed.employment);
        let syncer = node.syncer(SyncSettings::default(), QuarantineCaps::NONE);
        let tree = MemoryTree::new((0..40u8).map(|i| merkle::leaf_hash(&[i])));
        World {
            fed,
            node,
            syncer,
            tree,
        }
    }

    impl World {
        fn origin(&self) -> MemberId {
            self.fed.migration.clone()
        }

        /// The migration agency's checkpoint of `size` leaves of `tree`, signed by `signer`.
        fn note(&self, tree: &MemoryTree, size: u64, signer: &MemberId) -> Vec<u8> {
            self.note_with_quarantine(tree, size, 0, signer)
        }

        /// The same, stating the first `quarantined` leaves of `tree` as its quarantine log.
        fn note_with_quarantine(
            &self,
            tree: &MemoryTree,
            size: u64,
            quarantined: u64,
            signer: &MemberId,
        ) -> Vec<u8> {
            let empty = TreeHead {
                size: 0,
                root: merkle::empty_root(),
            };
            let c = Checkpoint {
                origin: checkpoint::log_origin(&self.origin()),
                size,
                root: merkle::root(tree, size).unwrap(),
                quarantine: TreeHead {
                    size: quarantined,
                    root: merkle::root(tree, quarantined).unwrap(),
                },
                access: empty,
            };
            checkpoint::sign(&c, self.fed.key(signer))
        }

        fn body(&self, old: u64, proof: &[Hash], note: &[u8]) -> Vec<u8> {
            request_body(old, proof, note)
        }

        fn submit(&self, old: u64, new: u64) -> Result<String, Refusal> {
            let proof = merkle::consistency_proof(&self.tree, old, new).unwrap();
            let note = self.note(&self.tree, new, &self.origin());
            self.submit_raw(&self.body(old, &proof, &note))
        }

        fn submit_raw(&self, body: &[u8]) -> Result<String, Refusal> {
            match self.syncer.witness_submission(&self.origin(), body) {
                Ok(line) => Ok(line),
                Err(WitnessError::Refused(r)) => Err(r),
                Err(WitnessError::Failed(e)) => panic!("{e}"),
            }
        }

        fn forks(&self) -> Vec<String> {
            let mut all = Budget::unlimited();
            let q = self.node.store.quarantined(0, 100, &mut all).unwrap();
            q.into_iter().map(|q| q.reason).collect()
        }
    }

    #[test]
    fn a_consistent_checkpoint_is_cosigned_and_recorded_then_extended() {
        let w = world();
        let line = w.submit(0, 5).unwrap();
        let sig = NoteSignature::parse_line(line.trim_end()).unwrap();
        let key = VerifierKey::new(
            &checkpoint::witness_name(&w.node.member),
            KeyType::Cosignature,
            w.fed.key(&w.node.member).verifying_key(),
        )
        .unwrap();
        let mut note = Note::parse(&w.note(&w.tree, 5, &w.origin())).unwrap();
        note.add(sig).unwrap();
        assert!(note.verify(&[key]).is_ok());
        assert_eq!(w.submit(0, 9), Err(Refusal::Conflict(5)));
        assert!(w.submit(5, 9).is_ok());
        assert!(w.submit(9, 9).is_ok(), "the same checkpoint again");
        assert_eq!(w.submit(5, 20), Err(Refusal::Conflict(9)));
        assert!(w.forks().is_empty());
    }

    #[test]
    fn each_refusal_has_its_spec_status() {
        let w = world();
        let note = w.note(&w.tree, 5, &w.origin());
        let status = |r: Result<String, Refusal>| r.unwrap_err().response().status().as_u16();
        // Malformed bodies.
        assert_eq!(status(w.submit_raw(b"old 01\n\n")), 400);
        assert_eq!(
            status(w.submit_raw(&w.body(6, &[], &note))),
            400,
            "old > size"
        );
        let too_long = w.body(0, &[[0; 32]; MAX_PROOF_LINES + 1], &note);
        assert_eq!(status(w.submit_raw(&too_long)), 400, "64 proof lines");
        // Another member's signature for this origin, or none known.
        let forged = w.note(&w.tree, 5, &w.fed.employment);
        assert_eq!(status(w.submit_raw(&w.body(0, &[], &forged))), 403);
        // This node's own log, or no member's, is not witnessed here.
        let mine = String::from_utf8(note.clone()).unwrap().replace(
            &checkpoint::log_origin(&w.origin()),
            &checkpoint::log_origin(&w.node.member),
        );
        assert_eq!(status(w.submit_raw(&w.body(0, &[], mine.as_bytes()))), 404);
        // A proof from 0 is empty; a size 0 has the empty root.
        assert_eq!(status(w.submit_raw(&w.body(0, &[[1; 32]], &note))), 422);
        let conflict = w
            .submit(0, 5)
            .and_then(|_| w.submit(3, 6))
            .unwrap_err()
            .response();
        assert_eq!(conflict.status(), 409);
        assert_eq!(conflict.headers()["content-type"], "text/x.tlog.size");
    }

    #[test]
    fn a_second_root_for_the_witnessed_size_is_a_fork_kept_never_cosigned() {
        let w = world();
        w.submit(0, 5).unwrap();
        let other = MemoryTree::new((0..40u8).map(|i| merkle::leaf_hash(&[i, 1])));
        let forked = w.note(&other, 5, &w.origin());
        let refused = w.submit_raw(&w.body(5, &[], &forked)).unwrap_err();
        assert!(matches!(refused, Refusal::RootMismatch(_)));
        // 409 as c2sp.org/tlog-witness says, but no size to retry from: the same size again
        // would be refused again.
        let answer = refused.response();
        assert_eq!(answer.status(), 409);
        assert_eq!(answer.headers()["content-type"], "application/problem+json");
        assert_eq!(w.forks(), ["log-fork"]);
        assert_eq!(w.node.metrics.forks.load(Relaxed), 1);
        // The record is unchanged: the honest extension still passes.
        assert!(w.submit(5, 9).is_ok());
    }

    /// The empty tree has one root, in the side logs' lines too.
    #[test]
    fn a_side_log_of_size_0_must_have_the_empty_tree_s_root() {
        let w = world();
        let c = Checkpoint {
            origin: checkpoint::log_origin(&w.origin()),
            size: 5,
            root: merkle::root(&w.tree, 5).unwrap(),
            quarantine: TreeHead {
                size: 0,
                root: merkle::empty_root(),
            },
            access: TreeHead {
                size: 0,
                root: [9; 32],
            },
        };
        let note = checkpoint::sign(&c, w.fed.key(&w.origin()));
        let refused = w.submit_raw(&w.body(0, &[], &note)).unwrap_err();
        assert!(matches!(refused, Refusal::Inconsistent(_)), "{refused}");
        assert_eq!(refused.response().status(), 422);
    }

    #[test]
    fn a_bad_proof_replayed_by_another_member_is_refused_without_an_alarm() {
        let w = world();
        w.submit(0, 5).unwrap();
        let note = w.note(&w.tree, 9, &w.origin());
        let body = w.body(5, &[[7; 32]], &note);
        let replayed = w.syncer.witness_submission(&w.fed.education, &body);
        assert!(matches!(
            replayed,
            Err(WitnessError::Refused(Refusal::Inconsistent(_)))
        ));
        assert!(w.forks().is_empty());
        let sent_by_the_log = w.submit_raw(&body);
        assert!(matches!(sent_by_the_log, Err(Refusal::Inconsistent(_))));
        assert_eq!(w.forks(), ["log-fork"]);
    }

    /// The log signs a new checkpoint when only a side log grew: two genuine notes of one size.
    /// Another member replaying the older one, or the log's own submitter sending it late, must
    /// not get it co-signed (a fresh co-signature of a quarantine log that hides entries the
    /// witness saw) nor move the record back, and it is no alarm: the log did nothing wrong.
    #[test]
    fn an_older_checkpoint_of_the_same_size_replayed_is_refused_without_an_alarm() {
        let w = world();
        let older = w.note_with_quarantine(&w.tree, 5, 3, &w.origin());
        let newer = w.note_with_quarantine(&w.tree, 5, 10, &w.origin());
        w.submit_raw(&w.body(0, &[], &older)).unwrap();
        w.submit_raw(&w.body(5, &[], &newer)).unwrap();
        let replayed = w
            .syncer
            .witness_submission(&w.fed.education, &w.body(5, &[], &older));
        assert!(
            matches!(
                replayed,
                Err(WitnessError::Refused(Refusal::Inconsistent(_)))
            ),
            "{replayed:?}"
        );
        let record = w.node.store.meta(&Meta::Witnessed(w.origin())).unwrap();
        assert_eq!(record, Some(newer.clone()), "the record did not go back");
        assert!(w.forks().is_empty());
        // Sent by the log itself it is no alarm either: its submitter may have read the older
        // note before this witness took up the newer one (a submission does not claim to be
        // the latest). The record still does not go back.
        assert!(matches!(
            w.submit_raw(&w.body(5, &[], &older)),
            Err(Refusal::Inconsistent(_))
        ));
        assert!(w.forks().is_empty());
        let record = w.node.store.meta(&Meta::Witnessed(w.origin())).unwrap();
        assert_eq!(record, Some(newer), "the record did not go back");
    }

    /// Two notes of the log that cannot both be honest, whoever submits the second: the same
    /// quarantine size with another root, or the log grown while its quarantine shrank.
    #[test]
    fn a_side_log_rewritten_or_shrunk_while_the_log_grew_is_a_fork() {
        let w = world();
        let witnessed = w.note_with_quarantine(&w.tree, 5, 4, &w.origin());
        w.submit_raw(&w.body(0, &[], &witnessed)).unwrap();
        let other = MemoryTree::new((0..40u8).map(|i| merkle::leaf_hash(&[i, 1])));
        let mut rewritten = Note::parse(&witnessed).unwrap();
        let body = rewritten.text().replace(
            &format!(
                "jol-quarantine 4 {}",
                checkpoint::encode_std(&merkle::root(&w.tree, 4).unwrap())
            ),
            &format!(
                "jol-quarantine 4 {}",
                checkpoint::encode_std(&merkle::root(&other, 4).unwrap())
            ),
        );
        assert_ne!(body, rewritten.text());
        rewritten = Note::new(body).unwrap();
        rewritten
            .sign(&checkpoint::log_origin(&w.origin()), w.fed.key(&w.origin()))
            .unwrap();
        let replayed = w
            .syncer
            .witness_submission(&w.fed.education, &w.body(5, &[], &rewritten.to_bytes()));
        assert!(matches!(
            replayed,
            Err(WitnessError::Refused(Refusal::Inconsistent(_)))
        ));
        assert_eq!(w.forks(), ["log-fork"]);

        let proof = merkle::consistency_proof(&w.tree, 5, 9).unwrap();
        let shrunk = w.note_with_quarantine(&w.tree, 9, 2, &w.origin());
        let replayed = w
            .syncer
            .witness_submission(&w.fed.education, &w.body(5, &proof, &shrunk));
        assert!(matches!(
            replayed,
            Err(WitnessError::Refused(Refusal::Inconsistent(_)))
        ));
        assert_eq!(w.forks(), ["log-fork", "log-fork"]);
    }

    /// `note` with a signature line by a key nobody knows, different for each `n`.
    fn with_junk_line(note: &[u8], n: u8) -> Vec<u8> {
        let mut note = Note::parse(note).unwrap();
        let junk = NoteSignature {
            name: "junk.example/pad".into(),
            id: u32::from(n),
            bytes: vec![n; 64],
        };
        note.add(junk).unwrap();
        note.to_bytes()
    }

    /// The record and the evidence are the note as the log signed it: lines by keys nobody
    /// checked, added by whoever submitted it, are not kept.
    #[test]
    fn lines_by_unknown_keys_are_not_recorded() {
        let w = world();
        let note = w.note(&w.tree, 5, &w.origin());
        w.submit_raw(&w.body(0, &[], &with_junk_line(&note, 1)))
            .unwrap();
        let record = w.node.store.meta(&Meta::Witnessed(w.origin())).unwrap();
        assert_eq!(record, Some(note));
    }

    /// Alarms the log can cause at will (its own bad proofs) fill their own evidence slots and
    /// no more: a fork shown by two notes is still kept after them, once however often it is
    /// sent again with other signature lines.
    #[test]
    fn alarms_sent_over_and_over_keep_bounded_evidence_and_a_fork_its_own() {
        let w = world();
        w.submit(0, 5).unwrap();
        let cap = crate::federation::alarm::MAX_EVIDENCE as u64;
        let sizes = 6..6 + cap + 5;
        for size in sizes.clone() {
            let note = w.note(&w.tree, size, &w.origin());
            let refused = w.submit_raw(&w.body(5, &[[7; 32]], &note)).unwrap_err();
            assert!(matches!(refused, Refusal::Inconsistent(_)));
        }
        assert_eq!(w.forks().len() as u64, cap);
        let bad_proofs = sizes.end - sizes.start;
        assert_eq!(w.node.metrics.forks.load(Relaxed), bad_proofs);
        let other = MemoryTree::new((0..40u8).map(|i| merkle::leaf_hash(&[i, 1])));
        let forked = w.note(&other, 5, &w.origin());
        for n in 0..20 {
            let padded = with_junk_line(&forked, n);
            let refused = w.submit_raw(&w.body(5, &[], &padded)).unwrap_err();
            assert!(matches!(refused, Refusal::RootMismatch(_)));
        }
        assert_eq!(w.forks().len() as u64, cap + 1, "the fork is kept");
        assert_eq!(w.node.metrics.forks.load(Relaxed), bad_proofs + 1);
        // The record never moved: the honest extension still passes.
        assert!(w.submit(5, 9).is_ok());
    }

    /// Evidence whose quarantine write failed is raised again when the contradiction comes
    /// back, not taken as raised.
    #[test]
    fn a_fork_whose_evidence_could_not_be_kept_is_raised_again() {
        let fed = Federation::new();
        let node = fed.node(&fed.employment);
        let full = QuarantineCaps {
            max_records: 0,
            max_bytes: 0,
        };
        let w = World {
            syncer: node.syncer(SyncSettings::default(), full),
            node,
            fed,
            tree: MemoryTree::new((0..40u8).map(|i| merkle::leaf_hash(&[i]))),
        };
        w.submit(0, 5).unwrap();
        let other = MemoryTree::new((0..40u8).map(|i| merkle::leaf_hash(&[i, 1])));
        let forked = w.note(&other, 5, &w.origin());
        for _ in 0..2 {
            let failed = w
                .syncer
                .witness_submission(&w.origin(), &w.body(5, &[], &forked));
            assert!(matches!(failed, Err(WitnessError::Failed(_))), "{failed:?}");
        }
        assert_eq!(
            w.node.metrics.forks.load(Relaxed),
            0,
            "nothing kept, nothing counted"
        );
    }

    /// A record that does not read is damage: the submission fails (the caller retries)
    /// rather than being taken as the log's first, which would let a rolled-back log through.
    #[test]
    fn a_damaged_record_fails_the_submission_instead_of_starting_over() {
        let w = world();
        w.submit(0, 5).unwrap();
        let key = Meta::Witnessed(w.origin());
        w.node.store.set_meta(&key, b"not a note").unwrap();
        let note = w.note(&w.tree, 3, &w.origin());
        let answer = w
            .syncer
            .witness_submission(&w.origin(), &w.body(0, &[], &note));
        assert!(matches!(answer, Err(WitnessError::Failed(_))), "{answer:?}");
        assert_eq!(
            w.node.store.meta(&key).unwrap().as_deref(),
            Some(&b"not a note"[..])
        );
    }

    /// A consistency proof from a size to itself is empty: one with lines is refused (422),
    /// without an alarm and without co-signing.
    #[test]
    fn a_proof_from_the_recorded_size_to_itself_must_be_empty() {
        let w = world();
        w.submit(0, 5).unwrap();
        let note = w.note(&w.tree, 5, &w.origin());
        let padded = w.body(5, &[[9; 32]; 3], &note);
        let refused = w.submit_raw(&padded).unwrap_err();
        assert_eq!(refused.response().status(), 422);
        assert!(w.forks().is_empty());
        assert!(w.submit_raw(&w.body(5, &[], &note)).is_ok());
    }

    #[test]
    fn a_standby_sends_the_submitter_to_the_writer_and_no_failure_tells_its_cause() {
        use crate::store::kv::KvError;
        use crate::store::postgres::PgError;
        let standby = SyncError::Store(crate::store::StoreError::Io {
            op: "put",
            source: KvError::Postgres(PgError::NotWriter),
        });
        let p = failed(&standby);
        assert!(p.kind.ends_with("/not-writer"), "{}", p.kind);
        let broken = SyncError::Store(crate::store::StoreError::Io {
            op: "put",
            source: KvError::Postgres(PgError::Db("disk quota exceeded on /srv/pg".into())),
        });
        let p = failed(&broken);
        assert!(p.kind.ends_with("/storage-unavailable"), "{}", p.kind);
        assert!(!p.detail.contains("quota"), "{}", p.detail);
    }
}
