//! Where things are: the repository, cargo's target folder, and under it `target/tools/`, the
//! one folder the outside tools are installed into (the Python checkers' virtual environment
//! in `target/tools/venv`). `tests/common/tools.rs` looks in the same place.

use std::path::{Path, PathBuf};

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

    /// The Python checkers' virtual environment.
    pub fn venv(&self) -> PathBuf {
        self.tools().join("venv")
    }

    /// The virtual environment's programs (its `python3`, `schemathesis`).
    pub fn venv_bin(&self) -> PathBuf {
        self.venv().join("bin")
    }

    /// The pinned Python requirements.
    pub fn requirements(&self) -> PathBuf {
        self.root.join("xtask/requirements.txt")
    }

    /// The copy of the requirements the virtual environment was built from, written after a
    /// successful install (inside the venv, so rebuilding the venv removes it first).
    pub fn installed_requirements(&self) -> PathBuf {
        self.venv().join("installed-requirements.txt")
    }

    /// `PATH` with the installed tools' folders first, for the tests cargo runs.
    pub fn path_with_tools(&self) -> std::ffi::OsString {
        let current = std::env::var_os("PATH").unwrap_or_default();
        let dirs = std::iter::once(self.venv_bin()).chain(std::env::split_paths(&current));
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
        assert_eq!(
            layout.installed_requirements().parent(),
            Some(layout.venv().as_path())
        );
        let path = layout.path_with_tools();
        let first = std::env::split_paths(&path).next();
        assert_eq!(first, Some(layout.venv_bin()));
    }

    #[test]
    fn this_checkout_is_the_folder_above_the_xtask() {
        let layout = Layout::of_this_checkout().unwrap();
        assert!(layout.requirements().is_file(), "{layout:?}");
        assert!(layout.root.join("Cargo.toml").is_file());
    }
}
