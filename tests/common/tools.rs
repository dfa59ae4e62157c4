//! The outside programs the tests call, found by one rule: first where `cargo xtask install`
//! puts them (its table is `xtask/src/tools.rs`): `target/tools/venv/bin` (the Python checkers,
//! at pinned versions), `target/tools/bin` (Go programs of ours); then on the `PATH`. A program
//! that is missing fails the test with the command that installs it; no test passes without
//! the tool it needs.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// How to install the Python checkers.
const PYTHON_INSTALL: &str =
    "`cargo xtask install`, or `python3 -m pip install -r xtask/requirements.txt`";

/// The folders `cargo xtask install` installs programs into (`xtask/src/layout.rs` says so).
fn installed() -> [PathBuf; 2] {
    let target_tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let tools = target_tmp.parent().unwrap_or(target_tmp).join("tools");
    [tools.join("venv/bin"), tools.join("bin")]
}

/// Every `program` there is, in the order searched: where the xtask installs, then the `PATH`.
fn candidates(program: &str) -> impl Iterator<Item = PathBuf> + '_ {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let dirs: Vec<PathBuf> = installed()
        .into_iter()
        .chain(std::env::split_paths(&path))
        .collect();
    dirs.into_iter()
        .map(move |dir| dir.join(program))
        .filter(|candidate| candidate.is_file())
}

/// A Python that imports every one of `modules` (e.g. `["jsonschema", "referencing"]`): the
/// first `python3` found that does.
pub fn python(modules: &[&str]) -> Command {
    let imports = format!("import {}", modules.join(", "));
    let found = candidates("python3").find(|python| {
        Command::new(python)
            .args(["-c", &imports])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    });
    let python = found.unwrap_or_else(|| {
        panic!(
            "Python with {} is needed for this test: {PYTHON_INSTALL}",
            modules.join(", ")
        )
    });
    Command::new(python)
}

/// schemathesis, the OpenAPI checker.
pub fn schemathesis() -> Command {
    let found = candidates("schemathesis").next().unwrap_or_else(|| {
        panic!("schemathesis is needed for this test: {PYTHON_INSTALL}");
    });
    Command::new(found)
}

/// Debian's headless Chromium (or Chrome).
pub fn chromium() -> PathBuf {
    ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find_map(|name| candidates(name).next())
        .unwrap_or_else(|| {
            panic!(
                "headless Chromium is needed for this test: `cargo xtask install` as root, or \
                 `apt-get install -y chromium`"
            )
        })
}
