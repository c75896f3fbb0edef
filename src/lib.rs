//! kafka-client: a pure-Rust, async (tokio) client for Apache Kafka.
//!
//! - [`producer`]: batching (`batch.size`, `linger.ms`, `buffer.memory`), compression
//!   (gzip, snappy, lz4, zstd), Java-compatible partitioning, acks and retries within
//!   `delivery.timeout.ms`, idempotence by default.
//! - [`consumer`]: consumer groups (classic protocol, subscriptions to topics or to a
//!   pattern, Java-compatible assignors, eager and cooperative rebalancing, static
//!   membership), manual assignment, commits, seeks, read_committed, pipelined fetching
//!   with KIP-227 fetch sessions.
//! - [`admin`]: create, delete, list and describe topics; list offsets; list and describe
//!   consumer groups with their committed offsets.
//! - [`connection`] and [`protocol::records`]: the low layers, public for tools and tests.
//!
//! Settings carry the Java client's names and defaults: a builder's `.set("linger.ms", "5")`
//! means what `linger.ms=5` means to the Java client, and an unknown key or bad value is an
//! [`Error::Config`] naming both.
//!
//! ```no_run
//! use kafka_client::producer::{Producer, ProducerRecord};
//! # async fn demo() -> kafka_client::Result<()> {
//! let producer = Producer::builder().bootstrap_servers("127.0.0.1:9092").build().await?;
//! let stored = producer
//!     .send(ProducerRecord::new("orders").key("order-1").value("OrderCreated"))
//!     .await?
//!     .await?;
//! println!("{}-{} at offset {}", stored.topic, stored.partition, stored.offset);
//! # Ok(()) }
//! ```
//!
//! # Architecture
//!
//! Layers, bottom up (each a module):
//! - [`protocol`]: what this crate encodes itself: record batches and their codecs. Request
//!   and response messages come from the `kafka-protocol` crate.
//! - [`connection`]: one TCP connection to one broker. A writer task owns the socket's write
//!   half and a reader task its read half; requests carry correlation ids and wait on a
//!   oneshot, so many are in flight at once. Any failure poisons the connection and fails
//!   every waiter.
//! - [`cluster`]: bootstrap, the metadata cache (brokers, partitions, leaders, leader epochs)
//!   and a pool of connections per broker and traffic class (control, produce, fetch,
//!   group). A background task refreshes metadata every `metadata.max.age.ms` (of every
//!   topic while a consumer subscribes to a pattern, else of the topics in use) and ends
//!   with the last handle.
//! - [`producer`]: `send` finds the topic's handle (its partition queues, partitioner state
//!   and cached metadata) with one look-up and appends to a per-partition batch in the
//!   accumulator (it owns the `buffer.memory` semaphore); one sender task per producer
//!   drains ready batches into a produce request per leader, written from the batches' own
//!   buffers, and owns compression, retries and the idempotence state.
//! - [`consumer`]: a fetcher task per consumer keeps one Fetch in flight per partition
//!   leader and fills a bounded buffer of fetched data; the group task (with a `group.id`)
//!   owns membership (join, sync, heartbeat, sending commits, matching a subscribed pattern
//!   against each new metadata snapshot); the application's `poll` applies assignment
//!   changes and runs their callbacks, issues auto-commits and decodes records lazily.
//!   Partition state (positions, pauses) is shared between the three behind a short lock.
//! - [`admin`]: topic, offset and consumer-group management over the cluster layer.
//!
//! Every public handle is cheap to clone and shares its tasks, except [`Consumer`], which has
//! one owner (reading records takes `&mut self`; see its docs for why). No lock is held
//! across an `.await`, and every queue is bounded.
#![warn(missing_docs)]

pub mod admin;
pub mod cluster;
pub mod config;
pub mod connection;
pub mod consumer;
pub mod error;
pub mod producer;
pub mod protocol;
mod types;

pub use consumer::{
    Consumer, ConsumerBuilder, ConsumerRecord, OffsetAndMetadata, OffsetReset, RebalanceListener,
};
pub use error::{Error, ErrorContext, KafkaCode, Result};
pub use types::{Header, TopicPartition};

/// The README's examples, compiled as doc tests so they stay true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
