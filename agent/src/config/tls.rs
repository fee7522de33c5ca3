//! The TLS keys of the agent's config (`ca_file`, `pin_sha256`,
//! `client_cert`, `client_key`), checked now rather than at the first
//! connection: files exist and parse, the pin is well formed, and nothing
//! TLS is set for a plain http:// aggregator.

use fleetwatch_common::config::{ConfigError, Layers, cert_and_key, certificates};

use super::file::FileConfig;
use crate::tls::{TlsSettings, Trust};

/// The TLS settings for `aggregator`: `None` for http://.
pub(super) fn settings(
    layers: &Layers,
    file: &FileConfig,
    aggregator: &str,
) -> Result<Option<TlsSettings>, ConfigError> {
    if !aggregator.starts_with("https://") {
        let set = [
            ("ca_file", file.ca_file.is_some()),
            ("pin_sha256", file.pin_sha256.is_some()),
            ("client_cert", file.client_cert.is_some()),
            ("client_key", file.client_key.is_some()),
        ];
        if let Some((key, _)) = set.into_iter().find(|(_, is_set)| *is_set) {
            return Err(layers.invalid(
                key,
                format!(
                    "only applies to TLS, but the aggregator URL `{aggregator}` ({}) is not https://",
                    layers.origin("aggregator")
                ),
            ));
        }
        return Ok(None);
    }

    let trust = match (&file.ca_file, &file.pin_sha256) {
        (Some(_), Some(_)) => {
            return Err(layers.invalid("pin_sha256", "set either ca_file or pin_sha256, not both"));
        }
        (Some(path), None) => {
            certificates(layers, "ca_file", path)?;
            Trust::CaFile(path.clone())
        }
        (None, Some(text)) => {
            Trust::Pin(crate::tls::parse_pin(text).map_err(|e| layers.invalid("pin_sha256", e))?)
        }
        (None, None) => Trust::PublicRoots,
    };
    let client = cert_and_key(
        layers,
        file.client_cert.clone(),
        file.client_key.clone(),
        ("client_cert", "client_key"),
    )?;
    let settings = TlsSettings { trust, client };
    // Catch a key that does not match its certificate now, not at connect.
    crate::tls::client_config(&settings)
        .map_err(|e| layers.invalid("client_key", e.to_string()))?;
    Ok(Some(settings))
}

#[cfg(test)]
mod tests {
    use super::super::tests::load;
    use super::*;

    #[test]
    fn tls_settings_are_checked_and_named() {
        let pin = "AB".repeat(32);
        let cfg = load(
            &[
                "--host-id",
                "h",
                "--aggregator",
                "https://agg:7400",
                "--pin-sha256",
                &pin,
            ],
            "",
        )
        .expect("valid");
        let tls = cfg.tls.expect("https means TLS");
        assert_eq!(tls.trust, Trust::Pin([0xab; 32]));
        let cfg = load(&["--host-id", "h", "--aggregator", "https://agg:7400"], "").expect("valid");
        assert_eq!(cfg.tls.map(|t| t.trust), Some(Trust::PublicRoots));

        let dir = tempfile::tempdir().expect("tempdir");
        let junk = dir.path().join("junk.pem");
        std::fs::write(&junk, "not a certificate").expect("write");
        let junk = junk.display().to_string();
        for (flags, key, reason) in [
            (vec!["--pin-sha256", "abc"], "pin_sha256", "64 hex digits"),
            (
                vec!["--ca-file", "/nonexistent/ca.pem"],
                "ca_file",
                "/nonexistent/ca.pem",
            ),
            (vec!["--ca-file", &junk], "ca_file", "junk.pem"),
            (
                vec!["--ca-file", &junk, "--pin-sha256", &pin],
                "pin_sha256",
                "not both",
            ),
            (
                vec!["--client-cert", &junk],
                "client_key",
                "client_key is not",
            ),
            (
                vec!["--client-key", &junk, "--client-cert", &junk],
                "client_cert",
                "junk.pem",
            ),
        ] {
            let mut all = vec!["--host-id", "h", "--aggregator", "https://agg:7400"];
            all.extend(flags);
            let err = load(&all, "").expect_err(key).to_string();
            assert!(
                err.contains(&format!("key `{key}`")) && err.contains(reason),
                "{err}"
            );
        }

        let err = load(
            &["--host-id", "h", "--aggregator", "http://agg:7400"],
            "ca_file = \"/etc/ca.pem\"",
        )
        .expect_err("TLS key for http://")
        .to_string();
        assert!(
            err.starts_with("agent.toml: key `ca_file`") && err.contains("not https://"),
            "{err}"
        );
    }
}
