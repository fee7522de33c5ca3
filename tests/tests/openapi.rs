//! End-to-end: `/api/openapi.json` of a real aggregator is an OpenAPI 3.1
//! document naming every route `api::router` serves, with its method, and
//! both ways to authenticate.

use anyhow::{Context, Result};
use fleetwatch_tests::Aggregator;

/// The router's source, to read its routes from: axum cannot list them.
const ROUTER: &str = include_str!("../../aggregator/src/api/mod.rs");

/// Every `(path, method)` the router's `.route(...)` calls register, with
/// axum's `{*rest}` written as OpenAPI's `{rest}`.
fn routes() -> Vec<(String, String)> {
    let mut out = Vec::new();
    for call in ROUTER.split(".route(").skip(1) {
        // The call ends at the parenthesis that closes `.route(`.
        let mut depth = 1;
        let end = call
            .char_indices()
            .find_map(|(i, c)| {
                match c {
                    '(' => depth += 1,
                    ')' => depth -= 1,
                    _ => {}
                }
                (depth == 0).then_some(i)
            })
            .unwrap_or(call.len());
        let call = &call[..end];
        let Some(path) = call.split('"').nth(1) else {
            continue;
        };
        let path = path.replace("{*", "{");
        for method in ["get", "post", "put", "patch", "delete"] {
            if call.contains(&format!(" {method}(")) || call.contains(&format!(".{method}(")) {
                out.push((path.clone(), method.to_owned()));
            }
        }
    }
    out
}

#[test]
fn the_router_source_is_read() {
    let routes = routes();
    assert!(routes.len() >= 20, "{routes:?}");
    assert!(routes.contains(&("/api/silences".to_owned(), "post".to_owned())));
    assert!(routes.contains(&("/assets/{path}".to_owned(), "get".to_owned())));
}

#[tokio::test]
async fn every_route_of_the_router_is_in_the_document() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let agg = Aggregator::start(&dir.path().join("fw.db")).await?;
    let doc = agg.get_ok("/api/openapi.json").await?;
    assert_eq!(doc["openapi"], "3.1.0");
    let paths = doc["paths"].as_object().context("no paths")?;
    let mut missing = Vec::new();
    for (path, method) in routes() {
        let operation = &paths
            .get(&path)
            .map_or(serde_json::Value::Null, |p| p[&method].clone());
        if !operation.is_object() {
            missing.push(format!("{} {path}", method.to_uppercase()));
            continue;
        }
        let responses = operation["responses"].as_object().context("no responses")?;
        assert!(!responses.is_empty(), "{method} {path} has no responses");
    }
    assert!(missing.is_empty(), "not in the document: {missing:?}");
    // Nothing documented that the router does not serve.
    let served = routes();
    for (path, item) in paths {
        for method in item.as_object().into_iter().flat_map(|m| m.keys()) {
            assert!(
                served.contains(&(path.clone(), method.clone())),
                "{method} {path} is documented but not routed"
            );
        }
    }
    let schemes = &doc["components"]["securitySchemes"];
    assert_eq!(schemes["bearer"]["scheme"], "bearer");
    assert_eq!(schemes["session"]["in"], "cookie");
    assert_eq!(schemes["session"]["name"], "fw_session");
    // Writes need credentials; errors have the one JSON shape.
    let create = &paths["/api/silences"]["post"];
    let security = create["security"].as_array().context("no security")?;
    assert!(
        !security
            .iter()
            .any(|s| s.as_object().is_some_and(|o| o.is_empty())),
        "{create}"
    );
    assert_eq!(
        create["responses"]["400"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/ErrorBody"
    );
    agg.stop().await
}
