//! The one table of outside tools the test suite calls ([`TOOLS`]): for each, what it is and
//! which tests need it, how to see that it is present, and where it comes from (which says
//! where it is installed). Adding a checker is adding one entry here; `install.rs` knows how to
//! install from each [`Source`].

use std::process::{Command, Stdio};

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
    /// The virtual environment's Python imports this module.
    VenvImports(&'static str),
    /// This program is in the virtual environment's `bin/`.
    VenvProgram(&'static str),
}

/// Where a tool comes from, and so where it goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// A Debian package, installed system-wide by `apt-get` (as root only).
    Debian(&'static str),
    /// `xtask/requirements.txt` (exact versions), installed into `target/tools/venv`.
    Pip,
}

/// Every outside tool the tests call.
pub const TOOLS: &[Tool] = &[
    Tool {
        what: "headless Chromium: tests/dashboard.rs drives the dashboard in it",
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
        what: "joserfc: tests/jose_interop.rs verifies our JWS with it",
        check: Check::VenvImports("joserfc"),
        source: Source::Pip,
    },
    Tool {
        what: "jsonschema (with referencing): tests/schemas.rs validates the examples with it",
        check: Check::VenvImports("jsonschema, referencing"),
        source: Source::Pip,
    },
    Tool {
        what: "openapi-spec-validator: tests/contract.rs checks our OpenAPI descriptions with it",
        check: Check::VenvImports("openapi_spec_validator"),
        source: Source::Pip,
    },
    Tool {
        what: "schemathesis: tests/contract.rs checks the node's answers against the descriptions",
        check: Check::VenvProgram("schemathesis"),
        source: Source::Pip,
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
        let mut command = match self {
            Check::Shell(condition) => {
                let mut c = Command::new("sh");
                c.args(["-c", condition]);
                c
            }
            Check::VenvImports(modules) => {
                let mut c = Command::new(layout.venv_bin().join("python3"));
                c.args(["-c", &format!("import {modules}")]);
                c
            }
            Check::VenvProgram(program) => return layout.venv_bin().join(program).is_file(),
        };
        command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }
}

impl Source {
    fn is_current(self, layout: &Layout) -> bool {
        match self {
            Source::Debian(_) => true,
            Source::Pip => {
                let built_from = std::fs::read(layout.installed_requirements()).ok();
                built_from.is_some() && built_from == std::fs::read(layout.requirements()).ok()
            }
        }
    }
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
        assert!(!Source::Pip.is_current(&layout), "no venv yet");
        std::fs::create_dir_all(layout.venv()).unwrap();
        std::fs::write(layout.installed_requirements(), "joserfc==1.7.0\n").unwrap();
        assert!(!Source::Pip.is_current(&layout), "built from an older pin");
        std::fs::copy(layout.requirements(), layout.installed_requirements()).unwrap();
        assert!(Source::Pip.is_current(&layout));
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
        std::fs::remove_dir_all(dir).unwrap();
    }
}
