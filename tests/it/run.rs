//! `reflecto run [send flags] -- COMMAND` through the real binary against a real relay (SPEC
//! §2.3): COMMAND's exit status comes back (a signal as 128 + N), its stdout and stderr pass
//! through byte for byte, and the notification says how it ended with the last lines of its
//! output; `--on-failure`, `--lines`, SIGTERM passed on, and a relay that is down.

use crate::harness::{Relay, Sender, UNKNOWN_TOKEN, first_line, no_limits, reflecto_at, spawn};
use serde_json::Value;
use std::process::Stdio;

/// The payload of every notification the relay accepted, oldest first.
fn payloads(relay: &Relay) -> Vec<Value> {
    relay
        .envelopes()
        .iter()
        .map(|e| serde_json::from_str::<Value>(e).unwrap()["payload"].clone())
        .collect()
}

/// The title is `expected` then a duration in seconds (these commands take well under a minute).
fn assert_title(payload: &Value, expected: &str) {
    let title = payload["title"].as_str().unwrap();
    let took = title
        .strip_prefix(expected)
        .unwrap_or_else(|| panic!("{title}"));
    let secs = took.strip_suffix('s').unwrap_or_else(|| panic!("{title}"));
    assert!(secs.parse::<u64>().is_ok(), "{title}");
}

fn only_payload(relay: &Relay) -> Value {
    let mut all = payloads(relay);
    assert_eq!(all.len(), 1, "{all:?}");
    all.remove(0)
}

#[tokio::test(flavor = "multi_thread")]
async fn success_passes_output_through_and_says_it_succeeded() {
    let s = Sender::start(no_limits()).await;
    // Bytes that are not UTF-8, and no final line break, on both outputs.
    let script = r"printf 'one\ntwo\n\377\376 raw'; printf 'warn\n\200end' >&2";
    let out = s
        .command("run")
        .args(["--", "sh", "-c", script])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(out.stdout, b"one\ntwo\n\xff\xfe raw");
    assert_eq!(out.stderr, b"warn\n\x80end");
    let payload = only_payload(&s.relay);
    // The command line as a shell would take it back: the script's own quotes escaped.
    let quoted = script.replace('\'', r"'\''");
    assert_title(&payload, &format!("✔ sh -c '{quoted}' succeeded in "));
    assert_eq!(
        payload["message"],
        "one\ntwo\n\u{fffd}\u{fffd} raw\nwarn\n\u{fffd}end"
    );
    assert!(
        payload.get("priority").is_none_or(|p| p == "default"),
        "{payload}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failure_keeps_its_status_and_is_sent_high_with_the_last_lines() {
    let s = Sender::start(no_limits()).await;
    let script = "seq 1 30; echo oops >&2; exit 3";
    s.command("run")
        .args(["--tag", "ci", "--", "sh", "-c", script])
        .assert()
        .code(3);
    let payload = only_payload(&s.relay);
    assert_title(
        &payload,
        &format!("✘ sh -c '{script}' failed (exit 3) after "),
    );
    // The last 10 lines of stdout (the default --lines), then stderr's.
    let last: Vec<String> = (21..=30).map(|i| i.to_string()).collect();
    assert_eq!(
        payload["message"],
        format!("{}\noops", last.join("\n")).as_str()
    );
    assert_eq!(payload["priority"], "high");
    assert_eq!(payload["tags"], serde_json::json!(["ci"]));

    // --lines 2 keeps two of each; an explicit --priority wins over high.
    s.command("run")
        .args(["--lines", "2", "-p", "low", "--", "sh", "-c"])
        .arg("seq 1 5; printf 'e1\\ne2\\ne3\\n' >&2; exit 1")
        .assert()
        .code(1);
    let payload = payloads(&s.relay).pop().unwrap();
    assert_eq!(payload["message"], "4\n5\ne2\ne3");
    assert_eq!(payload["priority"], "low");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_signal_exits_128_plus_it_and_silence_sends_the_command_line() {
    let s = Sender::start(no_limits()).await;
    s.command("run")
        .args(["--", "sh", "-c", "kill -TERM $$"])
        .assert()
        .code(143)
        .stdout("")
        .stderr("");
    let payload = only_payload(&s.relay);
    assert_title(
        &payload,
        "✘ sh -c 'kill -TERM $$' killed by signal 15 after ",
    );
    assert_eq!(payload["message"], "sh -c 'kill -TERM $$'");
    assert_eq!(payload["priority"], "high");
}

#[tokio::test(flavor = "multi_thread")]
async fn on_failure_sends_nothing_on_success() {
    let s = Sender::start(no_limits()).await;
    s.command("run")
        .args(["--on-failure", "--", "echo", "fine"])
        .assert()
        .success()
        .stdout("fine\n")
        .stderr("");
    assert!(payloads(&s.relay).is_empty());
    s.command("run")
        .args(["--on-failure", "--", "false"])
        .assert()
        .code(1);
    assert_title(&only_payload(&s.relay), "✘ false failed (exit 1) after ");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_command_that_cannot_start_exits_127_and_says_so() {
    let s = Sender::start(no_limits()).await;
    s.command("run")
        .args(["--", "reflecto-no-such-command", "x"])
        .assert()
        .code(127)
        .stderr("error[usage_error]: cannot run 'reflecto-no-such-command': command not found\n");
    let payload = only_payload(&s.relay);
    assert_title(
        &payload,
        "✘ reflecto-no-such-command x failed (exit 127) after ",
    );
    assert_eq!(
        payload["message"],
        "cannot run 'reflecto-no-such-command': command not found"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_relay_that_is_down_does_not_change_the_exit_status() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let down = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let cfg = tempfile::tempdir().unwrap();
    for (script, status) in [("echo ok", 0), ("echo bad; exit 5", 5)] {
        let out = reflecto_at(cfg.path(), "run", &down, UNKNOWN_TOKEN)
            .args(["--retry-max-wait", "0", "--", "sh", "-c", script])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(status), "{script}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("error[relay_unreachable]"), "{stderr}");
    }
    // A bad flag is said before COMMAND runs: nothing runs, exit 2.
    let marker = cfg.path().join("ran");
    reflecto_at(cfg.path(), "run", &down, UNKNOWN_TOKEN)
        .args(["-p", "loud", "--", "touch"])
        .arg(&marker)
        .assert()
        .code(2)
        .stderr(predicates::str::contains("error[invalid_priority]"));
    assert!(!marker.exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_and_sigint_to_reflecto_run_reach_the_command() {
    let s = Sender::start(no_limits()).await;
    for (signal, exit) in [("TERM", 7), ("INT", 8)] {
        let marker = s.cfg.path().join(format!("trapped-{signal}"));
        let script = format!(
            "trap 'echo {signal} > {}; exit {exit}' {signal}; echo ready; while :; do sleep 0.05; done",
            marker.display()
        );
        let args = ["run", "--server", &s.relay.url, "--", "sh", "-c", &script];
        let mut child = spawn(s.cfg.path(), &s.token, &args, Stdio::null());
        assert_eq!(first_line(&mut child), "ready\n");
        // To reflecto run alone, not its process group: only passing it on reaches sh.
        crate::harness::signal(&child, signal);
        // Bounded: a signal that is not passed on leaves sh looping for ever.
        let status = tokio::task::spawn_blocking(move || {
            let exited =
                crate::harness::within_blocking(std::time::Duration::from_secs(20), || {
                    child.try_wait().unwrap()
                });
            if exited.is_err() {
                child.kill().unwrap();
                child.wait().unwrap();
            }
            exited.ok()
        })
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("SIG{signal} did not reach the command"));
        assert_eq!(status.code(), Some(exit), "{signal}");
        assert_eq!(
            std::fs::read_to_string(&marker).unwrap(),
            format!("{signal}\n")
        );
        let payload = payloads(&s.relay).pop().unwrap();
        // A title over 100 bytes keeps its end (SPEC §2.5), where the outcome is.
        let title = payload["title"].as_str().unwrap();
        assert!(title.len() <= 100, "{title}");
        let (_, took) = title
            .split_once(&format!(" failed (exit {exit}) after "))
            .expect(title);
        assert!(
            took.strip_suffix('s').unwrap().parse::<u64>().is_ok(),
            "{title}"
        );
    }
    assert_eq!(payloads(&s.relay).len(), 2);
}
