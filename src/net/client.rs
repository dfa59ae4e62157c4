//! A small HTTP/1.1 client over one keep-alive connection: used by the command line, the
//! benchmarks and (over TLS) by the sync tasks.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::client::conn::http1;
use hyper::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE, HOST};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

/// A request that did not get an answer.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        addr: String,
        source: std::io::Error,
    },
    #[error("HTTP error: {0}")]
    Http(#[from] hyper::Error),
    #[error("bad request: {0}")]
    Request(#[from] hyper::http::Error),
    #[error("no complete answer within {0:?}")]
    TimedOut(Duration),
    #[error("the answer is larger than {0} bytes")]
    TooLarge(usize),
}

/// The largest answer body a client reads (a feed page of 500 events is under 1 MiB).
pub const MAX_ANSWER_BYTES: usize = 64 << 20;

/// A node's local API as its own systems reach it: the address and the bearer token to present.
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub addr: SocketAddr,
    pub token: String,
}

impl Endpoint {
    /// A connection that presents the token with every request.
    pub async fn connect(&self) -> Result<HttpClient, ClientError> {
        Ok(HttpClient::connect(self.addr)
            .await?
            .with_token(Some(self.token.clone())))
    }
}

/// One HTTP/1.1 connection that stays open between requests.
pub struct HttpClient {
    sender: http1::SendRequest<Full<Bytes>>,
    host: String,
    token: Option<String>,
    deadline: Option<Duration>,
}

impl HttpClient {
    /// Connect over plain TCP.
    pub async fn connect(addr: SocketAddr) -> Result<HttpClient, ClientError> {
        HttpClient::connect_to(&addr.to_string()).await
    }

    /// Connect over plain TCP to `host:port`.
    pub async fn connect_to(host_port: &str) -> Result<HttpClient, ClientError> {
        let stream =
            TcpStream::connect(host_port)
                .await
                .map_err(|source| ClientError::Connect {
                    addr: host_port.to_string(),
                    source,
                })?;
        let _ = stream.set_nodelay(true);
        HttpClient::over(stream, host_port.to_string()).await
    }

    /// Speak HTTP/1.1 over an established stream (plain or TLS).
    pub async fn over<S>(stream: S, host: String) -> Result<HttpClient, ClientError>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let (sender, conn) = http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "client connection ended");
            }
        });
        Ok(HttpClient {
            sender,
            host,
            token: None,
            deadline: None,
        })
    }

    /// Send `Authorization: Bearer` with every request.
    pub fn with_token(mut self, token: Option<String>) -> HttpClient {
        self.token = token;
        self
    }

    /// Give up on any request whose whole answer (headers and body) takes longer than this.
    pub fn with_deadline(mut self, deadline: Duration) -> HttpClient {
        self.deadline = Some(deadline);
        self
    }

    /// GET a path; returns status and body.
    pub async fn get(&mut self, path: &str) -> Result<(StatusCode, Bytes), ClientError> {
        self.send(Method::GET, path, None).await
    }

    /// POST a JSON body; returns status and body.
    pub async fn post_json(
        &mut self,
        path: &str,
        body: Bytes,
    ) -> Result<(StatusCode, Bytes), ClientError> {
        self.send(Method::POST, path, Some(body)).await
    }

    async fn send(
        &mut self,
        method: Method,
        path: &str,
        body: Option<Bytes>,
    ) -> Result<(StatusCode, Bytes), ClientError> {
        match self.deadline {
            None => self.exchange(method, path, body).await,
            Some(d) => tokio::time::timeout(d, self.exchange(method, path, body))
                .await
                .map_err(|_| ClientError::TimedOut(d))?,
        }
    }

    async fn exchange(
        &mut self,
        method: Method,
        path: &str,
        body: Option<Bytes>,
    ) -> Result<(StatusCode, Bytes), ClientError> {
        self.sender.ready().await?;
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header(HOST, &self.host);
        if body.is_some() {
            req = req.header(CONTENT_TYPE, "application/json");
        }
        if let Some(t) = &self.token {
            if let Ok(v) = HeaderValue::from_str(&format!("Bearer {t}")) {
                req = req.header(AUTHORIZATION, v);
            }
        }
        let req = req.body(Full::new(body.unwrap_or_default()))?;
        let resp = self.sender.send_request(req).await?;
        let status = resp.status();
        let body = Limited::new(resp.into_body(), MAX_ANSWER_BYTES)
            .collect()
            .await
            .map_err(|e| match e.downcast::<hyper::Error>() {
                Ok(e) => ClientError::Http(*e),
                Err(_) => ClientError::TooLarge(MAX_ANSWER_BYTES),
            })?
            .to_bytes();
        Ok((status, body))
    }
}
