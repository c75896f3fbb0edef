//! Record-batch codec throughput: the producer's append and build, the consumer's decode.
//!
//! Kept short (small samples, one-second measurements) so it runs on a 2-core machine in
//! about a minute: `cargo bench --bench records`.

use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use kafka_client::protocol::records::{
    Compression, ProducerState, RecordBatchBuilder, RecordBatches, DEFAULT_MAX_DECOMPRESSED_SIZE,
};

const BATCH_SIZE: usize = 16 * 1024;
const VALUE_LEN: usize = 100;

const CODECS: [Compression; 5] = [
    Compression::None,
    Compression::Gzip { level: None },
    Compression::Snappy,
    Compression::Lz4 { level: None },
    Compression::Zstd { level: None },
];

/// JSON-ish 100-byte values: compressible like real event data, but not uniform.
fn values(n: usize) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| {
            let mut v = format!(
                r#"{{"id":{i},"user":"user-{}","event":"click","page":"/p/{}","ts":{}}}"#,
                i % 97,
                i % 13,
                1_700_000_000_000u64 + i as u64 * 7
            )
            .into_bytes();
            v.resize(VALUE_LEN, b' ');
            v
        })
        .collect()
}

/// Fills a batch up to `batch.size` as the producer would, checking room before each append.
fn fill(codec: Compression, values: &[Vec<u8>]) -> RecordBatchBuilder {
    let mut b = RecordBatchBuilder::new(codec, BATCH_SIZE);
    for (i, v) in values.iter().enumerate() {
        let ts = 1_700_000_000_000 + i as i64;
        let key = (i as u32).to_be_bytes();
        if b.estimated_size() + b.record_size(ts, key.len(), v.len(), &[]) > BATCH_SIZE {
            break;
        }
        b.append(ts, Some(&key), Some(v), &[])
            .expect("bench records are valid");
    }
    b
}

fn append(c: &mut Criterion) {
    let values = values(1000);
    let mut group = c.benchmark_group("append_16k");
    group.throughput(Throughput::Bytes(
        fill(Compression::None, &values).estimated_size() as u64,
    ));
    group.bench_function("100B_records", |bench| {
        bench.iter(|| fill(Compression::None, &values))
    });
    group.finish();
}

fn build(c: &mut Criterion) {
    let values = values(1000);
    let mut group = c.benchmark_group("build_16k");
    group.throughput(Throughput::Bytes(BATCH_SIZE as u64));
    for codec in CODECS {
        group.bench_function(codec.name(), |bench| {
            bench.iter_batched(
                || fill(codec, &values),
                |b| b.build(ProducerState::NONE).expect("builds"),
                BatchSize::SmallInput,
            )
        });
    }
    group.finish();
}

fn decode(c: &mut Criterion) {
    let values = values(1000);
    let mut group = c.benchmark_group("decode_16k");
    group.throughput(Throughput::Bytes(BATCH_SIZE as u64));
    for codec in CODECS {
        let batch = fill(codec, &values)
            .build(ProducerState::NONE)
            .expect("builds");
        group.bench_function(codec.name(), |bench| {
            bench.iter(|| {
                let mut bytes = 0;
                for batch in RecordBatches::new(batch.clone()) {
                    let batch = batch.expect("valid batch");
                    batch.validate_crc().expect("valid crc");
                    for record in batch
                        .records(DEFAULT_MAX_DECOMPRESSED_SIZE)
                        .expect("decodes")
                    {
                        bytes += record.expect("valid record").value.map_or(0, |v| v.len());
                    }
                }
                bytes
            })
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1));
    targets = append, build, decode
}
criterion_main!(benches);
