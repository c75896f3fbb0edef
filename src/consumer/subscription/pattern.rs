//! The pattern half of the subscription state: the pattern subscribed and the topics it
//! matches, which the group task replaces after every metadata refresh.

use std::collections::BTreeSet;

use super::{exclusive, Mode, Subscriptions};
use crate::consumer::pattern::TopicPattern;
use crate::error::Result;

impl Subscriptions {
    /// `subscribe_pattern(pattern)`, with the topics it matches now: returns whether the
    /// pattern changed. Another pattern replaces the last one, as in Java.
    pub(crate) fn subscribe_pattern(
        &self,
        pattern: TopicPattern,
        matched: BTreeSet<String>,
    ) -> Result<bool> {
        let mut s = self.lock();
        let changed = match &s.mode {
            Mode::Manual => return Err(exclusive("subscribe_pattern()", "assign()")),
            Mode::Topics(_) => return Err(exclusive("subscribe_pattern()", "subscribe()")),
            Mode::Pattern { pattern: old, .. } => *old != pattern,
            Mode::None => true,
        };
        s.begin_session();
        s.mode = Mode::Pattern { pattern, matched };
        Ok(changed)
    }

    /// The subscribed pattern, if any.
    pub(crate) fn pattern(&self) -> Option<TopicPattern> {
        match &self.lock().mode {
            Mode::Pattern { pattern, .. } => Some(pattern.clone()),
            _ => None,
        }
    }

    /// The topics `pattern` matches now (Java's `subscribeFromPattern`). Ignored, returning
    /// false, unless `pattern` is still the one subscribed; otherwise returns whether the
    /// matched topics changed.
    pub(crate) fn set_matched(&self, pattern: &TopicPattern, matched: BTreeSet<String>) -> bool {
        let mut s = self.lock();
        match &mut s.mode {
            Mode::Pattern {
                pattern: current,
                matched: old,
            } if current == pattern && *old != matched => {
                *old = matched;
                true
            }
            _ => false,
        }
    }
}
