//! Finding positions for partitions that have none: the group's committed offset first, then
//! `auto.offset.reset` (or an explicit `seek_to_beginning`/`seek_to_end`) through ListOffsets.
//! Run by the fetcher task (Java's `updateFetchPositions` and
//! `OffsetFetcher.resetPositionsIfNeeded`).
//!
//! Committed offsets come from the group coordinator in one OffsetFetch for every partition
//! waiting for one. Resets go to each partition's leader, one ListOffsets per leader, all
//! leaders at once; a partition whose leader (or topic) is unknown, or whose look-up failed,
//! waits out its own backoff and is retried alone, so it never holds back partitions whose
//! leaders answer.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use futures::future::BoxFuture;
use futures::stream::FuturesUnordered;
use futures::{FutureExt, StreamExt};
use tokio::time::Instant;

use super::config::ConsumerConfig;
use super::group::{Committed, GroupClient};
use super::subscription::{Fetchable, Subscriptions};
use crate::cluster::offsets::{
    ask_leader, group_by_leader, Answers, ListedOffset, OffsetSpec, Routes,
};
use crate::cluster::Cluster;
use crate::config::Backoff;
use crate::error::{Error, KafkaCode, Result};
use crate::types::TopicPartition;

/// A finished look-up.
pub(crate) enum Lookup {
    Committed {
        entries: Vec<(TopicPartition, u64)>,
        result: Result<Committed>,
    },
    /// One leader's answer for its partitions.
    Reset {
        entries: Vec<Fetchable>,
        result: Result<Answers>,
    },
}

/// The look-ups in flight; see the [module docs](self).
pub(crate) struct PositionLookups {
    config: Arc<ConsumerConfig>,
    cluster: Cluster,
    group: Option<GroupClient>,
    in_flight: FuturesUnordered<BoxFuture<'static, Lookup>>,
    committed_busy: bool,
    committed_failures: u32,
    committed_retry_at: Option<Instant>,
    /// Partitions in a ListOffsets now.
    resetting: HashSet<TopicPartition>,
    /// Partitions whose last reset attempt failed: how often, and when to try again.
    reset_backoff: HashMap<TopicPartition, (u32, Instant)>,
    retry: Backoff,
}

impl PositionLookups {
    pub(crate) fn new(
        config: Arc<ConsumerConfig>,
        cluster: Cluster,
        group: Option<GroupClient>,
    ) -> Self {
        let retry = Backoff::new(config.client.retry_backoff, config.client.retry_backoff_max);
        PositionLookups {
            config,
            cluster,
            group,
            in_flight: FuturesUnordered::new(),
            committed_busy: false,
            committed_failures: 0,
            committed_retry_at: None,
            resetting: HashSet::new(),
            reset_backoff: HashMap::new(),
            retry,
        }
    }

    /// Starts look-ups for partitions waiting for a position, unless they are running or
    /// backing off after a failure.
    pub(crate) fn start(&mut self, subs: &Subscriptions) {
        let now = Instant::now();
        let (committed, reset) = subs.needing_positions();
        if !committed.is_empty()
            && !self.committed_busy
            && self.committed_retry_at.is_none_or(|at| at <= now)
        {
            self.start_committed(subs, committed);
        }
        // Forget backoffs of partitions no longer waiting (sought, revoked...).
        let waiting: HashSet<&TopicPartition> = reset.iter().map(|f| &f.tp).collect();
        self.reset_backoff.retain(|tp, _| waiting.contains(tp));
        let due: Vec<Fetchable> = reset
            .into_iter()
            .filter(|f| !self.resetting.contains(&f.tp))
            .filter(|f| {
                self.reset_backoff
                    .get(&f.tp)
                    .is_none_or(|(_, at)| *at <= now)
            })
            .collect();
        if !due.is_empty() {
            self.start_resets(due);
        }
    }

    fn start_committed(&mut self, subs: &Subscriptions, committed: Vec<(TopicPartition, u64)>) {
        let Some(group) = self.group.clone() else {
            for (tp, epoch) in &committed {
                subs.committed_found(tp, *epoch, None, self.config.auto_offset_reset);
            }
            return;
        };
        self.committed_busy = true;
        let timeout = self.config.client.default_api_timeout;
        let partitions: Vec<TopicPartition> = committed.iter().map(|(tp, _)| tp.clone()).collect();
        self.in_flight.push(
            async move {
                let result = group.committed(partitions, timeout).await;
                Lookup::Committed {
                    entries: committed,
                    result,
                }
            }
            .boxed(),
        );
    }

    /// One ListOffsets per leader, sent at once; partitions without a known leader back off
    /// and ask for fresher metadata.
    fn start_resets(&mut self, due: Vec<Fetchable>) {
        let metadata = self.cluster.metadata();
        let mut entries: HashMap<TopicPartition, Fetchable> =
            due.into_iter().map(|f| (f.tp.clone(), f)).collect();
        let Routes {
            by_leader,
            unroutable,
        } = group_by_leader(&metadata, entries.keys().cloned());
        if !unroutable.is_empty() {
            self.cluster.request_refresh();
        }
        for (tp, e) in unroutable {
            tracing::debug!(topic = %tp.topic, partition = tp.partition, error = %e, "no leader to ask for a reset offset yet");
            self.backoff(tp);
        }
        let timeout = self.config.client.default_api_timeout;
        for (leader, tps) in by_leader {
            let batch: Vec<Fetchable> = tps.iter().filter_map(|tp| entries.remove(tp)).collect();
            let wanted: Vec<(TopicPartition, OffsetSpec)> = batch
                .iter()
                .map(|f| {
                    let spec = if f.fetch_offset == -2 {
                        OffsetSpec::Earliest
                    } else {
                        OffsetSpec::Latest
                    };
                    (f.tp.clone(), spec)
                })
                .collect();
            self.resetting.extend(tps);
            let cluster = self.cluster.clone();
            let isolation = self.config.isolation_level;
            self.in_flight.push(
                async move {
                    let ask = ask_leader(&cluster, leader, &wanted, isolation);
                    let result = match tokio::time::timeout(timeout, ask).await {
                        Ok(r) => r,
                        Err(_) => Err(Error::Timeout {
                            what: format!("ListOffsets to broker {leader}"),
                            after: timeout,
                        }),
                    };
                    Lookup::Reset {
                        entries: batch,
                        result,
                    }
                }
                .boxed(),
            );
        }
    }

    fn backoff(&mut self, tp: TopicPartition) {
        let attempts = self.reset_backoff.get(&tp).map_or(0, |(n, _)| *n) + 1;
        let at = Instant::now() + self.retry.delay(attempts);
        self.reset_backoff.insert(tp, (attempts, at));
    }

    /// The next finished look-up; pending while none runs.
    pub(crate) async fn next(&mut self) -> Lookup {
        match self.in_flight.next().await {
            Some(l) => l,
            None => std::future::pending().await,
        }
    }

    /// When a failed look-up may be retried, if that is still ahead.
    pub(crate) fn next_retry(&self, now: Instant) -> Option<Instant> {
        let resets = self.reset_backoff.values().map(|(_, at)| *at);
        self.committed_retry_at
            .into_iter()
            .chain(resets)
            .filter(|at| *at > now)
            .min()
    }

    pub(crate) fn apply(&mut self, lookup: Lookup, subs: &Subscriptions) {
        match lookup {
            Lookup::Committed { entries, result } => self.apply_committed(entries, result, subs),
            Lookup::Reset { entries, result } => self.apply_reset(entries, result, subs),
        }
    }

    fn apply_committed(
        &mut self,
        entries: Vec<(TopicPartition, u64)>,
        result: Result<Committed>,
        subs: &Subscriptions,
    ) {
        self.committed_busy = false;
        let ok = match result {
            Ok(found) => {
                for (tp, epoch) in entries {
                    let committed = found.get(&tp).and_then(Option::as_ref);
                    if let Some(c) = committed {
                        tracing::debug!(topic = %tp.topic, partition = tp.partition, offset = c.offset, "starting at the committed offset");
                    }
                    subs.committed_found(&tp, epoch, committed, self.config.auto_offset_reset);
                }
                true
            }
            Err(e) => match final_code(&e) {
                // Retrying cannot help (group authorization, say): the application must hear
                // of it from poll, as Java's poll throws it.
                Some(code) => {
                    tracing::warn!(error = %e, "reading committed offsets failed");
                    for (tp, epoch) in &entries {
                        subs.fail(tp, *epoch, code);
                    }
                    true
                }
                None => {
                    tracing::warn!(error = %e, "reading committed offsets failed; retrying");
                    false
                }
            },
        };
        if ok {
            self.committed_failures = 0;
            self.committed_retry_at = None;
        } else {
            self.committed_failures += 1;
            self.committed_retry_at =
                Some(Instant::now() + self.retry.delay(self.committed_failures));
        }
    }

    fn apply_reset(
        &mut self,
        entries: Vec<Fetchable>,
        result: Result<Answers>,
        subs: &Subscriptions,
    ) {
        for f in &entries {
            self.resetting.remove(&f.tp);
        }
        let answers = match result {
            Ok(answers) => answers,
            Err(e) => {
                match final_code(&e) {
                    Some(code) => {
                        tracing::warn!(error = %e, "looking up reset offsets failed");
                        for f in &entries {
                            subs.fail(&f.tp, f.epoch, code);
                        }
                    }
                    None => {
                        tracing::warn!(error = %e, "looking up reset offsets failed; retrying");
                        for f in entries {
                            self.backoff(f.tp);
                        }
                    }
                }
                return;
            }
        };
        let mut answers: HashMap<TopicPartition, Result<ListedOffset>> =
            answers.into_iter().collect();
        for f in entries {
            let answer = answers.remove(&f.tp);
            let offset = match &answer {
                Some(Ok(listed)) => listed.offset,
                _ => None,
            };
            if let Some(offset) = offset {
                self.reset_backoff.remove(&f.tp);
                subs.reset_done(&f.tp, f.epoch, offset);
                continue;
            }
            match answer {
                Some(Err(e)) => match final_code(&e) {
                    Some(code) => {
                        tracing::warn!(error = %e, "looking up a reset offset failed");
                        subs.fail(&f.tp, f.epoch, code);
                    }
                    None => {
                        tracing::debug!(error = %e, topic = %f.tp.topic, partition = f.tp.partition, "looking up a reset offset failed; retrying");
                        self.backoff(f.tp);
                    }
                },
                // No answer for it, or no offset: ask again.
                _ => self.backoff(f.tp),
            }
        }
    }
}

/// The Kafka code of an error that retrying will not cure; `None` for retriable ones (lost
/// connections, timeouts, leader changes, a topic not yet in the metadata).
fn final_code(e: &Error) -> Option<KafkaCode> {
    e.kafka_code().filter(|_| !e.is_retriable())
}
