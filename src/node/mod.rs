//! A running node: opens the store, starts the writer and the listeners, and stops them in order.

pub mod config;
pub mod layout;
mod role;
pub(crate) mod webhook;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::api::tokens::Tokens;
use crate::api::LocalApi;
use crate::event::identifiers::KeyName;
use crate::event::keys::{self, KeyError};
use crate::event::schema::{SchemaError, Schemas};
use crate::federation::feed::PeerApi;
use crate::federation::sync::Syncer;
use crate::net::metrics::Metrics;
use crate::net::server::{self, Limits};
use crate::node::config::{ConfigError, FederationConfig, NodeConfig};
use crate::store::postgres::lease::Role;
use crate::store::{Store, StoreError};
use crate::trust::manifest::{ManifestError, Trust};
use crate::trust::tls::{self, Identity, TlsError};
use crate::write::Publisher;

/// Why a node did not start.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// The config could not be used.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The signing key could not be read.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// The store could not be opened or read.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The schemas could not be compiled.
    #[error(transparent)]
    Schema(#[from] SchemaError),
    /// The manifest could not be used.
    #[error("manifest: {0}")]
    Manifest(#[from] ManifestError),
    /// The manifest file could not be read.
    #[error("cannot read the manifest file {path}: {source}")]
    ManifestFile {
        /// The file.
        path: std::path::PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The TLS material could not be used.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// The webhook address is not usable.
    #[error("local.webhook: {0}")]
    Webhook(#[from] crate::node::webhook::WebhookUrlError),
    /// The signing key name is not a key name.
    #[error("signing.key_name is not a valid key name: {0}")]
    KeyName(#[source] crate::event::identifiers::IdError),
    /// A file holding a secret is readable by other users.
    #[error("{path} holds a secret but is readable by other users (mode {mode:o}): run `chmod 600 {path}`")]
    SecretReadable {
        /// The file.
        path: std::path::PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// A secret file's permissions could not be read.
    #[error("cannot read the permissions of {path}: {source}")]
    SecretMode {
        /// The file.
        path: std::path::PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The X-Road face's settings trust no caller, or contradict each other.
    #[error(transparent)]
    XRoadFace(#[from] crate::net::xroad::FaceTrustError),
    /// A file the config names could not be read.
    #[error("cannot read {path}: {source}")]
    File {
        /// The file.
        path: std::path::PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The credential key could not be read.
    #[error(transparent)]
    CredentialKey(#[from] crate::credentials::key::CredentialKeyError),
    /// A listener could not be opened.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// Its address.
        addr: SocketAddr,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// A node that is serving. Stop it with [`RunningNode::stop`].
pub struct RunningNode {
    local_addr: SocketAddr,
    peer_addr: Option<SocketAddr>,
    xroad_addr: Option<SocketAddr>,
    credentials_addr: Option<SocketAddr>,
    metrics: Arc<Metrics>,
    stop: watch::Sender<bool>,
    listeners: Vec<JoinHandle<()>>,
    /// The writer thread and the writer-only tasks, once this node is the writer.
    started: role::Started,
    store: Store,
    /// Why this replica must stop (it lost the writer lease), once it must.
    deposed: watch::Receiver<Option<String>>,
}

/// How long requests in flight may take to finish when the node stops.
const DRAIN: Duration = Duration::from_secs(5);

impl RunningNode {
    /// Open everything the config names and start serving: the member's faces to the
    /// federation, the writer (or, on PostgreSQL, the contention for it), then the local API.
    pub async fn start(config: &NodeConfig) -> Result<RunningNode, NodeError> {
        let opened = Opened::open(config)?;
        let (store, metrics) = (opened.store.clone(), opened.metrics.clone());
        let publisher = Publisher::standby(opened.schemas.clone());
        let (stop, stopped) = watch::channel(false);
        let member = start_member_faces(config, &opened, &publisher, &stopped).await?;
        let syncer = member.as_ref().map(|m| m.syncer.clone());
        let writer = start_writer_role(config, &opened, syncer, &publisher, &stopped).await?;
        let public = match &opened.issuer {
            Some(issuer) => Some(start_public_listener(config, issuer.clone(), &stopped).await?),
            None => None,
        };
        let credentials_addr = public.as_ref().map(|l| l.addr);
        let local =
            start_local_api(config, opened, publisher, writer.role.clone(), stopped).await?;
        let (peer, xroad) = match member {
            Some(m) => (Some(m.peer), m.xroad),
            None => (None, None),
        };
        let peer_addr = peer.as_ref().map(|l| l.addr);
        let xroad_addr = xroad.as_ref().map(|l| l.addr);
        tracing::info!(member = %config.member, local = %local.addr, peer = ?peer_addr, xroad = ?xroad_addr, role = writer.role.borrow().name(), "node serving");
        Ok(RunningNode {
            local_addr: local.addr,
            peer_addr,
            xroad_addr,
            credentials_addr,
            metrics,
            stop,
            listeners: [peer, xroad, public, Some(local)]
                .into_iter()
                .flatten()
                .map(|l| l.task)
                .collect(),
            started: writer.started,
            store,
            deposed: writer.deposed,
        })
    }

    /// The address the local API listens on (useful when the config asked for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The address of the peer listener, when the node is in a federation.
    pub(crate) fn peer_addr(&self) -> Option<SocketAddr> {
        self.peer_addr
    }

    /// The address of the X-Road provider face, when the node has one.
    pub(crate) fn xroad_addr(&self) -> Option<SocketAddr> {
        self.xroad_addr
    }

    /// The address of the credentials' public listener, when the node issues credentials.
    pub fn credentials_addr(&self) -> Option<SocketAddr> {
        self.credentials_addr
    }

    /// The node's store (benchmarks and tools that run beside a node).
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The node's metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Wait until this replica must stop because another took the writer lease; returns why.
    /// Never returns on an embedded store.
    pub(crate) async fn deposed(&self) -> String {
        let mut deposed = self.deposed.clone();
        loop {
            if let Some(why) = deposed.borrow_and_update().clone() {
                return why;
            }
            if deposed.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    }

    /// Stop accepting, let requests in flight finish, stop the writer, flush the store.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        for l in self.listeners {
            let _ = l.await;
        }
        let late = self
            .started
            .tasks
            .lock()
            .map(|mut t| std::mem::take(&mut *t))
            .unwrap_or_default();
        for t in late {
            let _ = t.await;
        }
        let writer = self.started.writer.lock().ok().and_then(|mut w| w.take());
        if let Some(writer) = writer {
            let _ = tokio::time::timeout(DRAIN, tokio::task::spawn_blocking(move || writer.join()))
                .await;
        }
        if let Err(e) = self.store.flush() {
            tracing::error!(error = %e, "final flush failed");
        }
        tracing::info!("node stopped");
    }
}

/// What a node opens from its config before anything serves: the schemas, its signing key, its
/// tokens, its store and the manifest it holds (secrets' file modes checked first), and the
/// metrics every part counts in.
struct Opened {
    schemas: Arc<Schemas>,
    key: ed25519_dalek::SigningKey,
    kid: KeyName,
    tokens: Tokens,
    store: Store,
    metrics: Arc<Metrics>,
    /// The federation's manifest, when the node is a member.
    trust: Option<Arc<Trust>>,
    /// The credential issuer, when `[credentials]` is set.
    issuer: Option<Arc<crate::credentials::issuer::Issuer>>,
}

impl Opened {
    fn open(config: &NodeConfig) -> Result<Opened, NodeError> {
        let schemas = Schemas::load()?;
        for secret in secrets(config) {
            owner_only(secret)?;
        }
        let key = keys::read_private(&config.signing.key_file)?;
        let kid = KeyName::new(config.member.clone(), &config.signing.key_name)
            .map_err(NodeError::KeyName)?;
        let tokens = config.tokens()?;
        if tokens.count() == 0 {
            tracing::warn!(
                file = %config.local.tokens_file.display(),
                "the tokens file holds no token: every request but /healthz is refused (401) until one is made with `jol token create`"
            );
        }
        let store = Store::open_at(config.store_location())?;
        let trust = match &config.federation {
            Some(fed) => Some(Arc::new(load_trust(fed, &store)?)),
            None => None,
        };
        let issuer = match &config.credentials {
            Some(c) => {
                let keys = crate::credentials::key::IssuerKeys::read(c)?;
                let issuer = crate::credentials::issuer::Issuer::open(
                    c.clone(),
                    config.member.clone(),
                    keys,
                    store.clone(),
                )?;
                Some(Arc::new(issuer))
            }
            None => None,
        };
        Ok(Opened {
            schemas,
            key,
            kid,
            tokens,
            store,
            metrics: Arc::new(Metrics::default()),
            trust,
            issuer,
        })
    }
}

/// A listener that serves: where, and its task.
struct Listening {
    addr: SocketAddr,
    task: JoinHandle<()>,
}

/// A member's faces to the federation, and what its subscriptions run on.
struct MemberFaces {
    /// The peer listener (mutual TLS with the other members).
    peer: Listening,
    /// The X-Road provider face, when `[xroad] provider_listen` names one.
    xroad: Option<Listening>,
    /// The subscriptions' task body, run by the writer.
    syncer: Arc<Syncer>,
}

/// Start the faces of a member of a federation (none when the config names no federation): the
/// peer listener, then the X-Road provider face on the same feed.
async fn start_member_faces(
    config: &NodeConfig,
    opened: &Opened,
    publisher: &Publisher,
    stopped: &watch::Receiver<bool>,
) -> Result<Option<MemberFaces>, NodeError> {
    let (Some(fed), Some(trust)) = (&config.federation, &opened.trust) else {
        return Ok(None);
    };
    let syncer = Arc::new(Syncer {
        me: config.member.clone(),
        store: opened.store.clone(),
        trust: trust.clone(),
        schemas: opened.schemas.clone(),
        publisher: publisher.clone(),
        metrics: opened.metrics.clone(),
        tls_cert: fed.tls_cert.clone(),
        tls_key: fed.tls_key.clone(),
        settings: config.sync,
        witness_key: opened.key.clone(),
        witnessing: Default::default(),
        alarms: Default::default(),
        xroad: config.xroad.clone(),
        max_event_bytes: config.limits.max_event_bytes,
        quarantine_caps: config.limits.quarantine(),
    });
    let feed = Arc::new(PeerApi {
        member: config.member.clone(),
        store: opened.store.clone(),
        trust: trust.clone(),
        heads: publisher.heads(),
        metrics: opened.metrics.clone(),
        witness: Some(syncer.clone()),
    });
    tokio::spawn(crate::trust::manifest::follow_file(
        trust.clone(),
        fed.manifest.clone(),
        Duration::from_millis(config.sync.manifest_ms),
        stopped.clone(),
    ));
    let peer = start_peer_listener(config, fed, trust, feed.clone(), stopped).await?;
    let xroad = match &config.xroad {
        Some(x) => start_provider_face(x, feed, limits(config), stopped).await?,
        None => None,
    };
    Ok(Some(MemberFaces {
        peer,
        xroad,
        syncer,
    }))
}

/// Start the peer listener: TLS 1.3 with mutual authentication under the federation's CA and
/// the manifest's keys, serving `feed`.
async fn start_peer_listener(
    config: &NodeConfig,
    fed: &FederationConfig,
    trust: &Arc<Trust>,
    feed: Arc<PeerApi>,
    stopped: &watch::Receiver<bool>,
) -> Result<Listening, NodeError> {
    let listener = bind(fed.peer_listen).await?;
    let addr = local_addr_of(&listener, fed.peer_listen)?;
    let ca = tls::certificate_from_pem(&trust.held().ca_certificate)?;
    let identity = Identity::load(&fed.tls_cert, &fed.tls_key)?;
    let acceptor =
        tokio_rustls::TlsAcceptor::from(tls::server_config(identity, &ca, trust.clone())?);
    let task = tokio::spawn(server::serve_tls(
        listener,
        limits(config),
        acceptor,
        trust.clone(),
        move |caller, req| feed.clone().handle(caller, req),
        stopped.clone(),
        DRAIN,
    ));
    Ok(Listening { addr, task })
}

/// The writer's role once started: which this replica has, what it started, and why it must
/// stop once it must.
struct WriterRole {
    role: watch::Receiver<Role>,
    started: role::Started,
    deposed: watch::Receiver<Option<String>>,
}

/// Start the writer thread and the writer-only tasks (subscriptions through `syncer`,
/// checkpoint signing, the projector, the webhook). On an embedded store this node is the
/// writer now; on PostgreSQL it contends for the writer lease and, when alone, waits for its
/// first answer, so a lone replica serves as the writer from its first request.
async fn start_writer_role(
    config: &NodeConfig,
    opened: &Opened,
    syncer: Option<Arc<Syncer>>,
    publisher: &Publisher,
    stopped: &watch::Receiver<bool>,
) -> Result<WriterRole, NodeError> {
    let parts = role::WriterParts {
        store: opened.store.clone(),
        member: config.member.clone(),
        key: opened.key.clone(),
        kid: opened.kid.clone(),
        max_event_bytes: config.limits.max_event_bytes,
        metrics: opened.metrics.clone(),
        trust: opened.trust.clone(),
        syncer,
        subscriptions: config.subscriptions.clone(),
        checkpoint_every: Duration::from_millis(config.sync.checkpoint_ms),
        witnesses: config.witness_targets(),
        sync: config.sync,
        retention_every: Duration::from_secs(config.sync.retention_sweep_secs.max(1)),
        kpi_report_every: Duration::from_secs(config.sync.kpi_report_secs.max(1)),
        webhook: match &config.local.webhook {
            Some(url) => Some(crate::node::webhook::Webhook {
                url: crate::node::webhook::WebhookUrl::parse(url)?,
                member: config.member.clone(),
                purpose: config.local.webhook_purpose.clone(),
                deadline: Duration::from_secs(config.local.webhook_timeout_secs),
            }),
            None => None,
        },
        issuer: opened.issuer.clone(),
        stopped: stopped.clone(),
    };
    let started = role::Started::default();
    let (deposed_tx, deposed) = watch::channel(None);
    let role = match opened.store.postgres() {
        Some(pg) => {
            let holder = format!("{} at {}", config.member, hostname());
            let limit = Duration::from_millis(pg.settings().lease_ms);
            let role = role::run_replica(
                pg,
                holder,
                parts,
                publisher.clone(),
                started.clone(),
                deposed_tx,
            );
            role::settle(&role, publisher, limit).await;
            role
        }
        None => {
            parts.start(publisher, &started)?;
            watch::channel(Role::Writer(0)).1
        }
    };
    Ok(WriterRole {
        role,
        started,
        deposed,
    })
}

/// Start the local API's listener (plain HTTP, for the agency's own systems), with the tokens
/// and the rest of what was opened.
async fn start_local_api(
    config: &NodeConfig,
    opened: Opened,
    publisher: Publisher,
    role: watch::Receiver<Role>,
    stopped: watch::Receiver<bool>,
) -> Result<Listening, NodeError> {
    let listener = bind(config.local.listen).await?;
    let addr = local_addr_of(&listener, config.local.listen)?;
    let local = &config.local;
    let api = Arc::new(LocalApi {
        member: config.member.clone(),
        store: opened.store,
        publisher,
        tokens: opened.tokens,
        max_body_bytes: local.max_body_bytes,
        quarantine_caps: config.limits.quarantine(),
        quarantine_share: config.sync.quarantine_share(),
        body_deadline: Duration::from_secs(local.body_timeout_secs),
        rate_limits: crate::api::budget::RateLimits::new(
            local.requests_per_token_per_second,
            local.requests_per_token_per_second.saturating_mul(2),
        ),
        signin_limits: crate::api::budget::RateLimits::per_minute(local.signin_failures_per_minute),
        metrics: opened.metrics,
        trust: opened.trust,
        names: crate::api::origin::HostNames::new(local.listen, &local.names, "[local] names"),
        // The local listener speaks plain HTTP: its cookie is `Secure` only when browsers
        // reach it through a proxy that ends TLS.
        sessions: crate::api::session::Sessions::new(
            crate::api::session::SessionCookie::for_listener(addr, local.session_cookie_secure),
            local.max_sessions,
            local.sessions_per_token,
        ),
        role,
        credentials: opened.issuer,
    });
    let task = tokio::spawn(server::serve_plain(
        listener,
        limits(config),
        move |req| api.clone().handle(req),
        stopped,
        DRAIN,
    ));
    Ok(Listening { addr, task })
}

/// Start the credentials' public listener (`[credentials] public_listen`, plain HTTP behind the
/// agency's proxy): the issuer's metadata, type metadata, status list and verification page.
async fn start_public_listener(
    config: &NodeConfig,
    issuer: Arc<crate::credentials::issuer::Issuer>,
    stopped: &watch::Receiver<bool>,
) -> Result<Listening, NodeError> {
    let asked = issuer.config.public_listen;
    let listener = bind(asked).await?;
    let addr = local_addr_of(&listener, asked)?;
    let task = tokio::spawn(server::serve_plain(
        listener,
        limits(config),
        move |req| crate::credentials::public::handle(issuer.clone(), req),
        stopped.clone(),
        DRAIN,
    ));
    Ok(Listening { addr, task })
}

/// The accept loop's limits, the same on every listener (`[local] header_timeout_secs`,
/// `max_connections`).
fn limits(config: &NodeConfig) -> Limits {
    Limits {
        header_timeout: Duration::from_secs(config.local.header_timeout_secs),
        max_connections: config.local.max_connections,
    }
}

/// Start the X-Road provider face, if configured (`[xroad] provider_listen`), behind the gate
/// [`provider_gate`] builds, serving `feed`.
async fn start_provider_face(
    x: &crate::net::xroad::XRoadConfig,
    feed: Arc<PeerApi>,
    limits: Limits,
    stopped: &watch::Receiver<bool>,
) -> Result<Option<Listening>, NodeError> {
    let Some(asked) = x.provider_listen else {
        return Ok(None);
    };
    let gate = provider_gate(x, asked)?;
    let listener = bind(asked).await?;
    let addr = local_addr_of(&listener, asked)?;
    let face = Arc::new(crate::xroad::provider::ProviderFace {
        feed,
        max_wait_secs: x.max_wait_secs,
        names: crate::api::origin::HostNames::new(asked, &x.names, "[xroad] names"),
    });
    let task = tokio::spawn(server::serve_gated(
        listener,
        limits,
        gate,
        move |req| face.clone().handle(req),
        stopped.clone(),
        DRAIN,
    ));
    Ok(Some(Listening { addr, task }))
}

/// Whom the X-Road provider face at `addr` lets in: the security server by pinned TLS, or
/// plain HTTP from the addresses in `allow_from`; with neither named it does not start. What it
/// trusts is logged.
fn provider_gate(
    x: &crate::net::xroad::XRoadConfig,
    addr: SocketAddr,
) -> Result<server::Gate, NodeError> {
    use crate::net::xroad::FaceTrust;
    let gate = match x.face_trust()? {
        FaceTrust::PinnedTls {
            security_server_cert,
            tls_cert,
            tls_key,
        } => {
            let pem = std::fs::read_to_string(security_server_cert).map_err(|source| {
                NodeError::File {
                    path: security_server_cert.to_path_buf(),
                    source,
                }
            })?;
            let key_sha256 = crate::trust::pinned::pin_of(&pem)?;
            tracing::info!(listen = %addr, "the X-Road provider face trusts pinned TLS with certificate {key_sha256} (SHA-256 of its key, from [xroad] security_server_cert)");
            let config = crate::trust::pinned::server_config(
                Identity::load(tls_cert, tls_key)?,
                key_sha256,
            )?;
            server::Gate::Tls(tokio_rustls::TlsAcceptor::from(config))
        }
        FaceTrust::PlainHttpFrom(addresses) => {
            let list: Vec<String> = addresses.iter().map(|a| a.to_string()).collect();
            tracing::warn!(listen = %addr, "the X-Road provider face trusts plain HTTP from {} ([xroad] allow_from); set security_server_cert, tls_cert and tls_key for mutual TLS with the security server", list.join(", "));
            server::Gate::AllowFrom(Arc::new(addresses.to_vec()))
        }
    };
    Ok(gate)
}

async fn bind(addr: SocketAddr) -> Result<TcpListener, NodeError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| NodeError::Listen { addr, source })
}

/// The files of a node's config that hold secrets: the signing key, the TLS key, the tokens,
/// the credential key.
fn secrets(config: &NodeConfig) -> impl Iterator<Item = &std::path::Path> {
    [
        Some(config.signing.key_file.as_path()),
        config.federation.as_ref().map(|f| f.tls_key.as_path()),
        Some(config.local.tokens_file.as_path()),
        config.credentials.as_ref().map(|c| c.key_file.as_path()),
    ]
    .into_iter()
    .flatten()
}

/// A secret must be readable by its owner only; a node refuses to start otherwise.
fn owner_only(path: &std::path::Path) -> Result<(), NodeError> {
    use std::os::unix::fs::PermissionsExt;
    let metadata = match std::fs::metadata(path) {
        Ok(m) => m,
        // Not there (yet): reading it reports that, with its own error.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(source) => {
            return Err(NodeError::SecretMode {
                path: path.to_path_buf(),
                source,
            })
        }
    };
    let mode = metadata.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(NodeError::SecretReadable {
            path: path.to_path_buf(),
            mode,
        });
    }
    Ok(())
}

fn local_addr_of(listener: &TcpListener, asked: SocketAddr) -> Result<SocketAddr, NodeError> {
    listener.local_addr().map_err(|source| NodeError::Listen {
        addr: asked,
        source,
    })
}

fn load_trust(fed: &FederationConfig, store: &Store) -> Result<Trust, NodeError> {
    let authority = keys::read_public(&fed.authority_key)?;
    let bytes = std::fs::read(&fed.manifest).map_err(|source| NodeError::ManifestFile {
        path: fed.manifest.clone(),
        source,
    })?;
    Ok(Trust::load(authority, &bytes, store.clone())?)
}

/// This machine's name, for the writer lease's holder (which replica writes, in `/readyz`).
fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "unknown-host".into())
}
