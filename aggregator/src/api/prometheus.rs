//! `GET /metrics`: the Prometheus scrape of the aggregator's health and
//! the fleet's latest values, behind the same read policy as the API (an
//! API token works as a bearer token, for Prometheus' `authorization`).
//! Prometheus text by default; OpenMetrics when `Accept` asks for it.
//! Everything comes from memory and the file system: no database query.

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::error::ApiError;
use super::openapi::ErrorBody;
use crate::telemetry::exposition::{Format, Scrape};

#[utoipa::path(get, path = "/metrics", tag = "health",
    responses(
        (status = 200, description = "Prometheus text (or OpenMetrics when Accept asks for it)",
            content(
                (String = "text/plain"),
                (String = "application/openmetrics-text"),
            )),
        (status = 401, description = "Reads need a login: no valid session or API token", body = ErrorBody),
        (status = 500, description = "The metrics could not be encoded", body = ErrorBody),
    ),
    security((), ("bearer" = []), ("session" = [])),
)]
pub async fn metrics(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let format = Format::from_accept(headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()));
    let database_bytes = match state.telemetry.db_path() {
        Some(path) => tokio::fs::metadata(path).await.map_or(0, |m| m.len()),
        None => 0,
    };
    let store = state.store.clone();
    // A stat(2) of the log; off the async workers like any file access.
    let wal_bytes = tokio::task::spawn_blocking(move || store.wal_bytes())
        .await
        .unwrap_or(0);
    let scrape = Scrape {
        version: env!("CARGO_PKG_VERSION"),
        uptime_seconds: state.started.elapsed().as_secs_f64(),
        hosts: state.latest.hosts(),
        connected: state.connected.host_ids(),
        alerts: state
            .alerts
            .active()
            .iter()
            .map(|a| (a.severity, a.state == crate::model::AlertState::Firing))
            .collect(),
        alerts_conflated: state.alerts.conflated(),
        webhooks: state
            .telemetry
            .notifier()
            .map(|n| n.stats())
            .unwrap_or_default(),
        database_bytes,
        wal_bytes,
        telemetry: state.telemetry,
    };
    match scrape.render(format) {
        Ok(body) => (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static(format.content_type()),
            )],
            body,
        )
            .into_response(),
        Err(e) => {
            tracing::error!(error = %e, "cannot encode the metrics");
            ApiError::Internal("cannot encode the metrics".to_owned()).into_response()
        }
    }
}
