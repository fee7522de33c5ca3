//! Every mounted filesystem a user sees in `df`, with df's figures.
//!
//! The mount table (`/proc/self/mountinfo`) is read on every tick, so a
//! filesystem unmounted since the last sample is gone from the next one and
//! a new one appears at once; each is then measured with `statvfs`:
//! total = f_blocks, used = f_blocks − f_bfree (df's Used), available =
//! f_bavail (df's Avail, what unprivileged users may still write). The rest
//! is root's reserve. Use % is used / (used + available), as df shows it.
//!
//! Left out, as df leaves them out: filesystems with no blocks (most pseudo
//! filesystems), a device mounted twice (bind mounts are reported once, at
//! the mount of the device's root, else the shortest path) and mounts hidden
//! under a later mount on the same path. Left out by a default that config
//! can replace: the types in [`DEFAULT_EXCLUDE_TYPES`] and the mount points
//! matching [`DEFAULT_EXCLUDE_MOUNTS`] (container runtimes' layers).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::sample::Filesystem;

use super::filter::NameFilter;

/// Pseudo and virtual filesystem types never worth reporting, and read-only
/// images that are always full (squashfs snaps, CD images) and would only
/// set off the disk alert.
pub const DEFAULT_EXCLUDE_TYPES: &[&str] = &[
    "autofs",
    "binfmt_misc",
    "bpf",
    "cgroup",
    "cgroup2",
    "configfs",
    "debugfs",
    "devpts",
    "efivarfs",
    "fuse.gvfsd-fuse",
    "fuse.portal",
    "fusectl",
    "hugetlbfs",
    "iso9660",
    "mqueue",
    "nsfs",
    "proc",
    "pstore",
    "ramfs",
    "rootfs",
    "rpc_pipefs",
    "securityfs",
    "selinuxfs",
    "squashfs",
    "sysfs",
    "tracefs",
];

/// Mount points of container runtimes' image layers and per-container
/// mounts: the host's own filesystems hold them and are reported already.
pub const DEFAULT_EXCLUDE_MOUNTS: &[&str] = &[
    "/var/lib/docker/*",
    "/var/lib/containers/*",
    "/var/lib/containerd/*",
    "/run/containerd/*",
    "/run/docker/*",
    "/var/lib/kubelet/*",
    "/run/k3s/*",
    "/snap/*",
];

/// Which filesystems to report: by type and by mount point.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilesystemFilter {
    pub types: NameFilter,
    pub mounts: NameFilter,
}

impl Default for FilesystemFilter {
    fn default() -> Self {
        let owned = |list: &[&str]| list.iter().map(|s| (*s).to_owned()).collect();
        Self {
            types: NameFilter::new(Vec::new(), owned(DEFAULT_EXCLUDE_TYPES)),
            mounts: NameFilter::new(Vec::new(), owned(DEFAULT_EXCLUDE_MOUNTS)),
        }
    }
}

/// One line of mountinfo, with the fields we use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// `major:minor` of the device.
    pub device_id: String,
    /// The directory of the filesystem mounted here (`/` unless a bind mount).
    pub root: String,
    pub mount_point: String,
    pub fs_type: String,
    pub source: String,
}

/// Undoes mountinfo's octal escapes (`\040` for a space).
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\'
            && let Some(code) = bytes
                .get(i + 1..i + 4)
                .and_then(|d| std::str::from_utf8(d).ok())
                .and_then(|d| u8::from_str_radix(d, 8).ok())
        {
            out.push(code);
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parses `/proc/PID/mountinfo`; malformed lines are skipped.
pub fn parse_mountinfo(text: &str) -> Vec<Mount> {
    text.lines()
        .filter_map(|line| {
            let (before, after) = line.split_once(" - ")?;
            let fields: Vec<&str> = before.split(' ').collect();
            let mut tail = after.split(' ');
            Some(Mount {
                device_id: (*fields.get(2)?).to_owned(),
                root: unescape(fields.get(3)?),
                mount_point: unescape(fields.get(4)?),
                fs_type: unescape(tail.next()?),
                source: unescape(tail.next()?),
            })
        })
        .collect()
}

/// The mounts to measure, in mount-table order: filtered by `filter`, the
/// mounts hidden under a later mount on the same path dropped, and one
/// mount per device (its root's, else the shortest mount point).
pub fn select(mounts: Vec<Mount>, filter: &FilesystemFilter) -> Vec<Mount> {
    // A later mount on the same path hides the earlier one.
    let mut last_on_path: HashMap<&str, usize> = HashMap::new();
    for (i, m) in mounts.iter().enumerate() {
        last_on_path.insert(m.mount_point.as_str(), i);
    }
    let mut best_for_device: HashMap<&str, usize> = HashMap::new();
    for (i, m) in mounts.iter().enumerate() {
        if last_on_path.get(m.mount_point.as_str()) != Some(&i)
            || !filter.types.keeps(&m.fs_type)
            || !filter.mounts.keeps(&m.mount_point)
        {
            continue;
        }
        let better = |old: &Mount| {
            (m.root.len(), m.mount_point.len()) < (old.root.len(), old.mount_point.len())
        };
        match best_for_device.get(m.device_id.as_str()) {
            Some(&j) if !better(&mounts[j]) => {}
            _ => {
                best_for_device.insert(m.device_id.as_str(), i);
            }
        }
    }
    let mut keep: Vec<usize> = best_for_device.into_values().collect();
    keep.sort_unstable();
    keep.into_iter().map(|i| mounts[i].clone()).collect()
}

/// df's figures for one mounted filesystem, `None` for one with no blocks
/// (df leaves those out too).
pub fn measure(mount: &Mount) -> std::io::Result<Option<Filesystem>> {
    let st = rustix::fs::statvfs(mount.mount_point.as_str())?;
    if st.f_blocks == 0 {
        return Ok(None);
    }
    let block = st.f_frsize;
    let bytes = |blocks: u64| blocks.saturating_mul(block);
    Ok(Some(Filesystem {
        mount_point: mount.mount_point.clone(),
        fs_type: mount.fs_type.clone(),
        device: mount.source.clone(),
        total_bytes: bytes(st.f_blocks),
        available_bytes: bytes(st.f_bavail.min(st.f_blocks)),
        used_bytes: bytes(st.f_blocks.saturating_sub(st.f_bfree)),
    }))
}

/// Reads the mount table and measures what the filter keeps, every tick.
pub struct FilesystemCollector {
    mountinfo: PathBuf,
    filter: FilesystemFilter,
}

impl FilesystemCollector {
    pub fn new(proc_root: &Path, filter: FilesystemFilter) -> Self {
        Self {
            mountinfo: proc_root.join("self/mountinfo"),
            filter,
        }
    }

    /// The filesystems mounted now. A mount that cannot be measured (gone
    /// since the table was read, no permission) is skipped and logged.
    pub fn collect(&self) -> Vec<Filesystem> {
        let text = match std::fs::read_to_string(&self.mountinfo) {
            Ok(text) => text,
            Err(e) => {
                tracing::warn!(path = %self.mountinfo.display(), error = %e, "cannot read the mount table");
                return Vec::new();
            }
        };
        select(parse_mountinfo(&text), &self.filter)
            .iter()
            .filter_map(|m| match measure(m) {
                Ok(fs) => fs,
                Err(e) => {
                    tracing::debug!(mount = %m.mount_point, error = %e, "cannot statvfs");
                    None
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MOUNTINFO: &str = "\
22 27 0:21 / /proc rw,relatime - proc proc rw
24 27 0:6 / /dev rw,relatime - devtmpfs devtmpfs rw,size=12334096k
25 24 0:23 / /dev/shm rw,relatime - tmpfs tmpfs rw
27 1 254:0 / / rw,relatime - ext4 /dev/vda rw
30 25 0:27 / /dev/shm rw,relatime - tmpfs tmpfs rw
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
45 27 0:40 /sub /srv/bound rw,relatime - tmpfs tmpfs rw
46 27 0:40 / /mnt/my\\040disk rw,relatime - tmpfs tmpfs rw
47 27 254:0 /var/lib/x /var/lib/docker/overlay2/abc/merged rw - overlay overlay rw
malformed line
";

    #[test]
    fn parses_and_selects_like_df() {
        let mounts = parse_mountinfo(MOUNTINFO);
        assert_eq!(mounts.len(), 9);
        assert_eq!(mounts[7].mount_point, "/mnt/my disk");
        assert_eq!(mounts[6].root, "/sub");
        let kept: Vec<String> = select(mounts, &FilesystemFilter::default())
            .into_iter()
            .map(|m| m.mount_point)
            .collect();
        // proc and cgroup2 by type, the hidden /dev/shm, the bind mount of
        // /sub (its device is reported at its root), docker's layer.
        assert_eq!(kept, ["/dev", "/", "/dev/shm", "/mnt/my disk"]);
    }

    #[test]
    fn config_can_include_and_exclude() {
        let mounts = parse_mountinfo(MOUNTINFO);
        let only_tmpfs = FilesystemFilter {
            types: NameFilter::new(vec!["tmpfs".into()], Vec::new()),
            mounts: NameFilter::new(Vec::new(), vec!["/dev/*".into()]),
        };
        let kept: Vec<String> = select(mounts, &only_tmpfs)
            .into_iter()
            .map(|m| m.mount_point)
            .collect();
        assert_eq!(kept, ["/mnt/my disk"]);
    }

    #[test]
    fn measures_the_root_filesystem() {
        let collector = FilesystemCollector::new(Path::new("/proc"), FilesystemFilter::default());
        let all = collector.collect();
        let root = all
            .iter()
            .find(|f| f.mount_point == "/")
            .expect("/ is mounted");
        assert!(root.total_bytes > 0);
        assert!(root.used_bytes + root.available_bytes <= root.total_bytes);
        assert!(all.iter().all(|f| f.fs_type != "proc"));
    }
}
