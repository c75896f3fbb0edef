//! A test-side writer for consumer tests: raw Produce requests (acks=-1) of batches built with
//! the crate's `RecordBatchBuilder`, so the records, keys, values and timestamps a test reads
//! back are exactly the ones it wrote, independent of the producer.

use std::collections::HashMap;

use bytes::Bytes;
use kafka_client::admin::{Admin, NewTopic};
use kafka_client::config::ClientConfig;
use kafka_client::connection::{BrokerConnection, ConnectionOptions};
use kafka_client::protocol::records::{Compression, ProducerState, RecordBatchBuilder};
use kafka_client::Header;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{ProduceRequest, TopicName, TransactionalId};
use kafka_protocol::protocol::StrBytes;

/// One record to write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rec {
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub timestamp: i64,
    pub headers: Vec<Header>,
}

impl Rec {
    pub fn new(key: &str, value: &str, timestamp: i64) -> Self {
        Rec {
            key: Some(key.as_bytes().to_vec()),
            value: Some(value.as_bytes().to_vec()),
            timestamp,
            headers: Vec::new(),
        }
    }
}

/// Creates a fresh topic that accepts acks=-1 on any cluster size (replication 1 with
/// `min.insync.replicas=1`, also on the 3-node cluster whose default is 2).
pub async fn topic(
    admin: &Admin,
    prefix: &str,
    partitions: i32,
    configs: &[(&str, &str)],
) -> String {
    let name = super::unique_topic(prefix);
    let mut t = NewTopic::new(&name, partitions, 1).config("min.insync.replicas", "1");
    for (k, v) in configs {
        t = t.config(*k, *v);
    }
    admin
        .create_topic(t)
        .await
        .unwrap_or_else(|e| panic!("creating topic {name}: {e}"));
    name
}

/// Writes batches straight to partition leaders.
pub struct RawProducer {
    admin: Admin,
    opts: ConnectionOptions,
    conns: HashMap<i32, BrokerConnection>,
}

impl RawProducer {
    pub async fn new(admin: &Admin) -> Self {
        RawProducer {
            admin: admin.clone(),
            opts: ConnectionOptions::from(&ClientConfig::new(&super::bootstrap())),
            conns: HashMap::new(),
        }
    }

    /// A connection to the leader of `topic`-`partition` (its broker id too).
    pub async fn leader(&mut self, topic: &str, partition: i32) -> (i32, &BrokerConnection) {
        let described = self
            .admin
            .describe_topics(&[topic])
            .await
            .unwrap()
            .remove(0);
        let leader = described.partitions[partition as usize]
            .leader
            .expect("partition has a leader");
        if !self.conns.contains_key(&leader) {
            let cluster = self.admin.describe_cluster().await.unwrap();
            let addr = cluster.brokers[&leader].address();
            let conn = BrokerConnection::connect(&addr, &leader.to_string(), &self.opts)
                .await
                .unwrap();
            self.conns.insert(leader, conn);
        }
        (leader, &self.conns[&leader])
    }

    /// Writes `records` as one batch; returns the base offset.
    pub async fn send(
        &mut self,
        topic: &str,
        partition: i32,
        records: &[Rec],
        compression: Compression,
    ) -> i64 {
        let batch = build(records, compression, ProducerState::NONE);
        self.send_batch(topic, partition, batch, None).await
    }

    /// Writes a built batch (for transactional ones, with their transactional id); returns
    /// the base offset.
    pub async fn send_batch(
        &mut self,
        topic: &str,
        partition: i32,
        batch: Bytes,
        transactional_id: Option<&str>,
    ) -> i64 {
        let req = ProduceRequest::default()
            .with_acks(-1)
            .with_timeout_ms(30_000)
            .with_transactional_id(
                transactional_id.map(|t| TransactionalId(StrBytes::from_string(t.to_owned()))),
            )
            .with_topic_data(vec![TopicProduceData::default()
                .with_name(TopicName(StrBytes::from_string(topic.to_owned())))
                .with_partition_data(vec![PartitionProduceData::default()
                    .with_index(partition)
                    .with_records(Some(batch))])]);
        // A topic just created may not have its leader everywhere yet: retry while the broker
        // says so (NOT_LEADER_OR_FOLLOWER, UNKNOWN_TOPIC_OR_PARTITION, LEADER_NOT_AVAILABLE).
        for attempt in 0.. {
            let (_, conn) = self.leader(topic, partition).await;
            let resp = conn.request(&req).await.unwrap();
            let p = &resp.responses[0].partition_responses[0];
            if matches!(p.error_code, 3 | 5 | 6) && attempt < 50 {
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
            assert_eq!(
                p.error_code, 0,
                "produce to {topic}-{partition}: error {}",
                p.error_code
            );
            return p.base_offset;
        }
        unreachable!()
    }

    /// Writes `count` records to each partition of a fresh topic, in batches of 500: record
    /// `i` of partition `p` has key `k{p}-{i}`, value `v{p}-{i}` and timestamp
    /// `1_000_000 + i` (so value `v{p}-{i}` sits at offset `i`).
    pub async fn fill(&mut self, topic: &str, partitions: i32, count: usize) {
        self.fill_range(topic, partitions, 0, count).await
    }

    /// [`fill`](Self::fill) for records `from..from + count` (offsets `from..` when the
    /// partitions hold `from` records of this helper already).
    pub async fn fill_range(&mut self, topic: &str, partitions: i32, from: usize, count: usize) {
        for p in 0..partitions {
            let mut i = from;
            while i < from + count {
                let n = 500.min(from + count - i);
                let recs: Vec<Rec> = (i..i + n)
                    .map(|j| {
                        Rec::new(
                            &format!("k{p}-{j}"),
                            &format!("v{p}-{j}"),
                            1_000_000 + j as i64,
                        )
                    })
                    .collect();
                self.send(topic, p, &recs, Compression::None).await;
                i += n;
            }
        }
    }
}

/// One batch of `records`.
pub fn build(records: &[Rec], compression: Compression, producer: ProducerState) -> Bytes {
    let mut b = RecordBatchBuilder::new(compression, 16 * 1024);
    for r in records {
        b.append(
            r.timestamp,
            r.key.as_deref(),
            r.value.as_deref(),
            &r.headers,
        )
        .unwrap();
    }
    b.build(producer).unwrap()
}
