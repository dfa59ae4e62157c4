//! What only the writer runs, and the role of a replica.
//!
//! A node on an embedded store is always the writer. A node on a PostgreSQL store is one of the
//! member's replicas: it serves reads and the feed at once, contends for the writer lease
//! ([`crate::store::postgres::lease`]), and starts the writer's parts when it gets it: the writer
//! thread (its counters read from the store then), the subscriptions, checkpoint signing, the
//! projector and the webhook. Until then its heads follow the writer's commits, which PostgreSQL
//! notifies, so long-polls on a standby wake like on the writer. A replica that loses the lease
//! stops (the binary exits with an error; a supervisor restarts it as a standby): its writes are
//! already refused by the fence, and stopping is simpler to reason about than stepping down.

use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::NodeError;
use crate::event::identifiers::{KeyName, MemberId};
use crate::federation::sync::{Subscription, Syncer};
use crate::net::metrics::Metrics;
use crate::store::postgres::lease::{self, Role};
use crate::store::Store;
use crate::trust::manifest::Trust;
use crate::write::{Publisher, Signer};

/// Everything the writer's parts need, kept until the role is taken.
pub(super) struct WriterParts {
    pub store: Store,
    pub member: MemberId,
    pub(crate) key: ed25519_dalek::SigningKey,
    pub(crate) kid: KeyName,
    /// The largest signed event the writer makes.
    pub(crate) max_event_bytes: usize,
    pub metrics: Arc<Metrics>,
    pub(crate) trust: Option<Arc<Trust>>,
    pub(crate) syncer: Option<Arc<Syncer>>,
    pub subscriptions: Vec<Subscription>,
    pub(crate) checkpoint_every: Duration,
    /// The outside witnesses each new checkpoint is submitted to (`[[witnesses]]`), besides
    /// the federation's members.
    pub(crate) witnesses: Vec<crate::federation::cosigning::Target>,
    /// The subscriptions' settings (the witnesses' backoff follows them).
    pub(crate) sync: crate::federation::sync::SyncSettings,
    /// How often the retention sweep runs (`[sync] retention_sweep_secs`).
    pub(crate) retention_every: Duration,
    /// How often the monthly KPI report is looked at (`[sync] kpi_report_secs`).
    pub(crate) kpi_report_every: Duration,
    pub(crate) webhook: Option<crate::node::webhook::Webhook>,
    /// The credential issuer, when the node issues credentials.
    pub(crate) issuer: Option<Arc<crate::credentials::issuer::Issuer>>,
    pub(crate) stopped: watch::Receiver<bool>,
}

/// The writer thread and tasks once started (later than the node, on a standby replica).
#[derive(Default, Clone)]
pub(super) struct Started {
    pub(crate) writer: Arc<Mutex<Option<thread::JoinHandle<()>>>>,
    pub(crate) tasks: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl WriterParts {
    /// Start the writer thread and the writer-only tasks.
    pub(super) fn start(self, publisher: &Publisher, started: &Started) -> Result<(), NodeError> {
        let signer = Signer {
            member: self.member.clone(),
            kid: self.kid.clone(),
            key: self.key.clone(),
            max_event_bytes: self.max_event_bytes,
        };
        let writer = publisher.promote(
            self.store.clone(),
            signer,
            self.metrics.clone(),
            self.trust.clone(),
        )?;
        let heads = publisher.heads();
        let mut tasks = Vec::new();
        if let Some(syncer) = &self.syncer {
            for sub in &self.subscriptions {
                tasks.push(tokio::spawn(
                    syncer.clone().run(sub.clone(), self.stopped.clone()),
                ));
            }
        }
        tasks.push(tokio::spawn(crate::log::checkpoint::run(
            self.store.clone(),
            self.member.clone(),
            self.key.clone(),
            heads.position.clone(),
            self.checkpoint_every,
            self.stopped.clone(),
        )));
        tasks.push(tokio::spawn(crate::federation::cosigning::run(
            self.store.clone(),
            self.syncer.clone(),
            self.witnesses.clone(),
            self.checkpoint_every,
            self.sync,
            self.stopped.clone(),
        )));
        tasks.push(tokio::spawn(crate::registry::projector::run(
            self.store.clone(),
            heads.position.clone(),
            heads.recent.clone(),
            self.stopped.clone(),
        )));
        let employment_service = self
            .trust
            .as_ref()
            .and_then(|t| {
                t.held()
                    .policy(crate::event::schema::EventType::EmploymentStatus)
                    .and_then(|p| p.publishers.first().cloned())
            })
            .unwrap_or_else(|| self.member.clone());
        tasks.push(tokio::spawn(crate::registry::monthly::run(
            self.store.clone(),
            crate::registry::monthly::Reporter {
                member: self.member.clone(),
                kid: self.kid.clone(),
                key: self.key.clone(),
                employment_service,
            },
            self.kpi_report_every,
            self.stopped.clone(),
        )));
        if let Some(trust) = &self.trust {
            tasks.push(tokio::spawn(crate::registry::retention::run(
                self.store.clone(),
                trust.clone(),
                publisher.clone(),
                self.member.clone(),
                self.retention_every,
                self.stopped.clone(),
            )));
        }
        if let Some(issuer) = self.issuer {
            tasks.push(tokio::spawn(crate::credentials::issuer::run(
                issuer,
                publisher.clone(),
                heads.position.clone(),
                self.stopped.clone(),
            )));
        }
        if let Some(hook) = self.webhook {
            tasks.push(tokio::spawn(crate::node::webhook::run(
                hook,
                self.store.clone(),
                self.metrics.clone(),
                heads.position.clone(),
                self.stopped.clone(),
            )));
        }
        if let Ok(mut w) = started.writer.lock() {
            *w = Some(writer);
        }
        if let Ok(mut t) = started.tasks.lock() {
            t.extend(tasks);
        }
        Ok(())
    }
}

/// Run a replica's role: follow the writer's commits while standing by, start the writer's
/// parts on taking the lease, and report on `deposed` when it is lost.
pub(super) fn run_replica(
    pg: Arc<crate::store::postgres::PgKv>,
    holder: String,
    parts: WriterParts,
    publisher: Publisher,
    started: Started,
    deposed: watch::Sender<Option<String>>,
) -> watch::Receiver<Role> {
    follow_commits(
        &pg,
        &parts.store,
        &parts.member,
        &parts.trust,
        &publisher,
        &parts.stopped,
    );
    let role = lease::contend(&pg, holder, Some(publisher.heads().recent.clone()));
    let mut watching = role.clone();
    let mut stopped = parts.stopped.clone();
    tokio::spawn(async move {
        let mut parts = Some(parts);
        loop {
            let now = *watching.borrow_and_update();
            match now {
                Role::Writer(epoch) => {
                    if let Some(p) = parts.take() {
                        match p.start(&publisher, &started) {
                            Ok(()) => tracing::info!(epoch, "writer started on this replica"),
                            Err(e) => {
                                let _ = deposed.send(Some(format!("cannot start the writer: {e}")));
                                return;
                            }
                        }
                    }
                }
                Role::Deposed => {
                    // The new writer may erase what this replica's window holds parsed: until
                    // the node stops, its feed reads the store.
                    publisher.heads().recent.clear();
                    let _ = deposed.send(Some(
                        "another replica took the writer lease from this one".into(),
                    ));
                    return;
                }
                Role::Contending | Role::Standby => {}
            }
            tokio::select! {
                changed = watching.changed() => if changed.is_err() { return },
                _ = stopped.changed() => return,
            }
        }
    });
    role
}

/// On every commit another replica makes (and after reconnecting), move the heads to what the
/// store holds and take up a manifest the writer adopted. Stops with the node.
fn follow_commits(
    pg: &crate::store::postgres::PgKv,
    store: &Store,
    member: &MemberId,
    trust: &Option<Arc<Trust>>,
    publisher: &Publisher,
    stopped: &watch::Receiver<bool>,
) {
    let (store, member, trust) = (store.clone(), member.clone(), trust.clone());
    let (publisher, stopped) = (publisher.clone(), stopped.clone());
    pg.listen(move || {
        if *stopped.borrow() {
            return false;
        }
        let heads = (store.last_sequence(&member), store.last_position());
        if let (Ok(sequence), Ok(position)) = heads {
            publisher.announce(sequence, position);
        }
        if let (Some(t), Ok(Some(bytes))) = (&trust, store.meta(&crate::store::Meta::Manifest)) {
            if let Err(e) = t.offer(&bytes) {
                tracing::debug!(error = %e, "the stored manifest is not taken up");
            }
        }
        true
    });
}

/// Wait (up to `limit`) for the replica's first answer from the lease, and when it is the
/// writer, for the writer to be running: a lone replica serves as the writer from its first
/// request on.
pub(super) async fn settle(role: &watch::Receiver<Role>, publisher: &Publisher, limit: Duration) {
    let deadline = tokio::time::Instant::now() + limit;
    while tokio::time::Instant::now() < deadline {
        match *role.borrow() {
            Role::Contending => {}
            Role::Writer(_) if !publisher.is_writer() => {}
            _ => return,
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
