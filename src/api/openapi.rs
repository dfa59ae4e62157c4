//! OpenAPI 3.1 descriptions, generated from every route's spec ([`super::routes::Route::ALL`]) and the
//! answer types' schemas here: the local API's at `/openapi.json`; the X-Road services' (built
//! with the same pieces in [`crate::xroad::openapi`]) at `/v1/openapi.json` under each service,
//! ready to register on a security server. Every refusal is RFC 9457 problem+json.

use serde_json::{json, Map, Value};

use super::routes::{Access, Body, Param, Route, Spec};

/// The statuses every token-guarded route may answer besides its own.
const GUARDED: [u16; 4] = [401, 403, 421, 429];

/// The local API's description.
pub(crate) fn local_api() -> Value {
    let mut paths = Map::new();
    for route in Route::ALL {
        let spec = route.spec();
        let item = paths
            .entry(spec.path.to_string())
            .or_insert_with(|| json!({}));
        item[spec.method.as_str().to_ascii_lowercase()] = operation(route);
    }
    document(
        "Jol node: local API",
        "The agency's own systems publish events and read the registry, KPIs and the verifiable log here. Every route but /healthz, /openapi.json and the dashboard's sign-in needs `Authorization: Bearer TOKEN` (or the dashboard's session cookie) with the route's scope.",
        Value::Object(paths),
        Some(json!({"bearer": {"type": "http", "scheme": "bearer"}})),
    )
}

/// An OpenAPI 3.1 document around `paths`, with Jol's component schemas.
pub(crate) fn document(
    title: &str,
    description: &str,
    paths: Value,
    security: Option<Value>,
) -> Value {
    let mut components = json!({"schemas": schemas()});
    if let Some(s) = security {
        components["securitySchemes"] = s;
    }
    json!({
        "openapi": "3.1.0",
        "info": {"title": title, "version": env!("CARGO_PKG_VERSION"), "description": description},
        "paths": paths,
        "components": components,
    })
}

fn operation(route: Route) -> Value {
    let spec = route.spec();
    let mut responses = Map::new();
    let (status, body) = spec.ok;
    responses.insert(status.to_string(), success(status, body));
    let guarded = matches!(spec.access, Access::Token(_));
    let mut refusals: Vec<u16> = spec.refusals.to_vec();
    if guarded {
        refusals.extend(GUARDED);
    } else {
        refusals.push(421);
    }
    if spec.request.is_some() {
        refusals.push(403); // a cross-origin state change
    }
    refusals.sort_unstable();
    refusals.dedup();
    for code in refusals.into_iter().filter(|c| *c != status) {
        responses.insert(code.to_string(), refusal(code, route));
    }
    let mut op = json!({
        "summary": spec.summary,
        "operationId": operation_id(&spec),
        "responses": responses,
    });
    let mut parameters: Vec<Value> = path_params(spec.path)
        .into_iter()
        .map(|name| {
            json!({"name": name, "in": "path", "required": true, "schema": path_schema(name)})
        })
        .collect();
    parameters.extend(
        spec.query
            .iter()
            .map(|(name, kind)| query_param(name, *kind)),
    );
    if !parameters.is_empty() {
        op["parameters"] = Value::Array(parameters);
    }
    match spec.access {
        Access::Token(scope) => {
            op["security"] = json!([{"bearer": []}]);
            if let Some(s) = scope {
                op["description"] = json!(format!(
                    "Needs a token with the scope `{}` (or `admin`).",
                    s.as_str()
                ));
            }
        }
        _ => op["security"] = json!([]),
    }
    if let Some(schema) = spec.request {
        op["requestBody"] = request_body(schema);
    }
    op
}

fn request_body(schema: &str) -> Value {
    let media = if schema == "SignIn" {
        "application/x-www-form-urlencoded"
    } else {
        "application/json"
    };
    json!({"required": true, "content": {media: {"schema": {"$ref": format!("#/components/schemas/{schema}")}}}})
}

fn success(status: u16, body: Body) -> Value {
    match body {
        Body::Json(schema) => json!({
            "description": "OK",
            "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{schema}")}}},
        }),
        Body::Html => {
            json!({"description": "A web page", "content": {"text/html": {"schema": {"type": "string"}}}})
        }
        Body::Metrics => {
            json!({"description": "Prometheus text format", "content": {"text/plain": {"schema": {"type": "string"}}}})
        }
        Body::Note => {
            json!({"description": "A signed note (c2sp.org/signed-note)", "content": {"text/plain; charset=utf-8": {"schema": {"type": "string"}}}})
        }
        Body::Bytes => {
            json!({"description": "Concatenated SHA-256 hashes", "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}})
        }
        Body::Redirect => json!({
            "description": if status == 303 { "See other: `Location` names the next page" } else { "Redirect" },
            "headers": {"Location": {"schema": {"type": "string"}}},
        }),
    }
}

/// A refusal's description: problem+json, except where the route answers otherwise.
fn refusal(code: u16, route: Route) -> Value {
    let html = matches!(route, Route::SignInPage | Route::SignIn) && matches!(code, 401 | 403);
    if code == 303 {
        return success(303, Body::Redirect);
    }
    if html {
        return json!({"description": "The sign-in page, saying why", "content": {"text/html": {"schema": {"type": "string"}}}});
    }
    if code == 503 && route == Route::Readyz {
        return json!({"description": "Not ready", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Ready"}}}});
    }
    let mut answer = json!({
        "description": refusal_text(code),
        "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}},
    });
    if code == 429 {
        answer["headers"] = json!({"Retry-After": {"schema": {"type": "integer"}}});
    }
    answer
}

fn refusal_text(code: u16) -> &'static str {
    match code {
        400 => "Bad request (the problem names what)",
        401 => "No valid token",
        403 => "The token lacks the scope, the purpose is not consented, or a cross-origin request",
        404 => "Not found",
        408 => "The body did not arrive in time",
        409 => "Conflict (idempotency key reused, ambiguous id, not covered yet)",
        413 => "The body, or the event once signed, is too large",
        415 => "Not JSON",
        421 => "Not one of the node's names (Host)",
        422 => "Invalid (each failing field named by JSON pointer)",
        429 => "The token's budget is spent",
        503 => "Storage unavailable, or the registry views are being projected again (views-behind)",
        507 => "The quarantine is full: the refused submission could not be kept (its refusal is named)",
        _ => "Refused",
    }
}

fn operation_id(spec: &Spec) -> String {
    let words: Vec<String> = spec
        .path
        .split(['/', '-', '.'])
        .filter(|w| !w.is_empty() && *w != "api" && *w != "v1")
        .map(|w| w.trim_matches(|c| c == '{' || c == '}').to_string())
        .collect();
    let name = if words.is_empty() {
        "dashboard".to_string()
    } else {
        words.join("_")
    };
    format!("{}_{name}", spec.method.as_str().to_ascii_lowercase())
}

fn path_params(path: &str) -> Vec<&str> {
    path.split('/')
        .filter_map(|p| p.strip_prefix('{').and_then(|p| p.strip_suffix('}')))
        .collect()
}

/// A path parameter's schema (shared with the X-Road services' descriptions).
pub(crate) fn path_schema(name: &str) -> Value {
    match name {
        "pin" => {
            json!({"type": "string", "description": "Personal identification number (14 digits)"})
        }
        "id" => json!({"type": "string", "format": "uuid"}),
        "L" => {
            json!({"type": "string", "description": "Tile level, 0 to 63 (c2sp.org/tlog-tiles)"})
        }
        "N" => {
            json!({"type": "string", "description": "Tile index in 3-digit path elements, all but the last prefixed with `x` (`x001/x234/067`), then `.p/W` for a partial tile"})
        }
        _ => json!({"type": "string"}),
    }
}

/// A query parameter's description.
pub(crate) fn query_param(name: &str, kind: Param) -> Value {
    let required = kind == Param::RequiredInteger;
    json!({"name": name, "in": "query", "required": required, "schema": param_schema(kind)})
}

/// A query parameter's schema.
fn param_schema(kind: Param) -> Value {
    match kind {
        Param::Integer | Param::RequiredInteger => json!({"type": "integer", "minimum": 0}),
        Param::Date => json!({"type": "string", "format": "date"}),
        Param::Text => json!({"type": "string"}),
    }
}

/// `/readyz`'s answer (`api::health::Readiness`).
fn ready_schema() -> Value {
    let count = json!({"type": "integer", "minimum": 0});
    let counts = json!({"type": "object", "additionalProperties": count});
    let failed = json!({"type": "object", "required": ["error"], "additionalProperties": false,
        "properties": {"error": {"type": "string"}}});
    let held = json!({"records": count, "bytes": count, "maxRecords": count, "maxBytes": count});
    let mut whole = held.clone();
    whole["publishers"] = json!({"type": "object", "additionalProperties": {"oneOf": [
        {"type": "object", "required": ["records", "bytes", "maxRecords", "maxBytes"], "additionalProperties": false, "properties": held},
        failed]}});
    let quarantine = json!({"oneOf": [
        {"type": "object", "required": ["records", "bytes", "maxRecords", "maxBytes", "publishers"], "additionalProperties": false, "properties": whole},
        failed]});
    let peer = json!({"type": "object", "additionalProperties": false, "required": ["connected", "cursor", "head", "last_error", "gaps", "failures",
        "quarantine_dropped", "release_cursor", "xroad_faults", "witness_unchecked", "side_logs_proven", "side_logs_unchecked"],
        "properties": {"connected": {"type": "boolean"}, "cursor": count, "head": count,
            "last_error": {"type": ["string", "null"]}, "gaps": count, "failures": counts,
            "quarantine_dropped": count, "release_cursor": count, "xroad_faults": counts,
            "witness_unchecked": count, "side_logs_proven": count, "side_logs_unchecked": count}});
    json!({"type": "object", "additionalProperties": false,
        "required": ["status", "member", "ownSequence", "views", "logForks", "store", "manifest", "peers",
            "warnings", "releases", "quarantine", "role"],
        "properties": {
            "status": {"enum": ["ready", "degraded", "not-ready"]},
            "member": {"type": "string"},
            "ownSequence": count,
            "views": {"type": "object", "required": ["cursor", "behind", "erasuresPending"], "additionalProperties": false,
                "properties": {"cursor": count, "behind": count, "erasuresPending": count}},
            "logForks": count,
            "store": {"type": "object", "required": ["ok"], "additionalProperties": false,
                "properties": {"ok": {"type": "boolean"}, "events": count, "error": {"type": "string"}}},
            "manifest": {"type": ["object", "null"], "required": ["ok", "serial"], "additionalProperties": false,
                "properties": {"ok": {"type": "boolean"}, "serial": count, "expires": {"type": "string", "format": "date-time"},
                    "error": {"type": "string"}}},
            "peers": {"type": "object", "additionalProperties": peer},
            "warnings": {"type": "array", "items": {"type": "string"}},
            "releases": counts,
            "quarantine": quarantine,
            "role": {"enum": ["contending", "standby", "writer", "deposed"]}}})
}

/// The component schemas of Jol's answers and requests.
fn schemas() -> Value {
    let any = json!({"type": "object"});
    // A credential the node issued (`credentials::credential::Held`, with its QR code and status).
    let credential = json!({"type": "object", "required": ["id", "vct", "sdJwt", "statusIdx", "issuedAt", "status"], "properties": {
        "id": {"type": "string", "format": "uuid"}, "vct": {"type": "string"}, "sdJwt": {"type": "string"},
        "statusIdx": {"type": "integer"}, "issuedAt": {"type": "string", "format": "date-time"}, "attests": any, "title": {},
        "legalBasis": {}, "revoked": {"type": ["object", "null"]}, "status": {"enum": ["valid", "revoked"]}, "qrSvg": {"type": "string"}}});
    let revocation = json!({"type": "object", "required": ["reason"], "properties": {"reason": {"type": "string", "minLength": 1, "maxLength": 500}}});
    // What a person answer keeps from the caller, by reason class (`registry::Hidden`).
    let hidden = json!({"type": ["object", "null"], "required": ["reason", "receivedLeftOut"], "properties": {
        "reason": {"enum": ["no-consent", "consent-withdrawn", "node-not-named", "purpose-not-named"]},
        "receivedLeftOut": {"type": "boolean"}}});
    let credentials = json!({"type": "object", "required": ["pin", "issuer", "credentials"], "properties": {
        "pin": {"type": "string"}, "issuer": {"type": "string"}, "credentials": {"type": "array", "items": credential.clone()},
        "hidden": hidden}});
    // What a KPI report was computed from (`registry::Basis`).
    let kpi_basis = json!({"type": "object", "required": ["node", "checkpoint", "viewsThrough"], "properties": {
        "node": {"type": "string"}, "viewsThrough": {"type": "integer"},
        "checkpoint": {"type": ["object", "null"], "required": ["size", "root"], "properties": {
            "size": {"type": "integer"}, "root": {"type": "string"}}}}});
    let jws = json!({"type": "object", "required": ["protected", "payload", "signature"],
        "properties": {"protected": {"type": "string"}, "payload": {"type": "string"}, "signature": {"type": "string"}}});
    let event_types = json!({"type": "string", "enum": crate::event::schema::EventType::ALL.iter().map(|t| t.as_str()).collect::<Vec<_>>()});
    let skills_gap = json!({"type": "object", "required": ["regions"], "properties": {"suppressedBelow": {"type": ["integer", "null"]}, "regions": {"type": "object", "additionalProperties": {
            "type": "object", "required": ["openVacancies", "openings", "skills"], "properties": {
                "openVacancies": {"type": "integer"}, "openings": {"type": "integer"}, "returnees": {"type": ["integer", "null"]},
                "skills": {"type": "array", "items": {"type": "object", "required": ["uri", "demand", "courses"], "properties": {
                    "uri": {"type": "string"}, "label": any, "demand": {"type": "integer"}, "returneesLacking": {"type": ["integer", "null"]},
                    "shareLacking": {"type": ["number", "null"]}, "courses": {"type": "array"}}}}}}}}});
    let mut schemas = json!({
        "Problem": {"type": "object", "required": ["type", "title", "status", "detail"], "properties": {
            "type": {"type": "string"}, "title": {"type": "string"}, "status": {"type": "integer"},
            "detail": {"type": "string"},
            "errors": {"type": "array", "items": {"type": "object", "required": ["pointer", "detail"], "properties": {
                "pointer": {"type": "string"}, "detail": {"type": "string"}, "keyword": {"type": "string"}}}}}},
        "Health": {"type": "object", "required": ["status"], "properties": {"status": {"const": "ok"}}},
        "Ready": ready_schema(),
        "OpenApi": {"type": "object", "required": ["openapi", "info", "paths"]},
        "Session": {"type": "object", "required": ["name", "scopes", "purpose"], "properties": {
            "name": {"type": "string"}, "scopes": {"type": "array", "items": {"type": "string"}},
            "purpose": {"type": "string"}, "via": {"enum": ["bearer", "session"]}}},
        "SignIn": {"type": "object", "required": ["token"], "properties": {"token": {"type": "string"}}},
        "PublishRequest": {"type": "object", "required": ["type", "data"], "properties": {
            "type": event_types, "data": {"type": "object", "description": "Valid against the type's JSON Schema (schemas/<type>.v1.json)"},
            "idempotencyKey": {"type": "string"}}},
        "BatchRequest": {"type": "object", "required": ["events"], "properties": {
            "events": {"type": "array", "maxItems": 1000, "items": {"$ref": "#/components/schemas/PublishRequest"}}}},
        "Published": {"type": "object", "required": ["id", "source", "sequence", "type", "position", "jws"], "properties": {
            "id": {"type": "string"}, "source": {"type": "string"}, "sequence": {"type": "string"},
            "type": {"type": "string"}, "position": {"type": "integer"}, "replayed": {"type": "boolean"}, "jws": jws}},
        "BatchAnswer": {"type": "object", "required": ["accepted", "rejected", "results"], "properties": {
            "accepted": {"type": "integer"}, "rejected": {"type": "integer"}, "results": {"type": "array", "items": any}}},
        "StoredItem": {"type": "object", "required": ["position", "event", "jws"], "properties": {
            "position": {"type": "integer"}, "event": any, "jws": jws}},
        "WithheldItem": {"type": "object", "required": ["position", "withheld"], "properties": {
            "position": {"type": "integer"}, "withheld": {"type": "string", "enum": ["no-consent"]}}},
        "EventPage": {"type": "object", "required": ["events", "next"], "properties": {
            "events": {"type": "array", "items": {"oneOf": [
                {"$ref": "#/components/schemas/StoredItem"}, {"$ref": "#/components/schemas/WithheldItem"}]}},
            "next": {"type": "integer"}}},
        "QuarantinePage": {"type": "object", "required": ["records"], "properties": {
            "records": {"type": "array", "items": any}, "next": {"type": "integer"}, "total": {"type": "integer"}}},
        "Proof": {"type": "object", "required": ["proof"], "properties": {"proof": {"type": "array", "items": {"type": "string"}}}},
        "PersonView": {"type": "object", "required": ["pin", "events"], "properties": {
            "pin": {"type": "string"}, "events": {"type": "array"}, "derived": any,
            "hidden": hidden}},
        "AccessLog": {"type": "object", "required": ["records"], "properties": {"records": {"type": "array", "items": {
            "type": "object", "required": ["time", "reader", "what", "requestId"], "properties": {
                "time": {"type": "string"}, "reader": {"type": "string"}, "user": {"type": ["string", "null"]},
                "purpose": {"type": ["string", "null"]}, "what": {"type": "string"}, "requestId": {"type": "string"},
                "messageId": {"type": "string"}, "outcome": {"enum": ["served", "refused-no-consent", "refused-nothing-held", "erased"]}}}}}},
        "Matches": {"type": "object", "required": ["pin", "matches"], "properties": {"pin": {"type": "string"}, "competencyProfile": any, "matches": {"type": "array", "items": {"$ref": "#/components/schemas/Match"}}}},
        "Match": {"type": "object", "required": ["vacancyId", "score", "terms", "matchedSkills", "missingEssentialSkills"], "properties": {
            "vacancyId": {"type": "string"}, "score": {"type": "number"}, "pin": {"type": "string"},
            "terms": {"type": "array", "items": {"type": "object", "required": ["name", "weight", "value", "reason"]}},
            "matchedSkills": {"type": "array"}, "missingEssentialSkills": {"type": "array"}, "missingOptionalSkills": {"type": "array"}}},
        "Candidates": {"type": "object", "required": ["vacancyId", "candidates"], "properties": {"vacancyId": {"type": "string"}, "candidates": {"type": "array", "items": {"$ref": "#/components/schemas/Match"}}}},
        "CourseSuggestions": {"type": "object", "required": ["pin", "gap", "courses"], "properties": {"pin": {"type": "string"}, "gap": {"type": "array"}, "courses": {"type": "array"}}},
        "Offers": {"type": "object", "required": ["offers"], "properties": {"offers": {"type": "array", "items": {"type": "object", "required": ["kind", "id", "open", "description"]}}}},
        "KpiReport": {"type": "object", "required": ["total"], "properties": {"total": any, "cohorts": any, "breakdowns": any,
            "basis": kpi_basis}},
        "SkillsGap": skills_gap,
        "FeedPage": {"type": "object", "required": ["events", "next", "head"], "properties": {
            "events": {"type": "array", "items": {"type": "object", "required": ["sequence"], "properties": {
                "sequence": {"type": "integer"}, "jws": jws, "withheld": {"type": "string"}}}},
            "next": {"type": "integer"}, "head": {"type": "integer"}, "released": {"type": "array"}, "releaseHead": {"type": ["integer", "null"]}}},
    });
    schemas["KpiReports"] = json!({"type": "object", "required": ["reports"], "properties": {"reports": {"type": "array", "items": {
        "type": "object", "required": ["month", "asOf", "checkpointSize", "checkpointRoot"], "properties": {
            "month": {"type": "string"}, "asOf": {"type": "string"}, "computedAt": {"type": ["string", "null"]},
            "checkpointSize": {"type": "integer"}, "checkpointRoot": {"type": "string"}}}}}});
    schemas["SignedKpiReport"] = json!({"type": "object", "required": ["report", "jws"], "properties": {
        "report": {"type": "object"}, "jws": {"type": "object", "required": ["protected", "payload", "signature"]}}});
    schemas["ErasureRequest"] = json!({"type": "object", "required": ["legalBasis", "reason"], "additionalProperties": false, "properties": {
        "legalBasis": {"type": "string", "minLength": 3, "maxLength": 300, "description": "The act that requires the erasure; sent to every holder"},
        "reason": {"type": "string", "minLength": 1, "maxLength": 500, "description": "Why, in the operator's words; kept on this node only"}}});
    schemas["ErasureRecord"] = json!({"type": "object", "required": ["id", "orderedBy", "at", "legalBasis", "cause", "erased", "event"], "properties": {
        "id": {"type": "string"}, "orderedBy": {"type": "string"}, "at": {"type": "string"},
        "legalBasis": {"type": "string"}, "cause": {"type": "string", "enum": ["REQUEST", "RETENTION"]},
        "reason": {"type": "string"}, "erased": {"type": "integer"}, "notErasable": {"type": "integer"},
        "event": {"type": "string"},
        "holders": {"type": "array", "items": {"type": "object", "required": ["member"], "properties": {
            "member": {"type": "string"}, "confirmed": {"type": "string"}, "erased": {"type": "integer"}}}}}});
    schemas["Credential"] = credential;
    schemas["Credentials"] = credentials;
    schemas["RevocationRequest"] = revocation;
    schemas["Revoked"] = json!({"type": "object", "required": ["id", "status", "revoked"], "additionalProperties": false, "properties": {
        "id": {"type": "string"}, "status": {"const": "revoked"},
        "revoked": {"type": "object", "required": ["at", "reason"], "properties": {"at": {"type": "string"}, "reason": {"type": "string"}}}}});
    schemas
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_is_described_with_its_refusals() {
        let doc = local_api();
        assert_eq!(doc["openapi"], "3.1.0");
        for route in Route::ALL {
            let spec = route.spec();
            let op = &doc["paths"][spec.path][spec.method.as_str().to_ascii_lowercase()];
            assert!(
                op.is_object(),
                "{} {} is not described",
                spec.method,
                spec.path
            );
            if matches!(spec.access, Access::Token(_)) {
                assert!(op["responses"]["401"].is_object(), "{}", spec.path);
            }
        }
        // Every $ref names a schema that exists.
        let text = doc.to_string();
        for piece in text.split("#/components/schemas/").skip(1) {
            let name = piece.split('"').next().unwrap();
            assert!(doc["components"]["schemas"][name].is_object(), "{name}");
        }
    }
}
