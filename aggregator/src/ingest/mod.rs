//! Ingest: the gRPC edge where agents' samples come in.
//!
//! - [`convert`] — validation and wire-to-domain conversion; nothing else
//!   in the aggregator sees a wire type.
//! - [`gate`] — the agent token from the gRPC metadata, checked by
//!   `auth::agent_access`; refusals as gRPC statuses.
//! - [`server`] — tonic's server on the accepted connections (plain or
//!   TLS); tonic's view of the protocol-neutral connection types.
//! - [`service`] — the tonic `Ingest` service, one task per agent stream.

pub mod convert;
pub mod gate;
pub mod server;
pub mod service;

pub use service::IngestService;
