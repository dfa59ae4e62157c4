//! `jol credential keygen`: the issuer's ES256 key; `jol credential jwk`: a key's public JWK, to
//! keep in the JWKS when the key is rotated out; `jol credential verify`: a credential checked
//! offline against the issuer's metadata (and its status list), printing what it proves.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::Subcommand;
use serde_json::Value;

use crate::credentials::key::IssuerKey;
use crate::credentials::verify;
use crate::net::client::HttpClient;

#[derive(Subcommand, Debug)]
pub enum CredentialCommand {
    /// Generate the credential key (P-256, PKCS#8 PEM, mode 0600) for `[credentials] key_file`.
    Keygen {
        #[arg(long)]
        out: PathBuf,
    },
    /// Print the public JWK of a credential key, for `[credentials] retired_keys` when the key
    /// is rotated out (what it signed keeps verifying; the private key can then be destroyed).
    Jwk {
        /// The key file (`key_file` of `[credentials]`).
        #[arg(long)]
        key: PathBuf,
        /// Its `kid` (`key_name` of `[credentials]`).
        #[arg(long, default_value = "credential-1")]
        name: String,
    },
    /// Verify a credential (SD-JWT VC, compact) and print what it proves.
    Verify {
        /// The credential, as its holder handed it over.
        #[arg(long)]
        file: PathBuf,
        /// The issuer's metadata: its `/.well-known/jwt-vc-issuer` URL (http://), or a file
        /// holding it. Without it, the issuer the credential names is asked (http:// only).
        #[arg(long)]
        issuer_metadata: Option<String>,
        /// The issuer's status list token: a URL (http://) or a file. Without it, the list the
        /// credential names is fetched when it is an http:// URL; else the status is not checked.
        #[arg(long)]
        status_list: Option<String>,
        /// Print the proof as JSON.
        #[arg(long)]
        json: bool,
    },
}

pub(super) async fn run(command: CredentialCommand) -> Result<()> {
    match command {
        CredentialCommand::Keygen { out } => {
            IssuerKey::generate("credential-1").write(&out)?;
            println!("credential key: {}", out.display());
            Ok(())
        }
        CredentialCommand::Jwk { key, name } => {
            println!("{}", IssuerKey::read(&key, &name)?.jwk());
            Ok(())
        }
        CredentialCommand::Verify {
            file,
            issuer_metadata,
            status_list,
            json,
        } => {
            let credential = std::fs::read_to_string(&file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            let claims = unverified_claims(&credential)?;
            let iss = claims
                .get("iss")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let metadata = match issuer_metadata {
                Some(from) => read(&from).await?,
                None => read(&metadata_url(iss)).await?,
            };
            let metadata: Value =
                serde_json::from_str(&metadata).context("the issuer metadata is not JSON")?;
            let list_uri = claims
                .pointer("/status/status_list/uri")
                .and_then(Value::as_str);
            let status_list = match (status_list, list_uri) {
                (Some(from), _) => Some(read(&from).await?),
                (None, Some(uri)) if uri.starts_with("http://") => Some(read(uri).await?),
                _ => None,
            };
            let proof = verify::verify(&credential, &metadata, status_list.as_deref())?;
            if json {
                println!("{}", serde_json::to_string_pretty(&proof)?);
            } else {
                print!("{}", proof.describe());
            }
            // Not a success a script may take for valid: it may have been revoked.
            if proof.status == verify::Status::NotChecked {
                bail!(
                    "the credential names a status list that was not checked: it may be revoked (give --status-list FILE, the list fetched from {})",
                    list_uri.unwrap_or("its uri")
                );
            }
            Ok(())
        }
    }
}

/// The payload of the credential's JWS, unverified: only to find where its issuer is.
fn unverified_claims(credential: &str) -> Result<Value> {
    use base64::Engine;
    let payload = credential
        .trim()
        .split(['~', '.'])
        .nth(1)
        .context("the file does not hold a compact SD-JWT VC")?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .context("the file does not hold a compact SD-JWT VC")?;
    Ok(serde_json::from_slice(&bytes)?)
}

/// Where the issuer `iss` publishes its metadata (SD-JWT VC §5).
fn metadata_url(iss: &str) -> String {
    let (scheme, rest) = iss.split_once("://").unwrap_or(("", iss));
    let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    format!("{scheme}://{host}/.well-known/jwt-vc-issuer{path}")
}

/// The text at `from`: an http:// URL (fetched) or a file.
async fn read(from: &str) -> Result<String> {
    let Some(rest) = from.strip_prefix("http://") else {
        if from.starts_with("https://") {
            bail!("{from}: fetch it (e.g. with curl) and give the file; this command fetches http:// only");
        }
        return std::fs::read_to_string(Path::new(from))
            .with_context(|| format!("cannot read {from}"));
    };
    let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let mut client = HttpClient::connect_to(host).await?;
    let (status, body) = client.get(if path.is_empty() { "/" } else { path }).await?;
    if !status.is_success() {
        bail!("{from} answered {status}");
    }
    Ok(String::from_utf8_lossy(&body).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_metadata_sits_at_the_well_known_path_before_the_issuer_path() {
        assert_eq!(
            metadata_url("http://127.0.0.1:9000"),
            "http://127.0.0.1:9000/.well-known/jwt-vc-issuer"
        );
        assert_eq!(
            metadata_url("https://edu.example/issuer"),
            "https://edu.example/.well-known/jwt-vc-issuer/issuer"
        );
    }
}
