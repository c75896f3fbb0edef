//! Cross-client check of the record-batch codec against the Java client's own classes
//! (`kafka-clients` of the Kafka release `scripts/kafka.sh` fetches), without a broker:
//!
//! - batches the Java client builds, with every codec and magic 0, 1 and 2, decode here to
//!   exactly what the Java client's reader sees;
//! - batches built here, with every codec, pass the Java reader's CRC check and decode there
//!   to exactly what this crate's reader sees.
//!
//! Both sides print batches in the same canonical text (`tests/java/RecordsInterop.java`).
//! Needs `java` and `javac` (17+) and the release's jars: `KAFKA_LIBS`, or the `libs`
//! directory `scripts/kafka.sh` caches under `~/.cache/kafka-client/`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use bytes::Bytes;
use kafka_client::protocol::records::{
    rewrite_producer_state, Compression, ProducerState, RecordBatchBuilder, RecordBatches,
    TimestampType, DEFAULT_MAX_DECOMPRESSED_SIZE,
};
use kafka_client::Header;

const CODECS: [Compression; 5] = [
    Compression::None,
    Compression::Gzip { level: None },
    Compression::Snappy,
    Compression::Lz4 { level: None },
    Compression::Zstd { level: None },
];

fn kafka_libs() -> PathBuf {
    if let Ok(dir) = std::env::var("KAFKA_LIBS") {
        return PathBuf::from(dir);
    }
    let cache = PathBuf::from(std::env::var("HOME").expect("HOME")).join(".cache/kafka-client");
    let release = std::fs::read_dir(&cache)
        .ok()
        .and_then(|dirs| {
            dirs.filter_map(Result::ok)
                .map(|d| d.path().join("libs"))
                .filter(|libs| libs.is_dir())
                .max()
        })
        .unwrap_or_else(|| {
            panic!(
                "no Kafka release under {}: run `scripts/kafka.sh` once, or set KAFKA_LIBS to a \
                 Kafka 4.x libs directory",
                cache.display()
            )
        });
    release
}

/// The client jar and its codec libraries; not the whole release, whose logging jars clash.
fn classpath(libs: &Path, extra: &Path) -> String {
    let mut parts = vec![extra.display().to_string()];
    for prefix in [
        "kafka-clients-",
        "lz4-java-",
        "snappy-java-",
        "zstd-jni-",
        "slf4j-api-",
    ] {
        let jar = std::fs::read_dir(libs)
            .expect("read the libs directory")
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| {
                let name = p.file_name().and_then(|n| n.to_str()).unwrap_or_default();
                name.starts_with(prefix) && name.ends_with(".jar")
            })
            .max()
            .unwrap_or_else(|| panic!("no {prefix}*.jar in {}", libs.display()));
        parts.push(jar.display().to_string());
    }
    parts.join(":")
}

fn run(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

fn hex(bytes: Option<&[u8]>) -> String {
    match bytes {
        None => "null".to_owned(),
        Some(b) => b.iter().map(|x| format!("{x:02x}")).collect(),
    }
}

/// This crate's reading of a batch file, in RecordsInterop.java's canonical form.
fn dump(data: Bytes) -> String {
    let mut out = String::new();
    let mut batches = RecordBatches::new(data);
    for batch in batches.by_ref() {
        let batch = batch.expect("a well-formed batch");
        batch.validate_crc().expect("a valid CRC");
        let tstype = match batch.timestamp_type() {
            TimestampType::NoTimestamp => -1,
            TimestampType::CreateTime => 0,
            TimestampType::LogAppendTime => 1,
        };
        let base = if batch.magic() >= 2 {
            let count = batch.record_count().expect("v2 batches have a count");
            format!("base={} count={count} ", batch.base_offset())
        } else {
            String::new()
        };
        writeln!(
            out,
            "batch magic={} codec={} {base}last={} pid={} epoch={} seq={} txn={} ctl={} tstype={tstype} maxts={}",
            batch.magic(),
            batch.compression().expect("a known codec").id(),
            batch.last_offset(),
            batch.producer_id(),
            batch.producer_epoch(),
            batch.base_sequence(),
            batch.is_transactional(),
            batch.is_control(),
            batch.max_timestamp(),
        )
        .unwrap();
        for record in batch
            .records(DEFAULT_MAX_DECOMPRESSED_SIZE)
            .expect("decodes")
        {
            let r = record.expect("a well-formed record");
            let headers: String = r
                .headers
                .iter()
                .map(|h| {
                    format!(
                        "{}:{},",
                        hex(Some(h.key.as_bytes())),
                        hex(h.value.as_deref())
                    )
                })
                .collect();
            writeln!(
                out,
                "record {} {} key={} value={} headers={headers}",
                r.offset,
                r.timestamp,
                hex(r.key.as_deref()),
                hex(r.value.as_deref())
            )
            .unwrap();
        }
    }
    assert!(!batches.truncated());
    out
}

/// Splits `== name` sections of the Java dump.
fn sections(text: &str) -> BTreeMap<String, String> {
    let mut map = BTreeMap::new();
    let mut current: Option<(String, String)> = None;
    for line in text.lines() {
        if let Some(name) = line.strip_prefix("== ") {
            map.extend(current.take());
            current = Some((name.to_owned(), String::new()));
        } else if let Some((_, body)) = current.as_mut() {
            body.push_str(line);
            body.push('\n');
        }
    }
    map.extend(current);
    map
}

/// Batches as the producer would send them: plain, idempotent, transactional, larger than
/// one LZ4 block and several snappy blocks, re-stamped after an epoch bump, and a marker.
fn rust_batches(codec: Compression) -> Vec<u8> {
    let build = |n: usize, value_len: usize, state: ProducerState| {
        let mut b = RecordBatchBuilder::new(codec, 16 * 1024);
        for i in 0..n {
            let key = (i % 5 != 0).then(|| format!("key-{i}").into_bytes());
            let value = (i % 7 != 0).then(|| {
                let letters = b"abcdefgh";
                (0..(i * 31) % value_len)
                    .map(|j| letters[(i + j / 16) % 8])
                    .collect::<Vec<u8>>()
            });
            let headers = if i % 3 == 0 {
                vec![
                    Header::new(format!("h\u{e9}{i}"), format!("hv{i}").into_bytes()),
                    Header {
                        key: "null".into(),
                        value: None,
                    },
                ]
            } else {
                Vec::new()
            };
            let ts = 1_700_000_000_000 + (i as i64 * 37) % 11;
            b.append(ts, key.as_deref(), value.as_deref(), &headers)
                .unwrap();
        }
        b.build(state).unwrap()
    };
    let idempotent = ProducerState {
        producer_id: 42,
        producer_epoch: 3,
        base_sequence: 17,
        transactional: false,
    };
    let transactional = ProducerState {
        producer_id: 43,
        producer_epoch: 1,
        base_sequence: 0,
        transactional: true,
    };
    let mut bumped = build(20, 50, idempotent).to_vec();
    rewrite_producer_state(
        &mut bumped,
        ProducerState {
            producer_epoch: 4,
            base_sequence: 0,
            ..idempotent
        },
    )
    .unwrap();
    let parts = [
        build(50, 300, ProducerState::NONE),
        build(20, 50, idempotent),
        build(10, 50, transactional),
        build(100, 4000, ProducerState::NONE),
        Bytes::from(bumped),
        RecordBatchBuilder::end_transaction_marker(true, 9, 1_700_000_000_999, transactional)
            .unwrap(),
    ];
    parts.iter().flat_map(|p| p.iter().copied()).collect()
}

#[test]
fn the_java_client_and_this_crate_read_each_others_batches() {
    let libs = kafka_libs();
    let dir = std::env::temp_dir().join(format!("kafka-client-java-codec-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let source = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/java/RecordsInterop.java"
    );
    let cp = classpath(&libs, &dir);
    run(Command::new("javac")
        .args(["-cp", &cp, "-d"])
        .arg(&dir)
        .arg(source));
    let java = |args: &[&str]| {
        run(Command::new("java")
            .args(["-Xmx256m", "-cp", &cp, "RecordsInterop"])
            .args(args))
    };
    let dir_arg = dir.to_str().unwrap();

    // Java writes, both read.
    java(&["write", dir_arg]);
    let mut java_files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| n.starts_with("java-") && n.ends_with(".bin"))
        .collect();
    java_files.sort();
    // Magic 2 with every codec; magic 0, 1 and 1 with log-append time with all but zstd.
    assert_eq!(java_files.len(), 17, "{java_files:?}");

    // We write, both read.
    for codec in CODECS {
        std::fs::write(dir.join(format!("rust-{codec}.bin")), rust_batches(codec)).unwrap();
    }
    let mut all = java_files.clone();
    all.extend(CODECS.iter().map(|c| format!("rust-{c}.bin")));
    let mut args = vec!["dump", dir_arg];
    args.extend(all.iter().map(String::as_str));
    let java_view = sections(&java(&args));

    for name in &all {
        let ours = dump(Bytes::from(std::fs::read(dir.join(name)).unwrap()));
        let theirs = java_view
            .get(name)
            .unwrap_or_else(|| panic!("Java printed nothing for {name}"));
        assert!(ours.lines().count() > 10, "{name} holds records");
        if ours != *theirs {
            let diff = ours
                .lines()
                .zip(theirs.lines())
                .find(|(a, b)| a != b)
                .map(|(a, b)| format!("\n  ours: {a}\n  java: {b}"))
                .unwrap_or_else(|| "different lengths".to_owned());
            panic!("{name}: this crate and the Java client disagree:{diff}");
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}
