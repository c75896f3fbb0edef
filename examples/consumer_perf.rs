//! An end-to-end consumer benchmark with the flags and the output of Java's
//! `kafka-consumer-perf-test` (`org.apache.kafka.tools.ConsumerPerformance`), so both can run
//! against the same topic and their lines be compared as they are.
//!
//! ```text
//! scripts/kafka.sh start
//! cargo run --release --example producer_perf -- --topic perf-a --num-records 1000000 --record-size 100 --throughput -1
//! cargo run --release --example consumer_perf -- --topic perf-a --messages 1000000
//! ```
//!
//! It prints Java's header and one summary line:
//!
//! ```text
//! start.time, end.time, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, nMsg.sec, rebalance.time.ms, fetch.time.ms, fetch.MB.sec, fetch.nMsg.sec
//! 2026-11-21 19:50:00:000, 2026-11-21 19:50:01:250, 95.3674, 76.2939, 1000000, 800000.0000, 0, 1250, 76.2939, 800000.0000
//! ```
//!
//! As in Java, MB are MiB of keys and values, and `rebalance.time.ms` is the time until the
//! group gave the consumer its partitions (0 without `--group`); the `fetch.*` columns cover
//! the rest of the run. Differences: without `--group` the consumer reads every partition by
//! manual assignment from offset 0 (Java always joins a group), times are printed in UTC,
//! `--print-metrics` is accepted and ignored. `--show-detailed-stats` prints one line per
//! `--reporting-interval` before the summary.
//!
//! Exit status: 0 when the expected number of records was read, 1 on a timeout or an error,
//! 2 for bad flags.

use std::collections::VecDeque;
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use kafka_client::admin::Admin;
use kafka_client::consumer::{Consumer, OffsetReset};
use kafka_client::TopicPartition;

const USAGE: &str = "\
usage: consumer_perf --topic TOPIC (--messages N | --num-records N) [--bootstrap-server LIST]
                     [--group GROUP] [--fetch-size BYTES] [--from-latest] [--timeout MS]
                     [--command-property K=V ...] [--reporting-interval MS]
                     [--show-detailed-stats] [--hide-header] [--print-metrics]

  --topic TOPIC             topic to read
  --messages N              records to read (--num-records is the same flag)
  --bootstrap-server LIST   brokers; default $KAFKA_BOOTSTRAP or 127.0.0.1:9092
  --group GROUP             read as a member of GROUP; without it, every partition is
                            assigned manually and read from offset 0
  --fetch-size BYTES        max.partition.fetch.bytes (default 1048576)
  --from-latest             start at the end when there is no committed offset
  --timeout MS              give up when no record arrives for MS (default 10000)
  --command-property K=V    a Java consumer property, any number (--consumer-props too)
  --reporting-interval MS   interval of --show-detailed-stats lines (default 5000)
  --show-detailed-stats     print a line per interval
  --hide-header             do not print the header line
  --print-metrics           accepted for compatibility with the Java tool, ignored
  -h, --help                print this text
";

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

fn parse_args() -> Result<Args, String> {
    let mut it = std::env::args().skip(1);
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
    let value = |flag: &str, it: &mut dyn Iterator<Item = String>| {
        it.next().ok_or_else(|| format!("{flag} needs a value"))
    };
    while let Some(flag) = it.next() {
        match flag.as_str() {
            "--bootstrap-server" => a.bootstrap = value(&flag, &mut it)?,
            "--topic" => a.topic = value(&flag, &mut it)?,
            "--messages" | "--num-records" => {
                let v = value(&flag, &mut it)?;
                a.messages = v.parse().map_err(|_| format!("{flag} {v}: not a count"))?;
            }
            "--group" => a.group = Some(value(&flag, &mut it)?),
            "--fetch-size" => a.fetch_size = Some(value(&flag, &mut it)?),
            "--from-latest" => a.from_latest = true,
            "--timeout" => {
                let v = value(&flag, &mut it)?;
                let ms: u64 = v
                    .parse()
                    .map_err(|_| format!("--timeout {v}: not milliseconds"))?;
                a.timeout = Duration::from_millis(ms);
            }
            "--command-property" | "--consumer-props" => {
                let v = value(&flag, &mut it)?;
                let (k, val) = v
                    .split_once('=')
                    .ok_or_else(|| format!("{flag} {v}: expected KEY=VALUE"))?;
                a.props.push((k.trim().to_owned(), val.trim().to_owned()));
            }
            "--reporting-interval" => {
                let v = value(&flag, &mut it)?;
                let ms: u64 = v
                    .parse()
                    .map_err(|_| format!("--reporting-interval {v}: not milliseconds"))?;
                a.interval = Duration::from_millis(ms.max(1));
            }
            "--show-detailed-stats" => a.detailed = true,
            "--hide-header" => a.header = false,
            "--print-metrics" => {}
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown flag {other}")),
        }
    }
    if a.topic.is_empty() || a.messages == 0 {
        return Err("--topic and --messages (> 0) are required".into());
    }
    Ok(a)
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("error: {e}\n");
            }
            eprint!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(args).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}

async fn run(args: Args) -> kafka_client::Result<bool> {
    let reset = if args.from_latest {
        OffsetReset::Latest
    } else {
        OffsetReset::Earliest
    };
    let mut builder = Consumer::builder()
        .bootstrap_servers(&args.bootstrap)
        .client_id("perf-consumer-client")
        .auto_offset_reset(reset);
    if let Some(g) = &args.group {
        builder = builder.group_id(g);
    }
    if let Some(f) = &args.fetch_size {
        builder = builder.set("max.partition.fetch.bytes", f);
    }
    for (k, v) in &args.props {
        builder = builder.set(k, v);
    }
    let mut consumer = builder.build().await?;

    let start_wall = SystemTime::now();
    let start = Instant::now();
    if args.group.is_some() {
        consumer.subscribe([args.topic.clone()])?;
    } else {
        let admin = Admin::connect(&args.bootstrap).await?;
        let topic = admin
            .describe_topics(&[args.topic.as_str()])
            .await?
            .remove(0);
        consumer.assign(
            topic
                .partitions
                .iter()
                .map(|p| TopicPartition::new(&args.topic, p.partition)),
        )?;
    }

    let (mut records, mut bytes) = (0u64, 0u64);
    let mut assigned_at: Option<Instant> = args.group.is_none().then_some(start);
    let mut last_record = Instant::now();
    let mut window = (Instant::now(), 0u64, 0u64);
    let mut detailed: VecDeque<String> = VecDeque::new();
    if args.detailed && args.header {
        println!("time, threadId, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, nMsg.sec, rebalance.time.ms, fetch.time.ms, fetch.MB.sec, fetch.nMsg.sec");
    }
    while records < args.messages {
        let batch = consumer.poll(Duration::from_millis(100)).await?;
        let now = Instant::now();
        if assigned_at.is_none() && !consumer.assignment().is_empty() {
            assigned_at = Some(now);
        }
        if batch.is_empty() {
            if now.duration_since(last_record) > args.timeout {
                eprintln!(
                    "WARNING: Exiting before consuming the expected number of records: timeout ({} ms) exceeded. \
                     You can use the --timeout option to increase the timeout.",
                    args.timeout.as_millis()
                );
                break;
            }
            continue;
        }
        last_record = now;
        for r in &batch {
            bytes += r.key.as_ref().map_or(0, |k| k.len()) as u64
                + r.value.as_ref().map_or(0, |v| v.len()) as u64;
        }
        records += batch.len() as u64;
        if args.detailed && now.duration_since(window.0) >= args.interval {
            let secs = now.duration_since(window.0).as_secs_f64();
            let (mb, n) = (mib(bytes - window.1), records - window.2);
            let line = format!(
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
            println!("{line}");
            detailed.push_back(line);
            window = (now, bytes, records);
        }
    }
    let end = Instant::now();
    let end_wall = SystemTime::now();
    consumer.close().await?;

    let total = end.duration_since(start).as_secs_f64().max(1e-9);
    let rebalance = assigned_at.map_or(Duration::ZERO, |a| a.duration_since(start));
    let fetch = end
        .duration_since(start)
        .saturating_sub(rebalance)
        .as_secs_f64()
        .max(1e-9);
    if args.header {
        println!("start.time, end.time, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, nMsg.sec, rebalance.time.ms, fetch.time.ms, fetch.MB.sec, fetch.nMsg.sec");
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

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

/// `yyyy-MM-dd HH:mm:ss:SSS` in UTC (Java's default pattern, Java prints local time).
fn timestamp(t: SystemTime) -> String {
    let since = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let (days, rest) = (since.as_secs() / 86_400, since.as_secs() % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}:{:03}",
        rest / 3_600,
        rest % 3_600 / 60,
        rest % 60,
        since.subsec_millis()
    )
}
