//! [`GapStore`] on SQLite: the `gaps` table, keyed by host first.

use sqlx::Row;

use super::SqliteStore;
use crate::model::TimestampMs;
use crate::store::Result;
use crate::store::gaps::{Gap, GapStore};

#[async_trait::async_trait]
impl GapStore for SqliteStore {
    async fn insert_gaps(&self, gaps: &[Gap]) -> Result<u64> {
        if gaps.is_empty() {
            return Ok(0);
        }
        let mut tx = self.pool().begin().await?;
        let mut new = 0;
        for gap in gaps {
            new += sqlx::query(
                "INSERT INTO gaps (host_id, from_ms, to_ms, samples, reported_ms)
                 VALUES (?, ?, ?, ?, ?)
                 ON CONFLICT (host_id, from_ms, to_ms) DO NOTHING",
            )
            .bind(&gap.host_id)
            .bind(gap.from_ms)
            .bind(gap.to_ms)
            .bind(i64::try_from(gap.samples).unwrap_or(i64::MAX))
            .bind(gap.reported_ms)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        }
        tx.commit().await?;
        Ok(new)
    }

    async fn gaps(
        &self,
        host_id: Option<&str>,
        from: TimestampMs,
        to: TimestampMs,
    ) -> Result<Vec<Gap>> {
        let rows = sqlx::query(
            "SELECT host_id, from_ms, to_ms, samples, reported_ms FROM gaps
             WHERE (?1 IS NULL OR host_id = ?1) AND to_ms >= ?2 AND from_ms <= ?3
             ORDER BY from_ms, host_id, to_ms",
        )
        .bind(host_id)
        .bind(from)
        .bind(to)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|row| {
                let samples: i64 = row.try_get("samples")?;
                Ok(Gap {
                    host_id: row.try_get("host_id")?,
                    from_ms: row.try_get("from_ms")?,
                    to_ms: row.try_get("to_ms")?,
                    samples: u64::try_from(samples).unwrap_or(0),
                    reported_ms: row.try_get("reported_ms")?,
                })
            })
            .collect()
    }
}
