//! The `jol` command line: argument definitions and the work each subcommand does.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use bytes::Bytes;
use clap::{Parser, Subcommand};

use crate::client::HttpClient;
use crate::config::NodeConfig;
use crate::keys;
use crate::node::RunningNode;
use crate::schema::{EventType, Schemas};

#[derive(Parser, Debug)]
#[command(
    name = "jol",
    version,
    about = "Jol: a federated node for signed, schema-validated events"
)]
pub struct Cli {
    /// Log as JSON lines instead of text.
    #[arg(long, global = true)]
    pub log_json: bool,
    #[command(subcommand)]
    pub command: Command,
}

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
        #[command(subcommand)]
        command: crate::authority_cli::AuthorityCommand,
    },
    /// Run a node.
    Serve {
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
        #[arg(long = "type")]
        event_type: String,
        #[arg(long)]
        file: PathBuf,
    },
    /// Measure the node (see BENCHMARKS.md).
    Bench(crate::bench::BenchArgs),
}

/// Run a parsed command line.
pub async fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Keygen { out } => keygen(&out),
        Command::TlsKeygen { member, out } => {
            let csr = crate::authority::node_tls_key(&member.parse()?, &out)?;
            println!(
                "TLS key: {}\nCSR (send to the authority): {}",
                out.display(),
                csr.display()
            );
            Ok(())
        }
        Command::Authority { dir, command } => crate::authority_cli::run(&dir, command),
        Command::Serve { config } => serve(&config).await,
        Command::Publish {
            config,
            event_type,
            file,
            idempotency_key,
            token,
        } => publish(&config, &event_type, &file, idempotency_key, token).await,
        Command::Validate { event_type, file } => validate(&event_type, &file),
        Command::Bench(args) => crate::bench::run(args).await,
    }
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
    // One machine-readable line on stdout, so scripts and tests learn the bound address.
    println!(
        "{}",
        serde_json::json!({"listening": {
            "local": node.local_addr().to_string(),
            "peer": node.peer_addr().map(|a| a.to_string()),
        }})
    );
    shutdown_signal().await;
    tracing::info!("stopping");
    node.stop().await;
    Ok(())
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {},
                _ = term.recv() => {},
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
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
