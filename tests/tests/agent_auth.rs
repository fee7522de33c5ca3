//! Agent authentication end to end, through the real gRPC edge and the real
//! `fleetwatch-aggregator token|host` commands run against the live
//! aggregator's database: missing, wrong and revoked tokens are refused and
//! store nothing; a revoked token's open stream is closed within seconds;
//! a host id belongs to the first token that registered it until an
//! operator reassigns it; failed attempts are rate-limited per peer.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use fleetwatch_proto as wire;
use fleetwatch_tests::{
    Aggregator, RawStream, Role, hello_msg, now_ms, run_bin, sample, stored_counts,
};
use serde_json::json;
use tonic::Code;

/// Longest a revocation may take to close a stream (the aggregator
/// rechecks every 2 s).
const CLOSE_DEADLINE: Duration = Duration::from_secs(10);

/// Runs `fleetwatch-aggregator --db <agg's db> <args>`; its stdout.
fn admin(agg: &Aggregator, args: &[&str]) -> Result<String> {
    let db = agg.db.to_str().context("db path")?;
    let mut all = vec!["--db", db];
    all.extend_from_slice(args);
    let out = run_bin("fleetwatch-aggregator", &all)?;
    if !out.status.success() {
        bail!(
            "fleetwatch-aggregator {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8(out.stdout)?)
}

/// `token add`: the new token's secret.
fn token_add(agg: &Aggregator, name: &str, host: Option<&str>) -> Result<String> {
    let mut args = vec!["token", "add", name];
    if let Some(host) = host {
        args.extend(["--host", host]);
    }
    Ok(admin(agg, &args)?.trim().to_owned())
}

fn batch(seq: u64, ts: i64) -> wire::Batch {
    wire::Batch {
        seq,
        samples: vec![sample(ts, 10.0)],
        ..Default::default()
    }
}

/// The status a refused open ended with.
fn refused(result: Result<RawStream, tonic::Status>) -> Result<tonic::Status> {
    match result {
        Ok(_) => bail!("the stream was accepted"),
        Err(status) => Ok(status),
    }
}

/// Waits for the aggregator to end `stream`; the status it ended with.
async fn closed(stream: &mut RawStream) -> Result<tonic::Status> {
    let started = Instant::now();
    loop {
        let remaining = CLOSE_DEADLINE
            .checked_sub(started.elapsed())
            .context("the stream was not closed in time")?;
        match tokio::time::timeout(remaining, stream.inbound.message()).await {
            Err(_) => bail!("the stream was not closed within {CLOSE_DEADLINE:?}"),
            Ok(Ok(Some(_))) => continue,
            Ok(Ok(None)) => bail!("the stream ended without a status"),
            Ok(Err(status)) => return Ok(status),
        }
    }
}

async fn hosts(agg: &Aggregator) -> Result<Vec<String>> {
    let pool = agg.db().await?;
    Ok(
        sqlx::query_scalar("SELECT host_id FROM hosts ORDER BY host_id")
            .fetch_all(&pool)
            .await?,
    )
}

#[tokio::test]
async fn missing_wrong_and_revoked_tokens_are_refused_and_store_nothing() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let agg = Aggregator::start(&dir.path().join("fw.db")).await?;

    let status = refused(RawStream::open_with(&agg, None, hello_msg("anonymous")).await)?;
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
    assert!(
        status.message().contains("missing agent token"),
        "{status:?}"
    );

    let guess = format!("fwa_{}", "0".repeat(64));
    let status = refused(RawStream::open_with(&agg, Some(&guess), hello_msg("guessed")).await)?;
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
    assert!(
        status.message().contains("unknown agent token"),
        "{status:?}"
    );

    let status = refused(RawStream::open_with(&agg, Some("hunter2"), hello_msg("pw")).await)?;
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");

    // A token made by the CLI works at once, then is revoked by the CLI
    // while its stream is open.
    let secret = token_add(&agg, "ci-runner", None)?;
    assert!(secret.starts_with("fwa_"), "{secret}");
    let mut stream = RawStream::open_with(&agg, Some(&secret), hello_msg("runner-1")).await?;
    let t0 = now_ms();
    assert_eq!(stream.send(batch(1, t0)).await?, 1);
    let revoked_at = Instant::now();
    let out = admin(&agg, &["token", "revoke", "ci-runner"])?;
    assert!(out.contains("revoked"), "{out}");
    let status = closed(&mut stream).await?;
    println!("revoked stream closed after {:?}", revoked_at.elapsed());
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
    assert!(status.message().contains("revoked"), "{status:?}");
    // Nothing sent after the revocation is stored, and it cannot come back.
    assert!(stream.send(batch(2, t0 + 1000)).await.is_err());
    let status = refused(RawStream::open_with(&agg, Some(&secret), hello_msg("runner-1")).await)?;
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
    assert!(
        status.message().contains("`ci-runner` has been revoked"),
        "{status:?}"
    );

    let pool = agg.db().await?;
    assert_eq!(stored_counts(&pool, "runner-1").await?.0, 1);
    assert_eq!(hosts(&agg).await?, vec!["runner-1".to_owned()]);
    let listed = admin(&agg, &["token", "list"])?;
    let line = listed
        .lines()
        .find(|l| l.starts_with("ci-runner\t"))
        .context("token list lacks ci-runner")?;
    assert_eq!(line.split('\t').filter(|f| *f != "-").count(), 6, "{line}");
    assert!(!listed.contains(&secret), "a secret was listed: {listed}");
    agg.stop().await
}

#[tokio::test]
async fn a_host_id_belongs_to_its_first_token_until_reassigned() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let agg = Aggregator::start(&dir.path().join("fw.db")).await?;
    let first = token_add(&agg, "first", None)?;
    let second = token_add(&agg, "second", None)?;
    let t0 = now_ms();

    let mut owner = RawStream::open_with(&agg, Some(&first), hello_msg("web-1")).await?;
    assert_eq!(owner.send(batch(1, t0)).await?, 1);

    // Another valid token cannot stream as web-1, and stores nothing.
    let status = refused(RawStream::open_with(&agg, Some(&second), hello_msg("web-1")).await)?;
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    assert!(
        status.message().contains("belongs to agent token `first`")
            && status.message().contains("host reassign web-1 second"),
        "{status:?}"
    );
    let pool = agg.db().await?;
    assert_eq!(stored_counts(&pool, "web-1").await?.0, 1);

    // A token made for one host is refused as any other.
    let bound = token_add(&agg, "db-1-token", Some("db-1"))?;
    // It owns db-1 from the start: no other token can claim db-1 before
    // db-1's own agent first connects.
    let status = refused(RawStream::open_with(&agg, Some(&second), hello_msg("db-1")).await)?;
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    assert!(
        status
            .message()
            .contains("belongs to agent token `db-1-token`"),
        "{status:?}"
    );
    let status = refused(RawStream::open_with(&agg, Some(&bound), hello_msg("db-2")).await)?;
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    assert!(
        status.message().contains("is for host `db-1`"),
        "{status:?}"
    );
    let mut db1 = RawStream::open_with(&agg, Some(&bound), hello_msg("db-1")).await?;
    assert_eq!(db1.send(batch(1, t0)).await?, 1);

    // The operator moves web-1 to the second token: the first token's
    // stream is closed, and the second one streams.
    let out = admin(&agg, &["host", "reassign", "web-1", "second"])?;
    assert!(out.contains("now belongs to agent token `second`"), "{out}");
    let status = closed(&mut owner).await?;
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    assert!(status.message().contains("reassigned"), "{status:?}");
    let mut new_owner = RawStream::open_with(&agg, Some(&second), hello_msg("web-1")).await?;
    assert_eq!(new_owner.send(batch(1, t0 + 1000)).await?, 1);
    assert_eq!(stored_counts(&pool, "web-1").await?.0, 2);
    let status = refused(RawStream::open_with(&agg, Some(&first), hello_msg("web-1")).await)?;
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");

    let listed = admin(&agg, &["host", "list"])?;
    assert!(listed.contains("web-1\tsecond\t"), "{listed}");
    assert!(listed.contains("db-1\tdb-1-token\t"), "{listed}");
    agg.stop().await
}

#[tokio::test]
async fn failed_attempts_are_rate_limited_per_peer() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let agg = Aggregator::start(&dir.path().join("fw.db")).await?;
    let attacker = Some("127.0.0.2".parse()?);
    let neighbour = Some("127.0.0.3".parse()?);
    let wrong = format!("fwa_{}", "1".repeat(64));
    let max = fleetwatch_aggregator::auth::agent_access::MAX_FAILURES;
    for i in 0..max {
        let status = refused(
            RawStream::open_from(&agg, attacker, Some(&wrong), hello_msg(&format!("g{i}"))).await,
        )?;
        assert_eq!(
            status.code(),
            Code::Unauthenticated,
            "attempt {i}: {status:?}"
        );
    }
    // From now on that address is told to back off...
    for token in [Some(wrong.as_str()), None] {
        let status =
            refused(RawStream::open_from(&agg, attacker, token, hello_msg("again")).await)?;
        assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
        assert!(
            status.message().contains("too many failed attempts"),
            "{status:?}"
        );
    }
    // ...but a healthy agent behind the same address (a NAT) still gets in,
    // and another address was never held back.
    let mut behind_nat =
        RawStream::open_from(&agg, attacker, Some(&agg.agent_token), hello_msg("nat")).await?;
    assert_eq!(behind_nat.send(batch(1, now_ms())).await?, 1);
    let mut stream =
        RawStream::open_from(&agg, neighbour, Some(&agg.agent_token), hello_msg("ok")).await?;
    assert_eq!(stream.send(batch(1, now_ms())).await?, 1);
    assert_eq!(hosts(&agg).await?, vec!["nat".to_owned(), "ok".to_owned()]);
    agg.stop().await
}

#[tokio::test]
async fn admins_manage_agent_tokens_over_the_api_and_revocation_is_immediate() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let agg = Aggregator::start(&dir.path().join("fw.db")).await?;
    let client = agg.http_client();
    let url = agg.url("/api/agent-tokens");
    let admin = agg.admin_token().await?;
    let reader = agg.api_token("viewer", Role::Read).await?;

    // Anonymous and read-only callers may neither see nor make tokens.
    let anonymous = client.get(&url).send().await?;
    assert_eq!(anonymous.status(), 401);
    let body: serde_json::Value = anonymous.json().await?;
    assert!(body["error"].is_string(), "{body}");
    let read_only = client.get(&url).bearer_auth(&reader).send().await?;
    assert_eq!(read_only.status(), 403);
    let made_by_reader = client
        .post(&url)
        .bearer_auth(&reader)
        .json(&json!({"name": "sneaky"}))
        .send()
        .await?;
    assert_eq!(made_by_reader.status(), 403);

    // An admin makes one for a host; its secret is in the answer, once.
    let created = client
        .post(&url)
        .bearer_auth(&admin)
        .json(&json!({"name": "gpu-7", "host": "gpu-7"}))
        .send()
        .await?;
    assert_eq!(created.status(), 201);
    let created: serde_json::Value = created.json().await?;
    assert_eq!(created["name"], "gpu-7");
    assert_eq!(created["host_id"], "gpu-7");
    let secret = created["token_secret"]
        .as_str()
        .context("no token_secret")?
        .to_owned();
    for (body, status) in [
        (json!({"name": "gpu-7"}), 409),
        (json!({"name": "<b>x</b>"}), 400),
        (json!({"name": "ok", "host": "a/b"}), 400),
        (json!({"nom": "x"}), 400),
    ] {
        let response = client
            .post(&url)
            .bearer_auth(&admin)
            .json(&body)
            .send()
            .await?;
        assert_eq!(response.status(), status, "{body}");
        let error: serde_json::Value = response.json().await?;
        assert!(error["error"].is_string(), "{error}");
    }

    let mut stream = RawStream::open_with(&agg, Some(&secret), hello_msg("gpu-7")).await?;
    assert_eq!(stream.send(batch(1, now_ms())).await?, 1);
    let listed: serde_json::Value = client
        .get(&url)
        .bearer_auth(&admin)
        .send()
        .await?
        .json()
        .await?;
    let entry = listed
        .as_array()
        .and_then(|a| a.iter().find(|t| t["name"] == "gpu-7"))
        .context("gpu-7 not listed")?;
    assert_eq!(entry["hosts"], json!(["gpu-7"]));
    assert!(!listed.to_string().contains(&secret), "a secret was listed");

    // Revoking over the API closes the stream at once, not at the next
    // recheck.
    let revoked = client
        .delete(agg.url("/api/agent-tokens/gpu-7"))
        .bearer_auth(&admin)
        .send()
        .await?;
    assert_eq!(revoked.status(), 200);
    let status = closed(&mut stream).await?;
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
    let missing = client
        .delete(agg.url("/api/agent-tokens/nope"))
        .bearer_auth(&admin)
        .send()
        .await?;
    assert_eq!(missing.status(), 404);
    let status = refused(RawStream::open_with(&agg, Some(&secret), hello_msg("gpu-7")).await)?;
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
    agg.stop().await
}
