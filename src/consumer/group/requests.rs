//! The group requests, built for the version the coordinator speaks, and the parsing of
//! their answers. Fields a version lacks are left at their defaults (the codec refuses a set
//! field the version cannot carry).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use kafka_protocol::messages::find_coordinator_request::FindCoordinatorRequest;
use kafka_protocol::messages::leave_group_request::MemberIdentity;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::{
    OffsetFetchRequestGroup, OffsetFetchRequestTopic, OffsetFetchRequestTopics,
};
use kafka_protocol::messages::{
    GroupId, LeaveGroupRequest, OffsetCommitRequest, OffsetCommitResponse, OffsetFetchRequest,
    OffsetFetchResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;

use super::Committed;
use crate::cluster::{Cluster, ConnClass, Topics};
use crate::connection::BrokerConnection;
use crate::consumer::record::OffsetAndMetadata;
use crate::error::{Error, ErrorContext, KafkaCode, Result};
use crate::types::TopicPartition;

pub(crate) fn str_bytes(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_owned())
}

/// The group's coordinator: its broker id and a connection of the group class.
#[derive(Clone, Debug)]
pub(crate) struct Coordinator {
    pub(crate) id: i32,
    pub(crate) conn: Arc<BrokerConnection>,
}

/// FindCoordinator through any broker, then a connection to the coordinator.
pub(crate) async fn find_coordinator(cluster: &Cluster, group: &str) -> Result<Coordinator> {
    let metadata = cluster.metadata();
    let mut last_error = None;
    let mut found = None;
    for id in metadata.brokers.keys() {
        let conn = match cluster.broker(*id, ConnClass::Control).await {
            Ok(c) => c,
            Err(e) => {
                last_error = Some(e);
                continue;
            }
        };
        let version = conn.version::<FindCoordinatorRequest>()?;
        let mut req = FindCoordinatorRequest::default().with_key_type(0);
        req = if version >= 4 {
            req.with_coordinator_keys(vec![str_bytes(group)])
        } else {
            req.with_key(str_bytes(group))
        };
        let resp = match conn.request(&req).await {
            Ok(r) => r,
            Err(e) => {
                last_error = Some(e);
                continue;
            }
        };
        let (code, node, message) = if version >= 4 {
            match resp.coordinators.first() {
                Some(c) => (c.error_code, c.node_id.0, c.error_message.clone()),
                None => {
                    return Err(Error::Protocol {
                        broker: conn.broker().to_owned(),
                        reason: "FindCoordinator response without a coordinator".into(),
                    })
                }
            }
        } else {
            (resp.error_code, resp.node_id.0, resp.error_message.clone())
        };
        if code != 0 {
            return Err(Error::broker(
                code,
                ErrorContext::default().with_broker(conn.broker()),
                message.map(|m| format!("finding the coordinator of group {group}: {m}")),
            ));
        }
        found = Some(node);
        break;
    }
    let Some(node) = found else {
        return Err(last_error.unwrap_or_else(|| Error::Connection {
            broker: "any".into(),
            reason: "no broker known to ask for the group coordinator".into(),
        }));
    };
    if !cluster.metadata().brokers.contains_key(&node) {
        cluster.refresh(Topics::Only(Vec::new())).await?;
    }
    let conn = cluster.broker(node, ConnClass::Group).await?;
    Ok(Coordinator { id: node, conn })
}

/// LeaveGroup for one member.
pub(super) fn leave_request(
    version: i16,
    group: &str,
    member_id: &str,
    instance_id: Option<&str>,
    reason: &str,
) -> LeaveGroupRequest {
    let req = LeaveGroupRequest::default().with_group_id(GroupId(str_bytes(group)));
    if version >= 3 {
        let mut member = MemberIdentity::default()
            .with_member_id(str_bytes(member_id))
            .with_group_instance_id(instance_id.map(str_bytes));
        if version >= 5 {
            member = member.with_reason(Some(str_bytes(reason)));
        }
        req.with_members(vec![member])
    } else {
        req.with_member_id(str_bytes(member_id))
    }
}

/// OffsetCommit for a generation (`-1` and an empty member id outside group management).
pub(super) fn commit_request(
    version: i16,
    group: &str,
    generation: i32,
    member_id: &str,
    instance_id: Option<&str>,
    offsets: &HashMap<TopicPartition, OffsetAndMetadata>,
) -> OffsetCommitRequest {
    let mut by_topic: BTreeMap<&str, Vec<OffsetCommitRequestPartition>> = BTreeMap::new();
    for (tp, o) in offsets {
        let mut p = OffsetCommitRequestPartition::default()
            .with_partition_index(tp.partition)
            .with_committed_offset(o.offset)
            .with_committed_metadata(Some(str_bytes(&o.metadata)));
        if version >= 6 {
            p = p.with_committed_leader_epoch(o.leader_epoch.unwrap_or(-1));
        }
        by_topic.entry(&tp.topic).or_default().push(p);
    }
    let mut req = OffsetCommitRequest::default()
        .with_group_id(GroupId(str_bytes(group)))
        .with_generation_id_or_member_epoch(generation)
        .with_member_id(str_bytes(member_id))
        .with_topics(
            by_topic
                .into_iter()
                .map(|(t, partitions)| {
                    OffsetCommitRequestTopic::default()
                        .with_name(TopicName(str_bytes(t)))
                        .with_partitions(partitions)
                })
                .collect(),
        );
    if version >= 7 {
        req = req.with_group_instance_id(instance_id.map(str_bytes));
    }
    req
}

/// The first partition error of an OffsetCommit response, with its partition.
pub(super) fn commit_error(resp: &OffsetCommitResponse) -> Option<(KafkaCode, TopicPartition)> {
    resp.topics.iter().find_map(|t| {
        t.partitions.iter().find_map(|p| {
            (p.error_code != 0).then(|| {
                (
                    KafkaCode::from_code(p.error_code),
                    TopicPartition::new(t.name.0.to_string(), p.partition_index),
                )
            })
        })
    })
}

/// OffsetFetch of some partitions, asking for stable offsets (KIP-447) where supported.
pub(crate) fn offset_fetch_request(
    version: i16,
    group: &str,
    partitions: &[TopicPartition],
) -> OffsetFetchRequest {
    let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for tp in partitions {
        by_topic.entry(&tp.topic).or_default().push(tp.partition);
    }
    offset_fetch(version, group, Some(by_topic))
}

/// OffsetFetch of every partition the group has committed offsets for (the admin's view).
pub(crate) fn offset_fetch_all_request(version: i16, group: &str) -> OffsetFetchRequest {
    offset_fetch(version, group, None)
}

fn offset_fetch(
    version: i16,
    group: &str,
    by_topic: Option<BTreeMap<&str, Vec<i32>>>,
) -> OffsetFetchRequest {
    let mut req = OffsetFetchRequest::default();
    if version >= 8 {
        let topics = by_topic.map(|by_topic| {
            by_topic
                .into_iter()
                .map(|(t, ps)| {
                    OffsetFetchRequestTopics::default()
                        .with_name(TopicName(str_bytes(t)))
                        .with_partition_indexes(ps)
                })
                .collect()
        });
        req = req.with_groups(vec![OffsetFetchRequestGroup::default()
            .with_group_id(GroupId(str_bytes(group)))
            .with_topics(topics)]);
    } else {
        let topics = by_topic.map(|by_topic| {
            by_topic
                .into_iter()
                .map(|(t, ps)| {
                    OffsetFetchRequestTopic::default()
                        .with_name(TopicName(str_bytes(t)))
                        .with_partition_indexes(ps)
                })
                .collect()
        });
        req = req
            .with_group_id(GroupId(str_bytes(group)))
            .with_topics(topics);
    }
    if version >= 7 {
        req = req.with_require_stable(true);
    }
    req
}

/// Parses an OffsetFetch response: the group-level error, or every partition's offset.
/// A partition-level error fails the whole answer, as in the Java client.
pub(crate) fn parse_offset_fetch(
    version: i16,
    resp: OffsetFetchResponse,
    broker: &str,
) -> Result<Committed> {
    let mut out = HashMap::new();
    let mut entries: Vec<(String, i32, i64, i32, Option<String>, i16)> = Vec::new();
    let group_code = if version >= 8 {
        let Some(group) = resp.groups.into_iter().next() else {
            return Err(Error::Protocol {
                broker: broker.to_owned(),
                reason: "OffsetFetch response without the group".into(),
            });
        };
        for t in group.topics {
            for p in t.partitions {
                entries.push((
                    t.name.0.to_string(),
                    p.partition_index,
                    p.committed_offset,
                    p.committed_leader_epoch,
                    p.metadata.map(|m| m.to_string()),
                    p.error_code,
                ));
            }
        }
        group.error_code
    } else {
        for t in resp.topics {
            for p in t.partitions {
                entries.push((
                    t.name.0.to_string(),
                    p.partition_index,
                    p.committed_offset,
                    p.committed_leader_epoch,
                    p.metadata.map(|m| m.to_string()),
                    p.error_code,
                ));
            }
        }
        resp.error_code
    };
    if group_code != 0 {
        return Err(Error::broker(
            group_code,
            ErrorContext::default().with_broker(broker),
            None,
        ));
    }
    for (topic, partition, offset, epoch, metadata, code) in entries {
        if code != 0 {
            return Err(Error::broker(
                code,
                ErrorContext::topic(&topic, Some(partition)).with_broker(broker),
                None,
            ));
        }
        let committed = (offset >= 0).then(|| OffsetAndMetadata {
            offset,
            leader_epoch: (epoch >= 0).then_some(epoch),
            metadata: metadata.unwrap_or_default(),
        });
        out.insert(TopicPartition::new(topic, partition), committed);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::offset_commit_response::{
        OffsetCommitResponsePartition, OffsetCommitResponseTopic,
    };
    use kafka_protocol::messages::offset_fetch_response::{
        OffsetFetchResponseGroup, OffsetFetchResponsePartitions, OffsetFetchResponseTopics,
    };
    use kafka_protocol::protocol::Encodable;

    #[test]
    fn requests_encode_at_old_and_new_versions() {
        let offsets = HashMap::from([(
            TopicPartition::new("t", 1),
            OffsetAndMetadata {
                offset: 7,
                leader_epoch: Some(2),
                metadata: "m".into(),
            },
        )]);
        for v in [2, 6, 9] {
            let req = commit_request(v, "g", 3, "m-1", Some("i"), &offsets);
            let mut buf = bytes::BytesMut::new();
            req.encode(&mut buf, v).unwrap();
        }
        for v in [1, 7, 8, 9] {
            let req = offset_fetch_request(v, "g", &[TopicPartition::new("t", 0)]);
            let mut buf = bytes::BytesMut::new();
            req.encode(&mut buf, v).unwrap();
        }
        for v in [0, 3, 5] {
            let req = leave_request(v, "g", "m", None, "closing");
            let mut buf = bytes::BytesMut::new();
            req.encode(&mut buf, v).unwrap();
        }
    }

    #[test]
    fn commit_errors_name_the_partition() {
        let resp =
            OffsetCommitResponse::default().with_topics(vec![OffsetCommitResponseTopic::default()
                .with_name(TopicName(str_bytes("t")))
                .with_partitions(vec![
                    OffsetCommitResponsePartition::default().with_partition_index(0),
                    OffsetCommitResponsePartition::default()
                        .with_partition_index(1)
                        .with_error_code(22),
                ])]);
        assert_eq!(
            commit_error(&resp),
            Some((KafkaCode::ILLEGAL_GENERATION, TopicPartition::new("t", 1)))
        );
    }

    #[test]
    fn missing_committed_offsets_are_none() {
        let resp =
            OffsetFetchResponse::default().with_groups(vec![OffsetFetchResponseGroup::default()
                .with_topics(vec![OffsetFetchResponseTopics::default()
                    .with_name(TopicName(str_bytes("t")))
                    .with_partitions(vec![
                        OffsetFetchResponsePartitions::default()
                            .with_partition_index(0)
                            .with_committed_offset(-1),
                        OffsetFetchResponsePartitions::default()
                            .with_partition_index(1)
                            .with_committed_offset(12)
                            .with_committed_leader_epoch(4),
                    ])])]);
        let parsed = parse_offset_fetch(9, resp, "1").unwrap();
        assert_eq!(parsed[&TopicPartition::new("t", 0)], None);
        let one = parsed[&TopicPartition::new("t", 1)].clone().unwrap();
        assert_eq!((one.offset, one.leader_epoch), (12, Some(4)));
    }
}
