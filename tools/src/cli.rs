//! The `jol` command line: the node's own commands (`jol::cli::Command`, the same as
//! `jol-node`'s) and the tools' (`demo`, `bench`, `xroad-standin`).

use std::path::{Path, PathBuf};

use anyhow::Result;
use clap::Subcommand;

use crate::standin::{StandIn, StandInConfig};

/// The `jol` command line.
pub type Cli = jol::cli::Cli<Command>;

#[derive(Subcommand, Debug)]
pub enum Command {
    #[command(flatten)]
    Node(jol::cli::Command),
    /// The three-agency federation on this machine, with a synthetic population.
    Demo(crate::demo::DemoArgs),
    /// Run a STAND-IN for an X-Road security server (tests and demos only; not X-Road).
    XroadStandin {
        #[arg(long)]
        config: PathBuf,
    },
    /// Measure the node (see BENCHMARKS.md).
    Bench(crate::bench::BenchArgs),
}

/// Do the work of a parsed command.
pub async fn run(command: Command) -> Result<()> {
    match command {
        Command::Node(command) => jol::cli::run(command).await,
        Command::Demo(args) => crate::demo::run(args).await,
        Command::XroadStandin { config } => xroad_standin(&config).await,
        Command::Bench(args) => crate::bench::run(args).await,
    }
}

async fn xroad_standin(config: &Path) -> Result<()> {
    let config = StandInConfig::load(config)?;
    let standin = StandIn::start(&config).await?;
    let stopped = jol::cli::shutdown_signal();
    eprintln!("a STAND-IN for an X-Road security server, for tests and demos: not X-Road");
    println!(
        "{}",
        serde_json::json!({"listening": {
            "consumers": standin.listen.to_string(),
            "peers": standin.peer_listen.to_string(),
        }})
    );
    stopped.await;
    standin.stop().await;
    Ok(())
}
