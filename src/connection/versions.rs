//! API version negotiation: the broker's ranges (from ApiVersions) against this client's.

use std::collections::HashMap;

use kafka_protocol::messages::ApiKey;
use kafka_protocol::protocol::{Request, VersionRange};

use crate::error::{Error, Result};

/// The highest version of an API this client's code handles, where it is below what the
/// `kafka-protocol` crate can encode. Produce v13 and Fetch v13+ address topics by id only;
/// this client addresses them by name until topic ids are threaded through the producer and
/// the fetcher.
fn client_cap(api: ApiKey) -> Option<i16> {
    match api {
        ApiKey::Produce => Some(12),
        ApiKey::Fetch => Some(12),
        _ => None,
    }
}

/// The version range this client speaks for request type `R`.
pub(crate) fn client_range<R: Request>() -> VersionRange {
    let mut range = R::VERSIONS;
    if let Ok(api) = ApiKey::try_from(R::KEY) {
        if let Some(cap) = client_cap(api) {
            range.max = range.max.min(cap);
        }
    }
    range
}

/// The API versions one broker advertised.
#[derive(Clone, Debug, Default)]
pub(crate) struct BrokerVersions {
    ranges: HashMap<i16, VersionRange>,
}

impl BrokerVersions {
    pub(crate) fn new(ranges: impl IntoIterator<Item = (i16, i16, i16)>) -> Self {
        BrokerVersions {
            ranges: ranges
                .into_iter()
                .map(|(key, min, max)| (key, VersionRange { min, max }))
                .collect(),
        }
    }

    /// The broker's range for an API, if it supports it at all.
    pub(crate) fn range(&self, api_key: i16) -> Option<VersionRange> {
        self.ranges.get(&api_key).copied()
    }

    /// The highest version of `R` both sides support, or `UnsupportedVersion` naming the API.
    pub(crate) fn pick<R: Request>(&self, broker: &str) -> Result<i16> {
        let ours = client_range::<R>();
        let theirs = self
            .range(R::KEY)
            .unwrap_or(VersionRange { min: 0, max: -1 });
        let both = ours.intersect(&theirs);
        if both.is_empty() {
            return Err(Error::UnsupportedVersion {
                broker: broker.to_owned(),
                api: api_name(R::KEY),
                broker_min: theirs.min,
                broker_max: theirs.max,
                client_min: ours.min,
                client_max: ours.max,
            });
        }
        Ok(both.max)
    }
}

/// The protocol guide's name of an API key, e.g. `Produce`.
pub(crate) fn api_name(key: i16) -> &'static str {
    match ApiKey::try_from(key) {
        Ok(api) => api_key_name(api),
        Err(()) => "unknown API",
    }
}

fn api_key_name(api: ApiKey) -> &'static str {
    match api {
        ApiKey::Produce => "Produce",
        ApiKey::Fetch => "Fetch",
        ApiKey::ListOffsets => "ListOffsets",
        ApiKey::Metadata => "Metadata",
        ApiKey::OffsetCommit => "OffsetCommit",
        ApiKey::OffsetFetch => "OffsetFetch",
        ApiKey::FindCoordinator => "FindCoordinator",
        ApiKey::JoinGroup => "JoinGroup",
        ApiKey::Heartbeat => "Heartbeat",
        ApiKey::LeaveGroup => "LeaveGroup",
        ApiKey::SyncGroup => "SyncGroup",
        ApiKey::DescribeGroups => "DescribeGroups",
        ApiKey::ListGroups => "ListGroups",
        ApiKey::ApiVersions => "ApiVersions",
        ApiKey::CreateTopics => "CreateTopics",
        ApiKey::DeleteTopics => "DeleteTopics",
        ApiKey::InitProducerId => "InitProducerId",
        ApiKey::AddPartitionsToTxn => "AddPartitionsToTxn",
        ApiKey::AddOffsetsToTxn => "AddOffsetsToTxn",
        ApiKey::EndTxn => "EndTxn",
        ApiKey::TxnOffsetCommit => "TxnOffsetCommit",
        ApiKey::DescribeConfigs => "DescribeConfigs",
        ApiKey::CreatePartitions => "CreatePartitions",
        ApiKey::DeleteRecords => "DeleteRecords",
        ApiKey::OffsetForLeaderEpoch => "OffsetForLeaderEpoch",
        ApiKey::ConsumerGroupHeartbeat => "ConsumerGroupHeartbeat",
        ApiKey::ConsumerGroupDescribe => "ConsumerGroupDescribe",
        ApiKey::DescribeCluster => "DescribeCluster",
        ApiKey::OffsetDelete => "OffsetDelete",
        _ => "other API",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::{FetchRequest, MetadataRequest, ProduceRequest};

    #[test]
    fn picks_the_highest_common_version() {
        let v = BrokerVersions::new([(3, 0, 12), (0, 3, 13), (1, 4, 17)]);
        assert_eq!(v.pick::<MetadataRequest>("1").unwrap(), 12);
        // Our caps hold even when the broker goes higher.
        assert_eq!(v.pick::<ProduceRequest>("1").unwrap(), 12);
        assert_eq!(v.pick::<FetchRequest>("1").unwrap(), 12);
    }

    #[test]
    fn no_common_version_names_the_api() {
        let v = BrokerVersions::new([(0, 0, 2)]);
        let err = v.pick::<ProduceRequest>("7").unwrap_err();
        assert!(
            matches!(
                err,
                Error::UnsupportedVersion {
                    api: "Produce",
                    broker_max: 2,
                    ..
                }
            ),
            "{err}"
        );
        let err = BrokerVersions::default()
            .pick::<FetchRequest>("7")
            .unwrap_err();
        assert!(err.to_string().contains("Fetch"), "{err}");
    }
}
