//! The sticky assignor (eager): balanced and sticky, with each member's previous assignment
//! carried in its subscription user data.

use std::collections::HashMap;
use std::sync::Mutex;

use bytes::{BufMut, Bytes, BytesMut};

use super::sticky_core::{self, MemberData, DEFAULT_GENERATION};
use super::{into_assignments, java_cmp, Assignment, GroupMember, PartitionAssignor, Subscription};
use crate::consumer::protocol::Reader;
use crate::error::Result;
use crate::types::TopicPartition;

/// Balances partitions as evenly as the subscriptions allow (counts differ by at most one,
/// or no partition could move to a member with two fewer) and, within that, keeps every
/// partition with the member that had it. The Java client's `StickyAssignor` (protocol name
/// `sticky`).
///
/// It runs with the eager protocol: members give up everything before each rebalance, so a
/// member's previous partitions and generation travel in its subscription user data, in the
/// Java assignor's format, so that Java and Rust members of one group understand each other.
/// Prefer [`CooperativeStickyAssignor`](super::CooperativeStickyAssignor), which does not stop
/// consumption of partitions that stay put.
///
/// ```
/// use std::collections::HashMap;
/// use kafka_client::consumer::assignor::{GroupMember, PartitionAssignor, StickyAssignor, Subscription};
///
/// let sticky = StickyAssignor::new();
/// let counts = HashMap::from([("orders".to_owned(), 4)]);
/// let mut sub = Subscription::new(["orders"]);
/// sub.user_data = sticky.subscription_user_data(&sub.topics);
/// let out = sticky.assign(&counts, &[GroupMember::new("m1", sub)]).unwrap();
/// assert_eq!(out["m1"].partitions.len(), 4);
/// // The member remembers its partitions for the next rebalance.
/// sticky.on_assignment(&out["m1"], 1);
/// assert!(sticky.subscription_user_data(&["orders".to_owned()]).is_some());
/// ```
#[derive(Debug, Default)]
pub struct StickyAssignor {
    /// This member's last assignment and its generation; `None` before the first.
    last: Mutex<Option<(Vec<TopicPartition>, i32)>>,
}

impl StickyAssignor {
    /// A sticky assignor that has not been assigned anything yet.
    pub fn new() -> Self {
        StickyAssignor::default()
    }
}

impl PartitionAssignor for StickyAssignor {
    fn name(&self) -> &str {
        "sticky"
    }

    fn subscription_user_data(&self, _topics: &[String]) -> Option<Bytes> {
        // A poisoned lock only means another thread panicked mid-update of plain data.
        let last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        last.as_ref()
            .map(|(partitions, generation)| encode_user_data(partitions, Some(*generation)))
    }

    fn assign(
        &self,
        partitions_per_topic: &HashMap<String, i32>,
        members: &[GroupMember],
    ) -> Result<HashMap<String, Assignment>> {
        let data: Vec<MemberData> = members
            .iter()
            .map(|m| member_data(&m.subscription))
            .collect();
        let outcome = sticky_core::assign(partitions_per_topic, members, &data)?;
        Ok(into_assignments(members, outcome.assignment))
    }

    fn on_assignment(&self, assignment: &Assignment, generation_id: i32) {
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        *last = Some((assignment.partitions.clone(), generation_id));
    }
}

/// What a sticky member owned, from its user data alone: eager members revoke everything
/// before joining, so the owned-partitions field of their subscription is empty.
fn member_data(subscription: &Subscription) -> MemberData {
    match &subscription.user_data {
        Some(data) if !data.is_empty() => decode_user_data(data.clone()),
        _ => MemberData::default(),
    }
}

/// Java's `STICKY_ASSIGNOR_USER_DATA_V1`: `[topic: string, partitions: [int32]]`, then the
/// generation as an `int32`.
fn encode_user_data(partitions: &[TopicPartition], generation: Option<i32>) -> Bytes {
    let mut topics: Vec<(&str, Vec<i32>)> = Vec::new();
    let mut sorted: Vec<&TopicPartition> = partitions.iter().collect();
    sorted.sort_by(|a, b| java_cmp(&a.topic, &b.topic).then(a.partition.cmp(&b.partition)));
    for tp in sorted {
        match topics.last_mut() {
            Some((topic, list)) if *topic == tp.topic => list.push(tp.partition),
            _ => topics.push((&tp.topic, vec![tp.partition])),
        }
    }
    let mut buf = BytesMut::new();
    buf.put_i32(topics.len() as i32);
    for (topic, list) in topics {
        // Topic names are at most 249 bytes, far below the i16 limit of the format.
        buf.put_i16(topic.len() as i16);
        buf.put_slice(topic.as_bytes());
        buf.put_i32(list.len() as i32);
        for p in list {
            buf.put_i32(p);
        }
    }
    if let Some(generation) = generation {
        buf.put_i32(generation);
    }
    buf.freeze()
}

/// Reads V1 user data, falling back to V0 (no generation); data that is neither counts as
/// owning nothing, as in Java, rather than failing the whole rebalance.
fn decode_user_data(data: Bytes) -> MemberData {
    let read = |with_generation: bool| -> Result<MemberData> {
        let mut r = Reader::new(data.clone(), "sticky assignor user data");
        let partitions = r.topic_partitions()?;
        let generation = if with_generation {
            Some(r.i32()?)
        } else {
            None
        };
        Ok(MemberData {
            partitions,
            generation,
        })
    };
    read(true).or_else(|_| read(false)).unwrap_or(MemberData {
        partitions: Vec::new(),
        generation: Some(DEFAULT_GENERATION),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tp(t: &str, p: i32) -> TopicPartition {
        TopicPartition::new(t, p)
    }

    #[rustfmt::skip]
    const V1: &[u8] = &[
        0, 0, 0, 1,                         // one topic
        0, 1, b't', 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 1,
        0, 0, 0, 3,                         // generation
    ];

    #[test]
    fn user_data_is_javas_v1_layout() {
        let bytes = encode_user_data(&[tp("t", 1), tp("t", 0)], Some(3));
        assert_eq!(&bytes[..], V1);
        assert_eq!(
            decode_user_data(bytes),
            MemberData {
                partitions: vec![tp("t", 0), tp("t", 1)],
                generation: Some(3)
            }
        );
    }

    #[test]
    fn v0_user_data_has_no_generation_and_garbage_owns_nothing() {
        let v0 = Bytes::copy_from_slice(&V1[..V1.len() - 4]);
        assert_eq!(decode_user_data(v0).generation, None);
        let garbage = decode_user_data(Bytes::from_static(&[0, 0, 0, 9, 1]));
        assert!(garbage.partitions.is_empty());
        assert_eq!(garbage.generation, Some(DEFAULT_GENERATION));
        assert_eq!(
            member_data(&Subscription::new(["t"])),
            MemberData::default()
        );
    }

    #[test]
    fn remembers_the_last_assignment_for_the_next_join() {
        let sticky = StickyAssignor::new();
        assert_eq!(sticky.subscription_user_data(&[]), None);
        sticky.on_assignment(&Assignment::new(vec![tp("t", 1), tp("t", 0)]), 3);
        assert_eq!(sticky.subscription_user_data(&[]).as_deref(), Some(V1));
    }

    #[test]
    fn previous_assignments_in_user_data_are_kept() {
        let counts = HashMap::from([("t".to_owned(), 4)]);
        let with = |partitions: &[TopicPartition]| {
            let mut sub = Subscription::new(["t"]);
            sub.user_data = Some(encode_user_data(partitions, Some(7)));
            sub
        };
        let members = [
            GroupMember::new("a", with(&[tp("t", 2), tp("t", 3)])),
            GroupMember::new("b", with(&[tp("t", 0), tp("t", 1)])),
        ];
        let out = StickyAssignor::new().assign(&counts, &members).unwrap();
        assert_eq!(out["a"].partitions, [tp("t", 2), tp("t", 3)]);
        assert_eq!(out["b"].partitions, [tp("t", 0), tp("t", 1)]);
        assert!(out.values().all(|a| a.user_data.is_none()));
    }
}
