//! fleetwatch agent: samples this host and its worker processes every
//! interval and streams the samples to the aggregator.
//!
//! - [`config`] — defaults, TOML file, environment and flags, merged and checked.
//! - [`sample`] — the agent's own sample type, which the collectors build.
//! - [`wire`] — the one conversion of the agent's types to wire types.
//! - [`collect`] — the collectors (CPU, filesystems, disk and network from /proc and
//!   statvfs, memory and load via sysinfo, worker groups and their restarts via /proc
//!   and the kernel's process events).
//! - [`spool`] — the durable, bounded spool of unacknowledged samples (segment files).
//! - [`caps`] — caps on the workers and filesystems one sample reports.
//! - [`shipper`] — the gRPC stream, acks, reconnects with backoff.
//! - [`tls`] — rustls to the aggregator: CA file, pinned fingerprint or public roots.
//!
//! - [`schedule`] — the fixed wall-clock grid samples are taken on.
//!
//! [`run`] wires them: a sampling task that never waits on the network
//! feeds the shipper through an unbounded channel; the shipper writes every
//! sample to the spool, which applies the size and age bounds.

pub mod caps;
pub mod collect;
pub mod config;
pub mod sample;
pub mod schedule;
pub mod shipper;
pub mod spool;
pub mod tls;
pub mod wire;

use sample::{Hello, WorkerGroup};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

pub use config::Config;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read system information: {0}")]
    Sysinfo(#[from] sysinfo::Error),
    #[error(transparent)]
    Shipper(#[from] shipper::ShipperError),
    #[error("TLS: {0}")]
    Tls(#[from] tls::TlsError),
}

/// What the agent says about itself when it connects.
fn hello(config: &Config, collector: &mut collect::Collector) -> Hello {
    let cpu_count = collector.system().cpu_count();
    let memory_total_bytes = collector.system().memory_total();
    Hello {
        host_id: config.host_id.clone(),
        hostname: sysinfo::System::host_name().unwrap_or_default(),
        os: sysinfo::System::long_os_version().unwrap_or_default(),
        kernel: sysinfo::System::kernel_version().unwrap_or_default(),
        cpu_count,
        memory_total_bytes,
        agent_version: env!("CARGO_PKG_VERSION").to_owned(),
        interval_ms: u32::try_from(config.interval.as_millis()).unwrap_or(u32::MAX),
        worker_groups: config
            .workers
            .iter()
            .map(|g| WorkerGroup {
                name: g.name.clone(),
                min_alive: g.min_alive,
            })
            .collect(),
    }
}

/// Whether an aggregator URL names this machine (`localhost`, 127.0.0.0/8
/// or ::1).
fn is_loopback_url(url: &str) -> bool {
    let Some(rest) = url.split_once("://").map(|(_, rest)| rest) else {
        return false;
    };
    let authority = rest.split('/').next().unwrap_or_default();
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => authority.rsplit_once(':').map_or(authority, |(h, _)| h),
    };
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Runs the agent until `shutdown` is cancelled, then gives the aggregator a
/// moment to acknowledge what is buffered.
pub async fn run(config: Config, shutdown: CancellationToken) -> Result<(), Error> {
    let mut collector = collect::Collector::new(collect::CollectorConfig {
        groups: config.workers.clone(),
        system: config.system.clone(),
        state_dir: Some(config.state_dir.clone()),
        process_events: config.process_events,
    })?;
    let hello = hello(&config, &mut collector);
    let (tx, rx) = mpsc::unbounded_channel();
    let tls = config.tls.as_ref().map(tls::client_config).transpose()?;
    let shipper = shipper::Shipper::new(
        &config.aggregator,
        tls,
        config.token.as_deref(),
        hello,
        spool::SpoolConfig {
            dir: Some(config.state_dir.join("spool")),
            max_bytes: config.buffer_bytes,
            max_age: config.spool_max_age,
            backfill_rate: config.backfill_rate,
        },
        rx,
        shutdown.clone(),
    )?;
    tracing::info!(
        host_id = %config.host_id,
        aggregator = %config.aggregator,
        interval_ms = config.interval.as_millis() as u64,
        worker_groups = config.workers.len(),
        exact_restarts = collector.counts_restarts_exactly(),
        state_dir = %config.state_dir.display(),
        "agent started"
    );
    if config.token.is_none() {
        tracing::warn!(
            "no agent token: the aggregator will refuse this agent. Set token or token_file \
             (the aggregator logs an enrollment command on start-up)"
        );
    } else if config.tls.is_none() && !is_loopback_url(&config.aggregator) {
        tracing::warn!(
            aggregator = %config.aggregator,
            "UNENCRYPTED: the agent token and samples cross the network in plain text; use an \
             https:// aggregator"
        );
    }
    let shipper = tokio::spawn(shipper.run());

    let mut grid = schedule::Grid::new(config.interval);
    loop {
        let (at, timestamp_ms) = grid.next_tick();
        tokio::select! {
            () = shutdown.cancelled() => break,
            () = tokio::time::sleep_until(at.into()) => {
                let mut sample = collector.sample(timestamp_ms);
                caps::apply(&mut sample, config.max_workers_per_group, config.max_filesystems);
                if tx.send(sample).is_err() {
                    break;
                }
            }
        }
    }
    drop(tx);
    match shipper.await {
        Ok(0) => tracing::info!("agent stopped; every sample acknowledged"),
        Ok(pending) => tracing::warn!(
            pending,
            "agent stopped with unacknowledged samples; they stay in the spool for the next start"
        ),
        Err(e) => tracing::error!(error = %e, "shipper task failed"),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_urls_are_recognised() {
        assert!(is_loopback_url("http://127.0.0.1:7400"));
        assert!(is_loopback_url("http://127.3.2.1"));
        assert!(is_loopback_url("http://[::1]:7400"));
        assert!(is_loopback_url("http://LOCALHOST:7400/"));
        assert!(!is_loopback_url("http://10.0.0.1:7400"));
        assert!(!is_loopback_url("http://agg.example:7400"));
        assert!(!is_loopback_url("http://[2001:db8::1]:7400"));
    }
}
