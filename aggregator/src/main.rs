//! `fleetwatch-aggregator`: parses the command line, sets up logging, and
//! runs the aggregator until SIGTERM or Ctrl-C.

use clap::Parser;
use fleetwatch_aggregator::cli::{self, Cli};
use fleetwatch_aggregator::{Config, Listeners};
use tokio_util::sync::CancellationToken;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let command_line = Cli::parse();
    fleetwatch_common::logging::init();
    let config = Config::load(&command_line.args)?;
    if let Some(command) = &command_line.command {
        return cli::run(command, &config).await;
    }
    if command_line.test_webhook {
        return cli::webhook::test_webhooks(&config).await;
    }
    let listeners = Listeners::bind(&config).await?;
    let shutdown = CancellationToken::new();
    tokio::spawn(fleetwatch_common::signal::stop_on_signal(shutdown.clone()));
    fleetwatch_aggregator::run(config, listeners, shutdown).await?;
    Ok(())
}
