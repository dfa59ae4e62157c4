//! `jol demo`: the three-agency federation on one machine, end to end.
//!
//! It lays out a real federation in a data directory with [`crate::federation`] (authority
//! key and CA, each agency's keys, CSR-issued TLS certificates, memberships, grants, a signed
//! manifest, node configs: what the `jol authority` commands do), starts the three nodes on
//! loopback with mutual TLS, publishes a synthetic population through each agency's own local
//! API, waits for the exchange to settle, and reports what each agency holds and sees, with the
//! KPI tables next to the generator's ground truth.

use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::Args;
use serde_json::{json, Value};
use time::{Date, OffsetDateTime};

use crate::synthetic::population::{GroundTruth, Population};
use jol::net::client::Endpoint;
use jol::node::config::NodeConfig;
use jol::node::RunningNode;
use jol::registry::kpi::KpiReport;

#[derive(Args, Debug, Clone)]
pub struct DemoArgs {
    /// Where to create the federation (default: a new folder under the system temp dir).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// How many returnees to generate.
    #[arg(long, default_value_t = 2000)]
    pub returnees: usize,
    /// Seed of the generator (same seed, same population).
    #[arg(long, default_value_t = 2026)]
    pub seed: u64,
    /// Reference date of the KPIs (default today).
    #[arg(long)]
    pub as_of: Option<String>,
    /// Print one JSON document on stdout instead of the report.
    #[arg(long)]
    pub json: bool,
    /// Exit after printing instead of serving until Ctrl-C.
    #[arg(long)]
    pub once: bool,
    /// Route every subscription through X-Road: each agency behind its own STAND-IN security
    /// server (a real one cannot run here), nodes offering their feeds as X-Road services.
    #[arg(long)]
    pub xroad: bool,
    /// The nodes' store engine: `redb` (the default), `sled`, or `postgres` (a throwaway
    /// PostgreSQL cluster with one database per agency; needs Debian's `postgresql`).
    #[arg(long, default_value_t = jol::store::Engine::default())]
    pub store: jol::store::Engine,
}

fn progress(done: usize, total: usize) {
    let width = 30;
    let filled = (done * width).checked_div(total).unwrap_or(width);
    eprint!(
        "\r  publishing [{}{}] {done}/{total} events",
        "#".repeat(filled),
        " ".repeat(width - filled)
    );
    if done == total {
        eprintln!();
    }
    let _ = std::io::stderr().flush();
}

async fn get_json(endpoint: &Endpoint, path: &str) -> Result<Value> {
    let mut c = endpoint.connect().await?;
    let (status, body) = c.get(path).await?;
    anyhow::ensure!(
        status.is_success() || status.as_u16() == 404,
        "GET {path}: {status}"
    );
    Ok(serde_json::from_slice(&body).unwrap_or(Value::Null))
}

/// Run the demo.
pub async fn run(args: DemoArgs) -> Result<()> {
    let started = Instant::now();
    let dir = match &args.data_dir {
        Some(d) => d.clone(),
        None => std::env::temp_dir().join(format!("jol-demo-{}", uuid::Uuid::now_v7())),
    };
    anyhow::ensure!(
        !dir.exists() || std::fs::read_dir(&dir)?.next().is_none(),
        "{} is not empty; give a new --data-dir",
        dir.display()
    );
    let as_of: Date = match &args.as_of {
        Some(d) => jol::registry::view::date(d).context("--as-of is YYYY-MM-DD")?,
        None => OffsetDateTime::now_utc().date(),
    };
    eprintln!("jol demo: creating the federation in {}", dir.display());
    let mut plan = crate::federation::three_agencies()?;
    plan.engine = args.store;
    // Kept to the end: dropping the cluster stops it.
    let _cluster = match args.store {
        jol::store::Engine::Postgres => {
            let cluster = crate::federation::on_throwaway_postgres(&mut plan)?;
            eprintln!(
                "  a throwaway PostgreSQL cluster on {} (port {}), one database per agency",
                cluster.socket_dir().display(),
                cluster.port()
            );
            Some(cluster)
        }
        _ => None,
    };
    let configs = crate::federation::create(&dir, &plan)?;
    let mut standins = Vec::new();
    if args.xroad {
        for s in crate::behind_xroad::behind_standins(&dir, &configs)? {
            let config = crate::standin::StandInConfig::load(&s.config)?;
            standins.push(crate::standin::StandIn::start(&config).await?);
        }
        eprintln!(
            "  every subscription goes through X-Road: three STAND-IN security servers (for the demo; not X-Road)"
        );
    }
    // The education ministry issues course-completion credentials.
    for laid in configs.iter().filter(|l| l.folder == "education") {
        crate::demo_credential::enable(&laid.config)?;
    }
    let mut nodes = Vec::new();
    let mut local = HashMap::new();
    for laid in &configs {
        let node = RunningNode::start(&NodeConfig::load(&laid.config)?).await?;
        let endpoint = Endpoint {
            addr: node.local_addr(),
            token: laid.operator_token.clone(),
        };
        local.insert(laid.folder.clone(), endpoint);
        nodes.push((laid.folder.clone(), laid.config.clone(), node));
    }
    eprintln!(
        "  three nodes up with mutual TLS; generating {} returnees (seed {})",
        args.returnees, args.seed
    );
    let pop = Population::generate(args.returnees, args.seed);
    let published =
        crate::synthetic::loadgen::publish(&pop, &local, Duration::from_secs(300), progress)
            .await?;
    publish_offers(&local, args.seed).await?;
    crate::synthetic::loadgen::settled(&local, Duration::from_secs(120)).await?;
    eprintln!(
        "  every node caught up in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let mut per_node = Vec::new();
    for (agency, _, node) in &nodes {
        let m = node.metrics();
        per_node.push(
            json!({"agency": agency, "local": format!("http://{}", node.local_addr()),
            "published": published.get(agency).copied().unwrap_or(0),
            "received": m.received.load(std::sync::atomic::Ordering::Relaxed),
            "quarantined": m.quarantined_total(),
            "withheld": m.feed_events_withheld.load(std::sync::atomic::Ordering::Relaxed)}),
        );
    }
    let example = pop
        .persons
        .iter()
        .find(|p| {
            p.consent_employment && !p.consent_education && !p.jobs.is_empty() && !p.withdraws
        })
        .or_else(|| pop.persons.first());
    let mut views = serde_json::Map::new();
    let (mut best_matches, mut courses) = (Value::Null, Value::Null);
    if let Some(p) = example {
        for (agency, addr) in &local {
            let v = get_json(addr, &format!("/api/v1/persons/{}?asOf={as_of}", p.pin)).await?;
            views.insert(agency.clone(), summarise(&v));
        }
        if let Some(employment) = local.get("employment") {
            let m = get_json(
                employment,
                &format!("/api/v1/persons/{}/matches?limit=3", p.pin),
            )
            .await?;
            best_matches = m["matches"].clone();
            let c = get_json(employment, &format!("/api/v1/persons/{}/courses", p.pin)).await?;
            courses = c["courses"].clone();
        }
    }
    let credential = match (
        local.get("education"),
        nodes
            .iter()
            .find(|(a, _, _)| a == "education")
            .and_then(|(_, _, n)| n.credentials_addr()),
    ) {
        (Some(education), Some(public)) => {
            crate::demo_credential::example(&pop, education, public).await?
        }
        _ => Value::Null,
    };
    let migration = local
        .get("migration")
        .context("the federation has no migration agency")?;
    let kpi = get_json(
        migration,
        &format!("/api/v1/kpi?asOf={as_of}&suppress=false"),
    )
    .await?;
    let report: KpiReport =
        serde_json::from_value(kpi).context("the KPI answer could not be read")?;
    let truth = pop.ground_truth(as_of);
    let matches = tables_match(&report, &truth);
    let gap = get_json(migration, "/api/v1/skills-gap").await?;
    let doc = json!({
        "dataDir": dir, "asOf": as_of.to_string(), "returnees": args.returnees, "seed": args.seed, "xroad": args.xroad,
        "seconds": started.elapsed().as_secs_f64(), "nodes": per_node,
        "examplePerson": {"pin": example.map(|p| p.pin.clone()), "consentedTo": example.map(consent_list), "asSeenBy": views,
            "matchesAtEmployment": best_matches, "suggestedCourses": courses},
        "kpi": {"total": report.total, "cohorts": report.cohorts}, "skillsGap": gap,
        "groundTruth": truth, "tablesMatchGroundTruth": matches, "credential": credential,
        "dashboards": local.iter().map(|(a, e)| (a.clone(), json!({"url": format!("http://{}/", e.addr), "token": e.token}))).collect::<HashMap<_, _>>(),
        "runByHand": configs.iter().map(|l| (l.folder.clone(), format!("jol serve --config {}", l.config.display()))).collect::<HashMap<_, _>>(),
    });
    if args.json {
        println!("{}", serde_json::to_string_pretty(&doc)?);
    } else {
        print_report(&doc, &report, &truth);
    }
    if !args.once {
        eprintln!("serving until Ctrl-C (the dashboards above are live)");
        let _ = tokio::signal::ctrl_c().await;
    }
    for (_, _, node) in nodes {
        node.stop().await;
    }
    for s in standins {
        s.stop().await;
    }
    anyhow::ensure!(
        matches,
        "the KPI tables differ from the generator's ground truth"
    );
    Ok(())
}

fn consent_list(p: &crate::synthetic::population::Person) -> Vec<&'static str> {
    let mut v = vec!["migration"];
    if p.consent_employment {
        v.push("employment");
    }
    if p.consent_education {
        v.push("education");
    }
    v
}

/// How many vacancies and course offers the demo publishes.
const VACANCIES: usize = 200;
const COURSES: usize = 40;

/// Vacancies for the employment service and course offers for the education ministry, drawn
/// from the ESCO subset, published through their local APIs.
async fn publish_offers(local: &HashMap<String, Endpoint>, seed: u64) -> Result<()> {
    use crate::synthetic::offers::{course_data, vacancy_data};
    for (agency, t, events) in [
        (
            "employment",
            "vacancy",
            (0..VACANCIES)
                .map(|i| vacancy_data(i, seed))
                .collect::<Vec<_>>(),
        ),
        (
            "education",
            "course-offer",
            (0..COURSES).map(|i| course_data(i, seed)).collect(),
        ),
    ] {
        let Some(endpoint) = local.get(agency) else {
            continue;
        };
        let batch: Vec<Value> = events
            .into_iter()
            .map(|d| json!({"type": t, "data": d}))
            .collect();
        let mut c = endpoint.connect().await?;
        let (status, body) = c
            .post_json(
                "/api/v1/events/batch",
                bytes::Bytes::from(json!({"events": batch}).to_string()),
            )
            .await?;
        anyhow::ensure!(
            status.is_success(),
            "publishing {t} failed: {}",
            String::from_utf8_lossy(&body)
        );
    }
    eprintln!(
        "  published {VACANCIES} vacancies (employment service) and {COURSES} course offers (education ministry)"
    );
    Ok(())
}

/// A label's English text (Russian when it has none).
fn en(labels: &Value) -> String {
    labels["en"]
        .as_str()
        .or(labels["ru"].as_str())
        .unwrap_or("")
        .to_string()
}

/// The English labels of a list of skills, or `empty` when it has none (so a vacancy whose
/// essential skills are all held says "none missing", not an empty list).
fn skill_names(skills: &Value, empty: &str) -> String {
    let names: Vec<String> = skills
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| en(&s["label"]))
        .collect();
    match names.is_empty() {
        true => empty.to_string(),
        false => names.join(", "),
    }
}

/// The example person's best vacancies at the employment service, each explained, and the
/// course that closes the gap.
fn print_matches(ex: &Value) {
    println!("\nTheir best vacancies at the employment service (score of 1; matched / missing essential skills):");
    for m in ex["matchesAtEmployment"].as_array().into_iter().flatten() {
        println!(
            "  {} {:<24} ISCO {} {} {:<8} {:.3}  has: {}; lacks: {}",
            m["vacancyId"].as_str().unwrap_or(""),
            en(&m["title"]),
            m["isco08"].as_str().unwrap_or(""),
            m["region"].as_str().unwrap_or(""),
            m["formality"].as_str().unwrap_or(""),
            m["score"].as_f64().unwrap_or(0.0),
            skill_names(&m["matchedSkills"], "none"),
            skill_names(&m["missingEssentialSkills"], "none missing"),
        );
    }
    if let Some(c) = ex["suggestedCourses"].as_array().and_then(|c| c.first()) {
        println!(
            "  suggested course: {} {} — {}",
            c["courseCode"].as_str().unwrap_or(""),
            en(&c["title"]),
            c["reason"].as_str().unwrap_or("")
        );
    }
}

/// The skills gap of the region with the most openings: its three most demanded skills, the
/// share of its returnees who lack each, and a course that teaches it.
fn print_gap(gap: &Value) {
    let regions = gap["regions"].as_object().into_iter().flatten();
    let Some((region, g)) = regions.max_by_key(|(_, g)| g["openings"].as_u64().unwrap_or(0)) else {
        return;
    };
    println!(
        "\nSkills gap in {region} ({} open vacancies, {} openings, {} returnees): demanded skill, openings asking for it, returnees lacking it, a course",
        g["openVacancies"], g["openings"], g["returnees"]
    );
    for s in g["skills"].as_array().into_iter().flatten().take(3) {
        let course = s["courses"][0]["courseCode"]
            .as_str()
            .unwrap_or("no open course");
        let lacking = s["shareLacking"]
            .as_f64()
            .map_or("suppressed".into(), |r| format!("{:.0}%", r * 100.0));
        println!(
            "  {:<45} {:>4} {:>10}  {course}",
            Some(en(&s["label"]))
                .filter(|l| !l.is_empty())
                .unwrap_or_else(|| s["uri"].as_str().unwrap_or("").to_string()),
            s["demand"],
            lacking
        );
    }
}

fn summarise(v: &Value) -> Value {
    if v.is_null() || v.get("pin").is_none() {
        return json!("no data: this agency holds nothing about the person (consent)");
    }
    json!({
        "stage": v["derived"]["stage"], "labourForceStatus": v["derived"]["labourForceStatus"],
        "returnDate": v["returnee"]["returnDate"], "region": v["returnee"]["region"],
        "daysToFirstEmployment": v["derived"]["daysToFirstEmployment"],
        "enrolments": v["enrolments"].as_array().map_or(0, Vec::len),
        "spells": v["spells"].as_array().map_or(0, Vec::len),
        "events": v["events"].as_array().map_or(0, Vec::len),
    })
}

fn tables_match(r: &KpiReport, g: &GroundTruth) -> bool {
    let p = &r.total.pathway;
    let counts = |x: &jol::registry::kpi::Ratio| (x.numerator, x.denominator);
    r.total.persons == Some(g.persons)
        && r.total.employment_structure.cells() == g.structure_cells().map(Some)
        && r.total.time_to_first_employment.cells() == g.time_cells().map(Some)
        && counts(&p.referral_to_placement) == (Some(g.placed_after_referral), Some(g.referred))
        && counts(&p.formal_placements) == (Some(g.placed_formally), Some(g.placed))
}

fn pct(n: u64, of: u64) -> String {
    if of == 0 {
        return "-".into();
    }
    format!("{:.1}%", 100.0 * n as f64 / of as f64)
}

/// One row of a table: the exchange's count and share, the ground truth's, the seed's range.
fn print_row(name: &str, n: u64, of: u64, truth: u64, truth_of: u64, seed: &str) {
    println!(
        "  {name:<22} {:>6} {:>7} | {:>6} {:>7} | {seed}",
        n,
        pct(n, of),
        truth,
        pct(truth, truth_of)
    );
}

fn print_report(doc: &Value, r: &KpiReport, g: &GroundTruth) {
    println!(
        "Jol demo: three agencies, {} returnees, seed {}, KPIs as of {} ({:.1} s)\n",
        doc["returnees"],
        doc["seed"],
        doc["asOf"],
        doc["seconds"].as_f64().unwrap_or(0.0)
    );
    println!(
        "{:<12} {:>10} {:>10} {:>12} {:>10}",
        "node", "published", "received", "quarantined", "withheld"
    );
    for n in doc["nodes"].as_array().into_iter().flatten() {
        let c = |k: &str| n[k].as_u64().unwrap_or(0);
        println!(
            "{:<12} {:>10} {:>10} {:>12} {:>10}",
            n["agency"].as_str().unwrap_or(""),
            c("published"),
            c("received"),
            c("quarantined"),
            c("withheld")
        );
    }
    let ex = &doc["examplePerson"];
    println!(
        "\nOne person (consented to: {}) as each agency sees it:",
        ex["consentedTo"]
    );
    for (agency, v) in ex["asSeenBy"].as_object().into_iter().flatten() {
        println!("  {agency:<11} {v}");
    }
    print_matches(ex);
    crate::demo_credential::print(&doc["credential"]);
    print_gap(&doc["skillsGap"]);
    let s = &r.total.employment_structure;
    let of = s.total();
    let gof: u64 = g.structure_cells().iter().sum();
    println!("\nTable 1. Employment structure at return + 6 months   (exchange | generator's ground truth | seed paper)");
    for (name, n, t, seed) in [
        ("formal", s.formal, g.formal, "15-20%"),
        ("informal", s.informal, g.informal, "40-45%"),
        (
            "seasonal / temporary",
            s.seasonal_temporary,
            g.seasonal_temporary,
            "20-25%",
        ),
        (
            "self-employed",
            s.self_employed,
            g.self_employed,
            "(in informal)",
        ),
        ("unemployed", s.unemployed, g.unemployed, "15-20%"),
        ("inactive", s.inactive, g.inactive, "-"),
        ("unknown (no data here)", s.unknown, g.unknown, "-"),
    ] {
        print_row(name, n.unwrap_or(0), of, t, gof, seed);
    }
    let t = &r.total.time_to_first_employment;
    let persons = r.total.persons.unwrap_or(0);
    println!("\nTable 2. Time to labour-market integration after return");
    for (name, n, truth, seed) in [
        (
            "under 3 months",
            t.under_3_months,
            g.under_3_months,
            "25-30%",
        ),
        ("3-6 months", t.months_3_to_6, g.months_3_to_6, "30-35%"),
        ("6-12 months", t.months_6_to_12, g.months_6_to_12, "20-25%"),
        (
            "over 12 months",
            t.over_12_months,
            g.over_12_months,
            "10-15%",
        ),
        (
            "not yet employed",
            t.not_yet_employed,
            g.not_yet_employed,
            "-",
        ),
        ("unknown (no data here)", t.unknown, g.unknown_time, "-"),
    ] {
        print_row(name, n.unwrap_or(0), persons, truth, g.persons, seed);
    }
    let ratio = |x: &jol::registry::kpi::Ratio| match (x.numerator, x.denominator, x.rate) {
        (Some(n), Some(d), Some(rate)) => format!("{:.1}% ({n}/{d})", rate * 100.0),
        _ => "-".into(),
    };
    println!("\nMonitoring KPIs: registered within 90 days {}; employment information held for {}, and over them: employed within 6 months {}; in employment at +6 months {}; employed after retraining {}",
        ratio(&r.total.registration_coverage), ratio(&r.total.employment_information), ratio(&r.total.employed_within_6_months), ratio(&r.total.in_employment_at_6_months), ratio(&r.total.employed_after_retraining));
    let p = &r.total.pathway;
    let wait = p
        .profiling_to_placement
        .days
        .map_or("-".into(), |d| format!("{d:.0} days"));
    println!("\nThe pathway (matching): profiled persons with a matching open vacancy {}; referred to a vacancy and placed in it within 90 days {} (ground truth {}/{}); median from profiling to placement {wait}; placements that are formal {} (ground truth {}/{})",
        ratio(&p.profiled_with_a_match), ratio(&p.referral_to_placement), g.placed_after_referral, g.referred,
        ratio(&p.formal_placements), g.placed_formally, g.placed);
    println!(
        "KPI tables equal the generator's ground truth: {}",
        if doc["tablesMatchGroundTruth"] == true {
            "yes"
        } else {
            "NO"
        }
    );
    println!("\nDashboards (sign in with the node's operator token; it is shown only here, its SHA-256 is in the node's tokens.toml):");
    for (a, d) in doc["dashboards"].as_object().into_iter().flatten() {
        println!(
            "  {a:<11} {}   token {}",
            d["url"].as_str().unwrap_or(""),
            d["token"].as_str().unwrap_or("")
        );
    }
    println!("\nRun a node by hand (after this demo stops): ");
    for (_, cmd) in doc["runByHand"].as_object().into_iter().flatten() {
        println!("  {}", cmd.as_str().unwrap_or(""));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_vacancy_whose_essential_skills_are_all_held_lacks_none() {
        let none = json!([]);
        assert_eq!(skill_names(&none, "none missing"), "none missing");
        assert_eq!(skill_names(&Value::Null, "none missing"), "none missing");
        let two = json!([{"label": {"en": "welding"}}, {"label": {"ru": "сварка"}}]);
        assert_eq!(skill_names(&two, "none missing"), "welding, сварка");
    }
}
