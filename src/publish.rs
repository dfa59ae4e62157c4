//! The write path: publish (validate, assign the sequence, sign) and receive (store verified
//! events with the sync cursor), both group-committed by one writer thread.
//!
//! Validation runs in the caller's task, in parallel. Everything that must be serial (sequence
//! and position numbers, the idempotency check, consent state, the append) runs on one writer
//! thread that takes every job waiting in its queue, appends them in one atomic batch and covers
//! them all with a single flush. A caller hears back only after that flush: nothing is
//! acknowledged (no 201, no cursor advance) that a crash could take back, and many events share
//! one fsync. After each commit the writer announces the new heads, which wakes long-polls.

use std::collections::HashMap;
use std::sync::Arc;
use std::thread;

use ed25519_dalek::SigningKey;
use serde_json::Value;
use sha2::{Digest, Sha256};
use tokio::sync::{mpsc, oneshot, watch};
use uuid::Uuid;

use crate::consent::{self, ConsentState};
use crate::event::{Event, SignedEvent};
use crate::identifiers::{KeyName, MemberId};
use crate::merkle::{self, Frontier};
use crate::metrics::Metrics;
use crate::schema::{EventType, FieldError, Schemas};
use crate::store::{Append, Store, StoreError, WriteBatch};

/// How many queued jobs one group commit takes at most.
const MAX_JOBS_PER_COMMIT: usize = 4096;
/// How many jobs may wait for the writer before callers wait to enqueue.
const QUEUE_DEPTH: usize = 16 * 1024;

/// What an agency asks to publish.
#[derive(Debug, Clone)]
pub struct Draft {
    pub event_type: EventType,
    pub data: Value,
    pub idempotency_key: Option<String>,
}

/// An acknowledged, durable event.
#[derive(Debug, Clone)]
pub struct Published {
    pub id: Uuid,
    pub source: MemberId,
    pub event_type: EventType,
    pub sequence: u64,
    pub position: u64,
    pub jws: Arc<[u8]>,
    /// True when this answers a retry with an idempotency key already used.
    pub replayed: bool,
}

/// Why an event was not published.
#[derive(Debug, Clone, thiserror::Error)]
pub enum PublishError {
    #[error("the data does not satisfy the schema of the type ({} field(s))", .0.len())]
    Invalid(Vec<FieldError>),
    #[error("the idempotency key was used before for a different request")]
    IdempotencyConflict,
    #[error("storage is unavailable: {0}")]
    Storage(String),
    #[error("the node is shutting down")]
    Stopped,
}

struct Ready {
    event_type: EventType,
    data: Value,
    idempotency: Option<(String, [u8; 32])>,
}

type Outcome = Result<Published, PublishError>;

enum Job {
    Publish {
        items: Vec<Ready>,
        reply: oneshot::Sender<Vec<Outcome>>,
    },
    Receive {
        source: MemberId,
        events: Vec<SignedEvent>,
        cursor: u64,
        reply: oneshot::Sender<Result<usize, PublishError>>,
    },
}

/// The latest own sequence and the latest log position, announced after each commit.
#[derive(Clone)]
pub struct Heads {
    pub own_sequence: watch::Receiver<u64>,
    pub position: watch::Receiver<u64>,
}

/// Who signs: the node's member id, its key and the key's name.
pub struct Signer {
    pub member: MemberId,
    pub kid: KeyName,
    pub key: SigningKey,
}

/// The handle callers publish through; cheap to clone.
#[derive(Clone)]
pub struct Publisher {
    schemas: Arc<Schemas>,
    queue: mpsc::Sender<Job>,
    heads: Heads,
}

impl Publisher {
    /// Start the writer thread over `store`.
    pub fn start(
        store: Store,
        schemas: Arc<Schemas>,
        signer: Signer,
        metrics: Arc<Metrics>,
    ) -> Result<(Publisher, thread::JoinHandle<()>), StoreError> {
        let (queue, jobs) = mpsc::channel(QUEUE_DEPTH);
        let writer = Writer::new(store, signer, metrics)?;
        let heads = Heads {
            own_sequence: writer.own_head.subscribe(),
            position: writer.position_head.subscribe(),
        };
        let handle = thread::Builder::new()
            .name("jol-writer".into())
            .spawn(move || writer.run(jobs))
            .map_err(|e| StoreError::Io {
                op: "start writer",
                source: crate::store::kv::KvError::Io(e),
            })?;
        Ok((
            Publisher {
                schemas,
                queue,
                heads,
            },
            handle,
        ))
    }

    /// Watch the heads (for long-polling feeds).
    pub fn heads(&self) -> Heads {
        self.heads.clone()
    }

    /// Store events received from `source` (already verified) and advance its cursor to
    /// `cursor`, in one durable write. Returns how many events were stored.
    pub async fn receive(
        &self,
        source: MemberId,
        events: Vec<SignedEvent>,
        cursor: u64,
    ) -> Result<usize, PublishError> {
        let (reply, answer) = oneshot::channel();
        let job = Job::Receive {
            source,
            events,
            cursor,
            reply,
        };
        if self.queue.send(job).await.is_err() {
            return Err(PublishError::Stopped);
        }
        answer.await.unwrap_or(Err(PublishError::Stopped))
    }

    /// Publish one event; returns once it is durable.
    pub async fn publish(&self, draft: Draft) -> Outcome {
        let mut outcomes = self.publish_batch(vec![draft]).await;
        outcomes.pop().unwrap_or(Err(PublishError::Stopped))
    }

    /// Publish many events: all are validated first, the valid ones are appended in one group
    /// commit. One outcome per draft, in order.
    pub async fn publish_batch(&self, drafts: Vec<Draft>) -> Vec<Outcome> {
        let mut outcomes: Vec<Option<Outcome>> = Vec::with_capacity(drafts.len());
        let mut ready = Vec::new();
        for draft in drafts {
            match self.schemas.validate(draft.event_type, &draft.data) {
                Ok(()) => {
                    outcomes.push(None);
                    ready.push(prepare(draft));
                }
                Err(errors) => outcomes.push(Some(Err(PublishError::Invalid(errors)))),
            }
        }
        let mut written = self.submit(ready).await.into_iter();
        outcomes
            .into_iter()
            .map(|o| o.unwrap_or_else(|| written.next().unwrap_or(Err(PublishError::Stopped))))
            .collect()
    }

    async fn submit(&self, items: Vec<Ready>) -> Vec<Outcome> {
        if items.is_empty() {
            return Vec::new();
        }
        let (reply, answer) = oneshot::channel();
        if self
            .queue
            .send(Job::Publish { items, reply })
            .await
            .is_err()
        {
            return Vec::new();
        }
        answer.await.unwrap_or_default()
    }
}

/// Digest of what a request asks for, to tell a retry from a different request under one key.
fn prepare(draft: Draft) -> Ready {
    let idempotency = draft.idempotency_key.map(|k| {
        let mut h = Sha256::new();
        h.update(draft.event_type.as_str());
        h.update([0]);
        h.update(serde_json::to_vec(&draft.data).unwrap_or_default());
        (k, h.finalize().into())
    });
    Ready {
        event_type: draft.event_type,
        data: draft.data,
        idempotency,
    }
}

/// The single writer: owns the counters, signs, appends, flushes.
struct Writer {
    store: Store,
    signer: Signer,
    metrics: Arc<Metrics>,
    /// The Merkle tree over the log; leaf `position - 1` is the event at `position`.
    tree: Frontier,
    next_sequence: u64,
    next_position: u64,
    own_head: watch::Sender<u64>,
    position_head: watch::Sender<u64>,
    /// A commit failed: the store is reopened (and the counters reloaded) before the next one.
    broken: bool,
}

/// What one group commit has staged so far.
#[derive(Default)]
struct Round {
    batch: WriteBatch,
    idempotency: HashMap<String, ([u8; 32], Published)>,
    consents: HashMap<String, ConsentState>,
    ids: std::collections::HashSet<Uuid>,
    published: u64,
    received: u64,
}

type Reply = Box<dyn FnOnce(Option<&str>) + Send>;

impl Writer {
    fn new(store: Store, signer: Signer, metrics: Arc<Metrics>) -> Result<Writer, StoreError> {
        let mut w = Writer {
            store,
            signer,
            metrics,
            tree: Frontier::default(),
            next_sequence: 0,
            next_position: 0,
            own_head: watch::channel(0).0,
            position_head: watch::channel(0).0,
            broken: false,
        };
        w.reload_counters()?;
        w.announce();
        Ok(w)
    }

    fn announce(&self) {
        self.own_head.send_replace(self.next_sequence - 1);
        self.position_head.send_replace(self.next_position - 1);
    }

    fn reload_counters(&mut self) -> Result<(), StoreError> {
        self.next_sequence = self.store.last_sequence(&self.signer.member)? + 1;
        self.next_position = self.store.last_position()? + 1;
        self.tree = Frontier::load(&self.store, self.next_position - 1)?;
        Ok(())
    }

    /// Stage the Merkle leaf of the event appended at the next position (same atomic write).
    fn stage_leaf(&mut self, jws: &[u8], batch: &mut WriteBatch) {
        let entry = crate::jws::compact(jws).unwrap_or_else(|| jws.to_vec());
        for (level, index, hash) in self.tree.append(merkle::leaf_hash(&entry)) {
            batch.set_subtree(level, index, &hash);
        }
    }

    fn run(mut self, mut jobs: mpsc::Receiver<Job>) {
        while let Some(first) = jobs.blocking_recv() {
            let mut round = vec![first];
            while round.len() < MAX_JOBS_PER_COMMIT {
                match jobs.try_recv() {
                    Ok(job) => round.push(job),
                    Err(_) => break,
                }
            }
            self.commit(round);
        }
        if let Err(e) = self.store.flush() {
            tracing::error!(error = %e, "final flush failed");
        }
    }

    /// After a failed commit, reopen the store and reload the counters from what it holds.
    fn repair(&mut self) {
        match self.store.reopen().and_then(|()| self.reload_counters()) {
            Ok(()) => {
                self.broken = false;
                tracing::warn!("store reopened after a failed write; publishing resumes");
            }
            Err(e) => {
                tracing::error!(error = %e, "store still failing");
                self.metrics.store_failing(e.to_string());
            }
        }
    }

    /// One group commit: stage every job, apply, flush, then answer and announce.
    fn commit(&mut self, jobs: Vec<Job>) {
        if self.broken {
            self.repair();
        }
        let mut round = Round::default();
        let (first_sequence, first_position) = (self.next_sequence, self.next_position);
        let replies: Vec<Reply> = jobs
            .into_iter()
            .map(|job| self.stage_job(job, &mut round))
            .collect();
        let wrote = !round.batch.is_empty();
        let durable = if !wrote {
            Ok(())
        } else {
            let batch = std::mem::take(&mut round.batch);
            self.store.apply(batch).and_then(|()| self.store.flush())
        };
        let failure = durable.err().map(|e| {
            tracing::error!(error = %e, "group commit failed; its events are not acknowledged");
            self.metrics.store_failed(e.to_string());
            (self.next_sequence, self.next_position) = (first_sequence, first_position);
            self.broken = true;
            self.repair();
            e.to_string()
        });
        if failure.is_none() {
            use std::sync::atomic::Ordering::Relaxed;
            if wrote {
                self.metrics.store_recovered();
            }
            self.metrics.published.fetch_add(round.published, Relaxed);
            self.metrics.received.fetch_add(round.received, Relaxed);
            self.announce();
        }
        for reply in replies {
            reply(failure.as_deref());
        }
    }

    /// Stage one job; returns how to answer it once the commit's fate is known.
    fn stage_job(&mut self, job: Job, round: &mut Round) -> Reply {
        match job {
            Job::Publish { items, reply } => {
                let outcomes: Vec<Outcome> = items
                    .into_iter()
                    .map(|item| self.stage(item, round))
                    .collect();
                Box::new(move |failure| {
                    let outcomes = outcomes
                        .into_iter()
                        .map(|o| match (o, failure) {
                            (Ok(p), Some(reason)) if !p.replayed => {
                                Err(PublishError::Storage(reason.to_string()))
                            }
                            (o, _) => o,
                        })
                        .collect();
                    let _ = reply.send(outcomes);
                })
            }
            Job::Receive {
                source,
                events,
                cursor,
                reply,
            } => {
                let stored = self.stage_received(&source, events, cursor, round);
                Box::new(move |failure| {
                    let answer = match failure {
                        Some(reason) => Err(PublishError::Storage(reason.to_string())),
                        None => Ok(stored),
                    };
                    let _ = reply.send(answer);
                })
            }
        }
    }

    fn stage_received(
        &mut self,
        source: &MemberId,
        events: Vec<SignedEvent>,
        cursor: u64,
        round: &mut Round,
    ) -> usize {
        let mut stored = 0;
        for signed in events {
            let e = signed.event();
            if !round.ids.insert(e.id) {
                continue;
            }
            round.batch.append(Append {
                position: self.next_position,
                source,
                sequence: signed.sequence(),
                id: e.id,
                jws: signed.bytes(),
                idempotency: None,
            });
            self.stage_leaf(signed.bytes(), &mut round.batch);
            self.stage_consent(e, round);
            self.next_position += 1;
            round.received += 1;
            stored += 1;
        }
        round.batch.set_cursor(source, cursor);
        stored
    }

    /// If `event` carries a consent newer than the one held, stage the new state.
    fn stage_consent(&self, event: &Event, round: &mut Round) {
        let (Some(c), Some(pin)) = (consent::carried(event), consent::person_pin(&event.data))
        else {
            return;
        };
        let held = match round.consents.get(pin) {
            Some(s) => Some(s.clone()),
            None => self
                .store
                .consent(pin)
                .ok()
                .flatten()
                .and_then(|b| serde_json::from_slice(&b).ok()),
        };
        if let Some(state) = consent::merge(held, c) {
            round
                .batch
                .set_consent(pin, &serde_json::to_vec(&state).unwrap_or_default());
            round.consents.insert(pin.to_string(), state);
        }
    }

    fn stage(&mut self, item: Ready, round: &mut Round) -> Outcome {
        if let Some((key, digest)) = &item.idempotency {
            if let Some(earlier) = self.earlier_result(key, digest, &round.idempotency)? {
                return Ok(earlier);
            }
        }
        let event = Event::new(
            self.signer.member.clone(),
            item.event_type,
            self.next_sequence,
            item.data,
        );
        let signed = event.sign(&self.signer.key, &self.signer.kid);
        self.stage_consent(&event, round);
        round.ids.insert(event.id);
        round.published += 1;
        self.stage_leaf(signed.bytes(), &mut round.batch);
        round.batch.append(Append {
            position: self.next_position,
            source: &self.signer.member,
            sequence: self.next_sequence,
            id: event.id,
            jws: signed.bytes(),
            idempotency: item.idempotency.as_ref().map(|(k, d)| (k.as_str(), *d)),
        });
        let published = Published {
            id: event.id,
            source: event.source,
            event_type: event.event_type,
            sequence: self.next_sequence,
            position: self.next_position,
            jws: signed.bytes().into(),
            replayed: false,
        };
        if let Some((key, digest)) = item.idempotency {
            round.idempotency.insert(key, (digest, published.clone()));
        }
        self.next_sequence += 1;
        self.next_position += 1;
        Ok(published)
    }

    /// The first result of an earlier request with this idempotency key, this round or stored.
    fn earlier_result(
        &self,
        key: &str,
        digest: &[u8; 32],
        seen: &HashMap<String, ([u8; 32], Published)>,
    ) -> Result<Option<Published>, PublishError> {
        let storage = |e: StoreError| PublishError::Storage(e.to_string());
        let (earlier_digest, published) = if let Some((d, p)) = seen.get(key) {
            (*d, p.clone())
        } else if let Some(record) = self.store.idempotency(key).map_err(storage)? {
            let bytes = self
                .store
                .get(record.position)
                .map_err(storage)?
                .ok_or_else(|| storage(StoreError::Corrupt("idempotency target")))?;
            let (signed, _) = SignedEvent::parse(&bytes)
                .map_err(|_| storage(StoreError::Corrupt("stored event")))?;
            (record.digest, published_from(&signed, record.position))
        } else {
            return Ok(None);
        };
        if &earlier_digest != digest {
            return Err(PublishError::IdempotencyConflict);
        }
        Ok(Some(Published {
            replayed: true,
            ..published
        }))
    }
}

fn published_from(signed: &SignedEvent, position: u64) -> Published {
    let e = signed.event();
    Published {
        id: e.id,
        source: e.source.clone(),
        event_type: e.event_type,
        sequence: signed.sequence(),
        position,
        jws: signed.bytes().into(),
        replayed: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys;
    use serde_json::json;

    fn signer() -> Signer {
        let member: MemberId = "central-server/GOV/70000002/employment".parse().unwrap();
        Signer {
            kid: KeyName::new(member.clone(), "sign-1").unwrap(),
            member,
            key: keys::generate(),
        }
    }

    fn draft(pin: &str, key: Option<&str>) -> Draft {
        Draft {
            event_type: EventType::EmploymentStatus,
            data: json!({"event": "STATUS_OBSERVED", "eventDate": "2024-03-01",
                "purpose": "EMPLOYMENT_SERVICES", "legalBasis": "Law on Employment Promotion",
                "person": {"pin": pin}, "labourForceStatus": "UNEMPLOYED"}),
            idempotency_key: key.map(String::from),
        }
    }

    #[tokio::test]
    async fn sequences_are_contiguous_across_restarts_and_retries_replay() {
        let dir = tempfile::tempdir().unwrap();
        let schemas = Schemas::load().unwrap();
        let first_id;
        {
            let store = Store::open(dir.path()).unwrap();
            let (p, writer) =
                Publisher::start(store, schemas.clone(), signer(), Arc::default()).unwrap();
            let a = p
                .publish(draft("21503199012345", Some("k1")))
                .await
                .unwrap();
            let b = p.publish(draft("21503199012346", None)).await.unwrap();
            assert_eq!((a.sequence, b.sequence), (1, 2));
            first_id = a.id;
            drop(p);
            writer.join().unwrap();
        }
        let store = Store::open(dir.path()).unwrap();
        let (p, _writer) = Publisher::start(store, schemas, signer(), Arc::default()).unwrap();
        let retry = p
            .publish(draft("21503199012345", Some("k1")))
            .await
            .unwrap();
        assert!(retry.replayed);
        assert_eq!((retry.id, retry.sequence), (first_id, 1));
        let conflict = p.publish(draft("21503199012399", Some("k1"))).await;
        assert!(matches!(conflict, Err(PublishError::IdempotencyConflict)));
        let c = p.publish(draft("21503199012347", None)).await.unwrap();
        assert_eq!((c.sequence, c.position), (3, 3));
    }

    #[tokio::test]
    async fn a_batch_publishes_the_valid_and_reports_the_invalid() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let (p, _w) =
            Publisher::start(store, Schemas::load().unwrap(), signer(), Arc::default()).unwrap();
        let out = p
            .publish_batch(vec![
                draft("21503199012345", Some("same")),
                draft("not-a-pin", None),
                draft("21503199012345", Some("same")),
            ])
            .await;
        assert_eq!(out.len(), 3);
        let first = out[0].as_ref().unwrap();
        assert!(matches!(&out[1], Err(PublishError::Invalid(e)) if e[0].pointer == "/person/pin"));
        let third = out[2].as_ref().unwrap();
        assert!(third.replayed && third.id == first.id);
    }
}
