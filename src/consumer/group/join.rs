//! JoinGroup and SyncGroup: the member's half (protocols it offers) and the leader's half
//! (running the assignor over every member's subscription).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::{
    GroupId, JoinGroupRequest, JoinGroupResponse, SyncGroupRequest, SyncGroupResponse,
};

use super::requests::{str_bytes, Coordinator};
use crate::cluster::{Cluster, Topics};
use crate::consumer::assignor::{
    validate_cooperative_assignment, GroupMember, PartitionAssignor, RebalanceProtocol,
    Subscription,
};
use crate::consumer::protocol::{
    decode_subscription, encode_assignment, encode_subscription, PROTOCOL_TYPE,
};
use crate::error::{Error, Result};
use crate::types::TopicPartition;

/// A member's place in the group: Java's `Generation`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Generation {
    pub(super) id: i32,
    pub(super) member_id: String,
    pub(super) protocol: Option<String>,
}

impl Generation {
    pub(super) const fn none() -> Self {
        Generation {
            id: -1,
            member_id: String::new(),
            protocol: None,
        }
    }

    /// Whether this is a real generation of the group (not reset).
    pub(super) fn is_valid(&self) -> bool {
        self.id >= 0 && !self.member_id.is_empty()
    }
}

/// What the member sends in JoinGroup: group settings and its subscription.
pub(super) struct JoinParams {
    pub(super) group: String,
    pub(super) instance_id: Option<String>,
    pub(super) session_timeout: Duration,
    pub(super) rebalance_timeout: Duration,
    pub(super) member_id: String,
    pub(super) protocols: Vec<(String, Bytes)>,
    pub(super) reason: String,
    pub(super) timeout: Duration,
}

/// One protocol per assignor, in order of preference, each carrying the same subscription
/// with that assignor's user data (as the Java `ConsumerCoordinator.metadata()`).
pub(super) fn protocols(
    assignors: &[Arc<dyn PartitionAssignor>],
    topics: &BTreeSet<String>,
    owned: &[TopicPartition],
    generation: i32,
    rack: Option<&str>,
) -> Result<Vec<(String, Bytes)>> {
    let topic_list: Vec<String> = topics.iter().cloned().collect();
    assignors
        .iter()
        .map(|a| {
            let subscription = Subscription {
                topics: topic_list.clone(),
                user_data: a.subscription_user_data(&topic_list),
                owned_partitions: owned.to_vec(),
                generation_id: (generation >= 0).then_some(generation),
                rack_id: rack.map(str::to_owned),
            };
            Ok((a.name().to_owned(), encode_subscription(&subscription)?))
        })
        .collect()
}

/// Sends JoinGroup and waits for the rebalance to gather the members.
pub(super) async fn join(coord: Coordinator, p: JoinParams) -> Result<JoinGroupResponse> {
    let version = coord.conn.version::<JoinGroupRequest>()?;
    let mut req = JoinGroupRequest::default()
        .with_group_id(GroupId(str_bytes(&p.group)))
        .with_session_timeout_ms(millis_i32(p.session_timeout))
        .with_rebalance_timeout_ms(millis_i32(p.rebalance_timeout))
        .with_member_id(str_bytes(&p.member_id))
        .with_protocol_type(str_bytes(PROTOCOL_TYPE))
        .with_protocols(
            p.protocols
                .into_iter()
                .map(|(name, metadata)| {
                    JoinGroupRequestProtocol::default()
                        .with_name(str_bytes(&name))
                        .with_metadata(metadata)
                })
                .collect(),
        );
    if let Some(instance) = &p.instance_id {
        if version < 5 {
            return Err(unsupported_static(coord.conn.broker()));
        }
        req = req.with_group_instance_id(Some(str_bytes(instance)));
    }
    if version >= 8 {
        // Java truncates the reason to 255 characters.
        let reason: String = p.reason.chars().take(255).collect();
        req = req.with_reason(Some(str_bytes(&reason)));
    }
    coord.conn.request_at(&req, version, p.timeout).await
}

fn unsupported_static(broker: &str) -> Error {
    Error::InvalidArgument(format!(
        "broker {broker} is too old for static membership (group.instance.id needs JoinGroup v5)"
    ))
}

fn millis_i32(d: Duration) -> i32 {
    i32::try_from(d.as_millis()).unwrap_or(i32::MAX)
}

/// What SyncGroup needs besides the assignments.
#[derive(Clone)]
pub(super) struct SyncParams {
    pub(super) group: String,
    pub(super) instance_id: Option<String>,
    pub(super) generation: Generation,
}

/// The leader's result: the SyncGroup answer and the partition counts it assigned from.
pub(super) struct Synced {
    pub(super) response: SyncGroupResponse,
    /// Leader only: partition count of every topic the group subscribes to, as assigned.
    pub(super) snapshot: Option<BTreeMap<String, i32>>,
}

/// Runs the assignor over the members (refreshing metadata of their topics first, or of every
/// topic when this member subscribes to a pattern, as Java's `ConsumerMetadata` does, so no
/// topic a member still names after its deletion is auto-created again) and sends every
/// member's assignment in SyncGroup.
#[allow(clippy::too_many_arguments)]
pub(super) async fn lead(
    cluster: Cluster,
    coord: Coordinator,
    assignors: Vec<Arc<dyn PartitionAssignor>>,
    protocol: RebalanceProtocol,
    members: Vec<JoinGroupResponseMember>,
    skip_assignment: bool,
    all_topics: bool,
    p: SyncParams,
) -> Result<Synced> {
    let name = p.generation.protocol.clone().unwrap_or_default();
    let assignor = assignors
        .iter()
        .find(|a| a.name() == name)
        .cloned()
        .ok_or_else(|| Error::Protocol {
            broker: coord.conn.broker().to_owned(),
            reason: format!("coordinator chose assignor {name:?}, which this member did not offer"),
        })?;
    let mut group_members = Vec::with_capacity(members.len());
    let mut topics = BTreeSet::new();
    for m in members {
        let subscription = decode_subscription(m.metadata)?;
        topics.extend(subscription.topics.iter().cloned());
        group_members.push(GroupMember {
            member_id: m.member_id.to_string(),
            group_instance_id: m.group_instance_id.map(|i| i.to_string()),
            subscription,
        });
    }
    let topic_list: Vec<String> = topics.iter().cloned().collect();
    cluster.track(topic_list.iter().cloned());
    let refresh = if all_topics {
        Topics::All
    } else {
        Topics::Only(topic_list.clone())
    };
    let metadata = cluster.refresh(refresh).await?.metadata;
    let snapshot: BTreeMap<String, i32> = topic_list
        .iter()
        .map(|t| {
            let count = metadata.topic(t).map_or(0, |m| m.partitions.len() as i32);
            (t.clone(), count)
        })
        .collect();
    let mut assignments = Vec::new();
    if skip_assignment {
        // A returning static leader (KIP-814): the coordinator kept the assignment.
        tracing::info!(group = %p.group, "static leader rejoined; assignment kept by the coordinator");
    } else {
        let partitions: HashMap<String, i32> = snapshot
            .iter()
            .filter(|(_, n)| **n > 0)
            .map(|(t, n)| (t.clone(), *n))
            .collect();
        let result = assignor.assign(&partitions, &group_members)?;
        if protocol == RebalanceProtocol::Cooperative && assignor.name() != "cooperative-sticky" {
            validate_cooperative_assignment(&group_members, &result)?;
        }
        tracing::info!(
            group = %p.group,
            generation = p.generation.id,
            assignor = assignor.name(),
            members = group_members.len(),
            "assigned partitions as leader"
        );
        for (member, assignment) in result {
            assignments.push(
                SyncGroupRequestAssignment::default()
                    .with_member_id(str_bytes(&member))
                    .with_assignment(encode_assignment(&assignment)?),
            );
        }
    }
    let response = sync(&coord, &p, assignments).await?;
    Ok(Synced {
        response,
        snapshot: Some(snapshot),
    })
}

/// A follower's SyncGroup: no assignments, just waiting for its own.
pub(super) async fn follow(coord: Coordinator, p: SyncParams) -> Result<Synced> {
    let response = sync(&coord, &p, Vec::new()).await?;
    Ok(Synced {
        response,
        snapshot: None,
    })
}

async fn sync(
    coord: &Coordinator,
    p: &SyncParams,
    assignments: Vec<SyncGroupRequestAssignment>,
) -> Result<SyncGroupResponse> {
    let version = coord.conn.version::<SyncGroupRequest>()?;
    let mut req = SyncGroupRequest::default()
        .with_group_id(GroupId(str_bytes(&p.group)))
        .with_generation_id(p.generation.id)
        .with_member_id(str_bytes(&p.generation.member_id))
        .with_assignments(assignments);
    if let Some(instance) = &p.instance_id {
        if version < 3 {
            return Err(unsupported_static(coord.conn.broker()));
        }
        req = req.with_group_instance_id(Some(str_bytes(instance)));
    }
    if version >= 5 {
        req = req
            .with_protocol_type(Some(str_bytes(PROTOCOL_TYPE)))
            .with_protocol_name(p.generation.protocol.as_deref().map(str_bytes));
    }
    coord.conn.request(&req).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consumer::assignor::default_assignors;
    use crate::consumer::protocol::decode_subscription;

    #[test]
    fn every_assignor_offers_the_same_subscription() {
        let topics: BTreeSet<String> = ["b".to_owned(), "a".to_owned()].into();
        let owned = vec![TopicPartition::new("a", 0)];
        let offered = protocols(&default_assignors(), &topics, &owned, 4, Some("r1")).unwrap();
        let names: Vec<&str> = offered.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["range", "cooperative-sticky"]);
        for (_, bytes) in offered {
            let s = decode_subscription(bytes).unwrap();
            assert_eq!(s.topics, ["a", "b"]);
            assert_eq!(s.owned_partitions, owned);
            assert_eq!(s.generation_id, Some(4));
            assert_eq!(s.rack_id.as_deref(), Some("r1"));
        }
    }

    #[test]
    fn generations_reset_to_none() {
        assert!(!Generation::none().is_valid());
        let g = Generation {
            id: 3,
            member_id: "m".into(),
            protocol: Some("range".into()),
        };
        assert!(g.is_valid());
    }
}
