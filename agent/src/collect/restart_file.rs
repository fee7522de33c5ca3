//! Restart counts kept on disk under the agent's state directory, so they
//! survive an agent restart (an upgrade, a reboot of the agent alone) and a
//! crash-loop alert does not resolve because the counter started again at
//! zero.
//!
//! The file, `restarts` in the state directory, holds one `GROUP COUNT`
//! line per worker group. It is replaced atomically (written beside, then
//! renamed) whenever a count changes; a missing or unreadable file starts
//! every group at zero, and a group no longer configured is dropped.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

/// File name inside the state directory.
pub const FILE_NAME: &str = "restarts";

pub struct RestartFile {
    path: PathBuf,
    saved: Vec<u64>,
}

/// Parses the file's lines into counts by group name; bad lines are skipped.
fn parse(text: &str) -> HashMap<&str, u64> {
    text.lines()
        .filter_map(|line| {
            let (name, count) = line.trim().split_once(' ')?;
            Some((name, count.trim().parse().ok()?))
        })
        .collect()
}

impl RestartFile {
    /// Opens the file in `state_dir` and returns the stored counts of
    /// `groups`, in their order (0 for a group not in the file).
    pub fn open(state_dir: &Path, groups: &[String]) -> (Self, Vec<u64>) {
        let path = state_dir.join(FILE_NAME);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) => {
                if e.kind() != std::io::ErrorKind::NotFound {
                    tracing::warn!(path = %path.display(), error = %e, "cannot read restart counts; starting from 0");
                }
                String::new()
            }
        };
        let stored = parse(&text);
        let counts: Vec<u64> = groups
            .iter()
            .map(|g| stored.get(g.as_str()).copied().unwrap_or(0))
            .collect();
        (
            Self {
                path,
                saved: counts.clone(),
            },
            counts,
        )
    }

    /// Writes the counts if they changed since the last write.
    pub fn save(&mut self, groups: &[String], counts: &[u64]) -> std::io::Result<()> {
        if counts == self.saved.as_slice() {
            return Ok(());
        }
        let mut text = String::new();
        for (name, count) in groups.iter().zip(counts) {
            text.push_str(&format!("{name} {count}\n"));
        }
        let tmp = self.path.with_extension("tmp");
        {
            let mut file = std::fs::File::create(&tmp)?;
            file.write_all(text.as_bytes())?;
            file.sync_data()?;
        }
        std::fs::rename(&tmp, &self.path)?;
        self.saved = counts.to_vec();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_survive_a_reopen() {
        let dir = tempfile::tempdir().expect("tempdir");
        let groups = vec!["web".to_owned(), "queue".to_owned()];
        let (mut file, counts) = RestartFile::open(dir.path(), &groups);
        assert_eq!(counts, [0, 0]);
        file.save(&groups, &[3, 7]).expect("save");
        let regrouped = vec!["queue".to_owned(), "new".to_owned()];
        let (_, counts) = RestartFile::open(dir.path(), &regrouped);
        assert_eq!(counts, [7, 0], "by name; unknown groups start at 0");
        std::fs::write(dir.path().join(FILE_NAME), "garbage\nweb x\nqueue 2\n").expect("write");
        let (_, counts) = RestartFile::open(dir.path(), &groups);
        assert_eq!(counts, [0, 2]);
    }
}
