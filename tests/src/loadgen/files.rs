//! Sizes of the aggregator's database files: the database, its WAL and
//! `-shm`, and anything else the store keeps beside them in the same
//! directory (the load generator gives the aggregator a directory of its own).

use std::path::Path;

/// Bytes on disk of each part, at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DbFiles {
    pub db: u64,
    pub wal: u64,
    pub shm: u64,
    /// Every other file in the directory.
    pub other: u64,
}

impl DbFiles {
    /// Sizes of `db`, `db-wal`, `db-shm` and the rest of `db`'s directory.
    /// A missing file counts as 0 (the WAL comes and goes).
    pub fn read(db: &Path) -> Self {
        let size = |suffix: &str| {
            let mut name = db.as_os_str().to_owned();
            name.push(suffix);
            std::fs::metadata(&name).map_or(0, |m| m.len())
        };
        let (db_size, wal, shm) = (size(""), size("-wal"), size("-shm"));
        let all: u64 = db
            .parent()
            .and_then(|dir| std::fs::read_dir(dir).ok())
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| e.metadata().ok())
            .filter(|m| m.is_file())
            .map(|m| m.len())
            .sum();
        Self {
            db: db_size,
            wal,
            shm,
            other: all.saturating_sub(db_size + wal + shm),
        }
    }

    pub fn total(&self) -> u64 {
        self.db + self.wal + self.shm + self.other
    }
}

/// Bytes in a short human form: `812 B`, `4.0 KiB`, `12.3 MiB`, `1.27 GiB`.
pub fn human(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    let decimals = if value < 10.0 { 2 } else { 1 };
    format!("{value:.decimals$} {}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn reads_each_file_and_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("load.db");
        assert_eq!(DbFiles::read(&db), DbFiles::default());
        std::fs::write(&db, vec![0; 4096]).unwrap();
        std::fs::write(dir.path().join("load.db-wal"), vec![0; 100]).unwrap();
        std::fs::write(dir.path().join("load.db-shm"), vec![0; 32]).unwrap();
        std::fs::write(dir.path().join("cert.pem"), vec![0; 7]).unwrap();
        let files = DbFiles::read(&db);
        assert_eq!(
            files,
            DbFiles {
                db: 4096,
                wal: 100,
                shm: 32,
                other: 7
            }
        );
        assert_eq!(files.total(), 4235);
    }

    #[test]
    fn human_sizes() {
        assert_eq!(human(812), "812 B");
        assert_eq!(human(4096), "4.00 KiB");
        assert_eq!(human(12_900_000), "12.3 MiB");
        assert_eq!(human(1_363_000_000), "1.27 GiB");
    }
}
