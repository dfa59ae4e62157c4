//! `cargo xtask`: the project's own commands, in Rust, through the alias in
//! `.cargo/config.toml` (`run --package xtask --`).
//!
//! - `cargo xtask test`: install what the test suite calls from outside (the one table in
//!   `tools.rs`: Debian packages when run as root; into `target/tools`, the Python checkers at
//!   the versions `xtask/requirements.txt` pins, the npm packages `xtask/npm/package-lock.json`
//!   pins, and Go programs of ours when a test calls them), then run the whole suite. This is the README's test command, and
//!   `.ci/run` runs exactly it.
//! - `cargo xtask test ARGS`: install the same, then only `cargo test ARGS` (for example
//!   `cargo xtask test --test contract`).
//! - `cargo xtask install`: install only.
//!
//! What is present is not installed again: a second run says there is nothing to install. The
//! tests run with the folders of `target/tools` first on the `PATH`; plain `cargo test` finds
//! the same tools there itself (`tools/tests/common/tools.rs`).

mod command;
mod install;
mod layout;
mod tools;

use std::ffi::OsString;
use std::fmt;
use std::process::{Command, ExitCode};

use layout::Layout;

const USAGE: &str = "usage: cargo xtask test [CARGO TEST ARGS] | cargo xtask install";

/// Why a command of the xtask failed.
#[derive(Debug)]
enum Error {
    /// The checkout's folders could not be found.
    Layout(std::io::Error),
    /// The outside tools could not be installed.
    Install(install::Error),
    /// A test run failed.
    Tests(command::Failed),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Layout(e) => write!(f, "cannot find this checkout's target folder: {e}"),
            Error::Install(e) => write!(f, "{e}"),
            Error::Tests(failed) => write!(f, "{failed}"),
        }
    }
}

fn main() -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    let result = match args.split_first() {
        Some((command, rest)) if command.to_str() == Some("test") => test(rest),
        Some((command, [])) if command.to_str() == Some("install") => install().map(drop),
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Install what is missing, and say what was done.
fn install() -> Result<Layout, Error> {
    let layout = Layout::of_this_checkout().map_err(Error::Layout)?;
    match install::ensure(&layout).map_err(Error::Install)? {
        install::Outcome::NothingToInstall => println!(
            "xtask: nothing to install: the {} outside tools the tests call are present",
            tools::TOOLS.len()
        ),
        install::Outcome::Installed(what) => {
            println!("xtask: installed what was missing ({})", what.len())
        }
    }
    Ok(layout)
}

/// Install what is missing, then run the whole suite, or `cargo test args` when given.
fn test(args: &[OsString]) -> Result<(), Error> {
    let layout = install()?;
    let runs = if args.is_empty() {
        whole_suite()
    } else {
        let mut only = cargo();
        only.arg("test").args(args);
        vec![only]
    };
    for mut run in runs {
        run.current_dir(&layout.root)
            .env("PATH", layout.path_with_tools());
        println!("xtask: {}", command::line(&run));
        command::run(&mut run).map_err(Error::Tests)?;
    }
    Ok(())
}

/// The whole suite, as CI runs it.
fn whole_suite() -> Vec<Command> {
    let mut all = cargo();
    all.arg("test");
    let mut xtask = cargo();
    xtask.args(["test", "--package", "xtask"]);
    // The hostile, consent, privacy and verifiable-log tests once more on the other engine (the
    // crash loop and the full-disk test already run on both).
    let mut on_sled = cargo();
    on_sled
        .args([
            "test",
            "--test",
            "federation_hostile",
            "--test",
            "consent_paths",
            "--test",
            "privacy",
            "--test",
            "verifiable_log",
        ])
        .env("JOL_TEST_ENGINE", "sled");
    vec![all, xtask, on_sled]
}

/// The cargo on the `PATH` (under rustup, the toolchain that runs us: rustup passes it on in
/// `RUSTUP_TOOLCHAIN`).
fn cargo() -> Command {
    Command::new("cargo")
}
