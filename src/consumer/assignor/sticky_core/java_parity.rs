//! Scenarios from the Java client's sticky assignor test suite, checked against the outcome
//! Java asserts for them (partitions per member and partitions changing owner).

use std::collections::{BTreeSet, HashMap};

use super::{assign, MemberData, StickyOutcome};
use crate::consumer::assignor::{GroupMember, Subscription};
use crate::types::TopicPartition;

fn tp(t: &str, p: i32) -> TopicPartition {
    TopicPartition::new(t, p)
}

/// Runs the core with members `consumer1..` all subscribed to `topics`, each owning the
/// given partitions in the given generation (what a v2+ subscription says).
fn run(topics: &[(&str, i32)], owned: &[(&[TopicPartition], i32)]) -> StickyOutcome {
    let counts: HashMap<String, i32> = topics.iter().map(|(t, n)| (t.to_string(), *n)).collect();
    let names = topics.iter().map(|(t, _)| *t);
    let members: Vec<GroupMember> = (1..=owned.len())
        .map(|i| GroupMember::new(format!("consumer{i}"), Subscription::new(names.clone())))
        .collect();
    let data: Vec<MemberData> = owned
        .iter()
        .map(|(partitions, generation)| MemberData {
            partitions: partitions.to_vec(),
            generation: (*generation >= 0).then_some(*generation),
        })
        .collect();
    assign(&counts, &members, &data).unwrap()
}

fn set(out: &StickyOutcome, member: &str) -> BTreeSet<TopicPartition> {
    out.assignment[member].iter().cloned().collect()
}

fn transfers(out: &StickyOutcome) -> Vec<(TopicPartition, String)> {
    let mut t: Vec<_> = out
        .transferring
        .clone()
        .unwrap_or_default()
        .into_iter()
        .collect();
    t.sort();
    t
}

#[test]
fn consumer_owning_min_quota_is_topped_up_to_max_quota() {
    let out = run(
        &[("topic1", 2), ("topic2", 3)],
        &[
            (&[tp("topic1", 0), tp("topic2", 1)], 1),
            (&[tp("topic1", 1), tp("topic2", 2)], 1),
        ],
    );
    assert_eq!(
        out.assignment["consumer1"],
        [tp("topic1", 0), tp("topic2", 1), tp("topic2", 0)]
    );
    assert_eq!(
        out.assignment["consumer2"],
        [tp("topic1", 1), tp("topic2", 2)]
    );
    assert!(transfers(&out).is_empty());
}

#[test]
fn more_max_quota_owners_than_max_quota_slots() {
    let out = run(
        &[("topic1", 2), ("topic2", 2)],
        &[
            (&[tp("topic1", 0), tp("topic2", 0)], 1),
            (&[tp("topic1", 1), tp("topic2", 1)], 1),
            (&[], 1),
        ],
    );
    // Both consumer1 and consumer2 own max quota and only one may keep it. Java picks in
    // HashMap order (consumer2 in its test); we pick in member-id order, so consumer1 keeps
    // two and consumer2 gives up its highest-numbered partition instead.
    assert_eq!(
        out.assignment["consumer1"],
        [tp("topic1", 0), tp("topic2", 0)]
    );
    assert_eq!(out.assignment["consumer2"], [tp("topic1", 1)]);
    assert_eq!(out.assignment["consumer3"], [tp("topic2", 1)]);
    assert_eq!(transfers(&out), [(tp("topic2", 1), "consumer3".to_owned())]);
}

#[test]
fn all_consumers_under_min_quota() {
    let out = run(
        &[("topic1", 2), ("topic2", 3)],
        &[(&[tp("topic1", 0)], 1), (&[tp("topic1", 1)], 1), (&[], 1)],
    );
    assert_eq!(
        out.assignment["consumer1"],
        [tp("topic1", 0), tp("topic2", 1)]
    );
    assert_eq!(
        out.assignment["consumer2"],
        [tp("topic1", 1), tp("topic2", 2)]
    );
    assert_eq!(out.assignment["consumer3"], [tp("topic2", 0)]);
    assert!(transfers(&out).is_empty());
}

#[test]
fn all_consumers_reach_expected_quota_and_are_considered_filled() {
    let out = run(
        &[("topic", 4)],
        &[
            (&[tp("topic", 0), tp("topic", 1)], 1),
            (&[tp("topic", 2)], 1),
            (&[], 1),
        ],
    );
    assert_eq!(
        out.assignment["consumer1"],
        [tp("topic", 0), tp("topic", 1)]
    );
    assert_eq!(out.assignment["consumer2"], [tp("topic", 2)]);
    assert_eq!(out.assignment["consumer3"], [tp("topic", 3)]);
    assert!(transfers(&out).is_empty());
}

#[test]
fn owned_partitions_of_a_stale_or_missing_generation_are_invalidated() {
    let claimed = [tp("topic", 0), tp("topic", 2), tp("topic2", 1)];
    for stale in [9, -1] {
        let out = run(
            &[("topic", 3), ("topic2", 3)],
            &[(&claimed, 10), (&claimed, stale)],
        );
        assert_eq!(set(&out, "consumer1"), claimed.iter().cloned().collect());
        assert_eq!(
            set(&out, "consumer2"),
            BTreeSet::from([tp("topic", 1), tp("topic2", 0), tp("topic2", 2)])
        );
        assert!(transfers(&out).is_empty());
    }
}

#[test]
fn a_partition_claimed_twice_in_one_generation_transfers() {
    let out = run(
        &[("topic", 3)],
        &[
            (&[tp("topic", 0), tp("topic", 1)], 1),
            (&[tp("topic", 0), tp("topic", 2)], 1),
            (&[], 1),
        ],
    );
    assert_eq!(out.assignment["consumer1"], [tp("topic", 1)]);
    assert_eq!(out.assignment["consumer2"], [tp("topic", 2)]);
    assert_eq!(out.assignment["consumer3"], [tp("topic", 0)]);
    assert_eq!(transfers(&out), [(tp("topic", 0), "consumer3".to_owned())]);
}

#[test]
fn partitions_go_to_the_highest_generation() {
    let topics = [("topic", 3), ("topic2", 3), ("topic3", 3)];
    let out = run(
        &topics,
        &[
            (&[tp("topic", 0), tp("topic2", 0), tp("topic3", 0)], 10),
            (&[tp("topic", 1), tp("topic2", 1), tp("topic3", 1)], 9),
            (&[tp("topic2", 1), tp("topic3", 0), tp("topic3", 2)], 8),
        ],
    );
    for (member, p) in [("consumer1", 0), ("consumer2", 1), ("consumer3", 2)] {
        let expected = BTreeSet::from([tp("topic", p), tp("topic2", p), tp("topic3", p)]);
        assert_eq!(set(&out, member), expected, "{member}");
    }
    assert!(transfers(&out).is_empty());
}

#[test]
fn current_members_keep_everything_when_a_member_joins_empty() {
    let topics = [("topic", 3), ("topic1", 3), ("topic2", 3), ("topic3", 3)];
    let out = run(
        &topics,
        &[
            (&[], -1),
            (&[tp("topic", 0), tp("topic2", 0), tp("topic1", 0)], 9),
            (&[tp("topic3", 2), tp("topic2", 2), tp("topic1", 1)], 8),
            (&[tp("topic3", 1), tp("topic", 1), tp("topic", 2)], 7),
        ],
    );
    assert_eq!(
        set(&out, "consumer1"),
        BTreeSet::from([tp("topic1", 2), tp("topic2", 1), tp("topic3", 0)])
    );
    assert!(transfers(&out).is_empty());
}

#[test]
fn claims_from_several_generations() {
    let out = run(
        &[("topic", 3), ("topic2", 3)],
        &[
            (&[tp("topic", 0), tp("topic2", 1), tp("topic", 1)], 10),
            (&[tp("topic", 0), tp("topic2", 1), tp("topic2", 2)], 8),
        ],
    );
    assert_eq!(
        set(&out, "consumer1"),
        BTreeSet::from([tp("topic", 0), tp("topic2", 1), tp("topic", 1)])
    );
    assert_eq!(
        set(&out, "consumer2"),
        BTreeSet::from([tp("topic", 2), tp("topic2", 2), tp("topic2", 0)])
    );
    assert!(transfers(&out).is_empty());
}

#[test]
fn add_then_remove_a_consumer_on_one_topic() {
    let all = [tp("topic", 0), tp("topic", 1), tp("topic", 2)];
    let out = run(&[("topic", 3)], &[(&[], -1)]);
    assert_eq!(out.assignment["consumer1"], all);

    let out = run(&[("topic", 3)], &[(&all, 1), (&[], 1)]);
    assert_eq!(
        out.assignment["consumer1"],
        [tp("topic", 0), tp("topic", 1)]
    );
    assert_eq!(out.assignment["consumer2"], [tp("topic", 2)]);
    assert_eq!(transfers(&out), [(tp("topic", 2), "consumer2".to_owned())]);
}
