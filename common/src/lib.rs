//! What the fleetwatch agent and aggregator both need, kept once:
//!
//! - [`pem`] — certificates and keys from PEM files, SHA-256 fingerprints,
//!   and the one rustls crypto provider (ring) both sides use.
//! - [`signal`] — stopping on SIGTERM or Ctrl-C through a cancellation token.
//! - [`config`] — taking a setting from a flag or the config file.
//! - [`logging`] — `tracing` to stderr, the level from `RUST_LOG`.

pub mod config;
pub mod logging;
pub mod pem;
pub mod signal;
