//! The crate's one error type.
//!
//! Every fallible call returns [`Error`]. Match on its variants for the kind of failure, or use
//! the predicates: [`Error::is_retriable`], [`Error::kafka_code`], [`Error::is_timeout`].
//! Errors the broker returned keep the Kafka error code ([`KafkaCode`]) and the context the
//! client knew (broker, topic, partition).

use std::fmt;
use std::time::Duration;

use kafka_protocol::error::ResponseError;

use crate::types::TopicPartition;

/// `Result` with the crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A Kafka protocol error code, as a broker returns it (`TOPIC_ALREADY_EXISTS` = 36 ...).
///
/// Compare against the associated constants, which carry the Java client's names:
///
/// ```
/// use kafka_client::KafkaCode;
/// let code = KafkaCode::from_code(36);
/// assert_eq!(code, KafkaCode::TOPIC_ALREADY_EXISTS);
/// assert_eq!(code.to_string(), "TOPIC_ALREADY_EXISTS (36)");
/// assert!(!code.is_retriable());
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct KafkaCode(i16);

macro_rules! kafka_codes {
    ($($name:ident = $code:literal),* $(,)?) => {
        impl KafkaCode {
            $(
                #[doc = concat!("`", stringify!($name), "` (", stringify!($code), ")")]
                pub const $name: KafkaCode = KafkaCode($code);
            )*
        }
    };
}

kafka_codes! {
    UNKNOWN_SERVER_ERROR = -1,
    NONE = 0,
    OFFSET_OUT_OF_RANGE = 1,
    CORRUPT_MESSAGE = 2,
    UNKNOWN_TOPIC_OR_PARTITION = 3,
    LEADER_NOT_AVAILABLE = 5,
    NOT_LEADER_OR_FOLLOWER = 6,
    REQUEST_TIMED_OUT = 7,
    MESSAGE_TOO_LARGE = 10,
    NETWORK_EXCEPTION = 13,
    COORDINATOR_LOAD_IN_PROGRESS = 14,
    COORDINATOR_NOT_AVAILABLE = 15,
    NOT_COORDINATOR = 16,
    INVALID_TOPIC_EXCEPTION = 17,
    RECORD_LIST_TOO_LARGE = 18,
    NOT_ENOUGH_REPLICAS = 19,
    NOT_ENOUGH_REPLICAS_AFTER_APPEND = 20,
    INVALID_REQUIRED_ACKS = 21,
    ILLEGAL_GENERATION = 22,
    INCONSISTENT_GROUP_PROTOCOL = 23,
    INVALID_GROUP_ID = 24,
    UNKNOWN_MEMBER_ID = 25,
    INVALID_SESSION_TIMEOUT = 26,
    REBALANCE_IN_PROGRESS = 27,
    INVALID_COMMIT_OFFSET_SIZE = 28,
    TOPIC_AUTHORIZATION_FAILED = 29,
    GROUP_AUTHORIZATION_FAILED = 30,
    UNSUPPORTED_VERSION = 35,
    TOPIC_ALREADY_EXISTS = 36,
    INVALID_PARTITIONS = 37,
    INVALID_REPLICATION_FACTOR = 38,
    INVALID_CONFIG = 40,
    NOT_CONTROLLER = 41,
    INVALID_REQUEST = 42,
    POLICY_VIOLATION = 44,
    OUT_OF_ORDER_SEQUENCE_NUMBER = 45,
    DUPLICATE_SEQUENCE_NUMBER = 46,
    INVALID_PRODUCER_EPOCH = 47,
    INVALID_TXN_STATE = 48,
    INVALID_PRODUCER_ID_MAPPING = 49,
    CONCURRENT_TRANSACTIONS = 51,
    TRANSACTIONAL_ID_AUTHORIZATION_FAILED = 53,
    CLUSTER_AUTHORIZATION_FAILED = 31,
    UNKNOWN_PRODUCER_ID = 59,
    KAFKA_STORAGE_ERROR = 56,
    FENCED_LEADER_EPOCH = 74,
    UNKNOWN_LEADER_EPOCH = 75,
    OFFSET_NOT_AVAILABLE = 78,
    MEMBER_ID_REQUIRED = 79,
    PREFERRED_LEADER_NOT_AVAILABLE = 80,
    GROUP_MAX_SIZE_REACHED = 81,
    FENCED_INSTANCE_ID = 82,
    GROUP_ID_NOT_FOUND = 69,
    GROUP_SUBSCRIBED_TO_TOPIC = 86,
    UNSTABLE_OFFSET_COMMIT = 88,
    THROTTLING_QUOTA_EXCEEDED = 89,
    PRODUCER_FENCED = 90,
    INVALID_RECORD = 87,
    UNKNOWN_TOPIC_ID = 100,
    INCONSISTENT_TOPIC_ID = 103,
    FENCED_MEMBER_EPOCH = 110,
    UNRELEASED_INSTANCE_ID = 111,
    UNSUPPORTED_ASSIGNOR = 112,
    STALE_MEMBER_EPOCH = 113,
    UNKNOWN_SUBSCRIPTION_ID = 117,
    TRANSACTION_ABORTABLE = 120,
}

impl KafkaCode {
    /// The code for a raw `i16` from a response.
    pub const fn from_code(code: i16) -> Self {
        KafkaCode(code)
    }

    /// The raw protocol value.
    pub const fn code(self) -> i16 {
        self.0
    }

    /// `true` for `NONE` (0).
    pub const fn is_ok(self) -> bool {
        self.0 == 0
    }

    /// Whether the protocol marks this error as retriable (the Java client's
    /// `RetriableException` subclasses). Unknown codes are not retriable.
    pub fn is_retriable(self) -> bool {
        ResponseError::try_from_code(self.0).is_some_and(|e| e.is_retriable())
    }

    /// The Java client's name for the code, such as `NOT_LEADER_OR_FOLLOWER`; `UNKNOWN` for a
    /// code this client does not know.
    pub fn name(self) -> String {
        match ResponseError::try_from_code(self.0) {
            None => "NONE".to_owned(),
            Some(ResponseError::Unknown(_)) => "UNKNOWN".to_owned(),
            Some(e) => screaming_snake(&format!("{e:?}")),
        }
    }
}

/// `NotLeaderOrFollower` -> `NOT_LEADER_OR_FOLLOWER`.
fn screaming_snake(camel: &str) -> String {
    let mut out = String::with_capacity(camel.len() + 8);
    for (i, c) in camel.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_uppercase());
    }
    out
}

impl fmt::Display for KafkaCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.name(), self.0)
    }
}

impl fmt::Debug for KafkaCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Where an error happened, as far as the client knew: shown in the error's message.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ErrorContext {
    /// The broker that answered (`id` or `host:port`).
    pub broker: Option<String>,
    /// The topic concerned.
    pub topic: Option<String>,
    /// The partition concerned.
    pub partition: Option<i32>,
}

impl ErrorContext {
    /// A context naming a topic and, optionally, a partition.
    pub fn topic(topic: impl Into<String>, partition: Option<i32>) -> Self {
        ErrorContext {
            broker: None,
            topic: Some(topic.into()),
            partition,
        }
    }

    /// The same context with the broker set.
    pub fn with_broker(mut self, broker: impl Into<String>) -> Self {
        self.broker = Some(broker.into());
        self
    }
}

impl fmt::Display for ErrorContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.topic, self.partition) {
            (Some(t), Some(p)) => write!(f, " for {t}-{p}")?,
            (Some(t), None) => write!(f, " for topic {t}")?,
            (None, Some(p)) => write!(f, " for partition {p}")?,
            (None, None) => {}
        }
        if let Some(b) = &self.broker {
            write!(f, " (broker {b})")?;
        }
        Ok(())
    }
}

/// The error of every fallible call in this crate. It is `Clone`, so one failure can be
/// reported to every record or waiter it concerns.
#[derive(Clone, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A configuration key has a value the client cannot use, or the key is unknown.
    #[error("invalid config {key}={value:?}: {reason}")]
    Config {
        /// The Java-style key, e.g. `linger.ms`.
        key: String,
        /// The value as given.
        value: String,
        /// Why it was refused.
        reason: String,
    },

    /// A broker answered with a Kafka error code.
    #[error("{code}{context}{}", message.as_deref().map(|m| format!(": {m}")).unwrap_or_default())]
    Broker {
        /// The code the broker returned.
        code: KafkaCode,
        /// Where it happened.
        context: ErrorContext,
        /// The broker's error message, when it sent one.
        message: Option<String>,
    },

    /// None of the bootstrap servers could be reached.
    #[error("no bootstrap server reachable: {}", failures.join("; "))]
    Bootstrap {
        /// One entry per address tried: `host:port: reason`.
        failures: Vec<String>,
    },

    /// A TCP connection could not be opened.
    #[error("cannot connect to {addr}: {reason}")]
    Connect {
        /// The address dialled.
        addr: String,
        /// Why it failed.
        reason: String,
    },

    /// An open connection failed (I/O error, closed by the peer, or poisoned by an earlier
    /// failure). The request may or may not have reached the broker.
    #[error("connection to broker {broker} failed: {reason}")]
    Connection {
        /// The broker (`id` or `host:port`).
        broker: String,
        /// What happened.
        reason: String,
    },

    /// The broker sent bytes that are not a valid Kafka response (bad length prefix, a response
    /// that does not decode, an unknown correlation id).
    #[error("malformed response from broker {broker}: {reason}")]
    Protocol {
        /// The broker (`id` or `host:port`).
        broker: String,
        /// What was wrong.
        reason: String,
    },

    /// The broker supports no version of an API this client needs.
    #[error("broker {broker} supports {api} versions {broker_min}..={broker_max}, this client needs {client_min}..={client_max}")]
    UnsupportedVersion {
        /// The broker (`id` or `host:port`).
        broker: String,
        /// The API, e.g. `Produce`.
        api: &'static str,
        /// Lowest version the broker supports.
        broker_min: i16,
        /// Highest version the broker supports.
        broker_max: i16,
        /// Lowest version this client speaks.
        client_min: i16,
        /// Highest version this client speaks.
        client_max: i16,
    },

    /// An operation did not finish within its configured time.
    #[error("{what} timed out after {after:?}")]
    Timeout {
        /// What timed out, e.g. `Metadata request to broker 1` or `send to orders`.
        what: String,
        /// The configured limit.
        after: Duration,
    },

    /// A record is larger than a configured limit.
    #[error("record of {size} bytes for {topic} exceeds {limit_key}={limit}")]
    RecordTooLarge {
        /// The topic of the record.
        topic: String,
        /// Its serialized size in bytes.
        size: usize,
        /// The limit's config key (`max.request.size`, `buffer.memory`).
        limit_key: &'static str,
        /// The limit.
        limit: usize,
    },

    /// Record data that cannot be decoded (bad CRC, malformed record, unknown codec) or
    /// compressed or decompressed. From a consumer, the records before the bad one were
    /// handed out first and the position stays at `offset` (Java's `CorruptRecordException`):
    /// every read fails the same way until the application seeks past it.
    #[error(
        "corrupt record data{context}{}: {reason}",
        offset.map(|o| format!(" at offset {o}")).unwrap_or_default()
    )]
    Corrupt {
        /// Where the data came from.
        context: ErrorContext,
        /// The offset of the bad record (or of the first one of a bad batch), when known.
        offset: Option<i64>,
        /// What was wrong.
        reason: String,
    },

    /// The topic or partition does not exist (as far as the cluster's metadata says).
    #[error("unknown topic or partition{context}")]
    UnknownTopicOrPartition {
        /// The topic and partition asked for.
        context: ErrorContext,
    },

    /// The client (or the part of it the call needs) has been closed.
    #[error("client closed: {0}")]
    Closed(String),

    /// An invalid argument given to a call (empty topic name, negative partition count...).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),

    /// Consumer partitions have no committed offset and `auto.offset.reset` is `none`
    /// (Java's `NoOffsetForPartitionException`): seek them to a position to continue.
    #[error(
        "no committed offset and auto.offset.reset=none for {}",
        display_partitions(partitions)
    )]
    NoOffsetForPartition {
        /// The partitions without a position.
        partitions: Vec<TopicPartition>,
    },

    /// An offset commit that cannot succeed because the group moved on: this member's
    /// generation is no longer current, so its partitions may already belong to another
    /// member (Java's `CommitFailedException`). Retrying does not help; the consumer rejoins
    /// the group on its next poll, and the uncommitted records are read again by whichever
    /// member gets the partitions.
    #[error("offset commit failed: {reason}")]
    CommitFailed {
        /// The broker's code, when the broker refused the commit (`ILLEGAL_GENERATION`,
        /// `UNKNOWN_MEMBER_ID`, `FENCED_INSTANCE_ID`).
        code: Option<KafkaCode>,
        /// Why.
        reason: String,
    },
}

fn display_partitions(partitions: &[TopicPartition]) -> String {
    let names: Vec<String> = partitions.iter().map(ToString::to_string).collect();
    names.join(", ")
}

impl Error {
    /// The Kafka error code, when the broker returned one.
    pub fn kafka_code(&self) -> Option<KafkaCode> {
        match self {
            Error::Broker { code, .. } => Some(*code),
            Error::UnknownTopicOrPartition { .. } => Some(KafkaCode::UNKNOWN_TOPIC_OR_PARTITION),
            Error::CommitFailed { code, .. } => *code,
            _ => None,
        }
    }

    /// Whether trying the same operation again may succeed: broker errors the protocol marks
    /// retriable, lost connections, timeouts and unknown topics (metadata may be stale).
    pub fn is_retriable(&self) -> bool {
        match self {
            Error::Broker { code, .. } => code.is_retriable(),
            Error::Connect { .. }
            | Error::Connection { .. }
            | Error::Bootstrap { .. }
            | Error::Timeout { .. }
            | Error::UnknownTopicOrPartition { .. } => true,
            _ => false,
        }
    }

    /// Whether this is a client-side timeout.
    pub fn is_timeout(&self) -> bool {
        matches!(self, Error::Timeout { .. })
    }

    /// A broker error with a code and context; `message` is the broker's text, when any.
    pub(crate) fn broker(code: i16, context: ErrorContext, message: Option<String>) -> Self {
        Error::Broker {
            code: KafkaCode(code),
            context,
            message: message.filter(|m| !m.is_empty()),
        }
    }

    /// Shorthand for a [`Error::Config`].
    pub(crate) fn config(
        key: impl Into<String>,
        value: impl fmt::Display,
        reason: impl Into<String>,
    ) -> Self {
        Error::Config {
            key: key.into(),
            value: value.to_string(),
            reason: reason.into(),
        }
    }

    /// Shorthand for a [`Error::Corrupt`] without context.
    pub(crate) fn corrupt(reason: impl Into<String>) -> Self {
        Error::Corrupt {
            context: ErrorContext::default(),
            offset: None,
            reason: reason.into(),
        }
    }
}

/// Maps a response's error code to `Ok(())` or an [`Error::Broker`].
pub(crate) fn check_code(code: i16, context: impl FnOnce() -> ErrorContext) -> Result<()> {
    if code == 0 {
        Ok(())
    } else {
        Err(Error::broker(code, context(), None))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_names_match_the_java_client() {
        assert_eq!(KafkaCode::from_code(6).name(), "NOT_LEADER_OR_FOLLOWER");
        assert_eq!(
            KafkaCode::TOPIC_ALREADY_EXISTS.name(),
            "TOPIC_ALREADY_EXISTS"
        );
        assert_eq!(KafkaCode::from_code(9999).name(), "UNKNOWN");
        assert!(KafkaCode::NOT_LEADER_OR_FOLLOWER.is_retriable());
        assert!(!KafkaCode::TOPIC_ALREADY_EXISTS.is_retriable());
    }

    #[test]
    fn broker_error_message_names_the_context() {
        let e = Error::broker(
            3,
            ErrorContext::topic("orders", Some(2)).with_broker("1"),
            Some("gone".into()),
        );
        assert_eq!(
            e.to_string(),
            "UNKNOWN_TOPIC_OR_PARTITION (3) for orders-2 (broker 1): gone"
        );
        assert_eq!(e.kafka_code(), Some(KafkaCode::UNKNOWN_TOPIC_OR_PARTITION));
        assert!(e.is_retriable());
    }
}
