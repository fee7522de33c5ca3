//! Fan-out of live updates from ingest and the alert service to
//! whoever listens: WebSocket clients, the alert engine, tests.
//!
//! A `tokio::sync::broadcast` channel: publishing never waits, and a receiver
//! that falls more than the channel's capacity behind is told how much it
//! missed (`RecvError::Lagged`) instead of slowing the publisher down. Such a
//! receiver resynchronises from the latest state kept in memory.
//!
//! Each event travels as one [`Published`], shared by every receiver. The
//! WebSocket encodes it to its text frames once, on first use, and every
//! client then sends the same bytes (a clone is a reference count), so the
//! cost of encoding does not grow with the number of clients.

use std::sync::{Arc, OnceLock};

use axum::extract::ws::Utf8Bytes;
use serde::Serialize;
use tokio::sync::broadcast;

use crate::model::{AlertEvent, HostInfo, Sample};

/// How many events a receiver may fall behind before it lags.
const CAPACITY: usize = 4096;

/// One live update.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum HubEvent {
    /// A sample was committed to the store.
    Sample {
        host_id: String,
        sample: Arc<Sample>,
    },
    /// An agent connected and said hello.
    HostOnline { host: Arc<HostInfo> },
    /// An agent's stream ended.
    HostOffline { host_id: String },
    /// An alert changed state.
    Alert { alert: AlertEvent },
}

/// One published event, with its encoded forms memoised.
#[derive(Debug)]
pub struct Published {
    pub event: HubEvent,
    frames: OnceLock<Option<Frames>>,
}

/// The WebSocket text frames of one event.
#[derive(Debug, Clone)]
pub struct Frames {
    /// What every client gets.
    pub brief: Utf8Bytes,
    /// What a client subscribed to the event's host gets instead, when it
    /// differs (a sample with its workers).
    pub full: Option<Utf8Bytes>,
}

impl Published {
    fn new(event: HubEvent) -> Self {
        Self {
            event,
            frames: OnceLock::new(),
        }
    }

    /// The event's frames: encoded by the first caller with `encode`, the
    /// same bytes for every later one. `None` when it cannot be encoded.
    pub fn frames(&self, encode: impl FnOnce(&HubEvent) -> Option<Frames>) -> Option<&Frames> {
        self.frames.get_or_init(|| encode(&self.event)).as_ref()
    }
}

/// The sending side, cheap to clone.
#[derive(Debug, Clone)]
pub struct Hub {
    tx: broadcast::Sender<Arc<Published>>,
}

impl Default for Hub {
    fn default() -> Self {
        Self::new()
    }
}

impl Hub {
    pub fn new() -> Self {
        let (tx, _) = broadcast::channel(CAPACITY);
        Self { tx }
    }

    /// Publishes an event to every current subscriber; never blocks.
    pub fn publish(&self, event: HubEvent) {
        // An error only means nobody listens right now.
        let _ = self.tx.send(Arc::new(Published::new(event)));
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Published>> {
        self.tx.subscribe()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::cell::Cell;

    use super::*;

    #[test]
    fn an_event_is_encoded_once_and_every_receiver_shares_the_bytes() {
        let hub = Hub::new();
        let mut one = hub.subscribe();
        let mut two = hub.subscribe();
        hub.publish(HubEvent::HostOffline {
            host_id: "h1".into(),
        });
        let calls = Cell::new(0);
        let encode = |event: &HubEvent| {
            calls.set(calls.get() + 1);
            Some(Frames {
                brief: serde_json::to_string(event).unwrap().into(),
                full: None,
            })
        };
        let first = one.try_recv().unwrap();
        let second = two.try_recv().unwrap();
        let a = first.frames(encode).unwrap().brief.clone();
        let b = second.frames(encode).unwrap().brief.clone();
        assert_eq!(calls.get(), 1, "encoded once");
        assert_eq!(a.as_ptr(), b.as_ptr(), "the same bytes, not a copy");
        assert_eq!(a.as_str(), r#"{"type":"host_offline","host_id":"h1"}"#);
    }
}
