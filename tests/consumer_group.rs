//! Consumer groups against a real broker: sharing partitions, committing, resuming,
//! rebalancing when members come and go.

mod common;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kafka_client::consumer::{ConsumerRecord, OffsetAndMetadata, OffsetReset};
use kafka_client::{Error, KafkaCode, TopicPartition};
use tokio::time::Instant;

use common::group::{builder, group_name, poll_until, Recorder};
use common::produce::{topic, RawProducer};

#[tokio::test]
async fn commit_close_and_reopen_resumes_at_the_committed_offsets() {
    let admin = common::admin().await;
    let t = topic(&admin, "group-resume", 2, &[]).await;
    let mut producer = RawProducer::new(&admin).await;
    producer.fill(&t, 2, 100).await;
    let group = group_name("g-resume");
    let (p0, p1) = (TopicPartition::new(&t, 0), TopicPartition::new(&t, 1));

    let mut c = builder(&group)
        .enable_auto_commit(false)
        .build()
        .await
        .unwrap();
    c.subscribe([t.clone()]).unwrap();
    let mut got = Vec::new();
    while got.len() < 200 {
        got.extend(c.poll(Duration::from_millis(500)).await.unwrap());
    }
    assert_eq!(got.len(), 200);
    // Java's meaning: position is the next offset to read; committed is what was committed.
    assert_eq!(c.position(&p0).await.unwrap(), 100);
    assert_eq!(
        c.committed(std::slice::from_ref(&p0)).await.unwrap()[&p0],
        None
    );
    // commit_async commits every position (100 on both) and reports its result.
    c.commit_async().await.unwrap();
    assert_eq!(
        c.committed(std::slice::from_ref(&p0)).await.unwrap()[&p0]
            .as_ref()
            .map(|o| o.offset),
        Some(100)
    );
    c.commit_sync_offsets(HashMap::from([
        (
            p0.clone(),
            OffsetAndMetadata::new(60).with_metadata("sixty"),
        ),
        (p1.clone(), OffsetAndMetadata::new(100)),
    ]))
    .await
    .unwrap();
    let committed = c.committed(&[p0.clone(), p1.clone()]).await.unwrap();
    let c0 = committed[&p0].clone().unwrap();
    assert_eq!((c0.offset, c0.metadata.as_str()), (60, "sixty"));
    assert_eq!(committed[&p1].as_ref().map(|o| o.offset), Some(100));
    c.close().await.unwrap();

    producer.fill(&t, 2, 10).await; // offsets 100..110 on both partitions
    let mut c = builder(&group)
        .enable_auto_commit(false)
        .build()
        .await
        .unwrap();
    c.subscribe([t.clone()]).unwrap();
    let mut again: Vec<ConsumerRecord> = Vec::new();
    while again.len() < 50 + 10 {
        again.extend(c.poll(Duration::from_millis(500)).await.unwrap());
    }
    assert!(c.poll(Duration::from_millis(500)).await.unwrap().is_empty());
    let first_p0 = again.iter().find(|r| r.partition == 0).unwrap().offset;
    let first_p1 = again.iter().find(|r| r.partition == 1).unwrap().offset;
    assert_eq!((first_p0, first_p1), (60, 100));
    assert_eq!(again.iter().filter(|r| r.partition == 0).count(), 50);
    c.close().await.unwrap();
}

#[tokio::test]
async fn offset_reset_none_in_a_group_without_commits_names_the_partitions() {
    let admin = common::admin().await;
    let t = topic(&admin, "group-none", 2, &[]).await;
    let mut c = builder(&group_name("g-none"))
        .auto_offset_reset(OffsetReset::None)
        .build()
        .await
        .unwrap();
    c.subscribe([t.clone()]).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let err = loop {
        match c.poll(Duration::from_millis(500)).await {
            Err(e) => break e,
            Ok(r) => assert!(r.is_empty()),
        }
        assert!(Instant::now() < deadline, "no error within 30 s");
    };
    match err {
        Error::NoOffsetForPartition { mut partitions } => {
            partitions.sort();
            assert_eq!(
                partitions,
                vec![TopicPartition::new(&t, 0), TopicPartition::new(&t, 1)]
            );
        }
        other => panic!("expected NoOffsetForPartition, got {other:?}"),
    }
}

/// Three members of one group read a 6-partition topic: 30 000 records are there before
/// they join (so some are read while the group rebalances, relying on auto-commit before
/// revocation), 30 000 more are written once each member owns two partitions. Returns what
/// each member read and the partitions it owned at the end.
async fn share(
    t: &str,
    group: &str,
    strategy: &str,
) -> Vec<(Vec<ConsumerRecord>, Vec<TopicPartition>)> {
    const MEMBERS: usize = 3;
    const TOTAL: usize = 60_000;
    let admin = common::admin().await;
    let mut producer = RawProducer::new(&admin).await;
    producer.fill_range(t, 6, 0, 5_000).await;
    let count = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let sizes = Arc::new(Mutex::new(vec![0usize; MEMBERS]));
    let mut tasks = Vec::new();
    for i in 0..MEMBERS {
        let mut c = builder(group)
            .set("partition.assignment.strategy", strategy)
            .build()
            .await
            .unwrap();
        c.subscribe([t.to_owned()]).unwrap();
        let (count, sizes) = (count.clone(), sizes.clone());
        tasks.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            let deadline = Instant::now() + Duration::from_secs(120);
            // Everyone polls until the group as a whole has every record, so that each
            // rebalance completes for all members.
            while count.load(std::sync::atomic::Ordering::SeqCst) < TOTAL {
                assert!(
                    Instant::now() < deadline,
                    "group did not consume {TOTAL} records in time"
                );
                let records = c.poll(Duration::from_millis(100)).await.unwrap();
                count.fetch_add(records.len(), std::sync::atomic::Ordering::SeqCst);
                mine.extend(records);
                sizes.lock().unwrap()[i] = c.assignment().len();
            }
            c.commit_sync().await.unwrap();
            (mine, c.assignment(), c)
        }));
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while *sizes.lock().unwrap() != vec![2; MEMBERS] {
        assert!(
            Instant::now() < deadline,
            "{strategy}: group never settled: {:?}",
            sizes.lock().unwrap()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    producer.fill_range(t, 6, 5_000, 5_000).await;
    let mut out = Vec::new();
    let mut consumers = Vec::new();
    for task in tasks {
        let (mine, assignment, c) = task.await.unwrap();
        out.push((mine, assignment));
        consumers.push(c);
    }
    for c in consumers {
        c.close().await.unwrap();
    }
    out
}

async fn every_record_once_with(strategy: &str) {
    let admin = common::admin().await;
    let t = topic(&admin, &format!("group-share-{strategy}"), 6, &[]).await;
    let group = group_name(&format!("g-share-{strategy}"));
    let results = share(&t, &group, strategy).await;

    // Every partition owned by exactly one member at the end.
    let mut owners: BTreeMap<TopicPartition, usize> = BTreeMap::new();
    for (i, (_, assignment)) in results.iter().enumerate() {
        for tp in assignment {
            assert!(owners.insert(tp.clone(), i).is_none(), "{tp} owned twice");
        }
    }
    assert_eq!(owners.len(), 6, "{strategy}: partitions owned: {owners:?}");
    let sizes: Vec<usize> = results.iter().map(|r| r.1.len()).collect();
    assert_eq!(sizes, vec![2, 2, 2], "{strategy}");
    // Every record exactly once, in order per partition.
    let mut seen: HashSet<(i32, i64)> = HashSet::new();
    for (records, _) in &results {
        let mut last: HashMap<i32, i64> = HashMap::new();
        for r in records {
            assert!(
                seen.insert((r.partition, r.offset)),
                "{strategy}: record {}-{} read twice",
                r.partition,
                r.offset
            );
            if let Some(prev) = last.insert(r.partition, r.offset) {
                assert!(
                    r.offset > prev,
                    "{strategy}: out of order in partition {}",
                    r.partition
                );
            }
            let expected = format!("v{}-{}", r.partition, r.offset);
            assert_eq!(r.value.as_deref(), Some(expected.as_bytes()));
        }
    }
    assert_eq!(seen.len(), 60_000);
}

#[tokio::test]
async fn range_three_members_share_six_partitions_and_read_every_record_once() {
    every_record_once_with("range").await;
}

#[tokio::test]
async fn roundrobin_three_members_share_six_partitions_and_read_every_record_once() {
    every_record_once_with("roundrobin").await;
}

#[tokio::test]
async fn sticky_three_members_share_six_partitions_and_read_every_record_once() {
    every_record_once_with("sticky").await;
}

#[tokio::test]
async fn cooperative_sticky_three_members_share_six_partitions_and_read_every_record_once() {
    every_record_once_with("cooperative-sticky").await;
}

#[tokio::test]
async fn cooperative_fourth_member_joins_without_revoking_partitions_that_stay() {
    let admin = common::admin().await;
    let t = topic(&admin, "group-coop", 6, &[]).await;
    let group = group_name("g-coop");
    let mut members = Vec::new();
    let mut recorders = Vec::new();
    for _ in 0..3 {
        let r = Recorder::default();
        let c = builder(&group)
            .set("partition.assignment.strategy", "cooperative-sticky")
            .rebalance_listener(r.clone())
            .build()
            .await
            .unwrap();
        c.subscribe([t.clone()]).unwrap();
        members.push(c);
        recorders.push(r);
    }
    // Poll all three until they hold two partitions each.
    let deadline = Instant::now() + Duration::from_secs(60);
    while members
        .iter()
        .map(|c| c.assignment().len())
        .collect::<Vec<_>>()
        != vec![2, 2, 2]
    {
        assert!(Instant::now() < deadline, "three members never settled");
        for c in members.iter_mut() {
            c.poll(Duration::from_millis(50)).await.unwrap();
        }
    }
    let before: Vec<Vec<TopicPartition>> = members.iter().map(|c| c.assignment()).collect();
    for r in &recorders {
        r.0.lock().unwrap().revoked.clear();
    }

    let fourth_rec = Recorder::default();
    let fourth = builder(&group)
        .set("partition.assignment.strategy", "cooperative-sticky")
        .rebalance_listener(fourth_rec.clone())
        .build()
        .await
        .unwrap();
    fourth.subscribe([t.clone()]).unwrap();
    members.push(fourth);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        for c in members.iter_mut() {
            c.poll(Duration::from_millis(50)).await.unwrap();
        }
        let sizes: Vec<usize> = members.iter().map(|c| c.assignment().len()).collect();
        let total: usize = sizes.iter().sum();
        if total == 6 && sizes.iter().all(|s| *s >= 1) && sizes[3] >= 1 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "fourth member never got partitions: {sizes:?}"
        );
    }
    // Members revoke only what moved to the new member; what stays is never revoked.
    let mut moved = 0;
    for (i, r) in recorders.iter().enumerate() {
        let seen = r.0.lock().unwrap();
        let now: HashSet<TopicPartition> = members[i].assignment().into_iter().collect();
        for revoked in &seen.revoked {
            for tp in revoked {
                assert!(
                    !now.contains(tp),
                    "member {i} had {tp} revoked but still owns it"
                );
                moved += 1;
            }
        }
        for tp in &before[i] {
            if now.contains(tp) {
                assert!(
                    seen.revoked.iter().all(|v| !v.contains(tp)),
                    "kept {tp} was revoked"
                );
            }
        }
        assert!(
            seen.lost.is_empty(),
            "member {i} lost partitions: {:?}",
            seen.lost
        );
    }
    let fourth_owns = members[3].assignment();
    assert_eq!(
        moved,
        fourth_owns.len(),
        "only the partitions handed to the new member move"
    );
    for c in members {
        c.close().await.unwrap();
    }
}

#[tokio::test]
async fn a_member_dropped_without_leaving_loses_its_partitions_to_the_others_after_the_session_timeout(
) {
    let admin = common::admin().await;
    let t = topic(&admin, "group-crash", 4, &[]).await;
    let mut producer = RawProducer::new(&admin).await;
    producer.fill(&t, 4, 250).await;
    let group = group_name("g-crash");
    let session = Duration::from_secs(6);
    let make = || {
        builder(&group)
            .session_timeout(session)
            .heartbeat_interval(Duration::from_millis(500))
            .enable_auto_commit(false)
            .build()
    };
    let mut survivor = make().await.unwrap();
    let mut victim = make().await.unwrap();
    survivor.subscribe([t.clone()]).unwrap();
    victim.subscribe([t.clone()]).unwrap();
    let mut processed: HashSet<(i32, i64)> = HashSet::new();
    // Both work for a while, committing after processing each batch.
    let deadline = Instant::now() + Duration::from_secs(60);
    while victim.assignment().len() != 2
        || survivor.assignment().len() != 2
        || processed.len() < 200
    {
        assert!(Instant::now() < deadline, "members did not settle");
        for c in [&mut survivor, &mut victim] {
            let records = c.poll(Duration::from_millis(50)).await.unwrap();
            for r in &records {
                processed.insert((r.partition, r.offset));
            }
            if !records.is_empty() {
                c.commit_sync().await.unwrap();
            }
        }
    }
    let victim_partitions = victim.assignment();
    // Hard kill: no close, no LeaveGroup; its heartbeats stop.
    let killed_at = Instant::now();
    drop(victim);
    // The survivor takes over after the session timeout and reads from the victim's commits.
    let deadline = Instant::now() + Duration::from_secs(60);
    while survivor.assignment().len() != 4 || processed.len() < 1_000 {
        if Instant::now() >= deadline {
            // Say where each partition stands, to tell a missed takeover from a stalled fetch.
            let mut state = Vec::new();
            for tp in survivor.assignment() {
                let done = processed.iter().filter(|(p, _)| *p == tp.partition).count();
                let position = survivor.position(&tp).await;
                state.push(format!("{tp}: {done} processed, position {position:?}"));
            }
            panic!(
                "survivor did not take over within 60 s: {} of 1000 processed; {state:?}",
                processed.len()
            );
        }
        let records = survivor.poll(Duration::from_millis(100)).await.unwrap();
        for r in &records {
            processed.insert((r.partition, r.offset));
        }
        if !records.is_empty() {
            survivor.commit_sync().await.unwrap();
        }
    }
    assert!(
        killed_at.elapsed() >= session - Duration::from_millis(1_500),
        "partitions moved before the session timeout ({:?})",
        killed_at.elapsed()
    );
    for tp in &victim_partitions {
        assert!(survivor.assignment().contains(tp));
    }
    // No record lost: all 1000 offsets of the 4 partitions processed.
    for p in 0..4 {
        for o in 0..250 {
            assert!(
                processed.contains(&(p, o)),
                "record {p}@{o} never processed"
            );
        }
    }
    survivor.close().await.unwrap();
}

#[tokio::test]
async fn a_consumer_that_stops_polling_leaves_the_group_and_rejoins_on_its_next_poll() {
    let admin = common::admin().await;
    let t = topic(&admin, "group-slow", 2, &[]).await;
    let group = group_name("g-slow");
    let r = Recorder::default();
    let mut slow = builder(&group)
        .max_poll_interval(Duration::from_secs(2))
        .rebalance_listener(r.clone())
        .build()
        .await
        .unwrap();
    let mut other = builder(&group).build().await.unwrap();
    slow.subscribe([t.clone()]).unwrap();
    other.subscribe([t.clone()]).unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while slow.assignment().len() != 1 || other.assignment().len() != 1 {
        assert!(Instant::now() < deadline, "members did not settle");
        slow.poll(Duration::from_millis(50)).await.unwrap();
        other.poll(Duration::from_millis(50)).await.unwrap();
    }
    r.0.lock().unwrap().revoked.clear();
    // `slow` stops polling past max.poll.interval.ms; the other member gets everything.
    poll_until(&mut other, 30, |c| c.assignment().len() == 2).await;
    // Its next poll reports its partitions lost (they are listed by `assignment()` until
    // then, as in Java), then it rejoins and gets one back.
    let lost = r.clone();
    poll_until(&mut slow, 30, move |_| {
        !lost.0.lock().unwrap().lost.is_empty()
    })
    .await;
    assert!(
        r.0.lock().unwrap().revoked.is_empty(),
        "lost partitions must not be reported revoked"
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while slow.assignment().len() != 1 || other.assignment().len() != 1 {
        assert!(Instant::now() < deadline, "the slow member did not rejoin");
        slow.poll(Duration::from_millis(50)).await.unwrap();
        other.poll(Duration::from_millis(50)).await.unwrap();
    }
    slow.close().await.unwrap();
    other.close().await.unwrap();
}

#[tokio::test]
async fn a_static_member_fenced_by_another_instance_gets_a_fatal_error() {
    let admin = common::admin().await;
    let t = topic(&admin, "group-static", 1, &[]).await;
    let group = group_name("g-static");
    let mut first = builder(&group)
        .group_instance_id("instance-1")
        .build()
        .await
        .unwrap();
    first.subscribe([t.clone()]).unwrap();
    poll_until(&mut first, 30, |c| c.assignment().len() == 1).await;
    let mut second = builder(&group)
        .group_instance_id("instance-1")
        .build()
        .await
        .unwrap();
    second.subscribe([t.clone()]).unwrap();
    poll_until(&mut second, 30, |c| c.assignment().len() == 1).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    let err = loop {
        match first.poll(Duration::from_millis(200)).await {
            Err(e) => break e,
            Ok(_) => assert!(
                Instant::now() < deadline,
                "the fenced instance never noticed"
            ),
        }
    };
    assert_eq!(
        err.kafka_code(),
        Some(KafkaCode::FENCED_INSTANCE_ID),
        "{err}"
    );
    second.close().await.unwrap();
}

#[tokio::test]
async fn waiting_inside_recv_longer_than_max_poll_interval_keeps_the_membership() {
    let admin = common::admin().await;
    let t = topic(&admin, "group-idle", 1, &[]).await;
    let r = Recorder::default();
    let mut c = builder(&group_name("g-idle"))
        .max_poll_interval(Duration::from_secs(2))
        .rebalance_listener(r.clone())
        .build()
        .await
        .unwrap();
    c.subscribe([t.clone()]).unwrap();
    poll_until(&mut c, 30, |c| c.assignment().len() == 1).await;
    let generation = c.generation();
    // Nothing to read: recv waits (in poll, as far as the group is concerned) past the limit.
    assert!(tokio::time::timeout(Duration::from_secs(4), c.recv())
        .await
        .is_err());
    c.poll(Duration::from_millis(200)).await.unwrap();
    assert_eq!(c.generation(), generation, "the member left and rejoined");
    assert!(r.0.lock().unwrap().lost.is_empty());
    c.close().await.unwrap();
}

#[tokio::test]
async fn changing_the_subscription_rebalances_onto_the_new_topics() {
    let admin = common::admin().await;
    let t1 = topic(&admin, "group-sub1", 2, &[]).await;
    let t2 = topic(&admin, "group-sub2", 2, &[]).await;
    let mut c = builder(&group_name("g-sub")).build().await.unwrap();
    c.subscribe([t1.clone()]).unwrap();
    poll_until(&mut c, 30, |c| c.assignment().len() == 2).await;
    c.subscribe([t1.clone(), t2.clone()]).unwrap();
    assert_eq!(c.subscription(), {
        let mut v = vec![t1.clone(), t2.clone()];
        v.sort();
        v
    });
    poll_until(&mut c, 30, |c| c.assignment().len() == 4).await;
    c.subscribe([t2.clone()]).unwrap();
    poll_until(&mut c, 30, |c| {
        c.assignment().iter().all(|tp| tp.topic == t2)
    })
    .await;
    assert_eq!(c.assignment().len(), 2);
    c.close().await.unwrap();
}

#[tokio::test]
async fn the_leader_rebalances_when_a_subscribed_topic_gains_partitions() {
    use kafka_client::config::ClientConfig;
    use kafka_client::connection::{BrokerConnection, ConnectionOptions};
    use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
    use kafka_protocol::messages::{CreatePartitionsRequest, TopicName};
    use kafka_protocol::protocol::StrBytes;

    let admin = common::admin().await;
    let t = topic(&admin, "group-grow", 2, &[]).await;
    let mut c = builder(&group_name("g-grow"))
        .set("metadata.max.age.ms", "500")
        .build()
        .await
        .unwrap();
    c.subscribe([t.clone()]).unwrap();
    poll_until(&mut c, 30, |c| c.assignment().len() == 2).await;
    let opts = ConnectionOptions::from(&ClientConfig::new(&common::bootstrap()));
    let conn = BrokerConnection::connect(&common::bootstrap(), "bootstrap", &opts)
        .await
        .unwrap();
    let resp = conn
        .request(
            &CreatePartitionsRequest::default()
                .with_topics(vec![CreatePartitionsTopic::default()
                    .with_name(TopicName(StrBytes::from_string(t.clone())))
                    .with_count(4)
                    .with_assignments(None)])
                .with_timeout_ms(30_000),
        )
        .await
        .unwrap();
    assert_eq!(resp.results[0].error_code, 0);
    poll_until(&mut c, 60, |c| c.assignment().len() == 4).await;
    c.close().await.unwrap();
}

#[tokio::test]
async fn unsubscribe_leaves_the_group_at_once_so_the_others_take_over() {
    let admin = common::admin().await;
    let t = topic(&admin, "group-unsub", 2, &[]).await;
    let group = group_name("g-unsub");
    let r = Recorder::default();
    let mut leaving = builder(&group)
        .rebalance_listener(r.clone())
        .build()
        .await
        .unwrap();
    let mut staying = builder(&group).build().await.unwrap();
    leaving.subscribe([t.clone()]).unwrap();
    staying.subscribe([t.clone()]).unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while leaving.assignment().len() != 1 || staying.assignment().len() != 1 {
        assert!(Instant::now() < deadline, "members did not settle");
        leaving.poll(Duration::from_millis(50)).await.unwrap();
        staying.poll(Duration::from_millis(50)).await.unwrap();
    }
    let held = leaving.assignment();
    r.0.lock().unwrap().revoked.clear();
    leaving.unsubscribe().await.unwrap();
    assert!(leaving.assignment().is_empty());
    assert_eq!(
        r.0.lock().unwrap().revoked,
        vec![held],
        "revocation callback on unsubscribe"
    );
    let err = leaving.poll(Duration::from_millis(100)).await.unwrap_err();
    assert!(matches!(err, Error::InvalidArgument(_)), "{err:?}");
    // Well before the 10 s session timeout: LeaveGroup was sent.
    let started = Instant::now();
    poll_until(&mut staying, 30, |c| c.assignment().len() == 2).await;
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "took {:?}",
        started.elapsed()
    );
    staying.close().await.unwrap();
}

#[tokio::test]
async fn a_static_member_restarting_within_the_session_timeout_gets_its_partitions_back_without_a_rebalance(
) {
    let admin = common::admin().await;
    let t = topic(&admin, "group-static-restart", 4, &[]).await;
    let group = group_name("g-static-restart");
    let member = |instance: &'static str, r: Recorder| {
        builder(&group)
            .group_instance_id(instance)
            .set("partition.assignment.strategy", "range")
            .rebalance_listener(r)
            .build()
    };
    let (ra, rb) = (Recorder::default(), Recorder::default());
    let mut a = member("instance-a", ra.clone()).await.unwrap();
    let mut b = member("instance-b", rb.clone()).await.unwrap();
    a.subscribe([t.clone()]).unwrap();
    b.subscribe([t.clone()]).unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while a.assignment().len() != 2 || b.assignment().len() != 2 {
        assert!(Instant::now() < deadline, "members did not settle");
        a.poll(Duration::from_millis(50)).await.unwrap();
        b.poll(Duration::from_millis(50)).await.unwrap();
    }
    let held = a.assignment();
    let b_generation = b.generation();
    let b_callbacks = rb.0.lock().unwrap().assigned.len();
    // A static member's close does not leave the group (as in Java).
    a.close().await.unwrap();
    let ra2 = Recorder::default();
    let mut a2 = member("instance-a", ra2.clone()).await.unwrap();
    a2.subscribe([t.clone()]).unwrap();
    poll_until(&mut a2, 30, |c| c.assignment().len() == 2).await;
    assert_eq!(
        a2.assignment(),
        held,
        "the restarted instance got other partitions"
    );
    // The other member saw nothing: same generation, no new callbacks.
    for _ in 0..10 {
        b.poll(Duration::from_millis(50)).await.unwrap();
    }
    assert_eq!(b.generation(), b_generation);
    assert_eq!(rb.0.lock().unwrap().assigned.len(), b_callbacks);
    assert!(rb.0.lock().unwrap().lost.is_empty());
    a2.close().await.unwrap();
    b.close().await.unwrap();
}

/// A listener whose next revocation, once armed, never finishes: the test drops the poll
/// running it, which leaves the revocation queued for the next poll.
#[derive(Clone, Default)]
struct StallingRevoke {
    seen: Recorder,
    armed: Arc<std::sync::atomic::AtomicBool>,
    stalled: Arc<tokio::sync::Notify>,
}

impl kafka_client::RebalanceListener for StallingRevoke {
    fn on_partitions_revoked<'a>(
        &'a mut self,
        c: &'a kafka_client::Consumer,
        p: &'a [TopicPartition],
    ) -> futures::future::BoxFuture<'a, ()> {
        if self.armed.swap(false, std::sync::atomic::Ordering::SeqCst) {
            self.stalled.notify_one();
            return Box::pin(std::future::pending());
        }
        self.seen.on_partitions_revoked(c, p)
    }
    fn on_partitions_assigned<'a>(
        &'a mut self,
        c: &'a kafka_client::Consumer,
        p: &'a [TopicPartition],
    ) -> futures::future::BoxFuture<'a, ()> {
        self.seen.on_partitions_assigned(c, p)
    }
    fn on_partitions_lost<'a>(
        &'a mut self,
        c: &'a kafka_client::Consumer,
        p: &'a [TopicPartition],
    ) -> futures::future::BoxFuture<'a, ()> {
        self.seen.on_partitions_lost(c, p)
    }
}

/// A revocation still queued when the application unsubscribes belongs to the old
/// membership: after subscribing again, it must not touch the partitions of the new one.
/// Events used to be matched by partition name only, so the stale revocation made the next
/// poll report the freshly assigned partition lost and drop it: the consumer then held
/// nothing while the group thought it read the partition.
#[tokio::test]
async fn a_revocation_queued_before_unsubscribe_leaves_the_next_assignment_alone() {
    let admin = common::admin().await;
    let t1 = topic(&admin, "group-stale-revoke", 1, &[]).await;
    let t2 = topic(&admin, "group-stale-revoke-other", 1, &[]).await;
    let p = TopicPartition::new(&t1, 0);
    let listener = StallingRevoke::default();
    let mut c = builder(&group_name("g-stale-revoke"))
        .set("partition.assignment.strategy", "range") // eager: revokes all to rejoin
        .rebalance_listener(listener.clone())
        .build()
        .await
        .unwrap();
    c.subscribe([t1.clone()]).unwrap();
    poll_until(&mut c, 30, |c| c.assignment() == [p.clone()]).await;

    // A new subscription makes the member revoke before it rejoins; the revocation stalls
    // inside poll and the poll is dropped: the event waits for the next poll.
    listener
        .armed
        .store(true, std::sync::atomic::Ordering::SeqCst);
    c.subscribe([t1.clone(), t2.clone()]).unwrap();
    tokio::select! {
        r = c.poll(Duration::from_secs(30)) => panic!("poll ended before the revocation: {r:?}"),
        _ = listener.stalled.notified() => {}
    }
    c.unsubscribe().await.unwrap();
    assert!(c.generation().is_none());
    c.subscribe([t1.clone()]).unwrap();
    // Wait for the group to give this member its new assignment (nothing to await but the
    // generation showing up), then poll: the stale revocation runs first.
    let deadline = Instant::now() + Duration::from_secs(30);
    while c.generation().is_none() {
        assert!(Instant::now() < deadline, "never joined again");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    poll_until(&mut c, 30, |c| c.assignment() == [p.clone()]).await;
    RawProducer::new(&admin).await.fill(&t1, 1, 3).await;
    let mut read = Vec::new();
    while read.len() < 3 {
        assert!(Instant::now() < deadline, "records of {p} never came");
        read.extend(c.poll(Duration::from_millis(200)).await.unwrap());
    }
    {
        let seen = listener.seen.0.lock().unwrap();
        assert!(seen.lost.is_empty(), "{seen:?}");
        assert_eq!(seen.assigned, vec![vec![p.clone()], vec![p.clone()]]);
        assert_eq!(seen.revoked, vec![vec![p.clone()]], "once, by unsubscribe");
    }
    c.close().await.unwrap();
}
