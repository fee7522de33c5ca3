//! `GET /` and `GET /assets/*`: the dashboard, embedded at build time by
//! `build.rs` from `web/src/` and uPlot. [`CONTENT_SECURITY_POLICY`] allows
//! only this origin's scripts (no inline script, no eval); the router sets
//! it, with the other security headers, on every response.

use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::error::ApiError;
use super::openapi::ErrorBody;

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/web_assets.rs"));
}

/// The policy of every response. `style-src` needs no `'unsafe-inline'`:
/// uPlot sizes its elements through the CSSOM, which CSP does not restrict.
/// `form-action 'self'` for the login form (which the page's script posts).
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self'; img-src 'self' data:; connect-src 'self'; \
     frame-ancestors 'none'; base-uri 'none'; form-action 'self'; object-src 'none'";

/// An embedded file by its path under `web/src/` (uPlot under `vendor/`).
pub fn asset(path: &str) -> Option<&'static [u8]> {
    embedded::ASSETS
        .iter()
        .find(|(name, _)| *name == path)
        .map(|(_, bytes)| *bytes)
}

/// `GET /`: the page.
#[utoipa::path(get, path = "/", tag = "dashboard",
    responses((status = 200, description = "The dashboard page", content_type = "text/html")),
)]
pub async fn index() -> Response {
    serve("index.html")
}

/// `GET /assets/{*path}`.
#[utoipa::path(get, path = "/assets/{path}", tag = "dashboard",
    params(("path" = String, Path, description = "A file of the dashboard")),
    responses(
        (status = 200, description = "The file"),
        (status = 404, description = "No such file", body = ErrorBody),
    ),
)]
pub async fn assets(Path(path): Path<String>) -> Response {
    serve(&path)
}

fn serve(path: &str) -> Response {
    let Some(body) = asset(path) else {
        return ApiError::NotFound(format!("no such dashboard file: {path}")).into_response();
    };
    let mut response = (StatusCode::OK, body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(content_type(path)),
    );
    response
}

fn content_type(path: &str) -> &'static str {
    match path.rsplit_once('.').map(|(_, ext)| ext) {
        Some("html") => "text/html; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("json") => "application/json",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embeds_the_page_and_uplot() {
        let index = asset("index.html").unwrap_or_default();
        assert!(
            std::str::from_utf8(index)
                .unwrap_or("")
                .contains("<!doctype html>")
        );
        assert!(asset("vendor/uPlot.esm.js").is_some());
        assert!(asset("vendor/uPlot.min.css").is_some());
        assert!(asset("../Cargo.toml").is_none());
    }

    #[test]
    fn policy_forbids_inline_scripts_and_framing() {
        assert!(CONTENT_SECURITY_POLICY.contains("script-src 'self';"));
        assert!(!CONTENT_SECURITY_POLICY.contains("unsafe-inline"));
        assert!(CONTENT_SECURITY_POLICY.contains("frame-ancestors 'none'"));
        assert_eq!(content_type("app.js"), "text/javascript; charset=utf-8");
    }
}
