//! The producer against a broker that stops answering produce requests (a fake server in the
//! test: a real broker cannot be made to hang on demand without disturbing the other tests).
//! `send` must wait for `buffer.memory` and then fail after `max.block.ms`; every delivery
//! future must resolve; `close` must return.

use std::time::{Duration, Instant};

use bytes::{BufMut, BytesMut};
use kafka_client::producer::{Producer, ProducerRecord};
use kafka_client::Error;
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{ApiVersionsResponse, BrokerId, MetadataResponse, TopicName};
use kafka_protocol::protocol::{Encodable, StrBytes};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A broker that answers ApiVersions and Metadata (one topic `stalled`, one partition led by
/// itself) and never answers Produce.
async fn stalled_broker() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            tokio::spawn(serve(socket, addr.port()));
        }
    });
    addr.to_string()
}

async fn serve(mut socket: TcpStream, port: u16) {
    loop {
        let Ok(len) = socket.read_i32().await else {
            return;
        };
        let mut body = vec![0u8; len as usize];
        if socket.read_exact(&mut body).await.is_err() {
            return;
        }
        let api_key = i16::from_be_bytes([body[0], body[1]]);
        let version = i16::from_be_bytes([body[2], body[3]]);
        let correlation_id = i32::from_be_bytes([body[4], body[5], body[6], body[7]]);
        let mut payload = BytesMut::new();
        let header_v1 = match api_key {
            18 => {
                let range = |key, min, max| {
                    ApiVersion::default()
                        .with_api_key(key)
                        .with_min_version(min)
                        .with_max_version(max)
                };
                ApiVersionsResponse::default()
                    .with_api_keys(vec![
                        range(18, 0, 3),
                        range(3, 0, 12),
                        range(0, 3, 12),
                        range(22, 0, 4),
                    ])
                    .encode(&mut payload, version)
                    .unwrap();
                false
            }
            3 => {
                MetadataResponse::default()
                    .with_brokers(vec![MetadataResponseBroker::default()
                        .with_node_id(BrokerId(1))
                        .with_host(StrBytes::from_static_str("127.0.0.1"))
                        .with_port(i32::from(port))])
                    .with_controller_id(BrokerId(1))
                    .with_topics(vec![MetadataResponseTopic::default()
                        .with_name(Some(TopicName(StrBytes::from_static_str("stalled"))))
                        .with_partitions(vec![MetadataResponsePartition::default()
                            .with_partition_index(0)
                            .with_leader_id(BrokerId(1))
                            .with_leader_epoch(0)
                            .with_replica_nodes(vec![BrokerId(1)])
                            .with_isr_nodes(vec![BrokerId(1)])])])
                    .encode(&mut payload, version)
                    .unwrap();
                version >= 9
            }
            _ => continue, // Produce: never answered.
        };
        let mut frame = BytesMut::new();
        frame.put_i32(4 + i32::from(header_v1) + payload.len() as i32);
        frame.put_i32(correlation_id);
        if header_v1 {
            frame.put_u8(0); // no tagged fields
        }
        frame.extend_from_slice(&payload);
        if socket.write_all(&frame).await.is_err() {
            return;
        }
    }
}

#[tokio::test]
async fn a_full_buffer_blocks_send_then_fails_after_max_block_ms() {
    let addr = stalled_broker().await;
    let producer = Producer::builder()
        .bootstrap_servers(&addr)
        .idempotence(false)
        .buffer_memory(64 * 1024)
        .max_block(Duration::from_millis(800))
        .linger(Duration::ZERO)
        .build()
        .await
        .unwrap();
    let mut accepted = Vec::new();
    let err = loop {
        match producer
            .send(ProducerRecord::new("stalled").value(vec![1u8; 1024]))
            .await
        {
            Ok(delivery) => accepted.push(delivery),
            Err(e) => break e,
        }
        assert!(
            accepted.len() <= 64,
            "buffer.memory of 64 KiB holds at most 64 records of 1 KiB"
        );
    };
    assert!(err.is_timeout(), "{err:?}");
    assert!(err.to_string().contains("buffer.memory"), "{err}");
    assert!(!accepted.is_empty());

    let started = Instant::now();
    producer.close(Duration::from_millis(300)).await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "close returned in {:?}",
        started.elapsed()
    );
    for delivery in accepted {
        let err = delivery.await.unwrap_err();
        assert!(matches!(err, Error::Closed(_)), "{err:?}");
    }
}

#[tokio::test]
async fn every_delivery_resolves_within_delivery_timeout() {
    let addr = stalled_broker().await;
    let producer = Producer::builder()
        .bootstrap_servers(&addr)
        .idempotence(false)
        .set("request.timeout.ms", "300")
        .delivery_timeout(Duration::from_millis(1000))
        .linger(Duration::ZERO)
        .build()
        .await
        .unwrap();
    let started = Instant::now();
    let mut deliveries = Vec::new();
    for i in 0..20 {
        deliveries.push(
            producer
                .send(ProducerRecord::new("stalled").value(format!("{i}")))
                .await
                .unwrap(),
        );
    }
    for delivery in deliveries {
        let err = delivery.await.unwrap_err();
        assert!(err.is_timeout(), "{err:?}");
    }
    // delivery.timeout.ms, plus at most one request.timeout.ms for a batch in flight.
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
}
