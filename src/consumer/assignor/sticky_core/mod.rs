//! The assignment algorithm shared by the sticky and cooperative-sticky assignors: the Java
//! client's `AbstractStickyAssignor`.
//!
//! Goals, in order: balance (partition counts differ by at most one, or no partition could
//! move to a member with two fewer), then stickiness (partitions stay with the member that
//! owns them). The two flavours differ only in where a member's previous partitions and
//! generation come from ([`MemberData`]) and in what the cooperative one does afterwards.
//!
//! ```text
//!  MemberData per member ──▶ resolve ownership ──▶ same subscriptions? ──yes──▶ constrained
//!  (partitions, generation)   (highest generation         │                      (quotas, O(P log P))
//!                              wins; a tie owns nothing)   └──no───▶ general
//!                                                                     (greedy fill, then moves)
//! ```
//!
//! Internally partitions and members are plain indices: topics in Java name order, each
//! topic's partitions in number order, members in Java member-id order. Those orders are the
//! tie-breakers Java uses, so the constrained path gives Java's assignment exactly; where Java
//! walks a `HashMap` we walk member-id order instead, which keeps the result deterministic.

mod constrained;
mod general;
mod movements;

#[cfg(test)]
mod java_parity;

use std::collections::{HashMap, HashSet};

use crate::consumer::assignor::{check_unique_members, java_cmp, subscribed_topics, GroupMember};
use crate::error::{Error, Result};
use crate::types::TopicPartition;

/// The generation of a member that has never been assigned anything.
pub(crate) const DEFAULT_GENERATION: i32 = -1;

/// What a member said it owned before this rebalance, and in which generation.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct MemberData {
    /// The partitions it owned.
    pub partitions: Vec<TopicPartition>,
    /// The generation they were assigned in, when the member said.
    pub generation: Option<i32>,
}

/// The result of a sticky assignment.
#[derive(Debug)]
pub(crate) struct StickyOutcome {
    /// Partitions per member id; every member has an entry.
    pub assignment: HashMap<String, Vec<TopicPartition>>,
    /// Partitions given to someone other than the member that still owns them (new owner
    /// by partition), when the constrained path could tell; `None` after the general path,
    /// whose caller has to work it out from the subscriptions.
    pub transferring: Option<HashMap<TopicPartition, String>>,
}

/// The topics, partitions and members of one assignment as indices.
pub(super) struct Layout {
    /// Topic names in Java order.
    names: Vec<String>,
    /// The first partition index of each topic, plus the total at the end.
    offsets: Vec<u32>,
    /// The topic of each partition index.
    topic_of: Vec<u32>,
    by_name: HashMap<String, u32>,
    /// Per member (in member order), the topics it subscribes to that exist, sorted.
    member_topics: Vec<Vec<u32>>,
    /// Per topic, the members subscribing to it, in member order.
    subscribers: Vec<Vec<usize>>,
}

impl Layout {
    fn new(topics: Vec<(String, i32)>, members: &[&GroupMember]) -> Self {
        let mut offsets = Vec::with_capacity(topics.len() + 1);
        let mut topic_of = Vec::new();
        let mut names = Vec::with_capacity(topics.len());
        for (t, (name, count)) in topics.into_iter().enumerate() {
            offsets.push(topic_of.len() as u32);
            topic_of.extend(std::iter::repeat_n(t as u32, count as usize));
            names.push(name);
        }
        offsets.push(topic_of.len() as u32);
        let by_name: HashMap<String, u32> = names
            .iter()
            .enumerate()
            .map(|(i, n)| (n.clone(), i as u32))
            .collect();
        let mut subscribers = vec![Vec::new(); names.len()];
        let member_topics = members
            .iter()
            .enumerate()
            .map(|(m, member)| {
                let mut topics: Vec<u32> = member
                    .subscription
                    .topics
                    .iter()
                    .filter_map(|t| by_name.get(t).copied())
                    .collect();
                topics.sort_unstable();
                topics.dedup();
                for &t in &topics {
                    subscribers[t as usize].push(m);
                }
                topics
            })
            .collect();
        Layout {
            names,
            offsets,
            topic_of,
            by_name,
            member_topics,
            subscribers,
        }
    }

    /// The number of partitions.
    fn total(&self) -> usize {
        self.topic_of.len()
    }

    fn members(&self) -> usize {
        self.member_topics.len()
    }

    /// The index of a partition, if its topic is being assigned and the partition exists.
    fn index(&self, tp: &TopicPartition) -> Option<u32> {
        let t = *self.by_name.get(&tp.topic)? as usize;
        let (start, end) = (self.offsets[t], self.offsets[t + 1]);
        let p = u32::try_from(tp.partition).ok()?;
        (p < end - start).then_some(start + p)
    }

    fn topic(&self, p: u32) -> u32 {
        self.topic_of[p as usize]
    }

    /// The partition number within its topic.
    fn number(&self, p: u32) -> u32 {
        p - self.offsets[self.topic(p) as usize]
    }

    fn partition_count(&self, t: u32) -> usize {
        (self.offsets[t as usize + 1] - self.offsets[t as usize]) as usize
    }

    fn subscribes(&self, m: usize, t: u32) -> bool {
        self.member_topics[m].binary_search(&t).is_ok()
    }

    fn topic_partition(&self, p: u32) -> TopicPartition {
        TopicPartition::new(
            self.names[self.topic(p) as usize].clone(),
            self.number(p) as i32,
        )
    }
}

/// Who owned what before this rebalance, once conflicting claims are settled.
pub(super) struct Ownership {
    /// Per member, the partitions it keeps a claim on, in the order it listed them.
    owned: Vec<Vec<u32>>,
    /// Partitions claimed by several members of the same (highest) generation: no one owns
    /// them, and handing them out counts as a transfer.
    contested: HashSet<u32>,
    /// For partitions also claimed by members of an older generation, the most recent of
    /// those: the general path gives a partition back to it when that helps balance.
    previous_owner: HashMap<u32, usize>,
}

impl Ownership {
    fn resolve(layout: &Layout, data: &[&MemberData]) -> Self {
        let max_generation = data
            .iter()
            .map(|d| d.generation.unwrap_or(DEFAULT_GENERATION))
            .fold(DEFAULT_GENERATION, i32::max);

        // Every member's claims, deduplicated, with the highest generation claiming each.
        let claims: Vec<Vec<u32>> = data
            .iter()
            .map(|d| {
                let mut seen = HashSet::new();
                d.partitions
                    .iter()
                    .filter_map(|tp| layout.index(tp))
                    .filter(|p| seen.insert(*p))
                    .collect()
            })
            .collect();
        let mut best: HashMap<u32, (i32, usize, u32)> = HashMap::new(); // generation, member, claimants
        for (m, partitions) in claims.iter().enumerate() {
            let generation = data[m].generation.unwrap_or(DEFAULT_GENERATION);
            for &p in partitions {
                let entry = best.entry(p).or_insert((generation, m, 0));
                if generation > entry.0 {
                    *entry = (generation, m, 1);
                } else if generation == entry.0 {
                    entry.2 += 1;
                }
            }
        }
        // Java settles conflicts claim by claim in HashMap order, so with three claimants the
        // outcome can depend on that order; settling per partition is order-free: the one
        // claimant of the highest generation owns it, and a tie leaves it to nobody.
        let owned = claims
            .iter()
            .enumerate()
            .map(|(m, partitions)| {
                partitions
                    .iter()
                    .copied()
                    .filter(|p| matches!(best.get(p), Some(&(_, w, 1)) if w == m))
                    .collect()
            })
            .collect();
        let contested = best
            .iter()
            .filter(|(_, &(_, _, n))| n > 1)
            .map(|(&p, _)| p)
            .collect();

        // Claims from older generations (or none when someone has one), newest first.
        let mut previous: HashMap<u32, (i32, usize)> = HashMap::new();
        for (m, partitions) in claims.iter().enumerate() {
            let generation = match data[m].generation {
                Some(g) if g < max_generation => g,
                None if max_generation > DEFAULT_GENERATION => DEFAULT_GENERATION,
                _ => continue,
            };
            for &p in partitions {
                let entry = previous.entry(p).or_insert((generation, m));
                if generation > entry.0 {
                    *entry = (generation, m);
                }
            }
        }
        Ownership {
            owned,
            contested,
            previous_owner: previous.into_iter().map(|(p, (_, m))| (p, m)).collect(),
        }
    }
}

/// Runs the sticky assignment. `data[i]` is what `members[i]` owned before.
pub(crate) fn assign(
    partitions_per_topic: &HashMap<String, i32>,
    members: &[GroupMember],
    data: &[MemberData],
) -> Result<StickyOutcome> {
    check_unique_members(members)?;
    if data.len() != members.len() {
        return Err(Error::InvalidArgument(format!(
            "sticky assignor given member data for {} of {} members",
            data.len(),
            members.len()
        )));
    }
    let mut order: Vec<usize> = (0..members.len()).collect();
    order.sort_by(|&a, &b| java_cmp(&members[a].member_id, &members[b].member_id));
    let sorted: Vec<&GroupMember> = order.iter().map(|&i| &members[i]).collect();
    let sorted_data: Vec<&MemberData> = order.iter().map(|&i| &data[i]).collect();

    let topics = subscribed_topics(partitions_per_topic, members);
    // Partitions are u32 indices; no real cluster comes near, but metadata is input.
    let total: u64 = topics.iter().map(|(_, n)| *n as u64).sum();
    if total > u64::from(u32::MAX) {
        return Err(Error::InvalidArgument(format!(
            "sticky assignor cannot assign {total} partitions"
        )));
    }
    let layout = Layout::new(topics, &sorted);
    let ownership = Ownership::resolve(&layout, &sorted_data);

    let (lists, transferring) = if members.is_empty() {
        (Vec::new(), Some(Vec::new()))
    } else if all_subscriptions_equal(&sorted) {
        let out = constrained::build(&layout, &ownership)?;
        (out.assignment, Some(out.transferring))
    } else {
        (general::build(&layout, &ownership), None)
    };

    let id = |m: usize| sorted[m].member_id.clone();
    Ok(StickyOutcome {
        assignment: lists
            .into_iter()
            .enumerate()
            .map(|(m, list)| {
                (
                    id(m),
                    list.into_iter()
                        .map(|p| layout.topic_partition(p))
                        .collect(),
                )
            })
            .collect(),
        transferring: transferring.map(|t| {
            t.into_iter()
                .map(|(p, m)| (layout.topic_partition(p), id(m)))
                .collect()
        }),
    })
}

/// Whether every member subscribes to the same set of topics (existing or not), which is
/// when the constrained path applies.
fn all_subscriptions_equal(members: &[&GroupMember]) -> bool {
    let mut sets = members
        .iter()
        .map(|m| m.subscription.topics.iter().collect::<HashSet<&String>>());
    match sets.next() {
        Some(first) => sets.all(|s| s == first),
        None => true,
    }
}

/// The Java balance score: the sum of count differences over all pairs of members. Lower is
/// better; zero means perfectly even.
fn balance_score(counts: impl Iterator<Item = usize>) -> i64 {
    let mut counts: Vec<i64> = counts.map(|c| c as i64).collect();
    counts.sort_unstable();
    let n = counts.len() as i64;
    // In sorted order the i-th count is larger than i others and smaller than n-1-i others.
    counts
        .iter()
        .enumerate()
        .map(|(i, &c)| c * (2 * i as i64 - (n - 1)))
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consumer::assignor::Subscription;

    fn tp(t: &str, p: i32) -> TopicPartition {
        TopicPartition::new(t, p)
    }

    fn member(id: &str, topics: &[&str]) -> GroupMember {
        GroupMember::new(id, Subscription::new(topics.iter().copied()))
    }

    fn data(partitions: &[TopicPartition], generation: Option<i32>) -> MemberData {
        MemberData {
            partitions: partitions.to_vec(),
            generation,
        }
    }

    #[test]
    fn balance_score_sums_pairwise_differences() {
        assert_eq!(balance_score([3, 3, 3].into_iter()), 0);
        assert_eq!(balance_score([1, 2, 4].into_iter()), 1 + 3 + 2);
        assert_eq!(balance_score(std::iter::empty()), 0);
    }

    #[test]
    fn layout_refuses_partitions_that_do_not_exist() {
        let members = [member("a", &["t"])];
        let refs: Vec<&GroupMember> = members.iter().collect();
        let layout = Layout::new(vec![("t".into(), 2)], &refs);
        assert_eq!(layout.index(&tp("t", 1)), Some(1));
        assert_eq!(layout.index(&tp("t", 2)), None);
        assert_eq!(layout.index(&tp("t", -1)), None);
        assert_eq!(layout.index(&tp("u", 0)), None);
        assert_eq!(layout.topic_partition(1), tp("t", 1));
    }

    #[test]
    fn the_highest_generation_wins_a_contested_partition_and_a_tie_owns_nothing() {
        let members = [
            member("a", &["t"]),
            member("b", &["t"]),
            member("c", &["t"]),
        ];
        let refs: Vec<&GroupMember> = members.iter().collect();
        let layout = Layout::new(vec![("t".into(), 3)], &refs);
        let a = data(&[tp("t", 0), tp("t", 1)], Some(4));
        let b = data(&[tp("t", 0), tp("t", 1), tp("t", 2)], Some(5));
        let c = data(&[tp("t", 1)], Some(5));
        let own = Ownership::resolve(&layout, &[&a, &b, &c]);
        assert_eq!(own.owned[0], Vec::<u32>::new());
        assert_eq!(own.owned[1], vec![0, 2]);
        assert!(own.owned[2].is_empty());
        assert_eq!(own.contested, HashSet::from([1]));
        // a's older claims are remembered as previous owners.
        assert_eq!(own.previous_owner.get(&0), Some(&0));
    }

    #[test]
    fn every_member_gets_an_entry_even_with_nothing_to_assign() {
        let members = [member("a", &["t"]), member("b", &["t"])];
        let out = assign(
            &HashMap::new(),
            &members,
            &[MemberData::default(), MemberData::default()],
        )
        .unwrap();
        assert_eq!(out.assignment.len(), 2);
        assert!(out.assignment.values().all(Vec::is_empty));
    }
}
