//! What the fleetwatch agent and aggregator both need, kept once:
//!
//! - [`pem`] — certificates and keys from PEM files, SHA-256 fingerprints,
//!   and the one rustls crypto provider (ring) both sides use.
//! - [`signal`] — stopping on SIGTERM or Ctrl-C through a cancellation token.
//! - [`config`] — layered configuration (defaults, TOML file, environment,
//!   flags) with errors naming the file or flag, the key and the reason.
//! - [`logging`] — `tracing` to stderr, the level from `RUST_LOG`.

pub mod config;
pub mod logging;
pub mod pem;
pub mod signal;
