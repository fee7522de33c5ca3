//! The few /proc reads the worker collector needs, done by hand so that each
//! costs one small file read: listing pids, a process's command line and
//! name once when it first appears, and `/proc/PID/stat` for matched workers
//! only. Everything else on the host is never opened.

use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

/// Longest command line we keep, in bytes; the aggregator refuses longer.
pub const MAX_CMDLINE: usize = 4096;

/// Lists the pids under `/proc` (processes, not threads).
pub fn list_pids(proc_root: &Path, out: &mut Vec<u32>) -> io::Result<()> {
    out.clear();
    for entry in fs::read_dir(proc_root)? {
        let entry = entry?;
        let name = entry.file_name();
        if let Some(pid) = name.to_str().and_then(|s| s.parse::<u32>().ok()) {
            out.push(pid);
        }
    }
    out.sort_unstable();
    Ok(())
}

fn pid_path(proc_root: &Path, pid: u32, file: &str) -> PathBuf {
    let mut path = proc_root.join(pid.to_string());
    path.push(file);
    path
}

/// Reads a whole small file into `buf`, reusing its allocation.
fn read_into(path: &Path, buf: &mut Vec<u8>) -> io::Result<()> {
    buf.clear();
    fs::File::open(path)?.read_to_end(buf)?;
    Ok(())
}

/// The command line with arguments joined by spaces, cut at [`MAX_CMDLINE`]
/// bytes on a character boundary. Empty for kernel threads and zombies.
pub fn read_cmdline(proc_root: &Path, pid: u32, buf: &mut Vec<u8>) -> io::Result<String> {
    read_into(&pid_path(proc_root, pid, "cmdline"), buf)?;
    while buf.last() == Some(&0) {
        buf.pop();
    }
    for b in buf.iter_mut() {
        if *b == 0 {
            *b = b' ';
        }
    }
    let mut text = String::from_utf8_lossy(buf).into_owned();
    if text.len() > MAX_CMDLINE {
        let mut end = MAX_CMDLINE;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    Ok(text)
}

/// The kernel's name of the process (`comm`, at most 15 bytes).
pub fn read_comm(proc_root: &Path, pid: u32, buf: &mut Vec<u8>) -> io::Result<String> {
    read_into(&pid_path(proc_root, pid, "comm"), buf)?;
    Ok(String::from_utf8_lossy(buf).trim_end().to_owned())
}

/// The executable's path; fails without permission on other users' processes.
pub fn read_exe(proc_root: &Path, pid: u32) -> io::Result<PathBuf> {
    fs::read_link(pid_path(proc_root, pid, "exe"))
}

/// The fields of `/proc/PID/stat` that a worker report needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stat {
    pub state: char,
    /// utime + stime, in clock ticks.
    pub cpu_ticks: u64,
    pub threads: u32,
    /// Start time after boot, in clock ticks; with the pid, names a process uniquely.
    pub start_ticks: u64,
    pub rss_pages: u64,
}

pub fn read_stat(proc_root: &Path, pid: u32, buf: &mut Vec<u8>) -> io::Result<Stat> {
    read_into(&pid_path(proc_root, pid, "stat"), buf)?;
    parse_stat(buf).ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "malformed stat"))
}

/// Parses the stat line. The name in parentheses may contain spaces and `)`,
/// so the fields are counted from the last `)`.
pub fn parse_stat(line: &[u8]) -> Option<Stat> {
    let close = line.iter().rposition(|&b| b == b')')?;
    let rest = std::str::from_utf8(line.get(close + 2..)?).ok()?;
    // Field 3 of proc(5) is the first after the name.
    let fields: Vec<&str> = rest.split_ascii_whitespace().collect();
    let field = |n: usize| fields.get(n - 3).copied();
    let num = |n: usize| field(n).and_then(|f| f.parse::<u64>().ok());
    Some(Stat {
        state: field(3)?.chars().next()?,
        cpu_ticks: num(14)?.saturating_add(num(15)?),
        threads: u32::try_from(num(20)?).ok()?,
        start_ticks: num(22)?,
        rss_pages: num(24)?,
    })
}

/// Whether a state letter means the process has exited: a zombie waiting
/// for its parent, or dead. Such a process is never counted alive.
pub fn is_dead(state: char) -> bool {
    matches!(state, 'Z' | 'X' | 'x')
}

/// Resident memory as `ps` and `top` show it: `VmRSS` of
/// `/proc/PID/status`, exact, unlike the approximate per-CPU counter in
/// `/proc/PID/stat`. `None` for a process with no memory (a kernel thread,
/// a zombie).
pub fn read_vm_rss(proc_root: &Path, pid: u32, buf: &mut Vec<u8>) -> io::Result<Option<u64>> {
    read_into(&pid_path(proc_root, pid, "status"), buf)?;
    Ok(parse_vm_rss(buf))
}

/// The `VmRSS:` line of a status file, in bytes.
pub fn parse_vm_rss(status: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(status).ok()?;
    let line = text.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line
        .trim_start_matches("VmRSS:")
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib.saturating_mul(1024))
}

/// A readable word for a stat state letter.
pub fn state_name(state: char) -> &'static str {
    match state {
        'R' => "running",
        'S' => "sleeping",
        'D' => "disk-sleep",
        'Z' => "zombie",
        'T' => "stopped",
        't' => "tracing-stop",
        'X' | 'x' => "dead",
        'I' => "idle",
        'W' => "waking",
        'P' => "parked",
        'K' => "wakekill",
        _ => "unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_with_awkward_name() {
        let line = b"4242 (my) worker) S 1 4242 4242 0 -1 4194560 100 0 0 0 150 50 0 0 20 0 7 0 123456 1000000 321 18446744073709551615 0 0 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0\n";
        let stat = parse_stat(line).expect("parses");
        assert_eq!(
            stat,
            Stat {
                state: 'S',
                cpu_ticks: 200,
                threads: 7,
                start_ticks: 123456,
                rss_pages: 321,
            }
        );
        assert!(parse_stat(b"garbage").is_none());
        assert!(parse_stat(b"1 (x) S 1 2").is_none());
    }

    #[test]
    fn parses_vm_rss() {
        let status = b"Name:\tsleep\nState:\tS (sleeping)\nVmRSS:\t    1792 kB\nThreads:\t1\n";
        assert_eq!(parse_vm_rss(status), Some(1792 * 1024));
        assert_eq!(parse_vm_rss(b"Name:\tkthreadd\n"), None);
        assert!(is_dead('Z') && is_dead('X') && !is_dead('S') && !is_dead('D'));
    }

    #[test]
    fn reads_this_process() {
        let root = Path::new("/proc");
        let me = std::process::id();
        let mut pids = Vec::new();
        list_pids(root, &mut pids).expect("list");
        assert!(pids.contains(&me));
        let mut buf = Vec::new();
        let cmdline = read_cmdline(root, me, &mut buf).expect("cmdline");
        assert!(!cmdline.contains('\0'));
        assert!(!cmdline.is_empty());
        let stat = read_stat(root, me, &mut buf).expect("stat");
        assert!(stat.threads >= 1);
        assert!(stat.rss_pages > 0);
        assert_ne!(state_name(stat.state), "unknown");
        assert!(!read_comm(root, me, &mut buf).expect("comm").is_empty());
        let rss = read_vm_rss(root, me, &mut buf).expect("status");
        assert!(rss.is_some_and(|b| b > 0));
    }
}
