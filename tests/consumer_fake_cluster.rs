//! Broker behaviour a real broker cannot produce on demand, from a fake two-broker cluster
//! (`fake_cluster/`): a partition's leader answers a Fetch with a leader error and the
//! metadata then names the other broker (the consumer must refresh, re-route and read); a
//! broker with an endless supply of data facing an application that stopped polling (the
//! consumer must stop fetching at `fetch.buffer.max.bytes`); coordinator moves and refusals;
//! an `OFFSET_OUT_OF_RANGE` answer to a prefetch; the fetch session a closing consumer ends.

mod fake_cluster;

use std::sync::atomic::Ordering;
use std::time::Duration;

use fake_cluster::{start, Mode, SESSION_ID, TOPIC};
use kafka_client::consumer::{Consumer, OffsetReset};
use kafka_client::TopicPartition;

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

/// An `OFFSET_OUT_OF_RANGE` answer to a Fetch made ahead of the application's position (the
/// records before it still in the buffer) is stale, as in Java: the buffered records are
/// handed out, the partition is not fetched again until the position gets there, and only
/// an answer at the position counts (here, with `auto.offset.reset=none`, an error).
#[tokio::test]
async fn out_of_range_for_a_prefetch_hands_out_the_buffered_records_first() {
    let (state, bootstrap) = start(Mode::Log {
        truncated: true,
        corrupt: false,
    })
    .await;
    let mut c = Consumer::builder()
        .bootstrap_servers(&bootstrap)
        .auto_offset_reset(OffsetReset::None)
        .max_poll_records(2)
        .fetch_max_wait(Duration::from_millis(50))
        .build()
        .await
        .unwrap();
    let (p0, p1) = (TopicPartition::new(TOPIC, 0), TopicPartition::new(TOPIC, 1));
    c.assign([p0.clone(), p1.clone()]).unwrap();
    c.seek(&p0, 0).unwrap();
    c.seek(&p1, 0).unwrap();
    // Records 0-4 arrive, the prefetch at 5 is out of range, and a Fetch after that one
    // shows its answer was handled, all before the application reads anything.
    state
        .wait_for_fetches("after the prefetch's answer", |seen| {
            seen.iter()
                .position(|f| f.out_of_range)
                .is_some_and(|at| seen.len() > at + 1)
        })
        .await;
    let mut offsets = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let err = loop {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no out-of-range error at the position; read {offsets:?}"
        );
        match c.poll(Duration::from_millis(100)).await {
            Ok(records) => offsets.extend(records.iter().map(|r| r.offset)),
            Err(e) => break e,
        }
    };
    assert_eq!(offsets, vec![0, 1, 2, 3, 4], "buffered records lost: {err}");
    assert_eq!(
        err.kafka_code(),
        Some(kafka_client::KafkaCode::OFFSET_OUT_OF_RANGE),
        "{err}"
    );
    assert!(err.to_string().contains(&format!("{TOPIC}-0")), "{err}");
    assert_eq!(c.position(&p1).await.unwrap(), 0);
    // Asked once ahead of the position, once at it: never hammered in between.
    let asked: Vec<(i32, i64)> = state
        .seen
        .lock()
        .unwrap()
        .iter()
        .flat_map(|f| f.partitions.clone())
        .filter(|&(p, offset)| p == 0 && offset == 5)
        .collect();
    assert_eq!(asked.len(), 2, "{asked:?}");
}

/// A malformed record in the middle of a batch (with `check.crcs=false`): `poll` hands out the
/// records before it, then fails naming the partition and the bad record's offset, again on
/// every poll (the consumer never skips it silently) until the application seeks past it.
#[tokio::test]
async fn a_malformed_record_is_reported_after_the_records_before_it_until_sought_past() {
    let (_state, bootstrap) = start(Mode::Log {
        truncated: false,
        corrupt: true,
    })
    .await;
    let mut c = Consumer::builder()
        .bootstrap_servers(&bootstrap)
        .check_crcs(false)
        .fetch_max_wait(Duration::from_millis(50))
        .build()
        .await
        .unwrap();
    let p0 = TopicPartition::new(TOPIC, 0);
    c.assign([p0.clone()]).unwrap();
    c.seek(&p0, 0).unwrap();
    let mut offsets = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let err = loop {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no error; read {offsets:?}"
        );
        match c.poll(Duration::from_millis(100)).await {
            Ok(records) => offsets.extend(records.iter().map(|r| r.offset)),
            Err(e) => break e,
        }
    };
    assert_eq!(offsets, vec![0, 1]);
    assert!(
        matches!(
            err,
            kafka_client::Error::Corrupt {
                offset: Some(2),
                ..
            }
        ),
        "{err:?}"
    );
    assert!(
        err.to_string().contains(&format!("{TOPIC}-0 at offset 2")),
        "{err}"
    );
    for _ in 0..2 {
        let again = c.poll(Duration::from_secs(5)).await.unwrap_err();
        assert_eq!(again.to_string(), err.to_string());
    }
    assert_eq!(c.position(&p0).await.unwrap(), 2);
    c.seek(&p0, 3).unwrap();
    let mut rest = Vec::new();
    while rest.len() < 2 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "nothing after the seek"
        );
        let records = c.poll(Duration::from_millis(100)).await.unwrap();
        rest.extend(records.iter().map(|r| r.offset));
    }
    assert_eq!(rest, vec![3, 4]);
}

/// `close` ends the consumer's KIP-227 fetch session, as Java's does: one last Fetch with the
/// session id and the final epoch (-1), naming no partitions. (A real broker's session cache
/// cannot be inspected from a client, hence the fake.)
#[tokio::test]
async fn close_ends_the_fetch_session_with_the_final_epoch() {
    let (state, bootstrap) = start(Mode::Log {
        truncated: false,
        corrupt: false,
    })
    .await;
    let mut c = Consumer::builder()
        .bootstrap_servers(&bootstrap)
        .fetch_max_wait(Duration::from_millis(50))
        .build()
        .await
        .unwrap();
    let (p0, p1) = (TopicPartition::new(TOPIC, 0), TopicPartition::new(TOPIC, 1));
    c.assign([p0.clone(), p1.clone()]).unwrap();
    c.seek(&p0, 0).unwrap();
    c.seek(&p1, 0).unwrap();
    let mut read = 0;
    while read < 5 {
        read += c.poll(Duration::from_secs(5)).await.unwrap().len();
    }
    state
        .wait_for_fetches("in the session", |seen| {
            seen.iter()
                .any(|f| f.session_id == SESSION_ID && f.session_epoch >= 1)
        })
        .await;
    c.close().await.unwrap();
    let seen = state.seen.lock().unwrap().clone();
    let closing: Vec<_> = seen.iter().filter(|f| f.session_epoch == -1).collect();
    assert_eq!(closing.len(), 1, "{seen:?}");
    let last = seen.last().unwrap();
    assert_eq!(
        (last.broker, last.session_id, last.session_epoch),
        (1, SESSION_ID, -1),
        "{seen:?}"
    );
    assert!(last.partitions.is_empty(), "{last:?}");
}
