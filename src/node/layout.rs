//! A member's node as the example federation lays it out on disk (`jol init-node`,
//! `config/federation.sh`, and jol-tools' federation builder): the node config with the member's
//! keys under `keys/` and the authority's public key and the signed manifest one folder up, paths
//! relative to the config's folder; and writing a node config as TOML.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use super::config::{FederationConfig, LimitsConfig, LocalConfig, NodeConfig, SigningConfig};
use crate::event::identifiers::MemberId;
use crate::federation::sync::{Subscription, SyncSettings};
use crate::store::Engine;

/// The name of a laid-out member's event-signing key.
pub const KEY_NAME: &str = "sign-1";

/// Why a node config could not be written.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// The file could not be written.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The config could not be encoded.
    #[error("the node config cannot be written as TOML: {0}")]
    Toml(#[from] toml::ser::Error),
}

/// The node config of `member`, laid out as the example (paths relative to its folder).
pub fn node_config(
    member: MemberId,
    local_listen: SocketAddr,
    peer_listen: SocketAddr,
    subscriptions: Vec<Subscription>,
    engine: Engine,
    sync: SyncSettings,
) -> NodeConfig {
    NodeConfig {
        member,
        data_dir: "data".into(),
        store_engine: Some(engine),
        store_cache_mib: None,
        store: None,
        signing: SigningConfig {
            key_file: "keys/sign.pem".into(),
            key_name: KEY_NAME.into(),
        },
        local: LocalConfig {
            listen: local_listen,
            ..LocalConfig::default()
        },
        federation: Some(FederationConfig {
            authority_key: "../authority/authority.pub.pem".into(),
            manifest: "../manifest.jws".into(),
            peer_listen,
            tls_cert: "keys/tls.cert.pem".into(),
            tls_key: "keys/tls.pem".into(),
        }),
        subscriptions,
        sync,
        limits: LimitsConfig::default(),
        xroad: None,
        credentials: None,
        witnesses: Vec::new(),
    }
}

/// Write a node config as TOML, with a header naming the member.
pub fn write_config(path: &Path, config: &NodeConfig) -> Result<(), WriteError> {
    let text = format!(
        "# Node of {}. Relative paths are relative to this file.\n{}",
        config.member,
        toml::to_string(config)?
    );
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|source| WriteError::Write {
            path: dir.to_path_buf(),
            source,
        })?;
    }
    std::fs::write(path, text).map_err(|source| WriteError::Write {
        path: path.to_path_buf(),
        source,
    })
}
