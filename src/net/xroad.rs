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
    pub const REPRESENTED_PARTY: &str = "x-road-represented-party";
    /// Added to answers by the provider's security server.
    pub const REQUEST_ID: &str = "x-road-request-id";
    pub const REQUEST_HASH: &str = "x-road-request-hash";
    pub const SERVICE: &str = "x-road-service";
    /// Set on an answer that is X-Road's own error (its value is the error type).
    pub const ERROR: &str = "x-road-error";
}

/// The services Jol offers through X-Road, and their codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    Feed,
    Persons,
    Kpi,
}

impl Service {
    pub const ALL: [Service; 3] = [Service::Feed, Service::Persons, Service::Kpi];

    /// The service code registered on the security server.
    pub fn code(self) -> &'static str {
        match self {
            Service::Feed => "jol-feed",
            Service::Persons => "jol-persons",
            Service::Kpi => "jol-kpi",
        }
    }

    pub fn from_code(code: &str) -> Option<Service> {
        Service::ALL.into_iter().find(|s| s.code() == code)
    }
}

/// Where the feed's resources live, seen from a consumer: `/r1/{publisher}/jol-feed/v1`.
pub fn feed_prefix(publisher: &MemberId) -> String {
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
    pub tls_key: Option<PathBuf>,
    /// Without `security_server_cert`: the addresses plain-HTTP calls are accepted from.
    #[serde(default = "default_allow_from")]
    pub allow_from: Vec<IpAddr>,
    /// The longest long-poll the provider face holds (a security server times out beyond it).
    #[serde(default = "default_max_wait")]
    pub max_wait_secs: u64,
}

fn default_allow_from() -> Vec<IpAddr> {
    vec![
        IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
        IpAddr::V6(std::net::Ipv6Addr::LOCALHOST),
    ]
}

fn default_max_wait() -> u64 {
    20
}

impl XRoadConfig {
    /// Resolve relative paths against the config file's folder.
    pub fn resolve(&mut self, base: &Path) {
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
    #[serde(rename = "type")]
    pub kind: String,
    pub message: String,
    #[serde(default)]
    pub detail: String,
}

impl Fault {
    /// Read an answer body as X-Road's error, if it is one (its type is `Server.…` or
    /// `Client.…`, never a Jol problem URI).
    pub fn recognise(body: &[u8]) -> Option<Fault> {
        let f: Fault = serde_json::from_slice(body).ok()?;
        (f.kind.starts_with("Server.") || f.kind.starts_with("Client.")).then_some(f)
    }
}

/// An `http://host:port[/path]` or `https://host:port[/path]` address: a security server, or a
/// service's base URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseUrl {
    pub tls: bool,
    pub host_port: String,
    /// The path, without a trailing `/` (empty for none).
    pub path: String,
}

/// Why an address or a connection could not be used.
#[derive(Debug, thiserror::Error)]
pub enum XRoadError {
    #[error("{0:?} is not an http:// or https:// address with host:port")]
    Url(String),
    #[error("{0} is https: it needs [xroad] security_server_cert (and tls_cert, tls_key)")]
    NoTls(String),
    #[error("cannot reach {addr}: {detail}")]
    Connect { addr: String, detail: String },
    #[error(transparent)]
    Tls(#[from] crate::trust::tls::TlsError),
}

impl BaseUrl {
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
pub fn security_server_tls(
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
