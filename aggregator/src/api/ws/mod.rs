//! `GET /ws`: the dashboard's live feed over a WebSocket.
//!
//! This file is the socket protocol; what is sent is built in
//! [`snapshot`] from the latest state in memory and the hub's events, and
//! nothing here reads the database.
//!
//! On connect the client gets a `snapshot` (every host with a summary of
//! its newest sample, and the pending and firing alerts), then one small
//! JSON message per hub event: `sample`, `host_online`, `host_offline`,
//! `alert`. A sample carries a compact `summary` for every host and the full
//! `sample` (workers included) only for the hosts the client subscribed to
//! with `{"type":"subscribe","hosts":[...]}`; subscribing is answered with
//! `subscribed` and a `detail` (newest values and worker lists) per known
//! host, and later snapshots carry the same detail for those hosts. Each
//! event is encoded once and the same bytes go to every client.
//!
//! Each client's queue is its hub receiver, bounded by the hub's capacity.
//! A client that falls behind is sent `resync` and a fresh snapshot; one
//! that keeps falling behind, stops answering pings, or cannot take a write
//! within [`SEND_TIMEOUT`] is disconnected. Nothing here ever waits on
//! ingest or on another client. Every connection ends when the aggregator's
//! shutdown token is cancelled.
//!
//! A connection opened with a session or an API token is rechecked every
//! [`CREDENTIAL_RECHECK`]: once the session has ended (logout, expiry, the
//! user removed) or the token is revoked, it is closed with 1008 (policy
//! violation), so that nobody keeps reading after their access is gone.

pub mod snapshot;
#[cfg(test)]
mod tests;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use axum::Extension;
use axum::extract::State;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade, close_code};
use axum::http::{HeaderMap, header};
use axum::response::Response;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::broadcast::error::RecvError;

use super::AppState;
use crate::api::auth::{Authenticated, identify};
use crate::api::openapi::ErrorBody;
use crate::hub::{HubEvent, Published};

/// Largest message a client may send; a subscription to a few hundred hosts fits.
pub const MAX_CLIENT_MESSAGE: usize = 64 * 1024;
/// Most hosts one subscription may name.
const MAX_SUBSCRIBED: usize = 1000;
/// How often the server pings; a client that has not answered the previous
/// ping by the next one is dropped.
pub const PING_INTERVAL: Duration = Duration::from_secs(15);
/// How often a signed-in connection's credentials are checked again.
pub const CREDENTIAL_RECHECK: Duration = Duration::from_secs(5);
/// How long one write to a client may take before the client is dropped.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);
/// Snapshots and subscription details built at once, across all clients:
/// one, so that at least one runtime thread is always left to ingest.
/// Building one for a large fleet is the costly part of a connection (the
/// whole fleet's latest state as JSON); a storm of connections, or clients
/// that resubscribe and never read, would otherwise build hundreds at once,
/// taking the cores from ingest and holding their intermediate memory
/// together. The rest wait their turn; the permit is held while building,
/// not while sending, so a client that does not read holds none.
const BUILDS_AT_ONCE: usize = 1;
static BUILDS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(BUILDS_AT_ONCE);

/// A client that lags this many times within [`LAG_WINDOW`] is dropped
/// instead of being resynchronised again.
const MAX_LAGS: usize = 3;
const LAG_WINDOW: Duration = Duration::from_secs(60);

/// Upgrades the request and runs the client until it leaves or the
/// aggregator shuts down.
#[utoipa::path(get, path = "/ws", tag = "live",
    responses(
        (status = 101, description = "Switched to the WebSocket protocol: a snapshot, then live events"),
        (status = 400, description = "Not a WebSocket upgrade request", content_type = "text/plain"),
        (status = 401, description = "Reads need a login: no valid session or API token", body = ErrorBody),
        (status = 403, description = "A request from another site", body = ErrorBody),
        (status = 426, description = "Not a WebSocket upgrade request", content_type = "text/plain"),
    ),
    security((), ("bearer" = []), ("session" = [])),
)]
pub async fn handler(
    ws: WebSocketUpgrade,
    State(state): State<AppState>,
    who: Option<Extension<Authenticated>>,
    headers: HeaderMap,
) -> Response {
    // Only the credentials are kept, to check them again later.
    let credentials = matches!(who, Some(Extension(Authenticated(Some(_))))).then(|| {
        let mut kept = HeaderMap::new();
        for name in [header::COOKIE, header::AUTHORIZATION] {
            for value in headers.get_all(&name) {
                kept.append(name.clone(), value.clone());
            }
        }
        kept
    });
    ws.max_message_size(MAX_CLIENT_MESSAGE)
        .max_frame_size(MAX_CLIENT_MESSAGE)
        .on_upgrade(move |socket| async move {
            let _counted = state.telemetry.ws_client();
            let mut client = Client {
                socket,
                state,
                subscribed: HashSet::new(),
                credentials,
            };
            match client.run().await {
                Ok(()) => tracing::debug!("websocket client left"),
                Err(reason) => tracing::debug!(%reason, "websocket client dropped"),
            }
        })
}

/// What a client may send.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
enum ClientMessage {
    /// Full detail for these hosts from now on, summaries for the others.
    Subscribe { hosts: Vec<String> },
    /// Asks for a fresh snapshot.
    Snapshot,
}

/// Why a connection ended early.
#[derive(Debug, thiserror::Error)]
enum Disconnect {
    #[error("socket error: {0}")]
    Socket(#[from] axum::Error),
    #[error("write timed out")]
    SendTimeout,
    #[error("no pong since the last ping")]
    NoPong,
    #[error("lagged {MAX_LAGS} times within {LAG_WINDOW:?}")]
    TooSlow,
    #[error("its session ended or its API token was revoked")]
    AccessEnded,
    #[error("cannot encode a message: {0}")]
    Encode(#[from] serde_json::Error),
}

struct Client {
    socket: WebSocket,
    state: AppState,
    subscribed: HashSet<String>,
    /// The `Cookie` and `Authorization` headers it signed in with; `None`
    /// for an anonymous reader.
    credentials: Option<HeaderMap>,
}

impl Client {
    /// Whether the credentials it connected with still name someone. A
    /// database that cannot answer right now does not end the connection.
    /// Takes owned copies: `self` holds the socket, which must not be
    /// borrowed across the await.
    async fn still_allowed(credentials: Option<HeaderMap>, state: AppState) -> bool {
        let Some(credentials) = credentials else {
            return true;
        };
        match identify(&credentials, &state).await {
            Ok(Some(_)) => true,
            Ok(None) | Err(crate::api::error::ApiError::Unauthorized(_)) => false,
            Err(e) => {
                tracing::warn!(error = %e, "cannot recheck a websocket client's credentials");
                true
            }
        }
    }

    #[tracing::instrument(name = "ws_client", skip_all)]
    async fn run(&mut self) -> Result<(), Disconnect> {
        // Subscribe before reading the snapshot so that nothing published in
        // between is lost (at worst a sample arrives twice; clients dedupe
        // by timestamp).
        let mut events = self.state.hub.subscribe();
        self.send_snapshot().await?;
        let shutdown = self.state.shutdown.clone();
        let mut ping =
            tokio::time::interval_at(tokio::time::Instant::now() + PING_INTERVAL, PING_INTERVAL);
        let mut awaiting_pong = false;
        let mut lags: Vec<Instant> = Vec::new();
        let mut recheck = tokio::time::interval_at(
            tokio::time::Instant::now() + CREDENTIAL_RECHECK,
            CREDENTIAL_RECHECK,
        );
        loop {
            tokio::select! {
                _ = recheck.tick(), if self.credentials.is_some() => {
                    if !Self::still_allowed(self.credentials.clone(), self.state.clone()).await {
                        self.close(close_code::POLICY, "signed out: sign in again").await;
                        return Err(Disconnect::AccessEnded);
                    }
                }
                () = shutdown.cancelled() => {
                    self.close(close_code::AWAY, "aggregator shutting down").await;
                    return Ok(());
                }
                event = events.recv() => match event {
                    Ok(event) => {
                        if let Some(text) = self.frame(&event) {
                            self.send(Message::Text(text)).await?;
                        }
                    }
                    Err(RecvError::Lagged(missed)) => {
                        let now = Instant::now();
                        lags.retain(|t| now.duration_since(*t) < LAG_WINDOW);
                        lags.push(now);
                        if lags.len() >= MAX_LAGS {
                            self.close(close_code::AGAIN, "client too slow").await;
                            return Err(Disconnect::TooSlow);
                        }
                        tracing::info!(missed, "websocket client lagged; resynchronising");
                        self.send_json(&json!({"type": "resync", "missed": missed})).await?;
                        self.send_snapshot().await?;
                    }
                    Err(RecvError::Closed) => return Ok(()),
                },
                incoming = self.socket.recv() => match incoming {
                    None | Some(Ok(Message::Close(_))) => return Ok(()),
                    Some(Ok(Message::Pong(_))) => awaiting_pong = false,
                    Some(Ok(Message::Ping(_))) => {} // answered by the library
                    Some(Ok(Message::Text(text))) => self.on_text(text.as_str()).await?,
                    Some(Ok(Message::Binary(_))) => {
                        self.send_error("binary messages are not understood; send JSON text").await?;
                    }
                    Some(Err(e)) => {
                        // Oversized or malformed frames: say why, then go.
                        let _ = self.send_error(&format!("protocol error: {e}")).await;
                        return Err(Disconnect::Socket(e));
                    }
                },
                _ = ping.tick() => {
                    if awaiting_pong {
                        return Err(Disconnect::NoPong);
                    }
                    awaiting_pong = true;
                    self.send(Message::Ping(Default::default())).await?;
                }
            }
        }
    }

    async fn on_text(&mut self, text: &str) -> Result<(), Disconnect> {
        match serde_json::from_str::<ClientMessage>(text) {
            Ok(ClientMessage::Subscribe { hosts }) => {
                if hosts.len() > MAX_SUBSCRIBED {
                    return self
                        .send_error(&format!(
                            "subscribe: at most {MAX_SUBSCRIBED} hosts, got {}",
                            hosts.len()
                        ))
                        .await;
                }
                self.subscribed = hosts.into_iter().collect();
                let mut hosts: Vec<String> = self.subscribed.iter().cloned().collect();
                hosts.sort();
                self.send_json(&json!({"type": "subscribed", "hosts": hosts}))
                    .await?;
                // One host's detail built and sent at a time: a client that
                // does not read holds one, not its whole subscription.
                let latest = self.state.latest.clone();
                for host in hosts {
                    let details = {
                        let _turn = BUILDS.acquire().await;
                        snapshot::details(&latest, std::iter::once(&host))?
                    };
                    for detail in details {
                        self.send(Message::Text(detail)).await?;
                    }
                }
                Ok(())
            }
            Ok(ClientMessage::Snapshot) => self.send_snapshot().await,
            Err(e) => {
                self.send_error(&format!(
                    "cannot understand the message: {e}; expected {{\"type\":\"subscribe\",\"hosts\":[...]}} or {{\"type\":\"snapshot\"}}"
                ))
                .await
            }
        }
    }

    /// The text of one hub event for this client: the bytes every client
    /// of its kind shares, encoded by whichever needed them first.
    fn frame(&self, event: &Published) -> Option<Utf8Bytes> {
        let frames = event.frames(snapshot::frames)?;
        match (&event.event, &frames.full) {
            (HubEvent::Sample { host_id, .. }, Some(full)) if self.subscribed.contains(host_id) => {
                Some(full.clone())
            }
            _ => Some(frames.brief.clone()),
        }
    }

    async fn send_snapshot(&mut self) -> Result<(), Disconnect> {
        let text = {
            let _turn = BUILDS.acquire().await;
            snapshot::snapshot(
                &self.state.latest,
                &self.state.connected,
                &self.state.alerts,
                &self.subscribed,
            )?
        };
        self.send(Message::Text(text)).await
    }

    async fn send_error(&mut self, message: &str) -> Result<(), Disconnect> {
        self.send_json(&json!({"type": "error", "message": message}))
            .await
    }

    async fn send_json(&mut self, value: &Value) -> Result<(), Disconnect> {
        self.send(Message::Text(serde_json::to_string(value)?.into()))
            .await
    }

    async fn send(&mut self, message: Message) -> Result<(), Disconnect> {
        match tokio::time::timeout(SEND_TIMEOUT, self.socket.send(message)).await {
            Ok(result) => Ok(result?),
            Err(_) => Err(Disconnect::SendTimeout),
        }
    }

    async fn close(&mut self, code: u16, reason: &'static str) {
        let frame = CloseFrame {
            code,
            reason: Utf8Bytes::from_static(reason),
        };
        let _ = tokio::time::timeout(
            Duration::from_secs(1),
            self.socket.send(Message::Close(Some(frame))),
        )
        .await;
    }
}
