//! `GET /ws`: the dashboard's live feed over a WebSocket.
//!
//! On connect the client gets a `snapshot` (every host with its newest
//! sample and worker groups, and the firing alerts), then one small JSON
//! message per hub event: `sample`, `host_online`, `host_offline` (and
//! `alert` once the alert engine publishes). A sample carries a compact
//! `summary` for every host and the full `sample` (workers included) only
//! for the hosts the client subscribed to with
//! `{"type":"subscribe","hosts":[...]}`.
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

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Extension;
use axum::extract::State;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade, close_code};
use axum::http::{HeaderMap, header};
use axum::response::Response;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::sync::broadcast::error::RecvError;

use super::AppState;
use crate::alerts::AlertEvent;
use crate::auth::http::{Authenticated, identify};
use crate::hub::HubEvent;
use crate::model::{GroupStatus, Sample, TimestampMs};
use crate::store::{CurrentSample, GroupRecord, HostRecord, StoreError, fullest_filesystem};

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
/// A client that lags this many times within [`LAG_WINDOW`] is dropped
/// instead of being resynchronised again.
const MAX_LAGS: usize = 3;
const LAG_WINDOW: Duration = Duration::from_secs(60);

/// Upgrades the request and runs the client until it leaves or the
/// aggregator shuts down.
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

/// One host in a snapshot.
#[derive(Debug, Serialize)]
pub struct SnapshotHost {
    #[serde(flatten)]
    pub record: HostRecord,
    pub online: bool,
    pub latest: Option<CurrentSample>,
    pub summary: Option<Summary>,
    pub groups: Vec<GroupRecord>,
}

/// What the fleet view shows of a host: the numbers of one sample.
#[derive(Debug, Serialize)]
pub struct Summary {
    pub timestamp_ms: TimestampMs,
    pub cpu_percent: f64,
    pub memory_percent: f64,
    pub disk_used_percent_max: f64,
    pub load1: f64,
    pub groups: Vec<GroupStatus>,
}

impl Summary {
    fn of_sample(sample: &Sample) -> Self {
        Self {
            timestamp_ms: sample.timestamp_ms,
            cpu_percent: sample.system.cpu_percent,
            memory_percent: sample.system.memory_percent(),
            disk_used_percent_max: fullest_filesystem(&sample.system.filesystems),
            load1: sample.system.load1,
            groups: sample.groups.clone(),
        }
    }
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
    #[error("cannot build the snapshot: {0}")]
    Store(#[from] StoreError),
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
                        let text = self.render(&event)?;
                        self.send(Message::Text(text.into())).await?;
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
                let mut hosts: Vec<&String> = self.subscribed.iter().collect();
                hosts.sort();
                self.send_json(&json!({"type": "subscribed", "hosts": hosts}))
                    .await
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

    /// The JSON text of one hub event for this client.
    fn render(&self, event: &HubEvent) -> Result<String, Disconnect> {
        let text = match event {
            HubEvent::Sample { host_id, sample } => {
                let mut msg = json!({
                    "type": "sample",
                    "host_id": host_id,
                    "timestamp_ms": sample.timestamp_ms,
                    "summary": Summary::of_sample(sample),
                });
                if self.subscribed.contains(host_id) {
                    msg["sample"] = full_sample(sample)?;
                }
                serde_json::to_string(&msg)?
            }
            // Every other event (host online/offline, and alerts once the
            // engine publishes them on the hub) goes out as the hub
            // serialises it: `{"type": "...", ...}`.
            other => serde_json::to_string(other)?,
        };
        Ok(text)
    }

    async fn send_snapshot(&mut self) -> Result<(), Disconnect> {
        let snapshot = snapshot(&self.state).await?;
        self.send(Message::Text(Utf8Bytes::from(serde_json::to_string(
            &snapshot,
        )?)))
        .await
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

/// A full sample with the derived percentages the page charts.
fn full_sample(sample: &Arc<Sample>) -> Result<Value, serde_json::Error> {
    let mut value = serde_json::to_value(&**sample)?;
    value["memory_percent"] = json!(sample.system.memory_percent());
    value["swap_percent"] = json!(sample.system.swap_percent());
    Ok(value)
}

/// Every known host with its newest sample and worker groups, and the
/// firing alerts.
pub async fn snapshot(state: &AppState) -> Result<Value, StoreError> {
    let records = state.store.hosts().await?;
    let mut latest: std::collections::HashMap<String, CurrentSample> = state
        .store
        .current(None)
        .await?
        .into_iter()
        .map(|c| (c.host_id.clone(), c))
        .collect();
    let mut hosts = Vec::with_capacity(records.len());
    for record in records {
        let host_id = record.info.host_id.clone();
        let groups = state
            .store
            .worker_groups(&host_id)
            .await?
            .map(|(_, groups)| groups)
            .unwrap_or_default();
        let latest = latest.remove(&host_id);
        let summary = latest.as_ref().map(|c| Summary {
            timestamp_ms: c.timestamp_ms,
            cpu_percent: c.system.cpu_percent,
            memory_percent: c.memory_percent,
            disk_used_percent_max: fullest_filesystem(&c.system.filesystems),
            load1: c.system.load1,
            groups: groups.iter().map(|g| g.status.clone()).collect(),
        });
        hosts.push(SnapshotHost {
            online: state.connected.contains(&host_id),
            record,
            latest,
            summary,
            groups,
        });
    }
    Ok(json!({
        "type": "snapshot",
        "server_time_ms": crate::model::now_ms(),
        "hosts": hosts,
        "alerts": firing_alerts(state).await?,
    }))
}

/// The alerts pending or firing now, as the page shows them.
async fn firing_alerts(state: &AppState) -> Result<Vec<Value>, StoreError> {
    Ok(state
        .alerts
        .active()
        .iter()
        .filter_map(|a| serde_json::to_value(AlertEvent::from_instance(a)).ok())
        .collect())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use futures_util::{SinkExt, StreamExt};
    use tokio::net::TcpListener;
    use tokio_tungstenite::tungstenite::Message as WsMessage;
    use tokio_util::sync::CancellationToken;

    use super::*;
    use crate::hub::Hub;
    use crate::model::{Filesystem, HostInfo, SystemMetrics, Worker, WorkerGroup};
    use crate::store::SqliteStore;
    use crate::store::sqlite::HostBatch;

    type Ws = tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >;

    struct Server {
        url: String,
        hub: Hub,
        shutdown: CancellationToken,
    }

    fn sample(ts: i64) -> Sample {
        Sample {
            timestamp_ms: ts,
            system: SystemMetrics {
                cpu_percent: 42.5,
                cpu_per_core: vec![40.0, 45.0],
                cpu_iowait_percent: 0.0,
                cpu_steal_percent: 0.0,
                interfaces: Vec::new(),
                load1: 0.5,
                load5: 0.4,
                load15: 0.3,
                memory_total_bytes: 1000,
                memory_used_bytes: 250,
                memory_available_bytes: 750,
                swap_total_bytes: 0,
                swap_used_bytes: 0,
                filesystems: vec![Filesystem {
                    mount_point: "/".into(),
                    fs_type: "ext4".into(),
                    device: "/dev/sda1".into(),
                    total_bytes: 100,
                    available_bytes: 40,
                    used_bytes: 60,
                }],
                disk_read_bytes_per_sec: 1.0,
                disk_write_bytes_per_sec: 2.0,
                net_rx_bytes_per_sec: 3.0,
                net_tx_bytes_per_sec: 4.0,
                uptime_secs: 100,
                process_count: 10,
            },
            workers: vec![Worker {
                group: "q".into(),
                pid: 7,
                name: "sleep".into(),
                cmdline: "<img src=x onerror=alert(1)>".into(),
                state: "sleeping".into(),
                cpu_percent: 0.0,
                rss_bytes: 1024,
                threads: 1,
                start_time_secs: 1,
            }],
            groups: vec![GroupStatus {
                name: "q".into(),
                min_alive: 2,
                alive: 1,
                restarts: 0,
            }],
        }
    }

    async fn start() -> Server {
        let store = SqliteStore::in_memory().await.unwrap();
        let info = HostInfo {
            host_id: "h1".into(),
            hostname: "host-one".into(),
            os: "Linux".into(),
            kernel: "6".into(),
            cpu_count: 2,
            memory_total_bytes: 1000,
            agent_version: "0".into(),
            interval_ms: 1000,
            worker_groups: vec![WorkerGroup {
                name: "q".into(),
                min_alive: 2,
            }],
        };
        store.upsert_host(&info, 1_000).await.unwrap();
        store
            .write_batches(&[HostBatch {
                host_id: "h1".into(),
                samples: vec![sample(1_000)],
            }])
            .await
            .unwrap();
        let hub = Hub::new();
        let shutdown = CancellationToken::new();
        let app = super::super::router(
            AppState::for_tests(
                store.clone(),
                hub.clone(),
                shutdown.clone(),
                crate::auth::http::HttpAuth::new(false, Duration::from_secs(60), false),
            )
            .await,
        );
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = shutdown.clone();
        tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(stop.cancelled_owned())
                .await
        });
        Server {
            url: format!("ws://{addr}/ws"),
            hub,
            shutdown,
        }
    }

    async fn connect(server: &Server) -> Ws {
        let (ws, _) = tokio_tungstenite::connect_async(&server.url).await.unwrap();
        ws
    }

    /// The next text message as JSON, skipping pings; fails after 5 s.
    async fn next_json(ws: &mut Ws) -> Value {
        loop {
            let msg = tokio::time::timeout(Duration::from_secs(5), ws.next())
                .await
                .expect("a message within 5 s")
                .expect("the socket is open")
                .expect("a valid frame");
            match msg {
                WsMessage::Text(text) => return serde_json::from_str(text.as_str()).unwrap(),
                WsMessage::Ping(_) | WsMessage::Pong(_) => {}
                other => panic!("unexpected frame {other:?}"),
            }
        }
    }

    async fn send_text(ws: &mut Ws, text: &str) {
        ws.send(WsMessage::Text(text.into())).await.unwrap();
    }

    #[tokio::test]
    async fn sends_a_snapshot_on_connect() {
        let server = start().await;
        let mut ws = connect(&server).await;
        let snap = next_json(&mut ws).await;
        assert_eq!(snap["type"], "snapshot");
        assert_eq!(snap["alerts"], json!([]));
        let host = &snap["hosts"][0];
        assert_eq!(host["host_id"], "h1");
        assert_eq!(host["hostname"], "host-one");
        assert_eq!(host["online"], false);
        assert_eq!(host["latest"]["cpu_percent"], 42.5);
        assert_eq!(host["summary"]["disk_used_percent_max"], 60.0);
        assert_eq!(host["groups"][0]["name"], "q");
        assert_eq!(host["groups"][0]["alive"], 1);
        assert_eq!(host["groups"][0]["workers"][0]["pid"], 7);
    }

    #[tokio::test]
    async fn pushes_hub_events_and_subscribe_changes_detail() {
        let server = start().await;
        let mut ws = connect(&server).await;
        assert_eq!(next_json(&mut ws).await["type"], "snapshot");

        server.hub.publish(HubEvent::Sample {
            host_id: "h1".into(),
            sample: Arc::new(sample(2_000)),
        });
        let msg = next_json(&mut ws).await;
        assert_eq!(msg["type"], "sample");
        assert_eq!(msg["host_id"], "h1");
        assert_eq!(msg["timestamp_ms"], 2_000);
        assert_eq!(msg["summary"]["cpu_percent"], 42.5);
        assert_eq!(msg["summary"]["memory_percent"], 25.0);
        assert_eq!(msg["summary"]["groups"][0]["alive"], 1);
        assert!(msg.get("sample").is_none(), "summaries only by default");

        send_text(&mut ws, r#"{"type":"subscribe","hosts":["h1"]}"#).await;
        assert_eq!(
            next_json(&mut ws).await,
            json!({"type": "subscribed", "hosts": ["h1"]})
        );
        server.hub.publish(HubEvent::Sample {
            host_id: "h1".into(),
            sample: Arc::new(sample(3_000)),
        });
        let msg = next_json(&mut ws).await;
        assert_eq!(
            msg["sample"]["workers"][0]["cmdline"],
            "<img src=x onerror=alert(1)>"
        );
        assert_eq!(msg["sample"]["system"]["cpu_per_core"], json!([40.0, 45.0]));
        assert_eq!(msg["sample"]["memory_percent"], 25.0);

        server.hub.publish(HubEvent::HostOffline {
            host_id: "h1".into(),
        });
        assert_eq!(
            next_json(&mut ws).await,
            json!({"type": "host_offline", "host_id": "h1"})
        );

        send_text(&mut ws, r#"{"type":"subscribe","hosts":[]}"#).await;
        assert_eq!(next_json(&mut ws).await["type"], "subscribed");
        server.hub.publish(HubEvent::Sample {
            host_id: "h1".into(),
            sample: Arc::new(sample(4_000)),
        });
        assert!(next_json(&mut ws).await.get("sample").is_none());
    }

    #[tokio::test]
    async fn malformed_messages_get_an_error_and_the_socket_stays_open() {
        let server = start().await;
        let mut ws = connect(&server).await;
        assert_eq!(next_json(&mut ws).await["type"], "snapshot");
        for bad in [
            "not json",
            r#"{"type":"subscribe"}"#,
            r#"{"type":"launch_missiles"}"#,
            r#"{"type":"subscribe","hosts":"h1"}"#,
        ] {
            send_text(&mut ws, bad).await;
            let msg = next_json(&mut ws).await;
            assert_eq!(msg["type"], "error", "for {bad}");
            assert!(
                msg["message"]
                    .as_str()
                    .unwrap()
                    .contains("cannot understand")
            );
        }
        ws.send(WsMessage::Binary(vec![1, 2, 3].into()))
            .await
            .unwrap();
        assert_eq!(next_json(&mut ws).await["type"], "error");
        let many: Vec<String> = (0..=MAX_SUBSCRIBED).map(|i| format!("h{i}")).collect();
        let text = json!({"type": "subscribe", "hosts": many}).to_string();
        send_text(&mut ws, &text).await;
        assert!(
            next_json(&mut ws).await["message"]
                .as_str()
                .unwrap()
                .contains("at most")
        );
        // Still serving.
        send_text(&mut ws, r#"{"type":"snapshot"}"#).await;
        assert_eq!(next_json(&mut ws).await["type"], "snapshot");
    }

    #[tokio::test]
    async fn a_lagging_client_gets_resync_and_a_fresh_snapshot() {
        let server = start().await;
        let mut ws = connect(&server).await;
        assert_eq!(next_json(&mut ws).await["type"], "snapshot");
        // A current-thread runtime: the client's task cannot run while this
        // loop publishes, so its receiver falls more than the capacity behind.
        let shared = Arc::new(sample(5_000));
        for _ in 0..5_000 {
            server.hub.publish(HubEvent::Sample {
                host_id: "h1".into(),
                sample: shared.clone(),
            });
        }
        let mut seen = Vec::new();
        loop {
            let msg = next_json(&mut ws).await;
            let kind = msg["type"].as_str().unwrap_or_default().to_owned();
            if kind == "resync" {
                assert!(msg["missed"].as_u64().unwrap() > 0);
                break;
            }
            seen.push(kind);
            assert!(seen.len() < 5_000, "no resync");
        }
        assert_eq!(next_json(&mut ws).await["type"], "snapshot");
    }

    #[tokio::test]
    async fn oversized_messages_end_the_connection() {
        let server = start().await;
        let mut ws = connect(&server).await;
        assert_eq!(next_json(&mut ws).await["type"], "snapshot");
        let huge = "x".repeat(MAX_CLIENT_MESSAGE + 1);
        let _ = ws.send(WsMessage::Text(huge.into())).await;
        let ended = tokio::time::timeout(Duration::from_secs(5), async {
            while let Some(Ok(msg)) = ws.next().await {
                if matches!(msg, WsMessage::Close(_)) {
                    break;
                }
            }
        })
        .await;
        assert!(ended.is_ok(), "the server closes the connection");
    }

    #[tokio::test]
    async fn shutdown_closes_open_sockets() {
        let server = start().await;
        let mut ws = connect(&server).await;
        assert_eq!(next_json(&mut ws).await["type"], "snapshot");
        server.shutdown.cancel();
        let frame = tokio::time::timeout(Duration::from_secs(5), async {
            loop {
                match ws.next().await {
                    Some(Ok(WsMessage::Close(frame))) => return frame,
                    Some(Ok(_)) => {}
                    _ => return None,
                }
            }
        })
        .await
        .expect("closed within 5 s");
        assert_eq!(frame.map(|f| u16::from(f.code)), Some(close_code::AWAY));
    }
}
