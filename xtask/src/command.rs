//! Running one command to its end, and naming it when it fails.

use std::fmt;
use std::process::Command;

/// A command that could not start or did not succeed.
#[derive(Debug)]
pub struct Failed {
    /// The command line, as the user would type it.
    pub command: String,
    /// Its exit status, or why it could not start.
    pub why: String,
}

impl fmt::Display for Failed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}` failed: {}", self.command, self.why)
    }
}

/// Run `command` (its output goes to ours) and wait for it to succeed.
pub fn run(command: &mut Command) -> Result<(), Failed> {
    let why = match command.status() {
        Ok(status) if status.success() => return Ok(()),
        Ok(status) => status.to_string(),
        Err(e) => e.to_string(),
    };
    Err(Failed {
        command: line(command),
        why,
    })
}

/// `command` as one line: its environment settings (but the `PATH` the xtask sets, long and
/// always the same), program and arguments.
pub fn line(command: &Command) -> String {
    let envs = command
        .get_envs()
        .filter_map(|(k, v)| Some(format!("{}={}", k.to_str()?, v?.to_str()?)))
        .filter(|setting| !setting.starts_with("PATH="));
    let words = std::iter::once(command.get_program())
        .chain(command.get_args())
        .map(|w| w.to_string_lossy().into_owned());
    envs.chain(words).collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_names_the_command_as_typed() {
        let mut c = Command::new("sh");
        c.args(["-c", "exit 3"]).env("JOL_TEST_ENGINE", "sled");
        let failed = run(&mut c).unwrap_err();
        assert_eq!(failed.command, "JOL_TEST_ENGINE=sled sh -c exit 3");
        assert!(failed.why.contains('3'), "{failed}");
        assert!(run(&mut Command::new("true")).is_ok());
        assert!(run(&mut Command::new("no-such-program-here")).is_err());
    }
}
