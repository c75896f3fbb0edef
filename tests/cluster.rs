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
