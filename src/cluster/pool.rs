//! Connections to the cluster's brokers, one per broker and traffic class.
//!
//! Each slot keeps at most one live [`BrokerConnection`]. A closed one is replaced on the
//! next use, after the reconnect backoff (`reconnect.backoff.ms` doubling to
//! `reconnect.backoff.max.ms`) when the previous attempt failed. Separate classes keep a
//! long-polling fetch from delaying a produce or a heartbeat on the same broker.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::time::Instant;

use crate::config::Backoff;
use crate::connection::{BrokerConnection, ConnectionOptions};
use crate::error::Result;

/// What a connection carries; each class gets its own socket per broker.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[allow(dead_code)] // Fetch and Group are for the consumer, which is being built.
pub(crate) enum ConnClass {
    /// Metadata, admin, offsets look-ups.
    Control,
    /// Produce requests.
    Produce,
    /// Fetch requests (long polls).
    Fetch,
    /// Group coordination: join, sync, heartbeat, commits.
    Group,
}

#[derive(Default)]
struct SlotState {
    addr: String,
    conn: Option<Arc<BrokerConnection>>,
    failures: u32,
    retry_at: Option<Instant>,
    /// Connection attempts made so far, and how the last one failed.
    attempts: u64,
    last_error: Option<crate::error::Error>,
}

#[derive(Default)]
struct Slot {
    state: Mutex<SlotState>,
    /// Serializes connection attempts so concurrent callers share one.
    connecting: tokio::sync::Mutex<()>,
}

impl Slot {
    fn lock(&self) -> std::sync::MutexGuard<'_, SlotState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The live connection, if the slot has one to `addr`.
    fn live(&self, addr: &str) -> Option<Arc<BrokerConnection>> {
        let state = self.lock();
        state
            .conn
            .as_ref()
            .filter(|c| !c.is_closed() && state.addr == addr)
            .cloned()
    }
}

pub(crate) struct Pool {
    opts: ConnectionOptions,
    backoff: Backoff,
    slots: Mutex<HashMap<(i32, ConnClass), Arc<Slot>>>,
}

impl Pool {
    pub(crate) fn new(opts: ConnectionOptions, backoff: Backoff) -> Self {
        Pool {
            opts,
            backoff,
            slots: Mutex::new(HashMap::new()),
        }
    }

    fn slot(&self, id: i32, class: ConnClass) -> Arc<Slot> {
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        slots.entry((id, class)).or_default().clone()
    }

    /// Ids of brokers with a live connection of `class`.
    pub(crate) fn connected(&self, class: ConnClass) -> Vec<i32> {
        let slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        slots
            .iter()
            .filter(|((_, c), slot)| {
                *c == class && slot.lock().conn.as_ref().is_some_and(|c| !c.is_closed())
            })
            .map(|((id, _), _)| *id)
            .collect()
    }

    /// A live connection to broker `id` at `addr`, connecting (after the backoff, when the
    /// last attempt failed) if needed.
    pub(crate) async fn get(
        &self,
        id: i32,
        addr: &str,
        class: ConnClass,
    ) -> Result<Arc<BrokerConnection>> {
        let slot = self.slot(id, class);
        if let Some(conn) = slot.live(addr) {
            return Ok(conn);
        }
        let seen = slot.lock().attempts;
        let _connecting = slot.connecting.lock().await;
        // Someone else may have connected while we waited, or failed to: then share that
        // outcome instead of dialling again, so queued callers do not wait for one
        // connection timeout each.
        if let Some(conn) = slot.live(addr) {
            return Ok(conn);
        }
        {
            let state = slot.lock();
            if state.attempts != seen && state.addr == addr {
                if let Some(e) = &state.last_error {
                    return Err(e.clone());
                }
            }
        }
        let retry_at = {
            let mut state = slot.lock();
            if state.addr != addr {
                // The broker moved: forget the old address's failures.
                if let Some(old) = state.conn.take() {
                    old.close();
                }
                state.addr = addr.to_owned();
                state.failures = 0;
                state.retry_at = None;
            }
            state.retry_at
        };
        if let Some(at) = retry_at {
            tokio::time::sleep_until(at).await;
        }
        let label = if id >= 0 {
            format!("{id} at {addr}")
        } else {
            addr.to_owned()
        };
        match BrokerConnection::connect(addr, &label, &self.opts).await {
            Ok(conn) => {
                let conn = Arc::new(conn);
                let mut state = slot.lock();
                state.attempts += 1;
                state.last_error = None;
                state.conn = Some(conn.clone());
                state.failures = 0;
                state.retry_at = None;
                tracing::debug!(broker = %label, ?class, "connected");
                Ok(conn)
            }
            Err(e) => {
                let mut state = slot.lock();
                state.attempts += 1;
                state.last_error = Some(e.clone());
                state.failures += 1;
                state.retry_at = Some(Instant::now() + self.backoff.delay(state.failures));
                tracing::debug!(broker = %label, error = %e, failures = state.failures, "connect failed");
                Err(e)
            }
        }
    }

    /// Closes every connection; the pool stays usable.
    pub(crate) fn close_all(&self) {
        let slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        for slot in slots.values() {
            if let Some(conn) = slot.lock().conn.take() {
                conn.close();
            }
        }
    }
}
