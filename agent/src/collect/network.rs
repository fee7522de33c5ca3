//! Network rates per interface from `/proc/net/dev`, read every tick.
//!
//! Loopback and virtual interfaces (container veth pairs, bridges, overlay
//! tunnels) are left out by [`DEFAULT_EXCLUDE_INTERFACES`]: their traffic is
//! either local or already counted on a physical interface. Config can
//! replace that list or name the interfaces to keep. Rates divide by the
//! real time between two reads; the collector is primed when created.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::sample::NetInterface;

use super::filter::NameFilter;

/// Interface names left out unless the config says otherwise.
pub const DEFAULT_EXCLUDE_INTERFACES: &[&str] = &[
    "lo", "veth*", "docker*", "br-*", "virbr*", "vnet*", "cni*", "flannel*", "cali*", "vxlan*",
    "tunl*", "weave*", "kube-*", "lxcbr*", "podman*", "cilium_*",
];

/// The default interface filter: everything but [`DEFAULT_EXCLUDE_INTERFACES`].
pub fn default_filter() -> NameFilter {
    NameFilter::new(
        Vec::new(),
        DEFAULT_EXCLUDE_INTERFACES
            .iter()
            .map(|s| (*s).to_owned())
            .collect(),
    )
}

/// Received and transmitted bytes of each interface.
pub fn parse(text: &str) -> HashMap<String, (u64, u64)> {
    text.lines()
        .filter_map(|line| {
            let (name, rest) = line.split_once(':')?;
            let n: Vec<u64> = rest
                .split_ascii_whitespace()
                .map(|f| f.parse().ok())
                .collect::<Option<_>>()?;
            // rx: bytes packets errs drop fifo frame compressed multicast; tx: bytes ...
            Some((name.trim().to_owned(), (*n.first()?, *n.get(8)?)))
        })
        .collect()
}

/// Per-interface rates since the previous read, and their sums.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NetRates {
    pub interfaces: Vec<NetInterface>,
    pub rx_bytes_per_sec: f64,
    pub tx_bytes_per_sec: f64,
}

pub struct NetworkCollector {
    path: PathBuf,
    filter: NameFilter,
    prev: HashMap<String, (u64, u64)>,
    at: Instant,
}

impl NetworkCollector {
    pub fn new(proc_root: &Path, filter: NameFilter) -> Self {
        let path = proc_root.join("net/dev");
        let prev = read(&path).unwrap_or_default();
        Self {
            path,
            filter,
            prev,
            at: Instant::now(),
        }
    }

    /// Rates since the last call, over the real time between the reads. An
    /// interface that appeared since has no rate until its second reading.
    pub fn collect(&mut self) -> NetRates {
        let Some(now) = read(&self.path) else {
            return NetRates::default();
        };
        let at = Instant::now();
        let secs = at.duration_since(self.at).as_secs_f64();
        let mut rates = NetRates::default();
        for (name, &(rx, tx)) in &now {
            if !self.filter.keeps(name) {
                continue;
            }
            let Some(&(prev_rx, prev_tx)) = self.prev.get(name) else {
                continue;
            };
            let rate = |now: u64, prev: u64| {
                if secs > 0.0 {
                    now.saturating_sub(prev) as f64 / secs
                } else {
                    0.0
                }
            };
            let iface = NetInterface {
                name: name.clone(),
                rx_bytes_per_sec: rate(rx, prev_rx),
                tx_bytes_per_sec: rate(tx, prev_tx),
            };
            rates.rx_bytes_per_sec += iface.rx_bytes_per_sec;
            rates.tx_bytes_per_sec += iface.tx_bytes_per_sec;
            rates.interfaces.push(iface);
        }
        rates.interfaces.sort_by(|a, b| a.name.cmp(&b.name));
        self.prev = now;
        self.at = at;
        rates
    }
}

fn read(path: &Path) -> Option<HashMap<String, (u64, u64)>> {
    match std::fs::read_to_string(path) {
        Ok(text) => Some(parse(&text)),
        Err(e) => {
            tracing::debug!(path = %path.display(), error = %e, "cannot read network counters");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEV: &str = "Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo: 1000      10    0    0    0     0          0         0     1000      10    0    0    0     0       0          0
  eth0: 5000      50    0    0    0     0          0         0     700       7    0    0    0     0       0          0
veth12ab: 99      1    0    0    0     0          0         0     99        1    0    0    0     0       0          0
";

    #[test]
    fn parses_counters_and_filters_virtual_interfaces() {
        let counters = parse(DEV);
        assert_eq!(counters.len(), 3);
        assert_eq!(counters["eth0"], (5000, 700));
        let filter = default_filter();
        assert!(filter.keeps("eth0") && filter.keeps("enp3s0") && filter.keeps("wlan0"));
        assert!(!filter.keeps("lo") && !filter.keeps("veth12ab") && !filter.keeps("docker0"));
    }

    #[test]
    fn rates_use_the_real_time_between_reads() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(dir.path().join("net")).expect("mkdir");
        let path = dir.path().join("net/dev");
        std::fs::write(&path, DEV).expect("write");
        let mut net = NetworkCollector::new(dir.path(), default_filter());
        let start = net.at;
        std::fs::write(&path, DEV.replace("5000", "9000").replace(" 700 ", " 900 "))
            .expect("write");
        std::thread::sleep(std::time::Duration::from_millis(50));
        let rates = net.collect();
        let secs = net.at.duration_since(start).as_secs_f64();
        assert_eq!(rates.interfaces.len(), 1, "{rates:?}");
        assert_eq!(rates.interfaces[0].name, "eth0");
        assert!((rates.rx_bytes_per_sec - 4000.0 / secs).abs() < 1e-6);
        assert!((rates.tx_bytes_per_sec - 200.0 / secs).abs() < 1e-6);
    }
}
