//! Where this host's identity and state come from when the config does not
//! say: the host id from `/etc/machine-id`, the state directory from
//! systemd's `$STATE_DIRECTORY` or the usual places; and the alphabet a host
//! id may use.

use std::path::{Path, PathBuf};

/// `$STATE_DIRECTORY` (set by systemd's `StateDirectory=`; the first of
/// its list), else `/var/lib/fleetwatch-agent` if it exists, else
/// `./fleetwatch-agent-state` for a run by hand.
pub(super) fn default_state_dir() -> PathBuf {
    if let Some(dirs) = std::env::var_os("STATE_DIRECTORY")
        && let Some(first) = dirs.to_string_lossy().split(':').next()
        && !first.is_empty()
    {
        return PathBuf::from(first);
    }
    let system = Path::new("/var/lib/fleetwatch-agent");
    if system.is_dir() {
        return system.to_owned();
    }
    PathBuf::from("fleetwatch-agent-state")
}

/// The machine id, the host id when none is configured.
pub(super) fn read_machine_id() -> Result<String, String> {
    let text = std::fs::read_to_string(MACHINE_ID).map_err(|e| format!("{MACHINE_ID}: {e}"))?;
    Ok(text.trim().to_owned())
}

/// Where the default host id is read from.
pub(super) const MACHINE_ID: &str = "/etc/machine-id";

/// Host ids go into URLs and logs: keep them to a safe alphabet.
pub fn validate_host_id(id: &str) -> Result<(), String> {
    if id.is_empty() || id.len() > 128 {
        return Err("must be 1 to 128 characters".to_owned());
    }
    if !id
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
    {
        return Err(format!(
            "`{id}` may contain only letters, digits, `.`, `-` and `_`"
        ));
    }
    Ok(())
}
