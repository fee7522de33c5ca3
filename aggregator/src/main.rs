//! `fleetwatch-aggregator`: parses the command line, sets up logging, and
//! runs the aggregator until SIGTERM or Ctrl-C.

use clap::Parser;
use fleetwatch_aggregator::config::Args;
use fleetwatch_aggregator::{Config, Listeners};
use tokio_util::sync::CancellationToken;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    fleetwatch_common::logging::init();
    let config = Config::load(&args)?;
    if let Some(command) = &args.command {
        return fleetwatch_aggregator::admin::run(command, &config).await;
    }
    if args.test_webhook {
        return test_webhooks(&config).await;
    }
    let listeners = Listeners::bind(&config).await?;
    let shutdown = CancellationToken::new();
    tokio::spawn(fleetwatch_common::signal::stop_on_signal(shutdown.clone()));
    fleetwatch_aggregator::run(config, listeners, shutdown).await?;
    Ok(())
}

/// `--test-webhook`: one test notification to each receiver.
async fn test_webhooks(config: &Config) -> anyhow::Result<()> {
    if config.alerts.webhooks.is_empty() {
        anyhow::bail!("no [[alerts.webhooks]] in the config");
    }
    let shutdown = CancellationToken::new();
    let notifier = fleetwatch_aggregator::alerts::notify::Notifier::spawn(
        config.alerts.webhooks.clone(),
        config.alerts.notify.clone(),
        config.public_url.clone(),
        shutdown.clone(),
    );
    let mut failed = 0;
    for (name, result) in notifier.send_test().await {
        match result {
            Ok(()) => println!("{name}: delivered"),
            Err(e) => {
                failed += 1;
                println!("{name}: FAILED: {e}");
            }
        }
    }
    shutdown.cancel();
    if failed > 0 {
        anyhow::bail!("{failed} webhook(s) failed");
    }
    Ok(())
}
