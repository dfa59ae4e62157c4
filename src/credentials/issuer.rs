//! The issuer: follows the node's own log and issues a credential for each event that earns one
//! (`credential::earned_by`), and revokes one on request.
//!
//! Issuing, for an event at position P (once the projector has folded P in, so the person's view
//! holds the course and the name the event does not repeat): the credential is signed with the
//! next status list entry; a `credential-issued` event naming its id and the event it attests
//! is published (idempotency key `credential/<id>`, the id derived from the attested event, so
//! a retry after a crash names the same credential and publishes nothing twice); then the
//! credential, the grown status list and the cursor past P are stored in one write. The log thus
//! says that a credential was issued, never what it says. Revoking flips its status bit, stores
//! the revocation on the credential and re-signs the status list, once `CREDENTIAL_REVOKED` is
//! published (the reason stays here: the event carries the attested event's legal basis).
//! Only the member's writer runs the issuer task; changes to the status list hold one lock.

use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use time::OffsetDateTime;
use tokio::sync::watch;
use uuid::Uuid;

use super::credential::{self, Entry, Held, Issue, Revocation, Revoked};
use super::key::{IssuerKey, IssuerKeys, Jwks};
use super::status::StatusList;
use super::CredentialsConfig;
use crate::event::cloudevent::SignedEvent;
use crate::event::identifiers::MemberId;
use crate::event::schema::EventType;
use crate::registry::view::PersonView;
use crate::store::{Meta, Store, StoreError, WriteBatch};
use crate::write::{Draft, PublishError, Publisher};

/// Events looked at per round.
const PAGE: usize = 200;

/// Why issuing or revoking did not happen.
#[derive(Debug, thiserror::Error)]
pub enum IssuerError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The writer refused or failed the credential's event.
    #[error("publishing the credential event: {0}")]
    Publish(#[from] PublishError),
    /// A stored event does not parse.
    #[error("the log holds an event that does not parse: {0}")]
    Event(String),
    /// No such credential here.
    #[error("no credential with that id was issued by this node")]
    Unknown,
    /// Revoked before.
    #[error("the credential was revoked before")]
    AlreadyRevoked,
    /// The status list says an entry chosen as free was given before, to another credential.
    #[error("status list entry {0} was given to another credential before: the list and the issuer's records disagree (restore the store from a backup)")]
    StatusEntryTaken(u64),
}

/// Why the public listener could not give the status list now.
#[derive(Debug, thiserror::Error)]
pub enum StatusReadError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// As many requests as may wait for a read already do.
    #[error("too many status list requests wait for a read")]
    Busy,
    /// The read did not end within [`STATUS_READ_WAIT`] (it goes on).
    #[error("the status list read takes longer than {STATUS_READ_WAIT:?}")]
    TooSlow,
    /// The read's task ended without an answer.
    #[error("the status list read ended early")]
    Ended,
}

/// A credential's copy and whose it is (the holder's PIN).
type CopyOf = (String, Held);

/// How long a public request for the status list waits for its read (the read goes on).
const STATUS_READ_WAIT: Duration = Duration::from_secs(10);

/// How many public requests for the status list may wait for a read at once.
const STATUS_WAITING: usize = 256;

/// The node's credential issuer: its settings, its key, and the status list token it serves.
pub struct Issuer {
    /// `[credentials]`.
    pub config: CredentialsConfig,
    /// This node: only its own events earn credentials here.
    member: MemberId,
    key: IssuerKey,
    /// The keys verifiers are given.
    jwks: Jwks,
    store: Store,
    /// Held while the status list changes (issuing and revoking both change it).
    list: Mutex<()>,
    /// The status list token, and the stored list it was signed from (signed again when the
    /// stored list moves: this replica's own change, or the writer's seen by a standby or by a
    /// replica just promoted).
    token: RwLock<(Vec<u8>, String)>,
    /// The public listener's last read of the list: when it began, and the token it gave.
    status_read: tokio::sync::Mutex<Option<(Instant, String)>>,
    /// Public requests for the list waiting for a read, at most [`STATUS_WAITING`].
    status_waiting: Arc<tokio::sync::Semaphore>,
}

impl Issuer {
    /// The issuer of `config`, signing with `keys`' signing key, its status list read from
    /// `store`.
    pub fn open(
        config: CredentialsConfig,
        member: MemberId,
        keys: IssuerKeys,
        store: Store,
    ) -> Result<Issuer, StoreError> {
        let list = StatusList::load(&store)?;
        let issuer = Issuer {
            config,
            member,
            key: keys.signing,
            jwks: keys.jwks,
            store,
            list: Mutex::new(()),
            token: RwLock::new((Vec::new(), String::new())),
            status_read: tokio::sync::Mutex::new(None),
            status_waiting: Arc::new(tokio::sync::Semaphore::new(STATUS_WAITING)),
        };
        issuer.resign(&list);
        Ok(issuer)
    }

    /// The issuer metadata (`/.well-known/jwt-vc-issuer`): its URL and its JWKS (the signing
    /// key and the retired ones, whose credentials still verify).
    pub fn metadata(&self) -> Value {
        json!({"issuer": self.config.issuer, "jwks": self.jwks.json()})
    }

    /// [`Issuer::status_token`] for the public listener, where anyone may ask at any rate: the
    /// store is read off the runtime's threads, one read at a time, and every request that
    /// waited for a read that began after it arrived takes that read's token. A flood of
    /// requests costs one read in flight, not a thread each (on PostgreSQL a read holds its
    /// thread until the database answers), and no answer is older than its request. The read
    /// runs in a task of its own, holding the turn until it ends: a client that goes away does
    /// not let the next read start beside it. A client waits at most [`STATUS_READ_WAIT`].
    pub async fn status_token_for_anyone(self: &Arc<Self>) -> Result<String, StatusReadError> {
        let arrived = Instant::now();
        // Bounded: while a read hangs (a database that does not answer), requests beyond the
        // bound are refused at once rather than each leaving a task behind.
        let Ok(waiting) = Arc::clone(&self.status_waiting).try_acquire_owned() else {
            return Err(StatusReadError::Busy);
        };
        let issuer = Arc::clone(self);
        let read = tokio::spawn(async move {
            let _waiting = waiting;
            issuer.status_token_read_after(arrived).await
        });
        match tokio::time::timeout(STATUS_READ_WAIT, read).await {
            Ok(Ok(answer)) => answer,
            Ok(Err(_)) => Err(StatusReadError::Ended),
            Err(_) => Err(StatusReadError::TooSlow),
        }
    }

    /// The token of a read of the list begun at or after `arrived`: the last one, or a new one.
    async fn status_token_read_after(
        self: Arc<Self>,
        arrived: Instant,
    ) -> Result<String, StatusReadError> {
        let mut last_read = self.status_read.lock().await;
        if let Some((read_at, token)) = last_read.as_ref() {
            if *read_at >= arrived {
                return Ok(token.clone());
            }
        }
        let read_at = Instant::now();
        let issuer = Arc::clone(&self);
        let token = tokio::task::spawn_blocking(move || issuer.status_token())
            .await
            .map_err(|_| StatusReadError::Ended)??;
        *last_read = Some((read_at, token.clone()));
        Ok(token)
    }

    /// The signed status list token of the list as stored now: the one signed last, unless the
    /// stored list moved since (a revocation or an issue by whichever replica is the writer).
    pub fn status_token(&self) -> Result<String, StoreError> {
        let list = StatusList::load(&self.store)?;
        let stored = list.to_store();
        if let Ok(t) = self.token.read() {
            if t.0 == stored {
                return Ok(t.1.clone());
            }
        }
        Ok(self.resign(&list))
    }

    fn resign(&self, list: &StatusList) -> String {
        let token = list.token(
            &self.key,
            &self.config.issuer,
            &self.config.status_uri(),
            OffsetDateTime::now_utc().unix_timestamp(),
        );
        if let Ok(mut t) = self.token.write() {
            *t = (list.to_store(), token.clone());
        }
        token
    }

    /// Issue the credential `event` earns, if it earns one and none was issued for it: returns
    /// it, once its event is published and it is stored with the cursor past `position`.
    async fn issue(
        &self,
        publisher: &Publisher,
        position: u64,
        event: &SignedEvent,
    ) -> Result<Option<Held>, IssuerError> {
        let event = event.event();
        if let Some(revoked) = revocation_of(event) {
            crate::cores::blocking(|| self.finish_revocation(&revoked, position, event.time))?;
            return self.pass(position);
        }
        if let Some(corrected) = event.supersedes() {
            self.revoke_corrected(publisher, &corrected).await?;
        }
        let id = credential::id_for(event);
        let pin = match event.pin() {
            Some(pin) if credential::earned_by(event) => pin,
            _ => return self.pass(position),
        };
        if self.store.credential_holder(&id)?.is_some() {
            return self.pass(position);
        }
        let view = self.view_of(pin)?;
        let Some(held_view) = &view else {
            // The node holds nothing of the person any more (the event that earns the
            // credential was erased): nobody to hand a credential to.
            return self.pass(position);
        };
        let event_id = event.id.to_string();
        if (held_view.events.iter()).any(|e| e.id == event_id && e.superseded) {
            // Corrected before the issuer came to it: what it said no longer holds.
            return self.pass(position);
        }
        // Only this task takes entries, so the one chosen is still free when it is stored.
        let status_idx = StatusList::load(&self.store)?.choose();
        let (vct, status_uri) = (self.config.vct(), self.config.status_uri());
        let issue = Issue {
            event,
            view: view.as_ref(),
            issuer: &self.config.issuer,
            vct: &vct,
            status_uri: &status_uri,
            status_idx,
            now: OffsetDateTime::now_utc(),
        };
        let Some(held) = issue.sign(&self.key) else {
            return self.pass(position);
        };
        let data = credential_event("CREDENTIAL_ISSUED", &held.entry(), held.issued_at);
        publish(&self.store, publisher, data, issue_key(&held.id)).await?;
        crate::cores::blocking(|| self.keep_issued(pin, &held, position))?;
        Ok(Some(held))
    }

    /// Store the copy of a credential just published, its entry ([`credential::Entry`]), the
    /// status list grown by it and the cursor past `position`, durably, and sign the list
    /// again. A person forgotten while the credential was being published gets no copy (it is
    /// how a credential reaches its holder, so it is never handed out) and the entry is set
    /// revoked: the published event stays, and nothing it names may be taken for valid.
    fn keep_issued(&self, pin: &str, held: &Held, position: u64) -> Result<(), IssuerError> {
        let _guard = self.list.lock();
        let mut list = StatusList::load(&self.store)?;
        if !list.take(held.status_idx) {
            // Taken before: by this credential (its entry names it), or the list and the
            // entries disagree, and two credentials would share a bit.
            let ours = self
                .store
                .credential_entry::<Entry>(&held.id)?
                .is_some_and(|e| e.status_idx == held.status_idx);
            if !ours {
                return Err(IssuerError::StatusEntryTaken(held.status_idx));
            }
        }
        self.write_copy_if(
            pin,
            held,
            // Under the lock an erasure finishes under: not for a person forgotten meanwhile,
            // nor for an event erased meanwhile (whose copies the erasure deleted already).
            |store| Ok(self.view_of(pin)?.is_some() && !attested_erased(store, held)?),
            |kept, batch| {
                let mut entry = held.entry();
                if !kept {
                    list.revoke(held.status_idx);
                    entry.revoked_at = Some(held.issued_at);
                }
                batch.set_credential_entry(&held.id, &entry);
                batch.set_credential_state(&list.to_store(), Some(position));
            },
        )?;
        self.resign(&list);
        Ok(())
    }

    /// Write the credential copy `held` of `pin` when `keep` says so, with what `rest` stages
    /// knowing whether it does, holding the lock over a person's state
    /// ([`crate::store::PersonStates`], which an erasure that forgets the person holds too) from
    /// the question to the write; then make it durable.
    fn write_copy_if(
        &self,
        pin: &str,
        held: &Held,
        keep: impl FnOnce(&Store) -> Result<bool, StoreError>,
        rest: impl FnOnce(bool, &mut WriteBatch),
    ) -> Result<(), StoreError> {
        {
            let _held = self.store.person_states().hold();
            let mut batch = WriteBatch::default();
            let kept = keep(&self.store)?;
            if kept {
                batch.set_credential(pin, &held.id, held);
            }
            rest(kept, &mut batch);
            self.store.apply_other(batch)?;
        }
        self.store.flush()
    }

    /// What the node holds of the person `pin` names: their view, as any pending erasure will
    /// leave it (none for a PIN that does not parse).
    fn view_of(&self, pin: &str) -> Result<Option<PersonView>, StoreError> {
        match pin.parse() {
            Ok(pin) => crate::registry::projector::person(&self.store, &pin),
            Err(_) => Ok(None),
        }
    }

    /// Move the cursor past `position`, which earns no (new) credential.
    fn pass(&self, position: u64) -> Result<Option<Held>, IssuerError> {
        self.store
            .set_meta_lazy(&Meta::CredentialCursor, &position.to_be_bytes())?;
        Ok(None)
    }

    /// A correction superseded the event `corrected`: the credential it earned, if any, says
    /// what no longer holds, and is revoked (once; a retry after a stop finds it revoked).
    async fn revoke_corrected(
        &self,
        publisher: &Publisher,
        corrected: &Uuid,
    ) -> Result<(), IssuerError> {
        let id = credential::id_of(self.member.as_str(), corrected);
        let reason = "the event it attests was corrected";
        match self.revoke(publisher, id, reason).await {
            Ok(_) => {
                tracing::info!(credential = %id, "a credential revoked: its event was corrected");
                Ok(())
            }
            Err(IssuerError::Unknown | IssuerError::AlreadyRevoked) => Ok(()),
            // Refused for good (not a storage failure, a stop or a standby's turn): retrying
            // would stall every credential after it; the operator revokes it by the route.
            Err(IssuerError::Publish(e)) if !transient(&e) => {
                tracing::error!(credential = %id, error = %e, "a corrected event's credential could not be revoked; revoke it through POST /api/v1/credentials/{id}/revocation");
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// Revoke credential `id` for `reason`: the revocation published, then its status bit set,
    /// the list re-signed and the revocation stored with its entry and (while the node holds
    /// the person) its copy. A credential whose copy an erasure deleted is revoked by its entry
    /// alone: the holder's credential still names its bit.
    pub async fn revoke(
        &self,
        publisher: &Publisher,
        id: Uuid,
        reason: &str,
    ) -> Result<Revoked, IssuerError> {
        let (mut entry, copy) = self.known(&id)?.ok_or(IssuerError::Unknown)?;
        if entry.revoked_at.is_some() {
            return Err(IssuerError::AlreadyRevoked);
        }
        let revocation = Revocation {
            at: OffsetDateTime::now_utc(),
            reason: reason.to_string(),
        };
        entry.revoked_at = Some(revocation.at);
        // Published first: a retry after a failure below publishes nothing twice (the same
        // idempotency key) and stores the revocation then.
        let data = credential_event("CREDENTIAL_REVOKED", &entry, revocation.at);
        publish(&self.store, publisher, data, revoke_key(&id)).await?;
        let copy = copy.map(|(pin, mut held)| {
            held.revoked = Some(revocation.clone());
            (pin, held)
        });
        crate::cores::blocking(|| {
            self.keep_revoked(&entry, copy.as_ref().map(|(p, h)| (p.as_str(), h)))
        })?;
        Ok(Revoked {
            id,
            revoked: revocation,
        })
    }

    /// What this node knows of credential `id`: its entry (the copy's while it keeps one, else
    /// the one kept apart, which outlives an erasure), and the copy with whose it is.
    fn known(&self, id: &Uuid) -> Result<Option<(Entry, Option<CopyOf>)>, StoreError> {
        let copy = match self.store.credential_holder(id)? {
            Some(pin) => self
                .store
                .credential::<Held>(&pin, id)?
                .map(|held| (pin, held)),
            None => None,
        };
        let entry = match &copy {
            Some((_, held)) => Some(held.entry()),
            None => self.store.credential_entry::<Entry>(id)?,
        };
        Ok(entry.map(|entry| (entry, copy)))
    }

    /// A revocation this issuer published, met again in its log: its status bit is set if it
    /// is not (the node stopped after publishing it and before storing it, and nobody
    /// retried). The operator's reason was not kept with it; the copy says so.
    fn finish_revocation(
        &self,
        id: &Uuid,
        position: u64,
        at: OffsetDateTime,
    ) -> Result<(), IssuerError> {
        // Only the revocation this issuer published (under its key), never one another
        // publisher of the node's events made up.
        let ours = self.store.idempotency(&revoke_key(id))?;
        if ours.is_none_or(|k| k.position != position) {
            return Ok(());
        }
        let Some((mut entry, copy)) = self.known(id)? else {
            // Published, then its holder erased before this node kept entries: nothing here
            // says which bit is the credential's.
            tracing::warn!(credential = %id, "a revocation published before a stop names a credential this node no longer knows the status entry of; its status bit is not set");
            return Ok(());
        };
        let set = StatusList::load(&self.store)?.is_revoked(entry.status_idx) == Some(true);
        if set && entry.revoked_at.is_some() {
            return Ok(());
        }
        entry.revoked_at.get_or_insert(at);
        let copy = copy.map(|(pin, mut held)| {
            held.revoked.get_or_insert(Revocation {
                at,
                reason: "(not kept: the node stopped before storing the revocation)".into(),
            });
            (pin, held)
        });
        tracing::warn!(credential = %id, "a revocation published before a stop is stored now");
        self.keep_revoked(&entry, copy.as_ref().map(|(p, h)| (p.as_str(), h)))
    }

    /// Store a revocation just published: the credential's status bit set, the list signed
    /// again, the entry marked revoked, and the revoked copy written back, unless an erasure
    /// deleted it meanwhile (or had before: `copy` is `None`).
    fn keep_revoked(&self, entry: &Entry, copy: Option<(&str, &Held)>) -> Result<(), IssuerError> {
        let _guard = self.list.lock();
        let mut list = StatusList::load(&self.store)?;
        list.revoke(entry.status_idx);
        let rest = |batch: &mut WriteBatch| {
            batch.set_credential_entry(&entry.id, entry);
            batch.set_credential_state(&list.to_store(), None);
        };
        match copy {
            Some((pin, held)) => {
                let still_there =
                    |store: &Store| Ok(store.credential::<Held>(pin, &held.id)?.is_some());
                self.write_copy_if(pin, held, still_there, |_, batch| rest(batch))?;
            }
            None => {
                let mut batch = WriteBatch::default();
                rest(&mut batch);
                self.store.apply_other(batch)?;
                self.store.flush()?;
            }
        }
        self.resign(&list);
        Ok(())
    }

    /// Give every credential copy of a store from before entries were kept its entry, once:
    /// under the list's lock, so that a revocation stored meanwhile is not written over.
    pub(crate) fn keep_entries_of_earlier_copies(&self) -> Result<(), IssuerError> {
        if self.store.meta(&Meta::CredentialEntriesKept)?.is_some() {
            return Ok(());
        }
        let _guard = self.list.lock();
        let mut batch = WriteBatch::default();
        for held in self.store.every_credential::<Held>()? {
            if self.store.credential_entry::<Entry>(&held.id)?.is_none() {
                batch.set_credential_entry(&held.id, &held.entry());
            }
        }
        batch.credential_entries_kept();
        self.store.apply_other(batch)?;
        self.store.flush()?;
        Ok(())
    }

    /// The credentials issued to `pin` (the caller has decided it may read them).
    pub fn credentials_of(&self, pin: &str) -> Result<Vec<Held>, StoreError> {
        self.store.credentials_of(pin)
    }
}

/// Where the issuer's idempotency keys start: reserved for it (the local API refuses keys that
/// start so, and the type `credential-issued`).
pub(crate) const KEY_PREFIX: &str = "credential/";

/// The idempotency key of issuing credential `id`.
fn issue_key(id: &Uuid) -> String {
    format!("{KEY_PREFIX}{id}")
}

/// The idempotency key of revoking credential `id`.
fn revoke_key(id: &Uuid) -> String {
    format!("{KEY_PREFIX}{id}/revoked")
}

/// Publish the issuer's event under its idempotency `key` (one per credential and action). A
/// retry replays it. A retry whose body differs (an attempt of an earlier day, whose
/// `eventDate` was that day) is refused as a conflict: when the event the key names is this
/// action on this credential, it was published then, and what was left undone after it is
/// done now.
async fn publish(
    store: &Store,
    publisher: &Publisher,
    data: Value,
    key: String,
) -> Result<(), IssuerError> {
    let draft = Draft {
        event_type: EventType::CredentialIssued,
        data: data.clone(),
        idempotency_key: Some(key.clone()),
    };
    match publisher.publish(draft).await {
        Ok(_) => Ok(()),
        Err(PublishError::IdempotencyConflict) if published_before(store, &key, &data)? => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Whether the event published under `key` is a `credential-issued` saying what `data` says,
/// but for its date.
fn published_before(store: &Store, key: &str, data: &Value) -> Result<bool, StoreError> {
    let Some(found) = store.idempotency(key)? else {
        return Ok(false);
    };
    let Some(bytes) = store.get(found.position)? else {
        return Ok(false);
    };
    let Ok(signed) = SignedEvent::from_store(&bytes) else {
        return Ok(false);
    };
    let e = signed.event();
    let without_date = |v: &Value| {
        let mut v = v.clone();
        if let Some(o) = v.as_object_mut() {
            o.remove("eventDate");
        }
        v
    };
    Ok(e.event_type == EventType::CredentialIssued && without_date(&e.data) == without_date(data))
}

/// Whether a publish refused with `e` may succeed when tried again.
fn transient(e: &PublishError) -> bool {
    matches!(
        e,
        PublishError::Storage(_) | PublishError::NotWriter | PublishError::Stopped
    )
}

/// Whether the event `held` attests was erased here.
fn attested_erased(store: &Store, held: &Held) -> Result<bool, StoreError> {
    let Ok(source) = held.attests.source.parse::<MemberId>() else {
        return Ok(false);
    };
    Ok(match store.position_of(&source, &held.attests.id)? {
        Some(position) => store.erased(position)?.is_some(),
        None => false,
    })
}

/// The credential an event revokes: a `CREDENTIAL_REVOKED`, read as the attestations' fold
/// reads it (the caller checked the event is its own).
fn revocation_of(event: &crate::event::Event) -> Option<Uuid> {
    let (_, _, attestation) = crate::registry::attestations::of(event)?;
    attestation.revoked.then_some(attestation.credential_id)
}

fn date_of(at: OffsetDateTime) -> String {
    credential::iso_date(at.date())
}

/// Issue credentials until `stop` turns true: each own event past the cursor, once the
/// projector has folded it in. A failure is logged (without the person) and retried.
pub async fn run(
    issuer: Arc<Issuer>,
    publisher: Publisher,
    mut positions: watch::Receiver<u64>,
    mut stop: watch::Receiver<bool>,
) {
    let mut backoff = Duration::from_millis(200);
    // Once, first: a store from before entries were kept gives each copy its entry.
    while let Err(e) = crate::cores::blocking(|| issuer.keep_entries_of_earlier_copies()) {
        tracing::warn!(error = %e, retry_ms = backoff.as_millis() as u64, "keeping the credentials' entries failed");
        tokio::select! {
            _ = stop.changed() => return,
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(Duration::from_secs(30));
    }
    loop {
        let cursor = meta_u64(&issuer.store, &Meta::CredentialCursor);
        let folded = meta_u64(&issuer.store, &Meta::ViewCursor);
        let head = *positions.borrow();
        if head <= cursor {
            tokio::select! {
                _ = stop.changed() => return,
                _ = positions.wait_for(|p| *p > cursor) => continue,
            }
        }
        if folded <= cursor {
            // The projector has not folded the next event in yet.
            tokio::select! {
                _ = stop.changed() => return,
                _ = tokio::time::sleep(Duration::from_millis(50)) => continue,
            }
        }
        match issue_page(&issuer, &publisher, cursor, folded).await {
            Ok(()) => backoff = Duration::from_millis(200),
            Err(e) => {
                tracing::warn!(error = %e, retry_ms = backoff.as_millis() as u64, "issuing a credential failed");
                tokio::select! {
                    _ = stop.changed() => return,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(30));
            }
        }
    }
}

/// The own events after `cursor` up to `folded`, each issued for if it earns a credential.
async fn issue_page(
    issuer: &Issuer,
    publisher: &Publisher,
    cursor: u64,
    folded: u64,
) -> Result<(), IssuerError> {
    let page = issuer.store.range(cursor, PAGE)?;
    for (position, bytes) in page.into_iter().filter(|(p, _)| *p <= folded) {
        let event =
            SignedEvent::from_store(&bytes).map_err(|e| IssuerError::Event(e.to_string()))?;
        if event.event().source != issuer.member {
            issuer
                .store
                .set_meta_lazy(&Meta::CredentialCursor, &position.to_be_bytes())?;
            continue;
        }
        if let Some(held) = issuer.issue(publisher, position, &event).await? {
            tracing::info!(credential = %held.id, status_idx = held.status_idx, "credential issued");
        }
    }
    issuer.store.flush()?;
    Ok(())
}

/// The data of the `credential-issued` event saying `what` (`CREDENTIAL_ISSUED`,
/// `CREDENTIAL_REVOKED`) of the credential `entry` names, at `at`.
fn credential_event(what: &str, entry: &Entry, at: OffsetDateTime) -> Value {
    json!({
        "event": what,
        "eventDate": date_of(at),
        "purpose": credential::PURPOSE,
        "legalBasis": entry.legal_basis,
        "credentialId": entry.id,
        "vct": entry.vct,
        "attests": {"source": entry.attests.source, "id": entry.attests.id},
    })
}

fn meta_u64(store: &Store, name: &Meta) -> u64 {
    store
        .meta(name)
        .ok()
        .flatten()
        .and_then(|v| v.try_into().ok())
        .map_or(0, u64::from_be_bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::identifiers::KeyName;
    use crate::event::schema::Schemas;
    use crate::write::Signer;

    const EDUCATION: &str = "central-server/GOV/70000003/education";

    fn example(name: &str) -> Value {
        let path = format!(
            "{}/tests/examples/training-enrolment/valid/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    async fn publish_example(p: &Publisher, name: &str) {
        let draft = Draft {
            event_type: EventType::TrainingEnrolment,
            data: example(name),
            idempotency_key: None,
        };
        p.publish(draft).await.unwrap();
    }

    /// The education ministry's publisher and credential issuer on a store in `dir`.
    fn issuing(dir: &tempfile::TempDir) -> (Store, Publisher, Issuer) {
        let store = Store::open(dir.path()).unwrap();
        let member: MemberId = EDUCATION.parse().unwrap();
        let signer = Signer {
            kid: KeyName::new(member.clone(), "sign-1").unwrap(),
            member: member.clone(),
            key: crate::event::keys::generate(),
            max_event_bytes: crate::budget::DEFAULT_MAX_EVENT_BYTES,
        };
        let (p, _writer) = Publisher::start(
            store.clone(),
            Schemas::load().unwrap(),
            signer,
            Arc::default(),
            None,
        )
        .unwrap();
        let config = CredentialsConfig {
            issuer: "https://credentials.edu.example".into(),
            public_listen: "127.0.0.1:0".parse().unwrap(),
            key_file: dir.path().join("credential.pem"),
            key_name: "credential-1".into(),
            retired_keys: Vec::new(),
        };
        let keys = IssuerKeys::new(IssuerKey::generate("credential-1"), &[]).unwrap();
        let issuer = Issuer::open(config, member, keys, store.clone()).unwrap();
        (store, p, issuer)
    }

    /// [`issuing`], with the example's certified course published and in the views.
    async fn certified(dir: &tempfile::TempDir) -> (Store, Publisher, Issuer) {
        let (store, p, issuer) = issuing(dir);
        publish_example(&p, "certified.json").await;
        crate::registry::projector::catch_up(&store).unwrap();
        (store, p, issuer)
    }

    /// A correction of a certified enrolment: the credential the corrected event earned is
    /// revoked (what it says no longer holds), once; an event corrected before the issuer came
    /// to it earns none.
    #[tokio::test]
    async fn a_corrected_event_s_credential_is_revoked_and_none_is_issued_for_it_later() {
        let dir = tempfile::tempdir().unwrap();
        let (store, p, issuer, head, held) = issued(&dir).await;
        publish_correction(&store, &p, held.attests.id).await;
        let corrected_at = store.last_position().unwrap();
        issue_page(&issuer, &p, head, corrected_at).await.unwrap();
        let [revoked] = &issuer.credentials_of("21503199012345").unwrap()[..] else {
            panic!("one credential")
        };
        assert!(revoked
            .revoked
            .as_ref()
            .unwrap()
            .reason
            .contains("corrected"));
        let list = StatusList::load(&store).unwrap();
        assert_eq!(list.is_revoked(held.status_idx), Some(true));
        // Met again (a restart before the cursor moved): nothing more is published.
        let after = store.last_position().unwrap();
        issue_page(&issuer, &p, head, corrected_at).await.unwrap();
        assert_eq!(store.last_position().unwrap(), after);

        // Another node's issuer that comes to the certified event only after its correction
        // issues nothing for it.
        let dir = tempfile::tempdir().unwrap();
        let (store, p, issuer) = certified(&dir).await;
        let certified_id = {
            let bytes = store.get(store.last_position().unwrap()).unwrap().unwrap();
            SignedEvent::from_store(&bytes).unwrap().event().id
        };
        publish_correction(&store, &p, certified_id).await;
        let head = store.last_position().unwrap();
        issue_page(&issuer, &p, 0, head).await.unwrap();
        assert!(issuer.credentials_of("21503199012345").unwrap().is_empty());
        assert_eq!(store.last_position().unwrap(), head, "nothing published");
    }

    /// A corrected event's credential whose revocation is refused for good (here its key taken
    /// by another event, as a store from before the keys were reserved may hold) does not stall
    /// the issuer: the page is done and the cursor moves on.
    #[tokio::test]
    async fn a_revocation_refused_for_good_does_not_stall_the_issuer() {
        let dir = tempfile::tempdir().unwrap();
        let (store, p, issuer, head, held) = issued(&dir).await;
        let squatted = Draft {
            event_type: EventType::TrainingEnrolment,
            data: example("enrolled.json"),
            idempotency_key: Some(revoke_key(&held.id)),
        };
        p.publish(squatted).await.unwrap();
        publish_correction(&store, &p, held.attests.id).await;
        let last = store.last_position().unwrap();
        issue_page(&issuer, &p, head, last).await.unwrap();
        assert_eq!(meta_u64(&store, &Meta::CredentialCursor), last);
    }

    /// A revocation published on an earlier day whose status bit was never set (the node
    /// stopped in between) is finished by the operator's retry on any later day: its event is
    /// found under its key, not published again, and the bit is set. An unrelated event under
    /// the same key is no such proof.
    #[tokio::test]
    async fn a_revocation_published_on_an_earlier_day_is_finished_by_a_later_retry() {
        let dir = tempfile::tempdir().unwrap();
        let (store, p, issuer, head, held) = issued(&dir).await;
        let held = &held;
        let mut yesterday = json!({
            "event": "CREDENTIAL_REVOKED",
            "eventDate": date_of(OffsetDateTime::now_utc() - time::Duration::days(1)),
            "purpose": credential::PURPOSE,
            "legalBasis": held.legal_basis,
            "credentialId": held.id,
            "vct": held.vct,
            "attests": {"source": held.attests.source, "id": held.attests.id},
        });
        let key = revoke_key(&held.id);
        let draft = Draft {
            event_type: EventType::CredentialIssued,
            data: yesterday.clone(),
            idempotency_key: Some(key),
        };
        p.publish(draft).await.unwrap();
        let published = store.last_position().unwrap();

        // The issuer, following its log, meets the revocation and finishes it itself.
        let before = StatusList::load(&store).unwrap();
        assert_eq!(before.is_revoked(held.status_idx), Some(false));
        issue_page(&issuer, &p, head, published).await.unwrap();
        let list = StatusList::load(&store).unwrap();
        assert_eq!(list.is_revoked(held.status_idx), Some(true));
        let [copy] = &issuer.credentials_of("21503199012345").unwrap()[..] else {
            panic!("one credential")
        };
        assert!(copy.revoked.as_ref().unwrap().reason.contains("not kept"));
        // So would the operator's retry on a later day, were the bit not set yet.
        let mut unset = StatusList::load(&store).unwrap();
        unset.unrevoke_for_tests(held.status_idx);
        let mut batch = WriteBatch::default();
        batch.set_credential_state(&unset.to_store(), None);
        batch.set_credential("21503199012345", &held.id, held);
        store.apply_other(batch).unwrap();
        issuer.revoke(&p, held.id, "annulled").await.unwrap();
        assert_eq!(
            store.last_position().unwrap(),
            published,
            "not published twice"
        );
        let list = StatusList::load(&store).unwrap();
        assert_eq!(list.is_revoked(held.status_idx), Some(true));

        // A key taken by another event proves nothing: the revocation is refused, not taken
        // for done.
        let other = Uuid::now_v7();
        let squatted = Draft {
            event_type: EventType::TrainingEnrolment,
            data: example("enrolled.json"),
            idempotency_key: Some(revoke_key(&other)),
        };
        p.publish(squatted).await.unwrap();
        yesterday["credentialId"] = other.to_string().into();
        let refused = publish(&store, &p, yesterday, revoke_key(&other)).await;
        assert!(
            matches!(
                refused,
                Err(IssuerError::Publish(PublishError::IdempotencyConflict))
            ),
            "{refused:?}"
        );
    }

    /// A certified enrolment published and its credential issued: the store, publisher,
    /// issuer, the log's head then, and the credential.
    async fn issued(dir: &tempfile::TempDir) -> (Store, Publisher, Issuer, u64, Held) {
        let (store, p, issuer) = certified(dir).await;
        let head = store.last_position().unwrap();
        issue_page(&issuer, &p, 0, head).await.unwrap();
        let held = issuer.credentials_of("21503199012345").unwrap().remove(0);
        (store, p, issuer, head, held)
    }

    /// Publish the correction of the certified enrolment `corrected`, projected.
    async fn publish_correction(store: &Store, p: &Publisher, corrected: Uuid) {
        let mut correction = example("certified.json");
        correction["event"] = "RECORD_CORRECTED".into();
        correction["supersedes"] = corrected.to_string().into();
        let draft = Draft {
            event_type: EventType::TrainingEnrolment,
            data: correction,
            idempotency_key: None,
        };
        p.publish(draft).await.unwrap();
        crate::registry::projector::catch_up(store).unwrap();
    }

    /// Forget `pin` here, as a finished erasure that leaves nothing of the person does.
    fn forget(store: &Store, pin: &str) {
        let mut batch = WriteBatch::default();
        store.forget_person(pin, &mut batch).unwrap();
        store.apply_other(batch).unwrap();
    }

    /// A flood of public requests while a read hangs: a request waits for a read that began
    /// after it (it is not answered from the one before), and past the waiting bound each is
    /// refused at once.
    #[tokio::test]
    async fn public_status_requests_are_bounded_while_a_read_hangs() {
        let dir = tempfile::tempdir().unwrap();
        let (_store, _p, issuer) = issuing(&dir);
        let issuer = Arc::new(issuer);
        assert!(issuer.status_token_for_anyone().await.is_ok());
        // A read in flight that does not end: it holds the turn.
        let turn = issuer.status_read.lock().await;
        let waiting = tokio::spawn({
            let issuer = Arc::clone(&issuer);
            async move { issuer.status_token_for_anyone().await }
        });
        let still = tokio::time::timeout(Duration::from_millis(200), waiting).await;
        assert!(
            still.is_err(),
            "answered from a read older than the request"
        );
        let left = issuer.status_waiting.available_permits() as u32;
        let all = Arc::clone(&issuer.status_waiting)
            .acquire_many_owned(left)
            .await
            .unwrap();
        assert!(matches!(
            issuer.status_token_for_anyone().await,
            Err(StatusReadError::Busy)
        ));
        drop((all, turn));
    }

    /// The person forgotten after their credential was issued (the copy deleted with them):
    /// the credential they keep can still be revoked, by its entry, once; the revocation is
    /// published and the status list says so.
    #[tokio::test]
    async fn a_forgotten_person_s_credential_is_still_revoked_by_its_entry() {
        let dir = tempfile::tempdir().unwrap();
        let (store, p, issuer, _, held) = issued(&dir).await;
        forget(&store, "21503199012345");
        assert_eq!(store.credential_holder(&held.id).unwrap(), None);
        let before = store.last_position().unwrap();
        let revoked = issuer.revoke(&p, held.id, "award annulled").await.unwrap();
        assert_eq!(revoked.id, held.id);
        let list = StatusList::load(&store).unwrap();
        assert_eq!(list.is_revoked(held.status_idx), Some(true));
        let entry: Entry = store.credential_entry(&held.id).unwrap().unwrap();
        assert_eq!(entry.revoked_at, Some(revoked.revoked.at));
        let published = store.get(before + 1).unwrap().unwrap();
        let event = SignedEvent::from_store(&published).unwrap();
        assert_eq!(revocation_of(event.event()), Some(held.id));
        assert!(matches!(
            issuer.revoke(&p, held.id, "again").await,
            Err(IssuerError::AlreadyRevoked)
        ));
        let kept = serde_json::to_string(&entry).unwrap();
        assert!(
            !kept.contains("21503199012345") && !kept.contains("annulled"),
            "the entry holds nothing of the person, nor the operator's words: {kept}"
        );
    }

    /// A store from before entries were kept: each copy gets its entry once, as the copy says
    /// (revoked or not), and an entry stored since is not written over.
    #[tokio::test]
    async fn the_copies_of_a_store_from_before_get_their_entries_once() {
        let dir = tempfile::tempdir().unwrap();
        let (store, _p, issuer, _, held) = issued(&dir).await;
        let mut earlier = held.clone();
        earlier.id = Uuid::now_v7();
        earlier.revoked = Some(Revocation {
            at: OffsetDateTime::now_utc(),
            reason: "annulled".into(),
        });
        let mut batch = WriteBatch::default();
        batch.set_credential("21503199012345", &earlier.id, &earlier);
        store.apply_other(batch).unwrap();
        assert_eq!(store.credential_entry::<Entry>(&earlier.id).unwrap(), None);
        issuer.keep_entries_of_earlier_copies().unwrap();
        assert_eq!(
            store.credential_entry::<Entry>(&earlier.id).unwrap(),
            Some(earlier.entry())
        );
        assert_eq!(
            store.credential_entry::<Entry>(&held.id).unwrap(),
            Some(held.entry())
        );
        assert!(store.meta(&Meta::CredentialEntriesKept).unwrap().is_some());
    }

    /// A person forgotten here (their erasure finished, nothing left of them) before the
    /// issuer came to the event that earned a credential gets none: nothing is published and
    /// no copy kept, and the cursor moves past the event.
    #[tokio::test]
    async fn a_person_forgotten_before_the_issuer_comes_to_their_course_gets_no_credential() {
        let dir = tempfile::tempdir().unwrap();
        let (store, p, issuer) = certified(&dir).await;
        forget(&store, "21503199012345");
        let head = store.last_position().unwrap();
        issue_page(&issuer, &p, 0, head).await.unwrap();
        assert_eq!(
            store.last_position().unwrap(),
            head,
            "nothing was published"
        );
        assert!(issuer.credentials_of("21503199012345").unwrap().is_empty());
        assert_eq!(StatusList::load(&store).unwrap().taken_count(), 0);
        assert_eq!(meta_u64(&store, &Meta::CredentialCursor), head);
    }

    /// The person forgotten between publishing and storing (what the lock over a person's
    /// state decides against, the erasure and this write never interleaving): neither an
    /// issued nor a revoked credential leaves a copy under the PIN; the list still takes the
    /// entry, revoked, and the revocation.
    #[tokio::test]
    async fn no_copy_is_stored_for_a_person_forgotten_while_it_was_published() {
        let dir = tempfile::tempdir().unwrap();
        let (store, _p, issuer, head, held) = issued(&dir).await;
        let pin = "21503199012345";

        forget(&store, pin);
        // A second credential, published as the person was forgotten.
        let next = Held {
            id: Uuid::now_v7(),
            status_idx: StatusList::load(&store).unwrap().choose(),
            ..held.clone()
        };
        issuer.keep_issued(pin, &next, head).unwrap();
        let mut entry = held.entry();
        entry.revoked_at = Some(OffsetDateTime::now_utc());
        issuer.keep_revoked(&entry, Some((pin, &held))).unwrap();
        assert!(issuer.credentials_of(pin).unwrap().is_empty());
        let list = StatusList::load(&store).unwrap();
        assert_eq!(list.taken_count(), 2, "the entry is kept");
        assert_eq!(list.is_revoked(next.status_idx), Some(true), "and revoked");
        assert_eq!(list.is_revoked(held.status_idx), Some(true));
    }

    #[tokio::test]
    async fn a_certified_course_earns_one_credential_once_and_a_revocation_flips_its_bit() {
        let dir = tempfile::tempdir().unwrap();
        let (store, p, issuer) = issuing(&dir);
        for name in ["enrolled.json", "completed.json", "certified.json"] {
            publish_example(&p, name).await;
        }
        crate::registry::projector::catch_up(&store).unwrap();
        let head = store.last_position().unwrap();
        issue_page(&issuer, &p, 0, head).await.unwrap();
        let held = issuer.credentials_of("21503199012345").unwrap();
        assert_eq!(held.len(), 1, "enrolled and completed earn none");
        assert_eq!(meta_u64(&store, &Meta::CredentialCursor), head);
        let after = store.last_position().unwrap();
        assert_eq!(after, head + 1, "one credential-issued event");

        // Looked at again (a restart before the cursor was kept): nothing new.
        issue_page(&issuer, &p, 0, head).await.unwrap();
        assert_eq!(issuer.credentials_of("21503199012345").unwrap(), held);
        assert_eq!(store.last_position().unwrap(), after);

        // Another replica's issuer over the same store (a standby behind the same public name,
        // opened before the revocation): it serves the list as stored, not as it was at open.
        let keys = IssuerKeys::new(issuer.key.clone(), &[]).unwrap();
        let standby = Arc::new(
            Issuer::open(
                issuer.config.clone(),
                issuer.member.clone(),
                keys,
                store.clone(),
            )
            .unwrap(),
        );
        // A verifier asked the standby's public listener before the revocation.
        let before = standby.status_token_for_anyone().await.unwrap();
        let id = held[0].id;
        let revoked = issuer.revoke(&p, id, "annulled").await.unwrap();
        assert_eq!(revoked.revoked.reason, "annulled");
        let list = StatusList::load(&store).unwrap();
        assert_eq!(list.is_revoked(held[0].status_idx), Some(true));
        assert!(matches!(
            issuer.revoke(&p, id, "again").await,
            Err(IssuerError::AlreadyRevoked)
        ));
        assert!(matches!(
            issuer.revoke(&p, Uuid::now_v7(), "no such").await,
            Err(IssuerError::Unknown)
        ));
        // The served list says so, whichever replica serves it.
        let jwks = json!({"keys": [issuer.key.jwk()]});
        let asked_again = standby.status_token_for_anyone().await.unwrap();
        assert_ne!(
            asked_again, before,
            "a read older than the request is not served"
        );
        for token in [
            issuer.status_token().unwrap(),
            standby.status_token().unwrap(),
            asked_again,
        ] {
            let payload =
                super::super::key::verify_compact(&token, super::super::status::TYP, &jwks)
                    .unwrap()
                    .payload;
            let served = StatusList::of_payload(&payload).unwrap();
            assert_eq!(served.is_revoked(held[0].status_idx), Some(true));
        }
    }
}
