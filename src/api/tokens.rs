//! Bearer tokens for the local API: each has a name, the scopes it may use, the purpose it reads
//! personal data for (written to the access log; a caller cannot choose another), and an expiry.
//! The tokens file keeps only each token's SHA-256; the token itself is printed once, when it is
//! created (`jol token create`). The file is re-read when it changes, so a revocation takes
//! effect without a restart; a file that cannot be read or parsed any more refuses every token
//! ([`Unreadable`]) until it can be read again, rather than leaving the tokens it held before
//! valid.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::net::http::Problem;
use crate::net::http::ProblemKind;

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
    pub(crate) fn as_str(self) -> &'static str {
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
    /// The file could not be read or written.
    #[error("{path}: {source}")]
    File {
        /// The tokens file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not TOML of tokens.
    #[error("{path} is not a tokens file: {detail}")]
    Format {
        /// The tokens file.
        path: PathBuf,
        /// The parser's line and message, without the line's text (which may hold a digest).
        detail: String,
    },
    /// The tokens could not be encoded to be written.
    #[error("the tokens cannot be written as TOML: {0}")]
    Encode(#[source] toml::ser::Error),
    /// A scope name that is none of the scopes.
    #[error(
        "unknown scope {0:?}: use publish, read-events, read-persons, read-kpi, monitor or admin"
    )]
    Scope(String),
    /// A token of that name exists already.
    #[error("a token named {0:?} exists already")]
    Exists(String),
    /// No token has that name.
    #[error("no token named {0:?}")]
    Unknown(String),
}

/// One token as the file keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Token {
    pub(crate) name: String,
    /// SHA-256 of the token, hex.
    pub(crate) sha256: String,
    pub(crate) scopes: Vec<Scope>,
    /// Why this token's holder reads personal data (the access log's purpose).
    pub purpose: String,
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub(crate) expires: Option<OffsetDateTime>,
}

impl Token {
    /// Whether the token may use `scope` (admin may use every scope).
    pub(crate) fn allows(&self, scope: Scope) -> bool {
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
pub(crate) fn digest(secret: &str) -> String {
    crate::event::schema::hex(&Sha256::digest(secret.as_bytes()))
}

/// Read a tokens file (a missing file holds no tokens).
pub(crate) fn read(path: &Path) -> Result<Vec<Token>, TokenError> {
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
            detail: where_and_why(&text, &e),
        })
}

/// A parse error's line and message, without the line's text (which may hold a digest).
fn where_and_why(text: &str, e: &toml::de::Error) -> String {
    match e.span() {
        Some(span) => {
            let before = text.as_bytes().get(..span.start).unwrap_or_default();
            let line = before.iter().filter(|b| **b == b'\n').count() + 1;
            format!("line {line}: {}", e.message())
        }
        None => e.message().to_string(),
    }
}

/// Write a tokens file, readable by its owner only.
fn write(path: &Path, tokens: Vec<Token>) -> Result<(), TokenError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let text = toml::to_string(&File { tokens }).map_err(TokenError::Encode)?;
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
pub(crate) fn revoke(path: &Path, name: &str) -> Result<(), TokenError> {
    let mut tokens = read(path)?;
    let before = tokens.len();
    tokens.retain(|t| t.name != name);
    if tokens.len() == before {
        return Err(TokenError::Unknown(name.to_string()));
    }
    write(path, tokens)
}

/// The tokens file cannot be read or parsed: every token is refused until it can be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the node's token list cannot be read")]
pub struct Unreadable;

impl Unreadable {
    /// What a caller is told: 401, and nothing of the file.
    pub(crate) fn problem(self) -> Problem {
        Problem::new(
                ProblemKind::TokensUnreadable,
                "the node's token list cannot be read: every token is refused until an operator repairs the tokens file (the node's log says what is wrong with it)",
        )
    }
}

/// The node's view of its tokens file, re-read when the file changes.
pub struct Tokens {
    path: PathBuf,
    cache: Mutex<Cache>,
}

/// The file as last looked at: which version of it, and its tokens or that it was unreadable.
struct Cache {
    seen: Option<Version>,
    tokens: Result<Vec<Token>, Unreadable>,
}

/// What tells one version of the file from another (rewritten in place or replaced).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Version {
    modified: Option<SystemTime>,
    len: u64,
    inode: u64,
}

impl Version {
    /// The file's version now; none when it is not there (it then holds no token).
    fn of(path: &Path) -> Option<Version> {
        use std::os::unix::fs::MetadataExt;
        let m = std::fs::metadata(path).ok()?;
        Some(Version {
            modified: m.modified().ok(),
            len: m.len(),
            inode: m.ino(),
        })
    }
}

impl Tokens {
    pub(crate) fn load(path: &Path) -> Result<Tokens, TokenError> {
        let seen = Version::of(path);
        let tokens = read(path)?;
        Ok(Tokens {
            path: path.to_path_buf(),
            cache: Mutex::new(Cache {
                seen,
                tokens: Ok(tokens),
            }),
        })
    }

    /// How many tokens the file holds now (none, or unreadable: every caller is refused).
    pub(crate) fn count(&self) -> usize {
        self.with_current(|tokens| tokens.len()).unwrap_or(0)
    }

    /// Look at the file's tokens, re-read if the file changed since the last look (under the
    /// lock: nothing is copied but what `f` returns). A version that cannot be read is logged
    /// once, and refuses every token until another version can be read.
    fn with_current<R>(&self, f: impl FnOnce(&[Token]) -> R) -> Result<R, Unreadable> {
        let mut cache = self.cache.lock().map_err(|_| Unreadable)?;
        let now = Version::of(&self.path);
        if now != cache.seen {
            cache.seen = now;
            cache.tokens = read(&self.path).map_err(|e| {
                tracing::error!(error = %e, "the tokens file cannot be read: every token is refused until it can be");
                Unreadable
            });
        }
        cache.tokens.as_deref().map(f).map_err(|u| *u)
    }

    /// The token whose secret was presented, if it is known and not expired.
    pub fn verify(&self, presented: &str) -> Result<Option<Token>, Unreadable> {
        self.by_digest(&digest(presented))
    }

    /// The token with this SHA-256 (hex), if it is still in the file and not expired: how a
    /// dashboard session finds its token again, so revoking the token ends the session.
    pub(crate) fn by_digest(&self, wanted: &str) -> Result<Option<Token>, Unreadable> {
        let now = OffsetDateTime::now_utc();
        self.with_current(|tokens| {
            tokens
                .iter()
                .find(|t| constant_time_eq(t.sha256.as_bytes(), wanted.as_bytes()))
                .filter(|t| !t.is_expired(now))
                .cloned()
        })
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let t = tokens.verify(&secret).unwrap().unwrap();
        assert!(t.allows(Scope::Publish) && !t.allows(Scope::ReadPersons));
        assert_eq!(t.purpose, "EMPLOYMENT_SERVICES");
        assert_eq!(tokens.verify("jol_wrong"), Ok(None));
        assert!(matches!(
            create(&path, "case-system", vec![], "x", None),
            Err(TokenError::Exists(_))
        ));
        // Revoked while the node runs: refused at once (the file is re-read when it changes).
        std::thread::sleep(std::time::Duration::from_millis(20));
        revoke(&path, "case-system").unwrap();
        assert_eq!(tokens.verify(&secret), Ok(None));
        let expired = create(
            &path,
            "old",
            vec![Scope::Admin],
            "x",
            Some(OffsetDateTime::now_utc() - time::Duration::days(1)),
        )
        .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        assert_eq!(tokens.verify(&expired), Ok(None));
    }

    #[test]
    fn a_tokens_file_that_stops_parsing_refuses_every_token_until_it_parses_again() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens.toml");
        let secret = create(&path, "desk", vec![Scope::ReadKpi], "x", None).unwrap();
        let tokens = Tokens::load(&path).unwrap();
        assert!(tokens.verify(&secret).unwrap().is_some());
        let good = std::fs::read(&path).unwrap();
        std::fs::write(&path, b"[[token]]\nname = \"desk\"\nsha256 = 42 garbage").unwrap();
        assert_eq!(tokens.verify(&secret), Err(Unreadable));
        assert_eq!(tokens.count(), 0);
        let problem = Unreadable.problem();
        assert_eq!(problem.status, 401);
        assert!(!serde_json::to_string(&problem).unwrap().contains("garbage"));
        std::fs::write(&path, good).unwrap();
        assert!(tokens.verify(&secret).unwrap().is_some(), "readable again");
    }

    #[test]
    fn a_parse_error_names_its_line_but_not_its_text() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens.toml");
        std::fs::write(&path, "# tokens\n[[token]]\nname = secret-digest-here\n").unwrap();
        let e = read(&path).unwrap_err().to_string();
        assert!(e.contains("line 3"), "{e}");
        assert!(!e.contains("secret-digest-here"), "{e}");
    }
}
