//! Verifiable credentials the person keeps: a course completion as an SD-JWT VC any employer can
//! check without being a member of the federation.
//!
//! This folder owns the credential key (ES256, separate from the event key: `key.rs`), what a
//! course-completion credential says and which events earn one (`credential.rs`), the status
//! list that revokes them (`status.rs`), the issuer that follows the node's own log and issues
//! them, and revokes one on request (`issuer.rs`), the public listener with the issuer's
//! metadata, the type metadata, the status list and the verification page (`public.rs`,
//! `verify_page/`), and offline verification (`verify.rs`). It sits above `registry` and `write`
//! (it reads the person's view, publishes the `credential-issued` events and reads the log) and
//! below `api` (the local API lists and revokes credentials through it). It may not decide
//! consent: the local API's person read decides who sees a person's credentials, as for every
//! person read.

pub mod credential;
pub mod issuer;
pub mod key;
pub mod public;
pub mod status;
pub mod verify;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// `[credentials]`: the node issues course-completion credentials (the education ministry's).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CredentialsConfig {
    /// The issuer's public URL (`https://credentials.edu.gov.kg`): every credential's `iss`,
    /// and the base of its `vct` and status list URLs. The public listener is reached at it
    /// (through the agency's reverse proxy, which ends TLS).
    pub issuer: String,
    /// Where the public listener binds (plain HTTP, behind the proxy).
    pub public_listen: SocketAddr,
    /// The credential key (P-256, PKCS#8 PEM, mode 0600; `jol credential keygen` makes one).
    pub key_file: PathBuf,
    /// The key's `kid` in the JWKS and every credential's header (default `credential-1`).
    #[serde(default = "default_key_name")]
    pub key_name: String,
    /// Keys signed with before a rotation: files each holding the old key's public JWK (`jol
    /// credential jwk` prints it). They stay in the JWKS so that the credentials they signed
    /// keep verifying; they sign nothing.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub retired_keys: Vec<PathBuf>,
}

fn default_key_name() -> String {
    "credential-1".into()
}

/// Why `[credentials]` cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CredentialsConfigError {
    /// Not an http(s) URL of the expected form.
    #[error("credentials.issuer must be an http(s) URL without a query, fragment or trailing slash, such as https://credentials.edu.gov.kg")]
    Issuer,
}

impl CredentialsConfig {
    /// Resolve the key file against the config's folder and check the issuer URL.
    pub fn resolve(&mut self, base: &Path) -> Result<(), CredentialsConfigError> {
        self.key_file = base.join(&self.key_file);
        for retired in &mut self.retired_keys {
            *retired = base.join(&*retired);
        }
        let rest = self
            .issuer
            .strip_prefix("https://")
            .or_else(|| self.issuer.strip_prefix("http://"));
        match rest {
            Some(rest)
                if !rest.is_empty()
                    && !rest.starts_with('/')
                    && !rest.ends_with('/')
                    && !rest.contains(['?', '#', ' ']) =>
            {
                Ok(())
            }
            _ => Err(CredentialsConfigError::Issuer),
        }
    }

    /// The path part of the issuer URL (`""` when it has none).
    pub fn issuer_path(&self) -> &str {
        let rest = self.issuer.split_once("://").map_or("", |(_, r)| r);
        rest.find('/').map_or("", |i| &rest[i..])
    }

    /// The course-completion credential's type, a URL the public listener serves its type
    /// metadata at.
    pub fn vct(&self) -> String {
        format!("{}/{}", self.issuer, public::VCT_PATH)
    }

    /// The status list's URL.
    pub fn status_uri(&self) -> String {
        format!("{}/{}", self.issuer, public::STATUS_PATH)
    }

    /// The path the issuer's metadata is served at (SD-JWT VC §5: the well-known segment
    /// between the host and the issuer's path).
    pub fn metadata_path(&self) -> String {
        format!("/.well-known/jwt-vc-issuer{}", self.issuer_path())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(issuer: &str) -> CredentialsConfig {
        CredentialsConfig {
            issuer: issuer.into(),
            public_listen: "127.0.0.1:0".parse().unwrap(),
            key_file: "keys/credential.pem".into(),
            key_name: default_key_name(),
            retired_keys: vec!["keys/credential-0.jwk".into()],
        }
    }

    #[test]
    fn the_issuer_url_names_every_public_path() {
        let mut c = config("https://edu.example/issuer");
        c.resolve(Path::new("/etc/jol")).unwrap();
        assert_eq!(c.key_file, Path::new("/etc/jol/keys/credential.pem"));
        assert_eq!(
            c.retired_keys,
            [Path::new("/etc/jol/keys/credential-0.jwk")]
        );
        assert_eq!(c.metadata_path(), "/.well-known/jwt-vc-issuer/issuer");
        assert_eq!(c.vct(), "https://edu.example/issuer/vct/course-completion");
        assert_eq!(c.status_uri(), "https://edu.example/issuer/status/1");
        assert_eq!(
            config("http://127.0.0.1:9").metadata_path(),
            "/.well-known/jwt-vc-issuer"
        );
        for bad in [
            "edu.example",
            "https://",
            "https://edu.example/",
            "ftp://x",
            "https://x/?a",
        ] {
            assert!(config(bad).resolve(Path::new(".")).is_err(), "{bad}");
        }
    }
}
