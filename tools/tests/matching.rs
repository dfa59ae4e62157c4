//! Matching end to end on three real nodes: the employment service publishes vacancies, the
//! education ministry course offers (non-personal events, delivered by grant alone), the
//! migration agency returnee records with the skills acquired abroad; at the employment service
//! a person's vacancies are ranked and explained, a vacancy's candidates exclude a person who
//! withdrew consent, courses close the gap, and every person-level answer is in the access log.

mod common;

use std::time::Duration;

use common::*;
use serde_json::{json, Value};

const PAINT: &str = "http://data.europa.eu/esco/skill/b826a56a-811d-477c-b165-271729f644a4";
const PLASTER: &str = "http://data.europa.eu/esco/skill/20f56226-24ed-495f-8bf5-0b2aa6413ba1";
const SAFETY: &str = "http://data.europa.eu/esco/skill/86df7af2-f9f3-4c06-a500-7f1fba9e78fe";
const GROUTS: &str = "http://data.europa.eu/esco/skill/bfd96453-f2fd-43ea-afc1-fb2dc0d7367d";
const DRIVE: &str = "http://data.europa.eu/esco/skill/2a82241a-216e-44d8-bb50-6b9a0ef82084";

fn painter(pin: &str) -> Value {
    let mut d = returnee(
        pin,
        &[EMPLOYMENT, EDUCATION],
        &["EMPLOYMENT_SERVICES", "TRAINING_SERVICES"],
    );
    d["region"] = "KG-GB".into();
    d["occupationAbroad"] = json!({"isco08": "7131"});
    d["skillsAcquired"] = json!([
        {"esco": PAINT, "label": {"en": "painting"}, "evidence": "EMPLOYER_REFERENCE"},
        {"esco": PLASTER, "label": {"en": "plastering"}, "evidence": "SELF_DECLARED"}
    ]);
    d
}

fn vacancy(id: &str, isco: &str, essential: &[&str], formality: &str) -> Value {
    let mut v = example("vacancy", "opened.json");
    v["vacancyId"] = id.into();
    v["isco08"] = isco.into();
    v["essentialSkills"] = json!(essential);
    v["optionalSkills"] = json!([]);
    v["formality"] = formality.into();
    v
}

#[test]
fn a_person_is_matched_explained_and_logged_and_a_withdrawn_one_is_no_candidate() {
    let fed = Federation::build();
    let nodes: Vec<Node> = AGENCIES.iter().map(|a| fed.start(a)).collect();
    let (mig, emp, edu) = (nodes[0].addr, nodes[1].addr, nodes[2].addr);
    let (pin, gone) = ("21503199012345", "21503199012346");
    let first = publish_id(mig, "returnee-record", &painter(pin));
    publish_id(mig, "returnee-record", &painter(gone));
    let mut withdrawal = example("returnee-record", "consent-withdrawn.json");
    withdrawal["person"]["pin"] = gone.into();
    publish_id(mig, "returnee-record", &withdrawal);
    publish(
        emp,
        "vacancy",
        &vacancy("V-FORMAL", "7131", &[PAINT, PLASTER, SAFETY], "FORMAL"),
    );
    publish(
        emp,
        "vacancy",
        &vacancy("V-INFORMAL", "7131", &[PAINT, PLASTER, SAFETY], "INFORMAL"),
    );
    publish(
        emp,
        "vacancy",
        &vacancy("V-DRIVER", "8322", &[DRIVE], "FORMAL"),
    );
    let mut course = example("course-offer", "offered.json");
    course["skillsTaught"] = json!([SAFETY, GROUTS]);
    publish(edu, "course-offer", &course);
    assert!(arrives(emp, MIGRATION, &first));
    // After the withdrawal nothing received about the person is served (a person lookup is
    // refused as for a stranger): that is how the withdrawal is seen to have arrived.
    let gone_path = format!("/api/v1/persons/{gone}");
    assert!(
        eventually(Duration::from_secs(10), || get(emp, &gone_path).status
            == 404)
        .is_some(),
        "the withdrawal never reached the employment service"
    );
    // Offers are not about anyone: the grant alone delivers them (here, to the migration agency).
    let offered = eventually(Duration::from_secs(10), || {
        get(mig, "/api/v1/vacancies").json()["offers"]
            .as_array()
            .unwrap()
            .len()
            == 3
            && get(emp, "/api/v1/courses").json()["offers"]
                .as_array()
                .unwrap()
                .len()
                == 1
    });
    assert!(offered.is_some(), "offers did not spread");

    let m = get(emp, &format!("/api/v1/persons/{pin}/matches?limit=3"));
    assert_eq!(m.status, 200, "{}", String::from_utf8_lossy(&m.body));
    let m = m.json();
    let order: Vec<&str> = m["matches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["vacancyId"].as_str().unwrap())
        .collect();
    assert_eq!(order, ["V-FORMAL", "V-INFORMAL", "V-DRIVER"], "{m}");
    let best = &m["matches"][0];
    let uris = |k: &str| -> Vec<String> {
        best[k]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["uri"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(uris("matchedSkills"), [PAINT, PLASTER]);
    assert_eq!(uris("missingEssentialSkills"), [SAFETY]);
    assert_eq!(
        best["matchedSkills"][0]["label"]["ru"],
        "окрашивать поверхности"
    );
    let terms = best["terms"].as_array().unwrap();
    assert_eq!(terms.len(), 6);
    assert!(terms
        .iter()
        .all(|t| t["reason"].as_str().is_some_and(|r| !r.is_empty())));
    assert_eq!(m["competencyProfile"]["occupations"][0]["isco08"], "7131");

    // Candidates for the formal vacancy: the person, not the one who withdrew.
    let c = get(emp, "/api/v1/vacancies/V-FORMAL/candidates?limit=10").json();
    let pins: Vec<&str> = c["candidates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["pin"].as_str().unwrap())
        .collect();
    assert!(pins.contains(&pin) && !pins.contains(&gone), "{c}");

    // The course that teaches what is missing.
    let s = get(emp, &format!("/api/v1/persons/{pin}/courses")).json();
    assert_eq!(s["courses"][0]["courseCode"], "EDU-C-0042", "{s}");
    assert_eq!(s["courses"][0]["closes"][0]["uri"], SAFETY);

    // Each person-level answer is in the person's access log.
    let log = get(emp, &format!("/api/v1/persons/{pin}/access-log")).json();
    let what: Vec<&str> = log["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["what"].as_str().unwrap())
        .collect();
    for expected in [
        "vacancies matched to the person",
        "ranked as a candidate for vacancy V-FORMAL",
        "courses suggested for the person",
    ] {
        assert!(what.contains(&expected), "{expected}: {what:?}");
    }
    // The person view shows the competency profile.
    let view = get(emp, &format!("/api/v1/persons/{pin}")).json();
    assert_eq!(
        view["competencyProfile"]["skills"][0]["source"],
        "acquired-abroad"
    );
    for n in nodes {
        n.stop();
    }
}
