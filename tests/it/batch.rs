//! `reflecto send --batch` through the real binary: a batch larger than a rate-limit window
//! finishes, failures carry their line numbers, Ctrl-C prints where to resume, `--skip` resumes.

use crate::harness::{Sender, assert_exit, first_line, lines, no_limits, only, signal, spawn};
use predicates::prelude::*;
use reflecto::server::limits::Layer;
use std::io::Write;
use std::process::Stdio;

/// Waits ~60 s once: the relay's per-IP window is a rolling minute, and that is the point —
/// the old client gave up as soon as Retry-After exceeded what was left of --retry-max-wait.
#[tokio::test(flavor = "multi_thread")]
async fn batch_larger_than_the_ip_window_waits_and_sends_every_line() {
    let s = Sender::start(only(Layer::IpMinute, 3)).await;
    s.command("send")
        .args(["--batch", "-"])
        .write_stdin(lines(5))
        .assert()
        .success()
        .stderr(predicate::str::contains("batch: 5 sent, 0 failed, 5 lines"));
    let sent = s.relay.envelopes();
    assert_eq!(sent.len(), 5);
    for (i, envelope) in sent.iter().enumerate() {
        assert!(
            envelope.contains(&format!("\"line {}\"", i + 1)),
            "in order"
        );
    }
}

/// With --retry-max-wait given, a batch still gives up on a 429 it cannot wait out.
#[tokio::test(flavor = "multi_thread")]
async fn explicit_retry_max_wait_bounds_a_batch() {
    let s = Sender::start(only(Layer::IpMinute, 1)).await;
    assert_exit(
        s.command("send")
            .args(["--batch", "-", "--retry-max-wait", "1"])
            .write_stdin(lines(2)),
        5,
        "line 2: error[rate_limit_exceeded]",
    )
    .stderr(predicate::str::contains("batch: 1 sent, 1 failed, 2 lines"));
}

#[tokio::test(flavor = "multi_thread")]
async fn batch_failures_carry_line_numbers_in_json() {
    let s = Sender::start(no_limits()).await;
    let input = "{\"message\":\"one\"}\n\n{\"message\":\"\"}\n{\"message\":\"four\",\"tags\":[\"a\",\"b\",\"c\",\"d\",\"e\",\"f\"]}\n";
    let out = assert_exit(
        s.command("send")
            .args(["--batch", "-", "--json"])
            .write_stdin(input),
        2,
        "line 3: error[invalid_message]",
    )
    .get_output()
    .clone();
    let objects: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(objects.len(), 4, "{objects:?}");
    assert_eq!(objects[0]["line"], 1);
    assert!(objects[0]["id"].as_str().unwrap().starts_with("msg_"));
    assert_eq!(objects[1]["line"], 3);
    assert_eq!(objects[1]["error"]["code"], "invalid_message");
    assert_eq!(objects[2]["line"], 4);
    assert_eq!(
        objects[2]["warnings"],
        serde_json::json!(["tags truncated to first 5 (got 6)"])
    );
    // The closing summary is the error object of the failed run.
    assert_eq!(objects[3]["error"]["code"], "invalid_message");
    assert_eq!(objects[3]["error"]["details"]["sent"], 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn skip_resumes_after_line_n() {
    let s = Sender::start(no_limits()).await;
    s.command("send")
        .args(["--batch", "-", "--skip", "2"])
        .write_stdin(lines(4))
        .assert()
        .success()
        .stderr(predicate::str::contains(
            "batch: 2 sent, 0 failed, 2 lines (lines 1–2 skipped)",
        ));
    let sent = s.relay.envelopes();
    assert_eq!(sent.len(), 2);
    assert!(sent[0].contains("\"line 3\"") && sent[1].contains("\"line 4\""));
}

/// Ctrl-C while line 2 waits out a 429: the batch stops, prints what it sent and the first
/// unsent line, and exits 130.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread")]
async fn ctrl_c_stops_a_batch_with_a_summary_and_where_to_resume() {
    let s = Sender::start(only(Layer::IpMinute, 1)).await;
    let file = s.cfg.path().join("events.jsonl");
    std::fs::write(&file, lines(3)).unwrap();
    let file = file.to_str().unwrap();
    let args = ["send", "--batch", file, "--server", &s.relay.url];
    let mut child = spawn(s.cfg.path(), &s.token, &args, Stdio::null());
    // Line 1's result on stdout means the batch is past it (and its SIGINT handler is set).
    let first = first_line(&mut child);
    assert!(first.starts_with("msg_"), "{first}");
    signal(&child, "INT");
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(
        stderr.contains(
            "error[interrupted]: batch interrupted: 1 sent, 0 failed; first unsent line: 2 (resume with --skip 1)"
        ),
        "{stderr}"
    );
    assert_eq!(s.relay.envelopes().len(), 1);
    let _ = std::io::stdout().flush();
}
