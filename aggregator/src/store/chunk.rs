//! A chunk: consecutive samples of one host stored as compressed columns.
//!
//! Layout (before deflate): a version byte; the sample count; timestamps as
//! the first value then delta-of-deltas (a fixed interval costs a byte per
//! sample before deflate and almost nothing after); then one column per
//! [`Key`] seen in any sample: the key, whether the column has a value in
//! every sample (else a presence bitmap), the greatest common divisor of
//! its deltas, and its values as the first one then deltas divided by it. Workers that come and go only cost a bitmap.

use std::collections::BTreeMap;

use super::codec::{self, DecodeError, Reader};
use super::series::{Key, Values};
use crate::model::TimestampMs;

const VERSION: u8 = 2;

/// One sample's stored values.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub ts: TimestampMs,
    pub values: Values,
}

/// The column bytes of `rows` (sorted by timestamp, unique), not deflated.
pub fn encode_raw(rows: &[Row], out: &mut Vec<u8>) {
    out.push(VERSION);
    codec::put_u(out, rows.len() as u64);
    let mut prev = 0i64;
    let mut prev_delta = 0i64;
    for (i, row) in rows.iter().enumerate() {
        if i == 0 {
            codec::put_i(out, row.ts);
        } else {
            let delta = row.ts.wrapping_sub(prev);
            codec::put_i(out, delta.wrapping_sub(prev_delta));
            prev_delta = delta;
        }
        prev = row.ts;
    }
    let mut columns: BTreeMap<Key, Vec<(usize, i64)>> = BTreeMap::new();
    for (i, row) in rows.iter().enumerate() {
        for (key, v) in &row.values {
            columns.entry(*key).or_default().push((i, *v));
        }
    }
    codec::put_u(out, columns.len() as u64);
    for (key, cells) in &columns {
        codec::put_u(out, u64::from(key.sid));
        codec::put_u(out, u64::from(key.field));
        if cells.len() == rows.len() {
            out.push(0);
        } else {
            out.push(1);
            let mut bitmap = vec![0u8; rows.len().div_ceil(8)];
            for (i, _) in cells {
                bitmap[i / 8] |= 1 << (i % 8);
            }
            out.extend_from_slice(&bitmap);
        }
        // Deltas share a factor when values move in steps (memory in
        // pages, sizes in blocks): stored once, divided out of each delta.
        let mut prev = 0i64;
        let mut step = 0u64;
        for (_, v) in cells {
            step = gcd(step, v.wrapping_sub(prev).unsigned_abs());
            prev = *v;
        }
        let step = step.max(1);
        codec::put_u(out, step);
        let step = step as i64;
        let mut prev = 0i64;
        for (_, v) in cells {
            // An exact division: `step` divides every delta.
            codec::put_i(out, v.wrapping_sub(prev).wrapping_div(step));
            prev = *v;
        }
    }
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// A chunk as stored: the columns, deflated.
pub fn encode(rows: &[Row]) -> Vec<u8> {
    let mut raw = Vec::with_capacity(64 + rows.len() * 64);
    encode_raw(rows, &mut raw);
    codec::deflate(&raw, codec::LEVEL_SMALL)
}

pub fn decode(packed: &[u8]) -> Result<Vec<Row>, DecodeError> {
    decode_raw(&codec::inflate(packed)?)
}

/// Reads what [`encode_raw`] wrote.
pub fn decode_raw(raw: &[u8]) -> Result<Vec<Row>, DecodeError> {
    let mut r = Reader::new(raw);
    decode_from(&mut r)
}

/// Reads one chunk's columns from `r`, leaving it after them.
pub fn decode_from(r: &mut Reader<'_>) -> Result<Vec<Row>, DecodeError> {
    let version = r.u()?;
    if version != u64::from(VERSION) {
        return Err(DecodeError("unknown chunk version"));
    }
    let n = r.len()?;
    let mut rows: Vec<Row> = Vec::with_capacity(n);
    let mut prev = 0i64;
    let mut prev_delta = 0i64;
    for i in 0..n {
        let ts = if i == 0 {
            r.i()?
        } else {
            let delta = prev_delta.wrapping_add(r.i()?);
            prev_delta = delta;
            prev.wrapping_add(delta)
        };
        prev = ts;
        rows.push(Row {
            ts,
            values: Vec::new(),
        });
    }
    let columns = r.len()?;
    for _ in 0..columns {
        let sid = u32::try_from(r.u()?).map_err(|_| DecodeError("sid out of range"))?;
        let field = u16::try_from(r.u()?).map_err(|_| DecodeError("field out of range"))?;
        let key = Key { sid, field };
        let dense = match r.u()? {
            0 => true,
            1 => false,
            _ => return Err(DecodeError("bad presence flag")),
        };
        let present: Vec<usize> = if dense {
            (0..n).collect()
        } else {
            let mut present = Vec::new();
            for byte_index in 0..n.div_ceil(8) {
                let byte = r.take(1)?[0];
                for bit in 0..8 {
                    let i = byte_index * 8 + bit;
                    if i < n && byte & (1 << bit) != 0 {
                        present.push(i);
                    }
                }
            }
            present
        };
        let step = i64::try_from(r.u()?).map_err(|_| DecodeError("column step out of range"))?;
        let mut prev = 0i64;
        for i in present {
            let v = prev.wrapping_add(r.i()?.wrapping_mul(step));
            prev = v;
            rows[i].values.push((key, v));
        }
    }
    // Columns are written in key order, so every row's values are sorted.
    Ok(rows)
}

/// An open chunk's samples kept as they arrive, as columns of deltas: a
/// value costs a byte or two instead of the 16 of a decoded row, which is
/// what lets ten thousand hosts keep two minutes each in memory.
#[derive(Debug, Clone, Default)]
pub struct Builder {
    /// Timestamps in arrival order (the row numbers of the columns).
    ts: Vec<TimestampMs>,
    /// Sorted by key.
    columns: Vec<Column>,
}

#[derive(Debug, Clone)]
struct Column {
    key: Key,
    /// Bit `i` set: row `i` has a value.
    present: Vec<u8>,
    /// Zigzag varint deltas of the present values.
    deltas: Vec<u8>,
    last: i64,
}

impl Builder {
    pub fn len(&self) -> usize {
        self.ts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ts.is_empty()
    }

    pub fn contains(&self, ts: TimestampMs) -> bool {
        self.ts.contains(&ts)
    }

    /// Adds a row; the caller makes sure its timestamp is not here yet.
    pub fn push(&mut self, row: &Row) {
        let i = self.ts.len();
        self.ts.push(row.ts);
        // A row's values are sorted by key, like the columns: walk both in
        // step. A value out of order (never from `series::flatten`) is
        // found by a search instead.
        let mut at = 0;
        for (key, v) in &row.values {
            if at > 0 && self.columns[at - 1].key >= *key {
                at = self.columns.partition_point(|c| c.key < *key);
            }
            while self.columns.get(at).is_some_and(|c| c.key < *key) {
                at += 1;
            }
            if self.columns.get(at).is_none_or(|c| c.key != *key) {
                self.columns.insert(
                    at,
                    Column {
                        key: *key,
                        present: Vec::new(),
                        deltas: Vec::new(),
                        last: 0,
                    },
                );
            }
            let column = &mut self.columns[at];
            at += 1;
            if column.present.len() <= i / 8 {
                column.present.resize(i / 8 + 1, 0);
            }
            column.present[i / 8] |= 1 << (i % 8);
            codec::put_i(&mut column.deltas, v.wrapping_sub(column.last));
            column.last = *v;
        }
    }

    /// The rows, sorted by timestamp.
    pub fn rows(&self) -> Vec<Row> {
        let mut rows: Vec<Row> = self
            .ts
            .iter()
            .map(|ts| Row {
                ts: *ts,
                values: Vec::new(),
            })
            .collect();
        for column in &self.columns {
            let mut r = Reader::new(&column.deltas);
            let mut v = 0i64;
            for (i, row) in rows.iter_mut().enumerate() {
                let set = column
                    .present
                    .get(i / 8)
                    .is_some_and(|b| b & (1 << (i % 8)) != 0);
                if !set {
                    continue;
                }
                // Written by `push` above: it always decodes.
                let Ok(delta) = r.i() else { break };
                v = v.wrapping_add(delta);
                row.values.push((column.key, v));
            }
        }
        rows.sort_by_key(|r| r.ts);
        rows
    }

    /// The rows in `[from, to)`, sorted.
    pub fn rows_in(&self, from: TimestampMs, to: TimestampMs) -> Vec<Row> {
        if !self.ts.iter().any(|t| (from..to).contains(t)) {
            return Vec::new();
        }
        self.rows()
            .into_iter()
            .filter(|r| (from..to).contains(&r.ts))
            .collect()
    }

    /// Heap bytes held, for the aggregator's own accounting.
    pub fn heap_bytes(&self) -> usize {
        self.ts.capacity() * 8
            + self
                .columns
                .iter()
                .map(|c| std::mem::size_of::<Column>() + c.present.capacity() + c.deltas.capacity())
                .sum::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::series::{Dictionary, flatten, rebuild, tests::sample};

    #[test]
    fn a_builder_gives_back_its_rows_sorted() {
        let mut dict = Dictionary::default();
        let mut rows = Vec::new();
        for i in [3i64, 1, 2, 0, 5, 4] {
            let mut s = sample(i * 1000, i as f64);
            if i % 2 == 0 {
                s.workers.pop();
            }
            rows.push(Row {
                ts: s.timestamp_ms,
                values: flatten(&s, &mut dict, &mut Vec::new()),
            });
        }
        let mut b = Builder::default();
        for r in &rows {
            b.push(r);
        }
        assert!(b.contains(2000) && !b.contains(2500));
        rows.sort_by_key(|r| r.ts);
        assert_eq!(b.rows(), rows);
        assert_eq!(b.rows_in(1000, 3000), rows[1..3].to_vec());
        assert!(b.rows_in(9000, 9999).is_empty());
        // Far smaller than the rows themselves.
        let decoded: usize = rows.iter().map(|r| r.values.len() * 16).sum();
        assert!(b.heap_bytes() < decoded, "{} vs {decoded}", b.heap_bytes());
    }

    #[test]
    fn a_row_out_of_key_order_lands_in_its_columns() {
        let (a, b, c) = (Key::host(1), Key::host(2), Key::host(3));
        let rows = [
            Row {
                ts: 0,
                values: vec![(a, 1), (c, 3)],
            },
            Row {
                ts: 1000,
                values: vec![(c, 30), (a, 10), (b, 20)],
            },
            Row {
                ts: 2000,
                values: vec![(b, 200)],
            },
        ];
        let mut builder = Builder::default();
        for r in &rows {
            builder.push(r);
        }
        let mut sorted = rows.to_vec();
        sorted[1].values.sort_by_key(|(k, _)| *k);
        assert_eq!(builder.rows(), sorted);
    }

    #[test]
    fn rows_round_trip_with_gaps_and_irregular_times() {
        let mut dict = Dictionary::default();
        let mut rows = Vec::new();
        for i in 0..150i64 {
            let mut s = sample(1_000_000 + i * 1000 + (i % 3), i as f64 / 3.0);
            if i % 7 == 0 {
                s.workers.pop();
            }
            let values = flatten(&s, &mut dict, &mut Vec::new());
            rows.push(Row {
                ts: s.timestamp_ms,
                values,
            });
        }
        let packed = encode(&rows);
        let back = decode(&packed).unwrap();
        assert_eq!(back, rows);
        let s = rebuild(back[7].ts, &back[7].values, &dict);
        assert_eq!(s.workers.len(), 1);
        // Mostly constant columns cost little: well under 60 bytes a sample.
        assert!(packed.len() < 150 * 60, "{} bytes", packed.len());
    }

    #[test]
    fn steps_are_divided_out_and_extremes_survive() {
        let key = Key::host(5);
        let rows = |values: &[i64]| -> Vec<Row> {
            values
                .iter()
                .enumerate()
                .map(|(i, v)| Row {
                    ts: i as i64 * 1000,
                    values: vec![(key, *v)],
                })
                .collect()
        };
        for values in [
            vec![i64::MAX, i64::MIN, 0, -1, i64::MAX],
            vec![i64::MIN, i64::MIN + 4096, 8192],
            vec![0, 0, 0],
            vec![7],
        ] {
            let r = rows(&values);
            assert_eq!(decode(&encode(&r)).unwrap(), r, "{values:?}");
        }
        // Pages: the same walk in 4 KiB steps costs what it costs in bytes.
        let pages: Vec<i64> = (0..120)
            .map(|i| (1 << 30) + ((i * 7919) % 97) * 4096)
            .collect();
        let units: Vec<i64> = pages.iter().map(|p| p / 4096).collect();
        let mut raw_pages = Vec::new();
        let mut raw_units = Vec::new();
        encode_raw(&rows(&pages), &mut raw_pages);
        encode_raw(&rows(&units), &mut raw_units);
        assert!(
            raw_pages.len() <= raw_units.len() + 4,
            "{} vs {}",
            raw_pages.len(),
            raw_units.len()
        );
    }

    #[test]
    fn garbage_is_an_error() {
        assert!(decode(b"garbage").is_err());
        assert!(decode_raw(&[1, 200, 1]).is_err());
        assert!(decode_raw(&[9]).is_err());
        assert!(decode_raw(&[1, 0, 0]).is_err(), "an unknown version");
        assert_eq!(decode_raw(&[2, 0, 0]).unwrap(), vec![]);
    }
}
