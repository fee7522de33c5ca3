//! The `[storage]` section of the aggregator's config: how long each tier
//! of history is kept and how durable a commit is.
//!
//! ```toml
//! retention = "48h"          # raw samples (top-level key, flag --retention)
//! [storage]
//! retention_1m = "30d"       # 1-minute rollups
//! retention_1h = "400d"      # 1-hour rollups
//! durability = "full"        # or "normal": faster, but a power loss can lose acked samples
//! ```

use std::time::Duration;

use serde::Deserialize;

use super::rollup::Retention;
use super::sqlite::{Durability, SqliteOptions};

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageFileConfig {
    pub retention_1m: Option<String>,
    pub retention_1h: Option<String>,
    pub durability: Option<Durability>,
}

impl StorageFileConfig {
    /// The store's options, with `raw` as the raw tier's retention. The
    /// error names the key.
    pub fn build(&self, raw: Duration) -> Result<SqliteOptions, (String, String)> {
        let defaults = Retention::default();
        let parse = |key: &str, text: &Option<String>, default: Duration| match text {
            None => Ok(default),
            Some(text) => {
                let d = humantime::parse_duration(text).map_err(|e| {
                    (
                        format!("storage.{key}"),
                        format!("`{text}` is not a duration: {e}"),
                    )
                })?;
                if d < Duration::from_secs(3600) {
                    return Err((format!("storage.{key}"), "must be at least 1h".to_owned()));
                }
                Ok(d)
            }
        };
        Ok(SqliteOptions {
            durability: self.durability.unwrap_or_default(),
            retention: Retention {
                raw,
                minute: parse("retention_1m", &self.retention_1m, defaults.minute)?,
                hour: parse("retention_1h", &self.retention_1h, defaults.hour)?,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_bad_values() {
        let day = Duration::from_secs(86_400);
        let options = StorageFileConfig::default().build(2 * day).unwrap();
        assert_eq!(options.retention.raw, 2 * day);
        assert_eq!(options.retention.minute, 30 * day);
        assert_eq!(options.retention.hour, 400 * day);
        assert_eq!(options.durability, Durability::Full);
        let bad: StorageFileConfig = toml::from_str("retention_1m = \"soon\"").unwrap();
        assert_eq!(bad.build(day).unwrap_err().0, "storage.retention_1m");
        let short: StorageFileConfig = toml::from_str("retention_1h = \"5m\"").unwrap();
        assert!(short.build(day).unwrap_err().1.contains("at least 1h"));
        assert!(toml::from_str::<StorageFileConfig>("durability = \"maybe\"").is_err());
        assert!(toml::from_str::<StorageFileConfig>("colour = 1").is_err());
    }
}
