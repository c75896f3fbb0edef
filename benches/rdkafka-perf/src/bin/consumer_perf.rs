//! librdkafka's consumer (through the `rdkafka` crate's `BaseConsumer`) behind the flags and
//! the output of kafka-client's `examples/consumer_perf.rs`, which are those of Java's
//! `kafka-consumer-perf-test` (`org.apache.kafka.tools.ConsumerPerformance`):
//!
//! ```text
//! rdkafka-consumer-perf --bootstrap-server 127.0.0.1:9092 --topic perf-a --messages 1000000
//! start.time, end.time, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, nMsg.sec, rebalance.time.ms, fetch.time.ms, fetch.MB.sec, fetch.nMsg.sec
//! 2026-11-21 19:50:00:000, 2026-11-21 19:50:01:250, 95.3674, 76.2939, 1000000, 800000.0000, 0, 1250, 76.2939, 800000.0000
//! ```
//!
//! Without `--group` every partition is assigned manually from offset 0 (no group join, no
//! commits); with it the consumer subscribes and `rebalance.time.ms` is the time until the
//! first assignment, as in Java. MB are MiB of keys and values; times are UTC.
//! `--command-property` values go to librdkafka unchanged (librdkafka's names).
//!
//! Exit status: 0 when the expected number of records was read, 1 on a timeout or an error,
//! 2 for bad flags.

use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::{Offset, TopicPartitionList};
use rdkafka_perf::{key_value, mib, number, timestamp};

const USAGE: &str = "\
usage: rdkafka-consumer-perf --topic TOPIC (--messages N | --num-records N)
                             [--bootstrap-server LIST] [--group GROUP] [--fetch-size BYTES]
                             [--from-latest] [--timeout MS] [--command-property K=V ...]
                             [--reporting-interval MS] [--show-detailed-stats]
                             [--hide-header] [--print-metrics]

  --topic TOPIC             topic to read
  --messages N              records to read (--num-records is the same flag)
  --bootstrap-server LIST   brokers; default $KAFKA_BOOTSTRAP or 127.0.0.1:9092
  --group GROUP             read as a member of GROUP; without it, every partition is
                            assigned manually and read from offset 0
  --fetch-size BYTES        max.partition.fetch.bytes (default 1048576)
  --from-latest             start at the end when there is no committed offset
  --timeout MS              give up when no record arrives for MS (default 10000)
  --command-property K=V    a librdkafka property, any number (--consumer-props too)
  --reporting-interval MS   interval of --show-detailed-stats lines (default 5000)
  --show-detailed-stats     print a line per interval
  --hide-header             do not print the header line
  --print-metrics           accepted for compatibility with the Java tool, ignored
  -h, --help                print this text
";

const HEADER: &str = "start.time, end.time, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, nMsg.sec, rebalance.time.ms, fetch.time.ms, fetch.MB.sec, fetch.nMsg.sec";
const DETAILED_HEADER: &str = "time, threadId, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, nMsg.sec, rebalance.time.ms, fetch.time.ms, fetch.MB.sec, fetch.nMsg.sec";

struct Args {
    bootstrap: String,
    topic: String,
    messages: u64,
    group: Option<String>,
    fetch_size: Option<String>,
    from_latest: bool,
    timeout: Duration,
    props: Vec<(String, String)>,
    interval: Duration,
    detailed: bool,
    header: bool,
}

/// `Ok(None)` when help was asked for.
fn parse_args(argv: impl IntoIterator<Item = String>) -> Result<Option<Args>, String> {
    let mut a = Args {
        bootstrap: std::env::var("KAFKA_BOOTSTRAP").unwrap_or_else(|_| "127.0.0.1:9092".into()),
        topic: String::new(),
        messages: 0,
        group: None,
        fetch_size: None,
        from_latest: false,
        timeout: Duration::from_millis(10_000),
        props: Vec::new(),
        interval: Duration::from_millis(5_000),
        detailed: false,
        header: true,
    };
    let mut it = argv.into_iter();
    let value = |flag: &str, it: &mut dyn Iterator<Item = String>| {
        it.next().ok_or_else(|| format!("{flag} needs a value"))
    };
    while let Some(flag) = it.next() {
        match flag.as_str() {
            "--bootstrap-server" => a.bootstrap = value(&flag, &mut it)?,
            "--topic" => a.topic = value(&flag, &mut it)?,
            "--messages" | "--num-records" => a.messages = number(&flag, &value(&flag, &mut it)?)?,
            "--group" => a.group = Some(value(&flag, &mut it)?),
            "--fetch-size" => a.fetch_size = Some(value(&flag, &mut it)?),
            "--from-latest" => a.from_latest = true,
            "--timeout" => {
                a.timeout = Duration::from_millis(number(&flag, &value(&flag, &mut it)?)?)
            }
            "--command-property" | "--consumer-props" => {
                a.props.push(key_value(&flag, &value(&flag, &mut it)?)?)
            }
            "--reporting-interval" => {
                let ms: u64 = number(&flag, &value(&flag, &mut it)?)?;
                a.interval = Duration::from_millis(ms.max(1));
            }
            "--show-detailed-stats" => a.detailed = true,
            "--hide-header" => a.header = false,
            "--print-metrics" => {}
            "-h" | "--help" => return Ok(None),
            other => return Err(format!("unknown flag {other}")),
        }
    }
    if a.topic.is_empty() || a.messages == 0 {
        return Err("--topic and --messages (> 0) are required".into());
    }
    Ok(Some(a))
}

fn main() -> ExitCode {
    match parse_args(std::env::args().skip(1)) {
        Ok(Some(args)) => match run(args) {
            Ok(true) => ExitCode::SUCCESS,
            Ok(false) => ExitCode::FAILURE,
            Err(KafkaError::ClientConfig(_, _, _, e)) => {
                eprintln!("error: {e}");
                ExitCode::from(2)
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        },
        Ok(None) => {
            print!("{USAGE}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}\n\n{USAGE}");
            ExitCode::from(2)
        }
    }
}

fn run(args: Args) -> Result<bool, KafkaError> {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", &args.bootstrap)
        .set("client.id", "perf-consumer-client")
        .set("enable.auto.commit", "false")
        .set(
            "auto.offset.reset",
            if args.from_latest {
                "latest"
            } else {
                "earliest"
            },
        );
    // librdkafka's assign() needs a group handle even without a group: the id is never
    // joined nor committed to (no subscribe, no auto-commit).
    let group = args
        .group
        .clone()
        .unwrap_or_else(|| format!("perf-consumer-{}", std::process::id()));
    config.set("group.id", group);
    if let Some(f) = &args.fetch_size {
        config.set("max.partition.fetch.bytes", f);
    }
    for (k, v) in &args.props {
        config.set(k, v);
    }
    let consumer: BaseConsumer = config.create()?;

    let start_wall = SystemTime::now();
    let start = Instant::now();
    if args.group.is_some() {
        consumer.subscribe(&[&args.topic])?;
    } else {
        let metadata = consumer.fetch_metadata(Some(&args.topic), Duration::from_secs(30))?;
        let mut assignment = TopicPartitionList::new();
        for topic in metadata.topics() {
            if let Some(e) = topic.error() {
                return Err(KafkaError::MetadataFetch(e.into()));
            }
            for p in topic.partitions() {
                assignment.add_partition_offset(&args.topic, p.id(), Offset::Beginning)?;
            }
        }
        consumer.assign(&assignment)?;
    }

    let (mut records, mut bytes) = (0u64, 0u64);
    let mut assigned_at: Option<Instant> = args.group.is_none().then_some(start);
    let mut last_record = Instant::now();
    let mut window = (Instant::now(), 0u64, 0u64);
    if args.detailed && args.header {
        println!("{DETAILED_HEADER}");
    }
    while records < args.messages {
        let polled = consumer.poll(Duration::from_millis(100));
        let now = Instant::now();
        if assigned_at.is_none() && consumer.assignment().is_ok_and(|a| a.count() > 0) {
            assigned_at = Some(now);
        }
        let Some(message) = polled else {
            if now.duration_since(last_record) > args.timeout {
                eprintln!(
                    "WARNING: Exiting before consuming the expected number of records: timeout ({} ms) exceeded. \
                     You can use the --timeout option to increase the timeout.",
                    args.timeout.as_millis()
                );
                break;
            }
            continue;
        };
        let message = message?;
        last_record = now;
        bytes += (message.key_len() + message.payload_len()) as u64;
        records += 1;
        if args.detailed && now.duration_since(window.0) >= args.interval {
            let secs = now.duration_since(window.0).as_secs_f64();
            let (mb, n) = (mib(bytes - window.1), records - window.2);
            println!(
                "{}, 0, {:.4}, {:.4}, {}, {:.4}, 0, {}, {:.4}, {:.4}",
                timestamp(SystemTime::now()),
                mib(bytes),
                mb / secs,
                records,
                n as f64 / secs,
                now.duration_since(window.0).as_millis(),
                mb / secs,
                n as f64 / secs
            );
            window = (now, bytes, records);
        }
    }
    let end = Instant::now();
    let end_wall = SystemTime::now();
    drop(consumer);

    let total = end.duration_since(start).as_secs_f64().max(1e-9);
    let rebalance = assigned_at.map_or(Duration::ZERO, |a| a.duration_since(start));
    let fetch = end
        .duration_since(start)
        .saturating_sub(rebalance)
        .as_secs_f64()
        .max(1e-9);
    if args.header {
        println!("{HEADER}");
    }
    println!(
        "{}, {}, {:.4}, {:.4}, {}, {:.4}, {}, {}, {:.4}, {:.4}",
        timestamp(start_wall),
        timestamp(end_wall),
        mib(bytes),
        mib(bytes) / total,
        records,
        records as f64 / total,
        rebalance.as_millis(),
        (fetch * 1000.0) as u64,
        mib(bytes) / fetch,
        records as f64 / fetch,
    );
    Ok(records >= args.messages)
}
