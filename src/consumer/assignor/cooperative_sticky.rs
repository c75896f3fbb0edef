//! The cooperative sticky assignor: the sticky algorithm under the cooperative protocol
//! (KIP-429), where a partition changes hands over two rebalances instead of one.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicI32, Ordering};

use bytes::Bytes;

use super::sticky_core::{self, MemberData, DEFAULT_GENERATION};
use super::Subscription;
use super::{into_assignments, Assignment, GroupMember, PartitionAssignor, RebalanceProtocol};
use crate::error::Result;
use crate::types::TopicPartition;

/// The sticky assignment (see [`StickyAssignor`](super::StickyAssignor)) for the cooperative
/// protocol. The Java client's `CooperativeStickyAssignor` (protocol name
/// `cooperative-sticky`), and the Java client's choice for new groups.
///
/// Members keep consuming their partitions through a rebalance and report them in
/// [`Subscription::owned_partitions`]. When balance needs a partition to move, this
/// assignor leaves it out of everyone's assignment: the owner sees it gone and revokes it,
/// which triggers a second rebalance in which the partition, now unowned, goes to its new
/// member. Partitions that stay put are never paused.
///
/// ```
/// use std::collections::HashMap;
/// use kafka_client::TopicPartition;
/// use kafka_client::consumer::assignor::{CooperativeStickyAssignor, GroupMember, PartitionAssignor, Subscription};
///
/// let assignor = CooperativeStickyAssignor::new();
/// let counts = HashMap::from([("t".to_owned(), 2)]);
/// let mut owner = Subscription::new(["t"]);
/// owner.owned_partitions = vec![TopicPartition::new("t", 0), TopicPartition::new("t", 1)];
/// owner.generation_id = Some(1);
/// let members = [GroupMember::new("a", owner), GroupMember::new("b", Subscription::new(["t"]))];
///
/// // First rebalance: `a` keeps one partition; the other is revoked, not yet given to `b`.
/// let out = assignor.assign(&counts, &members).unwrap();
/// assert_eq!(out["a"].partitions, [TopicPartition::new("t", 0)]);
/// assert!(out["b"].partitions.is_empty());
/// ```
#[derive(Debug)]
pub struct CooperativeStickyAssignor {
    /// The generation of this member's last assignment.
    generation: AtomicI32,
}

impl Default for CooperativeStickyAssignor {
    fn default() -> Self {
        CooperativeStickyAssignor {
            generation: AtomicI32::new(DEFAULT_GENERATION),
        }
    }
}

impl CooperativeStickyAssignor {
    /// A cooperative sticky assignor that has not been assigned anything yet.
    pub fn new() -> Self {
        CooperativeStickyAssignor::default()
    }
}

impl PartitionAssignor for CooperativeStickyAssignor {
    fn name(&self) -> &str {
        "cooperative-sticky"
    }

    fn supported_protocols(&self) -> Vec<RebalanceProtocol> {
        vec![RebalanceProtocol::Cooperative, RebalanceProtocol::Eager]
    }

    /// The generation as a big-endian `int32`, as Java writes it: consumer protocol v0 and
    /// v1 subscriptions have no generation field, and a Java leader reading those falls back
    /// to this.
    fn subscription_user_data(&self, _topics: &[String]) -> Option<Bytes> {
        let generation = self.generation.load(Ordering::Relaxed);
        Some(Bytes::copy_from_slice(&generation.to_be_bytes()))
    }

    fn assign(
        &self,
        partitions_per_topic: &HashMap<String, i32>,
        members: &[GroupMember],
    ) -> Result<HashMap<String, Assignment>> {
        let data: Vec<MemberData> = members
            .iter()
            .map(|m| member_data(&m.subscription))
            .collect();
        let mut outcome = sticky_core::assign(partitions_per_topic, members, &data)?;
        let transferring = match outcome.transferring.take() {
            Some(known) => known,
            None => transferring_ownership(members, &outcome.assignment),
        };
        for (tp, new_owner) in transferring {
            if let Some(list) = outcome.assignment.get_mut(&new_owner) {
                list.retain(|p| *p != tp);
            }
        }
        Ok(into_assignments(members, outcome.assignment))
    }

    fn on_assignment(&self, _assignment: &Assignment, generation_id: i32) {
        self.generation.store(generation_id, Ordering::Relaxed);
    }
}

/// Owned partitions come from the subscription itself; the generation from its v2+ field, or
/// else from the user data (absent: unknown; unreadable: the default generation).
fn member_data(subscription: &Subscription) -> MemberData {
    let generation = match (subscription.generation_id, &subscription.user_data) {
        (Some(generation), _) => Some(generation),
        (None, None) => None,
        (None, Some(data)) => Some(match data.get(..4) {
            Some(&[a, b, c, d]) => i32::from_be_bytes([a, b, c, d]),
            _ => DEFAULT_GENERATION,
        }),
    };
    MemberData {
        partitions: subscription.owned_partitions.clone(),
        generation,
    }
}

/// Partitions assigned to a member that did not own them while some member that did own
/// them loses them: those must wait a rebalance. Used after the general sticky path, which
/// does not keep track itself.
fn transferring_ownership(
    members: &[GroupMember],
    assignment: &HashMap<String, Vec<TopicPartition>>,
) -> HashMap<TopicPartition, String> {
    let mut added: HashMap<TopicPartition, String> = HashMap::new();
    let mut revoked: HashSet<&TopicPartition> = HashSet::new();
    for member in members {
        let owned: HashSet<&TopicPartition> = member.subscription.owned_partitions.iter().collect();
        let assigned: HashSet<&TopicPartition> = assignment
            .get(&member.member_id)
            .map(|list| list.iter().collect())
            .unwrap_or_default();
        for &tp in assigned.difference(&owned) {
            added.insert(tp.clone(), member.member_id.clone());
        }
        revoked.extend(owned.difference(&assigned).copied());
    }
    added.retain(|tp, _| revoked.contains(tp));
    added
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tp(t: &str, p: i32) -> TopicPartition {
        TopicPartition::new(t, p)
    }

    fn owner(topics: &[&str], owned: &[TopicPartition], generation: i32) -> Subscription {
        let mut sub = Subscription::new(topics.iter().copied());
        sub.owned_partitions = owned.to_vec();
        sub.generation_id = Some(generation);
        sub
    }

    #[test]
    fn supports_both_protocols_preferring_cooperative() {
        assert_eq!(
            CooperativeStickyAssignor::new().supported_protocols(),
            [RebalanceProtocol::Cooperative, RebalanceProtocol::Eager]
        );
    }

    #[test]
    fn user_data_is_the_generation_as_a_java_int() {
        let a = CooperativeStickyAssignor::new();
        assert_eq!(
            a.subscription_user_data(&[]).as_deref(),
            Some(&[0xff; 4][..])
        );
        a.on_assignment(&Assignment::default(), 258);
        assert_eq!(
            a.subscription_user_data(&[]).as_deref(),
            Some(&[0, 0, 1, 2][..])
        );
    }

    #[test]
    fn generation_comes_from_the_field_then_the_user_data() {
        let mut sub = Subscription::new(["t"]);
        assert_eq!(member_data(&sub).generation, None);
        sub.user_data = Some(Bytes::from_static(&[0, 0, 0, 9]));
        assert_eq!(member_data(&sub).generation, Some(9));
        sub.user_data = Some(Bytes::from_static(&[1]));
        assert_eq!(member_data(&sub).generation, Some(DEFAULT_GENERATION));
        sub.generation_id = Some(4);
        assert_eq!(member_data(&sub).generation, Some(4));
    }

    #[test]
    fn a_joining_member_gets_moved_partitions_only_in_the_second_round() {
        let counts = HashMap::from([("t".to_owned(), 4)]);
        let all: Vec<_> = (0..4).map(|p| tp("t", p)).collect();
        let assignor = CooperativeStickyAssignor::new();
        let round1 = assignor
            .assign(
                &counts,
                &[
                    GroupMember::new("a", owner(&["t"], &all, 1)),
                    GroupMember::new("b", Subscription::new(["t"])),
                ],
            )
            .unwrap();
        assert_eq!(round1["a"].partitions, [tp("t", 0), tp("t", 1)]);
        assert!(round1["b"].partitions.is_empty());

        // a revoked t-2 and t-3; now they are free.
        let round2 = assignor
            .assign(
                &counts,
                &[
                    GroupMember::new("a", owner(&["t"], &round1["a"].partitions, 2)),
                    GroupMember::new("b", owner(&["t"], &[], 2)),
                ],
            )
            .unwrap();
        assert_eq!(round2["a"].partitions, [tp("t", 0), tp("t", 1)]);
        assert_eq!(round2["b"].partitions, [tp("t", 2), tp("t", 3)]);
    }

    #[test]
    fn general_path_also_holds_back_moving_partitions() {
        // Different subscriptions force the general path.
        let counts = HashMap::from([("a".to_owned(), 4), ("b".to_owned(), 1)]);
        let all_a: Vec<_> = (0..4).map(|p| tp("a", p)).collect();
        let members = [
            GroupMember::new("x", owner(&["a", "b"], &all_a, 1)),
            GroupMember::new("y", owner(&["a"], &[], 1)),
        ];
        let out = CooperativeStickyAssignor::new()
            .assign(&counts, &members)
            .unwrap();
        // b-0 was nobody's: x gets it at once. Of a, x keeps two and y gets nothing yet.
        assert!(out["x"].partitions.contains(&tp("b", 0)));
        assert_eq!(out["x"].partitions.len(), 3);
        assert!(out["y"].partitions.is_empty());
        super::super::validate_cooperative_assignment(&members, &out).unwrap();
    }
}
