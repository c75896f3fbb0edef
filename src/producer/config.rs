//! Producer settings under the Java client's names and defaults, and their builder.

use std::sync::Arc;
use std::time::Duration;

use crate::config::{boolean, millis, number, parse_properties, ClientConfig};
use crate::error::{Error, Result};
use crate::protocol::records::Compression;

use super::partitioner::{Partitioner, PartitionerKind};
use super::Producer;

/// How many replicas must have a record before the broker acknowledges it (`acks`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Acks {
    /// `acks=0`: the broker does not answer; offsets are unknown (-1) and nothing is retried.
    None,
    /// `acks=1`: the leader has written it.
    Leader,
    /// `acks=all` (or `-1`): every in-sync replica has it. The default.
    #[default]
    All,
}

impl Acks {
    pub(crate) fn wire(self) -> i16 {
        match self {
            Acks::None => 0,
            Acks::Leader => 1,
            Acks::All => -1,
        }
    }
}

/// Every producer setting. Build through [`ProducerBuilder`]; the fields document the Java
/// property each one is.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ProducerConfig {
    /// Settings shared by every client (`bootstrap.servers`, `request.timeout.ms`, ...).
    pub client: ClientConfig,
    /// `acks`. Default `all`.
    pub acks: Acks,
    /// `batch.size`: bytes of records per partition batch before it is sent. Default 16384.
    pub batch_size: usize,
    /// `linger.ms`: how long a batch waits for more records. Default 5 ms.
    pub linger: Duration,
    /// `buffer.memory`: bytes of records held before `send` waits. Default 32 MiB.
    pub buffer_memory: usize,
    /// `max.block.ms`: how long `send` waits for buffer space or topic metadata. Default 60 s.
    pub max_block: Duration,
    /// `metadata.max.idle.ms`: a topic not sent to for this long is dropped from the
    /// metadata the producer keeps refreshing; the next send looks it up again. Default
    /// 5 min, at least 5 s (as in Java).
    pub metadata_max_idle: Duration,
    /// `max.request.size`: the largest record (and produce request) sent. Default 1 MiB.
    pub max_request_size: usize,
    /// `compression.type` and its level. Default none.
    pub compression: Compression,
    /// `retries`: attempts after the first; delivery is bounded by `delivery.timeout.ms`
    /// anyway. Default `i32::MAX`.
    pub retries: u32,
    /// `delivery.timeout.ms`: the time from `send` to a success or failure. Default 120 s.
    pub delivery_timeout: Duration,
    /// `max.in.flight.requests.per.connection`. Default 5.
    pub max_in_flight: usize,
    /// `enable.idempotence`: producer id, epoch and sequence numbers make retries
    /// duplicate-free and keep order. Default true (off by default when `acks` is not `all`
    /// and idempotence was not asked for, as in Java).
    pub enable_idempotence: bool,
    /// `partitioner.ignore.keys`: spread keyed records like keyless ones. Default false.
    pub partitioner_ignore_keys: bool,
    pub(crate) partitioner: PartitionerKind,
    /// `compression.{gzip,lz4,zstd}.level` as given, applied to the chosen codec at build.
    levels: [Option<i32>; 3],
    idempotence_set: bool,
    delivery_timeout_set: bool,
}

impl Default for ProducerConfig {
    fn default() -> Self {
        ProducerConfig {
            client: ClientConfig::default(),
            acks: Acks::All,
            batch_size: 16_384,
            linger: Duration::from_millis(5),
            buffer_memory: 32 * 1024 * 1024,
            max_block: Duration::from_secs(60),
            metadata_max_idle: Duration::from_secs(300),
            max_request_size: 1024 * 1024,
            compression: Compression::None,
            retries: i32::MAX as u32,
            delivery_timeout: Duration::from_secs(120),
            max_in_flight: 5,
            enable_idempotence: true,
            partitioner_ignore_keys: false,
            partitioner: PartitionerKind::Default,
            levels: [None; 3],
            idempotence_set: false,
            delivery_timeout_set: false,
        }
    }
}

impl ProducerConfig {
    fn apply(&mut self, key: &str, value: &str) -> Result<()> {
        match key {
            "acks" => {
                self.acks = match value.trim().to_ascii_lowercase().as_str() {
                    "0" => Acks::None,
                    "1" => Acks::Leader,
                    "all" | "-1" => Acks::All,
                    _ => return Err(Error::config(key, value, "expected 0, 1, all or -1")),
                };
            }
            "batch.size" => self.batch_size = number(key, value)?,
            "linger.ms" => self.linger = millis(key, value)?,
            "buffer.memory" => self.buffer_memory = number(key, value)?,
            "max.block.ms" => self.max_block = millis(key, value)?,
            "metadata.max.idle.ms" => {
                let idle = millis(key, value)?;
                if idle < Duration::from_secs(5) {
                    return Err(Error::config(key, value, "must be at least 5000"));
                }
                self.metadata_max_idle = idle;
            }
            "max.request.size" => self.max_request_size = number(key, value)?,
            "compression.type" => {
                self.compression = value
                    .trim()
                    .to_ascii_lowercase()
                    .parse::<Compression>()
                    .map_err(|_| Error::config(key, value, "expected none, gzip, snappy, lz4 or zstd"))?;
            }
            "compression.gzip.level" => self.levels[0] = Some(number(key, value)?),
            "compression.lz4.level" => self.levels[1] = Some(number(key, value)?),
            "compression.zstd.level" => self.levels[2] = Some(number(key, value)?),
            "retries" => self.retries = number(key, value)?,
            "delivery.timeout.ms" => {
                self.delivery_timeout = millis(key, value)?;
                self.delivery_timeout_set = true;
            }
            "max.in.flight.requests.per.connection" => self.max_in_flight = number(key, value)?,
            "enable.idempotence" => {
                self.enable_idempotence = boolean(key, value)?;
                self.idempotence_set = true;
            }
            "partitioner.ignore.keys" => self.partitioner_ignore_keys = boolean(key, value)?,
            "partitioner.class" => {
                self.partitioner = match value.trim() {
                    "org.apache.kafka.clients.producer.RoundRobinPartitioner" | "round_robin" | "roundrobin" => {
                        PartitionerKind::RoundRobin
                    }
                    "" | "default" | "org.apache.kafka.clients.producer.internals.DefaultPartitioner" => {
                        PartitionerKind::Default
                    }
                    _ => {
                        return Err(Error::config(
                            key,
                            value,
                            "only the RoundRobinPartitioner can be named; give a custom one with ProducerBuilder::partitioner",
                        ))
                    }
                }
            }
            // Serializers have no meaning for a bytes API; accepted so Java property files
            // load unchanged.
            "key.serializer" | "value.serializer" => {}
            "transactional.id" => {
                return Err(Error::config(key, value, "transactions are not supported yet"))
            }
            _ => {
                if !self.client.apply(key, value)? {
                    return Err(Error::config(key, value, "unknown producer configuration key"));
                }
            }
        }
        Ok(())
    }

    /// Checks the relations between settings, as the Java client does at construction.
    pub(crate) fn validate(&mut self) -> Result<()> {
        self.client.validate()?;
        if self.enable_idempotence {
            if self.acks != Acks::All {
                if self.idempotence_set {
                    return Err(Error::config(
                        "acks",
                        format!("{:?}", self.acks),
                        "enable.idempotence=true needs acks=all",
                    ));
                }
                // Java quietly turns idempotence off when only acks conflicts with the default.
                self.enable_idempotence = false;
            } else if self.max_in_flight > 5 {
                if self.idempotence_set {
                    return Err(Error::config(
                        "max.in.flight.requests.per.connection",
                        self.max_in_flight,
                        "enable.idempotence=true needs at most 5",
                    ));
                }
                self.enable_idempotence = false;
            } else if self.retries == 0 {
                if self.idempotence_set {
                    return Err(Error::config(
                        "retries",
                        0,
                        "enable.idempotence=true needs retries > 0",
                    ));
                }
                self.enable_idempotence = false;
            }
        }
        if self.max_in_flight == 0 {
            return Err(Error::config(
                "max.in.flight.requests.per.connection",
                0,
                "must be at least 1",
            ));
        }
        if self.batch_size == 0 {
            // Java treats 0 as "no batching"; one record a batch gives the same behaviour.
            self.batch_size = 1;
        }
        let floor = self.linger + self.client.request_timeout;
        if self.delivery_timeout < floor {
            if self.delivery_timeout_set {
                return Err(Error::config(
                    "delivery.timeout.ms",
                    self.delivery_timeout.as_millis(),
                    format!(
                        "must be at least linger.ms + request.timeout.ms ({} ms)",
                        floor.as_millis()
                    ),
                ));
            }
            // As in Java: the default follows a raised linger.ms or request.timeout.ms.
            self.delivery_timeout = floor;
        }
        if self.max_request_size == 0 {
            return Err(Error::config(
                "max.request.size",
                0,
                "must be greater than 0",
            ));
        }
        if self.buffer_memory == 0 {
            return Err(Error::config("buffer.memory", 0, "must be greater than 0"));
        }
        if self.metadata_max_idle < Duration::from_secs(5) {
            return Err(Error::config(
                "metadata.max.idle.ms",
                self.metadata_max_idle.as_millis(),
                "must be at least 5000",
            ));
        }
        let level = match self.compression {
            Compression::Gzip { .. } => self.levels[0],
            Compression::Lz4 { .. } => self.levels[1],
            Compression::Zstd { .. } => self.levels[2],
            _ => None,
        };
        if let Some(level) = level {
            self.compression = self.compression.with_level(level)?;
        }
        self.compression.validate()?;
        Ok(())
    }
}

/// Builds a [`Producer`].
///
/// ```no_run
/// use std::time::Duration;
/// use kafka_client::producer::{Acks, Producer};
/// # async fn demo() -> kafka_client::Result<()> {
/// let producer = Producer::builder()
///     .bootstrap_servers("127.0.0.1:9092")
///     .acks(Acks::All)
///     .linger(Duration::from_millis(10))
///     .set("compression.type", "lz4")
///     .build()
///     .await?;
/// # Ok(()) }
/// ```
#[derive(Clone, Default)]
pub struct ProducerBuilder {
    config: ProducerConfig,
    custom: Option<Arc<dyn Partitioner>>,
    error: Option<(String, String, String)>,
}

impl std::fmt::Debug for ProducerBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProducerBuilder")
            .field("config", &self.config)
            .finish()
    }
}

impl ProducerBuilder {
    /// Sets any Java producer property (`linger.ms`, `compression.type`, ...). A bad key or
    /// value is reported by [`build`](Self::build), naming both.
    pub fn set(mut self, key: &str, value: &str) -> Self {
        if self.error.is_none() {
            if let Err(e) = self.config.apply(key, value) {
                self.error = Some(match e {
                    Error::Config { key, value, reason } => (key, value, reason),
                    other => (key.to_owned(), value.to_owned(), other.to_string()),
                });
            }
        }
        self
    }

    /// Applies every `key=value` line of a Java `.properties` text.
    pub fn properties(mut self, text: &str) -> Self {
        match parse_properties(text) {
            Ok(pairs) => pairs.iter().fold(self, |b, (k, v)| b.set(k, v)),
            Err(e) => {
                self.error
                    .get_or_insert((String::new(), String::new(), e.to_string()));
                self
            }
        }
    }

    /// `bootstrap.servers`.
    pub fn bootstrap_servers(self, servers: &str) -> Self {
        self.set("bootstrap.servers", servers)
    }

    /// `client.id`.
    pub fn client_id(self, id: &str) -> Self {
        self.set("client.id", id)
    }

    /// `acks`. Default [`Acks::All`].
    pub fn acks(mut self, acks: Acks) -> Self {
        self.config.acks = acks;
        self
    }

    /// `linger.ms`. Default 5 ms.
    pub fn linger(mut self, linger: Duration) -> Self {
        self.config.linger = linger;
        self
    }

    /// `batch.size` in bytes. Default 16384.
    pub fn batch_size(mut self, bytes: usize) -> Self {
        self.config.batch_size = bytes;
        self
    }

    /// `buffer.memory` in bytes. Default 32 MiB.
    pub fn buffer_memory(mut self, bytes: usize) -> Self {
        self.config.buffer_memory = bytes;
        self
    }

    /// `compression.type` with its level. Default [`Compression::None`].
    pub fn compression(mut self, compression: Compression) -> Self {
        self.config.compression = compression;
        self
    }

    /// `enable.idempotence`. Default true.
    pub fn idempotence(mut self, enable: bool) -> Self {
        self.config.enable_idempotence = enable;
        self.config.idempotence_set = true;
        self
    }

    /// `delivery.timeout.ms`. Default 120 s.
    pub fn delivery_timeout(mut self, timeout: Duration) -> Self {
        self.config.delivery_timeout = timeout;
        self.config.delivery_timeout_set = true;
        self
    }

    /// `max.block.ms`. Default 60 s.
    pub fn max_block(mut self, timeout: Duration) -> Self {
        self.config.max_block = timeout;
        self
    }

    /// `metadata.max.idle.ms`: how long the metadata of a topic nothing is sent to is kept
    /// refreshed. Default 5 min; below 5 s is an error at `build()`, as in Java.
    pub fn metadata_max_idle(mut self, idle: Duration) -> Self {
        self.config.metadata_max_idle = idle;
        self
    }

    /// The round-robin partitioner (`partitioner.class=...RoundRobinPartitioner`) instead
    /// of the default (key hash, uniform sticky without key).
    pub fn round_robin_partitioner(mut self) -> Self {
        self.config.partitioner = PartitionerKind::RoundRobin;
        self
    }

    /// A partitioner of your own; explicit partitions on records still win.
    pub fn partitioner(mut self, partitioner: Arc<dyn Partitioner>) -> Self {
        self.custom = Some(partitioner);
        self
    }

    /// The resolved settings, after validation.
    pub fn config(&self) -> Result<ProducerConfig> {
        if let Some((key, value, reason)) = &self.error {
            return Err(Error::Config {
                key: key.clone(),
                value: value.clone(),
                reason: reason.clone(),
            });
        }
        let mut config = self.config.clone();
        config.validate()?;
        if let Some(custom) = &self.custom {
            config.partitioner = PartitionerKind::Custom(custom.clone());
        }
        Ok(config)
    }

    /// Validates the settings, connects to the cluster and starts the sender task.
    pub async fn build(self) -> Result<Producer> {
        Producer::start(self.config()?).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn java_defaults() {
        let c = ProducerConfig::default();
        assert_eq!(c.acks, Acks::All);
        assert_eq!(c.batch_size, 16_384);
        assert_eq!(c.linger, Duration::from_millis(5));
        assert_eq!(c.buffer_memory, 33_554_432);
        assert_eq!(c.max_request_size, 1_048_576);
        assert_eq!(c.delivery_timeout, Duration::from_secs(120));
        assert_eq!(c.max_in_flight, 5);
        assert!(c.enable_idempotence);
    }

    #[test]
    fn explicit_idempotence_with_conflicting_acks_names_the_keys() {
        let err = ProducerBuilder::default()
            .set("enable.idempotence", "true")
            .set("acks", "1")
            .config()
            .unwrap_err();
        assert!(
            err.to_string().contains("acks") && err.to_string().contains("enable.idempotence"),
            "{err}"
        );
        let err = ProducerBuilder::default()
            .set("enable.idempotence", "true")
            .set("max.in.flight.requests.per.connection", "6")
            .config()
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("max.in.flight.requests.per.connection"),
            "{err}"
        );
        // Without an explicit request, idempotence steps aside as in Java.
        let c = ProducerBuilder::default()
            .set("acks", "1")
            .config()
            .unwrap();
        assert!(!c.enable_idempotence);
    }

    #[test]
    fn properties_text_and_bad_values() {
        let c = ProducerBuilder::default()
            .properties("linger.ms=20\ncompression.type=zstd\ncompression.zstd.level=5\nacks=all\n")
            .config()
            .unwrap();
        assert_eq!(c.linger, Duration::from_millis(20));
        assert_eq!(c.compression, Compression::Zstd { level: Some(5) });
        let err = ProducerBuilder::default()
            .set("linger.ms", "soon")
            .config()
            .unwrap_err();
        assert!(
            matches!(err, Error::Config { ref key, .. } if key == "linger.ms"),
            "{err}"
        );
        let err = ProducerBuilder::default()
            .set("lingr.ms", "5")
            .config()
            .unwrap_err();
        assert!(err.to_string().contains("lingr.ms"), "{err}");
        let err = ProducerBuilder::default()
            .set("delivery.timeout.ms", "1000")
            .config()
            .unwrap_err();
        assert!(err.to_string().contains("delivery.timeout.ms"), "{err}");
        // An unset delivery.timeout.ms follows a raised request.timeout.ms, as in Java.
        let c = ProducerBuilder::default()
            .set("request.timeout.ms", "150000")
            .config()
            .unwrap();
        assert_eq!(c.delivery_timeout, Duration::from_millis(150_005));
        let err = ProducerBuilder::default()
            .set("max.request.size", "0")
            .config()
            .unwrap_err();
        assert!(err.to_string().contains("max.request.size"), "{err}");
    }
}
