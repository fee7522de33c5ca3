//! The aggregator under load: the real binary started as its own process
//! on loopback ports with a database in a temporary directory, an agent
//! token in its environment and reads open (the listener is loopback
//! only). Killed when dropped, however the run ends.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use anyhow::{Context, Result};

/// How long the aggregator may take to answer `/health` after it starts.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// A running aggregator process.
pub struct AggregatorProcess {
    child: Child,
    /// Its pid, as `/proc` paths want it.
    pub pid: String,
    /// `http://127.0.0.1:PORT`
    pub http: String,
    /// `http://127.0.0.1:PORT` of the gRPC listener.
    pub grpc: String,
    /// `ws://127.0.0.1:PORT/ws`
    pub ws: String,
    pub db: PathBuf,
    /// The agent token it accepts.
    pub token: String,
    // Removed after the process is killed (fields drop after `drop`).
    _dir: tempfile::TempDir,
}

fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

impl AggregatorProcess {
    /// Starts `bin` with HTTP on `http_port` (0: any free port) and waits
    /// until it is healthy.
    /// Starts `bin`; `durability` is `[storage] durability` ("full" or
    /// "normal"), to measure what acknowledging only durable samples costs.
    pub async fn start(bin: &Path, http_port: u16, durability: &str) -> Result<Self> {
        let dir = tempfile::tempdir()?;
        let db = dir.path().join("load.db");
        let grpc = free_port()?;
        let http = match http_port {
            0 => free_port()?,
            port => port,
        };
        let token = fleetwatch_aggregator::auth::secret::generate("fwa_")?;
        // Every simulated agent connects from 127.0.0.1 with one token:
        // lift the caps on connections per address and on what one token
        // may take, which protect a real aggregator.
        let config = dir.path().join("aggregator.toml");
        std::fs::write(
            &config,
            format!(
                "[limits]\nconnections_per_address = 100000\nhosts_per_token = 1000000\n\
             bytes_per_second_per_token = 4294967296\n\
             [storage]\ndurability = \"{durability}\"\n"
            ),
        )?;
        let child = Command::new(bin)
            .arg("--config")
            .arg(&config)
            .args(["--grpc-listen", &format!("127.0.0.1:{grpc}")])
            .args(["--http-listen", &format!("127.0.0.1:{http}")])
            .arg("--db")
            .arg(&db)
            .args(["--read-auth", "open"])
            .env("RUST_LOG", "warn")
            .env("FLEETWATCH_AGENT_TOKEN", &token)
            .stdout(Stdio::null())
            .spawn()
            .with_context(|| format!("start {}", bin.display()))?;
        let aggregator = Self {
            pid: child.id().to_string(),
            child,
            http: format!("http://127.0.0.1:{http}"),
            grpc: format!("http://127.0.0.1:{grpc}"),
            ws: format!("ws://127.0.0.1:{http}/ws"),
            db,
            token,
            _dir: dir,
        };
        let health = format!("{}/health", aggregator.http);
        crate::wait_for("aggregator health", START_TIMEOUT, || {
            let request = reqwest::get(health.clone());
            async move { request.await.ok().filter(|r| r.status().is_success()) }
        })
        .await?;
        Ok(aggregator)
    }

    /// How it exited, if it has.
    pub fn exited(&mut self) -> Result<Option<ExitStatus>> {
        Ok(self.child.try_wait()?)
    }
}

impl Drop for AggregatorProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
