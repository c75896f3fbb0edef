//! The classic group protocol's member state machine, run as one task per consumer.
//!
//! ```text
//!            ┌──────── rejoin needed ◀──── heartbeat: REBALANCE_IN_PROGRESS, subscription
//!            ▼                              or (leader) partition counts changed
//!   Unjoined/Stable ──prepare──▶ [revoke callback] ──▶ JoinGroup ──▶ Completing ──SyncGroup──▶ Stable
//!        ▲  (eager: all; cooperative: unsubscribed topics;   (leader assigns)      │
//!        │   generation lost: on_partitions_lost)                                  ▼
//!        └─── cooperative: revoked partitions ◀── [revoke callback] ◀── assignment applied
//! ```
//!
//! Everything the task waits for (coordinator look-up, join, sync, heartbeat, commits, offset
//! fetches, the application's acknowledgement of a callback) is a future in one set or a
//! receiver polled by the loop, so heartbeats continue while anything else is pending. The
//! error handling follows the Java `AbstractCoordinator`/`ConsumerCoordinator`: coordinator
//! errors rediscover it, `UNKNOWN_MEMBER_ID`/`ILLEGAL_GENERATION` reset the generation (the
//! partitions are then lost), `FENCED_INSTANCE_ID` and authorization errors are fatal.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use futures::future::BoxFuture;
use futures::stream::FuturesUnordered;
use futures::{FutureExt, StreamExt};
use kafka_protocol::messages::{
    HeartbeatResponse, JoinGroupResponse, LeaveGroupRequest, OffsetCommitResponse,
    OffsetFetchResponse,
};
use tokio::sync::{mpsc, oneshot};
use tokio::time::{sleep_until, Instant};
use tracing::Instrument;

mod commit;
mod heartbeat;
mod rebalance;

use super::join::{Generation, Synced};
use super::requests::{self, Coordinator};
use super::{Command, Committed, GroupEvent, GroupShared};
use crate::cluster::Cluster;
use crate::config::Backoff;
use crate::consumer::assignor::RebalanceProtocol;
use crate::consumer::config::ConsumerConfig;
use crate::consumer::record::OffsetAndMetadata;
use crate::consumer::subscription::Subscriptions;
use crate::error::{Error, KafkaCode, Result};
use crate::types::TopicPartition;

/// The shortest sleep of the loop: a deadline that just passed is acted on by `drive`, so a
/// wake-up at it can only repeat once its state changed; this floor keeps a missed case from
/// spinning.
const MIN_WAKE: std::time::Duration = std::time::Duration::from_millis(1);

/// Java's `MemberState`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum MemberState {
    Unjoined,
    Preparing,
    Completing,
    Stable,
}

/// What the rebalance sequence waits for.
enum Phase {
    Idle,
    /// The application runs a revocation or loss callback; then `then`.
    AwaitRevoke {
        ack: oneshot::Receiver<()>,
        then: Then,
    },
    Joining,
    Syncing,
    /// The application has not yet seen its new assignment; no new rebalance before it has.
    AwaitAssigned {
        ack: oneshot::Receiver<()>,
    },
}

enum Then {
    Join,
    Assign(Vec<TopicPartition>),
}

/// A finished request of the task.
enum Done {
    Found(Result<Coordinator>),
    Joined {
        sent: Generation,
        result: Result<JoinGroupResponse>,
    },
    Synced {
        sent: Generation,
        result: Result<Synced>,
    },
    Heartbeat {
        sent: Generation,
        at: Instant,
        result: Result<HeartbeatResponse>,
    },
    Committed {
        sent: Generation,
        offsets: HashMap<TopicPartition, OffsetAndMetadata>,
        reply: Option<oneshot::Sender<Result<()>>>,
        result: Result<OffsetCommitResponse>,
        broker: String,
    },
    Fetched {
        reply: oneshot::Sender<Result<Committed>>,
        version: i16,
        result: Result<OffsetFetchResponse>,
        broker: String,
    },
    Left {
        done: Option<oneshot::Sender<()>>,
    },
}

pub(super) struct ClassicGroup {
    config: Arc<ConsumerConfig>,
    group: String,
    cluster: Cluster,
    subs: Arc<Subscriptions>,
    shared: Arc<GroupShared>,
    commands: mpsc::Receiver<Command>,
    events: mpsc::Sender<GroupEvent>,
    retry: Backoff,
    protocol: RebalanceProtocol,

    coordinator: Option<Coordinator>,
    finding: bool,
    find_attempts: u32,
    find_after: Instant,

    generation: Generation,
    state: MemberState,
    rejoin: Option<String>,
    needs_join_prepare: bool,
    join_attempts: u32,
    join_after: Instant,
    joined_topics: Option<BTreeSet<String>>,
    leader_snapshot: Option<BTreeMap<String, i32>>,
    phase: Phase,
    fatal: bool,

    hb_in_flight: bool,
    hb_next: Instant,
    hb_last_ok: Instant,
    hb_failures: u32,

    auto_commit_next: Option<Instant>,
    auto_commit_in_flight: bool,
    auto_committed: HashMap<TopicPartition, i64>,

    poll_expired_at: Option<Instant>,
    parked: Vec<Command>,
    in_flight: FuturesUnordered<BoxFuture<'static, Done>>,
}

impl ClassicGroup {
    pub(super) fn new(
        config: Arc<ConsumerConfig>,
        cluster: Cluster,
        subs: Arc<Subscriptions>,
        shared: Arc<GroupShared>,
        commands: mpsc::Receiver<Command>,
        events: mpsc::Sender<GroupEvent>,
    ) -> Self {
        let now = Instant::now();
        let retry = Backoff::new(config.client.retry_backoff, config.client.retry_backoff_max);
        ClassicGroup {
            group: config.group_id.clone().unwrap_or_default(),
            protocol: config.rebalance_protocol(),
            auto_commit_next: config
                .auto_commit()
                .then(|| now + config.auto_commit_interval),
            config,
            cluster,
            subs,
            shared,
            commands,
            events,
            retry,
            coordinator: None,
            finding: false,
            find_attempts: 0,
            find_after: now,
            generation: Generation::none(),
            state: MemberState::Unjoined,
            rejoin: None,
            needs_join_prepare: true,
            join_attempts: 0,
            join_after: now,
            joined_topics: None,
            leader_snapshot: None,
            phase: Phase::Idle,
            fatal: false,
            hb_in_flight: false,
            hb_next: now,
            hb_last_ok: now,
            hb_failures: 0,
            auto_commit_in_flight: false,
            auto_committed: HashMap::new(),
            poll_expired_at: None,
            parked: Vec::new(),
            in_flight: FuturesUnordered::new(),
        }
    }

    /// Runs until the consumer drops its command sender.
    pub(super) async fn run(mut self) {
        let span = tracing::info_span!("group", group = %self.group);
        async move {
            loop {
                self.drive();
                let wake_at = self.next_wake();
                let ack = match &mut self.phase {
                    Phase::AwaitRevoke { ack, .. } | Phase::AwaitAssigned { ack } => Some(ack),
                    _ => None,
                };
                tokio::select! {
                    command = self.commands.recv() => match command {
                        Some(c) => self.on_command(c),
                        None => return,
                    },
                    Some(done) = self.in_flight.next(), if !self.in_flight.is_empty() => {
                        self.on_done(done)
                    }
                    _ = maybe(ack) => self.on_ack(),
                    _ = sleep_until(wake_at) => {}
                    _ = self.shared.polled.notified() => {}
                }
            }
        }
        .instrument(span)
        .await
    }

    fn subscribed(&self) -> Option<BTreeSet<String>> {
        self.subs.topics().filter(|t| !t.is_empty())
    }

    /// Starts whatever is due: coordinator look-up, parked commands, heartbeats, the poll
    /// watchdog, rebalances, auto-commits.
    fn drive(&mut self) {
        let now = Instant::now();
        let subscribed = self.subscribed();
        let wants_coordinator = subscribed.is_some()
            || !self.parked.is_empty()
            || self.auto_commit_next.is_some_and(|at| at <= now);
        if self.coordinator.is_none()
            && wants_coordinator
            && !self.finding
            && now >= self.find_after
        {
            self.start_find();
        }
        if self.coordinator.is_some() && !self.parked.is_empty() {
            for command in std::mem::take(&mut self.parked) {
                self.on_command(command);
            }
        }
        self.parked.retain(|c| match c {
            Command::Commit { reply, .. } => !reply.is_closed(),
            Command::FetchCommitted { reply, .. } => !reply.is_closed(),
            _ => true,
        });
        if self.fatal {
            return;
        }
        self.check_poll_interval(now, subscribed.is_some());
        let in_group = matches!(self.state, MemberState::Stable | MemberState::Completing);
        if self.coordinator.is_some()
            && in_group
            && now.saturating_duration_since(self.hb_last_ok) > self.config.session_timeout
        {
            self.coordinator_unknown("no heartbeat answer within session.timeout.ms");
        }
        if let Some(coord) = self.coordinator.clone() {
            if in_group && !self.hb_in_flight && now >= self.hb_next {
                self.start_heartbeat(coord);
            }
        }
        if let Some(topics) = &subscribed {
            if self.state == MemberState::Stable && self.rejoin.is_none() {
                if self.joined_topics.as_ref() != Some(topics) {
                    self.request_rejoin("subscription changed");
                } else if self.partition_counts_changed() {
                    self.request_rejoin("partition count of a subscribed topic changed");
                }
            }
            let needs_join = self.state == MemberState::Unjoined || self.rejoin.is_some();
            if needs_join
                && matches!(self.phase, Phase::Idle)
                && self.coordinator.is_some()
                && self.poll_expired_at.is_none()
                && now >= self.join_after
            {
                self.prepare_join();
            }
        }
        self.maybe_auto_commit(now);
    }

    /// The next instant at which `drive` has something to do. Only deadlines that lead to an
    /// action count (a deadline already passed whose action cannot start would make the
    /// loop spin); everything else wakes the task through a command, a finished request,
    /// an acknowledgement or a poll.
    fn next_wake(&self) -> Instant {
        let now = Instant::now();
        let mut at = now + std::time::Duration::from_secs(3600);
        let mut consider = |t: Instant| at = at.min(t.max(now + MIN_WAKE));
        if self.fatal {
            return at;
        }
        let subscribed = self.subscribed().is_some();
        if self.coordinator.is_none() && !self.finding && (subscribed || !self.parked.is_empty()) {
            consider(self.find_after);
        }
        let in_group = matches!(self.state, MemberState::Stable | MemberState::Completing);
        if in_group && self.coordinator.is_some() {
            if !self.hb_in_flight {
                consider(self.hb_next);
            }
            consider(self.hb_last_ok + self.config.session_timeout);
        }
        if self.state != MemberState::Unjoined && subscribed && self.poll_expired_at.is_none() {
            consider(self.shared.last_poll() + self.config.max_poll_interval);
        }
        if self.state == MemberState::Stable && self.leader_snapshot.is_some() {
            consider(now + self.config.heartbeat_interval);
        }
        let needs_join = self.state == MemberState::Unjoined || self.rejoin.is_some();
        if subscribed
            && needs_join
            && matches!(self.phase, Phase::Idle)
            && self.coordinator.is_some()
            && self.poll_expired_at.is_none()
        {
            consider(self.join_after);
        }
        if let Some(t) = self.auto_commit_next {
            consider(t);
        }
        at
    }

    // ---- coordinator -------------------------------------------------------------------

    fn start_find(&mut self) {
        self.finding = true;
        let cluster = self.cluster.clone();
        let group = self.group.clone();
        self.in_flight.push(
            async move { Done::Found(requests::find_coordinator(&cluster, &group).await) }.boxed(),
        );
    }

    fn on_found(&mut self, result: Result<Coordinator>) {
        self.finding = false;
        match result {
            Ok(coord) => {
                tracing::info!(coordinator = coord.id, "discovered group coordinator");
                self.coordinator = Some(coord);
                self.find_attempts = 0;
                // Java resets the session clock on discovery.
                self.hb_last_ok = Instant::now();
            }
            Err(e) if e.kafka_code() == Some(KafkaCode::GROUP_AUTHORIZATION_FAILED) => {
                self.set_fatal(KafkaCode::GROUP_AUTHORIZATION_FAILED, e.to_string());
            }
            Err(e) => {
                self.find_attempts += 1;
                self.find_after = Instant::now() + self.retry.delay(self.find_attempts);
                tracing::debug!(error = %e, "group coordinator look-up failed");
            }
        }
    }

    fn coordinator_unknown(&mut self, cause: &str) {
        if let Some(old) = self.coordinator.take() {
            tracing::info!(
                coordinator = old.id,
                cause,
                "group coordinator unavailable; rediscovering"
            );
            self.find_after = Instant::now();
        }
    }

    fn request_rejoin(&mut self, reason: &str) {
        if self.rejoin.is_none() {
            tracing::info!(reason, "requesting to rejoin the group");
            self.rejoin = Some(reason.to_owned());
        }
    }

    fn reset_generation(&mut self, reason: &str, reset_member_id: bool) {
        tracing::info!(
            reason,
            generation = self.generation.id,
            member = %self.generation.member_id,
            "resetting generation"
        );
        self.state = MemberState::Unjoined;
        self.generation = if reset_member_id {
            Generation::none()
        } else {
            Generation {
                member_id: self.generation.member_id.clone(),
                ..Generation::none()
            }
        };
        self.shared.set_generation(-1, &self.generation.member_id);
        self.needs_join_prepare = true;
        self.leader_snapshot = None;
        self.request_rejoin(reason);
    }

    fn set_fatal(&mut self, code: KafkaCode, message: String) {
        tracing::error!(%code, message, "fatal group error; the consumer can no longer take part");
        self.fatal = true;
        self.shared.set_fatal(code, message);
        self.state = MemberState::Unjoined;
        self.shared.set_generation(-1, &self.generation.member_id);
        let owned = self.subs.assignment();
        self.subs.mark_pending_revocation(&owned);
    }

    fn partition_counts_changed(&self) -> bool {
        let Some(snapshot) = &self.leader_snapshot else {
            return false;
        };
        let metadata = self.cluster.metadata();
        snapshot.iter().any(|(topic, count)| {
            let now = metadata
                .topic(topic)
                .map_or(0, |t| t.partitions.len() as i32);
            now != *count && !(now == 0 && *count > 0 && metadata.topic(topic).is_none())
        })
    }

    // ---- max.poll.interval.ms -------------------------------------------------------------

    fn check_poll_interval(&mut self, now: Instant, subscribed: bool) {
        if let Some(expired_at) = self.poll_expired_at {
            if self.shared.last_poll() > expired_at {
                tracing::info!("consumer polled again after max.poll.interval.ms; rejoining");
                self.poll_expired_at = None;
                self.shared.want_poll(false);
            }
            return;
        }
        let in_group = self.state != MemberState::Unjoined;
        let idle = now.saturating_duration_since(self.shared.last_poll());
        if subscribed && in_group && idle > self.config.max_poll_interval {
            tracing::warn!(
                member = %self.generation.member_id,
                max_poll_interval_ms = self.config.max_poll_interval.as_millis() as u64,
                "consumer poll timeout has expired: the application did not poll within \
                 max.poll.interval.ms, so this member leaves the group and its partitions go to \
                 other members. Process records faster, lower max.poll.records, or raise \
                 max.poll.interval.ms. The consumer rejoins on its next poll."
            );
            self.maybe_leave("consumer poll timeout has expired", None);
            let owned = self.subs.assignment();
            self.subs.mark_pending_revocation(&owned);
            self.poll_expired_at = Some(now);
            self.shared.want_poll(true);
        }
    }

    /// Sends LeaveGroup when this is a dynamic member in the group (Java's `maybeLeaveGroup`),
    /// then resets the generation.
    fn maybe_leave(&mut self, reason: &str, done: Option<oneshot::Sender<()>>) {
        let dynamic = self.config.group_instance_id.is_none();
        let mut done = done;
        if let Some(coord) = self.coordinator.clone() {
            if dynamic
                && self.state != MemberState::Unjoined
                && !self.generation.member_id.is_empty()
            {
                tracing::info!(member = %self.generation.member_id, reason, "leaving the group");
                let req = coord.conn.version::<LeaveGroupRequest>().map(|v| {
                    (
                        v,
                        requests::leave_request(
                            v,
                            &self.group,
                            &self.generation.member_id,
                            None,
                            reason,
                        ),
                    )
                });
                let done_tx = done.take();
                self.in_flight.push(
                    async move {
                        match req {
                            Ok((_, req)) => {
                                if let Err(e) = coord.conn.request(&req).await {
                                    tracing::debug!(error = %e, "LeaveGroup failed");
                                }
                            }
                            Err(e) => tracing::debug!(error = %e, "LeaveGroup not sent"),
                        }
                        Done::Left { done: done_tx }
                    }
                    .boxed(),
                );
            }
        }
        if let Some(done) = done {
            let _ = done.send(());
        }
        self.reset_generation(reason, true);
        self.rejoin = None;
    }

    // ---- commands, commits and offset fetches ----------------------------------------------

    fn on_command(&mut self, command: Command) {
        match command {
            Command::SubscriptionChanged => {
                if let Some(topics) = self.subscribed() {
                    self.cluster.track(topics);
                }
            }
            Command::Leave { done } => {
                self.maybe_leave("the consumer is leaving the group", Some(done));
                self.phase = Phase::Idle;
                self.joined_topics = None;
                self.rejoin = None;
            }
            Command::Commit { offsets, reply } => {
                if let Some(e) = self.fatal_error() {
                    let _ = reply.send(Err(e));
                } else if self.coordinator.is_none() {
                    self.parked.push(Command::Commit { offsets, reply });
                } else {
                    self.start_commit(offsets, Some(reply));
                }
            }
            Command::FetchCommitted { partitions, reply } => {
                if let Some(e) = self.fatal_error() {
                    let _ = reply.send(Err(e));
                } else if let Some(coord) = self.coordinator.clone() {
                    self.start_offset_fetch(coord, partitions, reply);
                } else {
                    self.parked
                        .push(Command::FetchCommitted { partitions, reply });
                }
            }
        }
    }

    fn fatal_error(&self) -> Option<Error> {
        self.fatal.then(|| self.shared.fatal(&self.group)).flatten()
    }

    fn on_done(&mut self, done: Done) {
        match done {
            Done::Found(result) => self.on_found(result),
            Done::Joined { sent, result } => self.on_joined(sent, result),
            Done::Synced { sent, result } => self.on_synced(sent, result),
            Done::Heartbeat { sent, at, result } => self.on_heartbeat(sent, at, result),
            Done::Committed {
                sent,
                offsets,
                reply,
                result,
                broker,
            } => self.on_committed(sent, offsets, reply, result, broker),
            Done::Fetched {
                reply,
                version,
                result,
                broker,
            } => self.on_fetched(reply, version, result, broker),
            Done::Left { done } => {
                if let Some(done) = done {
                    let _ = done.send(());
                }
            }
        }
    }
}

/// Awaits an optional receiver; pending forever when there is none.
async fn maybe(ack: Option<&mut oneshot::Receiver<()>>) {
    match ack {
        Some(ack) => {
            let _ = ack.await;
        }
        None => std::future::pending().await,
    }
}
