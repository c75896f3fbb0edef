//! Membership bookkeeping: finding the coordinator, generation resets, fatal errors, the
//! leader's watch on partition counts, the `max.poll.interval.ms` watchdog and LeaveGroup.

use futures::FutureExt;
use kafka_protocol::messages::LeaveGroupRequest;
use tokio::sync::oneshot;
use tokio::time::Instant;

use super::{ClassicGroup, Done, MemberState};
use crate::consumer::group::join::Generation;
use crate::consumer::group::requests::{self, Coordinator};
use crate::error::{KafkaCode, Result};

impl ClassicGroup {
    pub(super) fn start_find(&mut self) {
        self.finding = true;
        let cluster = self.cluster.clone();
        let group = self.group.clone();
        self.in_flight.push(
            async move { Done::Found(requests::find_coordinator(&cluster, &group).await) }.boxed(),
        );
    }

    pub(super) fn on_found(&mut self, result: Result<Coordinator>) {
        self.finding = false;
        match result {
            Ok(coord) => {
                tracing::info!(coordinator = coord.id, "discovered group coordinator");
                self.coordinator = Some(coord);
                self.find_attempts = 0;
                // Java resets the session clock on discovery.
                self.hb_last_ok = Instant::now();
            }
            Err(e) if e.kafka_code() == Some(KafkaCode::GROUP_AUTHORIZATION_FAILED) => {
                self.set_fatal(KafkaCode::GROUP_AUTHORIZATION_FAILED, e.to_string());
            }
            Err(e) => {
                self.find_attempts += 1;
                self.find_after = Instant::now() + self.retry.delay(self.find_attempts);
                tracing::debug!(error = %e, "group coordinator look-up failed");
            }
        }
    }

    pub(super) fn coordinator_unknown(&mut self, cause: &str) {
        if let Some(old) = self.coordinator.take() {
            tracing::info!(
                coordinator = old.id,
                cause,
                "group coordinator unavailable; rediscovering"
            );
            self.find_after = Instant::now();
        }
    }

    pub(super) fn request_rejoin(&mut self, reason: &str) {
        if self.rejoin.is_none() {
            tracing::info!(reason, "requesting to rejoin the group");
            self.rejoin = Some(reason.to_owned());
        }
    }

    pub(super) fn reset_generation(&mut self, reason: &str, reset_member_id: bool) {
        tracing::info!(
            reason,
            generation = self.generation.id,
            member = %self.generation.member_id,
            "resetting generation"
        );
        self.state = MemberState::Unjoined;
        self.generation = if reset_member_id {
            Generation::none()
        } else {
            Generation {
                member_id: self.generation.member_id.clone(),
                ..Generation::none()
            }
        };
        self.shared.set_generation(-1, &self.generation.member_id);
        self.needs_join_prepare = true;
        self.leader_snapshot = None;
        self.request_rejoin(reason);
    }

    pub(super) fn set_fatal(&mut self, code: KafkaCode, message: String) {
        tracing::error!(%code, message, "fatal group error; the consumer can no longer take part");
        self.fatal = true;
        self.shared.set_fatal(code, message);
        self.state = MemberState::Unjoined;
        self.shared.set_generation(-1, &self.generation.member_id);
        let (session, owned) = self.subs.owned();
        self.subs.mark_pending_revocation(session, &owned);
    }

    pub(super) fn partition_counts_changed(&self) -> bool {
        let Some(snapshot) = &self.leader_snapshot else {
            return false;
        };
        let metadata = self.cluster.metadata();
        snapshot.iter().any(|(topic, count)| {
            let now = metadata
                .topic(topic)
                .map_or(0, |t| t.partitions.len() as i32);
            now != *count && !(now == 0 && *count > 0 && metadata.topic(topic).is_none())
        })
    }

    pub(super) fn check_poll_interval(&mut self, now: Instant, subscribed: bool) {
        if let Some(expired_at) = self.poll_expired_at {
            if self.shared.last_poll() > expired_at {
                tracing::info!("consumer polled again after max.poll.interval.ms; rejoining");
                self.poll_expired_at = None;
                self.shared.want_poll(false);
            }
            return;
        }
        let in_group = self.state != MemberState::Unjoined;
        let idle = now.saturating_duration_since(self.shared.last_poll());
        if subscribed && in_group && idle > self.config.max_poll_interval {
            tracing::warn!(
                member = %self.generation.member_id,
                max_poll_interval_ms = self.config.max_poll_interval.as_millis() as u64,
                "consumer poll timeout has expired: the application did not poll within \
                 max.poll.interval.ms, so this member leaves the group and its partitions go to \
                 other members. Process records faster, lower max.poll.records, or raise \
                 max.poll.interval.ms. The consumer rejoins on its next poll."
            );
            self.maybe_leave("consumer poll timeout has expired", None);
            let (session, owned) = self.subs.owned();
            self.subs.mark_pending_revocation(session, &owned);
            self.poll_expired_at = Some(now);
            self.shared.want_poll(true);
        }
    }

    /// Sends LeaveGroup when this is a dynamic member in the group (Java's `maybeLeaveGroup`),
    /// then resets the generation.
    pub(super) fn maybe_leave(&mut self, reason: &str, done: Option<oneshot::Sender<()>>) {
        let dynamic = self.config.group_instance_id.is_none();
        let mut done = done;
        if let Some(coord) = self.coordinator.clone() {
            if dynamic
                && self.state != MemberState::Unjoined
                && !self.generation.member_id.is_empty()
            {
                tracing::info!(member = %self.generation.member_id, reason, "leaving the group");
                let req = coord.conn.version::<LeaveGroupRequest>().map(|v| {
                    (
                        v,
                        requests::leave_request(
                            v,
                            &self.group,
                            &self.generation.member_id,
                            None,
                            reason,
                        ),
                    )
                });
                let done_tx = done.take();
                self.in_flight.push(
                    async move {
                        match req {
                            Ok((_, req)) => {
                                if let Err(e) = coord.conn.request(&req).await {
                                    tracing::debug!(error = %e, "LeaveGroup failed");
                                }
                            }
                            Err(e) => tracing::debug!(error = %e, "LeaveGroup not sent"),
                        }
                        Done::Left { done: done_tx }
                    }
                    .boxed(),
                );
            }
        }
        if let Some(done) = done {
            let _ = done.send(());
        }
        self.reset_generation(reason, true);
        self.rejoin = None;
    }
}
