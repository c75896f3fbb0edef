//! Decoded records, and the iterator that decodes a v2 batch's records lazily.

use std::ops::Range;

use bytes::Bytes;

use super::varint::{read_varint, read_varlong};
use crate::error::{Error, Result};
use crate::types::Header;

/// One record of a fetched batch.
///
/// `key`, `value` and header values are slices of the fetched buffer (or of the batch's
/// decompressed records), not copies; header keys are decoded to `String`, with invalid
/// UTF-8 replaced as Java's `Utils.utf8` does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// The record's offset in its partition.
    pub offset: i64,
    /// Create time, or the broker's log-append time when the batch says so (then every
    /// record of the batch carries the batch's max timestamp, as in Java); -1 for magic 0.
    pub timestamp: i64,
    /// The key; `None` is a null key.
    pub key: Option<Bytes>,
    /// The value; `None` is a null value (a tombstone on compacted topics).
    pub value: Option<Bytes>,
    /// The headers, in wire order (always empty for magic 0 and 1).
    pub headers: Vec<Header>,
}

/// The kind of a control record, read from its key (Java's `ControlRecordType`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ControlRecordType {
    /// A transaction was aborted: its records must be skipped under `read_committed`.
    Abort,
    /// A transaction was committed.
    Commit,
    /// Another type (KRaft uses 2 to 6); consumers ignore these.
    Other(i16),
}

impl ControlRecordType {
    /// Parses a control record's key: `version: i16` (0; newer versions are read the same
    /// way, as Java does) then `type: i16`.
    pub fn parse(key: &[u8]) -> Result<Self> {
        let [v0, v1, t0, t1, ..] = *key else {
            return Err(Error::corrupt(format!(
                "control record key of {} bytes, need at least 4",
                key.len()
            )));
        };
        let version = i16::from_be_bytes([v0, v1]);
        if version < 0 {
            return Err(Error::corrupt(format!(
                "control record key version {version}"
            )));
        }
        Ok(match i16::from_be_bytes([t0, t1]) {
            0 => ControlRecordType::Abort,
            1 => ControlRecordType::Commit,
            other => ControlRecordType::Other(other),
        })
    }

    /// The type id on the wire.
    pub fn id(self) -> i16 {
        match self {
            ControlRecordType::Abort => 0,
            ControlRecordType::Commit => 1,
            ControlRecordType::Other(id) => id,
        }
    }
}

/// The records of one batch, decoded one by one as the iterator advances.
///
/// After the first `Err` the iterator ends. A batch whose records do not add up to its
/// declared count and size yields its good records, then an error.
#[derive(Debug)]
pub struct Records {
    inner: Inner,
}

#[derive(Debug)]
enum Inner {
    V2(V2Records),
    Decoded(std::vec::IntoIter<Record>),
}

impl Records {
    pub(super) fn v2(
        data: Bytes,
        count: i32,
        base_offset: i64,
        base_timestamp: i64,
        log_append_time: Option<i64>,
    ) -> Result<Self> {
        let Ok(remaining) = u32::try_from(count) else {
            return Err(Error::corrupt(format!(
                "record batch declares {count} records"
            )));
        };
        Ok(Records {
            inner: Inner::V2(V2Records {
                data,
                pos: 0,
                remaining,
                base_offset,
                base_timestamp,
                log_append_time,
                failed: false,
            }),
        })
    }

    pub(super) fn decoded(records: Vec<Record>) -> Self {
        Records {
            inner: Inner::Decoded(records.into_iter()),
        }
    }
}

impl Iterator for Records {
    type Item = Result<Record>;

    fn next(&mut self) -> Option<Self::Item> {
        match &mut self.inner {
            Inner::V2(v2) => v2.next(),
            Inner::Decoded(records) => records.next().map(Ok),
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        match &self.inner {
            Inner::V2(v2) if v2.failed => (0, Some(0)),
            // One more for the error a malformed batch ends with.
            Inner::V2(v2) => (0, Some(v2.remaining as usize + 1)),
            Inner::Decoded(records) => records.size_hint(),
        }
    }
}

#[derive(Debug)]
struct V2Records {
    /// The records section, uncompressed.
    data: Bytes,
    pos: usize,
    remaining: u32,
    base_offset: i64,
    base_timestamp: i64,
    log_append_time: Option<i64>,
    failed: bool,
}

impl V2Records {
    fn next(&mut self) -> Option<Result<Record>> {
        if self.failed {
            return None;
        }
        if self.remaining == 0 {
            if self.pos == self.data.len() {
                return None;
            }
            self.failed = true;
            return Some(Err(Error::corrupt(format!(
                "{} bytes left in the batch after its declared records",
                self.data.len() - self.pos
            ))));
        }
        match self.decode() {
            Ok(record) => {
                self.remaining -= 1;
                Some(Ok(record))
            }
            Err(e) => {
                self.failed = true;
                Some(Err(e))
            }
        }
    }

    fn decode(&mut self) -> Result<Record> {
        let data = &self.data[..];
        let mut pos = self.pos;
        let length = read_varint(data, &mut pos)?;
        let end = usize::try_from(length)
            .ok()
            .and_then(|len| pos.checked_add(len))
            .filter(|&end| end <= data.len())
            .ok_or_else(|| {
                Error::corrupt(format!(
                    "record length {length} exceeds the {} bytes left in the batch",
                    data.len() - pos
                ))
            })?;
        // Every read below stays inside this record's declared length.
        let body = &data[..end];
        pos += 1; // attributes: unused by all record versions so far
        let timestamp_delta = read_varlong(body, &mut pos)?;
        let offset_delta = read_varint(body, &mut pos)?;
        let key = read_nullable(body, &mut pos)?;
        let value = read_nullable(body, &mut pos)?;
        let header_count = read_varint(body, &mut pos)?;
        // Each header takes at least two bytes, so the count cannot force a large allocation.
        let header_count = usize::try_from(header_count)
            .ok()
            .filter(|&n| n <= end.saturating_sub(pos))
            .ok_or_else(|| Error::corrupt(format!("invalid record header count {header_count}")))?;
        let mut headers = Vec::with_capacity(header_count);
        for _ in 0..header_count {
            let key_len = read_varint(body, &mut pos)?;
            let key = match usize::try_from(key_len) {
                Ok(len) => take(body, &mut pos, len)?,
                Err(_) => {
                    return Err(Error::corrupt(format!(
                        "record header key length {key_len}"
                    )))
                }
            };
            let key = String::from_utf8_lossy(&body[key]).into_owned();
            let value = read_nullable(body, &mut pos)?.map(|r| self.data.slice(r));
            headers.push(Header { key, value });
        }
        if pos != end {
            return Err(Error::corrupt(format!(
                "record declares {length} bytes but its fields take {}",
                length as usize + pos - end
            )));
        }
        self.pos = end;
        Ok(Record {
            offset: self.base_offset.wrapping_add(i64::from(offset_delta)),
            timestamp: self
                .log_append_time
                .unwrap_or_else(|| self.base_timestamp.wrapping_add(timestamp_delta)),
            key: key.map(|r| self.data.slice(r)),
            value: value.map(|r| self.data.slice(r)),
            headers,
        })
    }
}

/// A varint length then that many bytes; a negative length is null, as in Java.
fn read_nullable(buf: &[u8], pos: &mut usize) -> Result<Option<Range<usize>>> {
    let len = read_varint(buf, pos)?;
    match usize::try_from(len) {
        Ok(len) => take(buf, pos, len).map(Some),
        Err(_) => Ok(None),
    }
}

fn take(buf: &[u8], pos: &mut usize, len: usize) -> Result<Range<usize>> {
    let start = *pos;
    match start.checked_add(len) {
        Some(end) if end <= buf.len() => {
            *pos = end;
            Ok(start..end)
        }
        _ => Err(Error::corrupt(format!(
            "field of {len} bytes runs past the end of its record"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_keys_parse_like_java() {
        assert_eq!(
            ControlRecordType::parse(&[0, 0, 0, 0]).unwrap(),
            ControlRecordType::Abort
        );
        assert_eq!(
            ControlRecordType::parse(&[0, 0, 0, 1]).unwrap(),
            ControlRecordType::Commit
        );
        // A newer key version is read as version 0.
        assert_eq!(
            ControlRecordType::parse(&[0, 3, 0, 1, 9]).unwrap(),
            ControlRecordType::Commit
        );
        assert_eq!(
            ControlRecordType::parse(&[0, 0, 0, 5]).unwrap(),
            ControlRecordType::Other(5)
        );
        assert!(ControlRecordType::parse(&[0, 0, 0]).is_err());
        assert!(ControlRecordType::parse(&[0xff, 0xff, 0, 0]).is_err());
        assert_eq!(ControlRecordType::Commit.id(), 1);
    }

    fn one_record(bytes: &[u8], count: i32) -> Vec<Result<Record>> {
        Records::v2(Bytes::copy_from_slice(bytes), count, 100, 1000, None)
            .unwrap()
            .collect()
    }

    #[test]
    fn decodes_a_hand_written_record() {
        // length 11, attrs 0, ts delta 5, offset delta 1, key "k", value null,
        // one header "h" -> "v". Varints are zigzag: 11 -> 22, 5 -> 10, -1 -> 1.
        let rec = [22, 0, 10, 2, 2, b'k', 1, 2, 2, b'h', 2, b'v'];
        let out = one_record(&rec, 1);
        let r = out[0].as_ref().unwrap();
        assert_eq!((r.offset, r.timestamp), (101, 1005));
        assert_eq!(r.key.as_deref(), Some(&b"k"[..]));
        assert_eq!(r.value, None);
        assert_eq!(r.headers, vec![Header::new("h", &b"v"[..])]);
        assert_eq!(out.len(), 1);
    }

    #[test]
    fn length_mismatches_are_corrupt() {
        // Declared length 12 but the fields take 11, then one trailing byte.
        let rec = [24, 0, 10, 2, 2, b'k', 1, 2, 2, b'h', 2, b'v', 0];
        assert!(one_record(&rec, 1)[0].is_err());
        // Right length, but a count of 1 leaves a second record unread.
        let two = [12, 0, 0, 0, 1, 1, 0, 12, 0, 0, 2, 1, 1, 0];
        let out = one_record(&two, 1);
        assert!(out[0].is_ok() && out[1].is_err() && out.len() == 2);
        // A count of 3 runs out of data.
        let out = one_record(&two, 3);
        assert!(out[2].is_err() && out.len() == 3);
        assert!(Records::v2(Bytes::new(), -1, 0, 0, None).is_err());
    }

    #[test]
    fn log_append_time_overrides_deltas() {
        let rec = [12, 0, 10, 0, 1, 1, 0];
        let r = Records::v2(Bytes::copy_from_slice(&rec), 1, 0, 1000, Some(77))
            .unwrap()
            .next();
        assert_eq!(r.unwrap().unwrap().timestamp, 77);
    }
}
