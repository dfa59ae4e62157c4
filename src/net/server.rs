//! The accept loop shared by the listeners: HTTP/1.1 with keep-alive, a header timeout, a cap on
//! connections served at once, and a graceful stop that lets requests in flight finish.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::Request;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};
use tokio_rustls::TlsAcceptor;

use crate::event::identifiers::MemberId;
use crate::net::http::Response;
use crate::trust::tls::PeerDirectory;

/// Limits of one listener.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// How long a client may take to send a request's headers.
    pub header_timeout: Duration,
    /// Most connections open at once.
    pub max_connections: usize,
}

/// Serve one connection's requests with `handler`.
pub(crate) async fn serve_connection<IO, H, F>(io: IO, limits: Limits, handler: H, watcher: Watcher)
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    H: Fn(Request<Incoming>) -> F + Send + Sync + 'static,
    F: Future<Output = Response> + Send + 'static,
{
    let handler = Arc::new(handler);
    let service = service_fn(move |req| {
        let handler = handler.clone();
        async move { Ok::<_, std::convert::Infallible>(handler(req).await) }
    });
    let conn = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .keep_alive(true)
        .serve_connection(TokioIo::new(io), service);
    if let Err(e) = watcher.watch(conn).await {
        tracing::debug!(error = %e, "connection ended with an error");
    }
}

/// Accept TCP connections until `stop` turns true, handing each to `on_connection` in its own
/// task (at most `limits.max_connections` at once); then wait up to `drain` for them to finish.
async fn accept_loop<C, CF>(
    listener: TcpListener,
    limits: Limits,
    on_connection: C,
    mut stop: watch::Receiver<bool>,
    drain: Duration,
) where
    C: Fn(TcpStream, SocketAddr, Watcher) -> CF,
    CF: Future<Output = ()> + Send + 'static,
{
    let graceful = GracefulShutdown::new();
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    loop {
        let permit = tokio::select! {
            _ = stop.changed() => break,
            p = slots.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
        };
        let (stream, peer) = tokio::select! {
            _ = stop.changed() => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let work = on_connection(stream, peer, graceful.watcher());
        tokio::spawn(async move {
            work.await;
            drop(permit);
        });
    }
    drop(listener);
    let _ = tokio::time::timeout(drain, graceful.shutdown()).await;
}

/// The address a request's connection came from (a request extension of [`serve_plain`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ClientAddr(pub SocketAddr);

/// Serve plain HTTP/1.1 (the local listener). Each request carries its [`ClientAddr`].
pub(crate) async fn serve_plain<H, F>(
    listener: TcpListener,
    limits: Limits,
    handler: H,
    stop: watch::Receiver<bool>,
    drain: Duration,
) where
    H: Fn(Request<Incoming>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response> + Send + 'static,
{
    let on_connection = move |stream: TcpStream, peer: SocketAddr, watcher| {
        let handler = handler.clone();
        let with_addr = move |mut req: Request<Incoming>| {
            req.extensions_mut().insert(ClientAddr(peer));
            handler(req)
        };
        serve_connection(stream, limits, with_addr, watcher)
    };
    accept_loop(listener, limits, on_connection, stop, drain).await;
}

/// How long a peer has to complete the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Serve HTTP/1.1 over mutual TLS (the peer listener). The handler learns which member called,
/// from the certificate key the handshake verified.
pub async fn serve_tls<H, F>(
    listener: TcpListener,
    limits: Limits,
    acceptor: TlsAcceptor,
    directory: Arc<dyn PeerDirectory>,
    handler: H,
    stop: watch::Receiver<bool>,
    drain: Duration,
) where
    H: Fn(MemberId, Request<Incoming>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response> + Send + 'static,
{
    let on_connection = move |stream: TcpStream, peer: SocketAddr, watcher: Watcher| {
        let (acceptor, directory, handler) = (acceptor.clone(), directory.clone(), handler.clone());
        async move {
            let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                Ok(Ok(tls)) => tls,
                Ok(Err(e)) => {
                    tracing::warn!(%peer, error = %e, "peer refused at the TLS handshake");
                    return;
                }
                Err(_) => {
                    tracing::warn!(%peer, "peer did not complete the TLS handshake in time");
                    return;
                }
            };
            let member = tls
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|c| c.first())
                .and_then(|c| crate::trust::tls::spki_sha256(c).ok())
                .and_then(|k| directory.member_for_key(&k));
            let Some(member) = member else {
                tracing::warn!(%peer, "peer has no registered certificate key; closing");
                return;
            };
            tracing::debug!(%peer, %member, "peer connected");
            let handler = move |req| handler(member.clone(), req);
            serve_connection(tls, limits, handler, watcher).await;
        }
    };
    accept_loop(listener, limits, on_connection, stop, drain).await;
}

/// Who may call a listener whose caller is not a federation member: the provider face that an
/// X-Road security server calls, and the stand-in security server's sides.
#[derive(Clone)]
pub enum Gate {
    /// TLS; the acceptor's verifier decides (pinned certificates).
    Tls(TlsAcceptor),
    /// Plain HTTP from these addresses only; others are closed at once.
    AllowFrom(Arc<Vec<std::net::IpAddr>>),
}

/// Serve HTTP/1.1 behind `gate`.
pub async fn serve_gated<H, F>(
    listener: TcpListener,
    limits: Limits,
    gate: Gate,
    handler: H,
    stop: watch::Receiver<bool>,
    drain: Duration,
) where
    H: Fn(Request<Incoming>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response> + Send + 'static,
{
    let on_connection = move |stream: TcpStream, peer: SocketAddr, watcher: Watcher| {
        let (gate, handler) = (gate.clone(), handler.clone());
        async move {
            match gate {
                Gate::AllowFrom(allowed) => {
                    if !allowed.contains(&peer.ip()) {
                        tracing::warn!(%peer, "refused: not an address in allow_from");
                        return;
                    }
                    serve_connection(stream, limits, handler, watcher).await;
                }
                Gate::Tls(acceptor) => {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                        Ok(Ok(tls)) => serve_connection(tls, limits, handler, watcher).await,
                        Ok(Err(e)) => {
                            tracing::warn!(%peer, error = %e, "refused at the TLS handshake")
                        }
                        Err(_) => tracing::warn!(%peer, "TLS handshake not completed in time"),
                    }
                }
            }
        }
    };
    accept_loop(listener, limits, on_connection, stop, drain).await;
}
