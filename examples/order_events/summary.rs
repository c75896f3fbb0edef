//! The end of the demo: a summary a person can check, the consistency checks, and one
//! machine-readable `SUMMARY key=value ...` line.

use std::time::Duration;

use crate::events::EventType;
use crate::inventory::Stage;
use crate::progress::{get, Sources};
use crate::services::Payment;

/// Prints the summary and the checks; returns whether every check passed.
pub fn report(sources: &Sources<'_>, orders: u64, elapsed: Duration) -> bool {
    let n = sources.snapshot();
    let secs = elapsed.as_secs_f64().max(0.001);
    let per_second = (n.consumed as f64 / secs).round() as u64;
    let duplicates: Vec<String> = sources
        .stats
        .iter()
        .map(|(name, st)| format!("{name} {}", get(&st.duplicates)))
        .collect();
    let payment_duplicates = sources
        .stats
        .iter()
        .find(|(name, _)| *name == "payment")
        .map_or(0, |(_, st)| get(&st.duplicates));
    let total_duplicates: u64 = sources
        .stats
        .iter()
        .map(|(_, st)| get(&st.duplicates))
        .sum();

    println!();
    println!("Summary ({orders} orders in {secs:.2} s)");
    println!(
        "  orders created      {:>8}   (+{} sent twice on purpose)",
        n.created, n.resent
    );
    println!("  payments succeeded  {:>8}", n.paid);
    println!(
        "  payments failed     {:>8}   (order ids divisible by 7)",
        n.failed
    );
    println!("  stock reserved      {:>8}", n.reserved);
    println!("  stock deducted      {:>8}", n.deducted);
    println!("  stock released      {:>8}", n.released);
    println!("  orders shipped      {:>8}", n.shipped);
    println!("  notifications sent  {:>8}", n.notified);
    let per_member: Vec<String> = sources
        .stats
        .iter()
        .map(|(name, st)| {
            let counts: Vec<String> = st.consumed.iter().map(|c| get(c).to_string()).collect();
            format!("{name} {}", counts.join("+"))
        })
        .collect();
    println!("  duplicates ignored: {}", duplicates.join(", "));
    println!("  records read per member: {}", per_member.join(", "));
    println!(
        "  payments seen before their order by inventory: {}; other runs' records skipped: {}; \
         undecodable: {}",
        n.early_payments, n.other_runs, n.undecodable
    );
    println!(
        "  records: {} published, {} consumed, {per_second} consumed per second",
        n.published, n.consumed
    );

    let (strays, first_stray) = stray_orders(sources, orders);
    let initial = sources.services.inventory.initial_units();
    let stock = sources.services.inventory.stock();
    let conserved = stock
        .values()
        .all(|s| s.reserved == 0 && s.available + s.sold == initial);
    let sold: u64 = stock.values().map(|s| s.sold).sum();
    let checks = [
        (
            n.created == orders,
            format!("created == orders asked for: {} == {orders}", n.created),
        ),
        (
            n.paid + n.failed == n.created,
            format!(
                "paid + failed == created: {} + {} == {}",
                n.paid, n.failed, n.created
            ),
        ),
        (
            n.failed == orders / 7,
            format!(
                "failed == orders with an id divisible by 7: {} == {}",
                n.failed,
                orders / 7
            ),
        ),
        (
            n.reserved == n.created,
            format!("reserved == created: {} == {}", n.reserved, n.created),
        ),
        (
            n.deducted == n.paid,
            format!("deducted == paid: {} == {}", n.deducted, n.paid),
        ),
        (
            n.released == n.failed,
            format!("released == failed: {} == {}", n.released, n.failed),
        ),
        (
            n.shipped == n.paid,
            format!("shipped == paid: {} == {}", n.shipped, n.paid),
        ),
        (
            n.notified == n.paid + n.failed + n.shipped,
            format!(
                "notified == paid + failed + shipped: {} == {} + {} + {}",
                n.notified, n.paid, n.failed, n.shipped
            ),
        ),
        (
            strays == 0,
            format!(
                "every order followed its path: {strays} strayed{}",
                first_stray
                    .map(|s| format!(", first {s}"))
                    .unwrap_or_default()
            ),
        ),
        (
            conserved,
            format!("stock conserved, none left reserved: {sold} units sold of {initial} per SKU"),
        ),
        (
            payment_duplicates >= n.resent,
            format!(
                "every order sent twice was charged once: {payment_duplicates} duplicates ignored \
                 >= {} resent",
                n.resent
            ),
        ),
        (
            n.rejected == 0,
            format!("no event rejected: {}", n.rejected),
        ),
    ];
    println!();
    println!("Consistency checks:");
    for (ok, what) in &checks {
        println!("  {}  {what}", if *ok { "ok  " } else { "FAIL" });
    }
    let passed = checks.iter().all(|(ok, _)| *ok);
    println!(
        "SUMMARY orders={orders} created={} paid={} failed={} reserved={} deducted={} \
         released={} shipped={} notified={} resent={} duplicates={total_duplicates} \
         other_runs={} undecodable={} published={} consumed={} elapsed_ms={} \
         records_per_sec={per_second} checks={}",
        n.created,
        n.paid,
        n.failed,
        n.reserved,
        n.deducted,
        n.released,
        n.shipped,
        n.notified,
        n.resent,
        n.other_runs,
        n.undecodable,
        n.published,
        n.consumed,
        elapsed.as_millis(),
        if passed { "passed" } else { "failed" },
    );
    passed
}

/// Checks each order's path, not only the totals: paid orders (id not divisible by 7)
/// deducted, shipped and notified twice; declined ones released and notified once.
/// Returns how many orders strayed, and the first one with what went wrong.
fn stray_orders(sources: &Sources<'_>, orders: u64) -> (u64, Option<String>) {
    let s = sources.services;
    let mut strays = 0;
    let mut first = None;
    for id in 1..=orders {
        let paid = !Payment::declines(id);
        let outcome = if paid {
            EventType::PaymentSucceeded
        } else {
            EventType::PaymentFailed
        };
        let settled = if paid {
            Stage::Deducted
        } else {
            Stage::Released
        };
        let stage = s.inventory.stage(id);
        let wrong = [
            (s.payment.outcome(id) != Some(paid), "payment outcome"),
            (stage.as_ref() != Some(&settled), "stock not settled"),
            (s.shipping.has_shipped(id) != paid, "shipping"),
            (!s.notification.has_sent(id, outcome), "payment notice"),
            (
                s.notification.has_sent(id, EventType::OrderShipped) != paid,
                "shipping notice",
            ),
        ];
        if let Some((_, what)) = wrong.iter().find(|(bad, _)| *bad) {
            strays += 1;
            first.get_or_insert_with(|| format!("order {id}: {what} (stock {stage:?})"));
        }
    }
    (strays, first)
}
