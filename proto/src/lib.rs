//! The fleetwatch wire contract: the protobuf messages exchanged between an
//! agent and the aggregator, and the tonic client and server for `Ingest`.
//!
//! Only generated code lives here; conversions to domain types belong to the
//! crates that own those types.

#[allow(clippy::all, clippy::pedantic, missing_docs)]
pub mod v1 {
    tonic::include_proto!("fleetwatch.v1");
}

pub use v1::ingest_client::IngestClient;
pub use v1::ingest_server::{Ingest, IngestServer};
pub use v1::{
    Ack, AgentMessage, AggregatorMessage, Batch, DroppedRange, Filesystem, GroupStatus, Hello,
    NetInterface, Sample, SystemMetrics, Worker, WorkerGroup, agent_message, aggregator_message,
};

/// gRPC metadata key on an `INVALID_ARGUMENT` status naming the batch the
/// aggregator refused, so the agent drops that batch instead of resending it.
pub const REJECTED_SEQ_METADATA: &str = "fleetwatch-rejected-seq";

/// gRPC metadata key on an `INVALID_ARGUMENT` status for a message the
/// aggregator could not decode (so it has no seq to name): the message's
/// ordinal among the batches sent on that stream, 1 for the first after
/// `Hello`. The agent maps it back to the batch it sent there and drops it.
pub const REJECTED_INDEX_METADATA: &str = "fleetwatch-rejected-index";

/// gRPC metadata key carrying an agent's token (`authorization: Bearer ...`).
pub const AUTHORIZATION_METADATA: &str = "authorization";
