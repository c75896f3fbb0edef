//! The consuming services' business logic: payment, shipping and notification here, inventory
//! in `inventory.rs`. The Kafka side (polling, publishing, committing) is in `runner.rs`.
//!
//! Each service keeps its state in one object shared by all its members (instances), standing
//! for the service's database. That state is also what makes a service idempotent: it
//! remembers every (order id, event type) it handled, so an event read twice (after a
//! rebalance, a failed commit or a producer's resend) changes nothing the second time.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crate::events::{Envelope, Event, EventType, OrderShipped, PaymentFailed, PaymentSucceeded};
use crate::inventory::Inventory;

/// What a service did with one event.
#[derive(Debug)]
pub enum Handled {
    /// Handled; publish these events (possibly none).
    Done(Vec<Event>),
    /// Handled before (same order id and event type): nothing to do.
    Duplicate,
    /// Not an event this service reacts to.
    Ignored,
    /// The event contradicts what the service knows; a bug upstream, counted and reported.
    Rejected(String),
}

/// One microservice: the events it reads and how it handles one.
///
/// `handle` only updates the service's own state and says what to publish; the runner does
/// the I/O. Keeping the two apart makes the logic testable without a broker.
pub trait Service: Send + Sync + 'static {
    /// Short name, used for the group id (`<name>-service`) and the client ids.
    fn name(&self) -> &'static str;
    /// The event types it reacts to; it subscribes to the topics carrying them.
    fn consumes(&self) -> &'static [EventType];
    /// Whether it publishes events (and so needs a producer).
    fn publishes(&self) -> bool {
        false
    }
    /// Applies one event of this run.
    fn handle(&self, event: &Envelope) -> Handled;
}

/// Locks a service's state. A panic while holding the lock leaves the state as it was between
/// two events (every update is a few assignments), so the data is still usable.
pub fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Charges each order once, with the order id as the idempotency key (as payment providers
/// do), and publishes `PaymentSucceeded` or `PaymentFailed`.
#[derive(Debug, Default)]
pub struct Payment {
    state: Mutex<PaymentState>,
}

#[derive(Debug, Default)]
struct PaymentState {
    /// Order id → whether the charge went through.
    charges: HashMap<u64, bool>,
    paid: u64,
    failed: u64,
}

impl Payment {
    /// The demo's deterministic share of failures: cards of orders whose id is divisible by 7
    /// are declined.
    pub fn declines(order_id: u64) -> bool {
        order_id % 7 == 0
    }

    /// Orders paid and orders declined so far.
    pub fn counts(&self) -> (u64, u64) {
        let state = lock(&self.state);
        (state.paid, state.failed)
    }

    /// `Some(true)` if the order was paid, `Some(false)` if declined, `None` if not seen.
    pub fn outcome(&self, order_id: u64) -> Option<bool> {
        lock(&self.state).charges.get(&order_id).copied()
    }
}

impl Service for Payment {
    fn name(&self) -> &'static str {
        "payment"
    }

    fn consumes(&self) -> &'static [EventType] {
        &[EventType::OrderCreated]
    }

    fn publishes(&self) -> bool {
        true
    }

    fn handle(&self, envelope: &Envelope) -> Handled {
        let Event::OrderCreated(order) = &envelope.event else {
            return Handled::Ignored;
        };
        let paid = !Payment::declines(order.order_id);
        let mut state = lock(&self.state);
        match state.charges.entry(order.order_id) {
            Entry::Occupied(_) => return Handled::Duplicate,
            Entry::Vacant(slot) => {
                slot.insert(paid);
            }
        }
        let event = if paid {
            state.paid += 1;
            Event::PaymentSucceeded(PaymentSucceeded {
                order_id: order.order_id,
                payment_id: format!("pay-{:08}", order.order_id),
                amount_cents: order.amount_cents,
            })
        } else {
            state.failed += 1;
            Event::PaymentFailed(PaymentFailed {
                order_id: order.order_id,
                amount_cents: order.amount_cents,
                reason: "card declined (order id divisible by 7)".into(),
            })
        };
        Handled::Done(vec![event])
    }
}

/// Ships every paid order once and publishes `OrderShipped`.
#[derive(Debug, Default)]
pub struct Shipping {
    shipped: Mutex<HashSet<u64>>,
}

impl Shipping {
    /// Orders shipped so far.
    pub fn count(&self) -> u64 {
        lock(&self.shipped).len() as u64
    }

    pub fn has_shipped(&self, order_id: u64) -> bool {
        lock(&self.shipped).contains(&order_id)
    }
}

impl Service for Shipping {
    fn name(&self) -> &'static str {
        "shipping"
    }

    fn consumes(&self) -> &'static [EventType] {
        // PaymentFailed shares the payments topic; `handle` ignores it.
        &[EventType::PaymentSucceeded]
    }

    fn publishes(&self) -> bool {
        true
    }

    fn handle(&self, envelope: &Envelope) -> Handled {
        let Event::PaymentSucceeded(payment) = &envelope.event else {
            return Handled::Ignored;
        };
        if !lock(&self.shipped).insert(payment.order_id) {
            return Handled::Duplicate;
        }
        Handled::Done(vec![Event::OrderShipped(OrderShipped {
            order_id: payment.order_id,
            tracking_number: format!("TRACK-{:08}", payment.order_id),
        })])
    }
}

/// Tells the customer about payments and shipments: one message per (order, event type).
/// Here a message is only counted; a real service would send an e-mail.
#[derive(Debug, Default)]
pub struct Notification {
    sent: Mutex<HashSet<(u64, EventType)>>,
}

impl Notification {
    /// Messages sent so far.
    pub fn count(&self) -> u64 {
        lock(&self.sent).len() as u64
    }

    pub fn has_sent(&self, order_id: u64, about: EventType) -> bool {
        lock(&self.sent).contains(&(order_id, about))
    }
}

impl Service for Notification {
    fn name(&self) -> &'static str {
        "notification"
    }

    fn consumes(&self) -> &'static [EventType] {
        &[
            EventType::PaymentSucceeded,
            EventType::PaymentFailed,
            EventType::OrderShipped,
        ]
    }

    fn handle(&self, envelope: &Envelope) -> Handled {
        let event_type = envelope.event.event_type();
        if !self.consumes().contains(&event_type) {
            return Handled::Ignored;
        }
        if !lock(&self.sent).insert((envelope.event.order_id(), event_type)) {
            return Handled::Duplicate;
        }
        Handled::Done(Vec::new())
    }
}

/// Every consuming service of the demo, each with its shared state.
#[derive(Debug)]
pub struct Services {
    pub payment: Arc<Payment>,
    pub inventory: Arc<Inventory>,
    pub shipping: Arc<Shipping>,
    pub notification: Arc<Notification>,
}

impl Services {
    /// Fresh services, with enough stock for `orders` orders.
    pub fn new(orders: u64) -> Services {
        Services {
            payment: Arc::default(),
            inventory: Arc::new(Inventory::for_orders(orders)),
            shipping: Arc::default(),
            notification: Arc::default(),
        }
    }

    /// The four services, in the order events flow through them.
    pub fn all(&self) -> [Arc<dyn Service>; 4] {
        [
            self.payment.clone(),
            self.inventory.clone(),
            self.shipping.clone(),
            self.notification.clone(),
        ]
    }
}
