//! Limits on the connections both listeners accept, against clients that
//! open many connections and send nothing (issue 12: 1,100 idle
//! connections exhausted the file descriptors).
//!
//! - [`config`] — the `[limits]` section: timeouts and the cap per address.
//! - [`guarded`] — a connection wrapped with its deadlines and its place
//!   under the per-address cap.
//! - [`listen`] — the plain-text listeners that hand out guarded
//!   connections and log failed accepts; the TLS acceptor (`crate::tls`)
//!   guards its connections the same way.

pub mod config;
pub mod guarded;
pub mod listen;

pub use config::Limits;
pub use guarded::{Guarded, PerAddress, Until};
