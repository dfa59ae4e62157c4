//! Our OpenAPI descriptions, checked by a client we did not write: schemathesis (PyPI) generates
//! requests from `/openapi.json` and from each X-Road service's `/v1/openapi.json`, sends them to
//! a running node, and checks that no answer is a 5xx and that every answer's status, content
//! type and body match what the description says. `cargo xtask install` installs schemathesis and
//! openapi-spec-validator (`tests/common/tools.rs` finds them).

mod common;

use common::*;

/// Run schemathesis against `schema` (a URL), calling `base`, with `headers`; panics with its
/// report unless every check passes.
fn check(schema: &str, base: &str, headers: &[String]) {
    // schemathesis keeps a cache in its working folder: not in the repository.
    let scratch = tempfile::tempdir().unwrap();
    let mut cmd = tools::schemathesis();
    cmd.current_dir(scratch.path())
        .args(["run", schema, "--url", base])
        .args([
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance",
            "--max-examples",
            "25",
            "--seed",
            "2026",
        ])
        .env("NO_COLOR", "1");
    for h in headers {
        cmd.args(["-H", h]);
    }
    let out = cmd.output().unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "schemathesis found answers that do not match {schema}:\n{report}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(report.contains("passed"), "{report}");
}

/// Validate a description against the OpenAPI 3.1 specification with openapi-spec-validator.
fn valid_openapi_31(doc: &serde_json::Value) {
    use std::io::Write;
    let mut child = tools::python(&["openapi_spec_validator"])
        .args([
            "-c",
            "import json, sys\nfrom openapi_spec_validator import validate\nfrom openapi_spec_validator.validation import OpenAPIV31SpecValidator\nvalidate(json.load(sys.stdin), cls=OpenAPIV31SpecValidator)",
        ])
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(doc.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "not a valid OpenAPI 3.1 description: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_local_api_answers_as_its_openapi_description_says() {
    let dir = NodeDir::new("");
    let node = dir.start();
    publish(node.addr, "employment-status", &employment_data(1, "c-1"));
    let doc = get(node.addr, "/openapi.json").json();
    assert_eq!(doc["openapi"], "3.1.0");
    valid_openapi_31(&doc);
    let base = format!("http://{}", node.addr);
    check(
        &format!("{base}/openapi.json"),
        &base,
        &[format!("Authorization: Bearer {}", token_of(node.addr))],
    );
    node.stop();
}

#[test]
fn the_xroad_services_answer_as_their_descriptions_say() {
    let fed = Federation::build();
    let face_port = free_ports(1)[0];
    let config = fed.config("migration");
    let text = std::fs::read_to_string(&config).unwrap();
    // The face over plain HTTP from loopback (named: allow_from has no default): the gate is
    // tested in tests/xroad.rs and tests/closed_by_default.rs; here, what the services answer.
    std::fs::write(
        &config,
        format!(
            "{text}\n[xroad]\nprovider_listen = \"127.0.0.1:{face_port}\"\nallow_from = [\"127.0.0.1\"]\nmax_wait_secs = 1\n"
        ),
    )
    .unwrap();
    let mig = fed.start("migration");
    publish(
        mig.addr,
        "returnee-record",
        &returnee("21503199012345", &[EMPLOYMENT], &["EMPLOYMENT_SERVICES"]),
    );
    let face = mig.xroad.unwrap();
    for service in ["jol-feed", "jol-persons", "jol-kpi"] {
        let base = format!("http://{face}/{service}");
        let doc = anonymous(
            face,
            "GET",
            &format!("/{service}/v1/openapi.json"),
            &[],
            b"",
        )
        .unwrap()
        .json();
        valid_openapi_31(&doc);
        check(
            &format!("{base}/v1/openapi.json"),
            &base,
            &[format!("X-Road-Client: {EMPLOYMENT}")],
        );
    }
    mig.stop();
}
