//! API errors: every failure is a JSON body `{"error": "..."}` with a
//! status that says what went wrong.

use axum::Json;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::http::{HeaderValue, StatusCode, header};
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
    /// No credentials, or ones that are not valid (401).
    #[error("{0}")]
    Unauthorized(String),
    /// The path exists but not with this method (405).
    #[error("{0}")]
    MethodNotAllowed(String),
    /// Valid credentials that may not do this (403).
    #[error("{0}")]
    Forbidden(String),
    /// The request clashes with what exists, such as a taken name (409).
    #[error("{0}")]
    Conflict(String),
    /// The request names a host this server does not answer to (421).
    #[error("{0}")]
    MisdirectedRequest(String),
    /// Too many failed logins; try again after `retry_after_secs` (429).
    #[error("{message}")]
    TooManyRequests {
        message: String,
        retry_after_secs: u64,
    },
    /// Something on the server's side that the client cannot fix (500).
    #[error("{0}")]
    Internal(String),
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
            Self::Unauthorized(m) => (StatusCode::UNAUTHORIZED, m.clone()),
            Self::Forbidden(m) => (StatusCode::FORBIDDEN, m.clone()),
            Self::Conflict(m) => (StatusCode::CONFLICT, m.clone()),
            Self::MethodNotAllowed(m) => (StatusCode::METHOD_NOT_ALLOWED, m.clone()),
            Self::MisdirectedRequest(m) => (StatusCode::MISDIRECTED_REQUEST, m.clone()),
            Self::TooManyRequests { message, .. } => {
                (StatusCode::TOO_MANY_REQUESTS, message.clone())
            }
            Self::Internal(m) => {
                tracing::error!(error = %m, "API request failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal error; see the aggregator's log".to_owned(),
                )
            }
            Self::Store(StoreError::Query(m)) => (StatusCode::BAD_REQUEST, m.clone()),
            Self::Store(e) => {
                tracing::error!(error = %e, "API request failed in the store");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "the aggregator could not read its database".to_owned(),
                )
            }
        };
        let mut response = (
            status,
            Json(json!({ "error": message, "status": status.as_u16() })),
        )
            .into_response();
        if let Self::TooManyRequests {
            retry_after_secs, ..
        } = self
        {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
        }
        response
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
