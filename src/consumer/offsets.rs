//! Offsets and positions: commits, committed offsets, positions, seeks, and offset look-ups
//! by time or log end.

use std::collections::HashMap;
use std::future::Future;

use tokio::time::Instant;

use super::record::{OffsetAndMetadata, OffsetAndTimestamp};
use super::subscription::ResetTo;
use super::Consumer;
use crate::cluster::offsets::{list_offsets, OffsetSpec};
use crate::error::{Error, Result};
use crate::types::TopicPartition;

impl Consumer {
    /// Commits the position of every partition held: everything returned so far counts as
    /// processed (Java's `commitSync()`). Retries retriable errors until
    /// `default.api.timeout.ms`.
    ///
    /// # Cancellation
    /// Dropping the future stops the retries; an attempt already sent may still commit.
    pub async fn commit_sync(&self) -> Result<()> {
        let group = self.group_client("commit_sync()")?;
        let offsets = self.subs.positions(None);
        self.subs.commit_issued(&offsets);
        group
            .commit(offsets, self.config.client.default_api_timeout)
            .await
    }

    /// Commits the given offsets (each the *next* offset to read), retrying retriable errors
    /// until `default.api.timeout.ms`.
    ///
    /// # Cancellation
    /// As [`commit_sync`](Self::commit_sync).
    pub async fn commit_sync_offsets(
        &self,
        offsets: HashMap<TopicPartition, OffsetAndMetadata>,
    ) -> Result<()> {
        let group = self.group_client("commit_sync_offsets()")?;
        if let Some((tp, _)) = offsets.iter().find(|(_, o)| o.offset < 0) {
            return Err(Error::InvalidArgument(format!(
                "negative offset to commit for {tp}"
            )));
        }
        self.subs.commit_issued(&offsets);
        group
            .commit(offsets, self.config.client.default_api_timeout)
            .await
    }

    /// Starts committing every position now, without retrying, and returns a future with the
    /// result (Java's `commitAsync`), within `default.api.timeout.ms`. The commit is sent
    /// whether or not the future is awaited.
    ///
    /// # Cancellation
    /// Dropping the returned future only discards the result.
    pub fn commit_async(&self) -> impl Future<Output = Result<()>> + Send + 'static {
        self.commit_async_offsets(self.subs.positions(None))
    }

    /// [`commit_async`](Self::commit_async) with explicit offsets.
    pub fn commit_async_offsets(
        &self,
        offsets: HashMap<TopicPartition, OffsetAndMetadata>,
    ) -> impl Future<Output = Result<()>> + Send + 'static {
        let started = self.group_client("commit_async()").and_then(|g| {
            if offsets.is_empty() {
                Ok(None)
            } else {
                self.subs.commit_issued(&offsets);
                g.commit_now(offsets).map(Some)
            }
        });
        let timeout = self.config.client.default_api_timeout;
        async move {
            let Some(rx) = started? else { return Ok(()) };
            match tokio::time::timeout(timeout, rx).await {
                Ok(Ok(result)) => result,
                Ok(Err(_)) => Err(Error::Closed("consumer group task ended".into())),
                Err(_) => Err(Error::Timeout {
                    what: "asynchronous offset commit".into(),
                    after: timeout,
                }),
            }
        }
    }

    /// Auto-commit, from inside `poll` as in Java (`maybeAutoCommitOffsetsAsync`): once per
    /// `auto.commit.interval.ms`, what the application has processed (the positions when it
    /// last asked for records), without waiting for the answer. Only `poll` and `close`
    /// commit on their own, so an auto-commit is always issued after, and never overwrites,
    /// an explicit commit of newer positions.
    pub(crate) fn maybe_auto_commit(&mut self) {
        let Some(at) = self.auto_commit_at else {
            return;
        };
        let now = Instant::now();
        if now < at {
            return;
        }
        self.auto_commit_at = Some(now + self.config.auto_commit_interval);
        if let Some(group) = &self.group {
            group.client.auto_commit(self.subs.committable());
        }
    }

    /// The group's committed offsets of `partitions` (`None` where there is none), within
    /// `default.api.timeout.ms`. Offsets of open transactions are waited for (KIP-447).
    ///
    /// # Cancellation
    /// Dropping the future has no effect on the consumer.
    pub async fn committed(
        &self,
        partitions: &[TopicPartition],
    ) -> Result<HashMap<TopicPartition, Option<OffsetAndMetadata>>> {
        let group = self.group_client("committed()")?;
        group
            .committed(partitions.to_vec(), self.config.client.default_api_timeout)
            .await
    }

    /// The offset of the next record `poll` returns for `partition` (Java's `position`).
    /// Waits, up to `default.api.timeout.ms`, while the position is being looked up (committed
    /// offset or reset); fails for a partition not held, or without a position under
    /// `auto.offset.reset=none`.
    ///
    /// # Cancellation
    /// Dropping the future has no effect on the consumer.
    pub async fn position(&self, partition: &TopicPartition) -> Result<i64> {
        let timeout = self.config.client.default_api_timeout;
        let deadline = Instant::now() + timeout;
        loop {
            let notified = self.subs.positioned.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(p) = self.subs.position(partition)? {
                return Ok(p);
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return Err(Error::Timeout {
                    what: format!("position of {partition}"),
                    after: timeout,
                });
            }
        }
    }

    /// Makes the next `poll` read `partition` from `offset`.
    pub fn seek(&self, partition: &TopicPartition, offset: i64) -> Result<()> {
        // The seek gives the partition a new epoch, which makes `poll` drop data fetched
        // before it.
        self.subs.seek(partition, offset)
    }

    /// Makes the next `poll` read `partitions` from their first offset still in the log.
    pub fn seek_to_beginning(&self, partitions: &[TopicPartition]) -> Result<()> {
        self.subs.request_reset(partitions, ResetTo::Earliest)
    }

    /// Makes the next `poll` read `partitions` from their end (the high watermark, or the
    /// last stable offset under `read_committed`): only records written later.
    pub fn seek_to_end(&self, partitions: &[TopicPartition]) -> Result<()> {
        self.subs.request_reset(partitions, ResetTo::Latest)
    }

    /// For each partition, the earliest offset whose record timestamp is at or after the
    /// given one (milliseconds since the epoch); `None` when every record is older.
    ///
    /// # Cancellation
    /// Dropping the future has no effect on the consumer.
    pub async fn offsets_for_times(
        &self,
        timestamps: HashMap<TopicPartition, i64>,
    ) -> Result<HashMap<TopicPartition, Option<OffsetAndTimestamp>>> {
        if let Some((tp, ts)) = timestamps.iter().find(|(_, ts)| **ts < 0) {
            return Err(Error::InvalidArgument(format!(
                "negative timestamp {ts} for {tp}"
            )));
        }
        let specs = timestamps
            .into_iter()
            .map(|(tp, ts)| (tp, OffsetSpec::Timestamp(ts)))
            .collect();
        let found = list_offsets(&self.cluster, &specs, self.config.isolation_level).await?;
        Ok(found
            .into_iter()
            .map(|(tp, l)| {
                let answer = l.offset.map(|offset| OffsetAndTimestamp {
                    offset,
                    timestamp: l.timestamp,
                    leader_epoch: l.leader_epoch,
                });
                (tp, answer)
            })
            .collect())
    }

    /// The first offset still in the log of each partition.
    ///
    /// # Cancellation
    /// Dropping the future has no effect on the consumer.
    pub async fn beginning_offsets(
        &self,
        partitions: &[TopicPartition],
    ) -> Result<HashMap<TopicPartition, i64>> {
        self.list(partitions, OffsetSpec::Earliest).await
    }

    /// The end offset of each partition: the high watermark, or the last stable offset under
    /// `read_committed`.
    ///
    /// # Cancellation
    /// Dropping the future has no effect on the consumer.
    pub async fn end_offsets(
        &self,
        partitions: &[TopicPartition],
    ) -> Result<HashMap<TopicPartition, i64>> {
        self.list(partitions, OffsetSpec::Latest).await
    }

    async fn list(
        &self,
        partitions: &[TopicPartition],
        spec: OffsetSpec,
    ) -> Result<HashMap<TopicPartition, i64>> {
        let specs = partitions.iter().map(|tp| (tp.clone(), spec)).collect();
        let found = list_offsets(&self.cluster, &specs, self.config.isolation_level).await?;
        Ok(found
            .into_iter()
            .map(|(tp, l)| (tp, l.offset.unwrap_or(0)))
            .collect())
    }
}
