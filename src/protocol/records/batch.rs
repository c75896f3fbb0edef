//! Splitting a fetched `records` buffer into batches, and reading one batch's header.

use std::fmt;

use bytes::Bytes;

use super::compression::Compression;
use super::record::{ControlRecordType, Records};
use super::{
    array_at, builder, i16_at, i32_at, i64_at, legacy, ATTRIBUTES_OFFSET, BASE_SEQUENCE_OFFSET,
    BASE_TIMESTAMP_OFFSET, COMPRESSION_MASK, CONTROL_MASK, CRC_OFFSET, DELETE_HORIZON_MASK,
    LAST_OFFSET_DELTA_OFFSET, LENGTH_OFFSET, LOG_OVERHEAD, MAGIC_OFFSET, MAX_TIMESTAMP_OFFSET,
    PARTITION_LEADER_EPOCH_OFFSET, PRODUCER_EPOCH_OFFSET, PRODUCER_ID_OFFSET, RECORDS_COUNT_OFFSET,
    RECORD_BATCH_OVERHEAD, TIMESTAMP_TYPE_MASK, TRANSACTIONAL_MASK,
};
use crate::error::{Error, Result};

/// The smallest legacy message: crc, magic, attributes, key length, value length.
const LEGACY_MIN_SIZE_V0: usize = 14;
/// The same with magic 1's timestamp.
const LEGACY_MIN_SIZE_V1: usize = 22;

/// What a batch's timestamps mean (Java's `TimestampType`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TimestampType {
    /// Magic 0 messages carry no timestamp.
    NoTimestamp,
    /// Set by the producer (`message.timestamp.type=CreateTime`, the default).
    CreateTime,
    /// Set by the broker when it appended the batch.
    LogAppendTime,
}

/// The batches of one partition's `records` field in a Fetch response.
///
/// Yields each complete batch as a zero-copy [`RecordBatch`]. The broker cuts the response at
/// the fetch size limit, so the last batch is often incomplete: iteration then ends
/// quietly and [`truncated`](Self::truncated) says so. If no batch at all was complete, the
/// batch at the fetch offset is larger than `max.partition.fetch.bytes` allows to be fetched.
///
/// A length or magic byte that cannot be right is an `Err`, after which iteration ends.
///
/// ```no_run
/// use kafka_client::protocol::records::{RecordBatches, DEFAULT_MAX_DECOMPRESSED_SIZE};
///
/// # fn handle(records: bytes::Bytes, fetch_offset: i64) -> kafka_client::Result<()> {
/// let mut batches = RecordBatches::new(records); // one partition's `records` field
/// for batch in batches.by_ref() {
///     let batch = batch?;
///     batch.validate_crc()?; // check.crcs=true
///     if batch.is_control() {
///         continue; // transaction markers are not application records
///     }
///     for record in batch.records(DEFAULT_MAX_DECOMPRESSED_SIZE)? {
///         let record = record?;
///         if record.offset >= fetch_offset {
///             println!("{} {:?}", record.offset, record.value);
///         }
///     }
/// }
/// if batches.truncated() {
///     // Fine after complete batches; with none, the next batch exceeds the fetch size.
/// }
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct RecordBatches {
    data: Bytes,
    pos: usize,
    truncated: bool,
    truncated_size: Option<usize>,
    done: bool,
}

impl RecordBatches {
    /// Batches of `data`, the `records` bytes of one fetched partition.
    pub fn new(data: Bytes) -> Self {
        RecordBatches {
            data,
            pos: 0,
            truncated: false,
            truncated_size: None,
            done: false,
        }
    }

    /// Whether iteration stopped at an incomplete trailing batch.
    pub fn truncated(&self) -> bool {
        self.truncated
    }

    /// The full size of the incomplete trailing batch, when enough of its header arrived
    /// to read it.
    pub fn truncated_batch_size(&self) -> Option<usize> {
        self.truncated_size
    }

    fn fail(&mut self, reason: String) -> Option<Result<RecordBatch>> {
        self.done = true;
        Some(Err(Error::corrupt(format!(
            "batch at byte {} of the fetched records: {reason}",
            self.pos
        ))))
    }

    fn stop_truncated(&mut self, size: Option<usize>) -> Option<Result<RecordBatch>> {
        self.done = true;
        self.truncated = true;
        self.truncated_size = size;
        None
    }
}

impl Iterator for RecordBatches {
    type Item = Result<RecordBatch>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let rest = self.data.get(self.pos..).unwrap_or_default();
        if rest.is_empty() {
            self.done = true;
            return None;
        }
        if rest.len() < LOG_OVERHEAD {
            return self.stop_truncated(None);
        }
        // As Java's ByteBufferLogInputStream: check the size against the smallest format
        // first, then read the magic byte, then the size that magic needs.
        let declared = i32_at(rest, LENGTH_OFFSET);
        let size = match usize::try_from(declared) {
            Ok(n) if n >= LEGACY_MIN_SIZE_V0 => n,
            _ => {
                return self.fail(format!(
                    "length {declared} is below the minimum of {LEGACY_MIN_SIZE_V0}"
                ))
            }
        };
        let total = size.saturating_add(LOG_OVERHEAD);
        let Some(&magic) = rest.get(MAGIC_OFFSET) else {
            return self.stop_truncated(Some(total));
        };
        let min = match magic {
            0 => LEGACY_MIN_SIZE_V0 + LOG_OVERHEAD,
            1 => LEGACY_MIN_SIZE_V1 + LOG_OVERHEAD,
            2 => RECORD_BATCH_OVERHEAD,
            _ => return self.fail(format!("unknown magic {}", magic as i8)),
        };
        if total < min {
            return self.fail(format!(
                "{total} bytes is below the {min}-byte minimum of magic {magic}"
            ));
        }
        if rest.len() < total {
            return self.stop_truncated(Some(total));
        }
        let batch = RecordBatch {
            data: self.data.slice(self.pos..self.pos + total),
        };
        self.pos += total;
        Some(Ok(batch))
    }
}

/// One batch (or, for magic 0 and 1, one possibly-compressed message), as a zero-copy view
/// of the fetched bytes.
///
/// Header accessors read the bytes in place. For legacy messages they report what the v2
/// header would hold: no producer state, partition leader epoch -1.
#[derive(Clone, PartialEq, Eq)]
pub struct RecordBatch {
    /// Offset, length and content; at least the format's minimum size (checked when split).
    data: Bytes,
}

impl RecordBatch {
    /// Parses `data` as exactly one batch (for instance the output of
    /// [`RecordBatchBuilder::build`](super::RecordBatchBuilder::build)).
    pub fn parse(data: Bytes) -> Result<Self> {
        let len = data.len();
        let mut batches = RecordBatches::new(data);
        match batches.next() {
            Some(Ok(batch)) if batch.size() == len => Ok(batch),
            Some(Err(e)) => Err(e),
            _ => Err(Error::corrupt(format!(
                "{len} bytes are not exactly one record batch"
            ))),
        }
    }

    /// The whole batch, as fetched.
    pub fn as_bytes(&self) -> &Bytes {
        &self.data
    }

    /// The batch's size in bytes, offset and length fields included.
    pub fn size(&self) -> usize {
        self.data.len()
    }

    /// The message format version: 2, or 0 and 1 for legacy messages.
    pub fn magic(&self) -> i8 {
        i8::from_be_bytes(array_at(&self.data, MAGIC_OFFSET))
    }

    fn is_v2(&self) -> bool {
        self.magic() >= 2
    }

    /// The first record's offset. For a legacy compressed message this is only known after
    /// decoding, so the message's own offset (its last record's) is returned.
    pub fn base_offset(&self) -> i64 {
        i64_at(&self.data, 0)
    }

    /// The last record's offset (base offset plus `lastOffsetDelta`). It stays valid when
    /// compaction removed records, so the consumer resumes at `last_offset() + 1`.
    pub fn last_offset(&self) -> i64 {
        if self.is_v2() {
            self.base_offset()
                .wrapping_add(i64::from(i32_at(&self.data, LAST_OFFSET_DELTA_OFFSET)))
        } else {
            self.base_offset()
        }
    }

    /// The leader epoch of the broker that appended the batch, or -1.
    pub fn partition_leader_epoch(&self) -> i32 {
        if self.is_v2() {
            i32_at(&self.data, PARTITION_LEADER_EPOCH_OFFSET)
        } else {
            -1
        }
    }

    /// The stored checksum: CRC32C for v2, CRC32 for legacy messages.
    pub fn crc(&self) -> u32 {
        let at = if self.is_v2() {
            CRC_OFFSET
        } else {
            LOG_OVERHEAD
        };
        u32::from_be_bytes(array_at(&self.data, at))
    }

    /// Checks the stored checksum against the bytes (the consumer's `check.crcs`).
    pub fn validate_crc(&self) -> Result<()> {
        let computed = if self.is_v2() {
            builder::crc_of(&self.data)
        } else {
            legacy::crc_of(&self.data)
        };
        if computed == self.crc() {
            return Ok(());
        }
        Err(Error::corrupt(format!(
            "record batch at offset {} has CRC {:#010x}, its bytes give {computed:#010x}",
            self.base_offset(),
            self.crc()
        )))
    }

    /// The raw attributes (legacy messages have one byte of them).
    pub fn attributes(&self) -> i16 {
        if self.is_v2() {
            i16_at(&self.data, ATTRIBUTES_OFFSET)
        } else {
            i16::from(i8::from_be_bytes(array_at(
                &self.data,
                legacy::ATTRIBUTES_OFFSET,
            )))
        }
    }

    /// The codec of the records (default levels); an unknown codec id is corrupt data.
    pub fn compression(&self) -> Result<Compression> {
        Compression::from_attributes(self.attributes() & COMPRESSION_MASK)
    }

    /// What the batch's timestamps mean.
    pub fn timestamp_type(&self) -> TimestampType {
        if self.magic() == 0 {
            TimestampType::NoTimestamp
        } else if self.attributes() & TIMESTAMP_TYPE_MASK != 0 {
            TimestampType::LogAppendTime
        } else {
            TimestampType::CreateTime
        }
    }

    /// Whether the batch belongs to a transaction.
    pub fn is_transactional(&self) -> bool {
        self.is_v2() && self.attributes() & TRANSACTIONAL_MASK != 0
    }

    /// Whether this is a control batch (transaction markers), never shown to applications.
    pub fn is_control(&self) -> bool {
        self.is_v2() && self.attributes() & CONTROL_MASK != 0
    }

    /// The time after which the log cleaner may remove tombstones and transaction markers,
    /// when set; the base timestamp field holds it then.
    pub fn delete_horizon_ms(&self) -> Option<i64> {
        (self.is_v2() && self.attributes() & DELETE_HORIZON_MASK != 0)
            .then(|| self.base_timestamp())
    }

    /// The producer id, or -1.
    pub fn producer_id(&self) -> i64 {
        if self.is_v2() {
            i64_at(&self.data, PRODUCER_ID_OFFSET)
        } else {
            -1
        }
    }

    /// The producer epoch, or -1.
    pub fn producer_epoch(&self) -> i16 {
        if self.is_v2() {
            i16_at(&self.data, PRODUCER_EPOCH_OFFSET)
        } else {
            -1
        }
    }

    /// The first record's sequence number, or -1.
    pub fn base_sequence(&self) -> i32 {
        if self.is_v2() {
            i32_at(&self.data, BASE_SEQUENCE_OFFSET)
        } else {
            -1
        }
    }

    /// The declared number of records; `None` for a legacy compressed message, whose count
    /// is only known after decoding.
    pub fn record_count(&self) -> Option<i32> {
        if self.is_v2() {
            Some(i32_at(&self.data, RECORDS_COUNT_OFFSET))
        } else if self.attributes() & COMPRESSION_MASK == 0 {
            Some(1)
        } else {
            None
        }
    }

    /// The timestamp record deltas are relative to (the first record's create time); -1
    /// for magic 0.
    pub fn base_timestamp(&self) -> i64 {
        match self.magic() {
            0 => -1,
            1 => i64_at(&self.data, legacy::TIMESTAMP_OFFSET),
            _ => i64_at(&self.data, BASE_TIMESTAMP_OFFSET),
        }
    }

    /// The largest record timestamp, or the log-append time; -1 for magic 0.
    pub fn max_timestamp(&self) -> i64 {
        if self.is_v2() {
            i64_at(&self.data, MAX_TIMESTAMP_OFFSET)
        } else {
            self.base_timestamp()
        }
    }

    /// The batch's records. A compressed batch is decompressed here, once, into one buffer
    /// that every record's key and value then slice; `max_decompressed` caps that buffer
    /// ([`DEFAULT_MAX_DECOMPRESSED_SIZE`](super::DEFAULT_MAX_DECOMPRESSED_SIZE) is a sane
    /// default). The CRC is not checked here: call [`validate_crc`](Self::validate_crc)
    /// first when `check.crcs` is on.
    pub fn records(&self, max_decompressed: usize) -> Result<Records> {
        if !self.is_v2() {
            return legacy::records(self, max_decompressed).map(Records::decoded);
        }
        let count = i32_at(&self.data, RECORDS_COUNT_OFFSET);
        if count == 0 {
            // Compaction can empty a batch and keep it for its offsets and producer state;
            // as in Java, there is nothing to decode (or decompress) then.
            return Ok(Records::decoded(Vec::new()));
        }
        let section = self.data.slice(RECORD_BATCH_OVERHEAD..);
        let data = match self.compression()? {
            Compression::None => section,
            codec => Bytes::from(codec.decompress(&section, max_decompressed)?),
        };
        let log_append_time =
            (self.timestamp_type() == TimestampType::LogAppendTime).then(|| self.max_timestamp());
        Records::v2(
            data,
            count,
            self.base_offset(),
            self.base_timestamp(),
            log_append_time,
        )
    }

    /// For a control batch, the type of its marker (read from its one record's key);
    /// `None` for other batches and for a control batch compaction emptied.
    pub fn control_record_type(&self) -> Result<Option<ControlRecordType>> {
        if !self.is_control() {
            return Ok(None);
        }
        // A control record is a handful of bytes; a small cap is plenty.
        match self.records(64 * 1024)?.next() {
            None => Ok(None),
            Some(record) => {
                let key = record?
                    .key
                    .ok_or_else(|| Error::corrupt("control record without a key"))?;
                ControlRecordType::parse(&key).map(Some)
            }
        }
    }
}

impl fmt::Debug for RecordBatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecordBatch")
            .field("magic", &self.magic())
            .field("offsets", &(self.base_offset()..=self.last_offset()))
            .field("count", &self.record_count())
            .field("compression", &(self.attributes() & COMPRESSION_MASK))
            .field("transactional", &self.is_transactional())
            .field("control", &self.is_control())
            .field("producer_id", &self.producer_id())
            .field("size", &self.size())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::records::{ProducerState, RecordBatchBuilder};

    fn batch(values: &[&[u8]]) -> Bytes {
        let mut b = RecordBatchBuilder::new(Compression::None, 0);
        for v in values {
            b.append(1, None, Some(v), &[]).unwrap();
        }
        b.build(ProducerState::NONE).unwrap()
    }

    fn fetched(batches: &[Bytes]) -> Vec<u8> {
        batches.iter().flat_map(|b| b.iter().copied()).collect()
    }

    #[test]
    fn splits_back_to_back_batches_zero_copy() {
        let (a, b) = (batch(&[b"one", b"two"]), batch(&[b"three"]));
        let data = Bytes::from(fetched(&[a.clone(), b.clone()]));
        let mut it = RecordBatches::new(data.clone());
        let first = it.next().unwrap().unwrap();
        assert_eq!(first.as_bytes(), &a);
        assert_eq!(
            first.as_bytes().as_ptr(),
            data.as_ptr(),
            "a view, not a copy"
        );
        assert_eq!(it.next().unwrap().unwrap().as_bytes(), &b);
        assert!(it.next().is_none() && !it.truncated());
    }

    #[test]
    fn a_truncated_last_batch_ends_iteration_quietly() {
        let (a, b) = (batch(&[b"one"]), batch(&[b"two", b"three"]));
        let whole = fetched(&[a.clone(), b.clone()]);
        for cut in a.len() + 1..whole.len() {
            let mut it = RecordBatches::new(Bytes::copy_from_slice(&whole[..cut]));
            assert!(it.next().unwrap().is_ok());
            assert!(it.next().is_none(), "cut at {cut}");
            assert!(it.truncated());
            let expect = (cut - a.len() >= LOG_OVERHEAD).then_some(b.len());
            assert_eq!(it.truncated_batch_size(), expect, "cut at {cut}");
        }
        let mut only_partial = RecordBatches::new(b.slice(..b.len() - 1));
        assert!(only_partial.next().is_none() && only_partial.truncated());
    }

    #[test]
    fn impossible_lengths_and_magics_are_corrupt() {
        let good = batch(&[b"x"]).to_vec();
        let with = |at: usize, bytes: &[u8]| {
            let mut v = good.clone();
            v[at..at + bytes.len()].copy_from_slice(bytes);
            RecordBatches::new(Bytes::from(v)).next()
        };
        assert!(matches!(with(8, &(-1i32).to_be_bytes()), Some(Err(_))));
        assert!(matches!(with(8, &13i32.to_be_bytes()), Some(Err(_))));
        assert!(
            matches!(with(8, &40i32.to_be_bytes()), Some(Err(_))),
            "below 61 for magic 2"
        );
        assert!(matches!(with(16, &[3]), Some(Err(_))));
        assert!(matches!(with(16, &[0xff]), Some(Err(_))));
        // A huge length is not corrupt: it is a batch the fetch cut short.
        let mut it = RecordBatches::new(Bytes::from({
            let mut v = good.clone();
            v[8..12].copy_from_slice(&i32::MAX.to_be_bytes());
            v
        }));
        assert!(it.next().is_none() && it.truncated_batch_size() == Some(i32::MAX as usize + 12));
        // After an error, iteration stops.
        let mut v = fetched(&[batch(&[b"a"])]);
        v.extend_from_slice(&[0; 8]);
        v.extend_from_slice(&5i32.to_be_bytes());
        v.extend_from_slice(&[0; 20]);
        let mut it = RecordBatches::new(Bytes::from(v));
        assert!(it.next().unwrap().is_ok());
        assert!(it.next().unwrap().is_err());
        assert!(it.next().is_none());
    }

    #[test]
    fn parse_wants_exactly_one_batch() {
        let a = batch(&[b"a"]);
        assert!(RecordBatch::parse(a.clone()).is_ok());
        assert!(RecordBatch::parse(Bytes::from(fetched(&[a.clone(), a.clone()]))).is_err());
        assert!(RecordBatch::parse(a.slice(..a.len() - 1)).is_err());
    }

    #[test]
    fn crc_detects_any_flipped_bit_after_the_crc_field() {
        let a = batch(&[b"payload"]).to_vec();
        for i in ATTRIBUTES_OFFSET..a.len() {
            let mut v = a.clone();
            v[i] ^= 0x01;
            if let Ok(b) = RecordBatch::parse(Bytes::from(v)) {
                assert!(b.validate_crc().is_err(), "byte {i}");
            }
        }
    }

    #[test]
    fn a_batch_emptied_by_compaction_has_no_records() {
        let mut v = batch(&[b"gone"]).to_vec();
        v[RECORDS_COUNT_OFFSET..RECORDS_COUNT_OFFSET + 4].copy_from_slice(&0i32.to_be_bytes());
        let b = RecordBatch::parse(Bytes::from(v)).unwrap();
        assert_eq!(b.records(100).unwrap().count(), 0);
        assert_eq!(
            b.last_offset(),
            0,
            "the offsets stay for the consumer to skip"
        );
    }

    #[test]
    fn log_append_time_applies_the_max_timestamp_to_every_record() {
        let mut v = batch(&[b"a", b"b"]).to_vec();
        v[ATTRIBUTES_OFFSET + 1] |= TIMESTAMP_TYPE_MASK as u8;
        v[MAX_TIMESTAMP_OFFSET..MAX_TIMESTAMP_OFFSET + 8].copy_from_slice(&99i64.to_be_bytes());
        let b = RecordBatch::parse(Bytes::from(v)).unwrap();
        assert_eq!(b.timestamp_type(), TimestampType::LogAppendTime);
        assert!(b.records(100).unwrap().all(|r| r.unwrap().timestamp == 99));
    }
}
