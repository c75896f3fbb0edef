//! What the two librdkafka perf tools share with kafka-client's `examples/producer_perf.rs`
//! and `examples/consumer_perf.rs`: the flag parsing helpers, the producer statistics and
//! summary line (Java `ProducerPerformance`'s shape), the payloads and the throttler, and the
//! consumer's timestamps (Java `ConsumerPerformance`'s shape).
//!
//! The statistics and the payloads are the same code as in `examples/producer_perf.rs` (copied,
//! not shared, so that this crate stays outside kafka-client's build): same sampling, same
//! rounding, same record values. A difference in the numbers is then a difference between the
//! clients, not between the tools.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Java's `Stats` keeps at most about this many latencies for the percentiles.
const MAX_SAMPLES: u64 = 500_000;

/// The payload buffer is this much longer than a record, so record windows spread out.
const PAYLOAD_SPREAD: usize = 1 << 20;

/// Failed deliveries printed as they happen; later ones are only counted.
const ERRORS_SHOWN: u64 = 5;

/// `KEY=VALUE`, split at the first `=`, both sides trimmed.
pub fn key_value(flag: &str, prop: &str) -> Result<(String, String), String> {
    match prop.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_owned(), v.trim().to_owned())),
        _ => Err(format!("{flag}: {prop:?} is not KEY=VALUE")),
    }
}

pub fn number<T: std::str::FromStr>(flag: &str, value: &str) -> Result<T, String> {
    value
        .trim()
        .parse()
        .map_err(|_| format!("{flag}: {value:?} is not a valid number"))
}

/// Latency and throughput accounting, shaped after Java's `ProducerPerformance.Stats`.
pub struct Stats {
    start: Instant,
    /// Every `sampling`-th acknowledgement's latency is kept for the percentiles.
    sampling: u64,
    samples: Vec<u32>,
    pub count: u64,
    bytes: u64,
    total_us: u64,
    max_us: u64,
    window: Window,
    pub failed: u64,
    pub first_error: Option<String>,
}

struct Window {
    start: Instant,
    count: u64,
    bytes: u64,
    total_us: u64,
    max_us: u64,
}

impl Window {
    fn new(start: Instant) -> Self {
        Window {
            start,
            count: 0,
            bytes: 0,
            total_us: 0,
            max_us: 0,
        }
    }
}

impl Stats {
    pub fn new(num_records: u64, start: Instant) -> Self {
        let sampling = (num_records / num_records.clamp(1, MAX_SAMPLES)).max(1);
        let capacity = usize::try_from(num_records / sampling + 1).unwrap_or(0);
        Stats {
            start,
            sampling,
            samples: Vec::with_capacity(capacity),
            count: 0,
            bytes: 0,
            total_us: 0,
            max_us: 0,
            window: Window::new(start),
            failed: 0,
            first_error: None,
        }
    }

    /// Records one delivery report; `Err` carries the error's text.
    pub fn complete(&mut self, result: Result<(), String>, latency: Duration, bytes: usize) {
        if let Err(e) = result {
            self.failed += 1;
            if self.failed <= ERRORS_SHOWN {
                eprintln!("delivery failed: {e}");
                if self.failed == ERRORS_SHOWN {
                    eprintln!("(further delivery failures are only counted)");
                }
            }
            self.first_error.get_or_insert(e);
            return;
        }
        let us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        if self.count.is_multiple_of(self.sampling) {
            self.samples.push(u32::try_from(us).unwrap_or(u32::MAX));
        }
        self.count += 1;
        self.bytes += bytes as u64;
        self.total_us += us;
        self.max_us = self.max_us.max(us);
        let w = &mut self.window;
        w.count += 1;
        w.bytes += bytes as u64;
        w.total_us += us;
        w.max_us = w.max_us.max(us);
    }

    /// When the current window began.
    pub fn window_start(&self) -> Instant {
        self.window.start
    }

    /// The window line (Java's `printWindow`), starting a new window.
    pub fn take_window(&mut self, now: Instant) -> String {
        let w = std::mem::replace(&mut self.window, Window::new(now));
        let (rate, mb) = rates(w.count, w.bytes, now - w.start);
        format!(
            "{} records sent, {rate:.1} records/sec ({mb:.2} MB/sec), {:.1} ms avg latency, \
             {:.1} ms max latency.",
            w.count,
            avg_ms(w.total_us, w.count),
            w.max_us as f64 / 1000.0,
        )
    }

    /// The summary line (Java's `printTotal`).
    pub fn summary(&self, now: Instant) -> String {
        let (rate, mb) = rates(self.count, self.bytes, now - self.start);
        let mut sorted = self.samples.clone();
        sorted.sort_unstable();
        let p = |q: f64| {
            let index = (q * sorted.len() as f64) as usize;
            sorted
                .get(index.min(sorted.len().saturating_sub(1)))
                .map_or(0, |&us| (u64::from(us) + 500) / 1000)
        };
        format!(
            "{} records sent, {rate:.6} records/sec ({mb:.2} MB/sec), {:.2} ms avg latency, \
             {:.2} ms max latency, {} ms 50th, {} ms 95th, {} ms 99th, {} ms 99.9th.",
            self.count,
            avg_ms(self.total_us, self.count),
            self.max_us as f64 / 1000.0,
            p(0.5),
            p(0.95),
            p(0.99),
            p(0.999),
        )
    }
}

/// Records/sec and MiB/sec.
fn rates(count: u64, bytes: u64, elapsed: Duration) -> (f64, f64) {
    let secs = elapsed.as_secs_f64().max(1e-9);
    (count as f64 / secs, bytes as f64 / secs / (1024.0 * 1024.0))
}

fn avg_ms(total_us: u64, count: u64) -> f64 {
    if count == 0 {
        0.0
    } else {
        total_us as f64 / count as f64 / 1000.0
    }
}

/// Java's `ThroughputThrottler`: once the average rate since `start` is above the target,
/// each record adds `1 / target` seconds of sleep debt, paid in sleeps of at least 2 ms.
pub struct Throttler {
    start: Instant,
    target: f64,
    per_record: Duration,
    deficit: Duration,
}

impl Throttler {
    const MIN_SLEEP: Duration = Duration::from_millis(2);

    pub fn new(target: f64, start: Instant) -> Self {
        Throttler {
            start,
            target,
            per_record: Duration::from_secs_f64(1.0 / target),
            deficit: Duration::ZERO,
        }
    }

    pub fn should_throttle(&self, sent_so_far: u64, now: Instant) -> bool {
        let elapsed = now.duration_since(self.start).as_secs_f64();
        elapsed > 0.0 && sent_so_far as f64 / elapsed > self.target
    }

    /// Adds one record's debt; returns how long to pause now, if the debt is big enough.
    pub fn throttle(&mut self) -> Option<Duration> {
        self.deficit += self.per_record;
        (self.deficit >= Self::MIN_SLEEP).then(|| std::mem::take(&mut self.deficit))
    }
}

/// Record values: windows into one buffer of random capital letters, generated up front
/// (the same generator and seed as kafka-client's `producer_perf`, so the same bytes).
pub struct Payloads {
    buffer: Vec<u8>,
    size: usize,
    rng: u64,
}

impl Payloads {
    pub fn new(size: usize) -> Self {
        let mut rng = 0;
        let buffer: Vec<u8> = (0..size + PAYLOAD_SPREAD)
            .map(|_| b'A' + (splitmix64(&mut rng) % 26) as u8)
            .collect();
        Payloads { buffer, size, rng }
    }

    pub fn next_value(&mut self) -> &[u8] {
        let offset = (splitmix64(&mut self.rng) % (PAYLOAD_SPREAD as u64 + 1)) as usize;
        &self.buffer[offset..offset + self.size]
    }
}

fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Mebibytes, as Java's perf tools count "MB".
pub fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

/// `yyyy-MM-dd HH:mm:ss:SSS` in UTC (Java's default pattern; Java prints local time).
pub fn timestamp(t: SystemTime) -> String {
    let since = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let (days, rest) = (since.as_secs() / 86_400, since.as_secs() % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}:{:03}",
        rest / 3_600,
        rest % 3_600 / 60,
        rest % 60,
        since.subsec_millis()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_matches_kafka_clients_perf_tool() {
        let start = Instant::now();
        let mut stats = Stats::new(1_000_000, start);
        for ms in 1..=1000u64 {
            stats.complete(Ok(()), Duration::from_millis(ms), 100);
        }
        stats.complete(Err("x".into()), Duration::ZERO, 100);
        assert_eq!((stats.count, stats.failed), (1000, 1));
        assert_eq!(
            stats.summary(start + Duration::from_secs(2)),
            "1000 records sent, 500.000000 records/sec (0.05 MB/sec), 500.50 ms avg latency, \
             1000.00 ms max latency, 501 ms 50th, 951 ms 95th, 991 ms 99th, 999 ms 99.9th."
        );
    }

    #[test]
    fn payloads_and_timestamps() {
        let mut p = Payloads::new(100);
        let a = p.next_value().to_vec();
        assert_eq!(a.len(), 100);
        assert_ne!(a, p.next_value());
        assert!(a.iter().all(u8::is_ascii_uppercase));
        assert_eq!(
            timestamp(UNIX_EPOCH + Duration::from_millis(1_795_000_000_123)),
            "2026-11-18 11:06:40:123"
        );
    }

    #[test]
    fn throttler_pays_debt_in_2ms_sleeps() {
        let start = Instant::now();
        let mut t = Throttler::new(1000.0, start);
        assert!(t.should_throttle(1001, start + Duration::from_secs(1)));
        assert_eq!(t.throttle(), None);
        assert_eq!(t.throttle(), Some(Duration::from_millis(2)));
    }
}
