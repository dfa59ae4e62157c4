//! Installing the tools [`tools::missing`] lists, by where they come from: Debian packages with
//! `apt-get`, as root only (otherwise the error is the exact command to run as root); the
//! Python checkers into a fresh virtual environment, `target/tools/venv`, from the pinned
//! requirements file. What is present is left alone, so a second run installs nothing.

use std::fmt;
use std::process::{Command, Stdio};

use crate::command::{self, Failed};
use crate::layout::Layout;
use crate::tools::{self, Source};

/// Why the tools could not be installed.
#[derive(Debug)]
pub enum Error {
    /// Debian packages are missing and only root may install them.
    NotRoot {
        /// The command that installs them, to run as root.
        command: String,
    },
    /// An installing command failed.
    Command(Failed),
    /// The virtual environment was built but could not be marked as built.
    Io(std::io::Error),
    /// Installed, yet these are still not present.
    StillMissing(Vec<&'static str>),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::NotRoot { command } => write!(
                f,
                "Debian packages the tests need are missing, and only root may install them; \
                 run as root, then again:\n  {command}"
            ),
            Error::Command(failed) => write!(f, "{failed}"),
            Error::Io(e) => write!(f, "cannot mark the virtual environment as built: {e}"),
            Error::StillMissing(what) => {
                write!(f, "still missing after installing: {}", what.join("; "))
            }
        }
    }
}

impl From<Failed> for Error {
    fn from(failed: Failed) -> Error {
        Error::Command(failed)
    }
}

/// What [`ensure`] did.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Everything was present.
    NothingToInstall,
    /// These were missing and are now installed.
    Installed(Vec<&'static str>),
}

/// Install every tool that is missing, Debian's first (the virtual environment needs Python's
/// `venv`), then check that all are present.
pub fn ensure(layout: &Layout) -> Result<Outcome, Error> {
    let missing = tools::missing(layout);
    if missing.is_empty() {
        return Ok(Outcome::NothingToInstall);
    }
    for tool in &missing {
        println!("xtask: missing {}", tool.what);
    }
    let packages: Vec<&str> = missing
        .iter()
        .filter_map(|t| match t.source {
            Source::Debian(package) => Some(package),
            Source::Pip => None,
        })
        .collect();
    if !packages.is_empty() {
        debian(&packages, is_root())?;
    }
    if missing.iter().any(|t| t.source == Source::Pip) {
        python(layout)?;
    }
    let still: Vec<&str> = tools::missing(layout).iter().map(|t| t.what).collect();
    if !still.is_empty() {
        return Err(Error::StillMissing(still));
    }
    Ok(Outcome::Installed(missing.iter().map(|t| t.what).collect()))
}

/// `apt-get install` the packages when we are root; otherwise that command is the error.
fn debian(packages: &[&str], as_root: bool) -> Result<(), Error> {
    let mut install = Command::new("apt-get");
    install.args(["install", "-y"]).args(packages);
    if !as_root {
        return Err(Error::NotRoot {
            command: command::line(&install),
        });
    }
    println!("xtask: installing Debian packages: {}", packages.join(" "));
    command::run(Command::new("apt-get").args(["update", "-qq"]))?;
    // dpkg's progress would bury the tests' output; its errors still show.
    install
        .arg("-qq")
        .env("DEBIAN_FRONTEND", "noninteractive")
        .stdout(Stdio::null());
    command::run(&mut install)?;
    Ok(())
}

/// A fresh virtual environment with exactly the pinned requirements, marked as built from them.
fn python(layout: &Layout) -> Result<(), Error> {
    println!(
        "xtask: installing the Python checkers from {} into {}",
        layout.requirements().display(),
        layout.venv().display()
    );
    command::run(
        Command::new("python3")
            .args(["-m", "venv", "--clear"])
            .arg(layout.venv()),
    )?;
    command::run(
        Command::new(layout.venv_bin().join("python3"))
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
            ])
            .arg("--requirement")
            .arg(layout.requirements()),
    )?;
    std::fs::copy(layout.requirements(), layout.installed_requirements()).map_err(Error::Io)?;
    Ok(())
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_root_the_error_is_the_exact_apt_get_line() {
        let Err(Error::NotRoot { command }) = debian(&["chromium", "postgresql"], false) else {
            panic!("not refused");
        };
        assert_eq!(command, "apt-get install -y chromium postgresql");
    }
}
