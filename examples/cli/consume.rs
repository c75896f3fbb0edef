//! `cli consume`: print records with a format string, from a group or from every partition.

use std::collections::HashMap;
use std::io::Write;
use std::time::{Duration, Instant};

use kafka_client::consumer::{Consumer, ConsumerRecord, OffsetAndMetadata, OffsetReset};
use kafka_client::TopicPartition;

use crate::args::{Args, UsageError};
use crate::{admin, Failure, Global};

/// Where a consumer without a group starts.
enum From {
    Beginning,
    End,
    Offset(i64),
    Timestamp(i64),
}

pub async fn consume(global: &Global, mut args: Args) -> Result<i32, Failure> {
    let topic = args.required("TOPIC")?;
    let mut group = None;
    let mut from = None;
    let mut count: Option<usize> = None;
    let mut format = "%v\\n".to_owned();
    let mut idle = None;
    while let Some(flag) = args.next() {
        match flag.as_str() {
            "--group" => group = Some(args.value(&flag)?),
            "--from" => from = Some(parse_from(&args.value(&flag)?)?),
            "--count" => count = Some(args.parsed(&flag)?),
            "--format" => format = args.value(&flag)?,
            "--timeout-ms" => idle = Some(Duration::from_millis(args.parsed(&flag)?)),
            other => return Err(UsageError(format!("unknown consume option {other:?}")).into()),
        }
    }
    let mut builder = Consumer::builder().bootstrap_servers(&global.bootstrap);
    for (k, v) in &global.props {
        builder = builder.set(k, v);
    }
    if let Some(g) = &group {
        // Commit exactly what was printed (not everything polled): see the end.
        builder = builder.group_id(g).enable_auto_commit(false);
        match from {
            Some(From::Beginning) => builder = builder.auto_offset_reset(OffsetReset::Earliest),
            Some(From::End) | None => builder = builder.auto_offset_reset(OffsetReset::Latest),
            Some(_) => {
                return Err(UsageError(
                    "--from OFFSET or @TIMESTAMP needs manual assignment: leave out --group".into(),
                )
                .into())
            }
        }
    }
    let mut consumer = builder.build().await?;
    if group.is_some() {
        consumer.subscribe([topic.clone()])?;
    } else {
        let described = admin(global).await?.describe_topics(&[&topic]).await?;
        let partitions: Vec<TopicPartition> = described[0]
            .partitions
            .iter()
            .map(|p| TopicPartition::new(&topic, p.partition))
            .collect();
        consumer.assign(partitions.clone())?;
        position(&consumer, &partitions, from.unwrap_or(From::Beginning)).await?;
    }

    let mut out = std::io::stdout().lock();
    let mut printed = 0usize;
    let mut next_offsets: HashMap<TopicPartition, OffsetAndMetadata> = HashMap::new();
    let mut last_record = Instant::now();
    let result = loop {
        if count.is_some_and(|n| printed >= n) {
            break Ok(0);
        }
        if idle.is_some_and(|t| last_record.elapsed() >= t) {
            break Ok(0);
        }
        let records = match consumer.poll(Duration::from_millis(200)).await {
            Ok(r) => r,
            Err(e) => break Err(Failure::Kafka(e)),
        };
        if !records.is_empty() {
            last_record = Instant::now();
        }
        for r in &records {
            if count.is_some_and(|n| printed >= n) {
                break;
            }
            if let Err(e) = out.write_all(&render(&format, r)) {
                return Err(Failure::Io(format!("writing to stdout: {e}")));
            }
            printed += 1;
            next_offsets.insert(r.topic_partition(), OffsetAndMetadata::new(r.offset + 1));
        }
        let _ = out.flush();
    };
    if group.is_some() && !next_offsets.is_empty() {
        consumer.commit_sync_offsets(next_offsets).await?;
    }
    consumer.close().await?;
    result
}

fn parse_from(raw: &str) -> Result<From, UsageError> {
    let bad = || {
        UsageError(format!(
            "--from {raw:?}: expected beginning, end, OFFSET or @TIMESTAMP_MS"
        ))
    };
    Ok(match raw {
        "beginning" => From::Beginning,
        "end" => From::End,
        ts if ts.starts_with('@') => From::Timestamp(ts[1..].parse().map_err(|_| bad())?),
        offset => From::Offset(offset.parse().map_err(|_| bad())?),
    })
}

async fn position(
    consumer: &Consumer,
    partitions: &[TopicPartition],
    from: From,
) -> Result<(), Failure> {
    match from {
        From::Beginning => consumer.seek_to_beginning(partitions)?,
        From::End => consumer.seek_to_end(partitions)?,
        From::Offset(offset) => {
            for tp in partitions {
                consumer.seek(tp, offset)?;
            }
        }
        From::Timestamp(ts) => {
            let asked: HashMap<TopicPartition, i64> =
                partitions.iter().map(|tp| (tp.clone(), ts)).collect();
            for (tp, found) in consumer.offsets_for_times(asked).await? {
                match found {
                    Some(o) => consumer.seek(&tp, o.offset)?,
                    // No record at or after the time: start at the end, as Java's tools do.
                    None => consumer.seek_to_end(std::slice::from_ref(&tp))?,
                }
            }
        }
    }
    Ok(())
}

/// Expands `%t %p %o %k %v %T %h` and the escapes `\n`, `\t`, `\\`.
fn render(format: &str, r: &ConsumerRecord) -> Vec<u8> {
    let mut out = Vec::with_capacity(format.len() + r.value.as_ref().map_or(0, |v| v.len()));
    let mut chars = format.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, chars.peek().copied()) {
            ('%', Some(spec)) if "tpokvTh%".contains(spec) => {
                chars.next();
                match spec {
                    't' => out.extend_from_slice(r.topic.as_bytes()),
                    'p' => out.extend_from_slice(r.partition.to_string().as_bytes()),
                    'o' => out.extend_from_slice(r.offset.to_string().as_bytes()),
                    'k' => out.extend_from_slice(r.key.as_deref().unwrap_or_default()),
                    'v' => out.extend_from_slice(r.value.as_deref().unwrap_or_default()),
                    'T' => out.extend_from_slice(r.timestamp.to_string().as_bytes()),
                    'h' => {
                        let headers: Vec<String> = r
                            .headers
                            .iter()
                            .map(|h| {
                                let v = h
                                    .value
                                    .as_deref()
                                    .map(String::from_utf8_lossy)
                                    .unwrap_or_default();
                                format!("{}={v}", h.key)
                            })
                            .collect();
                        out.extend_from_slice(headers.join(",").as_bytes());
                    }
                    _ => out.push(b'%'),
                }
            }
            ('\\', Some(esc)) if "nt\\".contains(esc) => {
                chars.next();
                out.push(match esc {
                    'n' => b'\n',
                    't' => b'\t',
                    _ => b'\\',
                });
            }
            (c, _) => {
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
        }
    }
    out
}
