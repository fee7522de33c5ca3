//! The aggregator's configuration: built-in defaults, then a TOML file, then
//! `FLEETWATCH_` environment variables, then command-line flags.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Parser;
use fleetwatch_common::config::pick;
use serde::Deserialize;

use crate::alerts::{AlertsConfig, Rule, builtin_rules};
use crate::auth::policy::{
    AuthConfig, AuthFileConfig, MAX_SESSION_TTL, MIN_SESSION_TTL, ReadPolicy,
};
use crate::tls::{TlsConfig, TlsMode};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{origin}: key `{key}`: {reason}")]
    Invalid {
        origin: String,
        key: String,
        reason: String,
    },
}

/// The flags that configure a run: the top layer of the configuration.
/// `crate::cli::Cli` flattens them into the whole command line; they parse
/// on their own too (tests do).
#[derive(Debug, Default, Parser)]
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
    pub config: Option<PathBuf>,

    /// Address the gRPC ingest service listens on [default: 127.0.0.1:7400].
    #[arg(long, env = "FLEETWATCH_GRPC_LISTEN", value_name = "ADDR")]
    pub grpc_listen: Option<String>,

    /// Address the HTTP API and dashboard listen on [default: 127.0.0.1:7401].
    #[arg(long, env = "FLEETWATCH_HTTP_LISTEN", value_name = "ADDR")]
    pub http_listen: Option<String>,

    /// SQLite database file, created if missing [default: fleetwatch.db].
    #[arg(long, env = "FLEETWATCH_DB", value_name = "PATH", global = true)]
    pub db: Option<PathBuf>,

    /// How long raw samples are kept, such as 48h or 7d [default: 48h]; rollups are kept longer ([storage] in the config file).
    #[arg(long, env = "FLEETWATCH_RETENTION", value_name = "DURATION")]
    pub retention: Option<String>,

    /// TLS certificate chain (PEM) for both listeners; needs --tls-key.
    #[arg(long, env = "FLEETWATCH_TLS_CERT", value_name = "FILE")]
    pub tls_cert: Option<PathBuf>,

    /// Private key (PEM) of --tls-cert.
    #[arg(long, env = "FLEETWATCH_TLS_KEY", value_name = "FILE")]
    pub tls_key: Option<PathBuf>,

    /// Serve TLS with a self-signed certificate generated on first start in
    /// `tls/` beside the database; its fingerprint is logged for agents to pin.
    #[arg(long, env = "FLEETWATCH_TLS_SELF_SIGNED")]
    pub tls_self_signed: bool,

    /// CA (PEM) that agents' client certificates must chain to (mutual TLS
    /// on the gRPC listener).
    #[arg(long, env = "FLEETWATCH_TLS_CLIENT_CA", value_name = "FILE")]
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
    pub agent_token: Option<String>,
    /// Whether reading the dashboard, REST API and WebSocket needs a login:
    /// `auto` (open on a loopback listener, login otherwise), `login` or
    /// `open`. Changing anything always needs an admin [default: auto].
    #[arg(long, env = "FLEETWATCH_READ_AUTH", value_name = "POLICY", value_enum)]
    pub read_auth: Option<ReadPolicy>,
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
        if self.tls.mode == TlsMode::Off {
            "http"
        } else {
            "https"
        }
    }

    pub fn load(args: &Args) -> Result<Self, ConfigError> {
        let (file, origin) = match &args.config {
            Some(path) => (read_file(path)?, path.display().to_string()),
            None => (FileConfig::default(), "config".to_owned()),
        };
        Self::merge(args, file, &origin)
    }

    fn merge(args: &Args, file: FileConfig, file_origin: &str) -> Result<Self, ConfigError> {
        let defaults = Self::default();
        let tls = tls_config(args, &file, file_origin)?;
        let auth = auth_config(args, &file.auth, file_origin)?;
        let addr = |value: Option<(String, String)>, key: &str, default: SocketAddr| {
            value.map_or(Ok(default), |(text, origin)| {
                text.parse::<SocketAddr>()
                    .map_err(|e| ConfigError::Invalid {
                        origin,
                        key: key.to_owned(),
                        reason: format!("`{text}` is not an address like 0.0.0.0:7400: {e}"),
                    })
            })
        };
        let grpc_listen = addr(
            pick(
                &args.grpc_listen,
                &file.grpc_listen,
                "--grpc-listen",
                file_origin,
            ),
            "grpc_listen",
            defaults.grpc_listen,
        )?;
        let http_listen = addr(
            pick(
                &args.http_listen,
                &file.http_listen,
                "--http-listen",
                file_origin,
            ),
            "http_listen",
            defaults.http_listen,
        )?;
        let retention = match pick(&args.retention, &file.retention, "--retention", file_origin) {
            None => defaults.retention,
            Some((text, origin)) => {
                let d = humantime::parse_duration(&text).map_err(|e| ConfigError::Invalid {
                    origin: origin.clone(),
                    key: "retention".to_owned(),
                    reason: format!("`{text}` is not a duration: {e}"),
                })?;
                if d < Duration::from_secs(60) {
                    return Err(ConfigError::Invalid {
                        origin,
                        key: "retention".to_owned(),
                        reason: "must be at least 1m".to_owned(),
                    });
                }
                d
            }
        };
        let storage =
            file.storage
                .build(retention)
                .map_err(|(key, reason)| ConfigError::Invalid {
                    origin: file_origin.to_owned(),
                    key,
                    reason,
                })?;
        let limits = file
            .limits
            .build()
            .map_err(|(key, reason)| ConfigError::Invalid {
                origin: file_origin.to_owned(),
                key,
                reason,
            })?;
        let db = args.db.clone().or(file.db).unwrap_or(defaults.db);
        if db.as_os_str().is_empty() {
            return Err(ConfigError::Invalid {
                origin: file_origin.to_owned(),
                key: "db".to_owned(),
                reason: "is empty".to_owned(),
            });
        }
        let rules = file.alerts.build().map_err(|e| ConfigError::Invalid {
            origin: file_origin.to_owned(),
            key: "alerts".to_owned(),
            reason: e.to_string(),
        })?;
        let notify_err = |e: crate::alerts::notify::NotifyConfigError| ConfigError::Invalid {
            origin: file_origin.to_owned(),
            key: "alerts".to_owned(),
            reason: e.to_string(),
        };
        crate::alerts::notify::validate_webhooks(&file.alerts.webhooks).map_err(notify_err)?;
        file.alerts.notify.validate().map_err(notify_err)?;
        if let Some(url) = &file.public_url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return Err(ConfigError::Invalid {
                origin: file_origin.to_owned(),
                key: "public_url".to_owned(),
                reason: format!("`{url}` must start with http:// or https://"),
            });
        }
        let agent_token = match pick(
            &args.agent_token,
            &file.agent_token,
            "--agent-token",
            file_origin,
        ) {
            None => None,
            Some((token, origin)) => {
                let token = token.trim().to_owned();
                if !token.starts_with(crate::auth::agents::PREFIX)
                    || token.len() < crate::auth::agents::PREFIX.len() + 32
                    || !token.chars().all(|c| c.is_ascii_graphic())
                {
                    return Err(ConfigError::Invalid {
                        origin,
                        key: "agent_token".to_owned(),
                        reason: "must be `fwa_` and at least 32 more printable characters, \
                                 such as fwa_$(openssl rand -hex 32)"
                            .to_owned(),
                    });
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

/// The `tls_*` settings, checked: the files must exist and parse now
/// rather than at the first connection.
fn tls_config(args: &Args, file: &FileConfig, file_origin: &str) -> Result<TlsConfig, ConfigError> {
    let invalid = |origin: &str, key: &str, reason: String| ConfigError::Invalid {
        origin: origin.to_owned(),
        key: key.to_owned(),
        reason,
    };
    let cert = pick(&args.tls_cert, &file.tls_cert, "--tls-cert", file_origin);
    let key = pick(&args.tls_key, &file.tls_key, "--tls-key", file_origin);
    let client_ca = pick(
        &args.tls_client_ca,
        &file.tls_client_ca,
        "--tls-client-ca",
        file_origin,
    );
    let self_signed = args.tls_self_signed || file.tls_self_signed == Some(true);
    let mode = match (cert, key) {
        (Some((cert, cert_origin)), Some((key, key_origin))) => {
            if self_signed {
                return Err(invalid(
                    file_origin,
                    "tls_self_signed",
                    "cannot be combined with tls_cert/tls_key".to_owned(),
                ));
            }
            crate::tls::load_certs(&cert)
                .map_err(|e| invalid(&cert_origin, "tls_cert", e.to_string()))?;
            crate::tls::load_key(&key)
                .map_err(|e| invalid(&key_origin, "tls_key", e.to_string()))?;
            TlsMode::Files { cert, key }
        }
        (Some((_, origin)), None) => {
            return Err(invalid(
                &origin,
                "tls_key",
                "tls_cert is set but tls_key is not".to_owned(),
            ));
        }
        (None, Some((_, origin))) => {
            return Err(invalid(
                &origin,
                "tls_cert",
                "tls_key is set but tls_cert is not".to_owned(),
            ));
        }
        (None, None) if self_signed => TlsMode::SelfSigned {
            names: file.tls_names.clone(),
        },
        (None, None) => TlsMode::Off,
    };
    if let Some(name) = file
        .tls_names
        .iter()
        .find(|n| n.trim().is_empty() || n.contains(char::is_whitespace))
    {
        return Err(invalid(
            file_origin,
            "tls_names",
            format!("`{name}` is not a host name or address"),
        ));
    }
    if !file.tls_names.is_empty() && !matches!(mode, TlsMode::SelfSigned { .. }) {
        return Err(invalid(
            file_origin,
            "tls_names",
            "only applies with tls_self_signed = true".to_owned(),
        ));
    }
    let client_ca = match client_ca {
        None => None,
        Some((path, origin)) => {
            if mode == TlsMode::Off {
                return Err(invalid(
                    &origin,
                    "tls_client_ca",
                    "needs TLS: set tls_cert and tls_key, or tls_self_signed".to_owned(),
                ));
            }
            crate::tls::load_certs(&path)
                .map_err(|e| invalid(&origin, "tls_client_ca", e.to_string()))?;
            Some(path)
        }
    };
    Ok(TlsConfig { mode, client_ca })
}

/// The `[auth]` section and `--read-auth`, checked.
fn auth_config(
    args: &Args,
    file: &AuthFileConfig,
    file_origin: &str,
) -> Result<AuthConfig, ConfigError> {
    let defaults = AuthConfig::default();
    let read = args.read_auth.or(file.read).unwrap_or(defaults.read);
    let session_ttl = match &file.session_ttl {
        None => defaults.session_ttl,
        Some(text) => {
            let invalid = |reason: String| ConfigError::Invalid {
                origin: file_origin.to_owned(),
                key: "auth.session_ttl".to_owned(),
                reason,
            };
            let d = humantime::parse_duration(text)
                .map_err(|e| invalid(format!("`{text}` is not a duration: {e}")))?;
            if !(MIN_SESSION_TTL..=MAX_SESSION_TTL).contains(&d) {
                return Err(invalid(format!(
                    "`{text}` must be from {} to {}",
                    humantime::format_duration(MIN_SESSION_TTL),
                    humantime::format_duration(MAX_SESSION_TTL)
                )));
            }
            d
        }
    };
    Ok(AuthConfig { read, session_ttl })
}

fn read_file(path: &Path) -> Result<FileConfig, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    toml::from_str(&text).map_err(|e| ConfigError::Parse {
        path: path.to_owned(),
        message: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Args {
        Args::try_parse_from(std::iter::once("fleetwatch-aggregator").chain(list.iter().copied()))
            .expect("args")
    }

    #[test]
    fn flags_override_file_and_defaults_fill_in() {
        let file: FileConfig =
            toml::from_str("grpc_listen = \"0.0.0.0:9000\"\nretention = \"48h\"").expect("toml");
        let cfg = Config::merge(&args(&["--grpc-listen", "127.0.0.1:0"]), file, "agg.toml")
            .expect("valid");
        assert_eq!(cfg.grpc_listen, "127.0.0.1:0".parse().expect("addr"));
        assert_eq!(cfg.http_listen, Config::default().http_listen);
        assert_eq!(cfg.retention, Duration::from_secs(48 * 3600));
    }

    #[test]
    fn alert_rules_are_built_and_bad_ones_named() {
        let file: FileConfig =
            toml::from_str("[alerts.defaults.memory]\nenabled = false\n").expect("toml");
        let cfg = Config::merge(&args(&[]), file, "agg.toml").expect("valid");
        assert!(cfg.rules.iter().any(|r| r.name == "cpu"));
        assert!(!cfg.rules.iter().any(|r| r.name == "memory"));

        let file: FileConfig = toml::from_str(
            "[[alerts.rules]]\nname = \"hot\"\nmetric = \"cpu_percent\"\ncomparison = \">=\"\nwarning = 99\ncritical = 90\n",
        )
        .expect("toml");
        let err = Config::merge(&args(&[]), file, "agg.toml")
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
        ] {
            let file: FileConfig = toml::from_str(text).expect("toml");
            let err = Config::merge(&args(&[]), file, "agg.toml")
                .expect_err(text)
                .to_string();
            assert!(err.starts_with("agg.toml: key `"), "{err}");
            assert!(err.contains(key), "{err}");
        }
        let err = toml::from_str::<FileConfig>("grpc_port = 1").expect_err("unknown key");
        assert!(err.to_string().contains("grpc_port"));
    }

    #[test]
    fn auth_section_and_read_flag() {
        let cfg = Config::merge(&args(&[]), FileConfig::default(), "agg.toml").expect("valid");
        assert_eq!(cfg.auth, AuthConfig::default());
        let file: FileConfig =
            toml::from_str("[auth]\nread = \"login\"\nsession_ttl = \"30m\"").expect("toml");
        let cfg = Config::merge(&args(&[]), file, "agg.toml").expect("valid");
        assert_eq!(cfg.auth.read, ReadPolicy::Login);
        assert_eq!(cfg.auth.session_ttl, Duration::from_secs(1800));
        let file: FileConfig = toml::from_str("[auth]\nread = \"login\"").expect("toml");
        let cfg = Config::merge(&args(&["--read-auth", "open"]), file, "agg.toml").expect("valid");
        assert_eq!(cfg.auth.read, ReadPolicy::Open, "the flag wins");

        let file: FileConfig = toml::from_str("[auth]\nsession_ttl = \"0s\"").expect("toml");
        let err = Config::merge(&args(&[]), file, "agg.toml")
            .expect_err("zero ttl")
            .to_string();
        assert!(err.contains("key `auth.session_ttl`"), "{err}");
        for bad in ["[auth]\nread = \"maybe\"", "[auth]\nreed = \"open\""] {
            assert!(toml::from_str::<FileConfig>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn tls_settings_are_checked_and_named() {
        let cfg = Config::merge(
            &args(&["--tls-self-signed"]),
            FileConfig::default(),
            "agg.toml",
        )
        .expect("valid");
        assert_eq!(cfg.tls.mode, TlsMode::SelfSigned { names: vec![] });
        let file: FileConfig =
            toml::from_str("tls_self_signed = true\ntls_names = [\"fleet.example\"]")
                .expect("toml");
        let cfg = Config::merge(&args(&[]), file, "agg.toml").expect("valid");
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
        ] {
            let file: FileConfig = toml::from_str(text).expect("toml");
            let err = Config::merge(&args(&[]), file, "agg.toml")
                .expect_err(text)
                .to_string();
            assert!(
                err.contains(&format!("key `{key}`")) && err.contains(reason),
                "{err}"
            );
        }
    }
}
