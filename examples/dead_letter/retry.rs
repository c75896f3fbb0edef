//! The retry and dead-letter logic: the work that can fail, and the consumer loop that
//! routes failures to the retry topic (with a not-before time) or, after the last attempt,
//! to the dead-letter topic with headers saying why.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use kafka_client::consumer::Consumer;
use kafka_client::producer::{Producer, ProducerRecord};
use kafka_client::{ConsumerRecord, Error, OffsetAndMetadata, TopicPartition};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::BoxError;

/// Names the run that wrote a record; each run ignores the others' records.
pub const RUN_ID: &str = "run-id";
/// The attempt a retry record is for: 2, 3...
pub const ATTEMPT: &str = "retry-attempt";
/// When a retry record is due, in milliseconds since the epoch.
pub const NOT_BEFORE: &str = "retry-not-before";
/// Why the previous attempt failed.
pub const RETRY_ERROR: &str = "retry-error";
/// Where the record was first read (kept through retries, and on the dead letter).
pub const ORIGINAL_TOPIC: &str = "original-topic";
pub const ORIGINAL_PARTITION: &str = "original-partition";
pub const ORIGINAL_OFFSET: &str = "original-offset";
/// On a dead letter: why the last attempt failed, and how many attempts there were.
pub const DLT_ERROR: &str = "dlt-error";
pub const DLT_ATTEMPTS: &str = "dlt-attempts";

/// Headers this example sets; copies of a record drop the old values before adding new ones.
const OURS: [&str; 8] = [
    ATTEMPT,
    NOT_BEFORE,
    RETRY_ERROR,
    ORIGINAL_TOPIC,
    ORIGINAL_PARTITION,
    ORIGINAL_OFFSET,
    DLT_ERROR,
    DLT_ATTEMPTS,
];
pub const FLAKY_ORDER: u64 = 4;
pub const POISONED_ORDER: u64 = 7;

/// What the producer of invoice requests sends.
#[derive(Serialize, Deserialize)]
pub struct InvoiceRequest {
    pub order_id: u64,
    pub amount_cents: u64,
}

/// The work that can fail: order 4 times out once; order 7's value does not parse.
fn render_invoice(record: &ConsumerRecord, attempt: u32) -> Result<InvoiceRequest, String> {
    let value = record.value.as_deref().ok_or("the record has no value")?;
    let request: InvoiceRequest =
        serde_json::from_slice(value).map_err(|e| format!("bad invoice request: {e}"))?;
    if request.order_id == FLAKY_ORDER && attempt == 1 {
        return Err("invoice store timed out (simulated: the retry succeeds)".into());
    }
    Ok(request)
}

/// The three topics: `invoices`, `invoices-retry` and `invoices-dlt`, behind an optional
/// prefix.
#[derive(Clone, Debug)]
pub struct Topics {
    pub main: String,
    pub retry: String,
    pub dlt: String,
}

impl Topics {
    pub fn new(prefix: &str) -> Topics {
        Topics {
            main: prefixed(prefix, "invoices"),
            retry: prefixed(prefix, "invoices-retry"),
            dlt: prefixed(prefix, "invoices-dlt"),
        }
    }
}

/// `name` behind `prefix` and a dash, or alone without a prefix. Used for group ids too.
pub fn prefixed(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_owned()
    } else {
        format!("{prefix}-{name}")
    }
}

/// What became of each order: handled (at which attempt) or dead-lettered, and retries sent.
#[derive(Default)]
pub struct Outcomes {
    pub handled: BTreeMap<String, u32>,
    pub dead: BTreeMap<String, u32>,
    pub retries: u64,
}

/// One consumer (`invoicer` on the main topic, `invoicer-retry` on the retry topic): both run
/// the same loop, since records of the main topic are always due.
pub struct Worker {
    pub name: String,
    pub consumer: Consumer,
    pub producer: Producer,
    pub topics: Topics,
    pub run_id: String,
    pub max_attempts: u32,
    /// The delay before the first retry; it doubles for each further one.
    pub delay: Duration,
    /// For the time stamps of the lines printed.
    pub started: Instant,
    pub outcomes: Arc<Mutex<Outcomes>>,
}

impl Worker {
    pub async fn run(mut self, mut stop: watch::Receiver<bool>) -> Result<(), BoxError> {
        let result = self.work(&mut stop).await;
        // Unsubscribing first makes the member leave for good. `close` alone can let the
        // group task join again right after its LeaveGroup (a consumer bug, to be fixed): the
        // ghost member would hold up the next run's rebalance for session.timeout.ms.
        let left = self.consumer.unsubscribe().await;
        let closed = self.consumer.close().await;
        result?;
        left?;
        Ok(closed?)
    }

    async fn work(&mut self, stop: &mut watch::Receiver<bool>) -> Result<(), BoxError> {
        // Paused partitions and when their first record is due.
        let mut paused: HashMap<TopicPartition, i64> = HashMap::new();
        loop {
            let now = now_ms();
            let due: Vec<TopicPartition> = paused
                .iter()
                .filter(|(_, at)| **at <= now)
                .map(|(tp, _)| tp.clone())
                .collect();
            if !due.is_empty() {
                paused.retain(|_, at| *at > now);
                // A rebalance may have taken a partition away (and its pause with it).
                let held = self.consumer.assignment();
                let due: Vec<TopicPartition> =
                    due.into_iter().filter(|tp| held.contains(tp)).collect();
                self.consumer.resume(&due)?;
            }
            let wait = paused
                .values()
                .min()
                .map_or(500, |at| (at - now).clamp(1, 500));
            let records = tokio::select! {
                records = self.consumer.poll(Duration::from_millis(wait as u64)) => records?,
                _ = stop.wait_for(|stopped| *stopped) => return Ok(()),
            };
            let mut handled: HashMap<TopicPartition, OffsetAndMetadata> = HashMap::new();
            let mut waiting: HashSet<TopicPartition> = HashSet::new();
            for record in &records {
                let tp = record.topic_partition();
                if waiting.contains(&tp) {
                    continue; // behind a record that is not due yet
                }
                if header(record, RUN_ID) == Some(self.run_id.as_str()) {
                    if let Some(at) = header(record, NOT_BEFORE).and_then(|v| v.parse().ok()) {
                        if at > now_ms() {
                            // Read it again when due; until then the partition stays paused.
                            self.consumer.seek(&tp, record.offset)?;
                            self.consumer.pause(std::slice::from_ref(&tp))?;
                            paused.insert(tp.clone(), at);
                            waiting.insert(tp);
                            continue;
                        }
                    }
                    self.handle(record).await?;
                }
                handled.insert(tp, OffsetAndMetadata::new(record.offset + 1));
            }
            if handled.is_empty() {
                continue;
            }
            match self.consumer.commit_sync_offsets(handled).await {
                Ok(()) => {}
                Err(e @ Error::CommitFailed { .. }) => {
                    eprintln!("{}: {e}; those records will be handled again", self.name)
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Handles one record of this run; a failure goes to the retry or the dead-letter topic.
    async fn handle(&self, record: &ConsumerRecord) -> Result<(), BoxError> {
        let attempt: u32 = header(record, ATTEMPT)
            .and_then(|v| v.parse().ok())
            .unwrap_or(1);
        let order = text(record.key.as_deref()).into_owned();
        let error = match render_invoice(record, attempt) {
            Ok(request) => {
                self.log(format!(
                    "handled  order {} (attempt {attempt})",
                    request.order_id
                ));
                lock(&self.outcomes).handled.insert(order, attempt);
                return Ok(());
            }
            Err(error) => error,
        };
        let last = attempt >= self.max_attempts;
        let (copy, next) = if last {
            let copy = copy_of(record, &self.topics.dlt)
                .header(DLT_ERROR, error.clone())
                .header(DLT_ATTEMPTS, attempt.to_string());
            (copy, format!("giving up: to {}", self.topics.dlt))
        } else {
            let delay = self.delay * 2u32.saturating_pow(attempt - 1);
            let not_before = now_ms() + delay.as_millis() as i64;
            let copy = copy_of(record, &self.topics.retry)
                .header(ATTEMPT, (attempt + 1).to_string())
                .header(NOT_BEFORE, not_before.to_string())
                .header(RETRY_ERROR, error.clone());
            let next = format!(
                "retry in {} ms via {}",
                delay.as_millis(),
                self.topics.retry
            );
            (copy, next)
        };
        // Acknowledged before the caller commits the offset, so the record cannot get lost in
        // between: at worst (a crash right here) it is retried twice.
        self.producer.send(copy).await?.await?;
        let max = self.max_attempts;
        self.log(format!(
            "failed   order {order} (attempt {attempt} of {max}): {error}; {next}"
        ));
        let mut outcomes = lock(&self.outcomes);
        if last {
            outcomes.dead.insert(order, attempt);
        } else {
            outcomes.retries += 1;
        }
        Ok(())
    }

    /// One line of the story, stamped with the time since the start.
    fn log(&self, line: String) {
        println!("[{:>5.2}s] {line}", self.started.elapsed().as_secs_f64());
    }
}

/// A copy of `record` for `topic`: key, value and headers (this example's own replaced), and
/// where the record was first read, which the first failure notes and copies keep.
fn copy_of(record: &ConsumerRecord, topic: &str) -> ProducerRecord {
    let origin = match header(record, ORIGINAL_TOPIC) {
        Some(_) => [ORIGINAL_TOPIC, ORIGINAL_PARTITION, ORIGINAL_OFFSET]
            .map(|k| header(record, k).unwrap_or_default().to_owned()),
        None => [
            record.topic.to_string(),
            record.partition.to_string(),
            record.offset.to_string(),
        ],
    };
    let mut copy = ProducerRecord::new(topic);
    copy.key = record.key.clone();
    copy.value = record.value.clone();
    copy.headers = record
        .headers
        .iter()
        .filter(|h| !OURS.contains(&h.key.as_str()))
        .cloned()
        .collect();
    let [topic, partition, offset] = origin;
    copy.header(ORIGINAL_TOPIC, topic)
        .header(ORIGINAL_PARTITION, partition)
        .header(ORIGINAL_OFFSET, offset)
}

pub fn header<'r>(record: &'r ConsumerRecord, key: &str) -> Option<&'r str> {
    let h = record.headers.iter().rev().find(|h| h.key == key)?;
    std::str::from_utf8(h.value.as_deref()?).ok()
}

/// Bytes as text, for printing.
pub fn text(bytes: Option<&[u8]>) -> std::borrow::Cow<'_, str> {
    bytes.map_or("(null)".into(), String::from_utf8_lossy)
}

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}
