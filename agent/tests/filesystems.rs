//! The agent's filesystems against `df` itself: a tmpfs of our own with
//! data in it and a bind mount of one of its directories. Every filesystem
//! df lists (less the documented default exclusions) is reported, with df's
//! size, used and available bytes; the bind mount once; an unmounted
//! filesystem is gone from the next reading.
//!
//! Mounting needs root (CI runs these as root); where it is not allowed the
//! test prints why and skips.

#![allow(clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use fleetwatch_agent::collect::filesystems::{
    DEFAULT_EXCLUDE_TYPES, FilesystemCollector, FilesystemFilter,
};

/// Unmounts on drop, so a failed assertion leaves no mount behind.
struct Mounted(PathBuf);

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

fn mount(args: &[&str], target: &Path) -> Result<Mounted, String> {
    let out = Command::new("mount")
        .args(args)
        .arg(target)
        .output()
        .map_err(|e| format!("cannot run mount: {e}"))?;
    if out.status.success() {
        Ok(Mounted(target.to_owned()))
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_owned())
    }
}

/// (size, used, available) by mount point, as df shows them.
fn df() -> BTreeMap<String, (u64, u64, u64)> {
    let out = Command::new("df")
        .args(["-B1", "--output=fstype,size,used,avail,target"])
        .output()
        .expect("run df");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .skip(1)
        .filter_map(|line| {
            let mut f = line.split_whitespace();
            let fs_type = f.next()?;
            let nums: Vec<u64> = (0..3).filter_map(|_| f.next()?.parse().ok()).collect();
            let target = f.collect::<Vec<_>>().join(" ");
            (!DEFAULT_EXCLUDE_TYPES.contains(&fs_type) && nums.len() == 3)
                .then(|| (target, (nums[0], nums[1], nums[2])))
        })
        .collect()
}

fn ours(collector: &FilesystemCollector) -> BTreeMap<String, (u64, u64, u64)> {
    collector
        .collect()
        .into_iter()
        .map(|f| {
            (
                f.mount_point,
                (f.total_bytes, f.used_bytes, f.available_bytes),
            )
        })
        .collect()
}

#[test]
fn tmpfs_and_bind_mount_match_df() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (fs_dir, bind_dir) = (dir.path().join("fs"), dir.path().join("bind"));
    std::fs::create_dir(&fs_dir).expect("mkdir");
    std::fs::create_dir(&bind_dir).expect("mkdir");
    let tmpfs = match mount(&["-t", "tmpfs", "-o", "size=8m", "fwtest"], &fs_dir) {
        Ok(m) => m,
        Err(e) => {
            println!("SKIPPED: cannot mount a tmpfs ({e}); run as root");
            return;
        }
    };
    std::fs::create_dir(fs_dir.join("sub")).expect("mkdir");
    std::fs::write(fs_dir.join("sub/data"), vec![7u8; 3 << 20]).expect("write");
    let sub = fs_dir.join("sub");
    let bind = mount(&["--bind", sub.to_str().expect("utf-8")], &bind_dir).expect("bind mount");

    let collector = FilesystemCollector::new(Path::new("/proc"), FilesystemFilter::default());
    let fs_key = fs_dir.display().to_string();
    let bind_key = bind_dir.display().to_string();
    // Other tests on this machine may mount and unmount meanwhile: compare
    // when our reading is the same before and after df's.
    let mut tries = 0;
    let (mine, theirs) = loop {
        let before = ours(&collector);
        let theirs = df();
        if before == ours(&collector) || tries == 5 {
            break (before, theirs);
        }
        tries += 1;
    };
    assert_eq!(
        mine.keys().collect::<Vec<_>>(),
        theirs.keys().collect::<Vec<_>>(),
        "the filesystems df lists"
    );
    // tmpfs does not change under us: df's figures exactly.
    let (total, used, avail) = mine[&fs_key];
    assert_eq!((total, used, avail), theirs[&fs_key]);
    assert_eq!(total, 8 << 20);
    assert!(used >= 3 << 20, "3 MiB written: {used}");
    assert!(
        !mine.contains_key(&bind_key),
        "a bind mount is reported once"
    );
    // Root's figures move with other engineers' writes: within 1 %.
    let (t, u, a) = mine["/"];
    let (dt, du, da) = theirs["/"];
    assert_eq!(t, dt);
    let pct = |u: u64, a: u64| u as f64 * 100.0 / (u + a) as f64;
    assert!((pct(u, a) - pct(du, da)).abs() < 1.0, "/ use %");

    drop(bind);
    drop(tmpfs);
    let after = ours(&collector);
    assert!(
        !after.contains_key(&fs_key) && !after.contains_key(&bind_key),
        "an unmounted filesystem is gone from the next reading"
    );
}
