//! The producer against a real broker: delivery, order, offsets, partitioning, limits.

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures::future::join_all;
use kafka_client::producer::{partition_for_key, Acks, Producer, ProducerRecord, RecordMetadata};
use kafka_client::Error;

async fn producer(extra: &[(&str, &str)]) -> Producer {
    extra
        .iter()
        .fold(
            Producer::builder().bootstrap_servers(&common::bootstrap()),
            |b, (k, v)| b.set(k, v),
        )
        .build()
        .await
        .unwrap_or_else(|e| {
            panic!(
                "producer on {}: {e}; start a broker with scripts/kafka.sh start",
                common::bootstrap()
            )
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_thousand_keyed_records_arrive_once_in_send_order() {
    keyed_records_arrive_once_in_send_order("none", 200_000).await;
}

/// Compressed idempotent batches: the same guarantees, and every batch carries the
/// producer's id and sequences that follow on from each other per partition.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compressed_idempotent_batches_arrive_once_in_send_order() {
    keyed_records_arrive_once_in_send_order("zstd", 100_000).await;
}

async fn keyed_records_arrive_once_in_send_order(codec: &str, n: usize) {
    let admin = common::admin().await;
    let topic = common::new_topic(&admin, &format!("producer-{codec}-{n}"), 6).await;
    let producer = producer(&[
        ("linger.ms", "5"),
        ("compression.type", codec),
        ("enable.idempotence", "true"),
    ])
    .await;

    let mut deliveries = Vec::with_capacity(n);
    for i in 0..n {
        let record = ProducerRecord::new(&topic)
            .key(format!("key-{}", i % 997))
            .value(i.to_string());
        deliveries.push(producer.send(record).await.unwrap());
    }
    let stored: Vec<RecordMetadata> = join_all(deliveries)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();

    let (fetched, batches) =
        common::fetch::fetch_with_batches(&admin, &common::bootstrap(), &topic).await;
    // Every batch in the codec, with this producer's id and, per partition, sequences
    // that follow on from each other: the producer state reached every batch.
    let producer_id = batches[0].producer_id;
    assert!(producer_id >= 0, "idempotent batches carry a producer id");
    let mut next_sequence: HashMap<i32, i32> = HashMap::new();
    for b in &batches {
        assert_eq!(b.codec.name(), codec, "{b:?}");
        assert_eq!(b.producer_id, producer_id, "{b:?}");
        let expected = next_sequence.entry(b.partition).or_insert(0);
        assert_eq!(b.base_sequence, *expected, "{b:?}");
        *expected += b.records as i32;
    }
    assert_eq!(
        fetched.values().map(Vec::len).sum::<usize>(),
        n,
        "every record exactly once"
    );
    let mut by_position: HashMap<(i32, i64), usize> = HashMap::new();
    for (partition, records) in &fetched {
        let mut last = None;
        for r in records {
            let i: usize = std::str::from_utf8(r.value.as_ref().unwrap())
                .unwrap()
                .parse()
                .unwrap();
            // Per-partition order is send order.
            assert!(
                last.is_none_or(|l| l < i),
                "partition {partition}: {i} after {last:?}"
            );
            last = Some(i);
            let key = format!("key-{}", i % 997);
            assert_eq!(r.key.as_deref(), Some(key.as_bytes()));
            assert_eq!(*partition, partition_for_key(key.as_bytes(), 6));
            by_position.insert((*partition, r.offset), i);
        }
    }
    // Each delivery future resolved with the partition and offset the record is stored at.
    for (i, meta) in stored.iter().enumerate() {
        assert_eq!(&*meta.topic, topic.as_str());
        assert_eq!(
            by_position.get(&(meta.partition, meta.offset)),
            Some(&i),
            "record {i}"
        );
    }
    producer.close(Duration::from_secs(10)).await;
}

#[tokio::test]
async fn a_record_over_max_request_size_fails_alone() {
    let admin = common::admin().await;
    let topic = common::new_topic(&admin, "producer-too-large", 1).await;
    let producer = producer(&[("max.request.size", "10000")]).await;

    let before = producer
        .send(ProducerRecord::new(&topic).value("before"))
        .await
        .unwrap();
    let err = producer
        .send(ProducerRecord::new(&topic).value(vec![7u8; 20_000]))
        .await
        .unwrap_err();
    match &err {
        Error::RecordTooLarge {
            topic: t,
            size,
            limit_key,
            limit,
        } => {
            assert_eq!(t, &topic);
            assert!(*size > 20_000);
            assert_eq!(*limit_key, "max.request.size");
            assert_eq!(*limit, 10_000);
        }
        other => panic!("expected RecordTooLarge, got {other:?}"),
    }
    assert!(err.to_string().contains("max.request.size=10000"), "{err}");
    let after = producer
        .send(ProducerRecord::new(&topic).value("after"))
        .await
        .unwrap();
    assert_eq!(before.await.unwrap().offset, 0);
    assert_eq!(after.await.unwrap().offset, 1);
}

#[tokio::test]
async fn acks_one_and_zero_deliver() {
    let admin = common::admin().await;
    let topic = common::new_topic(&admin, "producer-acks", 1).await;

    let leader = Producer::builder()
        .bootstrap_servers(&common::bootstrap())
        .acks(Acks::Leader)
        .build()
        .await
        .unwrap();
    assert!(
        !leader.config().enable_idempotence,
        "acks=1 turns default idempotence off"
    );
    let meta = leader
        .send(ProducerRecord::new(&topic).value("one"))
        .await
        .unwrap()
        .await
        .unwrap();
    assert_eq!((meta.partition, meta.offset), (0, 0));

    let none = producer(&[("acks", "0")]).await;
    let meta = none
        .send(ProducerRecord::new(&topic).value("zero"))
        .await
        .unwrap()
        .await
        .unwrap();
    assert_eq!(meta.offset, -1, "acks=0 has no offset");
    none.flush().await.unwrap();
    // The record still arrived.
    let fetched = common::fetch::fetch_all(&admin, &common::bootstrap(), &topic).await;
    let values: Vec<Bytes> = fetched[&0]
        .iter()
        .map(|r| r.value.clone().unwrap())
        .collect();
    assert_eq!(values, vec![Bytes::from("one"), Bytes::from("zero")]);
}

#[tokio::test]
async fn callbacks_report_every_record_and_flush_waits_for_them() {
    let admin = common::admin().await;
    let topic = common::new_topic(&admin, "producer-callback", 3).await;
    let producer = producer(&[("linger.ms", "50")]).await;
    let seen: Arc<Mutex<Vec<RecordMetadata>>> = Arc::default();
    for i in 0..300 {
        let seen = seen.clone();
        producer
            .send_with_callback(
                ProducerRecord::new(&topic)
                    .key(format!("k{i}"))
                    .value("v")
                    .timestamp(1_000 + i),
                move |result| seen.lock().unwrap().push(result.unwrap()),
            )
            .await
            .unwrap();
    }
    producer.flush().await.unwrap();
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 300, "flush returns after every callback ran");
    let mut timestamps: Vec<i64> = seen.iter().map(|m| m.timestamp).collect();
    timestamps.sort();
    assert_eq!(timestamps, (1_000..1_300).collect::<Vec<i64>>());
}

#[tokio::test]
async fn an_explicit_partition_wins_and_a_bad_one_is_refused() {
    let admin = common::admin().await;
    let topic = common::new_topic(&admin, "producer-partition", 3).await;
    // A partition the topic lacks is waited for (it may just have been added), up to
    // max.block.ms, then refused.
    let producer = producer(&[("max.block.ms", "1000")]).await;
    let meta = producer
        .send(ProducerRecord::new(&topic).key("k").partition(2))
        .await
        .unwrap()
        .await
        .unwrap();
    assert_eq!(meta.partition, 2);
    let err = producer
        .send(ProducerRecord::new(&topic).partition(3))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("partition 3"), "{err}");
}

#[tokio::test]
async fn keyless_records_stick_to_a_partition_per_batch() {
    let admin = common::admin().await;
    let topic = common::new_topic(&admin, "producer-sticky", 6).await;
    let producer = producer(&[("batch.size", "1000"), ("linger.ms", "1000")]).await;
    let mut deliveries = Vec::new();
    for _ in 0..200 {
        deliveries.push(
            producer
                .send(ProducerRecord::new(&topic).value(vec![1u8; 100]))
                .await
                .unwrap(),
        );
    }
    producer.flush().await.unwrap();
    let partitions: Vec<i32> = join_all(deliveries)
        .await
        .into_iter()
        .map(|m| m.unwrap().partition)
        .collect();
    // Runs of about batch.size bytes on one partition, and more than one partition overall.
    let switches = partitions.windows(2).filter(|w| w[0] != w[1]).count();
    assert!(
        (5..=40).contains(&switches),
        "{switches} switches in {partitions:?}"
    );
}

#[tokio::test]
async fn sends_to_an_unknown_topic_without_auto_create_time_out_clearly() {
    let producer = Producer::builder()
        .bootstrap_servers(&common::bootstrap())
        .max_block(Duration::from_millis(1500))
        .build()
        .await
        .unwrap();
    // Auto-creation refuses names with illegal characters, so metadata never appears.
    let err = producer
        .send(ProducerRecord::new("no such topic!").value("x"))
        .await
        .unwrap_err();
    assert!(
        err.is_timeout() || err.kafka_code().is_some(),
        "expected a timeout or the broker's refusal, got {err:?}"
    );
    assert!(err.to_string().contains("no such topic!"), "{err}");
}

#[tokio::test]
async fn sending_after_close_is_an_error_and_pending_records_are_delivered() {
    let admin = common::admin().await;
    let topic = common::new_topic(&admin, "producer-close", 1).await;
    let producer = producer(&[("linger.ms", "10000")]).await;
    let pending = producer
        .send(ProducerRecord::new(&topic).value("queued"))
        .await
        .unwrap();
    producer.close(Duration::from_secs(30)).await;
    // Close did not wait for linger.ms, and delivered the queued record.
    assert_eq!(pending.await.unwrap().offset, 0);
    let err = producer
        .send(ProducerRecord::new(&topic).value("late"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Closed(_)), "{err:?}");
}

/// `metadata.max.idle.ms`: a topic nothing is sent to drops out of the metadata the producer
/// keeps refreshing, and the next send looks it up again. Seen from outside with the broker's
/// topic auto-creation on (as `scripts/kafka.sh` and Kafka's defaults have it): while the
/// producer refreshes a topic, deleting it does not last, since each refresh asks for it with
/// auto-creation allowed; once the topic is forgotten, a deletion stays.
#[tokio::test]
async fn an_idle_topic_is_forgotten_then_looked_up_again_on_the_next_send() {
    let admin = common::admin().await;
    let topic = common::new_topic(&admin, "producer-idle", 1).await;
    let producer = producer(&[
        ("metadata.max.age.ms", "200"),
        ("metadata.max.idle.ms", "5000"),
    ])
    .await;
    let sent = |value: &'static str| {
        let record = ProducerRecord::new(&topic).value(value);
        let producer = producer.clone();
        async move { producer.send(record).await.unwrap().await.unwrap() }
    };
    sent("first").await;
    let last_send = std::time::Instant::now();

    let exists = || async { admin.list_topics().await.unwrap().contains(&topic) };
    // Whether the topic exists again within `window` after a deletion.
    let comes_back = |window: Duration| async move {
        let until = std::time::Instant::now() + window;
        while std::time::Instant::now() < until {
            if exists().await {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        false
    };
    let mut came_back = 0;
    loop {
        assert!(
            last_send.elapsed() < Duration::from_secs(40),
            "the topic kept being re-created {came_back} times, 40 s after the last send"
        );
        let _ = admin.delete_topics(&[topic.as_str()]).await;
        // Ten refresh periods to bring it back.
        if !comes_back(Duration::from_secs(2)).await {
            break;
        }
        came_back += 1;
    }
    assert!(
        came_back > 0,
        "the first deletion, right after a send, must be undone by the producer's refreshes"
    );
    assert!(
        last_send.elapsed() >= Duration::from_secs(5),
        "forgotten after {:?}, before metadata.max.idle.ms",
        last_send.elapsed()
    );
    // The next send looks the topic up again (and, here, has the broker create it).
    let stored = sent("again").await;
    assert_eq!(&*stored.topic, topic.as_str());
    producer.close(Duration::from_secs(10)).await;
}

#[tokio::test]
async fn metadata_max_idle_below_five_seconds_is_refused_naming_the_key() {
    let err = Producer::builder()
        .bootstrap_servers(&common::bootstrap())
        .set("metadata.max.idle.ms", "1000")
        .build()
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("metadata.max.idle.ms") && text.contains("1000"),
        "{text}"
    );
}
