//! The fetcher task: one Fetch in flight per broker leading assigned partitions, responses
//! turned into [`CompletedFetch`]es in the [`FetchBuffer`].
//!
//! ```text
//!  Subscriptions ──fetchable partitions──▶ group by leader ──▶ FetchSession::build ──▶ Fetch
//!       ▲   (Ready, not paused, not in flight,     (metadata)     (KIP-227)             │
//!       │    < 2 fetches waiting)                                                      ▼
//!       └── fetch offset += data ◀── CompletedFetch ──▶ FetchBuffer ──▶ poll (drain.rs)
//! ```
//!
//! The fetch offset runs ahead of the application's position, so the next Fetch of a
//! partition is in flight while the application still processes the previous one. A
//! partition with two fetches' worth of data waiting in the buffer is not fetched again, and
//! no Fetch starts while the buffer holds `fetch.buffer.max.bytes`: a slow application stops
//! fetching instead of growing memory. Leader errors refresh metadata and back the partition off for
//! `retry.backoff.ms`; the next Fetch goes to whichever broker then leads it. An
//! `OFFSET_OUT_OF_RANGE` answer counts only while its fetch offset is the application's
//! position: one for a prefetch is stale (see `Subscriptions::out_of_range`).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use futures::stream::FuturesUnordered;
use futures::{FutureExt, StreamExt};
use kafka_protocol::messages::fetch_response::PartitionData;
use kafka_protocol::messages::FetchResponse;
use tokio::sync::oneshot;
use tokio::time::{sleep_until, Instant};
use tracing::Instrument;

use super::buffer::{AbortedTxn, CompletedFetch, FetchBuffer};
use super::config::ConsumerConfig;
use super::drain::next_fetch_offset;
use super::fetch_request::{close_sessions, fetch};
use super::fetch_session::{FetchSession, PartitionFetch, SessionRequest};
use super::positions::PositionLookups;
use super::subscription::{OutOfRange, Subscriptions};
use crate::cluster::{Cluster, ConnClass, IsolationLevel};
use crate::config::Backoff;
use crate::error::{KafkaCode, Result};
use crate::types::TopicPartition;

/// A Fetch sent to one broker, and what it asked for.
struct Sent {
    broker: i32,
    request: SessionRequest,
    /// Every partition the request stands for (incremental requests name only some), with
    /// the partition epoch, fetch offset and leader epoch at send time.
    wanted: HashMap<TopicPartition, (u64, i64, i32)>,
    /// The response, and whether the request used the session (Fetch v7+).
    result: Result<(FetchResponse, bool)>,
}

pub(crate) struct Fetcher {
    config: Arc<ConsumerConfig>,
    cluster: Cluster,
    subs: Arc<Subscriptions>,
    buffer: Arc<FetchBuffer>,
    positions: PositionLookups,
    sessions: HashMap<i32, FetchSession>,
    in_flight: FuturesUnordered<BoxFuture<'static, Sent>>,
    busy: HashSet<i32>,
    in_flight_partitions: HashSet<TopicPartition>,
    broker_failures: HashMap<i32, (u32, Instant)>,
    topic_names: HashMap<String, Arc<str>>,
    /// Partitions whose leader failed them, with that leader and its epoch: not fetched again
    /// until the metadata names another (or `until`, for errors that leave the leader).
    stale_leaders: HashMap<TopicPartition, StaleLeader>,
    retry: Backoff,
    round: usize,
    /// `Consumer::close`: end the fetch sessions, answered by this deadline, then stop.
    close: oneshot::Receiver<Instant>,
}

#[derive(Clone, Copy, Debug)]
struct StaleLeader {
    broker: i32,
    leader_epoch: i32,
    until: Instant,
}

impl Fetcher {
    pub(crate) fn new(
        config: Arc<ConsumerConfig>,
        cluster: Cluster,
        subs: Arc<Subscriptions>,
        buffer: Arc<FetchBuffer>,
        positions: PositionLookups,
        close: oneshot::Receiver<Instant>,
    ) -> Self {
        let retry = Backoff::new(config.client.retry_backoff, config.client.retry_backoff_max);
        Fetcher {
            config,
            cluster,
            subs,
            buffer,
            positions,
            sessions: HashMap::new(),
            in_flight: FuturesUnordered::new(),
            busy: HashSet::new(),
            in_flight_partitions: HashSet::new(),
            broker_failures: HashMap::new(),
            topic_names: HashMap::new(),
            stale_leaders: HashMap::new(),
            retry,
            round: 0,
            close,
        }
    }

    /// Runs until aborted (the consumer owns the task's handle), or until the consumer closes
    /// and the fetch sessions are ended.
    pub(crate) async fn run(mut self) {
        let span = tracing::debug_span!("fetcher");
        async move {
            loop {
                let now = Instant::now();
                self.positions.start(&self.subs);
                let waiting_for_metadata = self.start_fetches(now);
                // Only deadlines still ahead: a passed one was acted on by this round.
                let mut wake = now + Duration::from_secs(3600);
                if let Some(t) = self.positions.next_retry(now) {
                    wake = wake.min(t);
                }
                for (_, at) in self.broker_failures.values() {
                    if *at > now {
                        wake = wake.min(*at);
                    }
                }
                if waiting_for_metadata {
                    // Look at the metadata again soon (a refresh was requested).
                    wake = wake.min(now + self.config.client.retry_backoff);
                }
                tokio::select! {
                    Some(sent) = self.in_flight.next(), if !self.in_flight.is_empty() => {
                        self.on_response(sent)
                    }
                    done = self.positions.next() => self.positions.apply(done, &self.subs),
                    _ = self.subs.changed.notified() => {}
                    _ = self.buffer.room.notified() => {}
                    _ = sleep_until(wake) => {}
                    closing = &mut self.close => {
                        if let Ok(deadline) = closing {
                            self.close(deadline).await;
                        }
                        return;
                    }
                }
            }
        }
        .instrument(span)
        .await
    }

    /// Ends the fetch session of every broker that has one, as Java's fetcher does on close,
    /// so brokers free them now rather than when they expire. Brokers in backoff after a
    /// failure are skipped, as Java skips unreachable nodes.
    async fn close(&mut self, deadline: Instant) {
        let now = Instant::now();
        let mut closing = Vec::new();
        for (&broker, session) in &mut self.sessions {
            let Some(request) = session.close() else {
                continue;
            };
            if self
                .broker_failures
                .get(&broker)
                .is_some_and(|(_, at)| *at > now)
            {
                tracing::debug!(broker, "not closing the fetch session of a failing broker");
                continue;
            }
            closing.push((broker, request));
        }
        close_sessions(&self.cluster, &self.config, closing, deadline).await;
    }

    fn topic_name(&mut self, topic: &str) -> Arc<str> {
        self.topic_names
            .entry(topic.to_owned())
            .or_insert_with(|| Arc::from(topic))
            .clone()
    }

    /// Sends a Fetch to every idle broker that leads fetchable partitions. Returns whether
    /// some partition waits for metadata (no known leader, or the one that failed it).
    fn start_fetches(&mut self, now: Instant) -> bool {
        if !self.buffer.has_room() {
            return false;
        }
        self.stale_leaders.retain(|_, s| s.until > now);
        let buffered: HashSet<TopicPartition> = self.buffer.full_partitions().into_iter().collect();
        let metadata = self.cluster.metadata();
        let mut leaderless = false;
        let mut by_leader: BTreeMap<i32, Vec<(PartitionFetch, u64)>> = BTreeMap::new();
        for f in self.subs.fetchable() {
            if buffered.contains(&f.tp) || self.in_flight_partitions.contains(&f.tp) {
                continue;
            }
            let info = metadata
                .topic(&f.tp.topic)
                .and_then(|t| t.partition(f.tp.partition));
            let Some((leader, leader_epoch)) =
                info.and_then(|p| p.leader.map(|l| (l, p.leader_epoch)))
            else {
                if metadata.topic(&f.tp.topic).is_none() {
                    self.cluster.track([f.tp.topic.clone()]);
                }
                leaderless = true;
                continue;
            };
            if let Some(stale) = self.stale_leaders.get(&f.tp) {
                let same = stale.broker == leader && stale.leader_epoch == leader_epoch;
                if same && now < stale.until {
                    leaderless = true;
                    continue;
                }
                self.stale_leaders.remove(&f.tp);
            }
            by_leader.entry(leader).or_default().push((
                PartitionFetch {
                    tp: f.tp,
                    fetch_offset: f.fetch_offset,
                    leader_epoch,
                    max_bytes: self.config.max_partition_fetch_bytes,
                },
                f.epoch,
            ));
        }
        if leaderless {
            self.cluster.request_refresh();
        }
        self.round = self.round.wrapping_add(1);
        for (broker, mut parts) in by_leader {
            if self.busy.contains(&broker) {
                continue;
            }
            if self
                .broker_failures
                .get(&broker)
                .is_some_and(|(_, at)| *at > now)
            {
                continue;
            }
            // Rotate the order so that a partition whose first batch is too large for its
            // share of the response eventually comes first (the broker always returns the
            // first partition's first batch whole).
            let len = parts.len();
            parts.rotate_left(self.round % len.max(1));
            self.send(broker, parts);
        }
        leaderless
    }

    fn send(&mut self, broker: i32, parts: Vec<(PartitionFetch, u64)>) {
        let wanted: HashMap<TopicPartition, (u64, i64, i32)> = parts
            .iter()
            .map(|(p, epoch)| (p.tp.clone(), (*epoch, p.fetch_offset, p.leader_epoch)))
            .collect();
        let all: Vec<PartitionFetch> = parts.into_iter().map(|(p, _)| p).collect();
        let request = self.sessions.entry(broker).or_default().build(all.clone());
        self.busy.insert(broker);
        self.in_flight_partitions.extend(wanted.keys().cloned());
        let cluster = self.cluster.clone();
        let config = self.config.clone();
        tracing::trace!(
            broker,
            partitions = all.len(),
            full = request.full,
            "sending Fetch"
        );
        self.in_flight.push(
            async move {
                let result =
                    fetch(&cluster, &config, broker, ConnClass::Fetch, &request, all).await;
                Sent {
                    broker,
                    request,
                    wanted,
                    result,
                }
            }
            .boxed(),
        );
    }

    fn on_response(&mut self, sent: Sent) {
        self.busy.remove(&sent.broker);
        for tp in sent.wanted.keys() {
            self.in_flight_partitions.remove(tp);
        }
        let session = self.sessions.entry(sent.broker).or_default();
        let (resp, with_session) = match sent.result {
            Ok(r) => r,
            Err(e) => {
                tracing::debug!(broker = sent.broker, error = %e, "Fetch failed");
                session.close_and_renew();
                self.broker_failed(sent.broker);
                self.cluster.request_refresh();
                return;
            }
        };
        if resp.error_code != 0 {
            let code = KafkaCode::from_code(resp.error_code);
            tracing::debug!(broker = sent.broker, %code, "Fetch refused");
            session.failed(code);
            // A session error is answered by a full request at once; others back off.
            if !matches!(code.code(), 70 | 71) {
                self.broker_failed(sent.broker);
            }
            return;
        }
        if !with_session {
            session.reset();
        } else {
            session.succeeded(&sent.request, resp.session_id);
        }
        self.broker_failures.remove(&sent.broker);
        for topic in resp.responses {
            let name = topic.topic.0.to_string();
            for p in topic.partitions {
                let tp = TopicPartition::new(name.clone(), p.partition_index);
                let Some(&(epoch, fetch_offset, leader_epoch)) = sent.wanted.get(&tp) else {
                    continue;
                };
                let sent_to = StaleLeader {
                    broker: sent.broker,
                    leader_epoch,
                    until: Instant::now() + self.config.client.retry_backoff_max,
                };
                self.on_partition(tp, epoch, fetch_offset, p, sent_to);
            }
        }
    }

    fn broker_failed(&mut self, broker: i32) {
        let failures = self.broker_failures.get(&broker).map_or(0, |(n, _)| *n) + 1;
        let at = Instant::now() + self.retry.delay(failures);
        self.broker_failures.insert(broker, (failures, at));
    }

    fn on_partition(
        &mut self,
        tp: TopicPartition,
        epoch: u64,
        fetch_offset: i64,
        p: PartitionData,
        sent_to: StaleLeader,
    ) {
        let broker = sent_to.broker;
        let code = KafkaCode::from_code(p.error_code);
        match code {
            KafkaCode::NONE => {
                let records = p.records.unwrap_or_default();
                if records.is_empty() || !self.subs.is_current(&tp, epoch) {
                    return;
                }
                let next_offset = match next_fetch_offset(&records) {
                    Ok(Some(next)) => next,
                    Ok(None) => {
                        tracing::debug!(
                            topic = %tp.topic,
                            partition = tp.partition,
                            fetch_offset,
                            bytes = records.len(),
                            "no complete batch in the response; retrying the partition"
                        );
                        return;
                    }
                    // Let `poll` surface the corruption at the right position.
                    Err(_) => fetch_offset,
                };
                let aborted = if self.config.isolation_level == IsolationLevel::ReadCommitted {
                    p.aborted_transactions
                        .unwrap_or_default()
                        .iter()
                        .map(|a| AbortedTxn {
                            producer_id: a.producer_id.0,
                            first_offset: a.first_offset,
                        })
                        .collect()
                } else {
                    Vec::new()
                };
                self.subs.fetched(&tp, epoch, next_offset);
                let topic = self.topic_name(&tp.topic);
                self.buffer.push(CompletedFetch {
                    tp,
                    topic,
                    epoch,
                    fetch_offset,
                    next_offset,
                    records,
                    aborted,
                });
            }
            KafkaCode::OFFSET_OUT_OF_RANGE => {
                let policy = self.config.auto_offset_reset;
                match self.subs.out_of_range(&tp, fetch_offset, policy) {
                    OutOfRange::Stale => tracing::debug!(
                        topic = %tp.topic,
                        partition = tp.partition,
                        fetch_offset,
                        "out-of-range answer for a fetch offset that is no longer the \
                         position; ignored"
                    ),
                    outcome => tracing::info!(
                        topic = %tp.topic,
                        partition = tp.partition,
                        fetch_offset,
                        ?policy,
                        ?outcome,
                        "fetch offset out of range; auto.offset.reset applies"
                    ),
                }
            }
            KafkaCode::TOPIC_AUTHORIZATION_FAILED | KafkaCode::CORRUPT_MESSAGE => {
                tracing::warn!(topic = %tp.topic, partition = tp.partition, broker, %code, "fetch failed");
                self.subs.fail(&tp, epoch, code);
            }
            _ => {
                // NOT_LEADER_OR_FOLLOWER, FENCED_LEADER_EPOCH, UNKNOWN_LEADER_EPOCH,
                // UNKNOWN_TOPIC_OR_PARTITION, KAFKA_STORAGE_ERROR, LEADER_NOT_AVAILABLE,
                // OFFSET_NOT_AVAILABLE...: the leader moved or is not ready; look again.
                tracing::debug!(topic = %tp.topic, partition = tp.partition, broker, %code, "fetch error; refreshing metadata");
                // Fetched again once the metadata names another leader or epoch, or after
                // retry.backoff.max.ms for errors the same leader recovers from.
                self.cluster.request_refresh();
                self.stale_leaders.insert(tp, sent_to);
            }
        }
    }
}
