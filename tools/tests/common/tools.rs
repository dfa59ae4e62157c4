//! The outside programs the tests call, found by one rule: first where `cargo xtask install`
//! puts them (its table is `xtask/src/tools.rs`): `target/tools/venv/bin` (the Python checkers,
//! at pinned versions), `target/tools/bin` (Go programs of ours); then on the `PATH`. Our Node
//! checkers (`tools/tests/node/`) run under the `node` so found, with the npm packages pinned
//! in `target/tools/npm`. A program that is missing fails the test with the command that
//! installs it; no test passes without the tool it needs.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// How to install the Python checkers.
const PYTHON_INSTALL: &str =
    "`cargo xtask install`, or `python3 -m pip install -r xtask/requirements.txt`";

/// How to install the npm packages the Node checkers load.
const NPM_INSTALL: &str = "`cargo xtask install`, or `npm ci` in a copy of xtask/npm \
                           at target/tools/npm";

/// `target/tools`, where `cargo xtask install` installs (`xtask/src/layout.rs` says so).
fn tools_folder() -> PathBuf {
    let target_tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    target_tmp.parent().unwrap_or(target_tmp).join("tools")
}

/// The folders `cargo xtask install` installs programs into.
fn installed() -> [PathBuf; 2] {
    let tools = tools_folder();
    [tools.join("venv/bin"), tools.join("bin")]
}

/// Where `program` is: where the xtask installs it, else on the `PATH`.
fn find(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    installed()
        .into_iter()
        .chain(std::env::split_paths(&path))
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
}

/// The `python3` [`find`] finds, once it has shown that it imports every one of `modules`
/// (e.g. `["jsonschema", "referencing"]`).
pub fn python(modules: &[&str]) -> Command {
    let needed = |why: String| -> ! {
        panic!(
            "Python with {} is needed for this test: {PYTHON_INSTALL} ({why})",
            modules.join(", ")
        )
    };
    let python = find("python3").unwrap_or_else(|| needed("no python3".into()));
    let probe = Command::new(&python)
        .args(["-c", &format!("import {}", modules.join(", "))])
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| needed(format!("{}: {e}", python.display())));
    if !probe.status.success() {
        let said = String::from_utf8_lossy(&probe.stderr);
        needed(format!("{}: {}", python.display(), said.trim()));
    }
    Command::new(python)
}

/// schemathesis, the OpenAPI checker.
pub fn schemathesis() -> Command {
    let found = find("schemathesis").unwrap_or_else(|| {
        panic!("schemathesis is needed for this test: {PYTHON_INSTALL}");
    });
    Command::new(found)
}

/// Debian's headless Chromium (or Chrome).
pub fn chromium() -> PathBuf {
    ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find_map(find)
        .unwrap_or_else(|| {
            panic!(
                "headless Chromium is needed for this test: `cargo xtask install` as root, or \
                 `apt-get install -y chromium`"
            )
        })
}

/// `node tools/tests/node/<script>`, one of our checkers built on npm packages, once `node` is
/// found and the packages `xtask/npm/package.json` pins are in `target/tools/npm` (the script
/// loads them from the folder `JOL_NPM_TOOLS` names).
pub fn node_checker(script: &str) -> Command {
    let npm = tools_folder().join("npm");
    let node = find("node").unwrap_or_else(|| {
        panic!("Node.js 20 or newer is needed for this test: `cargo xtask install` as root")
    });
    if !npm.join("node_modules").is_dir() {
        panic!(
            "the npm packages of xtask/npm are needed for this test, in {}: {NPM_INSTALL}",
            npm.display()
        );
    }
    let mut command = Command::new(node);
    command
        .arg(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/node")
                .join(script),
        )
        .env("JOL_NPM_TOOLS", npm);
    command
}

/// `noteverify <vkeys> < note`: our Go program on `golang.org/x/mod/sumdb/note`
/// (`tools/tests/go/noteverify`) verifies the signed note with Go's own note package, requiring a
/// verified signature by every key given (type 0x01 note keys and type 0x04 cosigners). Whether
/// it verified, and what it said: its output when it did (the note text, then `verified: <name>`
/// for each signature), its error when it did not.
pub fn noteverify(vkeys: &[&str], note: &str) -> (bool, String) {
    let found = find("noteverify").unwrap_or_else(|| {
        panic!(
            "noteverify is needed for this test: `cargo xtask install` (as root for Debian's \
             golang-go and golang-golang-x-mod-dev, which build it offline)"
        )
    });
    let mut child = Command::new(found)
        .args(vkeys)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("noteverify runs");
    let mut stdin = child.stdin.take().expect("a pipe");
    stdin.write_all(note.as_bytes()).expect("noteverify reads");
    drop(stdin);
    let out = child.wait_with_output().expect("noteverify ends");
    let said = if out.status.success() {
        out.stdout
    } else {
        out.stderr
    };
    (
        out.status.success(),
        String::from_utf8_lossy(&said).into_owned(),
    )
}
