//! The consumer: reads records of subscribed topics as a member of a consumer group, or of
//! assigned partitions; commits offsets; rebalances with Java consumers in the same group.
//!
//! ```text
//!   application ── poll / recv / stream ──▶ Consumer ──▶ applies rebalances, runs callbacks
//!        │                                    │    ▲        then decodes records (drain.rs)
//!        │ commit / committed / seek...       │    │ CompletedFetch
//!        ▼                                    │  FetchBuffer (buffer.rs, bounded)
//!   group task (group/)  ◀── commands ───────┘    ▲
//!   join, sync, heartbeat, commits                │
//!   (auto-commits come from poll),  fetcher task (fetcher.rs): one Fetch per leader in flight,
//!   poll watchdog                   KIP-227 sessions (fetch_session.rs), positions from
//!        └── GroupEvent ──▶ poll ──▶ Subscriptions ◀── committed offsets or resets (positions.rs)
//!                                    (subscription.rs: position, fetch offset, pause, epoch
//!                                     per partition; the subscription session)
//! ```
//!
//! Three tasks per consumer: the cluster's metadata refresher, the fetcher and, with a
//! `group.id`, the group member (classic protocol). They share the partition state
//! (`subscription.rs`) behind a short `std` lock and never hold it across an `.await`.
//!
//! A subscription names topics or a [`TopicPattern`] (`pattern.rs`). With a pattern the
//! refresher lists every topic, and the group task matches the pattern against each new
//! snapshot and rejoins when the match changes (`group/classic/pattern.rs`).
//!
//! What is not implemented yet: the KIP-848 `consumer` group protocol (refused by
//! `group.protocol`), fetching from followers (KIP-392), log-truncation detection through
//! OffsetForLeaderEpoch (KIP-320 validation), and `auto.offset.reset` by duration.

pub mod assignor;
mod buffer;
mod builder;
mod client;
mod config;
mod drain;
mod fetch_request;
mod fetch_session;
mod fetcher;
pub(crate) mod group;
mod listener;
mod offsets;
mod pattern;
mod poll;
mod positions;
pub(crate) mod protocol;
mod rebalance;
mod record;
mod subscription;

pub use builder::ConsumerBuilder;
pub use client::Consumer;
pub use config::{GroupProtocol, OffsetReset};
pub use listener::RebalanceListener;
pub use pattern::{IntoTopicPattern, TopicPattern};
pub use record::{ConsumerRecord, OffsetAndMetadata, OffsetAndTimestamp, TimestampType};
