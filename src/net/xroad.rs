//! X-Road's Message Protocol for REST (r1), as both of Jol's X-Road sides need it: the headers,
//! message ids, the service codes and where the feed lives under `/r1/…`, X-Road's error JSON,
//! `http(s)://` addresses of security servers and services, the TLS towards the agency's own
//! security server, and the `[xroad]` settings. The faces themselves are in [`crate::xroad`].

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::event::identifiers::MemberId;

/// The X-Road headers of the REST protocol (r1).
pub mod header {
    /// The calling subsystem: `INSTANCE/CLASS/MEMBER[/SUBSYSTEM]` (required).
    pub const CLIENT: &str = "x-road-client";
    /// The message id, unique per request (the consumer may set it; the security server does).
    pub const ID: &str = "x-road-id";
    /// The official on whose behalf the call is made, country-prefixed (e.g. `KG12345678901234`).
    pub const USER_ID: &str = "x-road-userid";
    /// The case or issue the call is made for.
    pub const ISSUE: &str = "x-road-issue";
    /// The party the client represents.
    pub const REPRESENTED_PARTY: &str = "x-road-represented-party";
    /// Added to answers by the provider's security server.
    pub const REQUEST_ID: &str = "x-road-request-id";
    /// Added to answers by the provider's security server: the hash of the request.
    pub const REQUEST_HASH: &str = "x-road-request-hash";
    /// The service called.
    pub const SERVICE: &str = "x-road-service";
    /// Set on an answer that is X-Road's own error (its value is the error type).
    pub const ERROR: &str = "x-road-error";
}

/// The services Jol offers through X-Road, and their codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    /// `jol-feed`: the peer feed.
    Feed,
    /// `jol-persons`: a person's registry view.
    Persons,
    /// `jol-kpi`: the KPIs.
    Kpi,
}

impl Service {
    /// Every service.
    pub const ALL: [Service; 3] = [Service::Feed, Service::Persons, Service::Kpi];

    /// The service code registered on the security server.
    pub fn code(self) -> &'static str {
        match self {
            Service::Feed => "jol-feed",
            Service::Persons => "jol-persons",
            Service::Kpi => "jol-kpi",
        }
    }

    pub(crate) fn from_code(code: &str) -> Option<Service> {
        Service::ALL.into_iter().find(|s| s.code() == code)
    }
}

/// Where the feed's resources live, seen from a consumer: `/r1/{publisher}/jol-feed/v1`.
pub(crate) fn feed_prefix(publisher: &MemberId) -> String {
    format!("/r1/{publisher}/{}/v1", Service::Feed.code())
}

/// The `[xroad]` section of a node config.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct XRoadConfig {
    /// Where the security server calls this node's services; none: no provider face.
    pub provider_listen: Option<SocketAddr>,
    /// The security server's internal TLS certificate (PEM): pinned in both directions. With
    /// it, the provider face speaks TLS and requires this certificate from its caller, and a
    /// `via = "https://…"` subscription accepts only it.
    pub security_server_cert: Option<PathBuf>,
    /// This information system's own TLS certificate and key, as registered on the security
    /// server (self-signed will do: `jol xroad-cert`).
    pub tls_cert: Option<PathBuf>,
    /// The key of `tls_cert`.
    pub tls_key: Option<PathBuf>,
    /// Without `security_server_cert`: the only addresses plain-HTTP calls are accepted from.
    /// There is no default: a face needs this or `security_server_cert`, and does not start
    /// with neither ([`XRoadConfig::face_trust`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allow_from: Vec<IpAddr>,
    /// Host names the provider face answers to, besides its listen address, `localhost`,
    /// `127.0.0.1` and `::1`; a request naming another `Host` is refused (421).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub names: Vec<String>,
    /// The longest long-poll the provider face holds (a security server times out beyond it).
    #[serde(default = "default_max_wait")]
    pub max_wait_secs: u64,
}

fn default_max_wait() -> u64 {
    20
}

/// Whom a provider face believes `X-Road-Client` from, as its `[xroad]` settings say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FaceTrust<'a> {
    /// Mutual TLS: the security server's certificate pinned, this system's own presented.
    PinnedTls {
        security_server_cert: &'a Path,
        tls_cert: &'a Path,
        tls_key: &'a Path,
    },
    /// Plain HTTP from these addresses only.
    PlainHttpFrom(&'a [IpAddr]),
}

/// Why a provider face's settings name no caller it may trust, or two contradicting ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FaceTrustError {
    /// Neither pinned TLS nor an address list.
    #[error("[xroad] provider_listen is set but the face would trust no caller: set [xroad] security_server_cert (with tls_cert and tls_key) for pinned TLS with the security server, or name the addresses plain HTTP is accepted from in [xroad] allow_from")]
    TrustsNobody,
    /// Pinned TLS without this system's own certificate and key.
    #[error("[xroad] security_server_cert needs tls_cert and tls_key (this system's certificate, as registered on the security server)")]
    TlsIncomplete,
    /// Both pinned TLS and an address list.
    #[error("[xroad] allow_from is for plain HTTP, but security_server_cert makes the face speak pinned TLS: remove one of them")]
    AllowFromWithTls,
}

impl XRoadConfig {
    /// Whom the provider face trusts: pinned TLS with `security_server_cert`, or plain HTTP
    /// from the addresses named in `allow_from`; never a default.
    pub(crate) fn face_trust(&self) -> Result<FaceTrust<'_>, FaceTrustError> {
        match (&self.security_server_cert, &self.tls_cert, &self.tls_key) {
            (Some(_), _, _) if !self.allow_from.is_empty() => Err(FaceTrustError::AllowFromWithTls),
            (Some(ss), Some(cert), Some(key)) => Ok(FaceTrust::PinnedTls {
                security_server_cert: ss,
                tls_cert: cert,
                tls_key: key,
            }),
            (Some(_), _, _) => Err(FaceTrustError::TlsIncomplete),
            (None, _, _) if self.allow_from.is_empty() => Err(FaceTrustError::TrustsNobody),
            (None, _, _) => Ok(FaceTrust::PlainHttpFrom(&self.allow_from)),
        }
    }

    /// Resolve relative paths against the config file's folder.
    pub(crate) fn resolve(&mut self, base: &Path) {
        for p in [
            &mut self.security_server_cert,
            &mut self.tls_cert,
            &mut self.tls_key,
        ]
        .into_iter()
        .flatten()
        {
            *p = base.join(&*p);
        }
    }
}

/// X-Road's own error answer (`{"type": "Server.…", "message": …, "detail": …}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fault {
    /// The error type, e.g. `Server.ServerProxy.ServiceFailed`.
    #[serde(rename = "type")]
    pub kind: String,
    /// X-Road's message.
    pub message: String,
    /// X-Road's detail (often empty).
    #[serde(default)]
    pub detail: String,
}

impl Fault {
    /// Read an answer body as X-Road's error, if it is one (its type is `Server.…` or
    /// `Client.…`, never a Jol problem URI).
    pub(crate) fn recognise(body: &[u8]) -> Option<Fault> {
        let f: Fault = serde_json::from_slice(body).ok()?;
        (f.kind.starts_with("Server.") || f.kind.starts_with("Client.")).then_some(f)
    }
}

/// The families of X-Road's error types (the prefixes of X-Road's `ErrorCodes`), the only thing
/// of a fault's type that becomes a metric label: the type is the remote side's text, and a
/// label per text would let it grow the metrics without bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum FaultFamily {
    /// `Server.ServerProxy.…`: the provider's security server (or the service behind it).
    ServerProxy,
    /// `Server.ClientProxy.…`: this node's own security server.
    ClientProxy,
    /// `Client.…`: the request as X-Road saw it.
    Client,
    /// Any other type.
    Other,
}

impl FaultFamily {
    /// Every family (the metrics' tests check the label set is closed).
    #[cfg(test)]
    pub(crate) const ALL: [FaultFamily; 4] = [
        FaultFamily::ServerProxy,
        FaultFamily::ClientProxy,
        FaultFamily::Client,
        FaultFamily::Other,
    ];

    /// The family of an error type (X-Road writes them capitalised or, lately, in lower case).
    pub(crate) fn of(kind: &str) -> FaultFamily {
        let kind = kind.to_ascii_lowercase();
        let under = |prefix: &str| {
            kind.strip_prefix(prefix)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('.'))
        };
        if under("server.serverproxy") {
            FaultFamily::ServerProxy
        } else if under("server.clientproxy") {
            FaultFamily::ClientProxy
        } else if under("client") {
            FaultFamily::Client
        } else {
            FaultFamily::Other
        }
    }

    /// The label value.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            FaultFamily::ServerProxy => "Server.ServerProxy",
            FaultFamily::ClientProxy => "Server.ClientProxy",
            FaultFamily::Client => "Client",
            FaultFamily::Other => "other",
        }
    }
}

impl Serialize for FaultFamily {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// An `http://host:port[/path]` or `https://host:port[/path]` address: a security server, or a
/// service's base URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseUrl {
    /// `https`.
    pub tls: bool,
    /// Where to connect.
    pub host_port: String,
    /// The path, without a trailing `/` (empty for none).
    pub path: String,
}

/// Why an address or a connection could not be used.
#[derive(Debug, thiserror::Error)]
pub enum XRoadError {
    /// Not an address of that form.
    #[error("{0:?} is not an http:// or https:// address with host:port")]
    Url(String),
    /// An `https` address without the TLS settings it needs.
    #[error("{0} is https: it needs [xroad] security_server_cert (and tls_cert, tls_key)")]
    NoTls(String),
    /// The security server could not be reached.
    #[error("cannot reach {addr}: {detail}")]
    Connect {
        /// The address.
        addr: String,
        /// Why.
        detail: String,
    },
    /// The TLS material could not be used.
    #[error(transparent)]
    Tls(#[from] crate::trust::tls::TlsError),
}

impl BaseUrl {
    /// Read an address.
    pub fn parse(url: &str) -> Result<BaseUrl, XRoadError> {
        let bad = || XRoadError::Url(url.to_string());
        let (tls, rest) = match url.split_once("://") {
            Some(("http", rest)) => (false, rest),
            Some(("https", rest)) => (true, rest),
            _ => return Err(bad()),
        };
        let (host_port, path) = match rest.find('/') {
            Some(at) => (&rest[..at], rest[at..].trim_end_matches('/')),
            None => (rest, ""),
        };
        if !host_port.contains(':') || host_port.ends_with(':') {
            return Err(bad());
        }
        Ok(BaseUrl {
            tls,
            host_port: host_port.to_string(),
            path: path.to_string(),
        })
    }

    /// Open a connection (TLS with `tls` for an https address), answers due within `deadline`.
    pub async fn connect(
        &self,
        tls: Option<std::sync::Arc<rustls::ClientConfig>>,
        deadline: std::time::Duration,
    ) -> Result<crate::net::client::HttpClient, XRoadError> {
        use crate::net::client::HttpClient;
        let failed = |detail: String| XRoadError::Connect {
            addr: self.host_port.clone(),
            detail,
        };
        let tcp = tokio::time::timeout(
            std::time::Duration::from_secs(5),
            tokio::net::TcpStream::connect(&self.host_port),
        )
        .await
        .map_err(|_| failed("timed out".into()))?
        .map_err(|e| failed(e.to_string()))?;
        let _ = tcp.set_nodelay(true);
        let client = if self.tls {
            let config = tls.ok_or_else(|| XRoadError::NoTls(self.host_port.clone()))?;
            let stream = tokio::time::timeout(
                std::time::Duration::from_secs(10),
                tokio_rustls::TlsConnector::from(config)
                    .connect(crate::trust::pinned::server_name(), tcp),
            )
            .await
            .map_err(|_| failed("TLS handshake timed out".into()))?
            .map_err(|e| failed(format!("TLS: {e}")))?;
            HttpClient::over(stream, self.host_port.clone()).await
        } else {
            HttpClient::over(tcp, self.host_port.clone()).await
        };
        client
            .map(|c| c.with_deadline(deadline))
            .map_err(|e| failed(e.to_string()))
    }
}

/// The client TLS towards this node's security server: its certificate pinned, this system's
/// certificate presented.
pub(crate) fn security_server_tls(
    x: &XRoadConfig,
) -> Result<std::sync::Arc<rustls::ClientConfig>, XRoadError> {
    let missing = || XRoadError::NoTls("[xroad]".into());
    let ss = x.security_server_cert.as_ref().ok_or_else(missing)?;
    let pem = std::fs::read_to_string(ss).map_err(|e| XRoadError::Connect {
        addr: ss.display().to_string(),
        detail: e.to_string(),
    })?;
    let identity = match (&x.tls_cert, &x.tls_key) {
        (Some(c), Some(k)) => Some(crate::trust::tls::Identity::load(c, k)?),
        _ => None,
    };
    Ok(crate::trust::pinned::client_config(
        identity,
        crate::trust::pinned::pin_of(&pem)?,
    )?)
}

/// A fresh message id for `X-Road-Id`.
pub fn message_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_xroad_fault_is_told_apart_from_a_problem() {
        let fault = br#"{"type":"Server.ServerProxy.UnknownService","message":"no such service","detail":"abc"}"#;
        assert_eq!(
            Fault::recognise(fault).unwrap().kind,
            "Server.ServerProxy.UnknownService"
        );
        let problem = br#"{"type":"https://jol.example/problems/not-a-reader","message":"x"}"#;
        assert!(Fault::recognise(problem).is_none());
        assert!(Fault::recognise(b"not json").is_none());
    }

    #[test]
    fn fault_types_fall_into_a_few_families() {
        for (kind, family) in [
            (
                "Server.ServerProxy.UnknownService",
                FaultFamily::ServerProxy,
            ),
            (
                "server.serverproxy.service_failed",
                FaultFamily::ServerProxy,
            ),
            ("Server.ClientProxy.NetworkError", FaultFamily::ClientProxy),
            ("Client.InvalidRequest", FaultFamily::Client),
            ("Server.ServerProxyEvil", FaultFamily::Other),
            ("Server.DatabaseError", FaultFamily::Other),
            ("Clientele", FaultFamily::Other),
            ("", FaultFamily::Other),
        ] {
            assert_eq!(FaultFamily::of(kind), family, "{kind}");
        }
    }

    fn face(text: &str) -> XRoadConfig {
        toml::from_str(&format!("provider_listen = \"127.0.0.1:8600\"\n{text}")).unwrap()
    }

    #[test]
    fn a_face_trusts_what_it_is_told_and_nothing_by_default() {
        assert_eq!(face("").face_trust(), Err(FaceTrustError::TrustsNobody));
        assert!(FaceTrustError::TrustsNobody
            .to_string()
            .contains("allow_from"));
        assert!(FaceTrustError::TrustsNobody
            .to_string()
            .contains("security_server_cert"));
        let plain = face("allow_from = [\"10.0.0.7\"]");
        assert_eq!(
            plain.face_trust(),
            Ok(FaceTrust::PlainHttpFrom(&["10.0.0.7".parse().unwrap()]))
        );
        let tls = "security_server_cert = \"ss.pem\"\ntls_cert = \"c.pem\"\ntls_key = \"k.pem\"\n";
        assert!(matches!(
            face(tls).face_trust(),
            Ok(FaceTrust::PinnedTls { .. })
        ));
        assert_eq!(
            face("security_server_cert = \"ss.pem\"").face_trust(),
            Err(FaceTrustError::TlsIncomplete)
        );
        assert_eq!(
            face(&format!("{tls}allow_from = [\"127.0.0.1\"]")).face_trust(),
            Err(FaceTrustError::AllowFromWithTls)
        );
    }

    #[test]
    fn base_urls_parse_with_and_without_a_path() {
        let u = BaseUrl::parse("https://127.0.0.1:8600/jol-feed/").unwrap();
        assert!(u.tls);
        assert_eq!(u.host_port, "127.0.0.1:8600");
        assert_eq!(u.path, "/jol-feed");
        let u = BaseUrl::parse("http://ss.example:80").unwrap();
        assert_eq!((u.tls, u.path.as_str()), (false, ""));
        for bad in ["ftp://x:1", "http://nohost", "127.0.0.1:80", "http://x:"] {
            assert!(BaseUrl::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn service_codes_round_trip_and_the_feed_prefix_names_the_publisher() {
        for s in Service::ALL {
            assert_eq!(Service::from_code(s.code()), Some(s));
        }
        let m: MemberId = "central-server/GOV/70000001/migration".parse().unwrap();
        assert_eq!(
            feed_prefix(&m),
            "/r1/central-server/GOV/70000001/migration/jol-feed/v1"
        );
    }
}
