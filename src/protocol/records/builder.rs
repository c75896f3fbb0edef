//! Building magic v2 record batches for Produce requests.
//!
//! The builder owns one `BytesMut`: a 61-byte gap for the header, then each record encoded
//! in place as it is appended, so the producer's hot path allocates nothing per record
//! beyond the buffer's growth. The header can only be written at the end (its length, last
//! offset, max timestamp and CRC depend on every record), and so can compression, which
//! reads the encoded records and writes the compressed stream after a fresh header.

use bytes::{BufMut, Bytes, BytesMut};

use super::compression::Compression;
use super::varint::{len_prefix_len, varint_len, varlong_len, Scratch};
use super::{
    i32_at, ATTRIBUTES_OFFSET, CONTROL_MASK, CRC_OFFSET, LENGTH_OFFSET, LOG_OVERHEAD, MAGIC_OFFSET,
    PRODUCER_ID_OFFSET, RECORD_BATCH_OVERHEAD, TRANSACTIONAL_MASK,
};
use crate::error::{Error, Result};
use crate::types::Header;

/// The idempotence and transaction fields of a batch header.
///
/// [`ProducerState::NONE`] (all `-1`, not transactional) is what a producer without
/// `enable.idempotence` writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ProducerState {
    /// The producer id from `InitProducerId`, or -1.
    pub producer_id: i64,
    /// The producer epoch, or -1.
    pub producer_epoch: i16,
    /// The sequence number of the batch's first record, or -1.
    pub base_sequence: i32,
    /// Whether the batch belongs to a transaction (attribute bit 4).
    pub transactional: bool,
}

impl ProducerState {
    /// No producer id, epoch or sequence; not transactional.
    pub const NONE: ProducerState = ProducerState {
        producer_id: -1,
        producer_epoch: -1,
        base_sequence: -1,
        transactional: false,
    };
}

impl Default for ProducerState {
    fn default() -> Self {
        ProducerState::NONE
    }
}

/// Fills one magic v2 record batch, record by record, then seals it with [`build`].
///
/// ```
/// use kafka_client::protocol::records::{Compression, ProducerState, RecordBatchBuilder};
///
/// let mut b = RecordBatchBuilder::new(Compression::Lz4 { level: None }, 16 * 1024);
/// let (key, value) = (b"user-1", b"clicked");
/// // Check the room first: a full batch goes to the broker and a new one starts.
/// if b.estimated_size() + b.record_size(1_700_000_000_000, key.len(), value.len(), &[]) <= 16 * 1024 {
///     b.append(1_700_000_000_000, Some(key), Some(value), &[])?;
/// }
/// let batch: bytes::Bytes = b.build(ProducerState::NONE)?; // the Produce request's records
/// # Ok::<(), kafka_client::Error>(())
/// ```
///
/// [`build`]: RecordBatchBuilder::build
#[derive(Debug)]
pub struct RecordBatchBuilder {
    buf: BytesMut,
    compression: Compression,
    count: i32,
    base_timestamp: i64,
    max_timestamp: i64,
    control: bool,
}

impl RecordBatchBuilder {
    /// An empty batch for `compression`; `capacity` is the expected size in bytes (the
    /// producer's `batch.size`), allocated up front.
    pub fn new(compression: Compression, capacity: usize) -> Self {
        let mut buf = BytesMut::with_capacity(capacity.max(RECORD_BATCH_OVERHEAD));
        buf.put_bytes(0, RECORD_BATCH_OVERHEAD);
        RecordBatchBuilder {
            buf,
            compression,
            count: 0,
            base_timestamp: -1,
            max_timestamp: -1,
            control: false,
        }
    }

    /// Appends a record and returns the bytes it took (before compression).
    ///
    /// `timestamp` is the create time in milliseconds since the epoch; the first record's
    /// becomes the batch's base timestamp. Fails, leaving the batch unchanged, on a negative
    /// timestamp (the Java client refuses them too), a record whose fields exceed the
    /// protocol's `i32` lengths, or a batch already holding `i32::MAX` records.
    pub fn append(
        &mut self,
        timestamp: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[Header],
    ) -> Result<usize> {
        if timestamp < 0 {
            return Err(Error::InvalidArgument(format!(
                "record timestamp {timestamp} is negative"
            )));
        }
        if self.count == i32::MAX {
            return Err(Error::InvalidArgument(
                "record batch holds i32::MAX records".into(),
            ));
        }
        let base = if self.count == 0 {
            timestamp
        } else {
            self.base_timestamp
        };
        // Both are non-negative, so the difference cannot overflow.
        let timestamp_delta = timestamp - base;
        let body = body_len(
            self.count,
            timestamp_delta,
            key.map(<[u8]>::len),
            value.map(<[u8]>::len),
            headers,
        );
        // Every length inside the record is part of the body, so this bounds them all.
        let Ok(body_i32) = i32::try_from(body) else {
            return Err(Error::InvalidArgument(format!(
                "record of {body} bytes exceeds the protocol's 2 GiB limit"
            )));
        };
        let size = varint_len(body_i32) + body;
        let buf = &mut self.buf;
        buf.reserve(size);
        // Fixed fields and length prefixes gather on the stack between payload copies.
        let mut s = Scratch::new();
        s.varint(body_i32);
        s.byte(0); // record attributes: unused
        s.varlong(timestamp_delta);
        s.varint(self.count);
        put_nullable(buf, &mut s, key);
        put_nullable(buf, &mut s, value);
        s.varint(len_i32(headers.len()));
        for h in headers {
            s.varint(len_i32(h.key.len()));
            s.flush_into(buf);
            buf.put_slice(h.key.as_bytes());
            put_nullable(buf, &mut s, h.value.as_deref());
        }
        s.flush_into(buf);

        if self.count == 0 {
            self.base_timestamp = timestamp;
            self.max_timestamp = timestamp;
        }
        self.max_timestamp = self.max_timestamp.max(timestamp);
        self.count += 1;
        Ok(size)
    }

    /// The exact bytes [`append`](Self::append) would take for this record now.
    ///
    /// Use it to decide whether a record still fits `batch.size` before appending; a null
    /// and an empty key or value take the same room.
    pub fn record_size(
        &self,
        timestamp: i64,
        key_len: usize,
        value_len: usize,
        headers: &[Header],
    ) -> usize {
        let base = if self.count == 0 {
            timestamp
        } else {
            self.base_timestamp
        };
        let body = body_len(
            self.count,
            timestamp.saturating_sub(base),
            Some(key_len),
            Some(value_len),
            headers,
        );
        len_prefix_len(body) + body
    }

    /// An upper bound on the bytes a record takes in any batch, whatever its timestamp and
    /// position: Java's `DefaultRecord.recordSizeUpperBound`.
    pub fn record_size_upper_bound(key_len: usize, value_len: usize, headers: &[Header]) -> usize {
        // 5 bytes of length, 1 attributes, 10 timestamp delta, 5 offset delta.
        const MAX_RECORD_OVERHEAD: usize = 21;
        MAX_RECORD_OVERHEAD + fields_len(Some(key_len), Some(value_len), headers)
    }

    /// An upper bound on a batch holding just this record: Java's
    /// `AbstractRecords.estimateSizeInBytesUpperBound`. The producer sizes a new batch's
    /// buffer to at least this, so a record larger than `batch.size` still gets a batch.
    pub fn batch_size_upper_bound(key_len: usize, value_len: usize, headers: &[Header]) -> usize {
        RECORD_BATCH_OVERHEAD + Self::record_size_upper_bound(key_len, value_len, headers)
    }

    /// The batch's size so far, header included, before compression.
    ///
    /// For a compressed batch this is an upper bound of what [`build`](Self::build) returns
    /// in practice; the producer may scale it by an observed compression ratio, as the Java
    /// client does.
    pub fn estimated_size(&self) -> usize {
        self.buf.len()
    }

    /// The number of records appended.
    pub fn record_count(&self) -> usize {
        self.count as usize
    }

    /// Whether no record has been appended.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The first record's timestamp, which record timestamps are deltas from.
    pub fn base_timestamp(&self) -> Option<i64> {
        (self.count > 0).then_some(self.base_timestamp)
    }

    /// The largest timestamp appended.
    pub fn max_timestamp(&self) -> Option<i64> {
        (self.count > 0).then_some(self.max_timestamp)
    }

    /// The codec [`build`](Self::build) will use.
    pub fn compression(&self) -> Compression {
        self.compression
    }

    /// Seals the batch: compresses the records (unless the codec is `None`, where the
    /// buffer is used as is), writes the header with base offset 0, partition leader epoch
    /// -1, create-time timestamps and `producer`, and computes the CRC32C.
    ///
    /// Fails on an empty batch (a batch always carries at least one record), a batch over
    /// the protocol's 2 GiB, or a compression failure.
    pub fn build(self, producer: ProducerState) -> Result<Bytes> {
        if self.count == 0 {
            return Err(Error::InvalidArgument(
                "cannot build an empty record batch".into(),
            ));
        }
        let mut attributes = self.compression.id();
        if producer.transactional {
            attributes |= TRANSACTIONAL_MASK;
        }
        if self.control {
            attributes |= CONTROL_MASK;
        }
        let header = HeaderFields {
            attributes,
            last_offset_delta: self.count - 1,
            base_timestamp: self.base_timestamp,
            max_timestamp: self.max_timestamp,
            producer,
            count: self.count,
        };
        if self.compression.id() == 0 {
            let mut buf = self.buf;
            header.write(&mut buf)?;
            return Ok(buf.freeze());
        }
        let records = &self.buf[RECORD_BATCH_OVERHEAD..];
        // Room for the worst case, so the codec never reallocates mid-stream...
        let bound = self.compression.max_compressed_len(records.len());
        let mut out = Vec::with_capacity(RECORD_BATCH_OVERHEAD + bound);
        out.resize(RECORD_BATCH_OVERHEAD, 0);
        self.compression.compress(records, &mut out)?;
        // ...then give back what compression saved: the batch may wait in memory for acks.
        if out.capacity() - out.len() > out.len() / 4 {
            out.shrink_to_fit();
        }
        header.write(&mut out)?;
        Ok(Bytes::from(out))
    }

    /// A control batch holding one transaction marker (`commit` or abort), as a transaction
    /// coordinator writes it; for tests of the consumer's transaction handling.
    pub fn end_transaction_marker(
        commit: bool,
        coordinator_epoch: i32,
        timestamp: i64,
        producer: ProducerState,
    ) -> Result<Bytes> {
        let mut b = RecordBatchBuilder::new(Compression::None, 128);
        b.control = true;
        // Key: version 0, type (0 abort, 1 commit). Value: version 0, coordinator epoch.
        let key = [0, 0, 0, u8::from(commit)];
        let mut value = [0u8; 6];
        value[2..].copy_from_slice(&coordinator_epoch.to_be_bytes());
        b.append(timestamp, Some(&key), Some(&value), &[])?;
        b.build(ProducerState {
            transactional: true,
            ..producer
        })
    }
}

/// Re-stamps a built batch with a new producer id, epoch, base sequence and transactional
/// flag, and recomputes its CRC. The producer needs this when it bumps its epoch after an
/// error (KIP-360) and must resend batches it already built.
///
/// The batch must be one whole magic v2 batch with a valid CRC: re-signing a batch whose
/// CRC is already wrong would hide the corruption, so that is refused.
pub fn rewrite_producer_state(batch: &mut [u8], state: ProducerState) -> Result<()> {
    if batch.len() < RECORD_BATCH_OVERHEAD || batch[MAGIC_OFFSET] != 2 {
        return Err(Error::corrupt("not a magic v2 record batch"));
    }
    let declared = i32_at(batch, LENGTH_OFFSET);
    if usize::try_from(declared).ok().map(|n| n + LOG_OVERHEAD) != Some(batch.len()) {
        return Err(Error::corrupt(format!(
            "batch length field {declared} does not match the {} bytes given",
            batch.len()
        )));
    }
    if crc_of(batch) != u32::from_be_bytes(super::array_at(batch, CRC_OFFSET)) {
        return Err(Error::corrupt(
            "refusing to re-sign a batch whose CRC does not match",
        ));
    }
    let mut attributes = super::i16_at(batch, ATTRIBUTES_OFFSET) & !TRANSACTIONAL_MASK;
    if state.transactional {
        attributes |= TRANSACTIONAL_MASK;
    }
    batch[ATTRIBUTES_OFFSET..ATTRIBUTES_OFFSET + 2].copy_from_slice(&attributes.to_be_bytes());
    let mut fields = &mut batch[PRODUCER_ID_OFFSET..PRODUCER_ID_OFFSET + 14];
    fields.put_i64(state.producer_id);
    fields.put_i16(state.producer_epoch);
    fields.put_i32(state.base_sequence);
    let crc = crc_of(batch);
    batch[CRC_OFFSET..CRC_OFFSET + 4].copy_from_slice(&crc.to_be_bytes());
    Ok(())
}

/// CRC32C of a v2 batch: from the attributes to the end.
pub(super) fn crc_of(batch: &[u8]) -> u32 {
    crc32c::crc32c(batch.get(ATTRIBUTES_OFFSET..).unwrap_or_default())
}

struct HeaderFields {
    attributes: i16,
    last_offset_delta: i32,
    base_timestamp: i64,
    max_timestamp: i64,
    producer: ProducerState,
    count: i32,
}

impl HeaderFields {
    /// Writes the header into the first 61 bytes of a whole batch, then its CRC.
    fn write(&self, batch: &mut [u8]) -> Result<()> {
        let Ok(length) = i32::try_from(batch.len() - LOG_OVERHEAD) else {
            return Err(Error::InvalidArgument(format!(
                "record batch of {} bytes exceeds the protocol's 2 GiB limit",
                batch.len()
            )));
        };
        let mut h = &mut batch[..RECORD_BATCH_OVERHEAD];
        h.put_i64(0); // base offset: the broker assigns offsets
        h.put_i32(length);
        h.put_i32(-1); // partition leader epoch: set by the broker
        h.put_i8(2);
        h.put_u32(0); // CRC, computed below once everything it covers is written
        h.put_i16(self.attributes);
        h.put_i32(self.last_offset_delta);
        h.put_i64(self.base_timestamp);
        h.put_i64(self.max_timestamp);
        h.put_i64(self.producer.producer_id);
        h.put_i16(self.producer.producer_epoch);
        h.put_i32(self.producer.base_sequence);
        h.put_i32(self.count);
        let crc = crc_of(batch);
        batch[CRC_OFFSET..CRC_OFFSET + 4].copy_from_slice(&crc.to_be_bytes());
        Ok(())
    }
}

/// The record body: everything after the length prefix.
fn body_len(
    offset_delta: i32,
    timestamp_delta: i64,
    key_len: Option<usize>,
    value_len: Option<usize>,
    headers: &[Header],
) -> usize {
    1 + varlong_len(timestamp_delta)
        + varint_len(offset_delta)
        + fields_len(key_len, value_len, headers)
}

/// Key, value and headers, as Java's `DefaultRecord.sizeOf`.
fn fields_len(key_len: Option<usize>, value_len: Option<usize>, headers: &[Header]) -> usize {
    let nullable = |len: Option<usize>| len.map_or(1, |n| len_prefix_len(n).saturating_add(n));
    let mut size = nullable(key_len)
        .saturating_add(nullable(value_len))
        .saturating_add(len_prefix_len(headers.len()));
    for h in headers {
        size = size
            .saturating_add(len_prefix_len(h.key.len()) + h.key.len())
            .saturating_add(nullable(h.value.as_ref().map(|v| v.len())));
    }
    size
}

/// A length the caller has already bounded by the record's `i32` body size.
fn len_i32(len: usize) -> i32 {
    i32::try_from(len).unwrap_or(i32::MAX)
}

/// A nullable field: its length prefix joins the scratch, its bytes go straight to `buf`.
fn put_nullable(buf: &mut BytesMut, s: &mut Scratch, bytes: Option<&[u8]>) {
    match bytes {
        None => s.varint(-1),
        Some(b) => {
            s.varint(len_i32(b.len()));
            s.flush_into(buf);
            buf.put_slice(b);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::records::{ControlRecordType, RecordBatch};

    fn headers() -> Vec<Header> {
        vec![
            Header::new("trace", &b"abc"[..]),
            Header {
                key: "none".into(),
                value: None,
            },
        ]
    }

    #[test]
    fn append_reports_exact_sizes_within_the_upper_bound() {
        let mut b = RecordBatchBuilder::new(Compression::None, 0);
        let value = vec![7u8; 300];
        for (i, ts) in [1_000i64, 5_000_000, 999].into_iter().enumerate() {
            let predicted = b.record_size(ts, 3, value.len(), &headers());
            let before = b.estimated_size();
            let took = b
                .append(ts, Some(b"key"), Some(&value), &headers())
                .unwrap();
            assert_eq!(took, predicted, "record {i}");
            assert_eq!(b.estimated_size() - before, took);
            assert!(took <= RecordBatchBuilder::record_size_upper_bound(3, 300, &headers()));
        }
        assert_eq!(b.record_count(), 3);
        assert_eq!(
            (b.base_timestamp(), b.max_timestamp()),
            (Some(1_000), Some(5_000_000))
        );
        let bound = RecordBatchBuilder::batch_size_upper_bound(3, 300, &headers());
        // overhead, key, value, header count, "trace"="abc", "none"=null
        assert_eq!(
            bound,
            RECORD_BATCH_OVERHEAD + 21 + 4 + 302 + 1 + (6 + 4) + (5 + 1)
        );
    }

    #[test]
    fn build_writes_every_header_field() {
        let mut b = RecordBatchBuilder::new(Compression::Zstd { level: None }, 1024);
        b.append(2_000, None, Some(b"a"), &[]).unwrap();
        b.append(1_500, Some(b"k"), None, &headers()).unwrap();
        let state = ProducerState {
            producer_id: 77,
            producer_epoch: 3,
            base_sequence: 40,
            transactional: true,
        };
        let batch = RecordBatch::parse(b.build(state).unwrap()).unwrap();
        batch.validate_crc().unwrap();
        assert_eq!((batch.base_offset(), batch.last_offset()), (0, 1));
        assert_eq!(batch.partition_leader_epoch(), -1);
        assert_eq!(batch.magic(), 2);
        assert_eq!(
            batch.attributes(),
            0x14,
            "zstd + transactional, create time"
        );
        assert_eq!(
            (batch.base_timestamp(), batch.max_timestamp()),
            (2_000, 2_000)
        );
        assert_eq!(
            (
                batch.producer_id(),
                batch.producer_epoch(),
                batch.base_sequence()
            ),
            (77, 3, 40)
        );
        assert_eq!(batch.record_count(), Some(2));
        assert!(batch.is_transactional() && !batch.is_control());
        let records: Vec<_> = batch
            .records(1 << 20)
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(records[1].timestamp, 1_500, "a negative delta");
        assert_eq!(records[1].headers, headers());
    }

    #[test]
    fn refuses_what_cannot_be_encoded() {
        let mut b = RecordBatchBuilder::new(Compression::None, 0);
        assert!(b.append(-5, None, None, &[]).is_err());
        assert!(b.is_empty(), "a refused record leaves no trace");
        assert!(b.build(ProducerState::NONE).is_err(), "empty batch");
    }

    #[test]
    fn rewrite_producer_state_restamps_and_resigns() {
        let mut b = RecordBatchBuilder::new(Compression::Lz4 { level: None }, 0);
        b.append(10, Some(b"k"), Some(b"v"), &[]).unwrap();
        let built = b
            .build(ProducerState {
                producer_id: 1,
                producer_epoch: 0,
                base_sequence: 5,
                transactional: false,
            })
            .unwrap();
        let mut bytes = built.to_vec();
        let bumped = ProducerState {
            producer_id: 1,
            producer_epoch: 1,
            base_sequence: 0,
            transactional: true,
        };
        rewrite_producer_state(&mut bytes, bumped).unwrap();
        let batch = RecordBatch::parse(Bytes::from(bytes.clone())).unwrap();
        batch.validate_crc().unwrap();
        assert_eq!((batch.producer_epoch(), batch.base_sequence()), (1, 0));
        assert!(batch.is_transactional());
        assert_eq!(
            batch.compression().unwrap(),
            Compression::Lz4 { level: None }
        );
        assert_eq!(
            &bytes[RECORD_BATCH_OVERHEAD..],
            &built[RECORD_BATCH_OVERHEAD..]
        );

        let mut corrupt = bytes.clone();
        *corrupt.last_mut().unwrap() ^= 1;
        assert!(rewrite_producer_state(&mut corrupt, ProducerState::NONE).is_err());
        assert!(rewrite_producer_state(&mut bytes[..60], ProducerState::NONE).is_err());
        let len = bytes.len();
        assert!(rewrite_producer_state(&mut bytes[..len - 1], ProducerState::NONE).is_err());
    }

    #[test]
    fn transaction_markers_are_control_batches() {
        let state = ProducerState {
            producer_id: 9,
            producer_epoch: 2,
            base_sequence: -1,
            transactional: false,
        };
        for (commit, kind) in [
            (true, ControlRecordType::Commit),
            (false, ControlRecordType::Abort),
        ] {
            let batch = RecordBatch::parse(
                RecordBatchBuilder::end_transaction_marker(commit, 4, 50, state).unwrap(),
            )
            .unwrap();
            assert!(batch.is_control() && batch.is_transactional());
            assert_eq!(batch.control_record_type().unwrap(), Some(kind));
            let value = batch
                .records(1024)
                .unwrap()
                .next()
                .unwrap()
                .unwrap()
                .value
                .unwrap();
            assert_eq!(
                &value[..],
                &[0, 0, 0, 0, 0, 4],
                "version 0, coordinator epoch 4"
            );
        }
    }
}
