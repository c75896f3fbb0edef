//! Partition assignors: who in a consumer group reads which partitions.
//!
//! In the classic group protocol the coordinator elects one member, the leader, and hands it
//! every member's [`Subscription`]. The leader runs a [`PartitionAssignor`] and sends one
//! [`Assignment`] per member back through the coordinator:
//!
//! ```text
//!  member ──JoinGroup(Subscription per assignor)──▶ coordinator ──all subscriptions──▶ leader
//!                                                                                        │ assign()
//!  member ◀──────────SyncGroup(Assignment)──────── coordinator ◀──one Assignment each────┘
//!     └─ on_assignment()
//! ```
//!
//! The built-in assignors match the Java client's, name for name, so a group can mix Java
//! consumers and this crate's:
//!
//! | name                 | type                        | protocols            |
//! |----------------------|-----------------------------|----------------------|
//! | `range`              | [`RangeAssignor`]           | eager                |
//! | `roundrobin`         | [`RoundRobinAssignor`]      | eager                |
//! | `sticky`             | [`StickyAssignor`]          | eager                |
//! | `cooperative-sticky` | [`CooperativeStickyAssignor`] | eager, cooperative |
//!
//! ```
//! use kafka_client::consumer::assignor::{assignors_from_config, rebalance_protocol, RebalanceProtocol};
//!
//! let assignors = assignors_from_config("range, cooperative-sticky").unwrap();
//! // Cooperative only if every configured assignor supports it, as in the Java client.
//! assert_eq!(rebalance_protocol(&assignors).unwrap(), RebalanceProtocol::Eager);
//! ```
//!
//! Rack-aware assignment (KIP-881) is not implemented: `Subscription::rack_id` is carried on
//! the wire but the assignors do not look at it, because [`PartitionAssignor::assign`] is not
//! given the racks of partition replicas.

use std::cmp::Ordering;
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::Arc;

use bytes::Bytes;

use crate::error::{Error, Result};
use crate::types::TopicPartition;

mod cooperative_sticky;
mod range;
mod round_robin;
mod sticky;
mod sticky_core;
#[cfg(test)]
mod test_support;

#[cfg(test)]
mod properties;

pub use cooperative_sticky::CooperativeStickyAssignor;
pub use range::RangeAssignor;
pub use round_robin::RoundRobinAssignor;
pub use sticky::StickyAssignor;

/// The config key under which assignors are chosen, as in the Java client.
pub const PARTITION_ASSIGNMENT_STRATEGY: &str = "partition.assignment.strategy";

/// How partitions change hands during a rebalance (the Java client's `RebalanceProtocol`).
///
/// Ordered by how advanced the protocol is, so `max` picks the better of two.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RebalanceProtocol {
    /// Every member revokes all its partitions before joining; the assignor may reshuffle freely.
    Eager,
    /// Members keep their partitions while rebalancing (KIP-429); a partition that must move
    /// is first revoked by its owner and handed out in a follow-up rebalance.
    Cooperative,
}

impl RebalanceProtocol {
    /// The Java client's byte id: 0 for eager, 1 for cooperative.
    pub fn id(self) -> u8 {
        match self {
            RebalanceProtocol::Eager => 0,
            RebalanceProtocol::Cooperative => 1,
        }
    }
}

/// What one member sends the leader when joining: the Java client's `Subscription`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Subscription {
    /// The topics the member wants to read.
    pub topics: Vec<String>,
    /// Opaque data from [`PartitionAssignor::subscription_user_data`].
    pub user_data: Option<Bytes>,
    /// The partitions the member owns right now (consumer protocol v1+). Cooperative members
    /// keep consuming these through the rebalance.
    pub owned_partitions: Vec<TopicPartition>,
    /// The group generation in which `owned_partitions` were assigned (protocol v2+); `None`
    /// when the member has none (`-1` on the wire).
    pub generation_id: Option<i32>,
    /// The member's `client.rack` (protocol v3+).
    pub rack_id: Option<String>,
}

impl Subscription {
    /// A subscription to `topics` with nothing else set.
    pub fn new<I, S>(topics: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Subscription {
            topics: topics.into_iter().map(Into::into).collect(),
            ..Subscription::default()
        }
    }
}

/// What the leader sends one member back: the Java client's `Assignment`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Assignment {
    /// The partitions the member should read.
    pub partitions: Vec<TopicPartition>,
    /// Opaque data for the member's assignor.
    pub user_data: Option<Bytes>,
}

impl Assignment {
    /// An assignment of `partitions` without user data.
    pub fn new(partitions: Vec<TopicPartition>) -> Self {
        Assignment {
            partitions,
            user_data: None,
        }
    }
}

/// One member of the group as the leader sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupMember {
    /// The member id the coordinator gave the member.
    pub member_id: String,
    /// The member's `group.instance.id` when it is a static member.
    pub group_instance_id: Option<String>,
    /// What the member asked for.
    pub subscription: Subscription,
}

impl GroupMember {
    /// A dynamic member (no `group.instance.id`).
    pub fn new(member_id: impl Into<String>, subscription: Subscription) -> Self {
        GroupMember {
            member_id: member_id.into(),
            group_instance_id: None,
            subscription,
        }
    }
}

/// Decides which member reads which partitions; the Java client's `ConsumerPartitionAssignor`.
///
/// Implement it for a custom strategy and hand the consumer an `Arc<dyn PartitionAssignor>`.
/// Methods take `&self`: an assignor that remembers state between rebalances (as the sticky
/// ones do) keeps it behind a lock.
pub trait PartitionAssignor: Send + Sync + fmt::Debug {
    /// The protocol name sent to the coordinator: `range`, `roundrobin`, `sticky`,
    /// `cooperative-sticky`, or a custom one. All members must share at least one name.
    fn name(&self) -> &str;

    /// The rebalance protocols this assignor works with, most preferred first.
    fn supported_protocols(&self) -> Vec<RebalanceProtocol> {
        vec![RebalanceProtocol::Eager]
    }

    /// Data to put in this member's [`Subscription::user_data`] when joining.
    fn subscription_user_data(&self, topics: &[String]) -> Option<Bytes> {
        let _ = topics;
        None
    }

    /// Runs on the leader: assigns the partitions of the subscribed topics.
    ///
    /// `partitions_per_topic` holds the partition count of every subscribed topic the leader
    /// has metadata for; topics missing from it are skipped. The result is keyed by member id
    /// and has an entry, possibly empty, for every member.
    fn assign(
        &self,
        partitions_per_topic: &HashMap<String, i32>,
        members: &[GroupMember],
    ) -> Result<HashMap<String, Assignment>>;

    /// Runs on every member when its assignment arrives, with the group generation.
    fn on_assignment(&self, assignment: &Assignment, generation_id: i32) {
        let _ = (assignment, generation_id);
    }
}

/// The built-in assignor for a name: the protocol name (`range`, `roundrobin`, `sticky`,
/// `cooperative-sticky`) or the Java class name (`org.apache.kafka.clients.consumer.RangeAssignor`
/// ...), so Java configs can be pasted as they are.
pub fn assignor_for_name(name: &str) -> Result<Arc<dyn PartitionAssignor>> {
    const JAVA_PACKAGE: &str = "org.apache.kafka.clients.consumer.";
    let short = match name.trim().strip_prefix(JAVA_PACKAGE) {
        Some("RangeAssignor") => "range",
        Some("RoundRobinAssignor") => "roundrobin",
        Some("StickyAssignor") => "sticky",
        Some("CooperativeStickyAssignor") => "cooperative-sticky",
        Some(_) => "",
        None => name.trim(),
    };
    let assignor: Arc<dyn PartitionAssignor> = match short {
        "range" => Arc::new(RangeAssignor::new()),
        "roundrobin" => Arc::new(RoundRobinAssignor::new()),
        "sticky" => Arc::new(StickyAssignor::new()),
        "cooperative-sticky" => Arc::new(CooperativeStickyAssignor::new()),
        _ => {
            return Err(Error::config(
                PARTITION_ASSIGNMENT_STRATEGY,
                name,
                "unknown assignor; expected range, roundrobin, sticky, cooperative-sticky or \
                 their Java class names",
            ))
        }
    };
    Ok(assignor)
}

/// The assignors of a `partition.assignment.strategy` value: a comma-separated list of names
/// accepted by [`assignor_for_name`], in order of preference. Refuses an empty list and two
/// assignors with the same name, as the Java client does.
pub fn assignors_from_config(value: &str) -> Result<Vec<Arc<dyn PartitionAssignor>>> {
    let mut assignors: Vec<Arc<dyn PartitionAssignor>> = Vec::new();
    for entry in value.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let assignor = assignor_for_name(entry)?;
        if assignors.iter().any(|a| a.name() == assignor.name()) {
            return Err(Error::config(
                PARTITION_ASSIGNMENT_STRATEGY,
                value,
                format!("assignor name '{}' is used more than once", assignor.name()),
            ));
        }
        assignors.push(assignor);
    }
    if assignors.is_empty() {
        return Err(Error::config(
            PARTITION_ASSIGNMENT_STRATEGY,
            value,
            "at least one assignor is required",
        ));
    }
    Ok(assignors)
}

/// The Java client's default `partition.assignment.strategy`: range, then cooperative-sticky
/// (so a group can later move to cooperative-sticky with one rolling bounce).
pub fn default_assignors() -> Vec<Arc<dyn PartitionAssignor>> {
    vec![
        Arc::new(RangeAssignor::new()),
        Arc::new(CooperativeStickyAssignor::new()),
    ]
}

/// The rebalance protocol a member uses with these assignors, decided as the Java
/// `ConsumerCoordinator` does: the most advanced protocol that every assignor supports.
pub fn rebalance_protocol(assignors: &[Arc<dyn PartitionAssignor>]) -> Result<RebalanceProtocol> {
    let names = || {
        let names: Vec<&str> = assignors.iter().map(|a| a.name()).collect();
        names.join(",")
    };
    let mut common: Option<HashSet<RebalanceProtocol>> = None;
    for assignor in assignors {
        let supported: HashSet<_> = assignor.supported_protocols().into_iter().collect();
        common = Some(match common {
            None => supported,
            Some(c) => c.intersection(&supported).copied().collect(),
        });
    }
    match common.and_then(|c| c.into_iter().max()) {
        Some(protocol) => Ok(protocol),
        None if assignors.is_empty() => Err(Error::config(
            PARTITION_ASSIGNMENT_STRATEGY,
            "",
            "at least one assignor is required",
        )),
        None => Err(Error::config(
            PARTITION_ASSIGNMENT_STRATEGY,
            names(),
            "the assignors have no commonly supported rebalance protocol",
        )),
    }
}

/// Checks that an assignment respects the cooperative protocol: no partition a member still
/// owns is handed straight to another member (it must be revoked first and assigned in the
/// next rebalance). The Java leader runs this check for custom cooperative assignors; the
/// built-in cooperative-sticky assignor satisfies it by construction.
pub fn validate_cooperative_assignment(
    members: &[GroupMember],
    assignments: &HashMap<String, Assignment>,
) -> Result<()> {
    let mut revoked: HashSet<&TopicPartition> = HashSet::new();
    let mut added: Vec<&TopicPartition> = Vec::new();
    for member in members {
        let owned: HashSet<&TopicPartition> = member.subscription.owned_partitions.iter().collect();
        let assigned: HashSet<&TopicPartition> = assignments
            .get(&member.member_id)
            .map(|a| a.partitions.iter().collect())
            .unwrap_or_default();
        added.extend(assigned.difference(&owned).copied());
        revoked.extend(owned.difference(&assigned).copied());
    }
    let mut moved: Vec<String> = added
        .into_iter()
        .filter(|tp| revoked.contains(tp))
        .map(ToString::to_string)
        .collect();
    if moved.is_empty() {
        return Ok(());
    }
    moved.sort();
    Err(Error::InvalidArgument(format!(
        "with the cooperative protocol, owned partitions cannot be reassigned to other \
         members, but the assignor reassigned [{}] which are still owned",
        moved.join(", ")
    )))
}

/// Orders strings as Java's `String.compareTo` does (by UTF-16 code unit), so member and
/// topic orders, which decide who gets what, are the ones a Java leader would produce.
pub(crate) fn java_cmp(a: &str, b: &str) -> Ordering {
    if a.is_ascii() && b.is_ascii() {
        return a.cmp(b);
    }
    a.encode_utf16().cmp(b.encode_utf16())
}

/// The Java `MemberInfo` order used by range and round robin: static members first, by
/// `group.instance.id`, then dynamic members by member id.
pub(crate) fn member_order(a: &GroupMember, b: &GroupMember) -> Ordering {
    match (&a.group_instance_id, &b.group_instance_id) {
        (Some(x), Some(y)) => java_cmp(x, y),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => Ordering::Equal,
    }
    // Ties (two members with one instance id) cannot happen in a healthy group; the member
    // id keeps the result deterministic anyway.
    .then_with(|| java_cmp(&a.member_id, &b.member_id))
}

/// Refuses member lists with a repeated member id: assignments are keyed by it.
pub(crate) fn check_unique_members(members: &[GroupMember]) -> Result<()> {
    let mut seen = HashSet::with_capacity(members.len());
    for m in members {
        if !seen.insert(m.member_id.as_str()) {
            return Err(Error::InvalidArgument(format!(
                "member id {:?} appears twice in the group",
                m.member_id
            )));
        }
    }
    Ok(())
}

/// The topics some member subscribes to that have partitions, with their counts, sorted in
/// Java string order. Java assignors only ever see subscribed topics with metadata.
pub(crate) fn subscribed_topics(
    partitions_per_topic: &HashMap<String, i32>,
    members: &[GroupMember],
) -> Vec<(String, i32)> {
    let mut topics: Vec<(String, i32)> = members
        .iter()
        .flat_map(|m| m.subscription.topics.iter())
        .collect::<HashSet<&String>>()
        .into_iter()
        .filter_map(|t| match partitions_per_topic.get(t) {
            Some(&n) if n > 0 => Some((t.clone(), n)),
            _ => None,
        })
        .collect();
    topics.sort_by(|a, b| java_cmp(&a.0, &b.0));
    topics
}

/// Wraps per-member partition lists into assignments, giving every member an entry.
pub(crate) fn into_assignments(
    members: &[GroupMember],
    mut lists: HashMap<String, Vec<TopicPartition>>,
) -> HashMap<String, Assignment> {
    members
        .iter()
        .map(|m| {
            let partitions = lists.remove(&m.member_id).unwrap_or_default();
            (m.member_id.clone(), Assignment::new(partitions))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_java_class_names_pick_the_same_assignor() {
        for (short, class) in [
            ("range", "RangeAssignor"),
            ("roundrobin", "RoundRobinAssignor"),
            ("sticky", "StickyAssignor"),
            ("cooperative-sticky", "CooperativeStickyAssignor"),
        ] {
            assert_eq!(assignor_for_name(short).unwrap().name(), short);
            let java = format!("org.apache.kafka.clients.consumer.{class}");
            assert_eq!(assignor_for_name(&java).unwrap().name(), short);
        }
    }

    #[test]
    fn unknown_assignor_is_a_config_error_naming_the_key() {
        let err = assignor_for_name("org.apache.kafka.clients.consumer.Nope").unwrap_err();
        match err {
            Error::Config { key, value, .. } => {
                assert_eq!(key, "partition.assignment.strategy");
                assert_eq!(value, "org.apache.kafka.clients.consumer.Nope");
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(assignor_for_name("fair").is_err());
    }

    #[test]
    fn config_lists_keep_order_and_refuse_duplicates_and_emptiness() {
        let a = assignors_from_config(
            "org.apache.kafka.clients.consumer.CooperativeStickyAssignor, range",
        )
        .unwrap();
        let names: Vec<&str> = a.iter().map(|a| a.name()).collect();
        assert_eq!(names, ["cooperative-sticky", "range"]);
        assert!(
            assignors_from_config("range,org.apache.kafka.clients.consumer.RangeAssignor").is_err()
        );
        assert!(assignors_from_config(" , ").is_err());
    }

    #[test]
    fn protocol_is_cooperative_only_when_every_assignor_supports_it() {
        let coop = assignors_from_config("cooperative-sticky").unwrap();
        assert_eq!(
            rebalance_protocol(&coop).unwrap(),
            RebalanceProtocol::Cooperative
        );
        assert_eq!(
            rebalance_protocol(&default_assignors()).unwrap(),
            RebalanceProtocol::Eager
        );
        assert!(rebalance_protocol(&[]).is_err());
    }

    #[derive(Debug)]
    struct CooperativeOnly;
    impl PartitionAssignor for CooperativeOnly {
        fn name(&self) -> &str {
            "coop-only"
        }
        fn supported_protocols(&self) -> Vec<RebalanceProtocol> {
            vec![RebalanceProtocol::Cooperative]
        }
        fn assign(
            &self,
            _: &HashMap<String, i32>,
            members: &[GroupMember],
        ) -> Result<HashMap<String, Assignment>> {
            Ok(into_assignments(members, HashMap::new()))
        }
    }

    #[test]
    fn assignors_without_a_common_protocol_are_refused() {
        let assignors: Vec<Arc<dyn PartitionAssignor>> =
            vec![Arc::new(RangeAssignor::new()), Arc::new(CooperativeOnly)];
        let err = rebalance_protocol(&assignors).unwrap_err();
        assert!(err.to_string().contains("range,coop-only"), "{err}");
    }

    #[test]
    fn cooperative_validation_catches_a_direct_handover() {
        let mut a = Subscription::new(["t"]);
        a.owned_partitions = vec![TopicPartition::new("t", 0)];
        let members = vec![
            GroupMember::new("a", a),
            GroupMember::new("b", Subscription::new(["t"])),
        ];
        let mut out = HashMap::new();
        out.insert("a".to_owned(), Assignment::default());
        out.insert(
            "b".to_owned(),
            Assignment::new(vec![TopicPartition::new("t", 0)]),
        );
        let err = validate_cooperative_assignment(&members, &out).unwrap_err();
        assert!(err.to_string().contains("t-0"), "{err}");
        // Revoking without handing over is what cooperative members do.
        out.insert("b".to_owned(), Assignment::default());
        validate_cooperative_assignment(&members, &out).unwrap();
    }

    #[test]
    fn java_order_differs_from_utf8_only_past_the_bmp() {
        assert_eq!(java_cmp("a", "b"), Ordering::Less);
        // U+FF21 (one UTF-16 unit 0xFF21) sorts after U+1F600 (surrogates 0xD83D..) in Java,
        // before it in UTF-8 byte order.
        assert_eq!(java_cmp("\u{FF21}", "\u{1F600}"), Ordering::Greater);
        assert_eq!("\u{FF21}".cmp("\u{1F600}"), Ordering::Less);
    }

    #[test]
    fn static_members_sort_first_by_instance_id() {
        let mut a = GroupMember::new("a", Subscription::default());
        let mut b = GroupMember::new("b", Subscription::default());
        assert_eq!(member_order(&a, &b), Ordering::Less);
        b.group_instance_id = Some("i0".into());
        assert_eq!(member_order(&a, &b), Ordering::Greater);
        a.group_instance_id = Some("i1".into());
        assert_eq!(member_order(&a, &b), Ordering::Greater);
    }
}
