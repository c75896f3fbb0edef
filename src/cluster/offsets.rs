//! ListOffsets: earliest, latest and by-timestamp offsets of partitions, asked of each
//! partition's leader. Shared by the admin client and the consumer (`seek_to_end`,
//! `offsets_for_times`, `auto.offset.reset`).

use std::collections::HashMap;

use futures::future::join_all;
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::{BrokerId, ListOffsetsRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use tokio::time::Instant;

use super::{Cluster, ClusterMetadata, ConnClass, Topics};
use crate::config::Backoff;
use crate::error::{Error, ErrorContext, KafkaCode, Result};
use crate::types::TopicPartition;

/// Which offset of a partition to look up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OffsetSpec {
    /// The first offset still in the log.
    Earliest,
    /// The offset the next record will get (the high watermark, or the last stable offset
    /// under `read_committed`).
    Latest,
    /// The earliest offset whose record timestamp is at or after this many milliseconds
    /// since the epoch; [`ListedOffset::offset`] is `None` when there is none.
    Timestamp(i64),
    /// The offset of the record with the largest timestamp (Kafka 3.0+).
    MaxTimestamp,
}

impl OffsetSpec {
    fn wire(self) -> i64 {
        match self {
            OffsetSpec::Earliest => -2,
            OffsetSpec::Latest => -1,
            OffsetSpec::MaxTimestamp => -3,
            OffsetSpec::Timestamp(ts) => ts,
        }
    }
}

/// Transaction visibility, for ListOffsets and Fetch (`isolation.level`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum IsolationLevel {
    /// Every record, including those of open or aborted transactions (the Java default).
    #[default]
    ReadUncommitted,
    /// Only records of committed transactions, up to the last stable offset.
    ReadCommitted,
}

impl IsolationLevel {
    pub(crate) fn wire(self) -> i8 {
        match self {
            IsolationLevel::ReadUncommitted => 0,
            IsolationLevel::ReadCommitted => 1,
        }
    }
}

/// One answer of a ListOffsets look-up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ListedOffset {
    /// The offset; `None` for a timestamp later than every record.
    pub offset: Option<i64>,
    /// The record's timestamp for timestamp look-ups, else -1.
    pub timestamp: i64,
    /// The leader epoch of that offset, when the broker knows it.
    pub leader_epoch: Option<i32>,
}

/// Looks up offsets, as Java's `OffsetFetcher` does: partitions grouped by leader, every
/// leader asked at once, leader changes and topics missing from the metadata retried, all
/// within one deadline of `default.api.timeout.ms` for the whole look-up. A partition a
/// topic does not have fails at once with [`Error::UnknownTopicOrPartition`]; so does a
/// topic that is still unknown at the deadline.
pub(crate) async fn list_offsets(
    cluster: &Cluster,
    specs: &HashMap<TopicPartition, OffsetSpec>,
    isolation: IsolationLevel,
) -> Result<HashMap<TopicPartition, ListedOffset>> {
    let timeout = cluster.config().default_api_timeout;
    let deadline = Instant::now() + timeout;
    let backoff = Backoff::new(
        cluster.config().retry_backoff,
        cluster.config().retry_backoff_max,
    );
    let mut done = HashMap::with_capacity(specs.len());
    let mut failed: HashMap<TopicPartition, Error> = HashMap::new();
    let mut attempts = 0;
    let timed_out = |failed: &HashMap<TopicPartition, Error>| {
        // Still unknown topics only: say so, as a look-up of a topic that never appears.
        let mut unknown = failed
            .iter()
            .filter(|(_, e)| matches!(e, Error::UnknownTopicOrPartition { .. }));
        match unknown.next() {
            Some((tp, _)) if failed.len() == unknown.count() + 1 => {
                Error::UnknownTopicOrPartition {
                    context: ErrorContext::topic(&tp.topic, Some(tp.partition)),
                }
            }
            _ => Error::Timeout {
                what: format!(
                    "ListOffsets (default.api.timeout.ms; last error: {})",
                    failed
                        .values()
                        .next()
                        .map(ToString::to_string)
                        .unwrap_or_default()
                ),
                after: timeout,
            },
        }
    };
    loop {
        let todo: Vec<TopicPartition> = specs
            .keys()
            .filter(|tp| !done.contains_key(*tp))
            .cloned()
            .collect();
        if todo.is_empty() {
            return Ok(done);
        }
        let cached = cluster.metadata();
        if attempts > 0 || todo.iter().any(|tp| cached.topic(&tp.topic).is_none()) {
            let mut topics: Vec<String> = todo.iter().map(|tp| tp.topic.clone()).collect();
            topics.sort();
            topics.dedup();
            let refresh = cluster.refresh(Topics::Only(topics));
            if tokio::time::timeout_at(deadline, refresh).await.is_err() {
                return Err(timed_out(&failed));
            }
        }
        let metadata = cluster.metadata();
        let Routes {
            by_leader,
            unroutable,
        } = group_by_leader(&metadata, todo);
        failed.clear();
        for (tp, e) in unroutable {
            let known_topic = metadata
                .topic(&tp.topic)
                .is_some_and(|t| !t.partitions.is_empty());
            if known_topic && matches!(e, Error::UnknownTopicOrPartition { .. }) {
                return Err(e);
            }
            failed.insert(tp, e);
        }
        let asks = by_leader.into_iter().map(|(leader, tps)| async move {
            let wanted: Vec<(TopicPartition, OffsetSpec)> = tps
                .into_iter()
                .map(|tp| {
                    let spec = specs.get(&tp).copied().unwrap_or(OffsetSpec::Latest);
                    (tp, spec)
                })
                .collect();
            let result = ask_leader(cluster, leader, &wanted, isolation).await;
            (wanted, result)
        });
        let Ok(answers) = tokio::time::timeout_at(deadline, join_all(asks)).await else {
            return Err(timed_out(&failed));
        };
        for (wanted, result) in answers {
            match result {
                Ok(answers) => {
                    for (tp, answer) in answers {
                        match answer {
                            Ok(listed) => {
                                done.insert(tp, listed);
                            }
                            Err(e) if e.is_retriable() => {
                                failed.insert(tp, e);
                            }
                            Err(e) => return Err(e),
                        }
                    }
                }
                Err(e) if e.is_retriable() => {
                    for (tp, _) in wanted {
                        failed.insert(tp, e.clone());
                    }
                }
                Err(e) => return Err(e),
            }
        }
        if done.len() == specs.len() {
            return Ok(done);
        }
        attempts += 1;
        let pause = backoff.delay(attempts);
        if Instant::now() + pause >= deadline {
            return Err(timed_out(&failed));
        }
        tokio::time::sleep(pause).await;
    }
}

/// Partitions grouped for ListOffsets: see [`group_by_leader`].
#[derive(Debug, Default)]
pub(crate) struct Routes {
    /// Partitions by the leader to ask.
    pub(crate) by_leader: HashMap<i32, Vec<TopicPartition>>,
    /// Partitions with no leader to ask now, each with the retriable error to report.
    pub(crate) unroutable: Vec<(TopicPartition, Error)>,
}

/// Partitions by the leader to ask, from `metadata` (Java's `groupListOffsetRequests`), and
/// those with no leader to ask now: [`Error::UnknownTopicOrPartition`] when the metadata
/// lacks the topic or the partition, `LEADER_NOT_AVAILABLE` when it has no live leader.
pub(crate) fn group_by_leader(
    metadata: &ClusterMetadata,
    partitions: impl IntoIterator<Item = TopicPartition>,
) -> Routes {
    let mut by_leader: HashMap<i32, Vec<TopicPartition>> = HashMap::new();
    let mut unroutable = Vec::new();
    for tp in partitions {
        let partition = metadata
            .topic(&tp.topic)
            .and_then(|t| t.partition(tp.partition));
        match partition.map(|p| p.leader.filter(|l| metadata.brokers.contains_key(l))) {
            Some(Some(leader)) => by_leader.entry(leader).or_default().push(tp),
            Some(None) => {
                let e = Error::broker(
                    KafkaCode::LEADER_NOT_AVAILABLE.code(),
                    ErrorContext::topic(&tp.topic, Some(tp.partition)),
                    None,
                );
                unroutable.push((tp, e));
            }
            None => {
                let e = Error::UnknownTopicOrPartition {
                    context: ErrorContext::topic(&tp.topic, Some(tp.partition)),
                };
                unroutable.push((tp, e));
            }
        }
    }
    Routes {
        by_leader,
        unroutable,
    }
}

/// The answer for each partition of one ListOffsets request.
pub(crate) type Answers = Vec<(TopicPartition, Result<ListedOffset>)>;

/// One ListOffsets request to `leader` for `wanted`. A request-level failure (connection,
/// timeout) is the `Err`; per-partition errors are in the answers, and a retriable one asks
/// for a metadata refresh.
pub(crate) async fn ask_leader(
    cluster: &Cluster,
    leader: i32,
    wanted: &[(TopicPartition, OffsetSpec)],
    isolation: IsolationLevel,
) -> Result<Answers> {
    let mut topics: HashMap<&str, Vec<ListOffsetsPartition>> = HashMap::new();
    for (tp, spec) in wanted {
        topics.entry(&tp.topic).or_default().push(
            ListOffsetsPartition::default()
                .with_partition_index(tp.partition)
                .with_current_leader_epoch(-1)
                .with_timestamp(spec.wire()),
        );
    }
    let req = ListOffsetsRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_isolation_level(isolation.wire())
        .with_topics(
            topics
                .into_iter()
                .map(|(name, partitions)| {
                    ListOffsetsTopic::default()
                        .with_name(TopicName(StrBytes::from_string(name.to_owned())))
                        .with_partitions(partitions)
                })
                .collect(),
        );
    let conn = cluster.broker(leader, ConnClass::Control).await?;
    let resp = conn.request(&req).await?;
    let mut out = Vec::new();
    for t in resp.topics {
        let topic = t.name.0.to_string();
        for p in t.partitions {
            let tp = TopicPartition::new(topic.clone(), p.partition_index);
            let answer = if p.error_code != 0 {
                let code = KafkaCode::from_code(p.error_code);
                if code.is_retriable() {
                    cluster.request_refresh();
                }
                Err(Error::broker(
                    p.error_code,
                    ErrorContext::topic(&topic, Some(p.partition_index)).with_broker(conn.broker()),
                    None,
                ))
            } else {
                Ok(ListedOffset {
                    offset: (p.offset >= 0).then_some(p.offset),
                    timestamp: p.timestamp,
                    leader_epoch: (p.leader_epoch >= 0).then_some(p.leader_epoch),
                })
            };
            out.push((tp, answer));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::cluster::{BrokerInfo, PartitionInfo, TopicId, TopicMetadata};

    fn partition(partition: i32, leader: Option<i32>) -> PartitionInfo {
        PartitionInfo {
            partition,
            leader,
            leader_epoch: 0,
            replicas: Vec::new(),
            isr: Vec::new(),
            offline_replicas: Vec::new(),
        }
    }

    #[test]
    fn partitions_are_grouped_by_live_leader_and_the_rest_say_why_not() {
        let mut metadata = ClusterMetadata::default();
        for id in [1, 2] {
            let broker = BrokerInfo {
                id,
                host: "h".into(),
                port: 9092,
                rack: None,
            };
            metadata.brokers.insert(id, broker);
        }
        let topic = TopicMetadata {
            name: "t".into(),
            id: TopicId(1),
            is_internal: false,
            partitions: vec![
                partition(0, Some(1)),
                partition(1, Some(2)),
                partition(2, Some(1)),
                partition(3, None),
                partition(4, Some(9)), // a leader the metadata does not list
            ],
        };
        metadata.topics.insert("t".into(), Arc::new(topic));
        let tp = |t: &str, p| TopicPartition::new(t, p);
        let asked = [tp("t", 0), tp("t", 1), tp("t", 2), tp("t", 3), tp("t", 4)];
        let more = [tp("t", 7), tp("gone", 0)];
        let Routes {
            by_leader,
            unroutable,
        } = group_by_leader(&metadata, asked.into_iter().chain(more));
        assert_eq!(by_leader[&1], vec![tp("t", 0), tp("t", 2)]);
        assert_eq!(by_leader[&2], vec![tp("t", 1)]);
        assert_eq!(by_leader.len(), 2);
        let why: Vec<(TopicPartition, Option<KafkaCode>)> = unroutable
            .into_iter()
            .map(|(tp, e)| {
                assert!(e.is_retriable(), "{e}");
                (tp, e.kafka_code())
            })
            .collect();
        assert_eq!(
            why,
            vec![
                (tp("t", 3), Some(KafkaCode::LEADER_NOT_AVAILABLE)),
                (tp("t", 4), Some(KafkaCode::LEADER_NOT_AVAILABLE)),
                (tp("t", 7), Some(KafkaCode::UNKNOWN_TOPIC_OR_PARTITION)),
                (tp("gone", 0), Some(KafkaCode::UNKNOWN_TOPIC_OR_PARTITION)),
            ]
        );
    }
}
