//! Where things are: the repository, cargo's target folder, and under it `target/tools/`, the
//! one folder the outside tools are installed into: the Python checkers' virtual environment
//! (`venv/`), npm packages (`npm/node_modules/`), Go programs of ours (`bin/`); and the lock
//! files that pin what goes there. `tools/tests/common/tools.rs` looks in the same places.

use std::path::{Path, PathBuf};

use crate::tools::Registry;

/// The folders the xtask works with.
#[derive(Debug, Clone)]
pub struct Layout {
    /// The repository (the workspace root).
    pub root: PathBuf,
    /// Cargo's target folder.
    pub target: PathBuf,
}

impl Layout {
    /// The layout of the checkout this xtask was built from: cargo runs it with
    /// `CARGO_MANIFEST_DIR` set to `xtask/`, and builds it into `<target>/<profile>/xtask`.
    pub fn of_this_checkout() -> std::io::Result<Layout> {
        let manifest = std::env::var_os("CARGO_MANIFEST_DIR")
            .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from);
        let root = manifest.parent().unwrap_or(&manifest).to_path_buf();
        let exe = std::env::current_exe()?;
        let target = exe
            .parent()
            .and_then(Path::parent)
            .map_or_else(|| root.join("target"), Path::to_path_buf);
        Ok(Layout { root, target })
    }

    /// Where the outside tools are installed.
    pub fn tools(&self) -> PathBuf {
        self.target.join("tools")
    }

    /// The folder a registry's pinned packages are installed into.
    pub fn folder(&self, registry: Registry) -> PathBuf {
        self.tools().join(match registry {
            Registry::Pip => "venv",
            Registry::Npm => "npm",
        })
    }

    /// The lock file that pins a registry's packages (npm's `package.json` sits beside it).
    pub fn lock(&self, registry: Registry) -> PathBuf {
        self.root.join(match registry {
            Registry::Pip => "xtask/requirements.txt",
            Registry::Npm => "xtask/npm/package-lock.json",
        })
    }

    /// The copy of the lock file a registry's folder was built from, written after a successful
    /// install (inside the folder, so rebuilding the folder removes it first).
    pub fn built_from(&self, registry: Registry) -> PathBuf {
        self.folder(registry).join("built-from.lock")
    }

    /// The virtual environment's programs (its `python3`, `schemathesis`).
    pub fn venv_bin(&self) -> PathBuf {
        self.folder(Registry::Pip).join("bin")
    }

    /// The npm packages.
    pub fn node_modules(&self) -> PathBuf {
        self.folder(Registry::Npm).join("node_modules")
    }

    /// Our Go programs.
    pub fn tools_bin(&self) -> PathBuf {
        self.tools().join("bin")
    }

    /// `PATH` with the installed tools' folders first, for the tests cargo runs.
    pub fn path_with_tools(&self) -> std::ffi::OsString {
        let current = std::env::var_os("PATH").unwrap_or_default();
        let ours = [
            self.venv_bin(),
            self.tools_bin(),
            self.node_modules().join(".bin"),
        ];
        let dirs = ours.into_iter().chain(std::env::split_paths(&current));
        std::env::join_paths(dirs).unwrap_or(current)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tools_live_under_the_target_folder_and_come_first_on_the_path() {
        let layout = Layout {
            root: "/repo".into(),
            target: "/repo/target".into(),
        };
        assert_eq!(layout.venv_bin(), Path::new("/repo/target/tools/venv/bin"));
        for registry in [Registry::Pip, Registry::Npm] {
            let folder = layout.folder(registry);
            assert!(folder.starts_with(layout.tools()));
            assert_eq!(layout.built_from(registry).parent(), Some(folder.as_path()));
        }
        let path = layout.path_with_tools();
        let first = std::env::split_paths(&path).next();
        assert_eq!(first, Some(layout.venv_bin()));
    }

    #[test]
    fn this_checkout_is_the_folder_above_the_xtask() {
        let layout = Layout::of_this_checkout().unwrap();
        assert!(layout.lock(Registry::Pip).is_file(), "{layout:?}");
        assert!(layout.root.join("Cargo.toml").is_file());
    }
}
