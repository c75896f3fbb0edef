//! Reading records: [`Consumer::poll`], [`Consumer::recv`] and [`Consumer::stream`].
//!
//! Every read first runs the rebalance callbacks the group task queued, then hands out
//! records from the fetch buffer, decoding them lazily ([`Drain`]). A record is handed out
//! only if its partition still has the epoch the data was fetched under, so nothing fetched
//! before a seek, a pause or a revocation ever reaches the application. The position moves
//! past each record handed out; when a read starts, everything handed out before counts as
//! processed and becomes what auto-commit may commit. Auto-commit itself runs here too, once
//! per `auto.commit.interval.ms`, as in Java: never from a timer of its own, so it cannot
//! overwrite a commit the application issued after the records it covers.

use std::time::Duration;

use futures::stream::BoxStream;
use tokio::time::{sleep_until, Instant};

use super::drain::Drain;
use super::rebalance::{next_event, RevokeCommit};
use super::record::ConsumerRecord;
use super::Consumer;
use crate::error::{Error, Result};

impl Consumer {
    /// Waits up to `timeout` for records and returns at most `max.poll.records` of them;
    /// an empty batch when none arrived in time (Java's `poll`).
    ///
    /// Records of one partition come in offset order. Rebalance callbacks run inside this
    /// call. With auto-commit, a revocation first commits the positions of the partitions
    /// it takes away; `poll` does not wait for that commit past `timeout`, the revocation
    /// finishes in a later call (without the commit once `max.poll.interval.ms` passed). Errors: [`Error::NoOffsetForPartition`] and `OFFSET_OUT_OF_RANGE` under
    /// `auto.offset.reset=none` until the application seeks, [`Error::Corrupt`] for data that
    /// fails to decode (records before it are returned first), a fatal group error (such as
    /// `FENCED_INSTANCE_ID`), and [`Error::InvalidArgument`] when nothing is subscribed or
    /// assigned.
    ///
    /// # Cancellation
    /// Cancel-safe: dropping the future loses no records (a record counts as handed out only
    /// when returned). A rebalance callback interrupted by the drop runs again, from the
    /// start, on the next call (unless the application unsubscribed in between).
    pub async fn poll(&mut self, timeout: Duration) -> Result<Vec<ConsumerRecord>> {
        let deadline = Instant::now() + timeout;
        let max = self.config.max_poll_records;
        self.next_records(max, Some(deadline), true).await
    }

    /// Waits for records, as long as it takes, and returns between one and
    /// `max.poll.records` of them. Otherwise as [`poll`](Self::poll).
    ///
    /// # Cancellation
    /// As [`poll`](Self::poll): cancel-safe.
    pub async fn recv(&mut self) -> Result<Vec<ConsumerRecord>> {
        let max = self.config.max_poll_records;
        self.next_records(max, None, true).await
    }

    /// The records as a [`Stream`](futures::Stream), one at a time. The stream yields the first error and then
    /// ends: inspect it, act (seek, for instance), and call `stream()` again to go on.
    ///
    /// Asking for the next record marks the previous ones as processed for auto-commit, at
    /// the latest every `max.poll.records` records, so the stream keeps the at-least-once
    /// guarantee of `poll`. Dropping the stream loses no records.
    ///
    /// The stream is boxed (one allocation per call), so it is `Unpin` and `next()` works on
    /// it directly.
    pub fn stream(&mut self) -> BoxStream<'_, Result<ConsumerRecord>> {
        Box::pin(futures::stream::unfold(Some(self), |state| async move {
            let consumer = state?;
            let mark =
                consumer.since_mark >= consumer.config.max_poll_records || consumer.drain.is_none();
            match consumer.next_records(1, None, mark).await {
                Ok(mut records) => {
                    consumer.since_mark += 1;
                    records.pop().map(|r| (Ok(r), Some(consumer)))
                }
                Err(e) => Some((Err(e), None)),
            }
        }))
    }

    /// The read behind `poll`, `recv` and the stream: `deadline` `None` waits until at least
    /// one record is there.
    async fn next_records(
        &mut self,
        max: usize,
        deadline: Option<Instant>,
        mark: bool,
    ) -> Result<Vec<ConsumerRecord>> {
        if self.subs.lock().mode == super::subscription::Mode::None {
            return Err(Error::InvalidArgument(
                "the consumer is not subscribed to any topic nor assigned any partition".into(),
            ));
        }
        if mark {
            self.subs.mark_polled();
            self.since_mark = 0;
        }
        if let Some(group) = &self.group {
            group.client.shared.mark_polled();
        }
        let mut first_pass = true;
        loop {
            // A revocation waiting for its auto-commit blocks the events behind it, not
            // the records of other partitions.
            let blocked = self.run_events().await;
            if let Some(group) = &self.group {
                if let Some(e) = group.client.shared.fatal(group.client.group_id()) {
                    return Err(e);
                }
            }
            if first_pass || !self.config.auto_commit_interval.is_zero() {
                self.maybe_auto_commit();
            }
            first_pass = false;
            let version = self.subs.version();
            if version != self.failure_checked {
                if let Some(e) = self.subs.failure() {
                    return Err(e);
                }
                self.failure_checked = version;
            }
            let records = self.take(max)?;
            if !records.is_empty() {
                return Ok(records);
            }
            let data = self.buffer.data.notified();
            let positioned = self.subs.positioned.notified();
            tokio::pin!(data, positioned);
            data.as_mut().enable();
            positioned.as_mut().enable();
            if !self.buffer.is_empty() || (self.pending_event.is_some() && !blocked) {
                continue;
            }
            let _waiting = self.group.as_ref().map(|g| g.client.shared.waiting());
            tokio::select! {
                _ = data => {}
                _ = positioned => {}
                _ = RevokeCommit::progress(self.revoke_commit.as_mut()), if blocked => {}
                event = next_event(self.events.as_mut()), if self.pending_event.is_none() => match event {
                    Some(ev) => self.pending_event = Some(ev),
                    None => self.events = None,
                },
                _ = sleep_until(deadline.unwrap_or_else(far_future)), if deadline.is_some() => {
                    return Ok(Vec::new());
                }
                // A long wait for records still auto-commits, as Java's poll loop does
                // (with an interval of 0, once per poll: the positions do not move while
                // it waits).
                _ = sleep_until(self.auto_commit_at.unwrap_or_else(far_future)),
                    if self.auto_commit_at.is_some()
                        && !self.config.auto_commit_interval.is_zero() => {}
            }
        }
    }

    /// Hands out up to `max` buffered records, moving positions past them.
    fn take(&mut self, max: usize) -> Result<Vec<ConsumerRecord>> {
        let mut out = Vec::new();
        while out.len() < max {
            if self.drain.is_none() {
                let Some(fetch) = self.buffer.pop() else {
                    break;
                };
                if !self
                    .subs
                    .can_hand_out(&fetch.tp, fetch.epoch, fetch.fetch_offset)
                {
                    if self
                        .subs
                        .misaligned(&fetch.tp, fetch.epoch, fetch.fetch_offset)
                    {
                        self.subs.refetch(&fetch.tp);
                    }
                    continue;
                }
                self.drain = Some(Drain::new(fetch, self.decode));
            }
            let Some(drain) = self.drain.as_mut() else {
                break;
            };
            let (tp, epoch) = (drain.tp.clone(), drain.epoch);
            if !self.subs.is_current(&tp, epoch) {
                self.drain = None;
                continue;
            }
            let start = out.len();
            let mut last: Option<(i64, Option<i32>)> = None;
            let mut exhausted = false;
            let mut error = None;
            while out.len() < max {
                match drain.next_record() {
                    Ok(Some(r)) => {
                        last = Some((r.offset + 1, r.leader_epoch));
                        if out.capacity() == 0 {
                            // Room for a typical poll at once rather than by doubling, but
                            // only once there is a record (empty polls allocate nothing).
                            out.reserve(max.min(256));
                        }
                        out.push(r);
                    }
                    Ok(None) => {
                        exhausted = true;
                        break;
                    }
                    Err(e) => {
                        error = Some(e);
                        break;
                    }
                }
            }
            let next = if exhausted {
                Some(drain.exhausted_at())
            } else {
                last.map(|(next, _)| next)
            };
            if exhausted || error.is_some() {
                self.drain = None;
            }
            if let Some(next) = next {
                if !self
                    .subs
                    .consumed(&tp, epoch, next, last.and_then(|(_, e)| e))
                {
                    // Revoked, paused or sought meanwhile: these are not ours to hand out.
                    out.truncate(start);
                    self.drain = None;
                    continue;
                }
            }
            if let Some(e) = error {
                // Fetch again from the position: the error comes back on the next read
                // (after the records before it), until the application seeks past it.
                self.subs.refetch(&tp);
                if out.is_empty() {
                    return Err(e);
                }
                break;
            }
        }
        Ok(out)
    }
}

fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(86_400 * 365)
}
