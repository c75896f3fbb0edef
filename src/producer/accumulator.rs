//! The record accumulator: per-partition queues of batches that `send` fills in place and
//! the sender task drains.
//!
//! ```text
//!  send() ──▶ [buffer.memory permits] ──▶ partition queue: [batch][batch][open batch] ──▶ sender
//! ```
//!
//! `buffer.memory` is a semaphore of bytes: `send` takes a record's size before appending and
//! the sender gives it back when the batch completes, so a slow or absent broker makes `send`
//! wait (up to `max.block.ms`) instead of growing memory. Each partition queue has its own
//! lock, held only to append or pop, never across an `.await`.

use std::collections::{BTreeSet, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::Duration;

use tokio::sync::{Notify, Semaphore};
use tokio::time::Instant;

use crate::error::{Error, Result};
use crate::protocol::records::{Compression, RecordBatchBuilder};
use crate::types::{Header, TopicPartition};

use super::batch::ProducerBatch;
use super::record::Delivery;
use super::topic::{Topic, Topics};

pub(crate) type PartitionQueue = Arc<Mutex<VecDeque<ProducerBatch>>>;

pub(crate) struct Accumulator {
    batch_size: usize,
    linger: Duration,
    compression: Compression,
    buffer_memory: usize,
    topics: Topics,
    /// Every queue with its partition, for the sender's scans.
    listing: RwLock<Arc<Vec<(TopicPartition, PartitionQueue)>>>,
    memory: Semaphore,
    next_batch_id: AtomicU64,
    /// Ids of batches created and not yet completed, for `flush`.
    incomplete: Mutex<BTreeSet<u64>>,
    flushing: AtomicUsize,
    closed: AtomicBool,
    /// Set when the sender task has ended, however it ended.
    sender_gone: AtomicBool,
    fatal: Mutex<Option<Error>>,
    has_fatal: AtomicBool,
    /// Wakes the sender: a batch was created or filled, a flush or close began.
    pub(crate) wake_sender: Notify,
    /// Wakes `flush` callers when batches complete.
    completed: Notify,
}

pub(crate) fn lock(queue: &PartitionQueue) -> MutexGuard<'_, VecDeque<ProducerBatch>> {
    queue.lock().unwrap_or_else(|e| e.into_inner())
}

impl Accumulator {
    pub(crate) fn new(
        batch_size: usize,
        linger: Duration,
        compression: Compression,
        buffer_memory: usize,
    ) -> Self {
        Accumulator {
            batch_size,
            linger,
            compression,
            buffer_memory,
            topics: Topics::default(),
            listing: RwLock::new(Arc::new(Vec::new())),
            memory: Semaphore::new(buffer_memory.min(Semaphore::MAX_PERMITS)),
            next_batch_id: AtomicU64::new(0),
            incomplete: Mutex::new(BTreeSet::new()),
            flushing: AtomicUsize::new(0),
            closed: AtomicBool::new(false),
            sender_gone: AtomicBool::new(false),
            fatal: Mutex::new(None),
            has_fatal: AtomicBool::new(false),
            wake_sender: Notify::new(),
            completed: Notify::new(),
        }
    }

    /// Takes `size` bytes of `buffer.memory`, waiting up to `max_block` from `started` (the
    /// start of `send`'s first wait; now when it has not waited yet).
    pub(crate) async fn reserve(
        &self,
        topic: &str,
        size: usize,
        started: Option<Instant>,
        max_block: Duration,
    ) -> Result<()> {
        if size > self.buffer_memory {
            return Err(Error::RecordTooLarge {
                topic: topic.to_owned(),
                size,
                limit_key: "buffer.memory",
                limit: self.buffer_memory,
            });
        }
        let permits = u32::try_from(size).map_err(|_| Error::RecordTooLarge {
            topic: topic.to_owned(),
            size,
            limit_key: "buffer.memory",
            limit: u32::MAX as usize,
        })?;
        // The common case, space is free: no timer, no await.
        if let Ok(permit) = self.memory.try_acquire_many(permits) {
            permit.forget();
            return Ok(());
        }
        let deadline = started.unwrap_or_else(Instant::now) + max_block;
        match tokio::time::timeout_at(deadline, self.memory.acquire_many(permits)).await {
            Ok(Ok(permit)) => {
                permit.forget();
                Ok(())
            }
            Ok(Err(_)) => Err(Error::Closed("producer closed".into())),
            Err(_) => Err(Error::Timeout {
                what: format!(
                    "waiting for {size} bytes of buffer.memory ({} bytes) to send to {topic}",
                    self.buffer_memory
                ),
                after: max_block,
            }),
        }
    }

    /// Gives back `buffer.memory` bytes.
    pub(crate) fn release(&self, size: usize) {
        if size > 0 {
            self.memory.add_permits(size);
        }
    }

    /// The topic's handle, created on first use.
    pub(crate) fn topic(&self, name: &str) -> Arc<Topic> {
        self.topics.get_or_add(name)
    }

    /// Every topic's handle.
    pub(crate) fn topics(&self) -> Vec<Arc<Topic>> {
        self.topics.all()
    }

    /// Appends a record whose `buffer.memory` is already reserved to `partition` of
    /// `topic`, which has `partitions` partitions.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn append(
        &self,
        topic: &Topic,
        partition: i32,
        partitions: usize,
        timestamp: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[Header],
        size: usize,
        delivery: Delivery,
    ) {
        let index = usize::try_from(partition).unwrap_or(0);
        let mut queues = topic.queues();
        if queues.len() <= index {
            drop(queues);
            self.grow(topic, partitions.max(index + 1));
            queues = topic.queues();
        }
        let Some(queue) = queues.get(index) else {
            return delivery.complete(Err(Error::InvalidArgument(format!(
                "partition {partition} of topic {} has no queue",
                topic.name
            ))));
        };
        let mut wake = false;
        {
            let mut q = lock(queue);
            let fits = q.back().is_some_and(|b| b.fits(size, self.batch_size));
            if !fits {
                if let Some(last) = q.back_mut() {
                    last.full = true;
                }
                let capacity = self.batch_size.max(size + 128);
                let builder = RecordBatchBuilder::new(self.compression, capacity);
                let id = self.next_batch_id.fetch_add(1, Ordering::Relaxed);
                self.incomplete
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(id);
                // As many records as batch.size holds at this record's size.
                let records = (self.batch_size / size.max(1)).clamp(1, 4096);
                let tp = TopicPartition::new(topic.name.clone(), partition);
                q.push_back(ProducerBatch::new(id, tp, builder, records));
                wake = true;
            }
            if let Some(batch) = q.back_mut() {
                batch.append(timestamp, key, value, headers, size, delivery);
                if batch.size >= self.batch_size {
                    batch.full = true;
                    wake = true;
                }
            }
        }
        if wake {
            self.wake_sender.notify_one();
        }
    }

    /// Adds queues to `topic` until it has `len`, and lists them for the sender before any
    /// other `send` can append to them (the listing's lock serializes growth), so a batch
    /// never sits in a queue the sender does not scan.
    fn grow(&self, topic: &Topic, len: usize) {
        let mut listing = self.listing.write().unwrap_or_else(|e| e.into_inner());
        if !topic.grow(len) {
            return;
        }
        let all: Vec<(TopicPartition, PartitionQueue)> = self
            .topics
            .all()
            .iter()
            .flat_map(|topic| {
                let queues = topic.queues();
                queues
                    .iter()
                    .enumerate()
                    .map(|(p, q)| (TopicPartition::new(topic.name.clone(), p as i32), q.clone()))
                    .collect::<Vec<_>>()
            })
            .collect();
        *listing = Arc::new(all);
    }

    /// The queue of a partition the sender already knows (for putting a batch back).
    pub(crate) fn queue_of(&self, tp: &TopicPartition) -> PartitionQueue {
        let topic = self.topic(&tp.topic);
        let index = usize::try_from(tp.partition).unwrap_or(0);
        if topic.queues().len() <= index {
            self.grow(&topic, index + 1);
        }
        let queues = topic.queues();
        queues[index].clone()
    }

    /// Records an error after which the producer cannot go on (`send` reports it).
    pub(crate) fn set_fatal(&self, error: Error) {
        let mut fatal = self.fatal.lock().unwrap_or_else(|e| e.into_inner());
        fatal.get_or_insert(error);
        self.has_fatal.store(true, Ordering::Release);
    }

    /// The fatal error, if one happened (a flag check on the hot path, the lock only after).
    pub(crate) fn fatal(&self) -> Option<Error> {
        if !self.has_fatal.load(Ordering::Acquire) {
            return None;
        }
        self.fatal.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Every partition queue, for the sender to scan (shared, rebuilt only when a queue is
    /// added).
    pub(crate) fn all_queues(&self) -> Arc<Vec<(TopicPartition, PartitionQueue)>> {
        self.listing
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// When the head batch of a queue may be sent: now if full, flushing, closing or retrying
    /// after its backoff; else when its linger ends. `None` for an empty queue.
    pub(crate) fn ready_at(&self, batch: &ProducerBatch, more_behind: bool) -> Instant {
        if let Some(at) = batch.retry_at {
            return at;
        }
        if batch.full || more_behind || self.is_flushing() || self.is_closed() {
            return batch.created;
        }
        batch.created + self.linger
    }

    /// Called by the sender when a batch is done (delivered or failed).
    pub(crate) fn completed(&self, batch_id: u64, reserved: usize) {
        self.release(reserved);
        self.incomplete
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&batch_id);
        // Only flush waits on this; skip the wake-up when nobody flushes.
        if self.is_flushing() || self.sender_gone.load(Ordering::Acquire) {
            self.completed.notify_waiters();
        }
    }

    /// Called when the sender task ends: nothing will complete batches any more, so new
    /// sends are refused, what is still queued fails, and `flush` stops waiting.
    pub(crate) fn sender_gone(&self) {
        self.sender_gone.store(true, Ordering::Release);
        self.closed.store(true, Ordering::Release);
        self.fail_queued_if_sender_gone();
        self.completed.notify_waiters();
    }

    /// Fails every queued batch when the sender has ended (for records appended after it
    /// stopped, so none waits forever).
    pub(crate) fn fail_queued_if_sender_gone(&self) {
        if !self.sender_gone.load(Ordering::Acquire) {
            return;
        }
        let error = self.fatal().unwrap_or_else(|| {
            Error::Closed("the producer stopped before this record was sent".into())
        });
        for (_, queue) in self.all_queues().iter() {
            let batches: Vec<ProducerBatch> = lock(queue).drain(..).collect();
            for batch in batches {
                let (id, reserved) = (batch.id, batch.reserved);
                batch.fail(&error);
                self.completed(id, reserved);
            }
        }
    }

    pub(crate) fn is_flushing(&self) -> bool {
        self.flushing.load(Ordering::Acquire) > 0
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Stops new appends (the caller checks [`is_closed`](Self::is_closed)) and tells the
    /// sender to send everything without lingering.
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.wake_sender.notify_one();
    }

    /// Whether any batch is still queued or in flight.
    pub(crate) fn has_incomplete(&self) -> bool {
        !self
            .incomplete
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_empty()
    }

    /// Waits until every batch created before the call has completed.
    ///
    /// # Cancellation
    /// Dropping the future ends the flush request; records are still delivered.
    pub(crate) async fn flush(&self) {
        struct Flushing<'a>(&'a AtomicUsize);
        impl Drop for Flushing<'_> {
            fn drop(&mut self) {
                self.0.fetch_sub(1, Ordering::AcqRel);
            }
        }
        let upto = self.next_batch_id.load(Ordering::Acquire);
        self.flushing.fetch_add(1, Ordering::AcqRel);
        let _guard = Flushing(&self.flushing);
        self.wake_sender.notify_one();
        loop {
            let notified = self.completed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let oldest = self
                .incomplete
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .first()
                .copied();
            if oldest.is_none_or(|id| id >= upto) || self.sender_gone.load(Ordering::Acquire) {
                return;
            }
            notified.await;
        }
    }
}
