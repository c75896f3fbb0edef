//! The application's half of a rebalance: `poll` runs the events the group task queues
//! (Java's `onJoinPrepare` and `onJoinComplete` callbacks), applies the assignment change and
//! acknowledges each event so the group task can go on.

use tokio::sync::mpsc::error::TryRecvError;
use tokio::sync::mpsc::Receiver;

use super::group::{EventKind, GroupEvent};
use super::listener::Callback;
use super::Consumer;
use crate::types::TopicPartition;

impl Consumer {
    /// Runs queued rebalance callbacks and acknowledges them to the group task.
    pub(crate) async fn run_events(&mut self) {
        loop {
            if self.pending_event.is_none() {
                match self.events.as_mut().map(Receiver::try_recv) {
                    Some(Ok(ev)) => self.pending_event = Some(ev),
                    Some(Err(TryRecvError::Disconnected)) => {
                        self.events = None;
                        return;
                    }
                    _ => return,
                }
            }
            let Some(ev) = &self.pending_event else {
                return;
            };
            let (kind, partitions) = (ev.kind, ev.partitions.clone());
            let (generation, session) = (ev.generation, ev.session);
            self.run_event(kind, &partitions, generation, session).await;
            if let Some(ev) = self.pending_event.take() {
                let _ = ev.done.send(());
            }
        }
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
        let held = || -> Vec<TopicPartition> {
            let assigned = self.subs.assignment();
            partitions
                .iter()
                .filter(|tp| assigned.contains(tp))
                .cloned()
                .collect()
        };
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
            // list too.
            EventKind::Revoked if current => {
                let held = held();
                if self.config.auto_commit() && !held.is_empty() {
                    let offsets = self.subs.positions(Some(&held));
                    let timeout = self.config.client.default_api_timeout;
                    if let Err(e) = group.client.commit(offsets, timeout).await {
                        tracing::warn!(error = %e, "auto-commit before revocation failed");
                    }
                }
                tracing::info!(partitions = ?held, generation, "revoking partitions");
                self.listener.call(self, Callback::Revoked, &held).await;
                self.subs.remove(session, &held);
            }
            EventKind::Revoked | EventKind::Lost => {
                let held = held();
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
