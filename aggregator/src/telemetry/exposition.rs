//! One scrape of `GET /metrics`: the aggregator's health and the fleet's
//! latest values, encoded by prometheus-client in the Prometheus text
//! format (0.0.4) or OpenMetrics 1.0.
//!
//! A [`Scrape`] is a snapshot taken by the handler from memory (counters,
//! the latest state, the alert engine's active list, file sizes); encoding
//! it touches nothing shared. Names follow Prometheus' conventions: base
//! units in the name (`_bytes`, `_seconds`), `_total` on counters, and
//! labels of low cardinality only (`host`, `mount`, `pool`, `severity`,
//! `reason`; never a pid or a command line).

use std::fmt;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeGaugeValue, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;

use super::histogram::HistogramSnapshot;
use super::{Refusal, Telemetry};
use crate::alerts::notify::NotifyStats;
use crate::model::{Severity, SystemMetrics};
use crate::store::HostState;

/// The `Content-Type` of the Prometheus text format.
pub const PROMETHEUS_TEXT: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;
/// The `Content-Type` of OpenMetrics text.
pub const OPENMETRICS_TEXT: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Everything one scrape shows, read from memory.
#[derive(Debug, Clone)]
pub struct Scrape {
    pub telemetry: Telemetry,
    pub version: &'static str,
    pub uptime_seconds: f64,
    /// Every known host's latest state, by host id.
    pub hosts: Vec<HostState>,
    /// Host ids with an agent stream open now.
    pub connected: Vec<String>,
    /// Alerts pending or firing now: (severity, firing?).
    pub alerts: Vec<(Severity, bool)>,
    /// Samples the alert engine skipped while behind, since start.
    pub alerts_conflated: u64,
    pub webhooks: NotifyStats,
    pub database_bytes: u64,
    pub wal_bytes: u64,
}

/// Which text format to answer in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Prometheus,
    OpenMetrics,
}

impl Format {
    /// OpenMetrics when the `Accept` header names it, else Prometheus text.
    pub fn from_accept(accept: Option<&str>) -> Self {
        match accept {
            Some(a) if a.contains("application/openmetrics-text") => Self::OpenMetrics,
            _ => Self::Prometheus,
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Self::Prometheus => PROMETHEUS_TEXT,
            Self::OpenMetrics => OPENMETRICS_TEXT,
        }
    }
}

impl Scrape {
    /// The scrape's text in `format`.
    pub fn render(self, format: Format) -> Result<String, fmt::Error> {
        let mut registry = Registry::default();
        registry.register_collector(Box::new(self));
        let mut out = String::with_capacity(16 * 1024);
        match format {
            Format::Prometheus => {
                prometheus_client::encoding::prometheus_text::encode(&mut out, &registry)?;
            }
            Format::OpenMetrics => prometheus_client::encoding::text::encode(&mut out, &registry)?,
        }
        Ok(out)
    }

    fn encode_health(&self, e: &mut DescriptorEncoder) -> fmt::Result {
        let c = self.telemetry.counters();
        let load = |a: &std::sync::atomic::AtomicU64| a.load(std::sync::atomic::Ordering::Relaxed);
        let load_i =
            |a: &std::sync::atomic::AtomicI64| a.load(std::sync::atomic::Ordering::Relaxed).max(0);
        gauges(
            e,
            "fleetwatch_build_info",
            "The aggregator's version; always 1",
            [(vec![("version", self.version.to_owned())], 1)],
        )?;
        gauge(
            e,
            "fleetwatch_uptime_seconds",
            "Seconds since the aggregator started",
            self.uptime_seconds,
        )?;
        gauge(
            e,
            "fleetwatch_agents_connected",
            "Hosts with an agent stream open now",
            self.connected.len() as i64,
        )?;
        gauge(
            e,
            "fleetwatch_hosts_known",
            "Hosts the aggregator has ever heard from (and not forgotten)",
            self.hosts.len() as i64,
        )?;
        counter(
            e,
            "fleetwatch_samples_received",
            "Samples in the batches agents sent, refused ones included",
            load(&c.samples_received),
        )?;
        counter(
            e,
            "fleetwatch_samples_stored",
            "Samples committed to the store that it did not have yet",
            load(&c.samples_stored),
        )?;
        counter(
            e,
            "fleetwatch_samples_duplicate",
            "Samples committed that the store already had (resent batches)",
            load(&c.samples_duplicate),
        )?;
        counters(
            e,
            "fleetwatch_samples_refused",
            "Samples refused, by reason: invalid (failed validation) or store_unavailable",
            Refusal::ALL.map(|r| {
                (
                    vec![("reason", r.label().to_owned())],
                    self.telemetry.refused_count(r),
                )
            }),
        )?;
        histogram(
            e,
            "fleetwatch_writer_batches_per_commit",
            "Agent batches folded into one database transaction",
            &c.batches_per_commit.snapshot(),
        )?;
        histogram(
            e,
            "fleetwatch_write_duration_seconds",
            "Time the writer took to commit one transaction",
            &c.write_seconds.snapshot(),
        )?;
        histogram(
            e,
            "fleetwatch_ack_duration_seconds",
            "Time from a batch's arrival to its acknowledgement",
            &c.ack_seconds.snapshot(),
        )?;
        gauge(
            e,
            "fleetwatch_writer_queue_depth",
            "Batches waiting for the writer",
            load_i(&c.writer_queue),
        )?;
        gauge(
            e,
            "fleetwatch_database_size_bytes",
            "Size of the SQLite database file",
            self.database_bytes,
        )?;
        gauge(
            e,
            "fleetwatch_database_wal_size_bytes",
            "Size of the SQLite write-ahead log",
            self.wal_bytes,
        )?;
        gauge(
            e,
            "fleetwatch_websocket_clients",
            "Dashboard WebSocket clients connected now",
            load_i(&c.ws_clients),
        )?;
        for (name, help, firing) in [
            (
                "fleetwatch_alerts_firing",
                "Alerts firing now, by severity",
                true,
            ),
            (
                "fleetwatch_alerts_pending",
                "Alerts pending (waiting out their `for`) now, by severity",
                false,
            ),
        ] {
            gauges(
                e,
                name,
                help,
                [Severity::Warning, Severity::Critical].map(|s| {
                    let n = self
                        .alerts
                        .iter()
                        .filter(|(sev, f)| *sev == s && *f == firing)
                        .count();
                    (vec![("severity", severity(s).to_owned())], n as i64)
                }),
            )?;
        }
        counter(
            e,
            "fleetwatch_alert_samples_conflated",
            "Samples the alert engine skipped for a newer one of their host while behind",
            self.alerts_conflated,
        )?;
        counter(
            e,
            "fleetwatch_webhook_deliveries",
            "Notifications a webhook receiver accepted",
            self.webhooks.sent,
        )?;
        counter(
            e,
            "fleetwatch_webhook_failures",
            "Notifications given up on after the last attempt",
            self.webhooks.failed,
        )?;
        counter(
            e,
            "fleetwatch_webhook_dropped",
            "Notifications dropped because a queue was full",
            self.webhooks.dropped,
        )
    }

    fn encode_fleet(&self, e: &mut DescriptorEncoder) -> fmt::Result {
        let host = |h: &HostState| vec![("host", h.info.host_id.clone())];
        let newest = || {
            self.hosts
                .iter()
                .filter_map(|h| h.newest.as_ref().map(|s| (h, s)))
        };
        gauges(
            e,
            "fleetwatch_host_info",
            "A known host, with what its agent said in its hello; always 1",
            self.hosts.iter().map(|h| {
                (
                    vec![
                        ("host", h.info.host_id.clone()),
                        ("hostname", h.info.hostname.clone()),
                        ("os", h.info.os.clone()),
                        ("kernel", h.info.kernel.clone()),
                        ("agent_version", h.info.agent_version.clone()),
                    ],
                    1,
                )
            }),
        )?;
        gauges(
            e,
            "fleetwatch_host_up",
            "1 while the host's agent has a stream open, else 0",
            self.hosts.iter().map(|h| {
                let up = self.connected.iter().any(|c| *c == h.info.host_id);
                (host(h), i64::from(up))
            }),
        )?;
        gauges(
            e,
            "fleetwatch_host_last_sample_timestamp_seconds",
            "Time of the host's newest stored sample (Unix seconds)",
            newest().map(|(h, s)| (host(h), s.timestamp_ms as f64 / 1000.0)),
        )?;
        let system: [SystemGauge; 11] = [
            (
                "fleetwatch_host_cpu_percent",
                "CPU busy, percent of all cores (without iowait and steal)",
                |s| s.cpu_percent,
            ),
            ("fleetwatch_host_load1", "Load average over 1 minute", |s| {
                s.load1
            }),
            (
                "fleetwatch_host_load5",
                "Load average over 5 minutes",
                |s| s.load5,
            ),
            (
                "fleetwatch_host_load15",
                "Load average over 15 minutes",
                |s| s.load15,
            ),
            (
                "fleetwatch_host_memory_total_bytes",
                "Memory installed",
                |s| s.memory_total_bytes as f64,
            ),
            (
                "fleetwatch_host_memory_used_bytes",
                "Memory used: total minus available, as free(1)",
                |s| s.memory_used_bytes as f64,
            ),
            (
                "fleetwatch_host_memory_percent",
                "Memory used, percent of total",
                |s| s.memory_percent(),
            ),
            ("fleetwatch_host_swap_used_bytes", "Swap used", |s| {
                s.swap_used_bytes as f64
            }),
            (
                "fleetwatch_host_network_receive_bytes_per_second",
                "Network bytes received per second, all interfaces",
                |s| s.net_rx_bytes_per_sec,
            ),
            (
                "fleetwatch_host_network_transmit_bytes_per_second",
                "Network bytes sent per second, all interfaces",
                |s| s.net_tx_bytes_per_sec,
            ),
            (
                "fleetwatch_host_boot_uptime_seconds",
                "Seconds since the host booted",
                |s| s.uptime_secs as f64,
            ),
        ];
        for (name, help, value) in system {
            gauges(
                e,
                name,
                help,
                newest().map(|(h, s)| (host(h), value(&s.system))),
            )?;
        }
        // One filesystem per mount point, as the API shows them.
        let filesystems = || {
            self.hosts
                .iter()
                .filter_map(HostState::current)
                .flat_map(|c| {
                    c.system
                        .filesystems
                        .into_iter()
                        .map(move |f| (c.host_id.clone(), f))
                })
        };
        let fs_labels = |host: &str, f: &crate::model::Filesystem| {
            vec![("host", host.to_owned()), ("mount", f.mount_point.clone())]
        };
        gauges(
            e,
            "fleetwatch_host_filesystem_size_bytes",
            "Filesystem size",
            filesystems().map(|(h, f)| (fs_labels(&h, &f), f.total_bytes as f64)),
        )?;
        gauges(
            e,
            "fleetwatch_host_filesystem_used_bytes",
            "Filesystem space used",
            filesystems().map(|(h, f)| (fs_labels(&h, &f), f.used_bytes as f64)),
        )?;
        gauges(
            e,
            "fleetwatch_host_filesystem_used_percent",
            "Filesystem use, percent, as df(1) shows it",
            filesystems().map(|(h, f)| (fs_labels(&h, &f), f.used_percent())),
        )?;
        let pools = || {
            newest().flat_map(|(h, s)| {
                s.groups.iter().map(move |g| {
                    (
                        vec![("host", h.info.host_id.clone()), ("pool", g.name.clone())],
                        g,
                    )
                })
            })
        };
        gauges(
            e,
            "fleetwatch_worker_pool_alive",
            "Worker processes of the pool alive (zombies are not)",
            pools().map(|(l, g)| (l, i64::from(g.alive))),
        )?;
        gauges(
            e,
            "fleetwatch_worker_pool_min_alive",
            "Workers the pool needs alive; fewer is an alert",
            pools().map(|(l, g)| (l, i64::from(g.min_alive))),
        )?;
        counters(
            e,
            "fleetwatch_worker_pool_restarts",
            "Worker restarts the host's agent counted in the pool",
            pools().map(|(l, g)| (l, g.restarts)),
        )
    }
}

impl Collector for Scrape {
    fn encode(&self, mut encoder: DescriptorEncoder) -> fmt::Result {
        self.encode_health(&mut encoder)?;
        self.encode_fleet(&mut encoder)
    }
}

fn severity(s: Severity) -> &'static str {
    match s {
        Severity::Warning => "warning",
        Severity::Critical => "critical",
    }
}

type Labels = Vec<(&'static str, String)>;

/// A per-host gauge of the newest sample: name, help, how to read it.
type SystemGauge = (&'static str, &'static str, fn(&SystemMetrics) -> f64);

fn gauge<V: EncodeGaugeValue + fmt::Debug>(
    e: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    value: V,
) -> fmt::Result {
    let metric = ConstGauge::new(value);
    metric.encode(e.encode_descriptor(name, help, None, MetricType::Gauge)?)
}

fn gauges<V: EncodeGaugeValue + fmt::Debug>(
    e: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    rows: impl IntoIterator<Item = (Labels, V)>,
) -> fmt::Result {
    let mut family = e.encode_descriptor(name, help, None, MetricType::Gauge)?;
    for (labels, value) in rows {
        ConstGauge::new(value).encode(family.encode_family(&labels)?)?;
    }
    Ok(())
}

/// A counter; `name` without `_total`, which the encoder adds.
fn counter(e: &mut DescriptorEncoder, name: &str, help: &str, value: u64) -> fmt::Result {
    ConstCounter::new(value).encode(e.encode_descriptor(name, help, None, MetricType::Counter)?)
}

fn counters(
    e: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    rows: impl IntoIterator<Item = (Labels, u64)>,
) -> fmt::Result {
    let mut family = e.encode_descriptor(name, help, None, MetricType::Counter)?;
    for (labels, value) in rows {
        ConstCounter::new(value).encode(family.encode_family(&labels)?)?;
    }
    Ok(())
}

fn histogram(
    e: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    h: &HistogramSnapshot,
) -> fmt::Result {
    e.encode_descriptor(name, help, None, MetricType::Histogram)?
        .encode_histogram::<prometheus_client::encoding::NoLabelSet>(
            h.sum, h.count, &h.buckets, None,
        )
}
