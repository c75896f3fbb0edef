//! The demo examples run as processes against the real broker, each with topics and groups
//! of its own: `examples/order_events` (every order goes through, the counts it prints agree)
//! and `examples/dead_letter` (a poisoned record ends on the dead-letter topic with the why,
//! every other record is handled).

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use kafka_client::admin::NewTopic;
use kafka_client::producer::{Producer, ProducerRecord};

/// The example binary `cargo test` built next to this test's binary. `cargo test --test demo`
/// alone does not rebuild examples, so a binary older than its sources fails the test rather
/// than test old code.
fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(|deps| deps.parent()).unwrap();
    let path = dir.join("examples").join(name);
    let rebuild = "run `cargo test` (which builds the examples) or `cargo build --examples` first";
    let built = std::fs::metadata(&path)
        .and_then(|m| m.modified())
        .unwrap_or_else(|_| panic!("{} missing: {rebuild}", path.display()));
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let sources = [
        root.join("src"),
        root.join("examples").join(name),
        root.join("examples").join(format!("{name}.rs")),
    ];
    if let Some(newer) = sources.iter().find_map(|p| newer_file(p, built)) {
        panic!(
            "{} is older than {}: {rebuild}",
            path.display(),
            newer.display()
        );
    }
    path
}

/// A file under `path` (a file or a directory) modified after `than`.
fn newer_file(path: &Path, than: SystemTime) -> Option<PathBuf> {
    let meta = std::fs::metadata(path).ok()?;
    if meta.is_file() {
        return (meta.modified().ok()? > than).then(|| path.to_owned());
    }
    std::fs::read_dir(path)
        .ok()?
        .filter_map(|entry| entry.ok())
        .find_map(|entry| newer_file(&entry.path(), than))
}

/// Runs an example to its end; returns its exit code, stdout and stderr.
async fn run(name: &str, args: &[&str]) -> (Option<i32>, String, String) {
    let out = tokio::process::Command::new(example(name))
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
}
