//! Choosing a record's partition: explicit partition, key hash, uniform sticky, round robin,
//! or the user's own [`Partitioner`].
//!
//! Keyed records go to `toPositive(murmur2(key)) % partitions` exactly as the Java client
//! computes it, so a Rust and a Java producer put the same key in the same partition.
//! Keyless records stick to one partition until `batch.size` bytes went there, then move to
//! another chosen at random among the partitions that have a leader (KIP-794's uniform
//! sticky partitioner, without the adaptive weighting by queue size).

use std::fmt;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::cluster::TopicMetadata;

use super::record::ProducerRecord;

/// A user-defined partitioner. Records with an explicit partition never reach it.
///
/// ```
/// use kafka_client::cluster::TopicMetadata;
/// use kafka_client::producer::{Partitioner, ProducerRecord};
///
/// /// Every record of a tenant to one partition, by the tenant's header.
/// #[derive(Debug)]
/// struct ByTenant;
///
/// impl Partitioner for ByTenant {
///     fn partition(&self, record: &ProducerRecord, topic: &TopicMetadata) -> i32 {
///         let tenant = record.headers.iter().find(|h| h.key == "tenant");
///         let hash = tenant.and_then(|h| h.value.as_ref()).map_or(0, |v| v.len() as i32);
///         hash % topic.partitions.len() as i32
///     }
/// }
/// ```
pub trait Partitioner: Send + Sync + fmt::Debug {
    /// The partition for `record`, in `0..topic.partitions.len()`. An answer outside that
    /// range fails the record with an error naming it.
    fn partition(&self, record: &ProducerRecord, topic: &TopicMetadata) -> i32;
}

/// Which partitioner the producer uses.
#[derive(Clone, Debug, Default)]
pub(crate) enum PartitionerKind {
    /// Key hash for keyed records, uniform sticky for the rest.
    #[default]
    Default,
    /// Every record to the next partition in turn.
    RoundRobin,
    /// The user's.
    Custom(Arc<dyn Partitioner>),
}

/// The Java client's `Utils.murmur2`: MurmurHash2, seed `0x9747b28c`, little-endian blocks.
pub fn murmur2(key: &[u8]) -> i32 {
    murmur2::murmur2(key, murmur2::KAFKA_SEED) as i32
}

/// `Utils.toPositive(murmur2(key)) % partitions`, the Java client's partition for a key.
pub fn partition_for_key(key: &[u8], partitions: i32) -> i32 {
    (murmur2(key) & 0x7fff_ffff) % partitions.max(1)
}

/// The `n`-th (modulo) partition that has a leader, or of all partitions when none has one,
/// without allocating.
fn nth_available(topic: &TopicMetadata, n: u64) -> i32 {
    let available = topic
        .partitions
        .iter()
        .filter(|p| p.leader.is_some())
        .count();
    if available == 0 {
        return (n % topic.partitions.len().max(1) as u64) as i32;
    }
    let index = (n % available as u64) as usize;
    topic
        .partitions
        .iter()
        .filter(|p| p.leader.is_some())
        .nth(index)
        .map_or(0, |p| p.partition)
}

/// Per-producer partitioner settings and random state; what changes per topic lives in the
/// topic's [`TopicPartitioning`].
#[derive(Debug)]
pub(crate) struct PartitionerState {
    kind: PartitionerKind,
    ignore_keys: bool,
    batch_size: usize,
    rng: AtomicU64,
}

/// One topic's partitioner state: its sticky partition and its round-robin counter.
#[derive(Debug)]
pub(crate) struct TopicPartitioning {
    sticky: Mutex<Sticky>,
    round_robin: AtomicU32,
}

impl Default for TopicPartitioning {
    fn default() -> Self {
        TopicPartitioning {
            sticky: Mutex::new(Sticky {
                partition: -1,
                bytes: 0,
            }),
            round_robin: AtomicU32::new(0),
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Sticky {
    /// -1 until chosen, and again once `batch.size` bytes went to it.
    partition: i32,
    bytes: usize,
}

impl PartitionerState {
    pub(crate) fn new(kind: PartitionerKind, ignore_keys: bool, batch_size: usize) -> Self {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0x2545_f491_4f6c_dd1d);
        PartitionerState {
            kind,
            ignore_keys,
            batch_size,
            rng: AtomicU64::new(seed | 1),
        }
    }

    /// Whether the sticky partitioner places this record (keyless, or keys ignored), so its
    /// bytes count towards switching partitions.
    pub(crate) fn is_sticky(&self, record: &ProducerRecord) -> bool {
        matches!(self.kind, PartitionerKind::Default)
            && record.partition.is_none()
            && (record.key.is_none() || self.ignore_keys)
    }

    /// The partition for a record without an explicit one; `state` is its topic's.
    pub(crate) fn choose(
        &self,
        record: &ProducerRecord,
        topic: &TopicMetadata,
        state: &TopicPartitioning,
    ) -> i32 {
        let count = topic.partitions.len() as i32;
        match &self.kind {
            PartitionerKind::Custom(p) => p.partition(record, topic),
            PartitionerKind::RoundRobin => {
                let n = state.round_robin.fetch_add(1, Ordering::Relaxed);
                nth_available(topic, u64::from(n))
            }
            PartitionerKind::Default => match &record.key {
                Some(key) if !self.ignore_keys => partition_for_key(key, count),
                _ => self.sticky_partition(topic, state),
            },
        }
    }

    /// Counts `bytes` of a record the sticky partitioner placed (see
    /// [`is_sticky`](Self::is_sticky)) on `partition`; it moves on once `batch.size` bytes
    /// went there. Keyed and explicitly placed records do not count, as in Java.
    pub(crate) fn on_append(&self, state: &TopicPartitioning, partition: i32, bytes: usize) {
        let mut s = state.sticky.lock().unwrap_or_else(|e| e.into_inner());
        if s.partition == partition {
            s.bytes += bytes;
            if s.bytes >= self.batch_size {
                // Switch on the next keyless record.
                s.partition = -1;
            }
        }
    }

    fn sticky_partition(&self, topic: &TopicMetadata, state: &TopicPartitioning) -> i32 {
        let mut s = state.sticky.lock().unwrap_or_else(|e| e.into_inner());
        let count = topic.partitions.len() as i32;
        if s.partition >= 0 && s.partition < count {
            return s.partition;
        }
        let partition = nth_available(topic, self.next_random());
        *s = Sticky {
            partition,
            bytes: 0,
        };
        partition
    }

    /// xorshift64*: statistically fine for spreading partitions, and ours to keep.
    fn next_random(&self) -> u64 {
        let mut x = self.rng.load(Ordering::Relaxed);
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng.store(x, Ordering::Relaxed);
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::{PartitionInfo, TopicId};

    fn topic(partitions: i32) -> TopicMetadata {
        TopicMetadata {
            name: "t".into(),
            id: TopicId::default(),
            is_internal: false,
            partitions: (0..partitions)
                .map(|p| PartitionInfo {
                    partition: p,
                    leader: Some(1),
                    leader_epoch: 0,
                    replicas: vec![1],
                    isr: vec![1],
                    offline_replicas: vec![],
                })
                .collect(),
        }
    }

    #[test]
    fn murmur2_matches_the_java_client() {
        // Values from the Java client's own Utils tests.
        assert_eq!(murmur2(b"21"), -973932308);
        assert_eq!(murmur2(b"foobar"), -790332482);
        assert_eq!(murmur2(b"a-little-bit-long-string"), -985981536);
        assert_eq!(murmur2(b"a-little-bit-longer-string"), -1486304829);
        assert_eq!(
            murmur2(b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8"),
            -58897971
        );
        assert_eq!(murmur2(b"abc"), 479470107);
    }

    #[test]
    fn keyed_records_follow_the_hash() {
        let state = PartitionerState::new(PartitionerKind::Default, false, 16384);
        let t = topic(6);
        let r = ProducerRecord::new("t").key("order-1");
        let ts = TopicPartitioning::default();
        let p = state.choose(&r, &t, &ts);
        assert_eq!(p, partition_for_key(b"order-1", 6));
        assert_eq!(state.choose(&r, &t, &ts), p);
    }

    #[test]
    fn keyless_records_stick_until_batch_size_bytes() {
        let state = PartitionerState::new(PartitionerKind::Default, false, 100);
        let t = topic(50);
        let r = ProducerRecord::new("t").value("v");
        let ts = TopicPartitioning::default();
        let first = state.choose(&r, &t, &ts);
        state.on_append(&ts, first, 60);
        assert_eq!(state.choose(&r, &t, &ts), first);
        state.on_append(&ts, first, 60);
        // Past batch.size: a new random partition (may rarely be the same one again).
        let mut moved = false;
        for _ in 0..20 {
            let next = state.choose(&r, &t, &ts);
            if next != first {
                moved = true;
                break;
            }
            state.on_append(&ts, next, 100);
        }
        assert!(moved);
    }

    #[test]
    fn round_robin_cycles() {
        let state = PartitionerState::new(PartitionerKind::RoundRobin, false, 100);
        let t = topic(3);
        let r = ProducerRecord::new("t").key("same");
        let ts = TopicPartitioning::default();
        let got: Vec<i32> = (0..6).map(|_| state.choose(&r, &t, &ts)).collect();
        assert_eq!(got, vec![0, 1, 2, 0, 1, 2]);
    }
}
