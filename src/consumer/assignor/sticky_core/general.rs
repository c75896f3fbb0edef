//! The sticky assignment when members subscribe to different topics (Java's
//! `GeneralAssignmentBuilder`).
//!
//! 1. Each member keeps the partitions it owns of topics it still subscribes to.
//! 2. Unowned partitions go, one at a time, to the least loaded member subscribing to their
//!    topic; topics with the fewest subscribers go first since they have the least choice.
//! 3. While some partition could move to a member with two fewer partitions, it moves (back
//!    to its previous owner of an older generation if that helps, else to the least loaded
//!    member that can take it).
//! 4. If that reshuffle did not lower the balance score, it is undone: stickiness wins over a
//!    change that does not actually balance better.
//!
//! Java re-checks the whole assignment for balance before every step, which is cubic; here
//! members sit in a set ordered by load and each member counts its partitions per topic, so
//! the check only looks at pairs of members that are two or more apart.

use std::collections::{BTreeSet, HashMap};

use super::movements::Movements;
use super::{balance_score, Layout, Ownership};

pub(super) fn build(layout: &Layout, ownership: &Ownership) -> Vec<Vec<u32>> {
    let members = layout.members();
    let total = layout.total();
    let mut g = General {
        layout,
        previous_owner: &ownership.previous_owner,
        assignment: vec![Vec::new(); members],
        owner: vec![None; total],
        per_topic: vec![HashMap::new(); members],
        by_load: BTreeSet::new(),
        participating: vec![true; members],
        max_size: (0..members)
            .map(|m| {
                let topics = &layout.member_topics[m];
                topics.iter().map(|&t| layout.partition_count(t)).sum()
            })
            .collect(),
        movements: Movements::default(),
        moves: 0,
        // A guard against a cycle of moves, never reached in practice: a useful move makes
        // the sum of squared loads drop, so there can only be so many.
        move_budget: total.saturating_mul(members).max(64),
        balanced: None,
    };

    let mut revocation_required = false;
    for (m, owned) in ownership.owned.iter().enumerate() {
        for &p in owned {
            if layout.subscribes(m, layout.topic(p)) {
                g.give(m, p);
            } else {
                // The member dropped the topic; it will have to revoke the partition.
                revocation_required = true;
            }
        }
    }
    g.by_load = (0..members).map(|m| (g.assignment[m].len(), m)).collect();

    let mut topics: Vec<u32> = (0..layout.subscribers.len() as u32).collect();
    topics.sort_by_key(|&t| (layout.subscribers[t as usize].len(), t));
    let all: Vec<u32> = topics
        .iter()
        .flat_map(|&t| {
            let start = layout.offsets[t as usize];
            start..start + layout.partition_count(t) as u32
        })
        .collect();
    let unassigned: Vec<u32> = all
        .iter()
        .copied()
        .filter(|&p| g.owner[p as usize].is_none())
        .collect();

    g.balance(all, unassigned, revocation_required);
    g.assignment
}

struct General<'a> {
    layout: &'a Layout,
    previous_owner: &'a HashMap<u32, usize>,
    assignment: Vec<Vec<u32>>,
    owner: Vec<Option<usize>>,
    /// Per member, how many partitions of each topic it has.
    per_topic: Vec<HashMap<u32, u32>>,
    /// The members that may still change, by (partition count, member).
    by_load: BTreeSet<(usize, usize)>,
    participating: Vec<bool>,
    /// Per member, all the partitions of all its topics.
    max_size: Vec<usize>,
    movements: Movements,
    moves: usize,
    move_budget: usize,
    /// `is_balanced`, until the next change.
    balanced: Option<bool>,
}

impl General<'_> {
    fn load(&self, m: usize) -> usize {
        self.assignment[m].len()
    }

    fn give(&mut self, m: usize, p: u32) {
        let was_ranked = self.by_load.remove(&(self.load(m), m));
        self.assignment[m].push(p);
        self.owner[p as usize] = Some(m);
        *self.per_topic[m].entry(self.layout.topic(p)).or_default() += 1;
        if was_ranked {
            self.by_load.insert((self.load(m), m));
        }
        self.balanced = None;
    }

    fn take(&mut self, m: usize, p: u32) {
        let was_ranked = self.by_load.remove(&(self.load(m), m));
        if let Some(pos) = self.assignment[m].iter().position(|&x| x == p) {
            self.assignment[m].remove(pos);
        }
        self.owner[p as usize] = None;
        let t = self.layout.topic(p);
        if let Some(n) = self.per_topic[m].get_mut(&t) {
            *n -= 1;
            if *n == 0 {
                self.per_topic[m].remove(&t);
            }
        }
        if was_ranked {
            self.by_load.insert((self.load(m), m));
        }
        self.balanced = None;
    }

    /// The least loaded member (ties by member order) that subscribes to `t`.
    fn least_loaded_for(&self, t: u32) -> Option<usize> {
        self.by_load
            .iter()
            .map(|&(_, m)| m)
            .find(|&m| self.layout.subscribes(m, t))
    }

    fn can_participate(&self, m: usize) -> bool {
        self.load(m) < self.max_size[m]
            || self.assignment[m]
                .iter()
                .any(|&p| self.layout.subscribers[self.layout.topic(p) as usize].len() >= 2)
    }

    fn balance(&mut self, all: Vec<u32>, unassigned: Vec<u32>, revocation_required: bool) {
        let initializing = self.assignment.iter().all(Vec::is_empty);
        for &p in &unassigned {
            if let Some(m) = self.least_loaded_for(self.layout.topic(p)) {
                self.give(m, p);
            }
        }

        // Only topics with two or more subscribers, and members that could gain or lose
        // something, take part in what follows.
        let movable = |p: &u32| self.layout.subscribers[self.layout.topic(*p) as usize].len() >= 2;
        let all: Vec<u32> = all.into_iter().filter(movable).collect();
        let unassigned: Vec<u32> = unassigned.into_iter().filter(movable).collect();
        for m in 0..self.assignment.len() {
            if !self.can_participate(m) {
                self.by_load.remove(&(self.load(m), m));
                self.participating[m] = false;
            }
        }

        let before = self.assignment.clone();
        if !revocation_required {
            // Nothing has to be taken away anyway, so first try moving only new partitions.
            self.reassign_all(&unassigned);
        }
        let reassigned = self.reassign_all(&all);
        if !initializing && reassigned && self.score(&self.assignment) >= self.score(&before) {
            self.assignment = before;
        }
    }

    fn score(&self, assignment: &[Vec<u32>]) -> i64 {
        balance_score(
            (0..assignment.len())
                .filter(|&m| self.participating[m])
                .map(|m| assignment[m].len()),
        )
    }

    /// Moves partitions of `list` while that improves balance; whether anything moved.
    fn reassign_all(&mut self, list: &[u32]) -> bool {
        let mut reassigned = false;
        loop {
            let mut modified = false;
            for &p in list {
                if self.is_balanced() || self.moves >= self.move_budget {
                    break;
                }
                let Some(current) = self.owner[p as usize] else {
                    continue;
                };
                let t = self.layout.topic(p);
                let load = self.load(current);
                if let Some(&previous) = self.previous_owner.get(&p) {
                    // Java does not check that the previous owner still takes part and still
                    // subscribes to the topic; without the check it can fail or hand a
                    // partition to a member that did not ask for it.
                    if self.participating[previous]
                        && self.layout.subscribes(previous, t)
                        && load > self.load(previous) + 1
                    {
                        self.reassign(p, previous);
                        reassigned = true;
                        modified = true;
                        continue;
                    }
                }
                let lighter_exists = self.layout.subscribers[t as usize]
                    .iter()
                    .any(|&o| self.participating[o] && load > self.load(o) + 1);
                if lighter_exists {
                    if let Some(to) = self.least_loaded_for(t) {
                        self.reassign(p, to);
                        reassigned = true;
                        modified = true;
                    }
                }
            }
            if !modified {
                return reassigned;
            }
        }
    }

    fn reassign(&mut self, p: u32, to: usize) {
        let Some(current) = self.owner[p as usize] else {
            return;
        };
        let t = self.layout.topic(p);
        let q = self.movements.partition_to_move(p, t, current, to);
        let Some(from) = self.owner[q as usize] else {
            return;
        };
        if from == to {
            return;
        }
        self.movements.record(q, t, from, to);
        self.take(from, q);
        self.give(to, q);
        self.moves += 1;
    }

    /// Java's definition: counts differ by at most one, or no member could take a partition
    /// of one of its topics from a member holding two or more partitions more than it.
    fn is_balanced(&mut self) -> bool {
        if let Some(b) = self.balanced {
            return b;
        }
        let b = self.compute_balanced();
        self.balanced = Some(b);
        b
    }

    fn compute_balanced(&self) -> bool {
        let (Some(&(min, _)), Some(&(max, _))) = (self.by_load.first(), self.by_load.last()) else {
            return true;
        };
        if min + 1 >= max {
            return true;
        }
        for &(load, m) in &self.by_load {
            if load + 1 >= max {
                break; // no one holds two more than this member or any after it
            }
            if load == self.max_size[m] {
                continue; // it already has every partition it could get
            }
            let topics = &self.layout.member_topics[m];
            for &(other_load, o) in self.by_load.iter().rev() {
                if other_load <= load + 1 {
                    break;
                }
                let others = &self.per_topic[o];
                let shares_a_topic = if topics.len() <= others.len() {
                    topics.iter().any(|t| others.contains_key(t))
                } else {
                    others.keys().any(|t| topics.binary_search(t).is_ok())
                };
                if shares_a_topic {
                    return false;
                }
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::super::{assign, MemberData};
    use crate::consumer::assignor::{GroupMember, Subscription};
    use crate::types::TopicPartition;

    fn tp(t: &str, p: i32) -> TopicPartition {
        TopicPartition::new(t, p)
    }

    fn member(id: &str, topics: &[&str]) -> GroupMember {
        GroupMember::new(id, Subscription::new(topics.iter().copied()))
    }

    fn owned(partitions: &[TopicPartition], generation: i32) -> MemberData {
        MemberData {
            partitions: partitions.to_vec(),
            generation: Some(generation),
        }
    }

    fn counts(topics: &[(&str, i32)]) -> HashMap<String, i32> {
        topics.iter().map(|(t, n)| (t.to_string(), *n)).collect()
    }

    #[test]
    fn javadoc_example_2_fresh_then_a_member_leaves() {
        // C0: t0; C1: t0, t1; C2: t0, t1, t2 with 1, 2 and 3 partitions.
        let counts = counts(&[("t0", 1), ("t1", 2), ("t2", 3)]);
        let group = [
            member("C0", &["t0"]),
            member("C1", &["t0", "t1"]),
            member("C2", &["t0", "t1", "t2"]),
        ];
        let out = assign(&counts, &group, &vec![MemberData::default(); 3]).unwrap();
        assert_eq!(out.assignment["C0"], [tp("t0", 0)]);
        assert_eq!(out.assignment["C1"], [tp("t1", 0), tp("t1", 1)]);
        assert_eq!(
            out.assignment["C2"],
            [tp("t2", 0), tp("t2", 1), tp("t2", 2)]
        );
        assert!(out.transferring.is_none());

        // C0 leaves: sticky keeps all five other assignments.
        let data = [
            owned(&out.assignment["C1"], 1),
            owned(&out.assignment["C2"], 1),
        ];
        let out = assign(&counts, &group[1..], &data).unwrap();
        assert_eq!(
            out.assignment["C1"],
            [tp("t1", 0), tp("t1", 1), tp("t0", 0)]
        );
        assert_eq!(
            out.assignment["C2"],
            [tp("t2", 0), tp("t2", 1), tp("t2", 2)]
        );
    }

    #[test]
    fn a_dropped_topic_is_revoked_and_balance_restored() {
        let counts = counts(&[("a", 2), ("b", 2)]);
        // x used to read a and b; it now reads only b.
        let group = [member("x", &["b"]), member("y", &["a", "b"])];
        let data = [
            owned(&[tp("a", 0), tp("a", 1), tp("b", 0)], 3),
            owned(&[tp("b", 1)], 3),
        ];
        let out = assign(&counts, &group, &data).unwrap();
        // y must take all of a, so it hands b-1 to x to even things out.
        assert_eq!(out.assignment["x"], [tp("b", 0), tp("b", 1)]);
        assert_eq!(out.assignment["y"], [tp("a", 0), tp("a", 1)]);
    }

    #[test]
    fn unbalanced_owners_give_up_partitions_to_lighter_members() {
        let counts = counts(&[("a", 6), ("b", 1)]);
        let group = [member("x", &["a", "b"]), member("y", &["a"])];
        let all_a: Vec<_> = (0..6).map(|p| tp("a", p)).collect();
        let data = [owned(&all_a, 2), MemberData::default()];
        let out = assign(&counts, &group, &data).unwrap();
        assert_eq!(out.assignment["x"].len(), 4);
        assert_eq!(out.assignment["y"].len(), 3);
        assert!(out.assignment["x"].contains(&tp("b", 0)));
    }

    #[test]
    fn an_older_generation_owner_gets_its_partition_back_when_that_balances() {
        let counts = counts(&[("a", 4), ("b", 1)]);
        let group = [
            member("x", &["a", "b"]),
            member("y", &["a"]),
            member("z", &["a"]),
        ];
        // z last owned a-0 in generation 1; x claims all of a from generation 2.
        let all_a: Vec<_> = (0..4).map(|p| tp("a", p)).collect();
        let data = [
            owned(&all_a, 2),
            MemberData::default(),
            owned(&[tp("a", 0)], 1),
        ];
        let out = assign(&counts, &group, &data).unwrap();
        // Without the history a-0 would go to y, the first of the two empty members.
        assert_eq!(out.assignment["z"], [tp("a", 0)]);
        assert_eq!(out.assignment["y"], [tp("a", 1), tp("a", 2)]);
        assert_eq!(out.assignment["x"], [tp("a", 3), tp("b", 0)]);
    }
}
