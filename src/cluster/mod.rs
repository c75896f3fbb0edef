//! The cluster as a client sees it: bootstrap, the metadata cache and the connection pool.
//!
//! The crate-internal `Cluster` handle is shared by the producer's sender, the consumer's
//! fetcher and coordinator, and the admin client. It owns one background task that refreshes metadata every
//! `metadata.max.age.ms`, or soon after someone reports stale metadata (a leader error); the
//! task ends when the last `Cluster` handle is dropped. It asks about the topics the client
//! tracks, or about every topic while a consumer's pattern subscription needs the full list
//! (`Cluster::set_refresh_all`); `Cluster::refreshes` tells tasks about every new snapshot.

pub(crate) mod metadata;
pub(crate) mod offsets;
pub(crate) mod pool;

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::Duration;

use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{MetadataRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use tokio::sync::{watch, Notify};
use tokio::time::Instant;

use crate::config::{Backoff, ClientConfig};
use crate::connection::{BrokerConnection, ConnectionOptions};
use crate::error::{Error, ErrorContext, KafkaCode, Result};
pub use metadata::{BrokerInfo, ClusterMetadata, PartitionInfo, TopicId, TopicMetadata};
pub use offsets::{IsolationLevel, ListedOffset, OffsetSpec};
pub(crate) use pool::ConnClass;
use pool::Pool;

/// Which topics a Metadata request asks about.
#[derive(Clone, Debug)]
pub(crate) enum Topics {
    /// Every topic in the cluster.
    All,
    /// Only these (an empty list asks for brokers only).
    Only(Vec<String>),
    /// The topics this client has said it uses.
    Tracked,
}

/// Outcome of one metadata refresh.
#[derive(Clone, Debug)]
pub(crate) struct Refreshed {
    pub(crate) metadata: Arc<ClusterMetadata>,
    /// Topic-level errors of the response (unknown topic, leader not available...).
    pub(crate) topic_errors: HashMap<String, KafkaCode>,
}

struct Inner {
    config: ClientConfig,
    allow_auto_create: bool,
    pool: Pool,
    metadata: RwLock<Arc<ClusterMetadata>>,
    /// Bumped after each new metadata snapshot, so callers caching parts of one can tell
    /// with one atomic load whether theirs is still current.
    generation: AtomicU64,
    /// Carries the generation too, for tasks that wait for the next snapshot.
    refreshed: watch::Sender<u64>,
    tracked: Mutex<BTreeSet<String>>,
    /// The periodic refresh asks for every topic rather than the tracked ones.
    refresh_all: AtomicBool,
    /// Serializes refreshes; holds when the last one finished.
    refreshing: tokio::sync::Mutex<Option<Instant>>,
    /// Wakes the refresh task: for an early refresh, or to end it when `Inner` drops.
    wake_refresher: Arc<Notify>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.wake_refresher.notify_one();
    }
}

/// A handle on the cluster; cheap to clone.
#[derive(Clone)]
pub(crate) struct Cluster {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("bootstrap", &self.inner.config.bootstrap_servers)
            .finish()
    }
}

impl Cluster {
    /// Validates the config, learns the brokers from the bootstrap servers and starts the
    /// refresh task. Fails with [`Error::Bootstrap`] naming every address when none answers
    /// within `socket.connection.setup.timeout.ms`.
    pub(crate) async fn connect(config: ClientConfig) -> Result<Cluster> {
        Self::connect_with(config, false).await
    }

    /// [`connect`](Self::connect), letting metadata requests for named topics create them
    /// when the broker allows it (`auto.create.topics.enable`), as the Java producer and the
    /// consumer's `allow.auto.create.topics` do.
    pub(crate) async fn connect_with(
        config: ClientConfig,
        allow_auto_create: bool,
    ) -> Result<Cluster> {
        config.validate()?;
        let pool = Pool::new(
            ConnectionOptions::from(&config),
            Backoff::new(config.reconnect_backoff, config.reconnect_backoff_max),
        );
        let cluster = Cluster {
            inner: Arc::new(Inner {
                config,
                allow_auto_create,
                pool,
                metadata: RwLock::new(Arc::new(ClusterMetadata::default())),
                generation: AtomicU64::new(0),
                refreshed: watch::Sender::new(0),
                tracked: Mutex::new(BTreeSet::new()),
                refresh_all: AtomicBool::new(false),
                refreshing: tokio::sync::Mutex::new(None),
                wake_refresher: Arc::new(Notify::new()),
            }),
        };
        cluster.bootstrap().await?;
        tokio::spawn(refresh_loop(
            Arc::downgrade(&cluster.inner),
            cluster.inner.wake_refresher.clone(),
        ));
        Ok(cluster)
    }

    /// The configuration this cluster handle was built with.
    pub(crate) fn config(&self) -> &ClientConfig {
        &self.inner.config
    }

    /// The current metadata snapshot.
    pub(crate) fn metadata(&self) -> Arc<ClusterMetadata> {
        self.inner
            .metadata
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Changes whenever [`metadata`](Self::metadata) returns a new snapshot. Read it before
    /// the snapshot: a value cached under it is then never newer than the generation says.
    pub(crate) fn metadata_generation(&self) -> u64 {
        self.inner.generation.load(Ordering::Acquire)
    }

    /// Adds topics to those refreshed periodically. Ignored while every topic is refreshed
    /// ([`set_refresh_all`](Self::set_refresh_all)): a name tracked then (a topic a pattern
    /// matched) would be asked for by name later, and re-created by the broker's
    /// auto-creation if it was deleted meanwhile.
    pub(crate) fn track(&self, topics: impl IntoIterator<Item = String>) {
        if self.inner.refresh_all.load(Ordering::Acquire) {
            return;
        }
        let mut tracked = self.inner.tracked.lock().unwrap_or_else(|e| e.into_inner());
        tracked.extend(topics);
    }

    /// Stops refreshing `topic` and drops it from the cached metadata, so that its next use
    /// looks it up again (the producer's `metadata.max.idle.ms`). Returns `false`, doing
    /// nothing, while a refresh is running (it could put the topic back): try again later.
    pub(crate) fn forget(&self, topic: &str) -> bool {
        let Ok(_refreshing) = self.inner.refreshing.try_lock() else {
            return false;
        };
        self.inner
            .tracked
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(topic);
        let mut metadata = self
            .inner
            .metadata
            .write()
            .unwrap_or_else(|e| e.into_inner());
        if metadata.topics.contains_key(topic) {
            let mut next = ClusterMetadata::clone(&metadata);
            next.topics.remove(topic);
            *metadata = Arc::new(next);
            let generation = self.inner.generation.fetch_add(1, Ordering::AcqRel) + 1;
            self.inner.refreshed.send_replace(generation);
        }
        true
    }

    /// Whether `topic` is in the metadata kept refreshed (tracked, or cached).
    pub(crate) fn knows(&self, topic: &str) -> bool {
        self.inner
            .tracked
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(topic)
            || self.metadata().topics.contains_key(topic)
    }

    /// Makes the periodic refresh ask for every topic in the cluster (`true`) or only the
    /// tracked ones (`false`, the default). A consumer subscribed to a pattern needs the full
    /// list, as Java's `ConsumerMetadata` asks for all topics then; others never pay for it.
    pub(crate) fn set_refresh_all(&self, all: bool) {
        self.inner.refresh_all.store(all, Ordering::Release);
    }

    /// A receiver that sees every new metadata snapshot (its value is the
    /// [generation](Self::metadata_generation)); `changed().await` returns once one arrives
    /// after the last value seen.
    pub(crate) fn refreshes(&self) -> watch::Receiver<u64> {
        self.inner.refreshed.subscribe()
    }

    /// Asks the refresh task for a refresh soon (after `retry.backoff.ms` since the last),
    /// for callers that saw a sign of stale metadata but need not wait for it.
    pub(crate) fn request_refresh(&self) {
        self.inner.wake_refresher.notify_one();
    }

    /// Refreshes metadata now and returns the new snapshot.
    pub(crate) async fn refresh(&self, topics: Topics) -> Result<Refreshed> {
        let mut last = self.inner.refreshing.lock().await;
        let (all, names) = match topics {
            Topics::All => (true, None),
            Topics::Only(names) => (false, Some(names)),
            Topics::Tracked => {
                let tracked = self.inner.tracked.lock().unwrap_or_else(|e| e.into_inner());
                (false, Some(tracked.iter().cloned().collect()))
            }
        };
        let req = MetadataRequest::default()
            .with_allow_auto_topic_creation(self.inner.allow_auto_create && !all)
            .with_topics(names.map(|names| {
                names
                    .into_iter()
                    .map(|n| {
                        MetadataRequestTopic::default()
                            .with_name(Some(TopicName(StrBytes::from_string(n))))
                    })
                    .collect()
            }));
        let (resp, broker) = self.send_to_any(&req).await?;
        if resp.error_code != 0 {
            return Err(Error::broker(
                resp.error_code,
                ErrorContext::default().with_broker(broker),
                None,
            ));
        }
        let (next, topic_errors) = self.metadata().merge(&resp, all);
        let next = Arc::new(next);
        *self
            .inner
            .metadata
            .write()
            .unwrap_or_else(|e| e.into_inner()) = next.clone();
        let generation = self.inner.generation.fetch_add(1, Ordering::AcqRel) + 1;
        self.inner.refreshed.send_replace(generation);
        *last = Some(Instant::now());
        Ok(Refreshed {
            metadata: next,
            topic_errors,
        })
    }

    /// Metadata of `topic`, refreshing (with backoff) until the cluster reports it with at
    /// least one partition and `ready` holds (for example, until the topic has a partition a
    /// record names), within `wait`. Unknown topics fail with
    /// [`Error::UnknownTopicOrPartition`] once `wait` is over; other refusals (an invalid
    /// name, no authorization) at once.
    pub(crate) async fn topic_where(
        &self,
        topic: &str,
        wait: Duration,
        ready: impl Fn(&TopicMetadata) -> bool,
    ) -> Result<Arc<TopicMetadata>> {
        let deadline = Instant::now() + wait;
        let usable = |t: &TopicMetadata| !t.partitions.is_empty() && ready(t);
        if let Some(t) = self.metadata().topic(topic).filter(|t| usable(t)) {
            return Ok(t.clone());
        }
        let backoff = Backoff::new(self.config().retry_backoff, self.config().retry_backoff_max);
        let mut last_error = None;
        for attempts in 1.. {
            let refreshed = tokio::time::timeout_at(
                deadline,
                self.refresh(Topics::Only(vec![topic.to_owned()])),
            );
            match refreshed.await {
                Ok(Ok(r)) => match (r.metadata.topic(topic), r.topic_errors.get(topic)) {
                    (Some(t), _) if usable(t) => return Ok(t.clone()),
                    (_, Some(code))
                        if !code.is_retriable()
                            && *code != KafkaCode::UNKNOWN_TOPIC_OR_PARTITION =>
                    {
                        return Err(Error::broker(
                            code.code(),
                            ErrorContext::topic(topic, None),
                            None,
                        ))
                    }
                    (_, Some(code)) => {
                        last_error = Some(Error::broker(
                            code.code(),
                            ErrorContext::topic(topic, None),
                            None,
                        ))
                    }
                    _ => {}
                },
                Ok(Err(e)) if e.is_retriable() => last_error = Some(e),
                Ok(Err(e)) => return Err(e),
                Err(_) => break,
            }
            let pause = backoff.delay(attempts);
            if Instant::now() + pause >= deadline {
                break;
            }
            tokio::time::sleep(pause).await;
        }
        let known = self.metadata().topic(topic).is_some();
        Err(match last_error {
            Some(e) if known || e.kafka_code() != Some(KafkaCode::UNKNOWN_TOPIC_OR_PARTITION) => {
                Error::Timeout {
                    what: format!("waiting for metadata of topic {topic} (last error: {e})"),
                    after: wait,
                }
            }
            _ if known => Error::Timeout {
                what: format!("waiting for metadata of topic {topic}"),
                after: wait,
            },
            _ => Error::UnknownTopicOrPartition {
                context: ErrorContext::topic(topic, None),
            },
        })
    }

    /// A connection to broker `id` for `class` traffic.
    pub(crate) async fn broker(&self, id: i32, class: ConnClass) -> Result<Arc<BrokerConnection>> {
        let addr = self
            .metadata()
            .brokers
            .get(&id)
            .map(BrokerInfo::address)
            .ok_or_else(|| Error::Connection {
                broker: id.to_string(),
                reason: "broker is not in the cluster metadata".into(),
            })?;
        self.inner.pool.get(id, &addr, class).await
    }

    /// Sends `req` to any broker that answers: connected ones first, then the others, then
    /// the bootstrap servers. Returns the response and the broker's name.
    pub(crate) async fn send_to_any<R: kafka_protocol::protocol::Request>(
        &self,
        req: &R,
    ) -> Result<(R::Response, String)> {
        let mut failures = Vec::new();
        for (id, addr) in self.candidates() {
            let conn = match self.inner.pool.get(id, &addr, ConnClass::Control).await {
                Ok(c) => c,
                Err(e) => {
                    failures.push(format!("{addr}: {e}"));
                    continue;
                }
            };
            match conn.request(req).await {
                Ok(resp) => return Ok((resp, conn.broker().to_owned())),
                Err(e @ Error::UnsupportedVersion { .. }) => return Err(e),
                Err(e) => failures.push(format!("{addr}: {e}")),
            }
        }
        Err(Error::Bootstrap { failures })
    }

    /// Brokers to try for a request any broker can answer, best first.
    fn candidates(&self) -> Vec<(i32, String)> {
        let md = self.metadata();
        let connected = self.inner.pool.connected(ConnClass::Control);
        let mut known: Vec<(i32, String)> =
            md.brokers.values().map(|b| (b.id, b.address())).collect();
        known.sort_by_key(|(id, _)| !connected.contains(id));
        let bootstrap = self
            .config()
            .bootstrap_servers
            .iter()
            .enumerate()
            .filter(|(_, a)| !known.iter().any(|(_, k)| k == *a))
            .map(|(i, a)| (-1 - i as i32, a.clone()))
            .collect::<Vec<_>>();
        known.extend(bootstrap);
        known
    }

    /// First contact: rounds over the bootstrap servers until one answers Metadata, within
    /// `socket.connection.setup.timeout.ms`.
    async fn bootstrap(&self) -> Result<()> {
        let limit = self.config().connection_setup_timeout;
        let deadline = Instant::now() + limit;
        let backoff = Backoff::new(
            self.config().reconnect_backoff,
            self.config().reconnect_backoff_max,
        );
        // Each address's latest failure, so the final error names every one of them even
        // when the deadline cuts a round short.
        let mut last: Vec<(String, String)> = self
            .config()
            .bootstrap_servers
            .iter()
            .map(|a| {
                (
                    a.clone(),
                    format!("{a}: no answer within {limit:?} (socket.connection.setup.timeout.ms)"),
                )
            })
            .collect();
        let mut round = 0;
        loop {
            let attempt =
                tokio::time::timeout_at(deadline, self.refresh(Topics::Only(Vec::new()))).await;
            match attempt {
                Ok(Ok(_)) => return Ok(()),
                Ok(Err(Error::Bootstrap { failures })) => {
                    for failure in failures {
                        if let Some(slot) = last
                            .iter_mut()
                            .find(|(a, _)| failure.starts_with(a.as_str()))
                        {
                            slot.1 = failure;
                        }
                    }
                }
                Ok(Err(e)) => return Err(e),
                Err(_) => {}
            }
            round += 1;
            let pause = backoff.delay(round);
            if Instant::now() + pause >= deadline {
                return Err(Error::Bootstrap {
                    failures: last.into_iter().map(|(_, f)| f).collect(),
                });
            }
            tokio::time::sleep(pause).await;
        }
    }

    /// Closes every connection. In-flight requests fail; later ones reconnect.
    pub(crate) fn close(&self) {
        self.inner.pool.close_all();
    }
}

/// Refreshes tracked topics (or all, see [`Cluster::set_refresh_all`]) every
/// `metadata.max.age.ms`, or soon after a request for it.
/// Holds no strong reference while it sleeps, so dropping the last `Cluster` ends it.
async fn refresh_loop(inner: Weak<Inner>, wake: Arc<Notify>) {
    let Some((max_age, min_gap)) = inner
        .upgrade()
        .map(|i| (i.config.metadata_max_age, i.config.retry_backoff))
    else {
        return;
    };
    loop {
        let woken = tokio::select! {
            _ = wake.notified() => true,
            _ = tokio::time::sleep(max_age) => false,
        };
        if woken {
            tokio::time::sleep(min_gap).await;
        }
        let Some(inner) = inner.upgrade() else { return };
        let topics = if inner.refresh_all.load(Ordering::Acquire) {
            Topics::All
        } else {
            Topics::Tracked
        };
        let cluster = Cluster { inner };
        if let Err(e) = cluster.refresh(topics).await {
            tracing::debug!(error = %e, "periodic metadata refresh failed");
        }
    }
}
