//! One broker connection against a real broker: pipelining, bootstrap failures.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::join_all;
use kafka_client::admin::Admin;
use kafka_client::config::ClientConfig;
use kafka_client::connection::{BrokerConnection, ConnectionOptions};
use kafka_client::Error;
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{MetadataRequest, TopicName};
use kafka_protocol::protocol::StrBytes;

#[tokio::test]
async fn a_thousand_concurrent_requests_on_one_connection() {
    let opts = ConnectionOptions::from(&ClientConfig::default());
    let addr = common::bootstrap();
    let conn = Arc::new(
        BrokerConnection::connect(&addr, &addr, &opts)
            .await
            .unwrap_or_else(|e| {
                panic!("no broker at {addr} ({e}); start one with scripts/kafka.sh start")
            }),
    );
    // Each request names a different (absent) topic; the response must echo that name, so a
    // mismatched correlation would be seen.
    let requests = (0..1000).map(|i| {
        let conn = conn.clone();
        tokio::spawn(async move {
            let name = format!("absent-topic-{i}");
            let req = MetadataRequest::default()
                .with_allow_auto_topic_creation(false)
                .with_topics(Some(vec![MetadataRequestTopic::default()
                    .with_name(Some(TopicName(StrBytes::from_string(name.clone()))))]));
            let resp = conn.request(&req).await.unwrap();
            (name, resp)
        })
    });
    let results = join_all(requests).await;
    assert_eq!(results.len(), 1000);
    for result in results {
        let (name, resp) = result.unwrap();
        assert_eq!(resp.topics.len(), 1);
        let topic = &resp.topics[0];
        assert_eq!(
            topic.name.as_ref().map(|n| n.0.as_str()),
            Some(name.as_str())
        );
        assert_eq!(topic.error_code, 3, "UNKNOWN_TOPIC_OR_PARTITION expected");
    }
    assert!(!conn.is_closed());
}

#[tokio::test]
async fn a_dead_bootstrap_list_fails_in_time_naming_every_address() {
    // Ports nobody listens on: connections are refused at once, so only the retry rounds
    // take time, and they are bounded by the setup timeout.
    let dead = "127.0.0.1:1,127.0.0.1:2,localhost:3";
    let started = Instant::now();
    let err = Admin::builder()
        .bootstrap_servers(dead)
        .set("socket.connection.setup.timeout.ms", "1500")
        .build()
        .await
        .unwrap_err();
    let elapsed = started.elapsed();
    assert!(elapsed < Duration::from_secs(5), "took {elapsed:?}");
    let Error::Bootstrap { failures } = &err else {
        panic!("expected a bootstrap error, got {err:?}");
    };
    for addr in ["127.0.0.1:1", "127.0.0.1:2", "localhost:3"] {
        assert!(
            failures.iter().any(|f| f.starts_with(addr)),
            "{addr} not named in {err}"
        );
    }
    assert!(err.is_retriable());
}

#[tokio::test]
async fn a_bad_config_value_names_the_key() {
    let err = Admin::builder()
        .bootstrap_servers(&common::bootstrap())
        .set("request.timeout.ms", "soon")
        .build()
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Config { key, value, .. } if key == "request.timeout.ms" && value == "soon"),
        "{err:?}"
    );
}
