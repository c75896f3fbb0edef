//! [`ConsumerBuilder`]: typed setters and Java-style properties, checked at `build`.

use std::sync::Arc;
use std::time::Duration;

use super::assignor::{PartitionAssignor, PARTITION_ASSIGNMENT_STRATEGY};
use super::config::{ConsumerConfig, OffsetReset};
use super::listener::RebalanceListener;
use super::Consumer;
use crate::cluster::{Cluster, IsolationLevel};
use crate::config::parse_properties;
use crate::error::{Error, Result};

/// Builds a [`Consumer`]. Every setter names the Java property it stands for and its default;
/// [`set`](Self::set) takes the Java properties themselves. Bad values, unknown keys and
/// settings that contradict each other are reported by [`build`](Self::build), naming the key
/// and the value.
///
/// ```no_run
/// use std::time::Duration;
/// use kafka_client::consumer::{Consumer, OffsetReset};
/// # async fn demo() -> kafka_client::Result<()> {
/// let consumer = Consumer::builder()
///     .bootstrap_servers("127.0.0.1:9092")
///     .group_id("billing")
///     .auto_offset_reset(OffsetReset::Earliest)
///     .session_timeout(Duration::from_secs(10))
///     .set("partition.assignment.strategy", "cooperative-sticky")
///     .build()
///     .await?;
/// # Ok(()) }
/// ```
pub struct ConsumerBuilder {
    config: ConsumerConfig,
    error: Option<Error>,
    listener: Option<Box<dyn RebalanceListener>>,
}

impl std::fmt::Debug for ConsumerBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsumerBuilder")
            .field("config", &self.config)
            .field("error", &self.error)
            .finish_non_exhaustive()
    }
}

impl Default for ConsumerBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl ConsumerBuilder {
    /// The Java client's defaults.
    pub fn new() -> Self {
        ConsumerBuilder {
            config: ConsumerConfig::default(),
            error: None,
            listener: None,
        }
    }

    /// Sets a Java-style property, such as `set("max.poll.records", "100")`. Every consumer
    /// property this crate implements is accepted, plus the shared client ones
    /// (`bootstrap.servers`, `request.timeout.ms`...) and `fetch.buffer.max.bytes`, which is
    /// this crate's own. The first error is reported by [`build`](Self::build).
    pub fn set(mut self, key: &str, value: &str) -> Self {
        if self.error.is_none() {
            if let Err(e) = self.config.apply(key.trim(), value) {
                self.error = Some(e);
            }
        }
        self
    }

    /// Sets every `key=value` line of a Java `.properties` text.
    pub fn properties(mut self, text: &str) -> Self {
        match parse_properties(text) {
            Ok(pairs) => {
                for (k, v) in pairs {
                    self = self.set(&k, &v);
                }
            }
            Err(e) => {
                self.error.get_or_insert(e);
            }
        }
        self
    }

    fn millis(self, key: &str, d: Duration) -> Self {
        let ms = d.as_millis().to_string();
        self.set(key, &ms)
    }

    /// `bootstrap.servers`: comma-separated `host:port` list. Default `127.0.0.1:9092`.
    pub fn bootstrap_servers(self, servers: &str) -> Self {
        self.set("bootstrap.servers", servers)
    }

    /// `client.id`. Default `kafka-client-rs`.
    pub fn client_id(self, id: &str) -> Self {
        self.set("client.id", id)
    }

    /// `metadata.max.age.ms`: how often cluster metadata is refreshed even without a sign of
    /// change; a [pattern subscription](Consumer::subscribe_pattern) notices topics created or
    /// deleted at these refreshes. Default 5 min.
    pub fn metadata_max_age(self, d: Duration) -> Self {
        self.millis("metadata.max.age.ms", d)
    }

    /// `group.id`: the consumer group. Needed for `subscribe` and commits. No default.
    pub fn group_id(self, id: &str) -> Self {
        self.set("group.id", id)
    }

    /// `group.instance.id`: makes this a static member (KIP-345) that keeps its partitions
    /// across restarts within `session.timeout.ms`. No default.
    pub fn group_instance_id(self, id: &str) -> Self {
        self.set("group.instance.id", id)
    }

    /// `enable.auto.commit`: commit positions every `auto.commit.interval.ms`, before
    /// revocations and on close. Default `true` with a `group.id`.
    pub fn enable_auto_commit(self, on: bool) -> Self {
        self.set("enable.auto.commit", if on { "true" } else { "false" })
    }

    /// `auto.commit.interval.ms`: how often auto-commit commits the positions as of the last
    /// poll. Default 5 s. Zero commits at every poll, as in Java.
    pub fn auto_commit_interval(self, every: Duration) -> Self {
        self.millis("auto.commit.interval.ms", every)
    }

    /// `auto.offset.reset`: where to start without a committed offset. Default `Latest`.
    pub fn auto_offset_reset(self, reset: OffsetReset) -> Self {
        let v = match reset {
            OffsetReset::Earliest => "earliest",
            OffsetReset::Latest => "latest",
            OffsetReset::None => "none",
        };
        self.set("auto.offset.reset", v)
    }

    /// `max.poll.records`: the most records one `poll` returns. Default 500.
    pub fn max_poll_records(self, n: usize) -> Self {
        self.set("max.poll.records", &n.to_string())
    }

    /// `max.poll.interval.ms`: a member that does not poll for this long leaves the group;
    /// also the rebalance timeout. Default 5 min.
    pub fn max_poll_interval(self, d: Duration) -> Self {
        self.millis("max.poll.interval.ms", d)
    }

    /// `session.timeout.ms`: a member whose heartbeats stop for this long is removed.
    /// Default 45 s (the broker bounds it by `group.min/max.session.timeout.ms`).
    pub fn session_timeout(self, d: Duration) -> Self {
        self.millis("session.timeout.ms", d)
    }

    /// `heartbeat.interval.ms`: below the session timeout, usually a third. Default 3 s.
    pub fn heartbeat_interval(self, d: Duration) -> Self {
        self.millis("heartbeat.interval.ms", d)
    }

    /// `fetch.min.bytes`: the broker waits for this much data (or `fetch.max.wait.ms`).
    /// Default 1.
    pub fn fetch_min_bytes(self, n: i32) -> Self {
        self.set("fetch.min.bytes", &n.to_string())
    }

    /// `fetch.max.bytes`: the most data one Fetch response carries (one larger batch still
    /// comes whole). Default 50 MiB. A value the default `receive.message.max.bytes` cannot
    /// receive raises it; one an explicit `receive.message.max.bytes` cannot is an error.
    pub fn fetch_max_bytes(self, n: i32) -> Self {
        self.set("fetch.max.bytes", &n.to_string())
    }

    /// `max.partition.fetch.bytes`: the most data per partition per Fetch. Default 1 MiB.
    pub fn max_partition_fetch_bytes(self, n: i32) -> Self {
        self.set("max.partition.fetch.bytes", &n.to_string())
    }

    /// `fetch.max.wait.ms`: how long the broker may hold a Fetch for `fetch.min.bytes`.
    /// Default 500 ms.
    pub fn fetch_max_wait(self, d: Duration) -> Self {
        self.millis("fetch.max.wait.ms", d)
    }

    /// `isolation.level`. Default `ReadUncommitted`.
    pub fn isolation_level(self, level: IsolationLevel) -> Self {
        let v = match level {
            IsolationLevel::ReadUncommitted => "read_uncommitted",
            IsolationLevel::ReadCommitted => "read_committed",
        };
        self.set("isolation.level", v)
    }

    /// `partition.assignment.strategy` as assignor objects (custom ones included), in order of
    /// preference. Default range, then cooperative-sticky.
    pub fn assignors(mut self, assignors: Vec<Arc<dyn PartitionAssignor>>) -> Self {
        if assignors.is_empty() {
            self.error.get_or_insert(Error::config(
                PARTITION_ASSIGNMENT_STRATEGY,
                "",
                "at least one assignor is required",
            ));
        } else {
            self.config.assignors = assignors;
        }
        self
    }

    /// `allow.auto.create.topics`: whether metadata requests for subscribed or assigned topics
    /// let the broker create missing ones (if the broker's `auto.create.topics.enable` allows
    /// it). Default `true`.
    pub fn allow_auto_create_topics(self, allow: bool) -> Self {
        self.set(
            "allow.auto.create.topics",
            if allow { "true" } else { "false" },
        )
    }

    /// `exclude.internal.topics`: whether a [pattern subscription](Consumer::subscribe_pattern)
    /// leaves out internal topics such as `__consumer_offsets`, even when the pattern matches
    /// them. Default `true`.
    pub fn exclude_internal_topics(self, exclude: bool) -> Self {
        self.set(
            "exclude.internal.topics",
            if exclude { "true" } else { "false" },
        )
    }

    /// `check.crcs`: verify each fetched batch's CRC32C. Default `true`.
    pub fn check_crcs(self, check: bool) -> Self {
        self.set("check.crcs", if check { "true" } else { "false" })
    }

    /// `client.rack`: this consumer's rack, sent with Fetch and in the group subscription.
    /// No default.
    pub fn client_rack(self, rack: &str) -> Self {
        self.set("client.rack", rack)
    }

    /// `fetch.buffer.max.bytes` (this crate's, not Java's): the most fetched, not yet
    /// returned record data to hold; fetching pauses above it. Default 64 MiB. Memory stays
    /// below about this plus one `fetch.max.bytes` response per broker.
    pub fn fetch_buffer_max_bytes(self, n: usize) -> Self {
        self.set("fetch.buffer.max.bytes", &n.to_string())
    }

    /// The listener called on rebalances. None by default.
    pub fn rebalance_listener(mut self, listener: impl RebalanceListener + 'static) -> Self {
        self.listener = Some(Box::new(listener));
        self
    }

    /// Checks the settings, connects to the cluster (within
    /// `socket.connection.setup.timeout.ms`) and starts the consumer's tasks.
    ///
    /// # Cancellation
    /// Dropping the future before it resolves leaves nothing running.
    pub async fn build(self) -> Result<Consumer> {
        if let Some(e) = self.error {
            return Err(e);
        }
        let mut config = self.config;
        config.validate()?;
        let cluster =
            Cluster::connect_with(config.client.clone(), config.allow_auto_create_topics).await?;
        Consumer::start(config, cluster, self.listener)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_first_bad_setting_is_reported_by_build() {
        let err = Consumer::builder()
            .set("max.poll.records", "lots")
            .set("auto.offset.reset", "smallest")
            .build()
            .await
            .unwrap_err();
        match err {
            Error::Config { key, value, .. } => {
                assert_eq!((key.as_str(), value.as_str()), ("max.poll.records", "lots"))
            }
            other => panic!("unexpected {other:?}"),
        }
        let err = Consumer::builder()
            .properties("group.id=g\nsession.timeout.ms=6000\nheartbeat.interval.ms=7000\n")
            .build()
            .await
            .unwrap_err();
        assert!(err.to_string().contains("heartbeat.interval.ms"), "{err}");
        let err = Consumer::builder()
            .group_id("g")
            .set("group.protocol", "consumer")
            .build()
            .await
            .unwrap_err();
        assert!(err.to_string().contains("group.protocol"), "{err}");
    }
}
