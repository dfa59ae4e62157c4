//! The handle callers publish and receive through. Validation runs here, in the caller's task
//! and in parallel; everything that must be serial is queued to the writer thread
//! ([`super::writer`]), and the caller is answered only after the flush that covers its events.

use std::sync::Arc;
use std::thread;

use ed25519_dalek::SigningKey;
use serde_json::Value;
use sha2::{Digest, Sha256};
use tokio::sync::{mpsc, oneshot, watch};
use uuid::Uuid;

use super::erasure::{ErasureOrder, ErasureOrdered};
use super::writer::Writer;
use crate::event::identifiers::{KeyName, MemberId};
use crate::event::schema::{EventType, FieldError, Schemas};
use crate::event::SignedEvent;
use crate::net::metrics::Metrics;
use crate::store::recent::{self, Recent};
use crate::store::{Store, StoreError};
use crate::trust::manifest::Trust;

/// How many jobs may wait for the writer before callers wait to enqueue.
const QUEUE_DEPTH: usize = 16 * 1024;

/// What an agency asks to publish.
#[derive(Debug, Clone)]
pub struct Draft {
    /// The event's type.
    pub event_type: EventType,
    /// The event's data, valid against the type's schema.
    pub data: Value,
    /// Makes a retry return the first result instead of publishing twice.
    pub idempotency_key: Option<String>,
}

/// An acknowledged, durable event.
#[derive(Debug, Clone)]
pub struct Published {
    pub(crate) id: Uuid,
    pub(crate) source: MemberId,
    /// The event's type.
    pub event_type: EventType,
    pub(crate) sequence: u64,
    pub(crate) position: u64,
    /// The signed event as stored and served.
    pub jws: Arc<[u8]>,
    /// True when this answers a retry with an idempotency key already used.
    pub(crate) replayed: bool,
}

/// Why an event was not published.
#[derive(Debug, Clone, thiserror::Error)]
pub enum PublishError {
    /// The data does not satisfy the schema: each failing field.
    #[error("the data does not satisfy the schema of the type ({} field(s))", .0.len())]
    Invalid(Vec<FieldError>),
    /// The idempotency key was used for another request.
    #[error("the idempotency key was used before for a different request")]
    IdempotencyConflict,
    /// The correction may not supersede the event it names.
    #[error(transparent)]
    Supersedes(#[from] crate::event::SupersedeError),
    /// The consent is dated after its event.
    #[error("the consent is dated after the event that carries it")]
    ConsentAfterEvent,
    /// The signed event would be larger than the node publishes (`[limits] max_event_bytes`).
    #[error("the signed event would be {size} bytes; this node publishes events of at most {limit} bytes")]
    TooLarge {
        /// The signed event's size.
        size: usize,
        /// The most the node publishes.
        limit: usize,
    },
    /// The store failed.
    #[error("storage is unavailable: {0}")]
    Storage(Arc<StoreError>),
    /// A received page does not start where its publisher's stored cursor stands: it was handed
    /// over while the page before it was being written, and that write failed.
    #[error(
        "the page follows sequence {expected}, but the cursor stored for its publisher is {held}"
    )]
    CursorMoved {
        /// The cursor the page follows.
        expected: u64,
        /// The cursor stored.
        held: u64,
    },
    /// This replica is a standby: another replica of the member holds the writer lease.
    #[error("this replica is a standby; another replica of this member is the writer")]
    NotWriter,
    /// An erasure found none of the person's events this node published still to erase.
    #[error("this node holds no event it published about the person that is still to be erased")]
    NothingToErase,
    /// The node is shutting down.
    #[error("the node is shutting down")]
    Stopped,
}

pub(super) struct Ready {
    pub(super) event_type: EventType,
    pub(super) data: Value,
    pub(super) idempotency: Option<(String, [u8; 32])>,
    /// The event made and signed ahead of its turn, at the sequence it was expected to get
    /// (`data` then moved into it); the writer uses it only if that sequence is still next.
    pub(super) ahead: Option<SignedEvent>,
}

impl Ready {
    /// The draft's data, from the event signed ahead if one was.
    pub(super) fn take_data(&mut self) -> Value {
        match self.ahead.take() {
            Some(signed) => signed.into_data(),
            None => std::mem::take(&mut self.data),
        }
    }
}

/// What publishing one draft came to.
pub type Outcome = Result<Published, PublishError>;

pub(super) enum Job {
    Publish {
        items: Vec<Ready>,
        reply: oneshot::Sender<Vec<Outcome>>,
    },
    Receive {
        source: MemberId,
        events: Vec<SignedEvent>,
        cursor: ReceiveCursor,
        reply: oneshot::Sender<Result<usize, PublishError>>,
    },
    Erase {
        order: ErasureOrder,
        reply: oneshot::Sender<Result<ErasureOrdered, PublishError>>,
    },
}

/// Which cursor a received page advances.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReceiveCursor {
    /// The publisher's feed: the page follows sequence `after` and reaches `to`. A page whose
    /// `after` is not the cursor the writer holds is refused ([`PublishError::CursorMoved`]), so a
    /// page handed over while the one before it was written never lands after that one failed.
    Sequence {
        /// The sequence the page follows.
        after: u64,
        /// The last sequence it reaches.
        to: u64,
    },
    /// The publisher's release log for this node, up to this release number.
    Release(u64),
}

/// Received events handed to the writer, their write still to be answered.
pub struct Receiving(oneshot::Receiver<Result<usize, PublishError>>);

impl Receiving {
    /// How many events were stored, once the write that holds them is durable.
    pub(crate) async fn stored(self) -> Result<usize, PublishError> {
        self.0.await.unwrap_or(Err(PublishError::Stopped))
    }
}

/// The latest own sequence and the latest log position, announced after each commit, and the
/// events of the latest commits, parsed.
#[derive(Clone)]
pub struct Heads {
    pub(crate) own_sequence: watch::Receiver<u64>,
    pub(crate) position: watch::Receiver<u64>,
    pub(crate) recent: Arc<Recent>,
}

/// Where the heads are announced: by the writer after each commit, or, on a standby replica,
/// from what the writer's commits notify ([`Publisher::announce`]).
pub(super) struct HeadSenders {
    pub(super) own_sequence: watch::Sender<u64>,
    pub(super) position: watch::Sender<u64>,
    pub(super) recent: Arc<Recent>,
}

impl HeadSenders {
    /// Move the heads forward to these values (never back: announcements may cross).
    pub(super) fn advance(&self, own_sequence: u64, position: u64) {
        for (sender, value) in [
            (&self.own_sequence, own_sequence),
            (&self.position, position),
        ] {
            sender.send_if_modified(|v| {
                let newer = value > *v;
                if newer {
                    *v = value;
                }
                newer
            });
        }
    }
}

/// Who signs: the node's member id, its key and the key's name, and the largest signed event it
/// makes (`[limits] max_event_bytes`).
pub struct Signer {
    /// The node's member id, the events' source.
    pub member: MemberId,
    /// The key's name.
    pub kid: KeyName,
    /// The signing key.
    pub key: SigningKey,
    /// The largest signed event it makes.
    pub max_event_bytes: usize,
}

/// The handle callers publish through; cheap to clone. A standby's publisher has no writer
/// until [`Publisher::promote`] starts one (once: a replica that loses the role stops).
#[derive(Clone)]
pub struct Publisher {
    schemas: Arc<Schemas>,
    queue: Arc<std::sync::OnceLock<mpsc::Sender<Job>>>,
    heads: Heads,
    senders: Arc<HeadSenders>,
}

impl Publisher {
    /// Start the writer thread over `store`.
    pub fn start(
        store: Store,
        schemas: Arc<Schemas>,
        signer: Signer,
        metrics: Arc<Metrics>,
        trust: Option<Arc<Trust>>,
    ) -> Result<(Publisher, thread::JoinHandle<()>), StoreError> {
        let publisher = Publisher::standby(schemas);
        let writer = publisher.promote(store, signer, metrics, trust)?;
        Ok((publisher, writer))
    }

    /// A publisher without a writer (a standby replica): publishing answers
    /// [`PublishError::NotWriter`]; the heads follow [`Publisher::announce`].
    pub(crate) fn standby(schemas: Arc<Schemas>) -> Publisher {
        let (own_sequence, own_rx) = watch::channel(0);
        let (position, position_rx) = watch::channel(0);
        let recent = Arc::new(Recent::new(recent::DEFAULT_CAPACITY));
        Publisher {
            schemas,
            queue: Arc::default(),
            heads: Heads {
                own_sequence: own_rx,
                position: position_rx,
                recent: recent.clone(),
            },
            senders: Arc::new(HeadSenders {
                own_sequence,
                position,
                recent,
            }),
        }
    }

    /// Start the writer thread over `store` (its counters read from the store now); every clone
    /// of this publisher publishes through it from here on.
    pub(crate) fn promote(
        &self,
        store: Store,
        signer: Signer,
        metrics: Arc<Metrics>,
        trust: Option<Arc<Trust>>,
    ) -> Result<thread::JoinHandle<()>, StoreError> {
        let (queue, jobs) = mpsc::channel(QUEUE_DEPTH);
        let writer = Writer::new(
            store,
            signer,
            self.schemas.clone(),
            metrics,
            trust,
            self.senders.clone(),
        )?;
        if self.queue.set(queue).is_err() {
            return Err(StoreError::Corrupt("a second writer for one publisher"));
        }
        thread::Builder::new()
            .name("jol-writer".into())
            .spawn(move || writer.run(jobs))
            .map_err(|e| StoreError::Io {
                op: "start writer",
                source: crate::store::kv::KvError::Io(e),
            })
    }

    /// Whether this publisher has a writer.
    pub(crate) fn is_writer(&self) -> bool {
        self.queue.get().is_some()
    }

    /// Move the heads forward to what another replica's writer committed (a standby's feed
    /// long-polls wake on this).
    pub(crate) fn announce(&self, own_sequence: u64, position: u64) {
        self.senders.advance(own_sequence, position);
    }

    /// Watch the heads (for long-polling feeds).
    pub(crate) fn heads(&self) -> Heads {
        self.heads.clone()
    }

    fn queue(&self) -> Result<&mpsc::Sender<Job>, PublishError> {
        self.queue.get().ok_or(PublishError::NotWriter)
    }

    /// Store events received from `source` (already verified) and advance its cursor to
    /// `cursor`, in one durable write. Returns how many events were stored.
    pub async fn receive(
        &self,
        source: MemberId,
        events: Vec<SignedEvent>,
        cursor: ReceiveCursor,
    ) -> Result<usize, PublishError> {
        self.hand_over(source, events, cursor).await?.stored().await
    }

    /// Hand received events to the writer as [`Publisher::receive`] does, without waiting for
    /// them to be stored: the answer comes from [`Receiving::stored`].
    pub(crate) async fn hand_over(
        &self,
        source: MemberId,
        events: Vec<SignedEvent>,
        cursor: ReceiveCursor,
    ) -> Result<Receiving, PublishError> {
        let (reply, answer) = oneshot::channel();
        let job = Job::Receive {
            source,
            events,
            cursor,
            reply,
        };
        if self.queue()?.send(job).await.is_err() {
            return Err(PublishError::Stopped);
        }
        Ok(Receiving(answer))
    }

    /// Erase the person's events this node published, as `order` names them, and publish the
    /// signed order to every holder; returns once the erasure and the order are durable.
    pub async fn erase(&self, order: ErasureOrder) -> Result<ErasureOrdered, PublishError> {
        let (reply, answer) = oneshot::channel();
        if self
            .queue()?
            .send(Job::Erase { order, reply })
            .await
            .is_err()
        {
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
        let queue = match self.queue() {
            Ok(queue) => queue,
            Err(e) => return items.iter().map(|_| Err(e.clone())).collect(),
        };
        let (reply, answer) = oneshot::channel();
        if queue.send(Job::Publish { items, reply }).await.is_err() {
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
        ahead: None,
    }
}
