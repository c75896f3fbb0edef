//! Group-coordinator behaviour a real broker cannot produce on demand, from a fake broker in
//! the test that is its own group coordinator for one member: an OffsetCommit it answers
//! only when the test says so (or late), while the group rebalances. The auto-commit before
//! a revocation must not hold `poll` past its timeout, must come before the revoked
//! callback, and is given up after `max.poll.interval.ms`. It also records which topics
//! each Metadata request asks for: a pattern subscriber's periodic refreshes list every
//! topic, a topic-list subscriber's never do.

mod common;

use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_client::consumer::{Consumer, OffsetReset};
use kafka_client::TopicPartition;
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
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
    ApiKey, ApiVersionsResponse, BrokerId, FetchResponse, FindCoordinatorResponse, GroupId,
    HeartbeatResponse, JoinGroupRequest, JoinGroupResponse, LeaveGroupResponse,
    ListOffsetsResponse, MetadataRequest, MetadataResponse, OffsetCommitRequest,
    OffsetCommitResponse, OffsetFetchResponse, RequestHeader, ResponseHeader, SyncGroupRequest,
    SyncGroupResponse, TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio::time::Instant;

use common::group::{poll_until, Recorder};

const TOPIC: &str = "fake-group-topic";
const MEMBER: &str = "member-1";

/// The fake broker's state, shared with the test.
#[derive(Default)]
struct State {
    port: Mutex<u16>,
    generation: AtomicI32,
    /// Heartbeats answer REBALANCE_IN_PROGRESS until the member joins again.
    rebalance: AtomicBool,
    /// OffsetCommits wait for `release` (or `hold_for`) before they are answered.
    hold_commits: AtomicBool,
    hold_for: Mutex<Option<Duration>>,
    release: Notify,
    /// Offsets of every OffsetCommit received, and of every one answered.
    commits_received: Mutex<Vec<i64>>,
    commits_answered: Mutex<Vec<i64>>,
    /// The topics of every Metadata request; `None` asks for all of them.
    metadata_requests: Mutex<Vec<Option<Vec<String>>>>,
}

async fn start() -> (Arc<State>, String) {
    let state = Arc::new(State::default());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    *state.port.lock().unwrap() = port;
    let shared = state.clone();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            tokio::spawn(serve(socket, shared.clone()));
        }
    });
    (state, format!("127.0.0.1:{port}"))
}

/// Answers requests one at a time, in order, as a broker does per connection.
async fn serve(mut socket: TcpStream, state: Arc<State>) {
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
        let body = answer(api, version, buf, &state).await;
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

fn name(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_owned())
}

async fn answer(api: ApiKey, version: i16, mut buf: Bytes, state: &State) -> BytesMut {
    let mut body = BytesMut::new();
    let port = i32::from(*state.port.lock().unwrap());
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
                    (ApiKey::JoinGroup, 0, 9),
                    (ApiKey::SyncGroup, 0, 5),
                    (ApiKey::Heartbeat, 0, 4),
                    (ApiKey::LeaveGroup, 0, 5),
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
            let req = MetadataRequest::decode(&mut buf, version).unwrap();
            let topics = req.topics.map(|topics| {
                topics
                    .into_iter()
                    .filter_map(|t| t.name.map(|n| n.to_string()))
                    .collect()
            });
            state.metadata_requests.lock().unwrap().push(topics);
            MetadataResponse::default()
                .with_cluster_id(Some(name("fake")))
                .with_controller_id(BrokerId(1))
                .with_brokers(vec![MetadataResponseBroker::default()
                    .with_node_id(BrokerId(1))
                    .with_host(name("127.0.0.1"))
                    .with_port(port)])
                .with_topics(vec![MetadataResponseTopic::default()
                    .with_name(Some(TopicName(name(TOPIC))))
                    .with_partitions(vec![MetadataResponsePartition::default()
                        .with_partition_index(0)
                        .with_leader_id(BrokerId(1))
                        .with_leader_epoch(1)
                        .with_replica_nodes(vec![BrokerId(1)])
                        .with_isr_nodes(vec![BrokerId(1)])])])
                .encode(&mut body, version)
                .unwrap()
        }
        ApiKey::FindCoordinator => {
            let resp = FindCoordinatorResponse::default();
            let resp = if version >= 4 {
                resp.with_coordinators(vec![Coordinator::default()
                    .with_key(name("g"))
                    .with_node_id(BrokerId(1))
                    .with_host(name("127.0.0.1"))
                    .with_port(port)])
            } else {
                resp.with_node_id(BrokerId(1))
                    .with_host(name("127.0.0.1"))
                    .with_port(port)
            };
            resp.encode(&mut body, version).unwrap()
        }
        ApiKey::JoinGroup => {
            // The only member, and so the leader: its own subscription comes back to it.
            let req = JoinGroupRequest::decode(&mut buf, version).unwrap();
            let protocol = req.protocols[0].clone();
            let generation = state.generation.fetch_add(1, Ordering::SeqCst) + 1;
            state.rebalance.store(false, Ordering::SeqCst);
            JoinGroupResponse::default()
                .with_generation_id(generation)
                .with_protocol_type(Some(name("consumer")))
                .with_protocol_name(Some(protocol.name.clone()))
                .with_leader(name(MEMBER))
                .with_member_id(name(MEMBER))
                .with_members(vec![JoinGroupResponseMember::default()
                    .with_member_id(name(MEMBER))
                    .with_metadata(protocol.metadata)])
                .encode(&mut body, version)
                .unwrap()
        }
        ApiKey::SyncGroup => {
            let req = SyncGroupRequest::decode(&mut buf, version).unwrap();
            let assignment = req
                .assignments
                .into_iter()
                .find(|a| a.member_id.as_str() == MEMBER)
                .map(|a| a.assignment)
                .unwrap_or_default();
            let mut resp = SyncGroupResponse::default().with_assignment(assignment);
            if version >= 5 {
                resp = resp
                    .with_protocol_type(req.protocol_type)
                    .with_protocol_name(req.protocol_name);
            }
            resp.encode(&mut body, version).unwrap()
        }
        ApiKey::Heartbeat => {
            let code = if state.rebalance.load(Ordering::SeqCst) {
                27 // REBALANCE_IN_PROGRESS
            } else {
                0
            };
            HeartbeatResponse::default()
                .with_error_code(code)
                .encode(&mut body, version)
                .unwrap()
        }
        ApiKey::LeaveGroup => LeaveGroupResponse::default()
            .encode(&mut body, version)
            .unwrap(),
        ApiKey::OffsetFetch => OffsetFetchResponse::default()
            .with_groups(vec![OffsetFetchResponseGroup::default()
                .with_group_id(GroupId(name("g")))
                .with_topics(vec![OffsetFetchResponseTopics::default()
                    .with_name(TopicName(name(TOPIC)))
                    .with_partitions(vec![
                        OffsetFetchResponsePartitions::default()
                            .with_partition_index(0)
                            .with_committed_offset(-1),
                    ])])])
            .encode(&mut body, version)
            .unwrap(),
        ApiKey::OffsetCommit => {
            let req = OffsetCommitRequest::decode(&mut buf, version).unwrap();
            let offset = req.topics[0].partitions[0].committed_offset;
            state.commits_received.lock().unwrap().push(offset);
            if state.hold_commits.load(Ordering::SeqCst) {
                let hold_for = *state.hold_for.lock().unwrap();
                match hold_for {
                    Some(d) => tokio::time::sleep(d).await,
                    None => state.release.notified().await,
                }
            }
            state.commits_answered.lock().unwrap().push(offset);
            OffsetCommitResponse::default()
                .with_topics(vec![OffsetCommitResponseTopic::default()
                    .with_name(TopicName(name(TOPIC)))
                    .with_partitions(vec![OffsetCommitResponsePartition::default()])])
                .encode(&mut body, version)
                .unwrap()
        }
        ApiKey::ListOffsets => ListOffsetsResponse::default()
            .with_topics(vec![ListOffsetsTopicResponse::default()
                .with_name(TopicName(name(TOPIC)))
                .with_partitions(vec![ListOffsetsPartitionResponse::default()
                    .with_partition_index(0)
                    .with_offset(0)])])
            .encode(&mut body, version)
            .unwrap(),
        ApiKey::Fetch => {
            // An empty partition: answer as a broker does after fetch.max.wait.ms, briefly.
            tokio::time::sleep(Duration::from_millis(50)).await;
            FetchResponse::default()
                .with_responses(vec![FetchableTopicResponse::default()
                    .with_topic(TopicName(name(TOPIC)))
                    .with_partitions(vec![PartitionData::default()
                        .with_partition_index(0)
                        .with_high_watermark(0)
                        .with_last_stable_offset(0)])])
                .encode(&mut body, version)
                .unwrap()
        }
        other => panic!("fake broker got an unexpected {other:?}"),
    }
    body
}

/// A member of group "g" with auto-commit, joined and positioned on the one partition.
async fn joined_member(
    bootstrap: &str,
    max_poll_interval: Duration,
    listener: Recorder,
) -> Consumer {
    let mut c = Consumer::builder()
        .bootstrap_servers(bootstrap)
        .group_id("g")
        .enable_auto_commit(true)
        .auto_offset_reset(OffsetReset::Earliest)
        .set("partition.assignment.strategy", "range")
        .session_timeout(Duration::from_secs(10))
        .heartbeat_interval(Duration::from_millis(50))
        .max_poll_interval(max_poll_interval)
        .rebalance_listener(listener)
        .build()
        .await
        .unwrap();
    c.subscribe([TOPIC]).unwrap();
    let tp = TopicPartition::new(TOPIC, 0);
    let deadline = Instant::now() + Duration::from_secs(10);
    while c.assignment() != [tp.clone()] {
        assert!(Instant::now() < deadline, "never joined the fake group");
        c.poll(Duration::from_millis(50)).await.unwrap();
    }
    assert_eq!(c.position(&tp).await.unwrap(), 0);
    c
}

/// Java bounds the commit in `onJoinPrepare` by the poll's timer: `poll` returns on time
/// and the rebalance goes on in a later `poll`. The commit used to be awaited inside `poll`
/// for up to `default.api.timeout.ms` (60 s).
#[tokio::test]
async fn a_slow_commit_before_revoking_does_not_hold_poll_past_its_timeout() {
    let (state, bootstrap) = start().await;
    let seen = Recorder::default();
    let mut c = joined_member(&bootstrap, Duration::from_secs(300), seen.clone()).await;
    let tp = TopicPartition::new(TOPIC, 0);
    state.hold_commits.store(true, Ordering::SeqCst);
    state.rebalance.store(true, Ordering::SeqCst);
    // The next heartbeat starts the rebalance; the member commits before it revokes.
    let mut polls = 0;
    while state.commits_received.lock().unwrap().is_empty() {
        let started = Instant::now();
        let polled =
            tokio::time::timeout(Duration::from_secs(5), c.poll(Duration::from_millis(200)))
                .await
                .expect("poll waited for the commit past its timeout");
        assert!(polled.unwrap().is_empty());
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
        polls += 1;
        assert!(polls < 50, "no commit before the revocation");
    }
    // The commit is unanswered: polls return on time, and the revocation waits for it.
    for _ in 0..3 {
        let started = Instant::now();
        let polled =
            tokio::time::timeout(Duration::from_secs(5), c.poll(Duration::from_millis(200)))
                .await
                .expect("poll waited for the commit past its timeout");
        assert!(polled.unwrap().is_empty());
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
    }
    assert!(
        seen.0.lock().unwrap().revoked.is_empty(),
        "revoked before the commit"
    );
    assert_eq!(c.assignment(), std::slice::from_ref(&tp));
    // Once the commit is answered, the next polls revoke, rejoin and assign again.
    state.release.notify_one();
    let deadline = Instant::now() + Duration::from_secs(10);
    while seen.0.lock().unwrap().assigned.len() < 2 {
        assert!(Instant::now() < deadline, "the rebalance did not finish");
        c.poll(Duration::from_millis(100)).await.unwrap();
    }
    assert_eq!(*state.commits_answered.lock().unwrap(), vec![0]);
    assert_eq!(seen.0.lock().unwrap().revoked, vec![vec![tp.clone()]]);
    assert_eq!(c.assignment(), [tp]);
    assert_eq!(state.generation.load(Ordering::SeqCst), 2);
}

/// Java gives up on that commit after the rebalance timeout (`max.poll.interval.ms`), so the
/// member rejoins in time; the revocation then goes on without it.
#[tokio::test]
async fn the_commit_before_revoking_is_given_up_after_max_poll_interval() {
    let (state, bootstrap) = start().await;
    let seen = Recorder::default();
    let mut c = joined_member(&bootstrap, Duration::from_secs(1), seen.clone()).await;
    *state.hold_for.lock().unwrap() = Some(Duration::from_secs(4));
    state.hold_commits.store(true, Ordering::SeqCst);
    state.rebalance.store(true, Ordering::SeqCst);
    let started = Instant::now();
    while seen.0.lock().unwrap().revoked.is_empty() {
        assert!(started.elapsed() < Duration::from_secs(10), "never revoked");
        c.poll(Duration::from_millis(100)).await.unwrap();
    }
    let revoked_after = started.elapsed();
    assert_eq!(state.commits_received.lock().unwrap().len(), 1);
    assert!(
        state.commits_answered.lock().unwrap().is_empty(),
        "the commit was answered after {revoked_after:?}: nothing was given up"
    );
    assert!(revoked_after < Duration::from_secs(3), "{revoked_after:?}");
}

/// Polls `c` until the fake broker has seen `count` Metadata requests; returns them.
async fn metadata_requests(
    c: &mut Consumer,
    state: &State,
    count: usize,
) -> Vec<Option<Vec<String>>> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let seen = state.metadata_requests.lock().unwrap().clone();
        if seen.len() >= count {
            return seen;
        }
        assert!(
            Instant::now() < deadline,
            "only {} Metadata requests",
            seen.len()
        );
        c.poll(Duration::from_millis(50)).await.unwrap();
    }
}

/// As Java's `ConsumerMetadata`: with a pattern subscription the periodic refresh asks for
/// every topic (the pattern is matched against them); with a topic list, only for those.
#[tokio::test]
async fn only_a_pattern_subscriber_lists_every_topic_at_its_refreshes() {
    let (state, bootstrap) = start().await;
    let builder = || {
        Consumer::builder()
            .bootstrap_servers(&bootstrap)
            .group_id("g")
            .auto_offset_reset(OffsetReset::Earliest)
            .session_timeout(Duration::from_secs(10))
            .heartbeat_interval(Duration::from_millis(50))
            .metadata_max_age(Duration::from_millis(50))
    };

    let mut c = builder().build().await.unwrap();
    c.subscribe([TOPIC]).unwrap();
    let seen = metadata_requests(&mut c, &state, 10).await;
    assert!(
        seen.iter().all(Option::is_some),
        "a topic-list subscriber asked for every topic: {seen:?}"
    );
    assert!(seen
        .iter()
        .any(|t| t.as_deref() == Some(&[TOPIC.to_owned()][..])));
    c.close().await.unwrap();

    state.metadata_requests.lock().unwrap().clear();
    let mut c = builder().build().await.unwrap();
    // The fake cluster's one topic; matched against the listing, then assigned.
    c.subscribe_pattern("fake-group-.*").unwrap();
    let seen = metadata_requests(&mut c, &state, 10).await;
    let all = seen.iter().filter(|t| t.is_none()).count();
    assert!(
        all >= 5,
        "{all} of {} asked for every topic: {seen:?}",
        seen.len()
    );
    assert_eq!(c.subscription(), [TOPIC]);
    let tp = TopicPartition::new(TOPIC, 0);
    poll_until(&mut c, 10, |c| c.assignment() == std::slice::from_ref(&tp)).await;
    c.close().await.unwrap();
}
