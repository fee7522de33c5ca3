//! The aggregator's configuration: built-in defaults, then a TOML file, then
//! `FLEETWATCH_` environment variables, then command-line flags, layered by
//! [`fleetwatch_common::config`] (shared with the agent).
//!
//! This file has the command line's flags ([`Args`]), the file's shape
//! ([`FileConfig`]) and the top-level keys; each `[section]` is checked
//! beside the code it configures: `[alerts]` in `alerts::config` (webhooks
//! in `alerts::notify::config`), `[auth]` in `auth::config`, `[storage]` in
//! `store::config`, `[limits]` in `conn::config`, and the `tls_*` keys in
//! `tls::config`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use fleetwatch_common::config::{Layers, flag_for_key, parse_duration};
use serde::{Deserialize, Serialize, Serializer};

pub use fleetwatch_common::config::ConfigError;

use crate::alerts::{AlertsConfig, Rule, builtin_rules};
use crate::auth::config::{AuthConfig, AuthFileConfig, ReadPolicy};
use crate::tls::TlsConfig;
use crate::tls::config::TlsKeys;

/// The flags that configure a run: the top layer of the configuration
/// (clap reads each one's environment variable beneath it). Serialized,
/// they are the keys they set, in the file's shape.
/// `crate::cli::Cli` flattens them into the whole command line; they parse
/// on their own too (tests do).
#[derive(Debug, Default, Parser, Serialize)]
#[command(name = "fleetwatch-aggregator")]
pub struct Args {
    /// TOML config file (see deploy/aggregator.example.toml for every key).
    #[arg(
        long,
        short = 'c',
        env = "FLEETWATCH_CONFIG",
        value_name = "FILE",
        global = true
    )]
    #[serde(skip)]
    pub config: Option<PathBuf>,

    /// Address the gRPC ingest service listens on [default: 127.0.0.1:7400].
    #[arg(long, env = "FLEETWATCH_GRPC_LISTEN", value_name = "ADDR")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grpc_listen: Option<String>,

    /// Address the HTTP API and dashboard listen on [default: 127.0.0.1:7401].
    #[arg(long, env = "FLEETWATCH_HTTP_LISTEN", value_name = "ADDR")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_listen: Option<String>,

    /// SQLite database file, created if missing [default: fleetwatch.db].
    #[arg(long, env = "FLEETWATCH_DB", value_name = "PATH", global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub db: Option<PathBuf>,

    /// How long raw samples are kept, such as 48h or 7d [default: 48h]; rollups are kept longer ([storage] in the config file).
    #[arg(long, env = "FLEETWATCH_RETENTION", value_name = "DURATION")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retention: Option<String>,

    /// TLS certificate chain (PEM) for both listeners; needs --tls-key.
    #[arg(long, env = "FLEETWATCH_TLS_CERT", value_name = "FILE")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_cert: Option<PathBuf>,

    /// Private key (PEM) of --tls-cert.
    #[arg(long, env = "FLEETWATCH_TLS_KEY", value_name = "FILE")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_key: Option<PathBuf>,

    /// Serve TLS with a self-signed certificate generated on first start in
    /// `tls/` beside the database; its fingerprint is logged for agents to pin.
    #[arg(long, env = "FLEETWATCH_TLS_SELF_SIGNED")]
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub tls_self_signed: bool,

    /// CA (PEM) that agents' client certificates must chain to (mutual TLS
    /// on the gRPC listener).
    #[arg(long, env = "FLEETWATCH_TLS_CLIENT_CA", value_name = "FILE")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_client_ca: Option<PathBuf>,

    /// An agent token (`fwa_` and at least 32 more characters) accepted
    /// beside those made with `token add`; agents send it with --token.
    /// Prefer the environment or the config file to a flag, which other
    /// local users can read in the process list.
    #[arg(
        long,
        env = "FLEETWATCH_AGENT_TOKEN",
        value_name = "TOKEN",
        hide_env_values = true
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent_token: Option<String>,
    /// Whether reading the dashboard, REST API and WebSocket needs a login:
    /// `auto` (open on a loopback listener, login otherwise), `login` or
    /// `open`. Changing anything always needs an admin [default: auto].
    #[arg(long, env = "FLEETWATCH_READ_AUTH", value_name = "POLICY", value_enum)]
    #[serde(
        rename = "auth",
        serialize_with = "read_auth_as_section",
        skip_serializing_if = "Option::is_none"
    )]
    pub read_auth: Option<ReadPolicy>,
}

/// `--read-auth` is the `[auth]` section's `read`.
fn read_auth_as_section<S: Serializer>(read: &Option<ReadPolicy>, s: S) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap;
    let mut section = s.serialize_map(Some(1))?;
    section.serialize_entry("read", read)?;
    section.end()
}

/// The flag that sets `key`.
fn flag_name(key: &str) -> String {
    match key {
        "auth.read" => "--read-auth".to_owned(),
        key => flag_for_key(key),
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub grpc_listen: Option<String>,
    pub http_listen: Option<String>,
    pub db: Option<PathBuf>,
    pub retention: Option<String>,
    /// The dashboard's address as people reach it, for links in notifications.
    pub public_url: Option<String>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub tls_self_signed: Option<bool>,
    /// Extra names for the self-signed certificate.
    #[serde(default)]
    pub tls_names: Vec<String>,
    pub tls_client_ca: Option<PathBuf>,
    /// An agent token accepted beside those in the database.
    pub agent_token: Option<String>,
    #[serde(default)]
    pub alerts: AlertsConfig,
    /// Dashboard and API access.
    #[serde(default)]
    pub auth: AuthFileConfig,
    /// Rollup retention and commit durability.
    #[serde(default)]
    pub storage: crate::store::config::StorageFileConfig,
    /// Connection timeouts and caps.
    #[serde(default)]
    pub limits: crate::conn::config::LimitsFileConfig,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub grpc_listen: SocketAddr,
    pub http_listen: SocketAddr,
    pub db: PathBuf,
    /// How long raw samples are kept (the raw tier's retention).
    pub retention: Duration,
    /// Every tier's retention (`retention` as the raw one's) and durability.
    pub storage: crate::store::SqliteOptions,
    pub public_url: Option<String>,
    /// The `[alerts]` section as written; `rules` is what it builds to.
    pub alerts: AlertsConfig,
    /// The alert rules in force: the built-in defaults with the file's
    /// overrides, plus its own rules.
    pub rules: Vec<Rule>,
    /// TLS for both listeners (off by default).
    pub tls: TlsConfig,
    /// An agent token from the config, kept in the database as `config`.
    pub agent_token: Option<String>,
    /// Who may read, and how long a dashboard login lasts.
    pub auth: AuthConfig,
    /// Connection timeouts and caps (`[limits]`).
    pub limits: crate::conn::Limits,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            grpc_listen: SocketAddr::from(([127, 0, 0, 1], 7400)),
            http_listen: SocketAddr::from(([127, 0, 0, 1], 7401)),
            db: PathBuf::from("fleetwatch.db"),
            retention: crate::store::Retention::default().raw,
            storage: crate::store::SqliteOptions::default(),
            public_url: None,
            alerts: AlertsConfig::default(),
            rules: builtin_rules(),
            tls: TlsConfig::default(),
            agent_token: None,
            auth: AuthConfig::default(),
            limits: crate::conn::Limits::default(),
        }
    }
}

impl Config {
    /// `https` when the listeners serve TLS, else `http`.
    pub fn http_scheme(&self) -> &'static str {
        if self.tls.mode == crate::tls::TlsMode::Off {
            "http"
        } else {
            "https"
        }
    }

    /// Layers defaults, the config file named by `args`, and `args` itself
    /// (flags and environment), and checks the result.
    pub fn load(args: &Args) -> Result<Self, ConfigError> {
        let layers = Layers::load(args.config.as_deref(), args, flag_name)?;
        Self::from_layers(&layers)
    }

    fn from_layers(layers: &Layers) -> Result<Self, ConfigError> {
        let defaults = Self::default();
        let file: FileConfig = layers.extract()?;
        let tls = TlsKeys {
            tls_cert: file.tls_cert,
            tls_key: file.tls_key,
            tls_self_signed: file.tls_self_signed,
            tls_names: file.tls_names,
            tls_client_ca: file.tls_client_ca,
        }
        .build(layers)?;
        let section = |(key, reason): (String, String)| layers.invalid(&key, reason);
        let auth = file.auth.build().map_err(section)?;
        let grpc_listen = address(
            layers,
            "grpc_listen",
            file.grpc_listen,
            defaults.grpc_listen,
        )?;
        let http_listen = address(
            layers,
            "http_listen",
            file.http_listen,
            defaults.http_listen,
        )?;
        let retention = match &file.retention {
            None => defaults.retention,
            Some(text) => {
                let d = parse_duration(text).map_err(|e| layers.invalid("retention", e))?;
                if d < Duration::from_secs(60) {
                    return Err(layers.invalid("retention", "must be at least 1m"));
                }
                d
            }
        };
        let storage = file.storage.build(retention).map_err(section)?;
        let limits = file.limits.build().map_err(section)?;
        let db = file.db.unwrap_or(defaults.db);
        if db.as_os_str().is_empty() {
            return Err(layers.invalid("db", "is empty"));
        }
        let rules = file
            .alerts
            .rules_in_force()
            .map_err(|reason| layers.invalid_in_file("alerts", reason))?;
        if let Some(url) = &file.public_url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return Err(layers.invalid(
                "public_url",
                format!("`{url}` must start with http:// or https://"),
            ));
        }
        let agent_token = match file.agent_token {
            None => None,
            Some(token) => {
                let token = token.trim().to_owned();
                if !token.starts_with(crate::auth::agent_tokens::PREFIX)
                    || token.len() < crate::auth::agent_tokens::PREFIX.len() + 32
                    || !token.chars().all(|c| c.is_ascii_graphic())
                {
                    return Err(layers.invalid(
                        "agent_token",
                        "must be `fwa_` and at least 32 more printable characters, \
                         such as fwa_$(openssl rand -hex 32)",
                    ));
                }
                Some(token)
            }
        };
        Ok(Self {
            grpc_listen,
            http_listen,
            db,
            retention,
            storage,
            public_url: file.public_url,
            alerts: file.alerts,
            rules,
            tls,
            agent_token,
            auth,
            limits,
        })
    }
}

/// The listen address `key` is set to, or `default`.
fn address(
    layers: &Layers,
    key: &str,
    text: Option<String>,
    default: SocketAddr,
) -> Result<SocketAddr, ConfigError> {
    let Some(text) = text else {
        return Ok(default);
    };
    text.parse::<SocketAddr>().map_err(|e| {
        layers.invalid(
            key,
            format!("`{text}` is not an address like 0.0.0.0:7400: {e}"),
        )
    })
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::tls::TlsMode;

    fn args(list: &[&str]) -> Args {
        Args::try_parse_from(std::iter::once("fleetwatch-aggregator").chain(list.iter().copied()))
            .expect("args")
    }

    /// The config from `flags` over a file `agg.toml` holding `toml`.
    fn load(flags: &[&str], toml: &str) -> Result<Config, ConfigError> {
        let args = args(flags);
        let layers = Layers::from_toml(Some(Path::new("agg.toml")), toml, &args, flag_name)?;
        Config::from_layers(&layers)
    }

    #[test]
    fn flags_override_file_and_defaults_fill_in() {
        let cfg = load(
            &["--grpc-listen", "127.0.0.1:0"],
            "grpc_listen = \"0.0.0.0:9000\"\nretention = \"48h\"",
        )
        .expect("valid");
        assert_eq!(cfg.grpc_listen, "127.0.0.1:0".parse().expect("addr"));
        assert_eq!(cfg.http_listen, Config::default().http_listen);
        assert_eq!(cfg.retention, Duration::from_secs(48 * 3600));
    }

    #[test]
    fn alert_rules_are_built_and_bad_ones_named() {
        let cfg = load(&[], "[alerts.defaults.memory]\nenabled = false\n").expect("valid");
        assert!(cfg.rules.iter().any(|r| r.name == "cpu"));
        assert!(!cfg.rules.iter().any(|r| r.name == "memory"));

        let err = load(
            &[],
            "[[alerts.rules]]\nname = \"hot\"\nmetric = \"cpu_percent\"\ncomparison = \">=\"\nwarning = 99\ncritical = 90\n",
        )
        .expect_err("critical below warning")
        .to_string();
        assert!(
            err.contains("agg.toml: key `alerts`") && err.contains("hot"),
            "{err}"
        );
    }

    #[test]
    fn example_config_is_valid() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../deploy/aggregator.example.toml"
        );
        let cfg = Config::load(&args(&["--config", path])).expect("valid");
        assert_eq!(cfg.retention, Duration::from_secs(48 * 3600));
    }

    #[test]
    fn bad_values_name_file_and_key() {
        for (text, key) in [
            ("grpc_listen = \"localhost\"", "grpc_listen"),
            ("http_listen = \"1.2.3.4:99999\"", "http_listen"),
            ("retention = \"forever\"", "retention"),
            ("retention = \"1s\"", "retention"),
            ("grpc_port = 1", "grpc_port"),
            ("retention = 48", "retention"),
            ("[storage]\nretention_1m = \"5m\"", "storage.retention_1m"),
            (
                "[limits]\nconnections_per_address = 0",
                "limits.connections_per_address",
            ),
        ] {
            let err = load(&[], text).expect_err(text).to_string();
            assert!(err.starts_with(&format!("agg.toml: key `{key}`")), "{err}");
        }
        let err = load(&["--retention", "soon"], "")
            .expect_err("bad flag")
            .to_string();
        assert!(err.starts_with("--retention: key `retention`"), "{err}");
    }

    #[test]
    fn auth_section_and_read_flag() {
        let cfg = load(&[], "").expect("valid");
        assert_eq!(cfg.auth, AuthConfig::default());
        let cfg = load(&[], "[auth]\nread = \"login\"\nsession_ttl = \"30m\"").expect("valid");
        assert_eq!(cfg.auth.read, ReadPolicy::Login);
        assert_eq!(cfg.auth.session_ttl, Duration::from_secs(1800));
        let cfg = load(&["--read-auth", "open"], "[auth]\nread = \"login\"").expect("valid");
        assert_eq!(cfg.auth.read, ReadPolicy::Open, "the flag wins");

        let err = load(&[], "[auth]\nsession_ttl = \"0s\"")
            .expect_err("zero ttl")
            .to_string();
        assert!(err.contains("key `auth.session_ttl`"), "{err}");
        for bad in ["[auth]\nread = \"maybe\"", "[auth]\nreed = \"open\""] {
            let err = load(&[], bad).expect_err(bad).to_string();
            assert!(err.starts_with("agg.toml: key `auth.re"), "{err}");
        }
    }

    #[test]
    fn tls_settings_are_checked_and_named() {
        let cfg = load(&["--tls-self-signed"], "").expect("valid");
        assert_eq!(cfg.tls.mode, TlsMode::SelfSigned { names: vec![] });
        let cfg = load(
            &[],
            "tls_self_signed = true\ntls_names = [\"fleet.example\"]",
        )
        .expect("valid");
        assert_eq!(
            cfg.tls.mode,
            TlsMode::SelfSigned {
                names: vec!["fleet.example".to_owned()]
            }
        );
        assert_eq!(Config::default().tls.mode, TlsMode::Off);

        let dir = tempfile::tempdir().expect("tempdir");
        let junk = dir.path().join("junk.pem");
        std::fs::write(&junk, "not a certificate").expect("write");
        let junk = junk.display().to_string();
        for (text, key, reason) in [
            ("tls_cert = \"/x/cert.pem\"", "tls_key", "tls_key is not"),
            ("tls_key = \"/x/key.pem\"", "tls_cert", "tls_cert is not"),
            (
                "tls_cert = \"/nonexistent/cert.pem\"\ntls_key = \"/x/key.pem\"",
                "tls_cert",
                "/nonexistent/cert.pem",
            ),
            (
                &format!("tls_cert = \"{junk}\"\ntls_key = \"{junk}\""),
                "tls_cert",
                "junk.pem",
            ),
            (
                "tls_client_ca = \"/x/ca.pem\"",
                "tls_client_ca",
                "needs TLS",
            ),
            (
                "tls_names = [\"a.example\"]",
                "tls_names",
                "tls_self_signed",
            ),
            (
                "tls_self_signed = true\ntls_names = [\"\"]",
                "tls_names",
                "not a host name",
            ),
            (
                "tls_self_signed = true\ntls_client_ca = \"/nonexistent/ca.pem\"",
                "tls_client_ca",
                "/nonexistent/ca.pem",
            ),
            (
                "tls_self_signed = true\ntls_cert = \"/x/c.pem\"\ntls_key = \"/x/k.pem\"",
                "tls_self_signed",
                "cannot be combined",
            ),
        ] {
            let err = load(&[], text).expect_err(text).to_string();
            assert!(
                err.contains(&format!("key `{key}`")) && err.contains(reason),
                "{err}"
            );
        }
    }
}
