//! Progress while the demo runs: the counts, read at one moment from every service, and the
//! line printed every second until every order has gone through.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::task::JoinSet;

use crate::orders::OrderCounts;
use crate::runner::ServiceStats;
use crate::services::Services;
use crate::BoxError;

/// Everything the demo counts, read at one moment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub created: u64,
    pub resent: u64,
    pub paid: u64,
    pub failed: u64,
    pub reserved: u64,
    pub deducted: u64,
    pub released: u64,
    pub early_payments: u64,
    pub shipped: u64,
    pub notified: u64,
    pub consumed: u64,
    pub published: u64,
    pub other_runs: u64,
    pub undecodable: u64,
    pub rejected: u64,
}

/// Where the counts come from.
pub struct Sources<'a> {
    pub orders: &'a OrderCounts,
    pub services: &'a Services,
    /// Each service's name and stats, in the order of `Services::all`.
    pub stats: &'a [(&'static str, Arc<ServiceStats>)],
}

pub fn get(counter: &AtomicU64) -> u64 {
    counter.load(Ordering::Relaxed)
}

impl Sources<'_> {
    pub fn snapshot(&self) -> Snapshot {
        let s = self.services;
        let (paid, failed) = s.payment.counts();
        let inventory = s.inventory.counts();
        let sum = |f: fn(&ServiceStats) -> &AtomicU64| -> u64 {
            self.stats.iter().map(|(_, st)| get(f(st))).sum()
        };
        let created = get(&self.orders.created);
        let resent = get(&self.orders.resent);
        Snapshot {
            created,
            resent,
            paid,
            failed,
            reserved: inventory.reserved,
            deducted: inventory.deducted,
            released: inventory.released,
            early_payments: inventory.early_payments,
            shipped: s.shipping.count(),
            notified: s.notification.count(),
            consumed: self.stats.iter().map(|(_, st)| st.consumed()).sum(),
            published: created + resent + sum(|st| &st.published),
            other_runs: sum(|st| &st.other_runs),
            undecodable: sum(|st| &st.undecodable),
            rejected: sum(|st| &st.rejected),
        }
    }
}

impl Snapshot {
    /// Whether every order reached the end of its flow: paid or declined, stock settled,
    /// paid ones shipped, and every notice sent.
    pub fn complete(&self, orders: u64) -> bool {
        let paid = orders - orders / 7;
        self.created == orders
            && self.paid + self.failed == orders
            && self.deducted + self.released == orders
            && self.shipped == paid
            && self.notified == orders + paid
    }

    /// The line printed every second.
    pub fn progress_line(&self, elapsed: Duration, orders: u64, per_second: u64) -> String {
        format!(
            "[{:>6.1}s] created {}/{orders} | paid {} failed {} | reserved {} deducted {} \
             released {} | shipped {} | notified {} | {per_second} records read/s",
            elapsed.as_secs_f64(),
            self.created,
            self.paid,
            self.failed,
            self.reserved,
            self.deducted,
            self.released,
            self.shipped,
            self.notified,
        )
    }
}

/// Prints a progress line every second until every order went through, a task fails,
/// nothing moved for `--timeout`, or Ctrl-C.
pub async fn watch(
    sources: &Sources<'_>,
    orders: u64,
    timeout: Duration,
    started: Instant,
    tasks: &mut JoinSet<Result<(), BoxError>>,
) -> Result<(), BoxError> {
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    let (mut last_print, mut last_consumed) = (started, 0);
    let (mut last_change, mut last_seen) = (started, sources.snapshot());
    let mut hinted = false;
    // Listening from here on, so that a Ctrl-C between two turns of the loop is not missed.
    let interrupted = tokio::signal::ctrl_c();
    tokio::pin!(interrupted);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            Some(joined) = tasks.join_next() => match joined {
                Ok(Ok(())) => continue, // the order service is done
                Ok(Err(e)) => return Err(e),
                Err(e) => return Err(e.into()),
            },
            _ = &mut interrupted => return Err("interrupted".into()),
        }
        let now = Instant::now();
        let snapshot = sources.snapshot();
        let complete = snapshot.complete(orders);
        // The last line too, so that a run shorter than a second shows one.
        if complete || now.duration_since(last_print) >= Duration::from_secs(1) {
            let rate = (snapshot.consumed - last_consumed) as f64
                / now.duration_since(last_print).as_secs_f64().max(0.001);
            let line = snapshot.progress_line(now - started, orders, rate.round() as u64);
            println!("{line}");
            (last_print, last_consumed) = (now, snapshot.consumed);
            if snapshot.consumed == 0 && now - started >= Duration::from_secs(3) && !hinted {
                println!(
                    "          (no record read yet: the groups are still forming; members of an \
                     earlier run that was killed hold their partitions until their session \
                     times out, within 10 s)"
                );
                hinted = true;
            }
        }
        if complete {
            return Ok(());
        }
        if snapshot != last_seen {
            (last_change, last_seen) = (now, snapshot);
        } else if now.duration_since(last_change) >= timeout {
            return Err(format!("nothing moved for {timeout:?}; giving up").into());
        }
    }
}
