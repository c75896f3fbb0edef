//! ListOffsets: earliest, latest and by-timestamp offsets of partitions, asked of each
//! partition's leader. Shared by the admin client and the consumer (`seek_to_end`,
//! `offsets_for_times`, `auto.offset.reset`).

use std::collections::HashMap;

use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::{BrokerId, ListOffsetsRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use tokio::time::Instant;

use super::{Cluster, ConnClass, Topics};
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

/// Looks up offsets, retrying leader changes until `default.api.timeout.ms`.
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
    let mut attempts = 0;
    loop {
        let todo: Vec<&TopicPartition> =
            specs.keys().filter(|tp| !done.contains_key(*tp)).collect();
        if todo.is_empty() {
            return Ok(done);
        }
        let mut by_leader: HashMap<i32, Vec<&TopicPartition>> = HashMap::new();
        let mut last_error = None;
        for tp in todo {
            let topic = cluster
                .topic(
                    &tp.topic,
                    deadline.saturating_duration_since(Instant::now()),
                )
                .await?;
            match topic.partition(tp.partition).and_then(|p| p.leader) {
                Some(leader) => by_leader.entry(leader).or_default().push(tp),
                None if topic.partition(tp.partition).is_none() => {
                    return Err(Error::UnknownTopicOrPartition {
                        context: ErrorContext::topic(&tp.topic, Some(tp.partition)),
                    })
                }
                None => {
                    last_error = Some(Error::broker(
                        5,
                        ErrorContext::topic(&tp.topic, Some(tp.partition)),
                        None,
                    ))
                }
            }
        }
        for (leader, tps) in by_leader {
            match ask_leader(cluster, leader, &tps, specs, isolation).await {
                Ok(answers) => {
                    for (tp, answer) in answers {
                        match answer {
                            Ok(listed) => {
                                done.insert(tp, listed);
                            }
                            Err(e) if e.is_retriable() => last_error = Some(e),
                            Err(e) => return Err(e),
                        }
                    }
                }
                Err(e) if e.is_retriable() => last_error = Some(e),
                Err(e) => return Err(e),
            }
        }
        if done.len() == specs.len() {
            return Ok(done);
        }
        attempts += 1;
        let pause = backoff.delay(attempts);
        if Instant::now() + pause >= deadline {
            let last = last_error.map(|e| e.to_string()).unwrap_or_default();
            return Err(Error::Timeout {
                what: format!("ListOffsets (default.api.timeout.ms; last error: {last})"),
                after: timeout,
            });
        }
        tokio::time::sleep(pause).await;
        let mut topics: Vec<String> = specs.keys().map(|tp| tp.topic.clone()).collect();
        topics.sort();
        topics.dedup();
        cluster.refresh(Topics::Only(topics)).await.ok();
    }
}

type Answers = Vec<(TopicPartition, Result<ListedOffset>)>;

async fn ask_leader(
    cluster: &Cluster,
    leader: i32,
    tps: &[&TopicPartition],
    specs: &HashMap<TopicPartition, OffsetSpec>,
    isolation: IsolationLevel,
) -> Result<Answers> {
    let mut topics: HashMap<&str, Vec<ListOffsetsPartition>> = HashMap::new();
    for tp in tps {
        let spec = specs.get(*tp).copied().unwrap_or(OffsetSpec::Latest);
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
