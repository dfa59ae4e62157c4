//! The federation manifest (X-Road's global configuration) and the node's trust in it.
//!
//! The authority signs the manifest as a JWS with its Ed25519 key. A node trusts only the
//! authority key in its own config: it refuses a manifest that is not signed by that key, is
//! expired, or is older than the one it holds, and it keeps the newest in its store so a restart
//! never goes back. An expired manifest is kept but stops exchange with a clear error.

use std::sync::{Arc, RwLock};

use ed25519_dalek::{SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::event::disclosure::{Fields, Pointer};
use crate::event::identifiers::{KeyName, MemberId};
use crate::event::jws::{self, Alg, Jws, Typ};
use crate::event::keys;
use crate::event::schema::EventType;
use crate::store::{Meta, Store, StoreError};
use crate::trust::tls::PeerDirectory;

/// Why a manifest was refused or cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManifestError {
    #[error("the manifest is not a valid JWS: {0}")]
    Format(String),
    #[error("the manifest is not signed by the authority key this node trusts")]
    Signature,
    #[error(
        "the manifest expired at {0}; exchange is stopped until a newer signed manifest arrives"
    )]
    Expired(String),
    #[error(
        "the manifest (serial {offered}) is older than the one this node holds (serial {held})"
    )]
    Older { offered: u64, held: u64 },
    #[error("the manifest content is not valid: {0}")]
    Content(String),
    #[error("storage: {0}")]
    Store(String),
}

/// Names in the three languages of the exchange.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Names {
    pub ky: String,
    pub ru: String,
    pub en: String,
}

/// A member's event-signing key and its validity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SigningKeyEntry {
    pub name: String,
    /// Raw Ed25519 public key, base64url.
    pub public_key: keys::RawPublicKey,
    #[serde(with = "time::serde::rfc3339")]
    pub not_before: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub not_after: OffsetDateTime,
    /// Statements (checkpoints, co-signatures) dated at or after this time with this key are
    /// refused; so are events, when the revocation names no sequence (manifests before
    /// revocation by sequence).
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub revoked: Option<OffsetDateTime>,
    /// Events of the member signed with this key are valid up to this sequence of the member's
    /// own feed and refused after it, whatever time they carry: a compromised key cannot
    /// backdate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_after_sequence: Option<u64>,
}

/// A member of the federation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Member {
    pub id: MemberId,
    pub names: Names,
    /// `host:port` of its peer listener.
    pub peer_endpoint: String,
    /// SHA-256 (hex) of its TLS certificate's SubjectPublicKeyInfo.
    pub tls_key_sha256: String,
    pub signing_keys: Vec<SigningKeyEntry>,
    /// The member still signs with the deprecated `EdDSA` algorithm name (RFC 9864): its
    /// objects are accepted with it until the authority clears this flag.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub legacy_eddsa: bool,
    /// The formats the member may send its events in; none listed means `jws` only, what every
    /// member sent before selective disclosure. A member that may send `sd-jwt` signs its
    /// events as SD-JWTs; receivers refuse an event in a format its member may not send.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub event_formats: Vec<EventFormat>,
}

/// The signed form of a member's events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum EventFormat {
    /// The whole event signed as one flattened JWS (`typ: jol-event+jws`).
    #[serde(rename = "jws")]
    Jws,
    /// An SD-JWT whose personal fields are selective disclosures (`typ: jol-event+sd-jwt`).
    #[serde(rename = "sd-jwt")]
    SdJwt,
}

/// Who may read an event type, for which purposes, and which of its fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReaderGrant {
    pub member: MemberId,
    pub purposes: Vec<String>,
    /// The disclosable fields (JSON pointers into the event's data) the reader receives; absent,
    /// every field. The always-visible fields come with every event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fields: Option<Vec<Pointer>>,
}

/// The policy of one event type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TypePolicy {
    #[serde(rename = "type")]
    pub event_type: EventType,
    pub schema: String,
    pub schema_digest: String,
    pub publishers: Vec<MemberId>,
    pub readers: Vec<ReaderGrant>,
    /// How long the publisher keeps an event of this type about a person: this many days after
    /// the person's last event (by business date) at the publisher; then every node erases it
    /// (`registry::retention`). Absent: kept until erased on request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention_days: Option<u32>,
}

impl TypePolicy {
    /// The policy of `event_type` at the schema this build ships (its URI and digest), with these
    /// publishers and readers, kept until erased on request.
    pub fn new(
        event_type: EventType,
        publishers: Vec<MemberId>,
        readers: Vec<ReaderGrant>,
    ) -> TypePolicy {
        TypePolicy {
            event_type,
            schema: event_type.schema_uri(),
            schema_digest: event_type.schema_digest().to_string(),
            publishers,
            readers,
            retention_days: None,
        }
    }
}

/// The signed description of the federation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Manifest {
    pub instance: String,
    pub serial: u64,
    #[serde(with = "time::serde::rfc3339")]
    pub issued: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub expires: OffsetDateTime,
    /// The authority's id; its key signs the manifest as `AUTHORITY#manifest`.
    pub authority: MemberId,
    /// The federation CA certificate (PEM) node TLS certificates chain to.
    pub ca_certificate: String,
    pub members: Vec<Member>,
    pub event_types: Vec<TypePolicy>,
}

/// Why an event's signing key is not acceptable (receipt check 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum KeyProblem {
    #[error("the key is not registered for the source in the manifest")]
    Unknown,
    #[error("the key belongs to another member than the event's source")]
    OtherMember,
    #[error("the key was not valid at the event's time")]
    NotValidAt,
    #[error("the key was revoked before this event")]
    Revoked,
}

impl KeyProblem {
    pub fn code(self) -> &'static str {
        match self {
            KeyProblem::Unknown => "key-unknown",
            KeyProblem::OtherMember => "key-of-other-member",
            KeyProblem::NotValidAt => "key-not-valid-at-time",
            KeyProblem::Revoked => "key-revoked",
        }
    }
}

impl Manifest {
    pub fn member(&self, id: &MemberId) -> Option<&Member> {
        self.members.iter().find(|m| &m.id == id)
    }

    pub fn policy(&self, t: EventType) -> Option<&TypePolicy> {
        self.event_types.iter().find(|p| p.event_type == t)
    }

    pub fn may_publish(&self, member: &MemberId, t: EventType) -> bool {
        self.policy(t)
            .is_some_and(|p| p.publishers.contains(member))
    }

    /// The purposes for which `member` may read `t`; `None` when it may not.
    pub fn reader_purposes(&self, member: &MemberId, t: EventType) -> Option<&[String]> {
        self.policy(t)?
            .readers
            .iter()
            .find(|r| &r.member == member)
            .map(|r| r.purposes.as_slice())
    }

    /// The fields of `t` that `member` receives: its grant's, or none when it has no grant.
    pub fn reader_fields(&self, member: &MemberId, t: EventType) -> Fields {
        let grant = self
            .policy(t)
            .and_then(|p| p.readers.iter().find(|r| &r.member == member));
        match grant {
            None => Fields::Only(Default::default()),
            Some(ReaderGrant { fields: None, .. }) => Fields::All,
            Some(ReaderGrant {
                fields: Some(list), ..
            }) => Fields::Only(list.iter().cloned().collect()),
        }
    }

    /// Whether `member` may send its events in `format`.
    pub fn accepts_format(&self, member: &MemberId, format: EventFormat) -> bool {
        self.member(member)
            .is_some_and(|m| match m.event_formats.is_empty() {
                true => format == EventFormat::Jws,
                false => m.event_formats.contains(&format),
            })
    }

    /// The format `member` signs its own events in: SD-JWT once the manifest lets it.
    pub fn signing_format(&self, member: &MemberId) -> EventFormat {
        if self.accepts_format(member, EventFormat::SdJwt) {
            EventFormat::SdJwt
        } else {
            EventFormat::Jws
        }
    }

    /// The types `member` may read.
    pub fn readable_types(&self, member: &MemberId) -> Vec<EventType> {
        EventType::ALL
            .into_iter()
            .filter(|t| self.reader_purposes(member, *t).is_some())
            .collect()
    }

    /// The key `kid` of `source` for an object it signed at `at`; `sequence` is the event's
    /// sequence in the member's feed (`None` for checkpoints and co-signatures).
    pub fn event_key(
        &self,
        source: &MemberId,
        kid: &KeyName,
        at: OffsetDateTime,
        sequence: Option<u64>,
    ) -> Result<VerifyingKey, KeyProblem> {
        if kid.member() != source {
            return Err(KeyProblem::OtherMember);
        }
        let entry = self
            .member(source)
            .and_then(|m| m.signing_keys.iter().find(|k| k.name == kid.key()))
            .ok_or(KeyProblem::Unknown)?;
        let revoked = match (sequence, entry.revoked_after_sequence) {
            (Some(s), Some(last)) => s > last,
            _ => entry.revoked.is_some_and(|r| at >= r),
        };
        if revoked {
            return Err(KeyProblem::Revoked);
        }
        if at < entry.not_before || at > entry.not_after {
            return Err(KeyProblem::NotValidAt);
        }
        entry.public_key.key().copied().ok_or(KeyProblem::Unknown)
    }

    /// Whether `member` may sign with `alg`: `Ed25519` always, the deprecated `EdDSA` only
    /// while the manifest marks the member as not yet migrated (RFC 9864).
    pub fn accepts_alg(&self, member: &MemberId, alg: Alg) -> bool {
        match alg {
            Alg::Ed25519 => true,
            Alg::EdDsa => self.member(member).is_some_and(|m| m.legacy_eddsa),
        }
    }

    pub fn is_expired(&self, now: OffsetDateTime) -> bool {
        now >= self.expires
    }

    /// Sign as the authority; the result is the manifest file (flattened JWS).
    pub fn sign(&self, authority_key: &SigningKey) -> Result<Vec<u8>, ManifestError> {
        let kid = KeyName::new(self.authority.clone(), "manifest")
            .map_err(|e| ManifestError::Content(e.to_string()))?;
        let payload =
            serde_json::to_vec(self).map_err(|e| ManifestError::Content(e.to_string()))?;
        Ok(jws::sign(authority_key, &kid, Typ::Manifest, &payload))
    }

    /// Check the signature with the trusted authority key and parse. Does not check expiry.
    pub fn verify(bytes: &[u8], authority_key: &VerifyingKey) -> Result<Manifest, ManifestError> {
        let jws =
            Jws::parse(bytes, Typ::Manifest).map_err(|e| ManifestError::Format(e.to_string()))?;
        jws.verify(authority_key)
            .map_err(|_| ManifestError::Signature)?;
        let manifest: Manifest = crate::event::json::from_slice(jws.payload())
            .map_err(|e| ManifestError::Content(e.to_string()))?;
        if jws.kid().member() != &manifest.authority {
            return Err(ManifestError::Content(
                "signed by a key not named for the manifest's authority".into(),
            ));
        }
        Ok(manifest)
    }
}

/// The manifest a node currently trusts, shared by the listeners and the sync tasks.
pub struct Trust {
    authority_key: VerifyingKey,
    store: Store,
    current: RwLock<(Arc<Manifest>, Arc<[u8]>)>,
}

impl Trust {
    /// Take the newest valid manifest of the file and the store. A file older than the stored
    /// one is refused with a warning; with neither valid, the node cannot start.
    pub fn load(
        authority_key: VerifyingKey,
        file_bytes: &[u8],
        store: Store,
    ) -> Result<Trust, ManifestError> {
        let from_file = Manifest::verify(file_bytes, &authority_key);
        let stored = stored_manifest(&store, &authority_key)?;
        let chosen = match (from_file, stored) {
            (Ok(f), Some((s, sb))) if s.serial > f.serial => {
                tracing::warn!(
                    file = f.serial,
                    held = s.serial,
                    "manifest file is older than the one held; keeping the held one"
                );
                (s, sb)
            }
            (Ok(f), _) => (f, file_bytes.to_vec()),
            (Err(e), Some((s, sb))) => {
                tracing::warn!(error = %e, "manifest file refused; using the one held");
                (s, sb)
            }
            (Err(e), None) => return Err(e),
        };
        let chosen = keep_newest(&store, &authority_key, chosen)?;
        if chosen.0.is_expired(OffsetDateTime::now_utc()) {
            tracing::error!(
                serial = chosen.0.serial,
                "the manifest has expired: exchange is stopped"
            );
        }
        Ok(Trust {
            authority_key,
            store,
            current: RwLock::new((Arc::new(chosen.0), chosen.1.into())),
        })
    }

    /// The manifest held, expired or not.
    pub fn held(&self) -> Arc<Manifest> {
        self.current
            .read()
            .map(|c| c.0.clone())
            .unwrap_or_else(|p| p.into_inner().0.clone())
    }

    /// The manifest file bytes held (to pass on to peers).
    pub fn held_bytes(&self) -> Arc<[u8]> {
        self.current
            .read()
            .map(|c| c.1.clone())
            .unwrap_or_else(|p| p.into_inner().1.clone())
    }

    /// The manifest, if it may be used for exchange now.
    pub fn usable(&self) -> Result<Arc<Manifest>, ManifestError> {
        let m = self.held();
        if m.is_expired(OffsetDateTime::now_utc()) {
            return Err(ManifestError::Expired(
                m.expires
                    .format(&time::format_description::well_known::Rfc3339)
                    .unwrap_or_default(),
            ));
        }
        Ok(m)
    }

    /// Consider a manifest offered by a peer or an operator; adopt it if it is newer, signed and
    /// unexpired. Returns whether it was adopted.
    ///
    /// Decided and adopted under the lock of the manifest held, so two offers at once (two
    /// sync sessions starting) cannot leave the older of them held; and stored only over an
    /// older one, so a replica of the same database that stored a newer one meanwhile keeps it
    /// (this node then takes that one).
    pub fn offer(&self, bytes: &[u8]) -> Result<bool, ManifestError> {
        let offered = Manifest::verify(bytes, &self.authority_key)?;
        // Most offers are the manifest held (every sync session's, every commit a replica
        // follows): answered under the read lock, which readers of the manifest share.
        if offered.serial == self.held().serial {
            return Ok(false);
        }
        let mut current = self.current.write().unwrap_or_else(|p| p.into_inner());
        let held = &current.0;
        if offered.serial < held.serial {
            return Err(ManifestError::Older {
                offered: offered.serial,
                held: held.serial,
            });
        }
        if offered.serial == held.serial {
            return Ok(false);
        }
        if offered.is_expired(OffsetDateTime::now_utc()) {
            return Err(ManifestError::Expired(offered.expires.to_string()));
        }
        let (adopted, bytes) =
            keep_newest(&self.store, &self.authority_key, (offered, bytes.to_vec()))?;
        let serial = adopted.serial;
        *current = (Arc::new(adopted), bytes.into());
        tracing::info!(serial, "adopted a newer manifest");
        Ok(true)
    }
}

/// The manifest stored, if one is and its signature holds.
fn stored_manifest(
    store: &Store,
    authority_key: &VerifyingKey,
) -> Result<Option<(Manifest, Vec<u8>)>, ManifestError> {
    Ok(store
        .meta(&Meta::Manifest)
        .map_err(|e: StoreError| ManifestError::Store(e.to_string()))?
        .and_then(|b| Manifest::verify(&b, authority_key).ok().map(|m| (m, b))))
}

/// `chosen`, stored, unless the store holds a newer manifest already (written by another
/// replica of the same database since it was read): then that one, left as it is.
fn keep_newest(
    store: &Store,
    authority_key: &VerifyingKey,
    chosen: (Manifest, Vec<u8>),
) -> Result<(Manifest, Vec<u8>), ManifestError> {
    if let Some(stored) = stored_manifest(store, authority_key)? {
        if stored.0.serial >= chosen.0.serial {
            return Ok(stored);
        }
    }
    store
        .set_meta(&Meta::Manifest, &chosen.1)
        .map_err(|e| ManifestError::Store(e.to_string()))?;
    Ok(chosen)
}

/// Read the manifest file at `path` every `every` until the node stops, and offer it to `trust`
/// when its bytes changed: an operator who puts the authority's newer manifest in place needs
/// no restart, even on a node that syncs from nobody (whose peers would otherwise be its only
/// way to learn of it). A file that cannot be read or is refused is logged once per change.
pub(crate) async fn follow_file(
    trust: Arc<Trust>,
    path: std::path::PathBuf,
    every: std::time::Duration,
    mut stopped: tokio::sync::watch::Receiver<bool>,
) {
    let mut last = tokio::fs::read(&path).await.ok();
    loop {
        tokio::select! {
            _ = stopped.changed() => return,
            _ = tokio::time::sleep(every) => {}
        }
        let read = tokio::fs::read(&path).await;
        let bytes = match read {
            Ok(bytes) if last.as_deref() != Some(bytes.as_slice()) => bytes,
            Ok(_) => continue,
            Err(e) => {
                if last.take().is_some() {
                    tracing::warn!(path = %path.display(), error = %e, "the manifest file cannot be read");
                }
                continue;
            }
        };
        match trust.offer(&bytes) {
            Ok(true) => {
                tracing::info!(path = %path.display(), "took up a newer manifest from its file")
            }
            Ok(false) | Err(ManifestError::Older { .. }) => {}
            Err(e @ ManifestError::Store(_)) => {
                // Not the file's fault: offered again at the next look.
                tracing::warn!(path = %path.display(), error = %e, "the manifest file could not be taken up");
                continue;
            }
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "the manifest file was refused")
            }
        }
        last = Some(bytes);
    }
}

impl PeerDirectory for Trust {
    fn member_for_key(&self, spki_sha256: &str) -> Option<MemberId> {
        self.held()
            .members
            .iter()
            .find(|m| m.tls_key_sha256 == spki_sha256)
            .map(|m| m.id.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::Duration;

    fn manifest(serial: u64, expires_in: Duration) -> Manifest {
        let now = OffsetDateTime::now_utc();
        let member: MemberId = "central-server/GOV/70000001/migration".parse().unwrap();
        let key = keys::generate();
        Manifest {
            instance: "central-server".into(),
            serial,
            issued: now,
            expires: now + expires_in,
            authority: "central-server/GOV/70000000/authority".parse().unwrap(),
            ca_certificate: String::new(),
            members: vec![Member {
                id: member.clone(),
                names: Names::default(),
                peer_endpoint: "127.0.0.1:1".into(),
                tls_key_sha256: "ab".into(),
                signing_keys: vec![SigningKeyEntry {
                    name: "k1".into(),
                    public_key: keys::RawPublicKey::of(&key.verifying_key()),
                    not_before: now - Duration::days(1),
                    not_after: now + Duration::days(1),
                    revoked: Some(now),
                    revoked_after_sequence: None,
                }],
                legacy_eddsa: false,
                event_formats: Vec::new(),
            }],
            event_types: vec![TypePolicy::new(
                EventType::ReturneeRecord,
                vec![member.clone()],
                vec![ReaderGrant {
                    member: "central-server/GOV/70000002/employment".parse().unwrap(),
                    purposes: vec!["EMPLOYMENT_SERVICES".into()],
                    fields: None,
                }],
            )],
        }
    }

    #[test]
    fn keys_are_valid_in_their_window_until_revoked() {
        let m = manifest(1, Duration::days(1));
        let source = m.members[0].id.clone();
        let kid = KeyName::new(source.clone(), "k1").unwrap();
        let now = OffsetDateTime::now_utc();
        assert!(m
            .event_key(&source, &kid, now - Duration::hours(1), None)
            .is_ok());
        assert_eq!(
            m.event_key(&source, &kid, now + Duration::hours(1), None),
            Err(KeyProblem::Revoked)
        );
        assert_eq!(
            m.event_key(&source, &kid, now - Duration::days(2), None),
            Err(KeyProblem::NotValidAt)
        );
        let other = KeyName::new(source.clone(), "k2").unwrap();
        assert_eq!(
            m.event_key(&source, &other, now, None),
            Err(KeyProblem::Unknown)
        );
        let elsewhere: MemberId = "a/b/c/d".parse().unwrap();
        assert_eq!(
            m.event_key(&elsewhere, &kid, now, None),
            Err(KeyProblem::OtherMember)
        );
    }

    #[test]
    fn a_key_revoked_after_a_sequence_cannot_backdate() {
        let mut m = manifest(1, Duration::days(1));
        m.members[0].signing_keys[0].revoked_after_sequence = Some(10);
        let source = m.members[0].id.clone();
        let kid = KeyName::new(source.clone(), "k1").unwrap();
        let long_ago = OffsetDateTime::now_utc() - Duration::hours(12);
        assert!(m.event_key(&source, &kid, long_ago, Some(10)).is_ok());
        assert_eq!(
            m.event_key(&source, &kid, long_ago, Some(11)),
            Err(KeyProblem::Revoked),
            "an event after the revocation's sequence is refused whatever time it claims"
        );
        // Statements without a sequence still follow the revocation time.
        assert!(m.event_key(&source, &kid, long_ago, None).is_ok());
    }

    #[test]
    fn a_manifest_naming_a_member_twice_is_refused() {
        let authority = keys::generate();
        let m = manifest(1, Duration::days(1));
        let text = serde_json::to_string(&m).unwrap().replacen(
            "\"serial\":1",
            "\"serial\":1,\"serial\":9",
            1,
        );
        let kid = KeyName::new(m.authority.clone(), "manifest").unwrap();
        let bytes = jws::sign(&authority, &kid, Typ::Manifest, text.as_bytes());
        let err = Manifest::verify(&bytes, &authority.verifying_key()).unwrap_err();
        assert!(err.to_string().contains("/serial"), "{err}");
    }

    #[test]
    fn trust_takes_newer_refuses_older_forged_and_expired() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let authority = keys::generate();
        let v1 = manifest(1, Duration::days(1)).sign(&authority).unwrap();
        let trust = Trust::load(authority.verifying_key(), &v1, store.clone()).unwrap();
        assert_eq!(trust.usable().unwrap().serial, 1);
        let v2 = manifest(2, Duration::days(1)).sign(&authority).unwrap();
        assert!(trust.offer(&v2).unwrap());
        assert!(!trust.offer(&v2).unwrap());
        assert_eq!(
            trust.offer(&v1),
            Err(ManifestError::Older {
                offered: 1,
                held: 2
            })
        );
        let forged = manifest(3, Duration::days(1))
            .sign(&keys::generate())
            .unwrap();
        assert_eq!(trust.offer(&forged), Err(ManifestError::Signature));
        let expired = manifest(4, Duration::seconds(-1)).sign(&authority).unwrap();
        assert!(matches!(
            trust.offer(&expired),
            Err(ManifestError::Expired(_))
        ));
        // Another replica of the same database stored a newer manifest than this one holds:
        // an offer older than that one does not overwrite it, and this node takes the newer.
        let v6 = manifest(6, Duration::days(1)).sign(&authority).unwrap();
        store.set_meta(&Meta::Manifest, &v6).unwrap();
        let v5 = manifest(5, Duration::days(1)).sign(&authority).unwrap();
        assert!(trust.offer(&v5).unwrap());
        assert_eq!(trust.held().serial, 6);
        assert_eq!(store.meta(&Meta::Manifest).unwrap().unwrap(), v6);
        drop(trust);
        // A restart with the old file keeps the newer manifest held in the store.
        let trust = Trust::load(authority.verifying_key(), &v1, store).unwrap();
        assert_eq!(trust.held().serial, 6);
        assert_eq!(trust.reader_member_count(), 1);
    }

    impl Trust {
        fn reader_member_count(&self) -> usize {
            self.held().event_types[0].readers.len()
        }
    }

    #[test]
    fn an_expired_manifest_stops_exchange_with_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let authority = keys::generate();
        let old = manifest(1, Duration::seconds(-5)).sign(&authority).unwrap();
        let trust = Trust::load(
            authority.verifying_key(),
            &old,
            Store::open(dir.path()).unwrap(),
        )
        .unwrap();
        let err = trust.usable().unwrap_err();
        assert!(err.to_string().contains("expired"), "{err}");
    }
}
