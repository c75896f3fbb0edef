//! kafka-client: a pure-Rust, async client for Apache Kafka.
#![warn(missing_docs)]

pub mod consumer;
pub mod error;
mod types;

pub use error::{Error, ErrorContext, KafkaCode, Result};
pub use types::{Header, TopicPartition};
