//! The wire side of fetching: one Fetch request built from a [`SessionRequest`] and sent to a
//! broker's fetch connection, and the last requests of a closing consumer, which end its
//! fetch sessions.

use std::collections::BTreeMap;

use futures::future::join_all;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic, ForgottenTopic};
use kafka_protocol::messages::{BrokerId, FetchRequest, FetchResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use tokio::time::{timeout_at, Instant};

use super::config::ConsumerConfig;
use super::fetch_session::{PartitionFetch, SessionRequest};
use crate::cluster::{Cluster, ConnClass};
use crate::error::{KafkaCode, Result};

/// Sends one Fetch to `broker` over its connection of `class` and waits for the answer
/// (`fetch.max.wait.ms` plus `request.timeout.ms` at most).
pub(crate) async fn fetch(
    cluster: &Cluster,
    config: &ConsumerConfig,
    broker: i32,
    class: ConnClass,
    session: &SessionRequest,
    all: Vec<PartitionFetch>,
) -> Result<(FetchResponse, bool)> {
    let conn = cluster.broker(broker, class).await?;
    let version = conn.version::<FetchRequest>()?;
    let sessions = version >= 7;
    let partitions = if sessions {
        session.partitions.clone()
    } else {
        all
    };
    let mut by_topic: BTreeMap<String, Vec<FetchPartition>> = BTreeMap::new();
    for p in partitions {
        let mut fp = FetchPartition::default()
            .with_partition(p.tp.partition)
            .with_fetch_offset(p.fetch_offset)
            .with_partition_max_bytes(p.max_bytes);
        if version >= 9 {
            fp = fp.with_current_leader_epoch(p.leader_epoch);
        }
        by_topic.entry(p.tp.topic).or_default().push(fp);
    }
    let mut req = FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_wait_ms(i32::try_from(config.fetch_max_wait.as_millis()).unwrap_or(i32::MAX))
        .with_min_bytes(config.fetch_min_bytes)
        .with_max_bytes(config.fetch_max_bytes)
        .with_isolation_level(config.isolation_level.wire())
        .with_topics(
            by_topic
                .into_iter()
                .map(|(t, ps)| {
                    FetchTopic::default()
                        .with_topic(TopicName(StrBytes::from_string(t)))
                        .with_partitions(ps)
                })
                .collect(),
        );
    if sessions {
        let mut forgotten: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
        for tp in &session.forgotten {
            forgotten.entry(&tp.topic).or_default().push(tp.partition);
        }
        req = req
            .with_session_id(session.session_id)
            .with_session_epoch(session.epoch)
            .with_forgotten_topics_data(
                forgotten
                    .into_iter()
                    .map(|(t, ps)| {
                        ForgottenTopic::default()
                            .with_topic(TopicName(StrBytes::from_string(t.to_owned())))
                            .with_partitions(ps)
                    })
                    .collect(),
            );
    }
    // No rack id in Fetch: with it, a broker using a rack-aware replica selector answers
    // with an empty response naming a preferred follower (KIP-392), which this fetcher does
    // not follow yet, so the partition would never get a record. `client.rack` still goes
    // with the group subscription.
    let timeout = config.client.request_timeout + config.fetch_max_wait;
    let resp = conn.request_at(&req, version, timeout).await?;
    Ok((resp, sessions))
}

/// Sends each broker's session-closing request (Java's `maybeCloseFetchSessions`) and waits
/// for the answers until `deadline`. Best effort: a broker that does not answer in time
/// drops the session when it expires, as it would have without the request.
pub(crate) async fn close_sessions(
    cluster: &Cluster,
    config: &ConsumerConfig,
    closing: Vec<(i32, SessionRequest)>,
    deadline: Instant,
) {
    if closing.is_empty() {
        return;
    }
    // Over the control connection: on the fetch connection the request would wait behind the
    // long poll in flight there. The broker knows a session by its id, not its connection.
    let sent = closing.into_iter().map(|(broker, request)| async move {
        let class = ConnClass::Control;
        let result = fetch(cluster, config, broker, class, &request, Vec::new()).await;
        (broker, request.session_id, result)
    });
    let Ok(answers) = timeout_at(deadline, join_all(sent)).await else {
        tracing::debug!("fetch sessions not all closed in time; the brokers will expire them");
        return;
    };
    for (broker, session_id, answer) in answers {
        match answer {
            Ok((resp, _)) if resp.error_code == 0 => {
                tracing::debug!(broker, session_id, "fetch session closed")
            }
            Ok((resp, _)) => tracing::debug!(
                broker,
                session_id,
                code = %KafkaCode::from_code(resp.error_code),
                "closing the fetch session was refused"
            ),
            Err(e) => {
                tracing::debug!(broker, session_id, error = %e, "closing the fetch session failed")
            }
        }
    }
}
