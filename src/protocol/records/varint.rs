//! Zigzag varints, as Kafka's `ByteUtils` writes them inside v2 records.
//!
//! A signed value is zigzag-mapped (`0, -1, 1, -2 ...` to `0, 1, 2, 3 ...`) so that small
//! negative numbers stay short, then written seven bits at a time, least significant group
//! first, with the high bit of each byte saying "more follows".

use bytes::BufMut;

use crate::error::{Error, Result};

/// Bytes `v` takes as a zigzag varint (1 to 5).
pub(crate) const fn varint_len(v: i32) -> usize {
    let z = ((v << 1) ^ (v >> 31)) as u32;
    if z < 0x80 {
        return 1; // record deltas and small lengths: the common case
    }
    // Each byte carries 7 bits; `| 1` makes zero count as one significant bit.
    let bits = 32 - (z | 1).leading_zeros() as usize;
    bits.div_ceil(7)
}

/// Bytes `v` takes as a zigzag varlong (1 to 10).
pub(crate) const fn varlong_len(v: i64) -> usize {
    let z = ((v << 1) ^ (v >> 63)) as u64;
    if z < 0x80 {
        return 1;
    }
    let bits = 64 - (z | 1).leading_zeros() as usize;
    bits.div_ceil(7)
}

/// Bytes the varint prefix of an `n`-byte field takes (a length `n` zigzags to `2n`).
pub(crate) const fn len_prefix_len(n: usize) -> usize {
    if n < 0x40 {
        return 1;
    }
    let z = (n as u64).saturating_mul(2);
    let bits = 64 - (z | 1).leading_zeros() as usize;
    bits.div_ceil(7)
}

/// Varints and single bytes gathered on the stack, then copied into the batch with one
/// `put_slice`: a record's fixed fields cost one bounds-checked copy instead of one per byte.
pub(crate) struct Scratch {
    bytes: [u8; Scratch::CAPACITY],
    len: usize,
}

impl Scratch {
    /// More than the longest run written between two payload copies: a record's length,
    /// attributes, timestamp delta, offset delta and the key's, value's and header count's
    /// prefixes (5 + 1 + 10 + 5 + 5 + 5 + 5 = 36 bytes).
    const CAPACITY: usize = 48;

    pub(crate) const fn new() -> Self {
        Scratch {
            bytes: [0; Scratch::CAPACITY],
            len: 0,
        }
    }

    pub(crate) fn byte(&mut self, b: u8) {
        debug_assert!(self.len < Self::CAPACITY, "scratch overflow");
        if let Some(slot) = self.bytes.get_mut(self.len) {
            *slot = b;
            self.len += 1;
        }
    }

    pub(crate) fn varint(&mut self, v: i32) {
        self.unsigned(u64::from(((v << 1) ^ (v >> 31)) as u32));
    }

    pub(crate) fn varlong(&mut self, v: i64) {
        self.unsigned(((v << 1) ^ (v >> 63)) as u64);
    }

    fn unsigned(&mut self, mut z: u64) {
        while z >= 0x80 {
            self.byte((z as u8) | 0x80);
            z >>= 7;
        }
        self.byte(z as u8);
    }

    /// Appends what was gathered to `buf` and starts over.
    pub(crate) fn flush_into(&mut self, buf: &mut impl BufMut) {
        if self.len > 0 {
            buf.put_slice(&self.bytes[..self.len]);
            self.len = 0;
        }
    }
}

/// Reads a zigzag varint at `*pos`, advancing it.
///
/// Like Java's `ByteUtils.readVarint`, at most 5 bytes are read and bits beyond 32 in the
/// fifth byte are dropped; a sixth continuation byte is an error.
#[inline]
pub(crate) fn read_varint(buf: &[u8], pos: &mut usize) -> Result<i32> {
    let z = read_unsigned(buf, pos, 5, "varint")? as u32;
    Ok(((z >> 1) as i32) ^ -((z & 1) as i32))
}

/// Reads a zigzag varlong at `*pos`, advancing it (at most 10 bytes).
#[inline]
pub(crate) fn read_varlong(buf: &[u8], pos: &mut usize) -> Result<i64> {
    let z = read_unsigned(buf, pos, 10, "varlong")?;
    Ok(((z >> 1) as i64) ^ -((z & 1) as i64))
}

#[inline]
fn read_unsigned(buf: &[u8], pos: &mut usize, max_bytes: usize, what: &str) -> Result<u64> {
    // A record's varints are nearly all one or two bytes (deltas, lengths under 8 KiB):
    // decode those without the loop.
    let at = *pos;
    if let Some(&b0) = buf.get(at) {
        if b0 < 0x80 {
            *pos = at + 1;
            return Ok(u64::from(b0));
        }
        if let Some(&b1) = buf.get(at + 1) {
            if b1 < 0x80 {
                *pos = at + 2;
                return Ok(u64::from(b0 & 0x7f) | u64::from(b1) << 7);
            }
        }
    }
    read_unsigned_long(buf, pos, max_bytes, what)
}

#[inline(never)]
fn read_unsigned_long(buf: &[u8], pos: &mut usize, max_bytes: usize, what: &str) -> Result<u64> {
    let mut z = 0u64;
    for i in 0..max_bytes {
        let Some(&b) = buf.get(*pos + i) else {
            return Err(Error::corrupt(format!(
                "{what} runs past the end of the data"
            )));
        };
        // The shift is at most 9 * 7 = 63; high bits of the last byte fall off, as in Java.
        z |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            *pos += i + 1;
            return Ok(z);
        }
    }
    Err(Error::corrupt(format!(
        "{what} longer than {max_bytes} bytes"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc32(v: i32) -> Vec<u8> {
        let (mut b, mut s) = (Vec::new(), Scratch::new());
        s.varint(v);
        s.flush_into(&mut b);
        b
    }

    fn enc64(v: i64) -> Vec<u8> {
        let (mut b, mut s) = (Vec::new(), Scratch::new());
        s.varlong(v);
        s.flush_into(&mut b);
        b
    }

    #[test]
    fn zigzag_known_encodings() {
        assert_eq!(enc32(0), [0x00]);
        assert_eq!(enc32(-1), [0x01]);
        assert_eq!(enc32(1), [0x02]);
        assert_eq!(enc32(63), [0x7e]);
        assert_eq!(enc32(-64), [0x7f]);
        assert_eq!(enc32(64), [0x80, 0x01]);
        assert_eq!(enc32(-65), [0x81, 0x01]);
        assert_eq!(enc32(300), [0xd8, 0x04]);
        assert_eq!(enc32(i32::MAX), [0xfe, 0xff, 0xff, 0xff, 0x0f]);
        assert_eq!(enc32(i32::MIN), [0xff, 0xff, 0xff, 0xff, 0x0f]);
        assert_eq!(
            enc64(i64::MAX),
            [0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]
        );
        assert_eq!(
            enc64(i64::MIN),
            [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]
        );
        assert_eq!(enc64(-1), [0x01]);
    }

    #[test]
    fn lengths_match_encodings() {
        for v in [
            0,
            1,
            -1,
            63,
            -64,
            64,
            -65,
            8191,
            -8192,
            8192,
            i32::MAX,
            i32::MIN,
        ] {
            assert_eq!(varint_len(v), enc32(v).len(), "{v}");
        }
        for v in [0, -1, 1 << 35, -(1 << 35), i64::MAX, i64::MIN] {
            assert_eq!(varlong_len(v), enc64(v).len(), "{v}");
        }
        for n in [0usize, 63, 64, 8191, 8192, i32::MAX as usize] {
            assert_eq!(len_prefix_len(n), enc32(n as i32).len(), "{n}");
        }
    }

    #[test]
    fn round_trip_and_advance() {
        let (mut buf, mut s) = (Vec::new(), Scratch::new());
        for v in [0, -1, 1, 64, i32::MIN, i32::MAX] {
            s.varint(v);
        }
        s.varlong(i64::MIN);
        s.flush_into(&mut buf);
        let mut pos = 0;
        for v in [0, -1, 1, 64, i32::MIN, i32::MAX] {
            assert_eq!(read_varint(&buf, &mut pos).unwrap(), v);
        }
        assert_eq!(read_varlong(&buf, &mut pos).unwrap(), i64::MIN);
        assert_eq!(pos, buf.len());
    }

    #[test]
    fn scratch_gathers_in_order_and_flushes_once() {
        let (mut out, mut s) = (Vec::new(), Scratch::new());
        s.varint(300);
        s.byte(7);
        s.varlong(-1);
        s.flush_into(&mut out);
        s.flush_into(&mut out); // nothing left: writes nothing
        s.varint(1);
        s.flush_into(&mut out);
        assert_eq!(out, [0xd8, 0x04, 7, 0x01, 0x02]);
    }

    #[test]
    fn rejects_truncated_and_overlong() {
        let mut pos = 0;
        assert!(read_varint(&[0x80], &mut pos).is_err());
        assert!(read_varint(&[], &mut pos).is_err());
        assert!(read_varint(&[0xff; 6], &mut pos).is_err());
        assert!(read_varlong(&[0xff; 11], &mut pos).is_err());
        assert_eq!(pos, 0, "a failed read leaves the position alone");
        // Five bytes with high garbage bits: Java keeps the low 32 bits.
        assert_eq!(
            read_varint(&[0xfe, 0xff, 0xff, 0xff, 0x7f], &mut pos).unwrap(),
            i32::MAX
        );
    }
}
