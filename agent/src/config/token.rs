//! The agent token: `token`, or the contents of the file `token_file`
//! names. The command line (flags and environment) comes before the config
//! file, as a pair: an empty token file counts as unset (systemd hands one
//! over when no token was installed), so the file's token then applies. It
//! must be printable ASCII to travel in gRPC metadata.

use std::path::{Path, PathBuf};

use fleetwatch_common::config::{ConfigError, Layers};

use super::args::Args;

/// The token, if any layer sets one.
pub(super) fn token(layers: &Layers, args: &Args) -> Result<Option<String>, ConfigError> {
    let invalid = |origin: &str, key: &str, reason: String| ConfigError::Invalid {
        origin: origin.to_owned(),
        key: key.to_owned(),
        reason,
    };
    let read = |path: &Path, origin: &str| {
        std::fs::read_to_string(path).map_err(|e| {
            invalid(
                origin,
                "token_file",
                format!("cannot read {}: {e}", path.display()),
            )
        })
    };
    let file_origin = layers.file_origin();
    let file_token: Option<String> = layers.file_value("token")?;
    let file_token_file: Option<PathBuf> = layers.file_value("token_file")?;
    let levels = [
        (
            args.token.clone(),
            args.token_file.clone(),
            "--token",
            "--token-file",
        ),
        (file_token, file_token_file, file_origin, file_origin),
    ];
    let mut found = None;
    for (inline, path, inline_origin, path_origin) in levels {
        match (inline, path) {
            (Some(_), Some(_)) => {
                return Err(invalid(
                    inline_origin,
                    "token",
                    "set token or token_file, not both".to_owned(),
                ));
            }
            (Some(token), None) => found = Some((token, inline_origin, "token")),
            (None, Some(path)) => {
                let text = read(&path, path_origin)?;
                if !text.trim().is_empty() {
                    found = Some((text, path_origin, "token_file"));
                }
            }
            (None, None) => {}
        }
        if found.is_some() {
            break;
        }
    }
    let Some((token, origin, key)) = found else {
        return Ok(None);
    };
    let token = token.trim().to_owned();
    if token.is_empty() || !token.chars().all(|c| c.is_ascii_graphic()) {
        return Err(invalid(
            origin,
            key,
            "the token must be one word of printable ASCII, such as fwa_…".to_owned(),
        ));
    }
    Ok(Some(token))
}

#[cfg(test)]
mod tests {
    use super::super::tests::load;

    #[test]
    fn token_comes_from_the_config_or_a_file() {
        let cfg = load(&["--host-id", "h"], r#"token = " fwa_abc ""#).expect("valid");
        assert_eq!(cfg.token.as_deref(), Some("fwa_abc"));

        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("token");
        std::fs::write(&path, "fwa_from_file\n").expect("write");
        let path = path.to_str().expect("utf-8");
        let cfg = load(&["--host-id", "h", "--token-file", path], "").expect("valid");
        assert_eq!(cfg.token.as_deref(), Some("fwa_from_file"));

        let cfg = load(
            &["--host-id", "h", "--token-file", path],
            r#"token = "fwa_abc""#,
        )
        .expect("flags come before the file");
        assert_eq!(cfg.token.as_deref(), Some("fwa_from_file"));

        let err = load(
            &["--host-id", "h"],
            "token = \"fwa_abc\"\ntoken_file = \"/x\"",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("not both"), "{err}");

        // An empty token file (no token installed) leaves the file's token.
        let empty = dir.path().join("empty");
        std::fs::write(&empty, "\n").expect("write");
        let cfg = load(
            &[
                "--host-id",
                "h",
                "--token-file",
                empty.to_str().expect("utf-8"),
            ],
            r#"token = "fwa_inline""#,
        )
        .expect("valid");
        assert_eq!(cfg.token.as_deref(), Some("fwa_inline"));

        let missing = load(
            &["--host-id", "h", "--token-file", "/nonexistent/token"],
            "",
        )
        .unwrap_err()
        .to_string();
        assert!(
            missing.contains("token_file") && missing.contains("/nonexistent/token"),
            "{missing}"
        );

        assert!(load(&["--host-id", "h"], r#"token = "two words""#).is_err());
    }
}
