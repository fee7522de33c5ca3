//! `/api/metrics/current` and `/api/metrics/history`.

use crate::store::SampleStore;
use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use serde::{Deserialize, Serialize};

use super::AppState;
use super::error::{ApiError, ApiResult};
use super::openapi::ErrorBody;
use super::params::{parse_step, parse_window};
use crate::model::{TimestampMs, now_ms};
use crate::store::history_query::{self, Metric};
use crate::store::{Bucket, CurrentSample, HistoryQuery, HostState, Tier};

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HostParam {
    pub host: Option<String>,
}

/// The latest state of the host `host` names; 404 when it is unknown.
pub fn require_host(state: &AppState, host: &str) -> ApiResult<HostState> {
    state
        .latest
        .host(host)
        .ok_or_else(|| ApiError::unknown_host(host))
}

#[utoipa::path(get, path = "/api/metrics/current", tag = "metrics",
    params(HostParam),
    responses(
        (status = 200, description = "The newest sample of every host (or of `host`)", body = [CurrentSample]),
        (status = 400, description = "A malformed parameter", body = ErrorBody),
        (status = 401, description = "Reads need a login: no valid session or API token", body = ErrorBody),
        (status = 404, description = "Unknown host", body = ErrorBody),
    ),
    security((), ("bearer" = []), ("session" = [])),
)]
pub async fn current(
    State(state): State<AppState>,
    query: Result<Query<HostParam>, QueryRejection>,
) -> ApiResult<Json<Vec<CurrentSample>>> {
    let Query(params) = query?;
    let hosts = match &params.host {
        Some(host) => vec![require_host(&state, host)?],
        None => state.latest.hosts(),
    };
    Ok(Json(hosts.iter().filter_map(HostState::current).collect()))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HistoryParams {
    #[param(required = true)]
    pub host: Option<String>,
    #[param(required = true)]
    pub metric: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    pub step: Option<String>,
    /// `raw`, `1m` or `1h`: serve from this tier rather than the coarsest
    /// that gives the step.
    pub tier: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct History {
    pub host: String,
    pub metric: String,
    pub from: TimestampMs,
    pub to: TimestampMs,
    pub step_ms: i64,
    /// Which stored resolution answered: `raw`, `1m` or `1h`.
    #[schema(value_type = String, example = "1m")]
    pub tier: Tier,
    pub buckets: Vec<Bucket>,
}

#[utoipa::path(get, path = "/api/metrics/history", tag = "metrics",
    params(HistoryParams),
    responses(
        (status = 200, description = "Time buckets of one metric of one host", body = History),
        (status = 400, description = "A missing or malformed parameter, named in the message", body = ErrorBody),
        (status = 401, description = "Reads need a login: no valid session or API token", body = ErrorBody),
        (status = 404, description = "Unknown host", body = ErrorBody),
    ),
    security((), ("bearer" = []), ("session" = [])),
)]
pub async fn history(
    State(state): State<AppState>,
    query: Result<Query<HistoryParams>, QueryRejection>,
) -> ApiResult<Json<History>> {
    let Query(params) = query?;
    let host = params
        .host
        .ok_or_else(|| ApiError::bad_param("host", "is required"))?;
    let metric_name = params
        .metric
        .ok_or_else(|| ApiError::bad_param("metric", "is required"))?;
    let metric = Metric::parse(&metric_name).map_err(|e| ApiError::bad_param("metric", e))?;
    let (from, to) = parse_window(
        params.from.as_deref(),
        params.to.as_deref(),
        now_ms(),
        3_600_000,
    )?;
    if from >= to {
        return Err(ApiError::bad_param("from", "must be before `to`"));
    }
    let step_ms = match &params.step {
        Some(v) => parse_step("step", v)?,
        None => history_query::default_step_ms(to - from),
    };
    if (to - from) / step_ms > history_query::MAX_POINTS {
        return Err(ApiError::bad_param(
            "step",
            format!(
                "gives more than {} buckets for this window; use a larger step",
                history_query::MAX_POINTS
            ),
        ));
    }
    let tier = match &params.tier {
        None => None,
        Some(name) => Some(Tier::parse(name).ok_or_else(|| {
            ApiError::bad_param("tier", format!("`{name}` is not a tier: raw, 1m or 1h"))
        })?),
    };
    if let Some(t) = tier
        && t != Tier::Raw
        && step_ms % t.step_ms() != 0
    {
        return Err(ApiError::bad_param(
            "step",
            format!(
                "the {} tier needs a multiple of {} s",
                t.name(),
                t.step_ms() / 1000
            ),
        ));
    }
    require_host(&state, &host)?;
    let answer = state
        .store
        .history(&HistoryQuery {
            host_id: &host,
            metric: &metric,
            from_ms: from,
            to_ms: to,
            step_ms,
            tier,
        })
        .await?;
    Ok(Json(History {
        host,
        metric: metric_name,
        from,
        to,
        step_ms,
        tier: answer.tier,
        buckets: answer.buckets,
    }))
}
