//! Kafka record batches: built in place for Produce requests, decoded zero-copy from Fetch
//! responses, compressed with the codecs of the Java client.
//!
//! ```text
//!  producer                                      consumer
//!  RecordBatchBuilder::append                    Fetch response `records` field (Bytes)
//!    each record varint-encoded straight           │
//!    into one BytesMut, after a header gap         ▼
//!  RecordBatchBuilder::build(ProducerState)      RecordBatches: one RecordBatch per batch,
//!    compress the records section (if any),        stops quietly at a truncated last batch
//!    fill the 61-byte header, CRC32C               │
//!    │                                             ▼
//!    ▼                                           RecordBatch: Bytes view, header accessors,
//!  Bytes ──► Produce request                       validate_crc(), records(max_decompressed)
//!  rewrite_producer_state: new epoch/sequence,     │ decompress once into one buffer
//!    CRC recomputed (KIP-360 epoch bump)           ▼
//!                                                Records ──► Record { offset, timestamp,
//!                                                  key, value, headers }, Bytes slices
//! ```
//!
//! # Batch layout (magic v2)
//!
//! All integers big-endian. The CRC is CRC32C over everything from `attributes` to the end.
//!
//! | offset | field                   | type  |
//! |-------:|-------------------------|-------|
//! |      0 | baseOffset              | i64   |
//! |      8 | batchLength (after this)| i32   |
//! |     12 | partitionLeaderEpoch    | i32   |
//! |     16 | magic (2)               | i8    |
//! |     17 | crc                     | u32   |
//! |     21 | attributes              | i16   |
//! |     23 | lastOffsetDelta         | i32   |
//! |     27 | baseTimestamp           | i64   |
//! |     35 | maxTimestamp            | i64   |
//! |     43 | producerId              | i64   |
//! |     51 | producerEpoch           | i16   |
//! |     53 | baseSequence            | i32   |
//! |     57 | recordCount             | i32   |
//! |     61 | records...              |       |
//!
//! Attributes: bits 0-2 codec, bit 3 timestamp type (1 = log append time), bit 4
//! transactional, bit 5 control, bit 6 delete horizon set. Each record is
//! `length varint, attributes i8, timestampDelta varlong, offsetDelta varint, key
//! (varint length, -1 = null), value (same), header count varint, headers (key varint
//! length + UTF-8, value varint length + bytes, -1 = null)`.
//!
//! Message sets of the legacy formats (magic 0 and 1) are decoded too, into the same
//! [`Record`] type; this crate never writes them.

mod batch;
mod builder;
mod compression;
mod legacy;
mod record;
mod varint;

#[cfg(test)]
pub(crate) mod tests;

pub use batch::{RecordBatch, RecordBatches, TimestampType};
pub use builder::{rewrite_producer_state, ProducerState, RecordBatchBuilder};
pub use compression::{Compression, DEFAULT_MAX_DECOMPRESSED_SIZE};
pub use record::{ControlRecordType, Record, Records};

/// Bytes before every batch's (and legacy message's) content: offset i64 and length i32.
const LOG_OVERHEAD: usize = 12;
/// The size of a v2 batch header, which is also the size of a batch with no records.
pub const RECORD_BATCH_OVERHEAD: usize = 61;

const LENGTH_OFFSET: usize = 8;
const PARTITION_LEADER_EPOCH_OFFSET: usize = 12;
const MAGIC_OFFSET: usize = 16;
const CRC_OFFSET: usize = 17;
const ATTRIBUTES_OFFSET: usize = 21;
const LAST_OFFSET_DELTA_OFFSET: usize = 23;
const BASE_TIMESTAMP_OFFSET: usize = 27;
const MAX_TIMESTAMP_OFFSET: usize = 35;
const PRODUCER_ID_OFFSET: usize = 43;
const PRODUCER_EPOCH_OFFSET: usize = 51;
const BASE_SEQUENCE_OFFSET: usize = 53;
const RECORDS_COUNT_OFFSET: usize = 57;

const COMPRESSION_MASK: i16 = 0x07;
const TIMESTAMP_TYPE_MASK: i16 = 0x08;
const TRANSACTIONAL_MASK: i16 = 0x10;
const CONTROL_MASK: i16 = 0x20;
const DELETE_HORIZON_MASK: i16 = 0x40;

/// `N` bytes at `at`; zeros where `buf` is shorter. Callers check lengths up front, so the
/// fallback only turns a broken invariant into a wrong value instead of a panic.
fn array_at<const N: usize>(buf: &[u8], at: usize) -> [u8; N] {
    let mut out = [0u8; N];
    if let Some(src) = at.checked_add(N).and_then(|end| buf.get(at..end)) {
        out.copy_from_slice(src);
    }
    out
}

fn i64_at(buf: &[u8], at: usize) -> i64 {
    i64::from_be_bytes(array_at(buf, at))
}

fn i32_at(buf: &[u8], at: usize) -> i32 {
    i32::from_be_bytes(array_at(buf, at))
}

fn i16_at(buf: &[u8], at: usize) -> i16 {
    i16::from_be_bytes(array_at(buf, at))
}
