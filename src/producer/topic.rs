//! One topic as the producer sees it: its partition queues, its partitioner state and the
//! metadata last seen for it, all reached from `send` with a single map look-up.
//!
//! `send` used to look the topic's name up four times per record (metadata, queue,
//! partitioner, sticky byte count), each hashing the name with SipHash; now it hashes it once,
//! with a hash made for short names chosen by the application itself, and keeps the handle.

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard};

use crate::cluster::{Cluster, TopicMetadata};

use super::accumulator::PartitionQueue;
use super::partitioner::TopicPartitioning;

pub(crate) struct Topic {
    pub(crate) name: String,
    /// Index `i` is partition `i`; only ever grows, as topics only gain partitions.
    queues: RwLock<Vec<PartitionQueue>>,
    pub(crate) partitioning: TopicPartitioning,
    /// The topic's metadata and the cluster metadata generation it was read at.
    metadata: Mutex<Option<(u64, Arc<TopicMetadata>)>>,
    /// When a record was last sent to it (ms since the epoch, to the second), for
    /// `metadata.max.idle.ms`.
    last_used: AtomicU64,
}

impl Topic {
    fn new(name: &str) -> Self {
        Topic {
            name: name.to_owned(),
            queues: RwLock::new(Vec::new()),
            partitioning: TopicPartitioning::default(),
            metadata: Mutex::new(None),
            last_used: AtomicU64::new(0),
        }
    }

    /// Notes a send at `now_ms`. Writes only when the second changed, so sending tasks on
    /// several cores do not keep taking the cache line from each other.
    pub(crate) fn touch(&self, now_ms: u64) {
        if now_ms >= self.last_used.load(Ordering::Relaxed) + 1000 {
            self.last_used.store(now_ms, Ordering::Relaxed);
        }
    }

    /// When a record was last sent to the topic (ms since the epoch, to the second).
    pub(crate) fn last_used(&self) -> u64 {
        self.last_used.load(Ordering::Relaxed)
    }

    /// The topic's metadata as the cluster last reported it, read again only when the
    /// cluster's metadata changed since. `None` while the cluster does not know the topic.
    pub(crate) fn metadata(&self, cluster: &Cluster) -> Option<Arc<TopicMetadata>> {
        // Generation first: what is cached under it is then at least that fresh.
        let generation = cluster.metadata_generation();
        let mut cached = self.metadata.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((at, topic)) = cached.as_ref() {
            if *at == generation {
                return Some(topic.clone());
            }
        }
        let topic = cluster.metadata().topic(&self.name).cloned()?;
        *cached = Some((generation, topic.clone()));
        Some(topic)
    }

    /// The partition queues there are now.
    pub(crate) fn queues(&self) -> RwLockReadGuard<'_, Vec<PartitionQueue>> {
        self.queues.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds queues until there are `len`; `true` when some were added.
    pub(crate) fn grow(&self, len: usize) -> bool {
        let mut queues = self.queues.write().unwrap_or_else(|e| e.into_inner());
        let added = queues.len() < len;
        while queues.len() < len {
            queues.push(Arc::new(Mutex::new(VecDeque::new())));
        }
        added
    }
}

/// Every topic the producer has sent to, by name.
#[derive(Default)]
pub(crate) struct Topics {
    by_name: RwLock<HashMap<String, Arc<Topic>, BuildHasherDefault<NameHasher>>>,
}

impl Topics {
    /// The topic's handle, created on first use.
    pub(crate) fn get_or_add(&self, name: &str) -> Arc<Topic> {
        if let Some(topic) = self
            .by_name
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
        {
            return topic.clone();
        }
        self.by_name
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .entry(name.to_owned())
            .or_insert_with(|| Arc::new(Topic::new(name)))
            .clone()
    }

    /// Every topic's handle.
    pub(crate) fn all(&self) -> Vec<Arc<Topic>> {
        self.by_name
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect()
    }
}

/// A multiply-rotate hash over eight bytes at a time (the scheme of rustc's `FxHasher`):
/// a few instructions per word where SipHash takes dozens. Topic names come from the
/// application, not from the network, so SipHash's resistance to chosen collisions buys
/// nothing here.
#[derive(Default)]
pub(crate) struct NameHasher(u64);

impl NameHasher {
    const K: u64 = 0x517c_c1b7_2722_0a95;

    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(Self::K);
    }
}

impl Hasher for NameHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut word = [0u8; 8];
            word[..rest.len()].copy_from_slice(rest);
            // The length keeps "a" and "a\0" apart.
            self.add(u64::from_le_bytes(word) ^ ((rest.len() as u64) << 59));
        }
    }

    fn write_u8(&mut self, byte: u8) {
        self.add(u64::from(byte));
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::hash::BuildHasher;

    fn hash(name: &str) -> u64 {
        BuildHasherDefault::<NameHasher>::default().hash_one(name)
    }

    #[test]
    fn names_hash_apart() {
        let names = [
            "",
            "a",
            "a\0",
            "orders",
            "orders-1",
            "orders-2",
            "orders-10",
        ];
        let mut hashes: Vec<u64> = names.iter().map(|n| hash(n)).collect();
        hashes.sort_unstable();
        hashes.dedup();
        assert_eq!(hashes.len(), names.len());
        assert_eq!(hash("orders"), hash(&String::from("orders")));
    }

    #[test]
    fn a_topic_is_created_once_and_its_queues_only_grow() {
        let topics = Topics::default();
        let t = topics.get_or_add("orders");
        assert!(Arc::ptr_eq(&t, &topics.get_or_add("orders")));
        assert_eq!(topics.all().len(), 1);
        assert!(t.grow(3));
        assert!(!t.grow(2));
        assert_eq!(t.queues().len(), 3);
    }
}
