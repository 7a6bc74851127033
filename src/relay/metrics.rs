//! Prometheus metrics, kept in process and rendered as text exposition format 0.0.4. A handful
//! of counters and one histogram do not justify a metrics framework.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// Dispatch latency buckets, seconds.
const BUCKETS: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

#[derive(Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(String, u16), u64>>,
    sends_accepted: AtomicU64,
    deliveries: Mutex<BTreeMap<(&'static str, &'static str), u64>>,
    latency: Mutex<Histogram>,
}

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

impl Metrics {
    pub fn request(&self, route: &str, status: u16) {
        *self
            .requests
            .lock()
            .expect("metrics poisoned")
            .entry((route.to_owned(), status))
            .or_default() += 1;
    }

    pub fn send_accepted(&self) {
        self.sends_accepted.fetch_add(1, Ordering::Relaxed);
    }

    /// One delivery attempt's outcome (`delivered`, `retry`, `failed`, `expired`, `unreachable`)
    /// on a channel (`fcm`, `webpush`).
    pub fn delivery(&self, channel: &'static str, outcome: &'static str) {
        *self
            .deliveries
            .lock()
            .expect("metrics poisoned")
            .entry((channel, outcome))
            .or_default() += 1;
    }

    /// Seconds from acceptance to the delivery attempt's end.
    pub fn dispatch_latency(&self, seconds: f64) {
        let mut h = self.latency.lock().expect("metrics poisoned");
        for (i, le) in BUCKETS.iter().enumerate() {
            if seconds <= *le {
                h.counts[i] += 1;
            }
        }
        h.count += 1;
        h.sum += seconds;
    }

    pub fn render(&self, queue_depth: i64) -> String {
        let mut out = String::new();
        out.push_str("# HELP reflecto_http_requests_total HTTP requests by route and status.\n# TYPE reflecto_http_requests_total counter\n");
        for ((route, status), n) in self.requests.lock().expect("metrics poisoned").iter() {
            let _ = writeln!(
                out,
                "reflecto_http_requests_total{{route=\"{route}\",status=\"{status}\"}} {n}"
            );
        }
        let _ = writeln!(
            out,
            "# HELP reflecto_sends_accepted_total Sends accepted and committed.\n# TYPE reflecto_sends_accepted_total counter\nreflecto_sends_accepted_total {}",
            self.sends_accepted.load(Ordering::Relaxed)
        );
        out.push_str("# HELP reflecto_deliveries_total Delivery attempts by channel and outcome.\n# TYPE reflecto_deliveries_total counter\n");
        for ((channel, outcome), n) in self.deliveries.lock().expect("metrics poisoned").iter() {
            let _ = writeln!(
                out,
                "reflecto_deliveries_total{{channel=\"{channel}\",outcome=\"{outcome}\"}} {n}"
            );
        }
        let _ = writeln!(
            out,
            "# HELP reflecto_queue_depth Delivery jobs not yet finished.\n# TYPE reflecto_queue_depth gauge\nreflecto_queue_depth {queue_depth}"
        );
        out.push_str("# HELP reflecto_dispatch_latency_seconds From acceptance to delivery.\n# TYPE reflecto_dispatch_latency_seconds histogram\n");
        let h = self.latency.lock().expect("metrics poisoned");
        for (le, n) in BUCKETS.iter().zip(h.counts) {
            let _ = writeln!(
                out,
                "reflecto_dispatch_latency_seconds_bucket{{le=\"{le}\"}} {n}"
            );
        }
        let _ = writeln!(
            out,
            "reflecto_dispatch_latency_seconds_bucket{{le=\"+Inf\"}} {}",
            h.count
        );
        let _ = writeln!(out, "reflecto_dispatch_latency_seconds_sum {}", h.sum);
        let _ = writeln!(out, "reflecto_dispatch_latency_seconds_count {}", h.count);
        out
    }
}
