//! A node's configuration: one TOML file per node.
//!
//! Relative paths in the file are taken relative to the file's own folder, so a node's folder
//! can be moved as a whole. Unknown keys are refused: a typo must not silently change behaviour.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::api::tokens::Tokens;
use crate::event::identifiers::MemberId;
use crate::federation::sync::{Subscription, SyncSettings};
use crate::store::{Engine, Location};

/// Why a configuration could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The config file could not be read.
    #[error("cannot read config {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The config is not valid.
    #[error("config {path} is not valid: {problem}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        problem: ConfigProblem,
    },
    /// The tokens file could not be read.
    #[error("cannot read tokens file {path}: {source}")]
    Tokens {
        /// The file.
        path: PathBuf,
        /// Why.
        source: crate::api::tokens::TokenError,
    },
}

/// What is wrong with a config's text.
#[derive(Debug, thiserror::Error)]
pub enum ConfigProblem {
    /// Not TOML of a node config.
    #[error(transparent)]
    Toml(#[from] toml::de::Error),
    /// A PostgreSQL store without its database.
    #[error("store_engine = \"postgres\" needs a [store] section with the database's url")]
    PostgresWithoutUrl,
    /// A database named for an embedded engine.
    #[error("[store] names a PostgreSQL database, but store_engine is {0}: remove one of them")]
    StoreUrlForEmbedded(crate::store::Engine),
    /// Subscriptions without a federation.
    #[error("subscriptions need a [federation] section")]
    SubscriptionsWithoutFederation,
    /// The webhook address is not usable.
    #[error("local.webhook: {0}")]
    Webhook(#[from] crate::node::webhook::WebhookUrlError),
    /// A body limit too small for any request.
    #[error("local.max_body_bytes must be at least 1024")]
    BodyLimitTooSmall,
    /// A limit that must be at least 1 is 0.
    #[error("{0} must be at least 1")]
    Zero(&'static str),
    /// `[credentials]` is not usable.
    #[error(transparent)]
    Credentials(#[from] crate::credentials::CredentialsConfigError),
    /// A `[[witnesses]]` entry that cannot be used.
    #[error(transparent)]
    Witness(#[from] crate::federation::cosigning::WitnessConfigError),
    /// An event size limit out of its range.
    #[error("limits.max_event_bytes must be from {} to {} (one event alone within a feed page's budget, so every subscriber can take it)", MIN_EVENT_BYTES, crate::budget::MAX_EVENT_BYTES_CEILING)]
    EventLimit,
    /// A quarantine limit in bytes that could not keep even the smallest refused event.
    #[error("{key} is {bytes}: it must be at least {}, room for one refused event of the smallest size a node takes", MIN_EVENT_BYTES)]
    QuarantineBelowOneEvent {
        /// The setting.
        key: &'static str,
        /// Its value.
        bytes: u64,
    },
}

/// The whole node configuration.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    /// This node's X-Road member (subsystem) id.
    pub member: MemberId,
    /// Where the store lives.
    pub data_dir: PathBuf,
    /// The engine for a new store (`redb`, the default, `sled`, or `postgres` with a [store]
    /// section); an existing store keeps its own and a mismatch is an error. `data_dir` holds
    /// the embedded engines' files.
    #[serde(default)]
    pub(crate) store_engine: Option<crate::store::Engine>,
    /// The embedded engines' page cache, in MiB (default 16): with the allocator's purge
    /// (`JOL_ALLOCATOR_PURGE_DELAY_MS`) it bounds what a node holds beyond its work in flight.
    #[serde(default)]
    pub(crate) store_cache_mib: Option<u64>,
    /// The PostgreSQL database of a `postgres` store, shared by every replica of the member.
    pub store: Option<crate::store::PgSettings>,
    pub(crate) signing: SigningConfig,
    /// The local API.
    #[serde(default)]
    pub local: LocalConfig,
    /// Membership of a federation; without it the node publishes locally only.
    pub(crate) federation: Option<FederationConfig>,
    /// Events to pull from other members.
    #[serde(default)]
    pub subscriptions: Vec<Subscription>,
    /// Tuning of the subscriptions.
    #[serde(default)]
    pub sync: SyncSettings,
    /// The most a node signs, accepts and keeps.
    #[serde(default, skip_serializing_if = "LimitsConfig::is_default")]
    pub(crate) limits: LimitsConfig,
    /// X-Road (Tunduk): the provider face a security server calls, and the TLS with it.
    pub xroad: Option<crate::net::xroad::XRoadConfig>,
    /// Course-completion credentials this node issues (the education ministry's), and the
    /// public listener anyone checking one reads.
    pub credentials: Option<crate::credentials::CredentialsConfig>,
    /// Outside witnesses (c2sp.org/tlog-witness) each new checkpoint is submitted to, besides
    /// the federation's members (`[[witnesses]] url = "http://…" vkey = "…"`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub witnesses: Vec<crate::federation::cosigning::WitnessConfig>,
}

/// The most a node signs, accepts and keeps (`[limits]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct LimitsConfig {
    /// The largest signed event (its JWS, in bytes) this node publishes (larger: 413
    /// `event-too-large`, quarantined) or accepts from a peer (larger: quarantined as
    /// `event-too-large`, not retried).
    pub(crate) max_event_bytes: usize,
    /// The most records the quarantine keeps; beyond it a refused submission is answered 507
    /// `quarantine-full` and a refused received event waits (the subscription stops before it).
    pub(crate) quarantine_max_records: u64,
    /// The most bytes the quarantine's records take, each as stored (its JSON).
    pub(crate) quarantine_max_bytes: u64,
}

/// The smallest `max_event_bytes` a node takes: room for an event's envelope and signature.
const MIN_EVENT_BYTES: usize = 4096;

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            max_event_bytes: crate::budget::DEFAULT_MAX_EVENT_BYTES,
            quarantine_max_records: 1_000_000,
            quarantine_max_bytes: 1 << 30,
        }
    }
}

impl LimitsConfig {
    fn is_default(&self) -> bool {
        *self == LimitsConfig::default()
    }

    /// The quarantine's caps.
    pub(crate) fn quarantine(&self) -> crate::store::QuarantineCaps {
        crate::store::QuarantineCaps {
            max_records: self.quarantine_max_records,
            max_bytes: self.quarantine_max_bytes,
        }
    }
}

/// Trust anchor, manifest and the peer listener.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FederationConfig {
    /// The authority's public key (SPKI PEM): the only key whose manifests this node accepts.
    pub(crate) authority_key: PathBuf,
    /// The signed manifest file (a newer one held in the store or offered by peers wins).
    pub(crate) manifest: PathBuf,
    /// Where the peer listener (mutual TLS) binds.
    pub(crate) peer_listen: SocketAddr,
    /// This node's TLS certificate (issued by the federation CA) and key.
    pub(crate) tls_cert: PathBuf,
    pub(crate) tls_key: PathBuf,
}

/// The node's event-signing key.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SigningConfig {
    /// PKCS#8 PEM private key.
    pub(crate) key_file: PathBuf,
    /// The key's name; the JWS `kid` is `MEMBER-ID#key_name`.
    pub(crate) key_name: String,
}

/// The agency-side listener.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LocalConfig {
    /// Loopback by default. Every listener, loopback included, asks for a bearer token.
    #[serde(default = "default_local_listen")]
    pub(crate) listen: SocketAddr,
    /// Host names the local API answers to, besides the listen address, `localhost`,
    /// `127.0.0.1` and `::1`; a request naming another `Host` is refused (421).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) names: Vec<String>,
    /// The tokens file (`jol token create` writes it; default `tokens.toml` beside the config):
    /// the bearer tokens the agency's systems use, with their scopes and purposes; only their
    /// SHA-256 is kept. Without a token no route but `/healthz` answers.
    #[serde(default = "default_tokens_file")]
    pub tokens_file: PathBuf,
    /// Largest request body accepted, in bytes.
    #[serde(default = "default_max_body")]
    pub(crate) max_body_bytes: usize,
    /// Time a client has to send its request headers.
    #[serde(default = "default_header_timeout")]
    pub(crate) header_timeout_secs: u64,
    /// Time a client has to send a request body once its headers arrived.
    #[serde(default = "default_body_timeout")]
    pub(crate) body_timeout_secs: u64,
    /// Requests one token may make a second (bursts of twice that); beyond it 429 with
    /// `Retry-After`.
    #[serde(default = "default_rate")]
    pub requests_per_token_per_second: u32,
    /// Connections served at once; more wait in the kernel's backlog.
    #[serde(default = "default_max_connections")]
    pub(crate) max_connections: usize,
    /// Dashboard sessions live at once; signing in beyond it ends the one used least recently.
    #[serde(default = "default_max_sessions")]
    pub(crate) max_sessions: usize,
    /// Dashboard sessions one token holds at once; signing in with it beyond that ends its own
    /// session used least recently (a shared desk token: its number of browsers).
    #[serde(default = "default_sessions_per_token")]
    pub(crate) sessions_per_token: usize,
    /// Browsers reach the dashboard over TLS, through a reverse proxy that ends it (`https://`):
    /// the session cookie is `Secure`, never sent over plain HTTP. The proxy must pass the
    /// browser's `Host` on (or name it in `names`): the page's `Origin` is checked against it.
    #[serde(default)]
    pub(crate) session_cookie_secure: bool,
    /// Refused dashboard sign-ins one client address may make a minute; beyond it every wrong
    /// token from it is answered 429 with `Retry-After` until the budget refills (the right
    /// token always signs in).
    #[serde(default = "default_signin_failures")]
    pub(crate) signin_failures_per_minute: u32,
    /// `http://host:port/path` to POST the events the node holds to, in order, retrying until
    /// a 2xx (at-least-once: the receiver deduplicates on the event id).
    pub(crate) webhook: Option<String>,
    /// The purpose the webhook's receiver reads personal data for: of what other members sent,
    /// it gets only what the person's consent names this node and this purpose for. Without
    /// one it gets the node's own events and no received personal data.
    #[serde(default)]
    pub(crate) webhook_purpose: Option<String>,
    /// How long one webhook delivery may take, connecting included (default 10 s): one that
    /// takes longer counts as failed and is retried.
    #[serde(default = "default_webhook_timeout")]
    pub(crate) webhook_timeout_secs: u64,
}

fn default_local_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8080))
}
fn default_tokens_file() -> PathBuf {
    PathBuf::from("tokens.toml")
}
fn default_max_body() -> usize {
    1024 * 1024
}
fn default_header_timeout() -> u64 {
    10
}
fn default_rate() -> u32 {
    2_000
}
fn default_body_timeout() -> u64 {
    10
}
fn default_max_connections() -> usize {
    1024
}
fn default_sessions_per_token() -> usize {
    8
}

fn default_max_sessions() -> usize {
    64
}
fn default_signin_failures() -> u32 {
    5
}

fn default_webhook_timeout() -> u64 {
    10
}

impl Default for LocalConfig {
    fn default() -> Self {
        LocalConfig {
            listen: default_local_listen(),
            names: Vec::new(),
            tokens_file: default_tokens_file(),
            max_body_bytes: default_max_body(),
            header_timeout_secs: default_header_timeout(),
            body_timeout_secs: default_body_timeout(),
            requests_per_token_per_second: default_rate(),
            max_connections: default_max_connections(),
            max_sessions: default_max_sessions(),
            sessions_per_token: default_sessions_per_token(),
            session_cookie_secure: false,
            signin_failures_per_minute: default_signin_failures(),
            webhook: None,
            webhook_purpose: None,
            webhook_timeout_secs: default_webhook_timeout(),
        }
    }
}

impl NodeConfig {
    /// Read and check a config file.
    pub fn load(path: &Path) -> Result<NodeConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        NodeConfig::parse(&text, base).map_err(|problem| ConfigError::Invalid {
            path: path.to_path_buf(),
            problem,
        })
    }

    /// Parse config text; relative paths are resolved against `base`.
    pub fn parse(text: &str, base: &Path) -> Result<NodeConfig, ConfigProblem> {
        let mut c: NodeConfig = toml::from_str(text)?;
        c.data_dir = base.join(&c.data_dir);
        c.signing.key_file = base.join(&c.signing.key_file);
        c.local.tokens_file = base.join(&c.local.tokens_file);
        if let Some(f) = &mut c.federation {
            f.authority_key = base.join(&f.authority_key);
            f.manifest = base.join(&f.manifest);
            f.tls_cert = base.join(&f.tls_cert);
            f.tls_key = base.join(&f.tls_key);
        }
        if let Some(x) = &mut c.xroad {
            x.resolve(base);
        }
        if let Some(credentials) = &mut c.credentials {
            credentials.resolve(base)?;
        }
        match (c.store_engine, &c.store) {
            (Some(Engine::Postgres), None) => return Err(ConfigProblem::PostgresWithoutUrl),
            (Some(engine @ (Engine::Redb | Engine::Sled)), Some(_)) => {
                return Err(ConfigProblem::StoreUrlForEmbedded(engine))
            }
            _ => {}
        }
        if !c.subscriptions.is_empty() && c.federation.is_none() {
            return Err(ConfigProblem::SubscriptionsWithoutFederation);
        }
        if let Some(url) = &c.local.webhook {
            crate::node::webhook::WebhookUrl::parse(url)?;
        }
        if c.local.max_body_bytes < 1024 {
            return Err(ConfigProblem::BodyLimitTooSmall);
        }
        if c.local.max_sessions == 0 {
            return Err(ConfigProblem::Zero("local.max_sessions"));
        }
        if c.local.sessions_per_token == 0 {
            return Err(ConfigProblem::Zero("local.sessions_per_token"));
        }
        if c.local.signin_failures_per_minute == 0 {
            return Err(ConfigProblem::Zero("local.signin_failures_per_minute"));
        }
        if c.local.webhook_timeout_secs == 0 {
            return Err(ConfigProblem::Zero("local.webhook_timeout_secs"));
        }
        if !(MIN_EVENT_BYTES..=crate::budget::MAX_EVENT_BYTES_CEILING)
            .contains(&c.limits.max_event_bytes)
        {
            return Err(ConfigProblem::EventLimit);
        }
        // A share of 0 would drop everything a peer sends wrong, unseen but for a counter.
        if c.sync.quarantine_cap == 0 {
            return Err(ConfigProblem::Zero("sync.quarantine_cap"));
        }
        if c.limits.quarantine_max_records == 0 {
            return Err(ConfigProblem::Zero("limits.quarantine_max_records"));
        }
        // 0 would read the manifest file, and ask each publisher for its manifest, without end.
        if c.sync.manifest_ms == 0 {
            return Err(ConfigProblem::Zero("sync.manifest_ms"));
        }
        // So would a limit in bytes below the smallest event: it could keep nothing. One below
        // `max_event_bytes` is allowed: it keeps the small refusals and counts the large ones.
        for (key, bytes) in [
            ("sync.quarantine_cap_bytes", c.sync.quarantine_cap_bytes),
            ("limits.quarantine_max_bytes", c.limits.quarantine_max_bytes),
        ] {
            if bytes < MIN_EVENT_BYTES as u64 {
                return Err(ConfigProblem::QuarantineBelowOneEvent { key, bytes });
            }
        }
        for w in &c.witnesses {
            w.target()?;
        }
        Ok(c)
    }

    /// The outside witnesses, checked when the config was parsed.
    pub(crate) fn witness_targets(&self) -> Vec<crate::federation::cosigning::Target> {
        self.witnesses
            .iter()
            .filter_map(|w| w.target().ok())
            .collect()
    }

    /// Where the node's store is: its database, or its data dir with the engine the config
    /// names, else the one the directory holds, else the default.
    pub(crate) fn store_location(&self) -> Location {
        match &self.store {
            Some(settings) => Location::Postgres(settings.clone()),
            None => Location::Dir {
                dir: self.data_dir.clone(),
                engine: self
                    .store_engine
                    .or_else(|| Engine::of(&self.data_dir))
                    .unwrap_or_default(),
                cache_mib: self
                    .store_cache_mib
                    .unwrap_or(crate::store::kv::DEFAULT_CACHE_MIB),
            },
        }
    }

    /// The bearer tokens for the local API (a missing file holds none: every caller gets 401).
    pub fn tokens(&self) -> Result<Tokens, ConfigError> {
        let path = &self.local.tokens_file;
        Tokens::load(path).map_err(|source| ConfigError::Tokens {
            path: path.clone(),
            source,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
member = "central-server/GOV/70000001/migration"
data_dir = "data"
[signing]
key_file = "keys/sign.pem"
key_name = "sign-1"
"#;

    #[test]
    fn paths_resolve_against_the_config_folder() {
        let c = NodeConfig::parse(MINIMAL, Path::new("/etc/jol")).unwrap();
        assert_eq!(c.data_dir, Path::new("/etc/jol/data"));
        assert_eq!(c.signing.key_file, Path::new("/etc/jol/keys/sign.pem"));
        assert_eq!(c.local.max_body_bytes, 1024 * 1024);
        assert!(c.local.listen.ip().is_loopback());
        assert_eq!(c.local.max_sessions, 64);
        assert_eq!(c.local.signin_failures_per_minute, 5);
        let none = format!("{MINIMAL}[local]\nmax_sessions = 0\n");
        let err = NodeConfig::parse(&none, Path::new(".")).unwrap_err();
        assert!(err.to_string().contains("max_sessions"), "{err}");
        assert_eq!(c.local.webhook_timeout_secs, 10);
        let none = format!("{MINIMAL}[local]\nwebhook_timeout_secs = 0\n");
        let err = NodeConfig::parse(&none, Path::new(".")).unwrap_err();
        assert!(err.to_string().contains("webhook_timeout_secs"), "{err}");
        assert_eq!(c.sync.quarantine_share().max_bytes, 128 << 20);
        let none = format!("{MINIMAL}[sync]\nquarantine_cap = 0\n");
        let err = NodeConfig::parse(&none, Path::new(".")).unwrap_err();
        assert_eq!(err.to_string(), "sync.quarantine_cap must be at least 1");
        let none = format!("{MINIMAL}[limits]\nquarantine_max_records = 0\n");
        let err = NodeConfig::parse(&none, Path::new(".")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "limits.quarantine_max_records must be at least 1"
        );
    }

    #[test]
    fn a_quarantine_limit_in_bytes_holds_at_least_the_smallest_event() {
        for (section, key) in [
            ("sync", "quarantine_cap_bytes"),
            ("limits", "quarantine_max_bytes"),
        ] {
            for bytes in [0, 1, MIN_EVENT_BYTES as u64 - 1] {
                let small = format!("{MINIMAL}[{section}]\n{key} = {bytes}\n");
                let err = NodeConfig::parse(&small, Path::new(".")).unwrap_err();
                assert_eq!(
                    err.to_string(),
                    format!("{section}.{key} is {bytes}: it must be at least 4096, room for one refused event of the smallest size a node takes")
                );
            }
            let one = format!("{MINIMAL}[{section}]\n{key} = {MIN_EVENT_BYTES}\n");
            NodeConfig::parse(&one, Path::new(".")).unwrap();
        }
    }

    #[test]
    fn a_postgres_store_needs_its_url_and_only_it() {
        let pg = format!("store_engine = \"postgres\"\n{MINIMAL}");
        let err = NodeConfig::parse(&pg, Path::new(".")).unwrap_err();
        assert!(matches!(err, ConfigProblem::PostgresWithoutUrl), "{err}");
        let with_url = format!("{pg}[store]\nurl = \"host=/run/postgresql dbname=jol\"\n");
        let c = NodeConfig::parse(&with_url, Path::new(".")).unwrap();
        assert_eq!(c.store.as_ref().unwrap().pool, 8);
        assert!(matches!(c.store_location(), Location::Postgres(_)));
        let mixed = with_url.replace("\"postgres\"", "\"redb\"");
        let err = NodeConfig::parse(&mixed, Path::new(".")).unwrap_err();
        assert!(
            matches!(err, ConfigProblem::StoreUrlForEmbedded(Engine::Redb)),
            "{err}"
        );
    }

    /// The replica config of docs/deploy-ha.md is a config this jol takes.
    #[test]
    fn the_high_availability_example_parses() {
        let text = include_str!("../../config/ha/node-replica.toml");
        let c = NodeConfig::parse(text, Path::new("/etc/jol")).unwrap();
        assert_eq!(c.store.as_ref().unwrap().lease_ms, 5000);
        assert_eq!(c.subscriptions.len(), 2);
    }

    #[test]
    fn limits_have_defaults_and_an_event_must_fit_a_feed_page() {
        let c = NodeConfig::parse(MINIMAL, Path::new(".")).unwrap();
        assert_eq!(c.limits.max_event_bytes, 1 << 20);
        assert_eq!(c.limits.quarantine().max_records, 1_000_000);
        assert_eq!(c.limits.quarantine().max_bytes, 1 << 30);
        let set =
            format!("{MINIMAL}[limits]\nmax_event_bytes = 65536\nquarantine_max_records = 5\n");
        let c = NodeConfig::parse(&set, Path::new(".")).unwrap();
        assert_eq!(
            (c.limits.max_event_bytes, c.limits.quarantine_max_records),
            (65536, 5)
        );
        let past = crate::budget::MAX_EVENT_BYTES_CEILING + 1;
        let too_large = format!("{MINIMAL}[limits]\nmax_event_bytes = {past}\n");
        let err = NodeConfig::parse(&too_large, Path::new(".")).unwrap_err();
        assert!(matches!(err, ConfigProblem::EventLimit), "{err}");
    }

    #[test]
    fn credentials_resolve_their_key_and_refuse_an_issuer_that_is_no_url() {
        let with = format!(
            "{MINIMAL}[credentials]\nissuer = \"https://credentials.edu.example\"\npublic_listen = \"127.0.0.1:8450\"\nkey_file = \"keys/credential.pem\"\n"
        );
        let c = NodeConfig::parse(&with, Path::new("/etc/jol")).unwrap();
        let credentials = c.credentials.unwrap();
        assert_eq!(
            credentials.key_file,
            Path::new("/etc/jol/keys/credential.pem")
        );
        assert_eq!(credentials.key_name, "credential-1");
        let bad = with.replace("https://credentials.edu.example", "credentials.edu.example");
        let err = NodeConfig::parse(&bad, Path::new(".")).unwrap_err();
        assert!(matches!(err, ConfigProblem::Credentials(_)), "{err}");
        assert!(NodeConfig::parse(MINIMAL, Path::new("."))
            .unwrap()
            .credentials
            .is_none());
    }

    #[test]
    fn tokens_live_beside_the_config_and_typos_are_refused() {
        let c = NodeConfig::parse(MINIMAL, Path::new("/etc/jol")).unwrap();
        assert_eq!(c.local.tokens_file, Path::new("/etc/jol/tokens.toml"));
        let typo = MINIMAL.replace("data_dir", "datadir");
        assert!(NodeConfig::parse(&typo, Path::new(".")).is_err());
    }

    #[test]
    fn a_witness_entry_with_a_bad_url_or_vkey_is_refused_naming_it() {
        let base = "member = \"KG/GOV/70000001/migration\"\ndata_dir = \"d\"\n[signing]\nkey_file = \"k\"\nkey_name = \"s\"\n";
        let key = ed25519_dalek::SigningKey::from_bytes(&[1; 32]).verifying_key();
        let vkey = crate::log::note::VerifierKey::new(
            "w.example/w1",
            crate::log::note::KeyType::Cosignature,
            key,
        )
        .unwrap();
        let with = |url: &str, vkey: &str| {
            NodeConfig::parse(
                &format!("{base}[[witnesses]]\nurl = \"{url}\"\nvkey = \"{vkey}\"\n"),
                Path::new("/"),
            )
        };
        let ok = with("http://127.0.0.1:9000/w", &vkey.to_string()).unwrap();
        assert_eq!(ok.witness_targets().len(), 1);
        let bad_url = with("https://w.example:443", &vkey.to_string())
            .unwrap_err()
            .to_string();
        assert!(
            bad_url.contains("https://w.example:443") && bad_url.contains("https is not supported"),
            "{bad_url}"
        );
        let bad_key = with("http://127.0.0.1:9000", "w.example/w1+00000000+AAAA")
            .unwrap_err()
            .to_string();
        assert!(bad_key.contains("w.example/w1+00000000+AAAA"), "{bad_key}");
    }
}
