//! The one table of outside tools the test suite calls ([`TOOLS`]): for each, what it is and
//! which tests need it, how to see that it is present, and where it comes from (which says
//! where it is installed). Adding a checker is adding one entry here; `install.rs` knows how to
//! install from each [`Source`].

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::SystemTime;

use crate::layout::Layout;

/// One outside tool.
#[derive(Debug)]
pub struct Tool {
    /// What it is, and which tests call it.
    pub what: &'static str,
    /// How to see that it is present.
    pub check: Check,
    /// Where it comes from.
    pub source: Source,
}

/// How to see that a tool is present.
#[derive(Debug)]
pub enum Check {
    /// A shell condition (`sh -c`) that holds when the tool is present.
    Shell(&'static str),
    /// The virtual environment's Python imports these modules (`"jsonschema, referencing"`).
    VenvImports(&'static str),
    /// This program is in the virtual environment's `bin/`.
    VenvProgram(&'static str),
    /// This npm package is in `target/tools/npm/node_modules`.
    NodeModule(&'static str),
    /// This program of ours is in `target/tools/bin`.
    ToolsProgram(&'static str),
}

/// Where a tool comes from, and so where it goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// A Debian package, installed system-wide by `apt-get` (as root only).
    Debian(&'static str),
    /// A registry's packages at the versions its lock file pins, installed into a folder of
    /// `target/tools` (`layout.rs` says which).
    Pinned(Registry),
    /// A Go program of ours in this folder, built into `target/tools/bin` (named as the
    /// folder) by Debian's Go, offline, with the Go modules Debian packages.
    Go { package: &'static str },
}

/// A language's package registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Registry {
    /// PyPI: `xtask/requirements.txt`, into the virtual environment `target/tools/venv`.
    Pip,
    /// npm: `xtask/npm/package-lock.json`, into `target/tools/npm`.
    Npm,
}

/// Every outside tool the tests call.
pub const TOOLS: &[Tool] = &[
    Tool {
        what: "headless Chromium: tools/tests/dashboard.rs drives the dashboard in it, \
               tools/tests/credentials.rs the credential verification page",
        check: Check::Shell(
            "command -v chromium || command -v chromium-browser || command -v google-chrome",
        ),
        source: Source::Debian("chromium"),
    },
    Tool {
        what: "PostgreSQL: the PostgreSQL store's tests, its crash loop and failover tests and \
               `jol demo --store postgres` start throwaway clusters",
        check: Check::Shell("command -v initdb || ls /usr/lib/postgresql/*/bin/initdb"),
        source: Source::Debian("postgresql"),
    },
    Tool {
        what: "Python 3 with venv: the Python checkers below live in a virtual environment",
        check: Check::Shell("python3 -c 'import ensurepip, venv'"),
        source: Source::Debian("python3-venv"),
    },
    Tool {
        what: "joserfc: tools/tests/jose_interop.rs verifies our JWS with it",
        check: Check::VenvImports("joserfc"),
        source: Source::Pinned(Registry::Pip),
    },
    Tool {
        what: "jsonschema (with referencing): tools/tests/schemas.rs validates the examples with it",
        check: Check::VenvImports("jsonschema, referencing"),
        source: Source::Pinned(Registry::Pip),
    },
    Tool {
        what: "openapi-spec-validator: tools/tests/contract.rs checks our OpenAPI descriptions with it",
        check: Check::VenvImports("openapi_spec_validator"),
        source: Source::Pinned(Registry::Pip),
    },
    Tool {
        what: "schemathesis: tools/tests/contract.rs checks the node's answers against the descriptions",
        check: Check::VenvProgram("schemathesis"),
        source: Source::Pinned(Registry::Pip),
    },
    Tool {
        what: "Node.js 20 or newer with npm: the SD-JWT checkers below run under it (Debian's \
               own nodejs is older: a machine without Node needs a newer one installed)",
        check: Check::Shell(
            "command -v npm && node -e 'process.exit(parseInt(process.versions.node) >= 20 ? 0 : 1)'",
        ),
        source: Source::Debian("npm"),
    },
    Tool {
        what: "@sd-jwt/core: tools/tests/node/verify-sd-jwt.mjs verifies our SD-JWTs with it",
        check: Check::NodeModule("@sd-jwt/core"),
        source: Source::Pinned(Registry::Npm),
    },
    Tool {
        what: "@sd-jwt/sd-jwt-vc (with @sd-jwt/jwt-status-list): tools/tests/node/\
               verify-sd-jwt-vc.mjs verifies our SD-JWT VCs and their status with it \
               (tools/tests/credentials.rs)",
        check: Check::NodeModule("@sd-jwt/sd-jwt-vc"),
        source: Source::Pinned(Registry::Npm),
    },
    Tool {
        what: "Go: our Go programs below are built with Debian's Go, offline",
        check: Check::Shell("command -v go"),
        source: Source::Debian("golang-go"),
    },
    Tool {
        what: "golang.org/x/mod (Debian's, in /usr/share/gocode): noteverify verifies notes \
               with its sumdb/note",
        check: Check::Shell("test -f /usr/share/gocode/src/golang.org/x/mod/sumdb/note/note.go"),
        source: Source::Debian("golang-golang-x-mod-dev"),
    },
    Tool {
        what: "noteverify (tools/tests/go/noteverify): Go's sumdb/note verifies our checkpoints \
               and their cosignatures (tools/tests/c2sp_checkers.rs, tools/tests/c2sp_log.rs)",
        check: Check::ToolsProgram("noteverify"),
        source: Source::Go {
            package: "tools/tests/go/noteverify",
        },
    },
];

impl Tool {
    /// Whether the tool is there, and installed from what its source says today (a virtual
    /// environment built from an older requirements file is not).
    pub fn is_present(&self, layout: &Layout) -> bool {
        self.check.holds(layout) && self.source.is_current(layout)
    }
}

impl Check {
    fn holds(&self, layout: &Layout) -> bool {
        let file = match self {
            Check::Shell(condition) => return succeeds(Command::new("sh").args(["-c", condition])),
            Check::VenvImports(modules) => {
                let python = layout.venv_bin().join("python3");
                return succeeds(Command::new(python).args(["-c", &format!("import {modules}")]));
            }
            Check::VenvProgram(program) => layout.venv_bin().join(program),
            Check::NodeModule(package) => layout.node_modules().join(package).join("package.json"),
            Check::ToolsProgram(program) => layout.tools_bin().join(program),
        };
        file.is_file()
    }
}

/// Whether `command` runs and succeeds (its output is not shown).
fn succeeds(command: &mut Command) -> bool {
    command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

impl Source {
    fn is_current(self, layout: &Layout) -> bool {
        match self {
            Source::Debian(_) => true,
            Source::Pinned(registry) => {
                let built_from = std::fs::read(layout.built_from(registry)).ok();
                built_from.is_some() && built_from == std::fs::read(layout.lock(registry)).ok()
            }
            Source::Go { package } => {
                let source = layout.root.join(package);
                let built = layout
                    .tools_bin()
                    .join(source.file_name().unwrap_or_default());
                modified(&built).is_some_and(|built| newest(&source) <= Some(built))
            }
        }
    }
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// When the newest file in `folder` (not below it) was modified.
fn newest(folder: &Path) -> Option<SystemTime> {
    std::fs::read_dir(folder)
        .ok()?
        .filter_map(|e| modified(&e.ok()?.path()))
        .max()
}

/// The tools that are not present, in the table's order.
pub fn missing(layout: &Layout) -> Vec<&'static Tool> {
    TOOLS.iter().filter(|t| !t.is_present(layout)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A checkout with a requirements file and no venv, in a folder of its own for `test`.
    fn scratch(test: &str) -> (std::path::PathBuf, Layout) {
        let dir = std::env::temp_dir().join(format!("xtask-{test}-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("xtask")).unwrap();
        std::fs::write(dir.join("xtask/requirements.txt"), "joserfc==1.8.0\n").unwrap();
        let layout = Layout {
            root: dir.clone(),
            target: dir.join("target"),
        };
        (dir, layout)
    }

    #[test]
    fn the_venv_is_current_only_when_built_from_todays_requirements() {
        let (dir, layout) = scratch("current");
        let pip = Source::Pinned(Registry::Pip);
        assert!(!pip.is_current(&layout), "no venv yet");
        std::fs::create_dir_all(layout.folder(Registry::Pip)).unwrap();
        std::fs::write(layout.built_from(Registry::Pip), "joserfc==1.7.0\n").unwrap();
        assert!(!pip.is_current(&layout), "built from an older pin");
        std::fs::copy(layout.lock(Registry::Pip), layout.built_from(Registry::Pip)).unwrap();
        assert!(pip.is_current(&layout));
        assert!(Source::Debian("chromium").is_current(&layout));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_check_holds_only_when_its_tool_is_there() {
        let (dir, layout) = scratch("check");
        assert!(Check::Shell("command -v sh").holds(&layout));
        assert!(!Check::Shell("command -v no-such-tool-here").holds(&layout));
        assert!(!Check::VenvImports("json").holds(&layout), "no venv yet");
        std::fs::create_dir_all(layout.venv_bin()).unwrap();
        std::fs::write(layout.venv_bin().join("schemathesis"), "").unwrap();
        assert!(Check::VenvProgram("schemathesis").holds(&layout));
        assert!(!Check::VenvProgram("pytest").holds(&layout));
        assert!(!Check::NodeModule("@sd-jwt/core").holds(&layout));
        let package = layout.node_modules().join("@sd-jwt/core");
        std::fs::create_dir_all(&package).unwrap();
        std::fs::write(package.join("package.json"), "{}").unwrap();
        assert!(Check::NodeModule("@sd-jwt/core").holds(&layout));
        assert!(!Check::ToolsProgram("sdjwt-verify").holds(&layout));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_go_program_is_current_only_when_built_after_its_last_change() {
        let (dir, layout) = scratch("go");
        let package = dir.join("tests/go/verify");
        std::fs::create_dir_all(&package).unwrap();
        let main = std::fs::File::create(package.join("main.go")).unwrap();
        let go = Source::Go {
            package: "tests/go/verify",
        };
        assert!(!go.is_current(&layout), "not built");
        std::fs::create_dir_all(layout.tools_bin()).unwrap();
        let built = std::fs::File::create(layout.tools_bin().join("verify")).unwrap();
        let now = SystemTime::now();
        let minute = std::time::Duration::from_secs(60);
        built.set_modified(now).unwrap();
        main.set_modified(now - minute).unwrap();
        assert!(go.is_current(&layout));
        main.set_modified(now + minute).unwrap();
        assert!(!go.is_current(&layout), "changed since it was built");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn every_go_program_of_the_table_is_in_the_checkout_and_checked_by_its_folder_name() {
        let layout = Layout::of_this_checkout().unwrap();
        let mut programs = 0;
        for tool in TOOLS {
            let Source::Go { package } = tool.source else {
                continue;
            };
            assert!(
                layout.root.join(package).join("main.go").is_file(),
                "{package}/main.go"
            );
            let folder = Path::new(package).file_name().unwrap().to_str().unwrap();
            assert!(
                matches!(tool.check, Check::ToolsProgram(p) if p == folder),
                "{package} is built as {folder}, so its check must look for that"
            );
            programs += 1;
        }
        assert!(programs > 0, "noteverify is in the table");
    }
}
