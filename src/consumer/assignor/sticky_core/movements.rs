//! Bookkeeping of the partition moves the general sticky path makes (Java's
//! `PartitionMovements`), so that it never moves one partition of a topic from A to B and
//! another of the same topic from B to A: when such a swap is about to happen, the partition
//! that went the other way is moved back instead, and everything else stays put.

use std::collections::{BTreeSet, HashMap};

/// A move from one member (by index) to another.
type Pair = (usize, usize);

#[derive(Default)]
pub(super) struct Movements {
    /// Where each moved partition started and where it is now.
    by_partition: HashMap<u32, Pair>,
    /// The moved partitions of each topic by (from, to). Ordered sets make the choice of
    /// which partition to move back deterministic (Java takes a `HashSet`'s first).
    by_topic: HashMap<u32, HashMap<Pair, BTreeSet<u32>>>,
}

impl Movements {
    /// The partition to move when `p` (of `topic`) should go from `old` to `new`: `p`
    /// itself, unless a partition of the same topic already went from `new` towards where
    /// `p` started, in which case that one goes back.
    pub(super) fn partition_to_move(&self, p: u32, topic: u32, old: usize, new: usize) -> u32 {
        let Some(moves) = self.by_topic.get(&topic) else {
            return p;
        };
        let origin = self.by_partition.get(&p).map_or(old, |&(from, _)| from);
        moves
            .get(&(new, origin))
            .and_then(|set| set.first().copied())
            .unwrap_or(p)
    }

    /// Records that `p` of `topic` moved from `old` to `new`.
    pub(super) fn record(&mut self, p: u32, topic: u32, old: usize, new: usize) {
        match self.remove(p, topic) {
            // Moved before: it now goes from its origin to `new`, or is simply home again.
            Some((origin, _)) if origin == new => {}
            Some((origin, _)) => self.add(p, topic, (origin, new)),
            None => self.add(p, topic, (old, new)),
        }
    }

    fn remove(&mut self, p: u32, topic: u32) -> Option<Pair> {
        let pair = self.by_partition.remove(&p)?;
        if let Some(moves) = self.by_topic.get_mut(&topic) {
            if let Some(set) = moves.get_mut(&pair) {
                set.remove(&p);
                if set.is_empty() {
                    moves.remove(&pair);
                }
            }
            if moves.is_empty() {
                self.by_topic.remove(&topic);
            }
        }
        Some(pair)
    }

    fn add(&mut self, p: u32, topic: u32, pair: Pair) {
        self.by_partition.insert(p, pair);
        self.by_topic
            .entry(topic)
            .or_default()
            .entry(pair)
            .or_default()
            .insert(p);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_swap_within_a_topic_becomes_a_move_back() {
        let mut m = Movements::default();
        // Partition 1 of topic 0 went from member 0 to member 1.
        m.record(1, 0, 0, 1);
        // Now partition 5 of the same topic should go from 1 to 0: move 1 back instead.
        assert_eq!(m.partition_to_move(5, 0, 1, 0), 1);
        // Another topic is unaffected.
        assert_eq!(m.partition_to_move(7, 3, 1, 0), 7);
        m.record(1, 0, 1, 0);
        assert!(m.by_partition.is_empty() && m.by_topic.is_empty());
    }

    #[test]
    fn chained_moves_remember_the_origin() {
        let mut m = Movements::default();
        m.record(1, 0, 0, 1);
        m.record(1, 0, 1, 2);
        assert_eq!(m.by_partition[&1], (0, 2));
        // Partition 4 went from 3 to 0. Sending partition 1 (which started at 0) on to 3
        // would swap the two between 0 and 3, so partition 4 goes back to 3 instead.
        m.record(4, 0, 3, 0);
        assert_eq!(m.partition_to_move(1, 0, 2, 3), 4);
    }
}
