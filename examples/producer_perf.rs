//! An end-to-end producer benchmark with the flags and the output of Java's
//! `kafka-producer-perf-test` (`org.apache.kafka.tools.ProducerPerformance`), so both can run
//! side by side against the same broker and their lines compared as they are.
//!
//! ```text
//! scripts/kafka.sh start
//! cargo run --release --example producer_perf -- --topic perf-a --num-records 1000000 \
//!     --record-size 100 --throughput -1 --producer-props acks=1
//! ```
//!
//! Every `--reporting-interval` (5 s) it prints the last window, and at the end one summary
//! line in the shape of the Java tool of Kafka 4.3:
//!
//! ```text
//! 2493035 records sent, 498507.1 records/sec (47.54 MB/sec), 41.2 ms avg latency, 210.0 ms max latency.
//! 5000000 records sent, 499550.449550 records/sec (47.64 MB/sec), 40.87 ms avg latency, 210.34 ms max latency, 38 ms 50th, 80 ms 95th, 120 ms 99th, 200 ms 99.9th.
//! ```
//!
//! What it measures, as the Java tool does:
//! - Latency runs from just before `send_with_callback` to the delivery callback, so a wait
//!   for `buffer.memory` counts. It is timed in microseconds (Java: milliseconds), so the
//!   average and the maximum carry real decimals; percentiles are whole milliseconds
//!   (rounded) taken from a sample of at most about 500 000 latencies (every k-th
//!   acknowledgement, k = num-records / 500 000), which bounds memory like Java's `Stats`.
//! - Rates count acknowledged records over the time from the first send to the end of
//!   `close`. Failed records are not counted there; they are reported on stderr and make the
//!   exit status 1.
//! - Records are keyless, with a value of `--record-size` random capital letters (Java's
//!   alphabet). Values are generated once, before the clock starts: each record is a
//!   zero-copy window at a pseudo-random offset of one buffer, so compressed runs see
//!   Java-like entropy instead of one payload repeated. (Java fills a fresh random payload
//!   for each record inside its send loop, so its loop does slightly more work.)
//! - `--throughput` throttles like Java's `ThroughputThrottler`: when the running rate is
//!   over the target, the sender sleeps (never spins) once at least 2 ms of deficit has
//!   built up.
//!
//! Differences: `--producer-props` values may contain `=` (split at the first one); the
//! default `client.id` is `perf-producer-client` as in Java; `--create-partitions N` is ours;
//! `--print-metrics` is accepted and ignored (there is no metrics registry yet). If `send`
//! itself refuses a record (buffer wait over `max.block.ms`, record too large, producer
//! closed), the run stops there, since every later record would meet the same fate.
//!
//! Exit status: 0 when every record was acknowledged, 1 when any failed or the producer
//! could not start, 2 for bad flags or producer properties.

use std::process::ExitCode;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_client::admin::{Admin, NewTopic};
use kafka_client::producer::{Producer, ProducerRecord, RecordMetadata};
use kafka_client::{Error, KafkaCode};

const USAGE: &str = "\
usage: producer_perf --topic TOPIC --num-records N --record-size BYTES
                     [--throughput RECORDS_PER_SEC] [--bootstrap-server HOST:PORT,...]
                     [--producer-props KEY=VALUE ...] [--create-partitions N]
                     [--reporting-interval MS] [--print-metrics]

  --topic TOPIC             topic to produce to (the broker auto-creates it if allowed)
  --num-records N           number of records to send (> 0)
  --record-size BYTES       value size of each (keyless) record
  --throughput R            at most about R records/sec; -1 (default) for no limit
  --bootstrap-server LIST   brokers; default $KAFKA_BOOTSTRAP or 127.0.0.1:9092; wins over
                            bootstrap.servers given in --producer-props
  --producer-props K=V ...  Java producer properties (acks=1 linger.ms=5 ...), any number;
                            --command-property is the same flag
  --create-partitions N     first create the topic with N partitions if it does not exist
                            (broker default replication factor)
  --tasks N                 send from N tasks sharing the producer, each its share of the
                            records and of --throughput (default 1, as the Java tool)
  --reporting-interval MS   interval of the window lines, default 5000
  --print-metrics           accepted for compatibility with the Java tool, ignored
  -h, --help                print this text
";

/// Flags of the Java tool this one does not implement, so they get a clear refusal.
const JAVA_ONLY_FLAGS: &[&str] = &[
    "--payload-file",
    "--payload-delimiter",
    "--payload-monotonic",
    "--producer.config",
    "--command-config",
    "--transactional-id",
    "--transaction-duration-ms",
    "--warmup-records",
];

/// Java's `Stats` keeps at most about this many latencies for the percentiles.
const MAX_SAMPLES: u64 = 500_000;

/// The payload buffer is this much longer than a record, so record windows spread out.
const PAYLOAD_SPREAD: usize = 1 << 20;

#[derive(Debug, PartialEq)]
struct Args {
    bootstrap: Option<String>,
    topic: String,
    num_records: u64,
    record_size: usize,
    /// `None`: unthrottled.
    throughput: Option<f64>,
    props: Vec<(String, String)>,
    create_partitions: Option<i32>,
    tasks: u64,
    reporting_interval: Duration,
    print_metrics: bool,
}

/// `Ok(None)` when help was asked for.
fn parse_args(argv: impl IntoIterator<Item = String>) -> Result<Option<Args>, String> {
    let mut bootstrap = None;
    let mut topic = None;
    let mut num_records = None;
    let mut record_size = None;
    let mut throughput = None;
    let mut props = Vec::new();
    let mut create_partitions = None;
    let mut tasks = 1;
    let mut reporting_interval = Duration::from_millis(5000);
    let mut print_metrics = false;

    let mut argv = argv.into_iter().peekable();
    while let Some(arg) = argv.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) if flag.starts_with("--") => (flag.to_owned(), Some(value)),
            _ => (arg.clone(), None),
        };
        let inline = inline.map(str::to_owned);
        let mut value = || {
            inline
                .clone()
                .or_else(|| argv.next_if(|next| !next.starts_with("--")))
                .ok_or_else(|| format!("{flag} needs a value"))
        };
        match flag.as_str() {
            "-h" | "--help" => return Ok(None),
            "--bootstrap-server" => bootstrap = Some(value()?),
            "--topic" => topic = Some(value()?),
            "--num-records" => {
                let n: u64 = number(&flag, &value()?)?;
                if n == 0 {
                    return Err("--num-records must be greater than zero".into());
                }
                num_records = Some(n);
            }
            "--record-size" => record_size = Some(number::<usize>(&flag, &value()?)?),
            "--throughput" => {
                let v = value()?;
                let t: f64 = number(&flag, &v)?;
                if !t.is_finite() || t == 0.0 {
                    return Err(format!(
                        "--throughput {v}: give records/sec above 0, or -1 for no limit"
                    ));
                }
                throughput = (t > 0.0).then_some(t);
            }
            "--create-partitions" => {
                let n: i32 = number(&flag, &value()?)?;
                if n <= 0 {
                    return Err("--create-partitions must be at least 1".into());
                }
                create_partitions = Some(n);
            }
            "--tasks" => {
                tasks = number(&flag, &value()?)?;
                if tasks == 0 {
                    return Err("--tasks must be at least 1".into());
                }
            }
            "--reporting-interval" => {
                let ms: u64 = number(&flag, &value()?)?;
                if ms == 0 {
                    return Err("--reporting-interval must be at least 1 ms".into());
                }
                reporting_interval = Duration::from_millis(ms);
            }
            "--print-metrics" => print_metrics = true,
            "--producer-props" | "--command-property" => {
                let mut given: Vec<String> = inline.clone().into_iter().collect();
                while let Some(next) = argv.next_if(|next| !next.starts_with("--")) {
                    given.push(next);
                }
                if given.is_empty() {
                    return Err(format!("{flag} needs at least one KEY=VALUE"));
                }
                for prop in given {
                    match prop.split_once('=') {
                        Some((k, v)) if !k.trim().is_empty() => {
                            props.push((k.trim().to_owned(), v.trim().to_owned()))
                        }
                        _ => return Err(format!("{flag}: {prop:?} is not KEY=VALUE")),
                    }
                }
            }
            f if JAVA_ONLY_FLAGS.contains(&f) => {
                return Err(format!(
                    "{f} (a flag of the Java tool) is not supported here"
                ))
            }
            f if f.starts_with('-') => return Err(format!("unknown flag {f}")),
            _ => return Err(format!("unexpected argument {arg:?}")),
        }
    }
    Ok(Some(Args {
        bootstrap,
        topic: topic.ok_or("--topic is required")?,
        num_records: num_records.ok_or("--num-records is required")?,
        record_size: record_size.ok_or("--record-size is required")?,
        throughput,
        props,
        create_partitions,
        tasks,
        reporting_interval,
        print_metrics,
    }))
}

fn number<T: std::str::FromStr>(flag: &str, value: &str) -> Result<T, String> {
    value
        .trim()
        .parse()
        .map_err(|_| format!("{flag}: {value:?} is not a valid number"))
}

#[tokio::main]
async fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    if argv.is_empty() {
        eprint!("{USAGE}");
        return ExitCode::from(2);
    }
    let args = match parse_args(argv) {
        Ok(Some(args)) => args,
        Ok(None) => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("error: {e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    run(args).await
}

async fn run(args: Args) -> ExitCode {
    if args.print_metrics {
        eprintln!("note: --print-metrics is ignored: kafka-client has no metrics registry yet");
    }
    // As in Java: the flag wins over bootstrap.servers in the properties.
    let bootstrap = args
        .bootstrap
        .clone()
        .or_else(|| {
            args.props
                .iter()
                .rev()
                .find(|(k, _)| k == "bootstrap.servers")
                .map(|(_, v)| v.clone())
        })
        .or_else(|| std::env::var("KAFKA_BOOTSTRAP").ok())
        .unwrap_or_else(|| "127.0.0.1:9092".to_owned());
    let builder = args
        .props
        .iter()
        .fold(
            Producer::builder().client_id("perf-producer-client"),
            |b, (k, v)| b.set(k, v),
        )
        .bootstrap_servers(&bootstrap);
    if let Err(e) = builder.config() {
        eprintln!("error: {e}\n\n{USAGE}");
        return ExitCode::from(2);
    }

    if let Some(partitions) = args.create_partitions {
        if let Err(e) = ensure_topic(&bootstrap, &args.topic, partitions).await {
            eprintln!("error: creating topic {}: {e}", args.topic);
            return ExitCode::FAILURE;
        }
    }
    let producer = match builder.build().await {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: cannot start a producer on {bootstrap}: {e}");
            eprintln!("(for a local broker: scripts/kafka.sh start)");
            return ExitCode::FAILURE;
        }
    };

    let start = Instant::now();
    let stats = Arc::new(Mutex::new(Stats::new(args.num_records, start)));
    let reporter = tokio::spawn(report_windows(stats.clone(), args.reporting_interval));

    // Each task sends its share: the first ones one record more when it does not divide.
    let jobs: Vec<Job> = (0..args.tasks)
        .map(|task| Job {
            producer: producer.clone(),
            topic: args.topic.clone(),
            record_size: args.record_size,
            count: args.num_records / args.tasks + u64::from(task < args.num_records % args.tasks),
            throughput: args.throughput.map(|t| t / args.tasks as f64),
            seed: task,
            start,
            stats: stats.clone(),
        })
        .collect();
    let outcomes: Vec<Result<Option<(u64, Error)>, String>> = if jobs.len() == 1 {
        // One task, as the Java tool's one thread: the loop stays on the main thread rather
        // than on a runtime worker beside the producer's own tasks.
        let mut outcomes = Vec::new();
        for job in jobs {
            outcomes.push(Ok(job.run().await));
        }
        outcomes
    } else {
        let handles: Vec<_> = jobs.into_iter().map(|j| tokio::spawn(j.run())).collect();
        let mut outcomes = Vec::new();
        for handle in handles {
            outcomes.push(handle.await.map_err(|e| e.to_string()));
        }
        outcomes
    };
    let mut refused = None;
    for outcome in outcomes {
        let stopped = match outcome {
            Ok(Some((sent, e))) => Some(format!(
                "stopped after {sent} of its records: send refused: {e}"
            )),
            Ok(None) => None,
            Err(e) => Some(format!("sending task failed: {e}")),
        };
        refused = refused.or(stopped);
    }
    let flushed = producer.flush().await;
    producer.close(Duration::from_secs(30)).await;
    let end = Instant::now();
    reporter.abort();

    let stats = lock(&stats);
    println!("{}", stats.summary(end));
    let mut ok = true;
    if let Some(why) = refused {
        eprintln!(
            "error: of {} records, a sending task {why}",
            args.num_records
        );
        ok = false;
    }
    if let Err(e) = flushed {
        eprintln!("error: the producer failed: {e}");
        ok = false;
    }
    if stats.failed > 0 {
        eprintln!(
            "error: {} record(s) failed; first error: {}",
            stats.failed,
            stats.first_error.as_deref().unwrap_or("?")
        );
        ok = false;
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// One sending task's share of the run.
struct Job {
    producer: Producer,
    topic: String,
    record_size: usize,
    count: u64,
    throughput: Option<f64>,
    seed: u64,
    start: Instant,
    stats: Arc<Mutex<Stats>>,
}

impl Job {
    /// Sends `count` records; the number sent and the error when `send` refused one.
    async fn run(self) -> Option<(u64, Error)> {
        let mut payloads = Payloads::new(self.record_size, self.seed);
        let mut throttler = self.throughput.map(|t| Throttler::new(t, self.start));
        for i in 0..self.count {
            let record = ProducerRecord::new(self.topic.as_str()).value(payloads.next());
            let stats = self.stats.clone();
            let bytes = self.record_size;
            let sent_at = Instant::now();
            let delivered = move |result: kafka_client::Result<RecordMetadata>| {
                let latency = sent_at.elapsed();
                lock(&stats).complete(result.map(|_| ()), latency, bytes);
            };
            if let Err(e) = self.producer.send_with_callback(record, delivered).await {
                return Some((i, e));
            }
            if let Some(throttler) = throttler.as_mut() {
                if throttler.should_throttle(i, sent_at) {
                    throttler.throttle().await;
                }
            }
        }
        None
    }
}

/// Creates `topic` with `partitions` partitions unless it exists.
async fn ensure_topic(bootstrap: &str, topic: &str, partitions: i32) -> kafka_client::Result<()> {
    let admin = Admin::connect(bootstrap).await?;
    match admin.describe_topics(&[topic]).await {
        Ok(found) => {
            let existing = found.first().map_or(0, |t| t.partitions.len());
            if existing != partitions as usize {
                eprintln!(
                    "note: topic {topic} already exists with {existing} partitions; \
                     --create-partitions {partitions} has no effect"
                );
            }
            return Ok(());
        }
        Err(Error::UnknownTopicOrPartition { .. }) => {}
        Err(e) => return Err(e),
    }
    let mut new = NewTopic::with_defaults(topic);
    new.partitions = Some(partitions);
    match admin.create_topic(new).await {
        Ok(()) => eprintln!("created topic {topic} with {partitions} partition(s)"),
        Err(e) if e.kafka_code() == Some(KafkaCode::TOPIC_ALREADY_EXISTS) => {}
        Err(e) => return Err(e),
    }
    Ok(())
}

/// Prints a window line every `interval` until aborted.
async fn report_windows(stats: Arc<Mutex<Stats>>, interval: Duration) {
    let mut ticks = tokio::time::interval(interval);
    ticks.tick().await; // the first tick is immediate
    loop {
        ticks.tick().await;
        let line = lock(&stats).take_window(Instant::now());
        println!("{line}");
    }
}

fn lock(stats: &Mutex<Stats>) -> MutexGuard<'_, Stats> {
    stats.lock().unwrap_or_else(|e| e.into_inner())
}

/// Latency and throughput accounting, shaped after Java's `ProducerPerformance.Stats`.
struct Stats {
    start: Instant,
    /// Every `sampling`-th acknowledgement's latency is kept for the percentiles.
    sampling: u64,
    samples: Vec<u32>,
    count: u64,
    bytes: u64,
    total_us: u64,
    max_us: u64,
    window: Window,
    failed: u64,
    first_error: Option<String>,
}

struct Window {
    start: Instant,
    count: u64,
    bytes: u64,
    total_us: u64,
    max_us: u64,
}

impl Window {
    fn new(start: Instant) -> Self {
        Window {
            start,
            count: 0,
            bytes: 0,
            total_us: 0,
            max_us: 0,
        }
    }
}

/// Failed deliveries printed as they happen; later ones are only counted.
const ERRORS_SHOWN: u64 = 5;

impl Stats {
    fn new(num_records: u64, start: Instant) -> Self {
        let sampling = (num_records / num_records.clamp(1, MAX_SAMPLES)).max(1);
        let capacity = usize::try_from(num_records / sampling + 1).unwrap_or(0);
        Stats {
            start,
            sampling,
            samples: Vec::with_capacity(capacity),
            count: 0,
            bytes: 0,
            total_us: 0,
            max_us: 0,
            window: Window::new(start),
            failed: 0,
            first_error: None,
        }
    }

    fn complete(&mut self, result: Result<(), Error>, latency: Duration, bytes: usize) {
        if let Err(e) = result {
            self.failed += 1;
            if self.failed <= ERRORS_SHOWN {
                eprintln!("delivery failed: {e}");
                if self.failed == ERRORS_SHOWN {
                    eprintln!("(further delivery failures are only counted)");
                }
            }
            self.first_error.get_or_insert_with(|| e.to_string());
            return;
        }
        let us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        if self.count % self.sampling == 0 {
            self.samples.push(u32::try_from(us).unwrap_or(u32::MAX));
        }
        self.count += 1;
        self.bytes += bytes as u64;
        self.total_us += us;
        self.max_us = self.max_us.max(us);
        let w = &mut self.window;
        w.count += 1;
        w.bytes += bytes as u64;
        w.total_us += us;
        w.max_us = w.max_us.max(us);
    }

    /// The window line (Java's `printWindow`), starting a new window.
    fn take_window(&mut self, now: Instant) -> String {
        let w = std::mem::replace(&mut self.window, Window::new(now));
        let (rate, mb) = rates(w.count, w.bytes, now - w.start);
        format!(
            "{} records sent, {rate:.1} records/sec ({mb:.2} MB/sec), {:.1} ms avg latency, \
             {:.1} ms max latency.",
            w.count,
            avg_ms(w.total_us, w.count),
            w.max_us as f64 / 1000.0,
        )
    }

    /// The summary line (Java's `printTotal`).
    fn summary(&self, now: Instant) -> String {
        let (rate, mb) = rates(self.count, self.bytes, now - self.start);
        let mut sorted = self.samples.clone();
        sorted.sort_unstable();
        let p = |q: f64| {
            let index = (q * sorted.len() as f64) as usize;
            sorted
                .get(index.min(sorted.len().saturating_sub(1)))
                .map_or(0, |&us| (u64::from(us) + 500) / 1000)
        };
        format!(
            "{} records sent, {rate:.6} records/sec ({mb:.2} MB/sec), {:.2} ms avg latency, \
             {:.2} ms max latency, {} ms 50th, {} ms 95th, {} ms 99th, {} ms 99.9th.",
            self.count,
            avg_ms(self.total_us, self.count),
            self.max_us as f64 / 1000.0,
            p(0.5),
            p(0.95),
            p(0.99),
            p(0.999),
        )
    }
}

/// Records/sec and MiB/sec.
fn rates(count: u64, bytes: u64, elapsed: Duration) -> (f64, f64) {
    let secs = elapsed.as_secs_f64().max(1e-9);
    (count as f64 / secs, bytes as f64 / secs / (1024.0 * 1024.0))
}

fn avg_ms(total_us: u64, count: u64) -> f64 {
    if count == 0 {
        0.0
    } else {
        total_us as f64 / count as f64 / 1000.0
    }
}

/// Java's `ThroughputThrottler`: once the average rate since `start` is above the target,
/// each record adds `1 / target` seconds of sleep debt, paid in sleeps of at least 2 ms.
struct Throttler {
    start: Instant,
    target: f64,
    per_record: Duration,
    deficit: Duration,
}

impl Throttler {
    const MIN_SLEEP: Duration = Duration::from_millis(2);

    fn new(target: f64, start: Instant) -> Self {
        Throttler {
            start,
            target,
            per_record: Duration::from_secs_f64(1.0 / target),
            deficit: Duration::ZERO,
        }
    }

    fn should_throttle(&self, sent_so_far: u64, now: Instant) -> bool {
        let elapsed = now.duration_since(self.start).as_secs_f64();
        elapsed > 0.0 && sent_so_far as f64 / elapsed > self.target
    }

    async fn throttle(&mut self) {
        self.deficit += self.per_record;
        if self.deficit >= Self::MIN_SLEEP {
            tokio::time::sleep(self.deficit).await;
            self.deficit = Duration::ZERO;
        }
    }
}

/// Record values: windows into one buffer of random capital letters, generated up front.
struct Payloads {
    buffer: Bytes,
    size: usize,
    rng: u64,
}

impl Payloads {
    /// Payloads of `size` bytes; tasks with different seeds pick different windows.
    fn new(size: usize, seed: u64) -> Self {
        let mut rng = seed;
        let buffer: Vec<u8> = (0..size + PAYLOAD_SPREAD)
            .map(|_| b'A' + (splitmix64(&mut rng) % 26) as u8)
            .collect();
        Payloads {
            buffer: Bytes::from(buffer),
            size,
            rng,
        }
    }

    fn next(&mut self) -> Bytes {
        let offset = (splitmix64(&mut self.rng) % (PAYLOAD_SPREAD as u64 + 1)) as usize;
        self.buffer.slice(offset..offset + self.size)
    }
}

fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(line: &str) -> Result<Option<Args>, String> {
        parse_args(line.split_whitespace().map(str::to_owned))
    }

    #[test]
    fn java_command_lines_parse() {
        let args = parse(
            "--topic t --num-records 1000 --record-size 100 --throughput -1 \
             --producer-props bootstrap.servers=h:1 acks=all --print-metrics",
        )
        .unwrap()
        .unwrap();
        assert_eq!(args.topic, "t");
        assert_eq!(args.num_records, 1000);
        assert_eq!(args.record_size, 100);
        assert_eq!(args.throughput, None);
        assert!(args.print_metrics);
        assert_eq!(args.tasks, 1, "one sending task unless asked");
        assert_eq!(
            args.props,
            [
                ("bootstrap.servers".to_owned(), "h:1".to_owned()),
                ("acks".to_owned(), "all".to_owned())
            ]
        );
        let args = parse("--topic=t --num-records=5 --record-size=0 --throughput=2.5 --command-property=linger.ms=5 sasl.jaas.config=a=b")
            .unwrap()
            .unwrap();
        assert_eq!(args.throughput, Some(2.5));
        assert_eq!(args.props[1], ("sasl.jaas.config".into(), "a=b".into()));
        assert_eq!(parse("-h").unwrap(), None);
    }

    #[test]
    fn bad_flags_are_named() {
        for (line, expect) in [
            ("--num-records 1 --record-size 1", "--topic is required"),
            ("--topic t --num-records x --record-size 1", "--num-records"),
            (
                "--topic t --num-records 0 --record-size 1",
                "greater than zero",
            ),
            (
                "--topic t --num-records 1 --record-size 1 --throughput 0",
                "--throughput",
            ),
            (
                "--topic t --num-records 1 --record-size 1 --tasks 0",
                "--tasks must be at least 1",
            ),
            (
                "--topic --num-records 1 --record-size 1",
                "--topic needs a value",
            ),
            (
                "--topic t --num-records 1 --record-size 1 --producer-props",
                "KEY=VALUE",
            ),
            (
                "--topic t --num-records 1 --record-size 1 --producer-props acks",
                "KEY=VALUE",
            ),
            (
                "--topic t --num-records 1 --record-size 1 --payload-file f",
                "not supported",
            ),
            (
                "--topic t --num-records 1 --record-size 1 --bogus",
                "unknown flag --bogus",
            ),
        ] {
            let err = parse(line).unwrap_err();
            assert!(err.contains(expect), "{line}: {err}");
        }
    }

    #[test]
    fn summary_has_the_java_shape_and_samples_like_java() {
        let start = Instant::now();
        let mut stats = Stats::new(1_000_000, start);
        assert_eq!(stats.sampling, 2);
        for ms in 1..=1000u64 {
            stats.complete(Ok(()), Duration::from_millis(ms), 100);
        }
        stats.complete(Err(Error::InvalidArgument("x".into())), Duration::ZERO, 100);
        assert_eq!(
            (stats.count, stats.failed, stats.samples.len()),
            (1000, 1, 500)
        );
        let line = stats.summary(start + Duration::from_secs(2));
        assert_eq!(
            line,
            "1000 records sent, 500.000000 records/sec (0.05 MB/sec), 500.50 ms avg latency, \
             1000.00 ms max latency, 501 ms 50th, 951 ms 95th, 991 ms 99th, 999 ms 99.9th."
        );
        let window = stats.take_window(start + Duration::from_secs(4));
        assert_eq!(
            window,
            "1000 records sent, 250.0 records/sec (0.02 MB/sec), 500.5 ms avg latency, \
             1000.0 ms max latency."
        );
        assert!(stats
            .take_window(start + Duration::from_secs(5))
            .starts_with("0 records sent"));
    }

    #[test]
    fn throttles_only_above_the_target_rate() {
        let start = Instant::now();
        let t = Throttler::new(1000.0, start);
        assert!(!t.should_throttle(999, start + Duration::from_secs(1)));
        assert!(t.should_throttle(1001, start + Duration::from_secs(1)));
        assert!(!t.should_throttle(10, start));
    }

    #[test]
    fn payloads_are_letters_of_the_record_size() {
        let mut p = Payloads::new(100, 0);
        let (a, b) = (p.next(), p.next());
        assert_eq!((a.len(), b.len()), (100, 100));
        assert_ne!(a, b);
        assert!(a.iter().all(u8::is_ascii_uppercase));
        assert!(Payloads::new(0, 0).next().is_empty());
    }
}
