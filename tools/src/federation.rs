//! Laying out a federation on disk: the authority (key, CA, manifest) and, for each member, its
//! signing key, its TLS key with a CA-issued certificate (from a CSR), its membership and grants,
//! and its node config. `jol demo`, `jol bench` and the end-to-end tests build their federations
//! here; `config/federation.sh` does the same with the `jol` commands an operator runs.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use time::{Duration, OffsetDateTime};

use jol::event::disclosure::Pointer;
use jol::event::identifiers::{IdError, MemberId};
use jol::event::keys::{self, KeyError};
use jol::event::schema::EventType;
use jol::federation::sync::{Subscription, SyncSettings};
use jol::node::layout::{node_config, write_config, WriteError, KEY_NAME};
use jol::store::{Engine, PgSettings};
use jol::trust::authority::{node_tls_key, Authority, AuthorityError};
use jol::trust::manifest::{EventFormat, Member, Names, SigningKeyEntry};
use jol::trust::tls::{self, TlsError};

/// The federation's X-Road instance.
pub const INSTANCE: &str = "central-server";
/// The authority's member id.
pub const AUTHORITY: &str = "central-server/GOV/70000000/authority";
/// The example federation's members.
pub const MIGRATION: &str = "central-server/GOV/70000001/migration";
pub const EMPLOYMENT: &str = "central-server/GOV/70000002/employment";
pub const EDUCATION: &str = "central-server/GOV/70000003/education";

/// Why a federation could not be laid out.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(transparent)]
    Authority(#[from] AuthorityError),
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error(transparent)]
    Id(#[from] IdError),
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot find a free loopback port: {0}")]
    Port(std::io::Error),
    #[error("the node config cannot be written as TOML: {0}")]
    Toml(#[from] toml::ser::Error),
    #[error(transparent)]
    NodeConfig(#[from] WriteError),
    #[error(transparent)]
    Token(#[from] jol::api::tokens::TokenError),
    #[error("{0}")]
    Config(String),
    #[error(transparent)]
    Cluster(#[from] throwaway_pg::ClusterError),
}

/// Start a throwaway PostgreSQL cluster with one database per member of `plan` and point the
/// plan's stores at them (`jol demo --store postgres`, the tests, the benchmarks). Keep the
/// cluster: dropping it stops the server.
pub fn on_throwaway_postgres(
    plan: &mut FederationPlan,
) -> Result<throwaway_pg::Cluster, BuildError> {
    let cluster = throwaway_pg::Cluster::start(&[])?;
    plan.engine = Engine::Postgres;
    for m in &plan.members {
        let database = PgSettings::new(cluster.database(&m.folder)?);
        plan.databases.insert(m.folder.clone(), database);
    }
    Ok(cluster)
}

/// One member of the federation to lay out.
#[derive(Debug, Clone)]
pub struct MemberPlan {
    /// The member's folder under the federation's folder.
    pub folder: String,
    pub id: MemberId,
    pub names: Names,
    /// The types it publishes.
    pub publishes: Vec<EventType>,
    /// The purpose it is granted when reading any other member's types.
    pub purpose: String,
    /// Where it pulls from: each publisher and the types it takes from it.
    pub subscriptions: Vec<Subscription>,
    pub local_listen: SocketAddr,
    pub peer_listen: SocketAddr,
}

/// A federation to lay out.
#[derive(Debug, Clone)]
pub struct FederationPlan {
    pub members: Vec<MemberPlan>,
    pub engine: Engine,
    /// With engine `postgres`: each member's database, by folder.
    pub databases: std::collections::HashMap<String, PgSettings>,
    pub sync: SyncSettings,
    /// How long the signed manifest is valid.
    pub manifest_days: i64,
    /// The disclosable fields each reader receives of each type, by the reader's folder; a
    /// reader and type not listed receive every field.
    pub fields: Vec<FieldGrant>,
}

/// The fields one reader is granted of one type (JSON pointers into the event's data).
#[derive(Debug, Clone)]
pub struct FieldGrant {
    pub reader: String,
    pub event_type: EventType,
    pub fields: Vec<&'static str>,
}

impl FederationPlan {
    /// The fields `reader` is granted of `t` (`None`: every field).
    fn fields_of(&self, reader: &str, t: EventType) -> Result<Option<Vec<Pointer>>, BuildError> {
        let Some(grant) = self
            .fields
            .iter()
            .find(|g| g.reader == reader && g.event_type == t)
        else {
            return Ok(None);
        };
        grant
            .fields
            .iter()
            .map(|f| {
                f.parse()
                    .map_err(|_| BuildError::Config(format!("{f} is not a JSON pointer")))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
    }

    /// Let `reader` (a member's folder) receive every field of `t`.
    pub fn grant_every_field(&mut self, reader: &str, t: EventType) {
        self.fields
            .retain(|g| !(g.reader == reader && g.event_type == t));
    }
}

/// What each agency of the example federation receives of the others' events: what its views,
/// KPIs and matching use, and nothing else (the README's privacy section lists it). The
/// returnee's name goes to the employment service, which serves the person, not to the
/// education ministry; no reader gets the case number, the locality code, the months abroad or
/// the plan to migrate again, nor the employer's industry code, the reason a job ended or how
/// its formality was evidenced.
pub fn minimal_fields() -> Vec<FieldGrant> {
    const RETURNEE_FOR_KPIS: [&str; 8] = [
        "/person/pin",
        "/person/pinHistory",
        "/person/sex",
        "/person/birthDate",
        "/region",
        "/educationLevel",
        "/staysAbroad",
        "/return/source",
    ];
    const RETURNEE_FOR_MATCHING: [&str; 4] = [
        "/person/name",
        "/occupationAbroad",
        "/skillsAcquired",
        "/preferredLanguage",
    ];
    const STATUS: [&str; 14] = [
        "/person/pin",
        "/labourForceStatus",
        "/registration/office",
        "/registration/region",
        "/profiling/segment",
        "/profiling/targetIsco08",
        "/referral/courseCode",
        "/referral/providerId",
        "/referral/vacancyId",
        "/job/icse18",
        "/job/formality",
        "/job/contractDuration",
        "/job/isco08",
        "/job/region",
    ];
    const STATUS_LINKS: [&str; 2] = ["/job/trainingEnrolmentId", "/job/vacancyId"];
    const TRAINING: [&str; 4] = ["/person/pin", "/provider", "/course", "/credential"];
    let grant = |reader: &str, event_type, fields: Vec<&'static str>| FieldGrant {
        reader: reader.into(),
        event_type,
        fields,
    };
    vec![
        grant(
            "employment",
            EventType::ReturneeRecord,
            [&RETURNEE_FOR_KPIS[..], &RETURNEE_FOR_MATCHING[..]].concat(),
        ),
        grant(
            "education",
            EventType::ReturneeRecord,
            RETURNEE_FOR_KPIS.to_vec(),
        ),
        grant(
            "migration",
            EventType::EmploymentStatus,
            [&STATUS[..], &STATUS_LINKS[..]].concat(),
        ),
        grant(
            "education",
            EventType::EmploymentStatus,
            [&STATUS[..], &STATUS_LINKS[..]].concat(),
        ),
        grant("migration", EventType::TrainingEnrolment, TRAINING.to_vec()),
        grant(
            "employment",
            EventType::TrainingEnrolment,
            TRAINING.to_vec(),
        ),
    ]
}

/// The migration agency, the employment service and the education ministry: each publishes its
/// own types (returnee records; employment status and vacancies; training enrolments, course
/// offers and the credentials it issued) and its erasures (orders, and confirmations of the others' orders), every other
/// member may read them for the reader's own purpose, and each subscribes
/// to the other two. Ports are free loopback ports chosen now.
pub fn three_agencies() -> Result<FederationPlan, BuildError> {
    let agencies = [
        (
            "migration",
            MIGRATION,
            [
                "Миграция агенттиги",
                "Агентство по миграции",
                "Migration Agency",
            ],
            &[EventType::ReturneeRecord, EventType::Erasure][..],
            "REINTEGRATION_CASE_MANAGEMENT",
        ),
        (
            "employment",
            EMPLOYMENT,
            [
                "Иш менен камсыз кылуу кызматы",
                "Служба занятости",
                "Employment Service",
            ],
            &[
                EventType::EmploymentStatus,
                EventType::Vacancy,
                EventType::Erasure,
            ][..],
            "EMPLOYMENT_SERVICES",
        ),
        (
            "education",
            EDUCATION,
            [
                "Билим берүү министрлиги",
                "Министерство образования",
                "Ministry of Education",
            ],
            &[
                EventType::TrainingEnrolment,
                EventType::CourseOffer,
                EventType::Erasure,
                EventType::CredentialIssued,
            ][..],
            "TRAINING_SERVICES",
        ),
    ];
    let mut members = Vec::new();
    for (folder, id, [ky, ru, en], publishes, purpose) in &agencies {
        let subscriptions = agencies
            .iter()
            .filter(|other| other.1 != *id)
            .map(|other| {
                Ok(Subscription {
                    from: parse_id(other.1)?,
                    types: other.3.to_vec(),
                    via: None,
                })
            })
            .collect::<Result<_, BuildError>>()?;
        members.push(MemberPlan {
            folder: folder.to_string(),
            id: parse_id(id)?,
            names: Names {
                ky: ky.to_string(),
                ru: ru.to_string(),
                en: en.to_string(),
            },
            publishes: publishes.to_vec(),
            purpose: purpose.to_string(),
            subscriptions,
            local_listen: free_loopback()?,
            peer_listen: free_loopback()?,
        });
    }
    Ok(FederationPlan {
        members,
        engine: Engine::default(),
        databases: Default::default(),
        sync: SyncSettings {
            wait_secs: 10,
            max_backoff_ms: 2_000,
            ..SyncSettings::default()
        },
        manifest_days: 30,
        fields: minimal_fields(),
    })
}

fn parse_id(id: &str) -> Result<MemberId, BuildError> {
    Ok(id.parse()?)
}

/// A free port on 127.0.0.1 for a node that binds it when it starts (see [`jol::ports`]).
pub fn free_loopback() -> Result<SocketAddr, BuildError> {
    jol::ports::free_loopback().map_err(BuildError::Port)
}

/// One member as laid out: its folder name, its `node.toml`, and its operator token.
#[derive(Debug, Clone)]
pub struct LaidOut {
    pub folder: String,
    pub config: PathBuf,
    /// The bearer token named [`OPERATOR`] (scope admin, the member's purpose); only its
    /// SHA-256 is in the node's tokens file.
    pub operator_token: String,
}

/// The name of the token [`create`] gives each member's operator.
pub const OPERATOR: &str = "operator";

/// Lay out `plan` in `dir` (which must not hold an authority yet). Returns each member as laid
/// out, in the plan's order.
pub fn create(dir: &Path, plan: &FederationPlan) -> Result<Vec<LaidOut>, BuildError> {
    let authority = Authority::init(&dir.join("authority"), INSTANCE, parse_id(AUTHORITY)?, 3650)?;
    let mut configs = Vec::new();
    for m in &plan.members {
        let folder = dir.join(&m.folder);
        enrol(&authority, &folder, m)?;
        let config = folder.join("node.toml");
        let mut node = node_config(
            m.id.clone(),
            m.local_listen,
            m.peer_listen,
            m.subscriptions.clone(),
            plan.engine,
            plan.sync,
        );
        if plan.engine == Engine::Postgres {
            let database = plan.databases.get(&m.folder).ok_or_else(|| {
                BuildError::Config(format!("no PostgreSQL database planned for {}", m.folder))
            })?;
            node.store = Some(database.clone());
        }
        write_config(&config, &node)?;
        let operator_token = operator_token(&folder.join(&node.local.tokens_file), &m.purpose)?;
        configs.push(LaidOut {
            folder: m.folder.clone(),
            config,
            operator_token,
        });
    }
    for publisher in &plan.members {
        for &t in &publisher.publishes {
            authority.grant_publish(t, &publisher.id)?;
            for reader in plan.members.iter().filter(|r| r.id != publisher.id) {
                let fields = plan.fields_of(&reader.folder, t)?;
                authority.grant_read(t, &reader.id, vec![reader.purpose.clone()], fields)?;
            }
        }
    }
    authority.sign(&dir.join("manifest.jws"), plan.manifest_days)?;
    Ok(configs)
}

/// Give a node's operator a token with every scope, reading for `purpose`; returns the token.
pub fn operator_token(tokens_file: &Path, purpose: &str) -> Result<String, BuildError> {
    Ok(jol::api::tokens::create(
        tokens_file,
        OPERATOR,
        vec![jol::api::tokens::Scope::Admin],
        purpose,
        None,
    )?)
}

/// At the member: a signing key and a TLS key with its CSR. At the authority: the certificate
/// and the membership.
fn enrol(authority: &Authority, folder: &Path, m: &MemberPlan) -> Result<(), BuildError> {
    let sign = keys::generate();
    keys::write_private(&folder.join("keys/sign.pem"), &sign)?;
    keys::write_public(&folder.join("keys/sign.pub.pem"), &sign.verifying_key())?;
    let csr = node_tls_key(&m.id, &folder.join("keys/tls.pem"))?;
    let csr_pem = std::fs::read_to_string(&csr).map_err(|source| BuildError::Write {
        path: csr.clone(),
        source,
    })?;
    let cert = authority.issue_cert(&m.id, &csr_pem, 730)?;
    let cert_path = folder.join("keys/tls.cert.pem");
    std::fs::write(&cert_path, &cert).map_err(|source| BuildError::Write {
        path: cert_path,
        source,
    })?;
    let now = OffsetDateTime::now_utc();
    authority.add_member(Member {
        id: m.id.clone(),
        names: m.names.clone(),
        peer_endpoint: m.peer_listen.to_string(),
        tls_key_sha256: tls::spki_sha256(&tls::certificate_from_pem(&cert)?)?,
        signing_keys: vec![SigningKeyEntry {
            name: KEY_NAME.into(),
            public_key: keys::RawPublicKey::of(&sign.verifying_key()),
            not_before: now - Duration::minutes(5),
            not_after: now + Duration::days(730),
            revoked: None,
            revoked_after_sequence: None,
        }],
        legacy_eddsa: false,
        event_formats: vec![EventFormat::SdJwt],
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use jol::node::config::NodeConfig;

    #[test]
    fn a_laid_out_federation_loads_and_its_manifest_lists_every_member() {
        let dir = tempfile::tempdir().unwrap();
        let plan = three_agencies().unwrap();
        let configs = create(dir.path(), &plan).unwrap();
        assert_eq!(configs.len(), 3);
        for (laid, m) in configs.iter().zip(&plan.members) {
            let (folder, path) = (&laid.folder, &laid.config);
            assert_eq!(folder, &m.folder);
            let c = NodeConfig::load(path).unwrap();
            let token = c
                .tokens()
                .unwrap()
                .verify(&laid.operator_token)
                .unwrap()
                .unwrap();
            assert_eq!(token.purpose, m.purpose);
            assert_eq!(c.member, m.id);
            assert_eq!(c.subscriptions.len(), 2);
            assert_eq!(c.data_dir, dir.path().join(folder).join("data"));
            assert_eq!(c.sync.wait_secs, 10);
        }
        let authority_key =
            keys::read_public(&dir.path().join("authority/authority.pub.pem")).unwrap();
        let bytes = std::fs::read(dir.path().join("manifest.jws")).unwrap();
        let manifest = jol::trust::manifest::Manifest::verify(&bytes, &authority_key).unwrap();
        assert_eq!(manifest.members.len(), 3);
        for m in &plan.members {
            assert!(manifest.may_publish(&m.id, m.publishes[0]));
        }
    }
}
