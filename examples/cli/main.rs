//! A command-line tool over kafka-client: produce and consume records, manage topics, look
//! at consumer groups.
//!
//! ```text
//! cargo run --example cli -- topics create orders --partitions 6
//! printf 'k1:hello\nk2:world\n' | cargo run --example cli -- produce orders --key-separator :
//! cargo run --example cli -- consume orders --from beginning --count 2 --format '%k=%v\n'
//! cargo run --example cli -- groups describe payments
//! cargo run --example cli -- topics describe orders
//! ```
//! Run it without arguments for the full usage.

mod args;
mod consume;
mod groups;

use std::io::{BufRead, BufReader, Read};
use std::time::Duration;

use args::{key_value, Args, UsageError, USAGE, USAGE_EXIT};
use futures::future::join_all;
use kafka_client::admin::{Admin, NewTopic};
use kafka_client::config::ClientConfig;
use kafka_client::producer::{Producer, ProducerRecord};
use kafka_client::Error;

/// Global options: where the cluster is and extra client properties.
pub struct Global {
    pub bootstrap: String,
    pub props: Vec<(String, String)>,
}

#[tokio::main]
async fn main() {
    let code = match run(Args::new(std::env::args().skip(1))).await {
        Ok(code) => code,
        Err(Failure::Usage(UsageError(msg))) => {
            eprintln!("error: {msg}\n\n{USAGE}");
            USAGE_EXIT
        }
        Err(Failure::Kafka(e @ Error::Config { .. })) => {
            eprintln!("error: {e}");
            USAGE_EXIT
        }
        Err(Failure::Kafka(e)) => {
            eprintln!("error: {e}");
            1
        }
        Err(Failure::Io(msg)) => {
            eprintln!("error: {msg}");
            1
        }
    };
    std::process::exit(code);
}

pub enum Failure {
    Usage(UsageError),
    Kafka(Error),
    Io(String),
}

impl From<UsageError> for Failure {
    fn from(e: UsageError) -> Self {
        Failure::Usage(e)
    }
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        Failure::Kafka(e)
    }
}

async fn run(mut args: Args) -> Result<i32, Failure> {
    let mut global = Global {
        bootstrap: std::env::var("KAFKA_BOOTSTRAP").unwrap_or_else(|_| "127.0.0.1:9092".into()),
        props: Vec::new(),
    };
    loop {
        match args.peek() {
            Some("-b" | "--bootstrap-server") => {
                let flag = args.next().unwrap_or_default();
                global.bootstrap = args.value(&flag)?;
            }
            Some("-X") => {
                args.next();
                let raw = args.value("-X")?;
                global.props.push(key_value("-X", &raw)?);
            }
            Some("-h" | "--help") | None => {
                println!("{USAGE}");
                return Ok(if args.peek().is_none() { USAGE_EXIT } else { 0 });
            }
            Some(_) => break,
        }
    }
    let command = args.required("command")?;
    match command.as_str() {
        "produce" => produce(&global, args).await,
        "topics" => topics(&global, args).await,
        "consume" => consume::consume(&global, args).await,
        "groups" => groups::groups(&global, args).await,
        other => Err(UsageError(format!("unknown command {other:?}")).into()),
    }
}

/// An admin client with the shared properties among `-X` (the others are for producers and
/// consumers and are ignored here).
pub async fn admin(global: &Global) -> Result<Admin, Failure> {
    let mut config = ClientConfig::new(&global.bootstrap);
    for (k, v) in &global.props {
        if let Ok(next) = config.clone().set(k, v) {
            config = next;
        }
    }
    Ok(Admin::with_config(config.set("bootstrap.servers", &global.bootstrap)?).await?)
}

async fn produce(global: &Global, mut args: Args) -> Result<i32, Failure> {
    let topic = args.required("TOPIC")?;
    let mut file = None;
    let mut separator = None;
    let mut headers = Vec::new();
    let mut partition = None;
    let mut builder = Producer::builder().bootstrap_servers(&global.bootstrap);
    for (k, v) in &global.props {
        builder = builder.set(k, v);
    }
    while let Some(flag) = args.next() {
        match flag.as_str() {
            "--file" => file = Some(args.value(&flag)?),
            "--key-separator" => separator = Some(args.value(&flag)?),
            "--header" => headers.push(key_value(&flag, &args.value(&flag)?)?),
            "--partition" => partition = Some(args.parsed::<i32>(&flag)?),
            "--compression" => builder = builder.set("compression.type", &args.value(&flag)?),
            other => return Err(UsageError(format!("unknown produce option {other:?}")).into()),
        }
    }
    let input: Box<dyn Read> = match &file {
        Some(path) => Box::new(
            std::fs::File::open(path)
                .map_err(|e| Failure::Io(format!("cannot open {path}: {e}")))?,
        ),
        None => Box::new(std::io::stdin()),
    };
    let producer = builder.build().await?;
    let mut deliveries = Vec::new();
    // A bad line stops reading, but what was already sent is still delivered and reported.
    let mut stopped = None;
    for (n, line) in BufReader::new(input).lines().enumerate() {
        let line = match line {
            Ok(line) => line,
            Err(e) => {
                stopped = Some(Failure::Io(format!("reading line {}: {e}", n + 1)));
                break;
            }
        };
        let mut record = ProducerRecord::new(&topic);
        match separator.as_deref() {
            Some(sep) => match line.split_once(sep) {
                Some((key, value)) => record = record.key(key.to_owned()).value(value.to_owned()),
                None => {
                    let msg = format!("line {} has no key separator {sep:?}", n + 1);
                    stopped = Some(UsageError(msg).into());
                    break;
                }
            },
            None => record = record.value(line),
        }
        for (k, v) in &headers {
            record = record.header(k.clone(), v.clone());
        }
        if let Some(p) = partition {
            record = record.partition(p);
        }
        match producer.send(record).await {
            Ok(delivery) => deliveries.push(delivery),
            Err(e) => {
                stopped = Some(e.into());
                break;
            }
        }
    }
    let total = deliveries.len();
    let mut failed = 0;
    for (n, result) in join_all(deliveries).await.into_iter().enumerate() {
        match result {
            Ok(meta) => eprintln!(
                "line {}: {}-{}@{}",
                n + 1,
                meta.topic,
                meta.partition,
                meta.offset
            ),
            Err(e) => {
                failed += 1;
                eprintln!("line {}: not delivered: {e}", n + 1);
            }
        }
    }
    producer.close(Duration::from_secs(30)).await;
    eprintln!(
        "{} of {total} record(s) delivered to {topic}",
        total - failed
    );
    match stopped {
        Some(failure) => Err(failure),
        None => Ok(if failed == 0 { 0 } else { 1 }),
    }
}

async fn topics(global: &Global, mut args: Args) -> Result<i32, Failure> {
    let action = args.required("topics action (list, describe, create, delete)")?;
    let admin = admin(global).await?;
    match action.as_str() {
        "list" => {
            for name in admin.list_topics().await? {
                println!("{name}");
            }
        }
        "describe" => {
            let mut names = args.rest();
            if names.is_empty() {
                names = admin.list_topics().await?;
            }
            let names: Vec<&str> = names.iter().map(String::as_str).collect();
            for t in admin.describe_topics(&names).await? {
                println!(
                    "Topic: {}\tTopicId: {}\tPartitionCount: {}",
                    t.name,
                    t.id,
                    t.partitions.len()
                );
                for p in &t.partitions {
                    let list =
                        |ids: &[i32]| ids.iter().map(i32::to_string).collect::<Vec<_>>().join(",");
                    println!(
                        "\tPartition: {}\tLeader: {}\tLeaderEpoch: {}\tReplicas: {}\tIsr: {}",
                        p.partition,
                        p.leader.map_or("none".to_owned(), |l| l.to_string()),
                        p.leader_epoch,
                        list(&p.replicas),
                        list(&p.isr)
                    );
                }
            }
        }
        "create" => {
            let name = args.required("TOPIC")?;
            let mut topic = NewTopic::with_defaults(&name);
            while let Some(flag) = args.next() {
                match flag.as_str() {
                    "--partitions" => topic.partitions = Some(args.parsed(&flag)?),
                    "--replication-factor" => topic.replication_factor = Some(args.parsed(&flag)?),
                    "--config" => {
                        let (k, v) = key_value(&flag, &args.value(&flag)?)?;
                        topic = topic.config(k, v);
                    }
                    other => {
                        return Err(
                            UsageError(format!("unknown topics create option {other:?}")).into(),
                        )
                    }
                }
            }
            admin.create_topic(topic).await?;
            println!("created topic {name}");
        }
        "delete" => {
            let names = args.rest();
            if names.is_empty() {
                return Err(UsageError("topics delete needs at least one TOPIC".into()).into());
            }
            let refs: Vec<&str> = names.iter().map(String::as_str).collect();
            admin.delete_topics(&refs).await?;
            println!("deleted {}", names.join(", "));
        }
        other => return Err(UsageError(format!("unknown topics action {other:?}")).into()),
    }
    Ok(0)
}
