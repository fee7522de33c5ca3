//! Reads a host's stored samples straight from a database file, beside a
//! running aggregator: for tests that count what was stored exactly, and
//! for looking into a database by hand. Everything is read in one read
//! transaction, so a chunk written meanwhile is seen either in the journal
//! or in `chunks`, never in both.

use std::collections::BTreeMap;
use std::path::Path;

use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
use sqlx::{ConnectOptions, Connection, Row as _};

use super::{corrupt, to_u32, to_u64};
use crate::model::{Sample, TimestampMs};
use crate::store::Result;
use crate::store::chunk::{self, Row};
use crate::store::series::{self, Dictionary, Entity};

/// Every stored sample of `host_id`, oldest first; empty for an unknown host.
pub async fn samples_of(path: &Path, host_id: &str) -> Result<Vec<Sample>> {
    let mut conn = SqliteConnectOptions::new()
        .filename(path)
        .read_only(true)
        .connect()
        .await?;
    samples_in(&mut conn, host_id).await
}

/// [`samples_of`] on a connection the caller has.
pub async fn samples_in(conn: &mut SqliteConnection, host_id: &str) -> Result<Vec<Sample>> {
    let mut tx = conn.begin().await?;
    let Some(host) = sqlx::query("SELECT hk, journal_mark FROM hosts WHERE host_id = ?")
        .bind(host_id)
        .fetch_optional(&mut *tx)
        .await?
    else {
        return Ok(Vec::new());
    };
    let hk: i64 = host.try_get("hk")?;
    let mark = to_u64(host.try_get("journal_mark")?);
    let mut dict = Dictionary::default();
    for row in sqlx::query("SELECT sid, entity FROM entities WHERE hk = ? ORDER BY sid")
        .bind(hk)
        .fetch_all(&mut *tx)
        .await?
    {
        let entity: Entity = serde_json::from_str(&row.try_get::<String, _>("entity")?)
            .map_err(|e| corrupt("entities", e))?;
        dict.restore(to_u32(row.try_get("sid")?), entity)
            .map_err(|e| corrupt("entities", e))?;
    }
    let mut rows: BTreeMap<TimestampMs, Vec<Row>> = BTreeMap::new();
    for blob in sqlx::query_scalar::<_, Vec<u8>>("SELECT data FROM chunks WHERE hk = ?")
        .bind(hk)
        .fetch_all(&mut *tx)
        .await?
    {
        for row in chunk::decode(&blob).map_err(|e| corrupt("chunks", e))? {
            rows.entry(row.ts).or_default().push(row);
        }
    }
    let mut raw = crate::store::raw::Raw::new(1);
    let mut only = crate::store::raw::HostRaw::new(hk, 1000);
    only.dict = dict.clone();
    raw.insert_host(host_id.to_owned(), only);
    let marks = [(hk, mark)].into_iter().collect();
    for row in sqlx::query("SELECT id, data FROM journal ORDER BY id")
        .fetch_all(&mut *tx)
        .await?
    {
        let id = to_u64(row.try_get("id")?);
        let data: Vec<u8> = row.try_get("data")?;
        raw.replay(id, &data, &marks)?;
    }
    for row in raw.open_rows(host_id, i64::MIN, i64::MAX) {
        rows.entry(row.ts).or_default().push(row);
    }
    tx.commit().await?;
    // A timestamp stored twice shows up twice: that is what the tests look for.
    Ok(rows
        .into_values()
        .flatten()
        .map(|r| series::rebuild(r.ts, &r.values, &dict))
        .collect())
}
