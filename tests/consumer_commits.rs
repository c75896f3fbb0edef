//! Commits against a real broker: what auto-commit commits and when.

mod common;

use std::time::Duration;

use kafka_client::TopicPartition;
use tokio::time::Instant;

use common::group::{builder, group_name};
use common::produce::{topic, RawProducer};

#[tokio::test]
async fn auto_commit_commits_consumed_records_on_close() {
    let admin = common::admin().await;
    let t = topic(&admin, "group-autocommit", 1, &[]).await;
    RawProducer::new(&admin).await.fill(&t, 1, 30).await;
    let group = group_name("g-auto");
    let tp = TopicPartition::new(&t, 0);
    let mut c = builder(&group).max_poll_records(10).build().await.unwrap();
    c.subscribe([t.clone()]).unwrap();
    let mut n = 0;
    while n < 30 {
        n += c.poll(Duration::from_millis(500)).await.unwrap().len();
    }
    c.close().await.unwrap();
    let check = builder(&group).build().await.unwrap();
    assert_eq!(
        check.committed(std::slice::from_ref(&tp)).await.unwrap()[&tp]
            .as_ref()
            .map(|o| o.offset),
        Some(30)
    );
}

#[tokio::test]
async fn auto_commit_commits_only_records_returned_before_the_last_poll() {
    let admin = common::admin().await;
    let t = topic(&admin, "group-atleastonce", 1, &[]).await;
    RawProducer::new(&admin).await.fill(&t, 1, 30).await;
    let group = group_name("g-alo");
    let tp = TopicPartition::new(&t, 0);
    let mut c = builder(&group)
        .max_poll_records(10)
        .auto_commit_interval(Duration::from_millis(200))
        .build()
        .await
        .unwrap();
    c.subscribe([t.clone()]).unwrap();
    let mut first = Vec::new();
    while first.is_empty() {
        first = c.poll(Duration::from_millis(200)).await.unwrap();
    }
    assert_eq!(first.len(), 10);
    // The application is still "processing" these ten: several auto-commit intervals pass
    // and nothing past them may be committed.
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    let committed = c.committed(std::slice::from_ref(&tp)).await.unwrap()[&tp].clone();
    assert!(
        committed.as_ref().is_none_or(|o| o.offset == 0),
        "committed unprocessed records: {committed:?}"
    );
    // Polling again marks them processed; the next auto-commit covers them.
    let second = c.poll(Duration::from_millis(200)).await.unwrap();
    assert_eq!(second.first().map(|r| r.offset), Some(10));
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let committed = c.committed(std::slice::from_ref(&tp)).await.unwrap()[&tp].clone();
        if committed.as_ref().map(|o| o.offset) == Some(10) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "auto-commit never committed 10: {committed:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(c); // no close: a close would commit 20
}

/// `auto.commit.interval.ms=0` means what it means to Java: an auto-commit at every poll of
/// what the polls before it returned.
#[tokio::test]
async fn auto_commit_interval_zero_commits_at_every_poll() {
    let admin = common::admin().await;
    let t = topic(&admin, "group-commit-every-poll", 1, &[]).await;
    RawProducer::new(&admin).await.fill(&t, 1, 30).await;
    let tp = TopicPartition::new(&t, 0);
    let mut c = builder(&group_name("g-every-poll"))
        .max_poll_records(10)
        .auto_commit_interval(Duration::ZERO)
        .build()
        .await
        .unwrap();
    c.assign([tp.clone()]).unwrap();
    let mut next = 0; // after the records returned so far
    for round in 0..3 {
        let records = loop {
            let records = c.poll(Duration::from_millis(200)).await.unwrap();
            if !records.is_empty() {
                break records;
            }
        };
        assert_eq!(records[0].offset, next);
        if round > 0 {
            // The polls since the last records committed them.
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                let committed = c.committed(std::slice::from_ref(&tp)).await.unwrap()[&tp].clone();
                if committed.as_ref().map(|o| o.offset) == Some(next) {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "no commit of {next} after a poll: {committed:?}"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        next = records[records.len() - 1].offset + 1;
    }
    drop(c); // no close: a close would commit the rest
}
