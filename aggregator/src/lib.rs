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
//! - [`admin`] — the `token`, `host` and `user` commands.
//! - [`telemetry`] — the aggregator's own counters and the `/metrics` text.
//!
//! [`run`] starts everything on listeners the caller bound, so tests can
//! run a real aggregator on port 0.

pub mod admin;
pub mod alerts;
pub mod api;
pub mod auth;
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
}

/// Where people reach the dashboard, for links in notifications.
fn dashboard_url(config: &Config, listeners: &Listeners) -> String {
    match &config.public_url {
        Some(url) => url.trim_end_matches('/').to_owned(),
        None => {
            let addr = listeners.http.local_addr().unwrap_or(config.http_listen);
            format!("{}://{addr}", http_scheme(config))
        }
    }
}

pub(crate) fn http_scheme(config: &Config) -> &'static str {
    if config.tls.mode == tls::TlsMode::Off {
        "http"
    } else {
        "https"
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
        http_scheme(config),
        grpc.port()
    )
}

/// The sockets the aggregator serves on.
pub struct Listeners {
    pub grpc: TcpListener,
    pub http: TcpListener,
}

impl Listeners {
    /// Binds the addresses from the config.
    pub async fn bind(config: &Config) -> Result<Self, Error> {
        let bind = |addr: SocketAddr| async move {
            TcpListener::bind(addr)
                .await
                .map_err(|source| Error::Listen { addr, source })
        };
        Ok(Self {
            grpc: bind(config.grpc_listen).await?,
            http: bind(config.http_listen).await?,
        })
    }
}

/// Runs the aggregator until `shutdown` is cancelled.
pub async fn run(
    config: Config,
    listeners: Listeners,
    shutdown: CancellationToken,
) -> Result<(), Error> {
    // TLS first: a bad certificate should stop start-up before anything runs.
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
    let store = store::SqliteStore::open_with(&config.db, config.storage)
        .await
        .map_err(|source| Error::Store {
            path: config.db.clone(),
            source,
        })?;
    auth::agent_tokens::sync_config_token(&store, config.agent_token.as_deref(), model::now_ms())
        .await?;
    if let Some(secret) =
        auth::agent_tokens::enrollment(&store, &config.db, model::now_ms()).await?
    {
        let addr = listeners.grpc.local_addr().unwrap_or(config.grpc_listen);
        let fingerprint = server_tls.as_ref().map(|t| t.fingerprint.as_str());
        tracing::info!(
            "enroll an agent with: {}",
            enroll_command(&config, addr, fingerprint, &secret)
        );
    }
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
    let writer = store::Writer::spawn(std::sync::Arc::new(store.clone()), telemetry.clone());
    let tasks = TaskTracker::new();

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

    let notifier = alerts::notify::Notifier::spawn(
        config.alerts.webhooks.clone(),
        config.alerts.notify.clone(),
        Some(dashboard_url(&config, &listeners)),
        shutdown.clone(),
    );
    telemetry.watch_notifier(notifier.clone());
    let alerts = alerts::Alerts::start(
        alerts::service::Parts {
            rules: config.rules.clone(),
            store: store.clone(),
            hub: hub.clone(),
            notifier,
            restart_grace: config.alerts.restart_grace(),
        },
        shutdown.clone(),
        &tasks,
    )
    .await
    .map_err(|source| Error::Alerts(Box::new(source)))?;

    let ingest = ingest::IngestService::new(
        store.clone(),
        writer,
        latest.clone(),
        hub.clone(),
        alerts.clone(),
        connected.clone(),
        gate.clone(),
        telemetry.clone(),
        shutdown.clone(),
    );
    let grpc_addr = listeners.grpc.local_addr().ok();
    let http_addr = listeners.http.local_addr().ok();
    if server_tls.is_none() {
        for addr in [grpc_addr, http_addr].into_iter().flatten() {
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
    let read_requires_login = match http_addr {
        Some(addr) => config.auth.read.requires_login(addr),
        None => config.auth.read.requires_login(config.http_listen),
    };
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
    let mut auth = api::auth::HttpAuth::new(
        read_requires_login,
        config.auth.session_ttl,
        config.tls.mode != tls::TlsMode::Off,
    );
    if !read_requires_login {
        let tls_names = match &config.tls.mode {
            tls::TlsMode::SelfSigned { names } => names.as_slice(),
            _ => &[],
        };
        auth = auth.with_allowed_hosts(auth::hosts::AllowedHosts::new(
            http_addr.unwrap_or(config.http_listen),
            config.public_url.as_deref(),
            tls_names,
        ));
    }
    let app = api::router(api::AppState {
        store: store.clone(),
        latest,
        connected,
        hub,
        alerts,
        started: Instant::now(),
        shutdown: shutdown.clone(),
        auth,
        gate,
        telemetry,
    })
    .into_make_service_with_connect_info::<SocketAddr>();

    let limits = config.limits;
    let (grpc, http): (Server, Server) = match server_tls {
        None => {
            let http_local = listeners.http.local_addr().map_err(Error::Http)?;
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
            let grpc = ingest::server::serve_plain(ingest, grpc_rx, shutdown.clone());
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
            let http_local = listeners.http.local_addr().map_err(Error::Http)?;
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
            let grpc = ingest::server::serve_tls(ingest, grpc_rx, shutdown.clone());
            let listener = axum::serve::ListenerExt::tap_io(
                tls::HttpsListener::new(http_rx, http_local),
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

    tracing::info!(grpc = ?grpc_addr, http = ?http_addr, db = %config.db.display(), "aggregator started");
    if let Some(addr) = http_addr {
        tracing::info!("dashboard and API at {}://{addr}/", http_scheme(&config));
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
}
