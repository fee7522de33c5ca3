//! `/api/agent-tokens`: agent tokens for admins, the same operations as the
//! `fleetwatch-aggregator token` command. Revoking here closes the token's
//! streams at once.
//!
//! - `GET /api/agent-tokens` — every token (never a secret), with the host
//!   ids it owns.
//! - `POST /api/agent-tokens` `{"name": "...", "host": "..."?}` — makes a
//!   token; the answer (201) holds its secret, the only time it is shown.
//! - `DELETE /api/agent-tokens/{name}` — revokes it.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

use super::AppState;
use super::error::{ApiError, ApiResult};
use super::openapi::ErrorBody;
use crate::api::auth::Admin;
use crate::auth::agent_tokens::{self, AgentToken, TokenError};
use crate::model::now_ms;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewToken {
    pub name: String,
    /// Let the token stream only as this host id.
    pub host: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Created {
    #[serde(flatten)]
    pub token: AgentToken,
    /// The secret, shown this once.
    pub token_secret: String,
    /// For a token made for a host another token owns: that token (move
    /// the host with `host reassign`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host_owned_by: Option<String>,
}

fn api_error(e: TokenError) -> ApiError {
    match e {
        TokenError::NameTaken(_) => ApiError::Conflict(e.to_string()),
        TokenError::NoSuchToken(_) => ApiError::NotFound(e.to_string()),
        TokenError::InvalidName { .. } => ApiError::bad_param("name", e),
        TokenError::Revoked(_) | TokenError::Reserved(_) => ApiError::Conflict(e.to_string()),
        TokenError::Store(_) | TokenError::Random(_) | TokenError::Write { .. } => {
            ApiError::Internal(e.to_string())
        }
    }
}

#[utoipa::path(get, path = "/api/agent-tokens", tag = "agent tokens",
    responses(
        (status = 200, description = "Every agent token (never its secret) with the hosts it owns", body = [crate::auth::agent_tokens::Listed]),
        (status = 401, description = "No valid session or API token", body = ErrorBody),
        (status = 403, description = "Not an admin, or a cookie-authenticated request from another site", body = ErrorBody),
    ),
    security(("bearer" = []), ("session" = [])),
)]
pub async fn list(
    State(state): State<AppState>,
    _: Admin,
) -> ApiResult<Json<Vec<agent_tokens::Listed>>> {
    Ok(Json(
        agent_tokens::list(&state.store).await.map_err(api_error)?,
    ))
}

#[utoipa::path(post, path = "/api/agent-tokens", tag = "agent tokens",
    request_body = NewToken,
    responses(
        (status = 201, description = "The token and its secret, shown this once", body = Created),
        (status = 400, description = "A malformed body or name", body = ErrorBody),
        (status = 401, description = "No valid session or API token", body = ErrorBody),
        (status = 403, description = "Not an admin, or a cookie-authenticated request from another site", body = ErrorBody),
        (status = 409, description = "The name is taken", body = ErrorBody),
        (status = 415, description = "The body is not JSON", body = ErrorBody),
        (status = 422, description = "The JSON does not fit the body's schema", body = ErrorBody),
    ),
    security(("bearer" = []), ("session" = [])),
)]
pub async fn create(
    State(state): State<AppState>,
    Admin(admin): Admin,
    body: Result<Json<NewToken>, JsonRejection>,
) -> ApiResult<(StatusCode, Json<Created>)> {
    let Json(body) = body?;
    if let Some(host) = &body.host {
        crate::ids::check_host_id("host", host).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    }
    let new = agent_tokens::create(&state.store, &body.name, body.host.as_deref(), now_ms())
        .await
        .map_err(api_error)?;
    tracing::info!(by = %admin.name, token = %new.token.name, "agent token created");
    Ok((
        StatusCode::CREATED,
        Json(Created {
            token: new.token,
            token_secret: new.secret,
            host_owned_by: new.host_owned_by,
        }),
    ))
}

#[utoipa::path(delete, path = "/api/agent-tokens/{name}", tag = "agent tokens",
    params(("name" = String, Path, description = "The token's name")),
    responses(
        (status = 200, description = "The revoked token; its agents' streams are closed", body = AgentToken),
        (status = 401, description = "No valid session or API token", body = ErrorBody),
        (status = 403, description = "Not an admin, or a cookie-authenticated request from another site", body = ErrorBody),
        (status = 404, description = "No such token", body = ErrorBody),
    ),
    security(("bearer" = []), ("session" = [])),
)]
pub async fn revoke(
    State(state): State<AppState>,
    Admin(admin): Admin,
    Path(name): Path<String>,
) -> ApiResult<Json<AgentToken>> {
    let token = agent_tokens::revoke(&state.store, &name, now_ms())
        .await
        .map_err(api_error)?;
    state.gate.close_token(token.id, &token.name);
    tracing::info!(by = %admin.name, token = %token.name, "agent token revoked");
    Ok(Json(token))
}
