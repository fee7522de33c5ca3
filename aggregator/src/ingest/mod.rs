//! Ingest: the gRPC edge where agents' samples come in.
//!
//! - [`convert`] — validation and wire-to-domain conversion; nothing else
//!   in the aggregator sees a wire type.
//! - [`service`] — the tonic `Ingest` service, one task per agent stream.

pub mod convert;
pub mod service;

pub use service::{Connected, IngestService};
