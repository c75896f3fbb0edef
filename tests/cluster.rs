//! Tests on the 3-node cluster (`scripts/kafka.sh start --nodes 3`): replication, failover.
//! Built only with `--features cluster-tests`; `scripts/test.sh` runs them after the
//! single-node suite. They kill and restart nodes, so they run one at a time.

mod common;

use std::collections::HashMap;
use std::process::Command;

use kafka_client::admin::{Admin, NewTopic};
use kafka_client::cluster::OffsetSpec;
use kafka_client::TopicPartition;

/// Tests that kill nodes must not overlap.
static NODES: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

pub fn cluster_bootstrap() -> String {
    std::env::var("KAFKA_CLUSTER_BOOTSTRAP")
        .unwrap_or_else(|_| "127.0.0.1:9092,127.0.0.1:9093,127.0.0.1:9094".to_owned())
}

async fn cluster_admin() -> Admin {
    let addr = cluster_bootstrap();
    Admin::connect(&addr).await.unwrap_or_else(|e| {
        panic!(
            "no 3-node cluster at {addr} ({e}); start one with `scripts/kafka.sh start --nodes 3`"
        )
    })
}

/// Runs `scripts/kafka.sh ARGS`, failing the test with its output if it fails.
pub fn kafka_sh(args: &[&str]) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/kafka.sh");
    let out = Command::new("bash")
        .arg(script)
        .args(args)
        .output()
        .expect("run scripts/kafka.sh");
    assert!(
        out.status.success(),
        "scripts/kafka.sh {args:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn cluster_topics_have_three_replicas() {
    let admin = cluster_admin().await;
    let cluster = admin.describe_cluster().await.unwrap();
    assert_eq!(cluster.brokers.len(), 3, "{:?}", cluster.brokers);
    let name = common::unique_topic("cluster-rf3");
    admin
        .create_topic(NewTopic::new(&name, 6, 3))
        .await
        .unwrap();
    let topic = admin.describe_topics(&[&name]).await.unwrap().remove(0);
    assert_eq!(topic.partitions.len(), 6);
    for p in &topic.partitions {
        assert_eq!(p.replicas.len(), 3, "partition {}", p.partition);
        assert!(p.leader.is_some_and(|l| p.replicas.contains(&l)));
    }
}

#[tokio::test]
async fn the_same_client_works_after_a_node_is_killed_and_restarted() {
    let _nodes = NODES.lock().await;
    let admin = cluster_admin().await;
    let name = common::unique_topic("cluster-restart");
    admin
        .create_topic(NewTopic::new(&name, 6, 3))
        .await
        .unwrap();
    let specs: HashMap<_, _> = (0..6)
        .map(|p| (TopicPartition::new(&name, p), OffsetSpec::Latest))
        .collect();
    assert_eq!(admin.list_offsets(specs.clone()).await.unwrap().len(), 6);

    kafka_sh(&["kill", "2"]);
    // Leaders move to the surviving nodes; the client follows without being rebuilt.
    let during = admin.list_offsets(specs.clone()).await.unwrap();
    assert_eq!(during.len(), 6);
    kafka_sh(&["restart", "2"]);
    let after = admin.list_offsets(specs).await.unwrap();
    assert_eq!(after.len(), 6);
    assert!(after.values().all(|o| o.offset == Some(0)));
    let brokers = admin.describe_cluster().await.unwrap().brokers;
    assert_eq!(brokers.len(), 3, "node 2 is back: {brokers:?}");
}

/// The producer's promise under failover: with idempotence and `acks=all` on a topic with
/// replication 3 and `min.insync.replicas=2`, killing and restarting partition leaders while
/// records stream loses none, duplicates none and reorders none.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotent_records_survive_three_leader_kills_exactly_once_in_order() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    use kafka_client::producer::{Acks, Producer, ProducerRecord};

    const N: usize = 300_000;
    let _nodes = NODES.lock().await;
    let bootstrap = cluster_bootstrap();
    let admin = cluster_admin().await;
    let topic = common::unique_topic("cluster-failover");
    admin
        .create_topic(NewTopic::new(&topic, 6, 3).config("min.insync.replicas", "2"))
        .await
        .unwrap();
    let producer = Producer::builder()
        .bootstrap_servers(&bootstrap)
        .acks(Acks::All)
        .idempotence(true)
        .build()
        .await
        .unwrap();

    let acked = Arc::new(AtomicUsize::new(0));
    let sending = {
        let (producer, topic, acked) = (producer.clone(), topic.clone(), acked.clone());
        tokio::spawn(async move {
            let mut deliveries = Vec::with_capacity(N);
            for i in 0..N {
                let acked = acked.clone();
                let record = ProducerRecord::new(&topic)
                    .key(format!("k{}", i % 1000))
                    .value(i.to_string());
                let (tx, rx) = tokio::sync::oneshot::channel();
                producer
                    .send_with_callback(record, move |result| {
                        acked.fetch_add(1, Ordering::Relaxed);
                        let _ = tx.send(result);
                    })
                    .await
                    .unwrap();
                deliveries.push(rx);
            }
            let mut failures = Vec::new();
            for (i, rx) in deliveries.into_iter().enumerate() {
                if let Err(e) = rx.await.unwrap() {
                    failures.push((i, e));
                }
            }
            failures
        })
    };

    for round in 1..=3 {
        // Kill at about 20 %, 45 % and 70 % of the stream, while records are in flight.
        let at = N * (round * 25 - 5) / 100;
        wait_until(|| acked.load(Ordering::Relaxed) >= at).await;
        let leader = admin.describe_topics(&[&topic]).await.unwrap()[0].partitions[0]
            .leader
            .unwrap();
        let node = leader.to_string();
        tokio::task::spawn_blocking({
            let node = node.clone();
            move || kafka_sh(&["kill", &node])
        })
        .await
        .unwrap();
        // Let the stream carry on over the surviving nodes before the node comes back.
        let resumed = acked.load(Ordering::Relaxed) + 5_000;
        wait_until(|| acked.load(Ordering::Relaxed) >= resumed.min(N)).await;
        tokio::task::spawn_blocking(move || kafka_sh(&["restart", &node]))
            .await
            .unwrap();
    }
    let failures = sending.await.unwrap();
    assert!(
        failures.is_empty(),
        "{} records failed, first: {:?}",
        failures.len(),
        failures.first()
    );
    producer.close(std::time::Duration::from_secs(30)).await;

    let fetched = common::fetch::fetch_all(&admin, &bootstrap, &topic).await;
    let mut seen = vec![false; N];
    for (partition, records) in &fetched {
        let mut last: Option<usize> = None;
        for r in records {
            let i: usize = std::str::from_utf8(r.value.as_ref().unwrap())
                .unwrap()
                .parse()
                .unwrap();
            assert!(!seen[i], "record {i} duplicated (partition {partition})");
            seen[i] = true;
            assert!(
                last.is_none_or(|l| l < i),
                "partition {partition}: {i} after {last:?}"
            );
            last = Some(i);
        }
    }
    let lost: Vec<usize> = (0..N).filter(|i| !seen[*i]).collect();
    assert!(
        lost.is_empty(),
        "{} records lost, first {:?}",
        lost.len(),
        lost.first()
    );
}

/// Polls `condition` every 20 ms, for at most two minutes.
async fn wait_until(condition: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(120);
    while !condition() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "condition not met within 2 minutes"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// Backpressure against a really stopped broker: `send` waits for `buffer.memory`, then fails
/// after `max.block.ms`; the records it accepted are bounded by the buffer; `close` returns
/// and every accepted record's future resolves.
#[tokio::test]
async fn a_stopped_leader_makes_send_wait_then_time_out_and_close_returns() {
    use std::time::{Duration, Instant};

    use kafka_client::producer::{Producer, ProducerRecord};
    use kafka_client::Error;

    let _nodes = NODES.lock().await;
    let admin = cluster_admin().await;
    let topic = common::unique_topic("cluster-stopped");
    admin
        .create_topic(NewTopic::new(&topic, 1, 1))
        .await
        .unwrap();
    let leader = admin.describe_topics(&[&topic]).await.unwrap()[0].partitions[0]
        .leader
        .unwrap()
        .to_string();
    let producer = Producer::builder()
        .bootstrap_servers(&cluster_bootstrap())
        .buffer_memory(64 * 1024)
        .max_block(Duration::from_secs(2))
        .linger(Duration::ZERO)
        .build()
        .await
        .unwrap();
    // Metadata first, so the failure below is about memory, not the topic.
    producer.partitions_for(&topic).await.unwrap();
    let node = leader.clone();
    tokio::task::spawn_blocking(move || kafka_sh(&["stop", &node]))
        .await
        .unwrap();

    let mut accepted = Vec::new();
    let err = loop {
        match producer
            .send(ProducerRecord::new(&topic).value(vec![0u8; 1024]))
            .await
        {
            Ok(delivery) => accepted.push(delivery),
            Err(e) => break e,
        }
        assert!(
            accepted.len() <= 64,
            "64 KiB of buffer.memory holds at most 64 such records"
        );
    };
    assert!(
        err.is_timeout() && err.to_string().contains("buffer.memory"),
        "{err}"
    );

    let started = Instant::now();
    producer.close(Duration::from_secs(1)).await;
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "close took {:?}",
        started.elapsed()
    );
    for delivery in accepted {
        let err = delivery.await.unwrap_err();
        assert!(
            matches!(err, Error::Closed(_)) || err.is_timeout(),
            "{err:?}"
        );
    }
    tokio::task::spawn_blocking(move || kafka_sh(&["restart", &leader]))
        .await
        .unwrap();
}
