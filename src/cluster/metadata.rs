//! The metadata cache's contents: brokers, topics, partitions, leaders and leader epochs.
//!
//! A snapshot is immutable and shared as `Arc<ClusterMetadata>`; a refresh builds a new one
//! from the old one and the Metadata response, so readers never wait for a refresh.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::Arc;

use kafka_protocol::messages::MetadataResponse;

use crate::error::KafkaCode;

/// A broker of the cluster.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BrokerInfo {
    /// The broker's `node.id`.
    pub id: i32,
    /// The host it advertises.
    pub host: String,
    /// The port it advertises.
    pub port: u16,
    /// Its `broker.rack`, when set.
    pub rack: Option<String>,
}

impl BrokerInfo {
    /// `host:port`.
    pub fn address(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

/// A topic's id, assigned by the cluster when the topic is created (KIP-516).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct TopicId(pub u128);

impl fmt::Display for TopicId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0.to_be_bytes();
        for (i, byte) in b.iter().enumerate() {
            if matches!(i, 4 | 6 | 8 | 10) {
                f.write_str("-")?;
            }
            write!(f, "{byte:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for TopicId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// One partition of a topic as the metadata describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartitionInfo {
    /// The partition number.
    pub partition: i32,
    /// The broker leading it, if there is a leader now.
    pub leader: Option<i32>,
    /// The leader epoch (KIP-320), -1 when unknown.
    pub leader_epoch: i32,
    /// Every replica's broker id, the preferred leader first.
    pub replicas: Vec<i32>,
    /// The in-sync replicas.
    pub isr: Vec<i32>,
    /// Replicas on offline log dirs.
    pub offline_replicas: Vec<i32>,
}

/// A topic and its partitions, sorted by partition number.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopicMetadata {
    /// The topic's name.
    pub name: String,
    /// Its id.
    pub id: TopicId,
    /// Whether it is an internal topic such as `__consumer_offsets`.
    pub is_internal: bool,
    /// Its partitions, index `i` holding partition `i`.
    pub partitions: Vec<PartitionInfo>,
}

impl TopicMetadata {
    /// The partition, if the topic has it.
    pub fn partition(&self, partition: i32) -> Option<&PartitionInfo> {
        usize::try_from(partition)
            .ok()
            .and_then(|i| self.partitions.get(i))
            .filter(|p| p.partition == partition)
    }
}

/// A consistent view of the cluster at one refresh.
#[derive(Clone, Debug, Default)]
pub struct ClusterMetadata {
    /// The cluster id.
    pub cluster_id: Option<String>,
    /// The broker the metadata names as controller (in KRaft, a broker that forwards to it).
    pub controller_id: Option<i32>,
    /// Live brokers by id.
    pub brokers: BTreeMap<i32, BrokerInfo>,
    /// Topics known to the cache, by name.
    pub topics: HashMap<String, Arc<TopicMetadata>>,
}

impl ClusterMetadata {
    /// A topic, if the cache knows it.
    pub fn topic(&self, name: &str) -> Option<&Arc<TopicMetadata>> {
        self.topics.get(name)
    }

    /// The leader of a partition, if known and alive.
    pub fn leader(&self, topic: &str, partition: i32) -> Option<&BrokerInfo> {
        let leader = self.topic(topic)?.partition(partition)?.leader?;
        self.brokers.get(&leader)
    }

    /// Builds the next snapshot from this one and a Metadata response. Topics the response
    /// carries replace the cached ones, except partitions whose leader epoch went backwards
    /// (a stale broker's view, KIP-320). Topics the response says do not exist are dropped.
    /// Returns the snapshot and the per-topic errors the response held.
    pub(crate) fn merge(
        &self,
        resp: &MetadataResponse,
        all_topics: bool,
    ) -> (Self, HashMap<String, KafkaCode>) {
        let brokers = resp
            .brokers
            .iter()
            .map(|b| {
                let info = BrokerInfo {
                    id: b.node_id.0,
                    host: b.host.to_string(),
                    port: u16::try_from(b.port).unwrap_or(0),
                    rack: b.rack.as_ref().map(|r| r.to_string()),
                };
                (info.id, info)
            })
            .collect();
        let mut topics = if all_topics {
            HashMap::new()
        } else {
            self.topics.clone()
        };
        let mut errors = HashMap::new();
        for t in &resp.topics {
            let Some(name) = t.name.as_ref().map(|n| n.0.to_string()) else {
                continue;
            };
            if t.error_code != 0 {
                let code = KafkaCode::from_code(t.error_code);
                if code == KafkaCode::UNKNOWN_TOPIC_OR_PARTITION
                    || code == KafkaCode::INVALID_TOPIC_EXCEPTION
                {
                    topics.remove(&name);
                }
                errors.insert(name, code);
                continue;
            }
            let id = TopicId(u128::from_be_bytes(*t.topic_id.as_bytes()));
            // A topic deleted and created again under the same name starts its leader
            // epochs afresh: the old topic's epochs must not mask the new leaders.
            let old = self
                .topics
                .get(&name)
                .filter(|o| o.id == id || o.id == TopicId::default() || id == TopicId::default());
            let mut partitions: Vec<PartitionInfo> = t
                .partitions
                .iter()
                .map(|p| {
                    let fresh = PartitionInfo {
                        partition: p.partition_index,
                        leader: (p.leader_id.0 >= 0).then_some(p.leader_id.0),
                        leader_epoch: p.leader_epoch,
                        replicas: p.replica_nodes.iter().map(|b| b.0).collect(),
                        isr: p.isr_nodes.iter().map(|b| b.0).collect(),
                        offline_replicas: p.offline_replicas.iter().map(|b| b.0).collect(),
                    };
                    match old.and_then(|o| o.partition(p.partition_index)) {
                        Some(cached)
                            if cached.leader_epoch > fresh.leader_epoch
                                && fresh.leader_epoch >= 0 =>
                        {
                            cached.clone()
                        }
                        _ => fresh,
                    }
                })
                .collect();
            partitions.sort_by_key(|p| p.partition);
            topics.insert(
                name.clone(),
                Arc::new(TopicMetadata {
                    name,
                    id,
                    is_internal: t.is_internal,
                    partitions,
                }),
            );
        }
        let next = ClusterMetadata {
            cluster_id: resp.cluster_id.as_ref().map(|c| c.to_string()),
            controller_id: (resp.controller_id.0 >= 0).then_some(resp.controller_id.0),
            brokers,
            topics,
        };
        (next, errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::metadata_response::{
        MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
    };
    use kafka_protocol::messages::{BrokerId, TopicName};
    use kafka_protocol::protocol::StrBytes;

    fn response(epoch: i32, leader: i32) -> MetadataResponse {
        MetadataResponse::default()
            .with_brokers(vec![MetadataResponseBroker::default()
                .with_node_id(BrokerId(1))
                .with_host(StrBytes::from_static_str("127.0.0.1"))
                .with_port(9092)])
            .with_topics(vec![
                MetadataResponseTopic::default()
                    .with_name(Some(TopicName(StrBytes::from_static_str("orders"))))
                    .with_partitions(vec![MetadataResponsePartition::default()
                        .with_partition_index(0)
                        .with_leader_id(BrokerId(leader))
                        .with_leader_epoch(epoch)]),
                MetadataResponseTopic::default()
                    .with_name(Some(TopicName(StrBytes::from_static_str("gone"))))
                    .with_error_code(3),
            ])
    }

    #[test]
    fn merge_keeps_newer_leader_epochs() {
        let (first, errors) = ClusterMetadata::default().merge(&response(5, 1), false);
        assert_eq!(
            errors.get("gone"),
            Some(&KafkaCode::UNKNOWN_TOPIC_OR_PARTITION)
        );
        assert_eq!(
            first.leader("orders", 0).map(|b| b.address()),
            Some("127.0.0.1:9092".into())
        );
        // A stale broker reports an older epoch with another leader: ignored.
        let (second, _) = first.merge(&response(4, 2), false);
        assert_eq!(
            second.topic("orders").unwrap().partitions[0].leader,
            Some(1)
        );
        let (third, _) = second.merge(&response(6, 2), false);
        assert_eq!(third.topic("orders").unwrap().partitions[0].leader, Some(2));
        assert!(third.topic("gone").is_none());
    }

    #[test]
    fn a_recreated_topic_is_not_masked_by_old_leader_epochs() {
        let with_id = |epoch, leader, id: u128| {
            let mut r = response(epoch, leader);
            r.topics[0].topic_id = uuid::Uuid::from_u128(id);
            r
        };
        let (old, _) = ClusterMetadata::default().merge(&with_id(9, 1, 1), false);
        let (new, _) = old.merge(&with_id(0, 2, 2), false);
        assert_eq!(new.topic("orders").unwrap().partitions[0].leader, Some(2));
    }

    #[test]
    fn topic_id_prints_as_uuid() {
        let id = TopicId(0x0011_2233_4455_6677_8899_aabb_ccdd_eeff);
        assert_eq!(id.to_string(), "00112233-4455-6677-8899-aabbccddeeff");
    }
}
