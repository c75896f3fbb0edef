//! Turning one [`CompletedFetch`] into the records the application sees, lazily, batch by
//! batch, as Java's `CompletedFetch` does:
//!
//! - batches (and records) before the fetch offset are skipped: a fetch may start inside a
//!   batch, and compacted topics leave offset gaps;
//! - control batches (transaction markers) are never shown;
//! - under `read_committed`, a transactional batch whose producer has an aborted
//!   transaction open at that point (from the response's aborted-transaction list) is
//!   skipped, until that producer's abort marker;
//! - `check.crcs` validates each batch's CRC32C before decoding it;
//! - data that does not decode ends the drain with [`Error::Corrupt`] naming the partition and
//!   the offset of the bad record, after the records decoded before it, as Java's
//!   `CompletedFetch` does; every later call returns the same error, never the records after
//!   it.
//!
//! Compressed batches are decompressed once into one buffer that the records' keys and
//! values slice; uncompressed ones are sliced straight out of the fetch response.

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;

use super::buffer::{AbortedTxn, CompletedFetch};
use super::record::ConsumerRecord;
use crate::cluster::IsolationLevel;
use crate::error::{Error, ErrorContext, Result};
use crate::protocol::records::{ControlRecordType, RecordBatches, DEFAULT_MAX_DECOMPRESSED_SIZE};
use crate::types::TopicPartition;

/// How to decode: the consumer's settings that matter here.
#[derive(Clone, Copy, Debug)]
pub(crate) struct DecodeOptions {
    pub(crate) isolation: IsolationLevel,
    pub(crate) check_crcs: bool,
}

/// The partially decoded data of one partition; see the [module docs](self).
#[derive(Debug)]
pub(crate) struct Drain {
    pub(crate) tp: TopicPartition,
    topic: Arc<str>,
    pub(crate) epoch: u64,
    batches: RecordBatches,
    ready: VecDeque<ConsumerRecord>,
    aborted: VecDeque<AbortedTxn>,
    aborted_producers: HashSet<i64>,
    /// The next offset to hand out (Java's `nextFetchOffset`).
    next_offset: i64,
    /// Where this fetch's data ends: after its last complete batch.
    pub(crate) end_offset: i64,
    opts: DecodeOptions,
    /// The data stopped decoding here; returned once `ready` is handed out.
    failed: Option<Error>,
}

impl Drain {
    pub(crate) fn new(fetch: CompletedFetch, opts: DecodeOptions) -> Self {
        let mut aborted: Vec<AbortedTxn> = fetch.aborted;
        aborted.sort_by_key(|a| a.first_offset);
        Drain {
            tp: fetch.tp,
            topic: fetch.topic,
            epoch: fetch.epoch,
            batches: RecordBatches::new(fetch.records),
            ready: VecDeque::new(),
            aborted: aborted.into(),
            aborted_producers: HashSet::new(),
            next_offset: fetch.fetch_offset,
            end_offset: fetch.next_offset,
            opts,
            failed: None,
        }
    }

    /// The next record to hand out; `Ok(None)` when this fetch's data is used up, `Err` from
    /// a bad record on (the good records before it come first).
    pub(crate) fn next_record(&mut self) -> Result<Option<ConsumerRecord>> {
        loop {
            if let Some(r) = self.ready.pop_front() {
                self.next_offset = r.offset + 1;
                return Ok(Some(r));
            }
            if let Some(e) = &self.failed {
                return Err(e.clone());
            }
            match self.decode_next_batch() {
                Ok(true) => {}
                Ok(false) => return Ok(None),
                Err(e) => self.failed = Some(e),
            }
        }
    }

    /// The error for bad data at `offset`, naming the partition.
    fn corrupt(&self, e: Error, offset: i64) -> Error {
        match e {
            Error::Corrupt { reason, .. } => Error::Corrupt {
                context: ErrorContext::topic(&self.tp.topic, Some(self.tp.partition)),
                offset: Some(offset),
                reason: format!("{reason}; seek past it to continue"),
            },
            other => other,
        }
    }

    /// Decodes the next batch that has records to show into `ready`; `false` at the end. On
    /// an error, `ready` keeps the records of the batch decoded before the bad one.
    fn decode_next_batch(&mut self) -> Result<bool> {
        loop {
            let batch = match self.batches.next() {
                None => return Ok(false),
                Some(Err(e)) => return Err(self.corrupt(e, self.next_offset)),
                Some(Ok(b)) => b,
            };
            let last = batch.last_offset();
            if last < self.next_offset {
                continue;
            }
            // Where a batch-level error leaves the position.
            let at = batch.base_offset().max(self.next_offset);
            if self.opts.check_crcs {
                batch.validate_crc().map_err(|e| self.corrupt(e, at))?;
            }
            if self.opts.isolation == IsolationLevel::ReadCommitted && batch.producer_id() >= 0 {
                while self.aborted.front().is_some_and(|a| a.first_offset <= last) {
                    if let Some(a) = self.aborted.pop_front() {
                        self.aborted_producers.insert(a.producer_id);
                    }
                }
                let producer = batch.producer_id();
                let abort_marker = batch.is_control()
                    && batch
                        .control_record_type()
                        .map_err(|e| self.corrupt(e, at))?
                        == Some(ControlRecordType::Abort);
                if abort_marker {
                    self.aborted_producers.remove(&producer);
                } else if batch.is_transactional() && self.aborted_producers.contains(&producer) {
                    tracing::trace!(
                        topic = %self.tp.topic,
                        partition = self.tp.partition,
                        producer,
                        from = batch.base_offset(),
                        to = last,
                        "skipping aborted batch"
                    );
                    self.next_offset = last + 1;
                    continue;
                }
            }
            if batch.is_control() {
                self.next_offset = last + 1;
                continue;
            }
            let leader_epoch = Some(batch.partition_leader_epoch()).filter(|e| *e >= 0);
            let timestamp_type = batch.timestamp_type();
            let records = batch
                .records(DEFAULT_MAX_DECOMPRESSED_SIZE)
                .map_err(|e| self.corrupt(e, at))?;
            // The offset of the next record, as far as the good ones before it tell.
            let mut expected = batch.base_offset();
            for record in records {
                let record = record.map_err(|e| self.corrupt(e, expected.max(self.next_offset)))?;
                expected = record.offset + 1;
                if record.offset < self.next_offset {
                    continue;
                }
                self.ready.push_back(ConsumerRecord {
                    topic: self.topic.clone(),
                    partition: self.tp.partition,
                    offset: record.offset,
                    timestamp: record.timestamp,
                    timestamp_type,
                    key: record.key,
                    value: record.value,
                    headers: record.headers,
                    leader_epoch,
                });
            }
            if self.ready.is_empty() {
                // Compaction removed every record of the batch (its last offset remains).
                self.next_offset = last + 1;
                continue;
            }
            return Ok(true);
        }
    }

    /// The offset the position moves to once this fetch is used up.
    pub(crate) fn exhausted_at(&self) -> i64 {
        self.next_offset.max(self.end_offset)
    }
}

/// Where the next fetch of a partition starts, given the data a fetch returned: after the
/// last complete batch (`None` when no batch is complete). Only batch headers are read.
pub(crate) fn next_fetch_offset(records: &bytes::Bytes) -> Result<Option<i64>> {
    let mut next = None;
    for batch in RecordBatches::new(records.clone()) {
        next = Some(batch?.last_offset() + 1);
    }
    Ok(next)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::records::{Compression, ProducerState, RecordBatchBuilder};
    use bytes::{BufMut, Bytes, BytesMut};

    /// A batch of `n` records at `base`, optionally transactional for `producer`.
    fn batch(base: i64, values: &[&str], producer: Option<i64>, compression: Compression) -> Bytes {
        let mut b = RecordBatchBuilder::new(compression, 1024);
        for (i, v) in values.iter().enumerate() {
            b.append(1_000 + i as i64, Some(b"k"), Some(v.as_bytes()), &[])
                .unwrap();
        }
        let state = match producer {
            Some(id) => ProducerState {
                producer_id: id,
                producer_epoch: 0,
                base_sequence: 0,
                transactional: true,
            },
            None => ProducerState::NONE,
        };
        with_base_offset(b.build(state).unwrap(), base)
    }

    fn marker(base: i64, producer: i64, commit: bool) -> Bytes {
        let state = ProducerState {
            producer_id: producer,
            producer_epoch: 0,
            base_sequence: -1,
            transactional: true,
        };
        with_base_offset(
            RecordBatchBuilder::end_transaction_marker(commit, 0, 2_000, state).unwrap(),
            base,
        )
    }

    /// The base offset is outside the CRC, so it can be patched as a broker does.
    fn with_base_offset(b: Bytes, base: i64) -> Bytes {
        let mut m = BytesMut::from(&b[..]);
        m[..8].copy_from_slice(&base.to_be_bytes());
        m.freeze()
    }

    fn fetch(parts: &[Bytes], fetch_offset: i64, aborted: Vec<AbortedTxn>) -> CompletedFetch {
        let mut records = BytesMut::new();
        for p in parts {
            records.put_slice(p);
        }
        let records = records.freeze();
        let next_offset = next_fetch_offset(&records).unwrap().unwrap_or(fetch_offset);
        CompletedFetch {
            tp: TopicPartition::new("t", 0),
            topic: Arc::from("t"),
            epoch: 1,
            fetch_offset,
            next_offset,
            records,
            aborted,
        }
    }

    fn drain_all(mut d: Drain) -> Vec<(i64, String)> {
        let mut out = Vec::new();
        while let Some(r) = d.next_record().unwrap() {
            let v = String::from_utf8(r.value.unwrap().to_vec()).unwrap();
            out.push((r.offset, v));
        }
        out
    }

    const UNCOMMITTED: DecodeOptions = DecodeOptions {
        isolation: IsolationLevel::ReadUncommitted,
        check_crcs: true,
    };
    const COMMITTED: DecodeOptions = DecodeOptions {
        isolation: IsolationLevel::ReadCommitted,
        check_crcs: true,
    };

    #[test]
    fn records_before_the_fetch_offset_are_skipped_in_every_codec() {
        for c in [
            Compression::None,
            Compression::Gzip { level: None },
            Compression::Snappy,
            Compression::Lz4 { level: None },
            Compression::Zstd { level: None },
        ] {
            let f = fetch(
                &[
                    batch(10, &["a", "b", "c"], None, c),
                    batch(13, &["d"], None, c),
                ],
                11,
                vec![],
            );
            let d = Drain::new(f, UNCOMMITTED);
            assert_eq!(
                drain_all(d),
                vec![(11, "b".into()), (12, "c".into()), (13, "d".into())],
                "{c:?}"
            );
        }
    }

    #[test]
    fn read_committed_skips_aborted_batches_and_markers() {
        // Producer 7: offsets 0-1 aborted, marker at 2. Producer 8: 3-4 committed, marker 5.
        let parts = [
            batch(0, &["x1", "x2"], Some(7), Compression::None),
            marker(2, 7, false),
            batch(3, &["c1", "c2"], Some(8), Compression::None),
            marker(5, 8, true),
            batch(6, &["plain"], None, Compression::None),
        ];
        let aborted = vec![AbortedTxn {
            producer_id: 7,
            first_offset: 0,
        }];
        let committed = drain_all(Drain::new(fetch(&parts, 0, aborted.clone()), COMMITTED));
        assert_eq!(
            committed,
            vec![(3, "c1".into()), (4, "c2".into()), (6, "plain".into())]
        );
        // read_uncommitted shows the aborted records too, but never markers.
        let all = drain_all(Drain::new(fetch(&parts, 0, aborted), UNCOMMITTED));
        let offsets: Vec<i64> = all.iter().map(|(o, _)| *o).collect();
        assert_eq!(offsets, vec![0, 1, 3, 4, 6]);
    }

    #[test]
    fn position_moves_past_trailing_markers_and_gaps() {
        let parts = [
            batch(0, &["a"], Some(9), Compression::None),
            marker(1, 9, true),
        ];
        let mut d = Drain::new(fetch(&parts, 0, vec![]), COMMITTED);
        assert_eq!(d.next_record().unwrap().unwrap().offset, 0);
        assert!(d.next_record().unwrap().is_none());
        assert_eq!(d.exhausted_at(), 2);
        // A compacted log: offsets 0 and 5 only.
        let parts = [
            batch(0, &["a"], None, Compression::None),
            batch(5, &["b"], None, Compression::None),
        ];
        let got = drain_all(Drain::new(fetch(&parts, 0, vec![]), UNCOMMITTED));
        assert_eq!(got, vec![(0, "a".into()), (5, "b".into())]);
    }

    #[test]
    fn uncompressed_keys_and_values_are_slices_of_the_fetched_bytes() {
        let f = fetch(
            &[batch(0, &["a", "bb", "ccc"], None, Compression::None)],
            0,
            vec![],
        );
        let range = f.records.as_ptr() as usize..f.records.as_ptr() as usize + f.records.len();
        let mut d = Drain::new(f, UNCOMMITTED);
        while let Some(r) = d.next_record().unwrap() {
            for b in [r.key.unwrap(), r.value.unwrap()] {
                assert!(
                    range.contains(&(b.as_ptr() as usize)),
                    "copied out of the response"
                );
            }
        }
    }

    #[test]
    fn a_corrupt_batch_is_an_error_naming_the_partition() {
        let mut b = BytesMut::from(&batch(0, &["a", "b"], None, Compression::None)[..]);
        let last = b.len() - 1;
        b[last] ^= 0xff;
        let mut d = Drain::new(fetch(&[b.freeze()], 0, vec![]), UNCOMMITTED);
        let err = d.next_record().unwrap_err();
        assert!(
            matches!(
                err,
                Error::Corrupt {
                    offset: Some(0),
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(err.to_string().contains("t-0"), "{err}");
    }

    /// As Java's `CompletedFetch`: the records before a bad one are handed out, then the
    /// error names the bad record's offset, on every call; nothing after it is skipped to.
    #[test]
    fn a_malformed_record_mid_batch_comes_after_the_records_before_it() {
        use crate::protocol::records::tests::{corrupt_record, BAD_RECORDS};
        let no_crcs = DecodeOptions {
            check_crcs: false,
            ..UNCOMMITTED
        };
        let good = batch(10, &["a", "b", "c", "d"], None, Compression::None);
        let after = batch(14, &["e"], None, Compression::None);
        for bad in BAD_RECORDS {
            let broken = corrupt_record(&good, 2, bad);
            for (fetch_offset, expect) in [(10, vec![10, 11]), (11, vec![11])] {
                let f = fetch(&[broken.clone(), after.clone()], fetch_offset, vec![]);
                let mut d = Drain::new(f, no_crcs);
                let mut got = Vec::new();
                let err = loop {
                    match d.next_record() {
                        Ok(Some(r)) => got.push(r.offset),
                        Ok(None) => panic!("the bad record was skipped: {got:?}"),
                        Err(e) => break e,
                    }
                };
                assert_eq!(got, expect);
                match &err {
                    Error::Corrupt {
                        context, offset, ..
                    } => {
                        assert_eq!(*offset, Some(12), "{err}");
                        assert_eq!(context.topic.as_deref(), Some("t"));
                        assert_eq!(context.partition, Some(0));
                    }
                    other => panic!("unexpected {other:?}"),
                }
                assert!(err.to_string().contains("t-0 at offset 12"), "{err}");
                // It stays there.
                let again = d.next_record().unwrap_err();
                assert_eq!(again.to_string(), err.to_string());
            }
            // With check.crcs, the CRC rejects the batch as a whole, at its first offset.
            let mut d = Drain::new(fetch(&[broken, after.clone()], 10, vec![]), UNCOMMITTED);
            let err = d.next_record().unwrap_err();
            assert!(
                matches!(
                    err,
                    Error::Corrupt {
                        offset: Some(10),
                        ..
                    }
                ),
                "{err:?}"
            );
        }
    }
}
