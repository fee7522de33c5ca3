//! `/api/workers/status`: per host and worker group, the workers alive in
//! the host's newest sample, the group's minimum and whether it is met.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use serde::Serialize;

use super::AppState;
use super::error::ApiResult;
use super::metrics::{HostParam, require_host};
use super::openapi::ErrorBody;
use crate::model::{TimestampMs, Worker};

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct HostWorkers {
    pub host_id: String,
    pub online: bool,
    /// Time of the sample the groups come from; null before the first sample.
    pub timestamp_ms: Option<TimestampMs>,
    pub groups: Vec<GroupView>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct GroupView {
    pub name: String,
    pub min_alive: u32,
    pub alive: u32,
    /// Whether at least `min_alive` workers are alive.
    pub met: bool,
    pub restarts: u64,
    pub workers: Vec<Worker>,
}

#[utoipa::path(get, path = "/api/workers/status", tag = "workers",
    params(HostParam),
    responses(
        (status = 200, description = "Per host, its worker groups in the newest sample", body = [HostWorkers]),
        (status = 400, description = "A malformed parameter", body = ErrorBody),
        (status = 401, description = "Reads need a login: no valid session or API token", body = ErrorBody),
        (status = 404, description = "Unknown host", body = ErrorBody),
    ),
    security((), ("bearer" = []), ("session" = [])),
)]
pub async fn status(
    State(state): State<AppState>,
    query: Result<Query<HostParam>, QueryRejection>,
) -> ApiResult<Json<Vec<HostWorkers>>> {
    let Query(params) = query?;
    let hosts = match &params.host {
        Some(host) => vec![require_host(&state, host)?],
        None => state.latest.hosts(),
    };
    let mut out = Vec::with_capacity(hosts.len());
    for host in hosts {
        let host_id = host.info.host_id.clone();
        let (timestamp_ms, groups) = match host.groups() {
            Some((ts, groups)) => (Some(ts), groups),
            None => (None, Vec::new()),
        };
        out.push(HostWorkers {
            online: state.connected.contains(&host_id),
            host_id,
            timestamp_ms,
            groups: groups
                .into_iter()
                .map(|g| GroupView {
                    met: g.status.alive >= g.status.min_alive,
                    name: g.status.name,
                    min_alive: g.status.min_alive,
                    alive: g.status.alive,
                    restarts: g.status.restarts,
                    workers: g.workers,
                })
                .collect(),
        });
    }
    Ok(Json(out))
}
