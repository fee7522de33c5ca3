//! Streams samples to the aggregator over one gRPC `Connect` stream.
//!
//! The shipper owns the [`Spool`]. It takes samples from the sampler through
//! a channel that never blocks the sampler, writes each to the spool before
//! it is sent, sends batches as the stream has room, forgets a batch when
//! its `Ack` arrives, and on any failure reconnects with jittered
//! exponential backoff and resends every batch still unacknowledged: live
//! samples first, the backlog after them at most `backfill_rate` samples a
//! second, so a fleet reconnecting at once does not flatten the aggregator.
//!
//! A batch the aggregator refuses (named by its seq, or, when it could not
//! be decoded at all, by its ordinal on the stream) is dropped and logged
//! rather than resent forever.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::time::Instant;

use fleetwatch_proto::{
    AUTHORIZATION_METADATA, AgentMessage, Hello, IngestClient, REJECTED_INDEX_METADATA,
    REJECTED_SEQ_METADATA, agent_message, aggregator_message,
};
use rand::Rng;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::transport::Endpoint;

use crate::spool::{Spool, SpoolConfig};

/// Longest wait between reconnection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
const MIN_BACKOFF: Duration = Duration::from_millis(250);
/// How long shutdown waits for the aggregator to acknowledge what it has.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(3);

/// Jittered exponential backoff: each failure doubles the ceiling, and the
/// wait is drawn between half the ceiling and the ceiling.
#[derive(Debug)]
pub struct Backoff {
    ceiling: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            ceiling: MIN_BACKOFF,
        }
    }
}

impl Backoff {
    pub fn next_delay(&mut self) -> Duration {
        let ceiling = self.ceiling;
        self.ceiling = (self.ceiling * 2).min(MAX_BACKOFF);
        let half = ceiling / 2;
        half + rand::rng().random_range(Duration::ZERO..=half)
    }

    pub fn reset(&mut self) {
        self.ceiling = MIN_BACKOFF;
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ShipperError {
    #[error("invalid aggregator address: {0}")]
    Endpoint(#[from] tonic::transport::Error),
    #[error("the agent token cannot be sent in gRPC metadata")]
    Token,
}

/// The batches sent on the current stream and not yet acknowledged, oldest
/// first, with their ordinal on the stream (1 for the first after `Hello`):
/// what an aggregator that could not decode message N refers to. The
/// aggregator handles a stream's batches in order and acknowledges each
/// before it reads the next, so an ack also settles everything sent before it.
#[derive(Debug, Default)]
struct InFlight {
    /// Batches sent on this stream so far.
    sent: u64,
    /// The ordinal of `seqs[0]`.
    first: u64,
    seqs: VecDeque<u64>,
}

impl InFlight {
    fn sent(&mut self, seq: u64) {
        self.sent += 1;
        if self.seqs.is_empty() {
            self.first = self.sent;
        }
        self.seqs.push_back(seq);
    }

    fn acked(&mut self, seq: u64) {
        if let Some(i) = self.seqs.iter().position(|s| *s == seq) {
            self.seqs.drain(..=i);
            self.first += i as u64 + 1;
        }
    }

    /// The seq of the batch sent as message `ordinal` on this stream.
    fn seq_at(&self, ordinal: u64) -> Option<u64> {
        let i = usize::try_from(ordinal.checked_sub(self.first)?).ok()?;
        self.seqs.get(i).copied()
    }
}

/// Why a connection ended.
enum Ended {
    Shutdown,
    Failed(String),
    /// The aggregator does not accept this agent's token or host id.
    Denied(String),
}

pub struct Shipper {
    endpoint: Endpoint,
    /// Set for an https:// aggregator: the TLS connector does the handshake.
    tls: Option<crate::tls::Connector>,
    /// `Bearer <token>`, sent with every stream.
    authorization: Option<MetadataValue<Ascii>>,
    hello: Hello,
    spool: Spool,
    /// Most backlog samples sent per second.
    backfill_rate: u32,
    /// When the next backlog batch may go.
    backfill_at: Instant,
    /// The sampler's samples, in the agent's type; each becomes a wire
    /// sample as it enters the spool.
    samples: mpsc::UnboundedReceiver<crate::sample::Sample>,
    shutdown: CancellationToken,
}

impl Shipper {
    pub fn new(
        aggregator: &str,
        tls: Option<std::sync::Arc<rustls::ClientConfig>>,
        token: Option<&str>,
        hello: crate::sample::Hello,
        spool: SpoolConfig,
        samples: mpsc::UnboundedReceiver<crate::sample::Sample>,
        shutdown: CancellationToken,
    ) -> Result<Self, ShipperError> {
        let authorization = token
            .map(|t| format!("Bearer {t}").parse::<MetadataValue<Ascii>>())
            .transpose()
            .map_err(|_| ShipperError::Token)?;
        let endpoint = Endpoint::from_shared(aggregator.to_owned())?
            .connect_timeout(Duration::from_secs(5))
            .http2_keep_alive_interval(Duration::from_secs(15))
            .keep_alive_timeout(Duration::from_secs(10))
            .keep_alive_while_idle(true);
        Ok(Self {
            endpoint,
            tls: tls.map(crate::tls::Connector::new),
            authorization,
            hello: hello.into(),
            backfill_rate: spool.backfill_rate.max(1),
            spool: Spool::open(spool, now_ms()),
            backfill_at: Instant::now(),
            samples,
            shutdown,
        })
    }

    /// Runs until shutdown; returns the number of samples never acknowledged.
    pub async fn run(mut self) -> usize {
        let mut backoff = Backoff::default();
        loop {
            let delay = match self.connection(&mut backoff).await {
                Ended::Shutdown => break,
                Ended::Denied(reason) => {
                    // Retried like any failure: a reassigned host id or a
                    // token added later lets the agent in without a restart.
                    let delay = backoff.next_delay();
                    tracing::error!(
                        %reason,
                        retry_in_ms = delay.as_millis() as u64,
                        "the aggregator refused this agent; check its token and host id"
                    );
                    delay
                }
                Ended::Failed(reason) => {
                    let delay = backoff.next_delay();
                    tracing::warn!(
                        %reason,
                        retry_in_ms = delay.as_millis() as u64,
                        pending_samples = self.spool.pending_samples(),
                        "aggregator connection lost"
                    );
                    delay
                }
            };
            if self.wait(delay).await {
                break;
            }
        }
        self.spool.pending_samples()
    }

    /// Spools samples for `delay`; true if shutdown came first.
    async fn wait(&mut self, delay: Duration) -> bool {
        let sleep = tokio::time::sleep(delay);
        tokio::pin!(sleep);
        loop {
            tokio::select! {
                () = self.shutdown.cancelled() => return true,
                () = &mut sleep => return false,
                Some(sample) = self.samples.recv() => self.spool.push(sample.into(), now_ms()),
            }
        }
    }

    /// One connection: connect, say hello, stream batches, take acks.
    async fn connection(&mut self, backoff: &mut Backoff) -> Ended {
        let endpoint = self.endpoint.clone();
        let tls = self.tls.clone();
        let connect = async {
            match tls {
                Some(connector) => endpoint.connect_with_connector(connector).await,
                None => endpoint.connect().await,
            }
        };
        tokio::pin!(connect);
        let channel = loop {
            tokio::select! {
                () = self.shutdown.cancelled() => return Ended::Shutdown,
                Some(sample) = self.samples.recv() => self.spool.push(sample.into(), now_ms()),
                result = &mut connect => match result {
                    Ok(channel) => break channel,
                    Err(e) => return Ended::Failed(format!("connect {}: {}", endpoint.uri(), source_chain(&e))),
                },
            }
        };

        let (out_tx, out_rx) = mpsc::channel::<AgentMessage>(16);
        let hello = AgentMessage {
            msg: Some(agent_message::Msg::Hello(self.hello.clone())),
        };
        if out_tx.send(hello).await.is_err() {
            return Ended::Failed("stream closed before hello".to_owned());
        }
        let mut client = IngestClient::new(channel)
            .max_decoding_message_size(1 << 20)
            .max_encoding_message_size(16 << 20);
        let mut request = tonic::Request::new(ReceiverStream::new(out_rx));
        if let Some(value) = &self.authorization {
            request
                .metadata_mut()
                .insert(AUTHORIZATION_METADATA, value.clone());
        }
        let call = client.connect(request);
        tokio::pin!(call);
        let mut inbound = loop {
            tokio::select! {
                () = self.shutdown.cancelled() => return Ended::Shutdown,
                Some(sample) = self.samples.recv() => self.spool.push(sample.into(), now_ms()),
                result = &mut call => match result {
                    Ok(response) => break response.into_inner(),
                    Err(status) => return self.refused(status, &InFlight::default()),
                },
            }
        };
        tracing::info!(aggregator = %self.endpoint.uri(), pending_samples = self.spool.pending_samples(), "connected");
        self.spool.mark_all_unsent();
        self.backfill_at = Instant::now();

        let mut draining: Option<std::pin::Pin<Box<tokio::time::Sleep>>> = None;
        let mut in_flight = InFlight::default();
        loop {
            if draining.is_some() && self.spool.is_empty() {
                return Ended::Shutdown;
            }
            tokio::select! {
                () = self.shutdown.cancelled(), if draining.is_none() => {
                    // Take the last samples, then wait a little for their acks.
                    while let Ok(sample) = self.samples.try_recv() {
                        self.spool.push(sample.into(), now_ms());
                    }
                    draining = Some(Box::pin(tokio::time::sleep(FLUSH_TIMEOUT)));
                }
                () = async { if let Some(d) = draining.as_mut() { d.await } }, if draining.is_some() => {
                    return Ended::Shutdown;
                }
                Some(sample) = self.samples.recv(), if draining.is_none() => self.spool.push(sample.into(), now_ms()),
                permit = out_tx.reserve(), if self.spool.has_live() || (self.spool.has_backlog() && Instant::now() >= self.backfill_at) => match permit {
                    Ok(permit) => {
                        if let Some(batch) = self.spool.next_unsent() {
                            if batch.backfill {
                                // Pace the backlog: this batch's samples at the configured rate.
                                let pause = Duration::from_secs_f64(batch.samples.len() as f64 / f64::from(self.backfill_rate));
                                self.backfill_at = Instant::now() + pause;
                            }
                            in_flight.sent(batch.seq);
                            permit.send(AgentMessage { msg: Some(agent_message::Msg::Batch(batch)) });
                        }
                    }
                    Err(_) => return Ended::Failed("outbound stream closed".to_owned()),
                },
                () = tokio::time::sleep_until(self.backfill_at), if !self.spool.has_live() && self.spool.has_backlog() && Instant::now() < self.backfill_at => {}
                message = inbound.message() => match message {
                    Ok(Some(msg)) => match msg.msg {
                        Some(aggregator_message::Msg::Ack(ack)) => {
                            in_flight.acked(ack.seq);
                            if self.spool.ack(ack.seq) {
                                backoff.reset();
                            }
                        }
                        None => tracing::debug!("ignoring an empty or unknown message from the aggregator"),
                    },
                    Ok(None) => return Ended::Failed("aggregator closed the stream".to_owned()),
                    Err(status) => return self.refused(status, &in_flight),
                },
            }
        }
    }

    /// Handles an error status; a batch refused as invalid is dropped.
    fn refused(&mut self, status: tonic::Status, in_flight: &InFlight) -> Ended {
        if status.code() == tonic::Code::InvalidArgument
            && let Some(seq) = rejected_seq(&status, in_flight)
            && let Some(samples) = self.spool.reject(seq)
        {
            tracing::error!(
                seq,
                samples,
                reason = status.message(),
                "aggregator refused a batch as invalid; dropped it"
            );
        }
        let mut reason = format!("{:?}: {}", status.code(), status.message());
        // RESOURCE_EXHAUSTED: the token owns as many hosts as it may, or
        // this address failed too often; an operator has to act either way.
        if matches!(
            status.code(),
            tonic::Code::Unauthenticated
                | tonic::Code::PermissionDenied
                | tonic::Code::ResourceExhausted
        ) {
            if self.authorization.is_none() {
                reason.push_str(" (this agent has no token: set token or token_file)");
            }
            return Ended::Denied(reason);
        }
        // A refused TLS client certificate (TLS 1.3 reports it after the
        // handshake) surfaces here, with the alert only in the source chain.
        if let Some(source) = std::error::Error::source(&status) {
            let causes = source_chain(source);
            if causes.starts_with(status.message()) {
                reason = format!("{:?}: {causes}", status.code());
            } else if !reason.contains(&causes) {
                reason.push_str(": ");
                reason.push_str(&causes);
            }
            if causes.contains("CertificateRequired") {
                reason.push_str(" (the aggregator requires a client certificate: set client_cert and client_key)");
            } else if causes.contains("alert: BadCertificate")
                || causes.contains("alert: UnknownCA")
            {
                reason.push_str(" (the aggregator refused this client certificate: it must chain to the aggregator's tls_client_ca)");
            }
        }
        Ended::Failed(reason)
    }
}

/// The seq of the batch an `INVALID_ARGUMENT` status refuses: named, or
/// given by its ordinal on the stream when the aggregator could not decode it.
fn rejected_seq(status: &tonic::Status, in_flight: &InFlight) -> Option<u64> {
    let number = |key: &str| {
        status
            .metadata()
            .get(key)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok())
    };
    number(REJECTED_SEQ_METADATA).or_else(|| in_flight.seq_at(number(REJECTED_INDEX_METADATA)?))
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// The error and its causes on one line: tonic's transport errors hide the
/// useful part ("connection refused", why TLS failed) in their source.
pub fn source_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        // Some wrappers repeat their cause's message; say it once.
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_undecodable_message_is_mapped_back_to_the_batch_sent_there() {
        let mut in_flight = InFlight::default();
        for seq in [10, 11, 12, 13] {
            in_flight.sent(seq);
        }
        in_flight.acked(11); // settles 10 and 11
        assert_eq!(in_flight.seq_at(3), Some(12));
        assert_eq!(in_flight.seq_at(4), Some(13));
        assert_eq!(in_flight.seq_at(2), None, "already acknowledged");
        assert_eq!(in_flight.seq_at(5), None, "never sent");
        in_flight.acked(13);
        in_flight.sent(14);
        assert_eq!(in_flight.seq_at(5), Some(14));

        let mut status = tonic::Status::invalid_argument("message 5 cannot be decoded");
        status
            .metadata_mut()
            .insert(REJECTED_INDEX_METADATA, "5".parse().unwrap());
        assert_eq!(rejected_seq(&status, &in_flight), Some(14));
        let mut named = tonic::Status::invalid_argument("batch 12: bad");
        named
            .metadata_mut()
            .insert(REJECTED_SEQ_METADATA, "12".parse().unwrap());
        assert_eq!(rejected_seq(&named, &in_flight), Some(12));
        assert_eq!(
            rejected_seq(&tonic::Status::invalid_argument("?"), &in_flight),
            None
        );
    }

    #[test]
    fn backoff_grows_with_jitter_and_resets() {
        let mut backoff = Backoff::default();
        let mut last_ceiling = Duration::ZERO;
        for _ in 0..12 {
            let ceiling = backoff.ceiling;
            let delay = backoff.next_delay();
            assert!(
                delay >= ceiling / 2 && delay <= ceiling,
                "{delay:?} vs {ceiling:?}"
            );
            assert!(ceiling >= last_ceiling);
            last_ceiling = ceiling;
        }
        assert_eq!(backoff.ceiling, MAX_BACKOFF);
        backoff.reset();
        assert!(backoff.next_delay() <= MIN_BACKOFF);
    }
}
