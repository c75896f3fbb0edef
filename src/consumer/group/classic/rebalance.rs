//! The rebalance half of the classic member: Java's `onJoinPrepare`, JoinGroup, SyncGroup
//! and `onJoinComplete`, with the error handling of `AbstractCoordinator`.

use std::collections::BTreeSet;

use futures::FutureExt;
use kafka_protocol::messages::JoinGroupResponse;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use super::{ClassicGroup, Done, MemberState, Phase, Then};
use crate::consumer::assignor::{Assignment, RebalanceProtocol};
use crate::consumer::group::join::{self, Generation, JoinParams, SyncParams, Synced};
use crate::consumer::group::{EventKind, GroupEvent};
use crate::consumer::protocol::{decode_assignment, PROTOCOL_TYPE};
use crate::error::{Error, KafkaCode, Result};
use crate::types::TopicPartition;

impl ClassicGroup {
    /// Java's `onJoinPrepare`: give up partitions as the protocol requires, then join.
    pub(super) fn prepare_join(&mut self) {
        if !self.needs_join_prepare {
            self.start_join();
            return;
        }
        self.needs_join_prepare = false;
        let (session, owned) = self.subs.owned();
        if !self.generation.is_valid() {
            if !owned.is_empty() {
                tracing::info!(?owned, "generation was reset: partitions are lost");
                let ack = self.send_event(EventKind::Lost, owned, -1, session);
                self.phase = Phase::AwaitRevoke {
                    ack,
                    then: Then::Join,
                };
                return;
            }
        } else {
            let revoked: Vec<TopicPartition> = match self.protocol {
                RebalanceProtocol::Eager => owned,
                RebalanceProtocol::Cooperative => {
                    let topics = self.subscribed().unwrap_or_default();
                    owned
                        .into_iter()
                        .filter(|tp| !topics.contains(&tp.topic))
                        .collect()
                }
            };
            if self.protocol == RebalanceProtocol::Eager || !revoked.is_empty() {
                let ack = self.send_event(EventKind::Revoked, revoked, self.generation.id, session);
                self.phase = Phase::AwaitRevoke {
                    ack,
                    then: Then::Join,
                };
                return;
            }
        }
        self.start_join();
    }

    /// Queues a rebalance event for the application's next poll. `session` is the
    /// subscription session the partitions belong to (see `Subscriptions`): poll drops the
    /// event if the application unsubscribed since.
    pub(super) fn send_event(
        &mut self,
        kind: EventKind,
        partitions: Vec<TopicPartition>,
        generation: i32,
        session: u64,
    ) -> oneshot::Receiver<()> {
        if kind != EventKind::Assigned {
            self.subs.mark_pending_revocation(session, &partitions);
        }
        let (done, ack) = oneshot::channel();
        let event = GroupEvent {
            kind,
            partitions,
            generation,
            session,
            done,
        };
        if let Err(e) = self.events.try_send(event) {
            // The consumer is gone (closed) or, impossibly, many events behind: acknowledge
            // ourselves so the group does not wait for a callback that will never run.
            tracing::debug!("rebalance event not delivered: {e}");
            let (mpsc::error::TrySendError::Full(ev) | mpsc::error::TrySendError::Closed(ev)) = e;
            let _ = ev.done.send(());
        }
        ack
    }

    pub(super) fn on_ack(&mut self) {
        match std::mem::replace(&mut self.phase, Phase::Idle) {
            Phase::AwaitRevoke {
                then: Then::Join, ..
            } if self.subscribed().is_some() && self.coordinator.is_some() && !self.fatal => {
                self.start_join();
            }
            Phase::AwaitRevoke {
                then: Then::Assign { added, session },
                ..
            } => self.finish_assignment(added, session),
            _ => {}
        }
    }

    pub(super) fn start_join(&mut self) {
        let Some(coord) = self.coordinator.clone() else {
            return;
        };
        let Some((topics, session)) = self.subs.topics_in_session() else {
            return;
        };
        // The assignment this join leads to is for this session's subscription only.
        self.join_session = session;
        let owned = self.subs.assignment();
        let protocols = match join::protocols(
            &self.config.assignors,
            &topics,
            &owned,
            self.generation.id,
            self.config.client_rack.as_deref(),
        ) {
            Ok(p) => p,
            Err(e) => {
                self.set_fatal(
                    KafkaCode::INVALID_REQUEST,
                    format!("cannot encode subscription: {e}"),
                );
                return;
            }
        };
        self.cluster.track(topics.iter().cloned());
        self.pattern_joined();
        self.joined_topics = Some(topics);
        self.state = MemberState::Preparing;
        let reason = self
            .rejoin
            .take()
            .unwrap_or_else(|| "joining the group".into());
        let params = JoinParams {
            group: self.group.clone(),
            instance_id: self.config.group_instance_id.clone(),
            session_timeout: self.config.session_timeout,
            rebalance_timeout: self.config.max_poll_interval,
            member_id: self.generation.member_id.clone(),
            protocols,
            reason,
            timeout: self.config.join_timeout(),
        };
        tracing::info!(member = %self.generation.member_id, "(re-)joining group");
        let sent = self.generation.clone();
        self.phase = Phase::Joining;
        self.in_flight.push(
            async move {
                Done::Joined {
                    sent,
                    result: join::join(coord, params).await,
                }
            }
            .boxed(),
        );
    }

    pub(super) fn join_failed(&mut self, immediately: bool) {
        self.state = MemberState::Unjoined;
        if self.rejoin.is_none() {
            self.rejoin = Some("retrying the rebalance".into());
        }
        if immediately {
            self.join_after = Instant::now();
        } else {
            self.join_attempts += 1;
            self.join_after = Instant::now() + self.retry.delay(self.join_attempts);
        }
    }

    pub(super) fn on_joined(&mut self, sent: Generation, result: Result<JoinGroupResponse>) {
        self.phase = Phase::Idle;
        let resp = match result {
            Ok(r) => r,
            Err(e) => {
                tracing::info!(error = %e, "JoinGroup failed");
                if matches!(
                    e,
                    Error::Connection { .. } | Error::Timeout { .. } | Error::Connect { .. }
                ) {
                    self.coordinator_unknown("JoinGroup failed");
                }
                if let Error::InvalidArgument(m) = &e {
                    self.set_fatal(KafkaCode::UNSUPPORTED_VERSION, m.clone());
                    return;
                }
                return self.join_failed(false);
            }
        };
        let code = KafkaCode::from_code(resp.error_code);
        let unchanged = sent == self.generation;
        match code {
            KafkaCode::NONE => {
                if resp
                    .protocol_type
                    .as_ref()
                    .is_some_and(|t| t.as_str() != PROTOCOL_TYPE)
                {
                    return self.set_fatal(
                        KafkaCode::INCONSISTENT_GROUP_PROTOCOL,
                        "JoinGroup answered with another protocol type".into(),
                    );
                }
                if self.state != MemberState::Preparing {
                    return self.join_failed(true);
                }
                self.state = MemberState::Completing;
                self.generation = Generation {
                    id: resp.generation_id,
                    member_id: resp.member_id.to_string(),
                    protocol: resp.protocol_name.as_ref().map(|p| p.to_string()),
                };
                let now = Instant::now();
                self.hb_next = now + self.config.heartbeat_interval;
                self.hb_last_ok = now;
                let leader = resp.leader.as_str() == resp.member_id.as_str();
                tracing::info!(
                    generation = self.generation.id,
                    member = %self.generation.member_id,
                    protocol = ?self.generation.protocol,
                    leader,
                    "joined group"
                );
                self.start_sync(leader, resp);
            }
            KafkaCode::MEMBER_ID_REQUIRED => {
                self.generation = Generation {
                    member_id: resp.member_id.to_string(),
                    ..Generation::none()
                };
                self.shared.set_generation(-1, &self.generation.member_id);
                self.join_failed(true);
            }
            KafkaCode::UNKNOWN_MEMBER_ID => {
                if unchanged {
                    self.reset_generation("UNKNOWN_MEMBER_ID from JoinGroup", true);
                }
                self.join_failed(true);
            }
            KafkaCode::COORDINATOR_NOT_AVAILABLE | KafkaCode::NOT_COORDINATOR => {
                self.coordinator_unknown("JoinGroup error");
                self.join_failed(false);
            }
            KafkaCode::FENCED_INSTANCE_ID
            | KafkaCode::INCONSISTENT_GROUP_PROTOCOL
            | KafkaCode::INVALID_SESSION_TIMEOUT
            | KafkaCode::INVALID_GROUP_ID
            | KafkaCode::GROUP_AUTHORIZATION_FAILED
            | KafkaCode::GROUP_MAX_SIZE_REACHED
            | KafkaCode::UNSUPPORTED_VERSION => {
                self.set_fatal(code, format!("JoinGroup failed: {code}"));
            }
            _ => {
                // COORDINATOR_LOAD_IN_PROGRESS, REBALANCE_IN_PROGRESS and the unexpected:
                // back off and retry.
                tracing::info!(%code, "JoinGroup failed; retrying");
                self.join_failed(false);
            }
        }
    }

    pub(super) fn start_sync(&mut self, leader: bool, resp: JoinGroupResponse) {
        let Some(coord) = self.coordinator.clone() else {
            return self.join_failed(false);
        };
        let params = SyncParams {
            group: self.group.clone(),
            instance_id: self.config.group_instance_id.clone(),
            generation: self.generation.clone(),
        };
        let sent = self.generation.clone();
        self.phase = Phase::Syncing;
        if leader {
            let cluster = self.cluster.clone();
            let assignors = self.config.assignors.clone();
            let protocol = self.protocol;
            let skip = resp.skip_assignment;
            let all_topics = self.subs.pattern().is_some();
            let members = resp.members;
            self.in_flight.push(
                async move {
                    let result = join::lead(
                        cluster, coord, assignors, protocol, members, skip, all_topics, params,
                    )
                    .await;
                    Done::Synced { sent, result }
                }
                .boxed(),
            );
        } else {
            self.in_flight.push(
                async move {
                    Done::Synced {
                        sent,
                        result: join::follow(coord, params).await,
                    }
                }
                .boxed(),
            );
        }
    }

    pub(super) fn on_synced(&mut self, sent: Generation, result: Result<Synced>) {
        self.phase = Phase::Idle;
        let synced = match result {
            Ok(s) => s,
            Err(e) => {
                tracing::info!(error = %e, "SyncGroup failed");
                if matches!(
                    e,
                    Error::Connection { .. } | Error::Timeout { .. } | Error::Connect { .. }
                ) {
                    self.coordinator_unknown("SyncGroup failed");
                }
                return self.join_failed(false);
            }
        };
        let resp = synced.response;
        let code = KafkaCode::from_code(resp.error_code);
        let unchanged = sent == self.generation;
        match code {
            KafkaCode::NONE => {
                let protocol_ok =
                    resp.protocol_type
                        .as_ref()
                        .is_none_or(|t| t.as_str() == PROTOCOL_TYPE)
                        && resp.protocol_name.as_ref().is_none_or(|n| {
                            Some(n.as_str()) == self.generation.protocol.as_deref()
                        });
                if !protocol_ok {
                    return self.set_fatal(
                        KafkaCode::INCONSISTENT_GROUP_PROTOCOL,
                        "SyncGroup answered with another protocol".into(),
                    );
                }
                if !unchanged || self.state != MemberState::Completing {
                    return self.join_failed(true);
                }
                let assignment = match decode_assignment(resp.assignment) {
                    Ok(a) => a,
                    Err(e) => {
                        tracing::error!(error = %e, "undecodable assignment; rejoining");
                        return self.join_failed(false);
                    }
                };
                self.state = MemberState::Stable;
                self.rejoin = None;
                self.join_attempts = 0;
                self.needs_join_prepare = true;
                self.leader_snapshot = synced.snapshot;
                self.shared
                    .set_generation(self.generation.id, &self.generation.member_id);
                tracing::info!(
                    generation = self.generation.id,
                    member = %self.generation.member_id,
                    partitions = assignment.partitions.len(),
                    "synced group"
                );
                self.on_join_complete(assignment);
            }
            KafkaCode::REBALANCE_IN_PROGRESS => self.join_failed(true),
            KafkaCode::UNKNOWN_MEMBER_ID | KafkaCode::ILLEGAL_GENERATION => {
                if unchanged {
                    self.reset_generation(
                        &format!("{code} from SyncGroup"),
                        code == KafkaCode::UNKNOWN_MEMBER_ID,
                    );
                }
                self.join_failed(true);
            }
            KafkaCode::COORDINATOR_NOT_AVAILABLE | KafkaCode::NOT_COORDINATOR => {
                self.coordinator_unknown("SyncGroup error");
                self.join_failed(false);
            }
            KafkaCode::FENCED_INSTANCE_ID | KafkaCode::GROUP_AUTHORIZATION_FAILED => {
                self.set_fatal(code, format!("SyncGroup failed: {code}"));
            }
            _ => {
                tracing::info!(%code, "SyncGroup failed; retrying");
                self.join_failed(false);
            }
        }
    }

    /// Java's `onJoinComplete`: apply the assignment; under the cooperative protocol revoke
    /// what moved away first and rejoin afterwards.
    pub(super) fn on_join_complete(&mut self, assignment: Assignment) {
        if let Some(tp) = self.outside_subscription(&assignment.partitions) {
            tracing::info!(partition = %tp, "assignment does not match the subscription; rejoining");
            self.request_rejoin("assignment does not match the current subscription");
            return;
        }
        if let Some(assignor) = self
            .config
            .assignors
            .iter()
            .find(|a| Some(a.name()) == self.generation.protocol.as_deref())
        {
            assignor.on_assignment(&assignment, self.generation.id);
        }
        let (session, owned) = self.subs.owned();
        if session != self.join_session {
            // The application unsubscribed after this join started: the assignment is not
            // for the partitions it holds now.
            self.request_rejoin("the application unsubscribed during the rebalance");
            return;
        }
        let owned: BTreeSet<TopicPartition> = owned.into_iter().collect();
        let assigned: BTreeSet<TopicPartition> = assignment.partitions.into_iter().collect();
        let added: Vec<TopicPartition> = assigned.difference(&owned).cloned().collect();
        let revoked: Vec<TopicPartition> = owned.difference(&assigned).cloned().collect();
        // What this member committed before belongs to an earlier generation; another
        // member may have committed those partitions since.
        self.last_committed.clear();
        if !revoked.is_empty() {
            tracing::info!(
                ?revoked,
                ?added,
                "revoking partitions that moved, then rejoining"
            );
            let ack = self.send_event(EventKind::Revoked, revoked, self.generation.id, session);
            self.phase = Phase::AwaitRevoke {
                ack,
                then: Then::Assign { added, session },
            };
            self.request_rejoin("revoked partitions must be reassigned");
            return;
        }
        self.finish_assignment(added, session);
    }

    /// Hands the new partitions to the application, whose poll adds them and runs the
    /// assigned callback (as Java's `onJoinComplete` does, on the application's thread): the
    /// application never holds a partition it was not told about, and a revocation queued
    /// before can never name one of them.
    pub(super) fn finish_assignment(&mut self, added: Vec<TopicPartition>, session: u64) {
        tracing::info!(?added, "newly assigned partitions");
        let ack = self.send_event(EventKind::Assigned, added, self.generation.id, session);
        self.phase = Phase::AwaitAssigned { ack };
    }
}
