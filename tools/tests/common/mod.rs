//! Test helpers: a `jol serve` child process on a loopback port chosen at run time, with a real
//! store in a temporary folder (the default engine, or `JOL_TEST_ENGINE`), and a minimal
//! blocking HTTP client.
//!
//! Every node built here has an operator token (scope admin). The helpers remember which token
//! belongs to which node (by config file, then by address once the node runs), and [`request`]
//! presents it unless the caller sends its own `Authorization`; [`anonymous`] sends none.
#![allow(dead_code)]

pub mod browser;
pub mod fake;
pub mod note;
pub mod tlog;
pub mod tools;
pub mod traces;
pub mod truth;
pub mod witness;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;

/// The operator token of each node: by config file, and by local address once it runs.
static TOKENS: std::sync::Mutex<Option<HashMap<String, String>>> = std::sync::Mutex::new(None);

fn remember(key: String, token: &str) {
    TOKENS
        .lock()
        .unwrap()
        .get_or_insert_with(HashMap::new)
        .insert(key, token.to_string());
}

fn recall(key: &str) -> Option<String> {
    TOKENS.lock().unwrap().as_ref()?.get(key).cloned()
}

/// Use `token` for the node of `config` (e.g. a folder `jol demo` laid out).
pub fn register_token(config: &Path, token: &str) {
    remember(config.display().to_string(), token);
}

/// The operator token of the node listening on `addr`.
pub fn token_of(addr: SocketAddr) -> String {
    recall(&addr.to_string()).expect("no token is known for this node")
}

/// The store engine test nodes are created with: `JOL_TEST_ENGINE` (`redb` or `sled`), else the
/// default engine. `cargo xtask test` runs the hostile and verifiable-log tests once more on sled.
pub fn test_engine() -> String {
    std::env::var("JOL_TEST_ENGINE").unwrap_or_else(|_| jol::store::Engine::default().to_string())
}

/// The purpose of a lone test node's operator token.
pub const OPERATOR_PURPOSE: &str = "EMPLOYMENT_SERVICES";

pub const MEMBER: &str = "central-server/GOV/70000002/employment";

/// A node folder: key and config, reusable across restarts.
pub struct NodeDir {
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
}

impl NodeDir {
    pub fn new(extra_local: &str) -> NodeDir {
        let dir = tempfile::tempdir().unwrap();
        let key = jol::event::keys::generate();
        jol::event::keys::write_private(&dir.path().join("sign.pem"), &key).unwrap();
        jol::event::keys::write_public(&dir.path().join("sign.pub.pem"), &key.verifying_key())
            .unwrap();
        let config = dir.path().join("node.toml");
        std::fs::write(
            &config,
            format!(
                "member = \"{MEMBER}\"\ndata_dir = \"data\"\nstore_engine = \"{}\"\n[signing]\nkey_file = \"sign.pem\"\nkey_name = \"sign-1\"\n[local]\nlisten = \"127.0.0.1:0\"\n{extra_local}",
                test_engine()
            ),
        )
        .unwrap();
        let token = jol_tools::federation::operator_token(
            &dir.path().join("tokens.toml"),
            OPERATOR_PURPOSE,
        )
        .unwrap();
        register_token(&config, &token);
        NodeDir { dir, config }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Append sections (e.g. `[sync]` settings) to the node's config.
    pub fn append_config(&self, text: &str) {
        let config = std::fs::read_to_string(&self.config).unwrap() + text;
        std::fs::write(&self.config, config).unwrap();
    }

    pub fn start(&self) -> Node {
        Node::start(&self.config)
    }
}

/// A running `jol serve`.
pub struct Node {
    child: Child,
    pub addr: SocketAddr,
    /// The X-Road provider face, when the node has one.
    pub xroad: Option<SocketAddr>,
}

impl Node {
    pub fn start(config: &Path) -> Node {
        Node::launch(config, "error", Stdio::inherit())
    }

    /// Start with `RUST_LOG` = `filter`, keeping what the node logs (to check what it says).
    pub fn start_logged(config: &Path, filter: &str) -> (Node, Log) {
        let mut node = Node::launch(config, filter, Stdio::piped());
        let stderr = node.child.stderr.take().unwrap();
        (node, Log::collect(stderr))
    }

    fn launch(config: &Path, filter: &str, stderr: Stdio) -> Node {
        let mut child = Command::new(env!("CARGO_BIN_EXE_jol"))
            .args(["serve", "--config"])
            .arg(config)
            .env("RUST_LOG", filter)
            .env("NO_COLOR", "1")
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("start jol serve");
        let stdout = child.stdout.take().unwrap();
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).unwrap();
        let v: Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("node did not report its address ({e}): {line:?}"));
        let addr: SocketAddr = v["listening"]["local"].as_str().unwrap().parse().unwrap();
        if let Some(token) = recall(&config.display().to_string()) {
            remember(addr.to_string(), &token);
        }
        let xroad = v["listening"]["xroad"].as_str().map(|a| a.parse().unwrap());
        Node { child, addr, xroad }
    }

    /// SIGKILL: no chance to flush or clean up.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM and wait for a clean exit.
    pub fn stop(mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let status = self.child.wait().unwrap();
        assert!(status.success(), "node exited with {status}");
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Send a signal (`STOP`, `CONT`, …) to the process.
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success(), "kill -{name} failed");
    }

    /// Wait up to `limit` for the process to exit by itself; its status, if it did.
    pub fn exited_within(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let start = std::time::Instant::now();
        while start.elapsed() < limit {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

/// What a process wrote to a pipe so far, collected line by line as it writes.
#[derive(Clone, Default)]
pub struct Log(Arc<Mutex<Vec<String>>>);

impl Log {
    fn collect(from: impl Read + Send + 'static) -> Log {
        let log = Log::default();
        let lines = log.0.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(from).lines().map_while(Result::ok) {
                lines.lock().unwrap().push(line);
            }
        });
        log
    }

    /// The lines that contain `text`.
    pub fn lines_with(&self, text: &str) -> Vec<String> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.contains(text))
            .cloned()
            .collect()
    }

    pub fn text(&self) -> String {
        self.0.lock().unwrap().join("\n")
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A running `jol xroad-standin` (a stand-in security server).
pub struct StandInProcess {
    child: Child,
    /// Where the member's own systems call it.
    pub consumers: SocketAddr,
}

impl StandInProcess {
    pub fn start(config: &Path) -> StandInProcess {
        let mut child = Command::new(env!("CARGO_BIN_EXE_jol"))
            .args(["xroad-standin", "--config"])
            .arg(config)
            .env("RUST_LOG", "error")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start jol xroad-standin");
        let stdout = child.stdout.take().unwrap();
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).unwrap();
        let v: Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("the stand-in did not report its address ({e}): {line:?}"));
        let consumers = v["listening"]["consumers"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        StandInProcess { child, consumers }
    }

    /// SIGKILL.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for StandInProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An HTTP answer.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: String,
    pub body: Vec<u8>,
}

impl Answer {
    /// The value of header `name` (case-insensitive), if the answer has it.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.lines().find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }
}

/// Send one raw request (the caller writes headers) and read the answer.
pub fn raw(addr: SocketAddr, request: &[u8]) -> std::io::Result<Answer> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    // A server may answer early (a 413 on the declared length) and close before the whole
    // body is written: the answer it sent is still read.
    if let Err(e) = s.write_all(request) {
        if !matches!(
            e.kind(),
            std::io::ErrorKind::BrokenPipe | std::io::ErrorKind::ConnectionReset
        ) {
            return Err(e);
        }
    }
    let mut buf = Vec::new();
    if let Err(e) = s.read_to_end(&mut buf) {
        if buf.is_empty() || e.kind() != std::io::ErrorKind::ConnectionReset {
            return Err(e);
        }
    }
    let split = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| std::io::Error::other("no header end"))?;
    let headers = String::from_utf8_lossy(&buf[..split]).to_string();
    let status = headers
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other("no status"))?;
    Ok(Answer {
        status,
        headers,
        body: buf[split + 4..].to_vec(),
    })
}

/// One request with the node's operator token (unless `headers` carry an `Authorization`).
pub fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<Answer> {
    let own = headers
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case("authorization"));
    let bearer = recall(&addr.to_string())
        .filter(|_| !own)
        .map(|t| format!("Bearer {t}"));
    let mut all = headers.to_vec();
    if let Some(b) = &bearer {
        all.push(("Authorization", b));
    }
    anonymous(addr, method, path, &all, body)
}

/// One request with only the headers given (no token added).
pub fn anonymous(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<Answer> {
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    let mut bytes = req.into_bytes();
    bytes.extend_from_slice(body);
    raw(addr, &bytes)
}

pub fn get(addr: SocketAddr, path: &str) -> Answer {
    request(addr, "GET", path, &[], b"").unwrap()
}

/// Check `answer` against the component schema `name` of the node's own OpenAPI description
/// with Python's jsonschema (a 2020-12 validator we did not write, with its format checks);
/// panics naming each field that does not match.
pub fn described_by_openapi(addr: SocketAddr, name: &str, answer: &serde_json::Value) {
    use std::io::Write;
    const SCRIPT: &str = r#"
import json, sys
from jsonschema import Draft202012Validator
schema, instance = json.load(sys.stdin)
v = Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)
errors = ["/" + "/".join(map(str, e.absolute_path)) + ": " + e.message for e in v.iter_errors(instance)]
print("\n".join(errors))
sys.exit(1 if errors else 0)
"#;
    let doc = get(addr, "/openapi.json").json();
    let schema = &doc["components"]["schemas"][name];
    assert!(schema.is_object(), "the description has no schema {name}");
    let mut child = tools::python(&["jsonschema"])
        .args(["-c", SCRIPT])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let input = serde_json::json!([schema, answer]).to_string();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "the answer does not match the description's {name}:\n{}{}\n{answer}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A GET with `token` instead of the node's operator token.
pub fn as_token(addr: SocketAddr, token: &str, path: &str) -> Answer {
    let bearer = format!("Bearer {token}");
    request(addr, "GET", path, &[("Authorization", &bearer)], b"").unwrap()
}

/// A token for the node of `config`, made with `jol token create`.
pub fn create_token(config: &Path, name: &str, scopes: &str, purpose: &str) -> String {
    let config = config.to_str().unwrap();
    let args = ["token", "--config", config, "create", "--name", name];
    jol(args
        .into_iter()
        .chain(["--scopes", scopes, "--purpose", purpose]))
    .trim()
    .to_string()
}

/// One HTTP/1.1 request read from `reader` (a test's stand-in receiver): its body, or `None`
/// when the connection ended.
pub fn read_request(reader: &mut impl std::io::BufRead) -> Option<Vec<u8>> {
    let mut line = String::new();
    if reader.read_line(&mut line).unwrap_or(0) == 0 {
        return None;
    }
    let mut len = 0;
    loop {
        let mut h = String::new();
        reader.read_line(&mut h).ok()?;
        if h == "\r\n" || h.is_empty() {
            break;
        }
        if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
            len = v.trim().parse().ok()?;
        }
    }
    let mut body = vec![0; len];
    reader.read_exact(&mut body).ok()?;
    Some(body)
}

/// The value of the metric whose line starts with `line_start` (name and labels, then a
/// space) in a `/metrics` text; none if it is not there or not a number.
pub fn metric_in(text: &str, line_start: &str) -> Option<u64> {
    jol_tools::bench::metric_in(text, line_start)
}

/// [`metric_in`] the node's `/metrics` now.
pub fn metric(addr: SocketAddr, line_start: &str) -> Option<u64> {
    metric_in(
        &String::from_utf8(get(addr, "/metrics").body).unwrap(),
        line_start,
    )
}

pub fn post_json(addr: SocketAddr, path: &str, body: &Value) -> std::io::Result<Answer> {
    request(
        addr,
        "POST",
        path,
        &[("Content-Type", "application/json")],
        body.to_string().as_bytes(),
    )
}

/// A valid employment-status document for person `i`, tagged with `case` (as caseRef).
pub fn employment_data(i: usize, case: &str) -> Value {
    let mut d = jol_tools::synthetic::sample_data(i);
    d["caseRef"] = case.into();
    d
}

/// Every event the node's local feed holds that the operator's token may read, in order
/// (placeholders of events its purpose may not be served are left out).
pub fn all_events(addr: SocketAddr) -> Vec<Value> {
    let mut after = 0;
    let mut out = Vec::new();
    loop {
        let page = get(addr, &format!("/api/v1/events?after={after}&limit=1000")).json();
        let events = page["events"].as_array().unwrap().clone();
        if events.is_empty() {
            return out;
        }
        after = page["next"].as_u64().unwrap();
        out.extend(events.into_iter().filter(|e| e.get("withheld").is_none()));
    }
}

/// The repository's root: the schemas, their examples (`tests/examples`) and the operator's
/// scripts are there, beside the node's package (these tests are jol-tools').
pub fn repo() -> PathBuf {
    let tools = Path::new(env!("CARGO_MANIFEST_DIR"));
    tools.parent().unwrap_or(tools).to_path_buf()
}

pub fn example(t: &str, name: &str) -> Value {
    let p = repo()
        .join("tests/examples")
        .join(t)
        .join("valid")
        .join(name);
    serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
}

pub const MIGRATION: &str = "central-server/GOV/70000001/migration";
pub const EMPLOYMENT: &str = "central-server/GOV/70000002/employment";
pub const EDUCATION: &str = "central-server/GOV/70000003/education";

/// A number from the environment (`JOL_CRASH_ROUNDS`, a seed to replay…), if set and valid.
pub fn env_number<T: std::str::FromStr>(name: &str) -> Option<T> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

/// Free loopback ports, chosen at run time outside the kernel's ephemeral range (so no
/// outgoing connection takes one before the node binds it).
pub fn free_ports(n: usize) -> Vec<u16> {
    (0..n)
        .map(|_| jol::ports::free_loopback().unwrap().port())
        .collect()
}

/// The registry views of these people, as one node answers them (404s included).
pub fn views(addr: SocketAddr, pins: &[String]) -> Vec<Value> {
    pins.iter()
        .map(|p| {
            let path = format!("/api/v1/persons/{p}?asOf=2025-06-30");
            // 503 views-behind while a restarted node projects its views again (after a power
            // loss cut their file short): asked again until they hold the log.
            let a = eventually_some(Duration::from_secs(60), || {
                let a = get(addr, &path);
                (a.status != 503).then_some(a)
            })
            .expect("the views are whole again within a minute");
            if a.status == 404 {
                Value::Null
            } else {
                a.json()
            }
        })
        .collect()
}

/// The PIN of synthetic person `n`, valid and distinct at any scale a test reaches.
pub fn pin(n: usize) -> String {
    jol_tools::synthetic::pin(n as u64)
}

/// The example federation of three agencies, laid out by `jol_tools::federation` (the builder the
/// demo and the benchmarks use), on ports chosen at run time.
pub struct Federation {
    /// The PostgreSQL cluster of a federation on `postgres` stores (stopped when dropped).
    pub pg: Option<throwaway_pg::Cluster>,
    pub dir: tempfile::TempDir,
    pub laid: Vec<jol_tools::federation::LaidOut>,
    pub local: HashMap<&'static str, u16>,
    pub peer: HashMap<&'static str, u16>,
}

use std::collections::HashMap;

pub const AGENCIES: [&str; 3] = ["migration", "employment", "education"];

impl Federation {
    pub fn build() -> Federation {
        Federation::build_with("min_backoff_ms = 50\nmax_backoff_ms = 400\nwait_secs = 5")
    }

    /// The federation with these lines in every node's `[sync]` section.
    pub fn build_with(sync: &str) -> Federation {
        Federation::build_on(&test_engine(), sync)
    }

    /// The federation with nodes on store `engine` (`sled`, `redb`, or `postgres`: a database
    /// per member in a throwaway cluster).
    pub fn build_on(engine: &str, sync: &str) -> Federation {
        Federation::build_planned(engine, sync, |_| {})
    }

    /// The federation with nodes on store `engine`, its plan changed by `edit` first (the
    /// fields a reader is granted, say).
    pub fn build_planned(
        engine: &str,
        sync: &str,
        edit: impl FnOnce(&mut jol_tools::federation::FederationPlan),
    ) -> Federation {
        let dir = tempfile::tempdir().unwrap();
        let mut plan = jol_tools::federation::three_agencies().unwrap();
        edit(&mut plan);
        plan.engine = engine.parse().unwrap();
        let pg = (plan.engine == jol::store::Engine::Postgres).then(|| {
            jol_tools::federation::on_throwaway_postgres(&mut plan)
                .unwrap_or_else(|e| panic!("PostgreSQL is needed for this test ({e}): `cargo xtask install` as root, or `apt-get install -y postgresql`"))
        });
        plan.sync = toml::from_str(sync).unwrap();
        let laid = jol_tools::federation::create(dir.path(), &plan).unwrap();
        for l in &laid {
            register_token(&l.config, &l.operator_token);
        }
        let ports = |port: fn(&jol_tools::federation::MemberPlan) -> u16| {
            AGENCIES
                .iter()
                .map(|a| {
                    let m = plan.members.iter().find(|m| m.folder == *a).unwrap();
                    (*a, port(m))
                })
                .collect()
        };
        Federation {
            pg,
            laid,
            local: ports(|m| m.local_listen.port()),
            peer: ports(|m| m.peer_listen.port()),
            dir,
        }
    }

    pub fn config(&self, agency: &str) -> PathBuf {
        self.dir.path().join(agency).join("node.toml")
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// Migration's signing key and the key id the manifest registers it under, to sign events
    /// as migration would (for a fake publisher on its endpoint).
    pub fn migration_signer(&self) -> (ed25519_dalek::SigningKey, String) {
        let key = jol::event::keys::read_private(&self.path("migration/keys/sign.pem")).unwrap();
        (key, format!("{MIGRATION}#sign-1"))
    }

    pub fn start(&self, agency: &str) -> Node {
        Node::start(&self.config(agency))
    }

    /// Put every member behind a stand-in X-Road security server (subscriptions go `via` it).
    pub fn behind_xroad(&self) -> Vec<jol_tools::behind_xroad::StandInLaidOut> {
        jol_tools::behind_xroad::behind_standins(self.dir.path(), &self.laid).unwrap()
    }

    /// Run a `jol authority` command against this federation's authority.
    pub fn authority(&self, args: &[&str]) {
        let dir = self.path("authority");
        let head = [
            std::ffi::OsStr::new("authority"),
            "--dir".as_ref(),
            dir.as_os_str(),
        ];
        jol(head
            .into_iter()
            .chain(args.iter().map(std::ffi::OsStr::new)));
    }
}

/// Run the `jol` binary with `args`; panics with its stderr unless it succeeds. Returns stdout.
pub fn jol<I, S>(args: I) -> String
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    let args: Vec<std::ffi::OsString> = args.into_iter().map(|a| a.as_ref().into()).collect();
    let out = jol_output(&args);
    assert!(
        out.status.success(),
        "jol {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Run the `jol` binary with `args` to its end, whether it succeeds or not: what it exited
/// with and said.
pub fn jol_output<I, S>(args: I) -> std::process::Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    Command::new(env!("CARGO_BIN_EXE_jol"))
        .args(args)
        .output()
        .unwrap()
}

/// Start a node from async code (the start blocks until it reports its address).
pub async fn start_async(config: PathBuf) -> Node {
    tokio::task::spawn_blocking(move || Node::start(&config))
        .await
        .unwrap()
}

/// Poll `f` every 20 ms until it returns true or `limit` passes; returns the time it took.
/// What `f` gives first within `limit` (polled every 20 ms), if anything.
pub fn eventually_some<T>(limit: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let start = std::time::Instant::now();
    while start.elapsed() < limit {
        if let Some(t) = f() {
            return Some(t);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

pub fn eventually(limit: Duration, mut f: impl FnMut() -> bool) -> Option<Duration> {
    let start = std::time::Instant::now();
    while start.elapsed() < limit {
        if f() {
            return Some(start.elapsed());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

/// Publish a synthetic population through the agencies' local APIs (`agency → address`).
pub fn publish_population(
    pop: &jol_tools::synthetic::population::Population,
    local: &HashMap<String, SocketAddr>,
    limit: Duration,
) {
    let endpoints = local
        .iter()
        .map(|(agency, addr)| {
            let endpoint = jol::net::client::Endpoint {
                addr: *addr,
                token: token_of(*addr),
            };
            (agency.clone(), endpoint)
        })
        .collect();
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(jol_tools::synthetic::loadgen::publish(
            pop,
            &endpoints,
            limit,
            |_, _| {},
        ))
        .unwrap();
}

/// Wait up to 10 s for the event `id` from `source` to be in the node's local feed.
pub fn arrives(addr: SocketAddr, source: &str, id: &str) -> bool {
    eventually(Duration::from_secs(10), || {
        events_from(addr, source)
            .iter()
            .any(|e| e["event"]["id"] == id)
    })
    .is_some()
}

/// `text` with the character at byte `at` changed (an `A` becomes `B`, anything else `A`).
pub fn flip_char(text: &str, at: usize) -> String {
    text.char_indices()
        .map(|(i, c)| match (i == at, c) {
            (true, 'A') => 'B',
            (true, _) => 'A',
            (false, c) => c,
        })
        .collect()
}

/// Events in a node's local feed whose source is `source`.
pub fn events_from(addr: SocketAddr, source: &str) -> Vec<Value> {
    all_events(addr)
        .into_iter()
        .filter(|e| e["event"]["source"] == source)
        .collect()
}

/// Wait (up to a minute) until `addr` holds at least `n` events from `source`, let late writes
/// settle, and return them as stored; `what` names who never got them all.
pub fn wait_for_events(addr: SocketAddr, source: &str, n: usize, what: &str) -> Vec<Value> {
    assert!(
        eventually(Duration::from_secs(60), || events_from(addr, source).len()
            >= n)
        .is_some(),
        "{what} never got all of {source}'s events"
    );
    std::thread::sleep(Duration::from_millis(300));
    wait_for_views(addr);
    events_from(addr, source)
}

/// Wait (up to 15 s) until the projector of `addr` has taken every event the node holds into
/// the views (it follows the log a moment behind the writer).
pub fn wait_for_views(addr: SocketAddr) {
    assert!(
        eventually(Duration::from_secs(15), || {
            let views = &get(addr, "/readyz").json()["views"];
            views["behind"].as_u64() == Some(0) && views["erasuresPending"].as_u64() == Some(0)
        })
        .is_some(),
        "the views of {addr} never caught up with its log"
    );
}

/// Events in sequence order (a subscriber stores released events when consent comes, so not in
/// sequence order).
pub fn in_sequence_order(mut events: Vec<Value>) -> Vec<Value> {
    events.sort_by_key(|e| {
        e["event"]["sequence"]
            .as_str()
            .and_then(|s| s.parse::<u64>().ok())
    });
    events
}

/// The ids of events as a node lists them, in that order.
pub fn event_ids(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| e["event"]["id"].as_str().unwrap().to_string())
        .collect()
}

/// The reasons of a `/api/v1/quarantine` answer's records, in order.
pub fn quarantine_reasons(quarantine: &Value) -> Vec<&str> {
    quarantine["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["reason"].as_str().unwrap())
        .collect()
}

/// A returnee record for a PIN with consent to `recipients` for `purposes`.
pub fn returnee(pin: &str, recipients: &[&str], purposes: &[&str]) -> Value {
    let mut d = example("returnee-record", "return-registered.json");
    d["person"] = serde_json::json!({"pin": pin});
    d["consent"]["recipients"] = serde_json::json!(recipients);
    d["consent"]["purposes"] = serde_json::json!(purposes);
    d
}

pub fn publish(addr: SocketAddr, t: &str, data: &Value) -> Value {
    let a = post_event(addr, t, data);
    assert_eq!(a.status, 201, "{}", String::from_utf8_lossy(&a.body));
    a.json()
}

/// Publish what the node must refuse as invalid (422, and kept in its quarantine).
pub fn publish_refused(addr: SocketAddr, t: &str, data: &Value) {
    let a = post_event(addr, t, data);
    assert_eq!(a.status, 422, "{}", String::from_utf8_lossy(&a.body));
}

fn post_event(addr: SocketAddr, t: &str, data: &Value) -> Answer {
    post_json(
        addr,
        "/api/v1/events",
        &serde_json::json!({"type": t, "data": data}),
    )
    .unwrap()
}

/// Publish and return the new event's id.
pub fn publish_id(addr: SocketAddr, t: &str, data: &Value) -> String {
    publish(addr, t, data)["id"].as_str().unwrap().to_string()
}

/// A publishing client that retries each event with the same idempotency key until the node
/// acknowledges it, whatever happens to the node in between.
pub struct Publisher {
    pub addr: SocketAddr,
    /// idempotency key → event id, for every 201 (or 200 on a retry that was already stored).
    pub acked: Arc<Mutex<HashMap<String, String>>>,
}

impl Publisher {
    pub fn publish_until_acked(&self, key: &str, body: &Value) {
        self.publish_until_acked_anywhere(&[self.addr], key, body)
    }

    /// The same, trying each of `addrs` in turn (replicas of one member: a standby refuses with
    /// 503, and so does a replica on its way down).
    pub fn publish_until_acked_anywhere(&self, addrs: &[SocketAddr], key: &str, body: &Value) {
        for turn in 0.. {
            let addr = addrs[turn % addrs.len()];
            match post_json(addr, "/api/v1/events", body) {
                Ok(a) if a.status == 201 || a.status == 200 => {
                    let id = a.json()["id"].as_str().unwrap().to_string();
                    let previous = self
                        .acked
                        .lock()
                        .unwrap()
                        .insert(key.to_string(), id.clone());
                    if let Some(p) = previous {
                        assert_eq!(p, id, "a retry of {key} got a different event");
                    }
                    return;
                }
                Ok(a) if a.status >= 500 => {}
                Ok(a) => panic!("{key}: {} {}", a.status, String::from_utf8_lossy(&a.body)),
                Err(_) => {}
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Every event from `source` appears once, sequences run 1..=n, and every acknowledged
/// idempotency key maps to exactly the event id it was given. Returns the ids in order.
pub fn check_exactly_once(
    events: &[Value],
    acked: &HashMap<String, String>,
    source: &str,
) -> Vec<String> {
    let ids = event_ids(events);
    for (i, e) in events.iter().enumerate() {
        assert_eq!(
            e["event"]["sequence"],
            (i + 1).to_string(),
            "{source}: gap or disorder at {i}"
        );
    }
    let mut unique = ids.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(
        unique.len(),
        ids.len(),
        "{source}: an event is stored twice"
    );
    for (key, id) in acked {
        assert!(
            unique.binary_search(id).is_ok(),
            "{source}: acknowledged {key} ({id}) is lost"
        );
    }
    assert_eq!(
        ids.len(),
        acked.len(),
        "{source}: stored events that no client holds a key for"
    );
    ids
}
