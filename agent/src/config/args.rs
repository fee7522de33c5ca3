//! The agent's command line. Every flag can also be set through the
//! `FLEETWATCH_` environment variable named beside it (clap reads it, under
//! the flag), and in the config file under the key of the same name; the
//! parsed flags are the top layer of the configuration.

use std::path::PathBuf;

use clap::Parser;
use serde::Serialize;

/// Command line of `fleetwatch-agent`. Serialized, it is the flags' layer:
/// the keys it sets, in the file's shape (`config` and `--worker` are not
/// keys).
#[derive(Debug, Default, Parser, Serialize)]
#[command(
    name = "fleetwatch-agent",
    version,
    about = "Samples this host and its worker processes and streams the samples to a fleetwatch aggregator.",
    long_about = "Samples this host (CPU, memory, filesystems, disk and network I/O, load) and the \
worker processes named in its worker groups, and streams the samples over gRPC to a fleetwatch \
aggregator. Every sample is written to a bounded spool on disk (under --state-dir) before it is \
sent and kept until the aggregator acknowledges it, so outages and agent restarts lose nothing; \
after a reconnect new samples go first and the backlog follows at --backfill-rate.\n\nPrecedence: flags, then FLEETWATCH_* environment variables, then the config \
file, then built-in defaults."
)]
pub struct Args {
    /// TOML config file (see deploy/agent.example.toml for every key).
    #[arg(long, short = 'c', env = "FLEETWATCH_CONFIG", value_name = "FILE")]
    #[serde(skip)]
    pub config: Option<PathBuf>,

    /// gRPC address of the aggregator [default: http://127.0.0.1:7400].
    #[arg(long, env = "FLEETWATCH_AGGREGATOR", value_name = "URL")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aggregator: Option<String>,

    /// Sampling interval, such as 1s, 500ms or 5m [default: 5s].
    #[arg(long, env = "FLEETWATCH_INTERVAL", value_name = "DURATION")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interval: Option<String>,

    /// Identity of this host in the fleet [default: the contents of /etc/machine-id].
    #[arg(long, env = "FLEETWATCH_HOST_ID", value_name = "ID")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host_id: Option<String>,

    /// A worker group whose processes' command lines match REGEX, with at
    /// least MIN alive (default 1). Repeatable; adds to the groups of the
    /// config file. Example: --worker 'celery=celery .* worker:4'
    #[arg(long = "worker", value_name = "GROUP=REGEX[:MIN]")]
    #[serde(skip)]
    pub workers: Vec<String>,

    /// Most bytes of unacknowledged samples kept while the aggregator is
    /// unreachable; the oldest are dropped first [default: 64MiB].
    #[arg(long, env = "FLEETWATCH_BUFFER_BYTES", value_name = "BYTES")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub buffer_bytes: Option<usize>,

    /// Directory for the agent's state: the spool of unacknowledged samples
    /// lives in its `spool/` [default: $STATE_DIRECTORY (systemd), else
    /// /var/lib/fleetwatch-agent if it exists, else ./fleetwatch-agent-state].
    #[arg(long, env = "FLEETWATCH_STATE_DIR", value_name = "DIR")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state_dir: Option<PathBuf>,

    /// Unacknowledged samples older than this are dropped [default: 48h].
    #[arg(long, env = "FLEETWATCH_SPOOL_MAX_AGE", value_name = "DURATION")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spool_max_age: Option<String>,

    /// Most spooled samples per second resent after a reconnect, behind the
    /// live ones [default: 100].
    #[arg(long, env = "FLEETWATCH_BACKFILL_RATE", value_name = "SAMPLES")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backfill_rate: Option<u32>,

    /// Most processes of one worker group reported in a sample; the rest
    /// are counted as omitted [default: 256].
    #[arg(long, env = "FLEETWATCH_MAX_WORKERS_PER_GROUP", value_name = "N")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_workers_per_group: Option<usize>,

    /// Most filesystems reported in a sample; the rest are counted as
    /// omitted [default: 128].
    #[arg(long, env = "FLEETWATCH_MAX_FILESYSTEMS", value_name = "N")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_filesystems: Option<usize>,

    /// CA certificate(s) (PEM) that the aggregator's certificate must chain
    /// to, for an https:// aggregator [default: the Mozilla roots].
    #[arg(long, env = "FLEETWATCH_CA_FILE", value_name = "FILE")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,

    /// Trust exactly the aggregator certificate with this SHA-256
    /// fingerprint (64 hex digits, colons optional) instead of a CA.
    #[arg(long, env = "FLEETWATCH_PIN_SHA256", value_name = "HEX")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pin_sha256: Option<String>,

    /// Client certificate (PEM) for an aggregator that requires mutual TLS.
    #[arg(long, env = "FLEETWATCH_CLIENT_CERT", value_name = "FILE")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_cert: Option<PathBuf>,

    /// Private key (PEM) of --client-cert.
    #[arg(long, env = "FLEETWATCH_CLIENT_KEY", value_name = "FILE")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_key: Option<PathBuf>,

    /// Agent token the aggregator knows this agent by (`fwa_…`, from the
    /// aggregator's start-up log or `fleetwatch-aggregator token add`).
    /// Prefer --token-file or the environment: other local users can read
    /// a flag in the process list.
    #[arg(
        long,
        env = "FLEETWATCH_TOKEN",
        value_name = "TOKEN",
        hide_env_values = true
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,

    /// File holding the agent token (such as a systemd credential).
    #[arg(long, env = "FLEETWATCH_TOKEN_FILE", value_name = "FILE")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_file: Option<PathBuf>,
}
