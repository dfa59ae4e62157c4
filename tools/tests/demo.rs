//! `jol demo`: the three-agency federation end to end; its KPI tables must equal figures this
//! test computes itself from the same synthetic population (a lost, duplicated or misrouted event
//! would show), and the folder it leaves is a real federation that `jol serve` restarts.

mod common;

use std::path::Path;
use std::process::Command;

use common::*;
use serde_json::Value;

/// `jol demo --once --json` of `returnees` from `seed`, KPIs as of 2027-01-01, in `data`, with
/// `extra` arguments; the JSON document it prints.
fn demo(data: &Path, returnees: usize, seed: u64, extra: &[&str]) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_jol"))
        .args(["demo", "--once", "--json", "--as-of", "2027-01-01"])
        .args([
            "--returnees",
            &returnees.to_string(),
            "--seed",
            &seed.to_string(),
        ])
        .args(extra)
        .arg("--data-dir")
        .arg(data)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "demo {extra:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("--json prints one JSON document on stdout")
}

#[test]
fn the_demo_matches_its_ground_truth_and_leaves_a_real_federation() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("federation");
    let doc = demo(&data, 400, 11, &[]);
    // The same population, generated here, and the tables computed from its facts.
    let pop = jol_tools::synthetic::population::Population::generate(400, 11);
    let everyone: Vec<_> = pop.persons.iter().collect();
    common::truth::check(
        "demo total",
        &doc["kpi"]["total"],
        &common::truth::expected(&everyone, time::macros::date!(2027 - 01 - 01)),
    );
    assert_eq!(doc["kpi"]["total"]["persons"], 400);
    let nodes = doc["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 3);
    assert!(
        nodes
            .iter()
            .all(|n| n["quarantined"] == 0 && n["received"].as_u64() > Some(0)),
        "{nodes:?}"
    );
    // The example person's record is hidden from an agency the person did not consent to.
    let seen = &doc["examplePerson"]["asSeenBy"];
    assert!(seen["education"].is_string(), "{seen}");
    assert!(seen["employment"]["stage"].is_string(), "{seen}");

    // The demo's folder is a federation: restart the migration node from it, with the operator
    // token the demo printed.
    let config = data.join("migration/node.toml");
    register_token(
        &config,
        doc["dashboards"]["migration"]["token"].as_str().unwrap(),
    );
    let node = Node::start(&config);
    let kpi = get(node.addr, "/api/v1/kpi?asOf=2027-01-01&suppress=false").json();
    assert_eq!(kpi["total"], doc["kpi"]["total"]);
    assert_eq!(get(node.addr, "/readyz").json()["manifest"]["ok"], true);
    node.stop();
}

#[test]
fn the_demo_through_xroad_stand_ins_gives_the_same_tables() {
    let dir = tempfile::tempdir().unwrap();
    let doc = demo(&dir.path().join("federation"), 200, 11, &["--xroad"]);
    assert_eq!(doc["xroad"], true);
    assert_eq!(doc["tablesMatchGroundTruth"], true);
    let pop = jol_tools::synthetic::population::Population::generate(200, 11);
    let everyone: Vec<_> = pop.persons.iter().collect();
    common::truth::check(
        "demo --xroad total",
        &doc["kpi"]["total"],
        &common::truth::expected(&everyone, time::macros::date!(2027 - 01 - 01)),
    );
    // The subscriptions went through the stand-ins.
    let config =
        std::fs::read_to_string(dir.path().join("federation/employment/node.toml")).unwrap();
    assert!(
        config.contains("via = ") && config.contains("[xroad]"),
        "{config}"
    );
}

/// `jol demo --store postgres`: the three agencies on one throwaway PostgreSQL, one database
/// each, print the same KPI tables as on the embedded default (both equal the ground truth).
#[test]
fn the_demo_on_postgres_gives_the_same_tables_as_on_the_default_engine() {
    let run = |store: &str| {
        let dir = tempfile::tempdir().unwrap();
        let doc = demo(&dir.path().join("federation"), 200, 12, &["--store", store]);
        assert_eq!(doc["tablesMatchGroundTruth"], true, "{store}");
        let config =
            std::fs::read_to_string(dir.path().join("federation/migration/node.toml")).unwrap();
        assert_eq!(config.contains("[store]"), store == "postgres", "{config}");
        doc["kpi"]["total"].clone()
    };
    assert_eq!(
        run("postgres"),
        run(&jol::store::Engine::default().to_string())
    );
}
