//! The federation authority's work (X-Road's central server, as files and commands): its key and
//! CA, the draft manifest it edits (members, keys, event-type grants), node certificates issued
//! from requests, and the signed manifest.
//!
//! An authority folder holds `authority.pem` / `authority.pub.pem` (the manifest-signing key),
//! `ca.pem` / `ca.key.pem` (the CA for node TLS certificates), `manifest.json` (the draft) and,
//! after `sign`, the signed `manifest.jws`.

use std::path::{Path, PathBuf};

use time::{Duration, OffsetDateTime};

use crate::event::disclosure::{Pointer, PERSON_PIN};
use crate::event::identifiers::{KeyName, MemberId};
use crate::event::keys::{self, KeyError};
use crate::event::schema::{EventType, Schemas};
use crate::trust::certs::{self, CertError};
use crate::trust::manifest::{
    EventFormat, Manifest, ManifestError, Member, ReaderGrant, SigningKeyEntry, TypePolicy,
};

/// Why an authority command failed.
#[derive(Debug, thiserror::Error)]
pub enum AuthorityError {
    /// A file of the authority could not be read or written.
    #[error("{path}: {source}")]
    File {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A file is not the JSON the authority wrote.
    #[error("{path} is not the JSON the authority wrote: {source}")]
    Json {
        /// The file.
        path: PathBuf,
        /// serde_json's error.
        source: serde_json::Error,
    },
    /// A key could not be read or written.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// A certificate could not be made.
    #[error(transparent)]
    Cert(#[from] CertError),
    /// The manifest could not be made or read.
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    /// The member is in the manifest already.
    #[error("{0} is already a member; remove it first or add keys with add-key")]
    MemberExists(MemberId),
    /// No such member.
    #[error("{0} is not a member")]
    NoMember(MemberId),
    /// The member has no signing key of that name.
    #[error("{0} has no signing key of that name")]
    NoKey(KeyName),
    /// The member has a signing key of that name already.
    #[error("{0} already has a signing key of that name")]
    KeyExists(KeyName),
    /// The authority folder exists already and is not empty.
    #[error("the authority folder {0} already exists and is not empty")]
    Exists(PathBuf),
    /// An argument that is not valid, and why.
    #[error("{0}")]
    Invalid(String),
}

/// An authority folder.
pub struct Authority {
    dir: PathBuf,
}

fn file_err(path: &Path, source: std::io::Error) -> AuthorityError {
    AuthorityError::File {
        path: path.to_path_buf(),
        source,
    }
}

fn read(path: &Path) -> Result<String, AuthorityError> {
    std::fs::read_to_string(path).map_err(|e| file_err(path, e))
}

fn write(path: &Path, contents: &[u8]) -> Result<(), AuthorityError> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, contents).map_err(|e| file_err(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| file_err(path, e))
}

fn write_secret(path: &Path, contents: &str) -> Result<(), AuthorityError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| file_err(path, e))?;
    f.write_all(contents.as_bytes())
        .map_err(|e| file_err(path, e))
}

/// Create a node's TLS key and CSR beside each other: `tls.pem` and `tls.csr.pem`.
pub fn node_tls_key(member: &MemberId, key_out: &Path) -> Result<PathBuf, AuthorityError> {
    if key_out.exists() {
        return Err(AuthorityError::Key(KeyError::Exists(key_out.to_path_buf())));
    }
    if let Some(dir) = key_out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| file_err(dir, e))?;
    }
    let (key_pem, csr_pem) = certs::new_node_key(member)?;
    write_secret(key_out, &key_pem)?;
    let csr = key_out.with_extension("csr.pem");
    write(&csr, csr_pem.as_bytes())?;
    Ok(csr)
}

impl Authority {
    /// The authority whose folder is `dir`.
    pub fn open(dir: &Path) -> Authority {
        Authority {
            dir: dir.to_path_buf(),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Create the authority: signing key, CA, and an empty draft manifest with the three types.
    pub fn init(
        dir: &Path,
        instance: &str,
        authority_id: MemberId,
        ca_days: i64,
    ) -> Result<Authority, AuthorityError> {
        if dir.exists()
            && std::fs::read_dir(dir)
                .map_err(|e| file_err(dir, e))?
                .next()
                .is_some()
        {
            return Err(AuthorityError::Exists(dir.to_path_buf()));
        }
        std::fs::create_dir_all(dir).map_err(|e| file_err(dir, e))?;
        let a = Authority::open(dir);
        let key = keys::generate();
        keys::write_private(&a.path("authority.pem"), &key)?;
        keys::write_public(&a.path("authority.pub.pem"), &key.verifying_key())?;
        let ca = certs::new_ca(instance, ca_days)?;
        write_secret(&a.path("ca.key.pem"), &ca.key_pem)?;
        write(&a.path("ca.pem"), ca.cert_pem.as_bytes())?;
        let now = OffsetDateTime::now_utc();
        let draft = Manifest {
            instance: instance.to_string(),
            serial: 0,
            issued: now,
            expires: now,
            authority: authority_id,
            ca_certificate: ca.cert_pem,
            members: Vec::new(),
            event_types: EventType::ALL
                .into_iter()
                .map(|t| TypePolicy::new(t, Vec::new(), Vec::new()))
                .collect(),
        };
        a.save(&draft)?;
        Ok(a)
    }

    /// The draft manifest.
    pub(crate) fn draft(&self) -> Result<Manifest, AuthorityError> {
        let path = self.path("manifest.json");
        serde_json::from_str(&read(&path)?).map_err(|source| AuthorityError::Json { path, source })
    }

    fn save(&self, m: &Manifest) -> Result<(), AuthorityError> {
        let text =
            serde_json::to_vec_pretty(m).map_err(|e| AuthorityError::Invalid(e.to_string()))?;
        write(&self.path("manifest.json"), &text)
    }

    fn edit(
        &self,
        f: impl FnOnce(&mut Manifest) -> Result<(), AuthorityError>,
    ) -> Result<(), AuthorityError> {
        let mut m = self.draft()?;
        f(&mut m)?;
        self.save(&m)
    }

    /// Issue a node TLS certificate for `member` from its CSR (PEM).
    pub fn issue_cert(
        &self,
        member: &MemberId,
        csr_pem: &str,
        days: i64,
    ) -> Result<String, AuthorityError> {
        self.issue_cert_from(
            member,
            csr_pem,
            OffsetDateTime::now_utc() - Duration::minutes(5),
            days,
        )
    }

    /// Issue with an explicit start of validity (tests use it for expired certificates).
    pub fn issue_cert_from(
        &self,
        member: &MemberId,
        csr_pem: &str,
        not_before: OffsetDateTime,
        days: i64,
    ) -> Result<String, AuthorityError> {
        let ca_cert = read(&self.path("ca.pem"))?;
        let ca_key = read(&self.path("ca.key.pem"))?;
        Ok(certs::issue_node_cert(
            csr_pem, member, &ca_cert, &ca_key, not_before, days,
        )?)
    }

    /// Add a member to the manifest draft (`sign` makes it the manifest).
    pub fn add_member(&self, member: Member) -> Result<(), AuthorityError> {
        self.edit(|m| {
            if m.member(&member.id).is_some() {
                return Err(AuthorityError::MemberExists(member.id.clone()));
            }
            m.members.push(member);
            Ok(())
        })
    }

    /// Remove a member and every grant it had.
    pub(crate) fn remove_member(&self, id: &MemberId) -> Result<(), AuthorityError> {
        self.edit(|m| {
            let before = m.members.len();
            m.members.retain(|x| &x.id != id);
            if m.members.len() == before {
                return Err(AuthorityError::NoMember(id.clone()));
            }
            for p in &mut m.event_types {
                p.publishers.retain(|x| x != id);
                p.readers.retain(|r| &r.member != id);
            }
            Ok(())
        })
    }

    /// Mark whether `id` may still sign with the deprecated `EdDSA` algorithm name.
    pub(crate) fn set_legacy_eddsa(
        &self,
        id: &MemberId,
        legacy: bool,
    ) -> Result<(), AuthorityError> {
        self.edit(|m| {
            let member = member_mut(m, id)?;
            member.legacy_eddsa = legacy;
            Ok(())
        })
    }

    pub(crate) fn add_key(
        &self,
        kid: &KeyName,
        entry: SigningKeyEntry,
    ) -> Result<(), AuthorityError> {
        self.edit(|m| {
            let member = m
                .members
                .iter_mut()
                .find(|x| &x.id == kid.member())
                .ok_or_else(|| AuthorityError::NoMember(kid.member().clone()))?;
            if member.signing_keys.iter().any(|k| k.name == kid.key()) {
                return Err(AuthorityError::KeyExists(kid.clone()));
            }
            member.signing_keys.push(entry);
            Ok(())
        })
    }

    /// Revoke a signing key: events of its member signed with it are valid up to sequence
    /// `after_sequence` of the member's feed and refused after it, whatever time they carry;
    /// checkpoints and co-signatures dated from `at` on are refused.
    pub(crate) fn revoke_key(
        &self,
        kid: &KeyName,
        after_sequence: u64,
        at: OffsetDateTime,
    ) -> Result<(), AuthorityError> {
        self.edit(|m| {
            let key = m
                .members
                .iter_mut()
                .find(|x| &x.id == kid.member())
                .ok_or_else(|| AuthorityError::NoMember(kid.member().clone()))?
                .signing_keys
                .iter_mut()
                .find(|k| k.name == kid.key())
                .ok_or_else(|| AuthorityError::NoKey(kid.clone()))?;
            key.revoked = Some(at);
            key.revoked_after_sequence = Some(after_sequence);
            Ok(())
        })
    }

    /// Let `member` publish `t`.
    pub fn grant_publish(&self, t: EventType, member: &MemberId) -> Result<(), AuthorityError> {
        self.edit(|m| {
            m.member(member)
                .ok_or_else(|| AuthorityError::NoMember(member.clone()))?;
            let p = policy_mut(m, t)?;
            if !p.publishers.contains(member) {
                p.publishers.push(member.clone());
            }
            Ok(())
        })
    }

    /// Set the formats `id` may send its events in.
    pub fn set_event_formats(
        &self,
        id: &MemberId,
        formats: Vec<EventFormat>,
    ) -> Result<(), AuthorityError> {
        if formats.is_empty() {
            return Err(AuthorityError::Invalid(
                "a member sends its events in at least one format".into(),
            ));
        }
        self.edit(|m| {
            let member = member_mut(m, id)?;
            member.event_formats = formats;
            Ok(())
        })
    }

    /// Keep events of `t` about a person `days` days after the person's last event at the
    /// publisher (`None`: until erased on request).
    pub fn set_retention(&self, t: EventType, days: Option<u32>) -> Result<(), AuthorityError> {
        if !t.is_personal() && days.is_some() {
            return Err(AuthorityError::Invalid(format!(
                "{t} is not about a person: retention applies to personal data"
            )));
        }
        self.edit(|m| {
            policy_mut(m, t)?.retention_days = days;
            Ok(())
        })
    }

    /// Let `member` read `t` for `purposes`, receiving `fields` (every field when `None`),
    /// replacing an earlier grant. The fields must be ones the type's schema marks
    /// disclosable, and a grant of a type about a person must include the PIN: a holder must
    /// know whose data it holds to honour the person's consent and erasure.
    pub fn grant_read(
        &self,
        t: EventType,
        member: &MemberId,
        purposes: Vec<String>,
        fields: Option<Vec<Pointer>>,
    ) -> Result<(), AuthorityError> {
        if purposes.is_empty() {
            return Err(AuthorityError::Invalid(
                "a read grant names at least one purpose".into(),
            ));
        }
        if let Some(fields) = &fields {
            check_fields(t, fields)?;
        }
        self.edit(|m| {
            m.member(member)
                .ok_or_else(|| AuthorityError::NoMember(member.clone()))?;
            let p = policy_mut(m, t)?;
            p.readers.retain(|r| &r.member != member);
            p.readers.push(ReaderGrant {
                member: member.clone(),
                purposes,
                fields,
            });
            Ok(())
        })
    }

    /// Sign the draft with the next serial, valid for `days`; writes `out` and returns the serial.
    pub fn sign(&self, out: &Path, days: i64) -> Result<u64, AuthorityError> {
        self.sign_at(out, OffsetDateTime::now_utc(), Duration::days(days))
    }

    /// Sign with an explicit issue time and validity (tests use it for expiring manifests).
    pub fn sign_at(
        &self,
        out: &Path,
        issued: OffsetDateTime,
        validity: Duration,
    ) -> Result<u64, AuthorityError> {
        let key = keys::read_private(&self.path("authority.pem"))?;
        let mut m = self.draft()?;
        erasures_reach_every_holder(&m)?;
        m.serial += 1;
        m.issued = issued;
        m.expires = issued + validity;
        m.ca_certificate = read(&self.path("ca.pem"))?;
        let bytes = m.sign(&key)?;
        write(out, &bytes)?;
        self.save(&m)?;
        Ok(m.serial)
    }
}

/// Every member a manifest lets read events about persons can honour an erasure: it reads
/// the erasure orders of each publisher whose personal events it reads, and may publish erasure
/// events itself (its confirmations). Refused otherwise, naming the grant to add: such a member
/// would keep its copies of an erased person's data for ever.
fn erasures_reach_every_holder(m: &Manifest) -> Result<(), AuthorityError> {
    let publishes_erasures = |id: &MemberId| m.may_publish(id, EventType::Erasure);
    let reads_erasures_of = |reader: &MemberId, publisher: &MemberId| {
        publishes_erasures(publisher) && m.reader_purposes(reader, EventType::Erasure).is_some()
    };
    for policy in m.event_types.iter().filter(|p| p.event_type.is_personal()) {
        for reader in &policy.readers {
            let holder = &reader.member;
            if let Some(publisher) = policy
                .publishers
                .iter()
                .find(|p| *p != holder && !reads_erasures_of(holder, p))
            {
                return Err(AuthorityError::Invalid(format!(
                    "{holder} may read {} about persons from {publisher} but not {publisher}'s erasure orders: `grant --type erasure --publisher {publisher}` and `grant --type erasure --reader {holder} --purpose …`, or an erased person's data stays there",
                    policy.event_type
                )));
            }
            if !policy.publishers.is_empty() && !publishes_erasures(holder) {
                return Err(AuthorityError::Invalid(format!(
                    "{holder} may read {} about persons but not publish erasure events: it could not confirm an erasure (`grant --type erasure --publisher {holder}`)",
                    policy.event_type
                )));
            }
        }
    }
    Ok(())
}

fn member_mut<'m>(m: &'m mut Manifest, id: &MemberId) -> Result<&'m mut Member, AuthorityError> {
    m.members
        .iter_mut()
        .find(|x| &x.id == id)
        .ok_or_else(|| AuthorityError::NoMember(id.clone()))
}

fn policy_mut(m: &mut Manifest, t: EventType) -> Result<&mut TypePolicy, AuthorityError> {
    m.event_types
        .iter_mut()
        .find(|p| p.event_type == t)
        .ok_or_else(|| AuthorityError::Invalid(format!("the draft has no policy for {t}")))
}

/// The fields of a read grant: each disclosable in `t`'s schema, the PIN among them when `t`
/// is about a person.
fn check_fields(t: EventType, fields: &[Pointer]) -> Result<(), AuthorityError> {
    let schemas = Schemas::load().map_err(|e| AuthorityError::Invalid(e.to_string()))?;
    let disclosable = schemas.disclosable(t);
    let list = || {
        disclosable
            .iter()
            .map(Pointer::as_str)
            .collect::<Vec<_>>()
            .join(", ")
    };
    if let Some(unknown) = fields.iter().find(|f| !disclosable.contains(f)) {
        return Err(AuthorityError::Invalid(format!(
            "{unknown} is not a disclosable field of {t}; its disclosable fields are {}",
            list()
        )));
    }
    let pin: Pointer = PERSON_PIN
        .parse()
        .map_err(|_| AuthorityError::Invalid(PERSON_PIN.into()))?;
    if t.is_personal() && !fields.contains(&pin) {
        return Err(AuthorityError::Invalid(format!(
            "a grant of {t} must include {PERSON_PIN}: a holder must know whose data it holds to honour consent and erasure"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A manifest whose readers of personal events cannot all receive and confirm erasures is
    /// not signed: the refusal names the member and the grant to add.
    #[test]
    fn a_holder_that_could_not_honour_an_erasure_is_refused() {
        use crate::trust::manifest::{ReaderGrant, TypePolicy};
        let fed = crate::federation::fixture::Federation::new();
        let mut m = fed.manifest.clone();
        let refused = erasures_reach_every_holder(&m).unwrap_err().to_string();
        assert!(
            refused.contains(fed.employment.as_str()) && refused.contains("--type erasure"),
            "{refused}"
        );
        let everyone = [&fed.migration, &fed.employment, &fed.education];
        let read = |member: &MemberId| ReaderGrant {
            member: member.clone(),
            purposes: vec!["ERASURE".into()],
            fields: None,
        };
        let mut erasure = TypePolicy::new(
            EventType::Erasure,
            vec![fed.migration.clone()],
            everyone.iter().map(|m| read(m)).collect(),
        );
        m.event_types.push(erasure.clone());
        let refused = erasures_reach_every_holder(&m).unwrap_err().to_string();
        assert!(refused.contains("could not confirm"), "{refused}");
        erasure.publishers = everyone.iter().map(|m| (*m).clone()).collect();
        m.event_types.pop();
        m.event_types.push(erasure);
        erasures_reach_every_holder(&m).unwrap();
    }
    use crate::trust::manifest::Names;

    #[test]
    fn an_authority_builds_and_signs_a_manifest_nodes_can_verify() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("authority");
        let a = Authority::init(
            &root,
            "central-server",
            "central-server/GOV/70000000/authority".parse().unwrap(),
            365,
        )
        .unwrap();
        assert!(matches!(
            Authority::init(&root, "x", "a/b/c/d".parse().unwrap(), 1),
            Err(AuthorityError::Exists(_))
        ));
        let member: MemberId = "central-server/GOV/70000001/migration".parse().unwrap();
        let csr = node_tls_key(&member, &dir.path().join("node/tls.pem")).unwrap();
        let cert = a.issue_cert(&member, &read(&csr).unwrap(), 30).unwrap();
        let spki = crate::trust::tls::spki_sha256(
            &crate::trust::tls::certificate_from_pem(&cert).unwrap(),
        )
        .unwrap();
        let key = keys::generate();
        let now = OffsetDateTime::now_utc();
        a.add_member(Member {
            id: member.clone(),
            names: Names {
                ky: "Миграция".into(),
                ru: "Миграция".into(),
                en: "Migration".into(),
            },
            peer_endpoint: "127.0.0.1:9".into(),
            tls_key_sha256: spki,
            signing_keys: vec![SigningKeyEntry {
                name: "sign-1".into(),
                public_key: keys::RawPublicKey::of(&key.verifying_key()),
                not_before: now,
                not_after: now + Duration::days(30),
                revoked: None,
                revoked_after_sequence: None,
            }],
            legacy_eddsa: false,
            event_formats: Vec::new(),
        })
        .unwrap();
        a.grant_publish(EventType::ReturneeRecord, &member).unwrap();
        let stranger: MemberId = "a/b/c/d".parse().unwrap();
        assert!(matches!(
            a.grant_publish(EventType::ReturneeRecord, &stranger),
            Err(AuthorityError::NoMember(_))
        ));
        let out = dir.path().join("manifest.jws");
        assert_eq!(a.sign(&out, 30).unwrap(), 1);
        assert_eq!(a.sign(&out, 30).unwrap(), 2);
        let authority_key = keys::read_public(&root.join("authority.pub.pem")).unwrap();
        let m = Manifest::verify(&std::fs::read(&out).unwrap(), &authority_key).unwrap();
        assert_eq!(m.serial, 2);
        assert!(m.may_publish(&member, EventType::ReturneeRecord));
        a.revoke_key(&KeyName::new(member.clone(), "sign-1").unwrap(), 7, now)
            .unwrap();
        let key = &a.draft().unwrap().members[0].signing_keys[0];
        assert_eq!(key.revoked_after_sequence, Some(7));
        assert_eq!(key.revoked, Some(now));
        a.remove_member(&member).unwrap();
        assert!(a
            .draft()
            .unwrap()
            .event_types
            .iter()
            .all(|p| p.publishers.is_empty()));
    }
}
