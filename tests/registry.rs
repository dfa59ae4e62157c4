//! End-to-end: a synthetic population published through the three agencies' nodes; the unified
//! view, the KPIs and the access log checked against figures computed here, in the test, from
//! the generated facts (not from the node's view or KPI code).

mod common;

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::time::Duration;

use common::*;
use jol::population::{Outcome, Person, Population};
use serde_json::Value;
use time::{Date, Duration as Days};

const AS_OF: &str = "2027-01-01";

fn days(n: i64) -> Days {
    Days::days(n)
}

/// The figures a correct exchange must show at the migration agency, from the facts.
#[derive(Debug, Default)]
struct Expected {
    persons: u64,
    coverage: (u64, u64),
    within6: (u64, u64),
    at6: (u64, u64),
    retraining: (u64, u64),
    tte: [u64; 5],
    structure: BTreeMap<&'static str, u64>,
}

fn first_job(p: &Person) -> Option<Date> {
    p.jobs.iter().map(|j| j.start).min()
}

fn expected(people: &[&Person]) -> Expected {
    let mut e = Expected::default();
    for p in people {
        e.persons += 1;
        if p.consent_employment && !p.withdraws {
            e.coverage.1 += 1;
            e.coverage.0 += u64::from(p.registered.is_some_and(|r| r <= p.returned + days(90)));
        }
        let six = p.returned + days(183);
        e.within6.1 += 1;
        e.within6.0 += u64::from(first_job(p).is_some_and(|f| f <= six));
        let job_at_six = p
            .jobs
            .iter()
            .find(|j| j.start <= six && j.end.is_none_or(|end| end >= six));
        e.at6.1 += 1;
        e.at6.0 += u64::from(job_at_six.is_some());
        if let Some(t) = p
            .training
            .as_ref()
            .filter(|t| t.outcome != Outcome::DroppedOut)
        {
            e.retraining.1 += 1;
            e.retraining.0 += u64::from(
                p.jobs
                    .iter()
                    .any(|j| j.start >= t.end && j.start <= t.end + days(183)),
            );
        }
        let bucket = match first_job(p).map(|f| (f - p.returned).whole_days()) {
            Some(x) if x < 91 => 0,
            Some(x) if x < 183 => 1,
            Some(x) if x < 365 => 2,
            Some(_) => 3,
            None => 4,
        };
        e.tte[bucket] += 1;
        let category = match job_at_six {
            None if p.inactive_from.is_some_and(|i| i <= six) => "inactive",
            None => "unemployed",
            Some(j) if j.contract == "SEASONAL" || j.icse18 == "43" => "seasonalTemporary",
            Some(j) if j.icse18 == "22" => "selfEmployed",
            Some(j) if j.formality == "FORMAL" => "formal",
            Some(_) => "informal",
        };
        *e.structure.entry(category).or_default() += 1;
    }
    e
}

fn ratio(v: &Value) -> (u64, u64) {
    (
        v["numerator"].as_u64().unwrap(),
        v["denominator"].as_u64().unwrap(),
    )
}

fn check(name: &str, got: &Value, want: &Expected) {
    assert_eq!(
        got["persons"].as_u64(),
        Some(want.persons),
        "{name}: persons"
    );
    assert_eq!(
        ratio(&got["registrationCoverage"]),
        want.coverage,
        "{name}: registration coverage"
    );
    assert_eq!(
        ratio(&got["employedWithin6Months"]),
        want.within6,
        "{name}: employed within 6 months"
    );
    assert_eq!(
        ratio(&got["inEmploymentAt6Months"]),
        want.at6,
        "{name}: in employment at +6 months"
    );
    assert_eq!(
        ratio(&got["employedAfterRetraining"]),
        want.retraining,
        "{name}: employed after retraining"
    );
    let t = &got["timeToFirstEmployment"];
    let tte = [
        "under3Months",
        "months3To6",
        "months6To12",
        "over12Months",
        "notYetEmployed",
    ]
    .map(|k| t[k].as_u64().unwrap());
    assert_eq!(tte, want.tte, "{name}: time to first employment");
    for k in [
        "formal",
        "informal",
        "seasonalTemporary",
        "selfEmployed",
        "unemployed",
        "inactive",
    ] {
        assert_eq!(
            got["employmentStructure"][k].as_u64(),
            Some(want.structure.get(k).copied().unwrap_or(0)),
            "{name}: structure {k}"
        );
    }
}

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
    check("total", &report["total"], &expected(&all));
    let mut cohorts: BTreeMap<String, Vec<&Person>> = BTreeMap::new();
    for p in &all {
        cohorts
            .entry(jol::kpi::cohort(p.returned))
            .or_default()
            .push(p);
    }
    assert_eq!(report["cohorts"].as_object().unwrap().len(), cohorts.len());
    for (c, people) in &cohorts {
        check(c, &report["cohorts"][c], &expected(people));
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
                &expected(people),
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
    assert_eq!(records[0]["user"], "KG-officer-17");
    assert_eq!(records[0]["purpose"], "CASE-2025-77");
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
    assert_eq!(kpi(again.addr, ""), before);
    again.stop();
    for n in nodes {
        n.stop();
    }
}
