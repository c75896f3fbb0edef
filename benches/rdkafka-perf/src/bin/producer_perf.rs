//! librdkafka's producer (through the `rdkafka` crate's `BaseProducer`) behind the flags and
//! the output lines of kafka-client's `examples/producer_perf.rs`, which are those of Java's
//! `kafka-producer-perf-test` (`org.apache.kafka.tools.ProducerPerformance`, Kafka 4.3):
//!
//! ```text
//! rdkafka-producer-perf --topic perf-a --num-records 1000000 --record-size 100 \
//!     --throughput -1 --producer-props bootstrap.servers=127.0.0.1:9092 acks=1
//! 1000000 records sent, 499550.449550 records/sec (47.64 MB/sec), 40.87 ms avg latency, 210.34 ms max latency, 38 ms 50th, 80 ms 95th, 120 ms 99th, 200 ms 99.9th.
//! ```
//!
//! `--producer-props` go to librdkafka unchanged, so they use librdkafka's names where they
//! differ from Java's (`queue.buffering.max.kbytes` for `buffer.memory`); librdkafka rejects
//! what it does not know.
//!
//! How it drives librdkafka: the main thread sends (`rd_kafka_producev` with a copied
//! payload) and the rdkafka crate's `ThreadedProducer` serves delivery reports on its own
//! polling thread, as the Java client runs callbacks on its I/O thread, so that reports are
//! timed when they arrive even while the sender sleeps. When librdkafka's queue is full
//! (`queue.buffering.max.kbytes`, Java's `buffer.memory`) the sender sleeps 1 ms and retries,
//! where Java's `send` would block until space frees. (Waiting in `BaseProducer::poll`
//! instead would spin: the crate's poll loops until its deadline and rounds the remaining
//! wait down to whole milliseconds, so sub-millisecond waits poll without blocking.)
//! Latency runs from just before the send to the delivery report, timed in microseconds; the
//! rest (sampling, percentiles, rates, throttling, payloads) is the code of
//! `examples/producer_perf.rs`.
//!
//! Exit status: 0 when every record was acknowledged, 1 when any failed or the producer could
//! not start, 2 for bad flags.

use std::process::ExitCode;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::ClientContext;
use rdkafka_perf::{key_value, number, Payloads, Stats, Throttler};

const USAGE: &str = "\
usage: rdkafka-producer-perf --topic TOPIC --num-records N --record-size BYTES
                             [--throughput RECORDS_PER_SEC] [--bootstrap-server HOST:PORT,...]
                             [--producer-props KEY=VALUE ...] [--reporting-interval MS]
                             [--print-metrics]

  --topic TOPIC             topic to produce to (create it first)
  --num-records N           number of records to send (> 0)
  --record-size BYTES       value size of each (keyless) record
  --throughput R            at most about R records/sec; -1 (default) for no limit
  --bootstrap-server LIST   brokers; default $KAFKA_BOOTSTRAP or 127.0.0.1:9092; wins over
                            bootstrap.servers given in --producer-props
  --producer-props K=V ...  librdkafka properties (acks=1 linger.ms=5 ...), any number;
                            --command-property is the same flag
  --reporting-interval MS   interval of the window lines, default 5000
  --print-metrics           accepted for compatibility with the Java tool, ignored
  -h, --help                print this text
";

struct Args {
    bootstrap: Option<String>,
    topic: String,
    num_records: u64,
    record_size: usize,
    throughput: Option<f64>,
    props: Vec<(String, String)>,
    reporting_interval: Duration,
}

fn parse_args(argv: impl IntoIterator<Item = String>) -> Result<Option<Args>, String> {
    let (mut bootstrap, mut topic, mut num_records, mut record_size) = (None, None, None, None);
    let mut throughput = None;
    let mut props = Vec::new();
    let mut reporting_interval = Duration::from_millis(5000);
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
            "--reporting-interval" => {
                let ms: u64 = number(&flag, &value()?)?;
                reporting_interval = Duration::from_millis(ms.max(1));
            }
            "--print-metrics" => {}
            "--producer-props" | "--command-property" => {
                let mut given: Vec<String> = inline.clone().into_iter().collect();
                while let Some(next) = argv.next_if(|next| !next.starts_with("--")) {
                    given.push(next);
                }
                if given.is_empty() {
                    return Err(format!("{flag} needs at least one KEY=VALUE"));
                }
                for prop in given {
                    props.push(key_value(&flag, &prop)?);
                }
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
        reporting_interval,
    }))
}

/// Delivery reports land here, on the producer's polling thread.
struct Context {
    start: Instant,
    record_size: usize,
    stats: Mutex<Stats>,
}

impl Context {
    fn stats(&self) -> MutexGuard<'_, Stats> {
        self.stats.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl ClientContext for Context {}

impl ProducerContext for Context {
    /// Microseconds from `start` to the send.
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, sent_at_us: usize) {
        let latency = self
            .start
            .elapsed()
            .saturating_sub(Duration::from_micros(sent_at_us as u64));
        let result = result.as_ref().map(|_| ()).map_err(|(e, _)| e.to_string());
        self.stats().complete(result, latency, self.record_size);
    }
}

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    if argv.is_empty() {
        eprint!("{USAGE}");
        return ExitCode::from(2);
    }
    match parse_args(argv) {
        Ok(Some(args)) => run(args),
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

fn run(args: Args) -> ExitCode {
    let mut config = ClientConfig::new();
    config.set("client.id", "perf-producer-client");
    for (k, v) in &args.props {
        config.set(k, v);
    }
    // As in Java: the flag wins over bootstrap.servers in the properties.
    let bootstrap = args
        .bootstrap
        .clone()
        .or_else(|| config.get("bootstrap.servers").map(str::to_owned))
        .or_else(|| std::env::var("KAFKA_BOOTSTRAP").ok())
        .unwrap_or_else(|| "127.0.0.1:9092".to_owned());
    config.set("bootstrap.servers", &bootstrap);

    let mut payloads = Payloads::new(args.record_size);
    let start = Instant::now();
    let context = Context {
        start,
        record_size: args.record_size,
        stats: Mutex::new(Stats::new(args.num_records, start)),
    };
    let producer: ThreadedProducer<Context> = match config.create_with_context(context) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: cannot start a producer on {bootstrap}: {e}");
            return ExitCode::from(match e {
                KafkaError::ClientConfig(..) => 2,
                _ => 1,
            });
        }
    };
    let context = producer.context();
    let mut throttler = args.throughput.map(|t| Throttler::new(t, start));

    let mut refused = None;
    let mut next_window = start + args.reporting_interval;
    'records: for i in 0..args.num_records {
        let payload = payloads.next_value();
        let mut sent_at = Instant::now();
        let mut record = BaseRecord::<[u8], [u8], usize>::with_opaque_to(
            &args.topic,
            sent_at.duration_since(start).as_micros() as usize,
        )
        .payload(payload);
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    // Java's send() blocks here (buffer.memory). The wait counts in the
                    // latency, as in Java and kafka-client.
                    record = back;
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err((e, _)) => {
                    refused = Some((i, e));
                    break 'records;
                }
            }
        }
        if let Some(throttler) = throttler.as_mut() {
            if throttler.should_throttle(i, sent_at) {
                if let Some(pause) = throttler.throttle() {
                    std::thread::sleep(pause);
                    sent_at = Instant::now();
                }
            }
        }
        if sent_at >= next_window {
            println!("{}", context.stats().take_window(sent_at));
            next_window = sent_at + args.reporting_interval;
        }
    }
    // librdkafka's flush() waits in 100 ms steps and would stretch the run's end; wait finer.
    let flush_deadline = Instant::now() + Duration::from_secs(120);
    while producer.in_flight_count() > 0 && Instant::now() < flush_deadline {
        std::thread::sleep(Duration::from_millis(1));
    }
    let unflushed = producer.in_flight_count();
    let end = Instant::now();

    let stats = context.stats();
    println!("{}", stats.summary(end));
    let mut ok = true;
    if let Some((sent, e)) = refused {
        eprintln!(
            "error: stopped after {sent} of {} records: send refused: {e}",
            args.num_records
        );
        ok = false;
    }
    if unflushed > 0 {
        eprintln!("error: {unflushed} record(s) still unacknowledged after 120 s");
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
