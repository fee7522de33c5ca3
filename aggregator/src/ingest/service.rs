//! The tonic `Ingest` service: one long-lived stream per agent.
//!
//! The stream must carry an agent token the [`AgentGate`] accepts, and the
//! token must own the host id the agent names; otherwise it ends with
//! `UNAUTHENTICATED` or `PERMISSION_DENIED` before anything is stored.
//! The first message must be `Hello`; then each `Batch` is validated,
//! handed to the store's writer, acknowledged once committed, then recorded
//! in the latest state kept in memory, handed to the alert engine (which
//! never makes ingest wait) and published on the hub. A batch that fails validation ends the stream with
//! `INVALID_ARGUMENT`, a message naming the field, and the batch's seq in
//! the `fleetwatch-rejected-seq` metadata so the agent can drop it. A
//! message that cannot be decoded at all (or is over the size limit) has no
//! seq to name: it ends the stream with `INVALID_ARGUMENT` and its ordinal
//! among the stream's batches in `fleetwatch-rejected-index`, which the
//! agent maps back to the batch it sent there.

use crate::store::SampleStore;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use fleetwatch_proto::{
    Ack, AgentMessage, AggregatorMessage, Ingest, REJECTED_INDEX_METADATA, REJECTED_SEQ_METADATA,
    agent_message, aggregator_message,
};
use prost::Message;
use tokio::sync::{mpsc, oneshot};
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status, Streaming};

use super::{convert, gate};
use crate::alerts::Alerts;
use crate::auth::agent_access::AgentGate;
use crate::auth::agent_tokens::AgentToken;
use crate::connected::{Connected, Denied};
use crate::hub::{Hub, HubEvent};
use crate::model::{HostInfo, now_ms};
use crate::store::{Latest, SqliteStore, Writer};
use crate::telemetry::{Refusal, Telemetry};

/// How long an agent has to say hello after opening the stream.
const HELLO_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Clone)]
pub struct IngestService {
    store: SqliteStore,
    writer: Writer,
    latest: Latest,
    hub: Hub,
    alerts: Alerts,
    connected: Connected,
    gate: AgentGate,
    telemetry: Telemetry,
    next_conn: Arc<std::sync::atomic::AtomicU64>,
    shutdown: CancellationToken,
}

impl IngestService {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        store: SqliteStore,
        writer: Writer,
        latest: Latest,
        hub: Hub,
        alerts: Alerts,
        connected: Connected,
        gate: AgentGate,
        telemetry: Telemetry,
        shutdown: CancellationToken,
    ) -> Self {
        Self {
            telemetry,
            store,
            writer,
            latest,
            hub,
            alerts,
            connected,
            gate,
            next_conn: Arc::default(),
            shutdown,
        }
    }
}

type Outbound = Result<AggregatorMessage, Status>;

#[tonic::async_trait]
impl Ingest for IngestService {
    type ConnectStream = ReceiverStream<Outbound>;

    async fn connect(
        &self,
        request: Request<Streaming<AgentMessage>>,
    ) -> Result<Response<Self::ConnectStream>, Status> {
        let peer = request.remote_addr();
        let token = gate::authenticate(&self.gate, request.metadata(), peer).await?;
        let mut inbound = request.into_inner();
        let first = tokio::time::timeout(HELLO_TIMEOUT, inbound.message())
            .await
            .map_err(|_| Status::deadline_exceeded("no Hello within 10 s"))??;
        let hello = match first.and_then(|m| m.msg) {
            Some(agent_message::Msg::Hello(hello)) => hello,
            _ => {
                tracing::warn!(?peer, "stream did not open with Hello");
                return Err(Status::invalid_argument(
                    "the first message on the stream must be Hello",
                ));
            }
        };
        let host = convert::hello(hello).map_err(|e| {
            tracing::warn!(?peer, error = %e, "invalid Hello");
            Status::invalid_argument(e.to_string())
        })?;
        self.gate
            .authorize_host(&token, &host.host_id, peer)
            .await
            .map_err(gate::status)?;
        let now = now_ms();
        self.store.upsert_host(&host, now).await.map_err(|e| {
            tracing::error!(error = %e, "cannot record host");
            Status::unavailable("the aggregator cannot write to its database")
        })?;

        let conn = self
            .next_conn
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let closed = self.connected.insert(conn, &host.host_id, token.id);
        tracing::info!(host = %host.host_id, ?peer, conn, token = %token.name, "agent connected");
        let host = Arc::new(host);
        self.latest.hello(host.clone(), now);
        self.alerts.heard(&host.host_id, now);
        self.alerts.hello(host.clone());
        self.hub
            .publish(HubEvent::HostOnline { host: host.clone() });

        let (tx, rx) = mpsc::channel(64);
        let this = self.clone();
        tokio::spawn(async move {
            let host_id = host.host_id.clone();
            this.stream(host, &token, peer, inbound, tx, closed).await;
            if this.connected.remove(conn, &host_id) {
                this.hub.publish(HubEvent::HostOffline {
                    host_id: host_id.clone(),
                });
            }
            tracing::info!(host = %host_id, conn, "agent disconnected");
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }
}

impl IngestService {
    /// Reads batches until the agent goes away, a batch is refused, the
    /// gate closes the stream (`closed`: its token was revoked), or the
    /// aggregator shuts down. A batch being handled when shutdown comes is
    /// committed and acknowledged first.
    async fn stream(
        &self,
        host: Arc<HostInfo>,
        token: &AgentToken,
        peer: Option<SocketAddr>,
        mut inbound: Streaming<AgentMessage>,
        tx: mpsc::Sender<Outbound>,
        mut closed: oneshot::Receiver<Denied>,
    ) {
        // Batches read on this stream: the ordinal an undecodable one is named by.
        let mut batches_read: u64 = 0;
        loop {
            let message = tokio::select! {
                () = self.shutdown.cancelled() => return,
                () = tx.closed() => return,
                denied = &mut closed => {
                    if let Ok(denied) = denied {
                        let _ = tx.send(Err(gate::status(denied))).await;
                    }
                    return;
                }
                message = inbound.message() => message,
            };
            let batch = match message {
                Ok(Some(AgentMessage {
                    msg: Some(agent_message::Msg::Batch(batch)),
                })) => {
                    batches_read += 1;
                    // Over its token's byte budget: read on only when it allows.
                    let wait = self.gate.pace(token, batch.encoded_len());
                    if !wait.is_zero() {
                        tokio::select! {
                            () = self.shutdown.cancelled() => return,
                            () = tokio::time::sleep(wait) => {}
                        }
                    }
                    batch
                }
                Ok(Some(_)) => {
                    let _ = tx
                        .send(Err(Status::invalid_argument(
                            "expected a Batch: Hello is sent once, first",
                        )))
                        .await;
                    return;
                }
                Ok(None) => return,
                Err(status) => {
                    let status = match undecodable(&status) {
                        Some(reason) => {
                            let index = batches_read + 1;
                            self.telemetry.refused(Refusal::Invalid, 0);
                            tracing::warn!(host = %host.host_id, ?peer, index, %reason, "undecodable message refused");
                            let mut refusal = Status::invalid_argument(format!(
                                "message {index} on this stream cannot be read: {reason}"
                            ));
                            if let Ok(value) = index.to_string().parse() {
                                refusal
                                    .metadata_mut()
                                    .insert(REJECTED_INDEX_METADATA, value);
                            }
                            refusal
                        }
                        None => {
                            tracing::warn!(host = %host.host_id, ?peer, %status, "stream error");
                            status
                        }
                    };
                    let _ = tx.send(Err(status)).await;
                    return;
                }
            };
            let mut batch = batch;
            let seq = batch.seq;
            let backfill = batch.backfill;
            let dropped = std::mem::take(&mut batch.dropped);
            // Heard now, however long storing and evaluating take.
            let received = now_ms();
            let arrived = std::time::Instant::now();
            self.alerts.heard(&host.host_id, received);
            let sent = batch.samples.len();
            self.telemetry.received(sent);
            let converted = convert::batch(batch, &host, received).and_then(|samples| {
                Ok((samples, convert::dropped(&host.host_id, dropped, received)?))
            });
            let (samples, gaps) = match converted {
                Ok(converted) => converted,
                Err(e) => {
                    self.telemetry.refused(Refusal::Invalid, sent);
                    tracing::warn!(host = %host.host_id, ?peer, seq, error = %e, "batch refused");
                    let mut status = Status::invalid_argument(format!("batch {seq}: {e}"));
                    if let Ok(value) = seq.to_string().parse() {
                        status.metadata_mut().insert(REJECTED_SEQ_METADATA, value);
                    }
                    let _ = tx.send(Err(status)).await;
                    return;
                }
            };
            let written = match self.writer.write(host.host_id.clone(), samples).await {
                Ok(stored) => self
                    .record_gaps(&host.host_id, &gaps)
                    .await
                    .map(|()| stored),
                Err(e) => Err(e),
            };
            match written {
                Ok(stored) => {
                    let new = stored.iter().filter(|(_, n)| *n).count();
                    self.telemetry.stored(new, stored.len() - new);
                    tracing::debug!(host = %host.host_id, seq, new = stored.iter().filter(|(_, n)| *n).count(), "batch stored");
                    // Committed samples reach the latest state, the alert
                    // engine and the hub even if the agent is gone before its
                    // ack is sent. None of them waits.
                    for (sample, is_new) in stored {
                        if is_new {
                            let sample = Arc::new(sample);
                            self.latest.committed(&host.host_id, sample.clone());
                            // Backfill (resent after a reconnect) is history,
                            // not news: stored, never evaluated as live.
                            if !backfill {
                                self.alerts.observe(host.clone(), sample.clone());
                            }
                            self.hub.publish(HubEvent::Sample {
                                host_id: host.host_id.clone(),
                                sample,
                            });
                        }
                    }
                    let ack = AggregatorMessage {
                        msg: Some(aggregator_message::Msg::Ack(Ack { seq })),
                    };
                    if tx.send(Ok(ack)).await.is_err() {
                        return;
                    }
                    self.telemetry.acked(arrived.elapsed());
                }
                Err(e) => {
                    self.telemetry.refused(Refusal::StoreUnavailable, sent);
                    tracing::error!(host = %host.host_id, seq, error = %e, "batch not stored");
                    let _ = tx
                        .send(Err(Status::unavailable(
                            "the aggregator cannot store samples right now; retry",
                        )))
                        .await;
                    return;
                }
            }
        }
    }
}

/// Why tonic could not turn a received message into an `AgentMessage`, if
/// that is what `status` says: a protobuf decode error (tonic-prost maps it
/// to `INTERNAL`, "failed to decode Protobuf message: …") or a message over
/// the size limit (`OUT_OF_RANGE`). Transport errors (a reset stream, a
/// closed connection) are not refusals of a message and give `None`.
fn undecodable(status: &Status) -> Option<&str> {
    let message = status.message();
    let decode = status.code() == tonic::Code::Internal
        && message.starts_with("failed to decode Protobuf message");
    let too_large = status.code() == tonic::Code::OutOfRange
        && message.contains("decoded message length too large");
    (decode || too_large).then_some(message)
}

impl IngestService {
    /// Logs and keeps the ranges an agent reported it dropped, before the
    /// batch that carried them is acknowledged (the agent forgets them then).
    async fn record_gaps(
        &self,
        host_id: &str,
        gaps: &[crate::store::Gap],
    ) -> crate::store::Result<()> {
        use crate::store::GapStore;
        if gaps.is_empty() {
            return Ok(());
        }
        let new = self.store.insert_gaps(gaps).await?;
        if new > 0 {
            for gap in gaps {
                tracing::warn!(
                    host = %host_id,
                    from_ms = gap.from_ms,
                    to_ms = gap.to_ms,
                    samples = gap.samples,
                    "the agent dropped samples (its spool was full); a gap in this host's history"
                );
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_decode_failures_are_refusals_of_a_message() {
        use prost::Message;
        // The status tonic-prost makes of a real decode error.
        let error = fleetwatch_proto::AgentMessage::decode(&[0x12, 0x05, 0xff][..]).unwrap_err();
        let decode = Status::internal(error.to_string());
        assert!(undecodable(&decode).is_some(), "{decode:?}");
        let large = Status::out_of_range(
            "Error, decoded message length too large: found 9437210 bytes, the limit is: 8388608 bytes",
        );
        assert!(undecodable(&large).is_some());
        assert!(undecodable(&Status::internal("h2 protocol error: stream reset")).is_none());
        assert!(undecodable(&Status::cancelled("operation was canceled")).is_none());
    }
}
