//! Verifying a credential as an employer would: the SD-JWT VC's signature against the issuer's
//! published JWKS, its issuer, each disclosure against the digests it signed, and (given the
//! issuer's status list token) that it is not revoked. What it proves is the claims in the clear
//! and those disclosed; a claim the holder left out is named as left out, never guessed.
//! `jol credential verify` prints it; the verification page does the same in the browser.

use serde::Serialize;
use serde_json::Value;

use super::credential::{DISCLOSABLE, TYP};
use super::key::{verify_compact, JwsError};
use super::status::{self, StatusList};
use crate::event::disclosure::{self, SdError};

/// Why a credential does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// The metadata is not issuer metadata.
    #[error("the issuer metadata is not {{\"issuer\": ..., \"jwks\": {{\"keys\": [...]}}}}")]
    Metadata,
    /// The credential's JWS does not verify.
    #[error("the credential: {0}")]
    Jws(JwsError),
    /// Issued by another issuer than the metadata's.
    #[error("the credential's iss {0:?} is not the issuer {1:?}")]
    Issuer(Option<String>, String),
    /// No `vct`.
    #[error("the credential has no vct")]
    NoType,
    /// A disclosure the issuer did not sign.
    #[error("a disclosure does not fit the credential: {0}")]
    Disclosure(SdError),
    /// The status list token does not verify.
    #[error("the status list: {0}")]
    StatusList(JwsError),
    /// The status list is not the credential's, or cannot be read.
    #[error("the status list token is not for the credential's list {0:?}, or not one this verifier reads")]
    StatusListOther(String),
    /// Revoked.
    #[error("the credential is revoked (status list entry {0})")]
    Revoked(u64),
}

/// Whether the credential's status was checked, and found valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    /// Its entry in the issuer's status list is 0.
    Valid,
    /// No status list was given to check it against.
    NotChecked,
    /// The credential names no status list.
    None,
}

/// What a verified credential proves.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Proof {
    /// The issuer's URL.
    pub issuer: String,
    /// The credential's type.
    pub vct: String,
    /// Every claim it proves: those in the clear and those disclosed.
    pub claims: Value,
    /// The selectively disclosable claims the holder disclosed.
    pub disclosed: Vec<String>,
    /// Those the holder left out.
    pub withheld: Vec<String>,
    /// Whether it is revoked, as far as checked.
    pub status: Status,
}

impl Proof {
    /// What the proof says, for a person to read (`jol credential verify`, the demo).
    pub fn describe(&self) -> String {
        let proof = self;
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
        let verdict = match proof.status {
            Status::NotChecked => "SIGNED, REVOCATION NOT CHECKED",
            Status::Valid | Status::None => "VALID",
        };
        let mut out = format!(
            "{verdict}: a credential of {} signed by {}\n",
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
            out += &format!("  {:<16} not disclosed\n", format!("{name}:"));
        }
        out += match proof.status {
            Status::Valid => "  status:          not revoked (the issuer's status list)\n",
            Status::NotChecked => "  status:          NOT CHECKED (no status list given)\n",
            Status::None => "  status:          the credential names no status list\n",
        };
        out
    }
}

/// Verify the compact SD-JWT VC `credential` against `metadata` (as served at
/// `/.well-known/jwt-vc-issuer`) and, when given, the issuer's status list token.
pub fn verify(
    credential: &str,
    metadata: &Value,
    status_list: Option<&str>,
) -> Result<Proof, VerifyError> {
    let issuer = metadata
        .get("issuer")
        .and_then(Value::as_str)
        .ok_or(VerifyError::Metadata)?;
    let jwks = metadata.get("jwks").ok_or(VerifyError::Metadata)?;
    let mut parts = credential.trim().split('~');
    let jws = parts.next().unwrap_or_default();
    let disclosures: Vec<&str> = parts.filter(|d| !d.is_empty()).collect();
    let verified = verify_compact(jws, TYP, jwks).map_err(VerifyError::Jws)?;
    let mut claims = verified.payload;
    let iss = claims.get("iss").and_then(Value::as_str).map(String::from);
    if iss.as_deref() != Some(issuer) {
        return Err(VerifyError::Issuer(iss, issuer.to_string()));
    }
    let vct = claims
        .get("vct")
        .and_then(Value::as_str)
        .ok_or(VerifyError::NoType)?
        .to_string();
    let revealed =
        disclosure::reveal(&mut claims, &disclosures).map_err(VerifyError::Disclosure)?;
    if let Some(map) = claims.as_object_mut() {
        map.remove("_sd_alg");
    }
    let disclosed: Vec<String> = revealed
        .iter()
        .map(|d| d.pointer.as_str().trim_start_matches('/').to_string())
        .collect();
    let withheld = DISCLOSABLE
        .iter()
        .filter(|name| !disclosed.iter().any(|d| d == *name))
        .map(|name| name.to_string())
        .collect();
    let status = check_status(&claims, jwks, status_list)?;
    Ok(Proof {
        issuer: issuer.to_string(),
        vct,
        claims,
        disclosed,
        withheld,
        status,
    })
}

/// The credential's entry in the status list token, if one is given.
fn check_status(claims: &Value, jwks: &Value, token: Option<&str>) -> Result<Status, VerifyError> {
    let Some(entry) = claims.pointer("/status/status_list") else {
        return Ok(Status::None);
    };
    let Some(token) = token else {
        return Ok(Status::NotChecked);
    };
    let uri = entry.get("uri").and_then(Value::as_str).unwrap_or_default();
    let idx = entry.get("idx").and_then(Value::as_u64);
    let list = verify_compact(token.trim(), status::TYP, jwks).map_err(VerifyError::StatusList)?;
    let other = || VerifyError::StatusListOther(uri.to_string());
    if list.payload.get("sub").and_then(Value::as_str) != Some(uri) {
        return Err(other());
    }
    let idx = idx.ok_or_else(other)?;
    let bits = StatusList::of_payload(&list.payload).ok_or_else(other)?;
    match bits.is_revoked(idx) {
        Some(false) => Ok(Status::Valid),
        Some(true) => Err(VerifyError::Revoked(idx)),
        None => Err(other()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::credentials::credential::Issue;
    use crate::credentials::key::IssuerKey;
    use crate::event::identifiers::MemberId;
    use crate::event::schema::EventType;
    use crate::event::Event;
    use serde_json::json;

    const ISSUER: &str = "https://credentials.edu.example";

    fn certified() -> Event {
        let source: MemberId = "central-server/GOV/70000003/education".parse().unwrap();
        Event::new(
            source,
            EventType::TrainingEnrolment,
            7,
            json!({"event": "CERTIFIED", "eventDate": "2026-07-05", "purpose": "TRAINING_SERVICES",
                "legalBasis": "Law on Education, art. 31", "person": {"pin": "21503199012345"},
                "enrolmentId": "EDU-1",
                "course": {"code": "W-1", "title": {"ky": "Ширетүүчү", "ru": "Сварщик", "en": "Welder"},
                    "iscedField": "0715", "hours": 120, "mode": "IN_PERSON", "funding": "DONOR",
                    "skills": ["http://data.europa.eu/esco/skill/00000000-0000-4000-8000-000000000001"]},
                "credential": {"type": "MICRO_CREDENTIAL", "title": {"en": "Manual arc welder"},
                    "issueDate": "2026-07-05", "learningOutcomes": []}}),
        )
    }

    fn issued(key: &IssuerKey, idx: u64) -> String {
        let event = certified();
        let issue = Issue {
            event: &event,
            view: None,
            issuer: ISSUER,
            vct: &format!("{ISSUER}/vct/course-completion"),
            status_uri: &format!("{ISSUER}/status/1"),
            status_idx: idx,
            now: time::OffsetDateTime::now_utc(),
        };
        issue.sign(key).unwrap().sd_jwt
    }

    fn metadata(key: &IssuerKey) -> Value {
        json!({"issuer": ISSUER, "jwks": {"keys": [key.jwk()]}})
    }

    #[test]
    fn a_credential_proves_its_course_and_what_the_holder_discloses() {
        let key = IssuerKey::generate("vc-1");
        let credential = issued(&key, 0);
        let proof = verify(&credential, &metadata(&key), None).unwrap();
        assert_eq!(proof.claims["pin"], "21503199012345");
        assert_eq!(proof.claims["course"]["title"]["ky"], "Ширетүүчү");
        assert_eq!(proof.claims["course"]["hours"], 120);
        assert_eq!(proof.disclosed, ["pin", "birthdate"]);
        assert_eq!(
            proof.claims["birthdate"], "1990-03-15",
            "the date the PIN encodes"
        );
        assert_eq!(proof.status, Status::NotChecked);
        assert!(
            proof
                .describe()
                .starts_with("SIGNED, REVOCATION NOT CHECKED"),
            "never called valid unchecked"
        );

        // The holder drops the PIN's disclosure: the course still verifies, the PIN is gone.
        let pin_disclosure = credential.split('~').nth(1).unwrap();
        let without_pin = credential.replace(&format!("~{pin_disclosure}"), "");
        let proof = verify(&without_pin, &metadata(&key), None).unwrap();
        assert!(proof.claims.get("pin").is_none());
        assert!(proof.withheld.contains(&"pin".to_string()));
        assert_eq!(proof.claims["course"]["title"]["en"], "Welder");
    }

    /// A reader is given of the person's claims only those the view it is served holds: the
    /// name leaves the credential with the view's name (withheld from it, or erased), and the
    /// credential still verifies.
    #[test]
    fn a_reader_is_given_only_the_person_s_claims_its_view_holds() {
        use crate::registry::view::PersonView;
        let key = IssuerKey::generate("vc-1");
        let event = certified();
        let pin: crate::event::identifiers::Pin = "21503199012345".parse().unwrap();
        let mut named = PersonView::new(pin.clone());
        named.name = Some(json!({"given": "Azamat", "family": "Zhumabekov"}));
        let issue = Issue {
            event: &event,
            view: Some(&named),
            issuer: ISSUER,
            vct: &format!("{ISSUER}/vct/course-completion"),
            status_uri: &format!("{ISSUER}/status/1"),
            status_idx: 0,
            now: time::OffsetDateTime::now_utc(),
        };
        let held = issue.sign(&key).unwrap();
        let disclosed = |view: &PersonView| {
            let served = held.as_served_with(view);
            verify(&served, &metadata(&key), None).unwrap().disclosed
        };
        let whole = ["pin", "given_name", "family_name", "birthdate"];
        assert_eq!(disclosed(&named), whole);
        assert_eq!(
            disclosed(&PersonView::new(pin.clone())),
            ["pin", "birthdate"]
        );
        let mut renamed = named.clone();
        renamed.name = Some(json!({"given": "Azamat", "family": "Other"}));
        assert_eq!(disclosed(&renamed), ["pin", "given_name", "birthdate"]);
    }

    #[test]
    fn altered_foreign_or_revoked_credentials_are_refused() {
        let key = IssuerKey::generate("vc-1");
        let credential = issued(&key, 1);
        // Another PIN in a disclosure of the holder's making: its digest is not signed.
        let forged = crate::event::disclosure::conceal(
            &mut json!({"pin": "21503199099999"}),
            &["/pin".parse().unwrap()],
        );
        let pin_disclosure = credential.split('~').nth(1).unwrap();
        let altered = credential.replace(pin_disclosure, &forged[0].encoded);
        assert!(matches!(
            verify(&altered, &metadata(&key), None),
            Err(VerifyError::Disclosure(_))
        ));
        // Signed by another key under the same kid.
        let other = IssuerKey::generate("vc-1");
        assert!(matches!(
            verify(&issued(&other, 0), &metadata(&key), None),
            Err(VerifyError::Jws(JwsError::Signature))
        ));
        // Another issuer's metadata.
        let mut elsewhere = metadata(&key);
        elsewhere["issuer"] = "https://attacker.example".into();
        assert!(matches!(
            verify(&credential, &elsewhere, None),
            Err(VerifyError::Issuer(..))
        ));
        // Revoked: entry 1 of the list.
        let mut list = StatusList::default();
        list.take(0);
        list.take(1);
        let uri = format!("{ISSUER}/status/1");
        let valid = list.token(&key, ISSUER, &uri, 0);
        let proof = verify(&credential, &metadata(&key), Some(&valid)).unwrap();
        assert_eq!(proof.status, Status::Valid);
        list.revoke(1);
        let revoked = list.token(&key, ISSUER, &uri, 0);
        assert_eq!(
            verify(&credential, &metadata(&key), Some(&revoked)),
            Err(VerifyError::Revoked(1))
        );
        // A list signed by another key is no list of this issuer's.
        let foreign = list.token(&other, ISSUER, &uri, 0);
        assert!(matches!(
            verify(&credential, &metadata(&key), Some(&foreign)),
            Err(VerifyError::StatusList(_))
        ));
    }
}
