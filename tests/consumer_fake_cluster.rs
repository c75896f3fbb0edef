//! Broker behaviour a real broker cannot produce on demand, from a fake two-broker cluster in
//! the test: a partition's leader answers a Fetch with a leader error and the metadata then
//! names the other broker (the consumer must refresh, re-route and read); a broker with an
//! endless supply of data facing an application that stopped polling (the consumer must stop
//! fetching at `fetch.buffer.max.bytes`).

use std::sync::atomic::{AtomicI32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_client::consumer::{Consumer, OffsetReset};
use kafka_client::protocol::records::{Compression, ProducerState, RecordBatchBuilder};
use kafka_client::TopicPartition;
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartitions, OffsetFetchResponseTopics,
};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsResponse, BrokerId, FetchRequest, FetchResponse, FindCoordinatorResponse,
    GroupId, ListOffsetsResponse, MetadataResponse, OffsetCommitRequest, OffsetCommitResponse,
    OffsetFetchResponse, RequestHeader, ResponseHeader, TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const TOPIC: &str = "moving";

/// What the fake brokers do with Fetch requests.
#[derive(Clone, Copy)]
enum Mode {
    /// One partition; broker 1 leads it, answers its first Fetch with this leader error and
    /// hands leadership to broker 2, which has three records.
    LeaderMoves(i16),
    /// `partitions` partitions led by broker 1, each with an endless log of records of
    /// `record_bytes`; each Fetch gets one record of one requested partition.
    Flood {
        partitions: i32,
        record_bytes: usize,
    },
}

/// The fake cluster's shared state.
struct State {
    mode: Mode,
    ports: Mutex<Vec<u16>>,
    leader: AtomicI32,
    leader_epoch: AtomicI32,
    fetches: Mutex<Vec<i32>>,
    metadata_requests: AtomicUsize,
    coordinator: AtomicI32,
    lookups: AtomicUsize,
    committed: Mutex<Vec<i64>>,
    /// Answer OffsetFetch with GROUP_AUTHORIZATION_FAILED.
    deny_offset_fetch: std::sync::atomic::AtomicBool,
}

impl State {
    fn partitions(&self) -> i32 {
        match self.mode {
            Mode::LeaderMoves(_) => 1,
            Mode::Flood { partitions, .. } => partitions,
        }
    }
}

async fn start(mode: Mode) -> (Arc<State>, String) {
    let state = Arc::new(State {
        mode,
        ports: Mutex::new(Vec::new()),
        leader: AtomicI32::new(1),
        leader_epoch: AtomicI32::new(5),
        fetches: Mutex::new(Vec::new()),
        metadata_requests: AtomicUsize::new(0),
        coordinator: AtomicI32::new(1),
        lookups: AtomicUsize::new(0),
        committed: Mutex::new(Vec::new()),
        deny_offset_fetch: std::sync::atomic::AtomicBool::new(false),
    });
    for id in 1..=2 {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        state
            .ports
            .lock()
            .unwrap()
            .push(listener.local_addr().unwrap().port());
        let state = state.clone();
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                tokio::spawn(serve(id, socket, state.clone()));
            }
        });
    }
    let port = state.ports.lock().unwrap()[0];
    (state, format!("127.0.0.1:{port}"))
}

async fn serve(id: i32, mut socket: TcpStream, state: Arc<State>) {
    loop {
        let Ok(len) = socket.read_i32().await else {
            return;
        };
        let mut frame = vec![0u8; len as usize];
        if socket.read_exact(&mut frame).await.is_err() {
            return;
        }
        let mut buf = Bytes::from(frame);
        let api = ApiKey::try_from((&buf[..2]).get_i16()).unwrap();
        let version = (&buf[2..4]).get_i16();
        let header = RequestHeader::decode(&mut buf, api.request_header_version(version)).unwrap();
        let mut body = BytesMut::new();
        match api {
            ApiKey::ApiVersions => ApiVersionsResponse::default()
                .with_api_keys(
                    [
                        (ApiKey::ApiVersions, 0, 3),
                        (ApiKey::Metadata, 1, 12),
                        (ApiKey::Fetch, 4, 12),
                        (ApiKey::ListOffsets, 1, 8),
                        (ApiKey::FindCoordinator, 0, 6),
                        (ApiKey::OffsetCommit, 2, 9),
                        (ApiKey::OffsetFetch, 8, 9),
                    ]
                    .into_iter()
                    .map(|(k, min, max)| {
                        ApiVersion::default()
                            .with_api_key(k as i16)
                            .with_min_version(min)
                            .with_max_version(max)
                    })
                    .collect(),
                )
                .encode(&mut body, version)
                .unwrap(),
            ApiKey::Metadata => {
                state.metadata_requests.fetch_add(1, Ordering::SeqCst);
                metadata(&state).encode(&mut body, version).unwrap()
            }
            ApiKey::ListOffsets => ListOffsetsResponse::default()
                .with_topics(vec![ListOffsetsTopicResponse::default()
                    .with_name(TopicName(StrBytes::from_static_str(TOPIC)))
                    .with_partitions(
                        (0..state.partitions())
                            .map(|p| {
                                ListOffsetsPartitionResponse::default()
                                    .with_partition_index(p)
                                    .with_offset(0)
                            })
                            .collect(),
                    )])
                .encode(&mut body, version)
                .unwrap(),
            ApiKey::Fetch => {
                let req = FetchRequest::decode(&mut buf, version).unwrap();
                let n = {
                    let mut fetches = state.fetches.lock().unwrap();
                    fetches.push(id);
                    fetches.len()
                };
                let wanted: Vec<(i32, i64)> = req.topics[0]
                    .partitions
                    .iter()
                    .map(|p| (p.partition, p.fetch_offset))
                    .collect();
                let resp = match state.mode {
                    Mode::LeaderMoves(error) => fetch(id, wanted[0].1, error, &state),
                    Mode::Flood { record_bytes, .. } => {
                        flood(&wanted[n % wanted.len()], record_bytes)
                    }
                };
                resp.encode(&mut body, version).unwrap();
            }
            ApiKey::FindCoordinator => {
                let coordinator = state.coordinator.load(Ordering::SeqCst);
                state.lookups.fetch_add(1, Ordering::SeqCst);
                let port = i32::from(state.ports.lock().unwrap()[coordinator as usize - 1]);
                FindCoordinatorResponse::default()
                    .with_coordinators(vec![Coordinator::default()
                        .with_key(StrBytes::from_static_str("g"))
                        .with_node_id(BrokerId(coordinator))
                        .with_host(StrBytes::from_static_str("127.0.0.1"))
                        .with_port(port)])
                    .encode(&mut body, version)
                    .unwrap()
            }
            ApiKey::OffsetCommit => {
                let req = OffsetCommitRequest::decode(&mut buf, version).unwrap();
                // Broker 1 gives the group up on the first commit, to broker 2.
                let code = if id == state.coordinator.load(Ordering::SeqCst) && id == 2 {
                    let p = &req.topics[0].partitions[0];
                    state.committed.lock().unwrap().push(p.committed_offset);
                    0
                } else {
                    state.coordinator.store(2, Ordering::SeqCst);
                    16 // NOT_COORDINATOR
                };
                OffsetCommitResponse::default()
                    .with_topics(vec![OffsetCommitResponseTopic::default()
                        .with_name(TopicName(StrBytes::from_static_str(TOPIC)))
                        .with_partitions(vec![
                            OffsetCommitResponsePartition::default().with_error_code(code)
                        ])])
                    .encode(&mut body, version)
                    .unwrap()
            }
            ApiKey::OffsetFetch => {
                // No committed offsets (version 8+ answers per group).
                let partitions = vec![OffsetFetchResponsePartitions::default()
                    .with_partition_index(0)
                    .with_committed_offset(-1)];
                let denied = state.deny_offset_fetch.load(Ordering::SeqCst);
                OffsetFetchResponse::default()
                    .with_groups(vec![OffsetFetchResponseGroup::default()
                        .with_error_code(if denied { 30 } else { 0 }) // GROUP_AUTHORIZATION_FAILED
                        .with_group_id(GroupId(StrBytes::from_static_str("g")))
                        .with_topics(vec![OffsetFetchResponseTopics::default()
                            .with_name(TopicName(StrBytes::from_static_str(TOPIC)))
                            .with_partitions(partitions)])])
                    .encode(&mut body, version.max(8))
                    .unwrap()
            }
            other => panic!("fake broker got an unexpected {other:?}"),
        }
        let mut out = BytesMut::new();
        out.put_i32(0);
        ResponseHeader::default()
            .with_correlation_id(header.correlation_id)
            .encode(&mut out, api.response_header_version(version))
            .unwrap();
        out.extend_from_slice(&body);
        let n = (out.len() - 4) as i32;
        out[..4].copy_from_slice(&n.to_be_bytes());
        if socket.write_all(&out).await.is_err() {
            return;
        }
    }
}

fn metadata(state: &State) -> MetadataResponse {
    let ports = state.ports.lock().unwrap().clone();
    MetadataResponse::default()
        .with_cluster_id(Some(StrBytes::from_static_str("fake")))
        .with_controller_id(BrokerId(1))
        .with_brokers(
            ports
                .iter()
                .enumerate()
                .map(|(i, port)| {
                    MetadataResponseBroker::default()
                        .with_node_id(BrokerId(i as i32 + 1))
                        .with_host(StrBytes::from_static_str("127.0.0.1"))
                        .with_port(i32::from(*port))
                })
                .collect(),
        )
        .with_topics(vec![MetadataResponseTopic::default()
            .with_name(Some(TopicName(StrBytes::from_static_str(TOPIC))))
            .with_partitions(
                (0..state.partitions())
                    .map(|p| {
                        MetadataResponsePartition::default()
                            .with_partition_index(p)
                            .with_leader_id(BrokerId(state.leader.load(Ordering::SeqCst)))
                            .with_leader_epoch(state.leader_epoch.load(Ordering::SeqCst))
                            .with_replica_nodes(vec![BrokerId(1), BrokerId(2)])
                            .with_isr_nodes(vec![BrokerId(1), BrokerId(2)])
                    })
                    .collect(),
            )])
}

/// One record of `bytes` at the fetch offset of one partition.
fn flood(&(partition, offset): &(i32, i64), bytes: usize) -> FetchResponse {
    let mut b = RecordBatchBuilder::new(Compression::None, bytes + 128);
    b.append(1_000, None, Some(&vec![b'x'; bytes]), &[])
        .unwrap();
    let mut batch = BytesMut::from(&b.build(ProducerState::NONE).unwrap()[..]);
    batch[..8].copy_from_slice(&offset.to_be_bytes());
    FetchResponse::default().with_responses(vec![FetchableTopicResponse::default()
        .with_topic(TopicName(StrBytes::from_static_str(TOPIC)))
        .with_partitions(vec![PartitionData::default()
            .with_partition_index(partition)
            .with_high_watermark(i64::MAX / 2)
            .with_last_stable_offset(i64::MAX / 2)
            .with_records(Some(batch.freeze()))])])
}

/// Broker `id` answers a Fetch: the first leader fails once and hands leadership over; the
/// leader returns three records from the fetch offset on.
fn fetch(id: i32, offset: i64, error: i16, state: &State) -> FetchResponse {
    let mut p = PartitionData::default()
        .with_partition_index(0)
        .with_high_watermark(3)
        .with_last_stable_offset(3);
    if id != state.leader.load(Ordering::SeqCst) {
        p = p.with_error_code(6);
    } else if id == 1 {
        // The leader moves to broker 2 (a new epoch); broker 1 says so.
        state.leader.store(2, Ordering::SeqCst);
        state.leader_epoch.fetch_add(1, Ordering::SeqCst);
        p = p.with_error_code(error);
    } else if offset < 3 {
        let mut b = RecordBatchBuilder::new(Compression::None, 1024);
        for i in offset..3 {
            b.append(
                1_000 + i,
                Some(b"k"),
                Some(format!("value-{i}").as_bytes()),
                &[],
            )
            .unwrap();
        }
        let mut batch = BytesMut::from(&b.build(ProducerState::NONE).unwrap()[..]);
        batch[..8].copy_from_slice(&offset.to_be_bytes());
        p = p.with_records(Some(batch.freeze()));
    }
    FetchResponse::default().with_responses(vec![FetchableTopicResponse::default()
        .with_topic(TopicName(StrBytes::from_static_str(TOPIC)))
        .with_partitions(vec![p])])
}

async fn reads_after_the_leader_moves(error: i16) {
    let (state, bootstrap) = start(Mode::LeaderMoves(error)).await;
    let mut c = Consumer::builder()
        .bootstrap_servers(&bootstrap)
        .auto_offset_reset(OffsetReset::Earliest)
        .build()
        .await
        .unwrap();
    let tp = TopicPartition::new(TOPIC, 0);
    c.assign([tp.clone()]).unwrap();
    let mut got = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while got.len() < 3 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no records after the leader moved"
        );
        got.extend(c.poll(Duration::from_millis(100)).await.unwrap());
    }
    let values: Vec<&[u8]> = got.iter().map(|r| r.value.as_deref().unwrap()).collect();
    assert_eq!(values, vec![&b"value-0"[..], b"value-1", b"value-2"]);
    let fetches = state.fetches.lock().unwrap().clone();
    assert_eq!(
        fetches.first(),
        Some(&1),
        "first Fetch goes to the first leader"
    );
    assert!(
        fetches.contains(&2),
        "never fetched from the new leader: {fetches:?}"
    );
    assert_eq!(
        fetches.iter().filter(|b| **b == 1).count(),
        1,
        "kept fetching from the old leader: {fetches:?}"
    );
    assert!(
        state.metadata_requests.load(Ordering::SeqCst) >= 2,
        "metadata was not refreshed"
    );
    assert_eq!(c.position(&tp).await.unwrap(), 3);
}

#[tokio::test]
async fn not_leader_or_follower_refreshes_metadata_and_fetches_from_the_new_leader() {
    reads_after_the_leader_moves(6).await; // NOT_LEADER_OR_FOLLOWER
}

#[tokio::test]
async fn fenced_leader_epoch_refreshes_metadata_and_fetches_from_the_new_leader() {
    reads_after_the_leader_moves(74).await; // FENCED_LEADER_EPOCH
}

#[tokio::test]
async fn an_application_that_stops_polling_stops_fetching_at_the_buffer_cap() {
    const RECORD: usize = 50 * 1024;
    const CAP: usize = 200 * 1024;
    let (state, bootstrap) = start(Mode::Flood {
        partitions: 50,
        record_bytes: RECORD,
    })
    .await;
    let mut c = Consumer::builder()
        .bootstrap_servers(&bootstrap)
        .auto_offset_reset(OffsetReset::Earliest)
        .fetch_buffer_max_bytes(CAP)
        .build()
        .await
        .unwrap();
    c.assign((0..50).map(|p| TopicPartition::new(TOPIC, p)))
        .unwrap();
    let first = c.poll(Duration::from_secs(10)).await.unwrap();
    assert!(!first.is_empty());
    // The application now takes its time. The brokers would answer every Fetch at once
    // with 50 KiB more; the consumer may hold about the cap, plus what was in flight.
    let fetches = || state.fetches.lock().unwrap().len();
    let settled = {
        let mut last = fetches();
        loop {
            tokio::time::sleep(Duration::from_millis(300)).await;
            let now = fetches();
            if now == last {
                break now;
            }
            last = now;
        }
    };
    let most = first.len() + CAP / RECORD + 2;
    assert!(
        settled <= most,
        "{settled} fetches of 50 KiB for a 200 KiB buffer (at most {most})"
    );
    // Reading resumes the fetching.
    let mut read = first.len();
    while read < settled + 10 {
        read += c.poll(Duration::from_secs(10)).await.unwrap().len();
    }
    assert!(fetches() > settled);
}

#[tokio::test]
async fn a_commit_meeting_not_coordinator_finds_the_new_coordinator_and_succeeds() {
    let (state, bootstrap) = start(Mode::LeaderMoves(6)).await;
    let c = Consumer::builder()
        .bootstrap_servers(&bootstrap)
        .group_id("g")
        .enable_auto_commit(false)
        .build()
        .await
        .unwrap();
    let tp = TopicPartition::new(TOPIC, 0);
    c.assign([tp.clone()]).unwrap();
    c.commit_sync_offsets(std::collections::HashMap::from([(
        tp,
        kafka_client::OffsetAndMetadata::new(42),
    )]))
    .await
    .unwrap();
    assert_eq!(
        *state.committed.lock().unwrap(),
        vec![42],
        "committed once, on the new coordinator"
    );
    assert!(
        state.lookups.load(Ordering::SeqCst) >= 2,
        "the coordinator was not looked up again"
    );
}

/// A committed-offset look-up that retrying cannot fix (no authorization on the group) is
/// reported by poll, as Java's poll throws it, instead of being retried in silence forever.
#[tokio::test]
async fn a_group_authorization_failure_reading_committed_offsets_reaches_poll() {
    let (state, bootstrap) = start(Mode::LeaderMoves(6)).await;
    state.deny_offset_fetch.store(true, Ordering::SeqCst);
    let mut c = Consumer::builder()
        .bootstrap_servers(&bootstrap)
        .group_id("g")
        .enable_auto_commit(false)
        .build()
        .await
        .unwrap();
    c.assign([TopicPartition::new(TOPIC, 0)]).unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let err = loop {
        assert!(
            tokio::time::Instant::now() < deadline,
            "poll never reported the failure"
        );
        match c.poll(Duration::from_millis(200)).await {
            Ok(records) => assert!(records.is_empty()),
            Err(e) => break e,
        }
    };
    assert_eq!(
        err.kafka_code(),
        Some(kafka_client::KafkaCode::GROUP_AUTHORIZATION_FAILED),
        "{err}"
    );
    assert!(err.to_string().contains(TOPIC), "{err}");
}
