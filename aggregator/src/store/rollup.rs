//! Rollup tiers: per host and bucket (1 minute, 1 hour), the count, sum,
//! min and max of every value history serves.
//!
//! Sums are of the quantised integers (see `series`), so merging partial
//! buckets is exact and a rollup equals the aggregate of the raw samples it
//! covers, whatever order they arrived in. A bucket is stored as one row
//! per host: its aggregates sorted by key, deflated.

use std::collections::BTreeMap;
use std::time::Duration;

use super::chunk::Row;
use super::codec::{self, DecodeError, Reader};
use super::series::{Key, rolled, with_derived};
use crate::model::TimestampMs;

const VERSION: u64 = 1;

/// One stored resolution of history.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Tier {
    Raw,
    Minute,
    Hour,
}

impl serde::Serialize for Tier {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl Tier {
    /// Bucket width; 0 for raw samples.
    pub fn step_ms(self) -> i64 {
        match self {
            Tier::Raw => 0,
            Tier::Minute => 60_000,
            Tier::Hour => 3_600_000,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Tier::Raw => "raw",
            Tier::Minute => "1m",
            Tier::Hour => "1h",
        }
    }

    /// Parses `raw`, `1m` or `1h`.
    pub fn parse(name: &str) -> Option<Tier> {
        [Tier::Raw, Tier::Minute, Tier::Hour]
            .into_iter()
            .find(|t| t.name() == name)
    }

    /// The rollup tiers, finest first.
    pub const ROLLUPS: [Tier; 2] = [Tier::Minute, Tier::Hour];
}

/// How long each tier is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    pub raw: Duration,
    pub minute: Duration,
    pub hour: Duration,
}

impl Default for Retention {
    fn default() -> Self {
        Self {
            raw: Duration::from_secs(48 * 3600),
            minute: Duration::from_secs(30 * 86_400),
            hour: Duration::from_secs(400 * 86_400),
        }
    }
}

impl Retention {
    pub fn of(&self, tier: Tier) -> Duration {
        match tier {
            Tier::Raw => self.raw,
            Tier::Minute => self.minute,
            Tier::Hour => self.hour,
        }
    }
}

/// Count, sum, min and max of one value over a bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Agg {
    pub count: u64,
    pub sum: i128,
    pub min: i64,
    pub max: i64,
}

impl Agg {
    pub fn of(v: i64) -> Self {
        Self {
            count: 1,
            sum: i128::from(v),
            min: v,
            max: v,
        }
    }

    pub fn add(&mut self, other: &Agg) {
        self.count += other.count;
        self.sum += other.sum;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
    }
}

/// The aggregates of one bucket of one host, by key.
pub type Bucket = BTreeMap<Key, Agg>;

/// Start of the bucket of `step_ms` that holds `ts`.
pub fn bucket_of(ts: TimestampMs, step_ms: i64) -> TimestampMs {
    ts.div_euclid(step_ms) * step_ms
}

/// Folds raw rows into buckets of `tier`.
pub fn accumulate(rows: &[Row], tier: Tier, into: &mut BTreeMap<TimestampMs, Bucket>) {
    for row in rows {
        let bucket = into.entry(bucket_of(row.ts, tier.step_ms())).or_default();
        for (key, v) in with_derived(&row.values) {
            if rolled(key.field) {
                bucket
                    .entry(key)
                    .and_modify(|a| a.add(&Agg::of(v)))
                    .or_insert_with(|| Agg::of(v));
            }
        }
    }
}

/// Adds `other` into `into`.
pub fn merge(into: &mut Bucket, other: &Bucket) {
    for (key, agg) in other {
        into.entry(*key).and_modify(|a| a.add(agg)).or_insert(*agg);
    }
}

pub fn encode(bucket: &Bucket) -> Vec<u8> {
    let mut raw = Vec::with_capacity(16 + bucket.len() * 12);
    codec::put_u(&mut raw, VERSION);
    codec::put_u(&mut raw, bucket.len() as u64);
    let mut prev_sid = 0u32;
    for (key, agg) in bucket {
        codec::put_u(&mut raw, u64::from(key.sid.wrapping_sub(prev_sid)));
        prev_sid = key.sid;
        codec::put_u(&mut raw, u64::from(key.field));
        codec::put_u(&mut raw, agg.count);
        codec::put_i128(&mut raw, agg.sum);
        codec::put_i(&mut raw, agg.min);
        codec::put_i(&mut raw, agg.max.wrapping_sub(agg.min));
    }
    codec::deflate(&raw, codec::LEVEL_SMALL)
}

pub fn decode(packed: &[u8]) -> Result<Bucket, DecodeError> {
    let mut out = Bucket::new();
    scan(packed, |key, agg| {
        out.insert(key, agg);
        true
    })?;
    Ok(out)
}

/// The aggregates of `keys` (sorted) in a stored bucket, without decoding
/// the rest: a history query wants one series out of a hundred.
pub fn find(packed: &[u8], keys: &[Key]) -> Result<Vec<(Key, Agg)>, DecodeError> {
    let mut out = Vec::with_capacity(keys.len());
    let last = keys.last().copied();
    scan(packed, |key, agg| {
        if keys.binary_search(&key).is_ok() {
            out.push((key, agg));
        }
        Some(key) < last
    })?;
    Ok(out)
}

/// Calls `each` on the entries in key order while it returns true.
fn scan(packed: &[u8], mut each: impl FnMut(Key, Agg) -> bool) -> Result<(), DecodeError> {
    let raw = codec::inflate(packed)?;
    let mut r = Reader::new(&raw);
    if r.u()? != VERSION {
        return Err(DecodeError("unknown rollup version"));
    }
    let n = r.len()?;
    let mut sid = 0u32;
    for _ in 0..n {
        sid = sid.wrapping_add(u32::try_from(r.u()?).map_err(|_| DecodeError("sid"))?);
        let field = u16::try_from(r.u()?).map_err(|_| DecodeError("field"))?;
        let count = r.u()?;
        let sum = r.i128()?;
        let min = r.i()?;
        let max = min.wrapping_add(r.i()?);
        let agg = Agg {
            count,
            sum,
            min,
            max,
        };
        if !each(Key { sid, field }, agg) {
            break;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::series::field;

    #[test]
    fn buckets_round_trip_and_merge_exactly() {
        let key = Key::host(field::CPU);
        let rows: Vec<Row> = (0..180)
            .map(|i| Row {
                ts: 1_000 * i,
                values: vec![(key, i * 10 - 500)],
            })
            .collect();
        let mut whole = BTreeMap::new();
        accumulate(&rows, Tier::Minute, &mut whole);
        assert_eq!(whole.len(), 3);
        let first = &whole[&0][&key];
        assert_eq!(first.count, 60);
        assert_eq!(first.min, -500);
        assert_eq!(first.max, 90);
        // In two parts, merged: the same.
        let mut a = BTreeMap::new();
        let mut b = BTreeMap::new();
        accumulate(&rows[..95], Tier::Minute, &mut a);
        accumulate(&rows[95..], Tier::Minute, &mut b);
        for (t, bucket) in b {
            merge(a.entry(t).or_default(), &bucket);
        }
        assert_eq!(a, whole);
        for bucket in whole.values() {
            assert_eq!(&decode(&encode(bucket)).unwrap(), bucket);
            let found = find(&encode(bucket), &[key, Key::host(99)]).unwrap();
            assert_eq!(found, vec![(key, bucket[&key])]);
        }
        assert!(decode(b"xx").is_err());
    }
}
