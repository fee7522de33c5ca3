//! Byte-level encoding shared by the sample chunks, the journal and the
//! rollup rows: LEB128 varints (zigzag for signed values) and deflate.
//!
//! Values are integers by the time they get here (see `series`), so a
//! column is a first value and then small deltas, which varints keep to a
//! byte or two and deflate squeezes further where they repeat.

use miniz_oxide::deflate::compress_to_vec;
use miniz_oxide::inflate::decompress_to_vec_with_limit;

/// Largest decoded blob accepted: a corrupt length never allocates more.
pub const MAX_INFLATED: usize = 64 << 20;

/// Deflate level for blobs written once and read rarely (chunks, rollups).
pub const LEVEL_SMALL: u8 = 6;
/// Deflate level for the journal, written on every flush.
pub const LEVEL_FAST: u8 = 1;

/// A blob that does not decode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("corrupt encoded data: {0}")]
pub struct DecodeError(pub &'static str);

pub fn put_u(buf: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        buf.push((v as u8) | 0x80);
        v >>= 7;
    }
    buf.push(v as u8);
}

pub fn put_i(buf: &mut Vec<u8>, v: i64) {
    put_u(buf, ((v << 1) ^ (v >> 63)) as u64);
}

/// A signed 128-bit value (rollup sums), zigzag and LEB128.
pub fn put_i128(buf: &mut Vec<u8>, v: i128) {
    let mut z = ((v << 1) ^ (v >> 127)) as u128;
    while z >= 0x80 {
        buf.push((z as u8) | 0x80);
        z >>= 7;
    }
    buf.push(z as u8);
}

pub fn put_bytes(buf: &mut Vec<u8>, bytes: &[u8]) {
    put_u(buf, bytes.len() as u64);
    buf.extend_from_slice(bytes);
}

/// Reads what the `put_*` functions wrote.
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    pub fn is_empty(&self) -> bool {
        self.pos >= self.buf.len()
    }

    pub fn u(&mut self) -> Result<u64, DecodeError> {
        let mut v: u64 = 0;
        for shift in (0..64).step_by(7) {
            let byte = *self
                .buf
                .get(self.pos)
                .ok_or(DecodeError("varint past the end"))?;
            self.pos += 1;
            v |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(DecodeError("varint too long"))
    }

    pub fn i(&mut self) -> Result<i64, DecodeError> {
        let z = self.u()?;
        Ok(((z >> 1) as i64) ^ -((z & 1) as i64))
    }

    pub fn i128(&mut self) -> Result<i128, DecodeError> {
        let mut z: u128 = 0;
        for shift in (0..128).step_by(7) {
            let byte = *self
                .buf
                .get(self.pos)
                .ok_or(DecodeError("varint past the end"))?;
            self.pos += 1;
            z |= u128::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(((z >> 1) as i128) ^ -((z & 1) as i128));
            }
        }
        Err(DecodeError("varint too long"))
    }

    /// A count that is about to size an allocation: never more than the
    /// bytes left could hold.
    pub fn len(&mut self) -> Result<usize, DecodeError> {
        let n = usize::try_from(self.u()?).map_err(|_| DecodeError("length overflows"))?;
        if n > self.buf.len().saturating_sub(self.pos).saturating_mul(8) + 64 {
            return Err(DecodeError("length longer than the data"));
        }
        Ok(n)
    }

    pub fn bytes(&mut self) -> Result<&'a [u8], DecodeError> {
        let n = usize::try_from(self.u()?).map_err(|_| DecodeError("length overflows"))?;
        self.take(n)
    }

    /// The next `n` bytes.
    pub fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|end| *end <= self.buf.len())
            .ok_or(DecodeError("bytes past the end"))?;
        let out = &self.buf[self.pos..end];
        self.pos = end;
        Ok(out)
    }
}

pub fn deflate(raw: &[u8], level: u8) -> Vec<u8> {
    compress_to_vec(raw, level)
}

pub fn inflate(packed: &[u8]) -> Result<Vec<u8>, DecodeError> {
    decompress_to_vec_with_limit(packed, MAX_INFLATED).map_err(|_| DecodeError("bad deflate data"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip_at_the_edges() {
        let values = [0, 1, -1, 63, -64, 64, i64::MAX, i64::MIN, 1 << 40];
        let mut buf = Vec::new();
        for v in values {
            put_i(&mut buf, v);
        }
        put_u(&mut buf, u64::MAX);
        put_i128(&mut buf, i128::MIN);
        put_i128(&mut buf, -12345678901234567890123);
        put_bytes(&mut buf, b"abc");
        let mut r = Reader::new(&buf);
        for v in values {
            assert_eq!(r.i().unwrap(), v);
        }
        assert_eq!(r.u().unwrap(), u64::MAX);
        assert_eq!(r.i128().unwrap(), i128::MIN);
        assert_eq!(r.i128().unwrap(), -12345678901234567890123);
        assert_eq!(r.bytes().unwrap(), b"abc");
        assert!(r.is_empty());
        assert!(r.u().is_err());
    }

    #[test]
    fn corrupt_input_is_an_error_not_a_panic() {
        assert!(Reader::new(&[0xff; 20]).u().is_err());
        let mut long = Vec::new();
        put_u(&mut long, 1 << 40);
        assert!(Reader::new(&long).len().is_err());
        assert!(Reader::new(&long).bytes().is_err());
        assert!(inflate(b"not deflate at all").is_err());
        let packed = deflate(&[7; 1000], LEVEL_SMALL);
        assert!(packed.len() < 50);
        assert_eq!(inflate(&packed).unwrap(), vec![7; 1000]);
    }
}
