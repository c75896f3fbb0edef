//! The classic group protocol's member state machine, run as one task per consumer.
//!
//! ```text
//!            ┌──────── rejoin needed ◀──── heartbeat: REBALANCE_IN_PROGRESS, subscription
//!            │                              (or a pattern's matches, pattern.rs) or
//!            ▼                              (leader) partition counts changed
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
use futures::StreamExt;
use kafka_protocol::messages::{
    HeartbeatResponse, JoinGroupResponse, OffsetCommitResponse, OffsetFetchResponse,
};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::{sleep_until, Instant};
use tracing::Instrument;

mod commit;
mod heartbeat;
mod membership;
mod pattern;
mod rebalance;

use super::join::{Generation, Synced};
use super::requests::Coordinator;
use super::{Command, Committed, GroupEvent, GroupShared};
use crate::cluster::Cluster;
use crate::config::Backoff;
use crate::consumer::assignor::RebalanceProtocol;
use crate::consumer::config::ConsumerConfig;
use crate::consumer::record::OffsetAndMetadata;
use crate::consumer::subscription::Subscriptions;
use crate::error::{Error, Result};
use crate::types::TopicPartition;

/// The shortest sleep of the loop: a deadline that just passed is acted on by `drive`, so a
/// wake-up at it can only repeat once its state changed; this floor keeps a missed case from
/// spinning.
const MIN_WAKE: std::time::Duration = std::time::Duration::from_millis(1);

/// The most requests (commits, offset fetches, group requests) the task has in flight.
const MAX_IN_FLIGHT: usize = 64;

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
    /// Hand these new partitions (of this subscription session) to the application.
    Assign {
        added: Vec<TopicPartition>,
        session: u64,
    },
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
    /// A listing of all topics for the subscribed pattern.
    Listed {
        result: Result<()>,
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
    /// Set once the application asked to leave (close, unsubscribe): no JoinGroup may follow
    /// until the subscription changes again, or a closing consumer would rejoin under a new
    /// member id and linger in the group until its session times out.
    left: bool,
    needs_join_prepare: bool,
    join_attempts: u32,
    join_after: Instant,
    joined_topics: Option<BTreeSet<String>>,
    /// The subscription session (see `Subscriptions`) the last JoinGroup was sent for.
    join_session: u64,
    /// The subscription session last seen: a new one while still in the group means the
    /// application subscribed again before the Leave of the last one was done.
    session: u64,
    leader_snapshot: Option<BTreeMap<String, i32>>,
    pattern: pattern::PatternState,
    phase: Phase,
    fatal: bool,

    hb_in_flight: bool,
    hb_next: Instant,
    hb_last_ok: Instant,
    hb_failures: u32,

    /// Offsets the group holds from this member's last successful commits (this generation),
    /// so an auto-commit skips partitions whose offset did not move.
    last_committed: HashMap<TopicPartition, i64>,

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
            pattern: pattern::PatternState::new(cluster.refreshes()),
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
            left: false,
            needs_join_prepare: true,
            join_attempts: 0,
            join_after: now,
            joined_topics: None,
            join_session: 0,
            session: 0,
            leader_snapshot: None,
            phase: Phase::Idle,
            fatal: false,
            hb_in_flight: false,
            hb_next: now,
            hb_last_ok: now,
            hb_failures: 0,
            last_committed: HashMap::new(),
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
                let watch_metadata = self.subs.pattern().is_some();
                let ack = match &mut self.phase {
                    Phase::AwaitRevoke { ack, .. } | Phase::AwaitAssigned { ack } => Some(ack),
                    _ => None,
                };
                tokio::select! {
                    // Commands wait in their bounded queue while many requests are in flight
                    // (a commit_async loop against a slow coordinator), so neither grows
                    // without limit.
                    command = self.commands.recv(), if self.in_flight.len() < MAX_IN_FLIGHT => match command {
                        Some(c) => self.on_command(c),
                        None => return,
                    },
                    Some(done) = self.in_flight.next(), if !self.in_flight.is_empty() => {
                        self.on_done(done)
                    }
                    _ = maybe(ack) => self.on_ack(),
                    // A pattern is matched again against every new metadata snapshot.
                    _ = changed(&mut self.pattern.refreshes), if watch_metadata => {}
                    _ = sleep_until(wake_at) => {}
                    _ = self.shared.polled.notified() => {}
                }
            }
        }
        .instrument(span)
        .await
    }

    /// The subscribed topics. Empty only for a pattern that matches nothing yet: as Java,
    /// such a member joins the group all the same.
    fn subscribed(&self) -> Option<BTreeSet<String>> {
        self.subs.topics()
    }

    /// Starts whatever is due: coordinator look-up, parked commands, heartbeats, the poll
    /// watchdog, rebalances.
    fn drive(&mut self) {
        let now = Instant::now();
        if self
            .shared
            .subscription_dirty
            .swap(false, std::sync::atomic::Ordering::AcqRel)
        {
            // A new subscription after a leave (unsubscribe, then subscribe) may join again.
            self.left = false;
        }
        let session = self.subs.session();
        if session != self.session {
            self.session = session;
            if self.subs.topics().is_some() && self.state != MemberState::Unjoined {
                // Subscribed again while the Leave of the last subscription was not done:
                // this member's partitions went with that subscription, so rejoin for the
                // group to assign afresh.
                self.request_rejoin("subscribed again after unsubscribe");
            }
        }
        self.update_pattern_subscription();
        let subscribed = self.subscribed();
        let wants_coordinator = subscribed.is_some() || !self.parked.is_empty();
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
            let needs_join =
                !self.left && (self.state == MemberState::Unjoined || self.rejoin.is_some());
            if needs_join
                && matches!(self.phase, Phase::Idle)
                && self.coordinator.is_some()
                && self.poll_expired_at.is_none()
                && now >= self.join_after
                && self.pattern_listed(now)
            {
                self.prepare_join();
            }
        }
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
        let needs_join =
            !self.left && (self.state == MemberState::Unjoined || self.rejoin.is_some());
        if subscribed
            && needs_join
            && matches!(self.phase, Phase::Idle)
            && self.coordinator.is_some()
            && self.poll_expired_at.is_none()
        {
            if let Some(join_at) = self.pattern_join_at() {
                consider(join_at);
            }
        }
        at
    }

    // ---- commands, commits and offset fetches ----------------------------------------------

    fn on_command(&mut self, command: Command) {
        match command {
            Command::SubscriptionChanged => {
                if let Some(topics) = self.subscribed() {
                    self.cluster.track(topics);
                }
            }
            Command::Leave { done, session } if session != self.subs.session() => {
                // Sent by an unsubscribe whose caller gave up waiting and subscribed again:
                // the new subscription stands (`drive` rejoins for it).
                tracing::debug!("ignoring a Leave of an earlier subscription");
                let _ = done.send(());
            }
            Command::Leave { done, .. } => {
                self.maybe_leave("the consumer is leaving the group", Some(done));
                // Subscription changes made before the leave are settled by it; only a later
                // one (subscribe after unsubscribe) may end the `left` state.
                self.left = true;
                self.session = self.subs.session();
                self.shared
                    .subscription_dirty
                    .store(false, std::sync::atomic::Ordering::Release);
                self.phase = Phase::Idle;
                self.joined_topics = None;
                self.rejoin = None;
            }
            Command::AutoCommit { offsets } => self.auto_commit(offsets),
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
            Done::Listed { result } => self.on_listed(result),
        }
    }
}

/// Awaits the next metadata snapshot; pending forever if no more can come.
async fn changed(refreshes: &mut watch::Receiver<u64>) {
    if refreshes.changed().await.is_err() {
        std::future::pending::<()>().await;
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
