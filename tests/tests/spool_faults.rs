//! Fault injection against the agent's durable spool, with the real agent
//! binary and a real aggregator on loopback: an aggregator outage, the agent
//! `kill -9`ed during it, a torn spool tail, an overflowing spool, and a
//! proxy that stalls or resets the connection.
//!
//! The agent samples every 100 ms. The spool's own files say exactly which
//! samples the agent holds at a kill; afterwards every one of them must be
//! stored exactly once, the stored series must have no hole wider than a
//! few intervals except where the agent was not running or the spool
//! reported a dropped range, and nothing may be stored inside a reported
//! range.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use fleetwatch_tests::{Aggregator, Proc, now_ms, stored_samples, wait_for};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};

const WAIT: Duration = Duration::from_secs(45);
/// Widest step allowed between two stored samples at a 100 ms interval
/// where nothing was lost (scheduling on a busy CI machine included).
const MAX_STEP_MS: i64 = 600;

/// A real agent binary sampling every 100 ms with its spool in `state`.
fn start_agent(token: &str, url: &str, state: &Path, host: &str, extra: &[&str]) -> Result<Proc> {
    let state = state.to_string_lossy().into_owned();
    let mut args = vec![
        "--aggregator",
        url,
        "--token",
        token,
        "--interval",
        "100ms",
        "--host-id",
        host,
        "--state-dir",
        state.as_str(),
    ];
    args.extend_from_slice(extra);
    Proc::start("fleetwatch-agent", &args)
}

/// The timestamps the agent's spool files hold now.
fn spooled(state: &Path) -> Vec<i64> {
    fleetwatch_agent::spool::read_dir_samples(&state.join("spool"))
        .map(|s| s.iter().map(|s| s.timestamp_ms).collect())
        .unwrap_or_default()
}

/// Waits until the spool holds at least `n` samples.
async fn wait_spooled(state: &Path, n: usize) -> Result<Vec<i64>> {
    wait_for(&format!("{n} samples in the spool"), WAIT, || async {
        let stamps = spooled(state);
        (stamps.len() >= n).then_some(stamps)
    })
    .await
}

/// Restarts an aggregator on the same ports and database, with the same
/// agent token.
async fn restart(db: &Path, grpc: SocketAddr, http: SocketAddr, token: &str) -> Result<Aggregator> {
    let config = fleetwatch_aggregator::Config {
        agent_token: Some(token.to_owned()),
        ..Default::default()
    };
    Aggregator::start_with(db, grpc, http, config).await
}

/// Waits until every timestamp of `expected` is stored and the agent's
/// spool is empty (all acknowledged); returns what is stored.
async fn wait_delivered(
    agg: &Aggregator,
    host: &str,
    state: &Path,
    expected: &[i64],
) -> Result<Vec<i64>> {
    let pool = agg.db().await?;
    let stamps = wait_for(
        "every spooled sample stored and acknowledged, and a newer one",
        WAIT,
        || async {
            let stored: Vec<i64> = stored_samples(&pool, host)
                .await
                .ok()?
                .iter()
                .map(|s| s.timestamp_ms)
                .collect();
            let have: HashSet<i64> = stored.iter().copied().collect();
            let spool_empty = fleetwatch_agent::spool::segment_files(&state.join("spool"))
                .is_ok_and(|f| f.is_empty());
            // And a sample taken since: the backlog may well be sent before
            // the agent's first new sample is due.
            let newest = expected.iter().max();
            let live = stored.iter().any(|t| Some(t) > newest);
            (spool_empty && live && expected.iter().all(|t| have.contains(t))).then_some(stored)
        },
    )
    .await?;
    pool.close().await;
    Ok(stamps)
}

/// Every sample stored once, and the stored samples and the known `holes`
/// (inclusive ranges) together cover the whole run with no step wider than
/// [`MAX_STEP_MS`]: every sample missing is inside a known hole.
fn check_series(stamps: &[i64], holes: &[(i64, i64)]) -> Result<()> {
    let mut sorted = stamps.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    ensure!(sorted.len() == stamps.len(), "a sample stored twice");
    ensure!(sorted == stamps, "samples come back in time order");
    let mut spans: Vec<(i64, i64)> = stamps.iter().map(|&t| (t, t)).collect();
    spans.extend_from_slice(holes);
    spans.sort_unstable();
    let mut end = spans.first().map_or(0, |s| s.1);
    for &(from, to) in &spans[1..] {
        ensure!(
            from - end <= MAX_STEP_MS,
            "samples lost between {end} and {from} ({} ms); known holes {holes:?}",
            from - end
        );
        end = end.max(to);
    }
    Ok(())
}

/// The first stored sample after `t`.
fn first_after(stamps: &[i64], t: i64) -> Result<i64> {
    stamps
        .iter()
        .copied()
        .find(|&s| s > t)
        .context("no sample after the restart")
}

struct Outage {
    dir: tempfile::TempDir,
    agg: Aggregator,
    grpc: SocketAddr,
    http: SocketAddr,
    db: PathBuf,
    state: PathBuf,
}

/// An aggregator with a first batch of samples from `host` stored.
async fn running(host: &str) -> Result<(Outage, Proc)> {
    let dir = tempfile::tempdir()?;
    let db = dir.path().join("fw.db");
    let agg = Aggregator::start(&db).await?;
    let state = dir.path().join("agent-state");
    let agent = start_agent(&agg.agent_token, &agg.grpc_url(), &state, host, &[])?;
    let pool = agg.db().await?;
    wait_for("first samples stored", WAIT, || async {
        let n = stored_samples(&pool, host).await.ok()?.len();
        (n >= 5).then_some(())
    })
    .await?;
    pool.close().await;
    let (grpc, http) = (agg.grpc, agg.http);
    Ok((
        Outage {
            dir,
            agg,
            grpc,
            http,
            db,
            state,
        },
        agent,
    ))
}

#[tokio::test]
async fn an_agent_killed_during_an_outage_resumes_from_its_spool() -> Result<()> {
    let host = "killed";
    let (o, agent) = running(host).await?;
    let token = o.agg.agent_token.clone();
    o.agg.stop().await?;
    let before = spooled(&o.state).len();
    let held = wait_spooled(&o.state, before + 20).await?;
    // kill -9 (Proc's drop), and the samples the dead agent left behind.
    drop(agent);
    let killed_at = now_ms();
    let held_at_kill = spooled(&o.state);
    ensure!(held_at_kill.len() >= held.len());
    let agent = start_agent(&token, &format!("http://{}", o.grpc), &o.state, host, &[])?;
    wait_spooled(&o.state, held_at_kill.len() + 10).await?;

    let agg = restart(&o.db, o.grpc, o.http, &token).await?;
    let stamps = wait_delivered(&agg, host, &o.state, &held_at_kill).await?;
    // The only hole: while no agent ran.
    check_series(&stamps, &[(killed_at, first_after(&stamps, killed_at)?)])?;
    let (code, log) = agent.terminate()?;
    ensure!(code == Some(0), "agent exit {code:?}: {log}");
    ensure!(log.contains("resuming from the spool"), "{log}");
    agg.stop().await?;
    drop(o.dir);
    Ok(())
}

#[tokio::test]
async fn a_torn_spool_tail_loses_only_the_torn_record() -> Result<()> {
    let host = "torn";
    let (o, agent) = running(host).await?;
    let token = o.agg.agent_token.clone();
    o.agg.stop().await?;
    let before = spooled(&o.state).len();
    wait_spooled(&o.state, before + 15).await?;
    drop(agent);
    let held = spooled(&o.state);
    let torn = *held.last().context("spooled samples")?;

    // Cut the newest segment inside its last record and append garbage,
    // as a crash in the middle of a write on a disk that reorders would.
    let newest = fleetwatch_agent::spool::segment_files(&o.state.join("spool"))?
        .pop()
        .context("a segment")?;
    let len = std::fs::metadata(&newest)?.len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&newest)?
        .set_len(len - 7)?;
    let mut file = tokio::fs::OpenOptions::new()
        .append(true)
        .open(&newest)
        .await?;
    file.write_all(b"\x00\x13garbage after a torn write\xff")
        .await?;
    file.flush().await?;
    drop(file);

    let agent = start_agent(&token, &format!("http://{}", o.grpc), &o.state, host, &[])?;
    let agg = restart(&o.db, o.grpc, o.http, &token).await?;
    let expected: Vec<i64> = held.iter().copied().filter(|&t| t != torn).collect();
    let stamps = wait_delivered(&agg, host, &o.state, &expected).await?;
    ensure!(
        !stamps.contains(&torn),
        "the torn record cannot have been sent"
    );
    // The holes: the torn sample, and while no agent ran.
    check_series(&stamps, &[(torn, first_after(&stamps, torn)?)])?;
    let (_, log) = agent.terminate()?;
    ensure!(log.contains("torn or corrupt records"), "{log}");
    agg.stop().await?;
    drop(o.dir);
    Ok(())
}

#[tokio::test]
async fn an_overflowing_spool_loses_exactly_the_ranges_it_reports() -> Result<()> {
    let host = "overflow";
    let dir = tempfile::tempdir()?;
    let db = dir.path().join("fw.db");
    let agg = Aggregator::start(&db).await?;
    let (grpc, http, token) = (agg.grpc, agg.http, agg.agent_token.clone());
    let state = dir.path().join("agent-state");
    let agent = start_agent(
        &agg.agent_token,
        &agg.grpc_url(),
        &state,
        host,
        &["--buffer-bytes", "16384"],
    )?;
    let pool = agg.db().await?;
    wait_for("first samples stored", WAIT, || async {
        (stored_samples(&pool, host).await.ok()?.len() >= 5).then_some(())
    })
    .await?;
    pool.close().await;
    agg.stop().await?;

    // Down until the spool has dropped something.
    let dropped_file = state.join("spool").join("dropped");
    wait_for("the spool to overflow", WAIT, || {
        let exists = dropped_file.exists();
        async move { exists.then_some(()) }
    })
    .await?;
    let up_at = now_ms();
    let agg = restart(&db, grpc, http, &token).await?;
    let gaps = wait_for("the dropped ranges at the aggregator", WAIT, || async {
        let gaps = agg
            .get_ok(&format!("/api/gaps?host={host}&from=-1h"))
            .await
            .ok()?;
        let list = gaps.as_array()?.clone();
        (!list.is_empty() && !dropped_file.exists()).then_some(list)
    })
    .await?;
    let holes: Vec<(i64, i64)> = gaps
        .iter()
        .map(|g| {
            (
                g["from_ms"].as_i64().unwrap_or(0),
                g["to_ms"].as_i64().unwrap_or(0),
            )
        })
        .collect();
    let reported: u64 = gaps.iter().filter_map(|g| g["samples"].as_u64()).sum();
    ensure!(reported > 0, "{gaps:?}");

    let stamps = wait_delivered(&agg, host, &state, &[]).await?;
    ensure!(
        stamps.iter().any(|&t| t > up_at),
        "live samples after the outage are stored"
    );
    for &(from, to) in &holes {
        ensure!(
            !stamps.iter().any(|t| (from..=to).contains(t)),
            "a sample stored inside the dropped range {from}..={to}"
        );
    }
    // Every sample missing is inside a reported range.
    check_series(&stamps, &holes)?;
    drop(agent);
    agg.stop().await?;
    Ok(())
}

/// A TCP proxy on loopback to `target`. `mode`: 0 forwards, 1 stalls
/// (accepts but moves no bytes), 2 resets every connection.
async fn proxy(target: SocketAddr, mode: Arc<AtomicU8>) -> Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let mode = mode.clone();
            tokio::spawn(async move {
                let _ = pipe(client, target, mode).await;
            });
        }
    });
    Ok(addr)
}

async fn pipe(mut client: TcpStream, target: SocketAddr, mode: Arc<AtomicU8>) -> Result<()> {
    let mut server = TcpStream::connect(target).await?;
    let (mut cr, mut cw) = client.split();
    let (mut sr, mut sw) = server.split();
    let mut up = [0u8; 16384];
    let mut down = [0u8; 16384];
    loop {
        match mode.load(Ordering::SeqCst) {
            1 => {
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
            2 => {
                // An RST, not a FIN: linger 0 then close.
                client.set_zero_linger()?;
                return Ok(());
            }
            _ => {}
        }
        // Wake up now and then to see a change of mode.
        let tick = tokio::time::sleep(Duration::from_millis(50));
        tokio::select! {
            n = tokio::io::AsyncReadExt::read(&mut cr, &mut up) => {
                let n = n?;
                if n == 0 { return Ok(()); }
                sw.write_all(&up[..n]).await?;
            }
            n = tokio::io::AsyncReadExt::read(&mut sr, &mut down) => {
                let n = n?;
                if n == 0 { return Ok(()); }
                cw.write_all(&down[..n]).await?;
            }
            () = tick => {}
        }
    }
}

/// Runs an agent through a proxy whose mode is set to `fault` for 4 s,
/// twice; every sample taken must be stored exactly once.
async fn through_a_faulty_proxy(host: &str, fault: u8) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let agg = Aggregator::start(&dir.path().join("fw.db")).await?;
    let mode = Arc::new(AtomicU8::new(0));
    let addr = proxy(agg.grpc, mode.clone()).await?;
    let state = dir.path().join("agent-state");
    let agent = start_agent(
        &agg.agent_token,
        &format!("http://{addr}"),
        &state,
        host,
        &[],
    )?;
    let pool = agg.db().await?;
    let stored_after = |after: i64| {
        let pool = pool.clone();
        async move {
            let stored = stored_samples(&pool, host).await.ok()?;
            (stored.iter().filter(|s| s.timestamp_ms > after).count() >= 5).then_some(())
        }
    };
    wait_for("first samples stored", WAIT, || stored_after(0)).await?;
    for _ in 0..2 {
        mode.store(fault, Ordering::SeqCst);
        wait_spooled(&state, 30).await?;
        mode.store(0, Ordering::SeqCst);
        let healed = now_ms();
        // Delivered: new samples stored and nothing from before the heal
        // left in the spool.
        wait_for("the backlog delivered after the fault", WAIT, || async {
            stored_after(healed).await?;
            spooled(&state).iter().all(|&t| t > healed).then_some(())
        })
        .await?;
    }
    let (code, log) = agent.terminate()?;
    ensure!(code == Some(0), "agent exit {code:?}: {log}");
    let mut stamps: Vec<i64> = stored_samples(&pool, host)
        .await?
        .iter()
        .map(|s| s.timestamp_ms)
        .collect();
    // What the last seconds' acks did not confirm is still in the spool,
    // for the next run: kept, not lost. A sample may be both stored and
    // spooled (committed, its ack still on the wire when the agent
    // stopped): the resend is stored once, as idempotence makes sure.
    ensure!(stamps.is_sorted(), "samples come back in time order");
    // The spool's leftovers may be older than samples stored after them
    // (live samples go first, the backlog after): merge them in order.
    let left: Vec<i64> = spooled(&state)
        .into_iter()
        .filter(|t| !stamps.contains(t))
        .collect();
    stamps.extend(left);
    stamps.sort_unstable();
    check_series(&stamps, &[])?;
    pool.close().await;
    agg.stop().await
}

#[tokio::test]
async fn a_proxy_that_resets_connections_loses_nothing() -> Result<()> {
    through_a_faulty_proxy("reset", 2).await
}

#[tokio::test]
async fn a_proxy_that_stops_forwarding_loses_nothing() -> Result<()> {
    through_a_faulty_proxy("stalled", 1).await
}
