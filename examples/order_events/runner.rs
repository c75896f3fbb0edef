//! Runs one member (instance) of a service: a consumer in the service's group that hands each
//! record to the service's logic, publishes what it returns, and commits only after that.
//!
//! ```text
//!  poll ─▶ skip other runs ─▶ decode ─▶ Service::handle ─▶ send its events ─▶ await acks ─▶ commit_sync
//!                                       (dedup by order id + event type)
//! ```
//!
//! At-least-once: `enable.auto.commit=false`, and the batch's offsets are committed once every
//! record in it is handled and every event it caused is acknowledged by the broker. A member
//! that stops (or loses its partitions in a rebalance) before committing leaves those records
//! to be read again, by itself or by the other member; the service's dedup turns the repeat
//! into a no-op, and the events published twice are ignored downstream the same way.
//!
//! A service records an event as handled before the events it causes are acknowledged. If
//! publishing fails, the member stops with the error, and the demo with it, rather than go on
//! with a gap. A real service would write its state and its outgoing events together (a
//! transactional outbox table, or Kafka transactions), so that a restarted instance could
//! publish what was left over.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use kafka_client::consumer::{Consumer, OffsetReset};
use kafka_client::producer::Producer;
use kafka_client::{ConsumerRecord, Error};
use tokio::sync::watch;

use crate::events::{header, Envelope, Topics, RUN_ID};
use crate::services::{Handled, Service};
use crate::BoxError;

/// What one service's members did.
#[derive(Debug, Default)]
pub struct ServiceStats {
    /// Records read, per member: shows how the group shared the partitions.
    pub consumed: Vec<AtomicU64>,
    /// Records handled before (same order id and event type), ignored.
    pub duplicates: AtomicU64,
    /// Records of earlier runs of the demo on the same topics, skipped.
    pub other_runs: AtomicU64,
    /// Records that are not events of this demo (bad headers or JSON), skipped.
    pub undecodable: AtomicU64,
    /// Events the service refused as contradicting its state (a bug; should stay 0).
    pub rejected: AtomicU64,
    /// Events this service published.
    pub published: AtomicU64,
}

impl ServiceStats {
    pub fn new(members: usize) -> ServiceStats {
        ServiceStats {
            consumed: (0..members).map(|_| AtomicU64::new(0)).collect(),
            ..ServiceStats::default()
        }
    }

    /// Records read by all members.
    pub fn consumed(&self) -> u64 {
        self.consumed
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .sum()
    }

    fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}

/// One member of a service's consumer group.
pub struct Member {
    pub service: Arc<dyn Service>,
    pub stats: Arc<ServiceStats>,
    /// 0, 1, ...: tells the members apart in client ids and messages.
    pub index: usize,
    pub bootstrap: String,
    pub group_id: String,
    pub topics: Topics,
    pub run_id: String,
    /// Where the service publishes; `None` for services that publish nothing.
    pub producer: Option<Producer>,
}

impl Member {
    /// Consumes until `stop` turns true, then closes the consumer (leaving the group at once,
    /// so the partitions move to the other members without waiting for a session timeout).
    pub async fn run(self, mut stop: watch::Receiver<bool>) -> Result<(), BoxError> {
        let name = format!("{}-{}", self.service.name(), self.index);
        let mut consumer = Consumer::builder()
            .bootstrap_servers(&self.bootstrap)
            .group_id(&self.group_id)
            .client_id(&name)
            // Commit what was handled, not what was polled.
            .enable_auto_commit(false)
            // A new group starts at the beginning of the topics, so no order published before
            // the group got its partitions is missed.
            .auto_offset_reset(OffsetReset::Earliest)
            // A member that dies (kill -9) is replaced after 10 s instead of Java's 45 s, and
            // members hear of rebalances within a second.
            .session_timeout(Duration::from_secs(10))
            .heartbeat_interval(Duration::from_secs(1))
            .build()
            .await?;
        let topics: BTreeSet<&str> = self
            .service
            .consumes()
            .iter()
            .map(|t| self.topics.for_event(*t))
            .collect();
        consumer.subscribe(topics)?;
        let result = self.consume(&name, &mut consumer, &mut stop).await;
        // Unsubscribing first makes the member leave for good. `close` alone can let the
        // group task join again right after its LeaveGroup (a consumer bug, to be fixed): the
        // ghost member would hold up the next run's rebalance for session.timeout.ms.
        let left = consumer.unsubscribe().await;
        let closed = consumer.close().await;
        result?;
        left?;
        Ok(closed?)
    }

    async fn consume(
        &self,
        name: &str,
        consumer: &mut Consumer,
        stop: &mut watch::Receiver<bool>,
    ) -> Result<(), BoxError> {
        loop {
            // `poll` is cancel-safe: stopping in the middle of it loses no record.
            let records = tokio::select! {
                records = consumer.poll(Duration::from_secs(1)) => records?,
                _ = stop.wait_for(|stopped| *stopped) => return Ok(()),
            };
            if records.is_empty() {
                continue;
            }
            let mut acks = Vec::new();
            for record in &records {
                for envelope in self.handle(name, record) {
                    let producer = self
                        .producer
                        .as_ref()
                        .ok_or("a service without a producer returned events to publish")?;
                    let topic = self.topics.for_event(envelope.event.event_type());
                    acks.push(producer.send(envelope.to_record(topic)?).await?);
                }
            }
            for ack in acks {
                ack.await?;
                ServiceStats::add(&self.stats.published, 1);
            }
            match consumer.commit_sync().await {
                Ok(()) => {}
                // The group rebalanced meanwhile: whoever owns the partitions now reads the
                // batch again, and the dedup makes that harmless.
                Err(e @ Error::CommitFailed { .. }) => {
                    eprintln!("{name}: {e}; the batch will be read again and ignored as duplicates")
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Applies one record; returns the events to publish.
    fn handle(&self, name: &str, record: &ConsumerRecord) -> Vec<Envelope> {
        let stats = &self.stats;
        if let Some(consumed) = stats.consumed.get(self.index) {
            ServiceStats::add(consumed, 1);
        }
        // Checked before decoding: records of other runs need not even parse.
        if header(record, RUN_ID).ok() != Some(self.run_id.as_str()) {
            ServiceStats::add(&stats.other_runs, 1);
            return Vec::new();
        }
        let envelope = match Envelope::from_record(record) {
            Ok(envelope) => envelope,
            Err(e) => {
                // A real service would move it to a dead-letter topic (examples/dead_letter.rs).
                eprintln!(
                    "{name}: skipping {}-{}@{}: {e}",
                    record.topic, record.partition, record.offset
                );
                ServiceStats::add(&stats.undecodable, 1);
                return Vec::new();
            }
        };
        match self.service.handle(&envelope) {
            Handled::Done(events) => events.into_iter().map(|e| envelope.follow(e)).collect(),
            Handled::Duplicate => {
                ServiceStats::add(&stats.duplicates, 1);
                Vec::new()
            }
            Handled::Ignored => Vec::new(),
            Handled::Rejected(why) => {
                eprintln!("{name}: rejected {:?}: {why}", envelope.event);
                ServiceStats::add(&stats.rejected, 1);
                Vec::new()
            }
        }
    }
}
