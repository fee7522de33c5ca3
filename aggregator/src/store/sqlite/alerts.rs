//! [`AlertStore`] on SQLite: the `alerts` and `silences` tables.

use sqlx::Row;
use sqlx::sqlite::SqliteRow;

use super::SqliteStore;
use crate::model::{AlertState, Severity, Silence, TimestampMs};
use crate::store::alerts::{AlertChange, AlertFilter, AlertRecord, AlertStore};
use crate::store::{Result, StoreError};

fn severity_str(s: Severity) -> &'static str {
    match s {
        Severity::Warning => "warning",
        Severity::Critical => "critical",
    }
}

fn parse_severity(s: &str) -> Result<Severity> {
    match s {
        "warning" => Ok(Severity::Warning),
        "critical" => Ok(Severity::Critical),
        other => Err(StoreError::Corrupt {
            table: "alerts",
            reason: format!("severity `{other}`"),
        }),
    }
}

fn record_from_row(r: &SqliteRow) -> Result<AlertRecord> {
    let state: &str = r.try_get("state")?;
    Ok(AlertRecord {
        id: r.try_get("id")?,
        rule: r.try_get("rule")?,
        host_id: r.try_get("host_id")?,
        scope: r.try_get("scope")?,
        severity: parse_severity(r.try_get("severity")?)?,
        state: if state == "resolved" {
            AlertState::Resolved
        } else {
            AlertState::Firing
        },
        value: r.try_get("value")?,
        threshold: r.try_get("threshold")?,
        peak: r.try_get("peak")?,
        started_at_ms: r.try_get("started_at_ms")?,
        fired_at_ms: r.try_get("fired_at_ms")?,
        ended_at_ms: r.try_get("ended_at_ms")?,
        silenced: r.try_get("silenced")?,
        message: r.try_get("message")?,
    })
}

/// Silence ids are u64 in memory and INTEGER in SQLite.
fn silence_id(id: u64) -> i64 {
    i64::try_from(id).unwrap_or(i64::MAX)
}

#[async_trait::async_trait]
impl AlertStore for SqliteStore {
    async fn open_alert(&self, c: &AlertChange<'_>) -> Result<i64> {
        Ok(sqlx::query_scalar(
            "INSERT INTO alerts (rule, host_id, scope, severity, state, value, threshold,
                peak, started_at_ms, fired_at_ms, ended_at_ms, silenced, message)
             VALUES (?, ?, ?, ?, 'firing', ?, ?, ?, ?, ?, NULL, ?, ?)
             ON CONFLICT (rule, host_id, scope) WHERE ended_at_ms IS NULL DO UPDATE SET
                severity = excluded.severity, value = excluded.value,
                threshold = excluded.threshold, peak = excluded.peak,
                message = excluded.message, silenced = excluded.silenced
             RETURNING id",
        )
        .bind(c.rule)
        .bind(c.host_id)
        .bind(c.scope)
        .bind(severity_str(c.severity))
        .bind(c.value)
        .bind(c.threshold)
        .bind(c.peak)
        .bind(c.started_at_ms)
        .bind(c.at_ms)
        .bind(c.silenced)
        .bind(c.message)
        .fetch_one(self.pool())
        .await?)
    }

    async fn update_alert(&self, c: &AlertChange<'_>) -> Result<Option<i64>> {
        Ok(sqlx::query_scalar(
            "UPDATE alerts SET severity = ?, value = ?, threshold = ?, peak = ?,
                message = ?, silenced = ?
             WHERE rule = ? AND host_id = ? AND scope = ? AND ended_at_ms IS NULL
             RETURNING id",
        )
        .bind(severity_str(c.severity))
        .bind(c.value)
        .bind(c.threshold)
        .bind(c.peak)
        .bind(c.message)
        .bind(c.silenced)
        .bind(c.rule)
        .bind(c.host_id)
        .bind(c.scope)
        .fetch_optional(self.pool())
        .await?)
    }

    async fn resolve_alert(&self, c: &AlertChange<'_>) -> Result<Option<i64>> {
        Ok(sqlx::query_scalar(
            "UPDATE alerts SET state = 'resolved', ended_at_ms = ?, value = ?, peak = ?,
                message = ?
             WHERE rule = ? AND host_id = ? AND scope = ? AND ended_at_ms IS NULL
             RETURNING id",
        )
        .bind(c.at_ms)
        .bind(c.value)
        .bind(c.peak)
        .bind(c.message)
        .bind(c.rule)
        .bind(c.host_id)
        .bind(c.scope)
        .fetch_optional(self.pool())
        .await?)
    }

    async fn open_alerts(&self) -> Result<Vec<AlertRecord>> {
        let rows = sqlx::query("SELECT * FROM alerts WHERE ended_at_ms IS NULL")
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(record_from_row).collect()
    }

    async fn alerts(&self, filter: &AlertFilter) -> Result<Vec<AlertRecord>> {
        let state = filter.state.map(|s| match s {
            AlertState::Resolved => "resolved",
            _ => "firing",
        });
        let rows = sqlx::query(
            "SELECT * FROM alerts
             WHERE (?1 IS NULL OR state = ?1) AND (?2 IS NULL OR host_id = ?2)
                AND (?3 IS NULL OR severity = ?3)
             ORDER BY fired_at_ms DESC, id DESC LIMIT ?4",
        )
        .bind(state)
        .bind(filter.host.as_deref())
        .bind(filter.severity.map(severity_str))
        .bind(filter.limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(record_from_row).collect()
    }

    async fn prune_resolved(&self, before_ms: TimestampMs) -> Result<u64> {
        Ok(
            sqlx::query("DELETE FROM alerts WHERE ended_at_ms IS NOT NULL AND ended_at_ms < ?")
                .bind(before_ms)
                .execute(self.pool())
                .await?
                .rows_affected(),
        )
    }

    async fn save_silence(&self, s: &Silence, now_ms: TimestampMs) -> Result<()> {
        sqlx::query(
            "INSERT OR REPLACE INTO silences (id, rule, host, pool, expires_at_ms, comment,
                created_at_ms) VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(silence_id(s.id))
        .bind(s.rule.as_deref())
        .bind(s.host.as_deref())
        .bind(s.pool.as_deref())
        .bind(s.expires_at_ms)
        .bind(&s.comment)
        .bind(now_ms)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    async fn delete_silence(&self, id: u64) -> Result<bool> {
        Ok(sqlx::query("DELETE FROM silences WHERE id = ?")
            .bind(silence_id(id))
            .execute(self.pool())
            .await?
            .rows_affected()
            > 0)
    }

    async fn silences(&self, now_ms: TimestampMs) -> Result<Vec<Silence>> {
        let rows = sqlx::query("SELECT * FROM silences WHERE expires_at_ms > ? ORDER BY id")
            .bind(now_ms)
            .fetch_all(self.pool())
            .await?;
        rows.iter()
            .map(|r| {
                Ok(Silence {
                    id: u64::try_from(r.try_get::<i64, _>("id")?).unwrap_or(0),
                    rule: r.try_get("rule")?,
                    host: r.try_get("host")?,
                    pool: r.try_get("pool")?,
                    expires_at_ms: r.try_get("expires_at_ms")?,
                    comment: r.try_get("comment")?,
                })
            })
            .collect()
    }
}
