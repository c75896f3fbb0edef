//! The body of a ProduceRequest, encoded as segments that point at the record batches
//! instead of copying them: a request's bytes are the batches almost entirely, so the
//! generic encoder's copy of them into one buffer was a second copy of everything sent (the
//! Java client likewise writes its batches' buffers as they are).
//!
//! Versions 3 to 12 (topic names; v13 moved to topic ids): v9 and later are "flexible", with
//! compact (varint-length) strings, arrays and bytes and a tagged-field count after each
//! structure. The tests check every version byte for byte against `kafka-protocol`.

use bytes::{BufMut, Bytes, BytesMut};

use crate::error::{Error, Result};

/// Produce versions this encoder writes.
pub(crate) const VERSIONS: std::ops::RangeInclusive<i16> = 3..=12;

/// The partitions of one topic and their record batches.
pub(crate) struct TopicBatches {
    pub(crate) name: String,
    pub(crate) partitions: Vec<(i32, Bytes)>,
}

/// Encodes a ProduceRequest body at `version`: `acks`, `timeout_ms`, the topics and their
/// batches, and `transactional_id` (set for transactional producers).
pub(crate) fn encode(
    version: i16,
    transactional_id: Option<&str>,
    acks: i16,
    timeout_ms: i32,
    topics: &[TopicBatches],
) -> Result<Vec<Bytes>> {
    if !VERSIONS.contains(&version) {
        return Err(Error::InvalidArgument(format!(
            "Produce v{version} is outside the encoder's {VERSIONS:?}"
        )));
    }
    let flexible = version >= 9;
    let batches: usize = topics.iter().map(|t| t.partitions.len()).sum();
    let mut w = Writer {
        flexible,
        buf: BytesMut::with_capacity(64 + 32 * topics.len() + 16 * batches),
        segments: Vec::with_capacity(2 * batches + 1),
    };
    w.nullable_string(transactional_id)?;
    w.buf.put_i16(acks);
    w.buf.put_i32(timeout_ms);
    w.array_len(topics.len())?;
    for topic in topics {
        w.string(&topic.name)?;
        w.array_len(topic.partitions.len())?;
        for (index, records) in &topic.partitions {
            w.buf.put_i32(*index);
            w.bytes(records)?;
            w.tagged_fields();
        }
        w.tagged_fields();
    }
    w.tagged_fields();
    let Writer {
        buf, mut segments, ..
    } = w;
    if !buf.is_empty() {
        segments.push(buf.freeze());
    }
    Ok(segments)
}

struct Writer {
    flexible: bool,
    /// The fields since the last batch.
    buf: BytesMut,
    segments: Vec<Bytes>,
}

impl Writer {
    fn array_len(&mut self, n: usize) -> Result<()> {
        if self.flexible {
            self.uvarint(n + 1)
        } else {
            self.buf.put_i32(i32_len(n)?);
            Ok(())
        }
    }

    fn string(&mut self, s: &str) -> Result<()> {
        if self.flexible {
            self.uvarint(s.len() + 1)?;
        } else {
            let len = i16::try_from(s.len()).map_err(|_| too_long("string", s.len()))?;
            self.buf.put_i16(len);
        }
        self.buf.put_slice(s.as_bytes());
        Ok(())
    }

    fn nullable_string(&mut self, s: Option<&str>) -> Result<()> {
        match s {
            Some(s) => self.string(s),
            None if self.flexible => self.uvarint(0),
            None => {
                self.buf.put_i16(-1);
                Ok(())
            }
        }
    }

    /// A batch: its length goes in the current segment, its bytes become their own.
    fn bytes(&mut self, b: &Bytes) -> Result<()> {
        if self.flexible {
            self.uvarint(b.len() + 1)?;
        } else {
            self.buf.put_i32(i32_len(b.len())?);
        }
        let fields = self.buf.split().freeze();
        self.segments.push(fields);
        self.segments.push(b.clone());
        Ok(())
    }

    fn tagged_fields(&mut self) {
        if self.flexible {
            self.buf.put_u8(0);
        }
    }

    /// An unsigned LEB128 varint, as Kafka's `UnsignedVarInt` (no zigzag).
    fn uvarint(&mut self, n: usize) -> Result<()> {
        let mut v = u32::try_from(n).map_err(|_| too_long("field", n))?;
        while v >= 0x80 {
            self.buf.put_u8((v as u8) | 0x80);
            v >>= 7;
        }
        self.buf.put_u8(v as u8);
        Ok(())
    }
}

fn i32_len(n: usize) -> Result<i32> {
    i32::try_from(n).map_err(|_| too_long("field", n))
}

fn too_long(what: &str, n: usize) -> Error {
    Error::InvalidArgument(format!(
        "Produce request {what} of {n} bytes or items exceeds the protocol's limit"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
    use kafka_protocol::messages::{ProduceRequest, TopicName, TransactionalId};
    use kafka_protocol::protocol::{Encodable, StrBytes};

    fn topics() -> Vec<TopicBatches> {
        vec![
            TopicBatches {
                name: "orders".into(),
                partitions: vec![
                    (0, Bytes::from(vec![7u8; 300])),
                    (5, Bytes::from_static(b"batch")),
                ],
            },
            TopicBatches {
                name: "payments-long-enough-name".into(),
                partitions: vec![(2, Bytes::from(vec![1u8; 70_000]))],
            },
        ]
    }

    fn reference(version: i16, transactional_id: Option<&str>) -> Vec<u8> {
        let req = ProduceRequest::default()
            .with_transactional_id(
                transactional_id.map(|t| TransactionalId(StrBytes::from_string(t.to_owned()))),
            )
            .with_acks(-1)
            .with_timeout_ms(30_000)
            .with_topic_data(
                topics()
                    .into_iter()
                    .map(|t| {
                        TopicProduceData::default()
                            .with_name(TopicName(StrBytes::from_string(t.name)))
                            .with_partition_data(
                                t.partitions
                                    .into_iter()
                                    .map(|(i, b)| {
                                        PartitionProduceData::default()
                                            .with_index(i)
                                            .with_records(Some(b))
                                    })
                                    .collect(),
                            )
                    })
                    .collect(),
            );
        let mut buf = BytesMut::new();
        req.encode(&mut buf, version).unwrap();
        buf.to_vec()
    }

    #[test]
    fn every_version_matches_the_generic_encoder_byte_for_byte() {
        for version in VERSIONS {
            for tx in [None, Some("tx-1")] {
                let segments = encode(version, tx, -1, 30_000, &topics()).unwrap();
                let ours: Vec<u8> = segments.iter().flat_map(|s| s.iter().copied()).collect();
                assert_eq!(ours, reference(version, tx), "v{version} {tx:?}");
            }
        }
    }

    #[test]
    fn batches_are_not_copied() {
        let t = topics();
        let segments = encode(12, None, 1, 1000, &t).unwrap();
        let batch = &t[1].partitions[0].1;
        assert!(segments
            .iter()
            .any(|s| s.as_ptr() == batch.as_ptr() && s.len() == batch.len()));
    }

    #[test]
    fn versions_outside_the_range_are_refused() {
        assert!(encode(2, None, 1, 1000, &topics()).is_err());
        assert!(encode(13, None, 1, 1000, &topics()).is_err());
    }
}
