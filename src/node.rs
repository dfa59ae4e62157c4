//! A running node: opens the store, starts the writer and the listeners, and stops them in order.

use std::net::SocketAddr;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::api::LocalApi;
use crate::config::{ConfigError, NodeConfig};
use crate::identifiers::KeyName;
use crate::keys::{self, KeyError};
use crate::publish::{Publisher, Signer};
use crate::schema::{SchemaError, Schemas};
use crate::server::{self, Limits};
use crate::store::{Store, StoreError};

/// Why a node did not start.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Schema(#[from] SchemaError),
    #[error("signing.key_name is not a valid key name: {0}")]
    KeyName(String),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// A node that is serving. Stop it with [`RunningNode::stop`].
pub struct RunningNode {
    local_addr: SocketAddr,
    stop: watch::Sender<bool>,
    listeners: Vec<JoinHandle<()>>,
    writer: thread::JoinHandle<()>,
    store: Store,
}

/// How long requests in flight may take to finish when the node stops.
const DRAIN: Duration = Duration::from_secs(5);

impl RunningNode {
    /// Open everything the config names and start serving.
    pub async fn start(config: &NodeConfig) -> Result<RunningNode, NodeError> {
        let schemas = Schemas::load()?;
        let key = keys::read_private(&config.signing.key_file)?;
        let kid = KeyName::new(config.member.clone(), &config.signing.key_name)
            .map_err(|e| NodeError::KeyName(e.to_string()))?;
        let tokens = config.tokens()?;
        let store = Store::open(&config.data_dir)?;
        let signer = Signer {
            member: config.member.clone(),
            kid,
            key,
        };
        let metrics = Arc::new(crate::metrics::Metrics::default());
        let (publisher, writer) = Publisher::start(store.clone(), schemas, signer, metrics.clone())?;
        let listener = TcpListener::bind(config.local.listen)
            .await
            .map_err(|source| NodeError::Listen {
                addr: config.local.listen,
                source,
            })?;
        let local_addr = listener.local_addr().map_err(|source| NodeError::Listen {
            addr: config.local.listen,
            source,
        })?;
        let api = Arc::new(LocalApi {
            member: config.member.clone(),
            store: store.clone(),
            publisher,
            tokens,
            max_body_bytes: config.local.max_body_bytes,
        });
        let limits = Limits {
            header_timeout: Duration::from_secs(config.local.header_timeout_secs),
            max_connections: config.local.max_connections,
        };
        let (stop, stopped) = watch::channel(false);
        let handler = move |req| api.clone().handle(req);
        let local = tokio::spawn(server::serve_plain(
            listener, limits, handler, stopped, DRAIN,
        ));
        tracing::info!(member = %config.member, local = %local_addr, "node serving");
        Ok(RunningNode {
            local_addr,
            stop,
            listeners: vec![local],
            writer,
            store,
        })
    }

    /// The address the local API listens on (useful when the config asked for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stop accepting, let requests in flight finish, stop the writer, flush the store.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        for l in self.listeners {
            let _ = l.await;
        }
        let writer = self.writer;
        let _ =
            tokio::time::timeout(DRAIN, tokio::task::spawn_blocking(move || writer.join())).await;
        if let Err(e) = self.store.flush() {
            tracing::error!(error = %e, "final flush failed");
        }
        tracing::info!("node stopped");
    }
}
