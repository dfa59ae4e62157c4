//! The dashboard in a real browser: headless Chromium, driven over the DevTools protocol, is
//! sent to the sign-in page, signs in with a token, reads the KPIs (the numbers on the page must
//! be the ones `/api/v1/kpi` gives), looks up a person, and signs out; the lookup is in the
//! person's access log under the token's name and purpose; the pathway indicators and the skills
//! gap by region are the API's too, in the language chosen. Needs Debian's `chromium`
//! (`cargo xtask install` installs it as root).

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::browser::Browser;
use common::*;
use jol_tools::synthetic::population::Population;

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
fn the_dashboard_needs_a_sign_in_shows_the_api_s_kpis_and_logs_a_lookup() {
    let dir = NodeDir::new("");
    let config = dir.config.to_str().unwrap().to_string();
    let desk = jol([
        "token",
        "--config",
        &config,
        "create",
        "--name",
        "desk-officer",
        "--scopes",
        "read-kpi,read-persons",
        "--purpose",
        "EMPLOYMENT_SERVICES",
    ])
    .trim()
    .to_string();
    let publisher = jol([
        "token",
        "--config",
        &config,
        "create",
        "--name",
        "case-system",
        "--scopes",
        "publish",
        "--purpose",
        "EMPLOYMENT_SERVICES",
    ])
    .trim()
    .to_string();
    let node = dir.start();
    let local: HashMap<String, std::net::SocketAddr> = ["migration", "employment", "education"]
        .iter()
        .map(|a| (a.to_string(), node.addr))
        .collect();
    let pop = Population::generate(400, 5);
    publish_population(&pop, &local, Duration::from_secs(60));
    for i in 0..60 {
        publish(
            node.addr,
            "vacancy",
            &jol_tools::synthetic::offers::vacancy_data(i, 5),
        );
    }
    for i in 0..15 {
        publish(
            node.addr,
            "course-offer",
            &jol_tools::synthetic::offers::course_data(i, 5),
        );
    }
    let as_of = "2026-06-30";
    let api = get(node.addr, &format!("/api/v1/kpi?asOf={as_of}")).json();
    let gap = get(node.addr, "/api/v1/skills-gap").json();
    let base = format!("http://{}", node.addr);
    let mut b = Browser::launch();

    // Not signed in: the dashboard sends the browser to the sign-in page.
    b.navigate(&format!("{base}/?asOf={as_of}&lang=en"));
    assert_eq!(b.eval("location.pathname"), "/signin");
    // A token without a dashboard scope, and a wrong one, are refused on the page.
    for (token, said) in [
        (publisher.as_str(), "neither read-kpi"),
        ("jol_guess", "not valid"),
    ] {
        b.leaving(|b| {
            b.eval(&format!(
                "document.getElementById('token').value = '{token}'; document.getElementById('signin').click()"
            ));
        });
        let text = b.eval("document.body.innerText");
        assert!(text.as_str().unwrap().contains(said), "{text}");
    }

    // Signing in sets a cookie the page's scripts cannot read, and opens the dashboard.
    b.leaving(|b| {
        b.eval(&format!(
            "document.getElementById('token').value = '{desk}'; document.getElementById('signin').click()"
        ));
    });
    assert_eq!(b.eval("location.pathname"), "/");
    assert_eq!(
        b.eval("document.cookie"),
        "",
        "the session cookie is HttpOnly"
    );
    let cookies = b.call(
        "Network.getCookies",
        serde_json::json!({"urls": [base.clone()]}),
    );
    let session = &cookies["cookies"][0];
    assert_eq!(
        session["name"],
        format!("jol_session_{}", node.addr.port()),
        "the cookie is this listener's own"
    );
    assert_eq!(session["httpOnly"], true);
    assert_eq!(session["sameSite"], "Strict");

    b.navigate(&format!("{base}/?asOf={as_of}&lang=en"));
    b.wait_for(
        "document.body.dataset.ready === 'true'",
        Duration::from_secs(20),
    );
    assert_eq!(b.eval("document.body.dataset.token"), "desk-officer");
    let dom = b.eval("document.documentElement.outerHTML");
    let dom = dom.as_str().unwrap();
    assert_eq!(
        b.eval("document.getElementById('errors').textContent"),
        "",
        "script errors"
    );
    check_kpis(dom, &api);
    check_pathway(dom, &api);
    check_gap(&mut b, &gap, "en");
    // In Kyrgyz, the skills carry their Kyrgyz labels; another region shows its own skills.
    b.eval("document.getElementById('lang').value = 'ky'; document.getElementById('lang').dispatchEvent(new Event('change'))");
    let last = gap["regions"]
        .as_object()
        .unwrap()
        .keys()
        .next_back()
        .unwrap()
        .clone();
    b.eval(&format!("{{ const s = document.getElementById('gapRegion'); s.value = '{last}'; s.dispatchEvent(new Event('change')); }}"));
    check_gap(&mut b, &gap, "ky");
    b.eval("document.getElementById('lang').value = 'en'; document.getElementById('lang').dispatchEvent(new Event('change'))");

    // A person lookup through the dashboard.
    let pin = pop.persons[0].pin.clone();
    b.eval(&format!(
        "document.getElementById('pin').value = '{pin}'; document.getElementById('lookup').requestSubmit()"
    ));
    b.wait_for(
        &format!("document.querySelector('#lookupResult[data-pin=\"{pin}\"]')"),
        Duration::from_secs(10),
    );

    // Signing out ends the session on the node: the page's API calls are refused again.
    b.leaving(|b| {
        b.eval("document.getElementById('signout').click()");
    });
    assert_eq!(b.eval("location.pathname"), "/signin");
    assert_eq!(
        b.eval("fetch('/api/v1/kpi').then(r => r.status)"),
        401,
        "the session is gone"
    );
    b.navigate(&format!("{base}/"));
    assert_eq!(b.eval("location.pathname"), "/signin");

    // The lookup is in the person's access log, under the token's name and purpose.
    let log = get(node.addr, &format!("/api/v1/persons/{pin}/access-log")).json();
    let lookup = log["records"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["reader"] == "dashboard:desk-officer")
        .unwrap_or_else(|| panic!("no dashboard lookup in {log}"));
    assert_eq!(lookup["purpose"], "EMPLOYMENT_SERVICES");
    assert_eq!(lookup["what"], "registry view");
    node.stop();
}

/// The pathway table's total and cohort rows hold the API's counts.
fn check_pathway(dom: &str, api: &serde_json::Value) {
    let ratio = |r: &serde_json::Value| match r["rate"].as_f64() {
        Some(_) => format!("({} / {})", r["numerator"], r["denominator"]),
        None => String::new(),
    };
    let mut rows = vec![("Σ".to_string(), &api["total"])];
    rows.extend(
        api["cohorts"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(c, i)| (c.clone(), i)),
    );
    for (row, ind) in rows {
        let p = &ind["pathway"];
        for k in [
            "profiledWithAMatch",
            "referralToPlacement",
            "formalPlacements",
        ] {
            let cell = kpi_text(dom, &format!("pathway.{row}.{k}"));
            assert!(
                cell.ends_with(&ratio(&p[k])),
                "{row} {k}: {cell} vs {}",
                p[k]
            );
        }
        let median = kpi_text(dom, &format!("pathway.{row}.profilingToPlacement"));
        if let Some(n) = p["profilingToPlacement"]["persons"]
            .as_u64()
            .filter(|_| p["profilingToPlacement"]["days"].is_number())
        {
            assert!(median.ends_with(&format!("(n={n})")), "{row}: {median}");
        }
    }
    let total = &api["total"]["pathway"]["profiledWithAMatch"];
    assert!(
        total["denominator"].as_u64().unwrap() > 0,
        "nobody profiled: {total}"
    );
}

/// The skills-gap table of the region selected on the page is the API's, labelled in `lang`.
fn check_gap(b: &mut Browser, gap: &serde_json::Value, lang: &str) {
    let region = b.eval("document.getElementById('gapRegion').value");
    let region = region.as_str().unwrap();
    let skills = gap["regions"][region]["skills"].as_array().unwrap();
    assert!(!skills.is_empty(), "{region} has no demanded skills");
    for (i, s) in skills.iter().enumerate() {
        let cells = b.eval(&format!(
            "Array.from(document.querySelector('[data-gap=\"{region}.{i}\"]').cells).map(c => c.textContent)"
        ));
        assert_eq!(cells[0], s["label"][lang], "{region} skill {i} in {lang}");
        assert_eq!(cells[1], s["demand"].to_string());
        let courses: Vec<&str> = s["courses"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["courseCode"].as_str().unwrap())
            .collect();
        if !courses.is_empty() {
            assert_eq!(cells[3], courses.join(", "));
        }
        match s["returneesLacking"].as_u64() {
            Some(n) => assert!(
                cells[2].as_str().unwrap().ends_with(&format!("({n})")),
                "{cells}"
            ),
            None => assert_eq!(cells[2], "< 5"),
        }
    }
}

fn check_kpis(dom: &str, api: &serde_json::Value) {
    assert_eq!(
        kpi_text(dom, "total.persons"),
        api["total"]["persons"].to_string()
    );
    let r = &api["total"]["employedWithin6Months"];
    assert_eq!(
        kpi_text(dom, "total.employedWithin6Months.ratio"),
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
        let cell = kpi_text(dom, &format!("chart1.total.{k}"));
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
        let cell = kpi_text(dom, &format!("chart2.total.{k}"));
        assert!(
            cell.starts_with(&shown(&api["total"]["timeToFirstEmployment"][k])),
            "{k}: {cell}"
        );
    }
    assert_eq!(
        kpi_text(dom, "funnel.returned"),
        api["total"]["funnel"]["returned"].to_string()
    );
    assert!(dom.contains("Employment structure at return + 6 months"));
}
