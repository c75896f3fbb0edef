//! What a user sends and what comes back: [`ProducerRecord`], [`RecordMetadata`] and the
//! [`DeliveryFuture`] that connects them.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use tokio::sync::oneshot;

use crate::error::{Error, Result};
use crate::types::Header;

/// A record to send: topic, optional key, value, headers, partition and timestamp.
///
/// ```
/// use kafka_client::producer::ProducerRecord;
/// let record = ProducerRecord::new("orders")
///     .key("order-42")
///     .value(r#"{"total": 12.5}"#)
///     .header("event-type", "OrderCreated");
/// assert_eq!(record.partition, None);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProducerRecord {
    /// The topic.
    pub topic: String,
    /// The key: records with the same key go to the same partition.
    pub key: Option<Bytes>,
    /// The value; `None` is a tombstone on a compacted topic.
    pub value: Option<Bytes>,
    /// Headers, in order.
    pub headers: Vec<Header>,
    /// An explicit partition, overriding the partitioner.
    pub partition: Option<i32>,
    /// Milliseconds since the epoch; `None` takes the time of `send`.
    pub timestamp: Option<i64>,
}

impl ProducerRecord {
    /// A record for `topic` with no key and no value yet.
    pub fn new(topic: impl Into<String>) -> Self {
        ProducerRecord {
            topic: topic.into(),
            key: None,
            value: None,
            headers: Vec::new(),
            partition: None,
            timestamp: None,
        }
    }

    /// Sets the key.
    pub fn key(mut self, key: impl Into<Bytes>) -> Self {
        self.key = Some(key.into());
        self
    }

    /// Sets the value.
    pub fn value(mut self, value: impl Into<Bytes>) -> Self {
        self.value = Some(value.into());
        self
    }

    /// Adds a header.
    pub fn header(mut self, key: impl Into<String>, value: impl Into<Bytes>) -> Self {
        self.headers.push(Header::new(key, value));
        self
    }

    /// Sends to this partition, bypassing the partitioner.
    pub fn partition(mut self, partition: i32) -> Self {
        self.partition = Some(partition);
        self
    }

    /// Sets the record's timestamp (milliseconds since the epoch).
    pub fn timestamp(mut self, timestamp_ms: i64) -> Self {
        self.timestamp = Some(timestamp_ms);
        self
    }
}

/// Where a record was stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordMetadata {
    /// The topic, shared by every record of the batch (cloning it is a reference count).
    pub topic: Arc<str>,
    /// The partition.
    pub partition: i32,
    /// The record's offset; -1 with `acks=0`, where the broker does not answer.
    pub offset: i64,
    /// The record's timestamp: the broker's append time on `LogAppendTime` topics, else the
    /// create time sent.
    pub timestamp: i64,
}

/// What the sender does with a record's outcome.
pub(crate) enum Delivery {
    /// Resolve the user's [`DeliveryFuture`].
    Future(oneshot::Sender<Result<RecordMetadata>>),
    /// Call the user's callback (on the producer's sender task: keep it short).
    Callback(Box<dyn FnOnce(Result<RecordMetadata>) + Send>),
}

impl Delivery {
    pub(crate) fn complete(self, result: Result<RecordMetadata>) {
        match self {
            Delivery::Future(tx) => {
                // The user may have dropped the future: fire and forget is allowed.
                let _ = tx.send(result);
            }
            Delivery::Callback(cb) => {
                // A panicking callback must not take the sender task (and every other
                // record's outcome) down with it.
                let call = std::panic::AssertUnwindSafe(move || cb(result));
                if std::panic::catch_unwind(call).is_err() {
                    tracing::error!("a producer delivery callback panicked");
                }
            }
        }
    }
}

/// Resolves when the broker acknowledged the record (or the producer gave up on it).
///
/// Dropping it does not cancel the send: the record is still delivered, only its outcome is
/// not observed (fire and forget).
#[must_use = "the delivery outcome is only known by awaiting this future"]
#[derive(Debug)]
pub struct DeliveryFuture {
    rx: oneshot::Receiver<Result<RecordMetadata>>,
}

impl DeliveryFuture {
    pub(crate) fn new(rx: oneshot::Receiver<Result<RecordMetadata>>) -> Self {
        DeliveryFuture { rx }
    }
}

impl Future for DeliveryFuture {
    type Output = Result<RecordMetadata>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.rx).poll(cx).map(|r| {
            r.unwrap_or_else(|_| {
                Err(Error::Closed(
                    "the producer stopped before reporting this record's delivery".into(),
                ))
            })
        })
    }
}
