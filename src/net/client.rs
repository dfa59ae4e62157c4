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
    /// No connection could be made.
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        /// The address asked for.
        addr: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The HTTP exchange failed.
    #[error("HTTP error: {0}")]
    Http(#[from] hyper::Error),
    /// The request could not be built.
    #[error("bad request: {0}")]
    Request(#[from] hyper::http::Error),
    /// The answer did not come whole in time.
    #[error("no complete answer within {0:?}")]
    TimedOut(Duration),
    /// The answer is larger than the client reads.
    #[error("the answer is larger than {0} bytes")]
    TooLarge(usize),
}

/// The largest answer body a client reads (what a subscriber accepts; a feed page is built well
/// under it: [`crate::budget`]).
pub use crate::budget::MAX_ANSWER_BYTES;

/// A node's local API as its own systems reach it: the address and the bearer token to present.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// The local API's address.
    pub addr: SocketAddr,
    /// The bearer token.
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
    /// The largest answer body read; a larger one is refused ([`ClientError::TooLarge`]).
    answer_limit: usize,
    /// Put before every path (e.g. `/r1/{publisher}/jol-feed/v1` through X-Road).
    prefix: String,
    /// Send `X-Road-Client` with this subsystem, and a fresh `X-Road-Id`, with every request.
    xroad_client: Option<String>,
}

/// An answer with its headers.
#[derive(Debug)]
pub struct Answer {
    /// The status.
    pub status: StatusCode,
    /// The headers.
    pub headers: hyper::HeaderMap,
    /// The whole body.
    pub body: Bytes,
}

impl HttpClient {
    /// Connect over plain TCP.
    pub async fn connect(addr: SocketAddr) -> Result<HttpClient, ClientError> {
        HttpClient::connect_to(&addr.to_string()).await
    }

    /// Connect over plain TCP to `host:port`.
    pub(crate) async fn connect_to(host_port: &str) -> Result<HttpClient, ClientError> {
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
            prefix: String::new(),
            xroad_client: None,
            sender,
            host,
            token: None,
            deadline: None,
            answer_limit: MAX_ANSWER_BYTES,
        })
    }

    /// Send `Authorization: Bearer` with every request.
    pub fn with_token(mut self, token: Option<String>) -> HttpClient {
        self.token = token;
        self
    }

    /// Put `prefix` before every path this client asks for.
    pub(crate) fn with_prefix(mut self, prefix: String) -> HttpClient {
        self.prefix = prefix;
        self
    }

    /// Call as X-Road client `client` (an X-Road REST consumer): `X-Road-Client` and a fresh
    /// `X-Road-Id` go with every request.
    pub(crate) fn with_xroad_client(mut self, client: String) -> HttpClient {
        self.xroad_client = Some(client);
        self
    }

    /// Give up on any request whose whole answer (headers and body) takes longer than this.
    pub(crate) fn with_deadline(mut self, deadline: Duration) -> HttpClient {
        self.deadline = Some(deadline);
        self
    }

    /// Read answers of at most `bytes` (instead of [`MAX_ANSWER_BYTES`]): for a peer whose
    /// answers are small, so that a hostile one cannot make this node hold megabytes.
    pub(crate) fn with_answer_limit(mut self, bytes: usize) -> HttpClient {
        self.answer_limit = bytes.min(MAX_ANSWER_BYTES);
        self
    }

    /// GET a path; returns status and body.
    pub async fn get(&mut self, path: &str) -> Result<(StatusCode, Bytes), ClientError> {
        self.send(Method::GET, path, None).await
    }

    /// GET a path whose answer is small: more than `bytes` of it is [`ClientError::TooLarge`],
    /// whatever the client's own limit (a feed's client reads pages of megabytes; a hostile
    /// peer must not make its checkpoint or a proof as large).
    pub(crate) async fn get_small(
        &mut self,
        path: &str,
        bytes: usize,
    ) -> Result<(StatusCode, Bytes), ClientError> {
        let limit = bytes.min(self.answer_limit);
        let a = self
            .request_within(Method::GET, path, hyper::HeaderMap::new(), None, limit)
            .await?;
        Ok((a.status, a.body))
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
        let mut headers = hyper::HeaderMap::new();
        if body.is_some() {
            headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        }
        let a = self.request(method, path, headers, body).await?;
        Ok((a.status, a.body))
    }

    /// Any request, with `headers` (besides `Host`, the token and the X-Road client's), under
    /// the deadline; the answer keeps its headers.
    pub async fn request(
        &mut self,
        method: Method,
        path: &str,
        headers: hyper::HeaderMap,
        body: Option<Bytes>,
    ) -> Result<Answer, ClientError> {
        let limit = self.answer_limit;
        self.request_within(method, path, headers, body, limit)
            .await
    }

    /// [`HttpClient::request`], reading at most `limit` bytes of the answer.
    async fn request_within(
        &mut self,
        method: Method,
        path: &str,
        headers: hyper::HeaderMap,
        body: Option<Bytes>,
        limit: usize,
    ) -> Result<Answer, ClientError> {
        let deadline = self.deadline;
        let exchange = self.exchange(method, path, headers, body, limit);
        match deadline {
            None => exchange.await,
            Some(d) => tokio::time::timeout(d, exchange)
                .await
                .map_err(|_| ClientError::TimedOut(d))?,
        }
    }

    async fn exchange(
        &mut self,
        method: Method,
        path: &str,
        headers: hyper::HeaderMap,
        body: Option<Bytes>,
        limit: usize,
    ) -> Result<Answer, ClientError> {
        self.sender.ready().await?;
        let mut req = Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.prefix))
            .header(HOST, &self.host);
        if let Some(t) = &self.token {
            if let Ok(v) = HeaderValue::from_str(&format!("Bearer {t}")) {
                req = req.header(AUTHORIZATION, v);
            }
        }
        if let Some(client) = &self.xroad_client {
            req = req
                .header(crate::net::xroad::header::CLIENT, client.as_str())
                .header(
                    crate::net::xroad::header::ID,
                    crate::net::xroad::message_id(),
                );
        }
        if let Some(h) = req.headers_mut() {
            h.extend(headers);
        }
        let req = req.body(Full::new(body.unwrap_or_default()))?;
        let resp = self.sender.send_request(req).await?;
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = Limited::new(resp.into_body(), limit)
            .collect()
            .await
            .map_err(|e| match e.downcast::<hyper::Error>() {
                Ok(e) => ClientError::Http(*e),
                Err(_) => ClientError::TooLarge(limit),
            })?
            .to_bytes();
        Ok(Answer {
            status,
            headers,
            body,
        })
    }
}
