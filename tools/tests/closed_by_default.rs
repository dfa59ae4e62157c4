//! The edges of a node that must be closed unless an operator opens them, tried on real nodes
//! as someone probing them would: an X-Road provider face that trusts nobody by default and
//! answers only to its own names, a tokens file that stops parsing, an expired manifest, the
//! dashboard's cookie on a host with two nodes, and sign-in floods.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;

const PIN: &str = "21503199012345";

/// Append `[xroad]` with a provider face on a free port and `lines` to `agency`'s config.
fn with_face(fed: &Federation, agency: &str, lines: &str) {
    let config = fed.config(agency);
    let text = std::fs::read_to_string(&config).unwrap();
    let port = free_ports(1)[0];
    std::fs::write(
        &config,
        format!("{text}\n[xroad]\nprovider_listen = \"127.0.0.1:{port}\"\n{lines}"),
    )
    .unwrap();
}

/// `jol serve` that must refuse to start: its error output. Panics if it serves instead.
fn refused_start(config: &Path) -> String {
    let mut child = Command::new(env!("CARGO_BIN_EXE_jol"))
        .args(["serve", "--config"])
        .arg(config)
        .env("RUST_LOG", "error")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let exited = eventually(Duration::from_secs(30), || {
        child.try_wait().unwrap().is_some()
    });
    if exited.is_none() {
        let _ = child.kill();
        let _ = child.wait();
        panic!("the node started");
    }
    let out = child.wait_with_output().unwrap();
    assert!(!out.status.success());
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A GET naming `host` in its `Host` header.
fn get_as(addr: std::net::SocketAddr, host: &str, path: &str, headers: &str) -> Answer {
    let request =
        format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n{headers}\r\n");
    raw(addr, request.as_bytes()).unwrap()
}

fn problem_type(a: &Answer) -> String {
    a.json()["type"].as_str().unwrap_or_default().to_string()
}

#[test]
fn an_xroad_face_that_names_no_trusted_caller_does_not_start() {
    let fed = Federation::build();
    // Neither security_server_cert nor allow_from: any local process could be "the security
    // server" and claim any X-Road-Client.
    with_face(&fed, "migration", "");
    let said = refused_start(&fed.config("migration"));
    assert!(said.contains("allow_from"), "{said}");
    assert!(said.contains("security_server_cert"), "{said}");
}

#[test]
fn a_plain_http_face_answers_only_to_its_names_and_says_what_it_trusts() {
    let fed = Federation::build();
    with_face(
        &fed,
        "migration",
        "allow_from = [\"127.0.0.1\"]\nnames = [\"jol-face.migration.local\"]\n",
    );
    let (node, log) = Node::start_logged(&fed.config("migration"), "info");
    let face = node.xroad.unwrap();
    let client = format!("X-Road-Client: {EMPLOYMENT}\r\n");
    // A web page on this machine that rebound its own name to 127.0.0.1.
    let rebound = get_as(face, "evil.example:80", "/jol-feed/v1/manifest", &client);
    assert_eq!(
        rebound.status,
        421,
        "{}",
        String::from_utf8_lossy(&rebound.body)
    );
    assert_eq!(
        problem_type(&rebound),
        "https://jol.example/problems/unknown-host"
    );
    assert!(rebound.json()["detail"]
        .as_str()
        .unwrap()
        .contains("[xroad] names"));
    for forged in ["evil.example", "jol-face.migration.local.evil.example", ""] {
        let a = get_as(face, forged, "/jol-kpi/v1/openapi.json", "");
        assert_eq!(a.status, 421, "Host {forged:?} was answered");
    }
    // Its listen address and the names it was given are answered.
    for ours in [face.to_string(), "jol-face.migration.local:8600".into()] {
        let a = get_as(face, &ours, "/jol-feed/v1/manifest", &client);
        assert_eq!(a.status, 200, "Host {ours}");
    }
    assert!(
        eventually(Duration::from_secs(10), || !log
            .lines_with("plain HTTP from 127.0.0.1")
            .is_empty())
        .is_some(),
        "what the face trusts is not logged: {}",
        log.text()
    );
    node.stop();
}

#[test]
fn a_pinned_tls_face_logs_the_certificate_it_trusts() {
    let fed = Federation::build();
    fed.behind_xroad();
    let pem = std::fs::read_to_string(fed.path("ss-migration/ss.cert.pem")).unwrap();
    let pin = jol::trust::pinned::pin_of(&pem).unwrap();
    let (node, log) = Node::start_logged(&fed.config("migration"), "info");
    let said = format!("pinned TLS with certificate {pin}");
    assert!(
        eventually(Duration::from_secs(10), || !log
            .lines_with(&said)
            .is_empty())
        .is_some(),
        "no {said:?} in {}",
        log.text()
    );
    node.stop();
}

#[test]
fn a_tokens_file_that_stops_parsing_refuses_every_token_until_it_is_repaired() {
    let dir = NodeDir::new("");
    let (node, log) = Node::start_logged(&dir.config, "error");
    assert_eq!(get(node.addr, "/api/v1/session").status, 200);
    // The file is overwritten with something that is not a tokens file (an editor's slip, a
    // half-written copy): the tokens it held before must not stay valid.
    let tokens = dir.path().join("tokens.toml");
    let good = std::fs::read(&tokens).unwrap();
    std::fs::write(
        &tokens,
        "[[token]]\nname = \"operator\"\nGARBAGE-4711 = = =\n",
    )
    .unwrap();
    for _ in 0..3 {
        let refused = get(node.addr, "/api/v1/session");
        assert_eq!(refused.status, 401);
        assert_eq!(
            problem_type(&refused),
            "https://jol.example/problems/tokens-unreadable"
        );
        let body = String::from_utf8_lossy(&refused.body);
        assert!(
            !body.contains("GARBAGE"),
            "the file's content leaked: {body}"
        );
    }
    // The dashboard's way in is shut too.
    let signin = sign_in(node.addr, &token_of(node.addr));
    assert_eq!(signin.status, 401);
    // Logged once for this version of the file, however often it is asked.
    let logged = || log.lines_with("tokens file cannot be read").len();
    assert!(eventually(Duration::from_secs(10), || logged() >= 1).is_some());
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(logged(), 1, "{}", log.text());
    assert!(!log.text().contains("GARBAGE"), "{}", log.text());
    // Repaired: the token works again.
    std::fs::write(&tokens, good).unwrap();
    assert_eq!(get(node.addr, "/api/v1/session").status, 200);
    node.stop();
}

/// A GET on `agency`'s peer listener over mutual TLS, as employment: the answer's status.
fn peer_get(fed: &Federation, agency: &str, path: &str) -> u16 {
    use jol::trust::tls::{self, Identity};
    let identity = Identity::load(
        &fed.path("employment/keys/tls.cert.pem"),
        &fed.path("employment/keys/tls.pem"),
    )
    .unwrap();
    let ca =
        tls::certificate_from_pem(&std::fs::read_to_string(fed.path("authority/ca.pem")).unwrap())
            .unwrap();
    let server = std::fs::read_to_string(fed.path(&format!("{agency}/keys/tls.cert.pem"))).unwrap();
    let spki = tls::spki_sha256(&tls::certificate_from_pem(&server).unwrap()).unwrap();
    let config = tls::client_config(Some(identity), &ca, spki).unwrap();
    let port = fed.peer[agency];
    let path = path.to_string();
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(async move {
            let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .unwrap();
            let stream = tokio_rustls::TlsConnector::from(config)
                .connect(tls::peer_server_name(), tcp)
                .await
                .unwrap();
            let mut client = jol::net::client::HttpClient::over(stream, "peer".into())
                .await
                .unwrap();
            client.get(&path).await.unwrap().0.as_u16()
        })
}

#[test]
fn under_an_expired_manifest_no_face_serves_members_anything_but_the_manifest() {
    let fed = Federation::build();
    // The manifest expired an hour ago.
    let authority = jol::trust::authority::Authority::open(&fed.path("authority"));
    authority
        .sign_at(
            &fed.path("manifest.jws"),
            time::OffsetDateTime::now_utc() - time::Duration::hours(2),
            time::Duration::hours(1),
        )
        .unwrap();
    with_face(&fed, "migration", "allow_from = [\"127.0.0.1\"]\n");
    let mig = fed.start("migration");
    // Publishing locally still works: the person's record is there to be served.
    publish(
        mig.addr,
        "returnee-record",
        &returnee(PIN, &[EMPLOYMENT], &["EMPLOYMENT_SERVICES"]),
    );
    assert!(eventually(Duration::from_secs(15), || get(
        mig.addr,
        &format!("/api/v1/persons/{PIN}")
    )
    .status
        == 200)
    .is_some());
    let face = mig.xroad.unwrap();
    let official = [
        ("X-Road-Client", EMPLOYMENT),
        ("X-Road-UserId", "KG21503199000017"),
        ("X-Road-Issue", "CASE-1"),
    ];
    for path in [
        format!("/jol-persons/v1/persons/{PIN}"),
        "/jol-kpi/v1/kpi".into(),
        "/jol-feed/v1/feed?after=0".into(),
        "/jol-feed/v1/log/checkpoint".into(),
        "/jol-feed/v1/log/tile/0/000.p/1".into(),
        "/jol-feed/v1/proof/consistency?from=1&to=1".into(),
    ] {
        let a = anonymous(face, "GET", &path, &official, b"").unwrap();
        assert_eq!(
            a.status,
            503,
            "{path} was served under an expired manifest: {}",
            String::from_utf8_lossy(&a.body)
        );
        assert_eq!(
            problem_type(&a),
            "https://jol.example/problems/manifest-expired"
        );
    }
    // The manifest itself stays served: a newer one is how a member recovers.
    let manifest = anonymous(face, "GET", "/jol-feed/v1/manifest", &official, b"").unwrap();
    assert_eq!(manifest.status, 200);
    // The same on the peer listener, to a member over mutual TLS.
    for path in [
        "/peer/v1/feed?after=0",
        "/peer/v1/log/checkpoint",
        "/peer/v1/log/tile/0/000.p/1",
        "/peer/v1/proof/inclusion?leaf=0&size=1",
        "/peer/v1/proof/event?sequence=1&size=1",
        "/peer/v1/proof/consistency?from=1&to=1",
    ] {
        assert_eq!(peer_get(&fed, "migration", path), 503, "{path}");
    }
    assert_eq!(peer_get(&fed, "migration", "/peer/v1/manifest"), 200);
    mig.stop();
}

/// Sign in to a node's dashboard with `token`, from its own page (as a browser sends the form,
/// with the page's `Origin`): the answer.
fn sign_in(addr: std::net::SocketAddr, token: &str) -> Answer {
    let origin = format!("http://{addr}");
    anonymous(
        addr,
        "POST",
        "/signin",
        &[
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("Origin", origin.as_str()),
        ],
        format!("token={token}").as_bytes(),
    )
    .unwrap()
}

/// The `Set-Cookie` of an answer: (name=value, its attributes).
fn set_cookie(a: &Answer) -> (String, String) {
    let line = a
        .headers
        .lines()
        .find_map(|l| {
            l.split_once(':')
                .filter(|(k, _)| k.eq_ignore_ascii_case("set-cookie"))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| panic!("no Set-Cookie in {}", a.headers));
    let (pair, attributes) = line.split_once(';').unwrap();
    (pair.to_string(), attributes.to_string())
}

/// `GET /api/v1/session` with only a `Cookie` header.
fn session_with(addr: std::net::SocketAddr, cookie: &str) -> u16 {
    anonymous(addr, "GET", "/api/v1/session", &[("Cookie", cookie)], b"")
        .unwrap()
        .status
}

#[test]
fn a_dashboard_session_belongs_to_its_own_listener() {
    let (dir_a, dir_b) = (NodeDir::new(""), NodeDir::new(""));
    let (a, b) = (dir_a.start(), dir_b.start());
    let signed_a = sign_in(a.addr, &token_of(a.addr));
    let signed_b = sign_in(b.addr, &token_of(b.addr));
    assert_eq!((signed_a.status, signed_b.status), (303, 303));
    let (cookie_a, attributes) = set_cookie(&signed_a);
    let (cookie_b, _) = set_cookie(&signed_b);
    // Signing in or out without the page's Origin (a form another port of the host sent):
    // refused, and the session stays.
    let bare_signin = anonymous(
        a.addr,
        "POST",
        "/signin",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        format!("token={}", token_of(a.addr)).as_bytes(),
    )
    .unwrap();
    assert_eq!(bare_signin.status, 403);
    let bare_signout = anonymous(
        a.addr,
        "POST",
        "/signout",
        &[("Cookie", cookie_a.as_str())],
        b"",
    )
    .unwrap();
    assert_eq!(bare_signout.status, 403);
    assert_eq!(session_with(a.addr, &cookie_a), 200, "still signed in");
    // A session's cookie changes state only with the page's Origin beside it.
    let publish = |origin: &[(&str, &str)]| {
        let mut headers = vec![
            ("Cookie", cookie_a.as_str()),
            ("Content-Type", "application/json"),
        ];
        headers.extend_from_slice(origin);
        anonymous(a.addr, "POST", "/api/v1/events", &headers, b"{}").unwrap()
    };
    let bare = publish(&[]);
    assert_eq!(bare.status, 403, "{}", String::from_utf8_lossy(&bare.body));
    assert_eq!(
        problem_type(&bare),
        "https://jol.example/problems/cross-origin"
    );
    let own = format!("http://{}", a.addr);
    let from_page = publish(&[("Origin", own.as_str())]);
    assert!(
        from_page.status != 403 && from_page.status < 500,
        "{}: {}",
        from_page.status,
        String::from_utf8_lossy(&from_page.body)
    );
    // Neither the sign-in page nor the dashboard may be framed by another page.
    let signin_page = anonymous(a.addr, "GET", "/signin", &[], b"").unwrap();
    let page = anonymous(a.addr, "GET", "/", &[("Cookie", cookie_a.as_str())], b"").unwrap();
    for answer in [&signin_page, &page] {
        assert_eq!(answer.status, 200);
        let headers = answer.headers.to_ascii_lowercase();
        for header in [
            "content-security-policy: frame-ancestors 'none'",
            "x-frame-options: deny",
            "x-content-type-options: nosniff",
        ] {
            assert!(headers.contains(header), "{header}: {headers}");
        }
    }
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(attributes.contains(attribute), "{attributes}");
    }
    assert!(
        !attributes.contains("Secure"),
        "plain HTTP listener: {attributes}"
    );
    let name = |c: &str| c.split_once('=').unwrap().0.to_string();
    // The browser sends every cookie of 127.0.0.1 to every port: the names must differ, or
    // signing in to one node overwrites (signs out) the other's session.
    assert_ne!(name(&cookie_a), name(&cookie_b));
    // A's cookie is no session at B, under its own name or under B's.
    assert_eq!(session_with(b.addr, &cookie_a), 401);
    let a_value = cookie_a.split_once('=').unwrap().1;
    assert_eq!(
        session_with(b.addr, &format!("{}={a_value}", name(&cookie_b))),
        401
    );
    // With both cookies, as a browser sends them, each node finds its own session.
    let both = format!("{cookie_a}; {cookie_b}");
    assert_eq!(session_with(a.addr, &both), 200);
    assert_eq!(
        session_with(b.addr, &format!("{cookie_b}; {cookie_a}")),
        200
    );
    assert_eq!(session_with(b.addr, &both), 200);
    a.stop();
    b.stop();
    // Behind a reverse proxy that ends TLS the cookie is never sent over plain HTTP.
    let proxied = NodeDir::new("session_cookie_secure = true\n");
    let c = proxied.start();
    let (_, attributes) = set_cookie(&sign_in(c.addr, &token_of(c.addr)));
    assert!(attributes.contains("Secure"), "{attributes}");
    c.stop();
}

#[test]
fn a_flood_of_wrong_sign_ins_from_one_address_is_cut_off() {
    let dir = NodeDir::new("");
    let node = dir.start();
    let statuses: Vec<u16> = (0..20)
        .map(|i| sign_in(node.addr, &format!("jol_guess{i}")).status)
        .collect();
    let cut = statuses
        .iter()
        .position(|s| *s == 429)
        .unwrap_or_else(|| panic!("twenty wrong sign-ins and no 429: {statuses:?}"));
    assert!(statuses[..cut].iter().all(|s| *s == 401), "{statuses:?}");
    assert!(statuses[cut..].iter().all(|s| *s == 429), "{statuses:?}");
    let limited = sign_in(node.addr, "jol_guess-again");
    assert_eq!(limited.status, 429);
    assert_eq!(
        problem_type(&limited),
        "https://jol.example/problems/signin-rate-limited"
    );
    assert!(limited.json()["retryAfter"].as_u64().unwrap() >= 1);
    assert!(limited
        .headers
        .to_ascii_lowercase()
        .contains("retry-after:"));
    // The right token still signs in: behind a reverse proxy every official shares the
    // address, and wrong tokens from anyone must not lock them out.
    let official = sign_in(node.addr, &token_of(node.addr));
    assert_eq!(
        official.status,
        303,
        "{}",
        String::from_utf8_lossy(&official.body)
    );
    assert_eq!(sign_in(node.addr, "jol_guess-once-more").status, 429);
    // Bearer tokens are another door, with their own budget.
    assert_eq!(get(node.addr, "/api/v1/session").status, 200);
    node.stop();
}

#[test]
fn sessions_beyond_the_cap_end_the_one_used_least_recently() {
    let dir = NodeDir::new("max_sessions = 2\n");
    let node = dir.start();
    let token = token_of(node.addr);
    let cookies: Vec<String> = (0..3)
        .map(|_| set_cookie(&sign_in(node.addr, &token)).0)
        .collect();
    // (Three sign-ins in a row are no flood: only refused ones spend the address's budget.)
    assert_eq!(
        session_with(node.addr, &cookies[0]),
        401,
        "the oldest ended"
    );
    assert_eq!(session_with(node.addr, &cookies[1]), 200);
    assert_eq!(session_with(node.addr, &cookies[2]), 200);
    node.stop();
}
