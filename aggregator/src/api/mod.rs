//! The HTTP API (axum): health, hosts, current and historical metrics,
//! worker status. Every answer is JSON, errors included. Hosts, current
//! values and worker status come from the latest state in memory
//! ([`crate::store::Latest`]); history from the store.
//!
//! - [`error`] — the JSON error type.
//! - [`hosts`] — `/health` and `/api/hosts`.
//! - [`metrics`] — `/api/metrics/current` and `/api/metrics/history`.
//! - [`workers`] — `/api/workers/status`.
//! - [`gaps`] — `/api/gaps`: ranges agents reported they dropped.
//! - [`alerts`] — `/api/alerts`, `/api/alerts/rules`, `/api/silences`.
//! - [`agent_tokens`] — `/api/agent-tokens`, for admins.
//! - [`prometheus`] — `/metrics`, the Prometheus scrape.
//! - [`openapi`] — `/api/openapi.json`, the OpenAPI document.
//! - [`params`] — parsing of times and durations in query strings.
//! - [`ws`] — `/ws`, the dashboard's live WebSocket feed; the snapshot it
//!   sends is built in `ws::snapshot` from the latest state.
//! - [`dashboard`] — `/` and `/assets/*`, the embedded web page.
//! - [`login`] — `/api/login`, `/api/logout`, `/api/me`: dashboard sessions.
//!
//! Every request passes [`crate::api::auth::guard`] first (who is asking,
//! may they read, may they write), and every response carries the security
//! headers set at the end of [`router`].

pub mod agent_tokens;
pub mod alerts;
pub mod auth;
pub mod dashboard;
pub mod error;
pub mod gaps;
pub mod hosts;
pub mod login;
pub mod metrics;
pub mod openapi;
pub mod params;
pub mod prometheus;
pub mod workers;
pub mod ws;

use std::time::Instant;

use axum::Router;
use axum::http::{HeaderName, HeaderValue, Uri, header};
use axum::routing::{delete, get, post};
use tokio_util::sync::CancellationToken;
use tower_http::set_header::SetResponseHeaderLayer;

use crate::alerts::Alerts;
use crate::api::auth::HttpAuth;
use crate::auth::agent_access::AgentGate;
use crate::connected::Connected;
use crate::hub::Hub;
use crate::store::{Latest, SqliteStore};
use error::ApiError;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub store: SqliteStore,
    /// Every host's latest state: what current values, the host list,
    /// worker status and WebSocket snapshots are answered from.
    pub latest: Latest,
    pub connected: Connected,
    pub hub: Hub,
    pub alerts: Alerts,
    pub started: Instant,
    /// Cancelled when the aggregator stops; long-lived connections end on it.
    pub shutdown: CancellationToken,
    /// Read policy, session lifetime, TLS and the login rate limiter.
    pub auth: HttpAuth,
    /// The agent streams' gate, to close a revoked token's streams.
    pub gate: AgentGate,
    /// The aggregator's own counters, for `/metrics`.
    pub telemetry: crate::telemetry::Telemetry,
}

#[cfg(test)]
impl AppState {
    /// A state over `store` with no alert rules, no webhooks and no agents,
    /// for unit tests of the handlers.
    pub(crate) async fn for_tests(
        store: SqliteStore,
        hub: Hub,
        shutdown: CancellationToken,
        auth: HttpAuth,
    ) -> Self {
        let alerts = crate::alerts::Alerts::start(
            crate::alerts::service::Parts {
                rules: Vec::new(),
                store: store.clone(),
                hub: hub.clone(),
                notifier: crate::alerts::notify::Notifier::spawn(
                    Vec::new(),
                    Default::default(),
                    None,
                    shutdown.clone(),
                ),
                restart_grace: std::time::Duration::ZERO,
            },
            shutdown.clone(),
            &tokio_util::task::TaskTracker::new(),
        )
        .await
        .unwrap();
        let connected = Connected::default();
        Self {
            gate: AgentGate::new(
                std::sync::Arc::new(store.clone()),
                connected.clone(),
                crate::auth::quota::TokenQuota::new(10, 1 << 20),
            ),
            latest: Latest::load(&store).await.unwrap(),
            store,
            connected,
            hub,
            alerts,
            started: Instant::now(),
            shutdown,
            auth,
            telemetry: crate::telemetry::Telemetry::default(),
        }
    }
}

pub fn router(state: AppState) -> Router {
    // Only under TLS: a browser that saw HSTS on a plain listener would
    // refuse that listener from then on.
    let hsts = state
        .auth
        .tls
        .then(|| HeaderValue::from_static("max-age=31536000"));
    Router::new()
        .route("/", get(dashboard::index))
        .route("/assets/{*path}", get(dashboard::assets))
        .route("/ws", get(ws::handler))
        .route("/health", get(hosts::health))
        .route("/health/live", get(hosts::live))
        .route("/health/ready", get(hosts::ready))
        .route("/metrics", get(prometheus::metrics))
        .route("/api/openapi.json", get(openapi::openapi_json))
        .route("/api/hosts", get(hosts::list))
        .route("/api/metrics/current", get(metrics::current))
        .route("/api/metrics/history", get(metrics::history))
        .route("/api/workers/status", get(workers::status))
        .route("/api/gaps", get(gaps::list))
        .route("/api/alerts", get(alerts::list))
        .route("/api/alerts/rules", get(alerts::rules))
        .route(
            "/api/silences",
            get(alerts::list_silences).post(alerts::create_silence),
        )
        .route("/api/silences/{id}", delete(alerts::delete_silence))
        .route(
            "/api/agent-tokens",
            get(agent_tokens::list).post(agent_tokens::create),
        )
        .route("/api/agent-tokens/{name}", delete(agent_tokens::revoke))
        .route("/api/login", post(login::login))
        .route("/api/logout", post(login::logout))
        .route("/api/me", get(login::me))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::api::auth::guard,
        ))
        // Outside the guard, so that its refusals carry them too.
        .layer(SetResponseHeaderLayer::overriding(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(dashboard::CONTENT_SECURITY_POLICY),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_FRAME_OPTIONS,
            HeaderValue::from_static("DENY"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            HeaderName::from_static("cross-origin-opener-policy"),
            HeaderValue::from_static("same-origin"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::STRICT_TRANSPORT_SECURITY,
            move |_: &axum::response::Response| hsts.clone(),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        // Answers are not to be kept, except the dashboard's files, which
        // set their own (`api::dashboard`: versioned files for a year).
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ))
        .with_state(state)
}

async fn method_not_allowed(method: axum::http::Method, uri: Uri) -> ApiError {
    ApiError::MethodNotAllowed(format!("{} does not take {method}", uri.path()))
}

async fn not_found(uri: Uri) -> ApiError {
    ApiError::NotFound(format!("no such endpoint: {}", uri.path()))
}
