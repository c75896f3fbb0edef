//! The producer's hot path: what `Producer::send` costs the caller per record, through the
//! public API, with a real broker taking the data.
//!
//! ```text
//! scripts/kafka.sh start
//! cargo bench --bench producer                 # all six: {none,lz4,zstd} x {keyless,keyed}
//! cargo bench --bench producer -- zstd/keyed   # one of them
//! ```
//!
//! Each timed iteration builds a `ProducerRecord` (topic, 100-byte value, and for the keyed
//! variants a key from a set of 1024) and awaits `send`, which partitions the record, takes
//! its `buffer.memory` and appends it to its partition's open batch. Delivery is not timed:
//! after each sample the bench flushes and checks every delivery outcome with the clock
//! stopped. `linger.ms=1000` keeps partial batches open, and `buffer.memory` is large enough
//! that `send` never waits for the broker, so the number is the enqueue cost, not the
//! broker's throughput. Full batches are still closed (compressed) and sent by the producer's
//! sender task while the loop runs, as in real use; on a small machine that task competes
//! with the loop for CPU, which is part of what a producing application pays.
//!
//! The codec cost of closing one batch is measured on its own in `benches/records.rs`.
//!
//! The broker is found through `$KAFKA_BOOTSTRAP` (default `127.0.0.1:9092`); without one the
//! bench exits with an error naming `scripts/kafka.sh start`. It creates a 6-partition topic
//! of its own and deletes it at the end. A full run takes about a minute; `cargo test
//! --all-targets` runs each case once.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{BenchmarkId, Criterion, Throughput};
use kafka_client::admin::{Admin, NewTopic};
use kafka_client::producer::{Producer, ProducerRecord};
use tokio::runtime::Runtime;

const PARTITIONS: i32 = 6;
const VALUE_SIZE: usize = 100;
const DISTINCT_VALUES: usize = 64;
const DISTINCT_KEYS: usize = 1024;
/// Far more than a sample enqueues, so `send` never waits for buffer space.
const BUFFER_MEMORY: &str = "1073741824";

/// The broker and the bench's topic, set up by the first case that runs (so `--list` and
/// filtered-out cases need no broker).
struct Broker {
    bootstrap: String,
    admin: Admin,
    topic: String,
}

static BROKER: OnceLock<Broker> = OnceLock::new();

fn broker(rt: &Runtime) -> &'static Broker {
    BROKER.get_or_init(|| rt.block_on(connect()))
}

async fn connect() -> Broker {
    let bootstrap =
        std::env::var("KAFKA_BOOTSTRAP").unwrap_or_else(|_| "127.0.0.1:9092".to_owned());
    let admin =
        match tokio::time::timeout(Duration::from_secs(20), Admin::connect(&bootstrap)).await {
            Ok(Ok(admin)) => admin,
            Ok(Err(e)) => no_broker(&bootstrap, &e.to_string()),
            Err(_) => no_broker(&bootstrap, "no answer within 20 s"),
        };
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    let topic = format!("bench-producer-{}-{stamp}", std::process::id());
    // Bounded retention in case the bench dies before deleting its topic.
    let mut new = NewTopic::with_defaults(&topic)
        .config("retention.bytes", "268435456")
        .config("segment.bytes", "67108864");
    new.partitions = Some(PARTITIONS);
    if let Err(e) = admin.create_topic(new).await {
        fail(&format!("creating topic {topic} on {bootstrap}"), &e);
    }
    Broker {
        bootstrap,
        admin,
        topic,
    }
}

fn no_broker(bootstrap: &str, why: &str) -> ! {
    eprintln!(
        "producer bench: no Kafka broker at {bootstrap} ({why}).\n\
         Start one with `scripts/kafka.sh start`, or point KAFKA_BOOTSTRAP at a broker."
    );
    std::process::exit(1)
}

fn fail(what: &str, e: &kafka_client::Error) -> ! {
    eprintln!("producer bench: {what}: {e}");
    std::process::exit(1)
}

/// What the timed loop sends: values (random capital letters) and keys, cycled.
struct Data {
    topic: String,
    values: Vec<Bytes>,
    keys: Option<Vec<Bytes>>,
}

impl Data {
    fn new(topic: &str, keyed: bool) -> Self {
        let mut state = 0x5EED_u64;
        let mut letter = move || {
            // xorshift64: cheap, deterministic, good enough for payload bytes.
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            b'A' + (state % 26) as u8
        };
        let values = (0..DISTINCT_VALUES)
            .map(|_| Bytes::from((0..VALUE_SIZE).map(|_| letter()).collect::<Vec<u8>>()))
            .collect();
        let keys = keyed.then(|| {
            (0..DISTINCT_KEYS)
                .map(|i| Bytes::from(format!("key-{i}")))
                .collect()
        });
        Data {
            topic: topic.to_owned(),
            values,
            keys,
        }
    }
}

async fn start_producer(bootstrap: &str, codec: &str) -> Producer {
    Producer::builder()
        .bootstrap_servers(bootstrap)
        .set("linger.ms", "1000")
        .set("buffer.memory", BUFFER_MEMORY)
        .set("compression.type", codec)
        .build()
        .await
        .unwrap_or_else(|e| fail(&format!("starting a {codec} producer"), &e))
}

/// Sends `iters` records and returns the time the sends took; delivery is awaited and
/// checked afterwards, off the clock.
async fn send_timed(producer: Producer, data: Arc<Data>, iters: u64) -> Duration {
    let n = usize::try_from(iters).unwrap_or(usize::MAX);
    let mut pending = Vec::with_capacity(n);
    let start = Instant::now();
    for i in 0..n {
        let mut record = ProducerRecord::new(data.topic.as_str())
            .value(data.values[i % DISTINCT_VALUES].clone());
        if let Some(keys) = &data.keys {
            record = record.key(keys[i % DISTINCT_KEYS].clone());
        }
        match producer.send(record).await {
            Ok(delivery) => pending.push(delivery),
            Err(e) => fail("send", &e),
        }
    }
    let elapsed = start.elapsed();
    if let Err(e) = producer.flush().await {
        fail("flush", &e);
    }
    for delivery in pending {
        if let Err(e) = delivery.await {
            fail("delivery", &e);
        }
    }
    elapsed
}

fn send(c: &mut Criterion, rt: &Runtime) {
    let mut group = c.benchmark_group("producer_send");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .throughput(Throughput::Elements(1));
    for codec in ["none", "lz4", "zstd"] {
        for keyed in [false, true] {
            let id = BenchmarkId::new(codec, if keyed { "keyed" } else { "keyless" });
            let mut setup: Option<(Producer, Arc<Data>)> = None;
            group.bench_function(id, |b| {
                let (producer, data) = setup.get_or_insert_with(|| {
                    let broker = broker(rt);
                    let producer = rt.block_on(start_producer(&broker.bootstrap, codec));
                    (producer, Arc::new(Data::new(&broker.topic, keyed)))
                });
                b.to_async(rt)
                    .iter_custom(|iters| send_timed(producer.clone(), data.clone(), iters));
            });
            if let Some((producer, _)) = setup {
                rt.block_on(producer.close(Duration::from_secs(30)));
            }
        }
    }
    group.finish();
}

fn main() {
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("producer bench: cannot start a tokio runtime: {e}");
            std::process::exit(1);
        }
    };
    // No HTML plots: drawing them takes longer than measuring a case on a small machine.
    let mut c = Criterion::default().without_plots().configure_from_args();
    send(&mut c, &rt);
    c.final_summary();
    if let Some(broker) = BROKER.get() {
        if let Err(e) = rt.block_on(broker.admin.delete_topics(&[broker.topic.as_str()])) {
            eprintln!(
                "producer bench: could not delete topic {}: {e}",
                broker.topic
            );
        }
    }
}
