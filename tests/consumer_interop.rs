//! A group shared with the Java client: this crate's consumer and Java's ConsoleConsumer join
//! one group, split the partitions, and together read every record exactly once. Either may
//! be the leader, so each decodes the other's subscription and assignment bytes.

mod common;

use std::collections::HashSet;
use std::time::Duration;

use kafka_client::consumer::{Consumer, OffsetReset};
use tokio::time::Instant;

use common::produce::{topic, RawProducer};

async fn mixed_group(java_class: &str) {
    let admin = common::admin().await;
    let t = topic(&admin, "interop-group", 4, &[]).await;
    let group = common::unique_topic("g-interop");
    let mut ours = Consumer::builder()
        .bootstrap_servers(&common::bootstrap())
        .group_id(&group)
        .auto_offset_reset(OffsetReset::Earliest)
        .set("partition.assignment.strategy", java_class)
        .session_timeout(Duration::from_secs(10))
        .heartbeat_interval(Duration::from_millis(500))
        .build()
        .await
        .unwrap();
    ours.subscribe([t.clone()]).unwrap();
    // Join first, alone, so the Java member's arrival is a rebalance of a live group.
    let deadline = Instant::now() + Duration::from_secs(30);
    while ours.assignment().len() != 4 {
        assert!(Instant::now() < deadline, "never got the partitions");
        ours.poll(Duration::from_millis(100)).await.unwrap();
    }

    let java = {
        let (bootstrap, t, group) = (common::bootstrap(), t.clone(), group.clone());
        let strategy = format!("partition.assignment.strategy={java_class}");
        tokio::task::spawn_blocking(move || {
            common::java::run(
                "org.apache.kafka.tools.consumer.ConsoleConsumer",
                &[
                    "--bootstrap-server",
                    &bootstrap,
                    "--topic",
                    &t,
                    "--group",
                    &group,
                    "--from-beginning",
                    "--timeout-ms",
                    "15000",
                    "--consumer-property",
                    &strategy,
                    "--formatter-property",
                    "print.partition=true",
                    "--formatter-property",
                    "print.offset=true",
                ],
                "",
            )
        })
    };
    // The Java member joined when our share drops to two partitions.
    let deadline = Instant::now() + Duration::from_secs(60);
    while ours.assignment().len() != 2 {
        assert!(
            Instant::now() < deadline,
            "the Java member never got partitions: {:?}",
            ours.assignment()
        );
        ours.poll(Duration::from_millis(100)).await.unwrap();
    }
    RawProducer::new(&admin).await.fill(&t, 4, 500).await;

    let mut read: Vec<(i32, i64)> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(90);
    while !java.is_finished() {
        assert!(
            Instant::now() < deadline,
            "the Java consumer did not finish"
        );
        for r in ours.poll(Duration::from_millis(200)).await.unwrap() {
            read.push((r.partition, r.offset));
        }
    }
    let out = java.await.unwrap();
    // Keep reading until the group settles on us alone, in case the Java member left records
    // uncommitted (it commits on close, so there should be none).
    let deadline = Instant::now() + Duration::from_secs(30);
    while ours.assignment().len() != 4 {
        assert!(
            Instant::now() < deadline,
            "did not take over after the Java member left"
        );
        for r in ours.poll(Duration::from_millis(200)).await.unwrap() {
            read.push((r.partition, r.offset));
        }
    }
    let java_read: Vec<(i32, i64)> = out
        .lines()
        .filter_map(|line| {
            let mut fields = line.split('\t');
            let p = fields.next()?.strip_prefix("Partition:")?.parse().ok()?;
            let o = fields.next()?.strip_prefix("Offset:")?.parse().ok()?;
            Some((p, o))
        })
        .collect();
    assert!(
        !java_read.is_empty(),
        "the Java member read nothing:\n{out}"
    );
    assert!(!read.is_empty(), "this crate's member read nothing");
    let mut all = HashSet::new();
    for pair in read.iter().chain(&java_read) {
        assert!(all.insert(*pair), "record {pair:?} read twice");
    }
    assert_eq!(all.len(), 2_000, "records missing");
    let ours_partitions: HashSet<i32> = read.iter().map(|(p, _)| *p).collect();
    let java_partitions: HashSet<i32> = java_read.iter().map(|(p, _)| *p).collect();
    assert!(
        ours_partitions.is_disjoint(&java_partitions),
        "a partition was read by both"
    );
    ours.close().await.unwrap();
}

#[tokio::test]
async fn range_group_shared_with_the_java_console_consumer_reads_every_record_once() {
    mixed_group("org.apache.kafka.clients.consumer.RangeAssignor").await;
}

#[tokio::test]
async fn cooperative_sticky_group_shared_with_the_java_console_consumer_reads_every_record_once() {
    mixed_group("org.apache.kafka.clients.consumer.CooperativeStickyAssignor").await;
}
