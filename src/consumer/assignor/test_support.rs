//! Builders the assignors' unit tests share.

use std::collections::HashMap;

use super::{Assignment, GroupMember, Subscription};
use crate::types::TopicPartition;

pub(crate) fn tp(t: &str, p: i32) -> TopicPartition {
    TopicPartition::new(t, p)
}

/// Partition counts by topic.
pub(crate) fn counts(topics: &[(&str, i32)]) -> HashMap<String, i32> {
    topics.iter().map(|(t, n)| (t.to_string(), *n)).collect()
}

/// A member subscribed to `topics`, static when it has an `instance` id.
pub(crate) fn member(id: &str, instance: Option<&str>, topics: &[&str]) -> GroupMember {
    GroupMember {
        member_id: id.into(),
        group_instance_id: instance.map(Into::into),
        subscription: Subscription::new(topics.iter().copied()),
    }
}

/// The partitions assigned to member `id`.
pub(crate) fn partitions(out: &HashMap<String, Assignment>, id: &str) -> Vec<TopicPartition> {
    out[id].partitions.clone()
}
