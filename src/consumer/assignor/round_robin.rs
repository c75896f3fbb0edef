//! The round robin assignor: all partitions of all topics dealt out one by one over the
//! members in member order.

use std::collections::{HashMap, HashSet};

use super::{
    check_unique_members, into_assignments, member_order, subscribed_topics, Assignment,
    GroupMember, PartitionAssignor,
};
use crate::error::Result;
use crate::types::TopicPartition;

/// Lays out every partition of every subscribed topic, sorted by topic then partition, and
/// deals them out in turn over the members in member order, skipping a member that does not
/// subscribe to the partition's topic. The Java client's `RoundRobinAssignor` (protocol name
/// `roundrobin`).
///
/// With identical subscriptions the counts differ by at most one; with differing ones the
/// result can be unbalanced (the sticky assignors do better). Members are ordered as in
/// [`RangeAssignor`](super::RangeAssignor): static members first by `group.instance.id`.
///
/// ```
/// use std::collections::HashMap;
/// use kafka_client::TopicPartition;
/// use kafka_client::consumer::assignor::{GroupMember, PartitionAssignor, RoundRobinAssignor, Subscription};
///
/// let counts = HashMap::from([("t0".to_owned(), 3), ("t1".to_owned(), 3)]);
/// let members = [
///     GroupMember::new("C0", Subscription::new(["t0", "t1"])),
///     GroupMember::new("C1", Subscription::new(["t0", "t1"])),
/// ];
/// let out = RoundRobinAssignor::new().assign(&counts, &members).unwrap();
/// let tp = |t: &str, p| TopicPartition::new(t, p);
/// assert_eq!(out["C0"].partitions, [tp("t0", 0), tp("t0", 2), tp("t1", 1)]);
/// assert_eq!(out["C1"].partitions, [tp("t0", 1), tp("t1", 0), tp("t1", 2)]);
/// ```
#[derive(Debug, Default, Clone)]
pub struct RoundRobinAssignor {
    _private: (),
}

impl RoundRobinAssignor {
    /// The round robin assignor.
    pub fn new() -> Self {
        RoundRobinAssignor::default()
    }
}

impl PartitionAssignor for RoundRobinAssignor {
    fn name(&self) -> &str {
        "roundrobin"
    }

    fn assign(
        &self,
        partitions_per_topic: &HashMap<String, i32>,
        members: &[GroupMember],
    ) -> Result<HashMap<String, Assignment>> {
        check_unique_members(members)?;
        let mut ordered: Vec<&GroupMember> = members.iter().collect();
        ordered.sort_by(|a, b| member_order(a, b));
        let topic_sets: Vec<HashSet<&str>> = ordered
            .iter()
            .map(|m| m.subscription.topics.iter().map(String::as_str).collect())
            .collect();

        let mut lists: HashMap<String, Vec<TopicPartition>> = HashMap::new();
        // `next` is the circular iterator's position; it carries over from one partition
        // (and one topic) to the next, which is what spreads topics across members.
        let mut next = 0usize;
        for (topic, count) in subscribed_topics(partitions_per_topic, members) {
            for partition in 0..count {
                // Some member subscribes to every topic listed, so this finds one within a
                // lap; bounding it by the member count keeps that an argument, not a hope.
                let Some(offset) = (0..ordered.len())
                    .find(|k| topic_sets[(next + k) % ordered.len()].contains(topic.as_str()))
                else {
                    break;
                };
                let chosen = (next + offset) % ordered.len();
                lists
                    .entry(ordered[chosen].member_id.clone())
                    .or_default()
                    .push(TopicPartition::new(topic.clone(), partition));
                next = chosen + 1;
            }
        }
        Ok(into_assignments(members, lists))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consumer::assignor::test_support::{counts, member, partitions, tp};

    #[test]
    fn javadoc_example_identical_subscriptions() {
        let out = RoundRobinAssignor::new()
            .assign(
                &counts(&[("t0", 3), ("t1", 3)]),
                &[
                    member("C0", None, &["t0", "t1"]),
                    member("C1", None, &["t0", "t1"]),
                ],
            )
            .unwrap();
        assert_eq!(
            partitions(&out, "C0"),
            [tp("t0", 0), tp("t0", 2), tp("t1", 1)]
        );
        assert_eq!(
            partitions(&out, "C1"),
            [tp("t0", 1), tp("t1", 0), tp("t1", 2)]
        );
    }

    #[test]
    fn javadoc_example_differing_subscriptions_skip_members() {
        let out = RoundRobinAssignor::new()
            .assign(
                &counts(&[("t0", 1), ("t1", 2), ("t2", 3)]),
                &[
                    member("C0", None, &["t0"]),
                    member("C1", None, &["t0", "t1"]),
                    member("C2", None, &["t0", "t1", "t2"]),
                ],
            )
            .unwrap();
        assert_eq!(partitions(&out, "C0"), [tp("t0", 0)]);
        assert_eq!(partitions(&out, "C1"), [tp("t1", 0)]);
        assert_eq!(
            partitions(&out, "C2"),
            [tp("t1", 1), tp("t2", 0), tp("t2", 1), tp("t2", 2)]
        );
    }

    #[test]
    fn javadoc_example_three_members_and_a_rolling_bounce() {
        let topics = counts(&[("t0", 3), ("t1", 3)]);
        let both = ["t0", "t1"];
        let out = RoundRobinAssignor::new()
            .assign(
                &topics,
                &[
                    member("C0", None, &both),
                    member("C1", None, &both),
                    member("C2", None, &both),
                ],
            )
            .unwrap();
        assert_eq!(partitions(&out, "C0"), [tp("t0", 0), tp("t1", 0)]);
        assert_eq!(partitions(&out, "C1"), [tp("t0", 1), tp("t1", 1)]);
        assert_eq!(partitions(&out, "C2"), [tp("t0", 2), tp("t1", 2)]);

        // C0 -> C5, C1 -> C3, C2 -> C4: the ids' new order shuffles everything.
        let out = RoundRobinAssignor::new()
            .assign(
                &topics,
                &[
                    member("C5", None, &both),
                    member("C3", None, &both),
                    member("C4", None, &both),
                ],
            )
            .unwrap();
        assert_eq!(partitions(&out, "C3"), [tp("t0", 0), tp("t1", 0)]);
        assert_eq!(partitions(&out, "C4"), [tp("t0", 1), tp("t1", 1)]);
        assert_eq!(partitions(&out, "C5"), [tp("t0", 2), tp("t1", 2)]);

        // With instance ids I0..I2 the bounce changes nothing.
        for ids in [["C0", "C1", "C2"], ["C5", "C3", "C4"]] {
            let out = RoundRobinAssignor::new()
                .assign(
                    &topics,
                    &[
                        member(ids[0], Some("I0"), &both),
                        member(ids[1], Some("I1"), &both),
                        member(ids[2], Some("I2"), &both),
                    ],
                )
                .unwrap();
            assert_eq!(partitions(&out, ids[0]), [tp("t0", 0), tp("t1", 0)]);
            assert_eq!(partitions(&out, ids[1]), [tp("t0", 1), tp("t1", 1)]);
            assert_eq!(partitions(&out, ids[2]), [tp("t0", 2), tp("t1", 2)]);
        }
    }

    #[test]
    fn only_subscribed_topics_with_metadata_are_assigned() {
        let out = RoundRobinAssignor::new()
            .assign(
                &counts(&[("t", 3), ("other", 3)]),
                &[
                    member("c", None, &["t", "missing"]),
                    member("idle", None, &[]),
                ],
            )
            .unwrap();
        assert_eq!(partitions(&out, "c"), [tp("t", 0), tp("t", 1), tp("t", 2)]);
        assert!(partitions(&out, "idle").is_empty());
    }

    #[test]
    fn no_members_gives_an_empty_result() {
        let out = RoundRobinAssignor::new()
            .assign(&counts(&[("t", 3)]), &[])
            .unwrap();
        assert!(out.is_empty());
    }
}
