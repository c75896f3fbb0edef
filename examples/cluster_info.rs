//! Connects to a cluster, makes sure a topic exists, sends one record to it and prints the
//! brokers and topics.
//!
//! ```text
//! cargo run --example cluster_info -- [BOOTSTRAP] [TOPIC]
//! ```
//! `BOOTSTRAP` defaults to `$KAFKA_BOOTSTRAP` or `127.0.0.1:9092`, `TOPIC` to `hello-kafka`.

use kafka_client::admin::{Admin, NewTopic};
use kafka_client::producer::{Producer, ProducerRecord};
use kafka_client::KafkaCode;

#[tokio::main]
async fn main() {
    if let Err(e) = run().await {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

async fn run() -> kafka_client::Result<()> {
    let mut args = std::env::args().skip(1);
    let bootstrap = args
        .next()
        .or_else(|| std::env::var("KAFKA_BOOTSTRAP").ok())
        .unwrap_or_else(|| "127.0.0.1:9092".to_owned());
    let topic = args.next().unwrap_or_else(|| "hello-kafka".to_owned());

    let admin = Admin::connect(&bootstrap).await?;
    match admin.create_topic(NewTopic::new(&topic, 3, 1)).await {
        Ok(()) => println!("created topic {topic} with 3 partitions"),
        Err(e) if e.kafka_code() == Some(KafkaCode::TOPIC_ALREADY_EXISTS) => {
            println!("topic {topic} already exists")
        }
        Err(e) => return Err(e),
    }

    let producer = Producer::builder()
        .bootstrap_servers(&bootstrap)
        .build()
        .await?;
    let stored = producer
        .send(
            ProducerRecord::new(&topic)
                .key("greeting")
                .value("hello from kafka-client"),
        )
        .await?
        .await?;
    println!(
        "sent one record to {}-{} at offset {}",
        stored.topic, stored.partition, stored.offset
    );
    producer.close(std::time::Duration::from_secs(10)).await;

    let cluster = admin.describe_cluster().await?;
    println!(
        "cluster {} ({} broker(s), controller {:?})",
        cluster.cluster_id.as_deref().unwrap_or("?"),
        cluster.brokers.len(),
        cluster.controller_id
    );
    for b in cluster.brokers.values() {
        println!("  broker {} at {}", b.id, b.address());
    }
    let topics = admin.list_topics().await?;
    println!("{} topic(s):", topics.len());
    for t in admin
        .describe_topics(&topics.iter().map(String::as_str).collect::<Vec<_>>())
        .await?
    {
        let leaders: Vec<String> = t
            .partitions
            .iter()
            .map(|p| p.leader.map_or("-".to_owned(), |l| l.to_string()))
            .collect();
        println!(
            "  {} partitions={} leaders=[{}]",
            t.name,
            t.partitions.len(),
            leaders.join(",")
        );
    }
    Ok(())
}
