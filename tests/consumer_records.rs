//! What the consumer returns from logs written in every way the broker stores them:
//! transactions (aborted, committed, open), compacted topics, every compression codec
//! (written by the Java producer).

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use kafka_client::cluster::IsolationLevel;
use kafka_client::consumer::{Consumer, ConsumerRecord, OffsetReset};
use kafka_client::protocol::records::Compression;
use kafka_client::TopicPartition;
use tokio::time::Instant;

use common::produce::{topic, RawProducer, Rec};
use common::txn::Txn;

async fn reader(isolation: IsolationLevel, tp: &TopicPartition) -> Consumer {
    let c = Consumer::builder()
        .bootstrap_servers(&common::bootstrap())
        .auto_offset_reset(OffsetReset::Earliest)
        .isolation_level(isolation)
        .build()
        .await
        .unwrap();
    c.assign([tp.clone()]).unwrap();
    c
}

/// Everything readable now: polls until the position reaches `end` (or 30 s pass).
async fn read_to(c: &mut Consumer, tp: &TopicPartition, end: i64) -> Vec<ConsumerRecord> {
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while c.position(tp).await.unwrap() < end {
        assert!(
            Instant::now() < deadline,
            "position stuck at {}",
            c.position(tp).await.unwrap()
        );
        out.extend(c.poll(Duration::from_millis(200)).await.unwrap());
    }
    out
}

fn values(records: &[ConsumerRecord]) -> Vec<String> {
    records
        .iter()
        .map(|r| String::from_utf8(r.value.clone().unwrap_or_default().to_vec()).unwrap())
        .collect()
}

#[tokio::test]
async fn read_committed_skips_aborted_transactions_and_stops_at_open_ones() {
    let admin = common::admin().await;
    let t = topic(&admin, "records-txn", 1, &[]).await;
    let tp = TopicPartition::new(&t, 0);
    let mut producer = RawProducer::new(&admin).await;
    let txn_prefix = common::unique_topic("txn");

    let mut aborted = Txn::begin(&admin, &format!("{txn_prefix}-a")).await;
    aborted
        .produce(
            &mut producer,
            &t,
            0,
            &[Rec::new("a", "aborted-1", 1), Rec::new("a", "aborted-2", 2)],
        )
        .await;
    producer
        .send(&t, 0, &[Rec::new("p", "plain-1", 3)], Compression::None)
        .await;
    aborted.end(false).await;
    let mut committed = Txn::begin(&admin, &format!("{txn_prefix}-c")).await;
    committed
        .produce(
            &mut producer,
            &t,
            0,
            &[
                Rec::new("c", "committed-1", 4),
                Rec::new("c", "committed-2", 5),
            ],
        )
        .await;
    committed.end(true).await;
    let mut open = Txn::begin(&admin, &format!("{txn_prefix}-o")).await;
    open.produce(&mut producer, &t, 0, &[Rec::new("o", "open-1", 6)])
        .await;
    producer
        .send(&t, 0, &[Rec::new("p", "plain-2", 7)], Compression::None)
        .await;

    // read_committed: no aborted records, no markers, nothing past the open transaction.
    let mut rc = reader(IsolationLevel::ReadCommitted, &tp).await;
    let lso = rc.end_offsets(std::slice::from_ref(&tp)).await.unwrap()[&tp];
    let seen = read_to(&mut rc, &tp, lso).await;
    assert_eq!(values(&seen), vec!["plain-1", "committed-1", "committed-2"]);
    assert!(
        rc.poll(Duration::from_millis(500))
            .await
            .unwrap()
            .is_empty(),
        "read past the last stable offset"
    );

    // read_uncommitted sees everything but the markers.
    let mut ru = reader(IsolationLevel::ReadUncommitted, &tp).await;
    let hw = ru.end_offsets(std::slice::from_ref(&tp)).await.unwrap()[&tp];
    let all = read_to(&mut ru, &tp, hw).await;
    assert_eq!(
        values(&all),
        vec![
            "aborted-1",
            "aborted-2",
            "plain-1",
            "committed-1",
            "committed-2",
            "open-1",
            "plain-2"
        ]
    );

    // Once the open transaction commits, read_committed gets its record and what followed.
    open.end(true).await;
    let end = ru.end_offsets(std::slice::from_ref(&tp)).await.unwrap()[&tp];
    let rest = read_to(&mut rc, &tp, end).await;
    assert_eq!(values(&rest), vec!["open-1", "plain-2"]);
}

#[tokio::test]
async fn a_compacted_topic_returns_the_latest_value_per_key_across_offset_gaps() {
    let admin = common::admin().await;
    let t = topic(
        &admin,
        "records-compact",
        1,
        &[
            ("cleanup.policy", "compact"),
            ("segment.ms", "100"),
            ("min.cleanable.dirty.ratio", "0.001"),
            ("min.compaction.lag.ms", "0"),
            ("delete.retention.ms", "100"),
        ],
    )
    .await;
    let tp = TopicPartition::new(&t, 0);
    let mut producer = RawProducer::new(&admin).await;
    for round in 0..5 {
        let recs: Vec<Rec> = (0..4)
            .map(|k| {
                Rec::new(
                    &format!("key-{k}"),
                    &format!("value-{k}-{round}"),
                    1_000 + round,
                )
            })
            .collect();
        producer.send(&t, 0, &recs, Compression::None).await;
        tokio::time::sleep(Duration::from_millis(150)).await; // roll the segment (segment.ms)
    }
    // A last write rolls the active segment so the cleaner may compact everything before it.
    producer
        .send(&t, 0, &[Rec::new("last", "last", 2_000)], Compression::None)
        .await;
    let end = 21;

    // Compaction runs in the background (log.cleaner.backoff.ms): read until it has.
    let deadline = Instant::now() + Duration::from_secs(90);
    let latest = loop {
        let mut c = reader(IsolationLevel::ReadUncommitted, &tp).await;
        let records = read_to(&mut c, &tp, end).await;
        if records.len() < 21 {
            break records;
        }
        assert!(Instant::now() < deadline, "the log was never compacted");
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    // Offsets keep increasing with gaps; the last value of every key survives.
    let offsets: Vec<i64> = latest.iter().map(|r| r.offset).collect();
    assert!(offsets.windows(2).all(|w| w[1] > w[0]), "{offsets:?}");
    let mut last_per_key: BTreeMap<String, String> = BTreeMap::new();
    for r in &latest {
        let k = String::from_utf8(r.key.clone().unwrap().to_vec()).unwrap();
        let v = String::from_utf8(r.value.clone().unwrap().to_vec()).unwrap();
        last_per_key.insert(k, v);
    }
    for k in 0..4 {
        assert_eq!(last_per_key[&format!("key-{k}")], format!("value-{k}-4"));
    }
    assert_eq!(latest.last().unwrap().offset, 20);
}

#[tokio::test]
async fn records_written_by_the_java_producer_with_every_codec_are_read_back() {
    let admin = common::admin().await;
    for codec in ["none", "gzip", "snappy", "lz4", "zstd"] {
        let t = topic(&admin, &format!("records-java-{codec}"), 1, &[]).await;
        let lines: String = (0..200)
            .map(|i| format!("key-{i}\tvalue-{codec}-{i}\n"))
            .collect();
        let compression = format!("compression.type={codec}");
        common::java::run(
            "org.apache.kafka.tools.ConsoleProducer",
            &[
                "--bootstrap-server",
                &common::bootstrap(),
                "--topic",
                &t,
                "--producer-property",
                &compression,
                "--producer-property",
                "linger.ms=50",
                "--property",
                "parse.key=true",
            ],
            &lines,
        );
        let tp = TopicPartition::new(&t, 0);
        let mut c = reader(IsolationLevel::ReadUncommitted, &tp).await;
        let records = read_to(&mut c, &tp, 200).await;
        assert_eq!(records.len(), 200, "{codec}");
        for (i, r) in records.iter().enumerate() {
            assert_eq!(r.offset, i as i64, "{codec}");
            assert_eq!(
                r.key.as_deref(),
                Some(format!("key-{i}").as_bytes()),
                "{codec}"
            );
            assert_eq!(
                r.value.as_deref(),
                Some(format!("value-{codec}-{i}").as_bytes()),
                "{codec}"
            );
        }
    }
}
