//! Pattern subscriptions in the group task: Java's `updatePatternSubscription`,
//! `maybeUpdateSubscriptionMetadata` and the fresh metadata `ConsumerCoordinator.poll` asks
//! for before a pattern subscriber joins.
//!
//! The pattern is matched again whenever the cluster has a new metadata snapshot (the
//! refresh task lists every topic every `metadata.max.age.ms` while a pattern is
//! subscribed). A different match is a different subscription, which `drive` answers with
//! a rejoin. Before every join the task lists all topics itself (unless it did since the
//! last join, or within `retry.backoff.ms`), so the first join already carries the topics
//! that exist, and a member that rejoins because another noticed a new topic brings that
//! topic along instead of causing a second rebalance when its own refresh comes.

use std::collections::BTreeSet;

use futures::FutureExt;
use tokio::sync::watch;
use tokio::time::Instant;

use super::{ClassicGroup, Done};
use crate::cluster::Topics;
use crate::consumer::pattern::TopicPattern;
use crate::error::Result;
use crate::types::TopicPartition;

/// What the task knows of the pattern's matches.
pub(super) struct PatternState {
    /// The metadata generation and the pattern last matched against it.
    matched: Option<(u64, TopicPattern)>,
    /// A listing of all topics is in flight.
    listing: bool,
    /// When the last listing of all topics arrived.
    listed_at: Option<Instant>,
    /// A listing arrived since the last JoinGroup was sent.
    fresh: bool,
    failures: u32,
    retry_at: Instant,
    /// New metadata snapshots, to match again soon after each.
    pub(super) refreshes: watch::Receiver<u64>,
}

impl PatternState {
    pub(super) fn new(refreshes: watch::Receiver<u64>) -> Self {
        PatternState {
            matched: None,
            listing: false,
            listed_at: None,
            fresh: false,
            failures: 0,
            retry_at: Instant::now(),
            refreshes,
        }
    }
}

impl ClassicGroup {
    /// Matches the subscribed pattern against the metadata, if either changed since the
    /// last match, and makes the topics it matches the subscription.
    pub(super) fn update_pattern_subscription(&mut self) {
        let Some(pattern) = self.subs.pattern() else {
            self.pattern.matched = None;
            return;
        };
        // The generation first: the snapshot read after it is at least that new.
        let generation = self.cluster.metadata_generation();
        if self
            .pattern
            .matched
            .as_ref()
            .is_some_and(|(g, p)| *g == generation && *p == pattern)
        {
            return;
        }
        let matched = pattern.matching(
            &self.cluster.metadata(),
            self.config.exclude_internal_topics,
        );
        let count = matched.len();
        if self.subs.set_matched(&pattern, matched) {
            tracing::info!(
                %pattern,
                topics = count,
                "topics matching the subscribed pattern changed"
            );
        }
        self.pattern.matched = Some((generation, pattern));
    }

    /// Whether a join may start: true without a pattern, or once all topics were listed
    /// since the last join (or within `retry.backoff.ms`). Otherwise starts a listing
    /// (unless one is in flight or backing off) and returns false; its answer wakes the
    /// task.
    pub(super) fn pattern_listed(&mut self, now: Instant) -> bool {
        if self.subs.pattern().is_none() || self.listed_recently(now) {
            return true;
        }
        if !self.pattern.listing && now >= self.pattern.retry_at {
            self.pattern.listing = true;
            let cluster = self.cluster.clone();
            self.in_flight.push(
                async move {
                    let result = cluster.refresh(Topics::All).await.map(|_| ());
                    Done::Listed { result }
                }
                .boxed(),
            );
        }
        false
    }

    fn listed_recently(&self, now: Instant) -> bool {
        self.pattern.fresh
            || self.pattern.listed_at.is_some_and(|at| {
                now.saturating_duration_since(at) < self.config.client.retry_backoff
            })
    }

    /// A JoinGroup is on its way with the current match: the next one lists again.
    pub(super) fn pattern_joined(&mut self) {
        self.pattern.fresh = false;
    }

    /// When a join may start as far as the pattern is concerned: at `join_after`, or after
    /// the wait for a listing that failed; `None` while a listing is in flight (its answer
    /// wakes the task).
    pub(super) fn pattern_join_at(&self) -> Option<Instant> {
        if self.subs.pattern().is_none() || self.listed_recently(Instant::now()) {
            return Some(self.join_after);
        }
        (!self.pattern.listing).then(|| self.join_after.max(self.pattern.retry_at))
    }

    pub(super) fn on_listed(&mut self, result: Result<()>) {
        self.pattern.listing = false;
        match result {
            Ok(()) => {
                self.pattern.listed_at = Some(Instant::now());
                self.pattern.fresh = true;
                self.pattern.failures = 0;
            }
            Err(e) => {
                self.pattern.failures += 1;
                self.pattern.retry_at = Instant::now() + self.retry.delay(self.pattern.failures);
                tracing::info!(error = %e, "listing the cluster's topics for the pattern failed");
            }
        }
    }

    /// A partition of `assigned` outside the subscription (Java's
    /// `checkAssignmentMatchedSubscription`): with a pattern, one whose topic does not match
    /// it. Matching topics this member had not listed yet (the leader saw them first) join
    /// the subscription and the joined topics, as in Java's `maybeUpdateJoinedSubscription`.
    pub(super) fn outside_subscription<'a>(
        &mut self,
        assigned: &'a [TopicPartition],
    ) -> Option<&'a TopicPartition> {
        let topics = self.subscribed().unwrap_or_default();
        let pattern = self.subs.pattern();
        let subscribed = |topic: &str| match &pattern {
            Some(p) => p.matches(topic),
            None => topics.contains(topic),
        };
        if let Some(tp) = assigned.iter().find(|tp| !subscribed(&tp.topic)) {
            return Some(tp);
        }
        let pattern = pattern?;
        let extra: BTreeSet<String> = assigned
            .iter()
            .filter(|tp| !topics.contains(&tp.topic))
            .map(|tp| tp.topic.clone())
            .collect();
        if !extra.is_empty() {
            tracing::info!(
                ?extra,
                "assigned topics that match the pattern before this member saw them"
            );
            let mut all = topics;
            all.extend(extra.iter().cloned());
            self.subs.set_matched(&pattern, all);
            if let Some(joined) = &mut self.joined_topics {
                joined.extend(extra);
            }
        }
        None
    }
}
