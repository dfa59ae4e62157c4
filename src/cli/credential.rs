//! `jol credential keygen`: the issuer's ES256 key; `jol credential verify`: a credential
//! checked offline against the issuer's metadata (and its status list), printing what it proves.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::Subcommand;
use serde_json::Value;

use crate::credentials::key::IssuerKey;
use crate::credentials::verify::{self, Proof, Status};
use crate::net::client::HttpClient;

#[derive(Subcommand, Debug)]
pub enum CredentialCommand {
    /// Generate the credential key (P-256, PKCS#8 PEM, mode 0600) for `[credentials] key_file`.
    Keygen {
        #[arg(long)]
        out: PathBuf,
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
                print!("{}", describe(&proof));
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

/// What the proof says, for a person to read.
fn describe(proof: &Proof) -> String {
    let c = &proof.claims;
    let text = |v: &Value| match v {
        Value::Object(m) => m
            .iter()
            .map(|(lang, t)| format!("{lang}: {}", t.as_str().unwrap_or_default()))
            .collect::<Vec<_>>()
            .join(" | "),
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    };
    let mut out = format!(
        "VALID: a credential of {} signed by {}\n",
        proof.vct, proof.issuer
    );
    out += &format!("  course:          {}\n", text(&c["course"]["title"]));
    out += &format!("  hours:           {}\n", text(&c["course"]["hours"]));
    out += &format!("  provider:        {}\n", text(&c["course"]["provider"]));
    out += &format!(
        "  completed on:    {}\n",
        text(&c["course"]["completion_date"])
    );
    for o in c["learning_outcomes"].as_array().into_iter().flatten() {
        let label = o["label"]["en"]
            .as_str()
            .map(String::from)
            .unwrap_or_else(|| text(&o["label"]));
        out += &format!("  skill:           {label} ({})\n", text(&o["esco"]));
    }
    for name in &proof.disclosed {
        out += &format!(
            "  {:<16} {} (disclosed)\n",
            format!("{name}:"),
            text(&c[name])
        );
    }
    for name in &proof.withheld {
        out += &format!("  {:<16} not disclosed by the holder\n", format!("{name}:"));
    }
    out += match proof.status {
        Status::Valid => "  status:          not revoked (the issuer's status list)\n",
        Status::NotChecked => "  status:          NOT CHECKED (no status list given)\n",
        Status::None => "  status:          the credential names no status list\n",
    };
    out
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
