//! The WebSocket feed against a real router on port 0: snapshot,
//! subscriptions, live events, bad input, slow clients, shutdown.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_util::sync::CancellationToken;

use super::*;
use crate::hub::Hub;
use crate::model::{Filesystem, GroupStatus, HostInfo, Sample, SystemMetrics, Worker, WorkerGroup};
use crate::store::HostBatch;
use crate::store::{SampleStore, SqliteStore};

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

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
            crate::api::auth::HttpAuth::new(false, Duration::from_secs(60), false),
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

/// `latest` and `groups` of a subscribed host, as a snapshot or a
/// `detail` message carries them.
fn assert_detail(host: &Value) {
    assert_eq!(host["latest"]["cpu_percent"], 42.5);
    assert_eq!(host["latest"]["memory_percent"], 25.0);
    assert_eq!(host["latest"]["filesystems"][0]["mount_point"], "/");
    assert_eq!(host["groups"][0]["name"], "q");
    assert_eq!(host["groups"][0]["alive"], 1);
    assert_eq!(host["groups"][0]["workers"][0]["pid"], 7);
}

#[tokio::test]
async fn sends_a_snapshot_on_connect_and_detail_for_subscribed_hosts() {
    let server = start().await;
    let mut ws = connect(&server).await;
    let snap = next_json(&mut ws).await;
    assert_eq!(snap["type"], "snapshot");
    assert_eq!(snap["alerts"], json!([]));
    let host = &snap["hosts"][0];
    assert_eq!(host["host_id"], "h1");
    assert_eq!(host["hostname"], "host-one");
    assert_eq!(host["first_seen_ms"], 1_000);
    assert_eq!(host["online"], false);
    assert_eq!(host["summary"]["cpu_percent"], 42.5);
    assert_eq!(host["summary"]["disk_used_percent_max"], 60.0);
    assert_eq!(host["summary"]["groups"][0]["alive"], 1);
    // Not subscribed: no worker lists, however large the fleet.
    assert!(host.get("latest").is_none(), "{host}");
    assert!(host.get("groups").is_none(), "{host}");

    // Subscribing sends the host's detail at once; unknown hosts are skipped.
    send_text(&mut ws, r#"{"type":"subscribe","hosts":["nope","h1"]}"#).await;
    assert_eq!(
        next_json(&mut ws).await,
        json!({"type": "subscribed", "hosts": ["h1", "nope"]})
    );
    let detail = next_json(&mut ws).await;
    assert_eq!(
        (&detail["type"], &detail["host_id"]),
        (&json!("detail"), &json!("h1"))
    );
    assert_detail(&detail);
    // And later snapshots carry it too.
    send_text(&mut ws, r#"{"type":"snapshot"}"#).await;
    let snap = next_json(&mut ws).await;
    assert_eq!(snap["type"], "snapshot");
    assert_detail(&snap["hosts"][0]);
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
    assert_eq!(next_json(&mut ws).await["type"], "detail");
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
