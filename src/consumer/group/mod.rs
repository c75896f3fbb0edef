//! Consumer-group membership: one background task per consumer owns the group state, the
//! application's calls reach it through channels.
//!
//! ```text
//!  Consumer (application task)                    group task (classic.rs)
//!  ─────────────────────────────                  ───────────────────────────────────────
//!  subscribe / commit / committed, ──Command──▶   FindCoordinator, JoinGroup, SyncGroup,
//!  poll()'s auto-commit            ◀─oneshot──    Heartbeat, LeaveGroup, OffsetCommit,
//!  poll(): runs the rebalance      ◀─GroupEvent─  OffsetFetch; max.poll.interval.ms
//!          listener, then acks     ──ack──────▶   watchdog
//! ```
//!
//! Rebalance callbacks run inside the application's `poll`, as in the Java client, so a
//! listener can commit offsets and seek with the consumer it is given; `poll` also applies
//! the assignment change itself (adds the new partitions right before the assigned callback,
//! drops revoked ones right after theirs), so the application never holds a partition its
//! listener has not heard of. The task waits for a callback's acknowledgement before moving
//! on (joining after revoking, rejoining after a cooperative revocation), and keeps
//! heartbeating while it waits.
//!
//! Every event carries the generation and the subscription session it was made for. A
//! revocation whose generation is no longer current is a loss; an event of an earlier
//! session (queued before `unsubscribe`) is dropped, since `unsubscribe` already revoked
//! everything and the partitions of the next subscription may carry the same names.
//!
//! Only the classic protocol exists today ([`GroupProtocol::Classic`]). A KIP-848
//! implementation would be a second task type speaking ConsumerGroupHeartbeat behind the same
//! [`Command`] and [`GroupEvent`] interface.
//!
//! [`GroupProtocol::Classic`]: super::GroupProtocol::Classic

mod classic;
mod join;
pub(crate) mod requests;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, Notify};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::config::ConsumerConfig;
use super::record::OffsetAndMetadata;
use super::subscription::Subscriptions;
use crate::cluster::Cluster;
use crate::config::Backoff;
use crate::error::{Error, ErrorContext, KafkaCode, Result};
use crate::types::TopicPartition;

/// Depth of the command queue; callers wait when it is full.
const COMMAND_QUEUE: usize = 64;
/// Depth of the event queue. The task never has more than a few events unacknowledged.
const EVENT_QUEUE: usize = 8;

/// What the application asks of the group task.
pub(crate) enum Command {
    /// The subscription changed: rejoin with it.
    SubscriptionChanged,
    /// Auto-commit offsets (one attempt, no answer).
    AutoCommit {
        offsets: HashMap<TopicPartition, OffsetAndMetadata>,
    },
    /// Commit offsets (one attempt).
    Commit {
        offsets: HashMap<TopicPartition, OffsetAndMetadata>,
        reply: oneshot::Sender<Result<()>>,
    },
    /// Read committed offsets (one attempt).
    FetchCommitted {
        partitions: Vec<TopicPartition>,
        reply: oneshot::Sender<Result<Committed>>,
    },
    /// Leave the group (after the application ran its revocation callback), unless the
    /// application started a new subscription `session` since.
    Leave {
        done: oneshot::Sender<()>,
        session: u64,
    },
}

/// Committed offsets by partition; `None` where the group has none.
pub(crate) type Committed = HashMap<TopicPartition, Option<OffsetAndMetadata>>;

/// A rebalance callback for the application's next poll.
#[derive(Debug)]
pub(crate) struct GroupEvent {
    pub(crate) kind: EventKind,
    pub(crate) partitions: Vec<TopicPartition>,
    /// The generation the event belongs to; a revocation whose generation is no longer
    /// current is a loss.
    pub(crate) generation: i32,
    /// The subscription session the event belongs to; poll drops events of an earlier one
    /// (the application unsubscribed after they were queued).
    pub(crate) session: u64,
    pub(crate) done: oneshot::Sender<()>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum EventKind {
    Revoked,
    Lost,
    Assigned,
}

/// State the task publishes for the application side.
#[derive(Debug)]
pub(crate) struct GroupShared {
    /// The current generation while the member is in the group, else -1.
    generation: AtomicI32,
    /// Milliseconds since `start` at the application's last poll.
    last_poll_ms: AtomicU64,
    start: Instant,
    /// Wakes the task when the application polls, while it waits for that.
    pub(crate) polled: Notify,
    want_poll: AtomicBool,
    /// The subscription changed since the task last looked (set even when the command
    /// queue is full, so a change is never missed).
    pub(crate) subscription_dirty: AtomicBool,
    /// The application is inside `poll`, waiting for records: that counts as polling.
    waiting: AtomicBool,
    /// An error that ends the membership (fenced static member, authorization...).
    fatal: Mutex<Option<(KafkaCode, String)>>,
    /// The member id, for logs and the application.
    member_id: Mutex<String>,
}

impl GroupShared {
    fn new() -> Self {
        GroupShared {
            generation: AtomicI32::new(-1),
            last_poll_ms: AtomicU64::new(0),
            start: Instant::now(),
            polled: Notify::new(),
            want_poll: AtomicBool::new(false),
            subscription_dirty: AtomicBool::new(false),
            waiting: AtomicBool::new(false),
            fatal: Mutex::new(None),
            member_id: Mutex::new(String::new()),
        }
    }

    pub(crate) fn generation(&self) -> i32 {
        self.generation.load(Ordering::Acquire)
    }

    fn set_generation(&self, generation: i32, member_id: &str) {
        self.generation.store(generation, Ordering::Release);
        *self.member_id.lock().unwrap_or_else(|e| e.into_inner()) = member_id.to_owned();
    }

    pub(crate) fn member_id(&self) -> String {
        self.member_id
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The application asks for records: resets the `max.poll.interval.ms` clock.
    pub(crate) fn mark_polled(&self) {
        let ms = self.start.elapsed().as_millis() as u64;
        self.last_poll_ms.store(ms, Ordering::Release);
        if self.want_poll.load(Ordering::Acquire) {
            self.polled.notify_one();
        }
    }

    /// Whether the task wants to be woken by the next poll.
    fn want_poll(&self, want: bool) {
        self.want_poll.store(want, Ordering::Release);
    }

    /// When the application last polled; now while it waits inside a poll (as in Java, whose
    /// poll loop keeps resetting the poll timer while it waits for data).
    fn last_poll(&self) -> Instant {
        if self.waiting.load(Ordering::Acquire) {
            return Instant::now();
        }
        self.start + Duration::from_millis(self.last_poll_ms.load(Ordering::Acquire))
    }

    /// Marks the application as waiting inside a poll until the guard drops.
    pub(crate) fn waiting(&self) -> WaitingGuard<'_> {
        self.waiting.store(true, Ordering::Release);
        WaitingGuard(self)
    }

    fn set_fatal(&self, code: KafkaCode, message: String) {
        *self.fatal.lock().unwrap_or_else(|e| e.into_inner()) = Some((code, message));
    }

    /// The error that ended the membership, if one did.
    pub(crate) fn fatal(&self, group: &str) -> Option<Error> {
        let fatal = self.fatal.lock().unwrap_or_else(|e| e.into_inner());
        fatal.as_ref().map(|(code, message)| Error::Broker {
            code: *code,
            context: ErrorContext::default(),
            message: Some(format!("group {group}: {message}")),
        })
    }
}

/// Clears [`GroupShared::waiting`] (and counts as a poll) when the wait ends or is dropped.
pub(crate) struct WaitingGuard<'a>(&'a GroupShared);

impl Drop for WaitingGuard<'_> {
    fn drop(&mut self) {
        let ms = self.0.start.elapsed().as_millis() as u64;
        self.0.last_poll_ms.store(ms, Ordering::Release);
        self.0.waiting.store(false, Ordering::Release);
    }
}

/// The owner of the group task: dropping it stops the task.
#[derive(Debug)]
pub(crate) struct GroupHandle {
    pub(crate) client: GroupClient,
    task: JoinHandle<()>,
}

impl Drop for GroupHandle {
    fn drop(&mut self) {
        // Dropping the consumer without `close` is a hard stop: no LeaveGroup, the group
        // notices after session.timeout.ms (the documented behaviour of `Drop for Consumer`).
        self.task.abort();
    }
}

/// A cheap handle for talking to the group task (the consumer and its fetcher hold one).
#[derive(Clone, Debug)]
pub(crate) struct GroupClient {
    commands: mpsc::Sender<Command>,
    pub(crate) shared: Arc<GroupShared>,
    group_id: String,
    retry: Backoff,
}

impl GroupHandle {
    /// Starts the group task. Returns the handle and the receiver of rebalance events.
    pub(crate) fn start(
        config: Arc<ConsumerConfig>,
        cluster: Cluster,
        subs: Arc<Subscriptions>,
    ) -> Result<(Self, mpsc::Receiver<GroupEvent>)> {
        let group_id = config
            .group_id
            .clone()
            .ok_or_else(|| no_group("group membership"))?;
        let (commands_tx, commands_rx) = mpsc::channel(COMMAND_QUEUE);
        let (events_tx, events_rx) = mpsc::channel(EVENT_QUEUE);
        let shared = Arc::new(GroupShared::new());
        shared.mark_polled();
        let retry = Backoff::new(config.client.retry_backoff, config.client.retry_backoff_max);
        let task = classic::ClassicGroup::new(
            config,
            cluster,
            subs,
            shared.clone(),
            commands_rx,
            events_tx,
        );
        let task = tokio::spawn(task.run());
        let client = GroupClient {
            commands: commands_tx,
            shared,
            group_id,
            retry,
        };
        Ok((GroupHandle { client, task }, events_rx))
    }
}

impl GroupClient {
    pub(crate) fn group_id(&self) -> &str {
        &self.group_id
    }

    async fn send(&self, command: Command) -> Result<()> {
        self.commands
            .send(command)
            .await
            .map_err(|_| Error::Closed(format!("group task of {} ended", self.group_id)))
    }

    /// Tells the task the subscription changed.
    pub(crate) fn subscription_changed(&self) {
        self.shared
            .subscription_dirty
            .store(true, Ordering::Release);
        // A full queue already holds work that wakes the task, which then sees the flag.
        let _ = self.commands.try_send(Command::SubscriptionChanged);
    }

    /// Starts one commit attempt now and returns its result receiver.
    pub(crate) fn commit_now(
        &self,
        offsets: HashMap<TopicPartition, OffsetAndMetadata>,
    ) -> Result<oneshot::Receiver<Result<()>>> {
        let (reply, rx) = oneshot::channel();
        self.commands
            .try_send(Command::Commit { offsets, reply })
            .map_err(|e| match e {
                mpsc::error::TrySendError::Full(_) => Error::InvalidArgument(format!(
                    "too many commits pending for group {} ({COMMAND_QUEUE}); await some",
                    self.group_id
                )),
                mpsc::error::TrySendError::Closed(_) => {
                    Error::Closed(format!("group task of {} ended", self.group_id))
                }
            })?;
        Ok(rx)
    }

    /// Hands an auto-commit to the task, which sends it in order after every commit issued
    /// before it. A full command queue skips it: the next one commits newer positions.
    pub(crate) fn auto_commit(&self, offsets: HashMap<TopicPartition, OffsetAndMetadata>) {
        if offsets.is_empty() {
            return;
        }
        if let Err(e) = self.commands.try_send(Command::AutoCommit { offsets }) {
            tracing::debug!(group = %self.group_id, "auto-commit skipped: {e}");
        }
    }

    /// Commits, retrying retriable errors until `timeout` (Java's `commitSync`).
    pub(crate) async fn commit(
        &self,
        offsets: HashMap<TopicPartition, OffsetAndMetadata>,
        timeout: Duration,
    ) -> Result<()> {
        if offsets.is_empty() {
            return Ok(());
        }
        let offsets = Arc::new(offsets);
        self.retrying("OffsetCommit", timeout, || {
            let offsets = (*offsets).clone();
            async move {
                let (reply, rx) = oneshot::channel();
                self.send(Command::Commit { offsets, reply }).await?;
                rx.await.unwrap_or_else(|_| Err(self.ended()))
            }
        })
        .await
    }

    /// Reads committed offsets, retrying retriable errors until `timeout`.
    pub(crate) async fn committed(
        &self,
        partitions: Vec<TopicPartition>,
        timeout: Duration,
    ) -> Result<Committed> {
        if partitions.is_empty() {
            return Ok(HashMap::new());
        }
        self.retrying("OffsetFetch", timeout, || {
            let partitions = partitions.clone();
            async move {
                let (reply, rx) = oneshot::channel();
                self.send(Command::FetchCommitted { partitions, reply })
                    .await?;
                rx.await.unwrap_or_else(|_| Err(self.ended()))
            }
        })
        .await
    }

    /// Leaves the group and waits (up to `timeout`) for the LeaveGroup to be answered.
    ///
    /// `prepare` runs once the command has room in the queue, and the command is sent right
    /// after it with no `.await` in between, so a caller's state change in `prepare` (the
    /// end of the subscription) is never separated from its Leave by a cancellation. It
    /// returns the subscription session the Leave is for, and runs (without a Leave) also
    /// when the task is gone or the queue stays full for `timeout`.
    pub(crate) async fn leave(&self, timeout: Duration, prepare: impl FnOnce() -> u64) {
        let deadline = Instant::now() + timeout;
        let permit = match tokio::time::timeout_at(deadline, self.commands.reserve()).await {
            Ok(Ok(permit)) => permit,
            Ok(Err(_)) => {
                prepare();
                return;
            }
            Err(_) => {
                prepare();
                tracing::warn!(group = %self.group_id, "LeaveGroup not sent within {timeout:?}");
                return;
            }
        };
        let (done, rx) = oneshot::channel();
        let session = prepare();
        permit.send(Command::Leave { done, session });
        if tokio::time::timeout_at(deadline, rx).await.is_err() {
            tracing::warn!(group = %self.group_id, "LeaveGroup not answered within {timeout:?}");
        }
    }

    fn ended(&self) -> Error {
        Error::Closed(format!("group task of {} ended", self.group_id))
    }

    async fn retrying<T, F, Fut>(&self, what: &str, timeout: Duration, mut attempt: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T>>,
    {
        let deadline = Instant::now() + timeout;
        let mut attempts = 0;
        loop {
            let result = tokio::time::timeout_at(deadline, attempt()).await;
            let err = match result {
                Ok(Ok(v)) => return Ok(v),
                Ok(Err(e)) if !e.is_retriable() => return Err(e),
                Ok(Err(e)) => e,
                Err(_) => {
                    return Err(Error::Timeout {
                        what: format!("{what} for group {}", self.group_id),
                        after: timeout,
                    })
                }
            };
            attempts += 1;
            let pause = self.retry.delay(attempts);
            if Instant::now() + pause >= deadline {
                return Err(Error::Timeout {
                    what: format!("{what} for group {} (last error: {err})", self.group_id),
                    after: timeout,
                });
            }
            tracing::debug!(group = %self.group_id, error = %err, "{what} failed, retrying");
            tokio::time::sleep(pause).await;
        }
    }
}

/// The error of a group-only call on a consumer without `group.id`.
pub(crate) fn no_group(what: &str) -> Error {
    Error::config(
        "group.id",
        "",
        format!("{what} needs a group.id; without one use assign() and seek()"),
    )
}
