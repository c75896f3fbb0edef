//! The inventory service: reserves stock when an order is created, deducts it when the
//! payment succeeds and releases it when the payment fails.
//!
//! It reads two topics, `orders` and `payments`, and Kafka keeps order only within one
//! partition: a member can see an order's payment outcome before its `OrderCreated` (the
//! topics are fetched separately). So each order walks a small state machine that accepts
//! both arrival orders:
//!
//! ```text
//!   OrderCreated ──▶ Reserved ──PaymentSucceeded──▶ Deducted
//!                             └─PaymentFailed─────▶ Released
//!   PaymentX first ──▶ Awaiting(X) ──OrderCreated──▶ reserve, then settle as X at once
//! ```
//!
//! Units are conserved per SKU: `available + reserved + sold` is the initial stock at all
//! times; the summary checks it.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Mutex;

use crate::events::{Envelope, Event, EventType, OrderCreated};
use crate::orders::{CATALOG, MAX_QUANTITY};
use crate::services::{lock, Handled, Service};

/// Where one order's stock stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Stage {
    /// Units set aside for the order until its payment settles.
    Reserved { sku: String, quantity: u32 },
    /// Paid: the units are sold.
    Deducted,
    /// Declined: the units went back on the shelf.
    Released,
    /// The payment outcome (`paid`) arrived before the order itself.
    Awaiting { paid: bool },
}

/// Units of one SKU.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stock {
    pub available: u64,
    pub reserved: u64,
    pub sold: u64,
}

/// Orders that reached each step (each counted once, duplicates excluded).
#[derive(Clone, Copy, Debug, Default)]
pub struct InventoryCounts {
    pub reserved: u64,
    pub deducted: u64,
    pub released: u64,
    /// Payment outcomes that arrived before their order (normal, shown for curiosity).
    pub early_payments: u64,
}

#[derive(Debug)]
pub struct Inventory {
    initial_units: u64,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    seen: HashSet<(u64, EventType)>,
    orders: HashMap<u64, Stage>,
    stock: BTreeMap<String, Stock>,
    counts: InventoryCounts,
}

impl Inventory {
    /// Every SKU of the catalog stocked for `orders` orders of the largest quantity, so the
    /// demo never runs out: its story is the event flow, not back-orders.
    pub fn for_orders(orders: u64) -> Inventory {
        let initial_units = orders.max(1) * u64::from(MAX_QUANTITY);
        let stock = CATALOG
            .iter()
            .map(|(sku, _)| {
                let units = Stock {
                    available: initial_units,
                    ..Stock::default()
                };
                (sku.to_string(), units)
            })
            .collect();
        Inventory {
            initial_units,
            state: Mutex::new(State {
                stock,
                ..State::default()
            }),
        }
    }

    /// Units each SKU started with.
    pub fn initial_units(&self) -> u64 {
        self.initial_units
    }

    pub fn counts(&self) -> InventoryCounts {
        lock(&self.state).counts
    }

    pub fn stage(&self, order_id: u64) -> Option<Stage> {
        lock(&self.state).orders.get(&order_id).cloned()
    }

    /// The stock of every SKU.
    pub fn stock(&self) -> BTreeMap<String, Stock> {
        lock(&self.state).stock.clone()
    }
}

impl Service for Inventory {
    fn name(&self) -> &'static str {
        "inventory"
    }

    fn consumes(&self) -> &'static [EventType] {
        &[
            EventType::OrderCreated,
            EventType::PaymentSucceeded,
            EventType::PaymentFailed,
        ]
    }

    fn handle(&self, envelope: &Envelope) -> Handled {
        let event = &envelope.event;
        if !self.consumes().contains(&event.event_type()) {
            return Handled::Ignored;
        }
        let mut state = lock(&self.state);
        if !state.seen.insert((event.order_id(), event.event_type())) {
            return Handled::Duplicate;
        }
        let result = match event {
            Event::OrderCreated(order) => state.reserve(order),
            Event::PaymentSucceeded(p) => state.settle(p.order_id, true),
            Event::PaymentFailed(p) => state.settle(p.order_id, false),
            Event::OrderShipped(_) => Ok(()),
        };
        match result {
            Ok(()) => Handled::Done(Vec::new()),
            Err(why) => Handled::Rejected(why),
        }
    }
}

impl State {
    fn reserve(&mut self, order: &OrderCreated) -> Result<(), String> {
        let id = order.order_id;
        let awaiting = match self.orders.get(&id) {
            None => None,
            Some(Stage::Awaiting { paid }) => Some(*paid),
            Some(stage) => return Err(format!("order {id} created again while {stage:?}")),
        };
        let stock = self
            .stock
            .get_mut(&order.sku)
            .ok_or_else(|| format!("order {id}: unknown SKU {}", order.sku))?;
        let quantity = u64::from(order.quantity);
        if stock.available < quantity {
            return Err(format!("order {id}: {} is out of stock", order.sku));
        }
        stock.available -= quantity;
        stock.reserved += quantity;
        self.counts.reserved += 1;
        self.orders.insert(
            id,
            Stage::Reserved {
                sku: order.sku.clone(),
                quantity: order.quantity,
            },
        );
        match awaiting {
            Some(paid) => self.settle(id, paid),
            None => Ok(()),
        }
    }

    fn settle(&mut self, id: u64, paid: bool) -> Result<(), String> {
        let (sku, quantity) = match self.orders.get(&id) {
            Some(Stage::Reserved { sku, quantity }) => (sku.clone(), u64::from(*quantity)),
            None => {
                self.orders.insert(id, Stage::Awaiting { paid });
                self.counts.early_payments += 1;
                return Ok(());
            }
            Some(stage) => return Err(format!("order {id}: payment outcome while {stage:?}")),
        };
        let stock = self
            .stock
            .get_mut(&sku)
            .ok_or_else(|| format!("order {id}: unknown SKU {sku}"))?;
        stock.reserved -= quantity;
        let stage = if paid {
            stock.sold += quantity;
            self.counts.deducted += 1;
            Stage::Deducted
        } else {
            stock.available += quantity;
            self.counts.released += 1;
            Stage::Released
        };
        self.orders.insert(id, stage);
        Ok(())
    }
}
