//! `/health` (with `/health/live` and `/health/ready` for orchestrators)
//! and `/api/hosts`.

use crate::store::SampleStore;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;
use serde_json::{Value, json};

use super::AppState;
use super::error::ApiResult;
use super::openapi::{ErrorBody, HealthBody, LiveBody};
use crate::store::HostRecord;

/// `database` is `"ok"` only when a real write just committed; otherwise
/// `"failing"` with `database_error` saying why, and a 503.
#[utoipa::path(get, path = "/health", tag = "health",
    responses(
        (status = 200, description = "The aggregator and its database answer", body = HealthBody),
        (status = 503, description = "The database cannot take a write", body = HealthBody),
    ),
)]
pub async fn health(state: State<AppState>) -> (StatusCode, Json<Value>) {
    ready(state).await
}

/// Readiness for a load balancer or an orchestrator: the same as
/// `/health`, 503 while the database cannot take a write (route agents and
/// people elsewhere meanwhile).
#[utoipa::path(get, path = "/health/ready", tag = "health",
    responses(
        (status = 200, description = "Ready: the database takes writes", body = HealthBody),
        (status = 503, description = "Not ready: the database cannot take a write", body = HealthBody),
    ),
)]
pub async fn ready(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    let probe = state.store.probe_write().await;
    let mut body = json!({
        "status": if probe.is_ok() { "ok" } else { "degraded" },
        "version": env!("CARGO_PKG_VERSION"),
        "database": if probe.is_ok() { "ok" } else { "failing" },
        "agents_connected": state.connected.count(),
        "uptime_secs": state.started.elapsed().as_secs(),
    });
    match probe {
        Ok(()) => (StatusCode::OK, Json(body)),
        Err(reason) => {
            body["database_error"] = Value::String(reason);
            (StatusCode::SERVICE_UNAVAILABLE, Json(body))
        }
    }
}

/// Liveness: the process answers HTTP. Never looks at the database, so a
/// full disk makes the aggregator unready, not dead (a restart would not
/// free the disk).
#[utoipa::path(get, path = "/health/live", tag = "health",
    responses((status = 200, description = "The aggregator answers", body = LiveBody)),
)]
pub async fn live(State(state): State<AppState>) -> Json<Value> {
    Json(json!({
        "status": "ok",
        "version": env!("CARGO_PKG_VERSION"),
        "uptime_secs": state.started.elapsed().as_secs(),
    }))
}

/// A host with whether its agent is connected now.
#[derive(Serialize, utoipa::ToSchema)]
pub struct HostView {
    #[serde(flatten)]
    pub record: HostRecord,
    pub online: bool,
    pub status: &'static str,
}

#[utoipa::path(get, path = "/api/hosts", tag = "hosts",
    responses(
        (status = 200, description = "Every host seen, by host id", body = [HostView]),
        (status = 401, description = "Reads need a login: no valid session or API token", body = ErrorBody),
    ),
    security((), ("bearer" = []), ("session" = [])),
)]
pub async fn list(State(state): State<AppState>) -> ApiResult<Json<Vec<HostView>>> {
    let online = state.connected.online();
    Ok(Json(
        state
            .latest
            .hosts()
            .iter()
            .map(|host| {
                let online = online.contains(&host.info.host_id);
                HostView {
                    record: host.record(),
                    online,
                    status: if online { "online" } else { "offline" },
                }
            })
            .collect(),
    ))
}
