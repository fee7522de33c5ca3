//! Dashboard and API authentication against a real aggregator on loopback:
//! writes always need an admin, reads need a login when configured,
//! session cookies carry the right flags, logins are rate-limited, the
//! `user` and `api-token` commands of the real binary, security headers,
//! and cross-origin requests that ride on a cookie are refused.

#![allow(clippy::expect_used)]

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use fleetwatch_aggregator::tls::{TlsConfig, TlsMode};
use fleetwatch_tests::{Aggregator, Role, aggregator_config, binary, wait_for};
use futures_util::StreamExt;
use reqwest::header::{COOKIE, HeaderMap, ORIGIN, SET_COOKIE};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

const PASSWORD: &str = "correct horse battery";
const SILENCE: &str = r#"{"host": "web-*", "duration": "1h"}"#;

async fn start(dir: &Path, toml: &str) -> Result<Aggregator> {
    let any = "127.0.0.1:0".parse()?;
    Aggregator::start_with(&dir.join("fw.db"), any, any, aggregator_config(toml)?).await
}

/// Sends a request and returns its status, headers and JSON body (`null`
/// when the body is not JSON).
async fn send(request: reqwest::RequestBuilder) -> Result<(u16, HeaderMap, Value)> {
    let response = request.send().await?;
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.json().await.unwrap_or(Value::Null);
    Ok((status, headers, body))
}

fn post_silence(agg: &Aggregator) -> reqwest::RequestBuilder {
    agg.http_client()
        .post(agg.url("/api/silences"))
        .header("content-type", "application/json")
        .body(SILENCE)
}

/// The error message of a JSON error body, checking its shape.
fn error_of(status: u16, body: &Value) -> String {
    assert_eq!(body["status"], status, "{body}");
    body["error"]
        .as_str()
        .unwrap_or_else(|| panic!("no error message in {body}"))
        .to_owned()
}

#[tokio::test]
async fn writes_need_an_admin_even_with_open_reads() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let agg = start(dir.path(), "").await?;
    let client = agg.http_client();
    // Loopback and `read = "auto"`: reading is open...
    agg.get_ok("/api/hosts").await?;
    // ...changing is not.
    let (status, _, body) = send(post_silence(&agg)).await?;
    assert_eq!(status, 401);
    assert!(error_of(401, &body).contains("admin"), "{body}");

    let reader = agg.api_token("dashboards", Role::Read).await?;
    let (status, _, body) = send(post_silence(&agg).bearer_auth(&reader)).await?;
    assert_eq!(status, 403);
    assert!(error_of(403, &body).contains("read role"), "{body}");
    // A read token still reads.
    let (status, _, _) = send(client.get(agg.url("/api/silences")).bearer_auth(&reader)).await?;
    assert_eq!(status, 200);

    let admin = agg.api_token("deploy-bot", Role::Admin).await?;
    let (status, _, body) = send(post_silence(&agg).bearer_auth(&admin)).await?;
    assert_eq!(status, 201, "{body}");
    let id = body["id"].as_u64().expect("silence id");
    let (status, _, me) = send(client.get(agg.url("/api/me")).bearer_auth(&admin)).await?;
    assert_eq!(status, 200);
    assert_eq!(me["user"], "deploy-bot");
    assert_eq!(me["role"], "admin");
    assert_eq!(me["read_requires_login"], false);

    // A revoked token is refused, never taken for an anonymous reader.
    let store = fleetwatch_aggregator::store::SqliteStore::open(&agg.db).await?;
    fleetwatch_aggregator::auth::api_tokens::revoke(&store, "deploy-bot").await?;
    let delete = client.delete(agg.url(&format!("/api/silences/{id}")));
    let (status, _, body) = send(delete.bearer_auth(&admin)).await?;
    assert_eq!(status, 401);
    assert!(error_of(401, &body).contains("revoked"), "{body}");
    let (status, _, _) = send(client.get(agg.url("/api/hosts")).bearer_auth(&admin)).await?;
    assert_eq!(status, 401, "a revoked token does not read either");
    for bad in ["Bearer fwk_0123", "Bearer nonsense", "Basic YTpi"] {
        let request = client
            .get(agg.url("/api/hosts"))
            .header("authorization", bad);
        let (status, _, body) = send(request).await?;
        assert_eq!(status, 401, "{bad}");
        error_of(401, &body);
    }
    store.close().await;
    agg.stop().await
}

/// A WebSocket handshake to `/ws` with these extra headers: the first
/// message's type, or the HTTP status it was refused with.
async fn ws_connect(
    agg: &Aggregator,
    headers: &[(&'static str, &str)],
) -> Result<Result<String, u16>> {
    let mut request = agg
        .url("/ws")
        .replacen("http", "ws", 1)
        .into_client_request()?;
    for (name, value) in headers {
        request.headers_mut().insert(*name, value.parse()?);
    }
    match tokio_tungstenite::connect_async(request).await {
        Ok((mut ws, _)) => {
            let first = tokio::time::timeout(Duration::from_secs(10), ws.next())
                .await
                .context("no message within 10 s")?
                .context("closed")??;
            let msg: Value = serde_json::from_str(first.to_text()?)?;
            Ok(Ok(msg["type"].as_str().unwrap_or_default().to_owned()))
        }
        Err(tungstenite::Error::Http(response)) => Ok(Err(response.status().as_u16())),
        Err(e) => Err(e.into()),
    }
}

#[tokio::test]
async fn reads_need_a_login_when_configured() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let agg = start(dir.path(), "[auth]\nread = \"login\"\n").await?;
    let client = agg.http_client();
    for path in [
        "/api/hosts",
        "/api/silences",
        "/metrics",
        "/api/alerts?state=all",
    ] {
        let (status, body) = agg.get(path).await?;
        assert_eq!(status, 401, "{path}");
        assert!(error_of(401, &body).contains("login"), "{path}: {body}");
    }
    assert_eq!(ws_connect(&agg, &[]).await?, Err(401));
    // The page, its files and the health check stay reachable, so that the
    // page can show its login form.
    for path in ["/", "/assets/js/main.js", "/health"] {
        let response = client.get(agg.url(path)).send().await?;
        assert_eq!(response.status(), 200, "{path}");
    }
    let (status, me) = agg.get("/api/me").await?;
    assert_eq!(status, 200, "nobody signed in is an answer: {me}");
    assert_eq!(me["user"], serde_json::Value::Null);
    assert_eq!(me["read_requires_login"], true);
    // Wrong methods answer JSON too.
    let (status, body) = agg.get("/api/login").await?;
    assert_eq!(status, 405);
    assert!(error_of(405, &body).contains("GET"), "{body}");

    agg.add_user("viewer", PASSWORD, Role::Read).await?;
    let cookie = agg.login("viewer", PASSWORD).await?;
    for path in ["/api/hosts", "/api/silences", "/api/me"] {
        let (status, _, body) = send(client.get(agg.url(path)).header(COOKIE, &cookie)).await?;
        assert_eq!(status, 200, "{path}: {body}");
    }
    // Past the login check: the session reads /metrics too.
    let (status, _, _) = send(client.get(agg.url("/metrics")).header(COOKIE, &cookie)).await?;
    assert_eq!(status, 200);
    assert_eq!(
        ws_connect(&agg, &[("cookie", &cookie)]).await?,
        Ok("snapshot".to_owned())
    );
    let (_, _, me) = send(client.get(agg.url("/api/me")).header(COOKIE, &cookie)).await?;
    assert_eq!(
        (me["user"].as_str(), me["role"].as_str()),
        (Some("viewer"), Some("read"))
    );
    // A reader may not write, even signed in.
    let (status, _, _) = send(post_silence(&agg).header(COOKIE, &cookie)).await?;
    assert_eq!(status, 403);
    // An API token reads too.
    let token = agg.api_token("grafana", Role::Read).await?;
    let (status, _, _) = send(client.get(agg.url("/api/hosts")).bearer_auth(&token)).await?;
    assert_eq!(status, 200);

    // Logging out ends the session on the server, not just in the browser.
    let (status, headers, _) =
        send(client.post(agg.url("/api/logout")).header(COOKIE, &cookie)).await?;
    assert_eq!(status, 204);
    let cleared = headers
        .get(SET_COOKIE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    assert!(
        cleared.starts_with("fw_session=;") && cleared.contains("Max-Age=0"),
        "{cleared}"
    );
    let (status, _, _) = send(client.get(agg.url("/api/hosts")).header(COOKIE, &cookie)).await?;
    assert_eq!(status, 401, "the old cookie is dead");
    assert_eq!(ws_connect(&agg, &[("cookie", &cookie)]).await?, Err(401));
    agg.stop().await
}

#[tokio::test]
async fn login_sets_a_strict_http_only_cookie_and_is_rate_limited() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let agg = start(dir.path(), "").await?;
    let client = agg.http_client();
    agg.add_user("alice", PASSWORD, Role::Admin).await?;
    let login = |user: &str, password: &str| {
        client
            .post(agg.url("/api/login"))
            .json(&json!({"user": user, "password": password}))
    };

    let (status, headers, body) = send(login("alice", PASSWORD)).await?;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, json!({"user": "alice", "role": "admin"}));
    let cookie = headers
        .get(SET_COOKIE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let attrs: Vec<&str> = cookie.split(';').map(str::trim).collect();
    assert!(attrs[0].starts_with("fw_session=fws_"), "{cookie}");
    for flag in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=43200"] {
        assert!(attrs.contains(&flag), "{flag} in {cookie}");
    }
    assert!(
        !attrs.contains(&"Secure"),
        "no Secure over plain HTTP: {cookie}"
    );

    // A wrong password and an unknown user get the same answer.
    let (status, _, wrong) = send(login("alice", "not the password")).await?;
    assert_eq!(status, 401);
    let (status, _, unknown) = send(login("mallory", "not the password")).await?;
    assert_eq!(status, 401);
    assert_eq!(error_of(401, &wrong), error_of(401, &unknown));
    let (status, _, body) = send(
        client
            .post(agg.url("/api/login"))
            .json(&json!({"user": "alice"})),
    )
    .await?;
    assert_eq!(status, 400);
    assert!(error_of(400, &body).contains("password"), "{body}");

    // Five failures from this address within a minute (two above, three
    // here), then 429 with Retry-After, even for the right password.
    for _ in 0..3 {
        let (status, _, _) = send(login("alice", "still not it")).await?;
        assert_eq!(status, 401);
    }
    let (status, headers, body) = send(login("alice", PASSWORD)).await?;
    assert_eq!(status, 429);
    error_of(429, &body);
    let retry: u64 = headers
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("Retry-After in seconds");
    assert!((1..=60).contains(&retry), "{retry}");
    agg.stop().await
}

#[tokio::test]
async fn cookies_are_secure_and_hsts_is_sent_over_tls() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let config = fleetwatch_aggregator::Config {
        tls: TlsConfig {
            mode: TlsMode::SelfSigned { names: vec![] },
            client_ca: None,
        },
        ..Default::default()
    };
    let any = "127.0.0.1:0".parse()?;
    let agg = Aggregator::start_tls(&dir.path().join("fw.db"), any, any, config, None).await?;
    assert!(agg.url("/").starts_with("https://"));
    agg.add_user("alice", PASSWORD, Role::Admin).await?;
    let (status, headers, _) = send(
        agg.http_client()
            .post(agg.url("/api/login"))
            .json(&json!({"user": "alice", "password": PASSWORD})),
    )
    .await?;
    assert_eq!(status, 200);
    let cookie = headers
        .get(SET_COOKIE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let attrs: Vec<&str> = cookie.split(';').map(str::trim).collect();
    for flag in ["HttpOnly", "SameSite=Strict", "Secure"] {
        assert!(attrs.contains(&flag), "{flag} in {cookie}");
    }
    let hsts = headers
        .get("strict-transport-security")
        .and_then(|v| v.to_str().ok());
    assert_eq!(hsts, Some("max-age=31536000"));
    agg.stop().await
}

#[tokio::test]
async fn expired_sessions_are_refused_and_pruned() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let agg = start(
        dir.path(),
        "[auth]\nread = \"login\"\nsession_ttl = \"1s\"\n",
    )
    .await?;
    agg.add_user("alice", PASSWORD, Role::Admin).await?;
    let cookie = agg.login("alice", PASSWORD).await?;
    let client = agg.http_client();
    let (status, _, _) = send(client.get(agg.url("/api/hosts")).header(COOKIE, &cookie)).await?;
    assert_eq!(status, 200, "fresh session");
    wait_for("the session to expire", Duration::from_secs(10), || async {
        let request = client.get(agg.url("/api/hosts")).header(COOKIE, &cookie);
        match send(request).await {
            Ok((401, _, _)) => Some(()),
            _ => None,
        }
    })
    .await?;
    let sessions: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM sessions")
        .fetch_one(&agg.db().await?)
        .await?;
    assert_eq!(sessions, 0, "the expired session was deleted");
    agg.stop().await
}

/// Runs the real `fleetwatch-aggregator` with `args` and `stdin`.
fn aggregator_command(db: &Path, args: &[&str], stdin: &str) -> Result<(bool, String)> {
    use std::io::Write as _;
    let path = binary("fleetwatch-aggregator");
    let mut child = Command::new(&path)
        .args(args)
        .arg("--db")
        .arg(db)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| {
            format!(
                "run {} (build it with `cargo build --bins`)",
                path.display()
            )
        })?;
    child
        .stdin
        .take()
        .context("stdin")?
        .write_all(stdin.as_bytes())?;
    let output = child.wait_with_output()?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    Ok((output.status.success(), text))
}

#[tokio::test]
async fn user_and_api_token_commands_of_the_binary() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let db = dir.path().join("fw.db");
    let ok = |args: &[&str], stdin: &str| -> Result<String> {
        let (success, text) = aggregator_command(&db, args, stdin)?;
        if !success {
            bail!("{args:?} failed: {text}");
        }
        Ok(text)
    };
    let add = ["user", "add", "ops", "--role", "admin", "--password-stdin"];
    ok(&add, &format!("{PASSWORD}\n"))?;
    let (success, text) = aggregator_command(
        &db,
        &[
            "user",
            "add",
            "shorty",
            "--role",
            "read",
            "--password-stdin",
        ],
        "tiny\n",
    )?;
    assert!(!success && text.contains("at least 10"), "{text}");
    let (success, text) = aggregator_command(&db, &add, &format!("{PASSWORD}\n"))?;
    assert!(!success && text.contains("already exists"), "{text}");
    // Without --password-stdin and without a terminal it says what to do.
    let (success, text) =
        aggregator_command(&db, &["user", "add", "x", "--role", "read"], "whatever\n")?;
    assert!(!success && text.contains("--password-stdin"), "{text}");

    let agg = Aggregator::start(&db).await?;
    let cookie = agg.login("ops", PASSWORD).await?;
    let (status, _, body) = send(post_silence(&agg).header(COOKIE, &cookie)).await?;
    assert_eq!(status, 201, "an admin made by the CLI may write: {body}");
    let listed = ok(&["user", "list"], "")?;
    assert!(
        listed.contains("ops") && listed.contains("admin"),
        "{listed}"
    );

    // API tokens, beside the running aggregator.
    let made = ok(&["api-token", "add", "ci", "--role", "read"], "")?;
    let secret = made
        .split_whitespace()
        .find(|w| w.starts_with("fwk_"))
        .context("no secret printed")?
        .trim_matches('"')
        .to_owned();
    assert!(
        made.contains("curl -H \"Authorization: Bearer fwk_"),
        "{made}"
    );
    let client = agg.http_client();
    let (status, _, _) = send(client.get(agg.url("/api/hosts")).bearer_auth(&secret)).await?;
    assert_eq!(status, 200);
    let listed = ok(&["api-token", "list"], "")?;
    assert!(
        listed.contains("ci") && !listed.contains(&secret),
        "{listed}"
    );
    ok(&["api-token", "revoke", "ci"], "")?;
    let (status, _, _) = send(client.get(agg.url("/api/hosts")).bearer_auth(&secret)).await?;
    assert_eq!(status, 401);

    // A new password ends the sessions; removing the user ends logins.
    ok(
        &["user", "passwd", "ops", "--password-stdin"],
        "another long password\n",
    )?;
    let (status, _, _) = send(post_silence(&agg).header(COOKIE, &cookie)).await?;
    assert_eq!(
        status, 401,
        "the old session ended with the password change"
    );
    let cookie = agg.login("ops", "another long password").await?;
    ok(&["user", "remove", "ops"], "")?;
    let (status, _, _) = send(post_silence(&agg).header(COOKIE, &cookie)).await?;
    assert_eq!(status, 401);
    assert!(agg.login("ops", "another long password").await.is_err());
    agg.stop().await
}

#[tokio::test]
async fn security_headers_on_every_response() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let agg = start(dir.path(), "[auth]\nread = \"login\"\n").await?;
    let client = agg.http_client();
    for (path, status) in [
        ("/", 200),
        ("/health", 200),
        ("/api/hosts", 401),
        ("/nope", 401),
    ] {
        let response = client.get(agg.url(path)).send().await?;
        assert_eq!(response.status(), status, "{path}");
        let h = response.headers();
        let get = |name: &str| h.get(name).and_then(|v| v.to_str().ok()).unwrap_or("");
        let csp = get("content-security-policy");
        for directive in [
            "default-src 'self'",
            "script-src 'self'",
            "frame-ancestors 'none'",
            "object-src 'none'",
            "base-uri 'none'",
        ] {
            assert!(csp.contains(directive), "{path}: {directive} in {csp}");
        }
        assert!(!csp.contains("unsafe-inline"), "{csp}");
        assert_eq!(get("x-frame-options"), "DENY", "{path}");
        assert_eq!(get("x-content-type-options"), "nosniff", "{path}");
        assert_eq!(get("referrer-policy"), "no-referrer", "{path}");
        assert_eq!(
            get("strict-transport-security"),
            "",
            "no HSTS over plain HTTP"
        );
    }
    agg.stop().await
}

#[tokio::test]
async fn cross_origin_requests_riding_on_a_cookie_are_refused() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let agg = start(dir.path(), "").await?;
    agg.add_user("alice", PASSWORD, Role::Admin).await?;
    let cookie = agg.login("alice", PASSWORD).await?;
    let own = agg.url("").trim_end_matches('/').to_owned();

    let evil = post_silence(&agg)
        .header(COOKIE, &cookie)
        .header(ORIGIN, "https://evil.example");
    let (status, _, body) = send(evil).await?;
    assert_eq!(status, 403);
    assert!(error_of(403, &body).contains("cross-origin"), "{body}");
    let (status, _, _) = send(
        post_silence(&agg)
            .header(COOKIE, &cookie)
            .header(ORIGIN, &own),
    )
    .await?;
    assert_eq!(status, 201, "same origin");
    let (status, _, _) = send(post_silence(&agg).header(COOKIE, &cookie)).await?;
    assert_eq!(status, 201, "no Origin (not a browser)");
    // Login and logout are checked as well (login CSRF).
    let forged_login = agg
        .http_client()
        .post(agg.url("/api/login"))
        .header(ORIGIN, "https://evil.example")
        .json(&json!({"user": "alice", "password": PASSWORD}));
    assert_eq!(send(forged_login).await?.0, 403);

    // A page elsewhere may not open the live feed with the user's cookie.
    assert_eq!(
        ws_connect(
            &agg,
            &[("cookie", &cookie), ("origin", "https://evil.example")]
        )
        .await?,
        Err(403)
    );
    assert_eq!(
        ws_connect(&agg, &[("cookie", &cookie), ("origin", &own)]).await?,
        Ok("snapshot".to_owned())
    );
    agg.stop().await
}

/// Opens `/ws` with these headers and reads until the server closes it;
/// the close code, or an error after `within`.
async fn ws_closed_code(
    agg: &Aggregator,
    headers: &[(&'static str, &str)],
    access_ends: impl std::future::Future<Output = Result<()>>,
    within: Duration,
) -> Result<u16> {
    let mut request = agg
        .url("/ws")
        .replacen("http", "ws", 1)
        .into_client_request()?;
    for (name, value) in headers {
        request.headers_mut().insert(*name, value.parse()?);
    }
    let (mut ws, _) = tokio_tungstenite::connect_async(request).await?;
    let first = ws.next().await.context("closed at once")??;
    assert!(first.to_text()?.contains("snapshot"), "{first:?}");
    access_ends.await?;
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let message = tokio::time::timeout_at(deadline, ws.next())
            .await
            .context("the websocket stayed open after access ended")?;
        match message {
            Some(Ok(tungstenite::Message::Close(frame))) => {
                return Ok(frame.map_or(0, |f| u16::from(f.code)));
            }
            Some(Ok(_)) => continue,
            Some(Err(e)) => bail!("websocket error: {e}"),
            None => bail!("closed without a close frame"),
        }
    }
}

#[tokio::test]
async fn open_websockets_close_when_access_ends() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let agg = start(dir.path(), "[auth]\nread = \"login\"\n").await?;
    let within = fleetwatch_aggregator::api::ws::CREDENTIAL_RECHECK * 3;

    // Signing out ends the session's open feed, not only new requests.
    agg.add_user("viewer", PASSWORD, Role::Read).await?;
    let cookie = agg.login("viewer", PASSWORD).await?;
    let logout = async {
        let (status, _, _) = send(
            agg.http_client()
                .post(agg.url("/api/logout"))
                .header(COOKIE, &cookie),
        )
        .await?;
        anyhow::ensure!(status == 204, "logout: {status}");
        Ok(())
    };
    let code = ws_closed_code(&agg, &[("cookie", &cookie)], logout, within).await?;
    assert_eq!(code, 1008, "policy violation");

    // So does revoking the API token a script reads with.
    let token = agg.api_token("dashboard-kiosk", Role::Read).await?;
    let bearer = format!("Bearer {token}");
    let revoke = async {
        let store = fleetwatch_aggregator::store::SqliteStore::open(&agg.db).await?;
        fleetwatch_aggregator::auth::api_tokens::revoke(&store, "dashboard-kiosk").await?;
        store.close().await;
        Ok(())
    };
    let code = ws_closed_code(&agg, &[("authorization", &bearer)], revoke, within).await?;
    assert_eq!(code, 1008);
    agg.stop().await
}

#[tokio::test]
async fn logins_sent_at_once_get_no_more_guesses() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let agg = start(dir.path(), "").await?;
    agg.add_user("alice", PASSWORD, Role::Admin).await?;
    let guesses = (0..40).map(|i| {
        send(
            agg.http_client()
                .post(agg.url("/api/login"))
                .json(&json!({"user": "alice", "password": format!("guess number {i}")})),
        )
    });
    let answers = futures_util::future::join_all(guesses).await;
    let mut checked = 0;
    for answer in answers {
        let (status, _, body) = answer?;
        match status {
            401 => checked += 1,
            429 => {
                error_of(429, &body);
            }
            other => bail!("unexpected {other}: {body}"),
        }
    }
    let max = fleetwatch_aggregator::auth::login_limiter::MAX_FAILURES;
    assert!(
        checked <= max as usize,
        "{checked} guesses were checked, more than {max}"
    );
    agg.stop().await
}
