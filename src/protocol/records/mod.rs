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

mod compression;
mod varint;

pub use compression::{Compression, DEFAULT_MAX_DECOMPRESSED_SIZE};
