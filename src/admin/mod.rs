//! A small admin client: topics, cluster description, partition offsets, consumer groups.
//!
//! ```no_run
//! use kafka_client::admin::{Admin, NewTopic};
//! # async fn demo() -> kafka_client::Result<()> {
//! let admin = Admin::connect("127.0.0.1:9092").await?;
//! admin
//!     .create_topic(NewTopic::new("orders", 6, 1).config("retention.ms", "86400000"))
//!     .await?;
//! for topic in admin.describe_topics(&["orders"]).await? {
//!     println!("{} has {} partitions", topic.name, topic.partitions.len());
//! }
//! # Ok(()) }
//! ```

mod groups;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
use kafka_protocol::messages::{CreateTopicsRequest, DeleteTopicsRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use tokio::time::Instant;

use crate::cluster::offsets::{list_offsets, IsolationLevel, ListedOffset, OffsetSpec};
use crate::cluster::{Cluster, ClusterMetadata, ConnClass, TopicId, TopicMetadata, Topics};
use crate::config::{Backoff, ClientConfig};
use crate::connection::BrokerConnection;
use crate::error::{Error, ErrorContext, KafkaCode, Result};
use crate::types::TopicPartition;

pub use groups::{GroupDescription, GroupListing, MemberDescription};

/// A topic to create.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewTopic {
    /// Its name.
    pub name: String,
    /// Partition count; `None` takes the broker's `num.partitions`.
    pub partitions: Option<i32>,
    /// Replication factor; `None` takes the broker's `default.replication.factor`.
    pub replication_factor: Option<i16>,
    /// Topic configs such as `retention.ms` or `cleanup.policy`.
    pub configs: BTreeMap<String, String>,
}

impl NewTopic {
    /// A topic with an explicit partition count and replication factor.
    pub fn new(name: impl Into<String>, partitions: i32, replication_factor: i16) -> Self {
        NewTopic {
            name: name.into(),
            partitions: Some(partitions),
            replication_factor: Some(replication_factor),
            configs: BTreeMap::new(),
        }
    }

    /// A topic taking the broker's defaults for partitions and replication.
    pub fn with_defaults(name: impl Into<String>) -> Self {
        NewTopic {
            name: name.into(),
            partitions: None,
            replication_factor: None,
            configs: BTreeMap::new(),
        }
    }

    /// Adds a topic config, e.g. `.config("cleanup.policy", "compact")`.
    pub fn config(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.configs.insert(key.into(), value.into());
        self
    }
}

/// The admin client. Cheap to clone; clones share connections and metadata.
#[derive(Clone, Debug)]
pub struct Admin {
    cluster: Cluster,
}

/// Builds an [`Admin`] from typed settings or Java-style properties.
#[derive(Clone, Debug, Default)]
pub struct AdminBuilder {
    config: ClientConfig,
    error: Option<Error>,
}

impl AdminBuilder {
    /// `bootstrap.servers`, comma-separated `host:port` list.
    pub fn bootstrap_servers(self, servers: &str) -> Self {
        self.set("bootstrap.servers", servers)
    }

    /// `client.id`.
    pub fn client_id(self, id: &str) -> Self {
        self.set("client.id", id)
    }

    /// Any shared client property (`request.timeout.ms`, `default.api.timeout.ms`, ...). A
    /// bad key or value is reported by [`build`](Self::build).
    pub fn set(mut self, key: &str, value: &str) -> Self {
        if self.error.is_none() {
            if let Err(e) = self.config.apply(key, value).and_then(|known| {
                if known {
                    Ok(())
                } else {
                    Err(Error::config(key, value, "unknown configuration key"))
                }
            }) {
                self.error = Some(e);
            }
        }
        self
    }

    /// Connects: fails with [`Error::Bootstrap`] naming each address if none answers.
    pub async fn build(self) -> Result<Admin> {
        if let Some(e) = self.error {
            return Err(e);
        }
        Ok(Admin {
            cluster: Cluster::connect(self.config).await?,
        })
    }
}

impl Admin {
    /// A builder with the Java defaults.
    pub fn builder() -> AdminBuilder {
        AdminBuilder::default()
    }

    /// Connects with default settings to the comma-separated `bootstrap` servers.
    pub async fn connect(bootstrap: &str) -> Result<Admin> {
        Admin::builder().bootstrap_servers(bootstrap).build().await
    }

    /// Connects with an explicit [`ClientConfig`].
    pub async fn with_config(config: ClientConfig) -> Result<Admin> {
        Ok(Admin {
            cluster: Cluster::connect(config).await?,
        })
    }

    /// Creates one topic and waits until every partition has a leader, so it can be used
    /// at once. `TOPIC_ALREADY_EXISTS` and other refusals come back as [`Error::Broker`].
    pub async fn create_topic(&self, topic: NewTopic) -> Result<()> {
        self.create_topics(vec![topic]).await
    }

    /// Creates topics; all are attempted, and the first failure (naming its topic) is
    /// returned. Waits until the created topics have leaders, within
    /// `default.api.timeout.ms`.
    pub async fn create_topics(&self, topics: Vec<NewTopic>) -> Result<()> {
        let timeout = self.timeout();
        let deadline = Instant::now() + timeout;
        let req = CreateTopicsRequest::default()
            .with_timeout_ms(millis_i32(timeout))
            .with_topics(topics.iter().map(creatable).collect());
        let resp = self.to_controller(&req, deadline).await?;
        let mut first_error = None;
        let mut created = Vec::new();
        for t in resp.topics {
            let name = t.name.0.to_string();
            if t.error_code != 0 {
                let err = Error::broker(
                    t.error_code,
                    ErrorContext::topic(&name, None),
                    t.error_message.map(|m| m.to_string()),
                );
                first_error.get_or_insert(err);
            } else {
                created.push((name, TopicId(u128::from_be_bytes(*t.topic_id.as_bytes()))));
            }
        }
        for (name, id) in created {
            self.await_topic(&name, id, deadline).await?;
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Deletes topics and waits until the metadata no longer lists them.
    pub async fn delete_topics(&self, names: &[&str]) -> Result<()> {
        let timeout = self.timeout();
        let deadline = Instant::now() + timeout;
        let conn = self.controller(deadline).await?;
        let version = conn.version::<DeleteTopicsRequest>()?;
        let topic_names = || {
            names
                .iter()
                .map(|n| TopicName(StrBytes::from_string((*n).to_owned())))
        };
        let mut req = DeleteTopicsRequest::default().with_timeout_ms(millis_i32(timeout));
        if version >= 6 {
            req.topics = topic_names()
                .map(|n| DeleteTopicState::default().with_name(Some(n)))
                .collect();
        } else {
            req.topic_names = topic_names().collect();
        }
        let resp = self.to_controller(&req, deadline).await?;
        for r in resp.responses {
            if r.error_code != 0 {
                let name = r.name.map(|n| n.0.to_string()).unwrap_or_default();
                return Err(Error::broker(
                    r.error_code,
                    ErrorContext::topic(name, None),
                    r.error_message.map(|m| m.to_string()),
                ));
            }
        }
        let backoff = Backoff::new(Duration::from_millis(20), Duration::from_millis(500));
        for attempt in 1.. {
            let refreshed = self
                .cluster
                .refresh(Topics::Only(
                    names.iter().map(|n| (*n).to_owned()).collect(),
                ))
                .await?;
            if names.iter().all(|n| refreshed.metadata.topic(n).is_none()) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                break;
            }
            tokio::time::sleep(backoff.delay(attempt)).await;
        }
        Err(Error::Timeout {
            what: format!("waiting for deletion of {names:?} to show in metadata"),
            after: timeout,
        })
    }

    /// Names of the cluster's topics, internal ones (`__consumer_offsets`) left out, sorted.
    pub async fn list_topics(&self) -> Result<Vec<String>> {
        let refreshed = self.refresh(Topics::All).await?;
        let mut names: Vec<String> = refreshed
            .metadata
            .topics
            .values()
            .filter(|t| !t.is_internal)
            .map(|t| t.name.clone())
            .collect();
        names.sort();
        Ok(names)
    }

    /// Partitions, leaders, leader epochs, replicas and ISR of topics. An unknown topic is
    /// [`Error::UnknownTopicOrPartition`] naming it.
    pub async fn describe_topics(&self, names: &[&str]) -> Result<Vec<TopicMetadata>> {
        let refreshed = self
            .refresh(Topics::Only(
                names.iter().map(|n| (*n).to_owned()).collect(),
            ))
            .await?;
        names
            .iter()
            .map(|name| match refreshed.metadata.topic(name) {
                Some(t) => Ok(TopicMetadata::clone(t)),
                None => match refreshed.topic_errors.get(*name) {
                    Some(code) if *code != KafkaCode::UNKNOWN_TOPIC_OR_PARTITION => Err(
                        Error::broker(code.code(), ErrorContext::topic(*name, None), None),
                    ),
                    _ => Err(Error::UnknownTopicOrPartition {
                        context: ErrorContext::topic(*name, None),
                    }),
                },
            })
            .collect()
    }

    /// The cluster's id, controller and brokers.
    pub async fn describe_cluster(&self) -> Result<ClusterMetadata> {
        let refreshed = self.refresh(Topics::Only(Vec::new())).await?;
        let mut md = ClusterMetadata::clone(&refreshed.metadata);
        md.topics.clear();
        Ok(md)
    }

    /// Earliest, latest or by-timestamp offsets of partitions (`read_uncommitted`).
    pub async fn list_offsets(
        &self,
        specs: HashMap<TopicPartition, OffsetSpec>,
    ) -> Result<HashMap<TopicPartition, ListedOffset>> {
        self.list_offsets_with(specs, IsolationLevel::ReadUncommitted)
            .await
    }

    /// [`list_offsets`](Self::list_offsets) with an explicit isolation level.
    pub async fn list_offsets_with(
        &self,
        specs: HashMap<TopicPartition, OffsetSpec>,
        isolation: IsolationLevel,
    ) -> Result<HashMap<TopicPartition, ListedOffset>> {
        list_offsets(&self.cluster, &specs, isolation).await
    }

    /// A metadata refresh bounded by `default.api.timeout.ms`.
    async fn refresh(&self, topics: Topics) -> Result<crate::cluster::Refreshed> {
        let timeout = self.timeout();
        tokio::time::timeout(timeout, self.cluster.refresh(topics))
            .await
            .map_err(|_| Error::Timeout {
                what: "metadata request (default.api.timeout.ms)".into(),
                after: timeout,
            })?
    }

    fn timeout(&self) -> Duration {
        self.cluster.config().default_api_timeout
    }

    /// The controller named by the metadata, or any broker (in KRaft every broker forwards
    /// admin requests to the active controller).
    async fn controller(&self, deadline: Instant) -> Result<Arc<BrokerConnection>> {
        let md = self.cluster.metadata();
        let target = md
            .controller_id
            .or_else(|| md.brokers.keys().next().copied());
        match target {
            Some(id) => self.cluster.broker(id, ConnClass::Control).await,
            None => {
                tokio::time::timeout_at(deadline, self.cluster.refresh(Topics::Only(Vec::new())))
                    .await
                    .map_err(|_| Error::Timeout {
                        what: "finding a controller".into(),
                        after: self.timeout(),
                    })??;
                let id = self
                    .cluster
                    .metadata()
                    .brokers
                    .keys()
                    .next()
                    .copied()
                    .ok_or_else(|| Error::Bootstrap {
                        failures: vec!["metadata lists no brokers".into()],
                    })?;
                self.cluster.broker(id, ConnClass::Control).await
            }
        }
    }

    /// Sends to the controller, retrying `NOT_CONTROLLER` and lost connections.
    async fn to_controller<R>(&self, req: &R, deadline: Instant) -> Result<R::Response>
    where
        R: kafka_protocol::protocol::Request,
        R::Response: ControllerResponse,
    {
        let backoff = Backoff::new(
            self.cluster.config().retry_backoff,
            self.cluster.config().retry_backoff_max,
        );
        let mut attempt = 0;
        loop {
            attempt += 1;
            let result = match self.controller(deadline).await {
                Ok(conn) => conn.request(req).await,
                Err(e) => Err(e),
            };
            let retry = match &result {
                Ok(resp) if resp.not_controller() => true,
                Err(e) if e.is_retriable() => true,
                _ => false,
            };
            if !retry || Instant::now() + backoff.delay(attempt) >= deadline {
                return result;
            }
            tokio::time::sleep(backoff.delay(attempt)).await;
            self.cluster.refresh(Topics::Only(Vec::new())).await.ok();
        }
    }

    /// Waits until the metadata shows topic `id` under `name` with a leader everywhere.
    async fn await_topic(&self, name: &str, id: TopicId, deadline: Instant) -> Result<()> {
        let backoff = Backoff::new(Duration::from_millis(20), Duration::from_millis(500));
        for attempt in 1.. {
            if let Ok(r) = self
                .cluster
                .refresh(Topics::Only(vec![name.to_owned()]))
                .await
            {
                if let Some(t) = r.metadata.topic(name) {
                    let ready =
                        !t.partitions.is_empty() && t.partitions.iter().all(|p| p.leader.is_some());
                    if ready && (id == TopicId::default() || t.id == id) {
                        return Ok(());
                    }
                }
            }
            if Instant::now() >= deadline {
                break;
            }
            tokio::time::sleep(backoff.delay(attempt)).await;
        }
        Err(Error::Timeout {
            what: format!("waiting for new topic {name} to have leaders"),
            after: self.timeout(),
        })
    }
}

/// Responses that can say "not the controller" for every entry.
trait ControllerResponse {
    fn not_controller(&self) -> bool;
}

impl ControllerResponse for kafka_protocol::messages::CreateTopicsResponse {
    fn not_controller(&self) -> bool {
        self.topics
            .iter()
            .any(|t| t.error_code == KafkaCode::NOT_CONTROLLER.code())
    }
}

impl ControllerResponse for kafka_protocol::messages::DeleteTopicsResponse {
    fn not_controller(&self) -> bool {
        self.responses
            .iter()
            .any(|t| t.error_code == KafkaCode::NOT_CONTROLLER.code())
    }
}

fn creatable(t: &NewTopic) -> CreatableTopic {
    CreatableTopic::default()
        .with_name(TopicName(StrBytes::from_string(t.name.clone())))
        .with_num_partitions(t.partitions.unwrap_or(-1))
        .with_replication_factor(t.replication_factor.unwrap_or(-1))
        .with_configs(
            t.configs
                .iter()
                .map(|(k, v)| {
                    CreatableTopicConfig::default()
                        .with_name(StrBytes::from_string(k.clone()))
                        .with_value(Some(StrBytes::from_string(v.clone())))
                })
                .collect(),
        )
}

fn millis_i32(d: Duration) -> i32 {
    i32::try_from(d.as_millis()).unwrap_or(i32::MAX)
}
