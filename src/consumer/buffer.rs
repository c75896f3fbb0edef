//! Fetched data waiting for the application: a bounded queue between the fetcher task and
//! `poll`.
//!
//! The fetcher pushes one [`CompletedFetch`] per partition per Fetch response (the raw record
//! bytes, still compressed); `poll` takes them in order and decodes them lazily. The queue
//! counts the bytes it holds, and the fetcher sends no new Fetch while they exceed
//! `fetch.buffer.max.bytes`, so a slow application bounds the memory the consumer holds at
//! roughly that cap plus one `fetch.max.bytes` response per broker in flight.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use tokio::sync::Notify;

use crate::types::TopicPartition;

/// How many completed fetches of one partition may wait in the buffer before the fetcher
/// stops asking for more of it. Two, not one as in Java: with one, a busy partition whose
/// data waits is left out of the next Fetch, and if that Fetch holds only idle partitions of
/// the same broker it long-polls for `fetch.max.wait.ms` while the busy one starves.
pub(crate) const MAX_WAITING_PER_PARTITION: usize = 2;

/// An aborted transaction of a Fetch response: records of `producer_id` from `first_offset`
/// on are skipped under `read_committed` until its abort marker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct AbortedTxn {
    pub(crate) producer_id: i64,
    pub(crate) first_offset: i64,
}

/// One partition's data from one Fetch response.
#[derive(Debug)]
pub(crate) struct CompletedFetch {
    pub(crate) tp: TopicPartition,
    /// The topic name shared by the records handed out.
    pub(crate) topic: Arc<str>,
    /// The partition's state epoch when the fetch was sent.
    pub(crate) epoch: u64,
    /// The offset the fetch asked for: the application's position must be here.
    pub(crate) fetch_offset: i64,
    /// Where the next fetch starts: after the last complete batch.
    pub(crate) next_offset: i64,
    /// Complete batches only.
    pub(crate) records: Bytes,
    /// Aborted transactions (`read_committed` only), sorted by first offset.
    pub(crate) aborted: Vec<AbortedTxn>,
}

#[derive(Debug, Default)]
struct Queue {
    fetches: VecDeque<CompletedFetch>,
    bytes: usize,
    per_partition: HashMap<TopicPartition, usize>,
}

/// The bounded queue of completed fetches; see the [module docs](self).
#[derive(Debug)]
pub(crate) struct FetchBuffer {
    queue: Mutex<Queue>,
    max_bytes: usize,
    /// Wakes `poll`: data arrived.
    pub(crate) data: Notify,
    /// Wakes the fetcher: room was made.
    pub(crate) room: Notify,
}

impl FetchBuffer {
    pub(crate) fn new(max_bytes: usize) -> Self {
        FetchBuffer {
            queue: Mutex::new(Queue::default()),
            max_bytes,
            data: Notify::new(),
            room: Notify::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn push(&self, fetch: CompletedFetch) {
        let mut q = self.lock();
        q.bytes += fetch.records.len();
        *q.per_partition.entry(fetch.tp.clone()).or_default() += 1;
        q.fetches.push_back(fetch);
        drop(q);
        self.data.notify_one();
    }

    /// The oldest completed fetch.
    pub(crate) fn pop(&self) -> Option<CompletedFetch> {
        let mut q = self.lock();
        let fetch = q.fetches.pop_front()?;
        q.bytes = q.bytes.saturating_sub(fetch.records.len());
        if let Some(n) = q.per_partition.get_mut(&fetch.tp) {
            *n -= 1;
            if *n == 0 {
                q.per_partition.remove(&fetch.tp);
            }
        }
        drop(q);
        self.room.notify_one();
        Some(fetch)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.lock().fetches.is_empty()
    }

    /// Whether the fetcher may add more data.
    pub(crate) fn has_room(&self) -> bool {
        self.lock().bytes < self.max_bytes
    }

    /// Partitions with at least [`MAX_WAITING_PER_PARTITION`] completed fetches waiting: the
    /// fetcher leaves them out of its next Fetch, so one partition cannot fill the buffer.
    pub(crate) fn full_partitions(&self) -> Vec<TopicPartition> {
        self.lock()
            .per_partition
            .iter()
            .filter(|(_, n)| **n >= MAX_WAITING_PER_PARTITION)
            .map(|(tp, _)| tp.clone())
            .collect()
    }

    /// Bytes held.
    #[cfg(test)]
    pub(crate) fn bytes(&self) -> usize {
        self.lock().bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fetch(p: i32, len: usize) -> CompletedFetch {
        CompletedFetch {
            tp: TopicPartition::new("t", p),
            topic: Arc::from("t"),
            epoch: 1,
            fetch_offset: 0,
            next_offset: 1,
            records: Bytes::from(vec![0u8; len]),
            aborted: Vec::new(),
        }
    }

    #[test]
    fn counts_bytes_and_partitions() {
        let buf = FetchBuffer::new(100);
        assert!(buf.has_room() && buf.is_empty());
        buf.push(fetch(0, 30));
        buf.push(fetch(1, 30));
        assert!(buf.full_partitions().is_empty());
        buf.push(fetch(1, 60));
        assert!(!buf.has_room());
        assert_eq!(buf.bytes(), 120);
        assert_eq!(buf.full_partitions(), vec![TopicPartition::new("t", 1)]);
        assert_eq!(buf.pop().unwrap().tp.partition, 0);
        assert_eq!(buf.pop().unwrap().tp.partition, 1);
        assert!(buf.has_room());
        assert!(buf.full_partitions().is_empty());
        buf.pop();
        assert!(buf.is_empty() && buf.bytes() == 0);
    }
}
