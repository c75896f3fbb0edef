//! A bare transactional writer for read_committed tests: FindCoordinator, InitProducerId,
//! AddPartitionsToTxn, transactional Produce and EndTxn, sent as raw requests so a test can
//! leave a transaction open, abort it or commit it exactly when it wants.

use std::time::Duration;

use kafka_client::admin::Admin;
use kafka_client::config::ClientConfig;
use kafka_client::connection::{BrokerConnection, ConnectionOptions};
use kafka_client::protocol::records::{Compression, ProducerState};
use kafka_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic;
use kafka_protocol::messages::{
    AddPartitionsToTxnRequest, EndTxnRequest, FindCoordinatorRequest, InitProducerIdRequest,
    ProducerId, TopicName, TransactionalId,
};
use kafka_protocol::protocol::StrBytes;

use super::produce::{build, RawProducer, Rec};

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_owned())
}

/// One transactional producer with one transaction at a time.
pub struct Txn {
    coordinator: BrokerConnection,
    id: String,
    producer_id: i64,
    epoch: i16,
    sequence: i32,
}

impl Txn {
    /// Registers transactional id `id` and starts a transaction.
    pub async fn begin(admin: &Admin, id: &str) -> Txn {
        let opts = ConnectionOptions::from(&ClientConfig::new(&super::bootstrap()));
        let any = BrokerConnection::connect(&super::bootstrap(), "bootstrap", &opts)
            .await
            .unwrap();
        // The transaction state topic may still be coming up: retry its "not available" codes.
        let mut coordinator = None;
        for _ in 0..100 {
            let resp = any
                .request(
                    &FindCoordinatorRequest::default()
                        .with_key_type(1)
                        .with_coordinator_keys(vec![s(id)]),
                )
                .await
                .unwrap();
            let c = &resp.coordinators[0];
            if c.error_code == 0 {
                let cluster = admin.describe_cluster().await.unwrap();
                let addr = cluster.brokers[&c.node_id.0].address();
                coordinator = Some(
                    BrokerConnection::connect(&addr, "txn", &opts)
                        .await
                        .unwrap(),
                );
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let coordinator = coordinator.expect("a transaction coordinator");
        for _ in 0..100 {
            let resp = coordinator
                .request(
                    &InitProducerIdRequest::default()
                        .with_transactional_id(Some(TransactionalId(s(id))))
                        .with_transaction_timeout_ms(60_000)
                        .with_producer_id(ProducerId(-1))
                        .with_producer_epoch(-1),
                )
                .await
                .unwrap();
            match resp.error_code {
                0 => {
                    return Txn {
                        coordinator,
                        id: id.to_owned(),
                        producer_id: resp.producer_id.0,
                        epoch: resp.producer_epoch,
                        sequence: 0,
                    }
                }
                // COORDINATOR_LOAD_IN_PROGRESS, COORDINATOR_NOT_AVAILABLE, CONCURRENT_TRANSACTIONS
                14 | 15 | 16 | 51 => tokio::time::sleep(Duration::from_millis(200)).await,
                code => panic!("InitProducerId failed: {code}"),
            }
        }
        panic!("InitProducerId never succeeded")
    }

    /// Adds a partition to the transaction and writes `records` to it as one batch.
    pub async fn produce(
        &mut self,
        producer: &mut RawProducer,
        topic: &str,
        partition: i32,
        records: &[Rec],
    ) {
        let req = AddPartitionsToTxnRequest::default()
            .with_v3_and_below_transactional_id(TransactionalId(s(&self.id)))
            .with_v3_and_below_producer_id(ProducerId(self.producer_id))
            .with_v3_and_below_producer_epoch(self.epoch)
            .with_v3_and_below_topics(vec![AddPartitionsToTxnTopic::default()
                .with_name(TopicName(s(topic)))
                .with_partitions(vec![partition])]);
        for _ in 0..100 {
            let resp = self
                .coordinator
                .request_at(&req, 3, Duration::from_secs(30))
                .await
                .unwrap();
            let code =
                resp.results_by_topic_v3_and_below[0].results_by_partition[0].partition_error_code;
            match code {
                0 => break,
                51 => tokio::time::sleep(Duration::from_millis(100)).await,
                code => panic!("AddPartitionsToTxn failed: {code}"),
            }
        }
        let state = ProducerState {
            producer_id: self.producer_id,
            producer_epoch: self.epoch,
            base_sequence: self.sequence,
            transactional: true,
        };
        self.sequence += records.len() as i32;
        let batch = build(records, Compression::None, state);
        producer
            .send_batch(topic, partition, batch, Some(&self.id))
            .await;
    }

    /// Commits or aborts the transaction.
    pub async fn end(self, commit: bool) {
        for _ in 0..100 {
            let resp = self
                .coordinator
                .request(
                    &EndTxnRequest::default()
                        .with_transactional_id(TransactionalId(s(&self.id)))
                        .with_producer_id(ProducerId(self.producer_id))
                        .with_producer_epoch(self.epoch)
                        .with_committed(commit),
                )
                .await
                .unwrap();
            match resp.error_code {
                0 => return,
                51 => tokio::time::sleep(Duration::from_millis(100)).await,
                code => panic!("EndTxn failed: {code}"),
            }
        }
        panic!("EndTxn never succeeded")
    }
}
