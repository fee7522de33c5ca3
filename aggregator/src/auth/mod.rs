//! Who may do what.
//!
//! - [`secret`] — generating and hashing tokens.

pub mod secret;
