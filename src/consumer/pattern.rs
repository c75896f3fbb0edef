//! Topic patterns for [`Consumer::subscribe_pattern`](super::Consumer::subscribe_pattern):
//! a regular expression matched against every topic name the cluster lists.
//!
//! ```text
//!   metadata.max.age.ms ─▶ cluster refresh task: Metadata for all topics (pattern subscribed)
//!                                  │ new snapshot
//!                                  ▼
//!   group task: TopicPattern::matching(snapshot) ─▶ Subscriptions (matched topics)
//!                                  │ a different set than the group was joined with
//!                                  ▼
//!                                rejoin: new topics assigned, deleted ones revoked
//! ```
//!
//! Java matches with `Pattern.matcher(topic).matches()`: the whole name must match, so
//! `orders-.*` matches `orders-eu` but not `old-orders-eu`. The pattern is compiled anchored
//! (`^(?:pattern)$`) to give the same answer with the `regex` crate, whose syntax differs
//! from Java's in places (no look-around or back-references).

use std::collections::BTreeSet;
use std::fmt;

use regex::Regex;

use crate::cluster::ClusterMetadata;
use crate::error::{Error, Result};

/// A regular expression a whole topic name must match, as Java's
/// `Pattern.matcher(topic).matches()`; see
/// [`Consumer::subscribe_pattern`](super::Consumer::subscribe_pattern).
///
/// ```
/// use kafka_client::consumer::TopicPattern;
/// let pattern = TopicPattern::new("orders-.*")?;
/// assert!(pattern.matches("orders-eu"));
/// assert!(!pattern.matches("old-orders-eu")); // a full match, not a search
/// # Ok::<(), kafka_client::Error>(())
/// ```
#[derive(Clone)]
pub struct TopicPattern {
    source: String,
    anchored: Regex,
}

impl TopicPattern {
    /// Compiles `pattern` ([`regex` syntax](https://docs.rs/regex/latest/regex/#syntax)) to
    /// match whole topic names. An empty or invalid pattern is an
    /// [`Error::InvalidArgument`] naming it.
    pub fn new(pattern: &str) -> Result<Self> {
        if pattern.is_empty() {
            return Err(Error::InvalidArgument(
                "the topic pattern to subscribe to must not be empty".into(),
            ));
        }
        let invalid = |e: regex::Error| {
            Error::InvalidArgument(format!("invalid topic pattern {pattern:?}: {e}"))
        };
        // Checked alone first: wrapped in a group, an unbalanced `a)|(b` would compile.
        Regex::new(pattern).map_err(invalid)?;
        let anchored = Regex::new(&format!("^(?:{pattern})$")).map_err(invalid)?;
        Ok(TopicPattern {
            source: pattern.to_owned(),
            anchored,
        })
    }

    /// The pattern as given.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// Whether the whole of `topic` matches.
    pub fn matches(&self, topic: &str) -> bool {
        self.anchored.is_match(topic)
    }

    /// The topics of `metadata` that match, leaving out internal topics such as
    /// `__consumer_offsets` when `exclude_internal` (`exclude.internal.topics`) is set.
    pub(crate) fn matching(
        &self,
        metadata: &ClusterMetadata,
        exclude_internal: bool,
    ) -> BTreeSet<String> {
        metadata
            .topics
            .values()
            .filter(|t| !(exclude_internal && t.is_internal))
            .filter(|t| self.matches(&t.name))
            .map(|t| t.name.clone())
            .collect()
    }
}

impl PartialEq for TopicPattern {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

impl Eq for TopicPattern {}

impl fmt::Debug for TopicPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("TopicPattern").field(&self.source).finish()
    }
}

impl fmt::Display for TopicPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

/// What [`Consumer::subscribe_pattern`](super::Consumer::subscribe_pattern) accepts: a
/// pattern as text (`&str`, `String`), a [`regex::Regex`] or a [`TopicPattern`].
///
/// A `Regex` contributes its text ([`Regex::as_str`]), compiled anew to match whole names:
/// options set on a `regex::RegexBuilder` are not part of that text, so write them inline
/// (`(?i)orders-.*` for case-insensitive matching).
pub trait IntoTopicPattern {
    /// The pattern, or an [`Error::InvalidArgument`] naming it when it does not compile.
    fn into_topic_pattern(self) -> Result<TopicPattern>;
}

impl IntoTopicPattern for TopicPattern {
    fn into_topic_pattern(self) -> Result<TopicPattern> {
        Ok(self)
    }
}

impl IntoTopicPattern for &str {
    fn into_topic_pattern(self) -> Result<TopicPattern> {
        TopicPattern::new(self)
    }
}

impl IntoTopicPattern for String {
    fn into_topic_pattern(self) -> Result<TopicPattern> {
        TopicPattern::new(&self)
    }
}

impl IntoTopicPattern for &String {
    fn into_topic_pattern(self) -> Result<TopicPattern> {
        TopicPattern::new(self)
    }
}

impl IntoTopicPattern for Regex {
    fn into_topic_pattern(self) -> Result<TopicPattern> {
        TopicPattern::new(self.as_str())
    }
}

impl IntoTopicPattern for &Regex {
    fn into_topic_pattern(self) -> Result<TopicPattern> {
        TopicPattern::new(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::cluster::{TopicId, TopicMetadata};
    use crate::consumer::config::ConsumerConfig;

    fn metadata(topics: &[(&str, bool)]) -> ClusterMetadata {
        let mut md = ClusterMetadata::default();
        for (name, is_internal) in topics {
            md.topics.insert(
                (*name).to_owned(),
                Arc::new(TopicMetadata {
                    name: (*name).to_owned(),
                    id: TopicId::default(),
                    is_internal: *is_internal,
                    partitions: Vec::new(),
                }),
            );
        }
        md
    }

    fn set(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|n| (*n).to_owned()).collect()
    }

    #[test]
    fn the_whole_name_must_match_as_in_java() {
        let p = TopicPattern::new("orders-.*").unwrap();
        assert!(p.matches("orders-eu"));
        assert!(p.matches("orders-"));
        assert!(!p.matches("old-orders-eu"));
        assert!(!p.matches("orders"));
        // An alternation is anchored as a whole, not only its first and last branch.
        let p = TopicPattern::new("a|ab").unwrap();
        assert!(p.matches("ab") && p.matches("a"));
        assert!(!p.matches("xab") && !p.matches("abx"));
        // Anchors the user wrote change nothing.
        assert!(TopicPattern::new("^orders$").unwrap().matches("orders"));
    }

    #[test]
    fn an_invalid_pattern_is_an_error_naming_it() {
        let err = TopicPattern::new("orders-(").unwrap_err();
        assert!(matches!(err, Error::InvalidArgument(_)), "{err:?}");
        assert!(err.to_string().contains("\"orders-(\""), "{err}");
        let err = "[z-a]".into_topic_pattern().unwrap_err();
        assert!(err.to_string().contains("[z-a]"), "{err}");
        // Unbalanced in a way the anchoring group would hide.
        let err = TopicPattern::new("a)|(b").unwrap_err();
        assert!(err.to_string().contains("a)|(b"), "{err}");
        let err = TopicPattern::new("").unwrap_err();
        assert!(err.to_string().contains("empty"), "{err}");
    }

    #[test]
    fn a_regex_is_matched_against_whole_names_too() {
        let p = Regex::new("orders").unwrap().into_topic_pattern().unwrap();
        assert!(p.matches("orders") && !p.matches("orders-eu"));
        let p = (&Regex::new("(?i)orders-.*").unwrap())
            .into_topic_pattern()
            .unwrap();
        assert!(p.matches("ORDERS-eu"));
        assert_eq!(p.as_str(), "(?i)orders-.*");
        assert_eq!(
            String::from("x.*").into_topic_pattern().unwrap(),
            TopicPattern::new("x.*").unwrap()
        );
    }

    #[test]
    fn internal_topics_are_excluded_by_default() {
        let md = metadata(&[
            ("__consumer_offsets", true),
            ("__transaction_state", true),
            ("orders", false),
            ("__not_internal", false),
        ]);
        let all = TopicPattern::new(".*").unwrap();
        let default = ConsumerConfig::default().exclude_internal_topics;
        assert!(
            default,
            "exclude.internal.topics defaults to true, as in Java"
        );
        assert_eq!(
            all.matching(&md, default),
            set(&["__not_internal", "orders"])
        );
        assert_eq!(
            all.matching(&md, false),
            set(&[
                "__consumer_offsets",
                "__not_internal",
                "__transaction_state",
                "orders"
            ])
        );
        let offsets = TopicPattern::new("__consumer_offsets").unwrap();
        assert!(offsets.matching(&md, true).is_empty());
    }
}
