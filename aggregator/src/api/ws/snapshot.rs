//! What the WebSocket sends, built from the latest state in memory and from
//! hub events; nothing here touches the database.
//!
//! - `snapshot`: every host with its info, whether it is online and a
//!   [`Summary`] of its newest sample, plus the alerts pending or firing.
//!   Only the hosts the client subscribed to also carry `latest` (the full
//!   newest values) and `groups` (worker groups with their workers), so the
//!   snapshot of a large fleet stays small.
//! - `detail`: `latest` and `groups` of one subscribed host, sent when the
//!   client subscribes so the page has them at once.
//! - live events ([`frames`]): encoded once per event and shared by every
//!   client: a `sample` with its summary for everyone, and the same with
//!   the full `sample` for the clients subscribed to its host.

use std::collections::HashSet;

use axum::extract::ws::Utf8Bytes;
use serde::Serialize;

use crate::alerts::{AlertEvent, Alerts};
use crate::connected::Connected;
use crate::hub::{Frames, HubEvent};
use crate::model::{GroupStatus, HostInfo, Sample, TimestampMs, now_ms};
use crate::store::{CurrentSample, GroupRecord, HostState, Latest, fullest_filesystem};

/// What the fleet view shows of a host: the numbers of one sample.
#[derive(Debug, Serialize)]
pub struct Summary<'a> {
    pub timestamp_ms: TimestampMs,
    pub cpu_percent: f64,
    pub memory_percent: f64,
    pub disk_used_percent_max: f64,
    pub load1: f64,
    pub net_rx_bytes_per_sec: f64,
    pub net_tx_bytes_per_sec: f64,
    pub groups: &'a [GroupStatus],
}

impl<'a> Summary<'a> {
    pub fn of_sample(sample: &'a Sample) -> Self {
        Self {
            timestamp_ms: sample.timestamp_ms,
            cpu_percent: sample.system.cpu_percent,
            memory_percent: sample.system.memory_percent(),
            disk_used_percent_max: fullest_filesystem(&sample.system.filesystems),
            load1: sample.system.load1,
            net_rx_bytes_per_sec: sample.system.net_rx_bytes_per_sec,
            net_tx_bytes_per_sec: sample.system.net_tx_bytes_per_sec,
            groups: &sample.groups,
        }
    }
}

/// One host in a snapshot.
#[derive(Debug, Serialize)]
struct SnapshotHost<'a> {
    #[serde(flatten)]
    info: &'a HostInfo,
    first_seen_ms: TimestampMs,
    last_seen_ms: TimestampMs,
    online: bool,
    summary: Option<Summary<'a>>,
    #[serde(flatten)]
    detail: Option<Detail>,
}

/// The full newest values and worker lists of a subscribed host.
#[derive(Debug, Serialize)]
struct Detail {
    latest: Option<CurrentSample>,
    groups: Vec<GroupRecord>,
}

impl Detail {
    fn of(host: &HostState) -> Self {
        Self {
            latest: host.current(),
            groups: host.groups().map(|(_, groups)| groups).unwrap_or_default(),
        }
    }
}

#[derive(Debug, Serialize)]
struct Snapshot<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    server_time_ms: TimestampMs,
    hosts: Vec<SnapshotHost<'a>>,
    alerts: Vec<AlertEvent>,
}

/// The snapshot for a client subscribed to `subscribed`, as JSON text.
pub fn snapshot(
    latest: &Latest,
    connected: &Connected,
    alerts: &Alerts,
    subscribed: &HashSet<String>,
) -> Result<Utf8Bytes, serde_json::Error> {
    let states = latest.hosts();
    let online = connected.online();
    let hosts = states
        .iter()
        .map(|host| SnapshotHost {
            info: &host.info,
            first_seen_ms: host.first_seen_ms,
            last_seen_ms: host.last_seen_ms,
            online: online.contains(&host.info.host_id),
            summary: host.newest.as_deref().map(Summary::of_sample),
            detail: subscribed
                .contains(&host.info.host_id)
                .then(|| Detail::of(host)),
        })
        .collect();
    let snapshot = Snapshot {
        kind: "snapshot",
        server_time_ms: now_ms(),
        hosts,
        alerts: alerts
            .active()
            .iter()
            .map(AlertEvent::from_instance)
            .collect(),
    };
    Ok(serde_json::to_string(&snapshot)?.into())
}

#[derive(Debug, Serialize)]
struct DetailMessage<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    host_id: &'a str,
    #[serde(flatten)]
    detail: Detail,
}

/// A `detail` message for each of `hosts` that is known, as JSON text.
pub fn details<'a>(
    latest: &Latest,
    hosts: impl IntoIterator<Item = &'a String>,
) -> Result<Vec<Utf8Bytes>, serde_json::Error> {
    hosts
        .into_iter()
        .filter_map(|id| latest.host(id))
        .map(|host| {
            let message = DetailMessage {
                kind: "detail",
                host_id: &host.info.host_id,
                detail: Detail::of(&host),
            };
            Ok(serde_json::to_string(&message)?.into())
        })
        .collect()
}

/// A full sample with the derived percentages the page charts.
#[derive(Debug, Serialize)]
struct FullSample<'a> {
    #[serde(flatten)]
    sample: &'a Sample,
    memory_percent: f64,
    swap_percent: f64,
}

#[derive(Debug, Serialize)]
struct SampleMessage<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    host_id: &'a str,
    timestamp_ms: TimestampMs,
    summary: Summary<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sample: Option<FullSample<'a>>,
}

/// The frames of a hub event. A sample has a brief form (its summary) and
/// a full one (with the whole sample); every other event (host online or
/// offline, alerts) goes out as the hub serialises it, to everyone.
pub fn frames(event: &HubEvent) -> Option<Frames> {
    let encoded = match event {
        HubEvent::Sample { host_id, sample } => {
            let mut message = SampleMessage {
                kind: "sample",
                host_id,
                timestamp_ms: sample.timestamp_ms,
                summary: Summary::of_sample(sample),
                sample: None,
            };
            serde_json::to_string(&message).and_then(|brief| {
                message.sample = Some(FullSample {
                    sample,
                    memory_percent: sample.system.memory_percent(),
                    swap_percent: sample.system.swap_percent(),
                });
                let full = serde_json::to_string(&message)?;
                Ok(Frames {
                    brief: brief.into(),
                    full: Some(full.into()),
                })
            })
        }
        other => serde_json::to_string(other).map(|brief| Frames {
            brief: brief.into(),
            full: None,
        }),
    };
    encoded
        .map_err(|e| tracing::warn!(error = %e, "cannot encode a live event"))
        .ok()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::sync::Arc;

    use serde_json::{Value, json};

    use super::*;
    use crate::model::{Filesystem, SystemMetrics};

    fn sample() -> Arc<Sample> {
        Arc::new(Sample {
            timestamp_ms: 2_000,
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
                swap_total_bytes: 100,
                swap_used_bytes: 10,
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
            workers: Vec::new(),
            groups: vec![GroupStatus {
                name: "q".into(),
                min_alive: 2,
                alive: 1,
                restarts: 0,
            }],
        })
    }

    fn parse(text: &Utf8Bytes) -> Value {
        serde_json::from_str(text.as_str()).unwrap()
    }

    #[test]
    fn a_sample_is_encoded_brief_and_full_and_the_full_form_only_adds_the_sample() {
        let event = HubEvent::Sample {
            host_id: "h1".into(),
            sample: sample(),
        };
        let frames = frames(&event).unwrap();
        let brief = parse(&frames.brief);
        let mut full = parse(frames.full.as_ref().unwrap());
        assert_eq!(
            brief,
            json!({
                "type": "sample", "host_id": "h1", "timestamp_ms": 2_000,
                "summary": {
                    "timestamp_ms": 2_000, "cpu_percent": 42.5, "memory_percent": 25.0,
                    "disk_used_percent_max": 60.0, "load1": 0.5,
                    "net_rx_bytes_per_sec": 3.0, "net_tx_bytes_per_sec": 4.0,
                    "groups": [{"name": "q", "min_alive": 2, "alive": 1, "restarts": 0}],
                },
            })
        );
        let whole = full["sample"].take();
        assert_eq!(whole["memory_percent"], 25.0);
        assert_eq!(whole["swap_percent"], 10.0);
        assert_eq!(whole["system"]["cpu_per_core"], json!([40.0, 45.0]));
        assert_eq!(whole["timestamp_ms"], 2_000);
        full.as_object_mut().unwrap().remove("sample");
        assert_eq!(full, brief);
    }

    #[test]
    fn other_events_go_out_as_the_hub_serialises_them() {
        let frames = frames(&HubEvent::HostOffline {
            host_id: "h1".into(),
        })
        .unwrap();
        assert!(frames.full.is_none());
        assert_eq!(
            parse(&frames.brief),
            json!({"type": "host_offline", "host_id": "h1"})
        );
    }
}
