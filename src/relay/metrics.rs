//! Prometheus metrics, kept in process and rendered as text exposition format 0.0.4. A handful
//! of counters and one histogram do not justify a metrics framework.

use std::collections::BTreeMap;
use std::fmt::{Display, Write};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// Dispatch latency buckets, seconds.
const BUCKETS: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

pub struct Metrics {
    requests: LabelledCounter<String, u16>,
    sends_accepted: AtomicU64,
    deliveries: LabelledCounter<&'static str, &'static str>,
    latency: Mutex<Histogram>,
}

impl Default for Metrics {
    fn default() -> Metrics {
        Metrics {
            requests: LabelledCounter::new(
                "reflecto_http_requests_total",
                "HTTP requests by route and status.",
                ["route", "status"],
            ),
            sends_accepted: AtomicU64::default(),
            deliveries: LabelledCounter::new(
                "reflecto_deliveries_total",
                "Delivery attempts by channel and outcome.",
                ["channel", "outcome"],
            ),
            latency: Mutex::default(),
        }
    }
}

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

impl Metrics {
    pub fn request(&self, route: &str, status: u16) {
        self.requests.add((route.to_owned(), status));
    }

    pub fn send_accepted(&self) {
        self.sends_accepted.fetch_add(1, Ordering::Relaxed);
    }

    /// One delivery attempt's outcome (`delivered`, `retry`, `failed`, `expired`, `unreachable`)
    /// on a channel (`fcm`, `webpush`).
    pub fn delivery(&self, channel: &'static str, outcome: &'static str) {
        self.deliveries.add((channel, outcome));
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
        self.requests.render(&mut out);
        let name = "reflecto_sends_accepted_total";
        help(&mut out, name, "Sends accepted and committed.", "counter");
        let accepted = self.sends_accepted.load(Ordering::Relaxed);
        let _ = writeln!(out, "{name} {accepted}");
        self.deliveries.render(&mut out);
        let name = "reflecto_queue_depth";
        help(&mut out, name, "Delivery jobs not yet finished.", "gauge");
        let _ = writeln!(out, "{name} {queue_depth}");
        let name = "reflecto_dispatch_latency_seconds";
        help(&mut out, name, "From acceptance to delivery.", "histogram");
        let h = self.latency.lock().expect("metrics poisoned");
        for (le, n) in BUCKETS.iter().zip(h.counts) {
            let _ = writeln!(out, "{name}_bucket{{le=\"{le}\"}} {n}");
        }
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {}", h.count);
        let _ = writeln!(out, "{name}_sum {}", h.sum);
        let _ = writeln!(out, "{name}_count {}", h.count);
        out
    }
}

/// A metric's `# HELP` and `# TYPE` lines.
fn help(out: &mut String, name: &str, text: &str, kind: &str) {
    let _ = writeln!(out, "# HELP {name} {text}\n# TYPE {name} {kind}");
}

/// A counter with two labels: one sample a pair of label values, in their order.
struct LabelledCounter<A, B> {
    name: &'static str,
    help: &'static str,
    labels: [&'static str; 2],
    samples: Mutex<BTreeMap<(A, B), u64>>,
}

impl<A: Ord + Display, B: Ord + Display> LabelledCounter<A, B> {
    fn new(name: &'static str, help: &'static str, labels: [&'static str; 2]) -> Self {
        LabelledCounter {
            name,
            help,
            labels,
            samples: Mutex::default(),
        }
    }

    fn add(&self, labels: (A, B)) {
        *self
            .samples
            .lock()
            .expect("metrics poisoned")
            .entry(labels)
            .or_default() += 1;
    }

    fn render(&self, out: &mut String) {
        let (name, [first, second]) = (self.name, self.labels);
        help(out, name, self.help, "counter");
        for ((a, b), n) in self.samples.lock().expect("metrics poisoned").iter() {
            let _ = writeln!(out, "{name}{{{first}=\"{a}\",{second}=\"{b}\"}} {n}");
        }
    }
}
