//! Long commands say how far they are: `jol rebuild-view`, `jol verify` and `jol export` write
//! events done of the total, the rate and the time left on standard error. Run here with it
//! piped (not a terminal), each writes plain lines, one at each tenth, never a redrawn line.

mod common;

use std::process::Command;

use common::*;

/// Run `jol args…`; its standard error, once it succeeded.
fn progress_of(args: &[&std::ffi::OsStr]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_jol"))
        .args(args)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "jol {args:?}: {stderr}");
    stderr
}

#[test]
fn long_commands_write_plain_progress_lines_when_not_on_a_terminal() {
    let fed = Federation::build();
    let mig = fed.start("migration");
    let n = 40;
    for i in 0..n {
        publish(
            mig.addr,
            "returnee-record",
            &returnee(
                &format!("215031990{i:05}"),
                &[EMPLOYMENT],
                &["EMPLOYMENT_SERVICES"],
            ),
        );
    }
    mig.stop();
    let config = fed.config("migration");
    let config = config.as_os_str();
    let bundle = fed.path("bundle.json");
    let runs = [
        (
            "rebuild-view: indexing",
            progress_of(&["rebuild-view".as_ref(), "--config".as_ref(), config]),
        ),
        (
            "verify",
            progress_of(&["verify".as_ref(), "--config".as_ref(), config]),
        ),
        (
            "export",
            progress_of(&[
                "export".as_ref(),
                "--from".as_ref(),
                "2000-01-01".as_ref(),
                "--to".as_ref(),
                "2100-01-01".as_ref(),
                "--config".as_ref(),
                config,
                "--out".as_ref(),
                bundle.as_os_str(),
            ]),
        ),
    ];
    for (what, stderr) in runs {
        assert!(
            !stderr.contains('\r'),
            "{what}: a redrawn line in a log: {stderr:?}"
        );
        let lines: Vec<&str> = stderr
            .lines()
            .filter(|l| l.starts_with(&format!("{what}: ")))
            .collect();
        assert!(
            lines.iter().any(
                |l| l.starts_with(&format!("{what}: {n} of {n} events (100%), "))
                    && l.ends_with(" left")
            ),
            "{what}: {stderr}"
        );
        assert!(
            lines.len() <= 10 + 1,
            "{what}: more than one line a tenth: {stderr}"
        );
        assert!(
            lines
                .last()
                .unwrap()
                .starts_with(&format!("{what}: {n} events in ")),
            "{what}: {stderr}"
        );
    }
}
