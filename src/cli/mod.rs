//! The node's command line (`jol-node`): argument definitions and the work each subcommand
//! does. jol-tools' `jol` binary takes these same commands ([`Command`], [`run`]) and adds its
//! own (`demo`, `bench`, `xroad-standin`).
//!
//! Why one long file: each small subcommand's work is a few lines here beside its arguments; the
//! large one (authority) has a file of its own.

mod authority;
mod credential;

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use bytes::Bytes;
use clap::{Parser, Subcommand};

use crate::event::keys;
use crate::event::schema::{EventType, Schemas};
use crate::net::client::HttpClient;
use crate::node::config::NodeConfig;
use crate::node::RunningNode;
use crate::progress::Lines;

/// A command line: the node's commands ([`Command`]), or, for jol-tools' `jol`, those and its
/// own (`C`).
#[derive(Parser, Debug)]
#[command(
    name = "jol",
    version,
    about = "Jol: a federated node for signed, schema-validated events"
)]
pub struct Cli<C: Subcommand = Command> {
    /// Log as JSON lines instead of text.
    #[arg(long, global = true)]
    pub log_json: bool,
    /// What to do.
    #[command(subcommand)]
    pub command: C,
}

/// The node's commands (`jol-node`; jol-tools' `jol` adds its own).
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Generate an Ed25519 signing key (PKCS#8 PEM) and its public key (SPKI PEM).
    Keygen {
        /// Where to write the private key; the public key goes beside it as NAME.pub.pem.
        #[arg(long)]
        out: PathBuf,
    },
    /// Generate a node's TLS key and a certificate signing request for the authority.
    TlsKeygen {
        /// The member the key is for.
        #[arg(long)]
        member: String,
        /// Where to write the private key; the CSR goes beside it as NAME.csr.pem.
        #[arg(long)]
        out: PathBuf,
    },
    /// The federation authority's work (X-Road's central server).
    Authority {
        /// The authority folder.
        #[arg(long)]
        dir: PathBuf,
        /// What the authority does.
        #[command(subcommand)]
        command: crate::cli::authority::AuthorityCommand,
    },
    /// Write a node's config (node.toml) for a member of a federation laid out as the example:
    /// keys under `keys/`, the authority's public key and the manifest one folder up.
    InitNode {
        /// Where to write the config; relative paths in it are relative to its folder.
        #[arg(long)]
        out: PathBuf,
        /// The member (subsystem) id.
        #[arg(long)]
        member: String,
        /// The local API's address (loopback).
        #[arg(long)]
        local_listen: std::net::SocketAddr,
        /// The peer listener's address (mutual TLS).
        #[arg(long)]
        peer_listen: std::net::SocketAddr,
        /// A subscription, `MEMBER-ID=TYPE[,TYPE…]`; repeat for each publisher.
        #[arg(long = "subscribe")]
        subscriptions: Vec<String>,
        /// The store engine for the node's new store (a `postgres` store also needs a [store]
        /// section with its url, added by hand).
        #[arg(long, default_value_t = crate::store::Engine::default())]
        store_engine: crate::store::Engine,
    },
    /// The local API's bearer tokens (the node's `[local] tokens_file`).
    Token {
        /// The node's config.
        #[arg(long)]
        config: PathBuf,
        /// What to do with the tokens.
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Credentials: make the issuer's key, or verify a credential offline.
    Credential {
        /// What to do.
        #[command(subcommand)]
        command: credential::CredentialCommand,
    },
    /// Run a node.
    Serve {
        /// The node's config.
        #[arg(long)]
        config: PathBuf,
    },
    /// Publish an event through a running node's local API.
    Publish {
        /// The node's config (for the local API address and token).
        #[arg(long)]
        config: PathBuf,
        /// Event type: returnee-record, training-enrolment or employment-status.
        #[arg(long = "type")]
        event_type: String,
        /// A JSON file with the event's data.
        #[arg(long)]
        file: PathBuf,
        /// Makes a retry return the first result instead of publishing twice.
        #[arg(long)]
        idempotency_key: Option<String>,
        /// The bearer token, when the node requires one.
        #[arg(long, env = "JOL_TOKEN")]
        token: Option<String>,
    },
    /// Check a data document against its type's schema, without a node.
    Validate {
        /// Event type: returnee-record, training-enrolment or employment-status.
        #[arg(long = "type")]
        event_type: String,
        /// A JSON file with the event's data.
        #[arg(long)]
        file: PathBuf,
    },
    /// Print a person's registry view from a node's data dir (the node must be stopped).
    View {
        /// The person's PIN.
        pin: String,
        /// The node's config (its member id, and where its store is; an embedded store's
        /// node must be stopped).
        #[arg(long)]
        config: PathBuf,
        /// Why the operator reads, as a token's purpose (e.g. EMPLOYMENT_SERVICES): the view is
        /// what a token with it may read, decided by the person's consent, and the purpose goes
        /// to the person's access log.
        #[arg(long)]
        purpose: String,
        /// Reference date for derived facts (default today).
        #[arg(long)]
        as_of: Option<String>,
    },
    /// Print the KPIs from a node's data dir (the node must be stopped): the seed's tables 1 and 2.
    Kpi {
        /// The node's data dir.
        #[arg(long)]
        data_dir: PathBuf,
        /// Reference date (default today).
        #[arg(long)]
        as_of: Option<String>,
        /// The employment service's member id (registration coverage).
        #[arg(long, default_value = "central-server/GOV/70000002/employment")]
        employment_service: String,
        /// Print the whole report as JSON instead.
        #[arg(long)]
        json: bool,
        /// Print CSV instead.
        #[arg(long)]
        csv: bool,
        /// Keep cells under 5 persons (for internal use only; a read of every person counted,
        /// in their access logs).
        #[arg(long)]
        no_suppress: bool,
    },
    /// Throw the registry views away and project the whole log again (the node must be stopped;
    /// on a PostgreSQL store, every replica of it).
    RebuildView {
        /// The node's data dir.
        #[arg(long, required_unless_present = "config")]
        data_dir: Option<PathBuf>,
        /// The node's config instead (needed for a PostgreSQL store).
        #[arg(long, conflicts_with = "data_dir")]
        config: Option<PathBuf>,
    },
    /// Audit a stopped node's verifiable log: recompute the Merkle tree, check every event's
    /// signature and every checkpoint; report the first problem with its index (exit code 1).
    Verify {
        /// The node's config (data dir, and the manifest for signature checks).
        #[arg(long, conflicts_with = "data_dir")]
        config: Option<PathBuf>,
        /// Only the data dir (no signature checks without a manifest).
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Check an evidence bundle instead (needs --authority-key).
        #[arg(long, conflicts_with_all = ["config", "data_dir"], requires = "authority_key")]
        bundle: Option<PathBuf>,
        /// The federation authority's public key (the only trust a bundle check needs).
        #[arg(long)]
        authority_key: Option<PathBuf>,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Write an evidence bundle (events, inclusion proofs, signed checkpoint, manifest) from a
    /// stopped node, for one person or a range of publish dates.
    Export {
        /// The node's config.
        #[arg(long)]
        config: PathBuf,
        /// The person whose events to export.
        #[arg(long, conflicts_with_all = ["from", "to"])]
        pin: Option<String>,
        /// The first publish date of the range.
        #[arg(long, requires = "to")]
        from: Option<String>,
        /// The last publish date of the range.
        #[arg(long)]
        to: Option<String>,
        /// Where to write the bundle.
        #[arg(long)]
        out: PathBuf,
    },
    /// Make a self-signed TLS certificate for an information system's or a security server's
    /// internal TLS (writes OUT with the key, mode 0600, and OUT's `.cert.pem` beside it).
    XroadCert {
        /// The name the certificate is for (`localhost` is added).
        #[arg(long)]
        name: String,
        /// Where to write the key.
        #[arg(long)]
        out: PathBuf,
    },
    /// The node's verifiable log in C2SP formats.
    Log {
        /// What to print.
        #[command(subcommand)]
        command: LogCommand,
    },
    /// A node's store.
    Store {
        /// The node's config.
        #[arg(long)]
        config: PathBuf,
        /// What to do with the store.
        #[command(subcommand)]
        command: StoreCommand,
    },
}

/// `jol log`: the node's verifiable log.
#[derive(Subcommand, Debug)]
pub enum LogCommand {
    /// Print the verifier key of the node's checkpoints (c2sp.org/signed-note), as Go's
    /// `golang.org/x/mod/sumdb/note` reads it: `<member>/jol-log+<key id>+<base64 key>`.
    Vkey {
        /// The node's config (its member id and signing key).
        #[arg(long)]
        config: PathBuf,
    },
}

/// `jol store`: a node's store.
#[derive(Subcommand, Debug)]
pub enum StoreCommand {
    /// Bring a PostgreSQL store's schema to this jol's version (replicas may run meanwhile:
    /// migrations take a lock and each runs in one transaction).
    Migrate,
    /// Say where the store is, its engine, its schema version and which replica is the writer.
    Status,
    /// Rewrite the store so that nothing deleted or overwritten (an erasure) is left in its
    /// files: an embedded store while its node is stopped; a PostgreSQL store's tables by
    /// `VACUUM FULL`, while the replicas run (each waits while a table is rewritten).
    Compact,
}

/// `jol token`: the local API's bearer tokens.
#[derive(Subcommand, Debug)]
pub enum TokenCommand {
    /// Create a token and print it once (only its SHA-256 is kept).
    Create {
        /// The token's name (access-log records say who read by it).
        #[arg(long)]
        name: String,
        /// Comma-separated: publish, read-events, read-persons, read-kpi, monitor, admin.
        #[arg(long, value_delimiter = ',', required = true)]
        scopes: Vec<String>,
        /// Why its holder reads personal data: written to every access-log record; a person
        /// lookup is refused unless the person's consent names it (e.g. EMPLOYMENT_SERVICES).
        #[arg(long)]
        purpose: String,
        /// Days until it expires (default: never).
        #[arg(long, value_parser = clap::value_parser!(i64).range(1..=authority::MAX_DAYS))]
        expires: Option<i64>,
    },
    /// List the tokens (names, scopes, purposes, expiry; never the tokens).
    List,
    /// Remove a token; a running node refuses it at once.
    Revoke {
        /// The token's name.
        #[arg(long)]
        name: String,
    },
}

/// Do the work of a parsed command.
pub async fn run(command: Command) -> Result<()> {
    match command {
        Command::Keygen { out } => keygen(&out),
        Command::TlsKeygen { member, out } => {
            let csr = crate::trust::authority::node_tls_key(&member.parse()?, &out)?;
            println!(
                "TLS key: {}\nCSR (send to the authority): {}",
                out.display(),
                csr.display()
            );
            Ok(())
        }
        Command::Authority { dir, command } => crate::cli::authority::run(&dir, command),
        Command::InitNode {
            out,
            member,
            local_listen,
            peer_listen,
            subscriptions,
            store_engine,
        } => init_node(
            &out,
            &member,
            local_listen,
            peer_listen,
            &subscriptions,
            store_engine,
        ),
        Command::Token { config, command } => token(&config, command),
        Command::Serve { config } => serve(&config).await,
        Command::Publish {
            config,
            event_type,
            file,
            idempotency_key,
            token,
        } => publish(&config, &event_type, &file, idempotency_key, token).await,
        Command::Validate { event_type, file } => validate(&event_type, &file),
        Command::Credential { command } => credential::run(command).await,
        Command::Store { config, command } => store_command(&config, command),
        Command::Log {
            command: LogCommand::Vkey { config },
        } => {
            println!("{}", log_vkey(&config)?);
            Ok(())
        }
        Command::XroadCert { name, out } => {
            let cert = crate::trust::pinned::write_self_signed(&name, &out)?;
            println!("key: {}\ncertificate: {}", out.display(), cert.display());
            Ok(())
        }
        Command::Verify {
            bundle: Some(bundle),
            authority_key,
            json,
            ..
        } => verify_bundle(&bundle, authority_key.as_deref(), json),
        Command::Verify {
            config,
            data_dir,
            json,
            ..
        } => verify(config.as_deref(), data_dir.as_deref(), json),
        Command::Export {
            config,
            pin,
            from,
            to,
            out,
        } => export(&config, pin, from.as_deref(), to.as_deref(), &out),
        Command::View {
            pin,
            config,
            purpose,
            as_of,
        } => view(&pin, &config, &purpose, as_of.as_deref()),
        Command::Kpi {
            data_dir,
            as_of,
            employment_service,
            json,
            csv,
            no_suppress,
        } => kpi(
            &data_dir,
            as_of.as_deref(),
            &employment_service,
            json,
            csv,
            !no_suppress,
        ),
        Command::RebuildView { data_dir, config } => {
            let (store, _lease) = match (config, data_dir) {
                (Some(c), _) => open_to_write(&NodeConfig::load(&c)?)?,
                (None, Some(d)) => (open_offline(&d)?, None),
                (None, None) => bail!("give --config FILE or --data-dir DIR"),
            };
            let started = std::time::Instant::now();
            let n = crate::registry::projector::rebuild_with(&store, &mut Lines::stderr())?;
            println!(
                "rebuilt the views from {n} events in {:.2} s",
                started.elapsed().as_secs_f64()
            );
            Ok(())
        }
    }
}

/// The verifier key of the node's checkpoint notes: its event key under its log's origin.
fn log_vkey(config: &Path) -> Result<String> {
    let config = NodeConfig::load(config)?;
    let key = keys::read_private(&config.signing.key_file)?;
    let origin = crate::log::checkpoint::log_origin(&config.member);
    let vkey = crate::log::note::VerifierKey::new(
        &origin,
        crate::log::note::KeyType::Ed25519,
        key.verifying_key(),
    )?;
    Ok(vkey.to_string())
}

fn store_command(config: &Path, command: StoreCommand) -> Result<()> {
    use crate::store::postgres::{lease, schema};
    let config = NodeConfig::load(config)?;
    let Some(settings) = &config.store else {
        match command {
            StoreCommand::Migrate => bail!(
                "{} is an embedded store: it has no schema to migrate (only a PostgreSQL store does)",
                config.data_dir.display()
            ),
            StoreCommand::Compact => {
                let store = crate::store::Store::open(&config.data_dir).with_context(|| {
                    format!(
                        "cannot open {} to compact it (is its node running? stop it first: \
                         compaction needs the store's files alone)",
                        config.data_dir.display()
                    )
                })?;
                println!("{}", store.compact()?);
                return Ok(());
            }
            StoreCommand::Status => {
                let store = open_offline(&config.data_dir)?;
                println!(
                    "{} store at {}: {} events",
                    store.engine(),
                    config.data_dir.display(),
                    store.last_position()?
                );
                return Ok(());
            }
        }
    };
    match command {
        StoreCommand::Migrate => {
            let (before, after) = schema::migrate_database(settings)?;
            match before == after {
                true => println!(
                    "{}: schema at version {after}, nothing to do",
                    settings.describe()
                ),
                false => println!(
                    "{}: schema migrated from version {before} to {after}",
                    settings.describe()
                ),
            }
        }
        StoreCommand::Compact => {
            let store = crate::store::Store::open_postgres(settings)?;
            println!("{}", store.compact()?);
        }
        StoreCommand::Status => {
            let store = crate::store::Store::open_postgres(settings)?;
            let pg = store.postgres().context("not a PostgreSQL store")?;
            let (epoch, holder) = lease::holder(&pg)?;
            println!(
                "{}: schema version {}, {} events, writer lease epoch {epoch} held by {}",
                settings.describe(),
                schema::VERSION,
                store.last_position()?,
                holder.as_deref().unwrap_or("nobody yet")
            );
        }
    }
    Ok(())
}

fn init_node(
    out: &Path,
    member: &str,
    local_listen: std::net::SocketAddr,
    peer_listen: std::net::SocketAddr,
    subscriptions: &[String],
    engine: crate::store::Engine,
) -> Result<()> {
    use crate::federation::sync::Subscription;
    use crate::node::layout::{node_config, write_config};
    let subscriptions = subscriptions
        .iter()
        .map(|s| {
            let (from, types) = s
                .split_once('=')
                .context("--subscribe is MEMBER-ID=TYPE[,TYPE…]")?;
            Ok(Subscription {
                from: from.parse()?,
                types: types.split(',').map(parse_type).collect::<Result<_>>()?,
                via: None,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let config = node_config(
        member.parse()?,
        local_listen,
        peer_listen,
        subscriptions,
        engine,
        Default::default(),
    );
    write_config(out, &config)?;
    println!("node config: {}", out.display());
    Ok(())
}

fn token(config: &Path, command: TokenCommand) -> Result<()> {
    use crate::api::tokens;
    let config = NodeConfig::load(config)?;
    let file = config.local.tokens_file.clone();
    match command {
        TokenCommand::Create {
            name,
            scopes,
            purpose,
            expires,
        } => {
            let scopes = scopes
                .iter()
                .map(|s| s.parse())
                .collect::<Result<Vec<tokens::Scope>, _>>()?;
            let expires =
                expires.map(|d| time::OffsetDateTime::now_utc() + time::Duration::days(d));
            let secret = tokens::create(&file, &name, scopes, &purpose, expires)?;
            println!("{secret}");
            eprintln!(
                "token {name} created in {}; it is shown only now",
                file.display()
            );
        }
        TokenCommand::List => {
            for t in tokens::read(&file)? {
                let scopes: Vec<&str> = t.scopes.iter().map(|s| s.as_str()).collect();
                println!(
                    "{}\t{}\t{}\t{}",
                    t.name,
                    scopes.join(","),
                    t.purpose,
                    t.expires.map_or("never".to_string(), |e| e.to_string())
                );
            }
        }
        TokenCommand::Revoke { name } => {
            tokens::revoke(&file, &name)?;
            println!("token {name} revoked");
        }
    }
    Ok(())
}

fn keygen(out: &Path) -> Result<()> {
    let key = keys::generate();
    let public = out.with_extension("pub.pem");
    keys::write_private(out, &key)?;
    keys::write_public(&public, &key.verifying_key())?;
    println!("private key: {}", out.display());
    println!("public key:  {}", public.display());
    println!(
        "public (base64url): {}",
        keys::public_b64(&key.verifying_key())
    );
    Ok(())
}

async fn serve(config: &Path) -> Result<()> {
    let config = NodeConfig::load(config)?;
    let node = RunningNode::start(&config).await?;
    let stopped = shutdown_signal();
    // One machine-readable line on stdout, so scripts and tests learn the bound address.
    println!(
        "{}",
        serde_json::json!({"listening": {
            "local": node.local_addr().to_string(),
            "peer": node.peer_addr().map(|a| a.to_string()),
            "xroad": node.xroad_addr().map(|a| a.to_string()),
        }})
    );
    let deposed = tokio::select! {
        () = stopped => None,
        why = node.deposed() => Some(why),
    };
    tracing::info!("stopping");
    node.stop().await;
    match deposed {
        // Exit with an error so that the supervisor restarts this replica, as a standby.
        Some(why) => bail!("this replica stopped: {why}"),
        None => Ok(()),
    }
}

/// Install the handler for SIGTERM now (before the caller says it is up, so a SIGTERM that
/// follows at once still stops it cleanly); the returned future ends at SIGTERM or Ctrl-C.
pub fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    use tokio::signal::unix::{signal, SignalKind};
    let term = signal(SignalKind::terminate()).ok();
    async move {
        match term {
            Some(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {},
                    _ = term.recv() => {},
                }
            }
            None => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
}

fn parse_type(name: &str) -> Result<EventType> {
    name.parse::<EventType>()
        .with_context(|| format!("--type {name}"))
}

fn read_json(file: &Path) -> Result<serde_json::Value> {
    let text = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    serde_json::from_slice(&text).with_context(|| format!("{} is not valid JSON", file.display()))
}

async fn publish(
    config: &Path,
    event_type: &str,
    file: &Path,
    idempotency_key: Option<String>,
    token: Option<String>,
) -> Result<()> {
    let config = NodeConfig::load(config)?;
    let event_type = parse_type(event_type)?;
    let data = read_json(file)?;
    let mut body = serde_json::json!({"type": event_type, "data": data});
    if let Some(k) = idempotency_key {
        body["idempotencyKey"] = k.into();
    }
    let mut client = HttpClient::connect(config.local.listen)
        .await
        .context("is the node running? (jol serve --config …)")?
        .with_token(token);
    let (status, answer) = client
        .post_json("/api/v1/events", Bytes::from(body.to_string()))
        .await?;
    println!("{}", String::from_utf8_lossy(&answer));
    if !status.is_success() {
        bail!("the node refused the event ({status})");
    }
    Ok(())
}

fn validate(event_type: &str, file: &Path) -> Result<()> {
    let event_type = parse_type(event_type)?;
    let data = read_json(file)?;
    match Schemas::load()?.validate(event_type, &data) {
        Ok(()) => {
            println!("valid {event_type}");
            Ok(())
        }
        Err(errors) => {
            for e in &errors {
                println!(
                    "{}: {} ({})",
                    display_pointer(&e.pointer),
                    e.reason,
                    e.keyword
                );
            }
            bail!("{} failing field(s) in {}", errors.len(), file.display())
        }
    }
}

fn display_pointer(p: &str) -> &str {
    if p.is_empty() {
        "(document)"
    } else {
        p
    }
}

fn open_offline(data_dir: &Path) -> Result<crate::store::Store> {
    crate::store::Store::open(data_dir).with_context(|| {
        format!(
            "cannot open {} (is its node running? stop it, or use the node's API)",
            data_dir.display()
        )
    })
}

/// The store a node's config names: its data dir (the node must be stopped), or its
/// PostgreSQL database (read while the replicas run; writes need the writer lease).
fn open_configured(config: &NodeConfig) -> Result<crate::store::Store> {
    match config.store_location() {
        location @ crate::store::Location::Postgres(_) => {
            let at = location.to_string();
            crate::store::Store::open_at(location).with_context(|| format!("cannot open {at}"))
        }
        _ => open_offline(&config.data_dir),
    }
}

/// The store a node's config names, to write to while its node is stopped: on PostgreSQL the
/// writer lease is taken (and held while the returned receiver lives).
fn open_to_write(
    config: &NodeConfig,
) -> Result<(
    crate::store::Store,
    Option<tokio::sync::watch::Receiver<crate::store::postgres::lease::Role>>,
)> {
    let store = open_configured(config)?;
    let Some(pg) = store.postgres() else {
        return Ok((store, None));
    };
    let wait = std::time::Duration::from_millis(pg.settings().lease_ms * 2 + 5_000);
    let lease = crate::store::postgres::lease::acquire(&pg, "jol (command line)".into(), wait)
        .context("a replica holds the writer lease: stop every replica first")?;
    Ok((store, Some(lease)))
}

fn as_of_date(as_of: Option<&str>) -> Result<time::Date> {
    match as_of {
        Some(d) => crate::registry::view::date(d)
            .with_context(|| format!("--as-of {d}: expected YYYY-MM-DD")),
        None => Ok(time::OffsetDateTime::now_utc().date()),
    }
}

fn view(pin: &str, config: &Path, purpose: &str, as_of: Option<&str>) -> Result<()> {
    use crate::registry::serve::{self, LocalUser, Read};
    let pin: crate::event::identifiers::Pin = pin.parse()?;
    let config = NodeConfig::load(config)?;
    let store = open_configured(&config)?;
    if !matches!(config.store_location(), crate::store::Location::Postgres(_)) {
        // A stopped node's views, brought up to its log (on PostgreSQL the replicas keep them).
        crate::registry::projector::catch_up(&store)?;
    }
    let user = LocalUser {
        node: &config.member,
        purpose,
    };
    let what = "registry view (jol view)";
    // Decided and logged as a token's lookup is: a person not held and one of whom nothing
    // may be read for this purpose get the same answer.
    match serve::person_read(&store, &pin, user, &operator("view", purpose), what)? {
        Read::Served(v) => {
            let mut body = serde_json::to_value(&v)?;
            body["derived"] = serde_json::to_value(v.derive(as_of_date(as_of)?))?;
            println!("{}", serde_json::to_string_pretty(&body)?);
            Ok(())
        }
        Read::Refused => {
            bail!("this node holds nothing about that person that the purpose {purpose} may read")
        }
        Read::ViewsRebuilding => bail!("the views are being projected again from the log: run jol rebuild-view, or wait for the node"),
    }
}

/// Write `bytes` to `path` readable by its owner alone (mode 0600, also when it existed): a
/// file of personal data a command writes is no other local user's to read.
fn write_owner_only(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// The operator at this machine, for the access log of a command that reads personal data.
fn operator(command: &str, purpose: &str) -> crate::policy::access::Reader {
    crate::policy::access::Reader::local(
        crate::policy::access::ReaderId::Console {
            command: command.to_string(),
        },
        std::env::var("USER").ok(),
        Some(purpose.to_string()),
    )
}

/// Why an operator command without a purpose of its own reads (an evidence bundle, the KPIs
/// shown whole): said in the access log.
const OPERATOR_COMMAND: &str = "operator command on the node's machine";

fn kpi(
    data_dir: &Path,
    as_of: Option<&str>,
    employment_service: &str,
    json: bool,
    csv: bool,
    suppress: bool,
) -> Result<()> {
    let store = open_offline(data_dir)?;
    crate::registry::projector::catch_up(&store)?;
    let views = crate::registry::projector::all(&store)?;
    if !suppress {
        // Every cell shown can single out a person: a read of each person counted, as
        // `suppress=false` on the API.
        crate::policy::access::record_reads(
            &store,
            &operator("kpi", OPERATOR_COMMAND),
            "KPI figures with small cells shown (jol kpi --no-suppress)",
            views.iter().map(|v| &v.pin),
        )?;
    }
    let params = crate::registry::kpi::KpiParams {
        as_of: as_of_date(as_of)?,
        employment_service: employment_service.parse()?,
        from: None,
        to: None,
        structure_at: None,
        with_a_match: crate::matching::market::persons_with_a_match_held(&store, &views)?,
    };
    let report = crate::registry::kpi::compute(&views, &params, suppress);
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else if csv {
        print!("{}", crate::registry::kpi::to_csv(&report));
    } else {
        print!("{}", crate::registry::kpi::seed_tables(&report));
    }
    Ok(())
}

fn verify(config: Option<&Path>, data_dir: Option<&Path>, json: bool) -> Result<()> {
    let (store, manifest) = match (config, data_dir) {
        (Some(c), _) => {
            let config = NodeConfig::load(c)?;
            let store = open_configured(&config)?;
            let manifest = match &config.federation {
                Some(f) => {
                    let key = keys::read_public(&f.authority_key)?;
                    let held = store
                        .meta(&crate::store::Meta::Manifest)?
                        .unwrap_or(std::fs::read(&f.manifest)?);
                    Some(crate::trust::manifest::Manifest::verify(&held, &key)?)
                }
                None => None,
            };
            (store, manifest)
        }
        (None, Some(d)) => (open_offline(d)?, None),
        (None, None) => bail!("give --config FILE or --data-dir DIR"),
    };
    let report = crate::log::audit::audit_with(&store, manifest.as_ref(), &mut Lines::stderr())?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "{} entries, {} checkpoints, root {}, signatures {}",
            report.entries,
            report.checkpoints,
            report.root,
            if report.signatures_checked {
                "checked"
            } else {
                "not checked (no manifest)"
            }
        );
        if report.erased_events + report.redacted_records > 0 {
            println!(
                "erased: {} events without their disclosures (signed parts verified), {} side-log records rewritten without the person (checked against their recorded leaves)",
                report.erased_events, report.redacted_records
            );
        }
        for f in report.findings.iter().take(20) {
            println!("  at {}: {}", f.position, f.problem);
        }
    }
    match report.findings.first() {
        None => Ok(()),
        Some(f) => bail!(
            "the log does not verify: first problem at {}: {}",
            f.position,
            f.problem
        ),
    }
}

fn verify_bundle(file: &Path, authority_key: Option<&Path>, json: bool) -> Result<()> {
    let key =
        keys::read_public(authority_key.context("--authority-key is needed to check a bundle")?)?;
    let text =
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    let bundle: crate::log::bundle::Bundle = serde_json::from_str(&text)
        .with_context(|| format!("{} is not an evidence bundle", file.display()))?;
    let report = crate::log::bundle::verify(&bundle, &key);
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        let logs: Vec<String> = report
            .logs
            .iter()
            .map(|l| {
                format!(
                    "{} (checkpoint of {} entries; every event witnessed by {:?})",
                    l.origin, l.tree_size, l.witnessed_by
                )
            })
            .collect();
        println!(
            "{} events proven against the logs {}; co-signed by {:?}; co-signatures whose key is unknown here (not checked): {:?}",
            report.events, logs.join(", "), report.valid_cosignatures, report.unchecked_cosignatures
        );
        for p in report.problems.iter().take(20) {
            println!("  {p}");
        }
    }
    match report.problems.first() {
        None => Ok(()),
        Some(p) => bail!("the bundle does not verify: {p}"),
    }
}

fn export(
    config: &Path,
    pin: Option<String>,
    from: Option<&str>,
    to: Option<&str>,
    out: &Path,
) -> Result<()> {
    let config = NodeConfig::load(config)?;
    let selection = match (pin, from, to) {
        (Some(pin), _, _) => {
            pin.parse::<crate::event::identifiers::Pin>()?;
            crate::log::bundle::Selection::Person(pin)
        }
        (None, Some(f), Some(t)) => crate::log::bundle::Selection::Published {
            from: as_of_date(Some(f))?,
            to: as_of_date(Some(t))?,
        },
        _ => bail!("give --pin PIN or --from DATE --to DATE"),
    };
    let store = open_configured(&config)?;
    let manifest = store
        .meta(&crate::store::Meta::Manifest)?
        .context("the node holds no manifest: bundles need a federation member")?;
    // Cover everything stored with a checkpoint signed by this node's key (the latest one, with
    // its co-signatures, when it already does).
    let key = keys::read_private(&config.signing.key_file)?;
    crate::log::checkpoint::ensure_covers(&store, &config.member, &key, store.last_position()?)?;
    let bundle =
        crate::log::bundle::export_with(&store, &manifest, &selection, &mut Lines::stderr())?;
    let pins: Vec<crate::event::identifiers::Pin> = bundle
        .events
        .iter()
        .flat_map(|e| crate::policy::access::pins_in(e.jws.get().as_bytes()))
        .collect();
    crate::policy::access::record_reads(
        &store,
        &operator("export", OPERATOR_COMMAND),
        "events exported in an evidence bundle (jol export)",
        &pins,
    )?;
    write_owner_only(out, &serde_json::to_vec_pretty(&bundle)?)
        .with_context(|| format!("cannot write {}", out.display()))?;
    println!(
        "{} events with tlog-proofs: {}",
        bundle.events.len(),
        out.display()
    );
    Ok(())
}
