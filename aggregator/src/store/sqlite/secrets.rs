//! The statements that the tables of named, hashed secrets (agent tokens
//! and API tokens) share, written once: revoking by name, noting use, and
//! whether a name is taken. Each table keeps only the SHA-256 of a secret.

use sqlx::SqlitePool;

use crate::model::TimestampMs;
use crate::store::Result;

/// A table of named secrets with `id`, `name`, `revoked_ms` and
/// `last_used_ms` columns.
#[derive(Debug, Clone, Copy)]
pub(super) enum SecretTable {
    AgentTokens,
    ApiTokens,
}

/// The statement `$before <table> $after`, as a literal for each table, so
/// that no SQL is put together at run time.
macro_rules! on_table {
    ($table:expr, $before:literal, $after:literal) => {
        match $table {
            SecretTable::AgentTokens => concat!($before, "agent_tokens", $after),
            SecretTable::ApiTokens => concat!($before, "api_tokens", $after),
        }
    };
}

/// Revokes the secret named `name` unless it already is; whether this did.
pub(super) async fn revoke(
    pool: &SqlitePool,
    table: SecretTable,
    name: &str,
    now: TimestampMs,
) -> Result<bool> {
    let sql = on_table!(
        table,
        "UPDATE ",
        " SET revoked_ms = ? WHERE name = ? AND revoked_ms IS NULL"
    );
    let changed = sqlx::query(sql)
        .bind(now)
        .bind(name)
        .execute(pool)
        .await?
        .rows_affected();
    Ok(changed > 0)
}

/// Notes that secret `id` was used at `now`.
pub(super) async fn touch(
    pool: &SqlitePool,
    table: SecretTable,
    id: i64,
    now: TimestampMs,
) -> Result<()> {
    sqlx::query(on_table!(
        table,
        "UPDATE ",
        " SET last_used_ms = ? WHERE id = ?"
    ))
    .bind(now)
    .bind(id)
    .execute(pool)
    .await?;
    Ok(())
}

/// Whether a secret named `name` exists, revoked or not.
pub(super) async fn name_taken(pool: &SqlitePool, table: SecretTable, name: &str) -> Result<bool> {
    let id: Option<i64> =
        sqlx::query_scalar(on_table!(table, "SELECT id FROM ", " WHERE name = ?"))
            .bind(name)
            .fetch_optional(pool)
            .await?;
    Ok(id.is_some())
}
