//! Course-completion credentials end to end: a node with `[credentials]` issues an SD-JWT VC
//! when a training enrolment is certified; `@sd-jwt/sd-jwt-vc` (npm, a library we did not
//! write) verifies it against the JWKS the public listener serves, with and without the PIN
//! disclosed, and refuses an altered disclosure, another issuer's key and a revoked credential;
//! the verification page, in headless Chromium, says valid and invalid; `jol credential verify`
//! prints what it proves; a key rotated out stays in the JWKS, so what it signed still verifies;
//! and the public listener serves nothing personal on any route.

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use base64::Engine;
use serde_json::{json, Value};

use common::browser::Browser;
use common::tools::node_checker;
use common::{anonymous, eventually, example, free_ports, get, publish, Node, NodeDir, MEMBER};

const PIN: &str = "21503199012345";
/// The ESCO skill the certified course teaches.
const SKILL: &str = "http://data.europa.eu/esco/skill/9a8b7c6d-1111-2222-3333-444455556666";
/// What the returnee record says of the person: none of it may reach the public listener.
const PERSONAL: [&str; 4] = [PIN, "Азамат", "Жумабеков", "1990-03-15"];

/// A node that issues credentials, its public listener, and a person with a certified course.
struct Issuing {
    dir: NodeDir,
    node: Node,
    public: SocketAddr,
    issuer: String,
}

fn issuing_node() -> Issuing {
    let dir = NodeDir::new("");
    let key = dir.path().join("credential.pem").display().to_string();
    common::jol(["credential", "keygen", "--out", &key]);
    let port = free_ports(1)[0];
    let issuer = format!("http://127.0.0.1:{port}");
    dir.append_config(&format!(
        "[credentials]\nissuer = \"{issuer}\"\npublic_listen = \"127.0.0.1:{port}\"\nkey_file = \"credential.pem\"\n"
    ));
    let node = dir.start();
    let public: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let mut returnee = example("returnee-record", "return-registered.json");
    returnee["consent"]["recipients"] = json!([MEMBER]);
    publish(node.addr, "returnee-record", &returnee);
    publish(
        node.addr,
        "training-enrolment",
        &example("training-enrolment", "enrolled.json"),
    );
    publish(
        node.addr,
        "training-enrolment",
        &example("training-enrolment", "certified.json"),
    );
    Issuing {
        dir,
        node,
        public,
        issuer,
    }
}

/// The person's credentials as the local API lists them, once there is one.
fn credentials_of(addr: SocketAddr) -> Vec<Value> {
    let mut listed = Vec::new();
    eventually(Duration::from_secs(30), || {
        let a = get(addr, &format!("/api/v1/persons/{PIN}/credentials"));
        // 404 until the projector has folded the person in.
        if a.status == 404 {
            return false;
        }
        assert_eq!(a.status, 200, "{}", String::from_utf8_lossy(&a.body));
        listed = a.json()["credentials"].as_array().unwrap().clone();
        !listed.is_empty()
    })
    .expect("no credential was issued for the certified course");
    listed
}

fn public_get(public: SocketAddr, path: &str) -> common::Answer {
    anonymous(public, "GET", path, &[], b"").unwrap()
}

fn written(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

/// `verify-sd-jwt-vc.mjs`: Ok with its verdict, or Err with what it said.
fn npm_verify(
    dir: &Path,
    metadata: &str,
    token: &str,
    status_list: Option<&str>,
) -> Result<Value, String> {
    let mut command = node_checker("verify-sd-jwt-vc.mjs");
    command
        .args(["--issuer-jwks", &written(dir, "metadata.json", metadata)])
        .args(["--token", &written(dir, "token.txt", token)]);
    if let Some(list) = status_list {
        command.args(["--status-list", &written(dir, "status.jwt", list)]);
    }
    let out = command.output().unwrap();
    match out.status.code() {
        Some(0) => Ok(serde_json::from_slice(&out.stdout).unwrap()),
        Some(1) => Err(String::from_utf8_lossy(&out.stderr).into_owned()),
        other => panic!(
            "the checker could not run ({other:?}): {}",
            String::from_utf8_lossy(&out.stderr)
        ),
    }
}

/// The claim name a disclosure discloses.
fn disclosed_name(disclosure: &str) -> String {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(disclosure)
        .unwrap();
    let item: Value = serde_json::from_slice(&bytes).unwrap();
    item[1].as_str().unwrap().to_string()
}

/// The credential without the disclosure of `claim`: what a holder who hides it presents.
fn without(sd_jwt: &str, claim: &str) -> String {
    let mut parts: Vec<&str> = sd_jwt.split('~').collect();
    let before = parts.len();
    parts.retain(|d| d.is_empty() || d.contains('.') || disclosed_name(d) != claim);
    assert_eq!(
        parts.len(),
        before - 1,
        "the credential discloses {claim} once"
    );
    parts.join("~")
}

#[test]
fn a_credential_verifies_with_an_sd_jwt_vc_library_we_did_not_write_until_it_is_revoked() {
    let Issuing {
        dir,
        node,
        public,
        issuer,
    } = issuing_node();
    let work = dir.path();
    let listed = credentials_of(node.addr);
    assert_eq!(listed.len(), 1, "one credential for one certified course");
    let credential = &listed[0];
    let sd_jwt = credential["sdJwt"].as_str().unwrap();
    assert_eq!(credential["status"], "valid");
    assert!(credential["qrSvg"].as_str().unwrap().contains("<svg"));

    let metadata =
        String::from_utf8(public_get(public, "/.well-known/jwt-vc-issuer").body).unwrap();
    let status = public_get(public, "/status/1");
    assert_eq!(status.status, 200);
    assert!(status
        .headers
        .to_ascii_lowercase()
        .contains("application/statuslist+jwt"));
    let list = String::from_utf8(status.body).unwrap();

    // Whole, against the served JWKS and status list.
    let verdict = npm_verify(work, &metadata, sd_jwt, Some(&list)).unwrap();
    assert_eq!(verdict["claims"]["iss"], issuer.as_str());
    assert_eq!(
        verdict["claims"]["vct"],
        format!("{issuer}/vct/course-completion")
    );
    assert_eq!(verdict["claims"]["pin"], PIN);
    assert_eq!(verdict["claims"]["given_name"], "Азамат");
    assert_eq!(verdict["claims"]["course"]["title"]["en"], "Welder");
    assert_eq!(verdict["claims"]["course"]["hours"], 120);
    assert_eq!(verdict["status"], "valid");
    let skills: Vec<&str> = verdict["claims"]["learning_outcomes"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|o| o["esco"].as_str())
        .collect();
    assert!(
        skills.contains(&"http://data.europa.eu/esco/skill/9a8b7c6d-1111-2222-3333-444455556666")
    );

    // The holder hides the PIN: the course still verifies, and the PIN is not in it.
    let presentation = without(sd_jwt, "pin");
    let verdict = npm_verify(work, &metadata, &presentation, Some(&list)).unwrap();
    assert!(verdict["claims"].get("pin").is_none(), "{verdict}");
    assert!(!presentation.contains(PIN));
    assert_eq!(verdict["claims"]["course"]["title"]["en"], "Welder");

    // An altered disclosure.
    let parts: Vec<&str> = sd_jwt.split('~').collect();
    let altered = sd_jwt.replace(parts[1], &common::flip_char(parts[1], 3));
    assert!(npm_verify(work, &metadata, &altered, None).is_err());

    // Another issuer's key under the same kid.
    let mut foreign: Value = serde_json::from_str(&metadata).unwrap();
    foreign["jwks"]["keys"] =
        json!([jol::credentials::key::IssuerKey::generate("credential-1").jwk()]);
    let err = npm_verify(work, &foreign.to_string(), sd_jwt, None).unwrap_err();
    assert!(!err.is_empty());

    // The credential was recorded in the log by its id alone.
    let events = common::all_events(node.addr);
    let issued: Vec<&Value> = events
        .iter()
        .map(|e| &e["event"])
        .filter(|e| e["type"] == "credential-issued")
        .collect();
    assert_eq!(issued.len(), 1);
    assert_eq!(issued[0]["data"]["credentialId"], credential["id"]);
    assert!(!issued[0].to_string().contains(PIN));

    // The attested course's skill is verified in the person's competency profile.
    eventually(Duration::from_secs(30), || {
        verified_skills(node.addr) == [SKILL]
    })
    .expect("the credential never made the course's skill verified");

    // Revoked: the status list the public listener now serves refuses it.
    let id = credential["id"].as_str().unwrap();
    let revoke = |body: &Value| {
        common::post_json(
            node.addr,
            &format!("/api/v1/credentials/{id}/revocation"),
            body,
        )
        .unwrap()
    };
    assert_eq!(
        revoke(&json!({})).status,
        422,
        "a revocation names its reason"
    );
    let a = revoke(&json!({"reason": "certificate annulled by the awarding body"}));
    assert_eq!(a.status, 200, "{}", String::from_utf8_lossy(&a.body));
    let answer = a.json();
    assert_eq!(answer["status"], "revoked");
    assert_eq!(answer["id"], id);
    // The answer is not the credential: nothing of its holder, read without a decision or a
    // log entry.
    assert!(
        answer.get("sdJwt").is_none() && answer.get("qrSvg").is_none(),
        "{answer}"
    );
    for personal in PERSONAL {
        assert!(!answer.to_string().contains(personal), "{answer}");
    }
    assert_eq!(revoke(&json!({"reason": "again"})).status, 409);
    let list = String::from_utf8(public_get(public, "/status/1").body).unwrap();
    let err = npm_verify(work, &metadata, sd_jwt, Some(&list)).unwrap_err();
    assert!(err.to_lowercase().contains("status"), "{err}");
    let listed = credentials_of(node.addr);
    assert_eq!(listed[0]["status"], "revoked");
    // And the skill is no longer verified (once the revocation's event is folded in).
    eventually(Duration::from_secs(30), || {
        verified_skills(node.addr).is_empty()
    })
    .expect("a revoked credential still verifies the skill");
}

#[test]
fn after_a_key_rotation_what_the_old_key_signed_still_verifies_and_the_new_key_signs() {
    let Issuing {
        dir, node, public, ..
    } = issuing_node();
    let work = dir.path();
    let sd_jwt = credentials_of(node.addr)[0]["sdJwt"]
        .as_str()
        .unwrap()
        .to_string();
    let header_kid = |token: &str| -> String {
        let header = token.split('.').next().unwrap();
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(header)
            .unwrap();
        let header: Value = serde_json::from_slice(&bytes).unwrap();
        header["kid"].as_str().unwrap().to_string()
    };
    assert_eq!(header_kid(&sd_jwt), "credential-1");

    // The operator's rotation: the old key's public JWK kept, a new key made, the config
    // pointed at it, the node restarted.
    let old = work.join("credential.pem").display().to_string();
    let jwk = common::jol(["credential", "jwk", "--key", &old, "--name", "credential-1"]);
    let printed: Value = serde_json::from_str(jwk.trim()).unwrap();
    assert!(
        printed.get("d").is_none(),
        "the private scalar never leaves: {printed}"
    );
    std::fs::write(work.join("credential-1.jwk"), &jwk).unwrap();
    let new = work.join("credential-2.pem").display().to_string();
    common::jol(["credential", "keygen", "--out", &new]);
    node.stop();
    let config = std::fs::read_to_string(&dir.config).unwrap().replace(
        "key_file = \"credential.pem\"\n",
        "key_file = \"credential-2.pem\"\nkey_name = \"credential-2\"\nretired_keys = [\"credential-1.jwk\"]\n",
    );
    std::fs::write(&dir.config, config).unwrap();
    let node = dir.start();

    let metadata =
        String::from_utf8(public_get(public, "/.well-known/jwt-vc-issuer").body).unwrap();
    let kids: Vec<String> = serde_json::from_str::<Value>(&metadata).unwrap()["jwks"]["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(kids, ["credential-2", "credential-1"]);
    let list = String::from_utf8(public_get(public, "/status/1").body).unwrap();
    assert_eq!(header_kid(&list), "credential-2", "the list is signed anew");

    // A library we did not write takes the old credential, under the new status list.
    let verdict = npm_verify(work, &metadata, &sd_jwt, Some(&list)).unwrap();
    assert_eq!(verdict["status"], "valid");
    let file = written(work, "before-rotation.txt", &sd_jwt);
    let out = common::jol(["credential", "verify", "--file", &file]);
    assert!(out.starts_with("VALID"), "{out}");

    // A retired key file that holds no public key stops the node before it serves.
    node.stop();
    std::fs::write(work.join("credential-1.jwk"), "{}").unwrap();
    let out = common::jol_output(["serve", "--config", dir.config.to_str().unwrap()]);
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("credential-1.jwk") && said.contains("public JWK"),
        "{said}"
    );
}

/// The ESCO skills the person's competency profile marks verified.
fn verified_skills(addr: SocketAddr) -> Vec<String> {
    let person = get(addr, &format!("/api/v1/persons/{PIN}")).json();
    person["competencyProfile"]["skills"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["verified"] == true)
        .filter_map(|s| s["esco"].as_str().map(String::from))
        .collect()
}

#[test]
fn the_verification_page_and_the_command_line_say_what_a_credential_proves() {
    let Issuing {
        dir, node, public, ..
    } = issuing_node();
    let sd_jwt = credentials_of(node.addr)[0]["sdJwt"]
        .as_str()
        .unwrap()
        .to_string();
    let presentation = without(&sd_jwt, "pin");

    // Offline, with the issuer's metadata fetched from the URL the credential names.
    let file = written(dir.path(), "presented.txt", &presentation);
    let out = common::jol(["credential", "verify", "--file", &file]);
    assert!(out.starts_with("VALID"), "{out}");
    assert!(
        out.contains("pin:") && out.contains("not disclosed"),
        "{out}"
    );
    assert!(out.contains("not revoked"), "{out}");
    assert!(!out.contains(PIN));

    let mut browser = Browser::launch();
    let page = |token: &str| format!("http://{public}/verify#{token}");
    browser.navigate(&page(&presentation));
    browser.wait_for(
        "document.getElementById('verdict').dataset.state === 'valid'",
        Duration::from_secs(20),
    );
    let table = browser
        .eval("document.getElementById('claims').innerText")
        .to_string();
    assert!(table.contains("Welder") && table.contains("120"), "{table}");
    assert!(!table.contains(PIN), "the PIN was not presented: {table}");
    browser.eval("document.getElementById('lang').value = 'ky'; document.getElementById('lang').dispatchEvent(new Event('change'))");
    let heading = browser.eval("document.querySelector('h1').innerText");
    assert_eq!(heading, "Сертификатты текшерүү");

    let parts: Vec<&str> = sd_jwt.split('~').collect();
    let altered = sd_jwt.replace(parts[1], &common::flip_char(parts[1], 3));
    browser.navigate("about:blank");
    browser.navigate(&page(&altered));
    browser.wait_for(
        "document.getElementById('verdict').dataset.state === 'invalid'",
        Duration::from_secs(20),
    );

    // The officer's dashboard shows the person's credential with its QR code.
    browser.navigate(&format!("http://{}/signin", node.addr));
    let token = common::token_of(node.addr);
    browser.leaving(|b| {
        b.eval(&format!(
            "document.getElementById('token').value = '{token}'; document.getElementById('signin').click()"
        ));
    });
    browser.wait_for("document.getElementById('lookup')", Duration::from_secs(20));
    browser.eval(&format!(
        "document.getElementById('pin').value = '{PIN}'; document.getElementById('lookup').requestSubmit()"
    ));
    browser.wait_for(
        "document.querySelector('#credentials [data-status=valid] img')?.naturalWidth > 0",
        Duration::from_secs(20),
    );
}

#[test]
fn the_public_listener_serves_nothing_personal_on_any_route() {
    let Issuing {
        dir, node, public, ..
    } = issuing_node();
    let sd_jwt = credentials_of(node.addr)[0]["sdJwt"]
        .as_str()
        .unwrap()
        .to_string();
    let config = jol::node::config::NodeConfig::load(&dir.config).unwrap();
    let credentials = config.credentials.unwrap();
    let routes = jol::credentials::public::PublicRoute::ALL;
    let mut paths: Vec<String> = routes.iter().map(|r| r.path(&credentials)).collect();
    paths.push("/".into());
    for path in &paths {
        let a = public_get(public, path);
        assert_eq!(a.status, 200, "{path}");
        let body = String::from_utf8_lossy(&a.body);
        for personal in PERSONAL {
            assert!(!body.contains(personal), "{path} serves {personal}");
        }
        assert!(
            !body.contains(sd_jwt.split('~').next().unwrap()),
            "{path} serves the credential"
        );
    }
    // The status list: bits, one per credential, and nothing else.
    let token = String::from_utf8(public_get(public, "/status/1").body).unwrap();
    let payload = token.split('.').nth(1).unwrap();
    let payload: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap();
    let members: Vec<&String> = payload.as_object().unwrap().keys().collect();
    assert_eq!(members, ["iat", "iss", "status_list", "sub"]);
    // Nothing else answers: not the local API's person routes, not another method.
    for path in [
        format!("/api/v1/persons/{PIN}"),
        format!("/api/v1/persons/{PIN}/credentials"),
        "/status/2".into(),
        "/metrics".into(),
    ] {
        assert_eq!(public_get(public, &path).status, 404, "{path}");
    }
    let post = anonymous(public, "POST", "/status/1", &[], b"").unwrap();
    assert_eq!(post.status, 405);
}

#[test]
fn at_the_employment_service_a_credentialed_course_gives_verified_skills() {
    let fed = common::Federation::build();
    jol_tools::demo_credential::enable(&fed.config("education")).unwrap();
    let mig = fed.start("migration");
    let emp = fed.start("employment");
    let edu = fed.start("education");
    publish(
        mig.addr,
        "returnee-record",
        &example("returnee-record", "return-registered.json"),
    );
    publish(
        edu.addr,
        "training-enrolment",
        &example("training-enrolment", "enrolled.json"),
    );
    // Completed first: the employment service holds the course's skills, none verified.
    publish(
        edu.addr,
        "training-enrolment",
        &example("training-enrolment", "completed.json"),
    );
    eventually(Duration::from_secs(30), || {
        let person = get(emp.addr, &format!("/api/v1/persons/{PIN}"));
        person.status == 200
            && person.json()["competencyProfile"]["skills"]
                .as_array()
                .is_some_and(|s| s.iter().any(|s| s["esco"] == SKILL))
    })
    .expect("the employment service never held the course's skills");
    assert!(verified_skills(emp.addr).is_empty());
    // Certified: the education ministry issues the credential, and its event reaches employment.
    publish(
        edu.addr,
        "training-enrolment",
        &example("training-enrolment", "certified.json"),
    );
    eventually(Duration::from_secs(30), || {
        verified_skills(emp.addr) == [SKILL]
    })
    .expect("the credential never made the skill verified at the employment service");

    // A vacancy asking for the skill: the match's reasons say it is verified, so do its skills.
    let mut vacancy = example("vacancy", "opened.json");
    vacancy["essentialSkills"] = json!([SKILL]);
    publish(emp.addr, "vacancy", &vacancy);
    let mut matches = Value::Null;
    eventually(Duration::from_secs(30), || {
        matches = get(emp.addr, &format!("/api/v1/persons/{PIN}/matches")).json();
        matches["matches"][0].is_object()
    })
    .expect("the vacancy never reached the matches");
    let m = &matches["matches"][0];
    assert_eq!(m["vacancyId"], "VAC-2026-0101", "{matches}");
    let reason = m["terms"][0]["reason"].as_str().unwrap();
    assert_eq!(
        reason,
        "1 of 1 essential skills held, 1 verified by a credential"
    );
    assert_eq!(m["matchedSkills"][0]["verified"], true, "{m}");
    let candidates = get(emp.addr, "/api/v1/vacancies/VAC-2026-0101/candidates").json();
    let c = &candidates["candidates"][0];
    assert_eq!(c["pin"], PIN, "{candidates}");
    assert_eq!(c["matchedSkills"][0]["verified"], true, "{c}");
}

/// A reader the person's consent does not name for its purpose is served the node's own events
/// only: of a credential it gets the signed part and the disclosures of what its view holds too
/// (the PIN, the birth date the PIN encodes), never the name the migration agency sent.
#[test]
fn a_reader_not_served_what_other_members_sent_gets_the_credential_without_their_values() {
    // The education ministry is granted the person's name, so its credentials carry it.
    let fed = common::Federation::build_planned(
        &common::test_engine(),
        "min_backoff_ms = 50\nmax_backoff_ms = 400\nwait_secs = 5",
        |plan| plan.grant_every_field("education", jol::event::schema::EventType::ReturneeRecord),
    );
    let config = fed.config("education");
    jol_tools::demo_credential::enable(&config).unwrap();
    let mig = fed.start("migration");
    let edu = fed.start("education");
    let id = common::publish_id(
        mig.addr,
        "returnee-record",
        &example("returnee-record", "return-registered.json"),
    );
    assert!(common::arrives(edu.addr, common::MIGRATION, &id));
    for example_name in ["enrolled.json", "certified.json"] {
        publish(
            edu.addr,
            "training-enrolment",
            &example("training-enrolment", example_name),
        );
    }
    let whole = credentials_of(edu.addr);
    let whole = whole[0]["sdJwt"].as_str().unwrap();
    let names = |sd_jwt: &str| -> Vec<String> {
        let parts = sd_jwt.split('~').skip(1).filter(|d| !d.is_empty());
        parts.map(disclosed_name).collect()
    };
    assert_eq!(
        names(whole),
        ["pin", "given_name", "family_name", "birthdate"]
    );

    let token = common::create_token(&config, "statistics-office", "read-persons", "STATISTICS");
    let path = format!("/api/v1/persons/{PIN}/credentials");
    let theirs = common::as_token(edu.addr, &token, &path);
    assert_eq!(
        theirs.status,
        200,
        "{}",
        String::from_utf8_lossy(&theirs.body)
    );
    let body = String::from_utf8_lossy(&theirs.body).into_owned();
    for value in ["Азамат", "Жумабеков"] {
        assert!(!body.contains(value), "the answer names the person");
    }
    let answer = theirs.json();
    assert_eq!(answer["hidden"]["receivedLeftOut"], true, "{answer}");
    let served = answer["credentials"][0]["sdJwt"].as_str().unwrap();
    assert_eq!(names(served), ["pin", "birthdate"]);
    // The same signed credential, fewer disclosures: it verifies as a holder's presentation.
    assert_eq!(served.split('~').next(), whole.split('~').next());
    let file = fed.path("served.txt");
    std::fs::write(&file, served).unwrap();
    let out = common::jol(["credential", "verify", "--file", file.to_str().unwrap()]);
    assert!(out.starts_with("VALID"), "{out}");
}
