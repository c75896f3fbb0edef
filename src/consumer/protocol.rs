//! The consumer protocol: how a [`Subscription`] travels in a JoinGroup request's protocol
//! metadata and an [`Assignment`] in a SyncGroup request, byte for byte as the Java client's
//! `ConsumerProtocol` writes them.
//!
//! Both are an `i16` version followed by a non-flexible struct (`ConsumerProtocolSubscription`
//! and `ConsumerProtocolAssignment`, versions 0 to 3). Later versions may only append fields,
//! so a payload newer than we know is read with the newest layout we know, ignoring the rest.
//!
//! Encoding goes through the message types `kafka-protocol` generates from Kafka's JSON
//! schemas, so the layout cannot drift from Java's. Decoding is done by hand: the bytes come
//! from other group members, and the generated decoders reserve a `Vec` for whatever array
//! length the payload claims, which a bad member could use to make the leader allocate
//! gigabytes. [`Reader`] refuses a length the remaining bytes cannot hold.

// The group membership code that calls these lands separately; until then only tests do.
#![cfg_attr(not(test), allow(dead_code))]

use std::collections::HashMap;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::consumer_protocol_assignment as wire_assignment;
use kafka_protocol::messages::consumer_protocol_subscription as wire_subscription;
use kafka_protocol::messages::{ConsumerProtocolAssignment, ConsumerProtocolSubscription};
use kafka_protocol::protocol::{Encodable, StrBytes};

use crate::consumer::assignor::{java_cmp, Assignment, Subscription};
use crate::error::{Error, Result};
use crate::types::TopicPartition;

/// The protocol type consumers declare in JoinGroup.
pub(crate) const PROTOCOL_TYPE: &str = "consumer";

/// The newest subscription and assignment version this client knows; what it writes.
pub(crate) const HIGHEST_VERSION: i16 = 3;

/// Encodes a subscription at the newest version, as the Java client always does.
pub(crate) fn encode_subscription(subscription: &Subscription) -> Result<Bytes> {
    encode_subscription_version(subscription, HIGHEST_VERSION)
}

/// Encodes a subscription at `version` (a newer one is written as the newest we know).
/// Fields the version lacks are left out, as Java drops its ignorable fields.
pub(crate) fn encode_subscription_version(
    subscription: &Subscription,
    version: i16,
) -> Result<Bytes> {
    let version = check_version("subscription", version)?;
    // Java sorts topics and owned partitions; members that compare subscriptions byte for
    // byte (and tests against Java's output) rely on it.
    let mut topics: Vec<&String> = subscription.topics.iter().collect();
    topics.sort_by(|a, b| java_cmp(a, b));
    let mut owned: Vec<&TopicPartition> = subscription.owned_partitions.iter().collect();
    owned.sort_by(|a, b| java_cmp(&a.topic, &b.topic).then(a.partition.cmp(&b.partition)));
    let mut owned_partitions: Vec<wire_subscription::TopicPartition> = Vec::new();
    for tp in owned {
        match owned_partitions.last_mut() {
            Some(last) if last.topic.as_str() == tp.topic => last.partitions.push(tp.partition),
            _ => owned_partitions.push(
                wire_subscription::TopicPartition::default()
                    .with_topic(str_bytes(&tp.topic).into())
                    .with_partitions(vec![tp.partition]),
            ),
        }
    }
    let message = ConsumerProtocolSubscription::default()
        .with_topics(topics.into_iter().map(|t| str_bytes(t)).collect())
        .with_user_data(subscription.user_data.clone())
        .with_owned_partitions(owned_partitions)
        .with_generation_id(subscription.generation_id.unwrap_or(-1))
        .with_rack_id(subscription.rack_id.as_deref().map(str_bytes));
    versioned(&message, version, "subscription")
}

/// Decodes a version-prefixed subscription, of any version from 0 up. Bytes that do not
/// parse give an [`Error::Protocol`] naming the group coordinator, which relayed them.
pub(crate) fn decode_subscription(bytes: Bytes) -> Result<Subscription> {
    let mut r = Reader::new(bytes, "subscription");
    let version = check_version("subscription", r.i16()?)?;
    let topics = r.array(2, |r| r.string())?;
    let user_data = r.nullable_bytes()?;
    let mut subscription = Subscription {
        topics,
        user_data,
        ..Subscription::default()
    };
    if version >= 1 {
        subscription.owned_partitions = r.topic_partitions()?;
    }
    if version >= 2 {
        let generation = r.i32()?;
        subscription.generation_id = (generation >= 0).then_some(generation);
    }
    if version >= 3 {
        // Java reads an empty rack as no rack.
        subscription.rack_id = r.nullable_string()?.filter(|rack| !rack.is_empty());
    }
    Ok(subscription)
}

/// Encodes an assignment at the newest version, as the Java client always does.
pub(crate) fn encode_assignment(assignment: &Assignment) -> Result<Bytes> {
    encode_assignment_version(assignment, HIGHEST_VERSION)
}

/// Encodes an assignment at `version` (a newer one is written as the newest we know).
pub(crate) fn encode_assignment_version(assignment: &Assignment, version: i16) -> Result<Bytes> {
    let version = check_version("assignment", version)?;
    // Java groups partitions under their topic in order of first appearance, keeping the
    // partitions' own order; doing the same keeps the bytes identical.
    let mut by_topic: HashMap<&str, usize> = HashMap::new();
    let mut assigned: Vec<wire_assignment::TopicPartition> = Vec::new();
    for tp in &assignment.partitions {
        let index = *by_topic.entry(&tp.topic).or_insert_with(|| {
            assigned.push(
                wire_assignment::TopicPartition::default().with_topic(str_bytes(&tp.topic).into()),
            );
            assigned.len() - 1
        });
        if let Some(entry) = assigned.get_mut(index) {
            entry.partitions.push(tp.partition);
        }
    }
    let message = ConsumerProtocolAssignment::default()
        .with_assigned_partitions(assigned)
        .with_user_data(assignment.user_data.clone());
    versioned(&message, version, "assignment")
}

/// Decodes a version-prefixed assignment, of any version from 0 up.
pub(crate) fn decode_assignment(bytes: Bytes) -> Result<Assignment> {
    let mut r = Reader::new(bytes, "assignment");
    check_version("assignment", r.i16()?)?;
    // Every version so far has the same two fields.
    let partitions = r.topic_partitions()?;
    let user_data = r.nullable_bytes()?;
    Ok(Assignment {
        partitions,
        user_data,
    })
}

fn check_version(what: &str, version: i16) -> Result<i16> {
    if version < 0 {
        return Err(malformed(what, format!("unsupported version {version}")));
    }
    Ok(version.min(HIGHEST_VERSION))
}

fn str_bytes(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_owned())
}

fn versioned<M: Encodable>(message: &M, version: i16, what: &str) -> Result<Bytes> {
    let size = message
        .compute_size(version)
        .map_err(|e| Error::InvalidArgument(format!("cannot encode consumer {what}: {e}")))?;
    let mut buf = BytesMut::with_capacity(2 + size);
    buf.put_i16(version);
    message
        .encode(&mut buf, version)
        .map_err(|e| Error::InvalidArgument(format!("cannot encode consumer {what}: {e}")))?;
    Ok(buf.freeze())
}

fn malformed(what: &str, reason: impl std::fmt::Display) -> Error {
    Error::Protocol {
        broker: "group coordinator".to_owned(),
        reason: format!("consumer protocol {what}: {reason}"),
    }
}

/// Reads the classic (non-flexible) Kafka types from untrusted bytes: every length is checked
/// against what is left before anything is allocated.
pub(crate) struct Reader {
    buf: Bytes,
    what: &'static str,
}

impl Reader {
    /// A reader over `buf`; `what` names the payload in errors.
    pub(crate) fn new(buf: Bytes, what: &'static str) -> Self {
        Reader { buf, what }
    }

    fn need(&self, n: usize) -> Result<()> {
        if self.buf.remaining() < n {
            return Err(malformed(self.what, "truncated"));
        }
        Ok(())
    }

    pub(crate) fn i16(&mut self) -> Result<i16> {
        self.need(2)?;
        Ok(self.buf.get_i16())
    }

    pub(crate) fn i32(&mut self) -> Result<i32> {
        self.need(4)?;
        Ok(self.buf.get_i32())
    }

    fn take(&mut self, len: usize) -> Result<Bytes> {
        self.need(len)?;
        Ok(self.buf.split_to(len))
    }

    pub(crate) fn nullable_string(&mut self) -> Result<Option<String>> {
        let len = self.i16()?;
        if len < 0 {
            return Ok(None);
        }
        let raw = self.take(len as usize)?;
        String::from_utf8(raw.to_vec())
            .map(Some)
            .map_err(|_| malformed(self.what, "string is not UTF-8"))
    }

    pub(crate) fn string(&mut self) -> Result<String> {
        self.nullable_string()?
            .ok_or_else(|| malformed(self.what, "null where a string is required"))
    }

    pub(crate) fn nullable_bytes(&mut self) -> Result<Option<Bytes>> {
        let len = self.i32()?;
        if len < 0 {
            return Ok(None);
        }
        self.take(len as usize).map(Some)
    }

    /// A non-null array whose elements take at least `min_size` bytes each.
    pub(crate) fn array<T>(
        &mut self,
        min_size: usize,
        mut element: impl FnMut(&mut Self) -> Result<T>,
    ) -> Result<Vec<T>> {
        let len = self.i32()?;
        if len < 0 {
            return Err(malformed(self.what, "null where an array is required"));
        }
        let len = len as usize;
        if len.saturating_mul(min_size.max(1)) > self.buf.remaining() {
            return Err(malformed(
                self.what,
                format!("array of {len} elements in {} bytes", self.buf.remaining()),
            ));
        }
        let mut out = Vec::with_capacity(len);
        for _ in 0..len {
            out.push(element(self)?);
        }
        Ok(out)
    }

    /// An array of `(topic: string, partitions: [int32])`, flattened.
    pub(crate) fn topic_partitions(&mut self) -> Result<Vec<TopicPartition>> {
        let per_topic = self.array(6, |r| {
            let topic = r.string()?;
            let partitions = r.array(4, |r| r.i32())?;
            Ok((topic, partitions))
        })?;
        Ok(per_topic
            .into_iter()
            .flat_map(|(topic, partitions)| {
                partitions
                    .into_iter()
                    .map(move |p| TopicPartition::new(topic.clone(), p))
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::protocol::Decodable;
    use proptest::prelude::*;

    fn tp(t: &str, p: i32) -> TopicPartition {
        TopicPartition::new(t, p)
    }

    fn full_subscription() -> Subscription {
        Subscription {
            topics: vec!["b".into(), "a".into()],
            user_data: Some(Bytes::from_static(&[1, 2])),
            owned_partitions: vec![tp("a", 1), tp("a", 0)],
            generation_id: Some(5),
            rack_id: Some("r1".into()),
        }
    }

    #[rustfmt::skip]
    const FULL_V3: &[u8] = &[
        0, 3,                               // version
        0, 0, 0, 2, 0, 1, b'a', 0, 1, b'b', // topics, sorted
        0, 0, 0, 2, 1, 2,                   // user data
        0, 0, 0, 1,                         // owned partitions: one topic
        0, 1, b'a', 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 1,
        0, 0, 0, 5,                         // generation
        0, 2, b'r', b'1',                   // rack
    ];

    #[test]
    fn joins_as_javas_consumer_protocol_type() {
        // The coordinator only groups members declaring the same type; Java declares this.
        assert_eq!(PROTOCOL_TYPE, "consumer");
    }

    #[test]
    fn subscription_v3_bytes_are_javas() {
        let bytes = encode_subscription(&full_subscription()).unwrap();
        assert_eq!(&bytes[..], FULL_V3);
        let back = decode_subscription(bytes).unwrap();
        assert_eq!(back.topics, ["a", "b"]);
        assert_eq!(back.owned_partitions, [tp("a", 0), tp("a", 1)]);
        assert_eq!(back.generation_id, Some(5));
        assert_eq!(back.rack_id.as_deref(), Some("r1"));
        assert_eq!(back.user_data.as_deref(), Some(&[1u8, 2][..]));
    }

    #[test]
    fn older_versions_leave_out_newer_fields() {
        let v0 = encode_subscription_version(&full_subscription(), 0).unwrap();
        #[rustfmt::skip]
        let expected: &[u8] = &[0, 0, 0, 0, 0, 2, 0, 1, b'a', 0, 1, b'b', 0, 0, 0, 2, 1, 2];
        assert_eq!(&v0[..], expected);
        let back = decode_subscription(v0).unwrap();
        assert!(back.owned_partitions.is_empty());
        assert_eq!(back.generation_id, None);
        assert_eq!(back.rack_id, None);

        // v1 keeps owned partitions but not the generation.
        let v1 = decode_subscription(encode_subscription_version(&full_subscription(), 1).unwrap())
            .unwrap();
        assert_eq!(v1.owned_partitions.len(), 2);
        assert_eq!(v1.generation_id, None);
    }

    #[test]
    fn absent_values_are_written_as_java_nulls() {
        let bytes = encode_subscription(&Subscription::new(["t"])).unwrap();
        #[rustfmt::skip]
        let expected: &[u8] = &[
            0, 3, 0, 0, 0, 1, 0, 1, b't',
            0xff, 0xff, 0xff, 0xff, // no user data
            0, 0, 0, 0,             // no owned partitions
            0xff, 0xff, 0xff, 0xff, // generation -1
            0xff, 0xff,             // no rack
        ];
        assert_eq!(&bytes[..], expected);
        assert_eq!(
            decode_subscription(bytes).unwrap(),
            Subscription::new(["t"])
        );
    }

    #[test]
    fn newer_versions_are_read_with_the_newest_layout() {
        let mut bytes = FULL_V3.to_vec();
        bytes[1] = 7;
        bytes.extend_from_slice(&[9, 9, 9]); // a field from the future
        let sub = decode_subscription(Bytes::from(bytes)).unwrap();
        assert_eq!(sub.generation_id, Some(5));
        assert_eq!(sub.rack_id.as_deref(), Some("r1"));
        // Encoding at a future version writes the newest we know.
        let v9 = encode_subscription_version(&full_subscription(), 9).unwrap();
        assert_eq!(&v9[..], FULL_V3);
    }

    #[test]
    fn empty_rack_reads_as_none() {
        let mut sub = Subscription::new(["t"]);
        sub.rack_id = Some(String::new());
        let back = decode_subscription(encode_subscription(&sub).unwrap()).unwrap();
        assert_eq!(back.rack_id, None);
    }

    #[test]
    fn assignment_groups_by_first_appearance_like_java() {
        let assignment = Assignment::new(vec![tp("t1", 0), tp("t0", 2), tp("t1", 1)]);
        let bytes = encode_assignment(&assignment).unwrap();
        #[rustfmt::skip]
        let expected: &[u8] = &[
            0, 3,
            0, 0, 0, 2,
            0, 2, b't', b'1', 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 1,
            0, 2, b't', b'0', 0, 0, 0, 1, 0, 0, 0, 2,
            0xff, 0xff, 0xff, 0xff,
        ];
        assert_eq!(&bytes[..], expected);
        let back = decode_assignment(bytes).unwrap();
        assert_eq!(back.partitions, [tp("t1", 0), tp("t1", 1), tp("t0", 2)]);
        assert_eq!(back.user_data, None);
    }

    #[test]
    fn assignment_v0_and_future_versions_share_the_layout() {
        let assignment = Assignment {
            partitions: vec![tp("t", 0)],
            user_data: Some(Bytes::from_static(b"x")),
        };
        let v0 = encode_assignment_version(&assignment, 0).unwrap();
        assert_eq!(&v0[2..], &encode_assignment(&assignment).unwrap()[2..]);
        let mut future = v0.to_vec();
        future[1] = 42;
        future.push(0);
        assert_eq!(decode_assignment(Bytes::from(future)).unwrap(), assignment);
    }

    #[test]
    fn malformed_input_is_an_error_not_a_panic_or_a_huge_allocation() {
        // Negative version.
        assert!(decode_subscription(Bytes::from_static(&[0xff, 0xff])).is_err());
        // Empty.
        assert!(decode_assignment(Bytes::new()).is_err());
        // An array claiming i32::MAX elements in a few bytes.
        let huge = Bytes::from_static(&[0, 0, 0x7f, 0xff, 0xff, 0xff, 0, 1, b'a']);
        assert!(decode_subscription(huge.clone()).is_err());
        assert!(decode_assignment(huge).is_err());
        // Truncated in the middle.
        assert!(
            decode_subscription(Bytes::copy_from_slice(&FULL_V3[..FULL_V3.len() - 1])).is_err()
        );
        // Null topic list.
        assert!(decode_subscription(Bytes::from_static(&[0, 0, 0xff, 0xff, 0xff, 0xff])).is_err());
        // Invalid UTF-8 topic.
        let bad = Bytes::from_static(&[0, 0, 0, 0, 0, 1, 0, 1, 0xff, 0xff, 0xff, 0xff, 0xff]);
        assert!(decode_subscription(bad).is_err());
    }

    fn arb_subscription() -> impl Strategy<Value = Subscription> {
        let tps = proptest::collection::btree_set(("[a-c]{1,3}", 0..5i32), 0..6);
        (
            proptest::collection::btree_set("[a-z.\u{e9}]{1,6}", 0..5),
            proptest::option::of(proptest::collection::vec(any::<u8>(), 0..8)),
            tps,
            proptest::option::of(0..1000i32),
            proptest::option::of("[a-z0-9]{1,4}"),
        )
            .prop_map(
                |(topics, user_data, owned, generation_id, rack_id)| Subscription {
                    topics: topics.into_iter().collect(),
                    user_data: user_data.map(Bytes::from),
                    owned_partitions: owned
                        .into_iter()
                        .map(|(t, p)| TopicPartition::new(t, p))
                        .collect(),
                    generation_id,
                    rack_id,
                },
            )
    }

    proptest! {
        #[test]
        fn subscription_round_trips_and_matches_the_generated_decoder(sub in arb_subscription()) {
            let bytes = encode_subscription(&sub).unwrap();
            prop_assert_eq!(decode_subscription(bytes.clone()).unwrap(), sub.clone());
            // The generated decoder reads what we wrote the same way.
            let mut body = bytes.slice(2..);
            let wire = ConsumerProtocolSubscription::decode(&mut body, 3).unwrap();
            prop_assert_eq!(wire.topics.len(), sub.topics.len());
            prop_assert_eq!(wire.generation_id, sub.generation_id.unwrap_or(-1));
            prop_assert_eq!(body.len(), 0);
        }

        #[test]
        fn assignment_round_trips_as_a_multiset(
            parts in proptest::collection::btree_set(("[a-c]{1,2}", 0..9i32), 0..12),
            user_data in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..8)),
        ) {
            let assignment = Assignment {
                partitions: parts.into_iter().map(|(t, p)| TopicPartition::new(t, p)).collect(),
                user_data: user_data.map(Bytes::from),
            };
            let back = decode_assignment(encode_assignment(&assignment).unwrap()).unwrap();
            let mut got = back.partitions.clone();
            got.sort();
            prop_assert_eq!(got, assignment.partitions.clone());
            prop_assert_eq!(back.user_data, assignment.user_data);
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = decode_subscription(Bytes::from(bytes.clone()));
            let _ = decode_assignment(Bytes::from(bytes));
        }
    }
}
