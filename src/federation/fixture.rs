//! What the federation's unit tests share: a federation of three members under a manifest its
//! authority signed, and a node of any of them (a real store in a temporary folder, the manifest
//! trusted, a writer signing with the member's key), with valid event data to publish.
//!
//! The migration agency publishes returnee records (which carry the person's consent) and
//! vacancies; the employment service reads both, the education ministry reads returnee records
//! only. Each member signs with its key `sign-1`.
//!
//! A file of its own, so `tests/layers.rs` reads it as code: it uses only `federation` and the
//! layers below.

use std::sync::Arc;
use std::thread::JoinHandle;

use ed25519_dalek::SigningKey;
use serde_json::{json, Value};
use time::{Duration, OffsetDateTime};

use crate::event::identifiers::{KeyName, MemberId};
use crate::event::keys;
use crate::event::schema::{EventType, Schemas};
use crate::event::{Event, SignedEvent};
use crate::net::metrics::Metrics;
use crate::store::{QuarantineCaps, Store};
use crate::trust::manifest::{
    EventFormat, Manifest, Member, Names, ReaderGrant, SigningKeyEntry, Trust, TypePolicy,
};
use crate::write::{Draft, Published, Publisher, Signer};

use super::sync::{SyncSettings, Syncer};

/// The employment service's purpose in its grants.
pub(crate) const EMPLOYMENT_SERVICES: &str = "EMPLOYMENT_SERVICES";
/// The education ministry's purpose in its grant.
pub(crate) const TRAINING_SERVICES: &str = "TRAINING_SERVICES";

/// Three members, their keys, and the manifest that names them.
pub(crate) struct Federation {
    pub(crate) migration: MemberId,
    pub(crate) employment: MemberId,
    pub(crate) education: MemberId,
    pub(crate) authority: SigningKey,
    pub(crate) manifest: Manifest,
    keys: Vec<(MemberId, SigningKey)>,
}

/// One member's node, as far as the federation's code needs one.
pub(crate) struct Node {
    pub(crate) member: MemberId,
    pub(crate) store: Store,
    pub(crate) trust: Arc<Trust>,
    pub(crate) schemas: Arc<Schemas>,
    pub(crate) publisher: Publisher,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) key: SigningKey,
    max_event_bytes: usize,
    _writer: JoinHandle<()>,
    _dir: tempfile::TempDir,
}

fn member(id: &str) -> MemberId {
    format!("central-server/GOV/{id}")
        .parse()
        .expect("a valid member id")
}

/// The manifest's entry of member `id`, whose key `sign-1` is valid from 30 days ago to 30 days
/// from now.
pub(crate) fn member_entry(id: &MemberId, key: &SigningKey) -> Member {
    let now = OffsetDateTime::now_utc();
    Member {
        id: id.clone(),
        names: Names::default(),
        peer_endpoint: "127.0.0.1:1".into(),
        tls_key_sha256: "ab".into(),
        signing_keys: vec![SigningKeyEntry {
            name: "sign-1".into(),
            public_key: keys::RawPublicKey::of(&key.verifying_key()),
            not_before: now - Duration::days(30),
            not_after: now + Duration::days(30),
            revoked: None,
            revoked_after_sequence: None,
        }],
        legacy_eddsa: false,
        event_formats: vec![EventFormat::Jws, EventFormat::SdJwt],
    }
}

impl Federation {
    pub(crate) fn new() -> Federation {
        let now = OffsetDateTime::now_utc();
        let migration = member("70000001/migration");
        let employment = member("70000002/employment");
        let education = member("70000003/education");
        let keys: Vec<(MemberId, SigningKey)> = [&migration, &employment, &education]
            .into_iter()
            .map(|m| (m.clone(), keys::generate()))
            .collect();
        let grant = |reader: &MemberId, purpose: &str| ReaderGrant {
            member: reader.clone(),
            purposes: vec![purpose.into()],
            fields: None,
        };
        let policy = |t: EventType, readers: Vec<ReaderGrant>| {
            TypePolicy::new(t, vec![migration.clone()], readers)
        };
        let manifest = Manifest {
            instance: "central-server".into(),
            serial: 1,
            issued: now,
            expires: now + Duration::days(1),
            authority: member("70000000/authority"),
            ca_certificate: String::new(),
            members: keys.iter().map(|(id, key)| member_entry(id, key)).collect(),
            event_types: vec![
                policy(
                    EventType::ReturneeRecord,
                    vec![
                        grant(&employment, EMPLOYMENT_SERVICES),
                        grant(&education, TRAINING_SERVICES),
                    ],
                ),
                policy(
                    EventType::Vacancy,
                    vec![grant(&employment, EMPLOYMENT_SERVICES)],
                ),
            ],
        };
        Federation {
            migration,
            employment,
            education,
            authority: keys::generate(),
            manifest,
            keys,
        }
    }

    /// The event-signing key of `member`.
    pub(crate) fn key(&self, member: &MemberId) -> &SigningKey {
        self.keys
            .iter()
            .find(|(m, _)| m == member)
            .map(|(_, k)| k)
            .expect("a member of the federation")
    }

    /// The name of `member`'s key in the manifest.
    pub(crate) fn kid(member: &MemberId) -> KeyName {
        KeyName::new(member.clone(), "sign-1").expect("a valid key name")
    }

    /// `member`'s event of `sequence`, signed with its key.
    pub(crate) fn signed(
        &self,
        member: &MemberId,
        sequence: u64,
        t: EventType,
        data: Value,
    ) -> SignedEvent {
        Event::new(member.clone(), t, sequence, data)
            .sign(self.key(member), &Federation::kid(member))
    }

    /// A node of `member` trusting the manifest as it is now.
    pub(crate) fn node(&self, member: &MemberId) -> Node {
        self.node_under(
            member,
            &self.manifest,
            crate::budget::DEFAULT_MAX_EVENT_BYTES,
        )
    }

    /// A node of `member` trusting `manifest`, publishing events of at most `max_event_bytes`.
    pub(crate) fn node_under(
        &self,
        member: &MemberId,
        manifest: &Manifest,
        max_event_bytes: usize,
    ) -> Node {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let store = Store::open(dir.path()).expect("a store");
        let signed = manifest.sign(&self.authority).expect("a signed manifest");
        let trust = Arc::new(
            Trust::load(self.authority.verifying_key(), &signed, store.clone())
                .expect("the manifest trusted"),
        );
        let schemas = Schemas::load().expect("the schemas");
        let metrics = Arc::new(Metrics::default());
        let key = self.key(member).clone();
        let signer = signer(member, &key, max_event_bytes);
        let (publisher, writer) = start(&store, &schemas, signer, &metrics, &trust);
        Node {
            member: member.clone(),
            store,
            trust,
            schemas,
            publisher,
            metrics,
            key,
            max_event_bytes,
            _writer: writer,
            _dir: dir,
        }
    }
}

/// `member`'s signer, with its key `sign-1`.
fn signer(member: &MemberId, key: &SigningKey, max_event_bytes: usize) -> Signer {
    Signer {
        member: member.clone(),
        kid: Federation::kid(member),
        key: key.clone(),
        max_event_bytes,
    }
}

/// A writer of the node's store, and the publisher that hands it work.
fn start(
    store: &Store,
    schemas: &Arc<Schemas>,
    signer: Signer,
    metrics: &Arc<Metrics>,
    trust: &Arc<Trust>,
) -> (Publisher, JoinHandle<()>) {
    Publisher::start(
        store.clone(),
        schemas.clone(),
        signer,
        metrics.clone(),
        Some(trust.clone()),
    )
    .expect("a writer")
}

impl Node {
    /// The same node with its writer stopped and started again on its store: what the writer
    /// holds in memory is read from the store anew.
    pub(crate) fn restarted(self) -> Node {
        drop(self.publisher);
        self._writer.join().expect("the writer stopped");
        let signer = signer(&self.member, &self.key, self.max_event_bytes);
        let (publisher, _writer) = start(
            &self.store,
            &self.schemas,
            signer,
            &self.metrics,
            &self.trust,
        );
        Node {
            publisher,
            _writer,
            ..self
        }
    }

    /// Publish one of this member's own events.
    pub(crate) async fn publish(&self, t: EventType, data: Value) -> Published {
        self.publisher
            .publish(Draft {
                event_type: t,
                data,
                idempotency_key: None,
            })
            .await
            .expect("published")
    }

    /// The node's subscription tasks' shared part, with `settings` and the quarantine `caps`.
    pub(crate) fn syncer(&self, settings: SyncSettings, caps: QuarantineCaps) -> Syncer {
        Syncer {
            me: self.member.clone(),
            store: self.store.clone(),
            trust: self.trust.clone(),
            schemas: self.schemas.clone(),
            publisher: self.publisher.clone(),
            metrics: self.metrics.clone(),
            tls_cert: Default::default(),
            tls_key: Default::default(),
            settings,
            witness_key: self.key.clone(),
            witnessing: Default::default(),
            alarms: Default::default(),
            xroad: None,
            max_event_bytes: crate::budget::DEFAULT_MAX_EVENT_BYTES,
            quarantine_caps: caps,
        }
    }
}

/// A valid returnee record about `pin` whose consent names `recipients` for both purposes of the
/// federation's grants.
pub(crate) fn returnee(pin: &str, recipients: &[&MemberId]) -> Value {
    let mut data: Value = serde_json::from_str(include_str!(
        "../../tests/examples/returnee-record/valid/return-registered.json"
    ))
    .expect("the example is JSON");
    data["person"] = json!({ "pin": pin });
    data["consent"]["recipients"] = json!(recipients);
    data["consent"]["purposes"] = json!([EMPLOYMENT_SERVICES, TRAINING_SERVICES]);
    data
}

/// A valid returnee record about `pin` whose consent is withdrawn: it names nobody.
pub(crate) fn withdrawal(pin: &str) -> Value {
    let mut data = returnee(pin, &[]);
    data["consent"]["granted"] = false.into();
    data["consent"]["purposes"] = json!([]);
    data
}

/// A valid vacancy (not about a person).
pub(crate) fn vacancy() -> Value {
    serde_json::from_str(include_str!(
        "../../tests/examples/vacancy/valid/opened.json"
    ))
    .expect("the example is JSON")
}
