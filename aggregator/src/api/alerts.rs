//! `/api/alerts`, `/api/alerts/rules` and `/api/silences`.

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::Deserialize;

use super::AppState;
use super::error::{ApiError, ApiResult};
use super::openapi::{ErrorBody, RuleDoc};
use crate::alerts::{AlertFilter, AlertRecord, AlertState, AlertsError, Rule, Severity, Silence};
use crate::api::auth::Admin;
use crate::model::now_ms;
use crate::store::AlertStore;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AlertParams {
    pub state: Option<String>,
    pub host: Option<String>,
    pub severity: Option<String>,
    pub limit: Option<String>,
}

/// Alert history, newest first: `state=firing` (default), `resolved` or `all`.
#[utoipa::path(get, path = "/api/alerts", tag = "alerts",
    params(AlertParams),
    responses(
        (status = 200, description = "Alert history, newest first", body = [AlertRecord]),
        (status = 400, description = "A malformed parameter, named in the message", body = ErrorBody),
        (status = 401, description = "Reads need a login: no valid session or API token", body = ErrorBody),
    ),
    security((), ("bearer" = []), ("session" = [])),
)]
pub async fn list(
    State(state): State<AppState>,
    query: Result<Query<AlertParams>, QueryRejection>,
) -> ApiResult<Json<Vec<AlertRecord>>> {
    let Query(params) = query?;
    let wanted = match params.state.as_deref().unwrap_or("firing") {
        "firing" => Some(AlertState::Firing),
        "resolved" => Some(AlertState::Resolved),
        "all" => None,
        other => {
            return Err(ApiError::bad_param(
                "state",
                format!("`{other}` is not one of firing, resolved, all"),
            ));
        }
    };
    let severity = match params.severity.as_deref() {
        None => None,
        Some("warning") => Some(Severity::Warning),
        Some("critical") => Some(Severity::Critical),
        Some(other) => {
            return Err(ApiError::bad_param(
                "severity",
                format!("`{other}` is not one of warning, critical"),
            ));
        }
    };
    let limit = match params.limit.as_deref() {
        None => 500,
        Some(text) => text
            .parse::<i64>()
            .ok()
            .filter(|n| (1..=10_000).contains(n))
            .ok_or_else(|| ApiError::bad_param("limit", "must be a number from 1 to 10000"))?,
    };
    let filter = AlertFilter {
        state: wanted,
        host: params.host,
        severity,
        limit,
    };
    Ok(Json(state.store.alerts(&filter).await?))
}

/// The rules in force, built-in defaults included.
#[utoipa::path(get, path = "/api/alerts/rules", tag = "alerts",
    responses(
        (status = 200, description = "The alert rules in force", body = [RuleDoc]),
        (status = 401, description = "Reads need a login: no valid session or API token", body = ErrorBody),
    ),
    security((), ("bearer" = []), ("session" = [])),
)]
pub async fn rules(State(state): State<AppState>) -> Json<Vec<Rule>> {
    Json(state.alerts.rules())
}

/// `POST /api/silences` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewSilence {
    pub rule: Option<String>,
    pub host: Option<String>,
    pub pool: Option<String>,
    /// How long, such as `1h`; or give `expires_at_ms`.
    pub duration: Option<String>,
    pub expires_at_ms: Option<i64>,
    #[serde(default)]
    pub comment: String,
}

#[utoipa::path(post, path = "/api/silences", tag = "alerts",
    request_body = NewSilence,
    responses(
        (status = 201, description = "The silence, with its id", body = Silence),
        (status = 400, description = "A malformed body", body = ErrorBody),
        (status = 401, description = "No valid session or API token", body = ErrorBody),
        (status = 403, description = "Not an admin, or a cookie-authenticated request from another site", body = ErrorBody),
        (status = 415, description = "The body is not JSON", body = ErrorBody),
        (status = 422, description = "The JSON does not fit the body's schema", body = ErrorBody),
    ),
    security(("bearer" = []), ("session" = [])),
)]
pub async fn create_silence(
    State(state): State<AppState>,
    Admin(admin): Admin,
    body: Result<Json<NewSilence>, JsonRejection>,
) -> ApiResult<(StatusCode, Json<Silence>)> {
    let Json(body) = body?;
    let now = now_ms();
    let expires_at_ms = match (&body.duration, body.expires_at_ms) {
        (Some(text), None) => {
            let d = humantime::parse_duration(text)
                .map_err(|e| ApiError::bad_param("duration", format!("`{text}`: {e}")))?;
            now.saturating_add(i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        }
        (None, Some(at)) => at,
        _ => {
            return Err(ApiError::BadRequest(
                "give exactly one of `duration` and `expires_at_ms`".to_owned(),
            ));
        }
    };
    if body.comment.len() > 1024 {
        return Err(ApiError::bad_param("comment", "is longer than 1024 bytes"));
    }
    let silence = Silence {
        id: 0,
        rule: body.rule,
        host: body.host,
        pool: body.pool,
        expires_at_ms,
        comment: body.comment,
    };
    match state.alerts.silence(silence).await {
        Ok(silence) => {
            tracing::info!(by = %admin.name, id = silence.id, "silence created");
            Ok((StatusCode::CREATED, Json(silence)))
        }
        Err(AlertsError::Silence(e)) => Err(ApiError::BadRequest(e.to_string())),
        Err(AlertsError::Store(e)) => Err(e.into()),
    }
}

#[utoipa::path(get, path = "/api/silences", tag = "alerts",
    responses(
        (status = 200, description = "Silences in force", body = [Silence]),
        (status = 401, description = "Reads need a login: no valid session or API token", body = ErrorBody),
    ),
    security((), ("bearer" = []), ("session" = [])),
)]
pub async fn list_silences(State(state): State<AppState>) -> Json<Vec<Silence>> {
    Json(state.alerts.silences())
}

#[utoipa::path(delete, path = "/api/silences/{id}", tag = "alerts",
    params(("id" = u64, Path, description = "The silence's id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, description = "The id is not a number", body = ErrorBody),
        (status = 401, description = "No valid session or API token", body = ErrorBody),
        (status = 403, description = "Not an admin, or a cookie-authenticated request from another site", body = ErrorBody),
        (status = 404, description = "No such silence", body = ErrorBody),
    ),
    security(("bearer" = []), ("session" = [])),
)]
pub async fn delete_silence(
    State(state): State<AppState>,
    Admin(admin): Admin,
    id: Result<Path<u64>, PathRejection>,
) -> ApiResult<StatusCode> {
    let Path(id) = id.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    match state.alerts.unsilence(id).await {
        Ok(true) => {
            tracing::info!(by = %admin.name, id, "silence removed");
            Ok(StatusCode::NO_CONTENT)
        }
        Ok(false) => Err(ApiError::NotFound(format!("no silence {id}"))),
        Err(AlertsError::Silence(e)) => Err(ApiError::BadRequest(e.to_string())),
        Err(AlertsError::Store(e)) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::time::Duration;

    use tokio_util::sync::CancellationToken;

    use super::*;
    use crate::alerts::instance::Transition;
    use crate::hub::Hub;
    use crate::store::SqliteStore;

    fn change(scope: &str, from: AlertState, to: AlertState, at_ms: i64) -> Transition {
        Transition {
            rule: "cpu".into(),
            host_id: "h1".into(),
            scope: scope.into(),
            from,
            to,
            severity: Severity::Critical,
            previous_severity: None,
            value: 95.0,
            threshold: 90.0,
            peak: 97.0,
            started_at_ms: 1_000,
            at_ms,
            silenced: false,
            notify: false,
            message: String::new(),
        }
    }

    /// The Alerts page lists `state=all`: what fired (still firing or
    /// resolved), never an alert that was only pending.
    #[tokio::test]
    async fn history_holds_what_fired_never_what_was_only_pending() {
        let store = SqliteStore::in_memory().await.unwrap();
        let shutdown = CancellationToken::new();
        let auth = crate::api::auth::HttpAuth::new(false, Duration::from_secs(60), false);
        let history = crate::alerts::AlertHistory::new(std::sync::Arc::new(store.clone()));
        let state = AppState::for_tests(store, Hub::new(), shutdown.clone(), auth).await;
        use AlertState::{Firing, Inactive, Pending, Resolved};
        for t in [
            change("flap", Inactive, Pending, 1_000),
            change("flap", Pending, Inactive, 2_000),
            change("fired", Inactive, Pending, 1_000),
            change("fired", Pending, Firing, 3_000),
            change("fired", Firing, Resolved, 9_000),
            change("firing", Inactive, Firing, 4_000),
        ] {
            history.record(&t).await.unwrap();
        }
        let params = AlertParams {
            state: Some("all".into()),
            host: None,
            severity: None,
            limit: None,
        };
        let Json(all) = list(State(state), Ok(Query(params))).await.unwrap();
        let scopes: Vec<(&str, AlertState, Option<i64>)> = all
            .iter()
            .map(|a| (a.scope.as_str(), a.state, a.ended_at_ms))
            .collect();
        assert_eq!(
            scopes,
            [("firing", Firing, None), ("fired", Resolved, Some(9_000))]
        );
        shutdown.cancel();
    }
}
