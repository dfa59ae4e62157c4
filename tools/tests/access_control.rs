//! Who may ask a node what, end to end on real nodes: every route but `/healthz` needs a token,
//! each route's scope is enforced, and a person lookup with a purpose the person's consent does
//! not cover is refused and logged. (A foreign `Host` and a cross-origin POST:
//! `tests/publish_node.rs`.)

mod common;

use common::*;

/// Every route of the local API with the scope it needs (`None`: any token) and what a token
/// with that scope gets on this node (one employment status published, nobody's person held):
/// the status and, where it says which resource was missing or what was wrong, the problem's
/// type. Written out here, apart from the node's own table, so a route that loses its check,
/// its handler or its parameters fails this test.
/// Method, path, scope needed, status with that scope, problem type.
type Route = (
    &'static str,
    &'static str,
    Option<&'static str>,
    u16,
    Option<&'static str>,
);

#[rustfmt::skip]
const ROUTES: [Route; 36] = [
    ("GET", "/readyz", Some("monitor"), 200, None),
    ("GET", "/metrics", Some("monitor"), 200, None),
    ("GET", "/api/v1/session", None, 200, None),
    ("POST", "/api/v1/events", Some("publish"), 422, Some("invalid-request")),
    ("POST", "/api/v1/events/batch", Some("publish"), 422, Some("invalid-request")),
    ("GET", "/api/v1/events", Some("read-events"), 200, None),
    ("GET", "/api/v1/events/0190a1b2-0000-7000-8000-000000000000", Some("read-events"), 404, Some("event-not-found")),
    ("GET", "/api/v1/quarantine", Some("read-events"), 200, None),
    ("GET", "/api/v1/log/checkpoint", None, 200, None),
    // Hash tiles of the checkpointed tree of one event: its partial level-0 tile only.
    ("GET", "/api/v1/log/tile/0/000.p/1", None, 200, None),
    ("GET", "/api/v1/log/tile/0/000", None, 404, Some("tile-not-covered")),
    ("GET", "/api/v1/log/tile/0/000.p/2", None, 404, Some("tile-not-covered")),
    ("GET", "/api/v1/log/tile/0/001.p/1", None, 404, Some("tile-not-covered")),
    ("GET", "/api/v1/log/tile/0/x1000", None, 400, Some("bad-tile-path")),
    ("GET", "/api/v1/log/tile/00/000.p/1", None, 400, Some("bad-tile-path")),
    ("GET", "/api/v1/log/tile/0/0000.p/1", None, 400, Some("bad-tile-path")),
    ("GET", "/api/v1/log/tile/0/000.p/0", None, 400, Some("bad-tile-path")),
    ("GET", "/api/v1/log/tile/0/000.p/256", None, 400, Some("bad-tile-path")),
    ("GET", "/api/v1/log/tile/64/000", None, 400, Some("bad-tile-path")),
    ("GET", "/api/v1/log/tile/entries/000.p/1", None, 404, Some("entries-not-served")),
    ("GET", "/api/v1/log/proof/inclusion?leaf=0&size=1", Some("read-events"), 200, None),
    ("GET", "/api/v1/log/proof/consistency?from=1&to=1", Some("read-events"), 200, None),
    ("GET", "/api/v1/persons/21503199012345", Some("read-persons"), 404, Some("person-not-found")),
    ("GET", "/api/v1/persons/21503199012345/access-log", Some("read-persons"), 404, Some("person-not-found")),
    ("GET", "/api/v1/kpi", Some("read-kpi"), 200, None),
    ("GET", "/api/v1/persons/21503199012345/matches", Some("read-persons"), 404, Some("person-not-found")),
    ("GET", "/api/v1/persons/21503199012345/courses", Some("read-persons"), 404, Some("person-not-found")),
    ("GET", "/api/v1/vacancies", Some("read-events"), 200, None),
    ("GET", "/api/v1/courses", Some("read-events"), 200, None),
    ("GET", "/api/v1/vacancies/VAC-1/candidates", Some("read-persons"), 404, Some("vacancy-not-found")),
    ("POST", "/api/v1/persons/21503199012345/erasure", Some("admin"), 422, Some("invalid-request")),
    ("GET", "/api/v1/erasures/0190a1b2-0000-7000-8000-000000000000", Some("admin"), 404, Some("erasure-not-found")),
    ("GET", "/api/v1/kpi/reports", Some("read-kpi"), 200, None),
    ("GET", "/api/v1/kpi/reports/2020-01", Some("read-kpi"), 404, Some("not-found")),
    ("GET", "/api/v1/persons/21503199012345/credentials", Some("read-persons"), 404, Some("not-an-issuer")),
    ("POST", "/api/v1/credentials/0190a1b2-0000-7000-8000-000000000000/revocation", Some("admin"), 404, Some("not-an-issuer")),
];

#[test]
fn every_route_but_healthz_needs_a_token_with_its_scope() {
    let dir = NodeDir::new("");
    // One token per scope, and one with none of the others' scopes for each route.
    let scopes = [
        "publish",
        "read-events",
        "read-persons",
        "read-kpi",
        "monitor",
        "admin",
    ];
    let tokens: Vec<(&str, String)> = scopes
        .iter()
        .map(|s| {
            (
                *s,
                create_token(&dir.config, &format!("t-{s}"), s, "EMPLOYMENT_SERVICES"),
            )
        })
        .collect();
    dir.append_config("[sync]\ncheckpoint_ms = 50\n");
    let node = dir.start();
    publish(node.addr, "employment-status", &employment_data(1, "c-1"));
    let signed = eventually(std::time::Duration::from_secs(10), || {
        get(node.addr, "/api/v1/log/checkpoint").status == 200
    });
    assert!(signed.is_some(), "no checkpoint was signed");
    let json_type = ("Content-Type", "application/json");
    for (method, path, scope, status, problem) in ROUTES {
        let none = anonymous(node.addr, method, path, &[json_type], b"{}").unwrap();
        assert_eq!(none.status, 401, "{method} {path} without a token");
        assert_eq!(
            none.json()["type"],
            "https://jol.example/problems/unauthorized"
        );
        for (has, token) in &tokens {
            // An admin token holds every scope (its answers, an officer's, are tested with the
            // routes themselves); here it is the scope the erasure and revocation routes need.
            if *has == "admin" && scope != Some("admin") {
                continue;
            }
            let bearer = format!("Bearer {token}");
            let a = request(
                node.addr,
                method,
                path,
                &[json_type, ("Authorization", &bearer)],
                b"{}",
            )
            .unwrap();
            let allowed = scope.is_none_or(|s| s == *has);
            if allowed {
                let said = String::from_utf8_lossy(&a.body);
                assert_eq!(a.status, status, "{method} {path} with {has}: {said}");
                if let Some(kind) = problem {
                    let expected = format!("https://jol.example/problems/{kind}");
                    assert_eq!(
                        a.json()["type"],
                        expected.as_str(),
                        "{method} {path}: {said}"
                    );
                }
            } else {
                assert_eq!(a.status, 403, "{method} {path} with {has}");
                let problem = a.json();
                assert_eq!(problem["scope"], scope.unwrap(), "{problem}");
                assert!(problem["detail"].as_str().unwrap().contains(scope.unwrap()));
            }
        }
    }
    // Open: liveness, and the dashboard's way in (the dashboard itself sends you to sign in).
    assert_eq!(
        anonymous(node.addr, "GET", "/healthz", &[], b"")
            .unwrap()
            .status,
        200
    );
    assert_eq!(
        anonymous(node.addr, "GET", "/signin", &[], b"")
            .unwrap()
            .status,
        200
    );
    let home = anonymous(node.addr, "GET", "/", &[], b"").unwrap();
    assert_eq!(home.status, 303);
    assert!(home
        .headers
        .to_ascii_lowercase()
        .contains("location: /signin"));
    // An expired session cookie or a made-up one is no way in either.
    let forged = anonymous(
        node.addr,
        "GET",
        "/api/v1/kpi",
        &[(
            "Cookie",
            &format!("jol_session_{}=made-up", node.addr.port()),
        )],
        b"",
    )
    .unwrap();
    assert_eq!(forged.status, 401);
    node.stop();
}

#[test]
fn a_lookup_for_a_purpose_the_consent_does_not_cover_is_refused_and_logged() {
    let fed = Federation::build();
    let mig = fed.start("migration");
    let emp = fed.start("employment");
    let pin = "21503199012345";
    let id = publish_id(
        mig.addr,
        "returnee-record",
        &returnee(pin, &[EMPLOYMENT], &["EMPLOYMENT_SERVICES"]),
    );
    assert!(arrives(emp.addr, MIGRATION, &id));
    // The employment service's statistics desk: its purpose is not one the person consented to.
    let stats = jol([
        "token",
        "--config",
        fed.config("employment").to_str().unwrap(),
        "create",
        "--name",
        "statistics-desk",
        "--scopes",
        "read-persons",
        "--purpose",
        "OFFICIAL_STATISTICS",
    ])
    .trim()
    .to_string();
    let as_stats = format!("Bearer {stats}");
    let path = format!("/api/v1/persons/{pin}");
    let refused = request(emp.addr, "GET", &path, &[("Authorization", &as_stats)], b"").unwrap();
    // Refused as a person the node never heard of is (a refusal does not tell who is held).
    assert_eq!(refused.status, 404);
    let problem = refused.json();
    assert_eq!(
        problem["type"],
        "https://jol.example/problems/person-not-found"
    );
    assert!(
        !problem.to_string().contains(pin),
        "no PIN in the refusal: {problem}"
    );
    assert!(!String::from_utf8_lossy(&refused.body).contains("returnDate"));
    // The operator's purpose (EMPLOYMENT_SERVICES) is covered.
    assert_eq!(get(emp.addr, &path).status, 200);
    let log = get(emp.addr, &format!("{path}/access-log")).json();
    let records = log["records"].as_array().unwrap();
    let refusal = records
        .iter()
        .find(|r| r["reader"] == "local:statistics-desk")
        .unwrap_or_else(|| panic!("the refusal is not logged: {log}"));
    assert_eq!(refusal["outcome"], "refused-no-consent");
    assert_eq!(refusal["purpose"], "OFFICIAL_STATISTICS");
    assert!(records
        .iter()
        .any(|r| r["reader"] == "local:operator" && r["outcome"] == "served"));
    // At the migration agency the record is its own file: served for its own purpose.
    assert_eq!(get(mig.addr, &path).status, 200);
    emp.stop();
    mig.stop();
}
