//! End-to-end: a synthetic population published through the three agencies' nodes; the unified
//! view, the KPIs and the access log checked against figures computed here, in the test, from
//! the generated facts (not from the node's view or KPI code).

mod common;

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::time::Duration;

use common::truth::{check, expected};
use common::*;
use jol_tools::synthetic::population::{Person, Population};
use serde_json::Value;

const AS_OF: &str = "2027-01-01";

fn kpi(addr: SocketAddr, query: &str) -> Value {
    let a = get(
        addr,
        &format!("/api/v1/kpi?asOf={AS_OF}&suppress=false{query}"),
    );
    assert_eq!(a.status, 200, "{}", String::from_utf8_lossy(&a.body));
    a.json()
}

#[test]
fn kpis_and_views_at_each_agency_match_the_generated_population() {
    let fed = Federation::build();
    let nodes: Vec<Node> = AGENCIES.iter().map(|a| fed.start(a)).collect();
    let local: HashMap<String, SocketAddr> = AGENCIES
        .iter()
        .zip(&nodes)
        .map(|(a, n)| (a.to_string(), n.addr))
        .collect();
    let pop = Population::generate(300, 42);
    publish_population(&pop, &local, Duration::from_secs(60));
    let mig = local["migration"];

    // The migration agency sees everyone's pathway (every consent names it).
    let all: Vec<&Person> = pop.persons.iter().collect();
    let report = kpi(mig, "");
    check("total", &report["total"], &expected(&all, as_of()));
    let mut cohorts: BTreeMap<String, Vec<&Person>> = BTreeMap::new();
    for p in &all {
        cohorts
            .entry(jol::registry::kpi::cohort(p.returned))
            .or_default()
            .push(p);
    }
    assert_eq!(report["cohorts"].as_object().unwrap().len(), cohorts.len());
    for (c, people) in &cohorts {
        check(c, &report["cohorts"][c], &expected(people, as_of()));
    }
    for (dimension, key) in [
        (
            "sex",
            Box::new(|p: &Person| {
                if p.male {
                    "M".to_string()
                } else {
                    "F".to_string()
                }
            }) as Box<dyn Fn(&Person) -> String>,
        ),
        ("region", Box::new(|p: &Person| p.region.to_string())),
        (
            "destinationCountry",
            Box::new(|p: &Person| p.country.to_string()),
        ),
    ] {
        let mut groups: BTreeMap<String, Vec<&Person>> = BTreeMap::new();
        for p in &all {
            groups.entry(key(p)).or_default().push(p);
        }
        for (g, people) in &groups {
            check(
                &format!("{dimension}={g}"),
                &report["breakdowns"][dimension][g],
                &expected(people, as_of()),
            );
        }
    }

    // Cohorts whose window has not passed are not reported; small cells are suppressed by default.
    let censored = get(mig, "/api/v1/kpi?asOf=2025-03-01&cohort=2024Q4").json();
    assert_eq!(
        censored["cohorts"]["2024Q4"]["employedWithin6Months"]["rate"],
        Value::Null
    );
    let suppressed = get(mig, &format!("/api/v1/kpi?asOf={AS_OF}")).json();
    assert_eq!(suppressed["suppressedBelow"], 5);
    let csv = request(
        mig,
        "GET",
        &format!("/api/v1/kpi?asOf={AS_OF}"),
        &[("Accept", "text/csv")],
        b"",
    )
    .unwrap();
    assert!(csv.headers.contains("text/csv"));
    assert!(String::from_utf8_lossy(&csv.body)
        .starts_with("dimension,group,indicator,numerator,denominator,rate"));

    // One person as each agency sees it: education never got the record of someone who did not
    // consent to it.
    let private = pop
        .persons
        .iter()
        .find(|p| p.consent_employment && !p.consent_education)
        .unwrap();
    let edu = local["education"];
    assert_eq!(
        get(edu, &format!("/api/v1/persons/{}", private.pin)).status,
        404
    );
    let emp = local["employment"];
    let seen = request(
        emp,
        "GET",
        &format!("/api/v1/persons/{}", private.pin),
        &[
            ("X-Road-UserId", "KG-officer-17"),
            ("X-Road-Issue", "CASE-2025-77"),
        ],
        b"",
    )
    .unwrap();
    assert_eq!(seen.status, 200);
    let view = seen.json();
    assert_eq!(view["returnee"]["region"], private.region);
    assert!(view["derived"]["stage"].is_string());

    // Who looked at this person's data: the read just made, and the deliveries to migration.
    let log = get(emp, &format!("/api/v1/persons/{}/access-log", private.pin)).json();
    let records = log["records"].as_array().unwrap();
    // The official and the purpose are the token's: what the caller states in headers
    // (X-Road-UserId, X-Road-Issue) replaces neither.
    assert_eq!(records[0]["user"], "operator");
    assert!(records[0].get("issue").is_none());
    assert_eq!(records[0]["reader"], "local:operator");
    assert_eq!(records[0]["purpose"], "EMPLOYMENT_SERVICES");
    assert_eq!(records[0]["what"], "registry view");
    if !private.jobs.is_empty() {
        assert!(records.iter().any(|r| r["reader"] == MIGRATION), "{log}");
    }
    assert_eq!(get(mig, "/api/v1/persons/21503199099999").status, 404);
    assert_eq!(get(mig, "/api/v1/persons/123").status, 400);

    // The views rebuilt from the log give the same KPIs; `jol kpi` prints the seed's tables.
    let before = kpi(mig, "");
    let mut nodes = nodes;
    nodes.remove(0).stop();
    let data = fed.path("migration/data");
    jol([
        "rebuild-view".as_ref(),
        "--data-dir".as_ref(),
        data.as_os_str(),
    ]);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_jol"))
        .args(["kpi", "--as-of", AS_OF, "--data-dir"])
        .arg(&data)
        .output()
        .unwrap();
    let tables = String::from_utf8_lossy(&out.stdout);
    assert!(
        tables.contains("Table 1. Employment structure")
            && tables.contains("Table 2. Time to labour-market integration"),
        "{tables}"
    );
    let again = fed.start("migration");
    // The same figures; what they were computed from (`basis`: the checkpoint, the views'
    // position) is the rebuilt node's.
    let figures = |mut report: Value| {
        report.as_object_mut().unwrap().remove("basis");
        report
    };
    assert_eq!(figures(kpi(again.addr, "")), figures(before));
    again.stop();
    for n in nodes {
        n.stop();
    }
}

fn as_of() -> time::Date {
    jol::registry::view::date(AS_OF).unwrap()
}
