//! The producer: batching, compression, partitioning, acks, retries and idempotence.
//!
//! ```text
//!  Producer::send ─▶ partitioner ─▶ Accumulator (per-partition batches, buffer.memory)
//!                                          │ ready: full, linger.ms, flush, close
//!                                          ▼
//!                                   Sender task ─▶ one ProduceRequest per leader
//!                                          ▲             │ ≤ max.in.flight per broker
//!                                          └─ retry ◀────┘ DeliveryFuture / callback
//! ```
//!
//! ```no_run
//! use kafka_client::producer::{Producer, ProducerRecord};
//! # async fn demo() -> kafka_client::Result<()> {
//! let producer = Producer::builder().bootstrap_servers("127.0.0.1:9092").build().await?;
//!
//! // Synchronous: wait for the broker's acknowledgement.
//! let stored = producer
//!     .send(ProducerRecord::new("orders").key("order-1").value("created"))
//!     .await?
//!     .await?;
//! println!("stored at {}-{}@{}", stored.topic, stored.partition, stored.offset);
//!
//! // Asynchronous: keep the delivery future (or drop it: fire and forget).
//! let pending = producer.send(ProducerRecord::new("orders").value("next")).await?;
//! producer.flush().await?;
//! pending.await?;
//! producer.close(std::time::Duration::from_secs(30)).await;
//! # Ok(()) }
//! ```

mod accumulator;
mod batch;
mod config;
mod idempotence;
mod partitioner;
mod record;
mod request;
mod sender;
mod topic;

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::future::{BoxFuture, FutureExt, Shared};
use tokio::sync::{oneshot, Notify};
use tokio::time::Instant;

use crate::cluster::{Cluster, TopicMetadata};
use crate::error::{Error, Result};
use crate::protocol::records::{RecordBatchBuilder, RECORD_BATCH_OVERHEAD as BATCH_OVERHEAD};

pub use crate::protocol::records::Compression;
pub use config::{Acks, ProducerBuilder, ProducerConfig};
pub use partitioner::{murmur2, partition_for_key, Partitioner};
pub use record::{DeliveryFuture, ProducerRecord, RecordMetadata};

use accumulator::Accumulator;
use partitioner::PartitionerState;
use record::Delivery;
use sender::Sender;

/// An asynchronous Kafka producer. Cheap to clone: clones share the buffer, the sender task
/// and the connections.
///
/// When the last clone is dropped, the sender still delivers what was sent (each record
/// within `delivery.timeout.ms`) and then stops; [`close`](Self::close) does that with a
/// deadline.
#[derive(Clone)]
pub struct Producer {
    inner: Arc<Inner>,
}

struct Inner {
    cluster: Cluster,
    config: Arc<ProducerConfig>,
    acc: Arc<Accumulator>,
    partitioner: PartitionerState,
    abort: Arc<Notify>,
    /// Resolves when the sender task has ended; every `close` call awaits it.
    sender: Shared<BoxFuture<'static, ()>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Deliver what is queued, then let the sender end.
        self.acc.close();
    }
}

impl std::fmt::Debug for Producer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Producer")
            .field("client_id", &self.inner.config.client.client_id)
            .finish()
    }
}

impl Producer {
    /// A builder with the Java client's defaults.
    pub fn builder() -> ProducerBuilder {
        ProducerBuilder::default()
    }

    pub(crate) async fn start(config: ProducerConfig) -> Result<Producer> {
        // The Java producer lets brokers auto-create topics it sends to.
        let cluster = Cluster::connect_with(config.client.clone(), true).await?;
        let config = Arc::new(config);
        let acc = Arc::new(Accumulator::new(
            config.batch_size,
            config.linger,
            config.compression,
            config.buffer_memory,
        ));
        let abort = Arc::new(Notify::new());
        let sender = Sender::new(cluster.clone(), config.clone(), acc.clone());
        let handle = tokio::spawn(sender.run(abort.clone()));
        let sender_done = async move {
            let _ = handle.await;
        }
        .boxed()
        .shared();
        Ok(Producer {
            inner: Arc::new(Inner {
                partitioner: PartitionerState::new(
                    config.partitioner.clone(),
                    config.partitioner_ignore_keys,
                    config.batch_size,
                ),
                cluster,
                config,
                acc,
                abort,
                sender: sender_done,
            }),
        })
    }

    /// The settings in force.
    pub fn config(&self) -> &ProducerConfig {
        &self.inner.config
    }

    /// Queues a record and returns the future of its delivery.
    ///
    /// Waits only for topic metadata and `buffer.memory` space, at most `max.block.ms`,
    /// then fails with [`Error::Timeout`]. A record larger than `max.request.size` or
    /// `buffer.memory` fails at once with [`Error::RecordTooLarge`]; records around it are
    /// not affected.
    ///
    /// # Cancellation
    /// Dropping this future before it resolves leaves nothing queued. Dropping the returned
    /// [`DeliveryFuture`] does not cancel the record (fire and forget).
    pub async fn send(&self, record: ProducerRecord) -> Result<DeliveryFuture> {
        let (tx, rx) = oneshot::channel();
        self.enqueue(record, Delivery::Future(tx)).await?;
        Ok(DeliveryFuture::new(rx))
    }

    /// Queues a record; `callback` gets its outcome, on the producer's sender task (keep it
    /// short: hand heavy work to a channel). Errors before queueing come back here instead,
    /// and then the callback is not called.
    ///
    /// # Cancellation
    /// As for [`send`](Self::send).
    pub async fn send_with_callback<F>(&self, record: ProducerRecord, callback: F) -> Result<()>
    where
        F: FnOnce(Result<RecordMetadata>) + Send + 'static,
    {
        self.enqueue(record, Delivery::Callback(Box::new(callback)))
            .await
    }

    async fn enqueue(&self, record: ProducerRecord, delivery: Delivery) -> Result<()> {
        let inner = &self.inner;
        if inner.acc.is_closed() {
            return Err(Error::Closed("the producer is closed".into()));
        }
        if let Some(e) = inner.acc.fatal() {
            return Err(e);
        }
        if record.topic.is_empty() {
            return Err(Error::InvalidArgument("a record needs a topic".into()));
        }
        let max_block = inner.config.max_block;
        let size = RecordBatchBuilder::record_size_upper_bound(
            record.key.as_ref().map_or(0, |k| k.len()),
            record.value.as_ref().map_or(0, |v| v.len()),
            &record.headers,
        );
        if size + BATCH_OVERHEAD > inner.config.max_request_size {
            return Err(Error::RecordTooLarge {
                topic: record.topic.clone(),
                size: size + BATCH_OVERHEAD,
                limit_key: "max.request.size",
                limit: inner.config.max_request_size,
            });
        }
        // One look-up of the name per record; the handle carries the rest.
        let topic = inner.acc.topic(&record.topic);
        // `max.block.ms` covers the metadata wait and the buffer wait together; the clock
        // is read only when one of them has to wait.
        let mut started = None;
        let wanted = |t: &TopicMetadata| {
            !t.partitions.is_empty()
                && record
                    .partition
                    .is_none_or(|p| p < t.partitions.len() as i32)
        };
        let metadata = match topic.metadata(&inner.cluster).filter(|t| wanted(t)) {
            Some(t) => t,
            None => {
                started = Some(Instant::now());
                // In use again: not to be forgotten as idle while its metadata is awaited.
                topic.touch(u64::try_from(now_ms()).unwrap_or(0));
                self.wait_for_topic(&record.topic, record.partition, max_block)
                    .await?
            }
        };
        let count = metadata.partitions.len() as i32;
        let partition = match record.partition {
            Some(p) => p,
            None => inner
                .partitioner
                .choose(&record, &metadata, &topic.partitioning),
        };
        if partition < 0 || partition >= count {
            return Err(Error::InvalidArgument(format!(
                "partition {partition} of topic {} is not in 0..{count}",
                record.topic
            )));
        }
        let sticky = inner.partitioner.is_sticky(&record);
        let timestamp = record.timestamp.unwrap_or_else(now_ms);
        // The clock is already read for a record without a timestamp.
        topic.touch(u64::try_from(record.timestamp.map_or(timestamp, |_| now_ms())).unwrap_or(0));
        if timestamp < 0 {
            return Err(Error::InvalidArgument(format!(
                "record timestamp {timestamp} for {} is negative",
                record.topic
            )));
        }
        inner
            .acc
            .reserve(&record.topic, size, started, max_block)
            .await?;
        if inner.acc.is_closed() {
            inner.acc.release(size);
            return Err(Error::Closed("the producer is closed".into()));
        }
        inner.acc.append(
            &topic,
            partition,
            count as usize,
            timestamp,
            record.key.as_deref(),
            record.value.as_deref(),
            &record.headers,
            size,
            delivery,
        );
        if sticky {
            inner
                .partitioner
                .on_append(&topic.partitioning, partition, size);
        }
        // The sender may have ended between the closed check and the append.
        inner.acc.fail_queued_if_sender_gone();
        Ok(())
    }

    /// The topic's metadata, waiting (within `wait`) until it is known and, for an explicit
    /// partition, until the topic has that partition (it may just have been added).
    async fn wait_for_topic(
        &self,
        topic: &str,
        partition: Option<i32>,
        wait: Duration,
    ) -> Result<Arc<TopicMetadata>> {
        let cluster = &self.inner.cluster;
        let has_partition =
            |t: &TopicMetadata| partition.is_none_or(|p| p < t.partitions.len() as i32);
        if let Some(t) = cluster.metadata().topic(topic) {
            if !t.partitions.is_empty() && has_partition(t) {
                return Ok(t.clone());
            }
        }
        cluster.track([topic.to_owned()]);
        match cluster.topic_where(topic, wait, has_partition).await {
            Err(Error::UnknownTopicOrPartition { .. }) => Err(Error::Timeout {
                what: format!("waiting for topic {topic} to appear in metadata (max.block.ms)"),
                after: wait,
            }),
            // The topic exists but never grew the partition asked for.
            Err(e) if e.is_timeout() && partition.is_some() => {
                match cluster.metadata().topic(topic) {
                    Some(t) => Err(Error::InvalidArgument(format!(
                        "partition {} of topic {topic} is not in 0..{}",
                        partition.unwrap_or_default(),
                        t.partitions.len()
                    ))),
                    None => Err(e),
                }
            }
            other => other,
        }
    }

    /// Metadata of a topic's partitions, as the producer sees them.
    pub async fn partitions_for(&self, topic: &str) -> Result<Arc<TopicMetadata>> {
        self.wait_for_topic(topic, None, self.inner.config.max_block)
            .await
    }

    /// Sends everything queued now, without waiting for `linger.ms`, and waits until all of
    /// it is delivered or failed (each record within `delivery.timeout.ms`). Outcomes are
    /// reported through each record's future or callback.
    ///
    /// # Cancellation
    /// Dropping the future stops waiting; the records are still delivered.
    pub async fn flush(&self) -> Result<()> {
        self.inner.acc.flush().await;
        match self.inner.acc.fatal() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Stops accepting records, delivers what is queued for up to `timeout`, then fails what
    /// is left with [`Error::Closed`] and stops the sender. Every clone is closed.
    ///
    /// # Cancellation
    /// Dropping the future leaves the producer closed to new records; queued ones are still
    /// delivered in the background.
    pub async fn close(&self, timeout: Duration) {
        self.inner.acc.close();
        let done = self.inner.sender.clone();
        if tokio::time::timeout(timeout, done.clone()).await.is_err() {
            tracing::warn!(
                ?timeout,
                "producer close timed out; failing undelivered records"
            );
            self.inner.abort.notify_one();
            done.await;
        }
        self.inner.cluster.close();
    }
}

pub(super) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
