//! The `[filesystems]` and `[network]` sections of the agent's config file:
//! which filesystems and network interfaces the system collector reports,
//! as include/exclude glob lists over the defaults in `filesystems` and
//! `network`. Kept beside the collectors they configure; `config` merges
//! them with the rest.

use serde::Deserialize;

use super::system::SystemConfig;

/// `[filesystems]`: which mounted filesystems to report. A list that is set
/// replaces its default; see deploy/agent.example.toml.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilesystemsFile {
    pub include_types: Option<Vec<String>>,
    pub exclude_types: Option<Vec<String>>,
    pub include_mounts: Option<Vec<String>>,
    pub exclude_mounts: Option<Vec<String>>,
}

/// `[network]`: which interfaces to report, by name glob.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkFile {
    pub include: Option<Vec<String>>,
    pub exclude: Option<Vec<String>>,
}

/// A config key, the patterns set there, and the list they replace.
type PatternList<'a> = (&'static str, Option<Vec<String>>, &'a mut Vec<String>);

/// The `[filesystems]` and `[network]` sections over their defaults. A
/// pattern must be non-empty.
pub fn system_config(
    fs: FilesystemsFile,
    net: NetworkFile,
) -> Result<SystemConfig, (&'static str, String)> {
    let mut config = SystemConfig::default();
    let lists: [PatternList; 6] = [
        (
            "filesystems.include_types",
            fs.include_types,
            &mut config.filesystems.types.include,
        ),
        (
            "filesystems.exclude_types",
            fs.exclude_types,
            &mut config.filesystems.types.exclude,
        ),
        (
            "filesystems.include_mounts",
            fs.include_mounts,
            &mut config.filesystems.mounts.include,
        ),
        (
            "filesystems.exclude_mounts",
            fs.exclude_mounts,
            &mut config.filesystems.mounts.exclude,
        ),
        (
            "network.include",
            net.include,
            &mut config.interfaces.include,
        ),
        (
            "network.exclude",
            net.exclude,
            &mut config.interfaces.exclude,
        ),
    ];
    for (key, value, target) in lists {
        if let Some(list) = value {
            if list.iter().any(|p| p.trim().is_empty()) {
                return Err((key, "patterns must not be empty".to_owned()));
            }
            *target = list;
        }
    }
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_lists_replace_defaults_and_empty_patterns_are_named() {
        let fs: FilesystemsFile = toml::from_str("exclude_types = [\"tmpfs\"]").expect("toml");
        let config = system_config(fs, NetworkFile::default()).expect("valid");
        assert_eq!(config.filesystems.types.exclude, ["tmpfs"]);
        assert_eq!(config.interfaces, SystemConfig::default().interfaces);
        let net: NetworkFile = toml::from_str("exclude = [\"\"]").expect("toml");
        let err = system_config(FilesystemsFile::default(), net).expect_err("empty");
        assert_eq!(err.0, "network.exclude");
    }
}
