//! Unit tests of the partition state: positions, epochs, pauses and out-of-range answers.

use super::*;

fn tp(p: i32) -> TopicPartition {
    TopicPartition::new("t", p)
}

#[test]
fn committed_offset_then_fetching_then_consuming() {
    let subs = Subscriptions::new();
    subs.subscribe(["t".to_owned()].into()).unwrap();
    assert!(subs.add_assigned(subs.session(), &[tp(0), tp(1)]));
    let (committed, reset) = subs.needing_positions();
    assert_eq!(committed.len(), 2);
    assert!(reset.is_empty());
    let e0 = committed[0].1;
    subs.committed_found(
        &tp(0),
        e0,
        Some(&OffsetAndMetadata::new(42)),
        OffsetReset::Latest,
    );
    subs.committed_found(&tp(1), committed[1].1, None, OffsetReset::Earliest);
    assert_eq!(subs.position(&tp(0)).unwrap(), Some(42));
    assert_eq!(subs.position(&tp(1)).unwrap(), None);
    let (_, reset) = subs.needing_positions();
    assert_eq!(reset[0].tp, tp(1));
    assert_eq!(reset[0].fetch_offset, -2);

    // Fetcher runs ahead; position follows what is handed out.
    let f = &subs.fetchable()[0];
    assert_eq!((f.fetch_offset, f.epoch), (42, e0));
    subs.fetched(&tp(0), e0, 50);
    assert!(subs.can_hand_out(&tp(0), e0, 42));
    assert!(subs.consumed(&tp(0), e0, 45, Some(3)));
    assert_eq!(subs.positions(None)[&tp(0)].offset, 45);
    assert!(subs.committable().is_empty());
    subs.mark_polled();
    assert_eq!(subs.committable()[&tp(0)].leader_epoch, Some(3));
}

#[test]
fn seek_invalidates_data_fetched_before_it() {
    let subs = Subscriptions::new();
    subs.assign_manual([tp(0)].into(), Init::Reset(ResetTo::Earliest))
        .unwrap();
    let (_, reset) = subs.needing_positions();
    subs.reset_done(&tp(0), reset[0].epoch, 0);
    let before = subs.fetchable()[0].epoch;
    subs.seek(&tp(0), 10).unwrap();
    assert!(!subs.is_current(&tp(0), before));
    assert!(!subs.consumed(&tp(0), before, 5, None));
    assert_eq!(subs.position(&tp(0)).unwrap(), Some(10));
    // A late reset answer under the old epoch is ignored.
    subs.reset_done(&tp(0), reset[0].epoch, 0);
    assert_eq!(subs.position(&tp(0)).unwrap(), Some(10));
    assert!(subs.seek(&tp(9), 1).is_err());
}

#[test]
fn policy_none_fails_with_the_partitions() {
    let subs = Subscriptions::new();
    subs.subscribe(["t".to_owned()].into()).unwrap();
    assert!(subs.add_assigned(subs.session(), &[tp(0), tp(1)]));
    for (tp, epoch) in subs.needing_positions().0 {
        subs.committed_found(&tp, epoch, None, OffsetReset::None);
    }
    match subs.failure() {
        Some(Error::NoOffsetForPartition { partitions }) => {
            assert_eq!(partitions, vec![tp(0), tp(1)])
        }
        other => panic!("unexpected {other:?}"),
    }
    subs.seek(&tp(0), 0).unwrap();
    subs.seek(&tp(1), 0).unwrap();
    assert!(subs.failure().is_none());
}

/// Consumes the stored wake-up of the fetcher, if any: whether one was there.
fn woken(subs: &Subscriptions) -> bool {
    use futures::FutureExt;
    subs.changed.notified().now_or_never().is_some()
}

#[test]
fn out_of_range_for_a_prefetch_keeps_the_buffered_records() {
    let subs = Subscriptions::new();
    subs.assign_manual([tp(0)].into(), Init::Ready).unwrap();
    subs.seek(&tp(0), 0).unwrap();
    let epoch = subs.fetchable()[0].epoch;
    // Records 0-4 wait in the buffer; the prefetch at 5 comes back out of range.
    subs.fetched(&tp(0), epoch, 5);
    let stale = subs.out_of_range(&tp(0), 5, OffsetReset::None);
    assert_eq!(stale, OutOfRange::Stale);
    assert!(subs.failure().is_none());
    assert!(subs.can_hand_out(&tp(0), epoch, 0), "buffered data dropped");
    // Not fetched at 5 again until the application gets there (Java fetches only at the
    // position), and then the fetcher is woken.
    assert!(subs.fetchable().is_empty());
    woken(&subs);
    assert!(subs.consumed(&tp(0), epoch, 3, None));
    assert!(subs.fetchable().is_empty() && !woken(&subs));
    assert!(subs.consumed(&tp(0), epoch, 5, None));
    assert!(woken(&subs));
    assert_eq!(subs.fetchable()[0].fetch_offset, 5);
    // At the position the answer counts.
    let failed = subs.out_of_range(&tp(0), 5, OffsetReset::None);
    assert_eq!(failed, OutOfRange::Failed);
    let err = subs.failure().unwrap();
    assert_eq!(err.kafka_code(), Some(KafkaCode::OFFSET_OUT_OF_RANGE));
    assert!(err.to_string().contains("t-0"), "{err}");
}

#[test]
fn out_of_range_loses_to_a_seek_a_pause_and_an_unassignment() {
    let subs = Subscriptions::new();
    subs.assign_manual([tp(0), tp(1)].into(), Init::Ready)
        .unwrap();
    subs.seek(&tp(0), 0).unwrap();
    subs.seek(&tp(1), 0).unwrap();
    // The application sought while the fetch at 0 was out: its position stands.
    subs.seek(&tp(0), 7).unwrap();
    let stale = subs.out_of_range(&tp(0), 0, OffsetReset::Earliest);
    assert_eq!(stale, OutOfRange::Stale);
    assert_eq!(subs.position(&tp(0)).unwrap(), Some(7));
    assert_eq!(subs.fetchable()[0].fetch_offset, 7, "held after a seek");
    subs.set_paused(&[tp(1)], true).unwrap();
    let paused = subs.out_of_range(&tp(1), 0, OffsetReset::Earliest);
    assert_eq!(paused, OutOfRange::Stale);
    assert_eq!(subs.position(&tp(1)).unwrap(), Some(0));
    let gone = subs.out_of_range(&tp(9), 0, OffsetReset::Earliest);
    assert_eq!(gone, OutOfRange::Stale);
    // At the position of a fetchable partition: reset by policy.
    let reset = subs.out_of_range(&tp(0), 7, OffsetReset::Earliest);
    assert_eq!(reset, OutOfRange::Reset);
    let (_, resets) = subs.needing_positions();
    assert_eq!((resets[0].tp.clone(), resets[0].fetch_offset), (tp(0), -2));
}

#[test]
fn paused_and_revoking_partitions_are_not_fetched() {
    let subs = Subscriptions::new();
    subs.assign_manual([tp(0), tp(1)].into(), Init::Ready)
        .unwrap();
    subs.set_paused(&[tp(0)], true).unwrap();
    subs.mark_pending_revocation(0, &[tp(1)]);
    assert!(subs.fetchable().is_empty());
    assert_eq!(subs.paused(), vec![tp(0)]);
    subs.set_paused(&[tp(0)], false).unwrap();
    assert_eq!(subs.fetchable().len(), 1);
    assert!(subs.subscribe(["t".to_owned()].into()).is_err());
}

#[test]
fn an_explicit_commit_raises_what_auto_commit_may_commit_until_the_next_poll() {
    let subs = Subscriptions::new();
    subs.assign_manual([tp(0), tp(1)].into(), Init::Committed)
        .unwrap();
    subs.seek(&tp(0), 10).unwrap();
    let epoch0 = subs.fetchable()[0].epoch;
    subs.mark_polled();
    assert!(subs.consumed(&tp(0), epoch0, 25, None));
    // The application commits 25, and 3 for partition 1, which has no position yet.
    let explicit = HashMap::from([
        (tp(0), OffsetAndMetadata::new(25)),
        (tp(1), OffsetAndMetadata::new(3)),
    ]);
    subs.commit_issued(&explicit);
    let committable = subs.committable();
    assert_eq!(committable[&tp(0)].offset, 25, "would have gone back to 10");
    assert_eq!(
        committable.len(),
        1,
        "partition 1 has no position to commit"
    );
    // A lower explicit commit does not lower it; the next poll takes the positions.
    subs.commit_issued(&HashMap::from([(tp(0), OffsetAndMetadata::new(12))]));
    assert_eq!(subs.committable()[&tp(0)].offset, 25);
    subs.seek(&tp(0), 5).unwrap();
    subs.mark_polled();
    assert_eq!(subs.committable()[&tp(0)].offset, 5);
}

#[test]
fn a_new_subscription_ignores_partitions_and_revocations_of_the_last_one() {
    let subs = Subscriptions::new();
    subs.subscribe(["t".to_owned()].into()).unwrap();
    let first = subs.session();
    assert!(subs.add_assigned(first, &[tp(0)]));
    // Changing the topics keeps the session: the group moves partitions over.
    subs.subscribe(["t".to_owned(), "u".to_owned()].into())
        .unwrap();
    assert_eq!(subs.owned(), (first, vec![tp(0)]));
    subs.unsubscribe();
    assert!(!subs.add_assigned(first, &[tp(1)]), "no subscription");
    subs.subscribe(["t".to_owned()].into()).unwrap();
    let second = subs.session();
    assert_ne!(first, second);
    assert!(
        !subs.add_assigned(first, &[tp(1)]),
        "an assignment of the last one"
    );
    assert!(subs.add_assigned(second, &[tp(0)]));
    // A revocation of the first session leaves the same partition of the second alone.
    subs.mark_pending_revocation(first, &[tp(0)]);
    subs.remove(first, &[tp(0)]);
    assert_eq!(subs.assignment(), vec![tp(0)]);
    assert!(subs.needing_positions().0.iter().any(|(p, _)| *p == tp(0)));
    subs.remove(second, &[tp(0)]);
    assert!(subs.assignment().is_empty());
}

fn topics(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|n| (*n).to_owned()).collect()
}

#[test]
fn a_pattern_subscription_holds_the_topics_it_matches() {
    let subs = Subscriptions::new();
    let pattern = TopicPattern::new("t.*").unwrap();
    assert!(subs
        .subscribe_pattern(pattern.clone(), topics(&["t"]))
        .unwrap());
    let session = subs.session();
    assert_eq!(subs.topics(), Some(topics(&["t"])));
    assert_eq!(subs.pattern(), Some(pattern.clone()));
    // The group assigns partitions of the matched topics, as for a topic list.
    assert!(subs.add_assigned(session, &[tp(0)]));
    assert!(subs.set_matched(&pattern, topics(&["t", "tx"])));
    assert!(
        !subs.set_matched(&pattern, topics(&["t", "tx"])),
        "unchanged"
    );
    assert_eq!(subs.topics(), Some(topics(&["t", "tx"])));
    // Another pattern replaces it within the same session; a late match of the old one is
    // ignored.
    let other = TopicPattern::new("u.*").unwrap();
    assert!(subs.subscribe_pattern(other.clone(), topics(&[])).unwrap());
    assert!(!subs.subscribe_pattern(other.clone(), topics(&[])).unwrap());
    assert_eq!(subs.session(), session);
    assert!(!subs.set_matched(&pattern, topics(&["t"])));
    assert_eq!(subs.topics(), Some(topics(&[])), "matching nothing yet");
    subs.unsubscribe();
    assert_eq!(subs.pattern(), None);
    assert!(!subs.set_matched(&other, topics(&["u"])));
}

#[test]
fn topics_a_pattern_and_assigned_partitions_exclude_each_other_as_in_java() {
    let pattern = TopicPattern::new("t.*").unwrap();
    let subs = Subscriptions::new();
    subs.subscribe(topics(&["t"])).unwrap();
    let err = subs
        .subscribe_pattern(pattern.clone(), topics(&["t"]))
        .unwrap_err();
    assert!(err.to_string().contains("unsubscribe()"), "{err}");
    assert_eq!(subs.topics(), Some(topics(&["t"])), "left as it was");

    let subs = Subscriptions::new();
    subs.subscribe_pattern(pattern.clone(), topics(&["t"]))
        .unwrap();
    let err = subs.subscribe(topics(&["t"])).unwrap_err();
    assert!(err.to_string().contains("subscribe_pattern()"), "{err}");
    assert!(subs.assign_manual([tp(0)].into(), Init::Committed).is_err());
    subs.unsubscribe();
    subs.subscribe(topics(&["t"])).unwrap();

    let subs = Subscriptions::new();
    subs.assign_manual([tp(0)].into(), Init::Committed).unwrap();
    assert!(subs.subscribe_pattern(pattern, topics(&[])).is_err());
}
