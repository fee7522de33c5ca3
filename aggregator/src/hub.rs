//! Fan-out of live updates from ingest (and later the alert engine) to
//! whoever listens: WebSocket clients, the alert engine, tests.
//!
//! A `tokio::sync::broadcast` channel: publishing never waits, and a receiver
//! that falls more than the channel's capacity behind is told how much it
//! missed (`RecvError::Lagged`) instead of slowing the publisher down. Such a
//! receiver resynchronises from the store.

use std::sync::Arc;

use serde::Serialize;
use tokio::sync::broadcast;

use crate::alerts::AlertEvent;
use crate::model::{HostInfo, Sample};

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

/// The sending side, cheap to clone.
#[derive(Debug, Clone)]
pub struct Hub {
    tx: broadcast::Sender<Arc<HubEvent>>,
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
        let _ = self.tx.send(Arc::new(event));
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Arc<HubEvent>> {
        self.tx.subscribe()
    }
}
