//! Configuration shared by every client: where the cluster is, and how connections behave.
//!
//! [`ClientConfig`] holds the settings the producer, the consumer and the admin client have in
//! common, under the Java client's names and defaults. Each client's builder embeds one and
//! forwards the keys it does not know itself to [`ClientConfig::set`], so a properties file
//! written for the Java client works unchanged for the keys this crate implements, and an
//! unknown key is an error that names it.

mod properties;

use std::time::Duration;

pub use properties::parse_properties;
#[allow(unused_imports)] // `boolean` is for the producer and consumer builders.
pub(crate) use properties::{boolean, list, millis, number};

use crate::error::{Error, Result};

/// Transport security of the connections (`security.protocol`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum SecurityProtocol {
    /// Plain TCP, the Java default.
    #[default]
    Plaintext,
}

/// Settings every client shares. Build one through a client builder, or directly:
///
/// ```
/// use kafka_client::config::ClientConfig;
/// let config = ClientConfig::new("127.0.0.1:9092").set("request.timeout.ms", "10000")?;
/// assert_eq!(config.request_timeout.as_millis(), 10_000);
/// # Ok::<(), kafka_client::Error>(())
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ClientConfig {
    /// `bootstrap.servers`: `host:port` addresses tried in order to learn the cluster.
    pub bootstrap_servers: Vec<String>,
    /// `client.id`, sent with every request and shown in broker logs and quotas.
    /// Default `kafka-client-rs`.
    pub client_id: String,
    /// `request.timeout.ms`: how long a request may wait for its response. Default 30 s.
    /// When it passes, the connection is closed (as the Java client does), failing the
    /// other requests in flight on it, and a fresh connection is made for the next request.
    pub request_timeout: Duration,
    /// `socket.connection.setup.timeout.ms`: how long a TCP connect and its ApiVersions
    /// handshake may take. Default 10 s.
    pub connection_setup_timeout: Duration,
    /// `reconnect.backoff.ms`: the first wait before reconnecting to a broker that failed.
    /// Default 50 ms.
    pub reconnect_backoff: Duration,
    /// `reconnect.backoff.max.ms`: the wait doubles per failure up to this. Default 1 s.
    pub reconnect_backoff_max: Duration,
    /// `retry.backoff.ms`: the first wait before retrying a failed request. Default 100 ms.
    pub retry_backoff: Duration,
    /// `retry.backoff.max.ms`: the retry wait doubles up to this. Default 1 s.
    pub retry_backoff_max: Duration,
    /// `connections.max.idle.ms`: a connection with no traffic for this long is closed.
    /// Default 9 min.
    pub connections_max_idle: Duration,
    /// `metadata.max.age.ms`: cluster metadata is refreshed at least this often. Default 5 min.
    pub metadata_max_age: Duration,
    /// `default.api.timeout.ms`: the bound of calls that take no explicit timeout (admin
    /// operations, consumer commits and offset look-ups). Default 60 s.
    pub default_api_timeout: Duration,
    /// `receive.message.max.bytes`: the largest response accepted from a broker; a length
    /// prefix above it poisons the connection instead of allocating. Default 100 MiB. A
    /// consumer raises the default to fit its `fetch.max.bytes` (Java's client has no such
    /// cap); one set explicitly below that is a config error.
    pub max_response_size: usize,
    /// `security.protocol`. Only `PLAINTEXT` for now.
    pub security_protocol: SecurityProtocol,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            bootstrap_servers: vec!["127.0.0.1:9092".to_owned()],
            client_id: "kafka-client-rs".to_owned(),
            request_timeout: Duration::from_secs(30),
            connection_setup_timeout: Duration::from_secs(10),
            reconnect_backoff: Duration::from_millis(50),
            reconnect_backoff_max: Duration::from_secs(1),
            retry_backoff: Duration::from_millis(100),
            retry_backoff_max: Duration::from_secs(1),
            connections_max_idle: Duration::from_secs(540),
            metadata_max_age: Duration::from_secs(300),
            default_api_timeout: Duration::from_secs(60),
            max_response_size: 100 * 1024 * 1024,
            security_protocol: SecurityProtocol::Plaintext,
        }
    }
}

impl ClientConfig {
    /// Defaults, with `bootstrap.servers` set from a comma-separated list.
    pub fn new(bootstrap_servers: &str) -> Self {
        ClientConfig {
            bootstrap_servers: list(bootstrap_servers),
            ..ClientConfig::default()
        }
    }

    /// Sets one Java-style property. Unknown keys and bad values are errors naming both.
    pub fn set(mut self, key: &str, value: &str) -> Result<Self> {
        if !self.apply(key, value)? {
            return Err(Error::config(key, value, "unknown configuration key"));
        }
        Ok(self)
    }

    /// Applies `key` if it is a shared key; `Ok(false)` when the key is not one of them, so
    /// client builders can try their own keys first and fall back here.
    pub(crate) fn apply(&mut self, key: &str, value: &str) -> Result<bool> {
        match key {
            "bootstrap.servers" => {
                let servers = list(value)
                    .iter()
                    .map(|s| properties::host_port(key, s))
                    .collect::<Result<Vec<_>>>()?;
                if servers.is_empty() {
                    return Err(Error::config(
                        key,
                        value,
                        "at least one host:port is needed",
                    ));
                }
                self.bootstrap_servers = servers;
            }
            "client.id" => self.client_id = value.trim().to_owned(),
            "request.timeout.ms" => self.request_timeout = positive_millis(key, value)?,
            "socket.connection.setup.timeout.ms" => {
                self.connection_setup_timeout = positive_millis(key, value)?
            }
            "reconnect.backoff.ms" => self.reconnect_backoff = millis(key, value)?,
            "reconnect.backoff.max.ms" => self.reconnect_backoff_max = millis(key, value)?,
            "retry.backoff.ms" => self.retry_backoff = millis(key, value)?,
            "retry.backoff.max.ms" => self.retry_backoff_max = millis(key, value)?,
            "connections.max.idle.ms" => self.connections_max_idle = positive_millis(key, value)?,
            "metadata.max.age.ms" => self.metadata_max_age = positive_millis(key, value)?,
            "default.api.timeout.ms" => self.default_api_timeout = positive_millis(key, value)?,
            "receive.message.max.bytes" => {
                let n: usize = number(key, value)?;
                if n < 1024 {
                    return Err(Error::config(key, value, "must be at least 1024"));
                }
                self.max_response_size = n;
            }
            "security.protocol" => match value.trim().to_ascii_uppercase().as_str() {
                "PLAINTEXT" => self.security_protocol = SecurityProtocol::Plaintext,
                "SSL" | "SASL_PLAINTEXT" | "SASL_SSL" => {
                    return Err(Error::config(
                        key,
                        value,
                        "TLS and SASL are not supported yet; only PLAINTEXT",
                    ))
                }
                _ => return Err(Error::config(key, value, "expected PLAINTEXT")),
            },
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// Checks relations between values that single keys cannot.
    pub(crate) fn validate(&self) -> Result<()> {
        if self.bootstrap_servers.is_empty() {
            return Err(Error::config(
                "bootstrap.servers",
                "",
                "at least one host:port is needed",
            ));
        }
        if self.reconnect_backoff_max < self.reconnect_backoff {
            return Err(Error::config(
                "reconnect.backoff.max.ms",
                self.reconnect_backoff_max.as_millis(),
                "must not be below reconnect.backoff.ms",
            ));
        }
        if self.retry_backoff_max < self.retry_backoff {
            return Err(Error::config(
                "retry.backoff.max.ms",
                self.retry_backoff_max.as_millis(),
                "must not be below retry.backoff.ms",
            ));
        }
        Ok(())
    }
}

fn positive_millis(key: &str, value: &str) -> Result<Duration> {
    let d = millis(key, value)?;
    if d.is_zero() {
        return Err(Error::config(key, value, "must be greater than 0"));
    }
    Ok(d)
}

/// Exponential backoff with ±20 % jitter, as the Java client's `ExponentialBackoff`.
#[derive(Clone, Debug)]
pub(crate) struct Backoff {
    initial: Duration,
    max: Duration,
}

impl Backoff {
    pub(crate) fn new(initial: Duration, max: Duration) -> Self {
        Backoff {
            initial,
            max: max.max(initial),
        }
    }

    /// The wait after `attempts` consecutive failures (1 for the first failure).
    pub(crate) fn delay(&self, attempts: u32) -> Duration {
        if attempts == 0 || self.initial.is_zero() {
            return Duration::ZERO;
        }
        let exp = attempts.saturating_sub(1).min(31);
        let base = self
            .initial
            .saturating_mul(1u32 << exp.min(20))
            .min(self.max);
        // Jitter spreads reconnects of many clients so they do not hit a recovering broker in
        // lock step; a cheap time-seeded value is enough for that.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let jitter = 0.8 + 0.4 * f64::from(nanos % 1000) / 1000.0;
        base.mul_f64(jitter).min(self.max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn java_defaults() {
        let c = ClientConfig::default();
        assert_eq!(c.request_timeout, Duration::from_secs(30));
        assert_eq!(c.reconnect_backoff, Duration::from_millis(50));
        assert_eq!(c.reconnect_backoff_max, Duration::from_secs(1));
        assert_eq!(c.metadata_max_age, Duration::from_secs(300));
        assert_eq!(c.connections_max_idle, Duration::from_secs(540));
    }

    #[test]
    fn unknown_keys_and_bad_values_are_named() {
        let err = ClientConfig::default()
            .set("bootstrap.server", "x:1")
            .unwrap_err();
        assert!(err.to_string().contains("bootstrap.server"), "{err}");
        let err = ClientConfig::default()
            .set("request.timeout.ms", "-1")
            .unwrap_err();
        assert!(
            err.to_string().contains("request.timeout.ms=\"-1\""),
            "{err}"
        );
        let err = ClientConfig::default()
            .set("security.protocol", "SSL")
            .unwrap_err();
        assert!(matches!(err, Error::Config { .. }));
        let c = ClientConfig::default()
            .set("bootstrap.servers", "a:1, b:2")
            .unwrap();
        assert_eq!(c.bootstrap_servers, vec!["a:1", "b:2"]);
    }

    #[test]
    fn backoff_grows_to_the_max_with_jitter() {
        let b = Backoff::new(Duration::from_millis(50), Duration::from_millis(1000));
        assert_eq!(b.delay(0), Duration::ZERO);
        let first = b.delay(1);
        assert!(first >= Duration::from_millis(40) && first <= Duration::from_millis(60));
        let late = b.delay(30);
        assert!(late >= Duration::from_millis(800) && late <= Duration::from_millis(1000));
    }
}
