//! The [`Consumer`] handle: construction, subscriptions and assignment, pauses, closing.
//! Reading records is in `poll.rs`, offsets and positions in `offsets.rs`.

use std::collections::BTreeSet;
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::buffer::FetchBuffer;
use super::builder::ConsumerBuilder;
use super::config::ConsumerConfig;
use super::drain::{DecodeOptions, Drain};
use super::fetcher::Fetcher;
use super::group::{no_group, GroupClient, GroupEvent, GroupHandle};
use super::listener::{Callback, ListenerSlot, RebalanceListener};
use super::pattern::IntoTopicPattern;
use super::positions::PositionLookups;
use super::rebalance::RevokeCommit;
use super::subscription::{Init, Subscriptions};
use crate::cluster::Cluster;
use crate::error::{Error, Result};
use crate::types::TopicPartition;

/// A Kafka consumer: subscribes to topics as a member of a consumer group (or reads
/// partitions it is assigned), and hands out their records in order per partition.
///
/// # Ownership
///
/// `Consumer` is a single-owner handle, not `Clone`: reading records takes `&mut self`,
/// because what the consumer has *handed out* decides what auto-commit may commit
/// (at-least-once) and where the next `poll` continues; two tasks polling one consumer would
/// make both ambiguous. Everything else (`commit_sync`, `seek`, `position`, `pause`...)
/// takes `&self`, so a [`RebalanceListener`] can use the consumer it is given. To feed
/// several tasks, poll in one and send the records over a channel, or run one consumer per
/// task in the same group. Three background tasks work for each consumer: the cluster's
/// metadata refresher, the fetcher and (with a `group.id`) the group member; they stop when
/// the consumer is closed or dropped.
///
/// # Dropping without `close`
///
/// Dropping a consumer stops its tasks at once, like a crashed process: no final commit, no
/// LeaveGroup. The group notices after `session.timeout.ms` and gives the partitions to the
/// other members, which start at the last committed offsets. Call [`close`](Self::close) to
/// commit (with auto-commit) and leave promptly.
///
/// ```no_run
/// use futures::StreamExt;
/// use kafka_client::consumer::{Consumer, OffsetReset};
/// # async fn demo() -> kafka_client::Result<()> {
/// let mut consumer = Consumer::builder()
///     .bootstrap_servers("127.0.0.1:9092")
///     .group_id("billing")
///     .auto_offset_reset(OffsetReset::Earliest)
///     .build()
///     .await?;
/// consumer.subscribe(["orders"])?;
/// let mut records = consumer.stream();
/// while let Some(record) = records.next().await {
///     let record = record?;
///     println!("{}-{}@{}: {:?}", record.topic, record.partition, record.offset, record.value);
/// }
/// # Ok(()) }
/// ```
pub struct Consumer {
    pub(crate) config: Arc<ConsumerConfig>,
    pub(crate) cluster: Cluster,
    pub(crate) subs: Arc<Subscriptions>,
    pub(crate) buffer: Arc<FetchBuffer>,
    pub(crate) group: Option<GroupHandle>,
    pub(crate) events: Option<mpsc::Receiver<GroupEvent>>,
    /// The event whose callback is running (kept until acknowledged, for cancellation).
    pub(crate) pending_event: Option<GroupEvent>,
    pub(crate) drain: Option<Drain>,
    pub(crate) decode: DecodeOptions,
    pub(crate) listener: ListenerSlot,
    /// `Subscriptions` change counter when `failure` was last computed.
    pub(crate) failure_checked: u64,
    pub(crate) since_mark: usize,
    /// When `poll` next auto-commits (with auto-commit on).
    pub(crate) auto_commit_at: Option<Instant>,
    /// The auto-commit a pending revocation waits for.
    pub(crate) revoke_commit: Option<RevokeCommit>,
    fetcher: JoinHandle<()>,
    /// Tells the fetcher to end its fetch sessions by a deadline, then stop.
    close_fetcher: Option<oneshot::Sender<Instant>>,
}

impl Drop for Consumer {
    fn drop(&mut self) {
        self.fetcher.abort();
    }
}

impl std::fmt::Debug for Consumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Consumer")
            .field("group_id", &self.config.group_id)
            .field("assignment", &self.subs.assignment())
            .finish_non_exhaustive()
    }
}

impl Consumer {
    /// A builder with the Java client's defaults.
    pub fn builder() -> ConsumerBuilder {
        ConsumerBuilder::new()
    }

    pub(crate) fn start(
        config: ConsumerConfig,
        cluster: Cluster,
        listener: Option<Box<dyn RebalanceListener>>,
    ) -> Result<Consumer> {
        let config = Arc::new(config);
        let subs = Arc::new(Subscriptions::new());
        let buffer = Arc::new(FetchBuffer::new(config.fetch_buffer_max_bytes));
        let (group, events) = match &config.group_id {
            Some(_) => {
                let (handle, events) =
                    GroupHandle::start(config.clone(), cluster.clone(), subs.clone())?;
                (Some(handle), Some(events))
            }
            None => (None, None),
        };
        let positions = PositionLookups::new(
            config.clone(),
            cluster.clone(),
            group.as_ref().map(|g| g.client.clone()),
        );
        let (close_fetcher, close) = oneshot::channel();
        let fetcher = Fetcher::new(
            config.clone(),
            cluster.clone(),
            subs.clone(),
            buffer.clone(),
            positions,
            close,
        );
        let fetcher = tokio::spawn(fetcher.run());
        let auto_commit_at = config
            .auto_commit()
            .then(|| Instant::now() + config.auto_commit_interval);
        Ok(Consumer {
            decode: DecodeOptions {
                isolation: config.isolation_level,
                check_crcs: config.check_crcs,
            },
            config,
            cluster,
            subs,
            buffer,
            group,
            events,
            pending_event: None,
            drain: None,
            listener: ListenerSlot::new(listener),
            failure_checked: u64::MAX,
            since_mark: 0,
            auto_commit_at,
            revoke_commit: None,
            fetcher,
            close_fetcher: Some(close_fetcher),
        })
    }

    pub(crate) fn group_client(&self, what: &str) -> Result<&GroupClient> {
        self.group
            .as_ref()
            .map(|g| &g.client)
            .ok_or_else(|| no_group(what))
    }

    /// Sets (or replaces) the rebalance listener.
    pub fn set_rebalance_listener(&self, listener: impl RebalanceListener + 'static) {
        self.listener.set(Box::new(listener));
    }

    /// Subscribes to `topics`: the group assigns this consumer a share of their partitions.
    /// Replaces an earlier subscription to topics (the group rebalances); needs a `group.id`.
    /// After [`subscribe_pattern`](Self::subscribe_pattern) or [`assign`](Self::assign) it is
    /// an error until [`unsubscribe`](Self::unsubscribe), as in Java.
    ///
    /// Returns at once; the consumer joins the group in the background, and the assignment
    /// shows in [`assignment`](Self::assignment) and the listener during `poll`.
    pub fn subscribe<I, S>(&self, topics: I) -> Result<()>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let group = self.group_client("subscribe()")?;
        let topics: BTreeSet<String> = topics.into_iter().map(Into::into).collect();
        if topics.is_empty() || topics.iter().any(|t| t.trim().is_empty()) {
            return Err(Error::InvalidArgument(
                "subscribe() needs at least one non-empty topic name; use unsubscribe() to \
                 stop"
                    .into(),
            ));
        }
        self.cluster.track(topics.iter().cloned());
        if self.subs.subscribe(topics)? {
            group.subscription_changed();
        }
        Ok(())
    }

    /// Subscribes to every topic whose whole name matches `pattern` (Java's
    /// `subscribe(Pattern)`): the group assigns this consumer a share of their partitions.
    /// Needs a `group.id`. `pattern` is a `&str` or `String` in
    /// [`regex` syntax](https://docs.rs/regex/latest/regex/#syntax), a [`regex::Regex`] or a
    /// [`TopicPattern`](super::TopicPattern); it must match the whole name, as Java's
    /// `Pattern.matcher(topic).matches()`: `orders-.*` matches `orders-eu`, not
    /// `old-orders-eu`. An empty or invalid pattern is an [`Error::InvalidArgument`] naming it.
    ///
    /// The consumer lists every topic in the cluster (a full Metadata request) before it
    /// joins the group and then every `metadata.max.age.ms` (default 5 minutes); when the
    /// matching topics change, it rejoins, so topics created later are assigned and deleted
    /// ones revoked. Internal topics such as `__consumer_offsets` are left out unless
    /// `exclude.internal.topics=false`. [`subscription`](Self::subscription) returns the
    /// topics matched so far.
    ///
    /// Another pattern replaces this one (the group rebalances). After
    /// [`subscribe`](Self::subscribe) or [`assign`](Self::assign) it is an error until
    /// [`unsubscribe`](Self::unsubscribe), as in Java. Java's `subscribe(Pattern, listener)`
    /// is [`set_rebalance_listener`](Self::set_rebalance_listener) followed by this.
    ///
    /// Returns at once; the consumer joins the group in the background, and the assignment
    /// shows in [`assignment`](Self::assignment) and the listener during `poll`.
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// use kafka_client::consumer::{Consumer, OffsetReset};
    /// # async fn demo() -> kafka_client::Result<()> {
    /// let mut consumer = Consumer::builder()
    ///     .bootstrap_servers("127.0.0.1:9092")
    ///     .group_id("audit")
    ///     .auto_offset_reset(OffsetReset::Earliest)
    ///     .metadata_max_age(Duration::from_secs(30)) // notice new topics within 30 s
    ///     .build()
    ///     .await?;
    /// consumer.subscribe_pattern("orders-.*")?;    // orders-eu, orders-us, ...
    /// let records = consumer.poll(Duration::from_secs(1)).await?;
    /// # Ok(()) }
    /// ```
    pub fn subscribe_pattern(&self, pattern: impl IntoTopicPattern) -> Result<()> {
        let group = self.group_client("subscribe_pattern()")?;
        let pattern = pattern.into_topic_pattern()?;
        // As Java: match what the metadata holds now; the group task lists every topic
        // before it joins.
        let matched = pattern.matching(
            &self.cluster.metadata(),
            self.config.exclude_internal_topics,
        );
        tracing::info!(%pattern, "subscribed to pattern");
        let changed = self.subs.subscribe_pattern(pattern, matched)?;
        self.cluster.set_refresh_all(true);
        if changed {
            group.subscription_changed();
        }
        Ok(())
    }

    /// Reads exactly `partitions`, without group management (Java's `assign`). Partitions
    /// already held keep their positions; new ones start at the group's committed offset
    /// (with a `group.id`) or by `auto.offset.reset`. An empty list unassigns everything.
    pub fn assign(&self, partitions: impl IntoIterator<Item = TopicPartition>) -> Result<()> {
        let partitions: BTreeSet<TopicPartition> = partitions.into_iter().collect();
        if let Some(tp) = partitions
            .iter()
            .find(|tp| tp.topic.trim().is_empty() || tp.partition < 0)
        {
            return Err(Error::InvalidArgument(format!(
                "cannot assign partition {tp}"
            )));
        }
        self.cluster
            .track(partitions.iter().map(|tp| tp.topic.clone()));
        if self.config.auto_commit() {
            // As the Java client: commit what was consumed before the assignment changes.
            let offsets = self.subs.positions(None);
            if let (Some(group), false) = (&self.group, offsets.is_empty()) {
                self.subs.commit_issued(&offsets);
                let _ = group.client.commit_now(offsets);
            }
        }
        self.subs.assign_manual(partitions, Init::Committed)?;
        Ok(())
    }

    /// Stops reading: with a subscription, commits (when auto-commit is on), runs the
    /// listener's revocation callback and leaves the group; with an assignment, drops it.
    /// Rebalance events still queued for `poll` are dropped: they belong to the
    /// subscription that ended.
    ///
    /// # Cancellation
    /// Dropping the future before the subscription is dropped (during the commit or the
    /// callback) changes nothing else, so the call can be repeated. Once it is dropped, the
    /// LeaveGroup is on its way; dropping the future then only stops waiting for its answer.
    pub async fn unsubscribe(&self) -> Result<()> {
        let unsubscribe = || {
            self.subs.unsubscribe();
            self.cluster.set_refresh_all(false);
            self.subs.session()
        };
        match &self.group {
            Some(group) if self.subs.topics().is_some() => {
                self.give_up_partitions().await;
                let timeout = self.config.client.default_api_timeout;
                group.client.leave(timeout, unsubscribe).await;
            }
            _ => {
                unsubscribe();
            }
        }
        Ok(())
    }

    /// Before leaving: auto-commit, then the revoked (or lost) callback for every partition.
    async fn give_up_partitions(&self) {
        let owned = self.subs.assignment();
        let in_group = self
            .group
            .as_ref()
            .is_some_and(|g| g.client.shared.generation() >= 0);
        if in_group && self.config.auto_commit() {
            if let Err(e) = self.commit_sync().await {
                tracing::warn!(error = %e, "committing before leaving the group failed");
            }
        }
        if !owned.is_empty() {
            let callback = if in_group {
                Callback::Revoked
            } else {
                Callback::Lost
            };
            self.listener.call(self, callback, &owned).await;
        }
    }

    /// The subscribed topics (empty without a subscription); with a
    /// [pattern](Self::subscribe_pattern), the topics it matched at the last metadata refresh.
    pub fn subscription(&self) -> Vec<String> {
        self.subs
            .topics()
            .map(|t| t.into_iter().collect())
            .unwrap_or_default()
    }

    /// The partitions this consumer holds now.
    pub fn assignment(&self) -> Vec<TopicPartition> {
        self.subs.assignment()
    }

    /// The group's member id of this consumer, once it joined.
    pub fn member_id(&self) -> Option<String> {
        let id = self.group.as_ref()?.client.shared.member_id();
        (!id.is_empty()).then_some(id)
    }

    /// The group generation this consumer is in, once it joined.
    pub fn generation(&self) -> Option<i32> {
        let g = self.group.as_ref()?.client.shared.generation();
        (g >= 0).then_some(g)
    }

    /// Stops returning (and fetching) records of `partitions` until [`resume`](Self::resume).
    /// Data already fetched for them is dropped and fetched again after resuming. Pauses do
    /// not survive a rebalance that revokes the partition.
    pub fn pause(&self, partitions: &[TopicPartition]) -> Result<()> {
        self.subs.set_paused(partitions, true)
    }

    /// Resumes paused partitions.
    pub fn resume(&self, partitions: &[TopicPartition]) -> Result<()> {
        self.subs.set_paused(partitions, false)
    }

    /// The paused partitions.
    pub fn paused(&self) -> Vec<TopicPartition> {
        self.subs.paused()
    }

    /// Closes the consumer gracefully, within `default.api.timeout.ms`: commits the positions
    /// when auto-commit is on, runs the listener's revocation callback, leaves the group
    /// (dynamic members; static members stay until their session times out, as in Java),
    /// ends the fetch sessions (KIP-227) the brokers keep for this consumer (waiting at most
    /// `request.timeout.ms` for that), then stops the background tasks.
    ///
    /// # Cancellation
    /// Dropping the future part-way drops the consumer, as [`Drop`](#dropping-without-close)
    /// does: steps not yet done are skipped.
    pub async fn close(mut self) -> Result<()> {
        let timeout = self.config.client.default_api_timeout;
        let deadline = Instant::now() + timeout;
        let graceful = async {
            if self.subs.topics().is_some() {
                self.give_up_partitions().await;
            } else if self.config.auto_commit() {
                if let Err(e) = self.commit_sync().await {
                    tracing::warn!(error = %e, "committing on close failed");
                }
            }
            if let Some(group) = &self.group {
                group.client.leave(timeout, || self.subs.session()).await;
            }
        };
        if tokio::time::timeout_at(deadline, graceful).await.is_err() {
            tracing::warn!("close did not finish within default.api.timeout.ms ({timeout:?})");
        }
        // As Java: the fetch sessions get what is left of the time, at most request.timeout.ms.
        let budget = deadline
            .saturating_duration_since(Instant::now())
            .min(self.config.client.request_timeout);
        if let Some(close_fetcher) = self.close_fetcher.take() {
            if !budget.is_zero() && close_fetcher.send(Instant::now() + budget).is_ok() {
                let _ = tokio::time::timeout(budget, &mut self.fetcher).await;
            }
        }
        self.cluster.close();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A consumer moves into spawned tasks, and listeners hold `&Consumer` across awaits.
    #[test]
    fn consumer_is_send_and_sync() {
        fn send_sync<T: Send + Sync>() {}
        fn send<T: Send>() {}
        send_sync::<Consumer>();
        send::<ConsumerBuilder>();
    }
}
