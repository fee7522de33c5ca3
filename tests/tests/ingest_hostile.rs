//! End-to-end: malformed and hostile gRPC input is refused with a status
//! that says why, stores nothing, and crashes nothing; a resent batch is
//! acknowledged again and stored once.

use anyhow::Result;
use fleetwatch_proto as wire;
use fleetwatch_tests::{Aggregator, RawStream, now_ms, sample, stored_counts};

fn batch(seq: u64, samples: Vec<wire::Sample>) -> wire::Batch {
    wire::Batch {
        seq,
        samples,
        ..Default::default()
    }
}

/// Sends one batch on a fresh stream and returns the refusal.
async fn refused(agg: &Aggregator, host: &str, s: wire::Sample) -> tonic::Status {
    let mut stream = match RawStream::hello(agg, host).await {
        Ok(stream) => stream,
        Err(status) => return status,
    };
    match stream.send(batch(7, vec![s])).await {
        Ok(seq) => panic!("batch {seq} was accepted"),
        Err(status) => status,
    }
}

fn assert_invalid(status: &tonic::Status, field: &str) {
    assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
    assert!(
        status.message().contains(field),
        "`{}` should name {field}",
        status.message()
    );
    assert_eq!(
        status
            .metadata()
            .get(wire::REJECTED_SEQ_METADATA)
            .and_then(|v| v.to_str().ok()),
        Some("7"),
        "the refused batch's seq is in the metadata"
    );
}

#[tokio::test]
async fn hostile_samples_are_refused_and_store_nothing() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let agg = Aggregator::start(&dir.path().join("fw.db")).await?;
    let now = now_ms();

    let mut s = sample(now, 10.0);
    if let Some(sys) = s.system.as_mut() {
        sys.cpu_percent = f64::NAN;
    }
    assert_invalid(&refused(&agg, "evil", s).await, "system.cpu_percent");

    let mut s = sample(now, 10.0);
    s.workers[0].cmdline = "A".repeat(100_000);
    assert_invalid(&refused(&agg, "evil", s).await, "workers[0].cmdline");

    let mut s = sample(now, 10.0);
    s.workers[0].name = "<script>".repeat(1000);
    assert_invalid(&refused(&agg, "evil", s).await, "workers[0].name");

    // Too many workers is no longer a refusal: the list is cut and the
    // host's metrics kept (issue 12); see backfill.rs,
    // an_oversized_worker_list_does_not_silence_the_host.

    let s = sample(now + 365 * 24 * 3600 * 1000, 10.0);
    assert_invalid(&refused(&agg, "evil", s).await, "timestamp_ms");

    let mut s = sample(now, 10.0);
    if let Some(sys) = s.system.as_mut() {
        sys.load1 = f64::INFINITY;
        sys.net_rx_bytes_per_sec = -5.0;
    }
    assert_invalid(&refused(&agg, "evil", s).await, "system.load1");

    // A message over the size limit is refused by its place on the stream
    // (it has no seq the aggregator could read), so the agent drops it.
    let mut s = sample(now, 10.0);
    s.workers[0].cmdline = "B".repeat(9 << 20);
    let status = refused(&agg, "evil", s).await;
    assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
    assert!(status.message().contains("too large"), "{status:?}");
    assert_eq!(
        status
            .metadata()
            .get(wire::REJECTED_INDEX_METADATA)
            .and_then(|v| v.to_str().ok()),
        Some("1")
    );

    // Nothing of it was stored, and the aggregator still answers.
    let pool = agg.db().await?;
    assert_eq!(stored_counts(&pool, "evil").await?, (0, 0));
    pool.close().await;
    let health = agg.get_ok("/health").await?;
    assert_eq!(health["status"], "ok");
    agg.stop().await
}

#[tokio::test]
async fn streams_must_open_with_a_valid_hello() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let agg = Aggregator::start(&dir.path().join("fw.db")).await?;

    let batch_first = wire::AgentMessage {
        msg: Some(wire::agent_message::Msg::Batch(batch(
            1,
            vec![sample(now_ms(), 1.0)],
        ))),
    };
    let status = match RawStream::open(&agg, batch_first).await {
        Ok(mut stream) => stream.inbound.message().await.expect_err("refused"),
        Err(status) => status,
    };
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    assert!(status.message().contains("Hello"), "{status:?}");

    for bad_id in ["", "../etc/passwd", "<img src=x>", &"h".repeat(500)] {
        let status = match RawStream::hello(&agg, bad_id).await {
            Ok(mut stream) => stream.inbound.message().await.expect_err("refused"),
            Err(status) => status,
        };
        assert_eq!(status.code(), tonic::Code::InvalidArgument, "{bad_id}");
        assert!(status.message().contains("host_id"), "{status:?}");
    }
    let hosts = agg.get_ok("/api/hosts").await?;
    assert_eq!(hosts, serde_json::json!([]));
    agg.stop().await
}

#[tokio::test]
async fn a_resent_batch_is_acked_and_stored_once() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let agg = Aggregator::start(&dir.path().join("fw.db")).await?;
    let now = now_ms();
    let samples: Vec<wire::Sample> = (0..5).map(|i| sample(now - 5000 + i * 1000, 5.0)).collect();

    let mut stream = RawStream::hello(&agg, "dup").await?;
    assert_eq!(stream.send(batch(1, samples.clone())).await?, 1);
    // The same batch again, as after a lost ack, on a new stream.
    drop(stream);
    let mut stream = RawStream::hello(&agg, "dup").await?;
    assert_eq!(stream.send(batch(1, samples.clone())).await?, 1);
    assert_eq!(stream.send(batch(2, samples[..2].to_vec())).await?, 2);

    let pool = agg.db().await?;
    assert_eq!(stored_counts(&pool, "dup").await?, (5, 5));
    pool.close().await;

    // Hello's worker groups and the stream's samples reach the API.
    let status = agg.get_ok("/api/workers/status?host=dup").await?;
    assert_eq!(status[0]["groups"][0]["name"], "queue");
    assert_eq!(status[0]["groups"][0]["alive"], 1);
    assert_eq!(status[0]["groups"][0]["met"], false);
    drop(stream);
    agg.stop().await
}

/// Issue 12, item 11: values that contradict each other or the Hello are
/// refused naming the field, with the batch's seq, and store nothing; a
/// sample from beyond the clock-skew allowance never becomes "current".
#[tokio::test]
async fn inconsistent_samples_are_refused_and_never_current() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let agg = Aggregator::start(&dir.path().join("fw.db")).await?;
    let now = now_ms();

    let mut s = sample(now, 10.0);
    if let Some(sys) = s.system.as_mut() {
        sys.memory_used_bytes = sys.memory_total_bytes * 1_000_000;
    }
    assert_invalid(&refused(&agg, "odd", s).await, "system.memory_used_bytes");

    let mut s = sample(now, 10.0);
    if let Some(sys) = s.system.as_mut() {
        sys.swap_total_bytes = 10;
        sys.swap_used_bytes = 11;
    }
    assert_invalid(&refused(&agg, "odd", s).await, "system.swap_used_bytes");

    let mut s = sample(now, 10.0);
    s.workers[0].group = "never-declared".to_owned();
    let status = refused(&agg, "odd", s).await;
    assert_invalid(&status, "workers[0].group");
    assert!(status.message().contains("declared"), "{status:?}");

    let mut s = sample(now, 10.0);
    s.workers.push(s.workers[0].clone());
    let status = refused(&agg, "odd", s).await;
    assert_invalid(&status, "workers[1].pid");
    assert!(status.message().contains("twice"), "{status:?}");

    // Two minutes ahead: beyond the allowance for clock skew.
    let s = sample(now + 120_000, 10.0);
    assert_invalid(&refused(&agg, "odd", s).await, "timestamp_ms");

    for dots in [".", ".."] {
        let status = match RawStream::hello(&agg, dots).await {
            Ok(mut stream) => stream.inbound.message().await.expect_err("refused"),
            Err(status) => status,
        };
        assert_eq!(status.code(), tonic::Code::InvalidArgument, "{dots}");
        assert!(status.message().contains("host_id"), "{status:?}");
    }

    let pool = agg.db().await?;
    assert_eq!(stored_counts(&pool, "odd").await?, (0, 0));
    pool.close().await;
    let current = agg.get_ok("/api/metrics/current?host=odd").await?;
    assert_eq!(current, serde_json::json!([]), "nothing refused is current");

    // A valid sample a little ahead (skew) is stored.
    let mut stream = RawStream::hello(&agg, "odd").await?;
    assert_eq!(
        stream
            .send(batch(8, vec![sample(now + 5_000, 10.0)]))
            .await?,
        8
    );
    agg.stop().await
}

/// What an agent with a broken encoder could send: `AgentMessage` with its
/// `batch` field (2) holding whatever bytes it is given.
#[derive(Clone, PartialEq, prost::Message)]
struct RawAgentMessage {
    #[prost(message, optional, tag = "1")]
    hello: Option<wire::Hello>,
    #[prost(bytes = "vec", tag = "2")]
    batch: Vec<u8>,
}

/// Issue 12, item 11: a message that cannot be decoded has no seq, so the
/// refusal names its ordinal on the stream, which the agent maps back to the
/// batch it sent (agent/src/shipper.rs, `InFlight`); the batches before it
/// stay stored and the aggregator keeps serving.
#[tokio::test]
async fn an_undecodable_message_is_refused_by_its_place_on_the_stream() -> Result<()> {
    use prost::Message;
    use tokio_stream::wrappers::ReceiverStream;

    let dir = tempfile::tempdir()?;
    let agg = Aggregator::start(&dir.path().join("fw.db")).await?;
    let channel = tonic::transport::Endpoint::from_shared(agg.grpc_url())?
        .connect()
        .await?;
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await?;
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    let Some(wire::agent_message::Msg::Hello(hello)) = fleetwatch_tests::hello_msg("garbled").msg
    else {
        anyhow::bail!("hello_msg gives a Hello");
    };
    tx.send(RawAgentMessage {
        hello: Some(hello),
        batch: Vec::new(),
    })
    .await?;
    let mut request = tonic::Request::new(ReceiverStream::new(rx));
    request.metadata_mut().insert(
        wire::AUTHORIZATION_METADATA,
        format!("Bearer {}", agg.agent_token).parse()?,
    );
    let codec = tonic_prost::ProstCodec::<RawAgentMessage, wire::AggregatorMessage>::default();
    let path =
        tonic::codegen::http::uri::PathAndQuery::from_static("/fleetwatch.v1.Ingest/Connect");
    let mut inbound = grpc.streaming(request, path, codec).await?.into_inner();

    let now = now_ms();
    let good = batch(1, vec![sample(now - 1000, 5.0)]).encode_to_vec();
    tx.send(RawAgentMessage {
        hello: None,
        batch: good,
    })
    .await?;
    let ack = tokio::time::timeout(std::time::Duration::from_secs(10), inbound.message()).await??;
    assert!(
        matches!(ack.and_then(|m| m.msg), Some(wire::aggregator_message::Msg::Ack(a)) if a.seq == 1)
    );
    // Field 1 of a Batch (seq, a varint) with a truncated varint.
    tx.send(RawAgentMessage {
        hello: None,
        batch: vec![0x08, 0xff, 0xff],
    })
    .await?;
    let status =
        match tokio::time::timeout(std::time::Duration::from_secs(10), inbound.message()).await? {
            Ok(reply) => anyhow::bail!("expected a refusal, got {reply:?}"),
            Err(status) => status,
        };
    assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
    assert!(status.message().contains("cannot be read"), "{status:?}");
    assert_eq!(
        status
            .metadata()
            .get(wire::REJECTED_INDEX_METADATA)
            .and_then(|v| v.to_str().ok()),
        Some("2"),
        "the second batch on the stream is the refused one"
    );

    let pool = agg.db().await?;
    assert_eq!(stored_counts(&pool, "garbled").await?, (1, 1));
    pool.close().await;
    assert_eq!(agg.get_ok("/health").await?["status"], "ok");
    agg.stop().await
}

/// Issue 12, item 10: one agent token may own only so many host ids
/// (`[limits] hosts_per_token`), and all its streams together are read no
/// faster than `[limits] bytes_per_second_per_token`; a stream over that
/// budget is slowed, and nothing it sends is lost.
#[tokio::test]
async fn an_agent_token_is_held_to_its_host_and_byte_quota() -> Result<()> {
    use prost::Message;

    let dir = tempfile::tempdir()?;
    let config = fleetwatch_tests::aggregator_config(
        "[limits]\nhosts_per_token = 2\nbytes_per_second_per_token = 20000\n",
    )?;
    let any = "127.0.0.1:0".parse()?;
    let agg = Aggregator::start_with(&dir.path().join("fw.db"), any, any, config).await?;

    let mut first = RawStream::hello(&agg, "quota-1").await?;
    let second = RawStream::hello(&agg, "quota-2").await?;
    let status = match RawStream::hello(&agg, "quota-3").await {
        Ok(mut stream) => match stream.send(batch(1, vec![sample(now_ms(), 1.0)])).await {
            Ok(seq) => anyhow::bail!("a third host was let in: batch {seq} acked"),
            Err(status) => status,
        },
        Err(status) => status,
    };
    assert_eq!(status.code(), tonic::Code::ResourceExhausted, "{status:?}");
    assert!(status.message().contains("hosts_per_token"), "{status:?}");
    drop(second);
    // A host the token owns is not a new one: it reconnects.
    let mut again = RawStream::hello(&agg, "quota-2").await?;
    assert_eq!(again.send(batch(1, vec![sample(now_ms(), 1.0)])).await?, 1);
    drop(again);

    // 60 samples in 6 batches: about three times the one-second burst.
    let start_ms = now_ms() - 120_000;
    let batches: Vec<wire::Batch> = (0..6u64)
        .map(|b| {
            let samples = (0..10)
                .map(|i| {
                    let mut s = sample(start_ms + (b as i64 * 10 + i) * 1000, 5.0);
                    s.workers[0].cmdline = format!("worker --queue default {}", "x".repeat(1500));
                    s
                })
                .collect();
            batch(b + 1, samples)
        })
        .collect();
    let total: usize = batches.iter().map(|b| b.encoded_len()).sum();
    assert!(total > 60_000, "{total} bytes");
    let started = std::time::Instant::now();
    for b in batches {
        let seq = b.seq;
        assert_eq!(first.send(b).await?, seq);
    }
    // Whatever the machine's speed, the budget sets a floor: everything
    // but the one-second burst at 20,000 B/s.
    let floor = total as f64 / 20_000.0 - 1.0 - 0.05;
    let took = started.elapsed().as_secs_f64();
    assert!(
        took >= floor,
        "{total} bytes took {took:.2} s, under the {floor:.2} s the budget allows"
    );

    let pool = agg.db().await?;
    assert_eq!(stored_counts(&pool, "quota-1").await?, (60, 60));
    pool.close().await;
    drop(first);
    agg.stop().await
}
