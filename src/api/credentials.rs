//! The credentials this node issued, for the person and the officer: listing a person's
//! (consent and the access log as for every person read: `served_view`), each with its SD-JWT
//! VC, a QR code of it and its status; and revoking one (`admin`).

use hyper::body::Incoming;
use hyper::{Request, StatusCode};
use serde_json::Value;

use super::registry::Hidden;
use super::LocalApi;
use crate::credentials::credential::{Held, Revoked};
use crate::credentials::issuer::{Issuer, IssuerError};
use crate::net::http::{self, storage_problem, Problem, ProblemKind, Response};
use crate::policy::access::Reader;
use crate::registry::view::PersonView;

/// The longest revocation reason taken.
const MAX_REASON: usize = 500;

impl LocalApi {
    /// `GET /api/v1/persons/{pin}/credentials`.
    pub(super) fn person_credentials(&self, pin: &str, who: &Reader) -> Result<Response, Problem> {
        let issuer = self.issuer()?;
        let view = self.served_view(pin, who, "the person's credentials")?;
        let held = issuer
            .credentials_of(view.pin.expose())
            .map_err(storage_problem)?;
        // Of each credential, only the person's claims the view served holds too: not what was
        // received and is withheld from this reader, nor what was erased since it was issued.
        let credentials: Vec<Value> = held.iter().map(|h| listed(h, &view)).collect();
        let hidden = Hidden::of(&view, &self.member, who);
        Ok(http::json(
            StatusCode::OK,
            &serde_json::json!({"pin": view.pin, "issuer": issuer.config.issuer, "credentials": credentials, "hidden": hidden}),
        ))
    }

    /// `POST /api/v1/credentials/{id}/revocation` with `{"reason": "..."}`.
    pub(super) async fn revoke_credential(
        &self,
        id: &str,
        req: Request<Incoming>,
    ) -> Result<Response, Problem> {
        let issuer = self.issuer()?;
        let id = uuid::Uuid::parse_str(id).map_err(|_| {
            Problem::new(
                ProblemKind::BadEventId,
                "a credential id is a UUID, as its listing names it",
            )
        })?;
        http::require_json(&req)?;
        let body = http::read_body(req, self.max_body_bytes, self.body_deadline).await?;
        let reason = reason(&http::parse_json(&body)?)?;
        match issuer.revoke(&self.publisher, id, &reason).await {
            Ok(done) => Ok(http::json(StatusCode::OK, &revoked(&done))),
            Err(IssuerError::Unknown) => Err(Problem::new(
                ProblemKind::CredentialNotFound,
                "this node issued no credential with that id",
            )),
            Err(IssuerError::AlreadyRevoked) => Err(Problem::new(
                ProblemKind::CredentialRevoked,
                "that credential was revoked before",
            )),
            Err(e) => Err(storage_problem(e)),
        }
    }

    fn issuer(&self) -> Result<&Issuer, Problem> {
        self.credentials.as_deref().ok_or_else(|| {
            Problem::new(
                ProblemKind::NotAnIssuer,
                "this node issues no credentials (its config has no [credentials] section)",
            )
        })
    }
}

/// The `reason` of a revocation request: a non-empty string of at most 500 characters, and
/// nothing else in the body.
fn reason(body: &Value) -> Result<String, Problem> {
    let invalid = || {
        Problem::new(
            ProblemKind::InvalidRequest,
            "a revocation is {\"reason\": \"why, in at most 500 characters\"}",
        )
    };
    let Some(object) = body.as_object() else {
        return Err(invalid().field("", "must be a JSON object"));
    };
    if let Some(other) = object.keys().find(|k| k.as_str() != "reason") {
        return Err(invalid().field(format!("/{other}"), "unknown member"));
    }
    match object.get("reason").and_then(Value::as_str).map(str::trim) {
        Some(r) if !r.is_empty() && r.chars().count() <= MAX_REASON => Ok(r.to_string()),
        _ => Err(invalid().field(
            "/reason",
            "must be a non-empty string of at most 500 characters",
        )),
    }
}

/// A credential as listed for a reader served `view` of the person: with only the disclosures
/// that view holds too, its status and a QR code (SVG) of its SD-JWT VC as listed.
fn listed(held: &Held, view: &PersonView) -> Value {
    let mut value = serde_json::to_value(held).unwrap_or_default();
    let sd_jwt = held.as_served_with(view);
    value["status"] = if held.revoked.is_some() {
        "revoked"
    } else {
        "valid"
    }
    .into();
    if let Some(svg) = qr_svg(&sd_jwt) {
        value["qrSvg"] = svg.into();
    }
    value["sdJwt"] = sd_jwt.into();
    value
}

/// What a revocation answers: which credential, its status and the revocation, not the
/// credential itself (it names its holder: reading it is a read of the person, through the
/// person's credentials route, decided and logged there).
fn revoked(done: &Revoked) -> Value {
    serde_json::json!({
        "id": done.id,
        "status": "revoked",
        "revoked": done.revoked,
    })
}

/// A QR code of `text` as SVG, if it fits one (a QR code holds at most ~2.9 KB).
fn qr_svg(text: &str) -> Option<String> {
    let code = qrcode::QrCode::with_error_correction_level(text, qrcode::EcLevel::L).ok()?;
    Some(
        code.render::<qrcode::render::svg::Color<'_>>()
            .min_dimensions(256, 256)
            .build(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_revocation_names_its_reason_and_nothing_else() {
        assert_eq!(
            reason(&json!({"reason": " annulled "})).unwrap(),
            "annulled"
        );
        for bad in [
            json!({}),
            json!({"reason": ""}),
            json!({"reason": 3}),
            json!([]),
            json!({"reason": "x", "pin": "1"}),
            json!({"reason": "x".repeat(501)}),
        ] {
            assert!(reason(&bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_credential_fits_a_qr_code() {
        let svg = qr_svg(&"A".repeat(1500)).unwrap();
        assert!(
            svg.starts_with("<?xml") && svg.contains("<svg"),
            "{}",
            &svg[..60]
        );
        assert!(qr_svg(&"A".repeat(8000)).is_none());
    }
}
