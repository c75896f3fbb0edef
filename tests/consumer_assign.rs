//! The consumer without a group: manual assignment, positions, seeks, pauses, offsets by
//! time, against a real broker.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use futures::StreamExt;
use kafka_client::consumer::{Consumer, ConsumerRecord, OffsetReset, TimestampType};
use kafka_client::protocol::records::Compression;
use kafka_client::{Error, Header, TopicPartition};

use common::produce::{topic, RawProducer, Rec};

async fn consumer(reset: OffsetReset) -> Consumer {
    Consumer::builder()
        .bootstrap_servers(&common::bootstrap())
        .auto_offset_reset(reset)
        .build()
        .await
        .unwrap()
}

/// Polls until `n` records arrived (or fails after 30 s).
async fn poll_n(c: &mut Consumer, n: usize) -> Vec<ConsumerRecord> {
    let mut out = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while out.len() < n {
        assert!(
            tokio::time::Instant::now() < deadline,
            "only {} of {n} records arrived",
            out.len()
        );
        out.extend(c.poll(Duration::from_millis(500)).await.unwrap());
    }
    out
}

#[tokio::test]
async fn assigned_partition_is_read_from_earliest_with_keys_values_headers_and_timestamps() {
    let admin = common::admin().await;
    let t = topic(&admin, "consumer-assign", 1, &[]).await;
    let mut producer = RawProducer::new(&admin).await;
    let mut first = Rec::new("k0", "v0", 1_700_000_000_000);
    first.headers = vec![
        Header::new("h", "x"),
        Header {
            key: "null".into(),
            value: None,
        },
    ];
    let null_value = Rec {
        key: Some(b"k1".to_vec()),
        value: None,
        timestamp: 1_700_000_000_001,
        headers: vec![],
    };
    producer
        .send(&t, 0, &[first, null_value], Compression::None)
        .await;
    producer
        .send(
            &t,
            0,
            &[Rec::new("k2", "v2", 1_700_000_000_002)],
            Compression::None,
        )
        .await;

    let mut c = consumer(OffsetReset::Earliest).await;
    let tp = TopicPartition::new(&t, 0);
    c.assign([tp.clone()]).unwrap();
    let records = poll_n(&mut c, 3).await;
    assert_eq!(records.len(), 3);
    let offsets: Vec<i64> = records.iter().map(|r| r.offset).collect();
    assert_eq!(offsets, vec![0, 1, 2]);
    assert_eq!(records[0].key.as_deref(), Some(&b"k0"[..]));
    assert_eq!(records[0].value.as_deref(), Some(&b"v0"[..]));
    assert_eq!(
        records[0].headers,
        vec![
            Header::new("h", "x"),
            Header {
                key: "null".into(),
                value: None
            }
        ]
    );
    assert_eq!(records[0].timestamp, 1_700_000_000_000);
    assert_eq!(records[0].timestamp_type, TimestampType::CreateTime);
    assert!(records[0].leader_epoch.is_some());
    assert_eq!(&*records[0].topic, t.as_str());
    assert_eq!(records[1].value, None);
    assert_eq!(records[2].timestamp, 1_700_000_000_002);
    assert_eq!(c.position(&tp).await.unwrap(), 3);
    c.close().await.unwrap();
}

#[tokio::test]
async fn latest_starts_after_existing_records_and_reads_new_ones() {
    let admin = common::admin().await;
    let t = topic(&admin, "consumer-latest", 1, &[]).await;
    let mut producer = RawProducer::new(&admin).await;
    producer
        .send(&t, 0, &[Rec::new("old", "old", 1)], Compression::None)
        .await;
    let mut c = consumer(OffsetReset::Latest).await;
    let tp = TopicPartition::new(&t, 0);
    c.assign([tp.clone()]).unwrap();
    assert_eq!(c.position(&tp).await.unwrap(), 1);
    producer
        .send(&t, 0, &[Rec::new("new", "new", 2)], Compression::None)
        .await;
    let records = poll_n(&mut c, 1).await;
    assert_eq!(records[0].key.as_deref(), Some(&b"new"[..]));
    assert_eq!(records[0].offset, 1);
}

#[tokio::test]
async fn seek_seek_to_beginning_end_and_offsets_for_times_use_record_timestamps() {
    let admin = common::admin().await;
    let t = topic(&admin, "consumer-seek", 1, &[]).await;
    let mut producer = RawProducer::new(&admin).await;
    // Ten records at timestamps 1000, 1100, ..., 1900.
    let recs: Vec<Rec> = (0..10)
        .map(|i| Rec::new(&format!("k{i}"), &format!("v{i}"), 1_000 + 100 * i))
        .collect();
    producer.send(&t, 0, &recs[..5], Compression::None).await;
    producer
        .send(&t, 0, &recs[5..], Compression::Lz4 { level: None })
        .await;
    let tp = TopicPartition::new(&t, 0);
    let mut c = consumer(OffsetReset::Latest).await;
    c.assign([tp.clone()]).unwrap();

    let found = c
        .offsets_for_times(HashMap::from([(tp.clone(), 1_250)]))
        .await
        .unwrap();
    let at = found[&tp].expect("a record at or after 1250");
    assert_eq!((at.offset, at.timestamp), (3, 1_300));
    let none = c
        .offsets_for_times(HashMap::from([(tp.clone(), 5_000)]))
        .await
        .unwrap();
    assert_eq!(none[&tp], None);

    c.seek(&tp, at.offset).unwrap();
    let records = poll_n(&mut c, 7).await;
    let offsets: Vec<i64> = records.iter().map(|r| r.offset).collect();
    assert_eq!(offsets, (3..10).collect::<Vec<_>>());

    c.seek_to_beginning(std::slice::from_ref(&tp)).unwrap();
    assert_eq!(c.position(&tp).await.unwrap(), 0);
    let records = poll_n(&mut c, 10).await;
    assert_eq!(records[0].offset, 0);
    assert_eq!(records[9].value.as_deref(), Some(&b"v9"[..]));

    c.seek(&tp, 2).unwrap();
    c.seek_to_end(std::slice::from_ref(&tp)).unwrap();
    assert_eq!(c.position(&tp).await.unwrap(), 10);
    assert!(c.poll(Duration::from_millis(300)).await.unwrap().is_empty());
    assert_eq!(
        c.beginning_offsets(std::slice::from_ref(&tp))
            .await
            .unwrap()[&tp],
        0
    );
    assert_eq!(
        c.end_offsets(std::slice::from_ref(&tp)).await.unwrap()[&tp],
        10
    );
}

#[tokio::test]
async fn paused_partitions_return_nothing_until_resumed() {
    let admin = common::admin().await;
    let t = topic(&admin, "consumer-pause", 2, &[]).await;
    let mut producer = RawProducer::new(&admin).await;
    producer.fill(&t, 2, 20).await;
    let (p0, p1) = (TopicPartition::new(&t, 0), TopicPartition::new(&t, 1));
    let mut c = consumer(OffsetReset::Earliest).await;
    c.assign([p0.clone(), p1.clone()]).unwrap();
    c.pause(std::slice::from_ref(&p1)).unwrap();
    assert_eq!(c.paused(), vec![p1.clone()]);
    let first = poll_n(&mut c, 20).await;
    assert!(
        first.iter().all(|r| r.partition == 0),
        "records of the paused partition came back"
    );
    assert!(c.poll(Duration::from_millis(500)).await.unwrap().is_empty());
    assert_eq!(c.position(&p1).await.unwrap(), 0);
    c.resume(std::slice::from_ref(&p1)).unwrap();
    let rest = poll_n(&mut c, 20).await;
    assert!(rest.iter().all(|r| r.partition == 1));
    let offsets: Vec<i64> = rest.iter().map(|r| r.offset).collect();
    assert_eq!(offsets, (0..20).collect::<Vec<_>>());
}

#[tokio::test]
async fn the_stream_yields_records_in_offset_order_per_partition() {
    let admin = common::admin().await;
    let t = topic(&admin, "consumer-stream", 3, &[]).await;
    RawProducer::new(&admin).await.fill(&t, 3, 1_000).await;
    let mut c = consumer(OffsetReset::Earliest).await;
    c.assign((0..3).map(|p| TopicPartition::new(&t, p)))
        .unwrap();
    let records: Vec<ConsumerRecord> = c.stream().take(3_000).map(|r| r.unwrap()).collect().await;
    for p in 0..3 {
        let values: Vec<String> = records
            .iter()
            .filter(|r| r.partition == p)
            .map(|r| String::from_utf8(r.value.clone().unwrap().to_vec()).unwrap())
            .collect();
        let expected: Vec<String> = (0..1_000).map(|i| format!("v{p}-{i}")).collect();
        assert_eq!(values, expected, "partition {p}");
    }
}

#[tokio::test]
async fn offset_reset_none_without_a_group_is_a_typed_error_naming_the_partition() {
    let admin = common::admin().await;
    let t = topic(&admin, "consumer-none", 1, &[]).await;
    let tp = TopicPartition::new(&t, 0);
    let mut c = consumer(OffsetReset::None).await;
    c.assign([tp.clone()]).unwrap();
    let err = c.poll(Duration::from_secs(10)).await.unwrap_err();
    match err {
        Error::NoOffsetForPartition { partitions } => assert_eq!(partitions, vec![tp.clone()]),
        other => panic!("expected NoOffsetForPartition, got {other:?}"),
    }
    // Seeking gives the partition a position again.
    c.seek(&tp, 0).unwrap();
    assert!(c.poll(Duration::from_millis(300)).await.unwrap().is_empty());
}

#[tokio::test]
async fn group_calls_without_group_id_are_config_errors() {
    let c = consumer(OffsetReset::Latest).await;
    let err = c.subscribe(["t"]).unwrap_err();
    assert!(
        matches!(&err, Error::Config { key, .. } if key == "group.id"),
        "{err:?}"
    );
    let err = c.commit_sync().await.unwrap_err();
    assert!(
        matches!(&err, Error::Config { key, .. } if key == "group.id"),
        "{err:?}"
    );
    let err = c
        .committed(&[TopicPartition::new("t", 0)])
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Config { key, .. } if key == "group.id"),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_position_past_the_end_is_reset_by_auto_offset_reset() {
    let admin = common::admin().await;
    let t = topic(&admin, "consumer-range", 1, &[]).await;
    RawProducer::new(&admin).await.fill(&t, 1, 10).await;
    let tp = TopicPartition::new(&t, 0);

    let mut earliest = consumer(OffsetReset::Earliest).await;
    earliest.assign([tp.clone()]).unwrap();
    earliest.seek(&tp, 1_000).unwrap();
    let records = poll_n(&mut earliest, 10).await;
    assert_eq!(
        records[0].offset, 0,
        "OFFSET_OUT_OF_RANGE resets to the earliest offset"
    );

    let mut latest = consumer(OffsetReset::Latest).await;
    latest.assign([tp.clone()]).unwrap();
    latest.seek(&tp, 1_000).unwrap();
    assert!(latest
        .poll(Duration::from_millis(500))
        .await
        .unwrap()
        .is_empty());
    assert_eq!(latest.position(&tp).await.unwrap(), 10);

    let mut none = consumer(OffsetReset::None).await;
    none.assign([tp.clone()]).unwrap();
    none.seek(&tp, 1_000).unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let err = loop {
        match none.poll(Duration::from_millis(200)).await {
            Err(e) => break e,
            Ok(r) => assert!(r.is_empty() && tokio::time::Instant::now() < deadline),
        }
    };
    assert_eq!(
        err.kafka_code(),
        Some(kafka_client::KafkaCode::OFFSET_OUT_OF_RANGE),
        "{err}"
    );
    assert!(err.to_string().contains(&format!("{t}-0")), "{err}");
}

#[tokio::test]
async fn a_busy_partition_is_not_held_back_by_idle_ones_on_the_same_broker() {
    let admin = common::admin().await;
    let t = topic(&admin, "consumer-hotcold", 2, &[]).await;
    // Partition 0 is busy, partition 1 idle; both have the same leader on a one-node
    // cluster, and on any cluster the test still checks partition 0's pace.
    RawProducer::new(&admin).await.fill(&t, 1, 20_000).await;
    let mut c = Consumer::builder()
        .bootstrap_servers(&common::bootstrap())
        .auto_offset_reset(OffsetReset::Earliest)
        .max_partition_fetch_bytes(16 * 1024) // ~40 fetches for the busy partition
        .build()
        .await
        .unwrap();
    c.assign([TopicPartition::new(&t, 0), TopicPartition::new(&t, 1)])
        .unwrap();
    let started = tokio::time::Instant::now();
    let records = poll_n(&mut c, 20_000).await;
    let took = started.elapsed();
    assert_eq!(records.last().map(|r| r.offset), Some(19_999));
    // Each Fetch that left the busy partition out would wait fetch.max.wait.ms (500 ms) on
    // the idle one: about 10 s in all.
    assert!(took < Duration::from_secs(4), "reading took {took:?}");
}

/// A partition of a topic that does not exist must not hold back the others: its position
/// look-up retries on its own while the real partition's leader answers at once (Java's
/// `OffsetFetcher` groups look-ups by leader). Before, one ListOffsets covered every
/// partition and waited `default.api.timeout.ms` for the missing topic.
#[tokio::test]
async fn a_missing_topic_in_the_assignment_does_not_delay_the_other_partitions() {
    let admin = common::admin().await;
    let t = topic(&admin, "consumer-missing-neighbour", 1, &[]).await;
    RawProducer::new(&admin).await.fill(&t, 1, 5).await;
    let missing = common::unique_topic("consumer-never-created");
    let mut c = Consumer::builder()
        .bootstrap_servers(&common::bootstrap())
        .auto_offset_reset(OffsetReset::Earliest)
        .allow_auto_create_topics(false)
        .set("default.api.timeout.ms", "60000")
        .build()
        .await
        .unwrap();
    c.assign([TopicPartition::new(&t, 0), TopicPartition::new(&missing, 0)])
        .unwrap();
    let started = tokio::time::Instant::now();
    let deadline = started + Duration::from_secs(10);
    let mut got = Vec::new();
    while got.len() < 5 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} of 5 records after {:?}: the missing topic held the real one back",
            got.len(),
            started.elapsed()
        );
        got.extend(c.poll(Duration::from_millis(200)).await.unwrap());
    }
    assert!(got.iter().all(|r| *r.topic == *t));
    assert_eq!(c.position(&TopicPartition::new(&t, 0)).await.unwrap(), 5);
    // The missing one is still being looked for, without an error.
    assert!(c.poll(Duration::from_millis(200)).await.unwrap().is_empty());
    assert!(admin.describe_topics(&[missing.as_str()]).await.is_err());
}
