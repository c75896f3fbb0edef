//! The rebalance listener: the application's hook into partition hand-overs (Java's
//! `ConsumerRebalanceListener`).

use std::sync::{Arc, Mutex};

use futures::future::BoxFuture;

use super::Consumer;
use crate::types::TopicPartition;

/// Called when the group moves partitions to or from this consumer.
///
/// The methods are async (they return a boxed future) so they can commit offsets, seek or
/// write state elsewhere; they receive the consumer, on which every `&self` method works
/// (`commit_sync`, `seek`, `position`, `committed`, `pause`...). They run inside
/// [`Consumer::poll`] (or `recv`, or the record stream) at the points where the Java client
/// calls its listener, never concurrently with the application's own use of the consumer:
///
/// - [`on_partitions_revoked`](Self::on_partitions_revoked): before partitions go to another
///   member. With the eager protocol (`range`, `roundrobin`, `sticky`) every partition is
///   revoked before each rebalance (also with an empty list, as in Java); with the
///   cooperative protocol (`cooperative-sticky`) only those that move, after the rebalance
///   that moves them. With `enable.auto.commit`, the consumer commits the positions of the
///   revoked partitions just before calling it. Commit here what you processed.
/// - [`on_partitions_assigned`](Self::on_partitions_assigned): after each rebalance, with the
///   partitions added (possibly none), before any of their records is returned. Seek here to
///   start elsewhere than the committed offset.
/// - [`on_partitions_lost`](Self::on_partitions_lost): the partitions already belong to
///   someone else (the member was dropped from the group: session timeout, missed
///   `max.poll.interval.ms`, a fenced generation). Committing is pointless then. By default it
///   calls `on_partitions_revoked`, as in Java.
///
/// While a callback runs the group waits (and this consumer keeps heartbeating), so keep them
/// shorter than `max.poll.interval.ms`. If the `poll` future is dropped in the middle of a
/// callback, the callback is run again, from the start, by the next `poll`.
///
/// ```no_run
/// use futures::future::BoxFuture;
/// use kafka_client::consumer::{Consumer, RebalanceListener};
/// use kafka_client::TopicPartition;
///
/// struct CommitOnRevoke;
///
/// impl RebalanceListener for CommitOnRevoke {
///     fn on_partitions_revoked<'a>(
///         &'a mut self,
///         consumer: &'a Consumer,
///         _partitions: &'a [TopicPartition],
///     ) -> BoxFuture<'a, ()> {
///         Box::pin(async move {
///             if let Err(e) = consumer.commit_sync().await {
///                 eprintln!("commit before revocation failed: {e}");
///             }
///         })
///     }
/// }
/// ```
pub trait RebalanceListener: Send {
    /// Partitions are about to be taken away; see the [trait docs](Self).
    fn on_partitions_revoked<'a>(
        &'a mut self,
        consumer: &'a Consumer,
        partitions: &'a [TopicPartition],
    ) -> BoxFuture<'a, ()> {
        let _ = (consumer, partitions);
        Box::pin(async {})
    }

    /// Partitions were added to this consumer; see the [trait docs](Self).
    fn on_partitions_assigned<'a>(
        &'a mut self,
        consumer: &'a Consumer,
        partitions: &'a [TopicPartition],
    ) -> BoxFuture<'a, ()> {
        let _ = (consumer, partitions);
        Box::pin(async {})
    }

    /// Partitions were lost without a chance to commit; see the [trait docs](Self).
    fn on_partitions_lost<'a>(
        &'a mut self,
        consumer: &'a Consumer,
        partitions: &'a [TopicPartition],
    ) -> BoxFuture<'a, ()> {
        self.on_partitions_revoked(consumer, partitions)
    }
}

/// Which callback to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Callback {
    Revoked,
    Assigned,
    Lost,
}

/// Where the consumer keeps its listener. A callback takes the listener out for its duration
/// (so it can be handed `&Consumer`) and a guard puts it back, also when the callback's
/// future is dropped half-way.
#[derive(Clone, Default)]
pub(crate) struct ListenerSlot(Arc<Mutex<Option<Box<dyn RebalanceListener>>>>);

impl ListenerSlot {
    pub(crate) fn new(listener: Option<Box<dyn RebalanceListener>>) -> Self {
        ListenerSlot(Arc::new(Mutex::new(listener)))
    }

    pub(crate) fn set(&self, listener: Box<dyn RebalanceListener>) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Some(listener);
    }

    /// Runs one callback, if a listener is set (and not already running: a callback that
    /// triggers another, e.g. `unsubscribe` inside `on_partitions_revoked`, skips it).
    pub(crate) async fn call(
        &self,
        consumer: &Consumer,
        callback: Callback,
        partitions: &[TopicPartition],
    ) {
        let taken = self.0.lock().unwrap_or_else(|e| e.into_inner()).take();
        let Some(listener) = taken else { return };
        let mut guard = Restore {
            slot: self.0.clone(),
            listener: Some(listener),
        };
        if let Some(l) = guard.listener.as_mut() {
            match callback {
                Callback::Revoked => l.on_partitions_revoked(consumer, partitions).await,
                Callback::Assigned => l.on_partitions_assigned(consumer, partitions).await,
                Callback::Lost => l.on_partitions_lost(consumer, partitions).await,
            }
        }
    }
}

impl std::fmt::Debug for ListenerSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ListenerSlot")
    }
}

struct Restore {
    slot: Arc<Mutex<Option<Box<dyn RebalanceListener>>>>,
    listener: Option<Box<dyn RebalanceListener>>,
}

impl Drop for Restore {
    fn drop(&mut self) {
        let mut slot = self.slot.lock().unwrap_or_else(|e| e.into_inner());
        if slot.is_none() {
            *slot = self.listener.take();
        }
    }
}
