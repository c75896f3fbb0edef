//! Finding positions for partitions that have none: the group's committed offset first, then
//! `auto.offset.reset` (or an explicit `seek_to_beginning`/`seek_to_end`) through ListOffsets.
//! Run by the fetcher task, one look-up of each kind at a time, each covering every partition
//! waiting for one (Java's `updateFetchPositions` and `OffsetFetcher.resetPositionsIfNeeded`).

use std::collections::HashMap;
use std::sync::Arc;

use futures::future::BoxFuture;
use futures::stream::FuturesUnordered;
use futures::{FutureExt, StreamExt};
use tokio::time::Instant;

use super::config::ConsumerConfig;
use super::group::{Committed, GroupClient};
use super::subscription::{Fetchable, Subscriptions};
use crate::cluster::offsets::{list_offsets, ListedOffset, OffsetSpec};
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
    Reset {
        entries: Vec<Fetchable>,
        result: Result<HashMap<TopicPartition, ListedOffset>>,
    },
}

/// The look-ups in flight; see the [module docs](self).
pub(crate) struct PositionLookups {
    config: Arc<ConsumerConfig>,
    cluster: Cluster,
    group: Option<GroupClient>,
    in_flight: FuturesUnordered<BoxFuture<'static, Lookup>>,
    committed_busy: bool,
    reset_busy: bool,
    failures: u32,
    retry_at: Option<Instant>,
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
            reset_busy: false,
            failures: 0,
            retry_at: None,
            retry,
        }
    }

    /// Starts look-ups for partitions waiting for a position, unless they are running or
    /// backing off after a failure.
    pub(crate) fn start(&mut self, subs: &Subscriptions) {
        if self.retry_at.is_some_and(|at| at > Instant::now()) {
            return;
        }
        let (committed, reset) = subs.needing_positions();
        if !committed.is_empty() && !self.committed_busy {
            match self.group.clone() {
                None => {
                    for (tp, epoch) in &committed {
                        subs.committed_found(tp, *epoch, None, self.config.auto_offset_reset);
                    }
                }
                Some(group) => {
                    self.committed_busy = true;
                    let timeout = self.config.client.default_api_timeout;
                    let partitions: Vec<TopicPartition> =
                        committed.iter().map(|(tp, _)| tp.clone()).collect();
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
            }
        }
        if !reset.is_empty() && !self.reset_busy {
            self.reset_busy = true;
            let cluster = self.cluster.clone();
            let isolation = self.config.isolation_level;
            let specs: HashMap<TopicPartition, OffsetSpec> = reset
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
            self.in_flight.push(
                async move {
                    let result = list_offsets(&cluster, &specs, isolation).await;
                    Lookup::Reset {
                        entries: reset,
                        result,
                    }
                }
                .boxed(),
            );
        }
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
        self.retry_at.filter(|at| *at > now)
    }

    pub(crate) fn apply(&mut self, lookup: Lookup, subs: &Subscriptions) {
        let ok = match lookup {
            Lookup::Committed { entries, result } => {
                self.committed_busy = false;
                match result {
                    Ok(found) => {
                        for (tp, epoch) in entries {
                            let committed = found.get(&tp).and_then(Option::as_ref);
                            if let Some(c) = committed {
                                tracing::debug!(topic = %tp.topic, partition = tp.partition, offset = c.offset, "starting at the committed offset");
                            }
                            subs.committed_found(
                                &tp,
                                epoch,
                                committed,
                                self.config.auto_offset_reset,
                            );
                        }
                        true
                    }
                    Err(e) => match final_code(&e) {
                        // Retrying cannot help (group authorization, say): the application
                        // must hear of it from poll, as Java's poll throws it.
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
                }
            }
            Lookup::Reset { entries, result } => {
                self.reset_busy = false;
                match result {
                    Ok(found) => {
                        let mut all = true;
                        for f in entries {
                            match found.get(&f.tp).and_then(|l| l.offset) {
                                Some(offset) => subs.reset_done(&f.tp, f.epoch, offset),
                                None => all = false,
                            }
                        }
                        all
                    }
                    Err(e) => match final_code(&e) {
                        Some(code) => {
                            tracing::warn!(error = %e, "looking up reset offsets failed");
                            for f in &entries {
                                subs.fail(&f.tp, f.epoch, code);
                            }
                            true
                        }
                        None => {
                            tracing::warn!(error = %e, "looking up reset offsets failed; retrying");
                            false
                        }
                    },
                }
            }
        };
        if ok {
            self.failures = 0;
            self.retry_at = None;
        } else {
            self.failures += 1;
            self.retry_at = Some(Instant::now() + self.retry.delay(self.failures));
        }
    }
}

/// The Kafka code of an error that retrying will not cure; `None` for retriable ones (lost
/// connections, timeouts, leader changes, a topic not yet in the metadata).
fn final_code(e: &Error) -> Option<KafkaCode> {
    e.kafka_code().filter(|_| !e.is_retriable())
}
