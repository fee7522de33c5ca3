//! `GET /api/gaps`: the time ranges agents reported they dropped (their
//! spool overflowed during an outage), so a hole in a chart has a reason.
//!
//! `host` picks one host (all hosts without it); `from` and `to` take the
//! same forms as the history query and default to the last 24 hours. A gap
//! is listed when it overlaps the window.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use serde::Deserialize;

use super::AppState;
use super::error::{ApiError, ApiResult};
use super::openapi::ErrorBody;
use super::params::parse_window;
use crate::model::now_ms;
use crate::store::{Gap, GapStore};

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct GapParams {
    pub host: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
}

#[utoipa::path(get, path = "/api/gaps", tag = "hosts",
    params(GapParams),
    responses(
        (status = 200, description = "Ranges of samples agents dropped, overlapping the window", body = [Gap]),
        (status = 400, description = "A malformed parameter, named in the message", body = ErrorBody),
        (status = 401, description = "Reads need a login: no valid session or API token", body = ErrorBody),
    ),
    security((), ("bearer" = []), ("session" = [])),
)]
pub async fn list(
    State(state): State<AppState>,
    query: Result<Query<GapParams>, QueryRejection>,
) -> ApiResult<Json<Vec<Gap>>> {
    let Query(params) = query?;
    let (from, to) = parse_window(
        params.from.as_deref(),
        params.to.as_deref(),
        now_ms(),
        86_400_000,
    )?;
    if from > to {
        return Err(ApiError::bad_param("from", "must not be after `to`"));
    }
    if let Some(host) = &params.host {
        crate::ids::check_host_id("host", host)
            .map_err(|e| ApiError::bad_param("host", e.reason))?;
    }
    Ok(Json(
        state.store.gaps(params.host.as_deref(), from, to).await?,
    ))
}
