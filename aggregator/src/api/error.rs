//! API errors: every failure is a JSON body `{"error": "..."}` with a
//! status that says what went wrong.

use axum::Json;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// A parameter is missing or malformed; the message names it.
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    NotFound(String),
    #[error("storage error")]
    Store(#[from] StoreError),
}

impl ApiError {
    pub fn bad_param(name: &str, reason: impl std::fmt::Display) -> Self {
        Self::BadRequest(format!("parameter `{name}`: {reason}"))
    }

    pub fn unknown_host(host: &str) -> Self {
        Self::NotFound(format!("unknown host `{host}`"))
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        Self::BadRequest(rejection.body_text())
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        Self::BadRequest(rejection.body_text())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, message) = match &self {
            Self::BadRequest(m) => (StatusCode::BAD_REQUEST, m.clone()),
            Self::NotFound(m) => (StatusCode::NOT_FOUND, m.clone()),
            Self::Store(e) => {
                tracing::error!(error = %e, "API request failed in the store");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "the aggregator could not read its database".to_owned(),
                )
            }
        };
        (
            status,
            Json(json!({ "error": message, "status": status.as_u16() })),
        )
            .into_response()
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
