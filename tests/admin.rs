//! The admin client against a real broker: topics and offsets.

mod common;

use std::collections::HashMap;

use kafka_client::admin::NewTopic;
use kafka_client::cluster::OffsetSpec;
use kafka_client::{Error, KafkaCode, TopicPartition};

#[tokio::test]
async fn create_describe_delete_a_six_partition_topic() {
    let admin = common::admin().await;
    let name = common::unique_topic("admin-six");
    admin
        .create_topic(NewTopic::new(&name, 6, 1).config("retention.ms", "3600000"))
        .await
        .unwrap();

    let described = admin.describe_topics(&[&name]).await.unwrap();
    assert_eq!(described.len(), 1);
    let topic = &described[0];
    assert_eq!(topic.name, name);
    assert_eq!(topic.partitions.len(), 6);
    for (i, p) in topic.partitions.iter().enumerate() {
        assert_eq!(p.partition, i as i32);
        assert!(p.leader.is_some(), "partition {i} has no leader");
        assert!(p.leader_epoch >= 0);
        assert_eq!(p.replicas.len(), 1);
    }
    assert!(admin.list_topics().await.unwrap().contains(&name));

    admin.delete_topics(&[&name]).await.unwrap();
    let err = admin.describe_topics(&[&name]).await.unwrap_err();
    assert!(
        matches!(err, Error::UnknownTopicOrPartition { .. }),
        "{err:?}"
    );
    assert!(!admin.list_topics().await.unwrap().contains(&name));
}

#[tokio::test]
async fn creating_an_existing_topic_is_a_typed_error() {
    let admin = common::admin().await;
    let name = common::new_topic(&admin, "admin-exists", 1).await;
    let err = admin
        .create_topic(NewTopic::new(&name, 1, 1))
        .await
        .unwrap_err();
    assert_eq!(
        err.kafka_code(),
        Some(KafkaCode::TOPIC_ALREADY_EXISTS),
        "{err}"
    );
    assert!(err.to_string().contains(&name), "{err}");
    assert!(!err.is_retriable());
}

#[tokio::test]
async fn bad_topic_settings_are_refused_with_the_brokers_reason() {
    let admin = common::admin().await;
    let name = common::unique_topic("admin-bad");
    let err = admin
        .create_topic(NewTopic::new(&name, 1, 1).config("cleanup.policy", "shred"))
        .await
        .unwrap_err();
    assert_eq!(err.kafka_code(), Some(KafkaCode::INVALID_CONFIG), "{err}");

    let err = admin
        .create_topic(NewTopic::new(&name, 1, 3))
        .await
        .unwrap_err();
    assert_eq!(
        err.kafka_code(),
        Some(KafkaCode::INVALID_REPLICATION_FACTOR),
        "{err}"
    );
}

#[tokio::test]
async fn compacted_topic_and_broker_defaults() {
    let admin = common::admin().await;
    let name = common::unique_topic("admin-compact");
    admin
        .create_topic(NewTopic::with_defaults(&name).config("cleanup.policy", "compact"))
        .await
        .unwrap();
    let topic = admin.describe_topics(&[&name]).await.unwrap().remove(0);
    assert!(!topic.partitions.is_empty());
}

#[tokio::test]
async fn offsets_of_an_empty_topic_are_zero() {
    let admin = common::admin().await;
    let name = common::new_topic(&admin, "admin-offsets", 3).await;
    let specs: HashMap<_, _> = (0..3)
        .map(|p| (TopicPartition::new(&name, p), OffsetSpec::Earliest))
        .collect();
    let earliest = admin.list_offsets(specs).await.unwrap();
    assert_eq!(earliest.len(), 3);
    assert!(earliest.values().all(|o| o.offset == Some(0)));

    let latest = admin
        .list_offsets(HashMap::from([(
            TopicPartition::new(&name, 1),
            OffsetSpec::Latest,
        )]))
        .await
        .unwrap();
    assert_eq!(latest[&TopicPartition::new(&name, 1)].offset, Some(0));

    let by_time = admin
        .list_offsets(HashMap::from([(
            TopicPartition::new(&name, 2),
            OffsetSpec::Timestamp(0),
        )]))
        .await
        .unwrap();
    assert_eq!(by_time[&TopicPartition::new(&name, 2)].offset, None);

    let err = admin
        .list_offsets(HashMap::from([(
            TopicPartition::new(&name, 7),
            OffsetSpec::Latest,
        )]))
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::UnknownTopicOrPartition { .. }),
        "{err:?}"
    );
}

#[tokio::test]
async fn describe_cluster_lists_the_broker() {
    let admin = common::admin().await;
    let cluster = admin.describe_cluster().await.unwrap();
    assert!(!cluster.brokers.is_empty());
    assert!(cluster.cluster_id.is_some());
    let addrs: Vec<String> = cluster.brokers.values().map(|b| b.address()).collect();
    assert!(addrs.contains(&common::bootstrap()), "{addrs:?}");
}
