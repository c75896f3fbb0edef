//! Consumer groups as the admin sees them: list, describe (members and their assignments),
//! and committed offsets.

use std::collections::BTreeMap;

use bytes::Bytes;
use kafka_protocol::messages::{
    DescribeGroupsRequest, GroupId, ListGroupsRequest, OffsetFetchRequest,
};

use super::Admin;
use crate::consumer::group::requests::{
    find_coordinator, offset_fetch_all_request, parse_offset_fetch, str_bytes,
};
use crate::consumer::protocol::decode_assignment;
use crate::error::{Error, ErrorContext, Result};
use crate::types::TopicPartition;

/// A group as ListGroups reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupListing {
    /// The group id.
    pub group_id: String,
    /// `consumer` for consumer groups (classic protocol), empty for others.
    pub protocol_type: String,
    /// The state, such as `Stable`, `Empty`, `PreparingRebalance` (brokers 2.6+).
    pub state: String,
}

/// A member of a group and what it was assigned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberDescription {
    /// The member id the coordinator gave.
    pub member_id: String,
    /// `group.instance.id` of a static member.
    pub group_instance_id: Option<String>,
    /// The member's `client.id`.
    pub client_id: String,
    /// Where it connects from.
    pub client_host: String,
    /// Its partitions (empty while a rebalance is in progress, or for non-consumer groups).
    pub assignment: Vec<TopicPartition>,
}

/// A group's state, protocol and members.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupDescription {
    /// The group id.
    pub group_id: String,
    /// `Stable`, `Empty`, `Dead`, ...
    pub state: String,
    /// `consumer` for consumer groups.
    pub protocol_type: String,
    /// The assignor chosen, such as `range` or `cooperative-sticky`.
    pub protocol: String,
    /// The members, sorted by member id.
    pub members: Vec<MemberDescription>,
}

impl Admin {
    /// Every group the cluster's coordinators know, sorted by id.
    pub async fn list_groups(&self) -> Result<Vec<GroupListing>> {
        let timeout = self.timeout();
        let work = async {
            let brokers: Vec<i32> = self.cluster.metadata().brokers.keys().copied().collect();
            let mut out = Vec::new();
            for id in brokers {
                let conn = self
                    .cluster
                    .broker(id, crate::cluster::ConnClass::Control)
                    .await?;
                let resp = conn.request(&ListGroupsRequest::default()).await?;
                crate::error::check_code(resp.error_code, || {
                    ErrorContext::default().with_broker(conn.broker())
                })?;
                out.extend(resp.groups.into_iter().map(|g| GroupListing {
                    group_id: g.group_id.0.to_string(),
                    protocol_type: g.protocol_type.to_string(),
                    state: g.group_state.to_string(),
                }));
            }
            out.sort_by(|a, b| a.group_id.cmp(&b.group_id));
            Ok(out)
        };
        bounded("listing groups", timeout, work).await
    }

    /// A group's state, assignor and members with their assignments.
    pub async fn describe_group(&self, group: &str) -> Result<GroupDescription> {
        let timeout = self.timeout();
        let work = async {
            let coordinator = find_coordinator(&self.cluster, group).await?;
            let req = DescribeGroupsRequest::default().with_groups(vec![GroupId(str_bytes(group))]);
            let resp = coordinator.conn.request(&req).await?;
            let Some(g) = resp.groups.into_iter().next() else {
                return Err(Error::Protocol {
                    broker: coordinator.conn.broker().to_owned(),
                    reason: format!("DescribeGroups answered without group {group}"),
                });
            };
            if g.error_code != 0 {
                return Err(Error::broker(
                    g.error_code,
                    ErrorContext::default().with_broker(coordinator.conn.broker()),
                    Some(format!("describing group {group}")),
                ));
            }
            let consumer = g.protocol_type.as_str() == "consumer";
            let mut members: Vec<MemberDescription> = g
                .members
                .into_iter()
                .map(|m| MemberDescription {
                    member_id: m.member_id.to_string(),
                    group_instance_id: m.group_instance_id.map(|i| i.to_string()),
                    client_id: m.client_id.to_string(),
                    client_host: m.client_host.to_string(),
                    assignment: if consumer {
                        assignment_of(m.member_assignment)
                    } else {
                        Vec::new()
                    },
                })
                .collect();
            members.sort_by(|a, b| a.member_id.cmp(&b.member_id));
            Ok(GroupDescription {
                group_id: g.group_id.0.to_string(),
                state: g.group_state.to_string(),
                protocol_type: g.protocol_type.to_string(),
                protocol: g.protocol_data.to_string(),
                members,
            })
        };
        bounded("describing a group", timeout, work).await
    }

    /// The group's committed offsets, for every partition it committed.
    pub async fn list_group_offsets(&self, group: &str) -> Result<BTreeMap<TopicPartition, i64>> {
        let timeout = self.timeout();
        let work = async {
            let coordinator = find_coordinator(&self.cluster, group).await?;
            let version = coordinator.conn.version::<OffsetFetchRequest>()?;
            let resp = coordinator
                .conn
                .request(&offset_fetch_all_request(version, group))
                .await?;
            let committed = parse_offset_fetch(version, resp, coordinator.conn.broker())?;
            Ok(committed
                .into_iter()
                .filter_map(|(tp, o)| o.map(|o| (tp, o.offset)))
                .collect())
        };
        bounded("listing group offsets", timeout, work).await
    }
}

/// A member's assignment from DescribeGroups; an empty or unreadable one (mid-rebalance, or
/// a client with a protocol of its own) shows as no partitions.
fn assignment_of(bytes: Bytes) -> Vec<TopicPartition> {
    if bytes.is_empty() {
        return Vec::new();
    }
    let mut partitions = decode_assignment(bytes)
        .map(|a| a.partitions)
        .unwrap_or_default();
    partitions.sort();
    partitions
}

async fn bounded<T>(
    what: &str,
    timeout: std::time::Duration,
    work: impl std::future::Future<Output = Result<T>>,
) -> Result<T> {
    tokio::time::timeout(timeout, work)
        .await
        .map_err(|_| Error::Timeout {
            what: format!("{what} (default.api.timeout.ms)"),
            after: timeout,
        })?
}
