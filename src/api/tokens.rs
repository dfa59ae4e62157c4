//! Bearer tokens for the local API: each has a name, the scopes it may use, the purpose it reads
//! personal data for (written to the access log; a caller cannot choose another), and an expiry.
//! The tokens file keeps only each token's SHA-256; the token itself is printed once, when it is
//! created (`jol token create`). The file is re-read when it changes, so a revocation takes
//! effect without a restart.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scope {
    /// Publish events.
    Publish,
    /// Read the log, single events and quarantine.
    ReadEvents,
    /// Read person views and access logs.
    ReadPersons,
    /// Read aggregate KPIs.
    ReadKpi,
    /// Read `/readyz` and `/metrics` (no personal data).
    Monitor,
    /// Operate the node (everything above).
    Admin,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Publish => "publish",
            Scope::ReadEvents => "read-events",
            Scope::ReadPersons => "read-persons",
            Scope::ReadKpi => "read-kpi",
            Scope::Monitor => "monitor",
            Scope::Admin => "admin",
        }
    }
}

impl std::str::FromStr for Scope {
    type Err = TokenError;
    fn from_str(s: &str) -> Result<Scope, TokenError> {
        [
            Scope::Publish,
            Scope::ReadEvents,
            Scope::ReadPersons,
            Scope::ReadKpi,
            Scope::Monitor,
            Scope::Admin,
        ]
        .into_iter()
        .find(|x| x.as_str() == s)
        .ok_or_else(|| TokenError::Scope(s.to_string()))
    }
}

/// Why the tokens file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("{path}: {source}")]
    File {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not a tokens file: {detail}")]
    Format { path: PathBuf, detail: String },
    #[error(
        "unknown scope {0:?}: use publish, read-events, read-persons, read-kpi, monitor or admin"
    )]
    Scope(String),
    #[error("a token named {0:?} exists already")]
    Exists(String),
    #[error("no token named {0:?}")]
    Unknown(String),
}

/// One token as the file keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Token {
    pub name: String,
    /// SHA-256 of the token, hex.
    pub sha256: String,
    pub scopes: Vec<Scope>,
    /// Why this token's holder reads personal data (the access log's purpose).
    pub purpose: String,
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub expires: Option<OffsetDateTime>,
}

impl Token {
    /// Whether the token may use `scope` (admin may use every scope).
    pub fn allows(&self, scope: Scope) -> bool {
        self.scopes
            .iter()
            .any(|s| *s == scope || *s == Scope::Admin)
    }

    fn is_expired(&self, now: OffsetDateTime) -> bool {
        self.expires.is_some_and(|e| now >= e)
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct File {
    #[serde(default, rename = "token")]
    tokens: Vec<Token>,
}

/// SHA-256 of a token, hex: what the tokens file and a session keep.
pub fn digest(secret: &str) -> String {
    crate::event::schema::hex(&Sha256::digest(secret.as_bytes()))
}

/// Read a tokens file (a missing file holds no tokens).
pub fn read(path: &Path) -> Result<Vec<Token>, TokenError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(TokenError::File {
                path: path.to_path_buf(),
                source,
            })
        }
    };
    toml::from_str::<File>(&text)
        .map(|f| f.tokens)
        .map_err(|e| TokenError::Format {
            path: path.to_path_buf(),
            detail: e.to_string(),
        })
}

/// Write a tokens file, readable by its owner only.
fn write(path: &Path, tokens: Vec<Token>) -> Result<(), TokenError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let text = toml::to_string(&File { tokens }).map_err(|e| TokenError::Format {
        path: path.to_path_buf(),
        detail: e.to_string(),
    })?;
    let fail = |source| TokenError::File {
        path: path.to_path_buf(),
        source,
    };
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(fail)?;
    f.write_all(text.as_bytes()).map_err(fail)?;
    f.sync_all().map_err(fail)?;
    std::fs::rename(&tmp, path).map_err(fail)
}

/// Create a token; returns the secret, which is not stored anywhere.
pub fn create(
    path: &Path,
    name: &str,
    scopes: Vec<Scope>,
    purpose: &str,
    expires: Option<OffsetDateTime>,
) -> Result<String, TokenError> {
    let mut tokens = read(path)?;
    if tokens.iter().any(|t| t.name == name) {
        return Err(TokenError::Exists(name.to_string()));
    }
    let secret = {
        use base64::Engine;
        let bytes: [u8; 32] = rand::random();
        format!(
            "jol_{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
        )
    };
    tokens.push(Token {
        name: name.to_string(),
        sha256: digest(&secret),
        scopes,
        purpose: purpose.to_string(),
        expires,
    });
    write(path, tokens)?;
    Ok(secret)
}

/// Remove a token.
pub fn revoke(path: &Path, name: &str) -> Result<(), TokenError> {
    let mut tokens = read(path)?;
    let before = tokens.len();
    tokens.retain(|t| t.name != name);
    if tokens.len() == before {
        return Err(TokenError::Unknown(name.to_string()));
    }
    write(path, tokens)
}

/// The node's view of its tokens file, re-read when the file changes.
pub struct Tokens {
    path: PathBuf,
    cache: Mutex<(Option<SystemTime>, Vec<Token>)>,
}

impl Tokens {
    pub fn load(path: &Path) -> Result<Tokens, TokenError> {
        let tokens = read(path)?;
        Ok(Tokens {
            path: path.to_path_buf(),
            cache: Mutex::new((modified(path), tokens)),
        })
    }

    /// How many tokens the file holds now (none: every caller is refused).
    pub fn count(&self) -> usize {
        self.with_current(|tokens| tokens.len()).unwrap_or(0)
    }

    /// Look at the file's tokens, re-read if the file changed since the last look (under the
    /// lock: nothing is copied but what `f` returns).
    fn with_current<R>(&self, f: impl FnOnce(&[Token]) -> R) -> Option<R> {
        let mut cache = self.cache.lock().ok()?;
        let now_modified = modified(&self.path);
        if now_modified != cache.0 {
            if let Ok(fresh) = read(&self.path) {
                *cache = (now_modified, fresh);
            }
        }
        Some(f(&cache.1))
    }

    /// The token whose secret was presented, if it is known and not expired.
    pub fn verify(&self, presented: &str) -> Option<Token> {
        self.by_digest(&digest(presented))
    }

    /// The token with this SHA-256 (hex), if it is still in the file and not expired: how a
    /// dashboard session finds its token again, so revoking the token ends the session.
    pub fn by_digest(&self, wanted: &str) -> Option<Token> {
        let now = OffsetDateTime::now_utc();
        self.with_current(|tokens| {
            tokens
                .iter()
                .find(|t| constant_time_eq(t.sha256.as_bytes(), wanted.as_bytes()))
                .filter(|t| !t.is_expired(now))
                .cloned()
        })?
    }
}

/// Per-token request budgets: a bucket of `rate` requests a second, holding at most `burst`.
pub struct RateLimits {
    rate: f64,
    burst: f64,
    buckets: Mutex<std::collections::HashMap<String, (f64, std::time::Instant)>>,
}

impl RateLimits {
    pub fn new(rate_per_second: u32, burst: u32) -> RateLimits {
        RateLimits {
            rate: f64::from(rate_per_second.max(1)),
            burst: f64::from(burst.max(1)),
            buckets: Mutex::default(),
        }
    }

    /// The sustained rate, requests a second.
    pub fn per_second(&self) -> u32 {
        self.rate as u32
    }

    /// Take one request from `token`'s budget; `Err(seconds)` tells how long to wait.
    pub fn take(&self, token: &str) -> Result<(), u64> {
        let Ok(mut buckets) = self.buckets.lock() else {
            return Ok(());
        };
        let now = std::time::Instant::now();
        let (level, last) = buckets
            .entry(token.to_string())
            .or_insert((self.burst, now));
        *level = (*level + now.duration_since(*last).as_secs_f64() * self.rate).min(self.burst);
        *last = now;
        if *level >= 1.0 {
            *level -= 1.0;
            Ok(())
        } else {
            Err(((1.0 - *level) / self.rate).ceil().max(1.0) as u64)
        }
    }
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_spends_its_budget_and_then_waits() {
        let limits = RateLimits::new(2, 3);
        for _ in 0..3 {
            assert!(limits.take("a").is_ok());
        }
        assert_eq!(limits.take("a"), Err(1));
        assert!(limits.take("b").is_ok(), "each token has its own budget");
    }

    #[test]
    fn a_created_token_verifies_with_its_scopes_and_a_revoked_one_does_not() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens.toml");
        let secret = create(
            &path,
            "case-system",
            vec![Scope::Publish],
            "EMPLOYMENT_SERVICES",
            None,
        )
        .unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains(&secret), "only the digest is stored");
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let tokens = Tokens::load(&path).unwrap();
        let t = tokens.verify(&secret).unwrap();
        assert!(t.allows(Scope::Publish) && !t.allows(Scope::ReadPersons));
        assert_eq!(t.purpose, "EMPLOYMENT_SERVICES");
        assert!(tokens.verify("jol_wrong").is_none());
        assert!(matches!(
            create(&path, "case-system", vec![], "x", None),
            Err(TokenError::Exists(_))
        ));
        // Revoked while the node runs: refused at once (the file is re-read when it changes).
        std::thread::sleep(std::time::Duration::from_millis(20));
        revoke(&path, "case-system").unwrap();
        assert!(tokens.verify(&secret).is_none());
        let expired = create(
            &path,
            "old",
            vec![Scope::Admin],
            "x",
            Some(OffsetDateTime::now_utc() - time::Duration::days(1)),
        )
        .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        assert!(tokens.verify(&expired).is_none());
    }
}
