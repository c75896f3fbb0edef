//! The application's half of a rebalance: `poll` runs the events the group task queues
//! (Java's `onJoinPrepare` and `onJoinComplete` callbacks), applies the assignment change and
//! acknowledges each event so the group task can go on.
//!
//! With auto-commit, a revocation first commits the positions of the partitions it takes
//! away, as Java's `onJoinPrepare` does: asynchronously, retried after retriable errors, and
//! given up after `max.poll.interval.ms` (the rebalance timeout: the group waits no longer
//! for this member to rejoin). `poll` never waits for that commit past its own timeout; it
//! returns (with records of other partitions, if any) and the revocation goes on in a later
//! `poll`, while the revoked partitions stay paused.

use std::collections::HashMap;

use tokio::sync::mpsc::error::TryRecvError;
use tokio::sync::mpsc::Receiver;
use tokio::sync::oneshot;
use tokio::time::{sleep_until, Instant};

use super::group::{EventKind, GroupEvent};
use super::listener::Callback;
use super::record::OffsetAndMetadata;
use super::Consumer;
use crate::config::Backoff;
use crate::error::{Error, Result};
use crate::types::TopicPartition;

/// The auto-commit before a revocation, kept across polls until it is done or given up.
#[derive(Debug)]
pub(crate) struct RevokeCommit {
    /// The revocation it is for.
    generation: i32,
    session: u64,
    /// When the revocation goes on without it (Java's `joinPrepareTimer`).
    give_up_at: Instant,
    /// The attempt in flight, and its answer once it came.
    reply: Option<oneshot::Receiver<Result<()>>>,
    outcome: Option<Result<()>>,
    /// When to try again after a retriable failure.
    retry_at: Option<Instant>,
    attempts: u32,
}

impl RevokeCommit {
    /// Resolves when the commit has news: its answer came, or it is time to retry or to
    /// give up. Pending forever without a commit.
    pub(crate) async fn progress(commit: Option<&mut RevokeCommit>) {
        let Some(c) = commit else {
            return std::future::pending().await;
        };
        let wake = c.retry_at.map_or(c.give_up_at, |t| t.min(c.give_up_at));
        match &mut c.reply {
            Some(reply) if c.outcome.is_none() => tokio::select! {
                answer = reply => {
                    c.outcome = Some(answer.unwrap_or_else(|_| {
                        Err(Error::Closed("consumer group task ended".into()))
                    }));
                }
                _ = sleep_until(wake) => {}
            },
            _ => sleep_until(wake).await,
        }
    }
}

impl Consumer {
    /// Runs queued rebalance events and acknowledges them to the group task. Returns true
    /// when it stopped at a revocation whose auto-commit is not done: the event stays
    /// pending, and `poll` waits for [`RevokeCommit::progress`] (or its own timeout) before
    /// calling again.
    pub(crate) async fn run_events(&mut self) -> bool {
        loop {
            if self.pending_event.is_none() {
                match self.events.as_mut().map(Receiver::try_recv) {
                    Some(Ok(ev)) => self.pending_event = Some(ev),
                    Some(Err(TryRecvError::Disconnected)) => {
                        self.events = None;
                        return false;
                    }
                    _ => return false,
                }
            }
            let Some(ev) = &self.pending_event else {
                return false;
            };
            let (kind, partitions) = (ev.kind, ev.partitions.clone());
            let (generation, session) = (ev.generation, ev.session);
            if !self.committed_before_revoking(kind, &partitions, generation, session) {
                return true;
            }
            self.run_event(kind, &partitions, generation, session).await;
            if let Some(ev) = self.pending_event.take() {
                let _ = ev.done.send(());
            }
        }
    }

    /// Whether a revocation may run its callback: with auto-commit on and the revocation
    /// current, once the positions of the partitions it takes are committed, the commit
    /// failed for good, or `max.poll.interval.ms` passed. Starts, checks and retries that
    /// commit without waiting for it.
    fn committed_before_revoking(
        &mut self,
        kind: EventKind,
        partitions: &[TopicPartition],
        generation: i32,
        session: u64,
    ) -> bool {
        let Some(group) = &self.group else {
            return true;
        };
        let current = generation >= 0 && group.client.shared.generation() == generation;
        if kind != EventKind::Revoked
            || !current
            || !self.config.auto_commit()
            || session != self.subs.session()
        {
            self.revoke_commit = None;
            return true;
        }
        let mut offsets = self.subs.positions(Some(&self.held(partitions)));
        self.leave_out_deleted(&mut offsets);
        if offsets.is_empty() {
            self.revoke_commit = None;
            return true;
        }
        let now = Instant::now();
        let ours = |c: &RevokeCommit| c.generation == generation && c.session == session;
        if !self.revoke_commit.as_ref().is_some_and(ours) {
            self.revoke_commit = Some(RevokeCommit {
                generation,
                session,
                give_up_at: now + self.config.max_poll_interval,
                reply: None,
                outcome: None,
                retry_at: None,
                attempts: 0,
            });
        }
        let Some(c) = self.revoke_commit.as_mut() else {
            return true;
        };
        if c.outcome.is_none() {
            if let Some(reply) = c.reply.as_mut() {
                match reply.try_recv() {
                    Ok(answer) => c.outcome = Some(answer),
                    Err(oneshot::error::TryRecvError::Empty) => {}
                    Err(oneshot::error::TryRecvError::Closed) => {
                        c.outcome = Some(Err(Error::Closed("consumer group task ended".into())))
                    }
                }
            }
        }
        let backoff = Backoff::new(
            self.config.client.retry_backoff,
            self.config.client.retry_backoff_max,
        );
        if let Some(outcome) = c.outcome.take() {
            c.reply = None;
            match outcome {
                Ok(()) => {
                    self.revoke_commit = None;
                    return true;
                }
                Err(e) if e.is_retriable() && now < c.give_up_at => {
                    tracing::debug!(error = %e, "auto-commit before revocation failed; retrying");
                    c.attempts += 1;
                    c.retry_at = Some(now + backoff.delay(c.attempts));
                }
                Err(e) => {
                    tracing::warn!(error = %e, "auto-commit before revocation failed; revoking anyway");
                    self.revoke_commit = None;
                    return true;
                }
            }
        }
        if now >= c.give_up_at {
            tracing::error!(
                max_poll_interval_ms = self.config.max_poll_interval.as_millis() as u64,
                "auto-commit before revocation not done within max.poll.interval.ms; revoking \
                 anyway so the group can go on"
            );
            self.revoke_commit = None;
            return true;
        }
        if c.reply.is_none() && c.retry_at.is_none_or(|t| t <= now) {
            // Later auto-commits (the stream's snapshot may be older) must not go below it.
            self.subs.commit_issued(&offsets);
            match group.client.commit_now(offsets) {
                Ok(reply) => {
                    c.reply = Some(reply);
                    c.retry_at = None;
                }
                Err(e) => {
                    tracing::debug!(error = %e, "auto-commit before revocation not sent; retrying");
                    c.attempts += 1;
                    c.retry_at = Some(now + backoff.delay(c.attempts));
                }
            }
        }
        false
    }

    /// Leaves out partitions of topics gone from both the subscription and the cluster: a
    /// topic a pattern matched was deleted. The broker answers their commit with
    /// `UNKNOWN_TOPIC_OR_PARTITION`, which is retriable, so the commit would be retried until
    /// `max.poll.interval.ms` and hold the rebalance that revokes them (the Java client
    /// still does, KAFKA-16235). Positions of topics that still exist are committed.
    fn leave_out_deleted(&self, offsets: &mut HashMap<TopicPartition, OffsetAndMetadata>) {
        let subscribed = self.subs.topics().unwrap_or_default();
        let metadata = self.cluster.metadata();
        offsets.retain(|tp, _| {
            let deleted = !subscribed.contains(&tp.topic) && metadata.topic(&tp.topic).is_none();
            if deleted {
                tracing::debug!(
                    topic = %tp.topic,
                    partition = tp.partition,
                    "not committing a deleted topic before revoking it"
                );
            }
            !deleted
        });
    }

    /// The partitions of `partitions` this consumer holds.
    fn held(&self, partitions: &[TopicPartition]) -> Vec<TopicPartition> {
        let assigned = self.subs.assignment();
        partitions
            .iter()
            .filter(|tp| assigned.contains(tp))
            .cloned()
            .collect()
    }

    /// Runs one event's callback. Callbacks only ever name partitions this consumer holds:
    /// an event queued before the application unsubscribed is dropped (its partitions were
    /// revoked by `unsubscribe`, and a later assignment may hold the same names), and a
    /// revocation the group moved on from is narrowed to what is still held, as a loss.
    async fn run_event(
        &self,
        kind: EventKind,
        partitions: &[TopicPartition],
        generation: i32,
        session: u64,
    ) {
        let Some(group) = &self.group else { return };
        if session != self.subs.session() {
            tracing::debug!(
                ?kind,
                ?partitions,
                generation,
                "dropping a rebalance event queued before unsubscribe"
            );
            return;
        }
        let current = generation >= 0 && group.client.shared.generation() == generation;
        match kind {
            // As Java's `onJoinComplete`: the partitions become the consumer's right before
            // the callback hears of them, also when the generation was reset since (a loss
            // follows, so every partition is seen assigned before it is seen lost).
            EventKind::Assigned => {
                if self.subs.add_assigned(session, partitions) {
                    tracing::info!(?partitions, generation, "partitions assigned");
                    self.listener
                        .call(self, Callback::Assigned, partitions)
                        .await;
                }
            }
            // Java calls onPartitionsRevoked before every eager rebalance, with an empty
            // list too. The auto-commit before it is done (`committed_before_revoking`).
            EventKind::Revoked if current => {
                let held = self.held(partitions);
                tracing::info!(partitions = ?held, generation, "revoking partitions");
                self.listener.call(self, Callback::Revoked, &held).await;
                self.subs.remove(session, &held);
            }
            EventKind::Revoked | EventKind::Lost => {
                let held = self.held(partitions);
                if !held.is_empty() {
                    tracing::info!(partitions = ?held, "partitions lost: the group moved on");
                    self.listener.call(self, Callback::Lost, &held).await;
                    self.subs.remove(session, &held);
                }
            }
        }
    }
}

pub(crate) async fn next_event(rx: Option<&mut Receiver<GroupEvent>>) -> Option<GroupEvent> {
    match rx {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}
