//! kafka-client: a pure-Rust, async client for Apache Kafka.
#![warn(missing_docs)]

pub mod error;
pub(crate) mod protocol;
mod types;

pub use error::{Error, ErrorContext, KafkaCode, Result};
pub use types::{Header, TopicPartition};
pub mod admin;
pub mod cluster;
pub mod config;
pub mod connection;
