//! Pattern subscriptions against a real broker: which topics a pattern takes (whole names
//! only, no internal topics), topics created and deleted while subscribed, and members of
//! one group sharing the matched partitions.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use kafka_client::consumer::{Consumer, ConsumerRecord};
use kafka_client::TopicPartition;
use tokio::time::Instant;

use common::group::{builder, group_name, poll_until, Recorder};
use common::produce::{topic, RawProducer};

/// A prefix no other test's topics start with, escaped for use in a pattern.
fn prefix(name: &str) -> (String, String) {
    let base = common::unique_topic(name);
    let escaped = regex::escape(&base);
    (base, escaped)
}

/// Creates `name` with `partitions` partitions (replication 1).
async fn create(admin: &kafka_client::admin::Admin, name: &str, partitions: i32) {
    admin
        .create_topic(
            kafka_client::admin::NewTopic::new(name, partitions, 1)
                .config("min.insync.replicas", "1"),
        )
        .await
        .unwrap_or_else(|e| panic!("creating topic {name}: {e}"));
}

fn partitions(topic: &str, count: i32) -> Vec<TopicPartition> {
    (0..count).map(|p| TopicPartition::new(topic, p)).collect()
}

fn sorted(mut v: Vec<TopicPartition>) -> Vec<TopicPartition> {
    v.sort();
    v
}

/// Polls until `count` records arrived (or fails after `secs`).
async fn records(c: &mut Consumer, count: usize, secs: u64) -> Vec<ConsumerRecord> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut got = Vec::new();
    while got.len() < count {
        assert!(
            Instant::now() < deadline,
            "{} of {count} records in {secs} s",
            got.len()
        );
        got.extend(c.poll(Duration::from_millis(200)).await.unwrap());
    }
    got
}

/// Records per topic.
fn per_topic(records: &[ConsumerRecord]) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for r in records {
        *counts.entry(r.topic.to_string()).or_insert(0) += 1;
    }
    counts
}

#[tokio::test]
async fn a_pattern_takes_the_topics_whose_whole_name_matches() {
    let admin = common::admin().await;
    let (base, escaped) = prefix("pat-match");
    let eu = format!("{base}-orders-eu");
    let us = format!("{base}-orders-us");
    // Each contains a match of the pattern: a search would take them, a full match not.
    let longer = format!("{base}-orders-eu-1");
    let prefixed = format!("old-{base}-orders-eu");
    let other = format!("{base}-payments");
    for (t, n) in [
        (&eu, 2),
        (&us, 1),
        (&longer, 1),
        (&prefixed, 1),
        (&other, 1),
    ] {
        create(&admin, t, n).await;
    }
    let mut producer = RawProducer::new(&admin).await;
    producer.fill(&eu, 2, 30).await;
    producer.fill(&us, 1, 20).await;
    for t in [&longer, &prefixed, &other] {
        producer.fill(t, 1, 10).await;
    }

    let mut c = builder(&group_name("g-pat-match")).build().await.unwrap();
    c.subscribe_pattern(format!("{escaped}-orders-[a-z]+"))
        .unwrap();
    let got = records(&mut c, 80, 60).await;
    assert_eq!(
        per_topic(&got),
        BTreeMap::from([(eu.clone(), 60), (us.clone(), 20)])
    );
    assert_eq!(c.subscription(), vec![eu.clone(), us.clone()]);
    let mut expected = partitions(&eu, 2);
    expected.extend(partitions(&us, 1));
    assert_eq!(sorted(c.assignment()), sorted(expected));
    // Nothing of the other topics is on its way either.
    assert!(c.poll(Duration::from_millis(500)).await.unwrap().is_empty());
    c.close().await.unwrap();
}

#[tokio::test]
async fn internal_topics_stay_out_of_a_pattern_subscription() {
    let admin = common::admin().await;
    let (base, escaped) = prefix("pat-internal");
    let t = format!("{base}-t");
    create(&admin, &t, 1).await;
    let mut c = builder(&group_name("g-pat-internal"))
        .build()
        .await
        .unwrap();
    // Joining needs the group coordinator, so __consumer_offsets exists when the consumer
    // lists the topics before its first join.
    c.subscribe_pattern(format!("__consumer_offsets|{escaped}-t"))
        .unwrap();
    poll_until(&mut c, 60, |c| !c.assignment().is_empty()).await;
    assert_eq!(c.subscription(), vec![t.clone()]);
    assert_eq!(c.assignment(), partitions(&t, 1));
    c.close().await.unwrap();
}

#[tokio::test]
async fn topics_created_and_deleted_later_are_assigned_and_revoked() {
    created_and_deleted("range").await
}

#[tokio::test]
async fn topics_created_and_deleted_later_are_assigned_and_revoked_cooperatively() {
    created_and_deleted("cooperative-sticky").await
}

async fn created_and_deleted(strategy: &str) {
    let admin = common::admin().await;
    let (base, escaped) = prefix("pat-new");
    let first = format!("{base}-orders-1");
    create(&admin, &first, 2).await;
    let seen = Recorder::default();
    let mut c = builder(&group_name("g-pat-new"))
        .metadata_max_age(Duration::from_millis(1000))
        .set("partition.assignment.strategy", strategy)
        .rebalance_listener(seen.clone())
        .build()
        .await
        .unwrap();
    c.subscribe_pattern(regex::Regex::new(&format!("{escaped}-orders-.*")).unwrap())
        .unwrap();
    poll_until(&mut c, 60, |c| c.assignment().len() == 2).await;

    let second = format!("{base}-orders-2");
    create(&admin, &second, 3).await;
    let mut producer = RawProducer::new(&admin).await;
    producer.fill(&second, 3, 10).await;
    // Noticed at a metadata refresh (every second), then assigned by a rebalance.
    let got = records(&mut c, 30, 60).await;
    assert_eq!(per_topic(&got), BTreeMap::from([(second.clone(), 30)]));
    assert_eq!(c.subscription(), vec![first.clone(), second.clone()]);
    let mut both = partitions(&first, 2);
    both.extend(partitions(&second, 3));
    assert_eq!(sorted(c.assignment()), sorted(both));
    assert!(
        seen.0
            .lock()
            .unwrap()
            .assigned
            .iter()
            .any(|a| a.iter().any(|tp| tp.topic == second)),
        "{strategy}: the listener heard of the new topic's partitions"
    );

    admin.delete_topics(&[first.as_str()]).await.unwrap();
    poll_until(&mut c, 60, |c| {
        c.assignment().iter().all(|tp| tp.topic == second)
    })
    .await;
    // Still reading the topic that is left.
    producer.fill_range(&second, 3, 10, 5).await;
    let got = records(&mut c, 15, 60).await;
    assert_eq!(per_topic(&got), BTreeMap::from([(second.clone(), 15)]));
    assert_eq!(c.subscription(), vec![second.clone()]);
    assert_eq!(sorted(c.assignment()), partitions(&second, 3));
    let revoked: BTreeSet<TopicPartition> = seen
        .0
        .lock()
        .unwrap()
        .revoked
        .iter()
        .flatten()
        .cloned()
        .collect();
    assert!(
        partitions(&first, 2).iter().all(|tp| revoked.contains(tp)),
        "{strategy}: the deleted topic's partitions were revoked: {revoked:?}"
    );
    c.close().await.unwrap();
}

#[tokio::test]
async fn members_with_the_same_pattern_share_the_matched_partitions() {
    share("range").await
}

#[tokio::test]
async fn members_with_the_same_pattern_share_the_matched_partitions_cooperatively() {
    share("cooperative-sticky").await
}

async fn share(strategy: &str) {
    let admin = common::admin().await;
    let (base, escaped) = prefix("pat-share");
    let a = topic(&admin, &format!("{base}-a"), 3, &[]).await;
    let b = topic(&admin, &format!("{base}-b"), 3, &[]).await;
    let group = group_name("g-pat-share");
    let pattern = format!("{escaped}-[ab]-.*");
    let mut members = Vec::new();
    for _ in 0..2 {
        let c = builder(&group)
            .set("partition.assignment.strategy", strategy)
            .build()
            .await
            .unwrap();
        c.subscribe_pattern(pattern.as_str()).unwrap();
        members.push(c);
    }
    let mut all = partitions(&a, 3);
    all.extend(partitions(&b, 3));
    let all: BTreeSet<TopicPartition> = all.into_iter().collect();

    // Both poll, so that each rebalance completes for both, until every partition has
    // exactly one owner and both own some.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        for c in &mut members {
            assert!(c.poll(Duration::from_millis(100)).await.unwrap().is_empty());
        }
        let owned: Vec<Vec<TopicPartition>> = members.iter().map(|c| c.assignment()).collect();
        let union: BTreeSet<TopicPartition> = owned.iter().flatten().cloned().collect();
        let disjoint = union.len() == owned.iter().map(Vec::len).sum::<usize>();
        if union == all && disjoint && owned.iter().all(|o| !o.is_empty()) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{strategy}: the group never split the partitions: {owned:?}"
        );
    }

    // Records written now reach the member that owns their partition, and only it.
    let mut producer = RawProducer::new(&admin).await;
    producer.fill(&a, 3, 10).await;
    producer.fill(&b, 3, 10).await;
    let mut received = BTreeMap::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while received.values().sum::<usize>() < 60 {
        assert!(Instant::now() < deadline, "received {received:?}");
        for (i, c) in members.iter_mut().enumerate() {
            for r in c.poll(Duration::from_millis(100)).await.unwrap() {
                let tp = TopicPartition::new(&*r.topic, r.partition);
                assert!(c.assignment().contains(&tp), "member {i} got {tp}");
                *received.entry(tp).or_insert(0) += 1;
            }
        }
    }
    assert_eq!(received.len(), 6);
    assert!(received.values().all(|n| *n == 10), "{received:?}");
    for c in members {
        assert_eq!(c.subscription(), vec![a.clone(), b.clone()]);
        c.close().await.unwrap();
    }
}
