//! Cross-module tests: golden byte layouts and property tests of build -> decode.

use bytes::Bytes;
use proptest::prelude::*;

use super::*;
use crate::error::{Error, Result};
use crate::types::Header;

const CODECS: [Compression; 5] = [
    Compression::None,
    Compression::Gzip { level: None },
    Compression::Snappy,
    Compression::Lz4 { level: None },
    Compression::Zstd { level: None },
];

/// Two records laid out by hand from the "Record Batch" and "Record" sections of the Kafka
/// protocol documentation. The CRC was computed separately with a bit-by-bit CRC32C
/// (polynomial 0x82F63B78) over bytes 21.. .
#[test]
fn uncompressed_batch_matches_the_documented_layout() {
    #[rustfmt::skip]
    let expected: &[u8] = &[
        0, 0, 0, 0, 0, 0, 0, 0,             // baseOffset 0
        0, 0, 0, 0x44,                      // batchLength 68 = 80 - 12
        0xff, 0xff, 0xff, 0xff,             // partitionLeaderEpoch -1
        2,                                  // magic
        0xbe, 0xd2, 0x22, 0x27,             // crc (CRC32C of the rest)
        0, 0,                               // attributes: none, create time
        0, 0, 0, 1,                         // lastOffsetDelta 1
        0, 0, 0, 0, 0, 0, 0x03, 0xe8,       // baseTimestamp 1000
        0, 0, 0, 0, 0, 0, 0x03, 0xf2,       // maxTimestamp 1010
        0, 0, 0, 0, 0, 0, 0x04, 0xd2,       // producerId 1234
        0, 5,                               // producerEpoch 5
        0, 0, 0, 7,                         // baseSequence 7
        0, 0, 0, 2,                         // records count 2
        // length 8, attrs, tsDelta 0, offsetDelta 0, key "k", value "v", 0 headers
        0x10, 0, 0, 0, 0x02, b'k', 0x02, b'v', 0,
        // length 9, attrs, tsDelta 10, offsetDelta 1, key null, value "", 1 header h=null
        0x12, 0, 0x14, 0x02, 0x01, 0x00, 0x02, 0x02, b'h', 0x01,
    ];
    let mut b = RecordBatchBuilder::new(Compression::None, 128);
    b.append(1000, Some(b"k"), Some(b"v"), &[]).unwrap();
    let null_header = Header {
        key: "h".into(),
        value: None,
    };
    b.append(1010, None, Some(b""), std::slice::from_ref(&null_header))
        .unwrap();
    let state = ProducerState {
        producer_id: 1234,
        producer_epoch: 5,
        base_sequence: 7,
        transactional: false,
    };
    let built = b.build(state).unwrap();
    assert_eq!(&built[..], expected);

    // And back.
    let batch = RecordBatch::parse(built).unwrap();
    batch.validate_crc().unwrap();
    let records: Vec<Record> = batch.records(1024).unwrap().map(Result::unwrap).collect();
    assert_eq!(
        records[1],
        Record {
            offset: 1,
            timestamp: 1010,
            key: None,
            value: Some(Bytes::new()),
            headers: vec![null_header],
        }
    );
}

#[test]
fn crc32c_is_castagnoli() {
    // The standard check value of CRC-32C; plain CRC-32 would give 0xCBF43926.
    assert_eq!(crc32c::crc32c(b"123456789"), 0xE306_9283);
}

#[test]
fn compressed_batches_carry_the_java_framings() {
    let built = |c: Compression| {
        let mut b = RecordBatchBuilder::new(c, 0);
        b.append(1, Some(b"key"), Some(&[b'v'; 500]), &[]).unwrap();
        b.build(ProducerState::NONE).unwrap()
    };
    let snappy = built(Compression::Snappy);
    assert_eq!(&snappy[21..23], &[0, 2]);
    assert_eq!(
        &snappy[61..77],
        &[0x82, b'S', b'N', b'A', b'P', b'P', b'Y', 0, 0, 0, 0, 1, 0, 0, 0, 1]
    );
    let lz4 = built(Compression::Lz4 { level: None });
    assert_eq!(&lz4[21..23], &[0, 3]);
    assert_eq!(&lz4[61..68], &[0x04, 0x22, 0x4D, 0x18, 0x60, 0x40, 0x82]);
    let gzip = built(Compression::Gzip { level: None });
    assert_eq!(&gzip[61..64], &[0x1f, 0x8b, 8], "gzip magic, deflate");
    let zstd = built(Compression::Zstd { level: None });
    assert_eq!(&zstd[61..65], &[0x28, 0xb5, 0x2f, 0xfd], "zstd frame magic");
}

/// `batch` (uncompressed, records under 64 bytes) with `f` applied to the bytes of record
/// `index`, its length varint included; the CRC is left as it was.
pub(crate) fn corrupt_record(batch: &[u8], index: usize, f: impl Fn(&mut [u8])) -> Bytes {
    let mut v = batch.to_vec();
    let mut pos = RECORD_BATCH_OVERHEAD;
    for i in 0.. {
        let zigzag = v[pos];
        assert!(zigzag < 0x80, "record {i} is not a small record");
        let end = pos + 1 + usize::from(zigzag / 2);
        if i == index {
            f(&mut v[pos..end]);
            return Bytes::from(v);
        }
        pos = end;
    }
    unreachable!()
}

/// The two ways a record in the middle of a batch goes bad: a varint that runs on past the
/// record, and a record longer than what is left of the batch.
pub(crate) const BAD_RECORDS: [fn(&mut [u8]); 2] =
    [|record| record[2..].fill(0xff), |record| record[0] += 40];

#[test]
fn a_malformed_record_mid_batch_ends_the_records_after_the_good_ones() {
    let mut b = RecordBatchBuilder::new(Compression::None, 1024);
    for v in ["a", "b", "c"] {
        b.append(1, None, Some(v.as_bytes()), &[]).unwrap();
    }
    let built = b.build(ProducerState::NONE).unwrap();
    for (n, bad) in BAD_RECORDS.iter().enumerate() {
        let batch = RecordBatch::parse(corrupt_record(&built, 1, bad)).unwrap();
        assert!(batch.validate_crc().is_err(), "check.crcs catches it first");
        let records: Vec<Result<Record>> = batch.records(1024).unwrap().collect();
        assert_eq!(records.len(), 2, "corruption {n}: {records:?}");
        assert_eq!(
            records[0].as_ref().unwrap().value.as_deref(),
            Some(&b"a"[..])
        );
        assert!(
            matches!(records[1], Err(Error::Corrupt { .. })),
            "corruption {n}"
        );
    }
}

#[derive(Debug, Clone)]
struct Input {
    timestamp: i64,
    key: Option<Vec<u8>>,
    value: Option<Vec<u8>>,
    headers: Vec<Header>,
}

fn bytes_opt(max: usize) -> impl Strategy<Value = Option<Vec<u8>>> {
    prop::option::of(prop::collection::vec(any::<u8>(), 0..max))
}

fn input() -> impl Strategy<Value = Input> {
    let header = ("[a-z\u{e9}\u{1f600}]{0,8}", bytes_opt(16)).prop_map(|(key, value)| Header {
        key,
        value: value.map(Bytes::from),
    });
    (
        // Up to year ~2100, and a few records far apart.
        prop_oneof![0i64..4_102_444_800_000, Just(0), Just(i64::MAX)],
        bytes_opt(64),
        bytes_opt(400),
        prop::collection::vec(header, 0..3),
    )
        .prop_map(|(timestamp, key, value, headers)| Input {
            timestamp,
            key,
            value,
            headers,
        })
}

fn producer_state() -> impl Strategy<Value = ProducerState> {
    (any::<i64>(), any::<i16>(), any::<i32>(), any::<bool>()).prop_map(
        |(producer_id, producer_epoch, base_sequence, transactional)| ProducerState {
            producer_id,
            producer_epoch,
            base_sequence,
            transactional,
        },
    )
}

fn build(codec: Compression, inputs: &[Input], state: ProducerState) -> Bytes {
    let mut b = RecordBatchBuilder::new(codec, 1024);
    for i in inputs {
        let predicted = b.record_size(
            i.timestamp,
            i.key.as_ref().map_or(0, Vec::len),
            i.value.as_ref().map_or(0, Vec::len),
            &i.headers,
        );
        let took = b
            .append(
                i.timestamp,
                i.key.as_deref(),
                i.value.as_deref(),
                &i.headers,
            )
            .unwrap();
        assert_eq!(took, predicted);
    }
    b.build(state).unwrap()
}

/// Decodes every batch and every record, touching every accessor; must never panic.
fn decode_everything(data: Bytes) {
    let mut batches = RecordBatches::new(data);
    for batch in batches.by_ref() {
        let Ok(batch) = batch else { break };
        let _ = batch.validate_crc();
        let _ = (
            batch.base_offset(),
            batch.last_offset(),
            batch.record_count(),
        );
        let _ = (
            batch.producer_id(),
            batch.producer_epoch(),
            batch.base_sequence(),
        );
        let _ = (
            batch.timestamp_type(),
            batch.max_timestamp(),
            batch.delete_horizon_ms(),
        );
        let _ = (
            batch.compression(),
            batch.partition_leader_epoch(),
            format!("{batch:?}"),
        );
        let _ = batch.control_record_type();
        if let Ok(records) = batch.records(1 << 20) {
            for r in records {
                let _ = r;
            }
        }
    }
    let _ = (batches.truncated(), batches.truncated_batch_size());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn build_then_decode_round_trips(
        codec in prop::sample::select(CODECS.to_vec()),
        inputs in prop::collection::vec(input(), 1..20),
        state in producer_state(),
    ) {
        let built = build(codec, &inputs, state);
        // Two copies back to back, as a fetch response holds several batches.
        let mut fetched = built.to_vec();
        fetched.extend_from_slice(&built);
        let mut batches = RecordBatches::new(Bytes::from(fetched));
        for _ in 0..2 {
            let batch = batches.next().unwrap().unwrap();
            batch.validate_crc().unwrap();
            prop_assert_eq!(batch.size(), built.len());
            prop_assert_eq!(batch.compression().unwrap().id(), codec.id());
            prop_assert_eq!(batch.record_count(), Some(inputs.len() as i32));
            prop_assert_eq!(batch.last_offset(), inputs.len() as i64 - 1);
            prop_assert_eq!(batch.base_timestamp(), inputs[0].timestamp);
            prop_assert_eq!(batch.max_timestamp(), inputs.iter().map(|i| i.timestamp).max().unwrap());
            prop_assert_eq!(batch.producer_id(), state.producer_id);
            prop_assert_eq!(batch.producer_epoch(), state.producer_epoch);
            prop_assert_eq!(batch.base_sequence(), state.base_sequence);
            prop_assert_eq!(batch.is_transactional(), state.transactional);
            prop_assert!(!batch.is_control());
            let records: Vec<Record> = batch.records(1 << 20).unwrap().map(Result::unwrap).collect();
            prop_assert_eq!(records.len(), inputs.len());
            for (n, (r, i)) in records.iter().zip(&inputs).enumerate() {
                prop_assert_eq!(r.offset, n as i64);
                prop_assert_eq!(r.timestamp, i.timestamp);
                prop_assert_eq!(r.key.as_deref(), i.key.as_deref());
                prop_assert_eq!(r.value.as_deref(), i.value.as_deref());
                prop_assert_eq!(&r.headers, &i.headers);
            }
        }
        prop_assert!(batches.next().is_none());
        prop_assert!(!batches.truncated());
    }

    #[test]
    fn rewritten_producer_state_keeps_the_crc_valid(
        codec in prop::sample::select(CODECS.to_vec()),
        inputs in prop::collection::vec(input(), 1..5),
        before in producer_state(),
        after in producer_state(),
    ) {
        let built = build(codec, &inputs, before);
        let mut bytes = built.to_vec();
        rewrite_producer_state(&mut bytes, after).unwrap();
        let batch = RecordBatch::parse(Bytes::from(bytes)).unwrap();
        batch.validate_crc().unwrap();
        prop_assert_eq!(
            (batch.producer_id(), batch.producer_epoch(), batch.base_sequence(), batch.is_transactional()),
            (after.producer_id, after.producer_epoch, after.base_sequence, after.transactional)
        );
        let original = RecordBatch::parse(built).unwrap();
        let a: Vec<Record> = original.records(1 << 20).unwrap().map(Result::unwrap).collect();
        let b: Vec<Record> = batch.records(1 << 20).unwrap().map(Result::unwrap).collect();
        prop_assert_eq!(a, b);
    }

    #[test]
    fn truncated_input_never_panics_and_is_reported(
        codec in prop::sample::select(CODECS.to_vec()),
        inputs in prop::collection::vec(input(), 1..5),
        cut in any::<prop::sample::Index>(),
    ) {
        let built = build(codec, &inputs, ProducerState::NONE);
        let cut = cut.index(built.len());
        let mut batches = RecordBatches::new(built.slice(..cut));
        prop_assert!(batches.next().is_none());
        prop_assert_eq!(batches.truncated(), cut > 0);
        if cut >= 12 {
            prop_assert_eq!(batches.truncated_batch_size(), Some(built.len()));
        }
    }

}

proptest! {
    // Cheap cases, and the point is breadth: many more of them.
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn mutated_batches_never_panic(
        codec in prop::sample::select(CODECS.to_vec()),
        inputs in prop::collection::vec(input(), 1..5),
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
    ) {
        let mut bytes = build(codec, &inputs, ProducerState::NONE).to_vec();
        for (at, xor) in flips {
            let i = at.index(bytes.len());
            bytes[i] ^= xor;
        }
        decode_everything(Bytes::from(bytes));
    }

    #[test]
    fn arbitrary_bytes_never_panic(data in prop::collection::vec(any::<u8>(), 0..600)) {
        decode_everything(Bytes::from(data));
    }

    #[test]
    fn arbitrary_bytes_behind_a_valid_header_never_panic(
        magic in 0u8..3,
        attributes in any::<u8>(),
        tail in prop::collection::vec(any::<u8>(), 0..400),
    ) {
        // A plausible header gets garbage past the framing checks, into the decoders.
        let mut data = vec![0u8; 8];
        let len = (RECORD_BATCH_OVERHEAD - 12 + tail.len()) as i32;
        data.extend_from_slice(&len.to_be_bytes());
        data.extend_from_slice(&[0, 0, 0, 0, magic, 0, 0, 0, 0, attributes & 0x3f, attributes]);
        data.resize(RECORD_BATCH_OVERHEAD, 0);
        data[57..61].copy_from_slice(&3i32.to_be_bytes());
        data.extend_from_slice(&tail);
        decode_everything(Bytes::from(data));
    }

    #[test]
    fn decompressing_garbage_never_panics(
        codec in prop::sample::select(CODECS.to_vec()),
        data in prop::collection::vec(any::<u8>(), 0..300),
    ) {
        if let Ok(out) = codec.decompress(&data, 10_000) {
            prop_assert!(out.len() <= 10_000);
        }
    }
}
