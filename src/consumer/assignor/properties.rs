//! Property tests of the built-in assignors: what a consumer group relies on whatever the
//! topics, partition counts, members and history.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use proptest::prelude::*;

use super::*;

type Out = HashMap<String, Assignment>;

fn all_assignors() -> Vec<Arc<dyn PartitionAssignor>> {
    vec![
        Arc::new(RangeAssignor::new()),
        Arc::new(RoundRobinAssignor::new()),
        Arc::new(StickyAssignor::new()),
        Arc::new(CooperativeStickyAssignor::new()),
    ]
}

fn counts(partitions: &[i32]) -> HashMap<String, i32> {
    partitions
        .iter()
        .enumerate()
        .map(|(t, &n)| (format!("t{t}"), n))
        .collect()
}

fn every_partition(
    counts: &HashMap<String, i32>,
    members: &[GroupMember],
) -> BTreeSet<TopicPartition> {
    let subscribed: HashSet<&String> = members
        .iter()
        .flat_map(|m| &m.subscription.topics)
        .collect();
    counts
        .iter()
        .filter(|(t, _)| subscribed.contains(t))
        .flat_map(|(t, &n)| (0..n).map(move |p| TopicPartition::new(t.clone(), p)))
        .collect()
}

/// Every member has an entry, gets only topics it subscribed to, and no partition is given
/// twice. Returns the owner of each assigned partition.
fn check_valid(
    members: &[GroupMember],
    out: &Out,
) -> Result<BTreeMap<TopicPartition, String>, TestCaseError> {
    prop_assert_eq!(out.len(), members.len());
    let mut owner = BTreeMap::new();
    for m in members {
        let assignment = out.get(&m.member_id);
        prop_assert!(assignment.is_some(), "no entry for {}", m.member_id);
        for tp in &assignment.unwrap().partitions {
            prop_assert!(
                m.subscription.topics.contains(&tp.topic),
                "{} got {tp}",
                m.member_id
            );
            let previous = owner.insert(tp.clone(), m.member_id.clone());
            prop_assert!(previous.is_none(), "{tp} assigned twice");
        }
    }
    Ok(owner)
}

fn check_complete(
    counts: &HashMap<String, i32>,
    members: &[GroupMember],
    out: &Out,
) -> Result<(), TestCaseError> {
    let owner = check_valid(members, out)?;
    let assigned: BTreeSet<TopicPartition> = owner.into_keys().collect();
    prop_assert_eq!(assigned, every_partition(counts, members));
    Ok(())
}

fn spread(out: &Out) -> usize {
    let sizes = out.values().map(|a| a.partitions.len());
    sizes.clone().max().unwrap_or(0) - sizes.min().unwrap_or(0)
}

/// Java's balance definition for differing subscriptions: no member could take a partition
/// of one of its topics from a member holding two or more partitions more than it.
fn check_java_balanced(
    counts: &HashMap<String, i32>,
    members: &[GroupMember],
    out: &Out,
) -> Result<(), TestCaseError> {
    let owner = check_valid(members, out)?;
    let load = |id: &str| out[id].partitions.len();
    for m in members {
        for (tp, other) in &owner {
            if m.subscription.topics.contains(&tp.topic) && counts.contains_key(&tp.topic) {
                prop_assert!(
                    load(other) <= load(&m.member_id) + 1,
                    "{tp} could move from {other} ({}) to {} ({})",
                    load(other),
                    m.member_id,
                    load(&m.member_id)
                );
            }
        }
    }
    Ok(())
}

fn same_topics(n: usize, topics: usize) -> Vec<GroupMember> {
    (0..n)
        .map(|i| {
            GroupMember::new(
                format!("m{i}"),
                Subscription::new((0..topics).map(|t| format!("t{t}"))),
            )
        })
        .collect()
}

fn mixed_topics(subsets: &[Vec<bool>]) -> Vec<GroupMember> {
    subsets
        .iter()
        .enumerate()
        .map(|(i, subset)| {
            let topics = subset
                .iter()
                .enumerate()
                .filter(|(_, &on)| on)
                .map(|(t, _)| format!("t{t}"));
            GroupMember::new(format!("m{i}"), Subscription::new(topics))
        })
        .collect()
}

/// A group after some members left and others joined, each survivor carrying what it owned
/// the way its assignor flavour does (user data for sticky, owned partitions for
/// cooperative).
fn next_generation(
    previous: &Out,
    survivors: &[GroupMember],
    joiners: usize,
    topics: usize,
    cooperative: bool,
) -> Vec<GroupMember> {
    let mut group: Vec<GroupMember> = survivors
        .iter()
        .map(|m| {
            let owned = previous[&m.member_id].clone();
            let mut sub = Subscription::new(m.subscription.topics.clone());
            if cooperative {
                sub.owned_partitions = owned.partitions;
                sub.generation_id = Some(1);
            } else {
                let member_side = StickyAssignor::new();
                member_side.on_assignment(&owned, 1);
                sub.user_data = member_side.subscription_user_data(&sub.topics);
            }
            GroupMember::new(m.member_id.clone(), sub)
        })
        .collect();
    group.extend(same_topics(joiners, topics).into_iter().map(|mut m| {
        m.member_id = format!("new{}", m.member_id);
        m
    }));
    group
}

/// The fewest partitions that must leave surviving owners for the new group to be balanced:
/// every survivor above its quota gives up the excess, and the members holding the most get
/// the quotas of one extra.
fn fewest_moves(
    previous: &Out,
    survivors: &[GroupMember],
    total: usize,
    group_size: usize,
) -> usize {
    let (min_quota, extra) = (total / group_size, total % group_size);
    let owned: Vec<usize> = survivors
        .iter()
        .map(|m| previous[&m.member_id].partitions.len())
        .collect();
    let over_min: usize = owned.iter().map(|&n| n.saturating_sub(min_quota)).sum();
    let can_keep_one_more = owned.iter().filter(|&&n| n > min_quota).count();
    over_min - extra.min(can_keep_one_more)
}

fn moved_from_survivors(
    previous: &Out,
    survivors: &[GroupMember],
    now: &BTreeMap<TopicPartition, String>,
) -> usize {
    survivors
        .iter()
        .flat_map(|m| {
            previous[&m.member_id]
                .partitions
                .iter()
                .map(move |tp| (tp, &m.member_id))
        })
        .filter(|(tp, id)| now.get(*tp) != Some(*id))
        .count()
}

proptest! {
    #[test]
    fn every_subscribed_partition_goes_to_exactly_one_subscriber(
        partitions in prop::collection::vec(0..12i32, 1..5),
        subsets in prop::collection::vec(prop::collection::vec(any::<bool>(), 5), 0..7),
    ) {
        let counts = counts(&partitions);
        let members = mixed_topics(&subsets);
        for assignor in all_assignors() {
            let out = assignor.assign(&counts, &members).unwrap();
            check_complete(&counts, &members, &out)?;
        }
    }

    #[test]
    fn identical_subscriptions_are_balanced(
        partitions in prop::collection::vec(1..12i32, 1..5),
        n in 1..9usize,
    ) {
        let counts = counts(&partitions);
        let members = same_topics(n, partitions.len());
        for assignor in all_assignors() {
            let out = assignor.assign(&counts, &members).unwrap();
            check_complete(&counts, &members, &out)?;
            if assignor.name() == "range" {
                // Range balances each topic on its own.
                for topic in counts.keys() {
                    let per_topic: Out = out.iter().map(|(id, a)| {
                        let list = a.partitions.iter().filter(|tp| &tp.topic == topic).cloned().collect();
                        (id.clone(), Assignment::new(list))
                    }).collect();
                    prop_assert!(spread(&per_topic) <= 1);
                }
            } else {
                prop_assert!(spread(&out) <= 1, "{} spread {}", assignor.name(), spread(&out));
            }
        }
    }

    #[test]
    fn sticky_fresh_assignments_are_balanced_as_java_defines_it(
        partitions in prop::collection::vec(1..10i32, 1..5),
        subsets in prop::collection::vec(prop::collection::vec(any::<bool>(), 5), 1..7),
    ) {
        let counts = counts(&partitions);
        let members = mixed_topics(&subsets);
        let out = StickyAssignor::new().assign(&counts, &members).unwrap();
        check_java_balanced(&counts, &members, &out)?;
    }

    #[test]
    fn sticky_moves_no_more_than_balance_requires_when_members_come_and_go(
        partitions in prop::collection::vec(1..12i32, 1..4),
        n in 1..7usize,
        leaving in prop::collection::vec(any::<bool>(), 7),
        joiners in 0..4usize,
        cooperative in any::<bool>(),
    ) {
        let counts = counts(&partitions);
        let total: usize = partitions.iter().map(|&n| n as usize).sum();
        let first = same_topics(n, partitions.len());
        let previous = StickyAssignor::new().assign(&counts, &first).unwrap();
        let mut survivors: Vec<GroupMember> =
            first.iter().zip(&leaving).filter(|(_, &gone)| !gone).map(|(m, _)| m.clone()).collect();
        if survivors.is_empty() {
            survivors.push(first[0].clone());
        }
        let group = next_generation(&previous, &survivors, joiners, partitions.len(), cooperative);
        let out = if cooperative {
            CooperativeStickyAssignor::new().assign(&counts, &group).unwrap()
        } else {
            StickyAssignor::new().assign(&counts, &group).unwrap()
        };
        let now = check_valid(&group, &out)?;
        let moved = moved_from_survivors(&previous, &survivors, &now);
        let fewest = fewest_moves(&previous, &survivors, total, group.len());
        prop_assert!(moved <= fewest, "moved {} partitions, {} would do", moved, fewest);
        if !cooperative {
            check_complete(&counts, &group, &out)?;
            prop_assert!(spread(&out) <= 1);
        }
    }

    #[test]
    fn cooperative_never_hands_over_an_owned_partition_and_converges_in_two_rounds(
        partitions in prop::collection::vec(1..12i32, 1..4),
        n in 1..7usize,
        leaving in prop::collection::vec(any::<bool>(), 7),
        joiners in 0..4usize,
        subsets in prop::collection::vec(prop::collection::vec(any::<bool>(), 3), 7),
        mixed in any::<bool>(),
    ) {
        let counts = counts(&partitions);
        let topics = partitions.len();
        let first = if mixed { mixed_topics(&subsets[..n]) } else { same_topics(n, topics) };
        let assignor = CooperativeStickyAssignor::new();
        let previous = assignor.assign(&counts, &first).unwrap();
        let mut survivors: Vec<GroupMember> =
            first.iter().zip(&leaving).filter(|(_, &gone)| !gone).map(|(m, _)| m.clone()).collect();
        if survivors.is_empty() {
            survivors.push(first[0].clone());
        }

        // Round 1: what moves is only revoked.
        let group = next_generation(&previous, &survivors, joiners, topics, true);
        let round1 = assignor.assign(&counts, &group).unwrap();
        check_valid(&group, &round1)?;
        prop_assert!(validate_cooperative_assignment(&group, &round1).is_ok());

        // Later rounds: members own what the last round gave them, the revoked partitions
        // are free and handed out. With identical subscriptions one more round settles it;
        // the general path may take a few more moves.
        let mut owned = round1;
        let mut settled_in = None;
        for round in 2..=6 {
            let group: Vec<GroupMember> = group.iter().map(|m| {
                let mut sub = m.subscription.clone();
                sub.owned_partitions = owned[&m.member_id].partitions.clone();
                sub.generation_id = Some(round);
                sub.user_data = None;
                GroupMember::new(m.member_id.clone(), sub)
            }).collect();
            let next = assignor.assign(&counts, &group).unwrap();
            prop_assert!(validate_cooperative_assignment(&group, &next).is_ok());
            check_valid(&group, &next)?;
            let complete = check_complete(&counts, &group, &next).is_ok();
            owned = next;
            if complete {
                settled_in = Some(round);
                break;
            }
        }
        let all_topics = group
            .iter()
            .all(|m| (0..topics).all(|t| m.subscription.topics.contains(&format!("t{t}"))));
        if !mixed {
            prop_assert_eq!(settled_in, Some(2));
        } else {
            prop_assert!(settled_in.is_some(), "not settled after 6 rounds");
        }
        if !mixed || all_topics {
            prop_assert!(spread(&owned) <= 1, "spread {}", spread(&owned));
        }
    }

    #[test]
    fn assignments_do_not_depend_on_member_order(
        partitions in prop::collection::vec(1..8i32, 1..4),
        subsets in prop::collection::vec(prop::collection::vec(any::<bool>(), 4), 1..6),
    ) {
        let counts = counts(&partitions);
        let members = mixed_topics(&subsets);
        let mut reversed = members.clone();
        reversed.reverse();
        for assignor in all_assignors() {
            let a = assignor.assign(&counts, &members).unwrap();
            let b = assignor.assign(&counts, &reversed).unwrap();
            prop_assert_eq!(a, b, "{}", assignor.name());
        }
    }
}
