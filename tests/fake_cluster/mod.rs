//! A fake two-broker cluster for the consumer tests of broker behaviour a real broker cannot
//! produce on demand (see `consumer_fake_cluster.rs`). Each [`Mode`] is one scripted
//! behaviour; [`State`] records what the consumer asked.
#![allow(dead_code)]

use std::sync::atomic::{AtomicI32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_client::protocol::records::{Compression, ProducerState, RecordBatchBuilder};
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

pub const TOPIC: &str = "moving";

/// The session id broker 1 gives a consumer in [`Mode::Log`].
pub const SESSION_ID: i32 = 4242;

/// What the fake brokers do with Fetch requests.
#[derive(Clone, Copy)]
pub enum Mode {
    /// One partition; broker 1 leads it, answers its first Fetch with this leader error and
    /// hands leadership to broker 2, which has three records.
    LeaderMoves(i16),
    /// `partitions` partitions led by broker 1, each with an endless log of records of
    /// `record_bytes`; each Fetch gets one record of one requested partition.
    Flood {
        partitions: i32,
        record_bytes: usize,
    },
    /// Two partitions led by broker 1, which keeps KIP-227 fetch sessions (id
    /// [`SESSION_ID`]) and holds a Fetch with nothing to return for its `max_wait_ms`.
    /// Partition 0 holds offsets 0-4, partition 1 nothing. With `truncated`, partition 0's
    /// log was cut below 5 after it was read (an unclean leader election, say): a Fetch of it
    /// from 5 on is `OFFSET_OUT_OF_RANGE`. With `corrupt`, the record at offset 2 is malformed
    /// (its fields run past its end; the batch CRC does not cover the change).
    Log { truncated: bool, corrupt: bool },
}

/// One Fetch request a fake broker received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SeenFetch {
    pub broker: i32,
    pub session_id: i32,
    pub session_epoch: i32,
    /// Partition and fetch offset of each partition named.
    pub partitions: Vec<(i32, i64)>,
    /// Whether the answer was `OFFSET_OUT_OF_RANGE` for some partition.
    pub out_of_range: bool,
}

/// The fake cluster's shared state.
pub struct State {
    mode: Mode,
    ports: Mutex<Vec<u16>>,
    leader: AtomicI32,
    leader_epoch: AtomicI32,
    /// The broker of every Fetch, in order.
    pub fetches: Mutex<Vec<i32>>,
    /// Every Fetch in detail ([`Mode::Log`] only), in order; `fetched` tells of each.
    pub seen: Mutex<Vec<SeenFetch>>,
    pub fetched: tokio::sync::Notify,
    pub metadata_requests: AtomicUsize,
    coordinator: AtomicI32,
    pub lookups: AtomicUsize,
    pub committed: Mutex<Vec<i64>>,
    /// Answer OffsetFetch with GROUP_AUTHORIZATION_FAILED.
    pub deny_offset_fetch: std::sync::atomic::AtomicBool,
}

impl State {
    fn partitions(&self) -> i32 {
        match self.mode {
            Mode::LeaderMoves(_) => 1,
            Mode::Flood { partitions, .. } => partitions,
            Mode::Log { .. } => 2,
        }
    }

    /// Waits (at most 10 s) until the Fetch requests seen so far satisfy `done`.
    pub async fn wait_for_fetches(&self, what: &str, done: impl Fn(&[SeenFetch]) -> bool) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let notified = self.fetched.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if done(&self.seen.lock().unwrap()) {
                return;
            }
            let seen = self.seen.lock().unwrap().clone();
            tokio::time::timeout_at(deadline, notified)
                .await
                .unwrap_or_else(|_| panic!("no Fetch requests {what}; seen: {seen:?}"));
        }
    }
}

/// Starts the two fake brokers; returns their state and the bootstrap address (broker 1).
pub async fn start(mode: Mode) -> (Arc<State>, String) {
    let state = Arc::new(State {
        mode,
        ports: Mutex::new(Vec::new()),
        leader: AtomicI32::new(1),
        leader_epoch: AtomicI32::new(5),
        fetches: Mutex::new(Vec::new()),
        seen: Mutex::new(Vec::new()),
        fetched: tokio::sync::Notify::new(),
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
                let resp = match state.mode {
                    Mode::Log { truncated, corrupt } => {
                        log_fetch(id, &req, truncated, corrupt, &state).await
                    }
                    Mode::LeaderMoves(error) => {
                        fetch(id, req.topics[0].partitions[0].fetch_offset, error, &state)
                    }
                    Mode::Flood { record_bytes, .. } => {
                        let wanted: Vec<(i32, i64)> = req.topics[0]
                            .partitions
                            .iter()
                            .map(|p| (p.partition, p.fetch_offset))
                            .collect();
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

/// [`Mode::Log`]: answers the partitions named, opens a session on a full request, and
/// records what it saw (before answering: a test that saw the answer also sees the record).
async fn log_fetch(
    id: i32,
    req: &FetchRequest,
    truncated: bool,
    corrupt: bool,
    state: &State,
) -> FetchResponse {
    let wanted: Vec<(i32, i64)> = req
        .topics
        .iter()
        .flat_map(|t| t.partitions.iter().map(|p| (p.partition, p.fetch_offset)))
        .collect();
    let mut partitions = Vec::new();
    let mut out_of_range = false;
    for &(partition, offset) in &wanted {
        let mut p = PartitionData::default()
            .with_partition_index(partition)
            .with_high_watermark(if partition == 0 { 5 } else { 0 })
            .with_last_stable_offset(if partition == 0 { 5 } else { 0 });
        if partition == 0 && offset < 5 {
            let mut batch = records(offset, 5);
            if corrupt && offset <= 2 {
                batch = break_record(&batch, (2 - offset) as usize);
            }
            p = p.with_records(Some(batch));
        } else if partition == 0 && truncated {
            p = p.with_error_code(1); // OFFSET_OUT_OF_RANGE
            out_of_range = true;
        } else {
            continue;
        }
        partitions.push(p);
    }
    // The session: a full request (epoch 0) opens one, the final epoch (-1) closes it.
    let session_id = match req.session_epoch {
        0 => SESSION_ID,
        -1 => 0,
        _ => req.session_id,
    };
    state.seen.lock().unwrap().push(SeenFetch {
        broker: id,
        session_id: req.session_id,
        session_epoch: req.session_epoch,
        partitions: wanted,
        out_of_range,
    });
    state.fetched.notify_waiters();
    if partitions.is_empty() && req.session_epoch != -1 {
        // A long poll with nothing to return, as a real broker holds it.
        tokio::time::sleep(Duration::from_millis(req.max_wait_ms.max(0) as u64)).await;
    }
    let topics = if partitions.is_empty() {
        Vec::new()
    } else {
        vec![FetchableTopicResponse::default()
            .with_topic(TopicName(StrBytes::from_static_str(TOPIC)))
            .with_partitions(partitions)]
    };
    FetchResponse::default()
        .with_session_id(session_id)
        .with_responses(topics)
}

/// One batch of the records `from..to`, values `value-N`.
fn records(from: i64, to: i64) -> Bytes {
    let mut b = RecordBatchBuilder::new(Compression::None, 1024);
    for i in from..to {
        b.append(
            1_000 + i,
            Some(b"k"),
            Some(format!("value-{i}").as_bytes()),
            &[],
        )
        .unwrap();
    }
    let mut batch = BytesMut::from(&b.build(ProducerState::NONE).unwrap()[..]);
    batch[..8].copy_from_slice(&from.to_be_bytes());
    batch.freeze()
}

/// `batch` (uncompressed, small records) with record `index`'s declared length stretched past
/// the end of the batch.
fn break_record(batch: &[u8], index: usize) -> Bytes {
    let mut v = batch.to_vec();
    let mut pos = 61; // the v2 batch header
    for _ in 0..index {
        pos += 1 + usize::from(v[pos] / 2); // a one-byte zigzag length
    }
    v[pos] += 80;
    Bytes::from(v)
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
        p = p.with_records(Some(records(offset, 3)));
    }
    FetchResponse::default().with_responses(vec![FetchableTopicResponse::default()
        .with_topic(TopicName(StrBytes::from_static_str(TOPIC)))
        .with_partitions(vec![p])])
}
