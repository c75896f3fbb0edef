//! Legacy message sets (magic 0 and 1), which a broker can still return from old log
//! segments. Decoded into the same [`Record`] type as v2 batches; never written.
//!
//! ```text
//! offset i64 | size i32 | crc u32 | magic i8 | attributes i8 | timestamp i64 (magic 1 only)
//!   | key: i32 length (-1 = null) + bytes | value: i32 length + bytes
//! ```
//!
//! The CRC is CRC32 (not CRC32C) from the magic byte to the end. A compressed message, the
//! "wrapper", holds a compressed message set in its value. Its inner offsets are absolute
//! for magic 0 and relative (0, 1, ...) for magic 1, where the wrapper carries the last
//! inner record's absolute offset. Inner messages cannot themselves be compressed.

use std::ops::Range;

use bytes::Bytes;

use super::batch::RecordBatch;
use super::compression::Compression;
use super::record::Record;
use super::{
    array_at, i32_at, i64_at, LENGTH_OFFSET, LOG_OVERHEAD, MAGIC_OFFSET, TIMESTAMP_TYPE_MASK,
};
use crate::error::{Error, Result};

pub(super) const ATTRIBUTES_OFFSET: usize = 17;
pub(super) const TIMESTAMP_OFFSET: usize = 18;
const CRC_OFFSET: usize = 12;
const MIN_SIZE_V0: usize = 14;
const MIN_SIZE_V1: usize = 22;

/// CRC32 of a legacy message (offset and length fields included in `entry`).
pub(super) fn crc_of(entry: &[u8]) -> u32 {
    let mut crc = flate2::Crc::new();
    crc.update(entry.get(MAGIC_OFFSET..).unwrap_or_default());
    crc.sum()
}

/// One message's fields; `key` and `value` index the buffer it was parsed from.
struct Message {
    offset: i64,
    magic: i8,
    attributes: i8,
    timestamp: i64,
    key: Option<Range<usize>>,
    value: Option<Range<usize>>,
}

/// Parses the message at `buf[start..end]`, offset and length fields included.
fn parse(buf: &[u8], start: usize, end: usize) -> Result<Message> {
    let entry = buf.get(start..end).unwrap_or_default();
    let magic = i8::from_be_bytes(array_at(entry, MAGIC_OFFSET));
    let (min, key_at) = match magic {
        0 => (MIN_SIZE_V0, TIMESTAMP_OFFSET),
        1 => (MIN_SIZE_V1, TIMESTAMP_OFFSET + 8),
        _ => {
            return Err(Error::corrupt(format!(
                "magic {magic} inside a legacy message set"
            )))
        }
    };
    if entry.len() < LOG_OVERHEAD + min {
        return Err(Error::corrupt(format!(
            "magic {magic} message of {} bytes is too short",
            entry.len()
        )));
    }
    let mut pos = key_at;
    let key = sized(entry, &mut pos)?;
    let value = sized(entry, &mut pos)?;
    let shift = |r: Range<usize>| start + r.start..start + r.end;
    Ok(Message {
        offset: i64_at(entry, 0),
        magic,
        attributes: i8::from_be_bytes(array_at(entry, ATTRIBUTES_OFFSET)),
        timestamp: if magic == 0 {
            -1
        } else {
            i64_at(entry, TIMESTAMP_OFFSET)
        },
        key: key.map(shift),
        value: value.map(shift),
    })
}

/// An `i32` length (negative = null) then the bytes.
fn sized(entry: &[u8], pos: &mut usize) -> Result<Option<Range<usize>>> {
    let len = i32_at(entry, *pos);
    let start = *pos + 4;
    if start > entry.len() {
        return Err(Error::corrupt("legacy message ends inside a length field"));
    }
    *pos = start;
    let Ok(len) = usize::try_from(len) else {
        return Ok(None);
    };
    match start.checked_add(len) {
        Some(end) if end <= entry.len() => {
            *pos = end;
            Ok(Some(start..end))
        }
        _ => Err(Error::corrupt(format!(
            "legacy message field of {len} bytes runs past its end"
        ))),
    }
}

fn record(m: &Message, buf: &Bytes, offset: i64, timestamp: i64) -> Record {
    Record {
        offset,
        timestamp,
        key: m.key.clone().map(|r| buf.slice(r)),
        value: m.value.clone().map(|r| buf.slice(r)),
        headers: Vec::new(),
    }
}

/// The records of a legacy message: itself, or the messages its compressed value holds.
pub(super) fn records(batch: &RecordBatch, max_decompressed: usize) -> Result<Vec<Record>> {
    let data = batch.as_bytes();
    let outer = parse(data, 0, data.len())?;
    let codec = Compression::from_attributes(i16::from(outer.attributes))?;
    if codec == Compression::None {
        return Ok(vec![record(&outer, data, outer.offset, outer.timestamp)]);
    }
    if matches!(codec, Compression::Zstd { .. }) {
        return Err(Error::corrupt(format!(
            "zstd in a magic {} message",
            outer.magic
        )));
    }
    let value = outer
        .value
        .clone()
        .ok_or_else(|| Error::corrupt("compressed legacy message with a null value"))?;
    let inner =
        Bytes::from(codec.decompress_for_magic(&data[value], max_decompressed, outer.magic)?);

    let mut messages = Vec::new();
    let mut pos = 0;
    while inner.len() - pos >= LOG_OVERHEAD {
        let size = i32_at(&inner, pos + LENGTH_OFFSET);
        let end = match usize::try_from(size) {
            Ok(n) if n >= MIN_SIZE_V0 => pos + LOG_OVERHEAD + n,
            _ => {
                return Err(Error::corrupt(format!(
                    "inner legacy message of size {size}"
                )))
            }
        };
        if end > inner.len() {
            // Java's DataLogInputStream also ends quietly at a partial trailing message.
            break;
        }
        let m = parse(&inner, pos, end)?;
        let entry = &inner[pos..end];
        if crc_of(entry) != u32::from_be_bytes(array_at(entry, CRC_OFFSET)) {
            return Err(Error::corrupt(format!(
                "inner legacy message at offset {} fails its CRC",
                m.offset
            )));
        }
        if m.attributes & 0x07 != 0 {
            return Err(Error::corrupt(
                "compressed message nested in a compressed message",
            ));
        }
        messages.push(m);
        pos = end;
    }
    let Some(last) = messages.last() else {
        return Err(Error::corrupt(
            "compressed legacy message holds no messages",
        ));
    };

    // Magic 0 inner offsets are absolute. Some librdkafka versions wrote magic 1 wrappers
    // with offset 0; Java keeps their relative offsets as they are, and so does this.
    let base = if outer.magic == 0 || outer.offset == 0 {
        0
    } else if outer.offset < last.offset {
        return Err(Error::corrupt(format!(
            "wrapper offset {} is below its last inner offset {}",
            outer.offset, last.offset
        )));
    } else {
        outer.offset - last.offset
    };
    let log_append = outer.magic == 1 && i16::from(outer.attributes) & TIMESTAMP_TYPE_MASK != 0;
    Ok(messages
        .iter()
        .map(|m| {
            let timestamp = match (m.magic, log_append) {
                (0, _) => -1,
                (_, true) => outer.timestamp,
                (_, false) => m.timestamp,
            };
            record(m, &inner, base.wrapping_add(m.offset), timestamp)
        })
        .collect())
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::protocol::records::RecordBatches;

    /// Encodes one legacy message, the way Kafka 0.10 wrote them.
    pub(crate) fn message(
        offset: i64,
        magic: i8,
        attributes: i8,
        timestamp: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
    ) -> Vec<u8> {
        let mut body = vec![magic as u8, attributes as u8];
        if magic == 1 {
            body.extend_from_slice(&timestamp.to_be_bytes());
        }
        for field in [key, value] {
            match field {
                None => body.extend_from_slice(&(-1i32).to_be_bytes()),
                Some(b) => {
                    body.extend_from_slice(&(b.len() as i32).to_be_bytes());
                    body.extend_from_slice(b);
                }
            }
        }
        let mut crc = flate2::Crc::new();
        crc.update(&body);
        let mut out = offset.to_be_bytes().to_vec();
        out.extend_from_slice(&(body.len() as i32 + 4).to_be_bytes());
        out.extend_from_slice(&crc.sum().to_be_bytes());
        out.extend_from_slice(&body);
        out
    }

    fn decode(data: Vec<u8>) -> Result<Vec<Record>> {
        let batch = RecordBatches::new(Bytes::from(data)).next().unwrap()?;
        batch.validate_crc()?;
        batch.records(1 << 20)?.collect()
    }

    #[test]
    fn uncompressed_v0_and_v1() {
        let r = decode(message(7, 0, 0, 0, Some(b"k"), Some(b"v"))).unwrap();
        assert_eq!((r[0].offset, r[0].timestamp), (7, -1));
        assert_eq!(r[0].key.as_deref(), Some(&b"k"[..]));
        let r = decode(message(8, 1, 0, 1234, None, Some(b""))).unwrap();
        assert_eq!(
            (r[0].offset, r[0].timestamp, r[0].key.clone()),
            (8, 1234, None)
        );
        assert_eq!(r[0].value.as_deref(), Some(&b""[..]));
    }

    fn wrapper(
        magic: i8,
        codec: Compression,
        log_append: bool,
        outer_offset: i64,
        inner_offsets: [i64; 3],
    ) -> Vec<u8> {
        let mut set = Vec::new();
        for (i, off) in inner_offsets.into_iter().enumerate() {
            set.extend(message(
                off,
                magic,
                0,
                100 + i as i64,
                None,
                Some(format!("v{i}").as_bytes()),
            ));
        }
        let mut compressed = Vec::new();
        codec.compress(&set, &mut compressed).unwrap();
        let attrs = codec.id() as i8 | if log_append { 0x08 } else { 0 };
        message(outer_offset, magic, attrs, 999, None, Some(&compressed))
    }

    #[test]
    fn compressed_wrappers_use_java_offset_rules() {
        for codec in [
            Compression::Gzip { level: None },
            Compression::Snappy,
            Compression::Lz4 { level: None },
        ] {
            // Magic 1: relative inner offsets, wrapper holds the last absolute offset.
            let r = decode(wrapper(1, codec, false, 52, [0, 1, 2])).unwrap();
            let got: Vec<_> = r.iter().map(|r| (r.offset, r.timestamp)).collect();
            assert_eq!(got, [(50, 100), (51, 101), (52, 102)], "{codec}");
            assert_eq!(r[2].value.as_deref(), Some(&b"v2"[..]));
            // Magic 0: absolute inner offsets.
            let r = decode(wrapper(0, codec, false, 12, [10, 11, 12])).unwrap();
            assert_eq!(r.iter().map(|r| r.offset).collect::<Vec<_>>(), [10, 11, 12]);
            assert!(r.iter().all(|r| r.timestamp == -1));
        }
        // Log-append time: every inner record takes the wrapper's timestamp.
        let r = decode(wrapper(
            1,
            Compression::Gzip { level: None },
            true,
            2,
            [0, 1, 2],
        ))
        .unwrap();
        assert!(r.iter().all(|r| r.timestamp == 999));
        // librdkafka's zero wrapper offset keeps the relative offsets.
        let r = decode(wrapper(1, Compression::Snappy, false, 0, [0, 1, 2])).unwrap();
        assert_eq!(r[2].offset, 2);
        assert!(decode(wrapper(1, Compression::Snappy, false, 1, [0, 1, 2])).is_err());
    }

    #[test]
    fn magic_0_lz4_skips_the_broken_header_checksum() {
        let mut set = message(5, 0, 0, 0, None, Some(b"old"));
        let mut lz4 = Vec::new();
        Compression::Lz4 { level: None }
            .compress(&std::mem::take(&mut set), &mut lz4)
            .unwrap();
        lz4[6] ^= 0x5a; // what pre-0.10 clients wrote: a checksum over the wrong bytes
        let r = decode(message(5, 0, 3, 0, None, Some(&lz4))).unwrap();
        assert_eq!(r[0].value.as_deref(), Some(&b"old"[..]));
        assert!(
            decode(message(5, 1, 3, 0, None, Some(&lz4))).is_err(),
            "magic 1 checks it"
        );
    }

    #[test]
    fn bad_legacy_data_is_corrupt() {
        let mut m = message(1, 1, 0, 5, Some(b"k"), Some(b"v"));
        let last = m.len() - 1;
        m[last] ^= 1;
        let batch = RecordBatches::new(Bytes::from(m)).next().unwrap().unwrap();
        assert!(batch.validate_crc().is_err());
        // Nested compression, zstd and an empty compressed set are refused.
        let gz = wrapper(1, Compression::Gzip { level: None }, false, 2, [0, 1, 2]);
        let mut nested = Vec::new();
        Compression::Gzip { level: None }
            .compress(&gz, &mut nested)
            .unwrap();
        assert!(decode(message(9, 1, 1, 0, None, Some(&nested))).is_err());
        assert!(decode(message(9, 1, 4, 0, None, Some(b"zstd?"))).is_err());
        let mut empty = Vec::new();
        Compression::Gzip { level: None }
            .compress(b"", &mut empty)
            .unwrap();
        assert!(decode(message(9, 1, 1, 0, None, Some(&empty))).is_err());
        assert!(decode(message(9, 1, 1, 0, None, None)).is_err());
    }
}
