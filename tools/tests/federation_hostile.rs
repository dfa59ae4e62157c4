//! End-to-end against a hostile or broken peer: a fake publisher serving a crafted feed over
//! real mutual TLS, and clients with wrong certificates knocking on a real node.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::fake::{event, signed, AnyRegistered};
use common::*;
use jol::event::schema::EventType;
use jol::event::Event;
use jol::net::server::{self, Limits};
use jol::trust::tls::{self, Identity};
use serde_json::{json, Value};
use time::OffsetDateTime;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_bad_event_from_a_peer_is_quarantined_with_its_reason_and_the_good_ones_arrive() {
    let fed = Federation::build();
    // Key rotation at migration: `old-1` added, then revoked.
    let old_key = jol::event::keys::generate();
    let old_pub = fed.path("old.pub.pem");
    jol::event::keys::write_public(&old_pub, &old_key.verifying_key()).unwrap();
    fed.authority(&[
        "add-key",
        "--key",
        &format!("{MIGRATION}#old-1"),
        "--public-key",
        old_pub.to_str().unwrap(),
    ]);
    // Revoked after sequence 5 of migration's feed: whatever time an event signed with it
    // claims, it is valid up to sequence 5 and refused after.
    let revoked_at = OffsetDateTime::now_utc();
    fed.authority(&[
        "revoke-key",
        "--member",
        MIGRATION,
        "--key",
        "old-1",
        "--after-sequence",
        "5",
    ]);
    fed.authority(&["sign", "--out", fed.path("manifest.jws").to_str().unwrap()]);

    let key = jol::event::keys::read_private(&fed.path("migration/keys/sign.pem")).unwrap();
    let employment_key =
        jol::event::keys::read_private(&fed.path("employment/keys/sign.pem")).unwrap();
    let kid = format!("{MIGRATION}#sign-1");
    let good = |seq, pin: &str| {
        event(
            EventType::ReturneeRecord,
            seq,
            returnee(pin, &[EMPLOYMENT], &["EMPLOYMENT_SERVICES"]),
        )
    };
    let first = good(1, "21503199012345");
    let mut duplicate = good(7, "21503199012345");
    duplicate.id = first.id;
    // Sequence 4 is before the revocation's sequence, though dated after its time: valid.
    let mut before_revocation = good(4, "21503199012346");
    before_revocation.time = revoked_at + time::Duration::seconds(1);
    // Sequence 8 is after it, and backdated: refused all the same.
    let mut backdated = good(8, "21503199012347");
    backdated.time = revoked_at - time::Duration::hours(2);
    let mut invalid = returnee("21503199012348", &[EMPLOYMENT], &["EMPLOYMENT_SERVICES"]);
    invalid["region"] = "KG-ZZ".into();
    let first_signed = signed(&first, &key, &kid);
    // A payload naming the person twice: one parser would see one person, another the other.
    let two_persons = {
        let e = good(12, "21503199012352");
        let text = serde_json::to_string(&e).unwrap().replace(
            r#""pin":"21503199012352""#,
            r#""pin":"21503199012352","pin":"11204198554321""#,
        );
        let bytes = jol::event::jws::sign(
            &key,
            &kid.parse().unwrap(),
            jol::event::jws::Typ::SdEvent,
            text.as_bytes(),
        );
        serde_json::from_slice::<Value>(&bytes).unwrap()
    };
    // Migration "corrects" a record of one person with a record about another: refused.
    let mut other_person = returnee("21503199012353", &[EMPLOYMENT], &["EMPLOYMENT_SERVICES"]);
    other_person["event"] = "RECORD_CORRECTED".into();
    other_person["supersedes"] = first.id.to_string().into();
    let foreign_correction = event(EventType::ReturneeRecord, 13, other_person);
    let mut future_consent = returnee("21503199012354", &[EMPLOYMENT], &["EMPLOYMENT_SERVICES"]);
    future_consent["consent"]["time"] = "2999-01-01T00:00:00Z".into();
    let future_consent = event(EventType::ReturneeRecord, 14, future_consent);
    let page = json!({"head": 14, "next": 14, "events": [
        {"sequence": 1, "jws": first_signed},
        {"sequence": 2, "jws": signed(&event(EventType::EmploymentStatus, 2, example("employment-status", "employment-started.json")), &key, &kid)},
        {"sequence": 3, "jws": signed(&good(3, "21503199012349"), &jol::event::keys::generate(), &kid)},
        {"sequence": 4, "jws": signed(&before_revocation, &old_key, &format!("{MIGRATION}#old-1"))},
        {"sequence": 5, "jws": signed(&event(EventType::ReturneeRecord, 5, invalid), &key, &kid)},
        {"sequence": 6, "jws": first_signed},
        {"sequence": 7, "jws": signed(&duplicate, &key, &kid)},
        {"sequence": 8, "jws": signed(&backdated, &old_key, &format!("{MIGRATION}#old-1"))},
        {"sequence": 9, "withheld": "no-consent"},
        {"sequence": 10, "jws": signed(&good(10, "21503199012350"), &employment_key, &format!("{EMPLOYMENT}#sign-1"))},
        {"sequence": 11, "jws": signed(&good(11, "21503199012351"), &key, &kid)},
        {"sequence": 12, "jws": two_persons},
        {"sequence": 13, "jws": signed(&foreign_correction, &key, &kid)},
        {"sequence": 14, "jws": signed(&future_consent, &key, &kid)},
    ]});
    let expected_ids = [first.id, before_revocation.id];

    let _fake = serve_fake_migration(&fed, page, 14).await;
    let (emp, events, quarantine) = employment_takes(&fed, 10, 3).await;
    let addr = emp.addr;
    let reasons = quarantine_reasons(&quarantine);
    assert_eq!(
        reasons,
        [
            "publisher-not-allowed",
            "signature-invalid",
            "schema-invalid",
            "sequence-mismatch",
            "duplicate",
            "key-revoked",
            "key-of-other-member",
            "jws-malformed",
            "supersedes-foreign",
            "consent-after-event"
        ],
        "{quarantine}"
    );
    assert!(quarantine["records"]
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["origin"] == MIGRATION));
    let twice = &quarantine["records"][7]["detail"]["detail"];
    assert!(
        twice.as_str().unwrap().contains("/data/person/pin"),
        "the duplicate is named by its pointer: {twice}"
    );
    let ids = event_ids(&events);
    assert_eq!(ids.len(), 3, "{ids:?}");
    assert_eq!(ids[0], expected_ids[0].to_string());
    assert_eq!(
        ids[1],
        expected_ids[1].to_string(),
        "an event signed before the revocation's sequence stays valid"
    );
    // The person whose record another person's "correction" named keeps it, not superseded.
    let view = get(
        addr,
        "/api/v1/persons/21503199012345?purpose=EMPLOYMENT_SERVICES",
    )
    .json();
    assert!(
        view["events"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["superseded"] != true),
        "{view}"
    );
    assert!(view["returnee"].is_object(), "{view}");
    let metrics = String::from_utf8(get(addr, "/metrics").body).unwrap();
    assert!(metrics.contains("reason=\"key-revoked\"} 1"), "{metrics}");
    drop(emp);
}

/// Pages of three, each checked while the one before it is being written: an event repeated
/// from the page before, and a correction of one of its events about another person, are
/// refused as they are within one page; every good event is stored once, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_repeated_or_corrected_across_pages_in_flight_are_refused() {
    let fed = Federation::build_with(
        "min_backoff_ms = 50\nmax_backoff_ms = 400\nwait_secs = 5\npage_size = 3",
    );
    let (key, kid) = fed.migration_signer();
    let good = |seq, pin: &str| {
        event(
            EventType::ReturneeRecord,
            seq,
            returnee(pin, &[EMPLOYMENT], &["EMPLOYMENT_SERVICES"]),
        )
    };
    let events: Vec<Event> = (1..=3)
        .map(|seq| good(seq, &format!("2150319901234{seq}")))
        .collect();
    let mut repeated = good(4, "21503199012342");
    repeated.id = events[1].id;
    let mut other_person = returnee("21503199012399", &[EMPLOYMENT], &["EMPLOYMENT_SERVICES"]);
    other_person["event"] = "RECORD_CORRECTED".into();
    other_person["supersedes"] = events[2].id.to_string().into();
    let foreign_correction = event(EventType::ReturneeRecord, 5, other_person);
    let later: Vec<Event> = (6..=8)
        .map(|seq| good(seq, &format!("2150319901235{seq}")))
        .collect();
    let items: Vec<Value> = events
        .iter()
        .chain([&repeated, &foreign_correction])
        .chain(&later)
        .map(|e| json!({"sequence": e.sequence_number().unwrap(), "jws": signed(e, &key, &kid)}))
        .collect();
    let page = json!({"head": 8, "next": 8, "events": items});
    let _fake = serve_fake_migration(&fed, page, 8).await;
    let (emp, got, quarantine) = employment_takes(&fed, 2, 6).await;
    let reasons = quarantine_reasons(&quarantine);
    assert_eq!(reasons, ["duplicate", "supersedes-foreign"], "{quarantine}");
    let ids = event_ids(&got);
    let expected: Vec<String> = events
        .iter()
        .chain(&later)
        .map(|e| e.id.to_string())
        .collect();
    assert_eq!(ids, expected);
    drop(emp);
}

/// Serve a fake migration node on migration's registered endpoint, with migration's real
/// certificate, answering the first feed request with `page`.
async fn serve_fake_migration(
    fed: &Federation,
    page: Value,
    head: u64,
) -> tokio::sync::watch::Sender<bool> {
    let manifest = std::fs::read(fed.path("manifest.jws")).unwrap();
    serve_fake_migration_with(fed, page, head, vec![manifest], vec![]).await
}

/// The same, offering `manifests[i]` at the i-th manifest request (the last one from then on);
/// a feed request after sequence N gets the page's events after N, at most `limit` of them.
async fn serve_fake_migration_with(
    fed: &Federation,
    page: Value,
    head: u64,
    manifests: Vec<Vec<u8>>,
    routes: Vec<(&'static str, Value)>,
) -> tokio::sync::watch::Sender<bool> {
    let routes = Arc::new(routes);
    let acceptor = fake::acceptor(fed, "migration");
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", fed.peer["migration"]))
        .await
        .unwrap();
    let manifests: Arc<Vec<bytes::Bytes>> =
        Arc::new(manifests.into_iter().map(bytes::Bytes::from).collect());
    let asked = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let page = Arc::new(page);
    let handler = move |_caller, req: hyper::Request<hyper::body::Incoming>| {
        let after: u64 = jol::net::http::query_param(req.uri().query(), "after")
            .and_then(|a| a.parse().ok())
            .unwrap_or(0);
        let limit: usize = jol::net::http::query_param(req.uri().query(), "limit")
            .and_then(|a| a.parse().ok())
            .unwrap_or(usize::MAX);
        let mut rest = (*page).clone();
        if let Some(events) = rest["events"].as_array_mut() {
            events.retain(|e| e["sequence"].as_u64() > Some(after));
            events.truncate(limit);
        }
        let fresh = rest["events"].as_array().is_some_and(|e| !e.is_empty());
        let page = bytes::Bytes::from(rest.to_string());
        let route = routes
            .iter()
            .find(|(p, _)| *p == req.uri().path())
            .map(|(_, v)| v.clone());
        let manifest = if req.uri().path() == "/peer/v1/manifest" {
            let i = asked.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            manifests[i.min(manifests.len() - 1)].clone()
        } else {
            bytes::Bytes::new()
        };
        async move {
            match route {
                // A text route (a checkpoint note) is served as text.
                Some(Value::String(text)) => {
                    return jol::net::http::with_type(
                        hyper::StatusCode::OK,
                        "text/plain; charset=utf-8",
                        text,
                    )
                }
                Some(body) => return jol::net::http::json(hyper::StatusCode::OK, &body),
                None => {}
            }
            match req.uri().path() {
                "/peer/v1/log/checkpoint" => jol::net::http::json(
                    hyper::StatusCode::NOT_FOUND,
                    &json!({"type": "no-checkpoint"}),
                ),
                "/peer/v1/manifest" => jol::net::http::with_type(
                    hyper::StatusCode::OK,
                    "application/jose+json",
                    manifest,
                ),
                _ if fresh => {
                    jol::net::http::with_type(hyper::StatusCode::OK, "application/json", page)
                }
                _ => {
                    tokio::time::sleep(Duration::from_millis(300)).await;
                    jol::net::http::json(
                        hyper::StatusCode::OK,
                        &json!({"events": [], "next": head, "head": head}),
                    )
                }
            }
        }
    };
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let limits = Limits {
        header_timeout: Duration::from_secs(5),
        max_connections: 16,
    };
    tokio::spawn(server::serve_tls(
        listener,
        limits,
        acceptor,
        Arc::new(AnyRegistered),
        handler,
        stopped,
        Duration::from_secs(1),
    ));
    // The caller keeps this alive: dropping it stops the fake node.
    stop
}

/// Start employment's node and wait until it has quarantined `quarantined` records and holds
/// `events` events from migration.
async fn employment_takes(
    fed: &Federation,
    quarantined: u64,
    events: usize,
) -> (Node, Vec<Value>, Value) {
    let emp = start_async(fed.config("employment")).await;
    let addr = emp.addr;
    let (got, quarantine) = tokio::task::spawn_blocking(move || {
        eventually(Duration::from_secs(15), || {
            get(addr, "/api/v1/quarantine").json()["total"].as_u64() >= Some(quarantined)
        });
        eventually(Duration::from_secs(5), || {
            events_from(addr, MIGRATION).len() >= events
        });
        wait_for_views(addr);
        (
            events_from(addr, MIGRATION),
            get(addr, "/api/v1/quarantine").json(),
        )
    })
    .await
    .unwrap();
    (emp, got, quarantine)
}

/// A GET over TLS with the given client identity to a peer port; Ok(status) or the error text
/// (an exchange that is not over within 20 s is an error too: once, in a full suite run, one of
/// them never ended with no socket left open on either side).
async fn knock(
    port: u16,
    identity: Option<Identity>,
    ca_pem: &str,
    server_spki: String,
) -> Result<u16, String> {
    tokio::time::timeout(
        Duration::from_secs(20),
        knock_once(port, identity, ca_pem, server_spki),
    )
    .await
    .unwrap_or_else(|_| Err("no answer within 20 s".into()))
}

async fn knock_once(
    port: u16,
    identity: Option<Identity>,
    ca_pem: &str,
    server_spki: String,
) -> Result<u16, String> {
    let ca = tls::certificate_from_pem(ca_pem).unwrap();
    let config = tls::client_config(identity, &ca, server_spki).unwrap();
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .map_err(|e| e.to_string())?;
    let tls = tokio_rustls::TlsConnector::from(config)
        .connect(tls::peer_server_name(), tcp)
        .await
        .map_err(|e| e.to_string())?;
    let mut client = jol::net::client::HttpClient::over(tls, "peer".into())
        .await
        .map_err(|e| e.to_string())?;
    client
        .get("/peer/v1/manifest")
        .await
        .map(|(s, _)| s.as_u16())
        .map_err(|e| e.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_peer_listener_refuses_strangers_at_the_handshake() {
    let fed = Federation::build();
    let emp = start_async(fed.config("employment")).await;
    let port = fed.peer["employment"];
    let ca_pem = std::fs::read_to_string(fed.path("authority/ca.pem")).unwrap();
    let emp_cert = std::fs::read_to_string(fed.path("employment/keys/tls.cert.pem")).unwrap();
    let emp_spki = tls::spki_sha256(&tls::certificate_from_pem(&emp_cert).unwrap()).unwrap();

    // A registered member gets through.
    let migration = Identity::load(
        &fed.path("migration/keys/tls.cert.pem"),
        &fed.path("migration/keys/tls.pem"),
    )
    .unwrap();
    assert_eq!(
        knock(port, Some(migration), &ca_pem, emp_spki.clone()).await,
        Ok(200)
    );

    // No certificate.
    assert!(knock(port, None, &ca_pem, emp_spki.clone()).await.is_err());

    // A certificate from another CA, for a real member's id.
    let other = tempfile::tempdir().unwrap();
    let foreign = jol::trust::authority::Authority::init(
        &other.path().join("auth"),
        "elsewhere",
        "x/GOV/1/auth".parse().unwrap(),
        30,
    )
    .unwrap();
    let (key, csr) = new_tls_key(&other.path().join("tls.pem"));
    let cert = foreign
        .issue_cert(&MIGRATION.parse().unwrap(), &csr, 30)
        .unwrap();
    let stranger = identity(&other.path().join("tls.cert.pem"), cert, &key);
    assert!(knock(port, Some(stranger), &ca_pem, emp_spki.clone())
        .await
        .is_err());

    // The federation's CA, but a key the manifest does not register.
    let ours = jol::trust::authority::Authority::open(&fed.path("authority"));
    let (key, csr) = new_tls_key(&other.path().join("tls2.pem"));
    let cert = ours
        .issue_cert(&MIGRATION.parse().unwrap(), &csr, 30)
        .unwrap();
    let unregistered = identity(&other.path().join("tls2.cert.pem"), cert, &key);
    assert!(knock(port, Some(unregistered), &ca_pem, emp_spki.clone())
        .await
        .is_err());

    // Migration's own registered key, but in a certificate that expired yesterday.
    let csr = std::fs::read_to_string(fed.path("migration/keys/tls.csr.pem")).unwrap();
    let expired = ours
        .issue_cert_from(
            &MIGRATION.parse().unwrap(),
            &csr,
            time::OffsetDateTime::now_utc() - time::Duration::days(10),
            9,
        )
        .unwrap();
    let migration_key = fed.path("migration/keys/tls.pem");
    let stale = identity(
        &other.path().join("expired.cert.pem"),
        expired,
        &migration_key,
    );
    assert!(
        knock(port, Some(stale), &ca_pem, emp_spki.clone())
            .await
            .is_err(),
        "an expired certificate got through"
    );

    // Migration's registered key in a certificate the CA was tricked into issuing for
    // employment: the key says migration, the name says employment; refused.
    let claims_other = ours
        .issue_cert(&EMPLOYMENT.parse().unwrap(), &csr, 30)
        .unwrap();
    let impostor = identity(
        &other.path().join("claims.cert.pem"),
        claims_other,
        &migration_key,
    );
    assert!(
        knock(port, Some(impostor), &ca_pem, emp_spki.clone())
            .await
            .is_err(),
        "a certificate naming another member got through"
    );

    // And a client refuses a server whose key is not the one registered for the member it meant.
    let migration = Identity::load(
        &fed.path("migration/keys/tls.cert.pem"),
        &fed.path("migration/keys/tls.pem"),
    )
    .unwrap();
    assert!(knock(port, Some(migration), &ca_pem, "00".repeat(32))
        .await
        .is_err());
    drop(emp);
}

/// A new TLS key for migration at `key_file`, and its certificate request (PEM).
fn new_tls_key(key_file: &std::path::Path) -> (std::path::PathBuf, String) {
    let csr = jol::trust::authority::node_tls_key(&MIGRATION.parse().unwrap(), key_file).unwrap();
    (
        key_file.to_path_buf(),
        std::fs::read_to_string(csr).unwrap(),
    )
}

/// A client identity: `cert_pem` written to `cert_file`, with the key in `key_file`.
fn identity(cert_file: &std::path::Path, cert_pem: String, key_file: &std::path::Path) -> Identity {
    std::fs::write(cert_file, cert_pem).unwrap();
    Identity::load(cert_file, key_file).unwrap()
}

/// A flattened JWS built by hand from a header, a payload and a signature.
fn hand_made(header: &str, payload: &[u8], signature: &[u8]) -> Value {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    json!({"protected": b64.encode(header), "payload": b64.encode(payload), "signature": b64.encode(signature)})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_and_misdated_events_from_a_peer_are_each_refused_with_their_reason() {
    let fed = Federation::build();
    let (key, kid) = fed.migration_signer();
    let event = |seq, pin: &str| {
        Event::new(
            MIGRATION.parse().unwrap(),
            EventType::ReturneeRecord,
            seq,
            returnee(pin, &[EMPLOYMENT], &["EMPLOYMENT_SERVICES"]),
        )
    };
    let payload = |seq, pin: &str| serde_json::to_vec(&event(seq, pin)).unwrap();
    // HS256 "signed" with the public key as the secret: refused for its algorithm, whatever the MAC.
    let hs256 = hand_made(
        &format!(r#"{{"alg":"HS256","kid":"{kid}"}}"#),
        &payload(2, "21503199012346"),
        &[7u8; 32],
    );
    let none = hand_made(
        &format!(r#"{{"alg":"none","kid":"{kid}"}}"#),
        &payload(1, "21503199012345"),
        b"",
    );
    let crit = hand_made(
        &format!(r#"{{"alg":"EdDSA","kid":"{kid}","crit":["exp"]}}"#),
        &payload(3, "21503199012348"),
        &[0u8; 64],
    );
    let mut padded = signed(&event(4, "21503199012349"), &key, &kid);
    padded["signature"] = format!("{}==", padded["signature"].as_str().unwrap()).into();
    let mut future = event(5, "21503199012350");
    future.time = time::OffsetDateTime::now_utc() + time::Duration::hours(2);
    let good = event(6, "21503199012351");
    // A key no manifest this node can get lists: not quarantined and skipped, but retried (a
    // newer manifest may list it), so the feed waits there.
    let unknown_kid = signed(
        &event(7, "21503199012347"),
        &key,
        &format!("{MIGRATION}#sign-9"),
    );
    let page = json!({"head": 7, "next": 7, "events": [
        {"sequence": 1, "jws": none},
        {"sequence": 2, "jws": hs256},
        {"sequence": 3, "jws": crit},
        {"sequence": 4, "jws": padded},
        {"sequence": 5, "jws": signed(&future, &key, &kid)},
        {"sequence": 6, "jws": signed(&good, &key, &kid)},
        {"sequence": 7, "jws": unknown_kid},
    ]});
    let _fake = serve_fake_migration(&fed, page, 7).await;
    let (emp, events, quarantine) = employment_takes(&fed, 5, 1).await;
    let reasons = quarantine_reasons(&quarantine);
    assert_eq!(
        reasons,
        [
            "jws-algorithm",
            "jws-algorithm",
            "jws-critical-header",
            "jws-malformed",
            "time-in-future"
        ],
        "{quarantine}"
    );
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["event"]["id"], good.id.to_string());
    let addr = emp.addr;
    let (ready, metrics) = tokio::task::spawn_blocking(move || {
        eventually(Duration::from_secs(10), || {
            String::from_utf8(get(addr, "/metrics").body)
                .unwrap()
                .contains("kind=\"retry\"")
        });
        (
            get(addr, "/readyz").json(),
            String::from_utf8(get(addr, "/metrics").body).unwrap(),
        )
    })
    .await
    .unwrap();
    assert_eq!(
        ready["peers"][MIGRATION]["cursor"], 6,
        "the cursor stays before the event it cannot check yet: {ready}"
    );
    assert!(metrics.contains("kind=\"retry\""), "{metrics}");
    drop(emp);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_signed_with_a_key_only_a_newer_manifest_lists_is_retried_not_skipped() {
    let fed = Federation::build();
    // The authority registers migration's new key in manifest serial 2; employment starts with
    // serial 1 and first meets a migration that still offers serial 1.
    let old_manifest = std::fs::read(fed.path("manifest.jws")).unwrap();
    let new_key = jol::event::keys::generate();
    let new_pub = fed.path("new.pub.pem");
    jol::event::keys::write_public(&new_pub, &new_key.verifying_key()).unwrap();
    fed.authority(&[
        "add-key",
        "--key",
        &format!("{MIGRATION}#sign-2"),
        "--public-key",
        new_pub.to_str().unwrap(),
    ]);
    let newer = fed.path("manifest-2.jws");
    fed.authority(&["sign", "--out", newer.to_str().unwrap()]);
    let new_manifest = std::fs::read(&newer).unwrap();

    let key = jol::event::keys::read_private(&fed.path("migration/keys/sign.pem")).unwrap();
    let old_kid = format!("{MIGRATION}#sign-1");
    let new_kid = format!("{MIGRATION}#sign-2");
    let record = |seq, pin: &str| {
        event(
            EventType::ReturneeRecord,
            seq,
            returnee(pin, &[EMPLOYMENT], &["EMPLOYMENT_SERVICES"]),
        )
    };
    let (first, rotated, after) = (
        record(1, "21503199012345"),
        record(2, "21503199012346"),
        record(3, "21503199012347"),
    );
    let page = json!({"head": 3, "next": 3, "events": [
        {"sequence": 1, "jws": signed(&first, &key, &old_kid)},
        {"sequence": 2, "jws": signed(&rotated, &new_key, &new_kid)},
        {"sequence": 3, "jws": signed(&after, &new_key, &new_kid)},
    ]});
    let _fake =
        serve_fake_migration_with(&fed, page, 3, vec![old_manifest, new_manifest], vec![]).await;
    let emp = start_async(fed.config("employment")).await;
    let addr = emp.addr;
    let got = tokio::task::spawn_blocking(move || {
        eventually(Duration::from_secs(15), || {
            events_from(addr, MIGRATION).len() >= 3
        });
        (
            events_from(addr, MIGRATION),
            get(addr, "/api/v1/quarantine").json(),
            String::from_utf8(get(addr, "/metrics").body).unwrap(),
        )
    })
    .await
    .unwrap();
    let (events, quarantine, metrics) = got;
    let ids = event_ids(&events);
    assert_eq!(
        ids,
        [first.id, rotated.id, after.id].map(|i| i.to_string()),
        "nothing lost, in order"
    );
    assert_eq!(quarantine["total"], 0, "nothing quarantined: {quarantine}");
    assert!(
        metrics.contains(&format!(
            "jol_sync_failures_total{{from=\"{MIGRATION}\",kind=\"retry\"}}"
        )),
        "the unknown key was retried, and counted: {metrics}"
    );
    drop(emp);
}

/// A federation whose subscribers check their publishers' checkpoints every 100 ms, migration's
/// event key and key id, and the returnee record a fake migration serves at sequence 1.
fn witnessing() -> (Federation, ed25519_dalek::SigningKey, String, Event) {
    let fed = Federation::build_with(
        "witness_ms = 100\nmin_backoff_ms = 50\nmax_backoff_ms = 300\nwait_secs = 1",
    );
    let (key, kid) = fed.migration_signer();
    let served = event(
        EventType::ReturneeRecord,
        1,
        returnee("21503199012345", &[EMPLOYMENT], &["EMPLOYMENT_SERVICES"]),
    );
    (fed, key, kid, served)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publisher_showing_a_reader_events_its_log_does_not_hold_is_caught() {
    let (fed, key, kid, served) = witnessing();
    // What the publisher's log (and its signed checkpoint) really holds at position 1.
    let logged = event(
        EventType::ReturneeRecord,
        1,
        returnee("21503199012346", &[EMPLOYMENT], &["EMPLOYMENT_SERVICES"]),
    );
    let logged_bytes = serde_json::to_vec(&signed(&logged, &key, &kid)).unwrap();
    let root = jol::log::event_leaf(&logged_bytes);
    let empty = jol::log::checkpoint::TreeHead {
        size: 0,
        root: jol::merkle::empty_root(),
    };
    let statement = jol::log::checkpoint::Checkpoint {
        origin: jol::log::checkpoint::log_origin(&MIGRATION.parse().unwrap()),
        size: 1,
        root,
        quarantine: empty,
        access: empty,
    };
    let checkpoint = jol::log::checkpoint::sign(&statement, &key);
    let routes = vec![
        (
            "/peer/v1/log/checkpoint",
            Value::String(String::from_utf8(checkpoint).unwrap()),
        ),
        (
            "/peer/v1/proof/event",
            json!({"sequence": 1, "leafIndex": 0, "treeSize": 1, "proof": []}),
        ),
    ];
    let page = json!({"head": 1, "next": 1, "events": [{"sequence": 1, "jws": signed(&served, &key, &kid)}]});
    let manifest = std::fs::read(fed.path("manifest.jws")).unwrap();
    let _fake = serve_fake_migration_with(&fed, page, 1, vec![manifest], routes).await;
    let emp = start_async(fed.config("employment")).await;
    let addr = emp.addr;
    let (quarantine, metrics) = tokio::task::spawn_blocking(move || {
        eventually(Duration::from_secs(15), || {
            get(addr, "/api/v1/quarantine").json()["records"]
                .as_array()
                .is_some_and(|r| r.iter().any(|r| r["reason"] == "log-split"))
        });
        (
            get(addr, "/api/v1/quarantine").json(),
            String::from_utf8(get(addr, "/metrics").body).unwrap(),
        )
    })
    .await
    .unwrap();
    let split = quarantine["records"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["reason"] == "log-split")
        .unwrap_or_else(|| panic!("no split detected: {quarantine}"));
    let evidence: Value = serde_json::from_str(split["body"].as_str().unwrap()).unwrap();
    assert_eq!(evidence["sequence"], 1);
    assert!(evidence["event"]["signature"].is_string());
    let note = evidence["checkpoint"].as_str().unwrap_or_default();
    assert!(
        jol::log::checkpoint::read(note.as_bytes()).is_ok(),
        "{evidence}"
    );
    assert!(
        metrics.contains("jol_log_forks_total 1"),
        "raised once: {metrics}"
    );
    drop(emp);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_flooding_the_quarantine_is_capped_and_reported() {
    let flood = flood_the_quarantine("quarantine_cap = 10", 10).await;
    assert_eq!(flood.kept, 10, "only the peer's share is kept");
    assert_eq!(flood.dropped, 20);
}

/// A peer's share is capped in bytes too: one sending its largest events wrong would otherwise
/// fill the whole quarantine long before its record cap, and leave no room for the others.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_flooding_the_quarantine_with_bytes_is_capped_and_reported() {
    let cap = 12_000;
    let flood = flood_the_quarantine(&format!("quarantine_cap_bytes = {cap}"), 1).await;
    assert_eq!(flood.share_max_bytes, cap);
    assert!(
        (1..30).contains(&flood.kept),
        "some of the thirty kept, not all: {}",
        flood.kept
    );
    assert!(flood.kept_bytes <= cap, "{} bytes kept", flood.kept_bytes);
    assert_eq!(flood.dropped, 30 - flood.kept);
}

/// What the employment node kept and reported after a fake migration sent it thirty events
/// with a forged signature, then a good one, under `sync` (a `[sync]` setting).
struct Flood {
    kept: u64,
    kept_bytes: u64,
    dropped: u64,
    /// The share's byte cap as `/readyz` shows it.
    share_max_bytes: u64,
}

async fn flood_the_quarantine(sync: &str, at_least_kept: u64) -> Flood {
    let fed = Federation::build_with(&format!(
        "{sync}\nmin_backoff_ms = 50\nmax_backoff_ms = 300\nwait_secs = 1"
    ));
    let (key, kid) = fed.migration_signer();
    let stranger = jol::event::keys::generate();
    // Thirty events with a forged signature, then a good one.
    let mut events: Vec<Value> = (1..=30u64)
        .map(|seq| {
            let e = event(
                EventType::ReturneeRecord,
                seq,
                returnee(&pin(seq as usize), &[EMPLOYMENT], &["EMPLOYMENT_SERVICES"]),
            );
            json!({"sequence": seq, "jws": signed(&e, &stranger, &kid)})
        })
        .collect();
    let good = event(
        EventType::ReturneeRecord,
        31,
        returnee("21503199099999", &[EMPLOYMENT], &["EMPLOYMENT_SERVICES"]),
    );
    events.push(json!({"sequence": 31, "jws": signed(&good, &key, &kid)}));
    let page = json!({"head": 31, "next": 31, "events": events});
    let _fake = serve_fake_migration(&fed, page, 31).await;
    let (emp, got, quarantine) = employment_takes(&fed, at_least_kept, 1).await;
    assert_eq!(got.len(), 1, "the good event still arrives");
    let addr = emp.addr;
    let (ready, metrics) = tokio::task::spawn_blocking(move || {
        let ready = get(addr, "/readyz").json();
        // With peers, a manifest, releases and publishers' shares, as the description says.
        described_by_openapi(addr, "Ready", &ready);
        (
            ready,
            String::from_utf8(get(addr, "/metrics").body).unwrap(),
        )
    })
    .await
    .unwrap();
    assert_eq!(ready["status"], "degraded", "{ready}");
    assert!(
        ready["warnings"][0]
            .as_str()
            .unwrap()
            .contains("floods the quarantine"),
        "{ready}"
    );
    let dropped = format!("jol_quarantine_dropped_total{{from=\"{MIGRATION}\"}} ");
    let dropped =
        metric_in(&metrics, &dropped).unwrap_or_else(|| panic!("no {dropped}in {metrics}"));
    drop(emp);
    assert_eq!(
        ready["quarantine"]["records"], quarantine["total"],
        "{ready}"
    );
    let share = &ready["quarantine"]["publishers"][MIGRATION];
    assert_eq!(share["records"], quarantine["total"], "{ready}");
    assert_eq!(share["bytes"], ready["quarantine"]["bytes"], "{ready}");
    Flood {
        kept: quarantine["total"].as_u64().unwrap(),
        kept_bytes: ready["quarantine"]["bytes"].as_u64().unwrap(),
        dropped,
        share_max_bytes: share["maxBytes"].as_u64().unwrap(),
    }
}

/// A TLS connection to `agency`'s peer listener as `as_member`, a registered member.
async fn peer_tls(
    fed: &Federation,
    agency: &str,
    as_member: &str,
) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    let ca = std::fs::read_to_string(fed.path("authority/ca.pem")).unwrap();
    let ca = tls::certificate_from_pem(&ca).unwrap();
    let cert = std::fs::read_to_string(fed.path(&format!("{agency}/keys/tls.cert.pem"))).unwrap();
    let spki = tls::spki_sha256(&tls::certificate_from_pem(&cert).unwrap()).unwrap();
    let identity = Identity::load(
        &fed.path(&format!("{as_member}/keys/tls.cert.pem")),
        &fed.path(&format!("{as_member}/keys/tls.pem")),
    )
    .unwrap();
    let config = tls::client_config(Some(identity), &ca, spki).unwrap();
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", fed.peer[agency]))
        .await
        .unwrap();
    tokio_rustls::TlsConnector::from(config)
        .connect(tls::peer_server_name(), tcp)
        .await
        .unwrap()
}

/// POST an `add-checkpoint` body to `agency`'s witness as migration: status, content type, body.
async fn add_checkpoint(fed: &Federation, agency: &str, body: Vec<u8>) -> (u16, String, String) {
    let stream = peer_tls(fed, agency, "migration").await;
    let mut client = jol::net::client::HttpClient::over(stream, "peer".into())
        .await
        .unwrap();
    let a = client
        .request(
            hyper::Method::POST,
            "/peer/v1/witness/add-checkpoint",
            hyper::HeaderMap::new(),
            Some(body.into()),
        )
        .await
        .unwrap();
    let kind = a
        .headers
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    (
        a.status.as_u16(),
        kind,
        String::from_utf8_lossy(&a.body).into_owned(),
    )
}

/// GET `path` on `agency`'s peer listener as migration: status and body.
async fn peer_get(fed: &Federation, agency: &str, path: &str) -> (u16, String) {
    let stream = peer_tls(fed, agency, "migration").await;
    let mut client = jol::net::client::HttpClient::over(stream, "peer".into())
        .await
        .unwrap();
    let a = client
        .request(hyper::Method::GET, path, hyper::HeaderMap::new(), None)
        .await
        .unwrap();
    (
        a.status.as_u16(),
        String::from_utf8_lossy(&a.body).into_owned(),
    )
}

/// Declare an `add-checkpoint` body of `length` bytes to `agency`'s witness and send none of
/// it: the status it answers. (Sending the body as well would race the server's close after its
/// early 413 and end in a broken pipe instead of an answer.)
async fn declare_huge_checkpoint(fed: &Federation, agency: &str, length: usize) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = peer_tls(fed, agency, "migration").await;
    let head = format!(
        "POST /peer/v1/witness/add-checkpoint HTTP/1.1\r\nHost: peer\r\n\
         Content-Length: {length}\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.flush().await.unwrap();
    let mut answer = Vec::new();
    // The server may close without close_notify; what arrived before that is the answer.
    let _ = stream.read_to_end(&mut answer).await;
    status_of(&answer)
}

/// The status code of a raw HTTP answer (its status line's second word).
fn status_of(answer: &[u8]) -> u16 {
    let answer = String::from_utf8_lossy(answer);
    answer
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {answer:?}"))
}

/// Send `agency`'s witness an `add-checkpoint` body in chunks that never end (at most 16 MiB,
/// far past its cap) while reading its answer: the status it answers.
async fn endless_checkpoint(fed: &Federation, agency: &str) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let stream = peer_tls(fed, agency, "migration").await;
    let (mut reader, mut writer) = tokio::io::split(stream);
    let sending = tokio::spawn(async move {
        let head = "POST /peer/v1/witness/add-checkpoint HTTP/1.1\r\nHost: peer\r\n\
                    Transfer-Encoding: chunked\r\n\r\n";
        writer.write_all(head.as_bytes()).await?;
        let chunk = format!("4000\r\n{}\r\n", "a".repeat(0x4000));
        for _ in 0..1024 {
            writer.write_all(chunk.as_bytes()).await?;
        }
        std::io::Result::Ok(())
    });
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(30), reader.read_to_end(&mut answer)).await;
    sending.abort();
    status_of(&answer)
}

/// Migration's checkpoint of the first `size` leaves of `tree`, signed with `key`.
fn migration_checkpoint(
    tree: &jol::merkle::MemoryTree,
    size: u64,
    key: &ed25519_dalek::SigningKey,
) -> Vec<u8> {
    let empty = jol::log::checkpoint::TreeHead {
        size: 0,
        root: jol::merkle::empty_root(),
    };
    let c = jol::log::checkpoint::Checkpoint {
        origin: jol::log::checkpoint::log_origin(&MIGRATION.parse().unwrap()),
        size,
        root: jol::merkle::root(tree, size).unwrap(),
        quarantine: empty,
        access: empty,
    };
    jol::log::checkpoint::sign(&c, key)
}

/// An `add-checkpoint` body: the old size, proof lines, a blank line, the note.
fn witness_body(old: u64, proof: &[jol::merkle::Hash], note: &[u8]) -> Vec<u8> {
    let mut b = format!("old {old}\n");
    for h in proof {
        b.push_str(&jol::log::checkpoint::encode_std(h));
        b.push('\n');
    }
    b.push('\n');
    let mut b = b.into_bytes();
    b.extend_from_slice(note);
    b
}

/// Every node is a tlog-witness for the other members' logs over its peer listener: what an
/// attacker among the members sends it is refused with the status c2sp.org/tlog-witness gives,
/// and only a consistent checkpoint validly signed by its log gets the witness's co-signature.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_witness_cosigns_only_what_tlog_witness_allows() {
    let fed = Federation::build();
    let emp = start_async(fed.config("employment")).await;
    let (key, _) = fed.migration_signer();
    let tree = jol::merkle::MemoryTree::new((0..40u8).map(|i| jol::merkle::leaf_hash(&[i])));
    let note5 = migration_checkpoint(&tree, 5, &key);

    // A note for migration's origin signed by another member's key: 403.
    let emp_key = jol::event::keys::read_private(&fed.path("employment/keys/sign.pem")).unwrap();
    let forged = migration_checkpoint(&tree, 5, &emp_key);
    assert_eq!(
        add_checkpoint(&fed, "employment", witness_body(0, &[], &forged))
            .await
            .0,
        403
    );
    // Malformed: 64 proof lines, old > size, no blank line.
    let many = witness_body(0, &[[1; 32]; 64], &note5);
    assert_eq!(add_checkpoint(&fed, "employment", many).await.0, 400);
    assert_eq!(
        add_checkpoint(&fed, "employment", witness_body(6, &[], &note5))
            .await
            .0,
        400
    );
    assert_eq!(
        add_checkpoint(&fed, "employment", b"old 0\n".to_vec())
            .await
            .0,
        400
    );
    // A huge body: 413 on its declared length, before any of it is read; an endless one
    // (chunked, no length): 413 once the cap is read.
    assert_eq!(
        declare_huge_checkpoint(&fed, "employment", 200_000).await,
        413
    );
    assert_eq!(endless_checkpoint(&fed, "employment").await, 413);
    // The witness's own log, or a log of no member: 404.
    let mine = String::from_utf8(note5.clone())
        .unwrap()
        .replace(MIGRATION, EMPLOYMENT);
    let mine = witness_body(0, &[], mine.as_bytes());
    assert_eq!(add_checkpoint(&fed, "employment", mine).await.0, 404);
    // A path the peer listener does not serve is not repeated in its 404 (it may carry a PIN,
    // and the answer may pass through security servers' logs).
    for path in ["/peer/v1/persons/21503199012345", "/21503199012345"] {
        let (status, body) = peer_get(&fed, "employment", path).await;
        assert_eq!(status, 404, "{path}: {body}");
        assert!(!body.contains("21503199012345"), "{path}: {body}");
    }

    // The first checkpoint: co-signed, the line verifies with employment's witness key.
    let (status, _, line) = add_checkpoint(&fed, "employment", witness_body(0, &[], &note5)).await;
    assert_eq!(status, 200, "{line}");
    let mut note = jol::log::note::Note::parse(&note5).unwrap();
    note.add(jol::log::note::NoteSignature::parse_line(line.trim_end()).unwrap())
        .unwrap();
    let witness = jol::log::note::VerifierKey::new(
        &format!("{EMPLOYMENT}/jol-witness"),
        jol::log::note::KeyType::Cosignature,
        emp_key.verifying_key(),
    )
    .unwrap();
    assert!(note.verify(&[witness]).is_ok(), "{line}");

    // A forged old size: 409 with the size it co-signed, as text/x.tlog.size.
    let note9 = migration_checkpoint(&tree, 9, &key);
    let proof = jol::merkle::consistency_proof(&tree, 3, 9).unwrap();
    let (status, kind, body) =
        add_checkpoint(&fed, "employment", witness_body(3, &proof, &note9)).await;
    assert_eq!(
        (status, kind.as_str(), body.as_str()),
        (409, "text/x.tlog.size", "5\n")
    );
    // A bad proof from the right size: 422 and a fork alarm (the log itself sent it).
    let (status, ..) =
        add_checkpoint(&fed, "employment", witness_body(5, &[[7; 32]], &note9)).await;
    assert_eq!(status, 422);
    // The honest extension still passes.
    let proof = jol::merkle::consistency_proof(&tree, 5, 9).unwrap();
    let (status, _, said) =
        add_checkpoint(&fed, "employment", witness_body(5, &proof, &note9)).await;
    assert_eq!(status, 200, "{said}");
    let addr = emp.addr;
    let quarantine = tokio::task::spawn_blocking(move || get(addr, "/api/v1/quarantine").json())
        .await
        .unwrap();
    let reasons: Vec<&str> = quarantine["records"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["reason"].as_str())
        .filter(|r| *r == "log-fork")
        .collect();
    assert_eq!(reasons, ["log-fork"], "{quarantine}");
    drop(emp);
}

/// A publisher that never serves its checkpoint cannot have its events checked against its
/// log: every round that skips the split-view check is counted per publisher in `/metrics`, so
/// an operator sees a publisher that hides its log (it is still witnessed through
/// `add-checkpoint` when it submits).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publisher_that_never_serves_its_checkpoint_is_counted_unchecked() {
    let (fed, key, kid, served) = witnessing();
    let page = json!({"head": 1, "next": 1, "events": [{"sequence": 1, "jws": signed(&served, &key, &kid)}]});
    let manifest = std::fs::read(fed.path("manifest.jws")).unwrap();
    // No checkpoint route: the fake answers 404 to /peer/v1/log/checkpoint.
    let _fake = serve_fake_migration_with(&fed, page, 1, vec![manifest], Vec::new()).await;
    let emp = start_async(fed.config("employment")).await;
    let addr = emp.addr;
    let line = format!("jol_witness_unchecked_total{{from=\"{MIGRATION}\"}} ");
    let metrics = tokio::task::spawn_blocking(move || {
        let counted = |m: &str| metric_in(m, &line).unwrap_or(0);
        eventually(Duration::from_secs(15), || {
            counted(&String::from_utf8(get(addr, "/metrics").body).unwrap()) >= 2
        });
        String::from_utf8(get(addr, "/metrics").body).unwrap()
    })
    .await
    .unwrap();
    assert!(
        metrics.contains("jol_log_forks_total 0"),
        "not checked is not an alarm: {metrics}"
    );
    drop(emp);
}
