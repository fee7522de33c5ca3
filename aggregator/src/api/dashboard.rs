//! `GET /` and `GET /assets/*`: the dashboard, embedded at build time by
//! `build.rs` from `web/src/` and uPlot. [`CONTENT_SECURITY_POLICY`] allows
//! only this origin's scripts (no inline script, no eval); the router sets
//! it, with the other security headers, on every response.
//!
//! The page refers to its files as `/assets/{VERSION}/…`, where `VERSION`
//! is a hash of every embedded file: those answers may be kept for a year
//! (`immutable`), since any change makes new URLs. The page itself, and
//! files asked for without the version, are revalidated on every load.
//! Text files go out gzipped to browsers that accept it.

use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::error::ApiError;
use super::openapi::ErrorBody;

/// One embedded file: path, bytes, and gzipped bytes when that is smaller.
type Asset = (&'static str, &'static [u8], Option<&'static [u8]>);

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/web_assets.rs"));
}

/// Hash of the embedded files, the first segment of versioned asset paths.
pub use embedded::VERSION;

/// The policy of every response. `style-src` needs no `'unsafe-inline'`:
/// uPlot sizes its elements through the CSSOM, which CSP does not restrict.
/// `form-action 'self'` for the login form (which the page's script posts).
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self'; img-src 'self' data:; connect-src 'self'; \
     frame-ancestors 'none'; base-uri 'none'; form-action 'self'; object-src 'none'";

/// For versioned files: a year, and no revalidation.
const CACHE_IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// For the page and unversioned files: ask again every time.
const CACHE_REVALIDATE: &str = "no-cache";

/// An embedded file by its path under `web/src/` (uPlot under `vendor/`).
pub fn asset(path: &str) -> Option<&'static [u8]> {
    find(path).map(|(bytes, _)| bytes)
}

fn find(path: &str) -> Option<(&'static [u8], Option<&'static [u8]>)> {
    embedded::ASSETS
        .iter()
        .find(|(name, _, _)| *name == path)
        .map(|(_, bytes, gz)| (*bytes, *gz))
}

/// `GET /`: the page.
#[utoipa::path(get, path = "/", tag = "dashboard",
    responses((status = 200, description = "The dashboard page", content_type = "text/html")),
)]
pub async fn index(headers: HeaderMap) -> Response {
    serve("index.html", CACHE_REVALIDATE, &headers)
}

/// `GET /assets/{*path}`: `VERSION/path` for the page's own references,
/// or `path` alone.
#[utoipa::path(get, path = "/assets/{path}", tag = "dashboard",
    params(("path" = String, Path, description = "A file of the dashboard, under its version")),
    responses(
        (status = 200, description = "The file"),
        (status = 404, description = "No such file, or another version's", body = ErrorBody),
    ),
)]
pub async fn assets(Path(path): Path<String>, headers: HeaderMap) -> Response {
    match path.split_once('/') {
        Some((version, rest)) if version == VERSION => serve(rest, CACHE_IMMUTABLE, &headers),
        // Another build's files: a page from before an upgrade must not be
        // given (and cache for a year) this build's files under its URLs.
        Some((version, _)) if is_version(version) => ApiError::NotFound(format!(
            "dashboard files of another version ({version}); reload the page"
        ))
        .into_response(),
        _ => serve(&path, CACHE_REVALIDATE, &headers),
    }
}

fn is_version(s: &str) -> bool {
    s.len() == VERSION.len() && s.bytes().all(|b| b.is_ascii_hexdigit())
}

fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|coding| {
            let mut parts = coding.split(';');
            let name = parts.next().unwrap_or("").trim();
            let refused = parts.any(|p| matches!(p.trim(), "q=0" | "q=0.0" | "q=0.00" | "q=0.000"));
            name.eq_ignore_ascii_case("gzip") && !refused
        })
}

fn serve(path: &str, cache: &'static str, headers: &HeaderMap) -> Response {
    let Some((body, gz)) = find(path) else {
        return ApiError::NotFound(format!("no such dashboard file: {path}")).into_response();
    };
    let gzipped = gz.filter(|_| accepts_gzip(headers));
    let mut response = (StatusCode::OK, gzipped.unwrap_or(body)).into_response();
    let out = response.headers_mut();
    out.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(content_type(path)),
    );
    out.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    if gz.is_some() {
        out.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    }
    if gzipped.is_some() {
        out.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
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
        assert!(asset("vendor/uPlot.iife.min.js").is_some());
        assert!(asset("vendor/uPlot.min.css").is_some());
        assert!(asset("../Cargo.toml").is_none());
    }

    #[test]
    fn the_page_refers_to_versioned_assets() {
        let index = std::str::from_utf8(asset("index.html").unwrap_or_default()).unwrap_or("");
        assert!(index.contains(&format!("\"/assets/{VERSION}/js/main.js\"")));
        assert!(!index.contains("\"/assets/js/"));
        assert!(is_version(VERSION));
    }

    #[test]
    fn gzip_only_when_accepted() {
        let mut headers = HeaderMap::new();
        assert!(!accepts_gzip(&headers));
        headers.insert(
            header::ACCEPT_ENCODING,
            HeaderValue::from_static("gzip, deflate, br"),
        );
        assert!(accepts_gzip(&headers));
        headers.insert(
            header::ACCEPT_ENCODING,
            HeaderValue::from_static("br, gzip;q=0"),
        );
        assert!(!accepts_gzip(&headers));
    }

    #[test]
    fn policy_forbids_inline_scripts_and_framing() {
        assert!(CONTENT_SECURITY_POLICY.contains("script-src 'self';"));
        assert!(!CONTENT_SECURITY_POLICY.contains("unsafe-inline"));
        assert!(CONTENT_SECURITY_POLICY.contains("frame-ancestors 'none'"));
        assert_eq!(content_type("app.js"), "text/javascript; charset=utf-8");
    }
}
