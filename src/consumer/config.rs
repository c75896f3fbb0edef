//! The consumer's settings: Java names, Java defaults, and the checks between them.
//!
//! [`ConsumerConfig`] is what [`ConsumerBuilder`](super::ConsumerBuilder) produces. Single keys
//! are parsed by [`ConsumerConfig::apply`]; relations between keys (heartbeat below session
//! timeout, auto-commit needing a group) are checked once, by [`ConsumerConfig::validate`], when
//! the consumer is built, so the order in which keys are set does not matter.

use std::sync::Arc;
use std::time::Duration;

use crate::cluster::IsolationLevel;
use crate::config::{boolean, millis, number, ClientConfig};
use crate::consumer::assignor::{
    assignors_from_config, default_assignors, rebalance_protocol, PartitionAssignor,
    RebalanceProtocol,
};
use crate::error::{Error, Result};

/// What to do when a partition has no committed offset, or its position is out of range
/// (`auto.offset.reset`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum OffsetReset {
    /// Start from the first offset still in the log.
    Earliest,
    /// Start from the end: only records produced from now on (the Java default).
    #[default]
    Latest,
    /// Fail: `poll` returns [`Error::NoOffsetForPartition`] (no committed offset) or a
    /// `OFFSET_OUT_OF_RANGE` broker error naming the partition, until the application seeks.
    None,
}

impl OffsetReset {
    fn parse(key: &str, value: &str) -> Result<Self> {
        match value.trim().to_ascii_lowercase().as_str() {
            "earliest" => Ok(OffsetReset::Earliest),
            "latest" => Ok(OffsetReset::Latest),
            "none" => Ok(OffsetReset::None),
            _ => Err(Error::config(
                key,
                value,
                "expected earliest, latest or none",
            )),
        }
    }
}

/// The group membership protocol (`group.protocol`, KIP-848).
///
/// Only the classic protocol (JoinGroup, SyncGroup, Heartbeat) is implemented. The
/// `consumer` protocol of KIP-848 is refused with a config error; the group code is shaped so
/// it can be added beside the classic one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum GroupProtocol {
    /// The classic protocol, the Java default.
    #[default]
    Classic,
}

/// Every consumer setting, parsed. Built by [`ConsumerBuilder`](super::ConsumerBuilder).
#[derive(Clone)]
pub(crate) struct ConsumerConfig {
    pub(crate) client: ClientConfig,
    pub(crate) group_id: Option<String>,
    pub(crate) group_instance_id: Option<String>,
    pub(crate) group_protocol: GroupProtocol,
    /// `None` until validated: the default depends on whether a group is set.
    pub(crate) enable_auto_commit: Option<bool>,
    pub(crate) auto_commit_interval: Duration,
    pub(crate) auto_offset_reset: OffsetReset,
    pub(crate) max_poll_records: usize,
    pub(crate) max_poll_interval: Duration,
    pub(crate) session_timeout: Duration,
    pub(crate) heartbeat_interval: Duration,
    pub(crate) fetch_min_bytes: i32,
    pub(crate) fetch_max_bytes: i32,
    pub(crate) max_partition_fetch_bytes: i32,
    pub(crate) fetch_max_wait: Duration,
    pub(crate) isolation_level: IsolationLevel,
    pub(crate) assignors: Vec<Arc<dyn PartitionAssignor>>,
    pub(crate) allow_auto_create_topics: bool,
    /// Whether a subscribed pattern leaves out internal topics (`exclude.internal.topics`).
    pub(crate) exclude_internal_topics: bool,
    pub(crate) check_crcs: bool,
    pub(crate) client_rack: Option<String>,
    pub(crate) fetch_buffer_max_bytes: usize,
    /// Whether `receive.message.max.bytes` was set, rather than left at its default.
    pub(crate) receive_max_set: bool,
}

impl std::fmt::Debug for ConsumerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.assignors.iter().map(|a| a.name()).collect();
        f.debug_struct("ConsumerConfig")
            .field("bootstrap", &self.client.bootstrap_servers)
            .field("group_id", &self.group_id)
            .field("group_instance_id", &self.group_instance_id)
            .field("assignors", &names)
            .finish_non_exhaustive()
    }
}

impl Default for ConsumerConfig {
    fn default() -> Self {
        ConsumerConfig {
            client: ClientConfig::default(),
            group_id: None,
            group_instance_id: None,
            group_protocol: GroupProtocol::Classic,
            enable_auto_commit: None,
            auto_commit_interval: Duration::from_millis(5_000),
            auto_offset_reset: OffsetReset::Latest,
            max_poll_records: 500,
            max_poll_interval: Duration::from_millis(300_000),
            session_timeout: Duration::from_millis(45_000),
            heartbeat_interval: Duration::from_millis(3_000),
            fetch_min_bytes: 1,
            fetch_max_bytes: 52_428_800,
            max_partition_fetch_bytes: 1_048_576,
            fetch_max_wait: Duration::from_millis(500),
            isolation_level: IsolationLevel::ReadUncommitted,
            assignors: default_assignors(),
            allow_auto_create_topics: true,
            exclude_internal_topics: true,
            check_crcs: true,
            client_rack: None,
            fetch_buffer_max_bytes: DEFAULT_FETCH_BUFFER_MAX_BYTES,
            receive_max_set: false,
        }
    }
}

/// Default of `fetch.buffer.max.bytes` (ours, not Java's): 64 MiB of fetched, not yet consumed
/// record data.
pub(crate) const DEFAULT_FETCH_BUFFER_MAX_BYTES: usize = 64 * 1024 * 1024;

/// Room for what a Fetch response holds besides record data, which `fetch.max.bytes` bounds:
/// headers, topic names, per-partition fields and aborted-transaction lists (some 50 bytes
/// a partition), for thousands of partitions.
pub(crate) const FETCH_RESPONSE_OVERHEAD: usize = 1024 * 1024;

impl ConsumerConfig {
    /// Applies one Java-style key; consumer keys first, then the shared client keys.
    pub(crate) fn apply(&mut self, key: &str, value: &str) -> Result<()> {
        match key {
            "group.id" => self.group_id = non_empty(value),
            "group.instance.id" => {
                if value.trim().is_empty() {
                    return Err(Error::config(key, value, "must not be empty when set"));
                }
                self.group_instance_id = Some(value.trim().to_owned());
            }
            "group.protocol" => {
                self.group_protocol = match value.trim().to_ascii_lowercase().as_str() {
                    "classic" => GroupProtocol::Classic,
                    "consumer" => {
                        return Err(Error::config(
                            key,
                            value,
                            "the KIP-848 consumer group protocol is not implemented yet; \
                             use classic",
                        ))
                    }
                    _ => return Err(Error::config(key, value, "expected classic")),
                }
            }
            "enable.auto.commit" => self.enable_auto_commit = Some(boolean(key, value)?),
            "auto.commit.interval.ms" => self.auto_commit_interval = millis(key, value)?,
            "auto.offset.reset" => self.auto_offset_reset = OffsetReset::parse(key, value)?,
            "max.poll.records" => self.max_poll_records = positive(key, value)?,
            "max.poll.interval.ms" => self.max_poll_interval = positive_millis(key, value)?,
            "session.timeout.ms" => self.session_timeout = positive_millis(key, value)?,
            "heartbeat.interval.ms" => self.heartbeat_interval = positive_millis(key, value)?,
            "fetch.min.bytes" => self.fetch_min_bytes = number(key, value)?,
            "fetch.max.bytes" => self.fetch_max_bytes = positive(key, value)?,
            "max.partition.fetch.bytes" => self.max_partition_fetch_bytes = positive(key, value)?,
            "fetch.max.wait.ms" => {
                let wait = millis(key, value)?;
                if wait > Duration::from_millis(i32::MAX as u64) {
                    return Err(Error::config(key, value, "must fit a 32-bit integer"));
                }
                self.fetch_max_wait = wait;
            }
            "isolation.level" => {
                self.isolation_level = match value.trim().to_ascii_lowercase().as_str() {
                    "read_uncommitted" => IsolationLevel::ReadUncommitted,
                    "read_committed" => IsolationLevel::ReadCommitted,
                    _ => {
                        return Err(Error::config(
                            key,
                            value,
                            "expected read_uncommitted or read_committed",
                        ))
                    }
                }
            }
            "partition.assignment.strategy" => self.assignors = assignors_from_config(value)?,
            "allow.auto.create.topics" => self.allow_auto_create_topics = boolean(key, value)?,
            "exclude.internal.topics" => self.exclude_internal_topics = boolean(key, value)?,
            "check.crcs" => self.check_crcs = boolean(key, value)?,
            "client.rack" => self.client_rack = non_empty(value),
            "fetch.buffer.max.bytes" => self.fetch_buffer_max_bytes = positive(key, value)?,
            // Records are handed out as bytes; Java property files name deserializers, which
            // have nothing to configure here.
            "key.deserializer" | "value.deserializer" => {
                tracing::debug!(key, value, "ignored: records carry raw bytes");
            }
            "receive.message.max.bytes" => {
                self.client.apply(key, value)?;
                self.receive_max_set = true;
            }
            _ => {
                if !self.client.apply(key, value)? {
                    return Err(Error::config(key, value, "unknown configuration key"));
                }
            }
        }
        Ok(())
    }

    /// Checks relations between settings and fills defaults that depend on other keys.
    pub(crate) fn validate(&mut self) -> Result<()> {
        self.client.validate()?;
        if self.heartbeat_interval >= self.session_timeout {
            return Err(Error::config(
                "heartbeat.interval.ms",
                self.heartbeat_interval.as_millis(),
                format!(
                    "must be lower than session.timeout.ms ({}); a third of it is usual",
                    self.session_timeout.as_millis()
                ),
            ));
        }
        match (self.enable_auto_commit, &self.group_id) {
            (Some(true), None) => {
                return Err(Error::config(
                    "enable.auto.commit",
                    "true",
                    "committing offsets needs a group.id",
                ))
            }
            (None, None) => self.enable_auto_commit = Some(false),
            (None, Some(_)) => self.enable_auto_commit = Some(true),
            _ => {}
        }
        if self.group_instance_id.is_some() && self.group_id.is_none() {
            return Err(Error::config(
                "group.instance.id",
                self.group_instance_id.as_deref().unwrap_or_default(),
                "static membership needs a group.id",
            ));
        }
        self.fit_fetch_responses()?;
        if (self.fetch_min_bytes as i64) > self.fetch_max_bytes as i64 || self.fetch_min_bytes < 0 {
            return Err(Error::config(
                "fetch.min.bytes",
                self.fetch_min_bytes,
                format!(
                    "must be between 0 and fetch.max.bytes ({})",
                    self.fetch_max_bytes
                ),
            ));
        }
        // The protocol every assignor shares decides eager or cooperative rebalancing.
        rebalance_protocol(&self.assignors)?;
        Ok(())
    }

    /// Makes `receive.message.max.bytes` (the cap on any response) fit the largest Fetch
    /// response `fetch.max.bytes` allows. Java takes any `fetch.max.bytes`, its client having
    /// no such cap, so the cap is raised when left at its default; a cap set explicitly below
    /// it is a contradiction, reported naming both keys.
    fn fit_fetch_responses(&mut self) -> Result<()> {
        let needed = usize::try_from(self.fetch_max_bytes)
            .unwrap_or(0)
            .saturating_add(FETCH_RESPONSE_OVERHEAD);
        let cap = self.client.max_response_size;
        if cap >= needed {
            return Ok(());
        }
        if self.receive_max_set {
            return Err(Error::config(
                "fetch.max.bytes",
                self.fetch_max_bytes,
                format!(
                    "a Fetch response carries up to this much record data plus framing, more \
                     than receive.message.max.bytes={cap} accepts; lower fetch.max.bytes or \
                     raise receive.message.max.bytes to at least {needed}"
                ),
            ));
        }
        tracing::debug!(
            fetch_max_bytes = self.fetch_max_bytes,
            receive_message_max_bytes = needed,
            "raising receive.message.max.bytes to fit fetch.max.bytes"
        );
        self.client.max_response_size = needed;
        Ok(())
    }

    pub(crate) fn auto_commit(&self) -> bool {
        self.enable_auto_commit.unwrap_or(false) && self.group_id.is_some()
    }

    /// The rebalance protocol the assignors agree on (checked by `validate`).
    pub(crate) fn rebalance_protocol(&self) -> RebalanceProtocol {
        rebalance_protocol(&self.assignors).unwrap_or(RebalanceProtocol::Eager)
    }

    /// The JoinGroup request's timeout: the rebalance may take `max.poll.interval.ms` on the
    /// coordinator, plus a margin for the network, as the Java client allows.
    pub(crate) fn join_timeout(&self) -> Duration {
        (self.max_poll_interval + Duration::from_secs(5)).max(self.client.request_timeout)
    }
}

fn non_empty(value: &str) -> Option<String> {
    let v = value.trim();
    (!v.is_empty()).then(|| v.to_owned())
}

fn positive<T>(key: &str, value: &str) -> Result<T>
where
    T: std::str::FromStr + PartialOrd + Default,
{
    let n: T = number(key, value)?;
    if n <= T::default() {
        return Err(Error::config(key, value, "must be greater than 0"));
    }
    Ok(n)
}

fn positive_millis(key: &str, value: &str) -> Result<Duration> {
    let d = millis(key, value)?;
    if d.is_zero() {
        return Err(Error::config(key, value, "must be greater than 0"));
    }
    if d > Duration::from_millis(i32::MAX as u64) {
        return Err(Error::config(key, value, "must fit a 32-bit integer"));
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn built(pairs: &[(&str, &str)]) -> Result<ConsumerConfig> {
        let mut c = ConsumerConfig::default();
        for (k, v) in pairs {
            c.apply(k, v)?;
        }
        c.validate()?;
        Ok(c)
    }

    #[test]
    fn java_defaults() {
        let c = built(&[("group.id", "g")]).unwrap();
        assert!(c.auto_commit());
        assert_eq!(c.auto_commit_interval, Duration::from_secs(5));
        assert_eq!(c.auto_offset_reset, OffsetReset::Latest);
        assert_eq!(c.max_poll_records, 500);
        assert_eq!(c.max_poll_interval, Duration::from_secs(300));
        assert_eq!(c.session_timeout, Duration::from_secs(45));
        assert_eq!(c.heartbeat_interval, Duration::from_secs(3));
        assert_eq!(c.fetch_min_bytes, 1);
        assert_eq!(c.fetch_max_bytes, 52_428_800);
        assert_eq!(c.max_partition_fetch_bytes, 1_048_576);
        assert_eq!(c.fetch_max_wait, Duration::from_millis(500));
        assert_eq!(c.isolation_level, IsolationLevel::ReadUncommitted);
        let names: Vec<&str> = c.assignors.iter().map(|a| a.name()).collect();
        assert_eq!(names, ["range", "cooperative-sticky"]);
        assert!(c.allow_auto_create_topics && c.check_crcs && c.exclude_internal_topics);
        assert_eq!(c.rebalance_protocol(), RebalanceProtocol::Eager);
        // Java's JoinGroup waits for the rebalance timeout plus a margin.
        assert_eq!(c.join_timeout(), Duration::from_secs(305));
    }

    #[test]
    fn auto_commit_defaults_off_without_a_group_and_cannot_be_forced_on() {
        assert!(!built(&[]).unwrap().auto_commit());
        let err = built(&[("enable.auto.commit", "true")]).unwrap_err();
        assert!(err.to_string().contains("enable.auto.commit"), "{err}");
        assert!(err.to_string().contains("group.id"), "{err}");
    }

    #[test]
    fn heartbeat_must_be_below_session_timeout() {
        let err = built(&[
            ("group.id", "g"),
            ("session.timeout.ms", "6000"),
            ("heartbeat.interval.ms", "6000"),
        ])
        .unwrap_err();
        match err {
            Error::Config { key, value, .. } => {
                assert_eq!(key, "heartbeat.interval.ms");
                assert_eq!(value, "6000");
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn bad_values_name_key_and_value() {
        for (k, v) in [
            ("auto.offset.reset", "smallest"),
            ("isolation.level", "serializable"),
            ("max.poll.records", "0"),
            ("partition.assignment.strategy", "fair"),
            ("group.protocol", "consumer"),
            ("enable.auto.commit", "yes"),
            ("fetch.max.wait.ms", "-1"),
            ("no.such.key", "1"),
        ] {
            let err = built(&[(k, v)]).unwrap_err();
            let text = err.to_string();
            assert!(text.contains(k) && text.contains(v), "{k}={v}: {text}");
        }
    }

    #[test]
    fn auto_commit_interval_zero_is_accepted_as_in_java() {
        let c = built(&[("group.id", "g"), ("auto.commit.interval.ms", "0")]).unwrap();
        assert!(c.auto_commit());
        assert!(c.auto_commit_interval.is_zero());
    }

    #[test]
    fn fetch_max_bytes_beyond_the_response_cap_raises_the_default_cap() {
        let big = 200 * 1024 * 1024;
        let c = built(&[("fetch.max.bytes", &big.to_string())]).unwrap();
        assert_eq!(c.client.max_response_size, big + FETCH_RESPONSE_OVERHEAD);
        // Within the default cap nothing changes.
        let c = built(&[]).unwrap();
        assert_eq!(c.client.max_response_size, 100 * 1024 * 1024);
        // Both set, and consistent: kept as set.
        let c = built(&[
            ("fetch.max.bytes", "1048576"),
            ("receive.message.max.bytes", "4194304"),
        ])
        .unwrap();
        assert_eq!(c.client.max_response_size, 4_194_304);
    }

    #[test]
    fn fetch_max_bytes_beyond_an_explicit_response_cap_names_both() {
        for pairs in [
            vec![("receive.message.max.bytes", "10485760")],
            vec![
                ("fetch.max.bytes", "10485760"),
                ("receive.message.max.bytes", "10485760"),
            ],
        ] {
            let err = built(&pairs).unwrap_err();
            let fetch_max = pairs
                .iter()
                .find(|(k, _)| *k == "fetch.max.bytes")
                .map_or("52428800", |(_, v)| v);
            match &err {
                Error::Config { key, value, reason } => {
                    assert_eq!(
                        (key.as_str(), value.as_str()),
                        ("fetch.max.bytes", fetch_max)
                    );
                    assert!(
                        reason.contains("receive.message.max.bytes=10485760"),
                        "{err}"
                    );
                }
                other => panic!("unexpected {other:?}"),
            }
        }
    }

    #[test]
    fn java_names_for_everything() {
        let c = built(&[
            ("bootstrap.servers", "a:1,b:2"),
            ("group.id", "g"),
            ("group.instance.id", "i-1"),
            ("auto.offset.reset", "earliest"),
            ("isolation.level", "READ_COMMITTED"),
            ("partition.assignment.strategy", "cooperative-sticky"),
            ("client.rack", "r1"),
            ("fetch.buffer.max.bytes", "1000000"),
            ("exclude.internal.topics", "false"),
            (
                "key.deserializer",
                "org.apache.kafka.common.serialization.StringDeserializer",
            ),
        ])
        .unwrap();
        assert_eq!(c.client.bootstrap_servers, ["a:1", "b:2"]);
        assert_eq!(c.group_instance_id.as_deref(), Some("i-1"));
        assert_eq!(c.auto_offset_reset, OffsetReset::Earliest);
        assert_eq!(c.isolation_level, IsolationLevel::ReadCommitted);
        assert_eq!(c.rebalance_protocol(), RebalanceProtocol::Cooperative);
        assert_eq!(c.client_rack.as_deref(), Some("r1"));
        assert_eq!(c.fetch_buffer_max_bytes, 1_000_000);
        assert!(!c.exclude_internal_topics);
    }
}
