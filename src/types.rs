//! Small value types shared by the producer, the consumer and the admin client.

use std::fmt;

/// A topic name and a partition number: the unit of ordering, assignment and offsets.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicPartition {
    /// The topic.
    pub topic: String,
    /// The partition, from 0.
    pub partition: i32,
}

impl TopicPartition {
    /// `TopicPartition::new("orders", 0)`.
    pub fn new(topic: impl Into<String>, partition: i32) -> Self {
        TopicPartition {
            topic: topic.into(),
            partition,
        }
    }
}

impl fmt::Display for TopicPartition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.topic, self.partition)
    }
}

/// A record header: a string key and an optional byte value, as in the Java client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    /// The header's key.
    pub key: String,
    /// The header's value; `None` is a null value on the wire.
    pub value: Option<bytes::Bytes>,
}

impl Header {
    /// A header with a value.
    pub fn new(key: impl Into<String>, value: impl Into<bytes::Bytes>) -> Self {
        Header {
            key: key.into(),
            value: Some(value.into()),
        }
    }
}
