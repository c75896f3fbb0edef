//! Helpers shared by the integration tests: where the broker is, fresh topic names.
#![allow(dead_code)]

pub mod examples;
pub mod fetch;
pub mod group;
pub mod java;
pub mod produce;
pub mod txn;

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use kafka_client::admin::{Admin, NewTopic};

/// The single-node broker, from `KAFKA_BOOTSTRAP` (default `127.0.0.1:9092`).
pub fn bootstrap() -> String {
    std::env::var("KAFKA_BOOTSTRAP").unwrap_or_else(|_| "127.0.0.1:9092".to_owned())
}

/// An admin client on [`bootstrap`]. A missing broker fails the test with how to start one:
/// integration tests never pass without a broker.
pub async fn admin() -> Admin {
    let addr = bootstrap();
    match Admin::connect(&addr).await {
        Ok(admin) => admin,
        Err(e) => panic!(
            "no Kafka broker reachable at {addr} ({e}).\n\
             Start one with `scripts/kafka.sh start` (or run the whole suite with `scripts/test.sh`), \
             or point KAFKA_BOOTSTRAP at a running broker."
        ),
    }
}

/// A topic name no other test (or earlier run) uses, so tests can run in parallel.
pub fn unique_topic(prefix: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!(
        "{prefix}-{}-{nanos}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// Creates a fresh topic with `partitions` partitions (replication 1) and returns its name.
pub async fn new_topic(admin: &Admin, prefix: &str, partitions: i32) -> String {
    let name = unique_topic(prefix);
    admin
        .create_topic(NewTopic::new(&name, partitions, 1))
        .await
        .unwrap_or_else(|e| panic!("creating topic {name}: {e}"));
    name
}
