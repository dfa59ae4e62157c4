//! Putting a laid-out federation behind X-Road: each member gets a **stand-in** security server
//! (see [`crate::standin`]; in production, the agency's own Tunduk security server), its
//! node a provider face registered on it with pinned TLS both ways, and every subscription goes
//! `via` the member's own security server. `jol demo --xroad` and the X-Road tests use this; the
//! README shows the same configuration by hand.
//!
//! For member FOLDER it writes `FOLDER/keys/xroad.pem` (+ `.cert.pem`: the information system's
//! certificate), `ss-FOLDER/ss.pem` (+ `.cert.pem`) and `ss-FOLDER/standin.toml`, and adds
//! `[xroad]` and the `via` of each subscription to `FOLDER/node.toml`.

use std::path::{Path, PathBuf};

use jol::net::xroad::{Service, XRoadConfig};
use jol::node::config::NodeConfig;
use jol::node::layout::write_config;

use crate::federation::{free_loopback, BuildError, LaidOut};
use crate::standin::{PeerEntry, ServiceEntry, StandInConfig};

/// One member's stand-in security server, as laid out.
#[derive(Debug, Clone)]
pub struct StandInLaidOut {
    pub folder: String,
    pub config: PathBuf,
    /// Where the member's own systems (its node's subscriptions) call it.
    pub consumer_url: String,
}

/// Lay out a stand-in security server per member of `laid` (a federation in `dir`) and route
/// the members' subscriptions through them.
pub fn behind_standins(dir: &Path, laid: &[LaidOut]) -> Result<Vec<StandInLaidOut>, BuildError> {
    struct Plan {
        laid: LaidOut,
        node: NodeConfig,
        ss_dir: PathBuf,
        listen: std::net::SocketAddr,
        peer_listen: std::net::SocketAddr,
        provider: std::net::SocketAddr,
    }
    let mut plans = Vec::new();
    for l in laid {
        let folder = dir.join(&l.folder);
        let ss_dir = dir.join(format!("ss-{}", l.folder));
        certificate(&l.folder, &folder.join("keys/xroad.pem"))?;
        certificate(&format!("ss-{}", l.folder), &ss_dir.join("ss.pem"))?;
        plans.push(Plan {
            laid: l.clone(),
            node: as_written(&l.config)?,
            ss_dir,
            listen: free_loopback()?,
            peer_listen: free_loopback()?,
            provider: free_loopback()?,
        });
    }
    let mut out = Vec::new();
    for p in &plans {
        let me = &p.node.member;
        let standin = StandInConfig {
            listen: p.listen,
            peer_listen: p.peer_listen,
            tls_cert: "ss.cert.pem".into(),
            tls_key: "ss.pem".into(),
            services: Service::ALL
                .iter()
                .map(|s| ServiceEntry {
                    member: me.clone(),
                    code: s.code().into(),
                    url: format!("https://{}/{}", p.provider, s.code()),
                    provider_cert: Some(format!("../{}/keys/xroad.cert.pem", p.laid.folder).into()),
                })
                .collect(),
            peers: plans
                .iter()
                .filter(|o| &o.node.member != me)
                .map(|o| PeerEntry {
                    members: vec![o.node.member.clone()],
                    address: o.peer_listen,
                    cert: format!("../ss-{}/ss.cert.pem", o.laid.folder).into(),
                })
                .collect(),
            timeout_secs: 60,
        };
        let config = p.ss_dir.join("standin.toml");
        let text = format!(
            "# A STAND-IN for {me}'s X-Road security server: for tests and the demo, not X-Road.\n{}",
            toml::to_string(&standin)?
        );
        std::fs::write(&config, text).map_err(|source| BuildError::Write {
            path: config.clone(),
            source,
        })?;
        let consumer_url = format!("http://{}", p.listen);
        let mut node = p.node.clone();
        node.xroad = Some(XRoadConfig {
            provider_listen: Some(p.provider),
            security_server_cert: Some(format!("../ss-{}/ss.cert.pem", p.laid.folder).into()),
            tls_cert: Some("keys/xroad.cert.pem".into()),
            tls_key: Some("keys/xroad.pem".into()),
            allow_from: Vec::new(),
            names: Vec::new(),
            max_wait_secs: 20,
        });
        for s in &mut node.subscriptions {
            s.via = Some(consumer_url.clone());
        }
        node.sync.wait_secs = node.sync.wait_secs.min(20);
        write_config(&p.laid.config, &node)?;
        out.push(StandInLaidOut {
            folder: p.laid.folder.clone(),
            config,
            consumer_url,
        });
    }
    Ok(out)
}

fn certificate(name: &str, key: &Path) -> Result<(), BuildError> {
    jol::trust::pinned::write_self_signed(name, key)
        .map(|_| ())
        .map_err(|e| BuildError::Config(e.to_string()))
}

/// A node config as its file has it (paths relative to the file, as they are written back).
fn as_written(path: &Path) -> Result<NodeConfig, BuildError> {
    let text = std::fs::read_to_string(path).map_err(|source| BuildError::Write {
        path: path.to_path_buf(),
        source,
    })?;
    toml::from_str(&text).map_err(|e| BuildError::Config(format!("{}: {e}", path.display())))
}
