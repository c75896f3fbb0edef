//! The producer against a broker that stops answering produce requests, or that throttles
//! it (a fake server in the test: a real broker cannot be made to hang on demand without
//! disturbing the other tests, and throttles only under quotas set for the whole broker).
//! `send` must wait for `buffer.memory` and then fail after `max.block.ms`; every delivery
//! future must resolve; `close` must return; a throttle time in a response holds the next
//! request back (KIP-219).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::{BufMut, BytesMut};
use kafka_client::producer::{Producer, ProducerRecord};
use kafka_client::Error;
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{
    ApiVersionsResponse, BrokerId, MetadataResponse, ProduceResponse, TopicName,
};
use kafka_protocol::protocol::{Encodable, StrBytes};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A broker that answers ApiVersions and Metadata (one topic `stalled`, one partition led by
/// itself) and never answers Produce.
async fn stalled_broker() -> String {
    fake_broker(None).await
}

/// When each Produce request arrived and when it was answered.
type ProduceLog = Arc<Mutex<Vec<(Instant, Instant)>>>;

/// With `throttle` = `(ms, log)`, Produce requests are answered at once with that throttle
/// time and logged; without, never answered.
async fn fake_broker(throttle: Option<(i32, ProduceLog)>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            tokio::spawn(serve(socket, addr.port(), throttle.clone()));
        }
    });
    addr.to_string()
}

async fn serve(mut socket: TcpStream, port: u16, throttle: Option<(i32, ProduceLog)>) {
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
            0 => {
                let Some((throttle_ms, log)) = &throttle else {
                    continue; // stalled: never answered
                };
                let arrived = Instant::now();
                let offset = {
                    let mut log = log.lock().unwrap();
                    log.push((arrived, Instant::now()));
                    log.len() as i64 - 1
                };
                ProduceResponse::default()
                    .with_throttle_time_ms(*throttle_ms)
                    .with_responses(vec![TopicProduceResponse::default()
                        .with_name(TopicName(StrBytes::from_static_str("stalled")))
                        .with_partition_responses(vec![PartitionProduceResponse::default()
                            .with_index(0)
                            .with_base_offset(offset)])])
                    .encode(&mut payload, version)
                    .unwrap();
                version >= 9
            }
            _ => continue,
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

#[tokio::test]
async fn a_throttle_time_in_a_response_holds_the_next_request_back() {
    const THROTTLE_MS: i32 = 400;
    let log = ProduceLog::default();
    let addr = fake_broker(Some((THROTTLE_MS, log.clone()))).await;
    let producer = Producer::builder()
        .bootstrap_servers(&addr)
        .idempotence(false)
        .linger(Duration::ZERO)
        .build()
        .await
        .unwrap();
    for i in 0..3 {
        let stored = producer
            .send(ProducerRecord::new("stalled").value(format!("{i}")))
            .await
            .unwrap()
            .await
            .unwrap();
        assert_eq!(stored.offset, i, "each record in its own request, in order");
    }
    let log = log.lock().unwrap().clone();
    assert_eq!(log.len(), 3);
    for pair in log.windows(2) {
        let (_, answered) = pair[0];
        let (next, _) = pair[1];
        let gap = next.duration_since(answered);
        assert!(
            gap >= Duration::from_millis(THROTTLE_MS as u64 - 20),
            "a request came {gap:?} after a response throttling for {THROTTLE_MS} ms"
        );
    }
    producer.close(Duration::from_secs(5)).await;
}
