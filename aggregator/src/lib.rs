//! fleetwatch aggregator: receives agents' samples over gRPC, stores them,
//! and serves the HTTP API.
//!
//! - [`config`] — defaults, TOML file, environment and flags.
//! - [`ingest`] — the gRPC edge; validates and converts wire messages.
//! - [`model`] — the aggregator's domain types.
//! - [`store`] — SQLite storage and the batching writer.
//! - [`hub`] — live fan-out of stored samples and host changes.
//! - [`alerts`] — alert rules and their evaluation.
//! - [`api`] — the HTTP API.
//! - [`retention`] — background pruning.
//!
//! [`run`] starts everything on listeners the caller bound, so tests can
//! run a real aggregator on port 0.

pub mod alerts;
pub mod api;
pub mod config;
pub mod hub;
pub mod ingest;
pub mod model;
pub mod retention;
pub mod store;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use fleetwatch_proto::IngestServer;
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use config::Config;

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
    Grpc(#[from] tonic::transport::Error),
    #[error("HTTP server failed: {0}")]
    Http(std::io::Error),
    #[error("cannot start alerting: {0}")]
    Alerts(Box<alerts::AlertsError>),
}

/// Where people reach the dashboard, for links in notifications.
fn dashboard_url(config: &Config, listeners: &Listeners) -> String {
    match &config.public_url {
        Some(url) => url.trim_end_matches('/').to_owned(),
        None => {
            let addr = listeners.http.local_addr().unwrap_or(config.http_listen);
            format!("http://{addr}")
        }
    }
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
    let store = store::SqliteStore::open(&config.db)
        .await
        .map_err(|source| Error::Store {
            path: config.db.clone(),
            source,
        })?;
    let hub = hub::Hub::new();
    let connected = ingest::Connected::default();
    let writer = store::Writer::spawn(store.clone());
    let tasks = TaskTracker::new();

    tasks.spawn(retention::checkpoint(store.clone(), shutdown.clone()));
    tasks.spawn(retention::run(
        store.clone(),
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
    let alerts = alerts::Alerts::start(
        alerts::service::Parts {
            rules: config.rules.clone(),
            store: store.clone(),
            hub: hub.clone(),
            notifier,
        },
        shutdown.clone(),
        &tasks,
    )
    .await
    .map_err(|source| Error::Alerts(Box::new(source)))?;

    let ingest = ingest::IngestService::new(
        store.clone(),
        writer,
        hub.clone(),
        alerts.clone(),
        connected.clone(),
        shutdown.clone(),
    );
    let grpc_addr = listeners.grpc.local_addr().ok();
    let http_addr = listeners.http.local_addr().ok();
    for addr in [grpc_addr, http_addr].into_iter().flatten() {
        if !addr.ip().is_loopback() {
            tracing::warn!(%addr, "listening in plain text on a non-loopback address");
        }
    }
    let grpc = tonic::transport::Server::builder()
        .http2_keepalive_interval(Some(Duration::from_secs(20)))
        .http2_keepalive_timeout(Some(Duration::from_secs(10)))
        .add_service(
            IngestServer::new(ingest).max_decoding_message_size(ingest::convert::MAX_MESSAGE_BYTES),
        )
        .serve_with_incoming_shutdown(
            TcpListenerStream::new(listeners.grpc),
            shutdown.clone().cancelled_owned(),
        );

    let app = api::router(api::AppState {
        store: store.clone(),
        connected,
        hub,
        alerts,
        started: Instant::now(),
        shutdown: shutdown.clone(),
    });
    let http = axum::serve(
        listeners.http,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown.clone().cancelled_owned());

    tracing::info!(grpc = ?grpc_addr, http = ?http_addr, db = %config.db.display(), "aggregator started");
    if let Some(addr) = http_addr {
        tracing::info!("dashboard and API at http://{addr}/");
    }

    let (grpc, http) = tokio::join!(grpc, async { http.await.map_err(Error::Http) });
    tasks.close();
    tasks.wait().await;
    store.pool().close().await;
    grpc?;
    http?;
    tracing::info!("aggregator stopped");
    Ok(())
}
