//! Fixtures for fleetwatch's end-to-end tests: a real aggregator and real
//! agents started in-process on ephemeral loopback ports with a temporary
//! database, real worker processes for the agents to find, a raw gRPC
//! client for hostile input, and waiting on conditions with deadlines.
//! [`loadgen`] holds the load generator's parts.

pub mod loadgen;

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
pub use fleetwatch_aggregator::auth::Role;
use fleetwatch_proto as wire;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;

/// Waits until `check` returns `Some`, polling every 50 ms, failing after `timeout`.
pub async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return Ok(value);
        }
        if Instant::now() > deadline {
            bail!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub fn now_ms() -> i64 {
    fleetwatch_aggregator::model::now_ms()
}

/// A real aggregator running in this process.
pub struct Aggregator {
    pub grpc: SocketAddr,
    pub http: SocketAddr,
    pub db: PathBuf,
    /// An agent token it accepts (its `agent_token`).
    pub agent_token: String,
    /// `http` or `https`.
    scheme: &'static str,
    /// Trusts the aggregator's certificate when it serves TLS.
    client: reqwest::Client,
    shutdown: CancellationToken,
    task: Option<tokio::task::JoinHandle<Result<(), fleetwatch_aggregator::Error>>>,
}

impl Aggregator {
    /// Starts on ephemeral ports with `db` as its database.
    pub async fn start(db: &Path) -> Result<Self> {
        Self::start_on(db, "127.0.0.1:0".parse()?, "127.0.0.1:0".parse()?).await
    }

    /// Starts on the given addresses (to restart on the same ports).
    pub async fn start_on(db: &Path, grpc: SocketAddr, http: SocketAddr) -> Result<Self> {
        Self::start_with(db, grpc, http, fleetwatch_aggregator::Config::default()).await
    }

    /// Starts with `config` (its addresses and database are replaced).
    pub async fn start_with(
        db: &Path,
        grpc: SocketAddr,
        http: SocketAddr,
        config: fleetwatch_aggregator::Config,
    ) -> Result<Self> {
        Self::start_tls(db, grpc, http, config, None).await
    }

    /// Like [`Self::start_with`]; when `config` turns TLS on, the HTTP client
    /// trusts `ca_pem`, or without it the self-signed certificate the
    /// aggregator generates beside its database.
    pub async fn start_tls(
        db: &Path,
        grpc: SocketAddr,
        http: SocketAddr,
        config: fleetwatch_aggregator::Config,
        ca_pem: Option<&str>,
    ) -> Result<Self> {
        let tls = config.tls.mode != fleetwatch_aggregator::tls::TlsMode::Off;
        let grpc_listener = TcpListener::bind(grpc).await.context("bind gRPC")?;
        let http_listener = TcpListener::bind(http).await.context("bind HTTP")?;
        let grpc = grpc_listener.local_addr()?;
        let http = http_listener.local_addr()?;
        let agent_token = match &config.agent_token {
            Some(token) => token.clone(),
            None => fleetwatch_aggregator::auth::secret::generate("fwa_")?,
        };
        let config = fleetwatch_aggregator::Config {
            grpc_listen: grpc,
            http_listen: http,
            db: db.to_owned(),
            agent_token: Some(agent_token.clone()),
            ..config
        };
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(fleetwatch_aggregator::run(
            config,
            fleetwatch_aggregator::Listeners {
                grpc: grpc_listener,
                http: http_listener,
            },
            shutdown.clone(),
        ));
        let client = if tls {
            let pem = match ca_pem {
                Some(pem) => pem.to_owned(),
                None => {
                    let path = fleetwatch_aggregator::tls::self_signed_dir(db).join("cert.pem");
                    wait_for("self-signed certificate", Duration::from_secs(10), || {
                        let text = std::fs::read_to_string(&path).ok();
                        async move { text.filter(|t| t.contains("END CERTIFICATE")) }
                    })
                    .await?
                }
            };
            reqwest::Client::builder()
                .add_root_certificate(reqwest::Certificate::from_pem(pem.as_bytes())?)
                .build()?
        } else {
            reqwest::Client::new()
        };
        let agg = Self {
            grpc,
            http,
            db: db.to_owned(),
            agent_token,
            scheme: if tls { "https" } else { "http" },
            client: client.clone(),
            shutdown,
            task: Some(task),
        };
        let url = agg.url("/health");
        wait_for("aggregator health", Duration::from_secs(10), || {
            let request = client.get(&url).send();
            async move { request.await.ok().filter(|r| r.status().is_success()) }
        })
        .await?;
        Ok(agg)
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}://{}{}", self.scheme, self.http, path)
    }

    pub fn grpc_url(&self) -> String {
        format!("{}://{}", self.scheme, self.grpc)
    }

    /// Stops it the way SIGTERM does and waits until it has exited.
    pub async fn stop(mut self) -> Result<()> {
        self.shutdown.cancel();
        if let Some(task) = self.task.take() {
            tokio::time::timeout(Duration::from_secs(15), task)
                .await
                .context("aggregator did not stop within 15 s")???;
        }
        Ok(())
    }

    /// GET a path and parse the JSON body, with its status.
    pub async fn get(&self, path: &str) -> Result<(u16, serde_json::Value)> {
        let response = self.client.get(self.url(path)).send().await?;
        let status = response.status().as_u16();
        let body = response.json().await.context("body is not JSON")?;
        Ok((status, body))
    }

    /// GET a path that must answer 200, returning its JSON body.
    pub async fn get_ok(&self, path: &str) -> Result<serde_json::Value> {
        let (status, body) = self.get(path).await?;
        if status != 200 {
            bail!("GET {path}: {status} {body}");
        }
        Ok(body)
    }

    /// The HTTP client, which trusts the aggregator's certificate under TLS.
    pub fn http_client(&self) -> &reqwest::Client {
        &self.client
    }

    /// Adds a dashboard user to the aggregator's database, as
    /// `fleetwatch-aggregator user add` does.
    pub async fn add_user(&self, name: &str, password: &str, role: Role) -> Result<()> {
        let store = fleetwatch_aggregator::store::SqliteStore::open(&self.db).await?;
        fleetwatch_aggregator::auth::users::add(&store, name, password, role).await?;
        store.close().await;
        Ok(())
    }

    /// Makes an API token, as `fleetwatch-aggregator api-token add` does,
    /// and returns its secret.
    pub async fn api_token(&self, name: &str, role: Role) -> Result<String> {
        let store = fleetwatch_aggregator::store::SqliteStore::open(&self.db).await?;
        let (_, secret) = fleetwatch_aggregator::auth::api_tokens::add(&store, name, role).await?;
        store.close().await;
        Ok(secret)
    }

    /// A new admin API token, for tests that change things through the API.
    pub async fn admin_token(&self) -> Result<String> {
        let name = format!("test-admin-{}", rand::random::<u32>());
        self.api_token(&name, Role::Admin).await
    }

    /// Signs in through `POST /api/login`; returns the `Cookie` header
    /// value (`fw_session=…`) to send with later requests.
    pub async fn login(&self, user: &str, password: &str) -> Result<String> {
        let response = self
            .client
            .post(self.url("/api/login"))
            .json(&serde_json::json!({ "user": user, "password": password }))
            .send()
            .await?;
        let status = response.status();
        let cookie = response
            .headers()
            .get(reqwest::header::SET_COOKIE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .map(str::to_owned);
        match cookie {
            Some(cookie) if status.is_success() => Ok(cookie),
            _ => bail!("login as {user}: {status} {}", response.text().await?),
        }
    }

    /// A read-only connection to the database, to check what was stored.
    pub async fn db(&self) -> Result<sqlx::SqlitePool> {
        let options = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(&self.db)
            .read_only(true);
        Ok(sqlx::SqlitePool::connect_with(options).await?)
    }
}

impl Drop for Aggregator {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// A binary of this workspace, from `FLEETWATCH_BIN_DIR` (default: the
/// workspace's `target/debug`, which `scripts/test` builds first).
pub fn binary(name: &str) -> PathBuf {
    let dir = std::env::var_os("FLEETWATCH_BIN_DIR").map_or_else(
        || PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../target/debug")),
        PathBuf::from,
    );
    dir.join(name)
}

/// Runs a binary to completion.
pub fn run_bin(name: &str, args: &[&str]) -> Result<std::process::Output> {
    let path = binary(name);
    Command::new(&path)
        .args(args)
        .env("RUST_LOG", "info")
        .output()
        .with_context(|| {
            format!(
                "run {} (build it with `cargo build --bins`)",
                path.display()
            )
        })
}

/// A binary running as a child process, its log (stderr) in a file the
/// test can read while it runs; killed if the test fails before stopping
/// it.
pub struct Proc {
    child: Child,
    log: tempfile::NamedTempFile,
}

impl Proc {
    pub fn start(name: &str, args: &[&str]) -> Result<Self> {
        let log = tempfile::NamedTempFile::new()?;
        let child = Command::new(binary(name))
            .args(args)
            .env("RUST_LOG", "info")
            .stdout(std::process::Stdio::null())
            .stderr(log.reopen()?)
            .spawn()
            .with_context(|| format!("start {name}"))?;
        Ok(Self { child, log })
    }

    /// What it has logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log.path()).unwrap_or_default()
    }

    /// Sends SIGTERM and waits for the exit; returns the exit code and log.
    pub fn terminate(mut self) -> Result<(Option<i32>, String)> {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status()?;
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Ok((status.code(), self.log()));
            }
            if Instant::now() > deadline {
                bail!("{pid} did not exit within 10 s of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A real agent running in this process.
pub struct Agent {
    shutdown: CancellationToken,
    task: Option<tokio::task::JoinHandle<Result<(), fleetwatch_agent::Error>>>,
    /// Its own state directory (spool), unless the test gave `--state-dir`.
    _state: Option<tempfile::TempDir>,
}

impl Agent {
    /// Starts an agent from command-line style arguments, with `agg`'s
    /// agent token.
    pub fn start(agg: &Aggregator, args: &[&str]) -> Result<Self> {
        let mut all = vec!["--token", agg.agent_token.as_str()];
        all.extend_from_slice(args);
        Self::start_raw(&all)
    }

    /// Starts an agent from command-line style arguments, exactly as
    /// `fleetwatch-agent` would parse them; without `--state-dir` it gets a
    /// temporary one, so agents never share a spool.
    pub fn start_raw(args: &[&str]) -> Result<Self> {
        use clap::Parser;
        let state = if args.contains(&"--state-dir") {
            None
        } else {
            Some(tempfile::tempdir()?)
        };
        let state_path = state
            .as_ref()
            .map(|d| d.path().to_string_lossy().into_owned());
        let extra = state_path.iter().flat_map(|p| ["--state-dir", p.as_str()]);
        let args = fleetwatch_agent::config::Args::try_parse_from(
            std::iter::once("fleetwatch-agent")
                .chain(args.iter().copied())
                .chain(extra),
        )?;
        let config = fleetwatch_agent::Config::load(&args)?;
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(fleetwatch_agent::run(config, shutdown.clone()));
        Ok(Self {
            shutdown,
            task: Some(task),
            _state: state,
        })
    }

    pub async fn stop(mut self) -> Result<()> {
        self.shutdown.cancel();
        if let Some(task) = self.task.take() {
            tokio::time::timeout(Duration::from_secs(10), task)
                .await
                .context("agent did not stop within 10 s")???;
        }
        Ok(())
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// Real processes for an agent to find: `sleep TAG`, killed on drop.
pub struct Workers {
    pub tag: String,
    children: Vec<Child>,
}

impl Workers {
    /// `tag` must be a number `sleep` accepts and that nothing else uses.
    pub fn new(tag: &str) -> Self {
        Self {
            tag: tag.to_owned(),
            children: Vec::new(),
        }
    }

    /// A unique sleep duration for this test process and `n`.
    pub fn unique_tag(n: u32) -> String {
        format!("{}.{}{}", 900_000 + n, std::process::id(), n)
    }

    /// The regex that matches exactly these workers' command lines.
    pub fn regex(&self) -> String {
        format!("^sleep {}$", self.tag.replace('.', "\\."))
    }

    /// Starts one more worker and waits until it has exec'd into `sleep`.
    pub fn spawn(&mut self) -> Result<u32> {
        let child = Command::new("sleep").arg(&self.tag).spawn()?;
        let pid = child.id();
        self.children.push(child);
        let path = format!("/proc/{pid}/cmdline");
        let deadline = Instant::now() + Duration::from_secs(5);
        while !std::fs::read(&path).is_ok_and(|c| c.starts_with(b"sleep\0")) {
            if Instant::now() > deadline {
                bail!("worker {pid} did not start");
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        Ok(pid)
    }

    /// Kills one worker (the oldest) and reaps it.
    pub fn kill_one(&mut self) -> Result<u32> {
        if self.children.is_empty() {
            bail!("no worker to kill");
        }
        let mut child = self.children.remove(0);
        let pid = child.id();
        let killed = child.kill();
        child.wait()?;
        killed?;
        Ok(pid)
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A throwaway certificate authority for TLS tests.
pub struct TestCa {
    issuer: rcgen::CertifiedIssuer<'static, rcgen::KeyPair>,
}

/// A certificate and its key, both PEM.
pub struct Issued {
    pub cert_pem: String,
    pub key_pem: String,
}

impl TestCa {
    pub fn new(name: &str) -> Result<Self> {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new())?;
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::DigitalSignature,
        ];
        let issuer = rcgen::CertifiedIssuer::self_signed(params, rcgen::KeyPair::generate()?)?;
        Ok(Self { issuer })
    }

    pub fn cert_pem(&self) -> String {
        self.issuer.pem()
    }

    /// A server certificate for `names` (host names or IP addresses).
    pub fn server(&self, names: &[&str]) -> Result<Issued> {
        self.issue(names, rcgen::ExtendedKeyUsagePurpose::ServerAuth)
    }

    /// A client certificate for mutual TLS.
    pub fn client(&self, name: &str) -> Result<Issued> {
        self.issue(&[name], rcgen::ExtendedKeyUsagePurpose::ClientAuth)
    }

    fn issue(&self, names: &[&str], usage: rcgen::ExtendedKeyUsagePurpose) -> Result<Issued> {
        let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        let mut params = rcgen::CertificateParams::new(names)?;
        params.extended_key_usages = vec![usage];
        let key = rcgen::KeyPair::generate()?;
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok(Issued {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }
}

impl Issued {
    /// Writes `<stem>.pem` and `<stem>.key` into `dir`, returning their paths.
    pub fn write(&self, dir: &Path, stem: &str) -> Result<(PathBuf, PathBuf)> {
        let cert = dir.join(format!("{stem}.pem"));
        let key = dir.join(format!("{stem}.key"));
        std::fs::write(&cert, &self.cert_pem)?;
        std::fs::write(&key, &self.key_pem)?;
        Ok((cert, key))
    }
}

/// Parses an aggregator config file's text, as `--config` would.
pub fn aggregator_config(toml_text: &str) -> Result<fleetwatch_aggregator::Config> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("aggregator.toml");
    std::fs::write(&path, toml_text)?;
    let args = fleetwatch_aggregator::config::Args {
        config: Some(path),
        ..Default::default()
    };
    Ok(fleetwatch_aggregator::Config::load(&args)?)
}

/// A raw gRPC stream to the aggregator, for sending exactly what a test wants.
pub struct RawStream {
    pub tx: mpsc::Sender<wire::AgentMessage>,
    pub inbound: tonic::Streaming<wire::AggregatorMessage>,
}

impl RawStream {
    /// Opens a stream with `agg`'s agent token and sends `first` (normally
    /// a Hello).
    pub async fn open(
        agg: &Aggregator,
        first: wire::AgentMessage,
    ) -> Result<RawStream, tonic::Status> {
        Self::open_with(agg, Some(&agg.agent_token), first).await
    }

    /// Opens a stream with `token` (none at all for `None`).
    pub async fn open_with(
        agg: &Aggregator,
        token: Option<&str>,
        first: wire::AgentMessage,
    ) -> Result<RawStream, tonic::Status> {
        Self::open_from(agg, None, token, first).await
    }

    /// Opens a stream from the local address `from` (such as another
    /// 127.0.0.0/8 address, to be another peer).
    pub async fn open_from(
        agg: &Aggregator,
        from: Option<std::net::IpAddr>,
        token: Option<&str>,
        first: wire::AgentMessage,
    ) -> Result<RawStream, tonic::Status> {
        let channel = tonic::transport::Endpoint::from_shared(agg.grpc_url())
            .map_err(|e| tonic::Status::internal(e.to_string()))?
            .local_address(from)
            .connect()
            .await
            .map_err(|e| tonic::Status::unavailable(e.to_string()))?;
        let mut client = wire::IngestClient::new(channel).max_encoding_message_size(64 << 20);
        let (tx, rx) = mpsc::channel(16);
        tx.send(first)
            .await
            .map_err(|_| tonic::Status::internal("send"))?;
        let mut request = tonic::Request::new(ReceiverStream::new(rx));
        if let Some(token) = token {
            let value = format!("Bearer {token}")
                .parse()
                .map_err(|_| tonic::Status::internal("token is not ASCII"))?;
            request
                .metadata_mut()
                .insert(wire::AUTHORIZATION_METADATA, value);
        }
        let inbound = client.connect(request).await?.into_inner();
        Ok(RawStream { tx, inbound })
    }

    pub async fn hello(agg: &Aggregator, host_id: &str) -> Result<RawStream, tonic::Status> {
        Self::open(agg, hello_msg(host_id)).await
    }

    /// Sends a batch and waits for its ack or the error status.
    pub async fn send(&mut self, batch: wire::Batch) -> Result<u64, tonic::Status> {
        let message = wire::AgentMessage {
            msg: Some(wire::agent_message::Msg::Batch(batch)),
        };
        if self.tx.send(message).await.is_err() {
            return Err(tonic::Status::unavailable("stream closed"));
        }
        let reply = tokio::time::timeout(Duration::from_secs(10), self.inbound.message())
            .await
            .map_err(|_| tonic::Status::deadline_exceeded("no reply in 10 s"))??;
        match reply.and_then(|m| m.msg) {
            Some(wire::aggregator_message::Msg::Ack(ack)) => Ok(ack.seq),
            None => Err(tonic::Status::unknown("stream ended without an ack")),
        }
    }
}

pub fn hello_msg(host_id: &str) -> wire::AgentMessage {
    wire::AgentMessage {
        msg: Some(wire::agent_message::Msg::Hello(wire::Hello {
            host_id: host_id.to_owned(),
            hostname: format!("{host_id}.test"),
            os: "test".to_owned(),
            kernel: "test".to_owned(),
            cpu_count: 2,
            memory_total_bytes: 1000,
            agent_version: "test".to_owned(),
            interval_ms: 1000,
            worker_groups: vec![wire::WorkerGroup {
                name: "queue".to_owned(),
                min_alive: 2,
            }],
        })),
    }
}

/// A valid sample at `ts` with the given CPU and one worker.
pub fn sample(ts: i64, cpu: f64) -> wire::Sample {
    wire::Sample {
        timestamp_ms: ts,
        system: Some(wire::SystemMetrics {
            cpu_percent: cpu,
            cpu_per_core: vec![cpu, cpu],
            load1: 0.5,
            memory_total_bytes: 1000,
            memory_used_bytes: 250,
            memory_available_bytes: 750,
            filesystems: vec![wire::Filesystem {
                mount_point: "/".to_owned(),
                fs_type: "ext4".to_owned(),
                device: "/dev/test".to_owned(),
                total_bytes: 100,
                available_bytes: 100 - (cpu as u64).min(100),
                used_bytes: (cpu as u64).min(100),
            }],
            process_count: 10,
            ..Default::default()
        }),
        workers: vec![wire::Worker {
            group: "queue".to_owned(),
            pid: 4242,
            name: "worker".to_owned(),
            cmdline: "worker --queue default".to_owned(),
            state: "sleeping".to_owned(),
            cpu_percent: 1.0,
            rss_bytes: 4096,
            threads: 1,
            start_time_secs: ts / 1000 - 60,
        }],
        groups: vec![wire::GroupStatus {
            name: "queue".to_owned(),
            min_alive: 2,
            alive: 1,
            restarts: 0,
            ..Default::default()
        }],
    }
}

/// Every sample the database holds for `host`, oldest first; a sample
/// stored twice appears twice.
pub async fn stored_samples(
    pool: &sqlx::SqlitePool,
    host: &str,
) -> Result<Vec<fleetwatch_aggregator::model::Sample>> {
    let mut conn = pool.acquire().await?;
    Ok(fleetwatch_aggregator::store::sqlite::inspect::samples_in(&mut conn, host).await?)
}

/// How many host samples and worker observations the database holds for
/// `host`.
pub async fn stored_counts(pool: &sqlx::SqlitePool, host: &str) -> Result<(i64, i64)> {
    let samples = stored_samples(pool, host).await?;
    let workers = samples.iter().map(|s| s.workers.len()).sum::<usize>();
    Ok((i64::try_from(samples.len())?, i64::try_from(workers)?))
}
