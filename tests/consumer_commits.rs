//! Commits against a real broker: what auto-commit commits and when, and that it never
//! writes older offsets over a commit the application issued after them.

mod common;

use std::time::Duration;

use futures::StreamExt;
use kafka_client::consumer::Consumer;
use kafka_client::TopicPartition;
use tokio::time::Instant;

use common::group::{builder, group_name};
use common::produce::{topic, RawProducer};

/// The group's committed offset of `tp`, read through `c` (after every commit `c` issued
/// before: they share the coordinator connection, which the broker serves in order).
async fn committed(c: &Consumer, tp: &TopicPartition) -> Option<i64> {
    c.committed(std::slice::from_ref(tp)).await.unwrap()[tp]
        .as_ref()
        .map(|o| o.offset)
}

/// Polls until a non-empty batch arrives (or fails after 30 s).
async fn poll_some(c: &mut Consumer) -> Vec<kafka_client::ConsumerRecord> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let records = c.poll(Duration::from_millis(200)).await.unwrap();
        if !records.is_empty() {
            return records;
        }
        assert!(Instant::now() < deadline, "no records in 30 s");
    }
}

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

/// Auto-commit used to run on a timer of the group task, committing the positions of the
/// application's last poll: after `commit_sync` wrote newer ones, the timer wrote the older
/// ones back. As in Java, auto-commit now runs only inside `poll` (and `close` commits
/// before leaving), so it never regresses what the application committed.
#[tokio::test]
async fn auto_commit_never_overwrites_a_later_commit_sync_with_older_positions() {
    let admin = common::admin().await;
    let t = topic(&admin, "commit-regress", 1, &[]).await;
    RawProducer::new(&admin).await.fill(&t, 1, 30).await;
    let group = group_name("g-regress");
    let tp = TopicPartition::new(&t, 0);
    let mut c = builder(&group)
        .max_poll_records(10)
        .auto_commit_interval(Duration::from_millis(100))
        .build()
        .await
        .unwrap();
    c.subscribe([t.clone()]).unwrap();
    let mut read = poll_some(&mut c).await;
    // This poll starts with a known position, so auto-commit may commit it from now on.
    read.extend(c.poll(Duration::from_secs(10)).await.unwrap());
    assert_eq!(read.last().map(|r| r.offset), Some(19));
    c.commit_sync().await.unwrap();
    assert_eq!(committed(&c, &tp).await, Some(20));
    // Give an auto-commit timer ten intervals to misbehave; nothing can be awaited instead,
    // since the point is that no commit happens.
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    assert_eq!(committed(&c, &tp).await, Some(20), "auto-commit went back");
    // Polling on: auto-commit moves forward with what was processed, close commits the rest.
    assert_eq!(poll_some(&mut c).await.len(), 10);
    c.close().await.unwrap();
    let offsets = admin.list_group_offsets(&group).await.unwrap();
    assert_eq!(offsets.get(&tp), Some(&30));
}

/// The stream marks records processed only every `max.poll.records` records, so its
/// auto-commit snapshot can be older than a `commit_sync` the application issued meanwhile;
/// the auto-commit must not write that older snapshot over it.
#[tokio::test]
async fn a_stream_auto_commit_after_commit_sync_does_not_go_back() {
    let admin = common::admin().await;
    let t = topic(&admin, "commit-stream", 1, &[]).await;
    RawProducer::new(&admin).await.fill(&t, 1, 40).await;
    let group = group_name("g-stream");
    let tp = TopicPartition::new(&t, 0);
    let mut c = builder(&group)
        .max_poll_records(10)
        .auto_commit_interval(Duration::from_millis(100))
        .build()
        .await
        .unwrap();
    c.subscribe([t.clone()]).unwrap();
    let mut last = poll_some(&mut c).await.last().map(|r| r.offset);
    // Marks offset 10 as processed: what the stream's next auto-commit would take.
    last = c
        .poll(Duration::from_secs(10))
        .await
        .unwrap()
        .last()
        .map(|r| r.offset)
        .or(last);
    assert_eq!(last, Some(19));
    {
        let mut stream = c.stream();
        for expected in 20..25 {
            let r = stream.next().await.unwrap().unwrap();
            assert_eq!(r.offset, expected);
        }
    }
    c.commit_sync().await.unwrap();
    assert_eq!(committed(&c, &tp).await, Some(25));
    // Let the auto-commit interval pass, then read on through the stream: its auto-commit
    // is due now.
    tokio::time::sleep(Duration::from_millis(300)).await;
    {
        let mut stream = c.stream();
        assert_eq!(stream.next().await.unwrap().unwrap().offset, 25);
    }
    assert_eq!(committed(&c, &tp).await, Some(25), "auto-commit went back");
    drop(c); // no close: it would commit 26
}
