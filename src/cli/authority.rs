//! `jol authority …`: the command-line face of [`crate::trust::authority`].

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Subcommand;
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime};

use crate::event::identifiers::{KeyName, MemberId};
use crate::event::keys;
use crate::event::schema::EventType;
use crate::trust::authority::Authority;
use crate::trust::manifest::{EventFormat, Member, Names, SigningKeyEntry};
use crate::trust::tls;

/// The longest any validity a command sets may run, in days (a century): a larger number is
/// refused by name rather than overflowing the date it is added to.
pub(super) const MAX_DAYS: i64 = 36_500;

#[derive(Subcommand, Debug)]
pub enum AuthorityCommand {
    /// Create the authority key, the CA and an empty draft manifest.
    Init {
        #[arg(long, default_value = "central-server")]
        instance: String,
        /// The authority's own id (its key signs as ID#manifest).
        #[arg(long, default_value = "central-server/GOV/70000000/authority")]
        id: String,
        #[arg(long, default_value_t = 3650, value_parser = clap::value_parser!(i64).range(1..=MAX_DAYS))]
        ca_days: i64,
    },
    /// Issue a node TLS certificate from the CSR the member sent.
    IssueCert {
        #[arg(long)]
        member: String,
        #[arg(long)]
        csr: PathBuf,
        #[arg(long)]
        out: PathBuf,
        #[arg(long, default_value_t = 730, value_parser = clap::value_parser!(i64).range(1..=MAX_DAYS))]
        days: i64,
    },
    /// Add a member with its peer endpoint, TLS certificate and first signing key.
    AddMember {
        #[arg(long)]
        id: String,
        #[arg(long)]
        name_ky: String,
        #[arg(long)]
        name_ru: String,
        #[arg(long)]
        name_en: String,
        /// host:port of its peer listener.
        #[arg(long)]
        endpoint: String,
        /// Its TLS certificate (the manifest keeps the key's SHA-256).
        #[arg(long)]
        tls_cert: PathBuf,
        /// NAME=PUBLIC-KEY-PEM of its event-signing key.
        #[arg(long)]
        signing_key: String,
        #[arg(long, default_value_t = 730, value_parser = clap::value_parser!(i64).range(1..=MAX_DAYS))]
        key_days: i64,
        /// The member's software still signs with the deprecated `EdDSA` algorithm name
        /// (RFC 9864); accept it from this member until `jol authority migrated`.
        #[arg(long)]
        legacy_eddsa: bool,
        /// The formats it may send its events in (`sd-jwt`, `jws`; comma-separated): a new
        /// member sends SD-JWTs; `jws` is for software from before selective disclosure.
        #[arg(long, value_delimiter = ',', default_value = "sd-jwt")]
        formats: Vec<String>,
    },
    /// Set the formats a member may send its events in (`jws`, `sd-jwt`; see the README's
    /// "Moving a federation to SD-JWT").
    Formats {
        #[arg(long)]
        id: String,
        #[arg(long, value_delimiter = ',', required = true)]
        formats: Vec<String>,
    },
    /// Record that a member signs with `Ed25519` now: `EdDSA` is refused from it from the next
    /// manifest on.
    Migrated {
        #[arg(long)]
        id: String,
    },
    /// Remove a member and its grants.
    RemoveMember {
        #[arg(long)]
        id: String,
    },
    /// Register another signing key for a member (key rotation).
    AddKey {
        /// MEMBER-ID#KEYNAME
        #[arg(long)]
        key: String,
        #[arg(long)]
        public_key: PathBuf,
        #[arg(long, default_value_t = 730, value_parser = clap::value_parser!(i64).range(1..=MAX_DAYS))]
        days: i64,
    },
    /// Revoke a signing key from a time on (default now): earlier events stay valid.
    RevokeKey {
        /// The member whose key it is (or give --key as MEMBER-ID#KEYNAME).
        #[arg(long)]
        member: Option<String>,
        /// KEYNAME with --member, else MEMBER-ID#KEYNAME.
        #[arg(long)]
        key: String,
        /// The last sequence of the member's feed the key signed validly; events it signs after
        /// it are refused, whatever time they claim.
        #[arg(long)]
        after_sequence: u64,
        /// RFC 3339 time from which checkpoints and co-signatures with the key are refused
        /// (default now).
        #[arg(long)]
        at: Option<String>,
    },
    /// Let a member publish a type, or read it for purposes.
    Grant {
        #[arg(long = "type")]
        event_type: String,
        #[arg(long, conflicts_with = "reader")]
        publisher: Option<String>,
        #[arg(long)]
        reader: Option<String>,
        /// Purposes for a reader (repeat or comma-separate).
        #[arg(long, value_delimiter = ',')]
        purpose: Vec<String>,
        /// The disclosable fields the reader receives, as JSON pointers into the event's data
        /// (comma-separated, e.g. /person/pin,/region); without it, every field. Granting the
        /// same reader and type again replaces its purposes and fields.
        #[arg(long, value_delimiter = ',', requires = "reader")]
        fields: Option<Vec<String>>,
    },
    /// Set how long events of a type about a person are kept: DAYS after the person's last
    /// event at the publisher; then every node erases them (without --days: until erased on
    /// request).
    Retention {
        #[arg(long = "type")]
        event_type: String,
        #[arg(long)]
        days: Option<u32>,
    },
    /// Sign the draft as the next manifest.
    Sign {
        #[arg(long)]
        out: PathBuf,
        #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(i64).range(1..=MAX_DAYS))]
        days: i64,
    },
    /// Print the draft manifest.
    Show,
}

pub(super) fn run(dir: &Path, command: AuthorityCommand) -> Result<()> {
    match command {
        AuthorityCommand::Init {
            instance,
            id,
            ca_days,
        } => {
            Authority::init(dir, &instance, id.parse()?, ca_days)?;
            println!(
                "authority created in {}: authority.pub.pem is the trust anchor nodes configure",
                dir.display()
            );
        }
        AuthorityCommand::IssueCert {
            member,
            csr,
            out,
            days,
        } => {
            let csr_pem = std::fs::read_to_string(&csr)
                .with_context(|| format!("cannot read {}", csr.display()))?;
            let cert = Authority::open(dir).issue_cert(&member.parse()?, &csr_pem, days)?;
            std::fs::write(&out, cert)
                .with_context(|| format!("cannot write {}", out.display()))?;
            println!("certificate for {member}: {}", out.display());
        }
        AuthorityCommand::AddMember {
            id,
            name_ky,
            name_ru,
            name_en,
            endpoint,
            tls_cert,
            signing_key,
            key_days,
            legacy_eddsa,
            formats,
        } => {
            let id: MemberId = id.parse()?;
            let cert_pem = std::fs::read_to_string(&tls_cert)
                .with_context(|| format!("cannot read {}", tls_cert.display()))?;
            let spki = tls::spki_sha256(&tls::certificate_from_pem(&cert_pem)?)?;
            let (name, public) = signing_key
                .split_once('=')
                .context("--signing-key is NAME=PUBLIC-KEY-PEM")?;
            let entry = key_entry(name, Path::new(public), key_days)?;
            Authority::open(dir).add_member(Member {
                id: id.clone(),
                names: Names {
                    ky: name_ky,
                    ru: name_ru,
                    en: name_en,
                },
                peer_endpoint: endpoint,
                tls_key_sha256: spki,
                signing_keys: vec![entry],
                legacy_eddsa,
                event_formats: event_formats(&formats)?,
            })?;
            println!("member {id} added to the draft");
        }
        AuthorityCommand::Formats { id, formats } => {
            let formats = event_formats(&formats)?;
            Authority::open(dir).set_event_formats(&id.parse()?, formats.clone())?;
            println!("{id} may send events as {formats:?} from the next manifest on");
        }
        AuthorityCommand::Migrated { id } => {
            Authority::open(dir).set_legacy_eddsa(&id.parse()?, false)?;
            println!("{id} signs with Ed25519 only from the next manifest on");
        }
        AuthorityCommand::RemoveMember { id } => {
            Authority::open(dir).remove_member(&id.parse()?)?;
            println!("member {id} removed from the draft");
        }
        AuthorityCommand::AddKey {
            key,
            public_key,
            days,
        } => {
            let kid: KeyName = key.parse()?;
            Authority::open(dir).add_key(&kid, key_entry(kid.key(), &public_key, days)?)?;
            println!("key {kid} added to the draft");
        }
        AuthorityCommand::RevokeKey {
            member,
            key,
            after_sequence,
            at,
        } => {
            let kid: KeyName = match member {
                Some(m) => KeyName::new(m.parse()?, &key)?,
                None => key.parse()?,
            };
            let at = match at {
                Some(t) => {
                    OffsetDateTime::parse(&t, &Rfc3339).context("--at is an RFC 3339 time")?
                }
                None => OffsetDateTime::now_utc(),
            };
            Authority::open(dir).revoke_key(&kid, after_sequence, at)?;
            println!(
                "key {kid} revoked after sequence {after_sequence} (statements from {at}) in the draft"
            );
        }
        AuthorityCommand::Grant {
            event_type,
            publisher,
            reader,
            purpose,
            fields,
        } => {
            let t: EventType = event_type.parse()?;
            let a = Authority::open(dir);
            let fields = fields
                .map(|list| {
                    list.iter()
                        .map(|f| f.parse())
                        .collect::<Result<Vec<_>, _>>()
                })
                .transpose()?;
            match (publisher, reader) {
                (Some(p), None) => a.grant_publish(t, &p.parse()?)?,
                (None, Some(r)) => a.grant_read(t, &r.parse()?, purpose, fields)?,
                _ => anyhow::bail!("give --publisher ID or --reader ID --purpose P"),
            }
            println!("grant on {t} added to the draft");
        }
        AuthorityCommand::Retention { event_type, days } => {
            let t: EventType = event_type.parse()?;
            Authority::open(dir).set_retention(t, days)?;
            match days {
                Some(d) => println!(
                    "{t} is kept {d} days after the person's last event, from the next manifest on"
                ),
                None => println!("{t} is kept until erased on request, from the next manifest on"),
            }
        }
        AuthorityCommand::Sign { out, days } => {
            let serial = Authority::open(dir).sign(&out, days)?;
            println!("manifest serial {serial} signed: {}", out.display());
        }
        AuthorityCommand::Show => {
            println!(
                "{}",
                serde_json::to_string_pretty(&Authority::open(dir).draft()?)?
            );
        }
    }
    Ok(())
}

fn key_entry(name: &str, public: &Path, days: i64) -> Result<SigningKeyEntry> {
    let key = keys::read_public(public)?;
    let now = OffsetDateTime::now_utc();
    Ok(SigningKeyEntry {
        name: name.to_string(),
        public_key: keys::RawPublicKey::of(&key),
        not_before: now - Duration::minutes(5),
        not_after: now + Duration::days(days),
        revoked: None,
        revoked_after_sequence: None,
    })
}

/// The formats named on the command line, as the manifest spells them.
fn event_formats(names: &[String]) -> Result<Vec<EventFormat>> {
    names
        .iter()
        .map(|n| match n.as_str() {
            "jws" => Ok(EventFormat::Jws),
            "sd-jwt" => Ok(EventFormat::SdJwt),
            other => {
                anyhow::bail!("{other:?} is not an event format; the formats are jws and sd-jwt")
            }
        })
        .collect()
}
