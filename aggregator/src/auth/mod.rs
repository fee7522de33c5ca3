//! Who may do what.
//!
//! - [`secret`] — generating and hashing tokens.
//! - [`agents`] — agent tokens and host ownership in the database.
//! - [`gate`] — the check on every agent stream, and closing the streams
//!   of revoked tokens.
//! - [`limit`] — counting failed attempts per peer.

pub mod agents;
pub mod gate;
pub mod limit;
pub mod secret;
