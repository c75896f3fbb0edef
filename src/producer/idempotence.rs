//! Idempotence: the producer id and epoch, and a sequence number per partition (KIP-98),
//! with the recovery of KIP-360.
//!
//! Rules that keep retries free of duplicates and reordering:
//! - a batch gets its sequence when first drained, and keeps it across retries;
//! - the first batch of a producer epoch goes alone: a broker that has no state for a new
//!   producer id takes whatever sequence comes first, so a later batch could overtake it;
//! - then up to `max.in.flight` new batches of a partition may be in flight, but a *retried* batch
//!   goes out only when nothing else of its partition is in flight and it is the next
//!   sequence the broker expects (`last acked + 1`);
//! - when the broker lost our state (`UNKNOWN_PRODUCER_ID`), reports a real gap
//!   (`OUT_OF_ORDER_SEQUENCE_NUMBER` for the next expected batch), or a sent batch had to be
//!   failed, the partition needs a new epoch. The bump waits until the partition has nothing
//!   in flight (resetting earlier would reuse sequences of batches still being retried,
//!   KAFKA-14034); then the epoch goes up by one (as Java's idempotent producer does locally)
//!   and the partition's queued batches are renumbered from 0 under it.

use std::collections::{HashMap, VecDeque};

use crate::error::Result;
use crate::types::TopicPartition;

use super::batch::{ProducerBatch, Sequenced};

#[derive(Debug)]
struct PartitionState {
    producer_id: i64,
    epoch: i16,
    next_sequence: i32,
    last_acked: i32,
    /// Requests in flight that carry a batch of this partition.
    in_flight: usize,
    /// Sequenced batches neither acknowledged nor failed (in flight or queued for retry).
    unacked: usize,
    needs_bump: bool,
}

/// The sequence after `seq` + `count` records, wrapping at `i32::MAX` as the protocol does.
fn advance(seq: i32, count: usize) -> i32 {
    ((i64::from(seq) + count as i64) % (i64::from(i32::MAX) + 1)) as i32
}

/// Whether sequence `a` comes after `b`, in the protocol's wrapping sequence space.
fn after(a: i32, b: i32) -> bool {
    let modulus = i64::from(i32::MAX) + 1;
    let distance = (i64::from(a) - i64::from(b)).rem_euclid(modulus);
    distance > 0 && distance < modulus / 2
}

#[derive(Debug)]
pub(crate) struct Idempotence {
    producer_id: i64,
    epoch: i16,
    max_in_flight: usize,
    partitions: HashMap<TopicPartition, PartitionState>,
}

impl Idempotence {
    pub(crate) fn new(max_in_flight: usize) -> Self {
        Idempotence {
            producer_id: -1,
            epoch: -1,
            max_in_flight,
            partitions: HashMap::new(),
        }
    }

    pub(crate) fn has_producer_id(&self) -> bool {
        self.producer_id >= 0
    }

    pub(crate) fn set_producer_id(&mut self, producer_id: i64, epoch: i16) {
        tracing::info!(producer_id, epoch, "idempotent producer id assigned");
        self.producer_id = producer_id;
        self.epoch = epoch;
    }

    fn state(&mut self, tp: &TopicPartition) -> &mut PartitionState {
        let (producer_id, epoch) = (self.producer_id, self.epoch);
        self.partitions.entry(tp.clone()).or_insert(PartitionState {
            producer_id,
            epoch,
            next_sequence: 0,
            last_acked: -1,
            in_flight: 0,
            unacked: 0,
            needs_bump: false,
        })
    }

    /// Whether the head of `queue` may be drained now; performs a pending epoch bump for the
    /// partition when its in-flight requests are resolved.
    pub(crate) fn can_send(
        &mut self,
        tp: &TopicPartition,
        queue: &mut VecDeque<ProducerBatch>,
    ) -> Result<bool> {
        let (current_pid, current_epoch, max_in_flight) =
            (self.producer_id, self.epoch, self.max_in_flight);
        let st = self.state(tp);
        let quiet = st.in_flight == 0;
        if quiet && st.unacked == 0 && (st.producer_id, st.epoch) != (current_pid, current_epoch) {
            // An epoch bump happened elsewhere; start this partition afresh under it.
            st.producer_id = current_pid;
            st.epoch = current_epoch;
            st.next_sequence = 0;
            st.last_acked = -1;
        }
        if st.needs_bump {
            if !quiet {
                return Ok(false);
            }
            self.bump(tp, queue)?;
            if !self.has_producer_id() {
                return Ok(false);
            }
        }
        let Some(head) = queue.front() else {
            return Ok(false);
        };
        let st = self.state(tp);
        match head.sequence {
            // Until the broker has acknowledged one batch of this producer epoch, it has no
            // sequence to check against and would take a later batch first; so the first
            // batch goes alone.
            None if st.last_acked < 0 && st.unacked > 0 => Ok(false),
            None => Ok(st.in_flight < max_in_flight),
            Some(_) if st.in_flight > 0 => Ok(false),
            Some(seq) => {
                let expected = advance(st.last_acked, 1);
                let stale_epoch = seq.epoch != st.epoch || seq.producer_id != st.producer_id;
                if !stale_epoch
                    && (seq.base_sequence == expected || after(expected, seq.base_sequence))
                {
                    // The next sequence, or one a later acknowledgement already covers (its
                    // first attempt was written after all): resend it unchanged, and the
                    // broker answers with the stored offset or DUPLICATE_SEQUENCE_NUMBER.
                    return Ok(true);
                }
                // A real gap (or a stale epoch) with nothing in flight: only a new epoch gets
                // the partition going.
                self.bump(tp, queue)?;
                Ok(self.has_producer_id())
            }
        }
    }

    /// Gives the partition the next epoch (once per epoch) and renumbers its queued,
    /// sequenced batches from 0.
    fn bump(&mut self, tp: &TopicPartition, queue: &mut VecDeque<ProducerBatch>) -> Result<()> {
        let partition_epoch = self.state(tp).epoch;
        if partition_epoch == self.epoch {
            if self.epoch == i16::MAX {
                // Epochs exhausted: a new producer id is needed (the sender asks for one).
                self.producer_id = -1;
                return Ok(());
            }
            self.epoch += 1;
            tracing::info!(producer_id = self.producer_id, epoch = self.epoch, %tp, "bumped producer epoch");
        }
        let (pid, epoch) = (self.producer_id, self.epoch);
        let mut next = 0;
        let mut renumbered = 0;
        for batch in queue.iter_mut().filter(|b| b.sequence.is_some()) {
            batch.resequence(Sequenced {
                producer_id: pid,
                epoch,
                base_sequence: next,
            })?;
            next = advance(next, batch.record_count());
            renumbered += 1;
        }
        let st = self.state(tp);
        st.producer_id = pid;
        st.epoch = epoch;
        st.next_sequence = next;
        st.last_acked = -1;
        st.unacked = renumbered;
        st.needs_bump = false;
        Ok(())
    }

    /// Gives a batch drained for the first time its sequence.
    pub(crate) fn assign(&mut self, batch: &mut ProducerBatch) {
        if batch.sequence.is_some() {
            return;
        }
        let count = batch.record_count();
        let st = self.state(&batch.tp);
        batch.sequence = Some(Sequenced {
            producer_id: st.producer_id,
            epoch: st.epoch,
            base_sequence: st.next_sequence,
        });
        st.next_sequence = advance(st.next_sequence, count);
        st.unacked += 1;
    }

    pub(crate) fn sent(&mut self, tp: &TopicPartition) {
        self.state(tp).in_flight += 1;
    }

    pub(crate) fn answered(&mut self, tp: &TopicPartition) {
        let st = self.state(tp);
        st.in_flight = st.in_flight.saturating_sub(1);
    }

    /// The broker stored the batch (or already had it).
    pub(crate) fn acked(&mut self, batch: &ProducerBatch) {
        let count = batch.record_count();
        let st = self.state(&batch.tp);
        st.unacked = st.unacked.saturating_sub(1);
        if let Some(seq) = batch.sequence {
            if seq.epoch == st.epoch && seq.producer_id == st.producer_id {
                // Responses from an old and a new leader may arrive in any order: the last
                // acknowledged sequence only ever moves forward.
                let last = advance(seq.base_sequence, count.saturating_sub(1));
                if st.last_acked < 0 || after(last, st.last_acked) {
                    st.last_acked = last;
                }
            }
        }
    }

    /// The batch failed for good after it had a sequence: the partition's sequence is now
    /// unknown to us, so it needs a new epoch before anything else goes out.
    pub(crate) fn failed(&mut self, batch: &ProducerBatch) {
        let st = self.state(&batch.tp);
        if batch.sequence.is_some() {
            st.unacked = st.unacked.saturating_sub(1);
            st.needs_bump = true;
        }
    }

    /// Whether `batch` is the next one the broker expects for its partition.
    pub(crate) fn is_next(&mut self, batch: &ProducerBatch) -> bool {
        let st = self.state(&batch.tp);
        batch
            .sequence
            .is_some_and(|s| s.base_sequence == advance(st.last_acked, 1))
    }

    /// Marks the partition for an epoch bump (UNKNOWN_PRODUCER_ID, a real sequence gap).
    pub(crate) fn request_bump(&mut self, tp: &TopicPartition) {
        self.state(tp).needs_bump = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::producer::record::Delivery;
    use crate::protocol::records::{Compression, RecordBatchBuilder};

    fn tp() -> TopicPartition {
        TopicPartition::new("t", 0)
    }

    fn batch(id: u64, records: usize) -> ProducerBatch {
        let mut b = ProducerBatch::new(
            id,
            tp(),
            RecordBatchBuilder::new(Compression::None, 1024),
            records,
        );
        for _ in 0..records {
            let (tx, _rx) = tokio::sync::oneshot::channel();
            b.append(1, None, Some(b"v"), &[], 10, Delivery::Future(tx));
        }
        b
    }

    /// Drains the head if allowed, assigning its sequence and counting it in flight.
    fn drain(idem: &mut Idempotence, queue: &mut VecDeque<ProducerBatch>) -> Option<ProducerBatch> {
        if !idem.can_send(&tp(), queue).unwrap() {
            return None;
        }
        let mut b = queue.pop_front()?;
        idem.assign(&mut b);
        b.encoded().unwrap();
        idem.sent(&tp());
        Some(b)
    }

    fn seq(b: &ProducerBatch) -> (i16, i32) {
        let s = b.sequence.unwrap();
        (s.epoch, s.base_sequence)
    }

    fn ready() -> Idempotence {
        let mut idem = Idempotence::new(5);
        idem.set_producer_id(7, 0);
        idem
    }

    #[test]
    fn sequences_wrap_like_the_protocol() {
        assert_eq!(advance(0, 5), 5);
        assert_eq!(advance(i32::MAX, 1), 0);
        assert_eq!(advance(i32::MAX - 1, 3), 1);
        assert_eq!(advance(-1, 1), 0);
    }

    #[test]
    fn the_first_batch_of_an_epoch_goes_alone_then_five_in_flight() {
        let mut idem = ready();
        let mut q: VecDeque<_> = (0..8).map(|i| batch(i, 2)).collect();
        let first = drain(&mut idem, &mut q).unwrap();
        assert_eq!(seq(&first), (0, 0));
        assert!(
            drain(&mut idem, &mut q).is_none(),
            "nothing overtakes the first batch"
        );
        idem.answered(&tp());
        idem.acked(&first);
        let in_flight: Vec<_> = std::iter::from_fn(|| drain(&mut idem, &mut q)).collect();
        assert_eq!(in_flight.len(), 5, "max.in.flight");
        let bases: Vec<i32> = in_flight.iter().map(|b| seq(b).1).collect();
        assert_eq!(bases, vec![2, 4, 6, 8, 10]);
    }

    #[test]
    fn a_retried_batch_waits_until_nothing_else_is_in_flight_and_keeps_its_sequence() {
        let mut idem = ready();
        let mut q: VecDeque<_> = (0..4).map(|i| batch(i, 1)).collect();
        let a = drain(&mut idem, &mut q).unwrap();
        idem.answered(&tp());
        idem.acked(&a);
        let b = drain(&mut idem, &mut q).unwrap();
        let c = drain(&mut idem, &mut q).unwrap();
        // b fails with a retriable error and goes back to the head of the queue.
        idem.answered(&tp());
        q.push_front(b);
        assert!(drain(&mut idem, &mut q).is_none(), "c is still in flight");
        // c is rejected as out of order (b is missing): not the next sequence, so no bump.
        idem.answered(&tp());
        assert!(!idem.is_next(&c));
        q.insert(1, c);
        let b = drain(&mut idem, &mut q).unwrap();
        assert_eq!(seq(&b), (0, 1), "same epoch and sequence as before");
        assert!(
            drain(&mut idem, &mut q).is_none(),
            "the retried c waits for b"
        );
        idem.answered(&tp());
        idem.acked(&b);
        let c = drain(&mut idem, &mut q).unwrap();
        assert_eq!(seq(&c), (0, 2));
    }

    #[test]
    fn an_epoch_bump_waits_for_in_flight_batches_then_renumbers_from_zero() {
        let mut idem = ready();
        let mut q: VecDeque<_> = (0..4).map(|i| batch(i, 3)).collect();
        let a = drain(&mut idem, &mut q).unwrap();
        idem.answered(&tp());
        idem.acked(&a);
        let b = drain(&mut idem, &mut q).unwrap();
        let c = drain(&mut idem, &mut q).unwrap();
        // The broker lost our state: b gets UNKNOWN_PRODUCER_ID; c is still in flight.
        idem.answered(&tp());
        idem.request_bump(&tp());
        q.push_front(b);
        assert!(
            drain(&mut idem, &mut q).is_none(),
            "no bump while c is in flight"
        );
        idem.answered(&tp());
        q.insert(1, c);
        let b = drain(&mut idem, &mut q).unwrap();
        assert_eq!(seq(&b), (1, 0), "new epoch, renumbered from 0");
        assert_eq!(seq(&q[0]), (1, 3), "c renumbered right after b");
        idem.answered(&tp());
        idem.acked(&b);
        let c = drain(&mut idem, &mut q).unwrap();
        assert_eq!(seq(&c), (1, 3));
        let d = drain(&mut idem, &mut q).unwrap();
        assert_eq!(seq(&d), (1, 6), "new batches continue the new epoch");
    }

    #[test]
    fn a_retried_batch_already_covered_by_a_later_ack_is_resent_unchanged() {
        // Leader change: b and c reached the old leader, which replicated them and stalled;
        // d went to the new leader and was acknowledged first.
        let mut idem = ready();
        let mut q: VecDeque<_> = (0..4).map(|i| batch(i, 1)).collect();
        let a = drain(&mut idem, &mut q).unwrap();
        idem.answered(&tp());
        idem.acked(&a);
        let b = drain(&mut idem, &mut q).unwrap();
        let c = drain(&mut idem, &mut q).unwrap();
        let d = drain(&mut idem, &mut q).unwrap();
        idem.answered(&tp());
        idem.acked(&d);
        // b and c time out and are retried: no epoch bump, same sequences (the broker
        // recognises them as duplicates).
        idem.answered(&tp());
        idem.answered(&tp());
        q.push_back(b);
        q.push_back(c);
        let b = drain(&mut idem, &mut q).unwrap();
        assert_eq!(seq(&b), (0, 1));
        idem.answered(&tp());
        idem.acked(&b);
        let c = drain(&mut idem, &mut q).unwrap();
        assert_eq!(seq(&c), (0, 2));
        // An older acknowledgement arriving late never moves the last sequence back.
        idem.answered(&tp());
        idem.acked(&c);
        assert!(idem.is_next(&batch_with_seq(4)));
    }

    fn batch_with_seq(base: i32) -> ProducerBatch {
        let mut b = batch(99, 1);
        b.sequence = Some(Sequenced {
            producer_id: 7,
            epoch: 0,
            base_sequence: base,
        });
        b
    }

    #[test]
    fn sequence_order_wraps() {
        assert!(after(1, 0));
        assert!(after(0, i32::MAX));
        assert!(!after(i32::MAX, 0));
        assert!(!after(5, 5));
    }

    #[test]
    fn a_batch_failed_after_sending_forces_a_new_epoch() {
        let mut idem = ready();
        let mut q: VecDeque<_> = (0..3).map(|i| batch(i, 1)).collect();
        let a = drain(&mut idem, &mut q).unwrap();
        idem.answered(&tp());
        idem.acked(&a);
        let b = drain(&mut idem, &mut q).unwrap();
        // b expires (delivery.timeout.ms) after a failed attempt: its sequence is now a gap.
        idem.answered(&tp());
        idem.failed(&b);
        let c = drain(&mut idem, &mut q).unwrap();
        assert_eq!(seq(&c), (1, 0));
    }
}
