//! The store's suite on SQLite, and what only SQLite has: a restart from
//! the journal, the upgrade from the first schema, retention per tier.

use std::time::Duration;

use super::*;
use crate::model::now_ms;
use crate::store::history_query::Metric;
use crate::store::rollup::Tier;
use crate::store::samples::{HistoryQuery, HostBatch, SampleStore};
use crate::store::suite;

#[tokio::test]
async fn resent_batches_store_nothing_twice() {
    let store = SqliteStore::in_memory().await.unwrap();
    suite::resent_batches_store_nothing_twice(&store).await;
}

#[tokio::test]
async fn rollups_equal_the_raw_aggregate() {
    for seed in [1, 2, 3] {
        let store = SqliteStore::in_memory().await.unwrap();
        suite::rollups_equal_the_raw_aggregate(&store, seed).await;
    }
}

async fn count(store: &SqliteStore, table: &str) -> i64 {
    sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) FROM {table}")))
        .fetch_one(&store.pool)
        .await
        .unwrap()
}

fn cpu_total(answer: &crate::store::HistoryAnswer) -> i64 {
    answer.buckets.iter().map(|b| b.count).sum()
}

async fn cpu_history(store: &SqliteStore, tier: Tier) -> i64 {
    let cpu = Metric::parse("cpu_percent").unwrap();
    let answer = store
        .history(&HistoryQuery {
            host_id: "a",
            metric: &cpu,
            from_ms: 0,
            to_ms: i64::MAX / 2,
            step_ms: 3_600_000,
            tier: Some(tier),
        })
        .await
        .unwrap();
    cpu_total(&answer)
}

#[tokio::test]
async fn samples_in_open_chunks_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fw.db");
    let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(5);
    // All in the window open now (the first host's key is 1).
    let window = crate::store::raw::window_start(1, crate::store::raw::span_ms(1000), now_ms());
    let samples = suite::timeline(&mut rng, window, 1000, 10);
    {
        let store = SqliteStore::open(&path).await.unwrap();
        store
            .upsert_host(&suite::host("a", 1000), now_ms())
            .await
            .unwrap();
        store
            .write_batches(&[HostBatch {
                host_id: "a".into(),
                samples: samples[..6].to_vec(),
            }])
            .await
            .unwrap();
        assert_eq!(count(&store, "chunks").await, 0, "still in the open chunk");
        assert_eq!(count(&store, "journal").await, 1);
        // Dropped without closing, as a kill -9 would.
    }
    let store = SqliteStore::open(&path).await.unwrap();
    assert_eq!(cpu_history(&store, Tier::Raw).await, 6);
    let current = store.current(Some("a")).await.unwrap();
    assert_eq!(current[0].timestamp_ms, samples[5].timestamp_ms);
    let stored = store
        .write_batches(&[HostBatch {
            host_id: "a".into(),
            samples: samples.clone(),
        }])
        .await
        .unwrap();
    assert_eq!(stored[0].iter().filter(|n| **n).count(), 4);
    // Chunked, the journal is emptied, and a restart finds it all.
    store.maintain(now_ms() + 3_600_000).await.unwrap();
    assert_eq!(count(&store, "chunks").await, 1);
    assert_eq!(count(&store, "journal").await, 0);
    store.close().await;
    let store = SqliteStore::open(&path).await.unwrap();
    assert_eq!(cpu_history(&store, Tier::Raw).await, 10);
    assert_eq!(cpu_history(&store, Tier::Minute).await, 10);
    assert_eq!(cpu_history(&store, Tier::Hour).await, 10);
    assert_eq!(
        store.current(Some("a")).await.unwrap()[0].timestamp_ms,
        samples[9].timestamp_ms
    );
}

#[tokio::test]
async fn each_tier_is_kept_for_its_own_retention() {
    let dir = tempfile::tempdir().unwrap();
    let day = Duration::from_secs(86_400);
    let options = SqliteOptions {
        retention: Retention {
            raw: 2 * day,
            minute: 30 * day,
            hour: 400 * day,
        },
        ..SqliteOptions::default()
    };
    let store = SqliteStore::open_with(&dir.path().join("fw.db"), options)
        .await
        .unwrap();
    store
        .upsert_host(&suite::host("a", 1000), now_ms())
        .await
        .unwrap();
    let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(9);
    let samples = suite::timeline(&mut rng, now_ms() - 600_000, 1000, 100);
    store
        .write_batches(&[HostBatch {
            host_id: "a".into(),
            samples,
        }])
        .await
        .unwrap();
    store.maintain(now_ms() + 3_600_000).await.unwrap();
    let day_ms = 86_400_000;
    assert_eq!(store.prune(now_ms()).await.unwrap(), Default::default());
    let p = store.prune(now_ms() + 3 * day_ms).await.unwrap();
    assert!(
        p.chunks >= 1 && p.minute_rows == 0 && p.hour_rows == 0,
        "{p:?}"
    );
    assert_eq!(cpu_history(&store, Tier::Raw).await, 0);
    assert_eq!(cpu_history(&store, Tier::Minute).await, 100);
    let p = store.prune(now_ms() + 31 * day_ms).await.unwrap();
    assert!(p.minute_rows >= 1 && p.hour_rows == 0, "{p:?}");
    assert_eq!(cpu_history(&store, Tier::Minute).await, 0);
    assert_eq!(cpu_history(&store, Tier::Hour).await, 100);
    store.prune(now_ms() + 401 * day_ms).await.unwrap();
    assert_eq!(cpu_history(&store, Tier::Hour).await, 0);
}

/// `tests/fixtures/v0_1.db` was written by the release before this schema:
/// 8 samples of `fixture-host-1` (2 workers), alerts, a silence, a user,
/// API tokens and agent tokens.
#[tokio::test]
async fn a_database_of_the_first_schema_upgrades_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fleetwatch.db");
    std::fs::copy(
        concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/v0_1.db"),
        &path,
    )
    .unwrap();
    let store = SqliteStore::open(&path).await.unwrap();
    let hosts = store.hosts().await.unwrap();
    assert_eq!(hosts.len(), 1);
    assert_eq!(hosts[0].info.host_id, "fixture-host-1");
    let cpu = Metric::parse("cpu_percent").unwrap();
    let answer = store
        .history(&HistoryQuery {
            host_id: "fixture-host-1",
            metric: &cpu,
            from_ms: 0,
            to_ms: i64::MAX / 2,
            step_ms: 3_600_000,
            tier: Some(Tier::Hour),
        })
        .await
        .unwrap();
    assert_eq!(cpu_total(&answer), 8);
    let (_, groups) = store
        .worker_groups("fixture-host-1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(groups[0].status.name, "sleepers");
    assert_eq!(groups[0].workers.len(), 2);
    for (table, rows) in [
        ("users", 1),
        ("api_tokens", 2),
        ("agent_tokens", 2),
        ("silences", 1),
    ] {
        assert_eq!(count(&store, table).await, rows, "{table}");
    }
    assert!(count(&store, "alerts").await >= 1);
    let old: Option<String> =
        sqlx::query_scalar("SELECT name FROM sqlite_master WHERE name = 'worker_samples'")
            .fetch_optional(&store.pool)
            .await
            .unwrap();
    assert!(old.is_none(), "the first schema's tables are gone");
    // Writing goes on where the old data ended.
    let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(1);
    let newer = suite::timeline(&mut rng, now_ms(), 1000, 1);
    let stored = store
        .write_batches(&[HostBatch {
            host_id: "fixture-host-1".into(),
            samples: newer,
        }])
        .await
        .unwrap();
    assert_eq!(stored, vec![vec![true]]);
}
