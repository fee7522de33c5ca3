//! fleetwatch aggregator: receives agents' samples over gRPC, stores them,
//! and serves the HTTP API.
//!
//! - [`config`] — defaults, TOML file, environment and flags.
//! - [`ingest`] — the gRPC edge; validates and converts wire messages.
//! - [`model`] — the aggregator's domain types.
//! - [`store`] — the one owner of every query: samples and hosts, alert
//!   history and silences, agent tokens, users, sessions and API tokens,
//!   behind a trait per family; SQLite storage and the batching writer.
//! - [`hub`] — live fan-out of stored samples and host changes.
//! - [`alerts`] — alert rules and their evaluation.
//! - [`api`] — the HTTP API.
//! - [`retention`] — background pruning (through the store).
//! - [`tls`] — rustls for both listeners, self-signed certificates.
//! - [`conn`] — connection limits on both listeners: deadlines, idle
//!   timeout, a cap per address, logged accept failures.
//! - [`auth`] — agent tokens, users, sessions and API tokens: secrets,
//!   passwords and policy; their rows are the store's.
//! - [`cli`] — the command line: run flags, `--test-webhook`, and the
//!   `token`, `host`, `user` and `api-token` commands.
//! - [`telemetry`] — the aggregator's own counters and the `/metrics` text.
//!
//! [`run`] starts everything on listeners the caller bound, so tests can
//! run a real aggregator on port 0.

pub mod alerts;
pub mod api;
pub mod auth;
pub mod cli;
pub mod config;
pub mod conn;
pub mod connected;
pub mod hub;
pub mod ids;
pub mod ingest;
pub mod model;
pub mod retention;
pub mod store;
pub mod telemetry;
pub mod tls;

use std::net::SocketAddr;
use std::time::Instant;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use config::Config;

/// One of the two servers, plain or TLS, as a single type.
type Server = std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), Error>> + Send>>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot open the database {path}: {source}")]
    Store {
        path: std::path::PathBuf,
        source: store::StoreError,
    },
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("gRPC server failed: {0}")]
    Grpc(#[from] ingest::server::ServeError),
    #[error("HTTP server failed: {0}")]
    Http(std::io::Error),
    #[error("TLS: {0}")]
    Tls(#[from] tls::TlsError),
    #[error("cannot start alerting: {0}")]
    Alerts(Box<alerts::AlertsError>),
    #[error("agent tokens: {0}")]
    Tokens(#[from] auth::agent_tokens::TokenError),
    #[error("cannot start the sample writer's thread: {0}")]
    Writer(std::io::Error),
}

/// Where people reach the dashboard, for links in notifications.
fn dashboard_url(config: &Config, listeners: &Listeners) -> String {
    match &config.public_url {
        Some(url) => url.trim_end_matches('/').to_owned(),
        None => {
            let addr = listeners.http.local_addr().unwrap_or(config.http_listen);
            format!("{}://{addr}", config.http_scheme())
        }
    }
}

/// The command that starts an agent streaming to this aggregator with the
/// enrollment token `secret`.
fn enroll_command(
    config: &Config,
    grpc: SocketAddr,
    fingerprint: Option<&str>,
    secret: &str,
) -> String {
    let host = if grpc.ip().is_unspecified() {
        tls::hostname().unwrap_or_else(|| "THIS-HOST".to_owned())
    } else {
        grpc.ip().to_string()
    };
    let host = if host.contains(':') {
        format!("[{host}]")
    } else {
        host
    };
    let trust = match (&config.tls.mode, fingerprint) {
        (tls::TlsMode::Off, _) => String::new(),
        (tls::TlsMode::SelfSigned { .. }, Some(fp)) => format!(" --pin-sha256 {fp}"),
        _ => " --ca-file /path/to/the-ca-that-signed-tls_cert.pem".to_owned(),
    };
    format!(
        "fleetwatch-agent --aggregator {}://{host}:{}{trust} --token {secret}",
        config.http_scheme(),
        grpc.port()
    )
}

/// The sockets the aggregator serves on.
pub struct Listeners {
    pub grpc: TcpListener,
    pub http: TcpListener,
}

/// Connections the kernel holds for the aggregator to accept (capped by
/// `net.core.somaxconn`). The standard library's 128 reset agents when a
/// fleet of thousands reconnects at once, after a restart or an outage.
const LISTEN_BACKLOG: u32 = 4096;

impl Listeners {
    /// Binds the addresses from the config.
    pub async fn bind(config: &Config) -> Result<Self, Error> {
        Ok(Self {
            grpc: listen(config.grpc_listen)?,
            http: listen(config.http_listen)?,
        })
    }
}

/// A listening socket on `addr` with the aggregator's backlog.
fn listen(addr: SocketAddr) -> Result<TcpListener, Error> {
    let listen = || {
        let socket = if addr.is_ipv4() {
            tokio::net::TcpSocket::new_v4()?
        } else {
            tokio::net::TcpSocket::new_v6()?
        };
        // As the standard library's bind does: a restarted aggregator gets
        // its port back while the old connections are in TIME_WAIT.
        socket.set_reuseaddr(true)?;
        socket.bind(addr)?;
        socket.listen(LISTEN_BACKLOG)
    };
    listen().map_err(|source| Error::Listen { addr, source })
}

/// Runs the aggregator until `shutdown` is cancelled: loads TLS, opens the
/// store, starts the shared parts and the background tasks, then serves
/// gRPC and HTTP until shutdown, and closes the store last.
pub async fn run(
    config: Config,
    listeners: Listeners,
    shutdown: CancellationToken,
) -> Result<(), Error> {
    // TLS first: a bad certificate should stop start-up before anything runs.
    let server_tls = load_server_tls(&config)?;
    let store = open_store(&config).await?;
    set_up_agent_tokens(&config, &store, &listeners, server_tls.as_ref()).await?;
    let tasks = TaskTracker::new();
    let core = start_core(&config, &listeners, store, &tasks, &shutdown).await?;
    let grpc_addr = listeners.grpc.local_addr().ok();
    let http_addr = listeners.http.local_addr().ok();
    if server_tls.is_none() {
        warn_if_unencrypted([grpc_addr, http_addr].into_iter().flatten());
    }
    let grpc_service = grpc_service(&core, &shutdown);
    let app = http_app(&config, http_addr, &core, &shutdown);
    let store = core.store.clone();
    drop(core);
    let (grpc, http) = serve(
        listeners,
        server_tls,
        config.limits,
        grpc_service,
        app,
        &shutdown,
    )?;

    tracing::info!(grpc = ?grpc_addr, http = ?http_addr, db = %config.db.display(), "aggregator started");
    if let Some(addr) = http_addr {
        tracing::info!("dashboard and API at {}://{addr}/", config.http_scheme());
    }
    let (grpc, http) = tokio::join!(grpc, http);
    tasks.close();
    tasks.wait().await;
    store.close().await;
    grpc?;
    http?;
    tracing::info!("aggregator stopped");
    Ok(())
}

/// The TLS configs of both listeners (`None` without TLS), logged with the
/// certificate's fingerprint.
fn load_server_tls(config: &Config) -> Result<Option<tls::ServerTls>, Error> {
    let server_tls = tls::ServerTls::load(&config.tls, &config.db)?;
    if let Some(tls) = &server_tls {
        tracing::info!(
            cert = %tls.cert_path.display(),
            fingerprint = %tls.fingerprint,
            mutual_tls = config.tls.client_ca.is_some(),
            "serving gRPC and HTTP over TLS"
        );
        if matches!(config.tls.mode, tls::TlsMode::SelfSigned { .. }) {
            tracing::info!(
                "self-signed certificate; pin it on agents with: --pin-sha256 {}",
                tls.fingerprint
            );
        }
    }
    Ok(server_tls)
}

/// The database, opened (and migrated) with the configured options.
async fn open_store(config: &Config) -> Result<store::SqliteStore, Error> {
    store::SqliteStore::open_with(&config.db, config.storage)
        .await
        .map_err(|source| Error::Store {
            path: config.db.clone(),
            source,
        })
}

/// Keeps the config's agent token in the database, and on a first start
/// without any token makes one and logs how to enroll an agent with it.
async fn set_up_agent_tokens(
    config: &Config,
    store: &store::SqliteStore,
    listeners: &Listeners,
    server_tls: Option<&tls::ServerTls>,
) -> Result<(), Error> {
    auth::agent_tokens::sync_config_token(store, config.agent_token.as_deref(), model::now_ms())
        .await?;
    if let Some(secret) = auth::agent_tokens::enrollment(store, &config.db, model::now_ms()).await?
    {
        let addr = listeners.grpc.local_addr().unwrap_or(config.grpc_listen);
        let fingerprint = server_tls.map(|t| t.fingerprint.as_str());
        tracing::info!(
            "enroll an agent with: {}",
            enroll_command(config, addr, fingerprint, &secret)
        );
    }
    Ok(())
}

/// What both servers share: the store and the state kept beside it, the
/// live hub, who is connected, the agent gate, counters, the batching
/// writer and the alerting.
struct Core {
    store: store::SqliteStore,
    latest: store::Latest,
    hub: hub::Hub,
    connected: connected::Connected,
    gate: auth::agent_access::AgentGate,
    telemetry: telemetry::Telemetry,
    writer: store::Writer,
    alerts: alerts::Alerts,
}

/// Loads the hosts' latest state, starts the shared parts, the background
/// tasks (gate, WAL checkpoints, retention) and the alerting.
async fn start_core(
    config: &Config,
    listeners: &Listeners,
    store: store::SqliteStore,
    tasks: &TaskTracker,
    shutdown: &CancellationToken,
) -> Result<Core, Error> {
    // Once, before anything reads or writes it.
    let latest = store::Latest::load(&store)
        .await
        .map_err(|source| Error::Store {
            path: config.db.clone(),
            source,
        })?;
    let hub = hub::Hub::new();
    let connected = connected::Connected::default();
    let gate = auth::agent_access::AgentGate::new(
        std::sync::Arc::new(store.clone()),
        connected.clone(),
        auth::quota::TokenQuota::new(
            config.limits.hosts_per_token,
            config.limits.bytes_per_second_per_token,
        ),
    );
    let telemetry = telemetry::Telemetry::new(Some(config.db.clone()));
    let writer = store::Writer::spawn(std::sync::Arc::new(store.clone()), telemetry.clone())
        .map_err(Error::Writer)?;

    tasks.spawn(gate.clone().watch(shutdown.clone()));
    tasks.spawn(store::sqlite::checkpoint::run(
        store.clone(),
        shutdown.clone(),
    ));
    tasks.spawn(retention::run(
        store.clone(),
        latest.clone(),
        config.retention,
        config.alerts.history_retention(),
        shutdown.clone(),
    ));
    let alerts = start_alerts(config, listeners, &store, &hub, &telemetry, tasks, shutdown).await?;
    Ok(Core {
        store,
        latest,
        hub,
        connected,
        gate,
        telemetry,
        writer,
        alerts,
    })
}

/// The webhook notifier and the alert engine's task.
async fn start_alerts(
    config: &Config,
    listeners: &Listeners,
    store: &store::SqliteStore,
    hub: &hub::Hub,
    telemetry: &telemetry::Telemetry,
    tasks: &TaskTracker,
    shutdown: &CancellationToken,
) -> Result<alerts::Alerts, Error> {
    let notifier = alerts::notify::Notifier::spawn(
        config.alerts.webhooks.clone(),
        config.alerts.notify.clone(),
        Some(dashboard_url(config, listeners)),
        shutdown.clone(),
    );
    telemetry.watch_notifier(notifier.clone());
    alerts::Alerts::start(
        alerts::service::Parts {
            rules: config.rules.clone(),
            store: store.clone(),
            hub: hub.clone(),
            notifier,
            restart_grace: config.alerts.restart_grace(),
        },
        shutdown.clone(),
        tasks,
    )
    .await
    .map_err(|source| Error::Alerts(Box::new(source)))
}

/// Says loudly that a non-loopback listener serves plain text.
fn warn_if_unencrypted(addrs: impl Iterator<Item = SocketAddr>) {
    for addr in addrs {
        if !addr.ip().is_loopback() {
            tracing::warn!(
                %addr,
                "UNENCRYPTED: listening in plain text on a non-loopback address; samples and \
                 API traffic can be read and altered on the network. Set tls_cert and \
                 tls_key (or tls_self_signed = true) to serve TLS"
            );
        }
    }
}

/// The gRPC ingest service; `ingest::server` serves it.
fn grpc_service(core: &Core, shutdown: &CancellationToken) -> ingest::IngestService {
    ingest::IngestService::new(
        core.store.clone(),
        core.writer.clone(),
        core.latest.clone(),
        core.hub.clone(),
        core.alerts.clone(),
        core.connected.clone(),
        core.gate.clone(),
        core.telemetry.clone(),
        shutdown.clone(),
    )
}

/// The HTTP API and dashboard, with the read policy in force logged.
fn http_app(
    config: &Config,
    http_addr: Option<SocketAddr>,
    core: &Core,
    shutdown: &CancellationToken,
) -> axum::extract::connect_info::IntoMakeServiceWithConnectInfo<axum::Router, SocketAddr> {
    api::router(api::AppState {
        store: core.store.clone(),
        latest: core.latest.clone(),
        connected: core.connected.clone(),
        hub: core.hub.clone(),
        alerts: core.alerts.clone(),
        started: Instant::now(),
        shutdown: shutdown.clone(),
        auth: http_auth(config, http_addr),
        gate: core.gate.clone(),
        telemetry: core.telemetry.clone(),
    })
    .into_make_service_with_connect_info::<SocketAddr>()
}

/// Whether reads need a login on this listener (logged, with a warning for
/// open reads on a non-loopback address), and the `Host` names answered
/// while reads are open.
fn http_auth(config: &Config, http_addr: Option<SocketAddr>) -> api::auth::HttpAuth {
    let read_requires_login = config
        .auth
        .read
        .requires_login(http_addr.unwrap_or(config.http_listen));
    if let Some(addr) = http_addr
        && !read_requires_login
        && !addr.ip().is_loopback()
    {
        tracing::warn!(
            %addr,
            "OPEN READS: anyone who reaches this non-loopback listener can read the dashboard \
             and API without logging in; set [auth] read = \"login\" (or --read-auth login)"
        );
    }
    tracing::info!(
        read_requires_login,
        "reading the dashboard and API {}",
        if read_requires_login {
            "needs a login"
        } else {
            "is open; changes need an admin"
        }
    );
    let auth = api::auth::HttpAuth::new(
        read_requires_login,
        config.auth.session_ttl,
        config.tls.mode != tls::TlsMode::Off,
    );
    if read_requires_login {
        return auth;
    }
    let tls_names = match &config.tls.mode {
        tls::TlsMode::SelfSigned { names } => names.as_slice(),
        _ => &[],
    };
    auth.with_allowed_hosts(auth::hosts::AllowedHosts::new(
        http_addr.unwrap_or(config.http_listen),
        config.public_url.as_deref(),
        tls_names,
    ))
}

/// Both servers on the listeners, behind the connection limits, over TLS
/// when configured; they stop on `shutdown`.
fn serve(
    listeners: Listeners,
    server_tls: Option<tls::ServerTls>,
    limits: conn::Limits,
    grpc_service: ingest::IngestService,
    app: axum::extract::connect_info::IntoMakeServiceWithConnectInfo<axum::Router, SocketAddr>,
    shutdown: &CancellationToken,
) -> Result<(Server, Server), Error> {
    let http_local = listeners.http.local_addr().map_err(Error::Http)?;
    let servers: (Server, Server) = match server_tls {
        None => {
            let grpc_rx = conn::listen::spawn_plain(
                listeners.grpc,
                limits,
                conn::Until::FirstRead,
                shutdown.clone(),
                "grpc",
            );
            let http_rx = conn::listen::spawn_plain(
                listeners.http,
                limits,
                conn::Until::FirstWrite,
                shutdown.clone(),
                "http",
            );
            let grpc = ingest::server::serve_plain(grpc_service, grpc_rx, shutdown.clone());
            // `tap_io` makes axum hand the peer address to `ConnectInfo`
            // for any listener whose address is a `SocketAddr`.
            let listener = axum::serve::ListenerExt::tap_io(
                conn::listen::ChannelListener::new(http_rx, http_local),
                |_| {},
            );
            let http = axum::serve(listener, app)
                .with_graceful_shutdown(shutdown.clone().cancelled_owned());
            (
                Box::pin(async { grpc.await.map_err(Error::Grpc) }),
                Box::pin(async { http.await.map_err(Error::Http) }),
            )
        }
        Some(server_tls) => {
            let grpc_rx = tls::spawn_acceptor(
                listeners.grpc,
                server_tls.grpc,
                limits,
                shutdown.clone(),
                "grpc",
            );
            let http_rx = tls::spawn_acceptor(
                listeners.http,
                server_tls.http,
                limits,
                shutdown.clone(),
                "http",
            );
            let grpc = ingest::server::serve_tls(grpc_service, grpc_rx, shutdown.clone());
            let listener = axum::serve::ListenerExt::tap_io(
                conn::listen::ChannelListener::new(http_rx, http_local),
                |_| {},
            );
            let http = axum::serve(listener, app)
                .with_graceful_shutdown(shutdown.clone().cancelled_owned());
            (
                Box::pin(async { grpc.await.map_err(Error::Grpc) }),
                Box::pin(async { http.await.map_err(Error::Http) }),
            )
        }
    };
    Ok(servers)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enroll_command_names_the_address_and_how_to_trust_it() {
        let plain = Config::default();
        let addr: SocketAddr = "10.1.2.3:7400".parse().unwrap();
        assert_eq!(
            enroll_command(&plain, addr, None, "fwa_x"),
            "fleetwatch-agent --aggregator http://10.1.2.3:7400 --token fwa_x"
        );
        let self_signed = Config {
            tls: tls::TlsConfig {
                mode: tls::TlsMode::SelfSigned { names: vec![] },
                client_ca: None,
            },
            ..Config::default()
        };
        let v6: SocketAddr = "[::1]:7400".parse().unwrap();
        assert_eq!(
            enroll_command(&self_signed, v6, Some("AB:CD"), "fwa_x"),
            "fleetwatch-agent --aggregator https://[::1]:7400 --pin-sha256 AB:CD --token fwa_x"
        );
        let any: SocketAddr = "0.0.0.0:7400".parse().unwrap();
        let command = enroll_command(&plain, any, None, "fwa_x");
        assert!(!command.contains("0.0.0.0"), "{command}");
    }

    /// Hundreds of agents connecting at once, before the aggregator accepts
    /// any: the kernel queues them all (with the standard library's backlog
    /// of 128 the rest time out or are reset).
    #[tokio::test]
    async fn a_fleet_connecting_at_once_is_queued_not_refused() {
        let config = Config {
            grpc_listen: "127.0.0.1:0".parse().unwrap(),
            http_listen: "127.0.0.1:0".parse().unwrap(),
            ..Config::default()
        };
        let listeners = Listeners::bind(&config).await.unwrap();
        let addr = listeners.grpc.local_addr().unwrap();
        // The kernel caps every backlog at somaxconn (4096 since Linux 5.4).
        let cap: usize = std::fs::read_to_string("/proc/sys/net/core/somaxconn")
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(4096);
        if cap <= 129 {
            eprintln!("somaxconn is {cap}: no backlog above 128 can be shown here");
            return;
        }
        let n = cap.min(300);
        let connects = (0..n).map(|_| {
            tokio::time::timeout(
                std::time::Duration::from_secs(3),
                tokio::net::TcpStream::connect(addr),
            )
        });
        let results = futures_util::future::join_all(connects).await;
        let connected = results.iter().filter(|r| matches!(r, Ok(Ok(_)))).count();
        assert_eq!(connected, n, "connected before any accept");
        // And they are all there to accept.
        for _ in 0..n {
            listeners.grpc.accept().await.unwrap();
        }
    }
}
