//! `GET /api/openapi.json`: the OpenAPI 3.1 document of this API, derived
//! by utoipa from the `#[utoipa::path]` annotations on the handlers and the
//! `ToSchema` types they answer with, so it cannot drift from the code.
//! Bodies built with `json!` (health, login, me) and the alert rules (whose
//! serde form is custom) are described by the schema types here.
//!
//! `scripts/api-fuzz` runs schemathesis against a real aggregator with this
//! document; `tests/tests/openapi.rs` checks that every route of
//! [`super::router`] is in it.

use axum::Json;
use serde::Serialize;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};

use crate::api::auth::SESSION_COOKIE;
use crate::model::{
    AlertState, Filesystem, GroupStatus, HostInfo, Role, Severity, Silence, SystemMetrics, Worker,
    WorkerGroup,
};
use crate::store::agent_tokens::AgentToken;

/// Every error: what went wrong, and the HTTP status again.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: String,
    pub status: u16,
}

/// `GET /health` and `GET /health/ready`.
#[derive(Debug, Serialize, ToSchema)]
pub struct HealthBody {
    /// `ok`, or `degraded` when the database cannot take a write.
    pub status: String,
    pub version: String,
    /// `ok` or `failing`.
    pub database: String,
    /// Why the database is failing (absent when it is not).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database_error: Option<String>,
    pub agents_connected: u64,
    pub uptime_secs: u64,
}

/// `GET /health/live`.
#[derive(Debug, Serialize, ToSchema)]
pub struct LiveBody {
    /// Always `ok`: the process answers.
    pub status: String,
    pub version: String,
    pub uptime_secs: u64,
}

/// `POST /api/login` on success.
#[derive(Debug, Serialize, ToSchema)]
pub struct SignedIn {
    pub user: String,
    pub role: Role,
}

/// `GET /api/me`: who is signed in; `user` is null when nobody is.
#[derive(Debug, Serialize, ToSchema)]
pub struct Me {
    pub user: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<Role>,
    /// `session` (cookie) or `api_token` (bearer).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub via: Option<String>,
    pub read_requires_login: bool,
}

/// An alert rule as `GET /api/alerts/rules` lists it (see "Alerts" in the
/// README for every key; absent keys are unset).
#[derive(Debug, Serialize, ToSchema)]
pub struct RuleDoc {
    pub name: String,
    /// Such as `cpu_percent`, `filesystem_used_percent`, `worker_pool_alive`.
    pub metric: String,
    /// `>=`, `>`, `<=` or `<`.
    pub comparison: String,
    pub warning: Option<ThresholdDoc>,
    pub critical: Option<ThresholdDoc>,
    pub clear: Option<ThresholdDoc>,
    /// A duration such as `5m`.
    #[serde(rename = "for")]
    pub for_duration: String,
    pub hosts: Option<Vec<String>>,
    pub mount: Option<String>,
    pub pool: Option<String>,
    pub window: Option<String>,
    pub enabled: bool,
}

/// A rule's threshold: a number, or what it depends on, such as
/// `"min_alive"` (a pool's declared minimum).
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub enum ThresholdDoc {
    Value(f64),
    Named(String),
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "fleetwatch aggregator API",
        description = "Hosts, current and historical metrics, worker pools, alerts, silences and agent tokens. Reads may need a login (session cookie or API token as bearer token); writes always need an admin.",
    ),
    paths(
        super::hosts::health,
        super::hosts::live,
        super::hosts::ready,
        super::prometheus::metrics,
        super::hosts::list,
        super::metrics::current,
        super::metrics::history,
        super::workers::status,
        super::alerts::list,
        super::gaps::list,
        super::alerts::rules,
        super::alerts::list_silences,
        super::alerts::create_silence,
        super::alerts::delete_silence,
        super::agent_tokens::list,
        super::agent_tokens::create,
        super::agent_tokens::revoke,
        super::login::login,
        super::login::logout,
        super::login::me,
        super::ws::handler,
        super::dashboard::index,
        super::dashboard::assets,
        openapi_json,
    ),
    components(schemas(
        ErrorBody, HealthBody, LiveBody, SignedIn, Me, RuleDoc, HostInfo, WorkerGroup,
        SystemMetrics, Filesystem, Worker, GroupStatus, Severity, AlertState, Silence, Role,
        AgentToken,
    )),
    modifiers(&Security),
)]
pub struct ApiDoc;

/// The two ways to authenticate: the dashboard's session cookie and an API
/// token as a bearer token.
struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                SESSION_COOKIE,
                "The session cookie `POST /api/login` sets",
            ))),
        );
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("fwk_…")
                    .description(Some("An API token (`fleetwatch-aggregator api-token add`)"))
                    .build(),
            ),
        );
    }
}

/// The document, as served.
pub fn document() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

#[utoipa::path(get, path = "/api/openapi.json", tag = "health",
    responses(
        (status = 200, description = "This document (OpenAPI 3.1)", content_type = "application/json"),
    ),
)]
pub async fn openapi_json() -> Json<utoipa::openapi::OpenApi> {
    Json(document())
}
