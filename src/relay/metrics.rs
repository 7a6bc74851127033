//! Prometheus metrics, kept in process and rendered as text exposition format 0.0.4. A handful
//! of counters and one histogram do not justify a metrics framework.

use crate::store::CheckpointCounts;
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

    /// The text of `/metrics`; `checkpoints` only on the embedded store.
    pub fn render(&self, queue_depth: i64, checkpoints: Option<CheckpointCounts>) -> String {
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
        drop(h);
        if let Some(counts) = checkpoints {
            render_checkpoints(&mut out, counts);
        }
        out
    }
}

/// The embedded store's WAL: a log that only grows (its checkpoints fail, or reach the cap)
/// is what an operator of a busy relay needs to see before the disk does.
fn render_checkpoints(out: &mut String, counts: CheckpointCounts) {
    let name = "reflecto_store_checkpoints_total";
    help(
        out,
        name,
        "WAL checkpoints of the embedded store: the checkpoint thread's passes (pass), those \
         that failed (failed), the writer's after a pass (tail) and at the log's cap (cap).",
        "counter",
    );
    for (kind, n) in [
        ("pass", counts.passes),
        ("failed", counts.failed_passes),
        ("tail", counts.tails),
        ("cap", counts.at_cap),
    ] {
        let _ = writeln!(out, "{name}{{kind=\"{kind}\"}} {n}");
    }
    let name = "reflecto_store_wal_restarts_total";
    help(
        out,
        name,
        "Times the embedded store's WAL restarted from its beginning.",
        "counter",
    );
    let _ = writeln!(out, "{name} {}", counts.restarts);
    let name = "reflecto_store_wal_frames";
    help(
        out,
        name,
        "Frames (pages) in the embedded store's WAL after the last commit.",
        "gauge",
    );
    let _ = writeln!(out, "{name} {}", counts.log_frames);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_stores_checkpoints_are_rendered_only_when_given() {
        let metrics = Metrics::default();
        let counts = CheckpointCounts {
            passes: 3,
            failed_passes: 1,
            tails: 2,
            at_cap: 0,
            restarts: 2,
            log_frames: 417,
        };
        let text = metrics.render(5, Some(counts));
        for line in [
            "reflecto_queue_depth 5",
            "# TYPE reflecto_store_checkpoints_total counter",
            "reflecto_store_checkpoints_total{kind=\"pass\"} 3",
            "reflecto_store_checkpoints_total{kind=\"failed\"} 1",
            "reflecto_store_checkpoints_total{kind=\"tail\"} 2",
            "reflecto_store_checkpoints_total{kind=\"cap\"} 0",
            "reflecto_store_wal_restarts_total 2",
            "# TYPE reflecto_store_wal_frames gauge",
            "reflecto_store_wal_frames 417",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "{line} missing from:\n{text}"
            );
        }
        let without = metrics.render(5, None);
        assert!(!without.contains("reflecto_store_"), "{without}");
        assert!(without.lines().any(|l| l == "reflecto_queue_depth 5"));
    }
}
