//! The events the services exchange, and how they travel on Kafka.
//!
//! Every event is one record:
//!
//! | part  | content                                                                  |
//! | ----- | ------------------------------------------------------------------------ |
//! | key   | the order id (`"42"`), so all events of one order share a partition      |
//! | value | the event as JSON (serde)                                                |
//! | headers | `event-type` (`OrderCreated`...), `correlation-id` (one per order, copied from event to event), `run-id` (the demo run that wrote it) |
//!
//! The event type travels in a header rather than inside the JSON so that a service can skip
//! events it does not handle without parsing them, as Java services commonly do.

use std::fmt;

use kafka_client::producer::ProducerRecord;
use kafka_client::ConsumerRecord;
use serde::{Deserialize, Serialize};

/// Header naming the event's type.
pub const EVENT_TYPE: &str = "event-type";
/// Header carrying the id shared by every event of one order's flow.
pub const CORRELATION_ID: &str = "correlation-id";
/// Header naming the demo run that wrote the event (see `main.rs` for why).
pub const RUN_ID: &str = "run-id";

/// The kinds of events, as named in the `event-type` header.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventType {
    OrderCreated,
    PaymentSucceeded,
    PaymentFailed,
    OrderShipped,
}

impl EventType {
    /// The header value.
    pub fn name(self) -> &'static str {
        match self {
            EventType::OrderCreated => "OrderCreated",
            EventType::PaymentSucceeded => "PaymentSucceeded",
            EventType::PaymentFailed => "PaymentFailed",
            EventType::OrderShipped => "OrderShipped",
        }
    }

    fn from_name(name: &str) -> Option<EventType> {
        [
            EventType::OrderCreated,
            EventType::PaymentSucceeded,
            EventType::PaymentFailed,
            EventType::OrderShipped,
        ]
        .into_iter()
        .find(|t| t.name() == name)
    }
}

/// A customer placed an order (published by the order service to `orders`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OrderCreated {
    pub order_id: u64,
    pub customer: String,
    pub sku: String,
    pub quantity: u32,
    pub amount_cents: u64,
}

/// The order's payment went through (payment service, to `payments`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PaymentSucceeded {
    pub order_id: u64,
    pub payment_id: String,
    pub amount_cents: u64,
}

/// The order's payment was declined (payment service, to `payments`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PaymentFailed {
    pub order_id: u64,
    pub amount_cents: u64,
    pub reason: String,
}

/// The order left the warehouse (shipping service, to `shipments`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OrderShipped {
    pub order_id: u64,
    pub tracking_number: String,
}

/// One event of any type.
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    OrderCreated(OrderCreated),
    PaymentSucceeded(PaymentSucceeded),
    PaymentFailed(PaymentFailed),
    OrderShipped(OrderShipped),
}

impl Event {
    pub fn event_type(&self) -> EventType {
        match self {
            Event::OrderCreated(_) => EventType::OrderCreated,
            Event::PaymentSucceeded(_) => EventType::PaymentSucceeded,
            Event::PaymentFailed(_) => EventType::PaymentFailed,
            Event::OrderShipped(_) => EventType::OrderShipped,
        }
    }

    pub fn order_id(&self) -> u64 {
        match self {
            Event::OrderCreated(e) => e.order_id,
            Event::PaymentSucceeded(e) => e.order_id,
            Event::PaymentFailed(e) => e.order_id,
            Event::OrderShipped(e) => e.order_id,
        }
    }

    fn to_json(&self) -> serde_json::Result<Vec<u8>> {
        match self {
            Event::OrderCreated(e) => serde_json::to_vec(e),
            Event::PaymentSucceeded(e) => serde_json::to_vec(e),
            Event::PaymentFailed(e) => serde_json::to_vec(e),
            Event::OrderShipped(e) => serde_json::to_vec(e),
        }
    }

    fn from_json(event_type: EventType, json: &[u8]) -> serde_json::Result<Event> {
        Ok(match event_type {
            EventType::OrderCreated => Event::OrderCreated(serde_json::from_slice(json)?),
            EventType::PaymentSucceeded => Event::PaymentSucceeded(serde_json::from_slice(json)?),
            EventType::PaymentFailed => Event::PaymentFailed(serde_json::from_slice(json)?),
            EventType::OrderShipped => Event::OrderShipped(serde_json::from_slice(json)?),
        })
    }
}

/// An event with the headers that travel with it.
#[derive(Clone, Debug, PartialEq)]
pub struct Envelope {
    pub event: Event,
    pub correlation_id: String,
    pub run_id: String,
}

impl Envelope {
    /// The next event of the same order's flow: same correlation id, same run.
    pub fn follow(&self, event: Event) -> Envelope {
        Envelope {
            event,
            correlation_id: self.correlation_id.clone(),
            run_id: self.run_id.clone(),
        }
    }

    /// The record to send to `topic`.
    pub fn to_record(&self, topic: &str) -> serde_json::Result<ProducerRecord> {
        Ok(ProducerRecord::new(topic)
            .key(self.event.order_id().to_string())
            .value(self.event.to_json()?)
            .header(EVENT_TYPE, self.event.event_type().name())
            .header(CORRELATION_ID, self.correlation_id.clone())
            .header(RUN_ID, self.run_id.clone()))
    }

    /// Reads an event back from a record.
    pub fn from_record(record: &ConsumerRecord) -> Result<Envelope, DecodeError> {
        let type_name = header(record, EVENT_TYPE)?;
        let event_type = EventType::from_name(type_name)
            .ok_or_else(|| DecodeError::UnknownType(type_name.into()))?;
        let value = record.value.as_deref().ok_or(DecodeError::NoValue)?;
        Ok(Envelope {
            event: Event::from_json(event_type, value).map_err(DecodeError::Json)?,
            correlation_id: header(record, CORRELATION_ID)?.to_owned(),
            run_id: header(record, RUN_ID)?.to_owned(),
        })
    }
}

/// The value of a UTF-8 header (the last one, if the key repeats).
pub fn header<'r>(record: &'r ConsumerRecord, key: &'static str) -> Result<&'r str, DecodeError> {
    let value = record
        .headers
        .iter()
        .rev()
        .find(|h| h.key == key)
        .and_then(|h| h.value.as_deref())
        .ok_or(DecodeError::MissingHeader(key))?;
    std::str::from_utf8(value).map_err(|_| DecodeError::MissingHeader(key))
}

/// Why a record is not an event of this demo.
#[derive(Debug)]
pub enum DecodeError {
    MissingHeader(&'static str),
    UnknownType(String),
    NoValue,
    Json(serde_json::Error),
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::MissingHeader(key) => write!(f, "no UTF-8 header {key:?}"),
            DecodeError::UnknownType(name) => write!(f, "unknown event type {name:?}"),
            DecodeError::NoValue => write!(f, "the record has no value"),
            DecodeError::Json(e) => write!(f, "bad JSON: {e}"),
        }
    }
}

impl std::error::Error for DecodeError {}

/// The topics of one demo installation: `orders`, `payments` and `shipments`, each behind an
/// optional prefix (`--prefix test-1` gives `test-1-orders`...).
#[derive(Clone, Debug)]
pub struct Topics {
    pub orders: String,
    pub payments: String,
    pub shipments: String,
}

impl Topics {
    pub fn new(prefix: &str) -> Topics {
        Topics {
            orders: prefixed(prefix, "orders"),
            payments: prefixed(prefix, "payments"),
            shipments: prefixed(prefix, "shipments"),
        }
    }

    /// Where events of this type are published.
    pub fn for_event(&self, event_type: EventType) -> &str {
        match event_type {
            EventType::OrderCreated => &self.orders,
            EventType::PaymentSucceeded | EventType::PaymentFailed => &self.payments,
            EventType::OrderShipped => &self.shipments,
        }
    }

    pub fn all(&self) -> [&str; 3] {
        [&self.orders, &self.payments, &self.shipments]
    }
}

/// `name` behind `prefix` and a dash, or alone without a prefix. Used for group ids too.
pub fn prefixed(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_owned()
    } else {
        format!("{prefix}-{name}")
    }
}
