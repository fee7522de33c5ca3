//! Caps on what one sample reports, so that one oversized list (a prefork
//! pool of thousands, hundreds of ZFS datasets) never makes a sample too big
//! to be accepted. What is left out is counted in the sample itself:
//! `GroupStatus.omitted` per worker group and
//! `SystemMetrics.filesystems_omitted`; `alive` still counts every process.

use std::collections::HashMap;

use crate::sample::Sample;

/// Keeps at most `max_per_group` workers of each group and at most
/// `max_filesystems` filesystems, counting the rest as omitted.
pub fn apply(sample: &mut Sample, max_per_group: usize, max_filesystems: usize) {
    let mut kept: HashMap<String, usize> = HashMap::new();
    let mut omitted: HashMap<String, u32> = HashMap::new();
    sample.workers.retain(|w| {
        let n = kept.entry(w.group.clone()).or_insert(0);
        if *n < max_per_group {
            *n += 1;
            true
        } else {
            *omitted.entry(w.group.clone()).or_insert(0) += 1;
            false
        }
    });
    if !omitted.is_empty() {
        for group in &mut sample.groups {
            group.omitted = omitted.get(&group.name).copied().unwrap_or(0);
        }
    }
    let system = &mut sample.system;
    if system.filesystems.len() > max_filesystems {
        let extra = system.filesystems.len() - max_filesystems;
        system.filesystems.truncate(max_filesystems);
        system.filesystems_omitted = u32::try_from(extra).unwrap_or(u32::MAX);
    }
}

#[cfg(test)]
mod tests {
    use crate::sample::{Filesystem, GroupStatus, SystemMetrics, Worker};

    use super::*;

    fn worker(group: &str, pid: u32) -> Worker {
        Worker {
            group: group.to_owned(),
            pid,
            ..Default::default()
        }
    }

    #[test]
    fn oversized_lists_are_cut_and_counted() {
        let mut sample = Sample {
            timestamp_ms: 1,
            system: SystemMetrics {
                filesystems: (0..10)
                    .map(|i| Filesystem {
                        mount_point: format!("/m{i}"),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            },
            workers: (0..5)
                .map(|p| worker("big", p))
                .chain([worker("small", 100)])
                .collect(),
            groups: ["big", "small"]
                .iter()
                .map(|name| GroupStatus {
                    name: (*name).to_owned(),
                    ..Default::default()
                })
                .collect(),
        };
        apply(&mut sample, 2, 4);
        let pids: Vec<u32> = sample.workers.iter().map(|w| w.pid).collect();
        assert_eq!(pids, [0, 1, 100]);
        assert_eq!(sample.groups[0].omitted, 3);
        assert_eq!(sample.groups[1].omitted, 0);
        let system = &sample.system;
        assert_eq!(system.filesystems.len(), 4);
        assert_eq!(system.filesystems_omitted, 6);
    }

    #[test]
    fn samples_within_the_caps_are_untouched() {
        let mut sample = Sample {
            workers: vec![worker("a", 1)],
            groups: vec![GroupStatus {
                name: "a".to_owned(),
                alive: 1,
                ..Default::default()
            }],
            system: SystemMetrics::default(),
            ..Default::default()
        };
        let before = sample.clone();
        apply(&mut sample, 1, 1);
        assert_eq!(sample, before);
    }
}
