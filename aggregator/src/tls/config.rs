//! The `tls_*` keys of the aggregator's config (top-level keys, and flags),
//! checked into a [`TlsConfig`]: certificate and key files exist and parse
//! now rather than at the first connection, a self-signed certificate is
//! not combined with files, and mutual TLS needs TLS.

use std::path::PathBuf;

use fleetwatch_common::config::{ConfigError, Layers, cert_and_key, certificates};

use super::{TlsConfig, TlsMode};

/// The `tls_*` keys as the layers merged them.
#[derive(Debug, Default)]
pub struct TlsKeys {
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub tls_self_signed: Option<bool>,
    /// Extra names for the self-signed certificate (file only).
    pub tls_names: Vec<String>,
    pub tls_client_ca: Option<PathBuf>,
}

impl TlsKeys {
    /// The TLS settings in force; an error names the key and its layer.
    pub fn build(self, layers: &Layers) -> Result<TlsConfig, ConfigError> {
        let self_signed = self.tls_self_signed == Some(true);
        if self_signed && self.tls_cert.is_some() && self.tls_key.is_some() {
            return Err(layers.invalid(
                "tls_self_signed",
                "cannot be combined with tls_cert/tls_key",
            ));
        }
        let mode = match cert_and_key(layers, self.tls_cert, self.tls_key, ("tls_cert", "tls_key"))?
        {
            Some((cert, key)) => TlsMode::Files { cert, key },
            None if self_signed => TlsMode::SelfSigned {
                names: self.tls_names.clone(),
            },
            None => TlsMode::Off,
        };
        if let Some(name) = self
            .tls_names
            .iter()
            .find(|n| n.trim().is_empty() || n.contains(char::is_whitespace))
        {
            return Err(layers.invalid(
                "tls_names",
                format!("`{name}` is not a host name or address"),
            ));
        }
        if !self.tls_names.is_empty() && !matches!(mode, TlsMode::SelfSigned { .. }) {
            return Err(layers.invalid("tls_names", "only applies with tls_self_signed = true"));
        }
        let client_ca = match self.tls_client_ca {
            None => None,
            Some(path) => {
                if mode == TlsMode::Off {
                    return Err(layers.invalid(
                        "tls_client_ca",
                        "needs TLS: set tls_cert and tls_key, or tls_self_signed",
                    ));
                }
                certificates(layers, "tls_client_ca", &path)?;
                Some(path)
            }
        };
        Ok(TlsConfig { mode, client_ca })
    }
}
