//! The disk under the store refuses writes. On a small tmpfs the disk fills up while a node is
//! publishing: it answers 503 naming the storage failure, `/readyz` says the store is failing,
//! nothing acknowledged is lost, and once space is freed it publishes again by itself. A store
//! directory that is read-only when the node starts is refused with an error naming it.
//!
//! These tests mount filesystems, so they need root (CI runs as root); elsewhere they fail,
//! saying so. `JOL_NO_MOUNTS=1` leaves them out, loudly (nothing sets it for you).

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::*;
use serde_json::{json, Value};

/// A mount that is undone when dropped.
struct Mount(PathBuf);

impl Mount {
    fn tmpfs(at: &Path, size: &str) -> Option<Mount> {
        needed(&format!("a {size} tmpfs"), || {
            mount(&["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"], at)?;
            Ok(Mount(at.to_path_buf()))
        })
    }

    fn read_only_bind(at: &Path) -> Option<Mount> {
        needed("a read-only bind mount", || {
            let dir = at.to_str().ok_or("the folder's name is not UTF-8")?;
            mount(&["--bind", dir], at)?;
            let m = Mount(at.to_path_buf());
            mount(&["-o", "remount,bind,ro"], at)?;
            Ok(m)
        })
    }
}

/// `mount ARGS at`, or what it said when it failed.
fn mount(args: &[&str], at: &Path) -> Result<(), String> {
    let out = Command::new("mount")
        .args(args)
        .arg(at)
        .output()
        .map_err(|e| format!("cannot run mount: {e}"))?;
    if out.status.success() {
        return Ok(());
    }
    Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
}

/// The mount a test needs; `None` only when `JOL_NO_MOUNTS` is set, which leaves the test out
/// and says so. A mount that fails otherwise fails the test, naming what it needs.
fn needed(what: &str, make: impl FnOnce() -> Result<Mount, String>) -> Option<Mount> {
    if std::env::var_os("JOL_NO_MOUNTS").is_some() {
        eprintln!("JOL_NO_MOUNTS is set: a test that needs {what} is NOT run");
        return None;
    }
    match make() {
        Ok(m) => Some(m),
        Err(e) => panic!(
            "this test needs {what}, and mounting needs root: run it as root (CI does), or set \
             JOL_NO_MOUNTS=1 to leave it out ({e})"
        ),
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// A node config whose store lives in `data` (absolute), on `engine`.
fn node_dir(data: &Path, engine: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let key = jol::event::keys::generate();
    jol::event::keys::write_private(&dir.path().join("sign.pem"), &key).unwrap();
    let config = dir.path().join("node.toml");
    std::fs::write(
        &config,
        format!(
            "member = \"{MEMBER}\"\ndata_dir = \"{}\"\nstore_engine = \"{engine}\"\n[signing]\nkey_file = \"sign.pem\"\nkey_name = \"sign-1\"\n[local]\nlisten = \"127.0.0.1:0\"\n",
            data.display()
        ),
    )
    .unwrap();
    let token =
        jol_tools::federation::operator_token(&dir.path().join("tokens.toml"), OPERATOR_PURPOSE)
            .unwrap();
    register_token(&config, &token);
    (dir, config)
}

fn publish_one(addr: std::net::SocketAddr, n: usize) -> std::io::Result<common::Answer> {
    let key = format!("case-{n}");
    post_json(
        addr,
        "/api/v1/events",
        &json!({"type": "employment-status", "data": employment_data(n, &key), "idempotencyKey": key}),
    )
}

/// Write zeros until the filesystem is full.
fn fill(path: &Path) {
    let mut f = std::fs::File::create(path).unwrap();
    let chunk = vec![0u8; 1 << 20];
    while f.write_all(&chunk).is_ok() {}
    let _ = f.sync_all();
}

#[test]
fn on_sled_a_full_disk_gets_503_and_publishing_resumes_when_space_returns() {
    full_disk("sled");
}

#[test]
fn on_redb_a_full_disk_gets_503_and_publishing_resumes_when_space_returns() {
    full_disk("redb");
}

fn full_disk(engine: &str) {
    let mountpoint = tempfile::tempdir().unwrap();
    let Some(_mount) = Mount::tmpfs(mountpoint.path(), "96m") else {
        return;
    };
    let data = mountpoint.path().join("data");
    let (_dir, config) = node_dir(&data, engine);
    let node = Node::start(&config);
    let mut acked: Vec<(usize, Value)> = Vec::new();
    for n in 0..50 {
        let a = publish_one(node.addr, n).unwrap();
        assert_eq!(a.status, 201);
        acked.push((n, a.json()["id"].clone()));
    }

    let filler = mountpoint.path().join("filler");
    fill(&filler);
    // Publish until the store refuses; each refusal is a 503 naming the storage failure.
    let mut refused = None;
    let mut n = 50;
    while n < 20_050 {
        let a = publish_one(node.addr, n).unwrap();
        match a.status {
            201 => acked.push((n, a.json()["id"].clone())),
            503 => {
                refused = Some(a.json());
                break;
            }
            s => panic!("unexpected {s}: {}", String::from_utf8_lossy(&a.body)),
        }
        n += 1;
    }
    let problem = refused.expect("a full disk never refused a write");
    assert_eq!(
        problem["type"].as_str().unwrap().rsplit('/').next(),
        Some("storage-unavailable"),
        "{problem}"
    );
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("No space left on device"),
        "the error does not say why: {problem}"
    );
    let ready = get(node.addr, "/readyz");
    assert_eq!(
        ready.status,
        503,
        "{}",
        String::from_utf8_lossy(&ready.body)
    );
    assert!(
        ready.json()["store"]["error"]
            .as_str()
            .unwrap_or("")
            .contains("No space left"),
        "{}",
        ready.json()
    );

    // Space returns: the same request (same idempotency key) goes through, then new ones.
    std::fs::remove_file(&filler).unwrap();
    let retried = n;
    assert!(
        eventually(Duration::from_secs(20), || publish_one(node.addr, retried)
            .is_ok_and(|a| a.status == 201 || a.status == 200))
        .is_some(),
        "publishing did not resume after space was freed"
    );
    acked.push((
        retried,
        publish_one(node.addr, retried).unwrap().json()["id"].clone(),
    ));
    for n in retried + 1..retried + 20 {
        let a = publish_one(node.addr, n).unwrap();
        assert_eq!(a.status, 201);
        acked.push((n, a.json()["id"].clone()));
    }
    assert_eq!(get(node.addr, "/readyz").status, 200);

    // Nothing acknowledged is lost, nothing is doubled, across a hard restart.
    node.kill();
    let node = Node::start(&config);
    let events = all_events(node.addr);
    for (i, e) in events.iter().enumerate() {
        assert_eq!(e["event"]["sequence"], (i + 1).to_string(), "gap at {i}");
    }
    let ids: std::collections::HashSet<&Value> = events.iter().map(|e| &e["event"]["id"]).collect();
    assert_eq!(ids.len(), events.len(), "an event is stored twice");
    for (n, id) in &acked {
        assert!(ids.contains(id), "acknowledged case-{n} is lost");
    }
    eprintln!(
        "{engine}: {} acknowledged before the disk filled, refused at case-{retried}, {} stored after recovery",
        retried - 50,
        events.len()
    );
    node.stop();
}

#[test]
fn a_read_only_store_directory_is_refused_at_start_with_its_path() {
    let data = tempfile::tempdir().unwrap();
    let Some(mount) = Mount::read_only_bind(data.path()) else {
        return;
    };
    let (_dir, config) = node_dir(&data.path().join("store"), "sled");
    let out = Command::new(env!("CARGO_BIN_EXE_jol"))
        .args(["serve", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("Read-only file system") && err.contains(&data.path().display().to_string()),
        "{err}"
    );
    drop(mount);
    // Writable again: the node starts.
    let node = Node::start(&config);
    assert_eq!(get(node.addr, "/healthz").status, 200);
    node.stop();
}
