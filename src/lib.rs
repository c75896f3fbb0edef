//! kafka-client: a pure-Rust, async client for Apache Kafka.
#![warn(missing_docs)]

pub mod error;

pub use error::{Error, KafkaCode, Result};
