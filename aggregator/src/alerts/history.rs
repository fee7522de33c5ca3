//! Alert history in SQLite: each firing of an alert instance is a row,
//! updated when it changes severity and closed when it resolves; silences
//! are kept beside it. Both survive a restart of the aggregator.

use serde::Serialize;
use sqlx::sqlite::SqliteRow;
use sqlx::{Row, SqlitePool};

use super::instance::{AlertInstance, AlertState, Transition};
use super::rules::Severity;
use super::silence::Silence;
use crate::model::TimestampMs;
use crate::store::{Result, StoreError};

/// One row of alert history, as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AlertRecord {
    pub id: i64,
    pub rule: String,
    pub host_id: String,
    pub scope: String,
    pub severity: Severity,
    pub state: AlertState,
    pub value: f64,
    pub threshold: f64,
    pub peak: f64,
    pub started_at_ms: TimestampMs,
    pub fired_at_ms: TimestampMs,
    pub ended_at_ms: Option<TimestampMs>,
    pub silenced: bool,
    pub message: String,
}

/// What `GET /api/alerts` filters on.
#[derive(Debug, Clone, Default)]
pub struct AlertFilter {
    /// `Some(Firing)`, `Some(Resolved)`, or `None` for all.
    pub state: Option<AlertState>,
    pub host: Option<String>,
    pub severity: Option<Severity>,
    pub limit: i64,
}

#[derive(Debug, Clone)]
pub struct AlertHistory {
    pool: SqlitePool,
}

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

impl AlertHistory {
    pub fn new(pool: SqlitePool) -> Self {
        Self { pool }
    }

    /// Records a transition: firing opens a row, a change of severity
    /// updates it, resolution closes it. Pending comings and goings are not
    /// history. Returns the row's id when one was written.
    pub async fn record(&self, t: &Transition) -> Result<Option<i64>> {
        match (t.from, t.to) {
            (AlertState::Firing, AlertState::Firing) => {
                let id = sqlx::query_scalar(
                    "UPDATE alerts SET severity = ?, value = ?, threshold = ?, peak = ?,
                        message = ?, silenced = ?
                     WHERE rule = ? AND host_id = ? AND scope = ? AND ended_at_ms IS NULL
                     RETURNING id",
                )
                .bind(severity_str(t.severity))
                .bind(t.value)
                .bind(t.threshold)
                .bind(t.peak)
                .bind(&t.message)
                .bind(t.silenced)
                .bind(&t.rule)
                .bind(&t.host_id)
                .bind(&t.scope)
                .fetch_optional(&self.pool)
                .await?;
                Ok(id)
            }
            (_, AlertState::Firing) => {
                // Re-firing an instance that is somehow still open replaces it.
                let id = sqlx::query_scalar(
                    "INSERT INTO alerts (rule, host_id, scope, severity, state, value, threshold,
                        peak, started_at_ms, fired_at_ms, ended_at_ms, silenced, message)
                     VALUES (?, ?, ?, ?, 'firing', ?, ?, ?, ?, ?, NULL, ?, ?)
                     ON CONFLICT (rule, host_id, scope) WHERE ended_at_ms IS NULL DO UPDATE SET
                        severity = excluded.severity, value = excluded.value,
                        threshold = excluded.threshold, peak = excluded.peak,
                        message = excluded.message, silenced = excluded.silenced
                     RETURNING id",
                )
                .bind(&t.rule)
                .bind(&t.host_id)
                .bind(&t.scope)
                .bind(severity_str(t.severity))
                .bind(t.value)
                .bind(t.threshold)
                .bind(t.peak)
                .bind(t.started_at_ms)
                .bind(t.at_ms)
                .bind(t.silenced)
                .bind(&t.message)
                .fetch_one(&self.pool)
                .await?;
                Ok(Some(id))
            }
            (AlertState::Firing, _) => {
                let id = sqlx::query_scalar(
                    "UPDATE alerts SET state = 'resolved', ended_at_ms = ?, value = ?, peak = ?,
                        message = ?
                     WHERE rule = ? AND host_id = ? AND scope = ? AND ended_at_ms IS NULL
                     RETURNING id",
                )
                .bind(t.at_ms)
                .bind(t.value)
                .bind(t.peak)
                .bind(&t.message)
                .bind(&t.rule)
                .bind(&t.host_id)
                .bind(&t.scope)
                .fetch_optional(&self.pool)
                .await?;
                Ok(id)
            }
            _ => Ok(None),
        }
    }

    /// The alerts still firing, for the engine to take back after a restart.
    pub async fn open(&self) -> Result<Vec<AlertInstance>> {
        let rows = sqlx::query("SELECT * FROM alerts WHERE ended_at_ms IS NULL")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                let rec = record_from_row(r)?;
                Ok(AlertInstance {
                    rule: rec.rule,
                    host_id: rec.host_id,
                    scope: rec.scope,
                    state: AlertState::Firing,
                    severity: rec.severity,
                    value: rec.value,
                    threshold: rec.threshold,
                    peak: rec.peak,
                    started_at_ms: rec.started_at_ms,
                    silenced: rec.silenced,
                })
            })
            .collect()
    }

    /// History, newest first.
    pub async fn list(&self, filter: &AlertFilter) -> Result<Vec<AlertRecord>> {
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
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(record_from_row).collect()
    }

    /// Deletes resolved alerts that ended before `before_ms`.
    pub async fn prune(&self, before_ms: TimestampMs) -> Result<u64> {
        Ok(
            sqlx::query("DELETE FROM alerts WHERE ended_at_ms IS NOT NULL AND ended_at_ms < ?")
                .bind(before_ms)
                .execute(&self.pool)
                .await?
                .rows_affected(),
        )
    }

    pub async fn save_silence(&self, s: &Silence, now_ms: TimestampMs) -> Result<()> {
        sqlx::query(
            "INSERT OR REPLACE INTO silences (id, rule, host, pool, expires_at_ms, comment,
                created_at_ms) VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(i64::try_from(s.id).unwrap_or(i64::MAX))
        .bind(s.rule.as_deref())
        .bind(s.host.as_deref())
        .bind(s.pool.as_deref())
        .bind(s.expires_at_ms)
        .bind(&s.comment)
        .bind(now_ms)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn delete_silence(&self, id: u64) -> Result<bool> {
        Ok(sqlx::query("DELETE FROM silences WHERE id = ?")
            .bind(i64::try_from(id).unwrap_or(i64::MAX))
            .execute(&self.pool)
            .await?
            .rows_affected()
            > 0)
    }

    /// Silences that have not expired yet.
    pub async fn silences(&self, now_ms: TimestampMs) -> Result<Vec<Silence>> {
        let rows = sqlx::query("SELECT * FROM silences WHERE expires_at_ms > ? ORDER BY id")
            .bind(now_ms)
            .fetch_all(&self.pool)
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

fn record_from_row(r: &SqliteRow) -> Result<AlertRecord> {
    let state: String = r.try_get("state")?;
    let severity: String = r.try_get("severity")?;
    Ok(AlertRecord {
        id: r.try_get("id")?,
        rule: r.try_get("rule")?,
        host_id: r.try_get("host_id")?,
        scope: r.try_get("scope")?,
        severity: parse_severity(&severity)?,
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
