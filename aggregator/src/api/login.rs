//! `POST /api/login`, `POST /api/logout` and `GET /api/me`: dashboard
//! sessions. Login is rate-limited per peer address and per user name (see
//! [`crate::auth::login_limiter`]); failures are logged with the peer.

use std::time::Instant;

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Extension, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::AppState;
use super::error::{ApiError, ApiResult};
use super::openapi::{ErrorBody, Me, SignedIn};
use crate::api::auth::{Authenticated, Peer, session_secret};
use crate::auth::{sessions, users};

/// `POST /api/login` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Credentials {
    pub user: String,
    pub password: String,
}

#[utoipa::path(post, path = "/api/login", tag = "sessions",
    request_body = Credentials,
    responses(
        (status = 200, description = "Signed in; the session cookie is set", body = SignedIn,
            headers(("set-cookie" = String, description = "fw_session, HttpOnly, SameSite=Strict"))),
        (status = 400, description = "A malformed body", body = ErrorBody),
        (status = 401, description = "Wrong user name or password", body = ErrorBody),
        (status = 403, description = "A request from another site", body = ErrorBody),
        (status = 415, description = "The body is not JSON", body = ErrorBody),
        (status = 422, description = "The JSON does not fit the body's schema", body = ErrorBody),
        (status = 429, description = "Too many failed logins; see Retry-After", body = ErrorBody,
            headers(("retry-after" = u64, description = "Seconds to wait"))),
    ),
)]
pub async fn login(
    State(state): State<AppState>,
    Peer(peer): Peer,
    body: Result<Json<Credentials>, JsonRejection>,
) -> ApiResult<Response> {
    let Json(body) = body?;
    let ip = peer.map(|p| p.ip());
    let limiter = &state.auth.limiter;
    let Ok(_checking) = state.auth.password_checks.clone().try_acquire_owned() else {
        tracing::warn!(peer = ?peer, "login refused: too many at once");
        return Err(ApiError::TooManyRequests {
            message: "too many sign-ins at this moment; try again in a second".to_owned(),
            retry_after_secs: 1,
        });
    };
    if let Err(wait) = limiter.attempt(ip, &body.user, Instant::now()) {
        tracing::warn!(peer = ?peer, user = ?body.user, "login refused: too many failures");
        return Err(ApiError::TooManyRequests {
            message: "too many failed logins; wait a minute and try again".to_owned(),
            retry_after_secs: wait.as_secs().max(1),
        });
    }
    let Some(user) = users::authenticate(&state.store, &body.user, &body.password).await? else {
        // The attempt was counted as a failure when it started.
        // Debug formatting: the name is untrusted and may hold newlines.
        tracing::warn!(peer = ?peer, user = ?body.user, "failed login");
        return Err(ApiError::Unauthorized(
            "wrong user name or password".to_owned(),
        ));
    };
    limiter.succeeded(ip, &body.user);
    let ttl = state.auth.session_ttl;
    let secret = sessions::create(&state.store, user.id, ttl).await?;
    tracing::info!(peer = ?peer, user = %user.name, role = %user.role, "signed in");
    let cookie = state.auth.session_cookie(&secret, ttl)?;
    Ok((
        [(header::SET_COOKIE, cookie)],
        Json(json!({ "user": user.name, "role": user.role })),
    )
        .into_response())
}

/// Ends the session (if any) and clears the cookie.
#[utoipa::path(post, path = "/api/logout", tag = "sessions",
    responses(
        (status = 204, description = "The session (if any) is ended and the cookie cleared"),
        (status = 403, description = "A request from another site", body = ErrorBody),
    ),
)]
pub async fn logout(State(state): State<AppState>, headers: HeaderMap) -> ApiResult<Response> {
    if let Some(secret) = session_secret(&headers) {
        sessions::end(&state.store, secret).await?;
    }
    let cookie = state.auth.session_cookie("", std::time::Duration::ZERO)?;
    Ok((StatusCode::NO_CONTENT, [(header::SET_COOKIE, cookie)]).into_response())
}

/// Who is signed in, and whether the page must ask for a login to show
/// anything. 401 (with `read_requires_login`) when nobody is.
#[utoipa::path(get, path = "/api/me", tag = "sessions",
    responses(
        (status = 200, description = "Who is signed in; `user` is null when nobody is", body = Me),
    ),
    security((), ("bearer" = []), ("session" = [])),
)]
pub async fn me(State(state): State<AppState>, who: Option<Extension<Authenticated>>) -> Response {
    let read_requires_login = state.auth.read_requires_login;
    match who.and_then(|Extension(Authenticated(who))| who) {
        Some(id) => Json(json!({
            "user": id.name,
            "role": id.role,
            "via": match id.via {
                crate::api::auth::Via::Session => "session",
                crate::api::auth::Via::ApiToken => "api_token",
            },
            "read_requires_login": read_requires_login,
        }))
        .into_response(),
        // Nobody signed in is an answer, not an error: the page asks on
        // every load and a 401 would be logged in the browser's console.
        None => Json(json!({
            "user": null,
            "read_requires_login": read_requires_login,
        }))
        .into_response(),
    }
}
