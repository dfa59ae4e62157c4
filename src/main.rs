//! `jol-node`, the node's binary (what a member deploys): parse the command line and hand over
//! to the library. It links no tooling: the demo, the benchmarks and the X-Road stand-in are in
//! jol-tools' `jol` binary.

use std::process::ExitCode;

use clap::Parser;

#[path = "main/process.rs"]
mod process;

fn main() -> ExitCode {
    let cli = jol::cli::Cli::parse();
    process::run(cli.log_json, "info", jol::cli::run(cli.command))
}
