//! End-to-end: each agency receives only the fields its grant names, and a person can be
//! erased everywhere without breaking a proof. Real nodes on loopback, real TLS between them,
//! real stores in temp folders; what is on disk is searched byte by byte, as an attacker with
//! the disk would (`common::traces`).

mod common;

use std::time::Duration;

use common::traces::files_holding;
use common::*;
use jol::event::schema::EventType;
use jol_tools::federation::FieldGrant;
use serde_json::Value;

const PIN: &str = "21503199012345";
/// Values of the record no other test data holds, so finding one on disk means this record.
const GIVEN: &str = "Zhyldyzkan-Kqwx";
const FAMILY: &str = "Ysmanova-Vbnj";
const CASE: &str = "MIG-2024-770917";
const SOATE: &str = "41708777000917";

/// A returnee record with the distinctive values above, consenting to employment and
/// education for their purposes.
fn distinctive_record() -> Value {
    let mut d = returnee(
        PIN,
        &[EMPLOYMENT, EDUCATION],
        &["EMPLOYMENT_SERVICES", "TRAINING_SERVICES"],
    );
    let full = example("returnee-record", "return-registered.json");
    d["person"] = full["person"].clone();
    d["person"]["pin"] = PIN.into();
    d["person"]["sex"] = "M".into();
    d["person"]["birthDate"] = "1990-03-15".into();
    d["person"]["name"] = serde_json::json!({"given": GIVEN, "family": FAMILY});
    d["caseRef"] = CASE.into();
    d["soate"] = SOATE.into();
    d
}

/// Education is granted the PIN and the region of a returnee record, nothing else.
fn education_gets_two_fields(plan: &mut jol_tools::federation::FederationPlan) {
    plan.grant_every_field("education", EventType::ReturneeRecord);
    plan.fields.push(FieldGrant {
        reader: "education".into(),
        event_type: EventType::ReturneeRecord,
        fields: vec!["/person/pin", "/region"],
    });
}

/// What npm's `@sd-jwt/core` (under Node) makes of `jws` (an SD-JWT in the flattened JWS JSON
/// serialization) with migration's public key as a JWK; panics unless it verifies.
fn sd_jwt_library_verifies(fed: &Federation, jws: &Value) -> Value {
    let key = jol::event::keys::read_public(&fed.path("migration/keys/sign.pub.pem")).unwrap();
    let x = serde_json::to_value(jol::event::keys::RawPublicKey::of(&key)).unwrap();
    let jwk = serde_json::json!({"kty": "OKP", "crv": "Ed25519", "x": x, "kid": format!("{MIGRATION}#sign-1")});
    let dir = tempfile::tempdir().unwrap();
    let (jwk_file, token_file) = (dir.path().join("key.jwk"), dir.path().join("token.json"));
    std::fs::write(&jwk_file, jwk.to_string()).unwrap();
    std::fs::write(&token_file, jws.to_string()).unwrap();
    let out = common::tools::node_checker("verify-sd-jwt.mjs")
        .arg("--jwk")
        .arg(&jwk_file)
        .arg("--token")
        .arg(&token_file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "the SD-JWT library refused it: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn a_reader_granted_two_fields_receives_and_stores_only_those() {
    let fed = Federation::build_planned(&test_engine(), "wait_secs = 5", education_gets_two_fields);
    let mig = fed.start("migration");
    let edu = fed.start("education");
    let emp = fed.start("employment");
    let id = publish_id(mig.addr, "returnee-record", &distinctive_record());
    assert!(arrives(edu.addr, MIGRATION, &id), "never reached education");
    assert!(
        arrives(emp.addr, MIGRATION, &id),
        "never reached employment"
    );
    wait_for_views(edu.addr);

    // What education holds of the record: the always-visible fields, the PIN and the region.
    let held = get(edu.addr, &format!("/api/v1/events/{id}"));
    assert_eq!(held.status, 200, "{}", String::from_utf8_lossy(&held.body));
    let held = held.json();
    let data = &held["event"]["data"];
    assert_eq!(data["person"]["pin"], PIN);
    assert_eq!(data["region"], "KG-O");
    assert_eq!(data["event"], "RETURN_REGISTERED");
    assert_eq!(data["return"]["date"], "2024-02-05", "a date the KPIs need");
    for absent in [
        "/person/name",
        "/person/sex",
        "/caseRef",
        "/soate",
        "/skillsAcquired",
    ] {
        assert!(
            data.pointer(absent).is_none(),
            "{absent} reached education: {data}"
        );
    }
    assert_eq!(
        held["jws"]["header"]["disclosures"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    // The same event, checked by an SD-JWT library we did not write (npm's @sd-jwt/core under
    // Node) against migration's key: it verifies and discloses the PIN and the region alone.
    let checked = sd_jwt_library_verifies(&fed, &held["jws"]);
    assert_eq!(checked["claims"]["data"]["person"]["pin"], PIN, "{checked}");
    assert_eq!(checked["claims"]["data"]["region"], "KG-O", "{checked}");
    assert!(
        checked["claims"]["data"]["person"].get("name").is_none(),
        "{checked}"
    );
    assert_eq!(checked["disclosures"], 2, "{checked}");
    // The employment service, granted the name, has it.
    let at_emp = get(emp.addr, &format!("/api/v1/events/{id}")).json();
    assert_eq!(at_emp["event"]["data"]["person"]["name"]["given"], GIVEN);

    // On education's disk: none of the other fields, in any form; the PIN is there (so the
    // search finds what is there).
    mig.stop();
    edu.stop();
    emp.stop();
    let edu_data = fed.path("education/data");
    assert!(
        !files_holding(&edu_data, PIN).is_empty(),
        "the search finds nothing at all"
    );
    for value in [GIVEN, FAMILY, CASE, SOATE] {
        let found = files_holding(&edu_data, value);
        assert!(
            found.is_empty(),
            "{value} is on education's disk: {found:?}"
        );
    }
    assert!(!files_holding(&fed.path("employment/data"), GIVEN).is_empty());

    // What was disclosed to whom: the person's access log at migration says it, per reader.
    let mig = fed.start("migration");
    let log = get(mig.addr, &format!("/api/v1/persons/{PIN}/access-log")).json();
    let records = log["records"].as_array().unwrap();
    let to = |member: &str| {
        records
            .iter()
            .find(|r| r["reader"] == member)
            .map(|r| r["what"].as_str().unwrap_or_default().to_string())
            .unwrap_or_else(|| panic!("no record of {member}: {records:?}"))
    };
    assert!(
        to(EDUCATION).contains("/person/pin, /region"),
        "{}",
        to(EDUCATION)
    );
    assert!(
        to(EMPLOYMENT).contains("/person/name"),
        "{}",
        to(EMPLOYMENT)
    );
}

/// Order the erasure of `pin` at the node at `addr` (as its operator): the 202 answer's record.
fn order_erasure(addr: std::net::SocketAddr, pin: &str) -> Value {
    let ordered = post_json(
        addr,
        &format!("/api/v1/persons/{pin}/erasure"),
        &serde_json::json!({"legalBasis": "Law on Personal Information, art. 12", "reason": "the person asked in writing"}),
    )
    .unwrap();
    assert_eq!(
        ordered.status,
        202,
        "{}",
        String::from_utf8_lossy(&ordered.body)
    );
    ordered.json()
}

/// Another returnee, whom no erasure touches.
const OTHER: &str = "10101199000001";

/// The inclusion proof of `leaf` in the tree of `size` at `addr`, as hashes.
fn inclusion(addr: std::net::SocketAddr, leaf: u64, size: u64) -> Vec<jol::merkle::Hash> {
    let p = get(
        addr,
        &format!("/api/v1/log/proof/inclusion?leaf={leaf}&size={size}"),
    );
    assert_eq!(p.status, 200, "{}", String::from_utf8_lossy(&p.body));
    p.json()["proof"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| jol::log::checkpoint::decode_hash(h.as_str().unwrap()).unwrap())
        .collect()
}

/// The signed root of the node's latest checkpoint once it covers `size` events.
fn root_at(addr: std::net::SocketAddr, size: u64) -> jol::merkle::Hash {
    eventually_some(Duration::from_secs(10), || {
        let c = latest_checkpoint(addr)?;
        (c.size == size).then_some(c.root)
    })
    .expect("a checkpoint covering the events")
}

/// The node's latest checkpoint, from its note.
fn latest_checkpoint(addr: std::net::SocketAddr) -> Option<jol::log::checkpoint::Checkpoint> {
    let a = get(addr, "/api/v1/log/checkpoint");
    (a.status == 200).then(|| jol::log::checkpoint::read(&a.body).unwrap().checkpoint)
}

/// The RFC 9162 leaf of the event with `id` as `addr` stores it now.
fn leaf_of(addr: std::net::SocketAddr, id: &str) -> jol::merkle::Hash {
    let held = get(addr, &format!("/api/v1/events/{id}")).json();
    let j = &held["jws"];
    let compact = format!(
        "{}.{}.{}",
        j["protected"].as_str().unwrap(),
        j["payload"].as_str().unwrap(),
        j["signature"].as_str().unwrap()
    );
    jol::merkle::leaf_hash(compact.as_bytes())
}

#[test]
fn an_erased_person_is_gone_from_every_node_while_every_proof_still_verifies() {
    let sync = "wait_secs = 2\ncheckpoint_ms = 200\nmin_backoff_ms = 50\nmax_backoff_ms = 400";
    let fed = Federation::build_planned(&test_engine(), sync, |_| {});
    let mig = fed.start("migration");
    let emp = fed.start("employment");
    let edu = fed.start("education");
    let both = ["EMPLOYMENT_SERVICES", "TRAINING_SERVICES"];
    let id = publish_id(mig.addr, "returnee-record", &distinctive_record());
    let kept = publish_id(
        mig.addr,
        "returnee-record",
        &returnee(OTHER, &[EMPLOYMENT, EDUCATION], &both),
    );
    for node in [&emp, &edu] {
        assert!(arrives(node.addr, MIGRATION, &id) && arrives(node.addr, MIGRATION, &kept));
        wait_for_views(node.addr);
    }
    // Reads and a refusal that name the person: the employment service looks them up, and
    // migration's quarantine keeps a refused record with their name.
    assert_eq!(get(emp.addr, &format!("/api/v1/persons/{PIN}")).status, 200);
    let mut refused = distinctive_record();
    refused["region"] = "KG-ZZ".into();
    publish_refused(mig.addr, "returnee-record", &refused);
    let root = root_at(mig.addr, 2);
    let leaf = leaf_of(mig.addr, &id);
    let proof = inclusion(mig.addr, 0, 2);
    assert!(jol::merkle::verify_inclusion(&leaf, 0, 2, &proof, &root));

    // The order: 202 with the record naming both holders.
    let ordered = order_erasure(mig.addr, PIN);
    let record = ordered;
    let erasure = record["id"].as_str().unwrap().to_string();
    let holders: Vec<&str> = record["holders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["member"].as_str().unwrap())
        .collect();
    assert_eq!(holders, [EMPLOYMENT, EDUCATION], "{record}");
    assert_eq!(record["erased"], 1);

    // Each holder erases and confirms with a signed receipt the publisher keeps.
    let confirmed = eventually(Duration::from_secs(30), || {
        let r = get(mig.addr, &format!("/api/v1/erasures/{erasure}")).json();
        r["holders"]
            .as_array()
            .is_some_and(|h| h.iter().all(|h| h["confirmed"].is_string()))
    });
    assert!(
        confirmed.is_some(),
        "{} / at employment: {} {:?}",
        get(mig.addr, &format!("/api/v1/erasures/{erasure}")).json(),
        get(emp.addr, &format!("/api/v1/erasures/{erasure}")).json(),
        get(mig.addr, "/api/v1/quarantine").json()
    );
    // Every node has finished: what is left of the person is gone (asked without naming them:
    // a lookup by PIN is itself recorded in the access log, under the PIN).
    for node in [&mig, &emp, &edu] {
        wait_for_views(node.addr);
        let listing = get(node.addr, "/api/v1/events?limit=1000");
        assert!(!String::from_utf8_lossy(&listing.body).contains(PIN));
        assert_eq!(
            get(node.addr, &format!("/api/v1/persons/{OTHER}")).status,
            200
        );
    }
    // Every proof keeps verifying: the same leaf, the same proof, under the same root.
    assert_eq!(leaf_of(mig.addr, &id), leaf);
    assert_eq!(inclusion(mig.addr, 0, 2), proof);
    assert_eq!(
        root_at(mig.addr, root_size(mig.addr)),
        current_root(mig.addr)
    );

    mig.stop();
    emp.stop();
    edu.stop();
    for agency in AGENCIES {
        let config = fed.config(agency);
        let config = config.to_str().unwrap();
        jol(["store", "--config", config, "compact"]);
        let report = jol(["verify", "--config", config]);
        assert!(report.contains("erased:"), "{agency}: {report}");
        let data = fed.path(&format!("{agency}/data"));
        for value in [PIN, GIVEN, FAMILY, CASE, SOATE] {
            let found = files_holding(&data, value);
            assert!(
                found.is_empty(),
                "{value} is still on {agency}'s disk: {found:?}"
            );
        }
        assert!(
            !files_holding(&data, OTHER).is_empty(),
            "{agency} lost the other person"
        );
    }
    // Asked for again, the person is someone this node never held: the same 404.
    let mig = fed.start("migration");
    let erased = get(mig.addr, &format!("/api/v1/persons/{PIN}"));
    let stranger = get(mig.addr, "/api/v1/persons/21503199099999");
    assert_eq!(
        (erased.status, erased.json()),
        (stranger.status, stranger.json())
    );
}

/// The size of the node's latest checkpoint.
fn root_size(addr: std::net::SocketAddr) -> u64 {
    latest_checkpoint(addr).expect("a checkpoint").size
}

/// The root of the node's latest checkpoint.
fn current_root(addr: std::net::SocketAddr) -> jol::merkle::Hash {
    root_at(addr, root_size(addr))
}

#[test]
fn a_holder_that_was_down_during_the_erasure_erases_and_confirms_when_it_comes_back() {
    let sync = "wait_secs = 2\nmin_backoff_ms = 50\nmax_backoff_ms = 400";
    let fed = Federation::build_planned(&test_engine(), sync, |_| {});
    let mig = fed.start("migration");
    let emp = fed.start("employment");
    let edu = fed.start("education");
    let id = publish_id(mig.addr, "returnee-record", &distinctive_record());
    for node in [&emp, &edu] {
        assert!(arrives(node.addr, MIGRATION, &id));
        wait_for_views(node.addr);
    }
    edu.kill();
    let ordered = order_erasure(mig.addr, PIN);
    let erasure = ordered["id"].as_str().unwrap().to_string();
    let confirmed_by = |member: &str| {
        let r = get(mig.addr, &format!("/api/v1/erasures/{erasure}")).json();
        r["holders"]
            .as_array()
            .unwrap()
            .iter()
            .any(|h| h["member"] == member && h["confirmed"].is_string())
    };
    assert!(eventually(Duration::from_secs(20), || confirmed_by(EMPLOYMENT)).is_some());
    assert!(!confirmed_by(EDUCATION), "education was down");

    // Back up, education takes the order from migration's feed, erases and confirms.
    let edu = fed.start("education");
    assert!(
        eventually(Duration::from_secs(30), || confirmed_by(EDUCATION)).is_some(),
        "{}",
        get(mig.addr, &format!("/api/v1/erasures/{erasure}")).json()
    );
    let gone = eventually(Duration::from_secs(10), || {
        get(edu.addr, &format!("/api/v1/persons/{PIN}")).status == 404
    });
    assert!(gone.is_some(), "education still serves the person");
    let held = get(edu.addr, &format!("/api/v1/events/{id}")).json();
    assert!(
        held["jws"]["header"].is_null(),
        "its copy keeps disclosures: {held}"
    );
    assert!(held["event"]["data"]["person"].get("pin").is_none());
}

/// A member that was down while an event was published and then ordered erased never gets the
/// person's values: when it catches up, the publisher's copy is already stripped, so the feed
/// hands it a placeholder, and it has nothing to erase or confirm.
#[test]
fn a_member_down_while_an_event_was_published_and_erased_never_receives_it() {
    let sync = "wait_secs = 2\nmin_backoff_ms = 50\nmax_backoff_ms = 400";
    let fed = Federation::build_planned(&test_engine(), sync, |_| {});
    let mig = fed.start("migration");
    let emp = fed.start("employment");
    let edu = fed.start("education");
    wait_for_views(edu.addr);
    edu.kill();
    let id = publish_id(mig.addr, "returnee-record", &distinctive_record());
    assert!(arrives(emp.addr, MIGRATION, &id));
    order_erasure(mig.addr, PIN);
    let head = |addr| get(addr, "/readyz").json()["ownSequence"].as_u64().unwrap();
    let published = head(mig.addr);

    let edu = fed.start("education");
    let caught_up = eventually(Duration::from_secs(30), || {
        get(edu.addr, "/readyz").json()["peers"][MIGRATION]["cursor"].as_u64() >= Some(published)
    });
    assert!(caught_up.is_some(), "{}", get(edu.addr, "/readyz").json());
    wait_for_views(edu.addr);
    assert_eq!(get(edu.addr, &format!("/api/v1/events/{id}")).status, 404);
    assert_eq!(get(edu.addr, &format!("/api/v1/persons/{PIN}")).status, 404);
    assert_eq!(
        head(edu.addr),
        0,
        "no confirmation of an erasure it had no part in"
    );
}

/// PINs of distinct, well-formed persons (born 1 January 1990 + `i` days, male).
fn nth_pin(i: usize) -> String {
    let born = time::Date::from_calendar_date(1990, time::Month::January, 1).unwrap()
        + time::Duration::days(i as i64);
    format!(
        "2{:02}{:02}{}{:05}",
        born.day(),
        u8::from(born.month()),
        born.year(),
        90000 + i
    )
}

#[test]
fn a_holder_killed_again_and_again_while_erasing_loses_no_confirmation_and_keeps_no_copy() {
    let sync = "wait_secs = 2\nmin_backoff_ms = 50\nmax_backoff_ms = 400";
    let fed = Federation::build_planned(&test_engine(), sync, |_| {});
    let mig = fed.start("migration");
    let mut edu = fed.start("education");
    let persons = 24;
    let names: Vec<String> = (0..persons)
        .map(|i| format!("Erasable-{i:03}-Qzvx"))
        .collect();
    let mut ids = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let mut d = distinctive_record();
        d["person"]["pin"] = nth_pin(i).into();
        d["person"].as_object_mut().unwrap().remove("birthDate");
        d["person"]["name"]["given"] = name.as_str().into();
        ids.push(publish_id(mig.addr, "returnee-record", &d));
    }
    for id in &ids {
        assert!(arrives(edu.addr, MIGRATION, id));
    }
    wait_for_views(edu.addr);
    // Order every erasure while education is killed and restarted underneath them.
    let mut erasures = Vec::new();
    for i in 0..persons {
        let ordered = order_erasure(mig.addr, &nth_pin(i));
        erasures.push(ordered["id"].as_str().unwrap().to_string());
        if i % 6 == 5 {
            std::thread::sleep(Duration::from_millis(30 * (i as u64 % 4)));
            edu.kill();
            edu = fed.start("education");
        }
    }
    let all_confirmed = eventually(Duration::from_secs(60), || {
        erasures.iter().all(|e| {
            let r = get(mig.addr, &format!("/api/v1/erasures/{e}")).json();
            r["holders"][0]["member"] == EDUCATION && r["holders"][0]["confirmed"].is_string()
        })
    });
    assert!(all_confirmed.is_some(), "an erasure was never confirmed");
    wait_for_views(edu.addr);
    edu.stop();
    mig.stop();
    let config = fed.config("education");
    jol(["store", "--config", config.to_str().unwrap(), "compact"]);
    jol(["verify", "--config", config.to_str().unwrap()]);
    // Education is granted the PIN (not the name): no person's PIN is left on its disk.
    let data = fed.path("education/data");
    for i in 0..persons {
        let found = files_holding(&data, &nth_pin(i));
        assert!(found.is_empty(), "person {i} is still on education's disk");
    }
}

#[test]
fn retention_erases_on_schedule_what_the_manifest_no_longer_lets_a_node_keep() {
    let sync = "wait_secs = 2\nmin_backoff_ms = 50\nmax_backoff_ms = 400\nretention_sweep_secs = 1";
    let fed = Federation::build_planned(&test_engine(), sync, |_| {});
    let mig = fed.start("migration");
    let emp = fed.start("employment");
    let both = ["EMPLOYMENT_SERVICES", "TRAINING_SERVICES"];
    // One person last seen in 2016, one in 2024: the business dates are the clock retention
    // reads.
    let mut old = returnee(PIN, &[EMPLOYMENT, EDUCATION], &both);
    old["eventDate"] = "2016-01-10".into();
    old["return"]["date"] = "2016-01-05".into();
    old["consent"]["time"] = "2016-01-10T09:30:00+06:00".into();
    old.as_object_mut().unwrap().remove("staysAbroad");
    let old_id = publish_id(mig.addr, "returnee-record", &old);
    let new_id = publish_id(
        mig.addr,
        "returnee-record",
        &returnee(OTHER, &[EMPLOYMENT, EDUCATION], &both),
    );
    assert!(arrives(emp.addr, MIGRATION, &old_id) && arrives(emp.addr, MIGRATION, &new_id));
    wait_for_views(mig.addr);
    // The authority sets returnee records to be kept five years after the person's last event
    // (expired since 2021 for the first, kept until 2029 for the second); migration restarts
    // with that manifest and sweeps at once, and the order reaches employment.
    fed.authority(&["retention", "--type", "returnee-record", "--days", "1826"]);
    let manifest = fed.path("manifest.jws");
    fed.authority(&["sign", "--out", manifest.to_str().unwrap(), "--days", "30"]);
    mig.stop();
    let mig = fed.start("migration");
    let erased = |addr, id: &str| {
        let held = get(addr, &format!("/api/v1/events/{id}")).json();
        held["event"]["data"]["person"].get("pin").is_none()
    };
    assert!(eventually(Duration::from_secs(20), || erased(mig.addr, &old_id)).is_some());
    assert!(
        eventually(Duration::from_secs(20), || erased(emp.addr, &old_id)).is_some(),
        "employment kept the expired record"
    );
    assert!(!erased(mig.addr, &new_id) && !erased(emp.addr, &new_id));
    // The order says why: the manifest's retention, cause RETENTION; employment confirmed it.
    let events = all_events(mig.addr);
    let order = events
        .iter()
        .find(|e| e["event"]["data"]["event"] == "ERASURE_ORDERED")
        .expect("a signed erasure order");
    assert_eq!(order["event"]["data"]["cause"], "RETENTION");
    assert!(order["event"]["data"]["legalBasis"]
        .as_str()
        .unwrap()
        .contains("1826 days after the person's last event"));
    let erasure = order["event"]["data"]["erasureId"].as_str().unwrap();
    let confirmed = eventually(Duration::from_secs(20), || {
        get(mig.addr, &format!("/api/v1/erasures/{erasure}")).json()["holders"][0]["confirmed"]
            .is_string()
    });
    assert!(confirmed.is_some());
}

#[test]
fn a_closed_month_s_signed_kpi_report_is_not_rewritten_by_a_later_erasure() {
    let sync = "wait_secs = 2\ncheckpoint_ms = 200\nkpi_report_secs = 1";
    let fed = Federation::build_planned(&test_engine(), sync, |_| {});
    let mig = fed.start("migration");
    let both = ["EMPLOYMENT_SERVICES", "TRAINING_SERVICES"];
    // Seven returnees (small cells, under five, are suppressed): enough for a total.
    for i in 0..7 {
        let mut d = returnee(&nth_pin(i), &[EMPLOYMENT, EDUCATION], &both);
        d["person"]["sex"] = "M".into();
        publish(mig.addr, "returnee-record", &d);
    }
    wait_for_views(mig.addr);
    // Within a sweep, the month that closed before today has its signed report.
    let mut listed = Value::Null;
    let found = eventually(Duration::from_secs(20), || {
        listed = get(mig.addr, "/api/v1/kpi/reports").json();
        listed["reports"].as_array().is_some_and(|r| !r.is_empty())
    });
    assert!(found.is_some(), "{listed}");
    let month = listed["reports"][0]["month"].as_str().unwrap().to_string();
    let as_of = listed["reports"][0]["asOf"].as_str().unwrap().to_string();
    assert!(listed["reports"][0]["checkpointSize"].as_u64().unwrap() >= 1);
    let before = get(mig.addr, &format!("/api/v1/kpi/reports/{month}")).json();
    assert_eq!(
        before["report"]["report"]["total"]["persons"], 7,
        "{before}"
    );
    // Signed with migration's event key, as a KPI report.
    let key = jol::event::keys::read_public(&fed.path("migration/keys/sign.pub.pem")).unwrap();
    jol::event::jws::Jws::parse(
        &serde_json::to_vec(&before["jws"]).unwrap(),
        jol::event::jws::Typ::KpiReport,
    )
    .unwrap()
    .verify(&key)
    .unwrap();

    // An erasure changes the KPIs computed now for that date, not the report signed then.
    order_erasure(mig.addr, &nth_pin(0));
    wait_for_views(mig.addr);
    let live = get(mig.addr, &format!("/api/v1/kpi?asOf={as_of}")).json();
    assert_eq!(live["total"]["persons"], 6, "{live}");
    let after = get(mig.addr, &format!("/api/v1/kpi/reports/{month}")).json();
    assert_eq!(after, before);
    assert_eq!(
        get(mig.addr, "/api/v1/kpi/reports/2026-13x").status,
        400,
        "a month is YYYY-MM"
    );
    assert_eq!(get(mig.addr, "/api/v1/kpi/reports/1999-01").status, 404);
}

#[test]
fn a_person_left_with_other_members_data_sees_the_erasure_and_its_legal_basis_in_their_access_log()
{
    let sync = "wait_secs = 2\nmin_backoff_ms = 50\nmax_backoff_ms = 400";
    let fed = Federation::build_planned(&test_engine(), sync, |_| {});
    let mig = fed.start("migration");
    let emp = fed.start("employment");
    let purposes = [
        "EMPLOYMENT_SERVICES",
        "TRAINING_SERVICES",
        "REINTEGRATION_CASE_MANAGEMENT",
    ];
    let members = [MIGRATION, EMPLOYMENT, EDUCATION];
    let record = publish_id(
        mig.addr,
        "returnee-record",
        &returnee(PIN, &members, &purposes),
    );
    assert!(arrives(emp.addr, MIGRATION, &record));
    // The employment service records the person too; migration receives it.
    let mut status = example("employment-status", "employment-started.json");
    status["person"]["pin"] = PIN.into();
    let own = publish_id(emp.addr, "employment-status", &status);
    assert!(arrives(mig.addr, EMPLOYMENT, &own));
    wait_for_views(mig.addr);
    let ordered = order_erasure(mig.addr, PIN);
    let erasure = ordered["id"].as_str().unwrap().to_string();
    wait_for_views(mig.addr);
    // Migration still holds what employment sent; the person's log there names the erasure.
    let log = get(mig.addr, &format!("/api/v1/persons/{PIN}/access-log")).json();
    let records = log["records"].as_array().unwrap();
    let noted = records.iter().find(|r| r["outcome"] == "erased");
    let noted = noted.unwrap_or_else(|| panic!("no erasure in the access log: {records:?}"));
    let what = noted["what"].as_str().unwrap();
    assert!(
        what.contains(&erasure) && what.contains("art. 12"),
        "{what}"
    );
    assert_eq!(noted["reader"], MIGRATION);
    let view = get(mig.addr, &format!("/api/v1/persons/{PIN}")).json();
    assert!(
        view["returnee"].is_null(),
        "the erased record is still in the view: {view}"
    );
}

#[test]
fn an_erasure_order_that_is_malformed_or_names_nobody_held_erases_nothing() {
    let fed = Federation::build();
    let mig = fed.start("migration");
    let id = publish_id(mig.addr, "returnee-record", &distinctive_record());
    let path = format!("/api/v1/persons/{PIN}/erasure");
    let json = ("Content-Type", "application/json");
    for body in [
        "{}",
        r#"{"legalBasis": "x", "reason": "r"}"#,
        r#"{"legalBasis": "Law on Personal Information", "reason": ""}"#,
        r#"{"legalBasis": "Law on Personal Information", "reason": "r", "pin": "1"}"#,
        "not json",
    ] {
        let a = request(mig.addr, "POST", &path, &[json], body.as_bytes()).unwrap();
        assert!(
            a.status == 422 || a.status == 400,
            "{body}: {}",
            String::from_utf8_lossy(&a.body)
        );
    }
    let plain = request(
        mig.addr,
        "POST",
        &path,
        &[("Content-Type", "text/plain")],
        b"{}",
    );
    assert_eq!(plain.unwrap().status, 415);
    let huge = format!(
        r#"{{"legalBasis": "Law", "reason": "{}"}}"#,
        "x".repeat((1 << 20) + 16)
    );
    let a = request(mig.addr, "POST", &path, &[json], huge.as_bytes()).unwrap();
    assert_eq!(a.status, 413, "{}", String::from_utf8_lossy(&a.body));
    assert_eq!(
        order_status(mig.addr, "/api/v1/persons/not-a-pin/erasure"),
        400
    );
    // A PIN this node published nothing about: 404, and nothing was erased or published.
    assert_eq!(
        order_status(mig.addr, &format!("/api/v1/persons/{OTHER}/erasure")),
        404
    );
    let held = get(mig.addr, &format!("/api/v1/events/{id}")).json();
    assert_eq!(held["event"]["data"]["person"]["pin"], PIN);
    assert!(all_events(mig.addr)
        .iter()
        .all(|e| e["event"]["type"] != "erasure"));
}

/// The status an erasure order at `path` gets, with a well-formed body.
fn order_status(addr: std::net::SocketAddr, path: &str) -> u16 {
    let body =
        serde_json::json!({"legalBasis": "Law on Personal Information, art. 12", "reason": "r"});
    post_json(addr, path, &body).unwrap().status
}

/// Nothing a node logs names a person, even with every logger at `debug` (the level an operator
/// turns on to find a fault): not the PIN, not the name, in none of the forms they take on
/// disk, through a publish, the feed to a subscriber, reads of the event and the view, and
/// refused paths holding the PIN; on redb and on PostgreSQL, whose client would log its SQL
/// (every stored key and value) at `debug` if the node let it.
#[test]
fn debug_logs_name_no_person() {
    for engine in ["redb", "postgres"] {
        let fed = Federation::build_on(engine, "wait_secs = 5");
        let (mig, mig_log) = Node::start_logged(&fed.config("migration"), "debug");
        let (emp, emp_log) = Node::start_logged(&fed.config("employment"), "debug");
        let id = publish_id(mig.addr, "returnee-record", &distinctive_record());
        assert!(
            arrives(emp.addr, MIGRATION, &id),
            "{engine}: never reached employment"
        );
        wait_for_views(emp.addr);
        for node in [&mig, &emp] {
            assert_eq!(
                get(node.addr, &format!("/api/v1/persons/{PIN}")).status,
                200
            );
            assert_eq!(get(node.addr, &format!("/api/v1/events/{id}")).status, 200);
            let refused = request(
                node.addr,
                "DELETE",
                &format!("/api/v1/persons/{PIN}"),
                &[],
                b"",
            );
            assert_eq!(refused.unwrap().status, 405);
            assert_eq!(
                get(node.addr, &format!("/api/v1/persons/{PIN}/x")).status,
                404
            );
        }
        mig.stop();
        emp.stop();
        std::thread::sleep(Duration::from_millis(200)); // the last lines read off the pipes
        let text = [mig_log.text(), emp_log.text()].join("\n");
        let lines: Vec<&str> = text.lines().collect();
        assert!(
            lines.len() > 20,
            "{engine}: the nodes logged at debug: {lines:?}"
        );
        for value in [PIN, GIVEN, FAMILY] {
            // The forms a value takes on disk, and two a log would give bytes: hex (the
            // PostgreSQL client's SQL writes bytea so) and a Debug byte list.
            let bytes = value.as_bytes();
            let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
            let list = bytes
                .iter()
                .map(u8::to_string)
                .collect::<Vec<_>>()
                .join(", ");
            let on_disk = common::traces::forms(value).into_iter();
            let forms = on_disk.map(|f| String::from_utf8_lossy(&f).into_owned());
            for form in forms.chain([hex, list]) {
                let naming: Vec<&&str> = lines.iter().filter(|l| l.contains(&form)).collect();
                assert!(
                    naming.is_empty(),
                    "{engine}: {value} logged as {form:?}: {naming:?}"
                );
            }
        }
    }
}

/// An erasure reaches only the PIN it names, whatever a correction linked to it: a corrected
/// PIN may have been a stranger's, mistyped, and an erasure cannot be undone. The operator who
/// knows the earlier PIN was the person's orders it under that PIN too.
#[test]
fn an_erasure_under_a_corrected_pin_erases_that_pin_alone_and_the_earlier_one_on_its_own_order() {
    let (old, new) = ("12902199254321", "12902199212345");
    let fed = Federation::build();
    let mig = fed.start("migration");
    let emp = fed.start("employment");
    let first = publish_id(
        mig.addr,
        "returnee-record",
        &returnee(old, &[MIGRATION, EMPLOYMENT], &["EMPLOYMENT_SERVICES"]),
    );
    let mut correction = example("returnee-record", "record-corrected.json");
    correction["supersedes"] = first.as_str().into();
    correction["consent"] =
        returnee(new, &[MIGRATION, EMPLOYMENT], &["EMPLOYMENT_SERVICES"])["consent"].clone();
    let corrected = publish_id(mig.addr, "returnee-record", &correction);
    for id in [&first, &corrected] {
        assert!(arrives(emp.addr, MIGRATION, id), "never reached employment");
    }
    for (pin, others) in [(new, old), (old, new)] {
        let record = order_erasure(mig.addr, pin);
        assert_eq!(record["erased"], 1, "{record}");
        let erasure = record["id"].as_str().unwrap().to_string();
        let confirmed = eventually(Duration::from_secs(30), || {
            let r = get(mig.addr, &format!("/api/v1/erasures/{erasure}")).json();
            r["holders"][0]["confirmed"].is_string()
        });
        assert!(confirmed.is_some(), "the holder never confirmed");
        for node in [&mig, &emp] {
            wait_for_views(node.addr);
            let gone = get(node.addr, &format!("/api/v1/persons/{pin}"));
            assert_eq!(gone.status, 404, "{}", String::from_utf8_lossy(&gone.body));
        }
        if pin == new {
            assert_eq!(
                get(mig.addr, &format!("/api/v1/persons/{others}")).status,
                200
            );
        }
    }
}

/// A holder that keeps other data about the person loses, with the publisher's erased events,
/// the refused copies of them in its quarantine; what its own systems sent stays.
#[test]
fn an_erasure_redacts_the_refused_copies_the_publisher_sent_and_leaves_the_holders_own() {
    let fed = Federation::build();
    let config = fed.config("employment");
    let text = std::fs::read_to_string(&config).unwrap() + "[limits]\nmax_event_bytes = 16384\n";
    std::fs::write(&config, text).unwrap();
    let (mig, emp) = (fed.start("migration"), fed.start("employment"));
    let record = returnee(PIN, &[MIGRATION, EMPLOYMENT], &["EMPLOYMENT_SERVICES"]);
    let id = publish_id(mig.addr, "returnee-record", &record);
    // Larger than the employment service accepts: kept in its quarantine, with its body.
    let mut large = record.clone();
    large["consent"]["recipients"] = serde_json::json!(std::iter::once(EMPLOYMENT.to_string())
        .chain((0..150).map(|i| format!("pad{i:061}/GOV/{}/{}", "x".repeat(64), "y".repeat(64))))
        .collect::<Vec<_>>());
    publish(mig.addr, "returnee-record", &large);
    assert!(arrives(emp.addr, MIGRATION, &id));
    // The employment service's own record of the person, and its own refused submission.
    let mut own = employment_data(0, "own-1");
    own["person"]["pin"] = PIN.into();
    publish(emp.addr, "employment-status", &own);
    let mut refused = own.clone();
    refused["labourForceStatus"] = "SOMETHING".into();
    publish_refused(emp.addr, "employment-status", &refused);
    let bodies = |origin: &str| -> Vec<String> {
        let q = get(emp.addr, "/api/v1/quarantine?limit=1000").json();
        q["records"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["origin"] == origin)
            .map(|r| r["body"].as_str().unwrap().to_string())
            .collect()
    };
    let held = eventually(Duration::from_secs(20), || !bodies(MIGRATION).is_empty());
    assert!(held.is_some(), "the large record was never quarantined");

    let erasure = order_erasure(mig.addr, PIN)["id"]
        .as_str()
        .unwrap()
        .to_string();
    let confirmed = eventually(Duration::from_secs(30), || {
        let r = get(mig.addr, &format!("/api/v1/erasures/{erasure}")).json();
        r["holders"][0]["confirmed"].is_string()
    });
    assert!(confirmed.is_some(), "the holder never confirmed");
    wait_for_views(emp.addr);
    let theirs = eventually(Duration::from_secs(20), || {
        bodies(MIGRATION)
            .iter()
            .all(|b| b.starts_with("erased by erasure"))
    });
    assert!(theirs.is_some(), "{:?}", bodies(MIGRATION));
    let local = bodies("local-api");
    assert!(
        local.iter().any(|b| b.contains(PIN)),
        "the holder's own refused submission was redacted: {local:?}"
    );
    assert_eq!(get(emp.addr, &format!("/api/v1/persons/{PIN}")).status, 200);
}
