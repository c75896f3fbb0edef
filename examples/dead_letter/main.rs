//! Retries with a delay, then a dead-letter topic: what a consumer does with a record it cannot
//! handle, instead of blocking its partition forever or dropping the record.
//!
//! ```text
//!   [invoices] ─────▶ invoicer ───────── ok ──▶ handled
//!                        │ failed
//!                        ▼
//!   [invoices-retry] ─▶ invoicer-retry ─ ok ──▶ handled     (each record waits for its
//!        ▲               │ failed, attempts left              retry-not-before time)
//!        └───────────────┤
//!                        │ failed for the --max-attempts-th time
//!                        ▼
//!   [invoices-dlt]   the record, with dlt-error, dlt-attempts, original-topic,
//!                    original-partition and original-offset headers
//! ```
//!
//! ```text
//! cargo run --example dead_letter -- [--records 10] [--max-attempts 3] [--retry-delay-ms 1000]
//! ```
//!
//! It sends `--records` invoice requests for orders 1, 2, 3...: order 4 fails once (a
//! simulated timeout) and succeeds on its retry; order 7's amount does not parse, so it fails
//! every attempt and ends on the dead-letter topic, which the example then reads and prints.
//! The last line, `SUMMARY records=.. handled=.. dead_lettered=.. retries=..`, is for scripts;
//! the exit status is 0 when every record but order 7 was handled and order 7 was printed
//! from the dead-letter topic.
//!
//! A retry record carries `retry-attempt` (the attempt it is for) and `retry-not-before`
//! (milliseconds since the epoch): attempt n waits `--retry-delay-ms` × 2^(n-2). The retry
//! consumer does not sleep on a record that is not due: it seeks back to it and *pauses* its
//! partition until then, and keeps polling. So the group never sees it stall
//! (`max.poll.interval.ms`), other partitions keep flowing, and order within a partition
//! holds (a later record waits behind an earlier one's delay; retry topics per delay, as
//! Spring Kafka uses, avoid that wait).
//!
//! Offsets are committed after handling, record by record (`commit_sync_offsets`), so a crash
//! repeats work (at-least-once) but never loses a record. The topics have fixed names, as
//! users copy them; records carry a `run-id` header, and each run ignores other runs' records.

mod retry;

use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kafka_client::admin::{Admin, NewTopic};
use kafka_client::consumer::{Consumer, OffsetReset};
use kafka_client::producer::{Producer, ProducerRecord};
use kafka_client::{Header, KafkaCode, TopicPartition};
use tokio::sync::watch;
use tokio::task::JoinSet;

use retry::{
    header, lock, now_ms, prefixed, text, InvoiceRequest, Outcomes, Topics, Worker, FLAKY_ORDER,
    POISONED_ORDER, RUN_ID,
};

/// The error type of the example's fallible steps.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

const USAGE: &str = "\
usage: dead_letter [--records N] [--max-attempts N] [--retry-delay-ms MS] [--prefix P]
                   [--bootstrap LIST] [--timeout SECS]

  --records N         invoice requests to send, at least 7 (default 10)
  --max-attempts N    attempts before a record goes to the dead-letter topic (default 3)
  --retry-delay-ms MS delay before the first retry, doubling after (default 1000)
  --prefix P          topics P-invoices, P-invoices-retry, P-invoices-dlt; groups likewise
  --bootstrap LIST    brokers; default $KAFKA_BOOTSTRAP or 127.0.0.1:9092
  --timeout SECS      give up after SECS seconds (default 60)
";

struct Args {
    records: u64,
    max_attempts: u32,
    delay: Duration,
    prefix: String,
    bootstrap: String,
    timeout: Duration,
}

fn parse_args() -> Result<Option<Args>, String> {
    let mut args = Args {
        records: 10,
        max_attempts: 3,
        delay: Duration::from_millis(1000),
        prefix: String::new(),
        bootstrap: std::env::var("KAFKA_BOOTSTRAP").unwrap_or_else(|_| "127.0.0.1:9092".into()),
        timeout: Duration::from_secs(60),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "-h" || flag == "--help" {
            return Ok(None);
        }
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let number = |min: u64| match value.parse::<u64>() {
            Ok(n) if n >= min => Ok(n),
            _ => Err(format!(
                "{flag} wants a whole number of at least {min}, not {value:?}"
            )),
        };
        match flag.as_str() {
            "--records" => args.records = number(POISONED_ORDER)?,
            "--max-attempts" => args.max_attempts = number(1)?.min(30) as u32,
            "--retry-delay-ms" => args.delay = Duration::from_millis(number(0)?),
            "--prefix" => args.prefix = value,
            "--bootstrap" => args.bootstrap = value,
            "--timeout" => args.timeout = Duration::from_secs(number(1)?),
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    Ok(Some(args))
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(Some(args)) => args,
        Ok(None) => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("dead_letter: {e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(args).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("dead_letter: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<bool, BoxError> {
    let topics = Topics::new(&args.prefix);
    create_topics(&args.bootstrap, &topics).await?;
    let run_id = format!("{:x}-{}", now_ms(), std::process::id());
    println!(
        "dead-letter run {run_id}: {} invoice requests on {}, retries via {} (first after {} ms, \
         {} attempts in all), dead letters to {}",
        args.records,
        topics.main,
        topics.retry,
        args.delay.as_millis(),
        args.max_attempts,
        topics.dlt
    );

    let started = Instant::now();
    let producer = Producer::builder()
        .bootstrap_servers(&args.bootstrap)
        .build()
        .await?;
    let outcomes = Arc::new(Mutex::new(Outcomes::default()));
    let (stop, stopped) = watch::channel(false);
    let mut workers = JoinSet::new();
    for (group, topic) in [
        ("invoicer", &topics.main),
        ("invoicer-retry", &topics.retry),
    ] {
        let consumer = Consumer::builder()
            .bootstrap_servers(&args.bootstrap)
            .group_id(&prefixed(&args.prefix, group))
            .client_id(group)
            // Commit what was handled (or handed on to a retry or dead-letter topic).
            .enable_auto_commit(false)
            .auto_offset_reset(OffsetReset::Earliest)
            .build()
            .await?;
        consumer.subscribe([topic.as_str()])?;
        let worker = Worker {
            name: group.to_owned(),
            consumer,
            producer: producer.clone(),
            topics: topics.clone(),
            run_id: run_id.clone(),
            max_attempts: args.max_attempts,
            delay: args.delay,
            started,
            outcomes: outcomes.clone(),
        };
        workers.spawn(worker.run(stopped.clone()));
    }

    let mut failure = match send_requests(&producer, &topics.main, &run_id, args.records).await {
        Ok(()) => wait_until_settled(&outcomes, args.records, args.timeout, &mut workers).await,
        Err(e) => Some(e),
    };
    // Graceful shutdown: the workers finish their batch, commit and close their consumers.
    let _ = stop.send(true);
    while let Some(joined) = workers.join_next().await {
        match joined {
            Ok(Ok(())) => {}
            Ok(Err(e)) => failure = failure.or(Some(e)),
            Err(e) => failure = failure.or(Some(e.into())),
        }
    }
    producer.close(Duration::from_secs(10)).await;
    if let Some(e) = failure {
        return Err(e);
    }

    let dead = lock(&outcomes).dead.len();
    let printed = print_dead_letters(&args.bootstrap, &topics.dlt, &run_id, dead).await?;
    let o = lock(&outcomes);
    // Order 7 on the dead-letter topic and every other order handled; with a single attempt
    // allowed, order 4's one failure sends it there too.
    let expected_dead =
        |id: u64| id == POISONED_ORDER || (id == FLAKY_ORDER && args.max_attempts < 2);
    let ok = (1..=args.records).all(|id| {
        let id_text = id.to_string();
        o.handled.contains_key(&id_text) != expected_dead(id)
            && o.dead.contains_key(&id_text) == expected_dead(id)
    }) && o.dead.len() == printed;
    println!(
        "SUMMARY records={} handled={} dead_lettered={} retries={} dead_letters_printed={printed} \
         result={}",
        args.records,
        o.handled.len(),
        o.dead.len(),
        o.retries,
        if ok { "as-expected" } else { "unexpected" }
    );
    Ok(ok)
}

/// Creates the topics; existing ones are used as they are.
async fn create_topics(bootstrap: &str, topics: &Topics) -> Result<(), BoxError> {
    let admin = Admin::connect(bootstrap).await?;
    for (topic, partitions) in [(&topics.main, 3), (&topics.retry, 3), (&topics.dlt, 1)] {
        let new_topic = NewTopic {
            partitions: Some(partitions),
            ..NewTopic::with_defaults(topic)
        };
        match admin.create_topic(new_topic).await {
            Err(e) if e.kafka_code() != Some(KafkaCode::TOPIC_ALREADY_EXISTS) => {
                return Err(format!("creating topic {topic}: {e}").into())
            }
            _ => {}
        }
    }
    Ok(())
}

/// The invoice requests for orders 1 to `records`; order 7's is malformed.
async fn send_requests(
    producer: &Producer,
    topic: &str,
    run_id: &str,
    records: u64,
) -> Result<(), BoxError> {
    for order_id in 1..=records {
        let value = if order_id == POISONED_ORDER {
            // What a buggy upstream might send: the amount as a localized string.
            format!(r#"{{"order_id":{order_id},"amount_cents":"12,00"}}"#)
        } else {
            let amount_cents = 1_000 + order_id;
            serde_json::to_string(&InvoiceRequest {
                order_id,
                amount_cents,
            })?
        };
        let record = ProducerRecord::new(topic)
            .key(order_id.to_string())
            .value(value)
            .header(RUN_ID, run_id.to_owned());
        producer.send(record).await?.await?;
    }
    Ok(())
}

/// Waits until every record is handled or dead-lettered; returns why not, if a worker failed
/// or `timeout` passed first.
async fn wait_until_settled(
    outcomes: &Mutex<Outcomes>,
    records: u64,
    timeout: Duration,
    workers: &mut JoinSet<Result<(), BoxError>>,
) -> Option<BoxError> {
    let deadline = Instant::now() + timeout;
    loop {
        let settled = {
            let o = lock(outcomes);
            (o.handled.len() + o.dead.len()) as u64 >= records
        };
        if settled {
            return None;
        }
        if Instant::now() >= deadline {
            return Some(format!("not every record was settled within {timeout:?}").into());
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(100)) => {}
            Some(joined) = workers.join_next() => return Some(match joined {
                Ok(Err(e)) => e,
                Ok(Ok(())) => "a worker stopped early".into(),
                Err(e) => e.into(),
            }),
        }
    }
}

/// Reads this run's records back from the dead-letter topic and prints them with their
/// headers: what an operator inspecting the topic would see.
async fn print_dead_letters(
    bootstrap: &str,
    dlt: &str,
    run_id: &str,
    expected: usize,
) -> Result<usize, BoxError> {
    let admin = Admin::connect(bootstrap).await?;
    let partitions: Vec<TopicPartition> = admin
        .describe_topics(&[dlt])
        .await?
        .iter()
        .flat_map(|t| {
            t.partitions
                .iter()
                .map(|p| TopicPartition::new(dlt, p.partition))
        })
        .collect();
    // No group: read the partitions from their beginning, as an inspection tool does.
    let mut consumer = Consumer::builder()
        .bootstrap_servers(bootstrap)
        .auto_offset_reset(OffsetReset::Earliest)
        .build()
        .await?;
    consumer.assign(partitions)?;
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut printed = 0;
    while printed < expected && Instant::now() < deadline {
        for record in consumer.poll(Duration::from_millis(500)).await? {
            if header(&record, RUN_ID) != Some(run_id) {
                continue;
            }
            println!(
                "\ndead letter at {}-{}@{}:",
                record.topic, record.partition, record.offset
            );
            println!("  key    {}", text(record.key.as_deref()));
            println!("  value  {}", text(record.value.as_deref()));
            for Header { key, value } in &record.headers {
                println!("  header {key} = {}", text(value.as_deref()));
            }
            printed += 1;
        }
    }
    consumer.close().await?;
    println!();
    Ok(printed)
}
