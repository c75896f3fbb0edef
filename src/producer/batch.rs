//! One partition's batch: records written in place as they arrive, the deliveries waiting on
//! them, and the retry and sequence state the sender keeps while it is in flight.

use bytes::Bytes;
use tokio::time::Instant;

use crate::error::{Error, Result};
use crate::protocol::records::{ProducerState, RecordBatchBuilder};
use crate::types::{Header, TopicPartition};

use super::record::{Delivery, RecordMetadata};

/// The producer id, epoch and base sequence a batch was (or will be) sent with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Sequenced {
    pub(crate) producer_id: i64,
    pub(crate) epoch: i16,
    pub(crate) base_sequence: i32,
}

pub(crate) struct ProducerBatch {
    pub(crate) id: u64,
    pub(crate) tp: TopicPartition,
    /// Open while records can still be appended.
    builder: Option<RecordBatchBuilder>,
    /// The encoded (and compressed) batch, once closed.
    built: Option<Bytes>,
    /// One entry per record, in offset order, with the create time sent.
    deliveries: Vec<(Delivery, i64)>,
    pub(crate) created: Instant,
    /// Sends so far (0 before the first).
    pub(crate) attempts: u32,
    /// Not to be sent again before this (retry backoff).
    pub(crate) retry_at: Option<Instant>,
    pub(crate) sequence: Option<Sequenced>,
    /// `buffer.memory` bytes this batch holds.
    pub(crate) reserved: usize,
    /// Estimated encoded size.
    pub(crate) size: usize,
    /// No more records go in (batch.size reached, or a record did not fit).
    pub(crate) full: bool,
}

impl ProducerBatch {
    /// A batch expecting about `records` records (sizes the delivery list once).
    pub(crate) fn new(
        id: u64,
        tp: TopicPartition,
        builder: RecordBatchBuilder,
        records: usize,
    ) -> Self {
        let size = builder.estimated_size();
        ProducerBatch {
            id,
            tp,
            builder: Some(builder),
            built: None,
            deliveries: Vec::with_capacity(records),
            created: Instant::now(),
            attempts: 0,
            retry_at: None,
            sequence: None,
            reserved: 0,
            size,
            full: false,
        }
    }

    /// Whether a record of `size` bytes still fits under `batch_size` (an empty batch takes
    /// any record, so records larger than `batch.size` travel alone).
    pub(crate) fn fits(&self, size: usize, batch_size: usize) -> bool {
        !self.full
            && self.builder.is_some()
            && (self.deliveries.is_empty() || self.size + size <= batch_size)
    }

    /// Appends a record in place. `reserved` is the `buffer.memory` it took.
    pub(crate) fn append(
        &mut self,
        timestamp: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[Header],
        reserved: usize,
        delivery: Delivery,
    ) {
        self.reserved += reserved;
        let Some(builder) = self.builder.as_mut() else {
            delivery.complete(Err(Error::InvalidArgument("batch already closed".into())));
            return;
        };
        match builder.append(timestamp, key, value, headers) {
            Ok(_) => {
                self.size = builder.estimated_size();
                self.deliveries.push((delivery, timestamp));
            }
            // `send` checks what it can first; anything left fails this record alone.
            Err(e) => delivery.complete(Err(e)),
        }
    }

    pub(crate) fn record_count(&self) -> usize {
        self.deliveries.len()
    }

    /// Encodes the batch for the wire on its first send, stamping the producer state.
    /// Later sends reuse the bytes (rewriting the state after an epoch bump).
    pub(crate) fn encoded(&mut self) -> Result<Bytes> {
        if let Some(bytes) = &self.built {
            return Ok(bytes.clone());
        }
        let builder = self
            .builder
            .take()
            .ok_or_else(|| Error::InvalidArgument("batch has neither builder nor bytes".into()))?;
        let state = match self.sequence {
            Some(s) => ProducerState {
                producer_id: s.producer_id,
                producer_epoch: s.epoch,
                base_sequence: s.base_sequence,
                transactional: false,
            },
            None => ProducerState::NONE,
        };
        let bytes = builder.build(state)?;
        self.built = Some(bytes.clone());
        Ok(bytes)
    }

    /// Gives an already sequenced batch a new producer state (epoch bump, KIP-360).
    pub(crate) fn resequence(&mut self, sequence: Sequenced) -> Result<()> {
        self.sequence = Some(sequence);
        if let Some(bytes) = self.built.take() {
            let mut owned = bytes::BytesMut::from(&bytes[..]);
            crate::protocol::records::rewrite_producer_state(
                &mut owned,
                ProducerState {
                    producer_id: sequence.producer_id,
                    producer_epoch: sequence.epoch,
                    base_sequence: sequence.base_sequence,
                    transactional: false,
                },
            )?;
            self.built = Some(owned.freeze());
        }
        Ok(())
    }

    /// Resolves every record's delivery: offsets from `base_offset` (-1 when unknown), the
    /// log append time when the topic uses it.
    pub(crate) fn succeed(mut self, base_offset: i64, log_append_time: i64) {
        // One shared name for the whole batch rather than a copy per record.
        let topic: std::sync::Arc<str> = self.tp.topic.as_str().into();
        for (i, (delivery, timestamp)) in
            std::mem::take(&mut self.deliveries).into_iter().enumerate()
        {
            let offset = if base_offset >= 0 {
                base_offset + i as i64
            } else {
                -1
            };
            delivery.complete(Ok(RecordMetadata {
                topic: topic.clone(),
                partition: self.tp.partition,
                offset,
                timestamp: if log_append_time >= 0 {
                    log_append_time
                } else {
                    timestamp
                },
            }));
        }
    }

    /// Fails every record of the batch with `error`.
    pub(crate) fn fail(mut self, error: &Error) {
        for (delivery, _) in std::mem::take(&mut self.deliveries) {
            delivery.complete(Err(error.clone()));
        }
    }
}

impl Drop for ProducerBatch {
    /// A batch dropped without an outcome (the sender stopped abnormally) still reports one:
    /// no record's future or callback is ever left hanging.
    fn drop(&mut self) {
        for (delivery, _) in self.deliveries.drain(..) {
            delivery.complete(Err(Error::Closed(
                "the producer's sender stopped before this record was delivered".into(),
            )));
        }
    }
}
