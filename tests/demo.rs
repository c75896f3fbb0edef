//! The demo examples run as processes against the real broker, each with topics and groups
//! of its own: `examples/order_events` (every order goes through, the counts it prints agree)
//! and `examples/dead_letter` (a poisoned record ends on the dead-letter topic with the why,
//! every other record is handled).

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use kafka_client::admin::NewTopic;
use kafka_client::consumer::{Consumer, OffsetReset};
use kafka_client::producer::{Producer, ProducerRecord};
use kafka_client::{ConsumerRecord, TopicPartition};

/// Runs an example to its end; returns its exit code, stdout and stderr.
async fn run(name: &str, args: &[&str]) -> (Option<i32>, String, String) {
    let out = tokio::process::Command::new(common::examples::example(name))
        .args(["--bootstrap", &common::bootstrap()])
        .args(args)
        .kill_on_drop(true)
        .output()
        .await
        .unwrap();
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.code(), text(&out.stdout), text(&out.stderr))
}

/// The `key=value` fields of the line starting with `tag`.
fn fields(stdout: &str, tag: &str) -> HashMap<String, String> {
    let line = stdout
        .lines()
        .find(|l| l.starts_with(tag))
        .unwrap_or_else(|| panic!("no {tag} line in:\n{stdout}"));
    line.split_whitespace()
        .skip(1)
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

fn num(fields: &HashMap<String, String>, key: &str) -> u64 {
    fields
        .get(key)
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no number {key} in {fields:?}"))
}

const ORDERS: u64 = 300;
const RESEND_EVERY: u64 = 25;

/// Runs the demo on `prefix` and checks the summary's counts against each other and against
/// what 300 orders must give; returns the summary's fields.
async fn demo_run(prefix: &str) -> HashMap<String, String> {
    let (code, stdout, stderr) = run(
        "order_events",
        &[
            "--prefix",
            prefix,
            "--orders",
            &ORDERS.to_string(),
            "--partitions",
            "3",
            "--resend-every",
            &RESEND_EVERY.to_string(),
            "--timeout",
            "40",
        ],
    )
    .await;
    assert_eq!(code, Some(0), "stdout:\n{stdout}\nstderr:\n{stderr}");
    let s = fields(&stdout, "SUMMARY ");
    let n = |k: &str| num(&s, k);
    assert_eq!(s["checks"], "passed", "{stdout}");
    assert!(!stdout.contains("FAIL"), "{stdout}");
    assert_eq!(n("orders"), ORDERS);
    assert_eq!(n("created"), ORDERS);
    assert_eq!(n("paid") + n("failed"), n("created"));
    assert_eq!(n("failed"), ORDERS / 7, "ids divisible by 7 are declined");
    assert_eq!(n("reserved"), n("created"));
    assert_eq!(n("deducted"), n("paid"));
    assert_eq!(n("released"), n("failed"));
    assert_eq!(n("shipped"), n("paid"));
    assert_eq!(n("notified"), n("paid") + n("failed") + n("shipped"));
    // Every order sent twice was read twice by payment and by inventory, and ignored.
    assert_eq!(n("resent"), ORDERS / RESEND_EVERY);
    assert!(n("duplicates") >= 2 * n("resent"), "{stdout}");
    // orders (+ resent), payments and shipments.
    assert_eq!(n("published"), ORDERS + n("resent") + ORDERS + n("shipped"));
    s
}

#[tokio::test]
async fn order_events_demo_ends_with_consistent_counts_and_a_rerun_does_too() {
    let prefix = common::unique_topic("demo");
    // Records of another run and a record that is no event at all, already on `orders`: the
    // services must skip them, not count them.
    let admin = common::admin().await;
    let orders = format!("{prefix}-orders");
    admin
        .create_topic(NewTopic::new(&orders, 3, 1))
        .await
        .unwrap();
    let producer = Producer::builder()
        .bootstrap_servers(&common::bootstrap())
        .build()
        .await
        .unwrap();
    let foreign = ProducerRecord::new(&orders)
        .key("1")
        .value(r#"{"order_id":1,"customer":"c","sku":"mug","quantity":1,"amount_cents":1200}"#)
        .header("event-type", "OrderCreated")
        .header("correlation-id", "earlier-1")
        .header("run-id", "an-earlier-run");
    producer.send(foreign).await.unwrap().await.unwrap();
    let junk = ProducerRecord::new(&orders).key("2").value("not an event");
    producer.send(junk).await.unwrap().await.unwrap();
    producer.close(Duration::from_secs(10)).await;

    let first = demo_run(&prefix).await;
    // Payment and inventory both read `orders`: two records each, skipped.
    assert_eq!(num(&first, "other_runs"), 4, "{first:?}");
    assert_eq!(num(&first, "undecodable"), 0, "{first:?}");

    // A second run on the same topics and groups starts after the first one's commits.
    let second = demo_run(&prefix).await;
    assert_eq!(num(&second, "other_runs"), 0, "{second:?}");
    // It did not wait for the groups: every member of the first run left them when it closed
    // (a member left behind holds up a rebalance until its session times out, 10 s).
    assert!(num(&second, "elapsed_ms") < 8_000, "{second:?}");
}

/// Every record of `topic` from its beginning, read by the test itself (no group), until
/// `count` arrived or 20 s passed.
async fn read_topic(topic: &str, count: usize) -> Vec<ConsumerRecord> {
    let admin = common::admin().await;
    let meta = admin.describe_topics(&[topic]).await.unwrap().remove(0);
    let mut consumer = Consumer::builder()
        .bootstrap_servers(&common::bootstrap())
        .auto_offset_reset(OffsetReset::Earliest)
        .build()
        .await
        .unwrap();
    consumer
        .assign(
            meta.partitions
                .iter()
                .map(|p| TopicPartition::new(topic, p.partition)),
        )
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut records = Vec::new();
    while records.len() < count && Instant::now() < deadline {
        records.extend(consumer.poll(Duration::from_millis(500)).await.unwrap());
    }
    consumer.close().await.unwrap();
    records
}

fn header<'r>(record: &'r ConsumerRecord, key: &str) -> &'r str {
    record
        .headers
        .iter()
        .find(|h| h.key == key)
        .and_then(|h| std::str::from_utf8(h.value.as_deref()?).ok())
        .unwrap_or_else(|| panic!("no header {key} on {record:?}: {:?}", record.headers))
}

/// The time stamp (seconds since the start) of the example's line containing `text`.
fn stamp(stdout: &str, text: &str) -> f64 {
    let line = stdout
        .lines()
        .find(|l| l.contains(text))
        .unwrap_or_else(|| panic!("no line with {text:?} in:\n{stdout}"));
    line.trim_start_matches('[')
        .split('s')
        .next()
        .and_then(|t| t.trim().parse().ok())
        .unwrap_or_else(|| panic!("no time stamp on {line:?}"))
}

#[tokio::test]
async fn dead_letter_example_retries_with_delay_then_dead_letters_the_poisoned_record() {
    let prefix = common::unique_topic("dlt");
    let (max_attempts, delay_ms, records) = (3, 300, 12u64);
    let (code, stdout, stderr) = run(
        "dead_letter",
        &[
            "--prefix",
            &prefix,
            "--records",
            &records.to_string(),
            "--max-attempts",
            &max_attempts.to_string(),
            "--retry-delay-ms",
            &delay_ms.to_string(),
            "--timeout",
            "40",
        ],
    )
    .await;
    assert_eq!(code, Some(0), "stdout:\n{stdout}\nstderr:\n{stderr}");
    let s = fields(&stdout, "SUMMARY ");
    assert_eq!(s["result"], "as-expected", "{stdout}");
    assert_eq!(num(&s, "records"), records);
    assert_eq!(num(&s, "handled"), records - 1);
    assert_eq!(num(&s, "dead_lettered"), 1);
    // Order 4 retried once, order 7 at attempts 2 and 3.
    assert_eq!(num(&s, "retries"), 3);

    // Every other record handled exactly once: order 4 on its retry, the rest at once.
    let mut handled: Vec<(u64, u32)> = stdout
        .lines()
        .filter_map(|l| l.split_once("handled  order ")?.1.split_once(" (attempt "))
        .map(|(id, attempt)| {
            let attempt = attempt.trim_end_matches(')');
            (id.parse().unwrap(), attempt.parse().unwrap())
        })
        .collect();
    handled.sort();
    let expected: Vec<(u64, u32)> = (1..=records)
        .filter(|id| *id != 7)
        .map(|id| (id, if id == 4 { 2 } else { 1 }))
        .collect();
    assert_eq!(handled, expected, "{stdout}");
    // Each retry waited for its delay: 300 ms before attempt 2, 600 ms before attempt 3.
    let gap = |from: &str, to: &str| stamp(&stdout, to) - stamp(&stdout, from);
    let delay = delay_ms as f64 / 1000.0;
    assert!(
        gap("order 4 (attempt 1 of 3)", "order 4 (attempt 2)") >= delay - 0.02,
        "{stdout}"
    );
    assert!(
        gap("order 7 (attempt 1 of 3)", "order 7 (attempt 2 of 3)") >= delay - 0.02,
        "{stdout}"
    );
    assert!(
        gap("order 7 (attempt 2 of 3)", "order 7 (attempt 3 of 3)") >= 2.0 * delay - 0.02,
        "{stdout}"
    );

    // The topics, read by the test itself. Where order 7 first was:
    let main = read_topic(&format!("{prefix}-invoices"), records as usize).await;
    assert_eq!(main.len(), records as usize);
    let original = main
        .iter()
        .find(|r| r.key.as_deref() == Some(&b"7"[..]))
        .unwrap();

    // The retry topic: order 4 once, order 7 twice, each with its attempt and not-before time.
    let retries = read_topic(&format!("{prefix}-invoices-retry"), 3).await;
    let mut seen: Vec<(String, String)> = retries
        .iter()
        .map(|r| {
            let attempt: u32 = header(r, "retry-attempt").parse().unwrap();
            let not_before: i64 = header(r, "retry-not-before").parse().unwrap();
            let wait = delay_ms * 2i64.pow(attempt - 2);
            assert!(
                not_before - r.timestamp >= wait - 50,
                "{r:?}: {:?}",
                r.headers
            );
            assert!(!header(r, "retry-error").is_empty());
            (
                String::from_utf8_lossy(r.key.as_deref().unwrap()).into_owned(),
                attempt.to_string(),
            )
        })
        .collect();
    seen.sort();
    let want = [("4", "2"), ("7", "2"), ("7", "3")].map(|(k, a)| (k.to_owned(), a.to_owned()));
    assert_eq!(seen, want);

    // The dead-letter topic: order 7 as it was sent, with why, how often and where from.
    let dead = read_topic(&format!("{prefix}-invoices-dlt"), 1).await;
    assert_eq!(dead.len(), 1, "{dead:?}");
    let letter = &dead[0];
    assert_eq!(letter.key, original.key);
    assert_eq!(letter.value, original.value);
    assert_eq!(header(letter, "run-id"), header(original, "run-id"));
    assert_eq!(header(letter, "dlt-attempts"), max_attempts.to_string());
    assert!(
        header(letter, "dlt-error").starts_with("bad invoice request: invalid type"),
        "{:?}",
        letter.headers
    );
    assert_eq!(header(letter, "original-topic"), &*original.topic);
    assert_eq!(
        header(letter, "original-partition"),
        original.partition.to_string()
    );
    assert_eq!(
        header(letter, "original-offset"),
        original.offset.to_string()
    );
    // And the example printed it.
    assert!(
        stdout.contains(&format!("dead letter at {prefix}-invoices-dlt-0@0:")),
        "{stdout}"
    );
    assert!(stdout.contains("  header dlt-attempts = 3"), "{stdout}");
}
