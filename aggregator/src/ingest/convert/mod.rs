//! The ingest edge's conversions: checks every field of what an agent
//! sent and turns the wire types into the aggregator's own. Nothing from an
//! agent is trusted: numbers must be finite and in range, strings bounded,
//! lists bounded, timestamps near now. The error ([`Invalid`]) names the
//! field and says what is wrong. Nothing outside `ingest/` sees a wire type.
//!
//! - [`limits`] — the bounds on every message, and the field checks
//!   (numbers, text, lists) the conversions share.
//! - [`hello`](mod@hello) — `Hello` to [`crate::model::HostInfo`].
//! - [`batch`](mod@batch) — a `Batch`'s samples to [`crate::model::Sample`]s, and the
//!   ranges an agent dropped to gaps.
//!
//! Identifiers (host ids, group names) are checked by [`crate::ids`],
//! which the API and the command line use too.

pub mod batch;
pub mod hello;
pub mod limits;

pub use crate::ids::Invalid;
pub use batch::{MAX_DROPPED_RANGES, batch, dropped};
pub use hello::hello;
pub use limits::*;
