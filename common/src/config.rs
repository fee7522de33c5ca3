//! Layered configuration, written once for both binaries: built-in
//! defaults, then the TOML file, then `FLEETWATCH_` environment variables,
//! then command-line flags. Every error names where the bad value came
//! from (the file, or the flag), the key and the reason.
//!
//! How the layers are merged, and why this way:
//!
//! - figment merges the file and the command line into one tree and
//!   deserializes it once into the binary's `FileConfig` (a serde struct with
//!   `deny_unknown_fields`), so no field is merged by hand. Each value keeps
//!   the [`figment::Metadata`] of the layer that set it: that is how
//!   [`Layers::origin`] names the file or the flag in an error, and how a
//!   serde error (unknown key, wrong type) becomes a [`ConfigError::Invalid`]
//!   with the key's path.
//! - The environment is read by clap (`#[arg(env = "FLEETWATCH_…")]`), which
//!   puts each variable beneath its flag: `--help` lists every variable
//!   beside its flag, secrets stay hidden there (`hide_env_values`), and a
//!   variable is parsed exactly like its flag (numbers, enums, booleans).
//!   figment's `Env` provider would guess types from the text and need a
//!   second list of names. The flags and the variables then form the top
//!   layer; the binary serializes its parsed `Args` (unset ones skipped).
//! - Defaults stay with the settings they belong to (`Default` impls and
//!   `unwrap_or` in each feature's config code); a key no layer set has the
//!   origin [`DEFAULT_ORIGIN`].

use std::path::{Path, PathBuf};

use figment::value::{Dict, Map, Value};
use figment::{Figment, Metadata, Profile, Provider, Source};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::pem;

/// The origin of a value no layer set.
pub const DEFAULT_ORIGIN: &str = "default";

/// Why a configuration cannot be used, naming where the bad value came from.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The file is not TOML at all (the message has the line and column).
    #[error("config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    /// A key with a value that cannot be used.
    #[error("{origin}: key `{key}`: {reason}")]
    Invalid {
        /// The config file's path, a flag such as `--interval`, or `default`.
        origin: String,
        /// The key's path as written in the file, such as `worker[0]`.
        key: String,
        reason: String,
    },
}

pub type Result<T, E = ConfigError> = std::result::Result<T, E>;

/// How the flags' layer names a key: the flag that sets it.
pub type FlagName = fn(&str) -> String;

/// `--` and the key with `-` for `_`: `max_filesystems` is set by
/// `--max-filesystems`.
pub fn flag_for_key(key: &str) -> String {
    format!("--{}", key.replace(['_', '.'], "-"))
}

/// The file and the command line, merged, each value knowing its layer.
#[derive(Debug)]
pub struct Layers {
    /// Both layers.
    merged: Figment,
    /// The file alone, for settings that look at each layer on its own.
    file: Figment,
    /// The file's path as errors show it, or `config` when there is none.
    file_origin: String,
}

impl Layers {
    /// Reads the TOML file at `path` (if any) under the flags' layer.
    /// `flags` serializes to the file's shape, leaving out what is unset;
    /// `flag_name` says which flag sets a key.
    pub fn load(path: Option<&Path>, flags: &impl Serialize, flag_name: FlagName) -> Result<Self> {
        match path {
            None => Self::from_toml(None, "", flags, flag_name),
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.to_owned(),
                    source,
                })?;
                Self::from_toml(Some(path), &text, flags, flag_name)
            }
        }
    }

    /// Like [`Layers::load`] with the file's text given; `path` is what
    /// errors call the file.
    pub fn from_toml(
        path: Option<&Path>,
        text: &str,
        flags: &impl Serialize,
        flag_name: FlagName,
    ) -> Result<Self> {
        let file = TomlFile::parse(path, text)?;
        let flags = FlagsLayer::new(flags, flag_name);
        let file = Figment::from(file);
        Ok(Self {
            merged: file.clone().merge(flags),
            file,
            file_origin: path.map_or_else(|| "config".to_owned(), |p| p.display().to_string()),
        })
    }

    /// The merged layers as `T`; an unknown key or a value of the wrong
    /// type is an error naming its layer and key.
    pub fn extract<T: DeserializeOwned>(&self) -> Result<T> {
        self.merged.extract().map_err(|e| self.error(e))
    }

    /// What the file alone says for `key`, if anything.
    pub fn file_value<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>> {
        if !self.file.contains(key) {
            return Ok(None);
        }
        self.file
            .extract_inner(key)
            .map(Some)
            .map_err(|e| self.error(e))
    }

    /// Where the value of `key` (a dotted path) came from: the file's
    /// path, the flag, or `default`.
    pub fn origin(&self, key: &str) -> String {
        match self.merged.find_metadata(key) {
            None => DEFAULT_ORIGIN.to_owned(),
            Some(metadata) => self.origin_of(metadata, &key.split('.').collect::<Vec<_>>()),
        }
    }

    /// The config file's path as errors show it, or `config`.
    pub fn file_origin(&self) -> &str {
        &self.file_origin
    }

    /// An error about `key`, naming where its value came from.
    pub fn invalid(&self, key: &str, reason: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            origin: self.origin(key),
            key: key.to_owned(),
            reason: reason.into(),
        }
    }

    /// An error about `key` in the file (for keys only the file has).
    pub fn invalid_in_file(&self, key: &str, reason: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            origin: self.file_origin.clone(),
            key: key.to_owned(),
            reason: reason.into(),
        }
    }

    fn origin_of(&self, metadata: &Metadata, path: &[&str]) -> String {
        match &metadata.source {
            Some(Source::File(file)) => file.display().to_string(),
            _ if metadata.name == FlagsLayer::NAME => metadata.interpolate(&Profile::Default, path),
            _ => self.file_origin.clone(),
        }
    }

    /// A figment error as ours: its first error, with the layer, the key's
    /// path and serde's reason.
    fn error(&self, error: figment::Error) -> ConfigError {
        let Some(error) = error.into_iter().next() else {
            return self.invalid_in_file("?", "invalid configuration");
        };
        let path: Vec<&str> = error.path.iter().map(String::as_str).collect();
        let origin = match &error.metadata {
            Some(metadata) => self.origin_of(metadata, &path),
            None => self.file_origin.clone(),
        };
        ConfigError::Invalid {
            origin,
            key: key_path(&error.path),
            reason: error.kind.to_string(),
        }
    }
}

/// A key's path as written in TOML: `alerts.webhooks[1].url`.
fn key_path(path: &[String]) -> String {
    let mut out = String::new();
    for part in path {
        if part.bytes().all(|b| b.is_ascii_digit()) && !out.is_empty() {
            out.push_str(&format!("[{part}]"));
        } else {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(part);
        }
    }
    if out.is_empty() {
        "(top level)".to_owned()
    } else {
        out
    }
}

/// The config file's layer: its text parsed once; values tagged with its
/// path.
struct TomlFile {
    path: Option<PathBuf>,
    dict: Dict,
}

impl TomlFile {
    fn parse(path: Option<&Path>, text: &str) -> Result<Self> {
        use figment::providers::Format;
        let dict =
            figment::providers::Toml::from_str::<Dict>(text).map_err(|e| ConfigError::Parse {
                path: path.map_or_else(|| PathBuf::from("config"), Path::to_owned),
                message: e.to_string(),
            })?;
        Ok(Self {
            path: path.map(Path::to_owned),
            dict,
        })
    }
}

impl Provider for TomlFile {
    fn metadata(&self) -> Metadata {
        match &self.path {
            Some(path) => Metadata::from("TOML file", path.as_path()),
            None => Metadata::named("TOML file"),
        }
    }

    fn data(&self) -> figment::Result<Map<Profile, Dict>> {
        Ok(Profile::Default.collect(self.dict.clone()))
    }
}

/// The command line's layer (flags and the environment variables clap read
/// for them); a value from it is named by its flag.
struct FlagsLayer {
    value: figment::Result<Value>,
    flag_name: FlagName,
}

impl FlagsLayer {
    const NAME: &'static str = "command line";

    fn new(flags: &impl Serialize, flag_name: FlagName) -> Self {
        Self {
            value: Value::serialize(flags),
            flag_name,
        }
    }
}

impl Provider for FlagsLayer {
    fn metadata(&self) -> Metadata {
        let flag_name = self.flag_name;
        Metadata::named(Self::NAME).interpolater(move |_, path| flag_name(&path.join(".")))
    }

    fn data(&self) -> figment::Result<Map<Profile, Dict>> {
        let value = self.value.clone()?;
        let dict = value
            .into_dict()
            .ok_or_else(|| figment::Error::from("the flags are not a table".to_owned()))?;
        Ok(Profile::Default.collect(dict))
    }
}

/// A certificate file and its private key file: both set or neither, and
/// both loadable now rather than at the first connection. `keys` names
/// them in the config (`("tls_cert", "tls_key")`).
pub fn cert_and_key(
    layers: &Layers,
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
    (cert_key, key_key): (&str, &str),
) -> Result<Option<(PathBuf, PathBuf)>> {
    match (cert, key) {
        (Some(cert), Some(key)) => {
            certificates(layers, cert_key, &cert)?;
            pem::load_key(&key).map_err(|e| layers.invalid(key_key, e.to_string()))?;
            Ok(Some((cert, key)))
        }
        (Some(_), None) => Err(ConfigError::Invalid {
            origin: layers.origin(cert_key),
            key: key_key.to_owned(),
            reason: format!("{cert_key} is set but {key_key} is not"),
        }),
        (None, Some(_)) => Err(ConfigError::Invalid {
            origin: layers.origin(key_key),
            key: cert_key.to_owned(),
            reason: format!("{key_key} is set but {cert_key} is not"),
        }),
        (None, None) => Ok(None),
    }
}

/// Checks that the PEM file `path`, the value of `key`, holds certificates.
pub fn certificates(layers: &Layers, key: &str, path: &Path) -> Result<()> {
    pem::load_certs(path)
        .map(drop)
        .map_err(|e| layers.invalid(key, e.to_string()))
}

/// A duration such as `1s`, `500ms`, `5m` or `1h 30m`; the error says
/// what was wrong with `text`.
pub fn parse_duration(text: &str) -> std::result::Result<std::time::Duration, String> {
    humantime::parse_duration(text.trim()).map_err(|e| format!("`{text}` is not a duration: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default, Serialize)]
    struct Flags {
        #[serde(skip_serializing_if = "Option::is_none")]
        interval: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        retries: Option<u32>,
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct File {
        interval: Option<String>,
        retries: Option<u32>,
        #[serde(default)]
        hooks: Vec<Hook>,
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Hook {
        url: String,
    }

    fn layers(text: &str, flags: &Flags) -> Result<Layers> {
        Layers::from_toml(Some(Path::new("a.toml")), text, flags, flag_for_key)
    }

    #[test]
    fn the_flag_wins_and_each_value_knows_its_layer() {
        let flags = Flags {
            interval: Some("1s".into()),
            ..Flags::default()
        };
        let l = layers(
            "interval = \"5s\"\nretries = 3\n[[hooks]]\nurl = \"x\"",
            &flags,
        )
        .expect("layers");
        let file: File = l.extract().expect("valid");
        assert_eq!(file.hooks[0].url, "x");
        assert_eq!(file.interval.as_deref(), Some("1s"));
        assert_eq!(file.retries, Some(3));
        assert_eq!(l.origin("interval"), "--interval");
        assert_eq!(l.origin("retries"), "a.toml");
        assert_eq!(l.origin("hooks"), "a.toml");
        assert_eq!(l.origin("timeout"), DEFAULT_ORIGIN);
        assert_eq!(
            l.file_value::<String>("interval").expect("ok"),
            Some("5s".into())
        );
        assert_eq!(
            l.invalid("retries", "too many").to_string(),
            "a.toml: key `retries`: too many"
        );
    }

    #[test]
    fn serde_errors_name_file_key_and_reason() {
        let unknown = layers("intervall = \"1s\"", &Flags::default())
            .and_then(|l| l.extract::<File>())
            .expect_err("unknown key")
            .to_string();
        assert!(
            unknown.starts_with("a.toml: key `intervall`: unknown field"),
            "{unknown}"
        );
        let wrong = layers("retries = \"many\"", &Flags::default())
            .and_then(|l| l.extract::<File>())
            .expect_err("wrong type")
            .to_string();
        assert!(
            wrong.starts_with("a.toml: key `retries`: invalid type"),
            "{wrong}"
        );
        let nested = layers(
            "[[hooks]]\nurl = \"x\"\n[[hooks]]\nuri = \"y\"",
            &Flags::default(),
        )
        .and_then(|l| l.extract::<File>())
        .expect_err("unknown nested key")
        .to_string();
        assert!(nested.contains("key `hooks[1].uri`"), "{nested}");
        let syntax = layers("interval = ", &Flags::default())
            .expect_err("not TOML")
            .to_string();
        assert!(syntax.starts_with("config file a.toml: "), "{syntax}");
    }

    #[test]
    fn a_missing_file_is_named() {
        let err = Layers::load(
            Some(Path::new("/nonexistent/a.toml")),
            &Flags::default(),
            flag_for_key,
        )
        .expect_err("missing")
        .to_string();
        assert!(err.contains("/nonexistent/a.toml"), "{err}");
    }
}
