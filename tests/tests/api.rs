//! End-to-end: the REST API's history aggregates known data correctly, and
//! bad parameters get a 400 (or 404) with a JSON error naming them.

use anyhow::Result;
use fleetwatch_proto as wire;
use fleetwatch_tests::{Aggregator, RawStream, now_ms, sample};
use serde_json::Value;

/// Stores samples with known CPU values in two one-minute buckets.
async fn seed(agg: &Aggregator) -> Result<i64> {
    // 9 to 12 minutes ago, on a 3-minute boundary, so that 1-minute and
    // 3-minute buckets (aligned to multiples of the step) both start there.
    let base = (now_ms() / 180_000 - 4) * 180_000;
    let mut stream = RawStream::hello(agg, "hist").await?;
    let cpu = [
        (0, 10.0),
        (15_000, 20.0),
        (30_000, 30.0),
        (60_000, 40.0),
        (75_000, 60.0),
    ];
    let samples: Vec<wire::Sample> = cpu
        .iter()
        .map(|(offset, value)| sample(base + offset, *value))
        .collect();
    stream
        .send(wire::Batch {
            seq: 1,
            samples,
            ..Default::default()
        })
        .await?;
    Ok(base)
}

fn close(a: &Value, b: f64) -> bool {
    a.as_f64().is_some_and(|a| (a - b).abs() < 1e-9)
}

#[tokio::test]
async fn history_returns_avg_min_max_per_bucket() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let agg = Aggregator::start(&dir.path().join("fw.db")).await?;
    let base = seed(&agg).await?;
    let from = base / 1000;
    let to = from + 180;

    let body = agg
        .get_ok(&format!(
            "/api/metrics/history?host=hist&metric=cpu_percent&from={from}&to={to}&step=1m"
        ))
        .await?;
    assert_eq!(body["step_ms"], 60_000);
    let buckets = body["buckets"].as_array().cloned().unwrap_or_default();
    assert_eq!(buckets.len(), 2, "{body}");
    assert_eq!(buckets[0]["t"], base);
    assert!(close(&buckets[0]["avg"], 20.0), "{}", buckets[0]);
    assert!(close(&buckets[0]["min"], 10.0));
    assert!(close(&buckets[0]["max"], 30.0));
    assert_eq!(buckets[0]["count"], 3);
    assert_eq!(buckets[1]["t"], base + 60_000);
    assert!(close(&buckets[1]["avg"], 50.0), "{}", buckets[1]);
    assert!(close(&buckets[1]["min"], 40.0));
    assert!(close(&buckets[1]["max"], 60.0));

    // One bucket over everything; the filesystem and worker-group series too.
    let body = agg
        .get_ok(&format!(
            "/api/metrics/history?host=hist&metric=fs_used_percent:/&from={from}&to={to}&step=180"
        ))
        .await?;
    assert!(close(&body["buckets"][0]["avg"], 32.0), "{body}");
    assert!(close(&body["buckets"][0]["max"], 60.0));
    let body = agg
        .get_ok(&format!(
            "/api/metrics/history?host=hist&metric=workers_alive:queue&from={from}&to={to}&step=3m"
        ))
        .await?;
    assert!(close(&body["buckets"][0]["avg"], 1.0), "{body}");
    assert_eq!(body["buckets"][0]["count"], 5);

    // Integer columns aggregate as numbers too.
    let body = agg
        .get_ok(&format!(
            "/api/metrics/history?host=hist&metric=process_count&from={from}&to={to}&step=3m"
        ))
        .await?;
    assert!(close(&body["buckets"][0]["min"], 10.0), "{body}");

    // Without a step, a 24 h window comes back in a few hundred buckets.
    let body = agg
        .get_ok("/api/metrics/history?host=hist&metric=memory_percent&from=-24h")
        .await?;
    assert_eq!(body["step_ms"], 300_000);
    assert!(close(&body["buckets"][0]["avg"], 25.0), "{body}");
    agg.stop().await
}

#[tokio::test]
async fn bad_parameters_get_json_errors() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let agg = Aggregator::start(&dir.path().join("fw.db")).await?;
    seed(&agg).await?;

    let cases = [
        ("/api/metrics/history?metric=cpu_percent", 400, "host"),
        ("/api/metrics/history?host=hist", 400, "metric"),
        ("/api/metrics/history?host=hist&metric=nope", 400, "metric"),
        (
            "/api/metrics/history?host=hist&metric=cpu_percent&from=yesterday",
            400,
            "from",
        ),
        (
            "/api/metrics/history?host=hist&metric=cpu_percent&to=NaN",
            400,
            "to",
        ),
        (
            "/api/metrics/history?host=hist&metric=cpu_percent&from=-1h&to=-2h",
            400,
            "from",
        ),
        (
            "/api/metrics/history?host=hist&metric=cpu_percent&step=often",
            400,
            "step",
        ),
        (
            "/api/metrics/history?host=hist&metric=cpu_percent&step=0",
            400,
            "step",
        ),
        (
            "/api/metrics/history?host=hist&metric=cpu_percent&from=-24h&step=1",
            400,
            "step",
        ),
        (
            "/api/metrics/history?host=ghost&metric=cpu_percent",
            404,
            "ghost",
        ),
        ("/api/metrics/current?host=ghost", 404, "ghost"),
        ("/api/workers/status?host=ghost", 404, "ghost"),
        ("/api/no-such-thing", 404, "/api/no-such-thing"),
    ];
    for (path, status, mentions) in cases {
        let (got, body) = agg.get(path).await?;
        assert_eq!(got, status, "{path}: {body}");
        let message = body["error"].as_str().unwrap_or_default();
        assert!(
            message.contains(mentions),
            "{path}: `{message}` should name {mentions}"
        );
        assert_eq!(body["status"], status);
    }
    agg.stop().await
}

/// Times and steps at the edge of what the numbers hold are refused with a
/// 400 naming the parameter, never wrapped into a window that slips past
/// the bucket cap (issue 12, item 8).
#[tokio::test]
async fn history_refuses_times_that_would_overflow() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let agg = Aggregator::start(&dir.path().join("fw.db")).await?;
    seed(&agg).await?;

    let base = "/api/metrics/history?host=hist&metric=cpu_percent";
    let cases = [
        ("&from=-3000000000000h&to=100000000000", "from"),
        ("&from=-3000000000000h", "from"),
        ("&from=-9223372036854775807ms", "from"),
        ("&from=0&to=100000000000&step=18446744073709551615", "step"),
        ("&to=9999-12-31T23:59:59Z", "to"),
    ];
    for (query, mentions) in cases {
        let path = format!("{base}{query}");
        let (got, body) = agg.get(&path).await?;
        assert_eq!(got, 400, "{path}: {body}");
        let message = body["error"].as_str().unwrap_or_default();
        assert!(
            message.contains(mentions),
            "{path}: `{message}` should name {mentions}"
        );
    }
    agg.stop().await
}
