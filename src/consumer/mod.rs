//! The consumer side of consumer groups: partition assignors, the consumer protocol, and the
//! consumer's own state (settings, partition positions, fetched data).

#![allow(dead_code)] // The fetcher and the Consumer handle that use these land next.

pub mod assignor;
mod buffer;
mod config;
mod drain;
mod fetch_session;
mod group;
pub(crate) mod protocol;
mod record;
mod subscription;

pub use config::{GroupProtocol, OffsetReset};
pub use record::{ConsumerRecord, OffsetAndMetadata, OffsetAndTimestamp, TimestampType};
