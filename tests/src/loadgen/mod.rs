//! The load generator's parts (the `loadgen` binary wires them together).
//!
//! - [`walk`] and [`workers`] make numbers that move like real ones, and
//!   [`host`] puts them together into a simulated host's Hello and samples.
//! - [`aggregator`] starts the aggregator binary under test.
//! - [`agent`] streams one simulated host over gRPC and times its acks;
//!   [`backfill`] first sends one host's past, for the history queries.
//! - [`latency`] keeps latencies and turns them into percentiles.
//! - [`ws`] runs WebSocket clients on `/ws` that time sample → client, and
//!   measures one snapshot; [`history`] times history queries.
//! - [`procfs`] reads CPU and RSS of the aggregator (whole and per thread)
//!   and of the load generator; [`files`] the database, WAL and -shm sizes.
//! - [`report`] samples those every few seconds and prints the tables.

pub mod agent;
pub mod aggregator;
pub mod backfill;
pub mod files;
pub mod history;
pub mod host;
pub mod latency;
pub mod procfs;
pub mod report;
pub mod walk;
pub mod workers;
pub mod ws;
