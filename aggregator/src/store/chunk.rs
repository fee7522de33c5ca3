//! A chunk: consecutive samples of one host stored as compressed columns.
//!
//! Layout (before deflate): a version byte; the sample count; timestamps as
//! the first value then delta-of-deltas (a fixed interval costs a byte per
//! sample before deflate and almost nothing after); then one column per
//! [`Key`] seen in any sample: the key, whether the column has a value in
//! every sample (else a presence bitmap), and its values as the first one
//! then deltas. Workers that come and go only cost a bitmap.

use std::collections::BTreeMap;

use super::codec::{self, DecodeError, Reader};
use super::series::{Key, Values};
use crate::model::TimestampMs;

const VERSION: u8 = 1;

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
        let mut prev = 0i64;
        for (_, v) in cells {
            codec::put_i(out, v.wrapping_sub(prev));
            prev = *v;
        }
    }
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
        let mut prev = 0i64;
        for i in present {
            let v = prev.wrapping_add(r.i()?);
            prev = v;
            rows[i].values.push((key, v));
        }
    }
    // Columns are written in key order, so every row's values are sorted.
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::series::{Dictionary, flatten, rebuild, tests::sample};

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
    fn garbage_is_an_error() {
        assert!(decode(b"garbage").is_err());
        assert!(decode_raw(&[1, 200, 1]).is_err());
        assert!(decode_raw(&[9]).is_err());
        assert_eq!(decode_raw(&[1, 0, 0]).unwrap(), vec![]);
    }
}
