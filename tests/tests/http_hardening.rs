//! End-to-end: the HTTP listener against hostile clients (issue 12): with
//! open reads it answers only its own names (DNS rebinding), WebSocket
//! upgrades included; with reads behind a login any name is answered;
//! silent connections are closed at their deadline and capped per address.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};
use fleetwatch_proto as wire;
use fleetwatch_tests::{Aggregator, RawStream, aggregator_config, wait_for};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn start(dir: &Path, toml: &str) -> Result<Aggregator> {
    let any = "127.0.0.1:0".parse()?;
    Aggregator::start_with(&dir.join("fw.db"), any, any, aggregator_config(toml)?).await
}

/// Sends `head` (request line and headers, without the blank line) on a
/// fresh connection and returns the status and the body.
async fn raw_request(addr: SocketAddr, head: &str) -> Result<(u16, String)> {
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    stream
        .write_all(format!("{head}\r\nConnection: close\r\n\r\n").as_bytes())
        .await?;
    // To the end, or to the end of the head of a 101 (the connection then
    // stays open for WebSocket frames).
    let mut answer = Vec::new();
    let read = async {
        let mut chunk = [0u8; 4096];
        loop {
            let n = stream.read(&mut chunk).await?;
            answer.extend_from_slice(&chunk[..n]);
            let switching =
                answer.starts_with(b"HTTP/1.1 101") && answer.windows(4).any(|w| w == b"\r\n\r\n");
            if n == 0 || switching {
                return Ok::<_, std::io::Error>(());
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(10), read)
        .await
        .context("no answer in 10 s")??;
    let text = String::from_utf8_lossy(&answer).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .context("no status line")?;
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Ok((status, body))
}

const WS_UPGRADE: &str = "Upgrade: websocket\r\nConnection: Upgrade\r\n\
     Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==";

#[tokio::test]
async fn open_reads_answer_only_this_servers_names() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let agg = start(dir.path(), "public_url = \"https://fleet.example.com/\"\n").await?;
    let port = agg.http.port();

    for host in [
        "attacker.example",
        "attacker.example:80",
        "localhost.attacker.example",
    ] {
        for path in ["/api/hosts", "/api/metrics/current", "/", "/health"] {
            let (status, body) = raw_request(
                agg.http,
                &format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nOrigin: http://{host}"),
            )
            .await?;
            assert_eq!(status, 421, "{host}{path}: {body}");
            let json: serde_json::Value = serde_json::from_str(&body)?;
            assert!(
                json["error"].as_str().is_some_and(|e| e.contains(host)),
                "{body}"
            );
        }
        let (status, body) = raw_request(
            agg.http,
            &format!("GET /ws HTTP/1.1\r\nHost: {host}\r\nOrigin: http://{host}\r\n{WS_UPGRADE}"),
        )
        .await?;
        assert_eq!(status, 421, "ws upgrade for {host}: {body}");
    }

    // Its own names: the address, localhost on loopback, public_url.
    for host in [
        format!("127.0.0.1:{port}"),
        format!("localhost:{port}"),
        "fleet.example.com".to_owned(),
    ] {
        let (status, body) = raw_request(
            agg.http,
            &format!("GET /api/hosts HTTP/1.1\r\nHost: {host}"),
        )
        .await?;
        assert_eq!(status, 200, "{host}: {body}");
    }
    let (status, _) = raw_request(
        agg.http,
        &format!(
            "GET /ws HTTP/1.1\r\nHost: localhost:{port}\r\nOrigin: http://localhost:{port}\r\n{WS_UPGRADE}"
        ),
    )
    .await?;
    assert_eq!(status, 101, "a WebSocket to its own name upgrades");
    agg.stop().await
}

#[tokio::test]
async fn reads_behind_a_login_answer_any_name() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let agg = start(dir.path(), "[auth]\nread = \"login\"\n").await?;
    let (status, body) = raw_request(
        agg.http,
        "GET /api/hosts HTTP/1.1\r\nHost: fleet.internal.example",
    )
    .await?;
    assert_eq!(status, 401, "the login is the defence here: {body}");
    let (status, _) = raw_request(
        agg.http,
        "GET /health HTTP/1.1\r\nHost: fleet.internal.example",
    )
    .await?;
    assert_eq!(status, 200);
    agg.stop().await
}

/// Reads until the server closes the connection; the time it took, or an
/// error if it stayed open for 10 s.
async fn closed_within(stream: &mut tokio::net::TcpStream) -> Result<Duration> {
    let started = std::time::Instant::now();
    let mut buf = [0u8; 1024];
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await
    .context("the server kept a silent connection open for 10 s")?;
    Ok(started.elapsed())
}

/// Issue 12, item 5: connections that never finish their request head
/// (HTTP) or never send the HTTP/2 preface (gRPC) are closed at their
/// deadline, and one address cannot hold more than its share.
#[tokio::test]
async fn silent_connections_are_closed_and_capped_per_address() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let agg = start(
        dir.path(),
        "[limits]\nhttp_header_timeout = \"1s\"\ngrpc_preface_timeout = \"1s\"\n\
         connections_per_address = 4\n",
    )
    .await?;

    let opened = std::time::Instant::now();
    let mut silent_http = tokio::net::TcpStream::connect(agg.http).await?;
    let mut slow_http = tokio::net::TcpStream::connect(agg.http).await?;
    slow_http
        .write_all(b"GET /api/hosts HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        .await?;
    let mut silent_grpc = tokio::net::TcpStream::connect(agg.grpc).await?;
    for (what, stream) in [
        ("silent HTTP", &mut silent_http),
        ("unfinished HTTP head", &mut slow_http),
        ("gRPC without a preface", &mut silent_grpc),
    ] {
        closed_within(stream).await.context(what)?;
        let took = opened.elapsed();
        assert!(
            took >= Duration::from_millis(900),
            "{what}: closed after {took:?}"
        );
    }

    // Four connections from 127.0.0.1 fill its share; the fifth is closed
    // at once, another address still gets in, and a freed place is reused.
    let mut held = Vec::new();
    for _ in 0..4 {
        let conn = tokio::net::TcpStream::connect(agg.grpc).await?;
        held.push(conn);
    }
    // The accept loop counts the four before it sees the fifth.
    let mut fifth = tokio::net::TcpStream::connect(agg.grpc).await?;
    let took = closed_within(&mut fifth)
        .await
        .context("fifth connection")?;
    assert!(
        took < Duration::from_millis(900),
        "the fifth waited {took:?}"
    );
    let mut other = RawStream::open_from(
        &agg,
        Some("127.0.0.2".parse()?),
        None,
        fleetwatch_tests::hello_msg("elsewhere"),
    )
    .await;
    // Refused for its missing token, which proves it reached the service.
    match &mut other {
        Ok(stream) => {
            let status = stream.inbound.message().await.expect_err("no token");
            assert_eq!(status.code(), tonic::Code::Unauthenticated, "{status:?}");
        }
        Err(status) => assert_eq!(status.code(), tonic::Code::Unauthenticated, "{status:?}"),
    }
    drop(held);
    let mut stream = wait_for("a freed place", Duration::from_secs(10), || async {
        RawStream::hello(&agg, "after").await.ok()
    })
    .await?;
    stream
        .send(wire::Batch {
            seq: 1,
            samples: vec![fleetwatch_tests::sample(fleetwatch_tests::now_ms(), 1.0)],
            ..Default::default()
        })
        .await?;
    agg.stop().await
}

/// Issue 12, item 9: guesses at one name from many addresses lock the name
/// for new addresses, but never for the one its owner signed in from.
#[tokio::test]
async fn guessing_from_elsewhere_cannot_lock_the_owner_out() -> Result<()> {
    use fleetwatch_aggregator::auth::login_limiter::{MAX_FAILURES, MAX_NAME_FAILURES};
    let dir = tempfile::tempdir()?;
    let agg = start(dir.path(), "").await?;
    agg.add_user(
        "admin",
        "correct horse battery",
        fleetwatch_tests::Role::Admin,
    )
    .await?;
    let from = |ip: [u8; 4]| -> Result<reqwest::Client> {
        Ok(reqwest::Client::builder()
            .local_address(std::net::IpAddr::from(ip))
            .build()?)
    };
    let login = |client: &reqwest::Client, password: &str| {
        client
            .post(agg.url("/api/login"))
            .json(&serde_json::json!({"user": "admin", "password": password}))
            .send()
    };
    let owner = from([127, 0, 0, 1])?;
    assert_eq!(login(&owner, "correct horse battery").await?.status(), 200);

    // A botnet: as many addresses as it takes, each within its own limit.
    let mut refused = 0;
    let mut checked = 0;
    for bot in 0..(MAX_NAME_FAILURES / MAX_FAILURES + 2) {
        let client = from([127, 0, 1, u8::try_from(bot)?])?;
        for _ in 0..MAX_FAILURES {
            match login(&client, "guess").await?.status().as_u16() {
                401 => checked += 1,
                429 => refused += 1,
                other => anyhow::bail!("unexpected {other}"),
            }
        }
    }
    assert_eq!(checked, MAX_NAME_FAILURES, "the name-wide count");
    assert!(refused > 0);
    let fresh = from([127, 0, 2, 1])?;
    assert_eq!(login(&fresh, "correct horse battery").await?.status(), 429);
    // Its owner still signs in from where it did before.
    assert_eq!(login(&owner, "correct horse battery").await?.status(), 200);
    agg.stop().await
}
