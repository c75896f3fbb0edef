//! Incremental fetch sessions (KIP-227), one per broker, as the Java `FetchSessionHandler`.
//!
//! The first Fetch to a broker is *full*: every partition, session id 0, epoch 0, which asks
//! the broker to open a session and remember the partitions and their fetch offsets. After
//! that each Fetch is *incremental*: it names only the partitions whose fetch offset (or
//! other fetch data) changed, lists the ones dropped as forgotten, and carries the session id
//! with the next epoch; the broker answers only for partitions with news. With many
//! partitions and little traffic this shrinks both requests and responses to almost nothing.
//!
//! Requests to one broker are strictly sequential (one in flight), which the epoch sequence
//! requires. Any error or lost response makes the next request full again: with the same
//! session id and epoch 0 (close it, open a new one), or with id 0 when the broker no longer
//! knows the session. When the consumer closes, a last request with the session id and the
//! final epoch (-1) ends the session, so the broker frees its slot at once instead of when
//! it expires.

use std::collections::HashMap;

use crate::error::KafkaCode;
use crate::types::TopicPartition;

/// `FETCH_SESSION_ID_NOT_FOUND`.
const SESSION_NOT_FOUND: KafkaCode = KafkaCode::from_code(70);

/// The epoch that closes a session (Java's `FetchMetadata.FINAL_EPOCH`).
pub(crate) const FINAL_EPOCH: i32 = -1;

/// What the fetcher wants from a partition in the next Fetch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct PartitionFetch {
    pub(crate) tp: TopicPartition,
    pub(crate) fetch_offset: i64,
    pub(crate) leader_epoch: i32,
    pub(crate) max_bytes: i32,
}

/// The session part of one Fetch request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SessionRequest {
    pub(crate) session_id: i32,
    pub(crate) epoch: i32,
    /// Partitions to put in the request (all of them for a full request).
    pub(crate) partitions: Vec<PartitionFetch>,
    /// Partitions to drop from the session.
    pub(crate) forgotten: Vec<TopicPartition>,
    pub(crate) full: bool,
}

/// One broker's session state.
#[derive(Debug, Default)]
pub(crate) struct FetchSession {
    id: i32,
    /// The epoch of the next request; 0 asks for a new session.
    epoch: i32,
    /// The partitions the broker holds for the session, with what it was last told.
    partitions: HashMap<TopicPartition, PartitionFetch>,
    /// What `partitions` becomes when the in-flight request succeeds.
    pending: Option<HashMap<TopicPartition, PartitionFetch>>,
}

impl FetchSession {
    /// The session part of the next request for `wanted`.
    pub(crate) fn build(&mut self, wanted: Vec<PartitionFetch>) -> SessionRequest {
        let next: HashMap<TopicPartition, PartitionFetch> =
            wanted.iter().map(|p| (p.tp.clone(), p.clone())).collect();
        let request = if self.id == 0 || self.epoch == 0 {
            SessionRequest {
                session_id: self.id,
                epoch: 0,
                partitions: wanted,
                forgotten: Vec::new(),
                full: true,
            }
        } else {
            let changed = wanted
                .into_iter()
                .filter(|p| self.partitions.get(&p.tp) != Some(p))
                .collect();
            let mut forgotten: Vec<TopicPartition> = self
                .partitions
                .keys()
                .filter(|tp| !next.contains_key(*tp))
                .cloned()
                .collect();
            forgotten.sort();
            SessionRequest {
                session_id: self.id,
                epoch: self.epoch,
                partitions: changed,
                forgotten,
                full: false,
            }
        };
        self.pending = Some(next);
        request
    }

    /// The broker answered without a top-level error.
    pub(crate) fn succeeded(&mut self, request: &SessionRequest, response_session_id: i32) {
        let pending = self.pending.take().unwrap_or_default();
        if request.full {
            if response_session_id == 0 {
                // The broker keeps no session (sessions disabled or its cache is full): keep
                // sending full requests.
                *self = FetchSession::default();
                return;
            }
            self.id = response_session_id;
            self.epoch = 1;
        } else {
            self.epoch = if self.epoch == i32::MAX {
                1
            } else {
                self.epoch + 1
            };
        }
        self.partitions = pending;
    }

    /// The broker answered with a top-level error.
    pub(crate) fn failed(&mut self, code: KafkaCode) {
        if code == SESSION_NOT_FOUND {
            *self = FetchSession::default();
        } else {
            self.close_and_renew();
        }
    }

    /// The request got no answer (connection lost, timeout): the next one opens a new session.
    pub(crate) fn close_and_renew(&mut self) {
        self.epoch = 0;
        self.partitions.clear();
        self.pending = None;
    }

    /// The request that ends the session at the broker, when there may be one (even after an
    /// error: the broker may still hold it); the session is forgotten either way. The broker
    /// treats the final epoch as a full request without partitions and answers at once.
    pub(crate) fn close(&mut self) -> Option<SessionRequest> {
        let id = self.id;
        *self = FetchSession::default();
        (id != 0).then(|| SessionRequest {
            session_id: id,
            epoch: FINAL_EPOCH,
            partitions: Vec::new(),
            forgotten: Vec::new(),
            full: true,
        })
    }

    /// The broker cannot do sessions (Fetch below v7): forget everything.
    pub(crate) fn reset(&mut self) {
        *self = FetchSession::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn want(p: i32, offset: i64) -> PartitionFetch {
        PartitionFetch {
            tp: TopicPartition::new("t", p),
            fetch_offset: offset,
            leader_epoch: 0,
            max_bytes: 1024,
        }
    }

    #[test]
    fn full_then_incremental_then_renewed_after_an_error() {
        let mut s = FetchSession::default();
        let first = s.build(vec![want(0, 0), want(1, 0)]);
        assert!(first.full);
        assert_eq!(
            (first.session_id, first.epoch, first.partitions.len()),
            (0, 0, 2)
        );
        s.succeeded(&first, 77);

        // Partition 0 moved on, partition 1 did not, partition 2 is new, nothing forgotten.
        let second = s.build(vec![want(0, 10), want(1, 0), want(2, 0)]);
        assert!(!second.full);
        assert_eq!((second.session_id, second.epoch), (77, 1));
        let sent: Vec<i32> = second.partitions.iter().map(|p| p.tp.partition).collect();
        assert_eq!(sent, vec![0, 2]);
        assert!(second.forgotten.is_empty());
        s.succeeded(&second, 77);

        // Partition 1 dropped: forgotten, epoch advances.
        let third = s.build(vec![want(0, 10), want(2, 0)]);
        assert_eq!(third.epoch, 2);
        assert!(third.partitions.is_empty());
        assert_eq!(third.forgotten, vec![TopicPartition::new("t", 1)]);

        // The request was lost: next is full, closing session 77.
        s.close_and_renew();
        let fourth = s.build(vec![want(0, 10)]);
        assert!(fourth.full);
        assert_eq!((fourth.session_id, fourth.epoch), (77, 0));
        s.failed(SESSION_NOT_FOUND);
        let fifth = s.build(vec![want(0, 10)]);
        assert_eq!((fifth.session_id, fifth.epoch, fifth.full), (0, 0, true));
    }

    #[test]
    fn closing_sends_the_final_epoch_for_an_open_session_only() {
        let mut s = FetchSession::default();
        assert_eq!(s.close(), None, "no session yet");
        let r = s.build(vec![want(0, 0)]);
        s.succeeded(&r, 77);
        let r = s.build(vec![want(0, 5)]);
        s.succeeded(&r, 77);
        let close = s.close().unwrap();
        assert_eq!(
            (close.session_id, close.epoch, close.full),
            (77, FINAL_EPOCH, true)
        );
        assert!(close.partitions.is_empty() && close.forgotten.is_empty());
        assert_eq!(s.close(), None, "closed once");
        // After a lost response the broker may still hold the session: close it too.
        let r = s.build(vec![want(0, 0)]);
        s.succeeded(&r, 78);
        s.close_and_renew();
        assert_eq!(s.close().map(|c| c.session_id), Some(78));
    }

    #[test]
    fn a_broker_without_sessions_gets_full_requests() {
        let mut s = FetchSession::default();
        let r = s.build(vec![want(0, 0)]);
        s.succeeded(&r, 0);
        let r = s.build(vec![want(0, 5)]);
        assert!(r.full);
        assert_eq!(r.partitions.len(), 1);
    }

    #[test]
    fn epochs_wrap_to_one() {
        let mut s = FetchSession::default();
        let r = s.build(vec![want(0, 0)]);
        s.succeeded(&r, 5);
        s.epoch = i32::MAX;
        let r = s.build(vec![want(0, 0)]);
        s.succeeded(&r, 5);
        assert_eq!(s.epoch, 1);
    }
}
