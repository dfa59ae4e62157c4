//! Installing the tools [`tools::missing`] lists, by where they come from: Debian packages with
//! `apt-get`, as root only (otherwise the error is the exact command to run as root); a
//! registry's pinned packages into a fresh folder of `target/tools` (the Python checkers into
//! a virtual environment, with pip; npm packages with `npm ci`, from npm's cache when it has
//! them), marked with the lock file they were built from; our Go programs with Debian's Go,
//! offline. What is present is left alone, so a second run installs nothing.

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::command::{self, Failed};
use crate::layout::Layout;
use crate::tools::{self, Registry, Source};

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
    /// A folder or file of `target/tools` could not be made.
    Io(PathBuf, std::io::Error),
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
            Error::Io(path, e) => write!(f, "cannot write {}: {e}", path.display()),
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

/// Install every tool that is missing, Debian's first (the others are built with Debian's
/// Python, Node and Go), then check that all are present.
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
            Source::Pinned(_) | Source::Go { .. } => None,
        })
        .collect();
    if !packages.is_empty() {
        debian(&packages, is_root())?;
    }
    let mut built: Vec<Source> = Vec::new();
    for tool in &missing {
        if built.contains(&tool.source) {
            continue;
        }
        match tool.source {
            Source::Debian(_) => {}
            Source::Pinned(registry) => pinned(layout, registry)?,
            Source::Go { package } => go(layout, package)?,
        }
        built.push(tool.source);
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

/// A fresh folder with exactly the packages the registry's lock file pins, marked as built from
/// it.
fn pinned(layout: &Layout, registry: Registry) -> Result<(), Error> {
    let (folder, lock) = (layout.folder(registry), layout.lock(registry));
    println!(
        "xtask: installing what {} pins into {}",
        lock.display(),
        folder.display()
    );
    if folder.exists() {
        std::fs::remove_dir_all(&folder).map_err(|e| Error::Io(folder.clone(), e))?;
    }
    match registry {
        Registry::Pip => {
            command::run(Command::new("python3").args(["-m", "venv"]).arg(&folder))?;
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
                    .arg(&lock),
            )?;
        }
        Registry::Npm => {
            for file in [lock.clone(), lock.with_file_name("package.json")] {
                copy_into(&folder, &file)?;
            }
            command::run(
                Command::new("npm")
                    .args([
                        "ci",
                        "--prefer-offline",
                        "--no-audit",
                        "--no-fund",
                        "--silent",
                    ])
                    .current_dir(&folder),
            )?;
        }
    }
    let mark = layout.built_from(registry);
    std::fs::copy(&lock, &mark).map_err(|e| Error::Io(mark, e))?;
    Ok(())
}

/// Build our Go program in `package` into `target/tools/bin` with Debian's Go, offline: in
/// GOPATH mode, its imports are the Go modules Debian packages in `/usr/share/gocode`.
fn go(layout: &Layout, package: &str) -> Result<(), Error> {
    let source = layout.root.join(package);
    let bin = layout.tools_bin();
    println!(
        "xtask: building {} into {}",
        source.display(),
        bin.display()
    );
    std::fs::create_dir_all(&bin).map_err(|e| Error::Io(bin.clone(), e))?;
    command::run(
        Command::new("go")
            .args(["build", "-o"])
            .arg(bin.join(source.file_name().unwrap_or_default()))
            .arg(".")
            .current_dir(&source)
            .env("GO111MODULE", "off")
            .env("GOPATH", "/usr/share/gocode")
            .env("GOPROXY", "off"),
    )?;
    Ok(())
}

/// Copy `file` into `folder`, making the folder.
fn copy_into(folder: &Path, file: &Path) -> Result<(), Error> {
    std::fs::create_dir_all(folder).map_err(|e| Error::Io(folder.to_path_buf(), e))?;
    let to = folder.join(file.file_name().unwrap_or_default());
    std::fs::copy(file, &to).map_err(|e| Error::Io(to, e))?;
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
