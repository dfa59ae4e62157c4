//! `jol-node`, the binary a member deploys, is the node and nothing else: it serves and takes
//! the node's commands, refuses the tools' (`demo`, `bench`, `xroad-standin`, which are
//! jol-tools' `jol`), and carries none of the tooling's code.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Output, Stdio};

const NODE: &str = env!("CARGO_BIN_EXE_jol-node");

fn jol_node(args: &[&str]) -> Output {
    Command::new(NODE)
        .args(args)
        .env("RUST_LOG", "error")
        .output()
        .expect("run jol-node")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn the_tools_commands_are_not_the_nodes() {
    let help = jol_node(&["--help"]);
    assert!(help.status.success(), "{}", text(&help));
    let help = text(&help);
    for command in ["serve", "authority", "token", "verify", "export", "store"] {
        assert!(help.contains(command), "no `{command}` in:\n{help}");
    }
    for tool in [
        &["demo", "--once"][..],
        &["bench", "limit"],
        &["xroad-standin", "--config", "standin.toml"],
    ] {
        let out = jol_node(tool);
        assert_eq!(out.status.code(), Some(2), "{tool:?}: {}", text(&out));
        assert!(
            text(&out).contains("unrecognized subcommand"),
            "{tool:?}: {}",
            text(&out)
        );
    }
}

/// A string each part of the tooling has in its code (checked to be in none of `src/`): were
/// the part linked in, the string would be in the binary.
const TOOLING: &[(&str, &str)] = &[
    ("the throwaway PostgreSQL cluster", "--no-instructions"),
    ("the X-Road stand-in", "stand-in security server serving"),
    (
        "the synthetic population",
        "External Migration, art. 20; consent",
    ),
    ("the federation builder", "Агентство по миграции"),
    ("the demo", "is not empty; give a new --data-dir"),
    ("the benchmarks", "durable append, 256 events per flush"),
];

#[test]
fn the_node_binary_carries_none_of_the_tooling() {
    for (part, marker) in TOOLING {
        // grep: a test build reads the binary's tens of MiB too slowly itself.
        let grep = Command::new("grep")
            .args([
                "--quiet",
                "--fixed-strings",
                "--text",
                "--regexp",
                marker,
                NODE,
            ])
            .status()
            .expect("run grep");
        assert_eq!(
            grep.code(),
            Some(1),
            "jol-node links {part} (it holds {marker:?}), or grep failed"
        );
    }
}

/// Run `jol-node` with the arguments, in `dir`, and wait for success; its stdout.
fn ok(dir: &Path, args: &[&str]) -> String {
    let out = Command::new(NODE)
        .args(args)
        .current_dir(dir)
        .output()
        .expect("jol-node starts");
    assert!(out.status.success(), "jol-node {args:?}: {}", text(&out));
    String::from_utf8(out.stdout).expect("jol-node prints UTF-8")
}

#[test]
fn the_node_binary_serves_a_node() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(d, &["keygen", "--out", "sign.pem"]);
    // `jol-node publish` finds the node at the config's address.
    let listen = jol::ports::free_loopback().unwrap();
    std::fs::write(
        d.join("node.toml"),
        format!(
            "member = \"central-server/GOV/70000002/employment\"\ndata_dir = \"data\"\n\
             [signing]\nkey_file = \"sign.pem\"\nkey_name = \"sign-1\"\n\
             [local]\nlisten = \"{listen}\"\n"
        ),
    )
    .unwrap();
    let token = ok(
        d,
        &[
            "token",
            "--config",
            "node.toml",
            "create",
            "--name",
            "operator",
            "--scopes",
            "publish",
            "--purpose",
            "EMPLOYMENT_SERVICES",
        ],
    );
    let mut node = Command::new(NODE)
        .args(["serve", "--config", "node.toml"])
        .current_dir(d)
        .env("RUST_LOG", "error")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(node.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(line.contains("listening"), "{line:?}");
    let example = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/examples/employment-status/valid/employment-started.json");
    let published = Command::new(NODE)
        .args([
            "publish",
            "--config",
            "node.toml",
            "--type",
            "employment-status",
        ])
        .arg("--file")
        .arg(&example)
        .args(["--token", token.trim()])
        .current_dir(d)
        .output()
        .unwrap();
    let _ = node.kill();
    let _ = node.wait();
    assert!(published.status.success(), "{}", text(&published));
    let answer: serde_json::Value = serde_json::from_slice(&published.stdout).unwrap();
    assert_eq!(answer["position"], 1, "{answer}");
}
