//! The spool's on-disk format: segment files of checksummed records.
//!
//! A segment holds the samples of one batch, one record per sample:
//!
//! ```text
//! magic "fwR1" (4) | payload length, u32 LE (4) | CRC-32 of payload, u32 LE (4) | payload
//! ```
//!
//! The payload is a protobuf `Sample`. A record is written with one `write`
//! call, so a `kill -9` leaves at worst a torn last record. Reading checks
//! every record; on a bad one (torn, truncated, garbage, wrong checksum) it
//! skips forward to the next valid record header, so nothing after a bad
//! record is lost, and it reports how many bytes it skipped.

use std::fs::File;
use std::io::{Read, Write};
use std::path::Path;

use prost::Message;

const MAGIC: &[u8; 4] = b"fwR1";
/// Bytes of a record's header.
pub const HEADER: usize = 12;
/// Largest payload accepted when reading; a length beyond it is garbage.
pub const MAX_RECORD: usize = 16 << 20;

/// CRC-32 (IEEE, reflected, as zlib and `crc32fast` compute it), from a
/// table built at compile time: small enough not to need a crate.
pub fn crc32(data: &[u8]) -> u32 {
    const TABLE: [u32; 256] = {
        let mut table = [0u32; 256];
        let mut i = 0;
        while i < 256 {
            let mut c = i as u32;
            let mut k = 0;
            while k < 8 {
                c = if c & 1 != 0 {
                    0xEDB8_8320 ^ (c >> 1)
                } else {
                    c >> 1
                };
                k += 1;
            }
            table[i] = c;
            i += 1;
        }
        table
    };
    let mut crc = !0u32;
    for &byte in data {
        crc = TABLE[((crc ^ u32::from(byte)) & 0xFF) as usize] ^ (crc >> 8);
    }
    !crc
}

/// One message (a sample, or a dropped range) as a record, header included.
pub fn encode(message: &impl Message) -> Vec<u8> {
    let payload = message.encode_to_vec();
    let mut record = Vec::with_capacity(HEADER + payload.len());
    record.extend_from_slice(MAGIC);
    // A sample is far below 4 GiB; the reader refuses anything past MAX_RECORD.
    record.extend_from_slice(
        &u32::try_from(payload.len())
            .unwrap_or(u32::MAX)
            .to_le_bytes(),
    );
    record.extend_from_slice(&crc32(&payload).to_le_bytes());
    record.extend_from_slice(&payload);
    record
}

/// Appends one record to an open segment in a single write.
pub fn append(file: &mut File, record: &[u8]) -> std::io::Result<()> {
    file.write_all(record)
}

/// What reading a segment found.
#[derive(Debug)]
pub struct Contents<M> {
    pub samples: Vec<M>,
    /// Bytes that were not part of a valid record.
    pub skipped_bytes: usize,
    /// Bad stretches found (each skipped as one).
    pub bad_stretches: usize,
}

/// Reads every valid record of a segment file.
pub fn read<M: Message + Default>(path: &Path) -> std::io::Result<Contents<M>> {
    let mut bytes = Vec::new();
    File::open(path)?.read_to_end(&mut bytes)?;
    Ok(parse(&bytes))
}

/// The valid record starting at `at`, and its length, if there is one.
fn record_at<M: Message + Default>(bytes: &[u8], at: usize) -> Option<(M, usize)> {
    let header = bytes.get(at..at + HEADER)?;
    if &header[..4] != MAGIC {
        return None;
    }
    let len = u32::from_le_bytes([header[4], header[5], header[6], header[7]]) as usize;
    let crc = u32::from_le_bytes([header[8], header[9], header[10], header[11]]);
    if len > MAX_RECORD {
        return None;
    }
    let payload = bytes.get(at + HEADER..at + HEADER + len)?;
    if crc32(payload) != crc {
        return None;
    }
    let sample = M::decode(payload).ok()?;
    Some((sample, HEADER + len))
}

/// Reads every valid record of a segment's bytes, resynchronising on the
/// next valid header after a bad stretch.
pub fn parse<M: Message + Default>(bytes: &[u8]) -> Contents<M> {
    let mut contents = Contents {
        samples: Vec::new(),
        skipped_bytes: 0,
        bad_stretches: 0,
    };
    let mut at = 0;
    let mut bad_since: Option<usize> = None;
    while at < bytes.len() {
        match record_at(bytes, at) {
            Some((sample, len)) => {
                if let Some(start) = bad_since.take() {
                    contents.skipped_bytes += at - start;
                    contents.bad_stretches += 1;
                }
                contents.samples.push(sample);
                at += len;
            }
            None => {
                bad_since.get_or_insert(at);
                // Look for the next header; a false match must still pass
                // the length and checksum tests before it counts.
                at = bytes[at + 1..]
                    .windows(MAGIC.len())
                    .position(|w| w == MAGIC)
                    .map_or(bytes.len(), |p| at + 1 + p);
            }
        }
    }
    if let Some(start) = bad_since {
        contents.skipped_bytes += bytes.len() - start;
        contents.bad_stretches += 1;
    }
    contents
}

#[cfg(test)]
mod tests {
    use super::*;
    use fleetwatch_proto::Sample;

    fn sample(ts: i64) -> Sample {
        Sample {
            timestamp_ms: ts,
            ..Default::default()
        }
    }

    fn timestamps(c: &Contents<Sample>) -> Vec<i64> {
        c.samples.iter().map(|s| s.timestamp_ms).collect()
    }

    #[test]
    fn crc32_matches_the_standard_check_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b""), 0);
    }

    #[test]
    fn records_round_trip() {
        let bytes: Vec<u8> = (1..=3).flat_map(|ts| encode(&sample(ts))).collect();
        let c = parse(&bytes);
        assert_eq!(timestamps(&c), [1, 2, 3]);
        assert_eq!((c.skipped_bytes, c.bad_stretches), (0, 0));
    }

    #[test]
    fn a_torn_tail_with_garbage_is_skipped() {
        let mut bytes: Vec<u8> = (1..=3).flat_map(|ts| encode(&sample(ts))).collect();
        let third = encode(&sample(3)).len();
        bytes.truncate(bytes.len() - third / 2);
        bytes.extend_from_slice(b"\xff\x00garbage fwR1\x05\x00\x00\x00junk");
        let c = parse(&bytes);
        assert_eq!(timestamps(&c), [1, 2]);
        assert_eq!(c.bad_stretches, 1);
        assert!(c.skipped_bytes > third / 2);
    }

    #[test]
    fn records_after_a_corrupt_one_are_kept() {
        let records: Vec<Vec<u8>> = (1..=4).map(|ts| encode(&sample(ts * 1000))).collect();
        let mut bytes = Vec::new();
        for (i, r) in records.iter().enumerate() {
            let mut r = r.clone();
            if i == 1 {
                // Flip a payload byte: the checksum no longer matches.
                let last = r.len() - 1;
                r[last] ^= 0x55;
            }
            bytes.extend_from_slice(&r);
        }
        // And a torn write in the middle, followed by a good record.
        bytes.extend_from_slice(&records[0][..5]);
        bytes.extend_from_slice(&encode(&sample(9000)));
        let c = parse(&bytes);
        assert_eq!(timestamps(&c), [1000, 3000, 4000, 9000]);
        assert_eq!(c.bad_stretches, 2);
    }
}
