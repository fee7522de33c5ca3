//! End-to-end: `GET /metrics` of a real aggregator fed through its gRPC
//! edge. The scrape's values match what was sent, promtool (Prometheus' own
//! parser and linter) accepts it, OpenMetrics is served when asked for, and
//! it is behind the read policy with API tokens as bearer tokens.

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use fleetwatch_aggregator::auth::config::ReadPolicy;
use fleetwatch_aggregator::model::Role;
use fleetwatch_proto as wire;
use fleetwatch_tests::{Aggregator, RawStream, now_ms, sample, wait_for};

/// A scrape as `name{labels}` → value, e.g.
/// `fleetwatch_host_cpu_percent{host="a"}`. Labels keep their order.
fn parse(text: &str) -> Result<BTreeMap<String, f64>> {
    let mut values = BTreeMap::new();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let (series, value) = line
            .rsplit_once(' ')
            .with_context(|| format!("no value in {line:?}"))?;
        let value = match value {
            "+Inf" => f64::INFINITY,
            v => v
                .parse()
                .with_context(|| format!("bad value in {line:?}"))?,
        };
        values.insert(series.to_owned(), value);
    }
    Ok(values)
}

async fn scrape(
    agg: &Aggregator,
    accept: Option<&str>,
    bearer: Option<&str>,
) -> Result<(u16, String, String)> {
    let mut request = agg.http_client().get(agg.url("/metrics"));
    if let Some(accept) = accept {
        request = request.header("accept", accept);
    }
    if let Some(token) = bearer {
        request = request.bearer_auth(token);
    }
    let response = request.send().await?;
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    Ok((status, content_type, response.text().await?))
}

fn value(values: &BTreeMap<String, f64>, series: &str) -> Result<f64> {
    values
        .get(series)
        .copied()
        .with_context(|| format!("{series} is not in the scrape"))
}

/// Feeds host `prom-a`: a batch of two samples, the same batch again (both
/// duplicates), and on a second stream a batch with a NaN (refused).
async fn feed(agg: &Aggregator) -> Result<(i64, RawStream)> {
    let t = (now_ms() / 1000 - 10) * 1000;
    let mut stream = RawStream::hello(agg, "prom-a").await?;
    let batch = wire::Batch {
        seq: 1,
        samples: vec![sample(t, 20.0), sample(t + 1000, 42.5)],
        ..Default::default()
    };
    stream.send(batch.clone()).await?;
    stream.send(wire::Batch { seq: 2, ..batch }).await?;
    let mut bad = RawStream::hello(agg, "prom-b").await?;
    let refused = bad
        .send(wire::Batch {
            seq: 1,
            samples: vec![sample(t, f64::NAN)],
            ..Default::default()
        })
        .await;
    if refused.is_ok() {
        bail!("a NaN sample was acknowledged");
    }
    Ok((t, stream))
}

#[tokio::test]
async fn the_scrape_shows_what_ingest_did_and_the_fleet_latest_values() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let agg = Aggregator::start(&dir.path().join("fw.db")).await?;
    let (t, _open) = feed(&agg).await?;

    let (status, content_type, text) = scrape(&agg, None, None).await?;
    assert_eq!(status, 200, "{text}");
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    let v = parse(&text)?;
    assert_eq!(value(&v, "fleetwatch_samples_received_total")?, 5.0);
    assert_eq!(value(&v, "fleetwatch_samples_stored_total")?, 2.0);
    assert_eq!(value(&v, "fleetwatch_samples_duplicate_total")?, 2.0);
    assert_eq!(
        value(&v, r#"fleetwatch_samples_refused_total{reason="invalid"}"#)?,
        1.0
    );
    assert_eq!(
        value(
            &v,
            r#"fleetwatch_samples_refused_total{reason="store_unavailable"}"#
        )?,
        0.0
    );
    assert_eq!(value(&v, "fleetwatch_ack_duration_seconds_count")?, 2.0);
    assert_eq!(
        value(&v, r#"fleetwatch_ack_duration_seconds_bucket{le="+Inf"}"#)?,
        2.0
    );
    assert_eq!(value(&v, "fleetwatch_writer_batches_per_commit_sum")?, 2.0);
    assert!(value(&v, "fleetwatch_write_duration_seconds_count")? >= 2.0);
    assert_eq!(value(&v, "fleetwatch_writer_queue_depth")?, 0.0);
    // prom-b's stream ended with the refusal; prom-a's is still open.
    assert_eq!(value(&v, "fleetwatch_agents_connected")?, 1.0);
    assert_eq!(value(&v, r#"fleetwatch_host_up{host="prom-a"}"#)?, 1.0);
    assert_eq!(value(&v, r#"fleetwatch_host_up{host="prom-b"}"#)?, 0.0);
    assert!(value(&v, "fleetwatch_database_size_bytes")? > 0.0);
    assert!(value(&v, "fleetwatch_uptime_seconds")? >= 0.0);
    assert_eq!(
        value(
            &v,
            &format!(
                r#"fleetwatch_build_info{{version="{}"}}"#,
                env!("CARGO_PKG_VERSION")
            )
        )?,
        1.0
    );

    // The newest sample of prom-a, from memory.
    assert_eq!(
        value(&v, r#"fleetwatch_host_cpu_percent{host="prom-a"}"#)?,
        42.5
    );
    assert_eq!(
        value(&v, r#"fleetwatch_host_memory_used_bytes{host="prom-a"}"#)?,
        250.0
    );
    assert_eq!(
        value(&v, r#"fleetwatch_host_memory_percent{host="prom-a"}"#)?,
        25.0
    );
    assert_eq!(value(&v, r#"fleetwatch_host_load1{host="prom-a"}"#)?, 0.5);
    assert_eq!(
        value(
            &v,
            r#"fleetwatch_host_filesystem_used_percent{host="prom-a",mount="/"}"#
        )?,
        42.0
    );
    assert_eq!(
        value(
            &v,
            r#"fleetwatch_host_last_sample_timestamp_seconds{host="prom-a"}"#
        )?,
        (t + 1000) as f64 / 1000.0
    );
    assert_eq!(
        value(
            &v,
            r#"fleetwatch_worker_pool_alive{host="prom-a",pool="queue"}"#
        )?,
        1.0
    );
    assert_eq!(
        value(
            &v,
            r#"fleetwatch_worker_pool_min_alive{host="prom-a",pool="queue"}"#
        )?,
        2.0
    );
    // Never a pid or a command line.
    assert!(
        !text.contains("4242") && !text.contains("--queue"),
        "{text}"
    );
    assert_eq!(value(&v, "fleetwatch_websocket_clients")?, 0.0);

    // A dashboard client is counted while it is connected.
    let (ws, _) = tokio_tungstenite::connect_async(format!("ws://{}/ws", agg.http)).await?;
    let clients = |want: f64| {
        let agg = &agg;
        move || async move {
            let (_, _, text) = scrape(agg, None, None).await.ok()?;
            let v = parse(&text).ok()?;
            (value(&v, "fleetwatch_websocket_clients").ok()? == want).then_some(())
        }
    };
    wait_for(
        "one WebSocket client",
        Duration::from_secs(10),
        clients(1.0),
    )
    .await?;
    drop(ws);
    wait_for("no WebSocket client", Duration::from_secs(10), clients(0.0)).await?;
    agg.stop().await
}

#[tokio::test]
async fn openmetrics_when_asked_and_behind_the_read_policy() -> Result<()> {
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
    let (status, _, body) = scrape(&agg, None, None).await?;
    assert_eq!(status, 401, "{body}");
    let token = agg.api_token("prometheus", Role::Read).await?;
    let (status, content_type, text) = scrape(
        &agg,
        Some("application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5"),
        Some(&token),
    )
    .await?;
    assert_eq!(status, 200, "{text}");
    assert!(
        content_type.starts_with("application/openmetrics-text"),
        "{content_type}"
    );
    assert!(text.ends_with("# EOF\n"), "{text}");
    assert!(
        text.contains("fleetwatch_samples_received_total 0"),
        "{text}"
    );
    agg.stop().await
}

#[tokio::test]
async fn promtool_accepts_the_scrape() -> Result<()> {
    if Command::new("promtool").arg("--version").output().is_err() {
        // scripts/test installs it (Debian's `prometheus` package).
        eprintln!("SKIPPED: promtool is not installed (apt-get install prometheus)");
        return Ok(());
    }
    let dir = tempfile::tempdir()?;
    let agg = Aggregator::start(&dir.path().join("fw.db")).await?;
    let (_t, _open) = feed(&agg).await?;
    let (status, _, text) = scrape(&agg, None, None).await?;
    assert_eq!(status, 200);
    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    {
        use std::io::Write;
        let mut stdin = promtool.stdin.take().context("promtool stdin")?;
        stdin.write_all(text.as_bytes())?;
    }
    let out = promtool.wait_with_output()?;
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && said.trim().is_empty(),
        "promtool: {said}\n{text}"
    );
    agg.stop().await
}
