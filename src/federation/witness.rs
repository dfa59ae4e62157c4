//! The split-view check: each subscription periodically fetches the publisher's latest
//! checkpoint note, checks the log's signature, checks it is consistent with the checkpoint this
//! node last witnessed for that log (`Meta::Witnessed`, the record of the tlog-witness this node
//! is, [`super::witness_server`]), and checks that the events the publisher's feed served this
//! node since the last check are in the tree the checkpoint commits to (an inclusion proof each).
//!
//! A checkpoint that contradicts the witnessed one is a fork (`log-fork`); a served event that
//! the checkpointed log does not hold is a split view (`log-split`: the publisher shows readers
//! something other than its log). Either is counted, logged, and kept in quarantine with the
//! signed evidence. A proof that cannot be fetched is only a fetch failure: counted, and tried
//! again at the next round. Co-signing is the witness server's: a checkpoint is co-signed when
//! its log submits it.

/// Most inclusion proofs one witnessing round asks for (the rest wait for the next round).
const INCLUSION_CHECKS_PER_ROUND: u64 = 256;

/// The most a proof answer may take: ~6 KiB at most for a tree of 2^64 leaves.
const MAX_PROOF_ANSWER_BYTES: usize = 64 * 1024;

/// The most hashes a consistency or inclusion proof of a tree of up to 2^64 leaves holds.
const MAX_PROOF_HASHES: usize = 128;

use super::alarm::Evidence;
use super::receipt::{Reason, Rejection};
use super::sync::{ProofFetchError, SyncError, Syncer};
use crate::event::identifiers::MemberId;
use crate::log::checkpoint::{self, side_log_name, Checkpoint, HeadMove, Witnessed, SIDE_LOGS};
use crate::log::note::MAX_NOTE_BYTES;
use crate::net::client::HttpClient;
use crate::net::http::{Problem, ProblemKind};
use crate::store::Meta;

impl Syncer {
    /// Check the publisher's latest checkpoint against the one witnessed, and the events served
    /// since the last check against it; raise the alarm on a fork or a split view.
    pub(super) async fn witness(
        &self,
        client: &mut HttpClient,
        from: &MemberId,
    ) -> Result<(), SyncError> {
        // Read before the fetch: whatever the witness recorded then, the log had signed before,
        // so its latest checkpoint cannot be smaller.
        let last_bytes = self.store.meta(&Meta::Witnessed(from.clone()))?;
        let (status, bytes) = match client.get_small("/log/checkpoint", MAX_NOTE_BYTES).await {
            // Larger than any note: no checkpoint (a proxy's error page, or worse).
            Err(crate::net::client::ClientError::TooLarge(_)) => {
                self.unchecked(from, hyper::StatusCode::PAYLOAD_TOO_LARGE);
                return Ok(());
            }
            answer => answer?,
        };
        if !status.is_success() {
            self.unchecked(from, status);
            return Ok(());
        }
        let manifest = self.trust.usable()?;
        let new = match checkpoint::verify(&bytes, &manifest) {
            Ok(c) if c.checkpoint.member().as_ref() == Some(from) => c.checkpoint,
            Ok(_) => return self.bad_checkpoint(from, "a checkpoint of another origin", &bytes),
            Err(e) => return self.bad_checkpoint(from, &e.to_string(), &bytes),
        };
        let last = match super::witness_server::recorded_checkpoint(last_bytes.as_deref()) {
            Ok(last) => last,
            Err(e) => {
                // The log's events still flow; only this check waits for the repair.
                let count = self.metrics.count_sync(from, |s| &mut s.witness_unchecked);
                if sparsely(count) {
                    tracing::error!(%from, error = %e, unchecked = count,
                        "the witness's record of this publisher's log does not read: its checkpoints are not checked until it is repaired");
                }
                return Ok(());
            }
        };
        let mut proof = Vec::new();
        if let Some(l) = last.as_ref().filter(|l| l.size < new.size) {
            let path = format!("/proof/consistency?from={}&to={}", l.size, new.size);
            proof = fetch_proof(client, &path).await?.hashes;
        }
        // The publisher served both the note, as its latest, and the proof: any contradiction
        // with what was witnessed is its own.
        let judged = checkpoint::judge(last.as_ref(), &new, &proof);
        if let Witnessed::Fork(why) = &judged {
            let evidence = Evidence::Contradiction;
            return self.alarm(from, evidence, why, last_bytes.as_deref(), &bytes);
        }
        if let Witnessed::Stale(why) | Witnessed::BadProof(why) = &judged {
            let evidence = Evidence::FailedProof;
            return self.alarm(from, evidence, why, last_bytes.as_deref(), &bytes);
        }
        if let Some(split) = self.check_inclusions(client, from, &new).await? {
            return self.split(from, &split, &bytes);
        }
        if let Some(fork) = self.check_side_logs(client, from, &bytes).await? {
            let (before, after) = (Some(fork.before.as_slice()), &fork.after);
            return self.alarm(from, fork.evidence, &fork.why, before, after);
        }
        if judged == Witnessed::Consistent {
            // This node's witness takes up what it checked, as if the log had submitted it, so
            // the next check starts from it even if the log never submits here.
            let old = last.map_or(0, |l| l.size);
            // Under the witness's lock and with a flush: off the runtime's threads, as a
            // submission is.
            crate::cores::blocking(|| self.take_up(from, old, &proof, &bytes))?;
        }
        tracing::debug!(%from, size = new.size, "checked the publisher's checkpoint");
        Ok(())
    }

    /// Check that the side logs of the publisher's latest checkpoint, and of every checkpoint
    /// this node's witness co-signed since the last check (`Meta::SidesPending`), extend the
    /// heads this check proved last (`Meta::SidesProven`; the first check takes what it sees):
    /// the checkpoints in order of their heads, a consistency proof for each side log that
    /// grew from one to the next. `add-checkpoint` carries a proof for the event log alone, so
    /// this is where a side log rewritten and then grown past what a witness saw is found.
    /// Returns the two checkpoints that contradict each other, and why, when two do.
    async fn check_side_logs(
        &self,
        client: &mut HttpClient,
        from: &MemberId,
        bytes: &[u8],
    ) -> Result<Option<SideFork>, SyncError> {
        let proven_key = Meta::SidesProven(from.clone());
        let pending = sides_pending(&self.store, from)?;
        let proven = self.store.meta(&proven_key)?;
        if pending.is_empty() && proven.as_deref() == Some(bytes) {
            return Ok(None);
        }
        // Before the first check, the witness's record (co-signed before these checks began)
        // is where the chain starts.
        let start = match proven {
            Some(proven) => Some(proven),
            None => self.store.meta(&Meta::Witnessed(from.clone()))?,
        };
        let mut chain: Vec<(Vec<u8>, Checkpoint)> = pending
            .iter()
            .chain(start.as_ref())
            .chain(std::iter::once(&bytes.to_vec()))
            .filter_map(|b| Some((b.clone(), checkpoint::read(b).ok()?.checkpoint)))
            .collect();
        // An honest log's heads only grow: sorted by them, each checkpoint extends the one
        // before (a pair where one head grew and another shrank is caught by the proofs).
        chain.sort_by_key(|(_, c)| heads_of(c));
        chain.dedup_by(|a, b| a.0 == b.0);
        for pair in chain.windows(2) {
            let [(before, was), (after, now)] = pair else {
                continue;
            };
            match self.side_logs_extend(client, from, was, now).await? {
                SideLogs::Extend => {}
                SideLogs::Contradict(evidence, why) => {
                    return Ok(Some(SideFork {
                        evidence,
                        why,
                        before: before.clone(),
                        after: after.clone(),
                    }))
                }
                SideLogs::Unchecked => return Ok(None),
            }
        }
        let latest = chain.last().map_or(bytes, |(b, _)| b.as_slice());
        self.store.set_meta_lazy(&proven_key, latest)?;
        // It waits on the witness's lock, which is held across a flush, and flushes.
        crate::cores::blocking(|| take_pending(&self.store, &self.witnessing, from, &pending))?;
        Ok(None)
    }

    /// Whether each side log of `now` extends the same side log of `was` (its heads are at
    /// least `was`'s): the same root at the same size, nothing to prove from size 0, else a
    /// consistency proof the publisher serves.
    async fn side_logs_extend(
        &self,
        client: &mut HttpClient,
        from: &MemberId,
        was: &Checkpoint,
        now: &Checkpoint,
    ) -> Result<SideLogs, SyncError> {
        for log in SIDE_LOGS {
            let (was, now, name) = (was.side(log), now.side(log), side_log_name(log));
            match checkpoint::head_move(name, was, now) {
                HeadMove::Same => continue,
                HeadMove::Forked(why) => {
                    return Ok(SideLogs::Contradict(Evidence::Contradiction, why))
                }
                HeadMove::Shrank(why) => {
                    return Ok(SideLogs::Contradict(
                        Evidence::Contradiction,
                        format!("{why} while another head grew"),
                    ))
                }
                HeadMove::Grew if was.size == 0 => continue,
                HeadMove::Grew => {}
            }
            let path = format!(
                "/proof/consistency?log={name}&from={}&to={}",
                was.size, now.size
            );
            let proof = match fetch_proof(client, &path).await {
                Ok(proof) if proof.log.as_deref() == Some(name) => proof,
                // A node from before side-log proofs answers for its event log.
                Ok(_) => return Ok(self.sides_unchecked(from, "an answer for another log")),
                Err(SyncError::ProofFetch(e)) => {
                    return Ok(self.sides_unchecked(from, &e.to_string()))
                }
                Err(e) => return Err(e),
            };
            let extends = crate::merkle::verify_consistency(
                was.size,
                now.size,
                &was.root,
                &now.root,
                &proof.hashes,
            );
            if !extends {
                return Ok(SideLogs::Contradict(
                    Evidence::FailedProof,
                    format!(
                        "size {} of the {name} is not an extension of size {}",
                        now.size, was.size
                    ),
                ));
            }
            self.metrics.count_sync(from, |s| &mut s.side_logs_proven);
        }
        Ok(SideLogs::Extend)
    }

    /// A side log's proof could not be had (a node from before side-log proofs, or a failed
    /// fetch): the side logs are not checked this round, and the next starts from the same
    /// baseline. Counted (`jol_witness_side_unchecked_total`); logged the first time and every
    /// hundredth.
    fn sides_unchecked(&self, from: &MemberId, why: &str) -> SideLogs {
        let count = self
            .metrics
            .count_sync(from, |s| &mut s.side_logs_unchecked);
        if sparsely(count) {
            tracing::warn!(%from, why, unchecked = count,
                "no side-log consistency proof from the publisher: its side logs are not checked this round");
        }
        SideLogs::Unchecked
    }

    /// The publisher did not serve its checkpoint (none yet, or it refused): this round's
    /// split-view check is not made. Counted per publisher; logged with the status alone, every
    /// hundredth time, and the first time unless it is a 404 (a new log has no checkpoint yet).
    fn unchecked(&self, from: &MemberId, status: hyper::StatusCode) {
        let count = self.metrics.count_sync(from, |s| &mut s.witness_unchecked);
        let new_log = count == 1 && status == hyper::StatusCode::NOT_FOUND;
        if sparsely(count) && !new_log {
            tracing::warn!(%from, status = status.as_u16(), unchecked = count,
                "the publisher did not serve its checkpoint: its events are not checked against its log this round");
        }
    }

    /// A checkpoint that is not validly signed by the publisher: kept in quarantine, not taken;
    /// the same one served again round after round is kept once.
    fn bad_checkpoint(&self, from: &MemberId, reason: &str, bytes: &[u8]) -> Result<(), SyncError> {
        use sha2::{Digest, Sha256};
        let seen = Meta::BadCheckpoint(from.clone());
        let digest = Sha256::digest(bytes);
        if self.store.meta(&seen)?.as_deref() == Some(digest.as_slice()) {
            return Ok(());
        }
        tracing::warn!(%from, reason, "the publisher served a checkpoint that does not verify");
        let body = String::from_utf8_lossy(bytes);
        self.quarantine(
            from,
            &Rejection::new(Reason::CheckpointInvalid, reason),
            &body,
        )?;
        Ok(self.store.set_meta(&seen, digest.as_slice())?)
    }

    /// Check that the events `from`'s feed served this node since the last check are in the
    /// tree `checkpoint` commits to. Returns the first one that is not, with why.
    async fn check_inclusions(
        &self,
        client: &mut HttpClient,
        from: &MemberId,
        checkpoint: &Checkpoint,
    ) -> Result<Option<Split>, SyncError> {
        let root = checkpoint.root;
        let done_key = Meta::InclusionChecked(from.clone());
        let done = self
            .store
            .meta(&done_key)?
            .and_then(|v| v.try_into().ok())
            .map_or(0, u64::from_be_bytes);
        let held = self.store.cursor(from)?;
        let mut checked = done;
        for sequence in done + 1..=held.min(done + INCLUSION_CHECKS_PER_ROUND) {
            let Some(position) = self.store.position_of_sequence(from, sequence)? else {
                checked = sequence; // withheld from this node: nothing held to check
                continue;
            };
            let Some(bytes) = self.store.get(position)? else {
                break;
            };
            let path = format!("/proof/event?sequence={sequence}&size={}", checkpoint.size);
            let answer = match client.get_small(&path, MAX_PROOF_ANSWER_BYTES).await? {
                (status, _) if status == hyper::StatusCode::CONFLICT => break, // not covered yet
                // The publisher's own answer that no event has the sequence, not any 404 (a
                // proxy's, or a node's from before the route).
                (status, body)
                    if status == hyper::StatusCode::NOT_FOUND
                        && Problem::answers_as(&body, ProblemKind::EventNotInLog) =>
                {
                    return Ok(Some(Split {
                        sequence,
                        event: bytes,
                        reason: "the publisher's log holds no event with the sequence it served"
                            .into(),
                    }))
                }
                (status, body) if status.is_success() => Proof::parse(&body)?,
                (status, _) => return Err(ProofFetchError::Status(status).into()),
            };
            let index = answer.leaf_index.ok_or(ProofFetchError::Malformed(
                "an inclusion proof with no leafIndex",
            ))?;
            let leaf = crate::log::event_leaf(&bytes);
            let proof = answer.hashes;
            if !crate::merkle::verify_inclusion(&leaf, index, checkpoint.size, &proof, &root) {
                return Ok(Some(Split {
                    sequence,
                    event: bytes,
                    reason: format!(
                        "the event served at sequence {sequence} is not in the log the checkpoint of size {} commits to",
                        checkpoint.size
                    ),
                }));
            }
            checked = sequence;
        }
        if checked > done {
            self.store.set_meta(&done_key, &checked.to_be_bytes())?;
        }
        Ok(None)
    }

    /// A split view: count it, keep the served event and the signed checkpoint as evidence.
    fn split(&self, from: &MemberId, split: &Split, checkpoint: &[u8]) -> Result<(), SyncError> {
        self.raise(from, Evidence::Split, checkpoint, || {
            tracing::error!(%from, sequence = split.sequence, "LOG SPLIT: an event the publisher served is not in the log its checkpoint commits to");
            let evidence = serde_json::json!({
                "sequence": split.sequence,
                "event": serde_json::from_slice::<serde_json::Value>(&split.event).ok(),
                "checkpoint": String::from_utf8_lossy(checkpoint),
            });
            self.quarantine(
                from,
                &Rejection::new(Reason::LogSplit, split.reason.clone()),
                &evidence.to_string(),
            )
        })
    }
}

/// Whether the `count`th occurrence of a condition counted each round is logged: the first and
/// every hundredth, so a condition that lasts stays in the log without filling it.
fn sparsely(count: u64) -> bool {
    count == 1 || count.is_multiple_of(100)
}

/// Two checkpoints of a log whose side logs contradict each other, as signed, and why.
struct SideFork {
    evidence: Evidence,
    why: String,
    before: Vec<u8>,
    after: Vec<u8>,
}

/// What the side logs of one checkpoint are to those of an earlier one.
enum SideLogs {
    /// Each extends the earlier one (proven, or unchanged).
    Extend,
    /// One contradicts it: why.
    Contradict(Evidence, String),
    /// A proof could not be had: not checked this round.
    Unchecked,
}

/// The heads a checkpoint states, in the order that sorts an honest log's checkpoints.
fn heads_of(c: &Checkpoint) -> (u64, u64, u64) {
    (c.size, c.side(SIDE_LOGS[0]).size, c.side(SIDE_LOGS[1]).size)
}

/// Most checkpoints the witness keeps for the split-view check to prove their side logs; when
/// more wait (a witness of a log it does not subscribe to never checks), the oldest goes, and
/// with it the proof of its heads: a log that gets more co-signed between two checks, or keeps
/// its side-log proofs from being had while it does, can hide a rewrite behind the one dropped.
pub(super) const MAX_SIDES_PENDING: usize = 32;

/// The checkpoints of `from`'s log whose side logs the witness co-signed and no check proved
/// yet, oldest first.
fn sides_pending(
    store: &crate::store::Store,
    from: &MemberId,
) -> Result<Vec<Vec<u8>>, crate::store::StoreError> {
    Ok(store
        .meta(&Meta::SidesPending(from.clone()))?
        .and_then(|v| serde_json::from_slice::<Vec<String>>(&v).ok())
        .unwrap_or_default()
        .into_iter()
        .map(String::into_bytes)
        .collect())
}

/// Keep `note` (a checkpoint the witness co-signs whose side heads grew) for the next check;
/// called under the witness's lock.
pub(super) fn keep_pending(
    store: &crate::store::Store,
    from: &MemberId,
    note: &[u8],
) -> Result<(), crate::store::StoreError> {
    let mut pending = sides_pending(store, from)?;
    pending.push(note.to_vec());
    let over = pending.len().saturating_sub(MAX_SIDES_PENDING);
    pending.drain(..over);
    // Made durable with the witness's record, by the flush that follows it.
    store.set_meta_lazy(&Meta::SidesPending(from.clone()), &encode_pending(&pending))
}

/// Drop the checkpoints a check proved (`proved`, read before it) from those waiting; those the
/// witness kept meanwhile stay.
fn take_pending(
    store: &crate::store::Store,
    lock: &std::sync::Mutex<()>,
    from: &MemberId,
    proved: &[Vec<u8>],
) -> Result<(), crate::store::StoreError> {
    if proved.is_empty() {
        return store.flush(); // what the check recorded, durable
    }
    let _one_at_a_time = lock
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut pending = sides_pending(store, from)?;
    pending.retain(|p| !proved.contains(p));
    store.set_meta(&Meta::SidesPending(from.clone()), &encode_pending(&pending))
}

/// The checkpoints waiting, as stored: a JSON array of the notes' texts.
fn encode_pending(pending: &[Vec<u8>]) -> Vec<u8> {
    let texts: Vec<String> = pending
        .iter()
        .map(|p| String::from_utf8_lossy(p).into_owned())
        .collect();
    serde_json::to_vec(&texts).unwrap_or_default()
}

/// A served event the checkpointed log does not hold.
struct Split {
    sequence: u64,
    event: Vec<u8>,
    reason: String,
}

/// GET a proof; anything but a 2xx answer holding a well-formed proof is a fetch failure (never
/// evidence of a fork).
async fn fetch_proof(client: &mut HttpClient, path: &str) -> Result<Proof, SyncError> {
    let (status, body) = client.get_small(path, MAX_PROOF_ANSWER_BYTES).await?;
    if !status.is_success() {
        return Err(ProofFetchError::Status(status).into());
    }
    Ok(Proof::parse(&body)?)
}

/// A proof as the publisher's proof routes answer it (`federation/proofs.rs`).
struct Proof {
    /// The leaf's index (an inclusion proof).
    leaf_index: Option<u64>,
    /// The side log it proves (a side log's consistency proof).
    log: Option<String>,
    hashes: Vec<crate::merkle::Hash>,
}

impl Proof {
    /// Parse a proof answer: its hashes must each be 32 bytes in base64url, and no more than a
    /// proof can hold. A malformed answer proves nothing about the log: only a well-formed
    /// proof that fails is evidence.
    fn parse(body: &[u8]) -> Result<Proof, ProofFetchError> {
        #[derive(serde::Deserialize)]
        struct Answer {
            #[serde(rename = "leafIndex")]
            leaf_index: Option<u64>,
            log: Option<String>,
            proof: Vec<String>,
        }
        let answer: Answer =
            serde_json::from_slice(body).map_err(|e| ProofFetchError::NotJson(e.into()))?;
        if answer.proof.len() > MAX_PROOF_HASHES {
            return Err(ProofFetchError::Malformed(
                "more hashes than any proof of a 64-bit tree",
            ));
        }
        let hashes = answer
            .proof
            .iter()
            .map(|h| checkpoint::decode_hash(h))
            .collect::<Option<Vec<_>>>()
            .ok_or(ProofFetchError::Malformed(
                "a proof hash is not 32 bytes of base64url",
            ))?;
        Ok(Proof {
            leaf_index: answer.leaf_index,
            log: answer.log,
            hashes,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::atomic::Ordering::Relaxed;
    use std::sync::{Arc, Mutex};

    use bytes::Bytes;
    use http_body_util::Full;
    use hyper_util::rt::TokioIo;
    use serde_json::{json, Value};

    use super::*;
    use crate::budget::Budget;
    use crate::event::schema::EventType;
    use crate::event::SignedEvent;
    use crate::federation::fixture::{returnee, Federation, Node};
    use crate::federation::sync::SyncSettings;
    use crate::log::checkpoint::TreeHead;
    use crate::merkle::{self, MemoryTree};
    use crate::store::{QuarantineCaps, Quarantined};
    use crate::write::ReceiveCursor;

    /// A publisher as its witness sees it: the answers the test set, by path and query (404 for
    /// any other), and every request it got.
    #[derive(Default)]
    struct Publisher {
        answers: Mutex<HashMap<String, (u16, Vec<u8>)>>,
        asked: Mutex<Vec<String>>,
    }

    impl Publisher {
        fn answer(&self, path: &str, status: u16, body: impl Into<Vec<u8>>) {
            let mut answers = self.answers.lock().unwrap();
            answers.insert(path.to_string(), (status, body.into()));
        }

        fn asked(&self) -> Vec<String> {
            self.asked.lock().unwrap().clone()
        }

        /// A connection to it, in memory.
        async fn connect(self: &Arc<Self>) -> HttpClient {
            let (near, far) = tokio::io::duplex(64 * 1024);
            let publisher = self.clone();
            let service = hyper::service::service_fn(move |req: hyper::Request<_>| {
                let path = req.uri().to_string();
                publisher
                    .asked
                    .lock()
                    .unwrap()
                    .push(format!("{} {path}", req.method()));
                let (status, body) = publisher
                    .answers
                    .lock()
                    .unwrap()
                    .get(&path)
                    .cloned()
                    .unwrap_or((404, b"{}".to_vec()));
                let mut answer = hyper::Response::new(Full::new(Bytes::from(body)));
                *answer.status_mut() = hyper::StatusCode::from_u16(status).unwrap();
                async { Ok::<_, std::convert::Infallible>(answer) }
            });
            tokio::spawn(
                hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(far), service),
            );
            HttpClient::over(near, "publisher".into()).await.unwrap()
        }
    }

    /// A publisher's access log of ten entries, entry `changed` rewritten if given.
    fn access_log(changed: Option<u8>) -> MemoryTree {
        MemoryTree::new((0..10u8).map(|i| merkle::leaf_hash(&[i, u8::from(changed == Some(i))])))
    }

    /// The employment service's node witnessing the migration agency's log.
    struct World {
        fed: Federation,
        node: Node,
        syncer: Syncer,
        publisher: Arc<Publisher>,
        client: HttpClient,
    }

    async fn world() -> World {
        let fed = Federation::new();
        let node = fed.node(&fed.employment);
        let syncer = node.syncer(SyncSettings::default(), QuarantineCaps::NONE);
        let publisher = Arc::new(Publisher::default());
        let client = publisher.connect().await;
        World {
            fed,
            node,
            syncer,
            publisher,
            client,
        }
    }

    /// A history of the publisher's log: its events (sequence `n` at leaf `n - 1`) and their
    /// Merkle tree.
    struct History {
        events: Vec<SignedEvent>,
        tree: MemoryTree,
    }

    impl World {
        fn from(&self) -> &MemberId {
            &self.fed.migration
        }

        /// A history of `n` events, none of them in any other history.
        fn history(&self, n: u64) -> History {
            let events: Vec<SignedEvent> = (1..=n)
                .map(|s| {
                    let data = returnee(&format!("2150319901{s:04}"), &[&self.fed.employment]);
                    self.fed
                        .signed(self.from(), s, EventType::ReturneeRecord, data)
                })
                .collect();
            let tree = MemoryTree::new(events.iter().map(|e| crate::log::event_leaf(e.bytes())));
            History { events, tree }
        }

        /// The publisher's signed checkpoint of the first `size` entries of `history`.
        fn checkpoint(&self, history: &History, size: u64) -> Vec<u8> {
            self.checkpoint_by(history, size, self.from())
        }

        /// The same, signed by `signer`'s key.
        fn checkpoint_by(&self, history: &History, size: u64, signer: &MemberId) -> Vec<u8> {
            let empty = TreeHead {
                size: 0,
                root: merkle::empty_root(),
            };
            let c = Checkpoint {
                origin: checkpoint::log_origin(self.from()),
                size,
                root: merkle::root(&history.tree, size).unwrap(),
                quarantine: empty,
                access: empty,
            };
            checkpoint::sign(&c, self.fed.key(signer))
        }

        /// The publisher's signed checkpoint of the first `size` entries of `history`, its
        /// access log the first `access_size` entries of `access`.
        fn checkpoint_with_access(
            &self,
            history: &History,
            size: u64,
            access: &MemoryTree,
            access_size: u64,
        ) -> Vec<u8> {
            let c = Checkpoint {
                origin: checkpoint::log_origin(self.from()),
                size,
                root: merkle::root(&history.tree, size).unwrap(),
                quarantine: TreeHead {
                    size: 0,
                    root: merkle::empty_root(),
                },
                access: TreeHead {
                    size: access_size,
                    root: merkle::root(access, access_size).unwrap(),
                },
            };
            checkpoint::sign(&c, self.fed.key(self.from()))
        }

        /// The publisher serves the proof that `access`'s size `to` extends its size `from`,
        /// saying it proves `log` (a node from before side-log proofs says nothing).
        fn serve_access_consistency(
            &self,
            access: &MemoryTree,
            from: u64,
            to: u64,
            log: Option<&str>,
        ) {
            let proof = merkle::consistency_proof(access, from, to).unwrap();
            let proof: Vec<String> = proof.iter().map(checkpoint::encode_hash).collect();
            let mut answer = json!({"from": from, "to": to, "proof": proof});
            if let Some(log) = log {
                answer["log"] = log.into();
            }
            self.publisher.answer(
                &format!("/proof/consistency?log=jol-access&from={from}&to={to}"),
                200,
                answer.to_string(),
            );
        }

        /// The publisher serves its checkpoint of the first `size` entries of `history` as its
        /// latest; returns it.
        fn serve_checkpoint(&self, history: &History, size: u64) -> Vec<u8> {
            let checkpoint = self.checkpoint(history, size);
            self.serve(&checkpoint);
            checkpoint
        }

        /// The publisher serves `checkpoint` as its latest.
        fn serve(&self, checkpoint: &[u8]) {
            self.publisher.answer("/log/checkpoint", 200, checkpoint);
        }

        /// This node's witness co-signed `checkpoint` (what `add-checkpoint` records).
        fn witnessed(&self, checkpoint: &[u8]) {
            let key = Meta::Witnessed(self.from().clone());
            self.node.store.set_meta(&key, checkpoint).unwrap();
        }

        /// The publisher serves the proof that `history`'s size `to` extends its size `from`.
        fn serve_consistency(&self, history: &History, from: u64, to: u64) {
            let proof = merkle::consistency_proof(&history.tree, from, to).unwrap();
            let proof: Vec<String> = proof.iter().map(checkpoint::encode_hash).collect();
            self.publisher.answer(
                &format!("/proof/consistency?from={from}&to={to}"),
                200,
                json!({"from": from, "to": to, "proof": proof}).to_string(),
            );
        }

        /// The publisher serves where its event of `sequence` sits in `history` of `size`.
        fn serve_inclusion(&self, history: &History, sequence: u64, size: u64) {
            let proof = merkle::inclusion_proof(&history.tree, sequence - 1, size).unwrap();
            let proof: Vec<String> = proof.iter().map(checkpoint::encode_hash).collect();
            self.publisher.answer(
                &format!("/proof/event?sequence={sequence}&size={size}"),
                200,
                json!({"sequence": sequence, "leafIndex": sequence - 1, "treeSize": size,
                    "proof": proof})
                .to_string(),
            );
        }

        /// This node holds `events` as the publisher's feed served them.
        async fn hold(&self, events: &[SignedEvent]) {
            let to = events.len() as u64;
            let cursor = ReceiveCursor::Sequence { after: 0, to };
            let publisher = &self.node.publisher;
            let stored = publisher.receive(self.from().clone(), events.to_vec(), cursor);
            assert_eq!(stored.await.unwrap(), events.len());
        }

        async fn witness(&mut self) -> Result<(), SyncError> {
            let from = self.fed.migration.clone();
            self.syncer.witness(&mut self.client, &from).await
        }

        fn quarantined(&self) -> Vec<Quarantined> {
            let mut all = Budget::unlimited();
            self.node.store.quarantined(0, 100, &mut all).unwrap()
        }

        fn forks(&self) -> u64 {
            self.node.metrics.forks.load(Relaxed)
        }

        fn meta(&self, name: fn(MemberId) -> Meta) -> Option<Vec<u8>> {
            self.node.store.meta(&name(self.from().clone())).unwrap()
        }

        fn asked_for_consistency(&self) -> bool {
            let asked = self.publisher.asked();
            asked.iter().any(|a| a.contains("/proof/consistency"))
        }
    }

    fn json_of(bytes: &[u8]) -> Value {
        serde_json::from_slice(bytes).unwrap()
    }

    fn text(bytes: &[u8]) -> String {
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    #[tokio::test]
    async fn a_checkpoint_consistent_with_the_one_witnessed_passes_with_its_served_events() {
        let mut w = world().await;
        let log = w.history(4);
        w.hold(&log.events[..2]).await;
        let first = w.serve_checkpoint(&log, 2);
        w.serve_inclusion(&log, 1, 2);
        w.serve_inclusion(&log, 2, 2);
        w.witness().await.unwrap();
        assert_eq!(
            w.meta(Meta::InclusionChecked),
            Some(2u64.to_be_bytes().to_vec())
        );
        w.witnessed(&first);
        w.serve_checkpoint(&log, 4);
        w.serve_consistency(&log, 2, 4);
        w.witness().await.unwrap();
        assert!(w.asked_for_consistency());
        assert!(w.quarantined().is_empty());
        assert_eq!(w.forks(), 0);
        let record = w
            .meta(Meta::Witnessed)
            .map(|b| checkpoint::read(&b).unwrap().checkpoint);
        assert_eq!(
            record.map(|c| c.size),
            Some(4),
            "the witness took up what was checked"
        );
        assert!(w.meta(Meta::Cosigned).is_some());
    }

    /// A publisher that never submits its checkpoints to this node still gets its history
    /// checked from one round to the next: what a round checked is the next round's baseline.
    #[tokio::test]
    async fn what_a_round_checked_is_the_baseline_of_the_next_without_any_submission() {
        let mut w = world().await;
        let log = w.history(4);
        w.serve_checkpoint(&log, 2);
        w.witness().await.unwrap();
        let rewritten = w.history(4);
        w.serve_checkpoint(&rewritten, 4);
        w.serve_consistency(&rewritten, 2, 4);
        w.witness().await.unwrap();
        let reasons: Vec<String> = w.quarantined().into_iter().map(|q| q.reason).collect();
        assert_eq!(reasons, ["log-fork"]);
    }

    /// The log's latest checkpoint is smaller than one it signed and this node witnessed: it
    /// rolled back.
    #[tokio::test]
    async fn a_checkpoint_smaller_than_the_one_witnessed_is_a_fork() {
        let mut w = world().await;
        let log = w.history(4);
        w.witnessed(&w.checkpoint(&log, 4));
        w.serve_checkpoint(&log, 2);
        w.witness().await.unwrap();
        let reasons: Vec<String> = w.quarantined().into_iter().map(|q| q.reason).collect();
        assert_eq!(reasons, ["log-fork"]);
        assert!(!w.asked_for_consistency());
    }

    /// A publisher that rewrote its history: its checkpoint does not extend the one this node
    /// witnessed. Both signed notes are kept as evidence, once.
    #[tokio::test]
    async fn two_checkpoints_that_contradict_raise_log_fork_with_both_as_evidence() {
        let mut w = world().await;
        let log = w.history(4);
        let witnessed = w.checkpoint(&log, 2);
        w.witnessed(&witnessed);

        let rewritten = w.history(4);
        let forked = w.serve_checkpoint(&rewritten, 4);
        w.serve_consistency(&rewritten, 2, 4);
        w.witness().await.unwrap();
        let [alarm] = &w.quarantined()[..] else {
            panic!("one alarm")
        };
        assert_eq!(alarm.reason, "log-fork");
        assert_eq!(
            json_of(alarm.body.as_bytes()),
            json!({"previous": text(&witnessed), "new": text(&forked)})
        );
        assert_eq!(w.forks(), 1);
        let alarmed: serde_json::Value =
            serde_json::from_slice(&w.meta(Meta::ForkAlarm).unwrap()).unwrap();
        // The two notes contradict through the proof the log served, not by themselves.
        let kept = &alarmed["failedProof"];
        assert_eq!(kept.as_array().map(Vec::len), Some(1), "{alarmed}");
        assert_eq!(w.meta(Meta::Witnessed), Some(witnessed));

        w.witness().await.unwrap();
        assert_eq!(w.quarantined().len(), 1, "raised once for one checkpoint");
        assert_eq!(w.forks(), 1);
    }

    #[tokio::test]
    async fn a_second_root_for_the_same_size_is_a_fork_without_asking_for_a_proof() {
        let mut w = world().await;
        let log = w.history(2);
        w.witnessed(&w.checkpoint(&log, 2));
        let other = w.history(2);
        w.serve_checkpoint(&other, 2);
        w.witness().await.unwrap();
        let reasons: Vec<String> = w.quarantined().into_iter().map(|q| q.reason).collect();
        assert_eq!(reasons, ["log-fork"]);
        assert!(!w.asked_for_consistency(), "{:?}", w.publisher.asked());
    }

    /// The publisher's feed served this node events its checkpointed log does not hold (it
    /// shows its readers something other than its log): the served event and the checkpoint are
    /// kept as evidence.
    #[tokio::test]
    async fn an_event_served_that_the_checkpointed_log_does_not_hold_is_a_log_split() {
        let mut w = world().await;
        let served = w.history(2);
        w.hold(&served.events).await;
        let log = w.history(2);
        let checkpoint = w.serve_checkpoint(&log, 2);
        w.serve_inclusion(&log, 1, 2);
        w.serve_inclusion(&log, 2, 2);
        w.witness().await.unwrap();
        let [alarm] = &w.quarantined()[..] else {
            panic!("one alarm")
        };
        assert_eq!(alarm.reason, "log-split");
        assert_eq!(
            json_of(alarm.body.as_bytes()),
            json!({"sequence": 1, "event": json_of(served.events[0].bytes()),
                "checkpoint": text(&checkpoint)})
        );
        assert_eq!(w.forks(), 1);
        assert_eq!(w.meta(Meta::InclusionChecked), None);
    }

    /// The publisher's own answer that its log holds no event at a sequence it served is a
    /// split; a 404 that is not its answer (a proxy's, a node's from before the route) is a
    /// failed fetch, retried at the next round.
    #[tokio::test]
    async fn a_served_sequence_the_publisher_says_its_log_lacks_is_a_log_split() {
        let mut w = world().await;
        let log = w.history(2);
        w.hold(&log.events).await;
        w.serve_checkpoint(&log, 2);
        w.serve_inclusion(&log, 1, 2);
        let path = "/proof/event?sequence=2&size=2";
        w.publisher.answer(path, 404, "<html>Not Found</html>");
        let failed = w.witness().await.unwrap_err();
        assert!(matches!(failed, SyncError::ProofFetch(_)), "{failed}");
        assert!(w.quarantined().is_empty());
        let said = crate::net::http::Problem::new(ProblemKind::EventNotInLog, "none");
        let said = serde_json::to_string(&said).unwrap();
        w.publisher.answer(path, 404, said);
        w.witness().await.unwrap();
        let [alarm] = &w.quarantined()[..] else {
            panic!("one alarm")
        };
        assert_eq!(alarm.reason, "log-split");
        assert_eq!(json_of(alarm.body.as_bytes())["sequence"], 2);
    }

    /// Missing evidence is not evidence: a proof the publisher does not give is a failure of
    /// this round (retried at the next), never an alarm.
    #[tokio::test]
    async fn a_proof_that_cannot_be_fetched_is_a_fetch_failure_never_an_alarm() {
        let mut w = world().await;
        let log = w.history(4);
        w.witnessed(&w.checkpoint(&log, 2));
        w.serve_checkpoint(&log, 4);
        for (status, body) in [(500, "{}"), (200, "not json")] {
            w.publisher
                .answer("/proof/consistency?from=2&to=4", status, body);
            let failed = w.witness().await.unwrap_err();
            assert!(matches!(failed, SyncError::ProofFetch(_)), "{failed}");
            assert_eq!(failed.kind(), "proof-fetch");
        }
        w.hold(&log.events[..3]).await;
        w.serve_consistency(&log, 2, 4);
        w.publisher
            .answer("/proof/event?sequence=1&size=4", 503, "{}");
        let failed = w.witness().await.unwrap_err();
        assert!(matches!(failed, SyncError::ProofFetch(_)), "{failed}");

        assert!(w.quarantined().is_empty());
        assert_eq!(w.forks(), 0);
        assert_eq!(w.meta(Meta::ForkAlarm), None);
        assert_eq!(w.meta(Meta::InclusionChecked), None);
    }

    /// An event after the checkpoint's size is not covered yet: checked at a later round,
    /// against a later checkpoint; what was checked is not asked again.
    #[tokio::test]
    async fn an_event_the_checkpoint_does_not_cover_yet_is_checked_at_a_later_round() {
        let mut w = world().await;
        let log = w.history(2);
        w.hold(&log.events).await;
        w.serve_checkpoint(&log, 1);
        w.serve_inclusion(&log, 1, 1);
        w.publisher
            .answer("/proof/event?sequence=2&size=1", 409, "{}");
        w.witness().await.unwrap();
        assert_eq!(
            w.meta(Meta::InclusionChecked),
            Some(1u64.to_be_bytes().to_vec())
        );

        w.serve_checkpoint(&log, 2);
        w.serve_consistency(&log, 1, 2);
        w.serve_inclusion(&log, 2, 2);
        w.witness().await.unwrap();
        assert_eq!(
            w.meta(Meta::InclusionChecked),
            Some(2u64.to_be_bytes().to_vec())
        );
        assert!(!w
            .publisher
            .asked()
            .iter()
            .any(|a| a.contains("/proof/event?sequence=1&size=2")));
        assert!(w.quarantined().is_empty());
    }

    /// A note for the publisher's origin signed by another member's key is not the publisher's.
    #[tokio::test]
    async fn a_checkpoint_not_signed_by_the_publisher_is_quarantined_not_taken() {
        let mut w = world().await;
        let log = w.history(2);
        let forged = w.checkpoint_by(&log, 2, &w.fed.employment.clone());
        w.serve(&forged);
        w.witness().await.unwrap();
        let reasons: Vec<String> = w.quarantined().into_iter().map(|q| q.reason).collect();
        assert_eq!(reasons, ["checkpoint-invalid"]);
        assert_eq!(w.forks(), 0);
    }

    /// A witness record that does not read leaves this log's checks waiting (counted) and its
    /// sync going, instead of taking the next note on first use or ending the session.
    #[tokio::test]
    async fn a_damaged_record_leaves_the_check_waiting_not_the_sync() {
        let mut w = world().await;
        let log = w.history(4);
        w.witnessed(b"not a note");
        w.serve_checkpoint(&log, 4);
        w.witness().await.unwrap();
        assert!(w.quarantined().is_empty());
        assert_eq!(w.meta(Meta::Witnessed), Some(b"not a note".to_vec()));
        let unchecked = w.node.metrics.sync_snapshot()[w.from()].witness_unchecked;
        assert_eq!(unchecked, 1);
    }

    /// A publisher serving the same junk as its checkpoint round after round fills the
    /// quarantine with one record of it, not one a round; other junk is another record; a
    /// checkpoint larger than any note is not read whole.
    #[tokio::test]
    async fn a_bad_checkpoint_served_again_is_kept_once_and_a_huge_one_is_not_read() {
        let mut w = world().await;
        w.serve(b"<html>a proxy's error page</html>");
        w.witness().await.unwrap();
        w.witness().await.unwrap();
        assert_eq!(w.quarantined().len(), 1);
        w.serve(b"another page");
        w.witness().await.unwrap();
        assert_eq!(w.quarantined().len(), 2);

        // Larger than any note: not read whole, an unchecked round (the session goes on).
        w.serve(&vec![b'a'; MAX_NOTE_BYTES + 1]);
        w.witness().await.unwrap();
        assert_eq!(
            w.node.metrics.sync_snapshot()[w.from()].witness_unchecked,
            1
        );
        assert_eq!(w.quarantined().len(), 2);
        assert_eq!(w.forks(), 0);
    }

    /// `add-checkpoint` proves the event log alone: the split-view check proves that each side
    /// log grew from the one it proved before. Grown honestly it passes; rewritten and then
    /// grown, with the publisher's own proof failing, it is a fork; a publisher from before
    /// side-log proofs (an answer for its event log) leaves the side logs unchecked, no alarm.
    #[tokio::test]
    async fn a_side_log_rewritten_then_grown_is_a_fork_the_split_view_check_proves() {
        let mut w = world().await;
        let log = w.history(2);
        let access = access_log(None);
        let first = w.checkpoint_with_access(&log, 2, &access, 4);
        w.serve(&first);
        w.witness().await.unwrap();
        assert_eq!(w.meta(Meta::SidesProven), Some(first));

        let grown = w.checkpoint_with_access(&log, 2, &access, 8);
        w.serve(&grown);
        w.serve_access_consistency(&access, 4, 8, Some("jol-access"));
        w.witness().await.unwrap();
        assert_eq!(w.meta(Meta::SidesProven), Some(grown.clone()));
        assert_eq!(w.forks(), 0);

        // Entry 5 rewritten, then the log grown to 10: the publisher's proof from 8 cannot hold.
        let rewritten = access_log(Some(5));
        let forked = w.checkpoint_with_access(&log, 2, &rewritten, 10);
        w.serve(&forked);
        w.serve_access_consistency(&rewritten, 8, 10, None);
        w.witness().await.unwrap();
        assert_eq!(w.forks(), 0, "an answer for another log is no evidence");
        let status = &w.node.metrics.sync_snapshot()[w.from()];
        assert_eq!(
            (status.side_logs_proven, status.side_logs_unchecked),
            (1, 1)
        );
        assert_eq!(w.meta(Meta::SidesProven), Some(grown.clone()));
        w.serve_access_consistency(&rewritten, 8, 10, Some("jol-access"));
        w.witness().await.unwrap();
        assert_eq!(w.forks(), 1);
        let alarm = w.quarantined().pop().unwrap();
        assert_eq!(alarm.reason, "log-fork");
        assert_eq!(w.meta(Meta::SidesProven), Some(grown));
    }

    /// A side head the witness co-signed through add-checkpoint between two checks is proven
    /// too: a log that rewrote its access log behind it and grew it again before the next
    /// check is caught, though the rewrite leaves the heads the check saw itself consistent.
    #[tokio::test]
    async fn a_rewrite_behind_a_head_cosigned_between_two_checks_is_a_fork() {
        let mut w = world().await;
        let log = w.history(2);
        let (access, rewritten) = (access_log(None), access_log(Some(5)));
        let first = w.checkpoint_with_access(&log, 2, &access, 4);
        w.serve(&first);
        w.witness().await.unwrap();

        // The log submits its next checkpoint (access log 4 → 8): co-signed, not yet proven.
        let honest = w.checkpoint_with_access(&log, 2, &access, 8);
        let body = super::super::witness_server::request_body(2, &[], &honest);
        w.syncer.witness_submission(w.from(), &body).unwrap();

        // Then entry 5 is rewritten and the log grown to 10: from the 4 the check saw, the
        // rewritten log is consistent; from the 8 the witness co-signed, it is not.
        let forked = w.checkpoint_with_access(&log, 2, &rewritten, 10);
        w.serve(&forked);
        w.serve_access_consistency(&access, 4, 8, Some("jol-access"));
        w.serve_access_consistency(&rewritten, 4, 10, Some("jol-access"));
        w.serve_access_consistency(&rewritten, 8, 10, Some("jol-access"));
        w.witness().await.unwrap();
        assert_eq!(w.forks(), 1);
        let alarm = w.quarantined().pop().unwrap();
        assert_eq!(alarm.reason, "log-fork");
        let evidence: Value = serde_json::from_str(&alarm.body).unwrap();
        assert_eq!(evidence["previous"], String::from_utf8(honest).unwrap());
        assert_eq!(evidence["new"], String::from_utf8(forked).unwrap());
    }

    /// Before any check, the first checkpoint the witness co-signed, or the record it held
    /// before side-log checks began, is where the chain starts: a rewrite behind it is found.
    #[tokio::test]
    async fn a_rewrite_behind_what_was_witnessed_before_the_first_check_is_a_fork() {
        for upgraded in [false, true] {
            let mut w = world().await;
            let log = w.history(2);
            let (access, rewritten) = (access_log(None), access_log(Some(5)));
            let honest = w.checkpoint_with_access(&log, 2, &access, 8);
            if upgraded {
                // Recorded by a witness from before side-log checks: nothing is pending.
                w.witnessed(&honest);
            } else {
                let body = super::super::witness_server::request_body(0, &[], &honest);
                w.syncer.witness_submission(w.from(), &body).unwrap();
            }
            let forked = w.checkpoint_with_access(&log, 2, &rewritten, 10);
            w.serve(&forked);
            w.serve_access_consistency(&rewritten, 8, 10, Some("jol-access"));
            w.witness().await.unwrap();
            assert_eq!(w.forks(), 1, "upgraded: {upgraded}");
        }
    }

    /// The checkpoints waiting for a check are bounded: the oldest go first.
    #[tokio::test]
    async fn the_checkpoints_waiting_for_a_side_log_check_are_bounded() {
        let w = world().await;
        for i in 0..MAX_SIDES_PENDING + 8 {
            keep_pending(&w.node.store, w.from(), format!("note {i}").as_bytes()).unwrap();
        }
        let pending = sides_pending(&w.node.store, w.from()).unwrap();
        assert_eq!(pending.len(), MAX_SIDES_PENDING);
        assert_eq!(pending[0], b"note 8");
    }

    /// An inclusion proof the publisher answers malformed (no leaf index, a hash that is not
    /// one, more hashes than any proof holds, not JSON) is a fetch failure, never a split view.
    #[tokio::test]
    async fn a_malformed_proof_answer_is_a_fetch_failure_not_a_split() {
        let mut w = world().await;
        let log = w.history(1);
        w.hold(&log.events).await;
        w.serve_checkpoint(&log, 1);
        let hash = checkpoint::encode_hash(&[7; 32]);
        let many: Vec<&str> = vec![hash.as_str(); MAX_PROOF_HASHES + 1];
        for answer in [
            json!({"sequence": 1, "treeSize": 1, "proof": []}).to_string(),
            json!({"leafIndex": 0, "proof": ["not a hash"]}).to_string(),
            json!({"leafIndex": 0, "proof": many}).to_string(),
            "[0,0,0]".to_string(),
        ] {
            w.publisher
                .answer("/proof/event?sequence=1&size=1", 200, answer.clone());
            let failed = w.witness().await;
            assert!(
                matches!(failed, Err(SyncError::ProofFetch(_))),
                "{answer}: {failed:?}"
            );
            assert_eq!(w.forks(), 0, "{answer}");
            assert!(w.quarantined().is_empty(), "{answer}");
        }
        w.serve_inclusion(&log, 1, 1);
        w.witness().await.unwrap();
        assert_eq!(w.forks(), 0);
    }
}
