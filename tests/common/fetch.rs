//! A small test-side reader: fetches whole partitions with raw Fetch requests and decodes them
//! with the crate's record codec. It lets producer tests check what the broker stored without
//! depending on the consumer.

use std::collections::HashMap;

use kafka_client::admin::Admin;
use kafka_client::cluster::OffsetSpec;
use kafka_client::config::ClientConfig;
use kafka_client::connection::{BrokerConnection, ConnectionOptions};
use kafka_client::protocol::records::{
    Compression, Record, RecordBatches, DEFAULT_MAX_DECOMPRESSED_SIZE,
};
use kafka_client::TopicPartition;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::{BrokerId, FetchRequest, TopicName};
use kafka_protocol::protocol::StrBytes;

/// Every record of every partition of `topic`, by partition, in offset order. Control
/// records are skipped.
pub async fn fetch_all(admin: &Admin, bootstrap: &str, topic: &str) -> HashMap<i32, Vec<Record>> {
    fetch_with_codecs(admin, bootstrap, topic).await.0
}

/// [`fetch_all`], plus the codec of every batch read, in log order.
pub async fn fetch_with_codecs(
    admin: &Admin,
    bootstrap: &str,
    topic: &str,
) -> (HashMap<i32, Vec<Record>>, Vec<Compression>) {
    let (records, batches) = fetch_with_batches(admin, bootstrap, topic).await;
    (records, batches.into_iter().map(|b| b.codec).collect())
}

/// What a batch header says, beside its records.
#[allow(dead_code)] // each test binary uses its own part of this module
#[derive(Clone, Debug)]
pub struct BatchInfo {
    pub partition: i32,
    pub codec: Compression,
    pub producer_id: i64,
    pub base_sequence: i32,
    pub records: usize,
}

/// [`fetch_all`], plus the header of every batch read, in log order per partition.
pub async fn fetch_with_batches(
    admin: &Admin,
    bootstrap: &str,
    topic: &str,
) -> (HashMap<i32, Vec<Record>>, Vec<BatchInfo>) {
    let described = admin.describe_topics(&[topic]).await.unwrap().remove(0);
    let specs = described
        .partitions
        .iter()
        .map(|p| (TopicPartition::new(topic, p.partition), OffsetSpec::Latest))
        .collect();
    let ends = admin.list_offsets(specs).await.unwrap();
    let cluster = admin.describe_cluster().await.unwrap();
    let opts = ConnectionOptions::from(&ClientConfig::new(bootstrap));
    let mut out = HashMap::new();
    let mut batches = Vec::new();
    for p in &described.partitions {
        let end = ends[&TopicPartition::new(topic, p.partition)]
            .offset
            .unwrap_or(0);
        let leader = &cluster.brokers[&p.leader.expect("partition has a leader")];
        let conn = BrokerConnection::connect(&leader.address(), "leader", &opts)
            .await
            .unwrap();
        let mut records = Vec::new();
        let mut offset = 0;
        while offset < end {
            let req = FetchRequest::default()
                .with_replica_id(BrokerId(-1))
                .with_max_wait_ms(100)
                .with_min_bytes(1)
                .with_max_bytes(16 * 1024 * 1024)
                .with_session_epoch(-1)
                .with_topics(vec![FetchTopic::default()
                    .with_topic(TopicName(StrBytes::from_string(topic.to_owned())))
                    .with_partitions(vec![FetchPartition::default()
                        .with_partition(p.partition)
                        .with_current_leader_epoch(-1)
                        .with_fetch_offset(offset)
                        .with_log_start_offset(-1)
                        .with_partition_max_bytes(8 * 1024 * 1024)])]);
            let resp = conn.request(&req).await.unwrap();
            let data = &resp.responses[0].partitions[0];
            assert_eq!(
                data.error_code, 0,
                "fetch {topic}-{} at {offset}",
                p.partition
            );
            let bytes = data.records.clone().unwrap_or_default();
            for batch in RecordBatches::new(bytes) {
                let batch = batch.unwrap();
                batch.validate_crc().unwrap();
                let is_control = batch.is_control();
                let mut info = BatchInfo {
                    partition: p.partition,
                    codec: batch.compression().unwrap(),
                    producer_id: batch.producer_id(),
                    base_sequence: batch.base_sequence(),
                    records: 0,
                };
                for record in batch.records(DEFAULT_MAX_DECOMPRESSED_SIZE).unwrap() {
                    let record = record.unwrap();
                    info.records += 1;
                    if record.offset >= offset {
                        offset = record.offset + 1;
                        if !is_control {
                            records.push(record);
                        }
                    }
                }
                offset = offset.max(batch.last_offset() + 1);
                batches.push(info);
            }
        }
        out.insert(p.partition, records);
    }
    (out, batches)
}
