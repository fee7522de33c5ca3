//! End-to-end: a real Prometheus server (Debian's `prometheus`, which
//! scripts/test installs) scrapes a real aggregator whose reads need a
//! login, with a read-only API token in its `authorization` block, exactly
//! as the README's `scrape_configs` example says; the fleet's values then
//! answer PromQL queries. Skipped, saying so, where Prometheus is missing.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result};
use fleetwatch_aggregator::auth::config::ReadPolicy;
use fleetwatch_aggregator::model::Role;
use fleetwatch_tests::{Aggregator, RawStream, now_ms, sample, wait_for};
use serde_json::Value;

/// The Prometheus server; killed when dropped.
struct Prometheus(Child);

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The value of the one series `query` gives, once Prometheus has it.
async fn instant(client: &reqwest::Client, base: &str, query: &str) -> Option<String> {
    let response = client
        .get(format!("{base}/api/v1/query"))
        .query(&[("query", query)])
        .send()
        .await
        .ok()?;
    let body: Value = response.json().await.ok()?;
    body["data"]["result"][0]["value"][1]
        .as_str()
        .map(str::to_owned)
}

#[tokio::test]
async fn a_real_prometheus_scrapes_with_an_api_token() -> Result<()> {
    if Command::new("prometheus")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("SKIPPED: the prometheus server is not installed (apt-get install prometheus)");
        return Ok(());
    }
    let dir = tempfile::tempdir()?;
    let mut config = fleetwatch_aggregator::Config::default();
    config.auth.read = ReadPolicy::Login;
    let agg = Aggregator::start_with(
        &dir.path().join("fw.db"),
        "127.0.0.1:0".parse()?,
        "127.0.0.1:0".parse()?,
        config,
    )
    .await?;
    let mut stream = RawStream::hello(&agg, "scraped").await?;
    stream
        .send(fleetwatch_proto::Batch {
            seq: 1,
            samples: vec![sample((now_ms() / 1000 - 5) * 1000, 55.0)],
            ..Default::default()
        })
        .await?;

    let token = agg.api_token("prometheus", Role::Read).await?;
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, &token)?;
    let config_file = dir.path().join("prometheus.yml");
    // JSON is YAML; the keys are the README's example.
    let prometheus_config = serde_json::json!({
        "global": { "scrape_interval": "1s", "evaluation_interval": "1s" },
        "scrape_configs": [{
            "job_name": "fleetwatch",
            "authorization": { "type": "Bearer", "credentials_file": token_file },
            "static_configs": [{ "targets": [agg.http.to_string()] }],
        }],
    });
    std::fs::write(&config_file, prometheus_config.to_string())?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let _prometheus = Prometheus(
        Command::new("prometheus")
            .arg(format!("--config.file={}", config_file.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("tsdb").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("start prometheus")?,
    );
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();

    let cpu = wait_for(
        "Prometheus to hold the host's CPU",
        Duration::from_secs(60),
        || {
            instant(
                &client,
                &base,
                r#"fleetwatch_host_cpu_percent{host="scraped"}"#,
            )
        },
    )
    .await?;
    assert_eq!(cpu, "55");
    let up = instant(&client, &base, r#"up{job="fleetwatch"}"#).await;
    assert_eq!(up.as_deref(), Some("1"), "the scrape is not healthy");
    let pool = instant(
        &client,
        &base,
        r#"fleetwatch_worker_pool_min_alive{host="scraped",pool="queue"}"#,
    )
    .await;
    assert_eq!(pool.as_deref(), Some("2"));
    agg.stop().await
}
