//! **A stand-in for an X-Road security server, for tests and the demo. It is not X-Road**: no
//! signed messages, no message log, no global configuration, no OCSP, no time-stamping. It
//! follows the behaviour an information system sees of a security server under the Message
//! Protocol for REST (r1), so that Jol's X-Road side can be tested end to end here, where a real
//! security server cannot run. In production the agency's own security server (Tunduk) takes its
//! place, with the same URLs and headers.
//!
//! What it does:
//! - **consumer side** (`listen`, plain HTTP for the agency's own systems): takes
//!   `/r1/{instance}/{class}/{member}/{subsystem}/{service}[/path][?query]` with `X-Road-Client`
//!   (required) and the optional X-Road headers, gives the message an `X-Road-Id` if it has none,
//!   and forwards it to the security server of the member named (`peers`) over mutual TLS with
//!   pinned certificates, or serves it itself when it hosts that member;
//! - **provider side** (`peer_listen`, mutual TLS): maps the service code to the base URL
//!   registered for it (`services`) and calls `{base URL}{path}[?query]` with the X-Road headers,
//!   over TLS pinned to the provider's certificate (and presenting its own) for an https URL;
//! - answers carry `X-Road-Id`, `X-Road-Request-Id`, `X-Road-Request-Hash` (SHA-512 of the
//!   request as received, base64) and `X-Road-Service`; its own failures are X-Road's error JSON
//!   `{"type", "message", "detail"}` with `X-Road-Error`, status 500 for `Server.*` and 400 for
//!   `Client.*`, as a security server answers them.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use hyper::body::Incoming;
use hyper::header::{HeaderName, HeaderValue, CONTENT_TYPE};
use hyper::{HeaderMap, Request, StatusCode};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha512};
use tokio::sync::watch;

use jol::event::identifiers::MemberId;
use jol::net::http::{self, Response};
use jol::net::server::{self, Gate, Limits};
use jol::net::xroad::{header, BaseUrl, Fault, XRoadError};
use jol::trust::{pinned, tls::Identity};

/// A stand-in security server's configuration (TOML).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StandInConfig {
    /// Where its own information systems call it (plain HTTP; loopback only).
    pub listen: SocketAddr,
    /// Where other security servers call it (mutual TLS, pinned).
    pub peer_listen: SocketAddr,
    /// Its certificate and key, shown to other security servers and to its providers.
    pub tls_cert: PathBuf,
    pub tls_key: PathBuf,
    /// The services of the members it hosts.
    #[serde(default)]
    pub services: Vec<ServiceEntry>,
    /// The security servers of other members.
    #[serde(default)]
    pub peers: Vec<PeerEntry>,
    /// How long a provider may take to answer, seconds (a long-poll must fit inside).
    #[serde(default = "default_timeout")]
    pub timeout_secs: u64,
}

fn default_timeout() -> u64 {
    60
}

/// A service of a member this security server hosts.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceEntry {
    pub member: MemberId,
    pub code: String,
    /// The service's base URL.
    pub url: String,
    /// The provider's TLS certificate, pinned (for an https URL).
    pub provider_cert: Option<PathBuf>,
}

/// Another security server and the members it hosts.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeerEntry {
    pub members: Vec<MemberId>,
    pub address: SocketAddr,
    /// Its certificate, pinned.
    pub cert: PathBuf,
}

/// Why a stand-in could not start.
#[derive(Debug, thiserror::Error)]
pub enum StandInError {
    #[error("cannot read {path}: {detail}")]
    Read { path: PathBuf, detail: String },
    #[error(transparent)]
    XRoad(#[from] XRoadError),
    #[error(transparent)]
    Tls(#[from] jol::trust::tls::TlsError),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

impl StandInConfig {
    pub fn load(path: &Path) -> Result<StandInConfig, StandInError> {
        let read = |detail: String| StandInError::Read {
            path: path.to_path_buf(),
            detail,
        };
        let text = std::fs::read_to_string(path).map_err(|e| read(e.to_string()))?;
        let mut c: StandInConfig = toml::from_str(&text).map_err(|e| read(e.to_string()))?;
        let base = path.parent().unwrap_or(Path::new("."));
        c.tls_cert = base.join(&c.tls_cert);
        c.tls_key = base.join(&c.tls_key);
        for s in &mut c.services {
            s.provider_cert = s.provider_cert.as_ref().map(|p| base.join(p));
        }
        for p in &mut c.peers {
            p.cert = base.join(&p.cert);
        }
        Ok(c)
    }
}

/// A running stand-in.
pub struct StandIn {
    pub listen: SocketAddr,
    pub peer_listen: SocketAddr,
    stop: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl StandIn {
    /// Start both sides.
    pub async fn start(config: &StandInConfig) -> Result<StandIn, StandInError> {
        let core = Arc::new(Core::new(config)?);
        let (stop, stopped) = watch::channel(false);
        let limits = Limits {
            header_timeout: Duration::from_secs(10),
            max_connections: 256,
        };
        let bind = |addr: SocketAddr| async move {
            tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|source| StandInError::Listen { addr, source })
        };
        let consumers = bind(config.listen).await?;
        let peers = bind(config.peer_listen).await?;
        let listen = consumers
            .local_addr()
            .map_err(|source| StandInError::Listen {
                addr: config.listen,
                source,
            })?;
        let peer_listen = peers.local_addr().map_err(|source| StandInError::Listen {
            addr: config.peer_listen,
            source,
        })?;
        let loopback = Gate::AllowFrom(Arc::new(vec![
            std::net::Ipv4Addr::LOCALHOST.into(),
            std::net::Ipv6Addr::LOCALHOST.into(),
        ]));
        let c = core.clone();
        let tasks = vec![
            tokio::spawn(server::serve_gated(
                consumers,
                limits,
                loopback,
                move |req| c.clone().consumer(req),
                stopped.clone(),
                Duration::from_secs(1),
            )),
            tokio::spawn(server::serve_gated(
                peers,
                limits,
                Gate::Tls(tokio_rustls::TlsAcceptor::from(core.peer_server.clone())),
                move |req| core.clone().provider(req),
                stopped,
                Duration::from_secs(1),
            )),
        ];
        tracing::info!(%listen, %peer_listen, "stand-in security server serving (NOT X-Road: for tests and the demo)");
        Ok(StandIn {
            listen,
            peer_listen,
            stop,
            tasks,
        })
    }

    pub async fn stop(self) {
        let _ = self.stop.send(true);
        for t in self.tasks {
            let _ = t.await;
        }
    }
}

/// Where a hosted service is: its base URL, and the TLS to it for an https URL.
type Provider = (BaseUrl, Option<Arc<rustls::ClientConfig>>);

/// What both sides share.
struct Core {
    services: HashMap<(MemberId, String), Provider>,
    peers: HashMap<MemberId, (SocketAddr, Arc<rustls::ClientConfig>)>,
    peer_server: Arc<rustls::ServerConfig>,
    timeout: Duration,
}

impl Core {
    fn new(config: &StandInConfig) -> Result<Core, StandInError> {
        let identity = || Identity::load(&config.tls_cert, &config.tls_key);
        let pin = |path: &Path| -> Result<String, StandInError> {
            let pem = std::fs::read_to_string(path).map_err(|e| StandInError::Read {
                path: path.to_path_buf(),
                detail: e.to_string(),
            })?;
            Ok(pinned::pin_of(&pem)?)
        };
        let mut services = HashMap::new();
        for s in &config.services {
            let url = BaseUrl::parse(&s.url)?;
            let tls = match &s.provider_cert {
                Some(cert) => Some(pinned::client_config(Some(identity()?), pin(cert)?)?),
                None => None,
            };
            services.insert((s.member.clone(), s.code.clone()), (url, tls));
        }
        let mut peers = HashMap::new();
        let mut peer_pins = Vec::new();
        for p in &config.peers {
            let pinned_key = pin(&p.cert)?;
            let tls = pinned::client_config(Some(identity()?), pinned_key.clone())?;
            peer_pins.push(pinned_key);
            for m in &p.members {
                peers.insert(m.clone(), (p.address, tls.clone()));
            }
        }
        Ok(Core {
            services,
            peers,
            peer_server: pinned::server_config_any(identity()?, peer_pins)?,
            timeout: Duration::from_secs(config.timeout_secs),
        })
    }

    /// A call from one of this security server's own information systems.
    async fn consumer(self: Arc<Self>, req: Request<Incoming>) -> Response {
        let mut call = match Call::read(req).await {
            Ok(c) => c,
            Err(r) => return r,
        };
        let message_id = call
            .headers
            .get(header::ID)
            .and_then(|v| v.to_str().ok())
            .map(String::from)
            .unwrap_or_else(jol::net::xroad::message_id);
        set(&mut call.headers, header::ID, &message_id);
        let target = &call.target;
        if self
            .services
            .contains_key(&(target.member.clone(), target.service.clone()))
        {
            return self.call_provider(call).await;
        }
        let Some((address, tls)) = self.peers.get(&target.member) else {
            return fault(
                "Server.ClientProxy.UnknownMember",
                "no security server is known for the member",
                &target.member.to_string(),
            );
        };
        let base = BaseUrl {
            tls: true,
            host_port: address.to_string(),
            path: String::new(),
        };
        let mut client = match base.connect(Some(tls.clone()), self.timeout).await {
            Ok(c) => c,
            Err(e) => {
                return fault(
                    "Server.ClientProxy.NetworkError",
                    "the provider's security server cannot be reached",
                    &e.to_string(),
                )
            }
        };
        let uri = req_uri(target, &call.path_and_query);
        match client
            .request(call.method, &uri, call.headers, Some(call.body))
            .await
        {
            Ok(a) => answer(a.status, a.headers, a.body),
            Err(e) => fault(
                "Server.ClientProxy.NetworkError",
                "the provider's security server did not answer",
                &e.to_string(),
            ),
        }
    }

    /// A call from another security server, for a service this one hosts.
    async fn provider(self: Arc<Self>, req: Request<Incoming>) -> Response {
        match Call::read(req).await {
            Ok(call) => self.call_provider(call).await,
            Err(r) => r,
        }
    }

    /// Call the provider's service and add the security server's headers to its answer.
    async fn call_provider(&self, call: Call) -> Response {
        let Call {
            target,
            method,
            path_and_query,
            headers,
            body,
        } = call;
        let path_and_query = path_and_query.as_str();
        let Some((base, tls)) = self
            .services
            .get(&(target.member.clone(), target.service.clone()))
        else {
            return fault(
                "Server.ServerProxy.UnknownService",
                "the security server has no such service",
                &format!("{}/{}", target.member, target.service),
            );
        };
        let hash = request_hash(&method, path_and_query, &headers, &body);
        let message_id = headers
            .get(header::ID)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let mut client = match base.connect(tls.clone(), self.timeout).await {
            Ok(c) => c,
            Err(e) => {
                return fault(
                    "Server.ServerProxy.ServiceFailed",
                    "the service cannot be reached",
                    &e.to_string(),
                )
            }
        };
        let uri = format!("{}{path_and_query}", base.path);
        match client.request(method, &uri, headers, Some(body)).await {
            Ok(a) => {
                let mut response = answer(a.status, a.headers, a.body);
                let h = response.headers_mut();
                set(h, header::ID, &message_id);
                set(h, header::REQUEST_ID, &uuid::Uuid::now_v7().to_string());
                set(h, header::REQUEST_HASH, &hash);
                set(
                    h,
                    header::SERVICE,
                    &format!("{}/{}", target.member, target.service),
                );
                response
            }
            Err(e) => fault(
                "Server.ServerProxy.ServiceFailed",
                "the service did not answer",
                &e.to_string(),
            ),
        }
    }
}

/// A request as a security server received it: the service it names, and what to pass on.
struct Call {
    target: Target,
    method: hyper::Method,
    path_and_query: String,
    /// The X-Road headers and the content type (see [`xroad_headers`]).
    headers: HeaderMap,
    body: Bytes,
}

impl Call {
    /// Read a request; a bad one is answered with X-Road's error (or the body's problem).
    async fn read(req: Request<Incoming>) -> Result<Call, Response> {
        let target = Target::of(&req).map_err(|f| fault(&f.kind, &f.message, &f.detail))?;
        let headers = xroad_headers(req.headers());
        let (method, path_and_query) = (req.method().clone(), target.path_and_query(&req));
        let body = http::read_body(req, 8 << 20, http::BODY_DEADLINE)
            .await
            .map_err(|p| p.response())?;
        Ok(Call {
            target,
            method,
            path_and_query,
            headers,
            body,
        })
    }
}

/// The service a request names: `/r1/{member: 4 parts}/{service}{rest}`.
struct Target {
    member: MemberId,
    service: String,
    rest: String,
}

impl Target {
    fn of(req: &Request<Incoming>) -> Result<Target, Fault> {
        if req.headers().get(header::CLIENT).is_none() {
            return Err(Fault {
                kind: "Client.InvalidRequest".into(),
                message: "the X-Road-Client header is required".into(),
                detail: String::new(),
            });
        }
        let path = req.uri().path();
        let invalid = || Fault {
            kind: "Client.InvalidRequest".into(),
            message: "the path is not /r1/{instance}/{class}/{member}/{subsystem}/{service}[/path]"
                .into(),
            detail: path.to_string(),
        };
        let rest = path.strip_prefix("/r1/").ok_or_else(invalid)?;
        let parts: Vec<&str> = rest.splitn(6, '/').collect();
        if parts.len() < 5 {
            return Err(invalid());
        }
        let member: MemberId = parts[..4].join("/").parse().map_err(|_| invalid())?;
        Ok(Target {
            member,
            service: parts[4].to_string(),
            rest: parts.get(5).map_or(String::new(), |r| format!("/{r}")),
        })
    }

    fn path_and_query(&self, req: &Request<Incoming>) -> String {
        match req.uri().query() {
            Some(q) => format!("{}?{q}", self.rest),
            None => self.rest.clone(),
        }
    }
}

fn req_uri(target: &Target, path_and_query: &str) -> String {
    format!("/r1/{}/{}{path_and_query}", target.member, target.service)
}

/// The headers a security server passes on: the X-Road ones, and the content type.
fn xroad_headers(from: &HeaderMap) -> HeaderMap {
    let mut out = HeaderMap::new();
    for (name, value) in from {
        if name.as_str().starts_with("x-road-")
            || name == CONTENT_TYPE
            || name == hyper::header::ACCEPT
        {
            out.insert(name.clone(), value.clone());
        }
    }
    out
}

fn set(headers: &mut HeaderMap, name: &'static str, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        headers.insert(HeaderName::from_static(name), v);
    }
}

/// SHA-512 (base64) over the request as the provider's security server received it.
fn request_hash(method: &hyper::Method, path: &str, headers: &HeaderMap, body: &[u8]) -> String {
    let mut h = Sha512::new();
    h.update(method.as_str());
    h.update(b" ");
    h.update(path);
    for name in [header::CLIENT, header::ID, header::USER_ID, header::ISSUE] {
        if let Some(v) = headers.get(name) {
            h.update(b"\n");
            h.update(name);
            h.update(b": ");
            h.update(v.as_bytes());
        }
    }
    h.update(b"\n\n");
    h.update(body);
    base64::engine::general_purpose::STANDARD.encode(h.finalize())
}

/// Pass an answer on, with its content type.
fn answer(status: StatusCode, headers: HeaderMap, body: Bytes) -> Response {
    let mut response = http::with_type(status, "application/json", body);
    for (name, value) in &headers {
        if name == CONTENT_TYPE
            || name.as_str().starts_with("x-road-")
            || name == hyper::header::RETRY_AFTER
        {
            response.headers_mut().insert(name.clone(), value.clone());
        }
    }
    response
}

/// X-Road's own error: `X-Road-Error: TYPE`, 500 for `Server.*`, 400 for `Client.*`.
fn fault(kind: &str, message: &str, detail: &str) -> Response {
    let status = if kind.starts_with("Client.") {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::INTERNAL_SERVER_ERROR
    };
    let body = serde_json::to_vec(&Fault {
        kind: kind.to_string(),
        message: message.to_string(),
        detail: detail.to_string(),
    })
    .unwrap_or_default();
    let mut response = http::with_type(status, "application/json", body);
    if let Ok(v) = HeaderValue::from_str(kind) {
        response
            .headers_mut()
            .insert(HeaderName::from_static(header::ERROR), v);
    }
    response
}
