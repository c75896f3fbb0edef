//! Each assignor at the size of a large group: 10 topics x 100 partitions, 100 members.
//!
//! `fresh` is a group's first assignment; `rebalance` is the next one after 10 members left,
//! with the survivors reporting what they own (the path the sticky assignors optimise);
//! `mixed` gives members different subscriptions, which sends the sticky assignors down their
//! general (slower) path.

use std::collections::HashMap;
use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use kafka_client::consumer::assignor::{
    assignor_for_name, Assignment, GroupMember, PartitionAssignor, Subscription,
};

const TOPICS: usize = 10;
const PARTITIONS: i32 = 100;
const MEMBERS: usize = 100;

fn topic_counts() -> HashMap<String, i32> {
    (0..TOPICS)
        .map(|t| (format!("topic-{t}"), PARTITIONS))
        .collect()
}

fn group(mixed: bool) -> Vec<GroupMember> {
    (0..MEMBERS)
        .map(|m| {
            // In the mixed group each member skips every third topic, shifted by member.
            let topics = (0..TOPICS)
                .filter(|t| !mixed || (t + m) % 3 != 0)
                .map(|t| format!("topic-{t}"));
            GroupMember::new(format!("consumer-{m:03}"), Subscription::new(topics))
        })
        .collect()
}

/// The group after its first 10 members left, each survivor reporting its partitions as
/// its assignor flavour does.
fn survivors(
    assignor: &dyn PartitionAssignor,
    members: &[GroupMember],
    previous: &HashMap<String, Assignment>,
) -> Vec<GroupMember> {
    members
        .iter()
        .skip(10)
        .map(|m| {
            let mut sub = m.subscription.clone();
            let owned = &previous[&m.member_id];
            let member_side = assignor_for_name(assignor.name()).unwrap();
            member_side.on_assignment(owned, 1);
            sub.user_data = member_side.subscription_user_data(&sub.topics);
            sub.owned_partitions = owned.partitions.clone();
            sub.generation_id = Some(1);
            GroupMember::new(m.member_id.clone(), sub)
        })
        .collect()
}

fn assignors(c: &mut Criterion) {
    let counts = topic_counts();
    let mut bench = c.benchmark_group("assign_1000_partitions_100_members");
    bench
        .sample_size(10)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1));
    for name in ["range", "roundrobin", "sticky", "cooperative-sticky"] {
        let assignor = assignor_for_name(name).unwrap();
        for mixed in [false, true] {
            let members = group(mixed);
            let label = if mixed { "mixed" } else { "fresh" };
            bench.bench_function(format!("{name}/{label}"), |b| {
                b.iter(|| {
                    assignor
                        .assign(black_box(&counts), black_box(&members))
                        .unwrap()
                })
            });
        }
        let members = group(false);
        let previous = assignor.assign(&counts, &members).unwrap();
        let next = survivors(assignor.as_ref(), &members, &previous);
        bench.bench_function(format!("{name}/rebalance"), |b| {
            b.iter(|| {
                assignor
                    .assign(black_box(&counts), black_box(&next))
                    .unwrap()
            })
        });
    }
    bench.finish();
}

criterion_group!(benches, assignors);
criterion_main!(benches);
