//! Authentication on every HTTP request, and the extractors handlers use:
//! the HTTP edge of [`crate::auth`], which keeps the secrets and policy.
//!
//! [`guard`] runs before routing: it works out who is asking (a session
//! cookie or an `Authorization: Bearer` API token; a bad token is refused,
//! never treated as anonymous), puts an [`Authenticated`] in the request's
//! extensions, and enforces the policy:
//!
//! - every method but GET and HEAD is a write and needs an admin (401
//!   anonymous, 403 read role), whatever the read policy, except
//!   `POST /api/login` and `POST /api/logout`;
//! - when reads need a login, everything but the page itself (`/`,
//!   `/assets/*`), `/health` (and `/health/live`, `/health/ready`), `/api/login`, `/api/logout` and `/api/me`
//!   needs a session or token — routes added later are covered too;
//! - a write without a bearer token (so one a browser may send with its
//!   cookie) and the `/ws` upgrade are refused when their `Origin` is not
//!   this server, on top of the cookie being `SameSite=Strict`;
//! - while reads are open, a request whose `Host` is not one of this
//!   server's names ([`crate::auth::hosts`]) is refused with a 421, before
//!   anything else (DNS rebinding).
//!
//! Handlers that change something also take [`Admin`] (and may take
//! [`Reader`]), so that the check stays with the handler even if a route
//! ends up outside the guard.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tokio::sync::Semaphore;

use super::AppState;
use super::error::ApiError;
use crate::auth::login_limiter::LoginLimiter;
use crate::auth::{AuthError, Role, api_tokens, sessions};

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "fw_session";

/// What the HTTP layer needs to know about authentication, fixed at start.
#[derive(Debug, Clone)]
pub struct HttpAuth {
    /// Whether reading needs a session or API token.
    pub read_requires_login: bool,
    pub session_ttl: Duration,
    /// Cookies get `Secure` (and responses HSTS) when serving TLS.
    pub tls: bool,
    pub limiter: LoginLimiter,
    /// Password checks running at once (each Argon2 check takes ~19 MiB
    /// and a core for tens of ms): more logins at the same moment get 429.
    pub password_checks: Arc<Semaphore>,
    /// While reads are open, the `Host` names answered; `None`: any.
    pub allowed_hosts: Option<Arc<crate::auth::hosts::AllowedHosts>>,
}

/// Password checks that may run at once.
pub const MAX_PASSWORD_CHECKS: usize = 4;

impl HttpAuth {
    pub fn new(read_requires_login: bool, session_ttl: Duration, tls: bool) -> Self {
        Self {
            read_requires_login,
            session_ttl,
            tls,
            limiter: LoginLimiter::default(),
            password_checks: Arc::new(Semaphore::new(MAX_PASSWORD_CHECKS)),
            allowed_hosts: None,
        }
    }

    /// Answers only requests naming `hosts` (used while reads are open).
    pub fn with_allowed_hosts(mut self, hosts: crate::auth::hosts::AllowedHosts) -> Self {
        self.allowed_hosts = Some(Arc::new(hosts));
        self
    }

    /// `Set-Cookie` for a session `secret` that lasts `max_age`.
    pub fn session_cookie(&self, secret: &str, max_age: Duration) -> Result<HeaderValue, ApiError> {
        let secure = if self.tls { "; Secure" } else { "" };
        HeaderValue::from_str(&format!(
            "{SESSION_COOKIE}={secret}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}{secure}",
            max_age.as_secs()
        ))
        .map_err(|e| ApiError::Internal(format!("cannot build the session cookie: {e}")))
    }
}

/// How a request proved who it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    Session,
    ApiToken,
}

/// A signed-in user or an API token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The user's or the API token's name.
    pub name: String,
    pub role: Role,
    pub via: Via,
}

/// Who sent a request (`None`: nobody signed in), as [`guard`] found it.
#[derive(Debug, Clone)]
pub struct Authenticated(pub Option<Identity>);

/// An admin: extract it in every handler that changes something.
#[derive(Debug, Clone)]
pub struct Admin(pub Identity);

/// Someone allowed to read under the read policy; `None` when reads are
/// open and nobody signed in.
#[derive(Debug, Clone)]
pub struct Reader(pub Option<Identity>);

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        require_admin(authenticated(parts, state).await?).map(Admin)
    }
}

impl FromRequestParts<AppState> for Reader {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let who = authenticated(parts, state).await?;
        if who.is_none() && state.auth.read_requires_login {
            return Err(read_needs_login());
        }
        Ok(Reader(who))
    }
}

/// The peer's address when the server was started with connect info.
#[derive(Debug, Clone, Copy)]
pub struct Peer(pub Option<SocketAddr>);

impl<S: Send + Sync> FromRequestParts<S> for Peer {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Peer(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|ConnectInfo(addr)| *addr),
        ))
    }
}

/// The middleware: see the module documentation.
pub async fn guard(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    if let Some(hosts) = &state.auth.allowed_hosts
        && !hosts.allows(request.headers())
    {
        let host = request
            .headers()
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("");
        tracing::warn!(host, path = %request.uri().path(), "request for a name this server does not answer");
        return ApiError::MisdirectedRequest(format!(
            "this aggregator does not answer to the name `{host}`: use its address, or add the \
             name to public_url or tls_names"
        ))
        .into_response();
    }
    let headers = request.headers();
    let bearer = headers.contains_key(header::AUTHORIZATION);
    let who = match identify(headers, &state).await {
        Ok(who) => who,
        Err(e) => return e.into_response(),
    };
    let path = request.uri().path();
    let write = !matches!(*request.method(), Method::GET | Method::HEAD);
    // Cookies ride along on any request a browser makes; only a request
    // from this origin may use them to change something.
    if ((write && !bearer) || path == "/ws") && !same_origin(request.headers()) {
        return ApiError::Forbidden(
            "cross-origin request refused: its Origin is not this server".to_owned(),
        )
        .into_response();
    }
    if write {
        if !matches!(path, "/api/login" | "/api/logout")
            && let Err(e) = require_admin(who.clone())
        {
            return e.into_response();
        }
    } else if state.auth.read_requires_login && who.is_none() && !is_public(path) {
        return read_needs_login().into_response();
    }
    request.extensions_mut().insert(Authenticated(who));
    next.run(request).await
}

/// Paths anyone may GET, so that the page can load and show its login form.
fn is_public(path: &str) -> bool {
    matches!(
        path,
        "/" | "/health"
            | "/health/live"
            | "/health/ready"
            | "/api/login"
            | "/api/logout"
            | "/api/me"
    ) || path.starts_with("/assets/")
}

fn read_needs_login() -> ApiError {
    ApiError::Unauthorized(
        "reading needs a login on this aggregator: sign in, or send an API token \
         (Authorization: Bearer fwk_…)"
            .to_owned(),
    )
}

fn require_admin(who: Option<Identity>) -> Result<Identity, ApiError> {
    match who {
        None => Err(ApiError::Unauthorized(
            "changing anything needs an admin: sign in, or send an admin API token \
             (Authorization: Bearer fwk_…)"
                .to_owned(),
        )),
        Some(id) if id.role == Role::Admin => Ok(id),
        Some(id) => Err(ApiError::Forbidden(format!(
            "`{}` has the read role; changing anything needs the admin role",
            id.name
        ))),
    }
}

/// Who the guard found, or (outside the guard) who the headers say.
async fn authenticated(parts: &Parts, state: &AppState) -> Result<Option<Identity>, ApiError> {
    match parts.extensions.get::<Authenticated>() {
        Some(Authenticated(who)) => Ok(who.clone()),
        None => identify(&parts.headers, state).await,
    }
}

/// Who the request's credentials name. An `Authorization` header that is
/// not a valid API token is an error; a session cookie that is unknown or
/// expired is just no session.
pub async fn identify(headers: &HeaderMap, state: &AppState) -> Result<Option<Identity>, ApiError> {
    if let Some(value) = headers.get(header::AUTHORIZATION) {
        let token = value
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .ok_or_else(|| {
                ApiError::Unauthorized(
                    "the Authorization header must be `Bearer <API token>`".to_owned(),
                )
            })?;
        return match api_tokens::lookup(&state.store, token).await? {
            api_tokens::Lookup::Valid { name, role } => Ok(Some(Identity {
                name,
                role,
                via: Via::ApiToken,
            })),
            api_tokens::Lookup::Revoked { name } => {
                tracing::warn!(token = %name, "request with a revoked API token");
                Err(ApiError::Unauthorized(format!(
                    "API token `{name}` has been revoked"
                )))
            }
            api_tokens::Lookup::Unknown => {
                Err(ApiError::Unauthorized("unknown API token".to_owned()))
            }
        };
    }
    let Some(secret) = session_secret(headers) else {
        return Ok(None);
    };
    Ok(sessions::lookup(&state.store, secret)
        .await?
        .map(|s| Identity {
            name: s.user,
            role: s.role,
            via: Via::Session,
        }))
}

/// The value of the `fw_session` cookie, if the request has one.
pub fn session_secret(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value)
}

/// Whether the request's `Origin` (if it has one) is the server it was
/// sent to, by its `Host`.
pub fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return true;
    };
    let origin = origin.to_str().ok();
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    match (origin, host) {
        (Some(origin), Some(host)) => origin
            .split_once("://")
            .is_some_and(|(_, authority)| authority.eq_ignore_ascii_case(host)),
        _ => false,
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::Store(e) => ApiError::Store(e),
            AuthError::Invalid(m) | AuthError::Exists(m) => ApiError::BadRequest(m),
            AuthError::NotFound(m) => ApiError::NotFound(m),
            other => ApiError::Internal(other.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    #[test]
    fn finds_the_session_cookie_among_others() {
        let h = headers(&[("cookie", "a=1; fw_session=fws_abc; b=2")]);
        assert_eq!(session_secret(&h), Some("fws_abc"));
        let h = headers(&[("cookie", "a=1"), ("cookie", "fw_session=fws_x")]);
        assert_eq!(session_secret(&h), Some("fws_x"));
        assert_eq!(
            session_secret(&headers(&[("cookie", "xfw_session=1")])),
            None
        );
    }

    #[test]
    fn origin_must_match_host_when_present() {
        assert!(same_origin(&headers(&[("host", "127.0.0.1:7401")])));
        assert!(same_origin(&headers(&[
            ("host", "127.0.0.1:7401"),
            ("origin", "http://127.0.0.1:7401")
        ])));
        assert!(!same_origin(&headers(&[
            ("host", "127.0.0.1:7401"),
            ("origin", "https://evil.example")
        ])));
        assert!(!same_origin(&headers(&[
            ("host", "127.0.0.1:7401"),
            ("origin", "null")
        ])));
        assert!(!same_origin(&headers(&[(
            "origin",
            "http://127.0.0.1:7401"
        )])));
    }

    /// A router with handlers that take the extractors but no guard in
    /// front, as a route outside the guard would be; returns its address.
    async fn extractor_server(read_requires_login: bool) -> (SocketAddr, AppState) {
        use axum::routing::{get, post};
        let state = AppState::for_tests(
            crate::store::SqliteStore::in_memory().await.unwrap(),
            crate::hub::Hub::new(),
            tokio_util::sync::CancellationToken::new(),
            HttpAuth::new(read_requires_login, Duration::from_secs(60), false),
        )
        .await;
        let app = axum::Router::new()
            .route("/write", post(|Admin(id): Admin| async move { id.name }))
            .route(
                "/read",
                get(|Reader(id): Reader| async move { id.map(|i| i.name).unwrap_or_default() }),
            )
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        (addr, state)
    }

    #[tokio::test]
    async fn extractors_enforce_roles_without_the_guard() {
        let (addr, state) = extractor_server(true).await;
        let (_, admin) = api_tokens::add(&state.store, "adm", Role::Admin)
            .await
            .unwrap();
        let (_, reader) = api_tokens::add(&state.store, "rdr", Role::Read)
            .await
            .unwrap();
        let client = reqwest::Client::new();
        let status = |request: reqwest::RequestBuilder| async move {
            request.send().await.unwrap().status().as_u16()
        };
        let write = || client.post(format!("http://{addr}/write"));
        let read = || client.get(format!("http://{addr}/read"));
        assert_eq!(status(write()).await, 401);
        assert_eq!(status(write().bearer_auth(&reader)).await, 403);
        assert_eq!(status(write().bearer_auth("fwk_unknown")).await, 401);
        let response = write().bearer_auth(&admin).send().await.unwrap();
        assert_eq!(response.status().as_u16(), 200);
        assert_eq!(response.text().await.unwrap(), "adm");
        assert_eq!(status(read()).await, 401, "reads need a login here");
        assert_eq!(status(read().bearer_auth(&reader)).await, 200);

        let (open, _) = extractor_server(false).await;
        let response = client
            .get(format!("http://{open}/read"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 200, "open reads");
    }

    #[test]
    fn cookie_flags_follow_tls() {
        let plain = HttpAuth::new(false, Duration::from_secs(60), false);
        let cookie = plain
            .session_cookie("fws_1", Duration::from_secs(60))
            .unwrap();
        let cookie = cookie.to_str().unwrap();
        assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"));
        assert!(cookie.contains("Max-Age=60") && !cookie.contains("Secure"));
        let tls = HttpAuth::new(false, Duration::from_secs(60), true);
        let cookie = tls.session_cookie("fws_1", Duration::ZERO).unwrap();
        assert!(cookie.to_str().unwrap().ends_with("; Secure"));
    }
}
