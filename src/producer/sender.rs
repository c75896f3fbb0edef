//! The sender task: drains ready batches per broker into produce requests, keeps up to
//! `max.in.flight.requests.per.connection` of them in flight per broker, and settles each
//! batch: delivered, retried (after backoff, re-routed on leader changes) or failed.
//!
//! ```text
//!   loop: init producer id? ─▶ expire old batches ─▶ drain ready heads per leader ─▶ send
//!         ▲                                                                          │
//!         └── wake: new/full batch, flush/close, a response, a linger or backoff timer ┘
//! ```
//!
//! One task owns all of this state, so nothing here is locked but the partition queues,
//! and those only to pop or push a batch.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::future::BoxFuture;
use futures::stream::{FuturesUnordered, StreamExt};
use kafka_protocol::messages::{
    InitProducerIdRequest, ProduceRequest, ProduceResponse, ProducerId,
};
use tokio::time::Instant;

use crate::cluster::{Cluster, ConnClass};
use crate::config::Backoff;
use crate::error::{Error, ErrorContext, KafkaCode, Result};
use crate::types::TopicPartition;

use super::accumulator::{lock, Accumulator};
use super::batch::ProducerBatch;
use super::config::{Acks, ProducerConfig};
use super::idempotence::Idempotence;
use super::request::{self, TopicBatches};

/// A produce request in flight: its batches wait here for the response.
struct InFlight {
    broker: i32,
    batches: Vec<ProducerBatch>,
}

/// A request's id, the Produce version it went out at (once known) and its outcome.
type Response = (u64, Option<i16>, Result<Option<ProduceResponse>>);

pub(crate) struct Sender {
    cluster: Cluster,
    config: Arc<ProducerConfig>,
    acc: Arc<Accumulator>,
    idempotence: Option<Idempotence>,
    backoff: Backoff,
    requests: FuturesUnordered<BoxFuture<'static, Response>>,
    in_flight: HashMap<u64, InFlight>,
    per_broker: HashMap<i32, usize>,
    /// Brokers that asked us, through a response's throttle time, to send nothing before
    /// this (KIP-219).
    throttled_until: HashMap<i32, Instant>,
    /// Requests in flight per partition, and the broker they went to.
    partition_in_flight: HashMap<TopicPartition, (i32, usize)>,
    next_request: u64,
    /// Rotates the scan start so no partition is always drained first.
    scan_offset: usize,
    init_retry_at: Option<Instant>,
    init_attempts: u32,
    /// When to look for topics idle past `metadata.max.idle.ms` next.
    idle_check_at: Instant,
}

/// How often the sender looks for idle topics.
const IDLE_CHECK: Duration = Duration::from_secs(1);

impl Sender {
    pub(crate) fn new(
        cluster: Cluster,
        config: Arc<ProducerConfig>,
        acc: Arc<Accumulator>,
    ) -> Self {
        let backoff = Backoff::new(config.client.retry_backoff, config.client.retry_backoff_max);
        let idempotence = config
            .enable_idempotence
            .then(|| Idempotence::new(config.max_in_flight));
        Sender {
            cluster,
            config,
            acc,
            idempotence,
            backoff,
            requests: FuturesUnordered::new(),
            in_flight: HashMap::new(),
            per_broker: HashMap::new(),
            throttled_until: HashMap::new(),
            partition_in_flight: HashMap::new(),
            next_request: 0,
            scan_offset: 0,
            init_retry_at: None,
            init_attempts: 0,
            idle_check_at: Instant::now() + IDLE_CHECK,
        }
    }

    /// Runs until the producer is closed and every batch is settled, or `abort` fires.
    pub(crate) async fn run(mut self, abort: Arc<tokio::sync::Notify>) {
        /// Tells the accumulator the sender is gone however `run` ends (return or panic).
        struct Gone(Arc<Accumulator>);
        impl Drop for Gone {
            fn drop(&mut self) {
                self.0.sender_gone();
            }
        }
        let _gone = Gone(self.acc.clone());
        loop {
            let now = Instant::now();
            self.expire(now);
            let mut wake = now + Duration::from_secs(3600);
            // InitProducerId can take up to request.timeout.ms: close's deadline still holds.
            let has_id = tokio::select! {
                has_id = self.ensure_producer_id(now) => Some(has_id),
                _ = abort.notified() => None,
            };
            let Some(has_id) = has_id else {
                self.fail_everything(&Error::Closed(
                    "the producer was closed before this record was delivered".into(),
                ));
                return;
            };
            if has_id {
                wake = wake.min(self.drain(now));
            } else if let Some(at) = self.init_retry_at {
                wake = wake.min(at);
            }
            if now >= self.idle_check_at {
                self.forget_idle_topics();
                self.idle_check_at = now + IDLE_CHECK;
            }
            wake = wake.min(self.idle_check_at);
            if self.acc.is_closed() && !self.acc.has_incomplete() && self.in_flight.is_empty() {
                return;
            }
            tokio::select! {
                Some((id, version, result)) = self.requests.next(), if !self.requests.is_empty() => {
                    self.settle(id, version, result);
                }
                _ = self.acc.wake_sender.notified() => {}
                _ = tokio::time::sleep_until(wake) => {}
                _ = abort.notified() => {
                    self.fail_everything(&Error::Closed("the producer was closed before this record was delivered".into()));
                    return;
                }
            }
        }
    }

    /// Makes sure an idempotent producer has an id; `false` while it does not (nothing is
    /// drained until then, batches still expire).
    async fn ensure_producer_id(&mut self, now: Instant) -> bool {
        let Some(idem) = &self.idempotence else {
            return true;
        };
        if idem.has_producer_id() {
            return true;
        }
        if self.init_retry_at.is_some_and(|at| at > now) {
            return false;
        }
        let req = InitProducerIdRequest::default()
            .with_transactional_id(None)
            .with_transaction_timeout_ms(i32::MAX)
            .with_producer_id(ProducerId(-1))
            .with_producer_epoch(-1);
        let timeout = self.config.client.request_timeout;
        let result = match tokio::time::timeout(timeout, self.cluster.send_to_any(&req)).await {
            Ok(Ok((resp, broker))) if resp.error_code == 0 => {
                Ok((resp.producer_id.0, resp.producer_epoch, broker))
            }
            Ok(Ok((resp, broker))) => Err(Error::broker(
                resp.error_code,
                ErrorContext::default().with_broker(broker),
                Some("InitProducerId failed".into()),
            )),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(Error::Timeout {
                what: "InitProducerId".into(),
                after: timeout,
            }),
        };
        match result {
            Ok((pid, epoch, _)) => {
                if let Some(idem) = &mut self.idempotence {
                    idem.set_producer_id(pid, epoch);
                }
                self.init_retry_at = None;
                self.init_attempts = 0;
                true
            }
            Err(e) if e.is_retriable() => {
                self.init_attempts += 1;
                tracing::warn!(error = %e, "InitProducerId failed, retrying");
                self.init_retry_at = Some(Instant::now() + self.backoff.delay(self.init_attempts));
                false
            }
            Err(e) => {
                tracing::error!(error = %e, "InitProducerId failed for good");
                self.acc.set_fatal(e.clone());
                self.fail_queued(&e);
                self.init_retry_at = Some(Instant::now() + self.backoff.delay(10));
                false
            }
        }
    }

    /// Drops from the refreshed metadata the topics nothing was sent to for
    /// `metadata.max.idle.ms` and that have nothing queued or in flight, as Java's producer
    /// does: a long-lived producer that once wrote to many topics stops asking about them
    /// all (and stops re-creating deleted ones through auto-creation). The next send to one
    /// looks it up again.
    fn forget_idle_topics(&mut self) {
        let idle = u64::try_from(self.config.metadata_max_idle.as_millis()).unwrap_or(u64::MAX);
        let now = u64::try_from(super::now_ms()).unwrap_or(0);
        for topic in self.acc.topics() {
            if now.saturating_sub(topic.last_used()) < idle || !self.cluster.knows(&topic.name) {
                continue;
            }
            let queued = topic.queues().iter().any(|q| !lock(q).is_empty());
            let in_flight = self
                .partition_in_flight
                .keys()
                .any(|tp| tp.topic == topic.name);
            if queued || in_flight {
                continue;
            }
            if self.cluster.forget(&topic.name) {
                tracing::debug!(topic = %topic.name, ?self.config.metadata_max_idle, "forgot an idle topic's metadata");
            }
        }
    }

    /// Fails queued batches older than `delivery.timeout.ms` (in-flight ones wait for their
    /// response, as in Java).
    fn expire(&mut self, now: Instant) {
        let limit = self.config.delivery_timeout;
        for (tp, queue) in self.acc.all_queues().iter() {
            let expired: Vec<ProducerBatch> = {
                let mut q = lock(queue);
                // Batches sit in creation order (retries go back in order), so the head is
                // the oldest: when it has time left, all do.
                if q.front()
                    .is_none_or(|b| now.duration_since(b.created) < limit)
                {
                    continue;
                }
                let (old, keep): (VecDeque<_>, VecDeque<_>) = q
                    .drain(..)
                    .partition(|b| now.duration_since(b.created) >= limit);
                *q = keep;
                old.into_iter().collect()
            };
            for batch in expired {
                let err = Error::Timeout {
                    what: format!(
                        "delivery of {} record(s) to {tp} (delivery.timeout.ms, {} attempt(s))",
                        batch.record_count(),
                        batch.attempts
                    ),
                    after: limit,
                };
                self.finish_failed(batch, &err);
            }
        }
    }

    /// Drains every ready head batch into one request per leader. Returns when the next
    /// not-yet-ready batch becomes ready.
    fn drain(&mut self, now: Instant) -> Instant {
        let metadata = self.cluster.metadata();
        let mut wake = now + Duration::from_secs(3600);
        let mut by_broker: HashMap<i32, (Vec<ProducerBatch>, usize)> = HashMap::new();
        let queues = self.acc.all_queues();
        let start = self.scan_offset % queues.len().max(1);
        self.scan_offset = self.scan_offset.wrapping_add(1);
        let mut missing_leader = false;
        // Leaders with another ready batch behind one just drained.
        let mut more_ready = Vec::new();
        for (tp, queue) in queues[start..].iter().chain(queues[..start].iter()) {
            let mut q = lock(queue);
            let Some(head) = q.front() else { continue };
            let ready_at = self.acc.ready_at(head, q.len() > 1);
            if ready_at > now {
                wake = wake.min(ready_at);
                continue;
            }
            let leader = metadata
                .topic(&tp.topic)
                .and_then(|t| t.partition(tp.partition))
                .and_then(|p| p.leader)
                .filter(|l| metadata.brokers.contains_key(l));
            let Some(leader) = leader else {
                // Asked about again even if it was forgotten as idle meanwhile.
                if metadata.topic(&tp.topic).is_none() {
                    self.cluster.track([tp.topic.clone()]);
                }
                missing_leader = true;
                wake = wake.min(now + self.config.client.retry_backoff);
                continue;
            };
            if let Some(&(broker, n)) = self.partition_in_flight.get(tp) {
                // Order across a leader change: nothing new goes to the new leader while
                // the old one may still write this partition's earlier batches. With one
                // request in flight (Java's recipe for order without idempotence) the
                // partition waits for its answer.
                if n > 0 && (broker != leader || self.config.max_in_flight == 1) {
                    continue;
                }
            }
            if let Some(&until) = self.throttled_until.get(&leader) {
                if until > now {
                    wake = wake.min(until);
                    continue;
                }
                self.throttled_until.remove(&leader);
            }
            let (batches, bytes) = by_broker.entry(leader).or_default();
            if batches.is_empty()
                && self.per_broker.get(&leader).copied().unwrap_or(0) >= self.config.max_in_flight
            {
                continue; // a response will wake us
            }
            if !batches.is_empty() && *bytes + head.size > self.config.max_request_size {
                wake = now; // the rest goes in the next request
                continue;
            }
            if let Some(idem) = &mut self.idempotence {
                match idem.can_send(tp, &mut q) {
                    Ok(true) => {}
                    Ok(false) => continue,
                    Err(e) => {
                        // Re-encoding for an epoch bump failed: nothing sane is left to do
                        // with this partition's queue but fail it.
                        let failed: Vec<_> = q.drain(..).collect();
                        drop(q);
                        for b in failed {
                            self.finish_failed(b, &e);
                        }
                        continue;
                    }
                }
            }
            let Some(mut batch) = q.pop_front() else {
                continue;
            };
            if q.front()
                .is_some_and(|h| self.acc.ready_at(h, q.len() > 1) <= now)
            {
                more_ready.push(leader);
            }
            drop(q);
            if let Some(idem) = &mut self.idempotence {
                idem.assign(&mut batch);
            }
            *bytes += batch.size;
            batches.push(batch);
        }
        if missing_leader {
            self.cluster.request_refresh();
        }
        for (broker, (batches, _)) in by_broker {
            if !batches.is_empty() {
                self.send(broker, batches);
            }
        }
        // Drain again at once while those leaders can take another request, rather than one
        // batch per partition per round trip.
        let capacity =
            |b: &i32| self.per_broker.get(b).copied().unwrap_or(0) < self.config.max_in_flight;
        if more_ready.iter().any(capacity) {
            wake = now;
        }
        wake
    }

    /// Encodes the batches into one ProduceRequest to `broker` and starts it.
    fn send(&mut self, broker: i32, batches: Vec<ProducerBatch>) {
        let mut parts: Vec<(String, i32, Bytes)> = Vec::with_capacity(batches.len());
        let mut sending = Vec::with_capacity(batches.len());
        for mut batch in batches {
            match batch.encoded() {
                Ok(records) => {
                    parts.push((batch.tp.topic.clone(), batch.tp.partition, records));
                    batch.attempts += 1;
                    batch.retry_at = None;
                    let entry = self
                        .partition_in_flight
                        .entry(batch.tp.clone())
                        .or_insert((broker, 0));
                    *entry = (broker, entry.1 + 1);
                    if let Some(idem) = &mut self.idempotence {
                        idem.sent(&batch.tp);
                    }
                    sending.push(batch);
                }
                Err(e) => self.finish_failed(batch, &e),
            }
        }
        if sending.is_empty() {
            return;
        }
        // One entry per topic, its partitions in drain order.
        parts.sort_by(|a, b| a.0.cmp(&b.0));
        let mut topics: Vec<TopicBatches> = Vec::new();
        for (name, partition, records) in parts {
            match topics.last_mut() {
                Some(t) if t.name == name => t.partitions.push((partition, records)),
                _ => topics.push(TopicBatches {
                    name,
                    partitions: vec![(partition, records)],
                }),
            }
        }
        let acks = self.config.acks;
        let timeout_ms =
            i32::try_from(self.config.client.request_timeout.as_millis()).unwrap_or(i32::MAX);
        let id = self.next_request;
        self.next_request += 1;
        tracing::trace!(
            broker,
            batches = sending.len(),
            request = id,
            "produce request"
        );
        self.in_flight.insert(
            id,
            InFlight {
                broker,
                batches: sending,
            },
        );
        *self.per_broker.entry(broker).or_default() += 1;
        let cluster = self.cluster.clone();
        self.requests.push(Box::pin(async move {
            let mut sent_version = None;
            let result = async {
                let conn = cluster.broker(broker, ConnClass::Produce).await?;
                // The batches go out from their own buffers (see request.rs).
                let version = conn.version::<ProduceRequest>()?;
                sent_version = Some(version);
                let body = request::encode(version, None, acks.wire(), timeout_ms, &topics)?;
                if acks == Acks::None {
                    conn.send_encoded_only::<ProduceRequest>(body, version)
                        .await
                        .map(|()| None)
                } else {
                    conn.request_encoded::<ProduceRequest>(body, version)
                        .await
                        .map(Some)
                }
            }
            .await;
            (id, sent_version, result)
        }));
    }

    /// Settles the batches of a finished request (sent at `version`).
    fn settle(&mut self, id: u64, version: Option<i16>, result: Result<Option<ProduceResponse>>) {
        let Some(InFlight { broker, batches }) = self.in_flight.remove(&id) else {
            return;
        };
        if let Ok(Some(resp)) = &result {
            // KIP-219: from Produce v6 the broker answers at once and expects the client to
            // hold back for the throttle time (older brokers delayed the answer instead).
            let throttle = u64::try_from(resp.throttle_time_ms).unwrap_or(0);
            if throttle > 0 && version.is_some_and(|v| v >= 6) {
                tracing::debug!(
                    broker,
                    throttle_ms = throttle,
                    "broker throttles this client"
                );
                self.throttled_until
                    .insert(broker, Instant::now() + Duration::from_millis(throttle));
            }
        }
        if let Some(n) = self.per_broker.get_mut(&broker) {
            *n = n.saturating_sub(1);
        }
        for b in &batches {
            if let Some(idem) = &mut self.idempotence {
                idem.answered(&b.tp);
            }
            if let Some(entry) = self.partition_in_flight.get_mut(&b.tp) {
                entry.1 = entry.1.saturating_sub(1);
                if entry.1 == 0 {
                    self.partition_in_flight.remove(&b.tp);
                }
            }
        }
        let response = match result {
            Ok(Some(resp)) => resp,
            Ok(None) => {
                for batch in batches {
                    let reserved = (batch.id, batch.reserved);
                    batch.succeed(-1, -1);
                    self.acc.completed(reserved.0, reserved.1);
                }
                return;
            }
            Err(e) => {
                tracing::debug!(broker, error = %e, "produce request failed");
                self.cluster.request_refresh();
                for batch in batches {
                    self.retry_or_fail(batch, e.clone(), e.is_retriable());
                }
                return;
            }
        };
        let mut answers: HashMap<(String, i32), _> = HashMap::new();
        for topic in response.responses {
            let name = topic.name.0.to_string();
            for p in topic.partition_responses {
                answers.insert((name.clone(), p.index), p);
            }
        }
        for batch in batches {
            let Some(p) = answers.remove(&(batch.tp.topic.clone(), batch.tp.partition)) else {
                let e = Error::Protocol {
                    broker: broker.to_string(),
                    reason: format!("produce response has no answer for {}", batch.tp),
                };
                self.retry_or_fail(batch, e, true);
                continue;
            };
            let code = KafkaCode::from_code(p.error_code);
            if code.is_ok() || code == KafkaCode::DUPLICATE_SEQUENCE_NUMBER {
                if let Some(idem) = &mut self.idempotence {
                    idem.acked(&batch);
                }
                let (batch_id, reserved) = (batch.id, batch.reserved);
                let offset = if code.is_ok() { p.base_offset } else { -1 };
                batch.succeed(offset, p.log_append_time_ms);
                self.acc.completed(batch_id, reserved);
                continue;
            }
            let context = ErrorContext::topic(&batch.tp.topic, Some(batch.tp.partition))
                .with_broker(broker.to_string());
            let mut message = p.error_message.map(|m| m.to_string());
            if let Some(first) = p.record_errors.first() {
                let detail = format!(
                    "record {} of the batch: {}",
                    first.batch_index,
                    first
                        .batch_index_error_message
                        .as_deref()
                        .unwrap_or("invalid")
                );
                message = Some(message.map_or(detail.clone(), |m| format!("{m}; {detail}")));
            }
            let err = Error::broker(p.error_code, context, message);
            if is_leader_error(code) {
                self.cluster.track([batch.tp.topic.clone()]);
                self.cluster.request_refresh();
            }
            let retriable = match &mut self.idempotence {
                Some(idem) if code == KafkaCode::OUT_OF_ORDER_SEQUENCE_NUMBER => {
                    if idem.is_next(&batch) {
                        idem.request_bump(&batch.tp);
                    }
                    true
                }
                Some(idem) if code == KafkaCode::UNKNOWN_PRODUCER_ID => {
                    if p.log_start_offset >= 0 {
                        idem.request_bump(&batch.tp);
                    }
                    true
                }
                _ => code.is_retriable(),
            };
            self.retry_or_fail(batch, err, retriable);
        }
    }

    /// Puts a batch back at the head of its queue for another attempt, or fails it when the
    /// error is final, retries are used up or `delivery.timeout.ms` has passed.
    fn retry_or_fail(&mut self, mut batch: ProducerBatch, err: Error, retriable: bool) {
        let now = Instant::now();
        let within_time = now.duration_since(batch.created) < self.config.delivery_timeout;
        let attempts_left = batch.attempts <= self.config.retries;
        if retriable && !within_time {
            let err = Error::Timeout {
                what: format!(
                    "delivery of {} record(s) to {} (delivery.timeout.ms, {} attempt(s), last error: {err})",
                    batch.record_count(),
                    batch.tp,
                    batch.attempts
                ),
                after: self.config.delivery_timeout,
            };
            self.finish_failed(batch, &err);
            return;
        }
        if !(retriable && attempts_left) || self.config.acks == Acks::None {
            tracing::debug!(tp = %batch.tp, error = %err, attempts = batch.attempts, "batch failed");
            self.finish_failed(batch, &err);
            return;
        }
        tracing::debug!(tp = %batch.tp, error = %err, attempts = batch.attempts, "retrying batch");
        batch.retry_at = Some(now + self.backoff.delay(batch.attempts));
        let queue = self.acc.queue_of(&batch.tp);
        let mut q = lock(&queue);
        // Keep retried batches in their original order ahead of never-sent ones: by sequence
        // when idempotent, else by creation.
        let position = q
            .iter()
            .position(|b| b.attempts == 0 || b.id > batch.id)
            .unwrap_or(q.len());
        q.insert(position, batch);
    }

    fn finish_failed(&mut self, batch: ProducerBatch, err: &Error) {
        if let Some(idem) = &mut self.idempotence {
            idem.failed(&batch);
        }
        let (id, reserved) = (batch.id, batch.reserved);
        batch.fail(err);
        self.acc.completed(id, reserved);
    }

    fn fail_queued(&mut self, err: &Error) {
        for (_, queue) in self.acc.all_queues().iter() {
            let batches: Vec<_> = lock(queue).drain(..).collect();
            for b in batches {
                self.finish_failed(b, err);
            }
        }
    }

    fn fail_everything(&mut self, err: &Error) {
        self.fail_queued(err);
        let in_flight: Vec<_> = self.in_flight.drain().collect();
        for (_, req) in in_flight {
            for b in req.batches {
                self.finish_failed(b, err);
            }
        }
    }
}

/// Errors after which the partition's leader is probably elsewhere.
fn is_leader_error(code: KafkaCode) -> bool {
    [
        KafkaCode::NOT_LEADER_OR_FOLLOWER,
        KafkaCode::LEADER_NOT_AVAILABLE,
        KafkaCode::UNKNOWN_TOPIC_OR_PARTITION,
        KafkaCode::FENCED_LEADER_EPOCH,
        KafkaCode::UNKNOWN_LEADER_EPOCH,
        KafkaCode::KAFKA_STORAGE_ERROR,
        KafkaCode::NOT_ENOUGH_REPLICAS,
    ]
    .contains(&code)
}
