//! The X-Road services' OpenAPI 3.1 descriptions (`/v1/openapi.json` under each service): the
//! paths after the service code, as a security server calls them, with the X-Road headers
//! each needs. Register each on the security server as a REST service described by OpenAPI.

use serde_json::{json, Value};

use crate::api::openapi::{document, path_schema, query_param};
use crate::api::routes::Param;
use crate::net::xroad::Service;

/// An operation of a service: path after the service code, summary, success schema,
/// refusals, query parameters.
struct Op {
    method: &'static str,
    path: &'static str,
    summary: &'static str,
    ok: &'static str,
    refusals: &'static [u16],
    query: &'static [(&'static str, Param)],
}

const FEED: &[Op] = &[
    Op { method: "get", path: "/v1/feed", summary: "The publisher's own events in sequence order, long-polling up to `wait` seconds (capped by the node's max_wait_secs); what the client may not have comes as a placeholder", ok: "FeedPage", refusals: &[400, 403, 503], query: &[("after", Param::Integer), ("limit", Param::Integer), ("wait", Param::Integer), ("types", Param::Text), ("released_after", Param::Integer)] },
    Op { method: "get", path: "/v1/manifest", summary: "The signed manifest the node holds (a JWS)", ok: "OpenJws", refusals: &[], query: &[] },
    Op { method: "get", path: "/v1/log/checkpoint", summary: "The latest checkpoint (c2sp.org/tlog-checkpoint): a signed note with the log's signature and its witnesses' co-signatures", ok: "Note", refusals: &[404, 503], query: &[] },
    Op { method: "get", path: "/v1/log/tile/{L}/{N}", summary: "A hash tile of the checkpointed tree (c2sp.org/tlog-tiles); entry bundles are not served", ok: "Tile", refusals: &[404, 503], query: &[] },
    Op { method: "get", path: "/v1/proof/inclusion", summary: "RFC 9162 inclusion proof", ok: "Proof", refusals: &[400, 404, 409, 503], query: &[("leaf", Param::RequiredInteger), ("size", Param::RequiredInteger)] },
    Op { method: "get", path: "/v1/proof/event", summary: "Inclusion proof of the event with a feed sequence", ok: "Proof", refusals: &[400, 404, 409, 503], query: &[("sequence", Param::RequiredInteger), ("size", Param::RequiredInteger)] },
    Op { method: "get", path: "/v1/proof/consistency", summary: "RFC 9162 consistency proof", ok: "Proof", refusals: &[400, 404, 409, 503], query: &[("from", Param::RequiredInteger), ("to", Param::RequiredInteger)] },
];

const PERSONS: &[Op] = &[Op {
    method: "get",
    path: "/v1/persons/{pin}",
    summary: "A person's view as this member recorded it; needs X-Road-UserId and X-Road-Issue, both written to the person's access log with X-Road-Id and the client",
    ok: "PersonView",
    refusals: &[400, 403, 404, 503],
    query: &[("asOf", Param::Date)],
}];

const KPI: &[Op] = &[Op {
    method: "get",
    path: "/v1/kpi",
    summary: "The reintegration KPIs, cells under 5 persons suppressed",
    ok: "KpiReport",
    refusals: &[400, 403, 503],
    query: &[
        ("asOf", Param::Date),
        ("from", Param::Date),
        ("to", Param::Date),
        ("structureAt", Param::Date),
        ("cohort", Param::Text),
        ("breakdown", Param::Text),
    ],
}];

/// The description of one service.
pub(crate) fn service(s: Service) -> Value {
    let ops = match s {
        Service::Feed => FEED,
        Service::Persons => PERSONS,
        Service::Kpi => KPI,
    };
    let mut paths = serde_json::Map::new();
    for op in ops {
        let item = paths
            .entry(op.path.to_string())
            .or_insert_with(|| json!({}));
        item[op.method] = operation(s, op);
    }
    let mut doc = document(
        &format!("Jol over X-Road: {}", s.code()),
        "Called by the provider's X-Road security server with the path after the service code. The caller is the X-Road-Client header; refusals are RFC 9457 problem+json.",
        serde_json::Value::Object(paths),
        None,
    );
    doc["components"]["schemas"]["OpenJws"] = json!({"type": "object"});
    doc["components"]["schemas"]["Note"] = json!({"type": "string"});
    doc["components"]["schemas"]["Tile"] = json!({"type": "string", "format": "binary"});
    doc
}

fn operation(s: Service, op: &Op) -> Value {
    let mut parameters = vec![header(
        "X-Road-Client",
        true,
        "The calling subsystem: INSTANCE/CLASS/MEMBER/SUBSYSTEM",
    )];
    parameters.push(header("X-Road-Id", false, "The message id"));
    let persons = s == Service::Persons;
    parameters.push(header(
        "X-Road-UserId",
        persons,
        "The official, country-prefixed personal code",
    ));
    parameters.push(header(
        "X-Road-Issue",
        persons,
        "The case the call is made for",
    ));
    parameters.extend(op.path.split('/').filter_map(|p| p.strip_prefix('{').and_then(|p| p.strip_suffix('}'))).map(|name| {
        json!({"name": name, "in": "path", "required": true, "schema": path_schema(name)})
    }));
    parameters.extend(op.query.iter().map(|(name, kind)| query_param(name, *kind)));
    let mut responses = serde_json::Map::new();
    let media = match op.ok {
        "OpenJws" => "application/jose+json",
        "Note" => "text/plain; charset=utf-8",
        "Tile" => "application/octet-stream",
        _ => "application/json",
    };
    responses.insert("200".into(), json!({"description": "OK", "content": {media: {"schema": {"$ref": format!("#/components/schemas/{}", op.ok)}}}}));
    // Every operation refuses a missing or malformed X-Road-Client with 400, and a `Host` that
    // is none of the face's names with 421.
    for code in [400, 421].iter().chain(op.refusals) {
        responses.insert(code.to_string(), json!({"description": "Refused", "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}}));
    }
    if op.method == "post" {
        responses.remove("200");
        responses.insert("201".into(), json!({"description": "Created", "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{}", op.ok)}}}}));
    }
    json!({"summary": op.summary, "operationId": format!("{}{}", s.code(), op.path.replace(['/', '{', '}'], "_")), "parameters": parameters, "responses": responses})
}

fn header(name: &str, required: bool, description: &str) -> Value {
    json!({"name": name, "in": "header", "required": required, "description": description, "schema": {"type": "string"}})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_service_is_described_and_persons_needs_the_official() {
        for s in Service::ALL {
            let doc = service(s);
            assert_eq!(doc["openapi"], "3.1.0");
            assert!(!doc["paths"].as_object().unwrap().is_empty());
        }
        let persons = service(Service::Persons);
        let params = persons["paths"]["/v1/persons/{pin}"]["get"]["parameters"]
            .as_array()
            .unwrap()
            .clone();
        assert!(params
            .iter()
            .any(|p| p["name"] == "X-Road-UserId" && p["required"] == true));
    }
}
