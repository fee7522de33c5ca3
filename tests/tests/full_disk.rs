//! End-to-end (issue 12, item 1): the database on a small tmpfs, an agent
//! streaming, the tmpfs filled until writes fail, then freed. `/health`
//! reports the database failing (with its reason) while it cannot write;
//! ingest resumes by itself once space returns; every sample acked is
//! stored exactly once and nothing acked is lost.
//!
//! Needs `mount -t tmpfs` (root, as in CI); elsewhere it prints why it is
//! skipped and passes.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use fleetwatch_proto as wire;
use fleetwatch_tests::{Aggregator, RawStream, now_ms, sample, stored_samples, wait_for};

const HOST: &str = "disk-full";
const SAMPLES_PER_BATCH: i64 = 20;

/// A tmpfs mounted for the test; unmounted on drop.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Result<Option<Self>> {
        let dir = tempfile::tempdir()?;
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .output();
        match out {
            Ok(out) if out.status.success() => Ok(Some(Self { dir })),
            Ok(out) => {
                eprintln!(
                    "SKIPPED full_disk: cannot mount a tmpfs here ({}); run as root to test \
                     recovery from a full disk",
                    String::from_utf8_lossy(&out.stderr).trim()
                );
                Ok(None)
            }
            Err(e) => {
                eprintln!("SKIPPED full_disk: no mount command ({e})");
                Ok(None)
            }
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

/// Writes zeros to `path` until the filesystem is full.
fn fill(path: &Path) -> Result<u64> {
    let mut file = std::fs::File::create(path)?;
    let chunk = vec![0u8; 64 << 10];
    let mut written = 0u64;
    loop {
        match file.write(&chunk) {
            Ok(0) => break,
            Ok(n) => written += n as u64,
            Err(e) if e.raw_os_error() == Some(28) => break, // ENOSPC
            Err(e) => return Err(e.into()),
        }
    }
    let _ = file.flush();
    Ok(written)
}

/// Batch `seq`'s samples: one a second from `base`, `SAMPLES_PER_BATCH` of them.
fn batch(seq: u64, base: i64) -> wire::Batch {
    let first = base + (seq as i64 - 1) * SAMPLES_PER_BATCH * 1000;
    wire::Batch {
        seq,
        samples: (0..SAMPLES_PER_BATCH)
            .map(|i| {
                let mut s = sample(first + i * 1000, (seq % 90) as f64);
                for w in &mut s.workers {
                    // Distinct command lines take room, so the disk fills
                    // in a bounded number of batches.
                    w.cmdline = format!("worker --batch {seq} --pad {}", "x".repeat(400));
                }
                s
            })
            .collect(),
        ..Default::default()
    }
}

fn timestamps(seq: u64, base: i64) -> Vec<i64> {
    batch(seq, base)
        .samples
        .iter()
        .map(|s| s.timestamp_ms)
        .collect()
}

#[tokio::test]
async fn a_full_disk_stops_ingest_and_it_resumes_by_itself() -> Result<()> {
    let Some(tmpfs) = Tmpfs::mount("24m")? else {
        return Ok(());
    };
    let db: PathBuf = tmpfs.path().join("fw.db");
    let any = "127.0.0.1:0".parse()?;
    let agg =
        Aggregator::start_with(&db, any, any, fleetwatch_aggregator::Config::default()).await?;
    // Old enough that every batch is in the past, young enough to be kept.
    let base = now_ms() - 6 * 3600 * 1000;
    let mut acked: BTreeMap<u64, Vec<i64>> = BTreeMap::new();
    let mut stream = RawStream::hello(&agg, HOST).await?;
    let mut seq = 0u64;
    for _ in 0..5 {
        seq += 1;
        assert_eq!(stream.send(batch(seq, base)).await?, seq);
        acked.insert(seq, timestamps(seq, base));
    }
    assert_eq!(agg.get_ok("/health").await?["database"], "ok");

    // Fill the disk, then keep streaming until a batch is refused.
    let filler = tmpfs.path().join("filler");
    fill(&filler)?;
    let started = Instant::now();
    let failed_at = loop {
        seq += 1;
        match stream.send(batch(seq, base)).await {
            Ok(n) => {
                assert_eq!(n, seq);
                acked.insert(seq, timestamps(seq, base));
            }
            Err(status) => {
                assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}");
                break seq;
            }
        }
        if started.elapsed() > Duration::from_secs(60) {
            bail!("the database kept taking writes on a full disk ({seq} batches)");
        }
    };

    // While it cannot write, /health says so and why.
    let health = wait_for(
        "/health to report the database failing",
        Duration::from_secs(15),
        || async {
            let (status, body) = agg.get("/health").await.ok()?;
            (status == 503 && body["database"] == "failing").then_some(body)
        },
    )
    .await?;
    // For an orchestrator: alive (a restart would not free the disk), not ready.
    let (live, _) = agg.get("/health/live").await?;
    assert_eq!(live, 200);
    let (ready, body) = agg.get("/health/ready").await?;
    assert_eq!(ready, 503, "{body}");
    assert_eq!(body["database"], "failing");
    let reason = health["database_error"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        reason.contains("full") || reason.contains("disk"),
        "{health}"
    );

    // Space returns: the agent's resends are stored, without a restart.
    std::fs::remove_file(&filler)?;
    let mut resend = failed_at;
    let resumed = Instant::now();
    loop {
        let sent = match RawStream::hello(&agg, HOST).await {
            Ok(mut stream) => stream.send(batch(resend, base)).await,
            Err(status) => Err(status),
        };
        match sent {
            Ok(n) => {
                assert_eq!(n, resend);
                acked.insert(resend, timestamps(resend, base));
                if resend >= failed_at + 3 {
                    break;
                }
                resend += 1;
            }
            // A pause between attempts, as the agent's backoff would.
            Err(_) if resumed.elapsed() < Duration::from_secs(30) => {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(status) => bail!("ingest did not resume within 30 s of freeing space: {status:?}"),
        }
    }
    wait_for(
        "/health to be ok again",
        Duration::from_secs(15),
        || async {
            let (status, body) = agg.get("/health").await.ok()?;
            (status == 200 && body["database"] == "ok").then_some(())
        },
    )
    .await?;
    assert_eq!(agg.get_ok("/health/ready").await?["database"], "ok");

    // A resend of everything changes nothing (idempotent) ...
    let mut again = RawStream::hello(&agg, HOST).await?;
    for (seq, _) in acked.iter().take(3) {
        again.send(batch(*seq, base)).await?;
    }
    agg.stop().await?;

    // ... and every acked sample is stored exactly once.
    let pool = {
        let options = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(&db)
            .read_only(true);
        sqlx::SqlitePool::connect_with(options).await?
    };
    let stored = stored_samples(&pool, HOST).await?;
    pool.close().await;
    let mut count: BTreeMap<i64, usize> = BTreeMap::new();
    for s in &stored {
        *count.entry(s.timestamp_ms).or_default() += 1;
    }
    let duplicates: Vec<_> = count.iter().filter(|(_, n)| **n > 1).collect();
    assert!(duplicates.is_empty(), "stored twice: {duplicates:?}");
    let lost: Vec<i64> = acked
        .values()
        .flatten()
        .copied()
        .filter(|ts| !count.contains_key(ts))
        .collect();
    assert!(
        lost.is_empty(),
        "acked but not stored: {} samples, first {:?}",
        lost.len(),
        lost.first()
    );
    eprintln!(
        "full disk: {} batches acked before the disk filled at batch {failed_at}; {} samples stored",
        failed_at - 1,
        stored.len()
    );
    drop(tmpfs);
    Ok(())
}
