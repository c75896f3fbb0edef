//! Idle consumers cost (almost) nothing: background tasks sleep until something is due
//! instead of spinning. Alone in its test binary so the process's CPU time is theirs.

mod common;

use std::time::Duration;

use kafka_client::consumer::{Consumer, OffsetReset};
use kafka_client::TopicPartition;

use common::produce::topic;

/// CPU time (user + system) this process used so far, from /proc/self/stat.
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("/proc/self/stat (Linux)");
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    Duration::from_millis(ticks * 10) // USER_HZ is 100 on Linux
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_consumers_in_every_state_do_not_spin() {
    let admin = common::admin().await;
    let t = topic(&admin, "idle", 2, &[]).await;
    let group = common::unique_topic("g-idle");
    let build = || {
        Consumer::builder()
            .bootstrap_servers(&common::bootstrap())
            .group_id(&group)
            .auto_offset_reset(OffsetReset::Earliest)
            .heartbeat_interval(Duration::from_millis(500))
            .session_timeout(Duration::from_secs(10))
            .build()
    };
    // A group consumer that neither subscribed nor was assigned anything.
    let unused = build().await.unwrap();
    // A group consumer reading by manual assignment (commits, no membership).
    let mut manual = build().await.unwrap();
    manual.assign([TopicPartition::new(&t, 0)]).unwrap();
    // A member of a group on an empty topic, between polls.
    let mut member = Consumer::builder()
        .bootstrap_servers(&common::bootstrap())
        .group_id(&common::unique_topic("g-idle-member"))
        .heartbeat_interval(Duration::from_millis(500))
        .build()
        .await
        .unwrap();
    member.subscribe([t.clone()]).unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while member.assignment().len() != 2 {
        assert!(tokio::time::Instant::now() < deadline, "never joined");
        member.poll(Duration::from_millis(100)).await.unwrap();
    }
    manual.poll(Duration::from_millis(200)).await.unwrap();
    manual.commit_sync().await.unwrap();

    let before = cpu_time();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let used = cpu_time() - before;
    // Fetch long polls (500 ms), heartbeats and auto-commit ticks take a few milliseconds;
    // a spinning loop takes a whole core.
    assert!(
        used < Duration::from_millis(300),
        "idle consumers used {used:?} of CPU in 3 s"
    );
    drop((unused, manual, member));
}
