//! `jol`: the node's commands and the tools' (`demo`, `bench`, `xroad-standin`), for the README's
//! `cargo run --release -- demo`, the benchmarks and the tests. A member deploys `jol-node`.

use std::process::ExitCode;

use clap::Parser;
use jol_tools::cli::{Cli, Command};

#[path = "../../src/main/process.rs"]
mod process;

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The demo prints its own report; its nodes log only errors unless RUST_LOG says otherwise.
    let default = if matches!(cli.command, Command::Demo(_)) {
        "error"
    } else {
        "info"
    };
    process::run(cli.log_json, default, jol_tools::cli::run(cli.command))
}
