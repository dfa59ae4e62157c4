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
    // The KPI report names the signed checkpoint it was computed at: wait for the one that
    // covers everything published (a loaded machine may not have signed it yet).
    let covered = eventually(Duration::from_secs(30), || {
        let events = get(node.addr, "/readyz").json()["store"]["events"].as_u64();
        let a = get(node.addr, "/api/v1/log/checkpoint");
        a.status == 200
            && jol::log::checkpoint::read(&a.body).is_ok_and(|c| Some(c.checkpoint.size) == events)
    });
    assert!(
        covered.is_some(),
        "no signed checkpoint covers the published events"
    );
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

    // Every point of issue 32, in Kyrgyz and in English: the page is first shown in Kyrgyz and
    // switched to English by the picker, as an official would.
    let withheld = pop
        .persons
        .iter()
        .find(|p| !p.consent_employment && !p.withdraws)
        .expect("a returnee whose consent does not name the employment service");
    let consenting = pop
        .persons
        .iter()
        .find(|p| p.consent_employment && !p.withdraws)
        .expect("a returnee whose consent names the employment service");
    for lang in ["ky", "en"] {
        pick_language(&mut b, lang);
        check_labels(&mut b, lang);
        check_region_names(&mut b, lang);
        check_trends(&mut b, &api);
        for (p, hidden) in [(consenting, ""), (withheld, "node-not-named")] {
            look_up(&mut b, &p.pin);
            assert_eq!(check_person_page(&mut b, &p.pin), hidden, "{lang}");
        }
        check_tables_fit(&mut b, lang);
        check_print_view(&mut b, lang);
        if let Some(dir) = std::env::var_os("JOL_SCREENSHOTS") {
            screenshot(
                &mut b,
                &std::path::Path::new(&dir).join(format!("dashboard-{lang}.png")),
            );
        }
    }
    let pin = consenting.pin.clone();

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

    // Each read of the person page is in the person's access log, under the token's name and
    // purpose: the view, the matches and the access log itself.
    let log = get(node.addr, &format!("/api/v1/persons/{pin}/access-log")).json();
    for what in [
        "registry view",
        "vacancies matched to the person",
        "the person's access log",
    ] {
        let lookup = log["records"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["reader"] == "dashboard:desk-officer" && r["what"] == what)
            .unwrap_or_else(|| panic!("no dashboard read of {what} in {log}"));
        assert_eq!(lookup["purpose"], "EMPLOYMENT_SERVICES");
    }
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

/// ISO 3166-2:KG, as the page must name each place in each language (the seven regions and the
/// two cities).
const REGIONS: [(&str, &str, &str); 9] = [
    ("KG-B", "Batken Region", "Баткен облусу"),
    ("KG-C", "Chüy Region", "Чүй облусу"),
    ("KG-GB", "Bishkek city", "Бишкек шаары"),
    ("KG-GO", "Osh city", "Ош шаары"),
    ("KG-J", "Jalal-Abad Region", "Жалал-Абад облусу"),
    ("KG-N", "Naryn Region", "Нарын облусу"),
    ("KG-O", "Osh Region", "Ош облусу"),
    ("KG-T", "Talas Region", "Талас облусу"),
    ("KG-Y", "Issyk-Kul Region", "Ысык-Көл облусу"),
];

fn region_name(code: &str, lang: &str) -> &'static str {
    let (_, en, ky) = REGIONS
        .iter()
        .find(|(c, _, _)| *c == code)
        .unwrap_or_else(|| panic!("{code} is not an ISO 3166-2:KG region"));
    if lang == "ky" {
        ky
    } else {
        en
    }
}

/// Choose `lang` in the page's picker (as an official does: no reload).
fn pick_language(b: &mut Browser, lang: &str) {
    b.eval(&format!(
        "document.getElementById('lang').value = '{lang}'; document.getElementById('lang').dispatchEvent(new Event('change'))"
    ));
}

/// Every label follows the language picked: the sign-in line, each table's heads; in English no
/// Cyrillic is left on the page (the picker's own names of the languages aside).
fn check_labels(b: &mut Browser, lang: &str) {
    let who = b.eval("document.getElementById('who').textContent");
    let expected = if lang == "ky" {
        "кирген:"
    } else {
        "signed in as"
    };
    assert!(who.as_str().unwrap().starts_with(expected), "{lang}: {who}");
    let foreign = b.eval(&format!(
        "Array.from(document.querySelectorAll('th, [data-i18n]')).map(e => e.textContent)
           .filter(x => x && Object.entries(T).some(([l, d]) => l !== '{lang}' && Object.values(d).includes(x))
                          && !Object.values(T['{lang}']).includes(x))"
    ));
    assert_eq!(
        foreign,
        serde_json::json!([]),
        "{lang}: labels of another language"
    );
    if lang == "en" {
        let cyrillic = b.eval(
            "(document.getElementById('who').textContent + document.querySelector('main').innerText)
               .split('\\n').filter(l => /[\\u0400-\\u04FF]/.test(l))",
        );
        assert_eq!(
            cyrillic,
            serde_json::json!([]),
            "Cyrillic on the English page"
        );
    }
}

/// Regions are named, never shown as codes: in the chart, the pathway table and the skills-gap
/// picker (whose values stay the codes the API uses).
fn check_region_names(b: &mut Browser, lang: &str) {
    let shown = b.eval(
        "Array.from(document.querySelectorAll('[data-region]')).map(e => [e.dataset.region, e.textContent])
           .concat(Array.from(document.getElementById('gapRegion').options).map(o => [o.value, o.textContent]))",
    );
    let shown = shown.as_array().unwrap();
    assert!(shown.len() >= 3 * 2, "regions on the page: {shown:?}");
    for pair in shown {
        let code = pair[0].as_str().unwrap();
        assert_eq!(pair[1], region_name(code, lang), "{code} in {lang}");
    }
    let codes = b.eval("document.querySelector('main').innerText.match(/KG-[A-Z]+/g)");
    assert!(codes.is_null(), "{lang}: region codes on the page: {codes}");
}

/// Each monitoring KPI's trend has one mark per return cohort: a point with the API's numerator
/// and denominator (shown on hover), or a blank the API's way (a suppressed cell as such).
fn check_trends(b: &mut Browser, api: &serde_json::Value) {
    let marks = b.eval(
        "Object.fromEntries(Array.from(document.querySelectorAll('[data-point]')).map(e =>
           [e.dataset.point, [e.dataset.numerator || null, e.dataset.denominator || null, e.dataset.blank || null,
                              e.querySelector('title').textContent]]))",
    );
    let mut points = 0;
    let mut suppressed = 0;
    for key in [
        "registrationCoverage",
        "employedWithin6Months",
        "inEmploymentAt6Months",
        "employedAfterRetraining",
    ] {
        for (cohort, ind) in api["cohorts"].as_object().unwrap() {
            let r = &ind[key];
            let mark = &marks[format!("{key}.{cohort}")];
            assert!(mark.is_array(), "no mark for {key} {cohort}");
            match r["rate"].as_f64() {
                Some(_) => {
                    points += 1;
                    assert_eq!(mark[0], r["numerator"].to_string(), "{key} {cohort}");
                    assert_eq!(mark[1], r["denominator"].to_string(), "{key} {cohort}");
                    let hover = format!("({} / {})", r["numerator"], r["denominator"]);
                    assert!(mark[3].as_str().unwrap().ends_with(&hover), "{mark}");
                }
                None => {
                    let blank = r["blank"].as_str().unwrap_or("not-reportable");
                    suppressed += usize::from(blank == "suppressed");
                    assert_eq!(mark[2], blank, "{key} {cohort}");
                }
            }
        }
    }
    assert!(points > 0, "no trend point");
    assert_eq!(
        b.eval("document.querySelectorAll('[data-blank=\"suppressed\"]').length"),
        suppressed,
        "suppressed cells shown as such"
    );
}

/// Look a person up through the page, and wait for the person page.
fn look_up(b: &mut Browser, pin: &str) {
    b.eval(&format!(
        "document.getElementById('pin').value = '{pin}'; document.getElementById('lookup').requestSubmit()"
    ));
    b.wait_for(
        &format!("document.querySelector('#lookupResult[data-pin=\"{pin}\"]') && document.getElementById('accessLog')"),
        Duration::from_secs(10),
    );
}

/// The person page is what the API serves this session: the timeline holds the person's events
/// (date, source agency), each pathway step reached is one of them, the best matches are the
/// API's, the access log shows this lookup, and what is hidden is said by its reason only
/// (returned: empty when nothing is).
fn check_person_page(b: &mut Browser, pin: &str) -> String {
    let answer = b.eval(&format!(
        "Promise.all(['', '/matches?limit=5'].map(p => fetch('/api/v1/persons/{pin}' + p).then(r => r.json())))"
    ));
    let (view, matches) = (&answer[0], &answer[1]);
    let mut events: Vec<(String, String, String)> = view["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let text = |k: &str| e[k].as_str().unwrap().to_string();
            (text("eventDate"), text("id"), text("source"))
        })
        .collect();
    events.sort();
    let timeline = b.eval(
        "Array.from(document.querySelectorAll('#timeline li')).map(li => [li.dataset.date, li.dataset.event, li.dataset.source])",
    );
    let mut shown: Vec<(String, String, String)> =
        serde_json::from_value(timeline).expect("timeline entries");
    shown.sort();
    assert!(!events.is_empty(), "{pin}: no events");
    assert_eq!(shown, events, "{pin}: the timeline is the API's events");
    let steps = b.eval(
        "Array.from(document.querySelectorAll('#steps li.reached')).map(li => li.dataset.event)",
    );
    let steps = steps.as_array().unwrap();
    assert!(!steps.is_empty(), "{pin}: no pathway step reached");
    for id in steps {
        assert!(events.iter().any(|e| e.1 == *id), "{id}");
    }
    let agencies =
        b.eval("Array.from(document.querySelectorAll('#timeline li')).map(li => li.textContent)");
    for text in agencies.as_array().unwrap() {
        assert!(
            !text.as_str().unwrap().contains("central-server/"),
            "the agency is named: {text}"
        );
    }
    let listed =
        b.eval("Array.from(document.querySelectorAll('[data-match]')).map(r => r.dataset.match)");
    let api_matches: Vec<&serde_json::Value> = matches["matches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| &m["vacancyId"])
        .collect();
    assert_eq!(
        listed.as_array().unwrap().iter().collect::<Vec<_>>(),
        api_matches
    );
    let log = b.eval("document.getElementById('accessLog').innerText");
    assert!(
        log.as_str().unwrap().contains("dashboard:desk-officer"),
        "{log}"
    );
    let reason = b.eval("document.getElementById('hidden').dataset.reason");
    let expected = view["hidden"]["reason"].as_str().unwrap_or("");
    assert_eq!(reason, expected, "{pin}: what is hidden, and why");
    expected.to_string()
}

/// At 1280 px and wider no table is clipped inside its card (nothing scrolls sideways).
fn check_tables_fit(b: &mut Browser, lang: &str) {
    for width in [1280, 1600] {
        b.call(
            "Emulation.setDeviceMetricsOverride",
            serde_json::json!({"width": width, "height": 900, "deviceScaleFactor": 1, "mobile": false}),
        );
        let clipped = b.eval(
            "Array.from(document.querySelectorAll('main table')).map(t => t.closest('.scroll') || t.parentElement)
               .filter(box => box.scrollWidth > box.clientWidth)
               .map(box => (box.closest('section') || box).querySelector('h2, h3').textContent + ': ' + box.scrollWidth + ' > ' + box.clientWidth)",
        );
        assert_eq!(clipped, serde_json::json!([]), "{lang} at {width} px");
        let wide = b.eval("document.documentElement.scrollWidth <= window.innerWidth");
        assert_eq!(
            wide, true,
            "{lang} at {width} px: the page scrolls sideways"
        );
    }
    b.call(
        "Emulation.clearDeviceMetricsOverride",
        serde_json::json!({}),
    );
}

/// The print view is the KPI report: the reference date, the node, the checkpoint it was
/// computed at and the suppression rule on top; no controls and no person's data.
fn check_print_view(b: &mut Browser, lang: &str) {
    b.call(
        "Emulation.setEmulatedMedia",
        serde_json::json!({"media": "print"}),
    );
    let shown = |b: &mut Browser, id: &str| {
        b.eval(&format!(
            "document.getElementById('{id}').checkVisibility()"
        ))
    };
    assert_eq!(shown(b, "printHead"), true, "{lang}: the report's head");
    for figures in ["cards", "chart1", "chart2", "trends", "pathway"] {
        assert_eq!(shown(b, figures), true, "{lang}: {figures} in print");
    }
    assert_eq!(
        shown(b, "person"),
        false,
        "{lang}: a person's data in print"
    );
    assert_eq!(shown(b, "lang"), false, "{lang}: controls in print");
    let basis = b.eval("report.basis");
    assert_eq!(basis["node"], MEMBER);
    let text = |b: &mut Browser, k: &str| {
        b.eval(&format!(
            "document.querySelector('[data-report=\"{k}\"]').textContent"
        ))
    };
    assert_eq!(text(b, "node"), MEMBER);
    assert_eq!(text(b, "asOf"), b.eval("report.asOf"));
    let checkpoint = text(b, "checkpoint");
    let checkpoint = checkpoint.as_str().unwrap();
    match basis["checkpoint"].as_object() {
        Some(c) => {
            assert!(checkpoint.contains(&c["size"].to_string()), "{checkpoint}");
            assert!(
                checkpoint.contains(c["root"].as_str().unwrap()),
                "{checkpoint}"
            );
        }
        None => panic!("no signed checkpoint behind the report: {basis}"),
    }
    let rule = text(b, "suppression");
    let expected = if lang == "ky" { "«< 5»" } else { "“< 5”" };
    assert!(rule.as_str().unwrap().contains(expected), "{rule}");
    b.call(
        "Emulation.setEmulatedMedia",
        serde_json::json!({"media": ""}),
    );
}

/// The page at 1400 px, its first screen, as a PNG at `path`.
fn screenshot(b: &mut Browser, path: &std::path::Path) {
    use base64::Engine as _;
    b.call(
        "Emulation.setDeviceMetricsOverride",
        serde_json::json!({"width": 1400, "height": 1000, "deviceScaleFactor": 1, "mobile": false}),
    );
    b.eval("window.scrollTo(0, 0)");
    let shot = b.call(
        "Page.captureScreenshot",
        serde_json::json!({"format": "png"}),
    );
    let png = base64::engine::general_purpose::STANDARD
        .decode(shot["data"].as_str().unwrap())
        .unwrap();
    std::fs::write(path, png).unwrap();
    b.call(
        "Emulation.clearDeviceMetricsOverride",
        serde_json::json!({}),
    );
}
