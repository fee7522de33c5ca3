//! The load generator's parts (the `loadgen` binary wires them together).
//!
//! - [`walk`] and [`workers`] make numbers that move like real ones, and
//!   [`host`] puts them together into a simulated host's Hello and samples.

pub mod host;
pub mod walk;
pub mod workers;
