//! The order-events demo: five microservices talking through Kafka, all in one process.
//!
//! ```text
//!  order ──OrderCreated──▶ [orders] ──▶ payment ──PaymentSucceeded / PaymentFailed──▶ [payments]
//!                             │                                                        │
//!                             ▼                                                        │
//!                         inventory ◀──────────────────────────────────────────────────┤
//!                  reserve, then deduct or release                                     │
//!                                         [shipments] ◀──OrderShipped── shipping ◀─────┤
//!                                              │                      (paid orders)    │
//!                                              └──────────▶ notification ◀─────────────┘
//! ```
//!
//! ```text
//! scripts/demo.sh                                    # starts a broker if needed, runs this
//! cargo run --example order_events -- --orders 1000  # against a running broker
//! ```
//!
//! The order service publishes N orders; each other service runs as its own consumer group
//! with two members (tasks here, processes or pods in real life). Records are keyed by order
//! id, carry JSON values and `event-type`, `correlation-id` and `run-id` headers
//! (`events.rs`). Members commit after handling (at-least-once, `runner.rs`) and services
//! ignore events they handled before (`services.rs`, `inventory.rs`). A progress line is
//! printed every second (`progress.rs`); at the end, counts and consistency checks
//! (`summary.rs`). The exit status is 0 when every check passed, 1 otherwise (a check failed,
//! an error, nothing moved for `--timeout`, Ctrl-C), 2 for bad flags.
//!
//! Running it again on the same broker: the topics (`orders`, `payments`, `shipments`) and
//! groups (`payment-service`...) are fixed names, as in a real installation, so a second run
//! continues from the offsets the first one committed. Every event carries its run's id and
//! services skip other runs' events, so leftovers of an interrupted run do not disturb the
//! counts. Two runs at the same time need different `--prefix`es (tests use one per run).

mod events;
mod inventory;
mod orders;
mod progress;
mod runner;
mod services;
mod summary;

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kafka_client::admin::{Admin, NewTopic};
use kafka_client::producer::Producer;
use kafka_client::KafkaCode;
use tokio::sync::watch;
use tokio::task::JoinSet;

use events::{prefixed, Topics};
use orders::{OrderCounts, OrderService};
use progress::Sources;
use runner::{Member, ServiceStats};
use services::Services;

/// The error type of the demo's fallible steps (Kafka errors, JSON errors...).
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

const USAGE: &str = "\
usage: order_events [--orders N] [--bootstrap LIST] [--prefix P] [--members N]
                    [--partitions N] [--resend-every N] [--timeout SECS]

  --orders N        orders to run through the services (default 1000)
  --bootstrap LIST  brokers; default $KAFKA_BOOTSTRAP or 127.0.0.1:9092
  --prefix P        topics and groups named P-orders, P-payment-service...; default none
  --members N       consumers per service group (default 2)
  --partitions N    partitions of each topic the demo creates (default 6)
  --resend-every N  send every N-th order twice, to show duplicates ignored (default 100, 0 off)
  --timeout SECS    give up when nothing moves for SECS seconds (default 30)
  -h, --help        print this text
";

struct Args {
    orders: u64,
    bootstrap: String,
    prefix: String,
    members: usize,
    partitions: i32,
    resend_every: u64,
    timeout: Duration,
}

fn parse_args() -> Result<Option<Args>, String> {
    let mut args = Args {
        orders: 1000,
        bootstrap: std::env::var("KAFKA_BOOTSTRAP").unwrap_or_else(|_| "127.0.0.1:9092".into()),
        prefix: String::new(),
        members: 2,
        partitions: 6,
        resend_every: 100,
        timeout: Duration::from_secs(30),
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
            "--orders" => args.orders = number(1)?,
            "--bootstrap" => args.bootstrap = value,
            "--prefix" => args.prefix = value,
            "--members" => args.members = number(1)? as usize,
            "--partitions" => args.partitions = number(1)?.min(10_000) as i32,
            "--resend-every" => args.resend_every = number(0)?,
            "--timeout" => args.timeout = Duration::from_secs(number(1)?),
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    Ok(Some(args))
}

#[tokio::main]
async fn main() -> ExitCode {
    // RUST_LOG=kafka_client=debug shows what the client does underneath.
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let args = match parse_args() {
        Ok(Some(args)) => args,
        Ok(None) => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("order_events: {e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(args).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("order_events: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Runs the story; `Ok(false)` when it ended but a consistency check failed.
async fn run(args: Args) -> Result<bool, BoxError> {
    let topics = Topics::new(&args.prefix);
    create_topics(&args, &topics).await?;
    let run_id = orders::new_run_id();
    println!(
        "order-events run {run_id}: {} orders, topics {}, {} members per service group",
        args.orders,
        topics.all().join(", "),
        args.members
    );

    // The consuming services first: each a consumer group of `members` tasks.
    let services = Services::new(args.orders);
    let (stop, stopped) = watch::channel(false);
    let mut tasks: JoinSet<Result<(), BoxError>> = JoinSet::new();
    let mut producers = Vec::new();
    let mut stats = Vec::new();
    for service in services.all() {
        let service_stats = Arc::new(ServiceStats::new(args.members));
        stats.push((service.name(), service_stats.clone()));
        // One producer per publishing service, shared by its members (clones are cheap).
        let producer = if service.publishes() {
            let producer = Producer::builder()
                .bootstrap_servers(&args.bootstrap)
                .client_id(&format!("{}-service", service.name()))
                .build()
                .await?;
            producers.push(producer.clone());
            Some(producer)
        } else {
            None
        };
        for index in 0..args.members {
            let member = Member {
                service: service.clone(),
                stats: service_stats.clone(),
                index,
                bootstrap: args.bootstrap.clone(),
                group_id: prefixed(&args.prefix, &format!("{}-service", service.name())),
                topics: topics.clone(),
                run_id: run_id.clone(),
                producer: producer.clone(),
            };
            tasks.spawn(member.run(stopped.clone()));
        }
    }

    // Then the orders.
    let order_counts = Arc::new(OrderCounts::default());
    let order_producer = Producer::builder()
        .bootstrap_servers(&args.bootstrap)
        .client_id("order-service")
        .build()
        .await?;
    producers.push(order_producer.clone());
    let started = Instant::now();
    tasks.spawn(
        OrderService {
            producer: order_producer,
            topic: topics.orders.clone(),
            run_id: run_id.clone(),
            orders: args.orders,
            resend_every: args.resend_every,
            counts: order_counts.clone(),
        }
        .run(),
    );

    let sources = Sources {
        orders: &order_counts,
        services: &services,
        stats: &stats,
    };
    let outcome = progress::watch(&sources, args.orders, args.timeout, started, &mut tasks).await;
    let elapsed = started.elapsed();

    // Graceful shutdown: members finish their batch, commit, close their consumers (leaving
    // the groups); then the producers deliver anything left and close. A second Ctrl-C skips
    // it (the runtime now handles SIGINT, so it would not end the process by itself).
    tokio::spawn(async {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!("order_events: interrupted again; exiting without a clean shutdown");
            std::process::exit(130);
        }
    });
    let _ = stop.send(true);
    let mut failure = outcome.err();
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok(Ok(())) => {}
            Ok(Err(e)) => failure = failure.or(Some(e)),
            Err(e) => failure = failure.or(Some(e.into())),
        }
    }
    for producer in producers {
        producer.close(Duration::from_secs(10)).await;
    }
    let passed = summary::report(&sources, args.orders, elapsed);
    match failure {
        Some(e) => Err(e),
        None => Ok(passed),
    }
}

/// Creates the topics with `--partitions` partitions; existing ones are used as they are.
async fn create_topics(args: &Args, topics: &Topics) -> Result<(), BoxError> {
    let admin = Admin::connect(&args.bootstrap).await?;
    for topic in topics.all() {
        // The broker's default replication factor: 1 on the local broker.
        let new_topic = NewTopic {
            partitions: Some(args.partitions),
            ..NewTopic::with_defaults(topic)
        };
        match admin.create_topic(new_topic).await {
            Ok(()) => {}
            Err(e) if e.kafka_code() == Some(KafkaCode::TOPIC_ALREADY_EXISTS) => {}
            Err(e) => return Err(format!("creating topic {topic}: {e}").into()),
        }
    }
    Ok(())
}
