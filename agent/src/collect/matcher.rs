//! Decides which worker group, if any, a process belongs to, from its
//! command line, name or executable. Used by the /proc scan and by the
//! process-event thread, which must classify a process the moment it
//! starts, before a short-lived one is gone.

use std::path::{Path, PathBuf};

use regex::Regex;

use super::procfs;

/// How a worker group recognises its processes (checked and compiled from
/// the config by `config::workers`).
#[derive(Debug, Clone)]
pub enum Matcher {
    Cmdline(Regex),
    ProcessName(String),
    Exe(PathBuf),
}

/// One worker group: its name, matcher and how many must be alive.
#[derive(Debug, Clone)]
pub struct WorkerGroupConfig {
    pub name: String,
    pub matcher: Matcher,
    pub min_alive: u32,
}

/// A process that matched a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Classified {
    pub group: usize,
    pub name: String,
    pub cmdline: String,
    pub start_ticks: u64,
    /// Already exited (a zombie): matched by name only, never alive.
    pub zombie: bool,
}

/// The first group whose matcher `pid` satisfies. A zombie has no command
/// line any more, so it can still match by process name only.
pub fn classify(
    proc_root: &Path,
    groups: &[WorkerGroupConfig],
    pid: u32,
    buf: &mut Vec<u8>,
) -> Option<Classified> {
    if groups.is_empty() {
        return None;
    }
    let cmdline = procfs::read_cmdline(proc_root, pid, buf).ok()?;
    let mut comm: Option<String> = None;
    let mut group = None;
    for (i, g) in groups.iter().enumerate() {
        let matched = match &g.matcher {
            Matcher::Cmdline(re) => !cmdline.is_empty() && re.is_match(&cmdline),
            Matcher::ProcessName(name) => {
                let argv0 = cmdline.split(' ').next().unwrap_or("");
                let base = argv0.rsplit('/').next().unwrap_or(argv0);
                if comm.is_none() {
                    comm = procfs::read_comm(proc_root, pid, buf).ok();
                }
                comm.as_deref() == Some(name.as_str()) || (!base.is_empty() && base == name)
            }
            Matcher::Exe(path) => procfs::read_exe(proc_root, pid).is_ok_and(|exe| exe == *path),
        };
        if matched {
            group = Some(i);
            break;
        }
    }
    let group = group?;
    let name = match comm {
        Some(name) => name,
        None => procfs::read_comm(proc_root, pid, buf).ok()?,
    };
    let stat = procfs::read_stat(proc_root, pid, buf).ok()?;
    Some(Classified {
        group,
        name,
        cmdline,
        start_ticks: stat.start_ticks,
        zombie: procfs::is_dead(stat.state),
    })
}
