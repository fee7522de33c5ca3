//! `fleetwatch-aggregator --test-webhook`: one test notification to each
//! configured receiver, each result reported.

use tokio_util::sync::CancellationToken;

use crate::Config;
use crate::alerts::notify::Notifier;

/// Sends the test notifications and prints one line per receiver; fails
/// if there is no receiver or any delivery failed.
pub async fn test_webhooks(config: &Config) -> anyhow::Result<()> {
    if config.alerts.webhooks.is_empty() {
        anyhow::bail!("no [[alerts.webhooks]] in the config");
    }
    let shutdown = CancellationToken::new();
    let notifier = Notifier::spawn(
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
