//! The dashboard in a real browser: headless Chromium loads `/` from a node holding a synthetic
//! population; the numbers on the page must be the ones `/api/v1/kpi` gives, and the page must
//! report no script errors. Needs Debian's `chromium` (`.ci/run` installs it).

mod common;

use std::collections::HashMap;
use std::process::Command;
use std::time::Duration;

use common::*;
use jol::synthetic::population::Population;

fn chromium() -> String {
    ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find(|c| {
            Command::new("which")
                .arg(c)
                .output()
                .is_ok_and(|o| o.status.success())
        })
        .map(String::from)
        .expect(
            "headless Chromium is needed for this test: apt-get install chromium (.ci/run does)",
        )
}

/// The text of the element carrying `data-kpi="key"` in the dumped DOM.
fn kpi_text<'a>(dom: &'a str, key: &str) -> &'a str {
    let marker = format!("data-kpi=\"{key}\"");
    let at = dom
        .find(&marker)
        .unwrap_or_else(|| panic!("{key} is not on the page"));
    let rest = &dom[at..];
    let start = rest.find('>').unwrap() + 1;
    let end = rest[start..].find('<').unwrap() + start;
    &rest[start..end]
}

/// How the page shows a count (HTML-escaped): the number, or "< 5" where it is suppressed.
fn shown(v: &serde_json::Value) -> String {
    v.as_u64().map_or("&lt; 5".to_string(), |n| n.to_string())
}

#[test]
fn the_dashboard_shows_the_kpis_the_api_gives_without_script_errors() {
    let browser = chromium();
    let dir = NodeDir::new("");
    let node = dir.start();
    let local: HashMap<String, std::net::SocketAddr> = ["migration", "employment", "education"]
        .iter()
        .map(|a| (a.to_string(), node.addr))
        .collect();
    let pop = Population::generate(120, 5);
    publish_population(&pop, &local, Duration::from_secs(30));
    let as_of = "2026-06-30";
    let api = get(node.addr, &format!("/api/v1/kpi?asOf={as_of}")).json();
    let profile = tempfile::tempdir().unwrap();
    let out = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--virtual-time-budget=10000",
            "--dump-dom",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!("http://{}/?asOf={as_of}&lang=en", node.addr))
        .output()
        .unwrap();
    let dom = String::from_utf8_lossy(&out.stdout);
    assert!(
        dom.contains("data-ready=\"true\""),
        "the page did not finish loading: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let errors = dom
        .split("id=\"errors\">")
        .nth(1)
        .and_then(|r| r.split('<').next())
        .unwrap_or("?");
    assert_eq!(errors, "", "script errors on the page");
    assert_eq!(
        kpi_text(&dom, "total.persons"),
        api["total"]["persons"].to_string()
    );
    let r = &api["total"]["employedWithin6Months"];
    assert_eq!(
        kpi_text(&dom, "total.employedWithin6Months.ratio"),
        format!("{} / {}", r["numerator"], r["denominator"])
    );
    for k in [
        "formal",
        "informal",
        "seasonalTemporary",
        "selfEmployed",
        "unemployed",
        "inactive",
        "unknown",
    ] {
        let cell = kpi_text(&dom, &format!("chart1.total.{k}"));
        assert!(
            cell.starts_with(&shown(&api["total"]["employmentStructure"][k])),
            "{k}: {cell}"
        );
    }
    for k in [
        "under3Months",
        "months3To6",
        "months6To12",
        "over12Months",
        "notYetEmployed",
    ] {
        let cell = kpi_text(&dom, &format!("chart2.total.{k}"));
        assert!(
            cell.starts_with(&shown(&api["total"]["timeToFirstEmployment"][k])),
            "{k}: {cell}"
        );
    }
    assert_eq!(
        kpi_text(&dom, "funnel.returned"),
        api["total"]["funnel"]["returned"].to_string()
    );
    assert!(dom.contains("Employment structure at return + 6 months"));
    node.stop();
}
