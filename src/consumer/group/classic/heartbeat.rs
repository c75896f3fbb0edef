//! Heartbeats: every `heartbeat.interval.ms` while in the group (completing a rebalance or
//! stable), with the Java `HeartbeatResponseHandler`'s reading of the answers.

use futures::FutureExt;
use kafka_protocol::messages::{GroupId, HeartbeatRequest, HeartbeatResponse};
use tokio::time::Instant;

use super::{ClassicGroup, Done, MemberState};
use crate::consumer::group::join::Generation;
use crate::consumer::group::requests::{str_bytes, Coordinator};
use crate::error::{KafkaCode, Result};

impl ClassicGroup {
    pub(super) fn start_heartbeat(&mut self, coord: Coordinator) {
        self.hb_in_flight = true;
        let sent = self.generation.clone();
        let group = self.group.clone();
        let instance = self.config.group_instance_id.clone();
        let at = Instant::now();
        self.in_flight.push(
            async move {
                let result = async {
                    let version = coord.conn.version::<HeartbeatRequest>()?;
                    let mut req = HeartbeatRequest::default()
                        .with_group_id(GroupId(str_bytes(&group)))
                        .with_generation_id(sent.id)
                        .with_member_id(str_bytes(&sent.member_id));
                    if version >= 3 {
                        req = req.with_group_instance_id(instance.as_deref().map(str_bytes));
                    }
                    coord.conn.request(&req).await
                }
                .await;
                Done::Heartbeat { sent, at, result }
            }
            .boxed(),
        );
    }

    pub(super) fn on_heartbeat(
        &mut self,
        sent: Generation,
        at: Instant,
        result: Result<HeartbeatResponse>,
    ) {
        self.hb_in_flight = false;
        let now = Instant::now();
        let failed = |this: &mut Self| {
            this.hb_failures += 1;
            this.hb_next = now + this.retry.delay(this.hb_failures);
        };
        let code = match result {
            Ok(r) => KafkaCode::from_code(r.error_code),
            Err(e) => {
                tracing::debug!(error = %e, "heartbeat failed");
                self.coordinator_unknown("heartbeat request failed");
                return failed(self);
            }
        };
        let unchanged = sent == self.generation;
        match code {
            KafkaCode::NONE | KafkaCode::REBALANCE_IN_PROGRESS => {
                self.hb_last_ok = now;
                self.hb_failures = 0;
                self.hb_next = at + self.config.heartbeat_interval;
                if code == KafkaCode::REBALANCE_IN_PROGRESS && self.state == MemberState::Stable {
                    self.request_rejoin("group is rebalancing");
                }
            }
            KafkaCode::COORDINATOR_NOT_AVAILABLE | KafkaCode::NOT_COORDINATOR => {
                self.coordinator_unknown("heartbeat error");
                failed(self);
            }
            KafkaCode::ILLEGAL_GENERATION | KafkaCode::UNKNOWN_MEMBER_ID if unchanged => {
                self.reset_generation(
                    &format!("{code} from Heartbeat"),
                    code == KafkaCode::UNKNOWN_MEMBER_ID,
                );
            }
            KafkaCode::FENCED_INSTANCE_ID if unchanged => {
                self.set_fatal(
                    code,
                    "static member fenced by another instance with the same group.instance.id"
                        .into(),
                );
            }
            KafkaCode::GROUP_AUTHORIZATION_FAILED => {
                self.set_fatal(code, "heartbeat refused".into());
            }
            KafkaCode::ILLEGAL_GENERATION
            | KafkaCode::UNKNOWN_MEMBER_ID
            | KafkaCode::FENCED_INSTANCE_ID => {
                // Answer to an older generation: ignore.
                self.hb_next = now;
            }
            _ => {
                tracing::info!(%code, "unexpected heartbeat error");
                failed(self);
            }
        }
    }
}
