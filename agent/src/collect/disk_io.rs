//! Disk read and write rates from `/proc/diskstats`, summed over whole
//! physical disks (the names under `/sys/block`), so that a partition, an
//! LVM or dm-crypt volume or an md array is not counted a second time on
//! top of the disk beneath it. Loop and RAM disks are left out. Rates divide
//! by the real time between reads; the collector is primed when created.

use std::path::{Path, PathBuf};
use std::time::Instant;

/// Sectors in diskstats are always 512 bytes, whatever the device's own.
const SECTOR: u64 = 512;

/// Block devices that are layered on others or live in memory.
fn is_virtual(name: &str) -> bool {
    ["loop", "ram", "zram", "dm-", "md", "sr", "fd", "nbd"]
        .iter()
        .any(|p| name.starts_with(p))
}

/// Bytes read and written, summed over the devices in `disks`.
pub fn parse(text: &str, disks: &[String]) -> (u64, u64) {
    let mut total = (0u64, 0u64);
    for line in text.lines() {
        let f: Vec<&str> = line.split_ascii_whitespace().collect();
        let (Some(name), Some(read), Some(written)) = (f.get(2), f.get(5), f.get(9)) else {
            continue;
        };
        if !disks.iter().any(|d| d == name) {
            continue;
        }
        let sectors = |s: &str| s.parse::<u64>().unwrap_or(0).saturating_mul(SECTOR);
        total.0 = total.0.saturating_add(sectors(read));
        total.1 = total.1.saturating_add(sectors(written));
    }
    total
}

/// Rates of disk I/O, bytes per second.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct DiskRates {
    pub read_bytes_per_sec: f64,
    pub write_bytes_per_sec: f64,
}

pub struct DiskIoCollector {
    diskstats: PathBuf,
    sys_block: PathBuf,
    disks: Vec<String>,
    prev: (u64, u64),
    at: Instant,
    tick: u64,
}

/// How often, in ticks, to look for added or removed disks.
const RELIST_EVERY: u64 = 60;

impl DiskIoCollector {
    pub fn new(proc_root: &Path, sys_root: &Path) -> Self {
        let mut c = Self {
            diskstats: proc_root.join("diskstats"),
            sys_block: sys_root.join("block"),
            disks: Vec::new(),
            prev: (0, 0),
            at: Instant::now(),
            tick: 0,
        };
        c.disks = c.list_disks();
        c.prev = c.read().unwrap_or_default();
        c
    }

    fn list_disks(&self) -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(&self.sys_block) else {
            return Vec::new();
        };
        entries
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|name| !is_virtual(name))
            .collect()
    }

    fn read(&self) -> Option<(u64, u64)> {
        match std::fs::read_to_string(&self.diskstats) {
            Ok(text) => Some(parse(&text, &self.disks)),
            Err(e) => {
                tracing::debug!(error = %e, "cannot read /proc/diskstats");
                None
            }
        }
    }

    /// Rates since the last call.
    pub fn collect(&mut self) -> DiskRates {
        self.tick += 1;
        if self.tick.is_multiple_of(RELIST_EVERY) {
            let disks = self.list_disks();
            if disks != self.disks {
                // New set of disks: start the counters afresh.
                self.disks = disks;
                self.prev = self.read().unwrap_or_default();
                self.at = Instant::now();
                return DiskRates::default();
            }
        }
        let Some(now) = self.read() else {
            return DiskRates::default();
        };
        let at = Instant::now();
        let secs = at.duration_since(self.at).as_secs_f64();
        let rate = |n: u64, p: u64| {
            if secs > 0.0 {
                n.saturating_sub(p) as f64 / secs
            } else {
                0.0
            }
        };
        let rates = DiskRates {
            read_bytes_per_sec: rate(now.0, self.prev.0),
            write_bytes_per_sec: rate(now.1, self.prev.1),
        };
        self.prev = now;
        self.at = at;
        rates
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_whole_disks_only() {
        let text = "\
 254       0 vda 100 0 2000 0 50 0 4000 0 0 0 0
 254       1 vda1 100 0 2000 0 50 0 4000 0 0 0 0
 253       0 dm-0 9 0 9000 0 9 0 9000 0 0 0 0
   7       0 loop0 9 0 9000 0 9 0 9000 0 0 0 0
 259       0 nvme0n1 1 0 10 0 1 0 20 0 0 0 0
";
        let disks = vec!["vda".to_owned(), "nvme0n1".to_owned()];
        assert_eq!(parse(text, &disks), (2010 * 512, 4020 * 512));
        assert!(is_virtual("dm-0") && is_virtual("loop3") && !is_virtual("sda"));
    }
}
