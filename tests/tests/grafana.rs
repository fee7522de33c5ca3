//! deploy/grafana-fleetwatch.json: the Grafana dashboard imports as is (its
//! datasource is an input), and every query in it names metrics that a real
//! aggregator's `/metrics` serves, in PromQL that Prometheus' own parser
//! (promtool) accepts.

use std::collections::BTreeSet;
use std::process::Command;

use anyhow::{Context, Result};
use fleetwatch_tests::{Aggregator, RawStream, now_ms, sample};
use serde_json::Value;

const DASHBOARD: &str = include_str!("../../deploy/grafana-fleetwatch.json");

/// Every `expr` of every panel target, and the template variables' queries.
fn queries(dashboard: &Value) -> Vec<String> {
    fn walk(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(map) => {
                for (key, value) in map {
                    match (key.as_str(), value) {
                        ("expr", Value::String(expr)) => out.push(expr.clone()),
                        _ => walk(value, out),
                    }
                }
            }
            Value::Array(items) => items.iter().for_each(|i| walk(i, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(&dashboard["panels"], &mut out);
    for variable in dashboard["templating"]["list"]
        .as_array()
        .into_iter()
        .flatten()
    {
        if let Some(q) = variable["query"]["query"].as_str() {
            out.push(q.to_owned());
        }
    }
    out
}

/// The `fleetwatch_…` metric names a query reads.
fn metric_names(query: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut rest = query;
    while let Some(start) = rest.find("fleetwatch_") {
        let tail = &rest[start..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        names.insert(tail[..end].to_owned());
        rest = &tail[end..];
    }
    names
}

#[test]
fn the_dashboard_imports_as_is() -> Result<()> {
    let dashboard: Value = serde_json::from_str(DASHBOARD)?;
    let input = &dashboard["__inputs"][0];
    assert_eq!(input["name"], "DS_PROMETHEUS");
    assert_eq!(input["pluginId"], "prometheus");
    assert!(dashboard["uid"].is_string() && dashboard["title"].is_string());
    let variables = dashboard["templating"]["list"]
        .as_array()
        .context("no variables")?;
    assert!(
        variables.iter().any(|v| v["name"] == "host"),
        "no $host variable"
    );
    // Every panel reads the input datasource, not one of the author's.
    let panels = dashboard["panels"].as_array().context("no panels")?;
    for panel in panels.iter().filter(|p| p["type"] != "row") {
        assert_eq!(
            panel["datasource"]["uid"], "${DS_PROMETHEUS}",
            "{}",
            panel["title"]
        );
    }
    let rows: Vec<&str> = panels
        .iter()
        .filter(|p| p["type"] == "row")
        .filter_map(|p| p["title"].as_str())
        .collect();
    for wanted in [
        "Fleet overview",
        "Host detail",
        "Worker pools",
        "Aggregator health",
    ] {
        assert!(
            rows.iter().any(|r| r.starts_with(wanted)),
            "no {wanted} row in {rows:?}"
        );
    }
    Ok(())
}

#[tokio::test]
async fn every_query_names_a_metric_of_a_real_scrape() -> Result<()> {
    let dashboard: Value = serde_json::from_str(DASHBOARD)?;
    let queries = queries(&dashboard);
    assert!(queries.len() >= 20, "{queries:?}");

    let dir = tempfile::tempdir()?;
    let agg = Aggregator::start(&dir.path().join("fw.db")).await?;
    let mut stream = RawStream::hello(&agg, "graf-a").await?;
    let t = (now_ms() / 1000 - 5) * 1000;
    stream
        .send(fleetwatch_proto::Batch {
            seq: 1,
            samples: vec![sample(t, 30.0)],
            ..Default::default()
        })
        .await?;
    let scrape = agg
        .http_client()
        .get(agg.url("/metrics"))
        .send()
        .await?
        .text()
        .await?;
    let served: BTreeSet<&str> = scrape
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split(['{', ' ']).next())
        .collect();
    for query in &queries {
        let names = metric_names(query);
        assert!(!names.is_empty(), "{query} reads no fleetwatch metric");
        for name in names {
            assert!(
                served.contains(name.as_str()),
                "{name} (in {query}) is not served"
            );
        }
    }

    // Prometheus' own PromQL parser, through a rule file, when installed
    // (scripts/test installs it).
    if Command::new("promtool").arg("--version").output().is_ok() {
        let rules = serde_json::json!({ "groups": [{
            "name": "grafana",
            "rules": queries
                .iter()
                .filter(|q| !q.starts_with("label_values("))
                .enumerate()
                .map(|(i, q)| serde_json::json!({
                    "record": format!("grafana:query{i}"),
                    "expr": q.replace("$host", ".*"),
                }))
                .collect::<Vec<_>>(),
        }]});
        // JSON is YAML.
        let path = dir.path().join("rules.yml");
        std::fs::write(&path, rules.to_string())?;
        let out = Command::new("promtool")
            .arg("check")
            .arg("rules")
            .arg(&path)
            .output()?;
        assert!(
            out.status.success(),
            "promtool: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    } else {
        eprintln!(
            "SKIPPED the PromQL check: promtool is not installed (apt-get install prometheus)"
        );
    }
    agg.stop().await
}
