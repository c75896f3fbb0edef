//! The state of the partitions a consumer reads: what it subscribed to, which partitions it
//! holds, and for each its position, fetch offset, pause flag and pending reset.
//!
//! Shared (behind one short-lived `std` lock) by the application's calls, the fetcher task and
//! the group task. Two offsets are kept per partition:
//!
//! ```text
//!   committable ≤ position ≤ fetch_offset
//!   │             │          └ next offset the fetcher asks for (runs ahead: pipelining)
//!   │             └ next record to hand to the application (Java's `position()`)
//!   └ position when the application last asked for records: everything before it
//!     was processed, so auto-commit may commit it (at-least-once)
//! ```
//!
//! Every discontinuity (seek, reset, pause, reassignment) gives the partition a new `epoch`;
//! fetched data and offset look-ups carry the epoch they were started under and are dropped
//! when it no longer matches, so a late response can never move a position the application set.
//!
//! Likewise the whole assignment has a `session`, from `subscribe` to `unsubscribe`: rebalance
//! events carry the session they were made for, and one of an earlier session never touches
//! the partitions of the next.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

use tokio::sync::Notify;

use super::config::OffsetReset;
use super::pattern::TopicPattern;
use super::record::OffsetAndMetadata;
use crate::error::{Error, ErrorContext, KafkaCode, Result};
use crate::types::TopicPartition;

/// How partitions came to the consumer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Neither subscribed nor assigned.
    None,
    /// `subscribe(topics)`: the group assigns partitions.
    Topics(BTreeSet<String>),
    /// `subscribe_pattern(pattern)`: the group assigns partitions of the `matched` topics,
    /// which the group task recomputes from every new metadata snapshot.
    Pattern {
        pattern: TopicPattern,
        matched: BTreeSet<String>,
    },
    /// `assign(partitions)`: the application chose them.
    Manual,
}

/// Where a partition's starting position comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ResetTo {
    Earliest,
    Latest,
}

/// How far a partition's position is established.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Init {
    /// Waits for the group's committed offset (then the reset policy).
    Committed,
    /// Waits for a ListOffsets look-up.
    Reset(ResetTo),
    /// Has a position; fetchable.
    Ready,
    /// `auto.offset.reset=none` left it without a position: the application must seek.
    Failed(Failure),
}

/// Why a partition has no usable position under `auto.offset.reset=none`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Failure {
    NoCommittedOffset,
    OutOfRange(i64),
    /// A fetch error that retrying cannot fix.
    Broker(KafkaCode),
}

#[derive(Clone, Debug)]
pub(crate) struct PartitionState {
    pub(crate) init: Init,
    pub(crate) position: i64,
    /// Leader epoch of the last record handed out, committed with the position.
    pub(crate) position_leader_epoch: Option<i32>,
    pub(crate) fetch_offset: i64,
    pub(crate) epoch: u64,
    pub(crate) paused: bool,
    pub(crate) pending_revocation: bool,
    pub(crate) committable: Option<(i64, Option<i32>)>,
    /// A fetch at this offset came back out of range while the position was still behind
    /// it (a prefetch): the partition is not fetched again until the application's position
    /// reaches it, where a new answer decides. Cleared by every discontinuity.
    pub(crate) held_at: Option<i64>,
}

impl PartitionState {
    fn new(init: Init, epoch: u64) -> Self {
        PartitionState {
            init,
            position: -1,
            position_leader_epoch: None,
            fetch_offset: -1,
            epoch,
            paused: false,
            pending_revocation: false,
            committable: None,
            held_at: None,
        }
    }

    /// Whether the fetcher may ask for the partition now.
    fn fetchable(&self) -> bool {
        self.init == Init::Ready && !self.paused && !self.pending_revocation && !self.held()
    }

    /// Whether the fetch offset waits for the position after a stale out-of-range answer.
    fn held(&self) -> bool {
        self.held_at == Some(self.fetch_offset) && self.position < self.fetch_offset
    }
}

#[derive(Debug)]
pub(crate) struct State {
    pub(crate) mode: Mode,
    pub(crate) assigned: BTreeMap<TopicPartition, PartitionState>,
    next_epoch: u64,
    /// Counts subscriptions begun and ended (`subscribe` without one, `unsubscribe`):
    /// partitions and rebalance events belong to one session.
    session: u64,
}

impl State {
    /// A subscription starting without one: a Leave still queued for the one before must
    /// not end it.
    fn begin_session(&mut self) {
        if self.mode == Mode::None {
            self.session += 1;
        }
    }

    fn bump(&mut self, tp: &TopicPartition) -> Option<&mut PartitionState> {
        self.next_epoch += 1;
        let epoch = self.next_epoch;
        let p = self.assigned.get_mut(tp)?;
        p.epoch = epoch;
        p.held_at = None;
        Some(p)
    }

    fn add(&mut self, tp: TopicPartition, init: Init) {
        self.next_epoch += 1;
        let epoch = self.next_epoch;
        self.assigned
            .entry(tp)
            .or_insert_with(|| PartitionState::new(init, epoch));
    }
}

/// What an `OFFSET_OUT_OF_RANGE` fetch answer did; see [`Subscriptions::out_of_range`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum OutOfRange {
    /// The position is reset by `auto.offset.reset`.
    Reset,
    /// `auto.offset.reset=none`: `poll` raises the error until the application seeks.
    Failed,
    /// The answer no longer concerns the position (a prefetch, or the partition was sought,
    /// paused or unassigned meanwhile): ignored.
    Stale,
}

/// One partition the fetcher may ask for.
#[derive(Clone, Debug)]
pub(crate) struct Fetchable {
    pub(crate) tp: TopicPartition,
    pub(crate) fetch_offset: i64,
    pub(crate) epoch: u64,
}

/// The shared subscription state; see the [module docs](self).
#[derive(Debug)]
pub(crate) struct Subscriptions {
    state: Mutex<State>,
    /// Wakes the fetcher: assignment, positions or pauses changed.
    pub(crate) changed: Notify,
    /// Wakes callers of `position()` and a waiting `poll`: some position became known or
    /// failed.
    pub(crate) positioned: Notify,
    /// Counts changes, so `poll` re-checks failures only after one.
    version: AtomicU64,
}

impl Subscriptions {
    pub(crate) fn new() -> Self {
        Subscriptions {
            state: Mutex::new(State {
                mode: Mode::None,
                assigned: BTreeMap::new(),
                next_epoch: 0,
                session: 0,
            }),
            changed: Notify::new(),
            positioned: Notify::new(),
            version: AtomicU64::new(0),
        }
    }

    /// The lock; never held across an `.await`.
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn wake(&self) {
        self.version.fetch_add(1, Ordering::AcqRel);
        self.changed.notify_one();
        self.positioned.notify_waiters();
    }

    /// The change counter.
    pub(crate) fn version(&self) -> u64 {
        self.version.load(Ordering::Acquire)
    }

    /// `subscribe(topics)`: returns whether the topic set changed.
    pub(crate) fn subscribe(&self, topics: BTreeSet<String>) -> Result<bool> {
        let mut s = self.lock();
        match &s.mode {
            Mode::Manual => return Err(exclusive("subscribe()", "assign()")),
            Mode::Pattern { .. } => return Err(exclusive("subscribe()", "subscribe_pattern()")),
            Mode::None | Mode::Topics(_) => {}
        }
        let changed = s.mode != Mode::Topics(topics.clone());
        s.begin_session();
        s.mode = Mode::Topics(topics);
        Ok(changed)
    }

    /// The subscribed topics, if the group assigns partitions.
    pub(crate) fn topics(&self) -> Option<BTreeSet<String>> {
        self.topics_in_session().map(|(topics, _)| topics)
    }

    /// The subscribed topics and the session they belong to, read together.
    pub(crate) fn topics_in_session(&self) -> Option<(BTreeSet<String>, u64)> {
        let s = self.lock();
        match &s.mode {
            Mode::Topics(t) | Mode::Pattern { matched: t, .. } => Some((t.clone(), s.session)),
            Mode::None | Mode::Manual => None,
        }
    }

    /// The current session: from `subscribe` (without a subscription) to `unsubscribe`.
    pub(crate) fn session(&self) -> u64 {
        self.lock().session
    }

    /// The partitions held and the session they belong to, read together.
    pub(crate) fn owned(&self) -> (u64, Vec<TopicPartition>) {
        let s = self.lock();
        (s.session, s.assigned.keys().cloned().collect())
    }

    /// `assign(partitions)`: keeps the state of partitions already held, drops the others,
    /// adds the new ones waiting for `init`. Returns the partitions dropped.
    pub(crate) fn assign_manual(
        &self,
        partitions: BTreeSet<TopicPartition>,
        init: Init,
    ) -> Result<Vec<TopicPartition>> {
        let mut s = self.lock();
        match s.mode {
            Mode::Topics(_) => return Err(exclusive("assign()", "subscribe()")),
            Mode::Pattern { .. } => return Err(exclusive("assign()", "subscribe_pattern()")),
            Mode::None | Mode::Manual => {}
        }
        let dropped: Vec<TopicPartition> = s
            .assigned
            .keys()
            .filter(|tp| !partitions.contains(*tp))
            .cloned()
            .collect();
        for tp in &dropped {
            s.assigned.remove(tp);
        }
        for tp in partitions {
            s.add(tp, init.clone());
        }
        s.mode = if s.assigned.is_empty() {
            Mode::None
        } else {
            Mode::Manual
        };
        drop(s);
        self.wake();
        Ok(dropped)
    }

    /// Forgets the subscription and every partition, and ends the session.
    pub(crate) fn unsubscribe(&self) {
        let mut s = self.lock();
        s.mode = Mode::None;
        s.assigned.clear();
        s.session += 1;
        drop(s);
        self.wake();
    }

    /// Partitions the group gave this member in `session`, waiting for their committed
    /// offsets. Returns false, adding nothing, when that session is over.
    pub(crate) fn add_assigned(&self, session: u64, added: &[TopicPartition]) -> bool {
        let mut s = self.lock();
        if s.session != session || !matches!(s.mode, Mode::Topics(_) | Mode::Pattern { .. }) {
            return false;
        }
        for tp in added {
            s.add(tp.clone(), Init::Committed);
        }
        drop(s);
        self.wake();
        true
    }

    /// Stops fetching and handing out records of partitions of `session` about to be
    /// revoked.
    pub(crate) fn mark_pending_revocation(&self, session: u64, partitions: &[TopicPartition]) {
        let mut s = self.lock();
        if s.session != session {
            return;
        }
        for tp in partitions {
            if let Some(p) = s.bump(tp) {
                p.pending_revocation = true;
            }
        }
        drop(s);
        self.wake();
    }

    /// Drops partitions of `session` (revoked or lost).
    pub(crate) fn remove(&self, session: u64, partitions: &[TopicPartition]) {
        let mut s = self.lock();
        if s.session != session {
            return;
        }
        for tp in partitions {
            s.assigned.remove(tp);
        }
        drop(s);
        self.wake();
    }

    /// The partitions held, in order.
    pub(crate) fn assignment(&self) -> Vec<TopicPartition> {
        self.lock().assigned.keys().cloned().collect()
    }

    /// Sets the position of a held partition (`seek`).
    pub(crate) fn seek(&self, tp: &TopicPartition, offset: i64) -> Result<()> {
        if offset < 0 {
            return Err(Error::InvalidArgument(format!(
                "seek to negative offset {offset} for {tp}"
            )));
        }
        let mut s = self.lock();
        let p = s.bump(tp).ok_or_else(|| not_assigned(tp))?;
        p.init = Init::Ready;
        p.position = offset;
        p.position_leader_epoch = None;
        p.fetch_offset = offset;
        drop(s);
        self.wake();
        Ok(())
    }

    /// Asks for a ListOffsets look-up (`seek_to_beginning`/`seek_to_end`).
    pub(crate) fn request_reset(&self, partitions: &[TopicPartition], to: ResetTo) -> Result<()> {
        let mut s = self.lock();
        if let Some(tp) = partitions.iter().find(|tp| !s.assigned.contains_key(*tp)) {
            return Err(not_assigned(tp));
        }
        for tp in partitions {
            if let Some(p) = s.bump(tp) {
                p.init = Init::Reset(to);
            }
        }
        drop(s);
        self.wake();
        Ok(())
    }

    /// Pauses or resumes partitions. Pausing drops data already fetched for them (it is
    /// fetched again after `resume`), so a paused partition holds no buffer memory.
    pub(crate) fn set_paused(&self, partitions: &[TopicPartition], paused: bool) -> Result<()> {
        let mut s = self.lock();
        if let Some(tp) = partitions.iter().find(|tp| !s.assigned.contains_key(*tp)) {
            return Err(not_assigned(tp));
        }
        for tp in partitions {
            let already = s.assigned.get(tp).is_some_and(|p| p.paused == paused);
            if already {
                continue;
            }
            if let Some(p) = s.bump(tp) {
                p.paused = paused;
                if p.init == Init::Ready {
                    p.fetch_offset = p.position;
                }
            }
        }
        drop(s);
        self.wake();
        Ok(())
    }

    pub(crate) fn paused(&self) -> Vec<TopicPartition> {
        let s = self.lock();
        s.assigned
            .iter()
            .filter(|(_, p)| p.paused)
            .map(|(tp, _)| tp.clone())
            .collect()
    }

    /// Partitions the fetcher may ask for.
    pub(crate) fn fetchable(&self) -> Vec<Fetchable> {
        let s = self.lock();
        s.assigned
            .iter()
            .filter(|(_, p)| p.fetchable())
            .map(|(tp, p)| Fetchable {
                tp: tp.clone(),
                fetch_offset: p.fetch_offset,
                epoch: p.epoch,
            })
            .collect()
    }

    /// Partitions waiting for a committed offset, and those waiting for a reset.
    pub(crate) fn needing_positions(&self) -> (Vec<(TopicPartition, u64)>, Vec<Fetchable>) {
        let s = self.lock();
        let mut committed = Vec::new();
        let mut reset = Vec::new();
        for (tp, p) in &s.assigned {
            if p.pending_revocation {
                continue;
            }
            match p.init {
                Init::Committed => committed.push((tp.clone(), p.epoch)),
                Init::Reset(to) => reset.push(Fetchable {
                    tp: tp.clone(),
                    fetch_offset: match to {
                        ResetTo::Earliest => -2,
                        ResetTo::Latest => -1,
                    },
                    epoch: p.epoch,
                }),
                _ => {}
            }
        }
        (committed, reset)
    }

    /// Applies a committed offset found for a partition (or its absence: the reset policy).
    pub(crate) fn committed_found(
        &self,
        tp: &TopicPartition,
        epoch: u64,
        committed: Option<&OffsetAndMetadata>,
        policy: OffsetReset,
    ) {
        let mut s = self.lock();
        let Some(p) = s.assigned.get_mut(tp) else {
            return;
        };
        if p.epoch != epoch || p.init != Init::Committed {
            return;
        }
        match (committed, policy) {
            (Some(c), _) => {
                p.init = Init::Ready;
                p.position = c.offset;
                p.position_leader_epoch = c.leader_epoch;
                p.fetch_offset = c.offset;
            }
            (None, OffsetReset::Earliest) => p.init = Init::Reset(ResetTo::Earliest),
            (None, OffsetReset::Latest) => p.init = Init::Reset(ResetTo::Latest),
            (None, OffsetReset::None) => p.init = Init::Failed(Failure::NoCommittedOffset),
        }
        drop(s);
        self.wake();
    }

    /// Applies the offset a reset look-up found.
    pub(crate) fn reset_done(&self, tp: &TopicPartition, epoch: u64, offset: i64) {
        let mut s = self.lock();
        let Some(p) = s.assigned.get_mut(tp) else {
            return;
        };
        if p.epoch != epoch || !matches!(p.init, Init::Reset(_)) {
            return;
        }
        tracing::info!(topic = %tp.topic, partition = tp.partition, offset, "reset position");
        p.init = Init::Ready;
        p.position = offset;
        p.position_leader_epoch = None;
        p.fetch_offset = offset;
        drop(s);
        self.wake();
    }

    /// The broker said `fetch_offset` is out of range. As in Java, this is acted on (reset by
    /// `policy`, or fail) only if the partition is still assigned and fetchable and its
    /// position is still `fetch_offset`, checked and applied under one lock so a concurrent
    /// `seek` always wins. Otherwise the answer is stale: records buffered before a prefetch
    /// that failed are still handed out, and the partition is fetched again once the
    /// position reaches that offset.
    pub(crate) fn out_of_range(
        &self,
        tp: &TopicPartition,
        fetch_offset: i64,
        policy: OffsetReset,
    ) -> OutOfRange {
        let mut s = self.lock();
        let Some(p) = s.assigned.get_mut(tp) else {
            return OutOfRange::Stale;
        };
        if !p.fetchable() || p.position != fetch_offset {
            if p.fetchable() && p.fetch_offset == fetch_offset && p.position < fetch_offset {
                p.held_at = Some(fetch_offset);
            }
            return OutOfRange::Stale;
        }
        let Some(p) = s.bump(tp) else {
            return OutOfRange::Stale;
        };
        let (init, outcome) = match policy {
            OffsetReset::Earliest => (Init::Reset(ResetTo::Earliest), OutOfRange::Reset),
            OffsetReset::Latest => (Init::Reset(ResetTo::Latest), OutOfRange::Reset),
            OffsetReset::None => (
                Init::Failed(Failure::OutOfRange(fetch_offset)),
                OutOfRange::Failed,
            ),
        };
        p.init = init;
        drop(s);
        self.wake();
        outcome
    }

    /// Whether `epoch` is still the partition's epoch.
    pub(crate) fn is_current(&self, tp: &TopicPartition, epoch: u64) -> bool {
        self.lock()
            .assigned
            .get(tp)
            .is_some_and(|p| p.epoch == epoch)
    }

    /// Moves the fetch offset past data the fetcher buffered.
    pub(crate) fn fetched(&self, tp: &TopicPartition, epoch: u64, next_offset: i64) {
        let mut s = self.lock();
        if let Some(p) = s.assigned.get_mut(tp) {
            if p.epoch == epoch && next_offset > p.fetch_offset {
                p.fetch_offset = next_offset;
                p.held_at = None;
            }
        }
    }

    /// A fetch error the application must see (authorization, corruption on the broker):
    /// the partition stops until the application seeks it.
    pub(crate) fn fail(&self, tp: &TopicPartition, epoch: u64, code: KafkaCode) {
        let mut s = self.lock();
        let current = s.assigned.get(tp).is_some_and(|p| p.epoch == epoch);
        if current {
            if let Some(p) = s.bump(tp) {
                p.init = Init::Failed(Failure::Broker(code));
            }
        }
        drop(s);
        self.wake();
    }

    /// Discards data fetched ahead of the position (it did not line up): refetch from the
    /// position.
    pub(crate) fn refetch(&self, tp: &TopicPartition) {
        let mut s = self.lock();
        if let Some(p) = s.bump(tp) {
            p.fetch_offset = p.position;
        }
        drop(s);
        self.changed.notify_one();
    }

    /// Records handed to the application: the position moves to `next`.
    pub(crate) fn consumed(
        &self,
        tp: &TopicPartition,
        epoch: u64,
        next: i64,
        leader_epoch: Option<i32>,
    ) -> bool {
        let mut s = self.lock();
        let mut released = false;
        let current = match s.assigned.get_mut(tp) {
            Some(p) if p.epoch == epoch => {
                if next > p.position {
                    let held = !p.fetchable();
                    p.position = next;
                    if leader_epoch.is_some() {
                        p.position_leader_epoch = leader_epoch;
                    }
                    released = held && p.fetchable();
                }
                true
            }
            _ => false,
        };
        drop(s);
        if released {
            // The position reached a fetch offset held back after a stale out-of-range
            // answer: fetch there now.
            self.changed.notify_one();
        }
        current
    }

    /// The state a completed fetch must still match to be handed out: same epoch, position
    /// at its first offset, not paused or being revoked.
    pub(crate) fn can_hand_out(&self, tp: &TopicPartition, epoch: u64, first: i64) -> bool {
        let s = self.lock();
        s.assigned.get(tp).is_some_and(|p| {
            p.epoch == epoch
                && p.position == first
                && p.init == Init::Ready
                && !p.paused
                && !p.pending_revocation
        })
    }

    /// A completed fetch of the current epoch that does not start at the position (the data
    /// before it was dropped): the partition must be fetched again from the position.
    pub(crate) fn misaligned(&self, tp: &TopicPartition, epoch: u64, first: i64) -> bool {
        let s = self.lock();
        s.assigned.get(tp).is_some_and(|p| {
            p.epoch == epoch
                && p.position != first
                && p.init == Init::Ready
                && !p.paused
                && !p.pending_revocation
        })
    }

    /// The application asks for records again: what it had before is processed.
    pub(crate) fn mark_polled(&self) {
        let mut s = self.lock();
        for p in s.assigned.values_mut() {
            if p.init == Init::Ready {
                p.committable = Some((p.position, p.position_leader_epoch));
            }
        }
    }

    /// An explicit commit of `offsets` is being sent: auto-commit may no longer commit less
    /// for those partitions until the application asks for records again (the positions
    /// then are newer than this commit). Without this, a `stream()` that marks its position
    /// only every `max.poll.records` records could auto-commit an older offset after the
    /// application committed a newer one.
    pub(crate) fn commit_issued(&self, offsets: &HashMap<TopicPartition, OffsetAndMetadata>) {
        let mut s = self.lock();
        for (tp, o) in offsets {
            let Some(p) = s.assigned.get_mut(tp) else {
                continue;
            };
            if p.committable.is_some_and(|(c, _)| c < o.offset) {
                p.committable = Some((o.offset, o.leader_epoch));
            }
        }
    }

    /// Positions of every partition with one (Java's `allConsumed`), optionally only `of`.
    pub(crate) fn positions(
        &self,
        of: Option<&[TopicPartition]>,
    ) -> HashMap<TopicPartition, OffsetAndMetadata> {
        let s = self.lock();
        s.assigned
            .iter()
            .filter(|(tp, p)| p.init == Init::Ready && of.is_none_or(|of| of.contains(tp)))
            .map(|(tp, p)| (tp.clone(), offset_meta(p.position, p.position_leader_epoch)))
            .collect()
    }

    /// What auto-commit may commit: positions as of the application's last poll.
    pub(crate) fn committable(&self) -> HashMap<TopicPartition, OffsetAndMetadata> {
        let s = self.lock();
        s.assigned
            .iter()
            .filter_map(|(tp, p)| {
                let (offset, epoch) = p.committable?;
                Some((tp.clone(), offset_meta(offset, epoch)))
            })
            .collect()
    }

    /// A held partition's position, or why it has none yet (`Ok(None)`: still looking).
    pub(crate) fn position(&self, tp: &TopicPartition) -> Result<Option<i64>> {
        let s = self.lock();
        let p = s.assigned.get(tp).ok_or_else(|| not_assigned(tp))?;
        match &p.init {
            Init::Ready => Ok(Some(p.position)),
            Init::Failed(f) => Err(failure_error(tp, f)),
            _ => Ok(None),
        }
    }

    /// The error `poll` returns while partitions have no usable position.
    pub(crate) fn failure(&self) -> Option<Error> {
        let s = self.lock();
        let mut no_offset = Vec::new();
        for (tp, p) in &s.assigned {
            match &p.init {
                Init::Failed(Failure::NoCommittedOffset) => no_offset.push(tp.clone()),
                Init::Failed(f) => return Some(failure_error(tp, f)),
                _ => {}
            }
        }
        (!no_offset.is_empty()).then_some(Error::NoOffsetForPartition {
            partitions: no_offset,
        })
    }
}

fn offset_meta(offset: i64, leader_epoch: Option<i32>) -> OffsetAndMetadata {
    OffsetAndMetadata {
        offset,
        leader_epoch,
        metadata: String::new(),
    }
}

fn failure_error(tp: &TopicPartition, f: &Failure) -> Error {
    match f {
        Failure::NoCommittedOffset => Error::NoOffsetForPartition {
            partitions: vec![tp.clone()],
        },
        Failure::OutOfRange(offset) => Error::broker(
            KafkaCode::OFFSET_OUT_OF_RANGE.code(),
            ErrorContext::topic(&tp.topic, Some(tp.partition)),
            Some(format!(
                "fetch offset {offset} is out of range and auto.offset.reset is none; seek to \
                 continue"
            )),
        ),
        Failure::Broker(code) => Error::broker(
            code.code(),
            ErrorContext::topic(&tp.topic, Some(tp.partition)),
            Some("fetching stopped; seek to retry".into()),
        ),
    }
}

/// Java's `IllegalStateException`: topics, a pattern and assigned partitions are mutually
/// exclusive until `unsubscribe`.
fn exclusive(call: &str, earlier: &str) -> Error {
    Error::InvalidArgument(format!(
        "{call} after {earlier}: subscribing to topics, to a pattern and assigning partitions \
         are mutually exclusive; call unsubscribe() first (Java's IllegalStateException)"
    ))
}

pub(crate) fn not_assigned(tp: &TopicPartition) -> Error {
    Error::InvalidArgument(format!("partition {tp} is not assigned to this consumer"))
}

mod pattern;
#[cfg(test)]
mod tests;
