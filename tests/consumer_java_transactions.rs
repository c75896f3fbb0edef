//! read_committed against transactions written by the Java client itself: the Java
//! `TransactionalMessageCopier` tool copies a topic in transactions and aborts about a third
//! of them at random, re-copying their records. A read_committed consumer must see every
//! input record exactly once, in order; read_uncommitted sees the aborted copies too.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use futures::future::join_all;
use kafka_client::cluster::IsolationLevel;
use kafka_client::consumer::Consumer;
use kafka_client::producer::{Producer, ProducerRecord};
use kafka_client::TopicPartition;

const RECORDS: usize = 1_000;

/// Reads partition 0 of `topic` from the start up to its end offset (the high watermark, or
/// the last stable offset under read_committed); returns the values read.
async fn read_all(topic: &str, isolation: IsolationLevel) -> Vec<String> {
    let mut consumer = Consumer::builder()
        .bootstrap_servers(&common::bootstrap())
        .isolation_level(isolation)
        .build()
        .await
        .unwrap();
    let tp = TopicPartition::new(topic, 0);
    consumer.assign([tp.clone()]).unwrap();
    consumer
        .seek_to_beginning(std::slice::from_ref(&tp))
        .unwrap();
    let end = consumer
        .end_offsets(std::slice::from_ref(&tp))
        .await
        .unwrap()[&tp];
    let mut values = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while consumer.position(&tp).await.unwrap() < end {
        assert!(
            tokio::time::Instant::now() < deadline,
            "did not reach offset {end}"
        );
        for r in consumer.poll(Duration::from_millis(500)).await.unwrap() {
            values.push(String::from_utf8(r.value.unwrap().to_vec()).unwrap());
        }
    }
    consumer.close().await.unwrap();
    values
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_committed_skips_the_java_clients_aborted_transactions() {
    let admin = common::admin().await;
    let input = common::new_topic(&admin, "txn-java-in", 1).await;
    let output = common::new_topic(&admin, "txn-java-out", 1).await;
    let producer = Producer::builder()
        .bootstrap_servers(&common::bootstrap())
        .build()
        .await
        .unwrap();
    let mut deliveries = Vec::new();
    for i in 0..RECORDS {
        deliveries.push(
            producer
                .send(ProducerRecord::new(&input).value(i.to_string()))
                .await
                .unwrap(),
        );
    }
    for d in join_all(deliveries).await {
        d.unwrap();
    }

    let id = common::unique_topic("txn-java");
    common::java::run(
        "org.apache.kafka.tools.TransactionalMessageCopier",
        &[
            "--broker-list",
            &common::bootstrap(),
            "--input-topic",
            &input,
            "--input-partition",
            "0",
            "--output-topic",
            &output,
            "--transactional-id",
            &id,
            "--consumer-group",
            &id,
            "--transaction-size",
            "50",
            "--max-messages",
            &RECORDS.to_string(),
            "--enable-random-aborts",
        ],
        "",
    );

    let committed = read_all(&output, IsolationLevel::ReadCommitted).await;
    let expected: Vec<String> = (0..RECORDS).map(|i| i.to_string()).collect();
    assert_eq!(committed, expected, "every input record once, in order");

    let everything = read_all(&output, IsolationLevel::ReadUncommitted).await;
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for v in &everything {
        *counts.entry(v.as_str()).or_default() += 1;
    }
    assert_eq!(counts.len(), RECORDS);
    // With 20 transactions aborted with probability 1/3 each, some were aborted and their
    // records appear twice (or more) without the read_committed filter.
    assert!(
        everything.len() > RECORDS,
        "read_uncommitted saw {} records: the copier aborted nothing?",
        everything.len()
    );
}
