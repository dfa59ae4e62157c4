//! The publish path: validate, assign the sequence, sign, append, group-commit, acknowledge.
//!
//! Validation runs in the caller's task, in parallel. Everything that must be serial (sequence
//! and position numbers, the idempotency check, the append) runs on one writer thread that takes
//! every job waiting in its queue, appends them in one atomic batch and covers them all with a
//! single flush. A caller hears back only after that flush: nothing is acknowledged that a crash
//! could take back, and many events share one fsync.

use std::collections::HashMap;
use std::sync::Arc;
use std::thread;

use ed25519_dalek::SigningKey;
use serde_json::Value;
use sha2::{Digest, Sha256};
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use crate::event::{Event, SignedEvent};
use crate::identifiers::{KeyName, MemberId};
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

struct Job {
    items: Vec<Ready>,
    reply: oneshot::Sender<Vec<Outcome>>,
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
}

impl Publisher {
    /// Start the writer thread over `store`.
    pub fn start(
        store: Store,
        schemas: Arc<Schemas>,
        signer: Signer,
    ) -> Result<(Publisher, thread::JoinHandle<()>), StoreError> {
        let (queue, jobs) = mpsc::channel(QUEUE_DEPTH);
        let writer = Writer::new(store, signer)?;
        let handle = thread::Builder::new()
            .name("jol-writer".into())
            .spawn(move || writer.run(jobs))
            .map_err(|e| StoreError::Io {
                op: "start writer",
                source: sled::Error::Io(e),
            })?;
        Ok((Publisher { schemas, queue }, handle))
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
        if self.queue.send(Job { items, reply }).await.is_err() {
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
    next_sequence: u64,
    next_position: u64,
}

impl Writer {
    fn new(store: Store, signer: Signer) -> Result<Writer, StoreError> {
        let mut w = Writer {
            store,
            signer,
            next_sequence: 0,
            next_position: 0,
        };
        w.reload_counters()?;
        Ok(w)
    }

    fn reload_counters(&mut self) -> Result<(), StoreError> {
        self.next_sequence = self.store.last_sequence(&self.signer.member)? + 1;
        self.next_position = self.store.last_position()? + 1;
        Ok(())
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

    /// One group commit: stage every item of every job, apply, flush, then answer.
    fn commit(&mut self, round: Vec<Job>) {
        let mut batch = WriteBatch::default();
        let mut seen: HashMap<String, ([u8; 32], Published)> = HashMap::new();
        let mut answers: Vec<(oneshot::Sender<Vec<Outcome>>, Vec<Outcome>)> = Vec::new();
        let (first_sequence, first_position) = (self.next_sequence, self.next_position);
        for job in round {
            let outcomes = job
                .items
                .into_iter()
                .map(|item| self.stage(item, &mut batch, &mut seen))
                .collect();
            answers.push((job.reply, outcomes));
        }
        let durable = if batch.is_empty() {
            Ok(())
        } else {
            self.store.apply(batch).and_then(|()| self.store.flush())
        };
        if let Err(e) = durable {
            tracing::error!(error = %e, "group commit failed; its events are not acknowledged");
            let reason = e.to_string();
            for (_, outcomes) in &mut answers {
                for o in outcomes.iter_mut() {
                    if matches!(o, Ok(p) if !p.replayed) {
                        *o = Err(PublishError::Storage(reason.clone()));
                    }
                }
            }
            if self.reload_counters().is_err() {
                (self.next_sequence, self.next_position) = (first_sequence, first_position);
            }
        }
        for (reply, outcomes) in answers {
            let _ = reply.send(outcomes);
        }
    }

    fn stage(
        &mut self,
        item: Ready,
        batch: &mut WriteBatch,
        seen: &mut HashMap<String, ([u8; 32], Published)>,
    ) -> Outcome {
        if let Some((key, digest)) = &item.idempotency {
            if let Some(earlier) = self.earlier_result(key, digest, seen)? {
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
        batch.append(Append {
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
            seen.insert(key, (digest, published.clone()));
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
            let (p, writer) = Publisher::start(store, schemas.clone(), signer()).unwrap();
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
        let (p, _writer) = Publisher::start(store, schemas, signer()).unwrap();
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
        let (p, _w) = Publisher::start(store, Schemas::load().unwrap(), signer()).unwrap();
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
