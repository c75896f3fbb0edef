//! The sticky assignment when every member subscribes to the same topics (Java's
//! `ConstrainedAssignmentBuilder`).
//!
//! With identical subscriptions the balanced shape is known up front: every member gets
//! `min_quota = P / N` partitions and `P % N` of them one more. So:
//!
//! 1. each member keeps what it owns, up to its quota (the first `P % N` members found
//!    owning `max_quota` or more keep `max_quota`), lowest partition numbers first;
//! 2. the rest are dealt round robin: first to members under `min_quota`, then one each to
//!    members at `min_quota` until `P % N` members have `max_quota`.
//!
//! Every partition moves at most once and only when a quota forces it, which is the fewest
//! moves any balanced assignment can make.

use std::collections::{HashMap, VecDeque};

use super::{Layout, Ownership};
use crate::error::{Error, Result};

/// Partitions per member, and the partitions that went to a member other than their owner.
pub(super) struct Constrained {
    pub assignment: Vec<Vec<u32>>,
    pub transferring: Vec<(u32, usize)>,
}

struct Builder<'a> {
    ownership: &'a Ownership,
    min_quota: usize,
    max_quota: usize,
    /// How many members should end with `max_quota` (zero when it equals `min_quota`).
    expected_over_min: usize,
    /// How many members have `max_quota` so far.
    over_min: usize,
    assignment: Vec<Vec<u32>>,
    /// Owned partitions a member had to give up, by the member.
    maybe_revoked: HashMap<u32, usize>,
    /// Members below `min_quota`, in member order.
    under_min: Vec<usize>,
    /// Members at `min_quota` that may still take one more, in the order they got there.
    at_min: VecDeque<usize>,
    transferring: Vec<(u32, usize)>,
}

pub(super) fn build(layout: &Layout, ownership: &Ownership) -> Result<Constrained> {
    let (total, members) = (layout.total(), layout.members());
    let mut b = Builder {
        ownership,
        min_quota: total / members,
        max_quota: total.div_ceil(members),
        expected_over_min: total % members,
        over_min: 0,
        assignment: vec![Vec::new(); members],
        maybe_revoked: HashMap::new(),
        under_min: Vec::new(),
        at_min: VecDeque::new(),
        transferring: Vec::new(),
    };
    let mut assigned = vec![false; total];
    b.keep_owned(layout, &mut assigned);
    let unassigned: Vec<u32> = (0..total as u32)
        .filter(|&p| !assigned[p as usize])
        .collect();
    b.round_robin(&unassigned)?;
    b.verify()?;
    Ok(Constrained {
        assignment: b.assignment,
        transferring: b.transferring,
    })
}

impl Builder<'_> {
    fn keep_owned(&mut self, layout: &Layout, assigned: &mut [bool]) {
        for m in 0..self.assignment.len() {
            let mut owned = self.ownership.owned[m].clone();
            // Low partition numbers first, across topics, so that what a member keeps is
            // spread over topics rather than all of one.
            owned.sort_by_key(|&p| (layout.number(p), layout.topic(p)));
            let keep = if owned.len() < self.min_quota {
                self.under_min.push(m);
                owned.len()
            } else if owned.len() >= self.max_quota && self.over_min < self.expected_over_min {
                self.over_min += 1;
                if self.over_min == self.expected_over_min {
                    // No one else may grow past min_quota now.
                    self.at_min.clear();
                }
                self.max_quota
            } else {
                if self.over_min < self.expected_over_min {
                    self.at_min.push_back(m);
                }
                self.min_quota
            };
            for &p in &owned[keep..] {
                self.maybe_revoked.insert(p, m);
            }
            for &p in &owned[..keep] {
                assigned[p as usize] = true;
            }
            self.assignment[m].extend_from_slice(&owned[..keep]);
        }
    }

    fn round_robin(&mut self, unassigned: &[u32]) -> Result<()> {
        // `cursor` walks `under_min` like Java's iterator: it wraps around, and a member that
        // reaches min_quota is removed under it.
        let mut cursor = 0;
        for &p in unassigned {
            let (m, from_under) = if cursor < self.under_min.len() {
                cursor += 1;
                (self.under_min[cursor - 1], true)
            } else if !self.under_min.is_empty() {
                cursor = 1;
                (self.under_min[0], true)
            } else if let Some(m) = self.at_min.pop_front() {
                (m, false)
            } else {
                return Err(invariant("no member left to take the remaining partitions"));
            };
            let count = self.give(p, m);
            if count == self.min_quota && from_under {
                cursor -= 1;
                self.under_min.remove(cursor);
                self.at_min.push_back(m);
            } else if count == self.max_quota {
                self.over_min += 1;
            }
        }
        Ok(())
    }

    /// Gives `p` to `m`, noting a transfer when someone else still owns it; returns `m`'s
    /// new count.
    fn give(&mut self, p: u32, m: usize) -> usize {
        let taken_from_other = self.maybe_revoked.get(&p).is_some_and(|&owner| owner != m);
        if taken_from_other || self.ownership.contested.contains(&p) {
            self.transferring.push((p, m));
        }
        self.assignment[m].push(p);
        self.assignment[m].len()
    }

    fn verify(&self) -> Result<()> {
        if self.under_min.is_empty() {
            return Ok(());
        }
        if self.over_min != self.expected_over_min {
            return Err(invariant(
                "fewer members than expected reached max quota, yet partitions ran out",
            ));
        }
        match self
            .under_min
            .iter()
            .find(|&&m| self.assignment[m].len() != self.min_quota)
        {
            Some(_) => Err(invariant("a member ended below min quota")),
            None => Ok(()),
        }
    }
}

fn invariant(what: &str) -> Error {
    Error::InvalidArgument(format!("sticky assignor invariant broken: {what}"))
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

    fn members(ids: &[&str], topics: &[&str]) -> Vec<GroupMember> {
        ids.iter()
            .map(|id| GroupMember::new(*id, Subscription::new(topics.iter().copied())))
            .collect()
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
    fn fresh_assignment_deals_round_robin_then_tops_up_in_member_order() {
        // StickyAssignor javadoc example 1: three members, four topics of two partitions.
        let topics = ["t0", "t1", "t2", "t3"];
        let group = members(&["C0", "C1", "C2"], &topics);
        let counts = counts(&[("t0", 2), ("t1", 2), ("t2", 2), ("t3", 2)]);
        let out = assign(&counts, &group, &vec![MemberData::default(); 3]).unwrap();
        assert_eq!(
            out.assignment["C0"],
            [tp("t0", 0), tp("t1", 1), tp("t3", 0)]
        );
        assert_eq!(
            out.assignment["C1"],
            [tp("t0", 1), tp("t2", 0), tp("t3", 1)]
        );
        assert_eq!(out.assignment["C2"], [tp("t1", 0), tp("t2", 1)]);
        assert_eq!(out.transferring.map(|t| t.len()), Some(0));
    }

    #[test]
    fn a_leaving_member_only_moves_its_own_partitions() {
        let topics = ["t0", "t1", "t2", "t3"];
        let counts = counts(&[("t0", 2), ("t1", 2), ("t2", 2), ("t3", 2)]);
        let group = members(&["C0", "C2"], &topics);
        let data = [
            owned(&[tp("t0", 0), tp("t1", 1), tp("t3", 0)], 1),
            owned(&[tp("t1", 0), tp("t2", 1)], 1),
        ];
        let out = assign(&counts, &group, &data).unwrap();
        // Kept first (low partition numbers first), then C1's old partitions dealt out.
        assert_eq!(
            out.assignment["C0"],
            [tp("t0", 0), tp("t3", 0), tp("t1", 1), tp("t0", 1)]
        );
        assert_eq!(
            out.assignment["C2"],
            [tp("t1", 0), tp("t2", 1), tp("t2", 0), tp("t3", 1)]
        );
    }

    #[test]
    fn a_joining_member_takes_only_the_excess() {
        let counts = counts(&[("t", 6)]);
        let group = members(&["a", "b", "c"], &["t"]);
        let data = [
            owned(&[tp("t", 0), tp("t", 1), tp("t", 2)], 3),
            owned(&[tp("t", 3), tp("t", 4), tp("t", 5)], 3),
            MemberData::default(),
        ];
        let out = assign(&counts, &group, &data).unwrap();
        assert_eq!(out.assignment["a"], [tp("t", 0), tp("t", 1)]);
        assert_eq!(out.assignment["b"], [tp("t", 3), tp("t", 4)]);
        assert_eq!(out.assignment["c"], [tp("t", 2), tp("t", 5)]);
        let transferring = out.transferring.unwrap();
        assert_eq!(transferring.len(), 2);
        assert_eq!(transferring[&tp("t", 2)], "c");
    }

    #[test]
    fn the_first_members_owning_enough_keep_max_quota() {
        // 7 partitions over 3: quotas 2 and 3, one member gets 3.
        let counts = counts(&[("t", 7)]);
        let group = members(&["a", "b", "c"], &["t"]);
        let data = [
            owned(&[tp("t", 0), tp("t", 1), tp("t", 2)], 1),
            owned(&[tp("t", 3), tp("t", 4), tp("t", 5), tp("t", 6)], 1),
            MemberData::default(),
        ];
        let out = assign(&counts, &group, &data).unwrap();
        assert_eq!(out.assignment["a"].len(), 3);
        assert_eq!(out.assignment["b"], [tp("t", 3), tp("t", 4)]);
        assert_eq!(out.assignment["c"], [tp("t", 5), tp("t", 6)]);
    }

    #[test]
    fn a_partition_claimed_twice_in_one_generation_is_given_out_as_a_transfer() {
        let counts = counts(&[("t", 2)]);
        let group = members(&["a", "b"], &["t"]);
        let data = [owned(&[tp("t", 0)], 2), owned(&[tp("t", 0), tp("t", 1)], 2)];
        let out = assign(&counts, &group, &data).unwrap();
        assert_eq!(out.assignment["a"], [tp("t", 0)]);
        assert_eq!(out.assignment["b"], [tp("t", 1)]);
        let transferring = out.transferring.unwrap();
        assert_eq!(transferring.get(&tp("t", 0)).map(String::as_str), Some("a"));
    }

    #[test]
    fn more_members_than_partitions() {
        let counts = counts(&[("t", 2)]);
        let group = members(&["a", "b", "c", "d"], &["t"]);
        let data = [
            MemberData::default(),
            MemberData::default(),
            MemberData::default(),
            owned(&[tp("t", 0), tp("t", 1)], 1),
        ];
        let out = assign(&counts, &group, &data).unwrap();
        assert_eq!(out.assignment["d"], [tp("t", 0)]);
        assert_eq!(out.assignment["a"], [tp("t", 1)]);
        assert!(out.assignment["b"].is_empty() && out.assignment["c"].is_empty());
    }
}
