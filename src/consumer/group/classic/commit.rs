//! Offsets through the group coordinator: OffsetCommit (explicit and automatic) and
//! OffsetFetch, with the Java `ConsumerCoordinator`'s error handling.

use std::collections::HashMap;

use futures::FutureExt;
use kafka_protocol::messages::{
    OffsetCommitRequest, OffsetCommitResponse, OffsetFetchRequest, OffsetFetchResponse,
};
use tokio::sync::oneshot;

use super::{ClassicGroup, Done, MemberState, Phase};
use crate::consumer::group::join::Generation;
use crate::consumer::group::requests::{self, Coordinator};
use crate::consumer::group::Committed;
use crate::consumer::record::OffsetAndMetadata;
use crate::error::{Error, ErrorContext, KafkaCode, Result};
use crate::types::TopicPartition;

impl ClassicGroup {
    /// An auto-commit the application's poll issued (Java's `maybeAutoCommitOffsetsAsync`).
    /// One attempt, skipped while there is no coordinator or the group rebalances: the next
    /// poll after `auto.commit.interval.ms` commits newer positions anyway. Sent in the order
    /// the commands came, on the one coordinator connection, so a commit issued after it
    /// (`commit_sync` after `poll`) is written after it and is never overwritten by it.
    pub(super) fn auto_commit(&mut self, offsets: HashMap<TopicPartition, OffsetAndMetadata>) {
        if self.fatal || self.coordinator.is_none() {
            tracing::debug!("auto-commit skipped: no group coordinator");
            return;
        }
        if self.subscribed().is_some() && self.state != MemberState::Stable {
            tracing::debug!("auto-commit skipped: the group is rebalancing");
            return;
        }
        let offsets: HashMap<TopicPartition, OffsetAndMetadata> = offsets
            .into_iter()
            .filter(|(tp, o)| self.last_committed.get(tp) != Some(&o.offset))
            .collect();
        if !offsets.is_empty() {
            tracing::debug!(partitions = offsets.len(), "auto-committing offsets");
            self.start_commit(offsets, None);
        }
    }

    pub(super) fn start_commit(
        &mut self,
        offsets: HashMap<TopicPartition, OffsetAndMetadata>,
        reply: Option<oneshot::Sender<Result<()>>>,
    ) {
        let Some(coord) = self.coordinator.clone() else {
            return;
        };
        let (generation, instance) = if self.subscribed().is_some() {
            if self.state != MemberState::Stable {
                let err = if matches!(self.phase, Phase::Joining | Phase::Syncing)
                    || self.state != MemberState::Unjoined
                {
                    Error::broker(
                        KafkaCode::REBALANCE_IN_PROGRESS.code(),
                        ErrorContext::default(),
                        Some(format!(
                            "group {} is rebalancing; poll to complete the rebalance, then commit",
                            self.group
                        )),
                    )
                } else {
                    Error::CommitFailed {
                        code: None,
                        reason: format!(
                            "this consumer is not part of an active generation of group {}; \
                             its partitions may have been given to another member",
                            self.group
                        ),
                    }
                };
                return self.commit_done(reply, Err(err));
            }
            (
                self.generation.clone(),
                self.config.group_instance_id.clone(),
            )
        } else {
            (Generation::none(), None)
        };
        let req = coord.conn.version::<OffsetCommitRequest>().map(|v| {
            (
                v,
                requests::commit_request(
                    v,
                    &self.group,
                    generation.id,
                    &generation.member_id,
                    instance.as_deref(),
                    &offsets,
                ),
            )
        });
        let broker = coord.conn.broker().to_owned();
        self.in_flight.push(
            async move {
                let result = match req {
                    // Built for the version `request` picks again.
                    Ok((_, req)) => coord.conn.request(&req).await,
                    Err(e) => Err(e),
                };
                Done::Committed {
                    sent: generation,
                    offsets,
                    reply,
                    result,
                    broker,
                }
            }
            .boxed(),
        );
    }

    pub(super) fn commit_done(
        &mut self,
        reply: Option<oneshot::Sender<Result<()>>>,
        result: Result<()>,
    ) {
        match reply {
            Some(reply) => {
                let _ = reply.send(result);
            }
            None => {
                if let Err(e) = result {
                    tracing::warn!(error = %e, "auto-commit of offsets failed");
                }
            }
        }
    }

    pub(super) fn on_committed(
        &mut self,
        sent: Generation,
        offsets: HashMap<TopicPartition, OffsetAndMetadata>,
        reply: Option<oneshot::Sender<Result<()>>>,
        result: Result<OffsetCommitResponse>,
        broker: String,
    ) {
        let resp = match result {
            Ok(r) => r,
            Err(e) => {
                if matches!(e, Error::Connection { .. } | Error::Timeout { .. }) {
                    self.coordinator_unknown("OffsetCommit failed");
                }
                return self.commit_done(reply, Err(e));
            }
        };
        let Some((code, tp)) = requests::commit_error(&resp) else {
            for (tp, o) in &offsets {
                self.last_committed.insert(tp.clone(), o.offset);
            }
            tracing::debug!(partitions = offsets.len(), "committed offsets");
            return self.commit_done(reply, Ok(()));
        };
        let context = ErrorContext::topic(&tp.topic, Some(tp.partition)).with_broker(&broker);
        let unchanged = sent == self.generation;
        let err = match code {
            KafkaCode::COORDINATOR_NOT_AVAILABLE
            | KafkaCode::NOT_COORDINATOR
            | KafkaCode::REQUEST_TIMED_OUT => {
                self.coordinator_unknown("OffsetCommit error");
                Error::broker(code.code(), context, None)
            }
            KafkaCode::REBALANCE_IN_PROGRESS => {
                self.request_rejoin("offset commit failed since group is already rebalancing");
                Error::broker(
                    code.code(),
                    context,
                    Some("the group is rebalancing; poll to complete it, then commit".into()),
                )
            }
            KafkaCode::UNKNOWN_MEMBER_ID | KafkaCode::ILLEGAL_GENERATION => {
                if !unchanged && self.state == MemberState::Preparing {
                    Error::broker(
                        KafkaCode::REBALANCE_IN_PROGRESS.code(),
                        context,
                        Some("this member's generation is stale; poll to rejoin".into()),
                    )
                } else {
                    if unchanged && sent.is_valid() {
                        self.reset_generation(
                            &format!("{code} from OffsetCommit"),
                            code == KafkaCode::UNKNOWN_MEMBER_ID,
                        );
                    }
                    Error::CommitFailed {
                        code: Some(code),
                        reason: format!(
                            "{code}: the group rebalanced and generation {} of member {} is \
                             no longer valid",
                            sent.id, sent.member_id
                        ),
                    }
                }
            }
            KafkaCode::FENCED_INSTANCE_ID => {
                if unchanged {
                    self.set_fatal(code, "static member fenced (OffsetCommit)".into());
                }
                Error::CommitFailed {
                    code: Some(code),
                    reason: "this static member was fenced by another instance".into(),
                }
            }
            _ => Error::broker(code.code(), context, None),
        };
        self.commit_done(reply, Err(err));
    }

    pub(super) fn start_offset_fetch(
        &mut self,
        coord: Coordinator,
        partitions: Vec<TopicPartition>,
        reply: oneshot::Sender<Result<Committed>>,
    ) {
        let version = match coord.conn.version::<OffsetFetchRequest>() {
            Ok(v) => v,
            Err(e) => {
                let _ = reply.send(Err(e));
                return;
            }
        };
        let req = requests::offset_fetch_request(version, &self.group, &partitions);
        let broker = coord.conn.broker().to_owned();
        self.in_flight.push(
            async move {
                let result = coord.conn.request(&req).await;
                Done::Fetched {
                    reply,
                    version,
                    result,
                    broker,
                }
            }
            .boxed(),
        );
    }

    pub(super) fn on_fetched(
        &mut self,
        reply: oneshot::Sender<Result<Committed>>,
        version: i16,
        result: Result<OffsetFetchResponse>,
        broker: String,
    ) {
        let parsed = result.and_then(|r| requests::parse_offset_fetch(version, r, &broker));
        if let Err(e) = &parsed {
            let code = e.kafka_code();
            if matches!(e, Error::Connection { .. } | Error::Timeout { .. })
                || code == Some(KafkaCode::NOT_COORDINATOR)
                || code == Some(KafkaCode::COORDINATOR_NOT_AVAILABLE)
            {
                self.coordinator_unknown("OffsetFetch error");
            }
        }
        let _ = reply.send(parsed);
    }
}
