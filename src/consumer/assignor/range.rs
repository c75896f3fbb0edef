//! The range assignor: each topic on its own, partitions in numeric order split into
//! contiguous ranges over the topic's subscribers in member order.

use std::collections::HashMap;

use super::{
    check_unique_members, into_assignments, member_order, subscribed_topics, Assignment,
    GroupMember, PartitionAssignor,
};
use crate::error::Result;
use crate::types::TopicPartition;

/// Assigns each topic separately: its partitions in numeric order are cut into contiguous
/// ranges, one per subscribed member in member order, the first members getting one extra
/// partition when the count does not divide evenly. The Java client's `RangeAssignor`
/// (protocol name `range`), without its rack-aware mode.
///
/// Members are ordered as Java orders them: static members first by `group.instance.id`,
/// then dynamic members by member id. Static members therefore keep the same ranges across
/// restarts as long as the group's shape does not change.
///
/// ```
/// use std::collections::HashMap;
/// use kafka_client::TopicPartition;
/// use kafka_client::consumer::assignor::{GroupMember, PartitionAssignor, RangeAssignor, Subscription};
///
/// let counts = HashMap::from([("t0".to_owned(), 3), ("t1".to_owned(), 3)]);
/// let members = [
///     GroupMember::new("C0", Subscription::new(["t0", "t1"])),
///     GroupMember::new("C1", Subscription::new(["t0", "t1"])),
/// ];
/// let out = RangeAssignor::new().assign(&counts, &members).unwrap();
/// let tp = |t: &str, p| TopicPartition::new(t, p);
/// assert_eq!(out["C0"].partitions, [tp("t0", 0), tp("t0", 1), tp("t1", 0), tp("t1", 1)]);
/// assert_eq!(out["C1"].partitions, [tp("t0", 2), tp("t1", 2)]);
/// ```
#[derive(Debug, Default, Clone)]
pub struct RangeAssignor {
    _private: (),
}

impl RangeAssignor {
    /// The range assignor.
    pub fn new() -> Self {
        RangeAssignor::default()
    }
}

impl PartitionAssignor for RangeAssignor {
    fn name(&self) -> &str {
        "range"
    }

    fn assign(
        &self,
        partitions_per_topic: &HashMap<String, i32>,
        members: &[GroupMember],
    ) -> Result<HashMap<String, Assignment>> {
        check_unique_members(members)?;
        let mut ordered: Vec<&GroupMember> = members.iter().collect();
        ordered.sort_by(|a, b| member_order(a, b));

        let mut lists: HashMap<String, Vec<TopicPartition>> = HashMap::new();
        // Topics in name order so each member's list comes out sorted; Java walks a HashMap
        // here, which only changes the order within a member's list, never who gets what.
        for (topic, count) in subscribed_topics(partitions_per_topic, members) {
            let subscribers: Vec<&GroupMember> = ordered
                .iter()
                .copied()
                .filter(|m| m.subscription.topics.contains(&topic))
                .collect();
            if subscribers.is_empty() {
                continue;
            }
            let n = subscribers.len() as i32;
            let (per_member, extra) = (count / n, count % n);
            let mut next = 0;
            for (i, member) in subscribers.iter().enumerate() {
                let len = per_member + i32::from((i as i32) < extra);
                let list = lists.entry(member.member_id.clone()).or_default();
                list.extend((next..next + len).map(|p| TopicPartition::new(topic.clone(), p)));
                next += len;
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
    fn javadoc_example_two_consumers_two_topics_three_partitions() {
        let out = RangeAssignor::new()
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
            [tp("t0", 0), tp("t0", 1), tp("t1", 0), tp("t1", 1)]
        );
        assert_eq!(partitions(&out, "C1"), [tp("t0", 2), tp("t1", 2)]);
    }

    #[test]
    fn javadoc_example_member_ids_change_order_after_a_bounce() {
        // C0 came back as C3 and C1 as C2: the ranges follow the new id order.
        let out = RangeAssignor::new()
            .assign(
                &counts(&[("t0", 3), ("t1", 3)]),
                &[
                    member("C3", None, &["t0", "t1"]),
                    member("C2", None, &["t0", "t1"]),
                ],
            )
            .unwrap();
        assert_eq!(partitions(&out, "C3"), [tp("t0", 2), tp("t1", 2)]);
        assert_eq!(
            partitions(&out, "C2"),
            [tp("t0", 0), tp("t0", 1), tp("t1", 0), tp("t1", 1)]
        );
    }

    #[test]
    fn javadoc_example_static_members_keep_their_ranges() {
        let topics = counts(&[("t0", 3), ("t1", 3)]);
        for (first, second) in [("C0", "C1"), ("C3", "C2")] {
            let out = RangeAssignor::new()
                .assign(
                    &topics,
                    &[
                        member(first, Some("I0"), &["t0", "t1"]),
                        member(second, Some("I1"), &["t0", "t1"]),
                    ],
                )
                .unwrap();
            assert_eq!(
                partitions(&out, first),
                [tp("t0", 0), tp("t0", 1), tp("t1", 0), tp("t1", 1)]
            );
            assert_eq!(partitions(&out, second), [tp("t0", 2), tp("t1", 2)]);
        }
    }

    #[test]
    fn static_members_come_before_dynamic_ones() {
        let out = RangeAssignor::new()
            .assign(
                &counts(&[("t", 3)]),
                &[member("a", None, &["t"]), member("z", Some("i"), &["t"])],
            )
            .unwrap();
        assert_eq!(partitions(&out, "z"), [tp("t", 0), tp("t", 1)]);
        assert_eq!(partitions(&out, "a"), [tp("t", 2)]);
    }

    #[test]
    fn mixed_subscriptions_split_each_topic_among_its_own_subscribers() {
        let out = RangeAssignor::new()
            .assign(
                &counts(&[("t1", 3), ("t2", 2)]),
                &[
                    member("c1", None, &["t1"]),
                    member("c2", None, &["t1", "t2"]),
                    member("c3", None, &["t1"]),
                ],
            )
            .unwrap();
        assert_eq!(partitions(&out, "c1"), [tp("t1", 0)]);
        assert_eq!(
            partitions(&out, "c2"),
            [tp("t1", 1), tp("t2", 0), tp("t2", 1)]
        );
        assert_eq!(partitions(&out, "c3"), [tp("t1", 2)]);
    }

    #[test]
    fn more_members_than_partitions_leaves_the_last_ones_empty() {
        let out = RangeAssignor::new()
            .assign(
                &counts(&[("t", 1)]),
                &[member("c0", None, &["t"]), member("c1", None, &["t"])],
            )
            .unwrap();
        assert_eq!(partitions(&out, "c0"), [tp("t", 0)]);
        assert!(partitions(&out, "c1").is_empty());
    }

    #[test]
    fn unknown_and_unsubscribed_topics_are_skipped_but_every_member_has_an_entry() {
        let out = RangeAssignor::new()
            .assign(
                &counts(&[("t", 2), ("other", 5), ("empty", 0)]),
                &[
                    member("c0", None, &["t", "missing", "empty"]),
                    member("c1", None, &[]),
                ],
            )
            .unwrap();
        assert_eq!(partitions(&out, "c0"), [tp("t", 0), tp("t", 1)]);
        assert!(partitions(&out, "c1").is_empty());
        assert_eq!(out.len(), 2);
    }

    #[test]
    fn duplicate_member_ids_are_refused() {
        let err = RangeAssignor::new()
            .assign(
                &counts(&[("t", 1)]),
                &[member("c", None, &["t"]), member("c", None, &["t"])],
            )
            .unwrap_err();
        assert!(err.to_string().contains("appears twice"), "{err}");
    }
}
