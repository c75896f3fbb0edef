//! Interoperability with the Java client, through the console tools of the same Kafka
//! release: what we write, they read, and the other way round, for every codec; and keyed
//! records land in the partitions the Java producer picks.

mod common;

use std::collections::HashMap;

use futures::future::join_all;
use kafka_client::producer::{Compression, Producer, ProducerRecord};

const CODECS: [&str; 5] = ["none", "gzip", "snappy", "lz4", "zstd"];
const RECORDS: usize = 50;

fn codec(name: &str) -> Compression {
    name.parse().unwrap()
}

#[tokio::test]
async fn the_java_console_consumer_reads_every_codec_we_write() {
    let admin = common::admin().await;
    for name in CODECS {
        let topic = common::new_topic(&admin, &format!("interop-out-{name}"), 1).await;
        let producer = Producer::builder()
            .bootstrap_servers(&common::bootstrap())
            .set("compression.type", name)
            .build()
            .await
            .unwrap();
        let mut deliveries = Vec::new();
        for i in 0..RECORDS {
            let record = ProducerRecord::new(&topic)
                .key(format!("k{i}"))
                .value(format!("value-{i}-{name}-{}", "x".repeat(i * 10)))
                .header("h", format!("v{i}"));
            deliveries.push(producer.send(record).await.unwrap());
        }
        for d in join_all(deliveries).await {
            d.unwrap();
        }
        let (_, codecs) =
            common::fetch::fetch_with_codecs(&admin, &common::bootstrap(), &topic).await;
        assert!(
            codecs.iter().all(|c| c.name() == name),
            "{name}: batches written as {codecs:?}"
        );

        let out = common::java::run(
            "org.apache.kafka.tools.consumer.ConsoleConsumer",
            &[
                "--bootstrap-server",
                &common::bootstrap(),
                "--topic",
                &topic,
                "--from-beginning",
                "--max-messages",
                &RECORDS.to_string(),
                "--timeout-ms",
                "30000",
                "--formatter-property",
                "print.offset=true",
                "--formatter-property",
                "print.headers=true",
                "--formatter-property",
                "print.key=true",
            ],
            "",
        );
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), RECORDS, "{name}: {out}");
        for (i, line) in lines.iter().enumerate() {
            let expected = format!(
                "Offset:{i}\th:v{i}\tk{i}\tvalue-{i}-{name}-{}",
                "x".repeat(i * 10)
            );
            assert_eq!(*line, expected, "{name}, record {i}");
        }
    }
}

#[tokio::test]
async fn we_decode_every_codec_the_java_console_producer_writes() {
    let admin = common::admin().await;
    for name in CODECS {
        let topic = common::new_topic(&admin, &format!("interop-in-{name}"), 1).await;
        let input: String = (0..RECORDS)
            .map(|i| format!("h:v{i},h2:{name}\tk{i}|value-{i}-{}\n", "y".repeat(i * 10)))
            .collect();
        common::java::run(
            "org.apache.kafka.tools.ConsoleProducer",
            &[
                "--bootstrap-server",
                &common::bootstrap(),
                "--topic",
                &topic,
                "--compression-codec",
                name,
                "--reader-property",
                "parse.key=true",
                "--reader-property",
                "key.separator=|",
                "--reader-property",
                "parse.headers=true",
            ],
            &input,
        );
        let (records, codecs) =
            common::fetch::fetch_with_codecs(&admin, &common::bootstrap(), &topic).await;
        assert!(
            codecs.iter().all(|c| *c == codec(name)),
            "{name}: batches written as {codecs:?}"
        );
        let records = &records[&0];
        assert_eq!(records.len(), RECORDS, "{name}");
        for (i, r) in records.iter().enumerate() {
            assert_eq!(r.offset, i as i64);
            assert_eq!(r.key.as_deref(), Some(format!("k{i}").as_bytes()), "{name}");
            let value = format!("value-{i}-{}", "y".repeat(i * 10));
            assert_eq!(r.value.as_deref(), Some(value.as_bytes()), "{name}");
            let headers: Vec<(String, Vec<u8>)> = r
                .headers
                .iter()
                .map(|h| (h.key.clone(), h.value.as_ref().unwrap().to_vec()))
                .collect();
            assert_eq!(
                headers,
                vec![
                    ("h".to_owned(), format!("v{i}").into_bytes()),
                    ("h2".to_owned(), name.as_bytes().to_vec())
                ],
                "{name}"
            );
        }
    }
}

#[tokio::test]
async fn ten_thousand_keys_land_where_the_java_producer_puts_them() {
    const KEYS: usize = 10_000;
    let admin = common::admin().await;
    let java_topic = common::new_topic(&admin, "interop-keys-java", 6).await;
    let our_topic = common::new_topic(&admin, "interop-keys-ours", 6).await;
    // Keys of every length from 1 to 40 bytes, so murmur2's tail cases are all covered.
    let keys: Vec<String> = (0..KEYS)
        .map(|i| format!("{i}{}", "k".repeat(i % 40)))
        .collect();

    let input: String = keys.iter().map(|k| format!("{k}|v\n")).collect();
    common::java::run(
        "org.apache.kafka.tools.ConsoleProducer",
        &[
            "--bootstrap-server",
            &common::bootstrap(),
            "--topic",
            &java_topic,
            "--reader-property",
            "parse.key=true",
            "--reader-property",
            "key.separator=|",
        ],
        &input,
    );
    let fetched = common::fetch::fetch_all(&admin, &common::bootstrap(), &java_topic).await;
    let mut java_partition: HashMap<Vec<u8>, i32> = HashMap::new();
    for (partition, records) in fetched {
        for r in records {
            java_partition.insert(r.key.unwrap().to_vec(), partition);
        }
    }
    assert_eq!(java_partition.len(), KEYS);

    let producer = Producer::builder()
        .bootstrap_servers(&common::bootstrap())
        .build()
        .await
        .unwrap();
    let mut deliveries = Vec::with_capacity(KEYS);
    for k in &keys {
        deliveries.push(
            producer
                .send(ProducerRecord::new(&our_topic).key(k.clone()).value("v"))
                .await
                .unwrap(),
        );
    }
    let ours = join_all(deliveries).await;
    for (key, delivery) in keys.iter().zip(ours) {
        assert_eq!(
            delivery.unwrap().partition,
            java_partition[key.as_bytes()],
            "key {key:?}"
        );
    }
}
