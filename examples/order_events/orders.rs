//! The order service: publishes one `OrderCreated` per order to `orders`, which starts each
//! order's flow through the other services.
//!
//! Orders are made up deterministically from their id (1, 2, ... N), so every run tells the
//! same story and the summary knows what to expect.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use kafka_client::producer::{Producer, ProducerRecord};

use crate::events::{Envelope, Event, OrderCreated};
use crate::BoxError;

/// What the shop sells: SKU and unit price in cents.
pub const CATALOG: [(&str, u64); 5] = [
    ("mug", 1_200),
    ("t-shirt", 2_500),
    ("hoodie", 4_900),
    ("poster", 900),
    ("sticker-pack", 400),
];

/// Orders are for 1 to this many units.
pub const MAX_QUANTITY: u32 = 3;

/// The order with this id.
pub fn new_order(order_id: u64) -> OrderCreated {
    let (sku, price) = CATALOG[(order_id % CATALOG.len() as u64) as usize];
    let quantity = 1 + (order_id % u64::from(MAX_QUANTITY)) as u32;
    OrderCreated {
        order_id,
        customer: format!("customer-{}", order_id % 97),
        sku: sku.to_owned(),
        quantity,
        amount_cents: price * u64::from(quantity),
    }
}

/// An id for this run of the demo: every event carries it in the `run-id` header, and the
/// services skip events of other runs.
pub fn new_run_id() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("{:x}-{}", nanos, std::process::id())
}

/// Counts of what the order service published, read by the progress line and the summary.
#[derive(Debug, Default)]
pub struct OrderCounts {
    /// Orders acknowledged by the broker.
    pub created: AtomicU64,
    /// Extra copies sent on purpose (see [`OrderService::resend_every`]).
    pub resent: AtomicU64,
    /// The first delivery failure, reported by [`OrderService::run`].
    failure: Mutex<Option<kafka_client::Error>>,
}

/// The order service's settings.
#[derive(Debug)]
pub struct OrderService {
    pub producer: Producer,
    pub topic: String,
    pub run_id: String,
    pub orders: u64,
    /// Sends every n-th order twice (0: never), as an application that retries a send after
    /// a timeout does, to show that the services handle duplicates idempotently. (The
    /// producer's own retries never duplicate: idempotence is on by default.)
    pub resend_every: u64,
    pub counts: Arc<OrderCounts>,
}

impl OrderService {
    /// Publishes every order and waits until the broker acknowledged all of them.
    ///
    /// Sends are asynchronous: `send_with_callback` returns once the record is queued (it
    /// waits only when `buffer.memory` is full), and the callback counts the acknowledgement.
    /// `flush` then waits for the last ones.
    pub async fn run(self) -> Result<(), BoxError> {
        for order_id in 1..=self.orders {
            let envelope = Envelope {
                event: Event::OrderCreated(new_order(order_id)),
                correlation_id: format!("{}-order-{order_id}", self.run_id),
                run_id: self.run_id.clone(),
            };
            let record = envelope.to_record(&self.topic)?;
            if self.resend_every > 0 && order_id % self.resend_every == 0 {
                self.send(record.clone(), true).await?;
            }
            self.send(record, false).await?;
        }
        self.producer.flush().await?;
        match self.counts.failure.lock().map(|mut f| f.take()) {
            Ok(Some(e)) => Err(format!("an order was not delivered: {e}").into()),
            _ => Ok(()),
        }
    }

    async fn send(&self, record: ProducerRecord, resent: bool) -> kafka_client::Result<()> {
        let counts = self.counts.clone();
        self.producer
            .send_with_callback(record, move |delivery| match delivery {
                Ok(_) if resent => {
                    counts.resent.fetch_add(1, Ordering::Relaxed);
                }
                Ok(_) => {
                    counts.created.fetch_add(1, Ordering::Relaxed);
                }
                // Runs on the producer's sender task: only note the error here.
                Err(e) => {
                    if let Ok(mut failure) = counts.failure.lock() {
                        failure.get_or_insert(e);
                    }
                }
            })
            .await
    }
}
