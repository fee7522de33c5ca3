//! `/health` and `/api/hosts`.

use crate::store::SampleStore;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;
use serde_json::{Value, json};

use super::AppState;
use super::error::ApiResult;
use crate::store::HostRecord;

/// `database` is `"ok"` only when a real write just committed; otherwise
/// `"failing"` with `database_error` saying why, and a 503.
pub async fn health(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
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

/// A host with whether its agent is connected now.
#[derive(Serialize)]
pub struct HostView {
    #[serde(flatten)]
    pub record: HostRecord,
    pub online: bool,
    pub status: &'static str,
}

pub async fn list(State(state): State<AppState>) -> ApiResult<Json<Vec<HostView>>> {
    Ok(Json(
        state
            .latest
            .hosts()
            .iter()
            .map(|host| {
                let online = state.connected.contains(&host.info.host_id);
                HostView {
                    record: host.record(),
                    online,
                    status: if online { "online" } else { "offline" },
                }
            })
            .collect(),
    ))
}
