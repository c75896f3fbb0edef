//! Helpers for consumer-group tests: a consumer builder with short group timeouts, fresh
//! group names, a listener that records its callbacks, and polling until a condition holds.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use kafka_client::consumer::{Consumer, OffsetReset, RebalanceListener};
use kafka_client::{ConsumerBuilder, TopicPartition};
use tokio::time::Instant;

/// A group name no other test uses.
pub fn group_name(prefix: &str) -> String {
    super::unique_topic(prefix)
}

/// A consumer in `group`, reading from the earliest offset, with a 10 s session timeout.
pub fn builder(group: &str) -> ConsumerBuilder {
    Consumer::builder()
        .bootstrap_servers(&super::bootstrap())
        .group_id(group)
        .auto_offset_reset(OffsetReset::Earliest)
        .session_timeout(Duration::from_secs(10))
        .heartbeat_interval(Duration::from_millis(500))
}

/// What a listener saw.
#[derive(Default, Debug)]
pub struct Seen {
    pub assigned: Vec<Vec<TopicPartition>>,
    pub revoked: Vec<Vec<TopicPartition>>,
    pub lost: Vec<Vec<TopicPartition>>,
}

/// A listener recording every callback.
#[derive(Clone, Default)]
pub struct Recorder(pub Arc<Mutex<Seen>>);

impl RebalanceListener for Recorder {
    fn on_partitions_revoked<'a>(
        &'a mut self,
        _: &'a Consumer,
        p: &'a [TopicPartition],
    ) -> BoxFuture<'a, ()> {
        self.0.lock().unwrap().revoked.push(p.to_vec());
        Box::pin(async {})
    }
    fn on_partitions_assigned<'a>(
        &'a mut self,
        _: &'a Consumer,
        p: &'a [TopicPartition],
    ) -> BoxFuture<'a, ()> {
        self.0.lock().unwrap().assigned.push(p.to_vec());
        Box::pin(async {})
    }
    fn on_partitions_lost<'a>(
        &'a mut self,
        _: &'a Consumer,
        p: &'a [TopicPartition],
    ) -> BoxFuture<'a, ()> {
        self.0.lock().unwrap().lost.push(p.to_vec());
        Box::pin(async {})
    }
}

/// Polls `c` until `cond` holds (or fails after `secs`).
pub async fn poll_until(c: &mut Consumer, secs: u64, mut cond: impl FnMut(&Consumer) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !cond(c) {
        assert!(
            Instant::now() < deadline,
            "condition not reached in {secs} s"
        );
        c.poll(Duration::from_millis(100)).await.unwrap();
    }
}
