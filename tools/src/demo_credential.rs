//! The demo's credentials: the education ministry's node issues a course-completion credential
//! (SD-JWT VC) for each course its returnees complete with a certificate; the demo shows one,
//! as its holder presents it without the PIN, and its verification as an employer does it.

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde_json::{json, Value};

use crate::synthetic::population::{Outcome, Population};
use jol::credentials::key::IssuerKey;
use jol::net::client::{Endpoint, HttpClient};

/// Give the node of `config` a credential key and a `[credentials]` section whose public
/// listener is a free loopback port (the issuer URL is that address).
pub fn enable(config: &Path) -> Result<()> {
    let folder = config.parent().context("the node config has no folder")?;
    IssuerKey::generate("credential-1").write(&folder.join("keys/credential.pem"))?;
    let listen = jol::ports::free_loopback()?;
    let mut text = std::fs::read_to_string(config)?;
    text.push_str(&format!(
        "\n[credentials]\nissuer = \"http://{listen}\"\npublic_listen = \"{listen}\"\nkey_file = \"keys/credential.pem\"\n"
    ));
    std::fs::write(config, text)?;
    Ok(())
}

/// One credential the education node issued to a returnee whose course was certified: the
/// credential, the holder's presentation without the PIN, and what its verification proves.
pub async fn example(pop: &Population, education: &Endpoint, public: SocketAddr) -> Result<Value> {
    let Some(person) = pop.persons.iter().find(|p| {
        p.consent_education
            && p.training
                .as_ref()
                .is_some_and(|t| t.outcome == Outcome::Certified)
    }) else {
        return Ok(Value::Null);
    };
    let path = format!("/api/v1/persons/{}/credentials", person.pin);
    let started = Instant::now();
    let credential = loop {
        let mut c = education.connect().await?;
        let (_, body) = c.get(&path).await?;
        let listed: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        if let Some(first) = listed["credentials"].get(0) {
            break first["sdJwt"].as_str().unwrap_or_default().to_string();
        }
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(60),
            "the education node issued no credential for a certified course within 60 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let presentation = without_pin(&credential);
    let mut c = HttpClient::connect(public).await?;
    let (_, metadata) = c.get("/.well-known/jwt-vc-issuer").await?;
    let (_, status_list) = c.get("/status/1").await?;
    let metadata: Value = serde_json::from_slice(&metadata)?;
    let status_list = String::from_utf8_lossy(&status_list).into_owned();
    let proof = jol::credentials::verify::verify(&presentation, &metadata, Some(&status_list))?;
    Ok(json!({
        "credential": credential,
        "presentation": presentation,
        "verification": proof,
        "verificationText": proof.describe(),
        "verificationPage": format!("http://{public}/verify"),
    }))
}

/// The credential without its PIN's disclosure: what a holder who hides the PIN presents.
fn without_pin(credential: &str) -> String {
    use base64::Engine;
    let name = |d: &str| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(d)
            .ok()
            .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
            .and_then(|v| v.get(1).and_then(Value::as_str).map(String::from))
    };
    credential
        .split('~')
        .enumerate()
        .filter(|(i, d)| *i == 0 || d.is_empty() || name(d).as_deref() != Some("pin"))
        .map(|(_, d)| d)
        .collect::<Vec<_>>()
        .join("~")
}

/// Print the example: the presentation (shortened) and its verification.
pub fn print(example: &Value) {
    if example.is_null() {
        return;
    }
    let shown = example["presentation"].as_str().unwrap_or_default();
    let parts: Vec<&str> = shown.split('~').collect();
    println!(
        "\nA course-completion credential (SD-JWT VC, ES256) the education ministry issued; its holder presents it without the PIN ({} disclosures of {}):",
        parts.len().saturating_sub(2),
        example["credential"].as_str().unwrap_or_default().split('~').count().saturating_sub(2)
    );
    let jws = parts.first().copied().unwrap_or_default();
    println!(
        "  {}…{}~…",
        &jws[..jws.len().min(60)],
        &jws[jws.len().saturating_sub(20)..]
    );
    println!(
        "Its verification, as an employer does it (`jol credential verify`, or the page {}):",
        example["verificationPage"].as_str().unwrap_or_default()
    );
    for line in example["verificationText"]
        .as_str()
        .unwrap_or_default()
        .lines()
    {
        println!("  {line}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_presentation_leaves_out_the_pin_alone() {
        use base64::Engine;
        let d = |name: &str| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .encode(format!("[\"s\",\"{name}\",\"v\"]"))
        };
        let credential = format!("h.p.s~{}~{}~", d("pin"), d("birthdate"));
        assert_eq!(
            without_pin(&credential),
            format!("h.p.s~{}~", d("birthdate"))
        );
    }
}
