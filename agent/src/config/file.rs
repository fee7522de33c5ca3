//! The agent's TOML file as an operator writes it (see
//! deploy/agent.example.toml). Every key is optional; what is left unset
//! takes its default when [`super::Config`] is built. Unknown keys are
//! errors.

use std::path::PathBuf;

use serde::Deserialize;

use crate::collect::settings::{FilesystemsFile, NetworkFile};

/// The TOML file; the command line's keys are the same, so the merged
/// layers deserialize into this too.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub aggregator: Option<String>,
    pub interval: Option<String>,
    pub host_id: Option<String>,
    pub buffer_bytes: Option<usize>,
    pub state_dir: Option<PathBuf>,
    pub spool_max_age: Option<String>,
    pub backfill_rate: Option<u32>,
    pub max_workers_per_group: Option<usize>,
    pub max_filesystems: Option<usize>,
    pub ca_file: Option<PathBuf>,
    pub pin_sha256: Option<String>,
    pub client_cert: Option<PathBuf>,
    pub client_key: Option<PathBuf>,
    /// Read per layer by `super::token`; here so that their types are checked.
    pub token: Option<String>,
    pub token_file: Option<PathBuf>,
    /// Count worker restarts from the kernel's process events (default true).
    pub process_events: Option<bool>,
    #[serde(default)]
    pub filesystems: FilesystemsFile,
    #[serde(default)]
    pub network: NetworkFile,
    #[serde(default)]
    pub worker: Vec<WorkerGroupFile>,
}

/// One `[[worker]]` table of the TOML file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkerGroupFile {
    pub name: String,
    /// Regular expression matched against the command line (arguments joined by spaces).
    pub cmdline: Option<String>,
    /// Exact process name (the kernel's 15-byte `comm`, or argv[0]'s file name).
    pub process_name: Option<String>,
    /// Exact path of the executable (needs permission to read /proc/PID/exe).
    pub exe: Option<PathBuf>,
    /// How many processes of the group must be alive (default 1).
    pub min_alive: Option<u32>,
}
