//! `fleetwatch-agent`: parses the command line, sets up logging, and runs
//! the agent until SIGTERM or Ctrl-C.

use anyhow::Context;
use clap::Parser;
use fleetwatch_agent::{Config, config::Args};
use tokio_util::sync::CancellationToken;

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    fleetwatch_common::logging::init();
    let config = Config::load(&args)?;

    // One thread is plenty: sampling takes milliseconds per interval.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let shutdown = CancellationToken::new();
        tokio::spawn(fleetwatch_common::signal::stop_on_signal(shutdown.clone()));
        fleetwatch_agent::run(config, shutdown).await
    })?;
    Ok(())
}
