//! What the consumer hands out: records, and the offsets committed for a group.

use std::fmt;
use std::sync::Arc;

use bytes::Bytes;

pub use crate::protocol::records::TimestampType;
use crate::types::{Header, TopicPartition};

/// One record read from a partition.
///
/// `key`, `value` and header values are slices of the fetch response when the batch was not
/// compressed (no copy), or of the batch's decompressed bytes. Holding a record keeps that
/// buffer alive: copy out what you keep for long (`Bytes::copy_from_slice`).
#[derive(Clone, PartialEq, Eq)]
pub struct ConsumerRecord {
    /// The topic; shared by all records of the topic this consumer hands out.
    pub topic: Arc<str>,
    /// The partition.
    pub partition: i32,
    /// The record's offset in the partition.
    pub offset: i64,
    /// Milliseconds since the Unix epoch; see [`timestamp_type`](Self::timestamp_type).
    pub timestamp: i64,
    /// Whether the timestamp is the producer's or the broker's.
    pub timestamp_type: TimestampType,
    /// The key, `None` for a null key.
    pub key: Option<Bytes>,
    /// The value, `None` for a null value (a tombstone on a compacted topic).
    pub value: Option<Bytes>,
    /// The headers, in the order the producer wrote them.
    pub headers: Vec<Header>,
    /// The partition leader epoch the record was written in, when the batch carries one
    /// (KIP-320).
    pub leader_epoch: Option<i32>,
}

impl ConsumerRecord {
    /// The record's topic and partition.
    pub fn topic_partition(&self) -> TopicPartition {
        TopicPartition::new(&*self.topic, self.partition)
    }
}

impl fmt::Debug for ConsumerRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConsumerRecord")
            .field("topic", &self.topic)
            .field("partition", &self.partition)
            .field("offset", &self.offset)
            .field("timestamp", &self.timestamp)
            .field("timestamp_type", &self.timestamp_type)
            .field("key_len", &self.key.as_ref().map(Bytes::len))
            .field("value_len", &self.value.as_ref().map(Bytes::len))
            .field("headers", &self.headers.len())
            .field("leader_epoch", &self.leader_epoch)
            .finish()
    }
}

/// An offset to commit, or one the group has committed: the Java `OffsetAndMetadata`.
///
/// The offset is that of the *next* record to read, so committing after processing the record
/// at offset `n` means committing `n + 1`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct OffsetAndMetadata {
    /// The next offset to read.
    pub offset: i64,
    /// The leader epoch of the last record read, when known (KIP-320).
    pub leader_epoch: Option<i32>,
    /// Free text stored with the offset (Java's `metadata`), empty by default.
    pub metadata: String,
}

impl OffsetAndMetadata {
    /// An offset with no leader epoch and no metadata.
    pub fn new(offset: i64) -> Self {
        OffsetAndMetadata {
            offset,
            leader_epoch: None,
            metadata: String::new(),
        }
    }

    /// The same offset with metadata text.
    pub fn with_metadata(mut self, metadata: impl Into<String>) -> Self {
        self.metadata = metadata.into();
        self
    }
}

/// One answer of [`Consumer::offsets_for_times`](super::Consumer::offsets_for_times): the
/// earliest offset whose timestamp is at or after the one asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OffsetAndTimestamp {
    /// The offset.
    pub offset: i64,
    /// That record's timestamp.
    pub timestamp: i64,
    /// The leader epoch of the record, when the broker knows it.
    pub leader_epoch: Option<i32>,
}
