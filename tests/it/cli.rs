//! The real `reflecto` binary against a real relay: every exit code, stdin, --json, warnings,
//! batch mode, retries against a scripted server, and the credential-file fallback.

use crate::harness::{BIN, Relay, no_limits};
use assert_cmd::Command;
use predicates::prelude::*;
use reflecto::server::limits::Limits;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

/// The binary with a private config dir and no way to reach a keyring (no D-Bus).
fn reflecto(config_dir: &std::path::Path) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.env("REFLECTO_CONFIG_DIR", config_dir)
        .env("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent/bus")
        .env_remove("REFLECTO_TOKEN")
        .env_remove("REFLECTO_SERVER")
        .env_remove("REFLECTO_PROFILE");
    cmd
}

fn send(config_dir: &std::path::Path, relay: &Relay, token: &str) -> Command {
    let mut cmd = reflecto(config_dir);
    cmd.args(["send", "--server", &relay.url])
        .env("REFLECTO_TOKEN", token);
    cmd
}

#[tokio::test(flavor = "multi_thread")]
async fn exit_codes_zero_to_four() {
    let relay = Relay::start(no_limits()).await;
    let (token, _, _) = relay.alice();
    let cfg = tempfile::tempdir().unwrap();
    send(cfg.path(), &relay, &token)
        .args(["Backup done", "--priority", "high", "--tag", "ops"])
        .assert()
        .success()
        .stdout(predicate::str::is_match("^msg_[0-9a-f]{32}: queued for 2 devices").unwrap());
    // 2: invalid input never reaches the network (the relay counts no message for it).
    send(cfg.path(), &relay, &token)
        .args(["x", "--url", "ftp://nope"])
        .assert()
        .code(2)
        .stderr(predicate::str::starts_with("error[invalid_url]: "));
    send(cfg.path(), &relay, &token)
        .args(["x", "--title", ""])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "error[invalid_title]: title must not be empty",
        ));
    send(cfg.path(), &relay, &token)
        .args(["x", "--action", "nolabel"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("error[invalid_action]"));
    assert_eq!(relay.count("SELECT COUNT(*) FROM messages"), 1);
    // 3: unknown token (relay), no stored token (client), priority cap (relay).
    send(
        cfg.path(),
        &relay,
        "rfk_live_00000000000000000000000000000000",
    )
    .arg("x")
    .assert()
    .code(3)
    .stderr(predicate::str::contains("error[invalid_token]"));
    reflecto(cfg.path())
        .args(["send", "--server", &relay.url, "x"])
        .assert()
        .code(3)
        .stderr(predicate::str::contains("error[no_stored_token]"));
    let capped = relay.admin(&[
        "token",
        "create",
        "--user",
        "alice",
        "--label",
        "c",
        "--priority-cap",
        "low",
    ]);
    send(cfg.path(), &relay, &capped)
        .args(["x", "-p", "urgent"])
        .assert()
        .code(3)
        .stderr(predicate::str::contains("error[priority_capped]"));
    // 4: too large, caught before sending.
    let big = "x".repeat(1500);
    send(cfg.path(), &relay, &token)
        .args([
            big.as_str(),
            "--title",
            &"t".repeat(100),
            "--url",
            &format!("https://e.com/{}", "p".repeat(490)),
        ])
        .assert()
        .code(4)
        .stderr(predicate::str::contains("error[payload_too_large]"));
    // 1: the CLI's own failure (its config dir is a file).
    let file = tempfile::NamedTempFile::new().unwrap();
    reflecto(file.path())
        .args(["send", "--server", &relay.url, "x"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("error[cli_internal_error]"));
}

#[tokio::test(flavor = "multi_thread")]
async fn exit_codes_five_and_six() {
    let relay = Relay::start(Limits {
        token_burst: 1,
        ..no_limits()
    })
    .await;
    let (token, _, _) = relay.alice();
    let cfg = tempfile::tempdir().unwrap();
    send(cfg.path(), &relay, &token)
        .arg("one")
        .assert()
        .success();
    send(cfg.path(), &relay, &token)
        .args(["two", "--retry-max-wait", "1"])
        .assert()
        .code(5)
        .stderr(predicate::str::contains("error[rate_limit_exceeded]"));
    let closed = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    reflecto(cfg.path())
        .args([
            "send",
            "--server",
            &format!("http://{closed}"),
            "--retry-max-wait",
            "1",
            "x",
        ])
        .env("REFLECTO_TOKEN", &token)
        .assert()
        .code(6)
        .stderr(predicate::str::contains(
            "error[relay_unreachable]: cannot reach the relay",
        ));
}

#[tokio::test(flavor = "multi_thread")]
async fn stdin_json_and_warnings() {
    let relay = Relay::start(no_limits()).await;
    let (token, _, _) = relay.alice();
    let cfg = tempfile::tempdir().unwrap();
    let out = send(cfg.path(), &relay, &token)
        .args(["--json", "-d", "laptop,tv"])
        .write_stdin("from stdin\n")
        .assert()
        .success()
        .stderr(predicate::str::contains(
            "warning: unknown device label: 'tv'",
        ))
        .get_output()
        .stdout
        .clone();
    let body: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(
        body["warnings"],
        serde_json::json!(["unknown device label: 'tv'"])
    );
    let envelope = relay.envelopes().remove(0);
    assert!(
        envelope.contains(r#""message":"from stdin""#),
        "trailing newline stripped: {envelope}"
    );
    send(cfg.path(), &relay, &token)
        .args(["-q", "-"])
        .write_stdin("quiet")
        .assert()
        .success()
        .stdout("");
    // --token-stdin: the first stdin line is the token; no stored token or REFLECTO_TOKEN.
    reflecto(cfg.path())
        .args([
            "send",
            "--server",
            &relay.url,
            "--token-stdin",
            "token from stdin",
        ])
        .write_stdin(format!("{token}\n"))
        .assert()
        .success();
    assert!(
        relay
            .envelopes()
            .iter()
            .any(|e| e.contains(r#""message":"token from stdin""#))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn batch_sends_in_order_and_exits_with_the_worst_code() {
    let relay = Relay::start(no_limits()).await;
    let (token, _, _) = relay.alice();
    let cfg = tempfile::tempdir().unwrap();
    let lines = "{\"message\":\"one\"}\n\n{\"message\":\"\"}\n{\"message\":\"three\",\"priority\":\"high\"}\n";
    send(cfg.path(), &relay, &token)
        .args(["--batch", "-"])
        .write_stdin(lines)
        .assert()
        .code(2)
        .stderr(
            predicate::str::contains("line 3: error[invalid_message]")
                .and(predicate::str::contains("batch: 2 sent, 1 failed, 3 lines")),
        );
    let sent = relay.envelopes();
    assert!(sent[0].contains("\"one\"") && sent[1].contains("\"three\""));
}

/// A scripted relay: answers each request with the next response in `script`, recording them.
fn scripted(script: Vec<String>) -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    std::thread::spawn(move || {
        for answer in script {
            let (mut stream, _) = listener.accept().unwrap();
            let mut buf = vec![0u8; 16 * 1024];
            let mut req = Vec::new();
            loop {
                let n = stream.read(&mut buf).unwrap();
                req.extend_from_slice(&buf[..n]);
                let text = String::from_utf8_lossy(&req);
                if let Some(end) = text.find("\r\n\r\n") {
                    let len = text
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse::<usize>().unwrap())
                        })
                        .unwrap_or(0);
                    if n == 0 || req.len() >= end + 4 + len {
                        break;
                    }
                }
            }
            record
                .lock()
                .unwrap()
                .push(String::from_utf8_lossy(&req).into_owned());
            stream.write_all(answer.as_bytes()).unwrap();
        }
    });
    (url, seen)
}

fn http_response(status: &str, extra_headers: &str, body: &str) -> String {
    format!(
        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\nconnection: close\r\n{extra_headers}content-length: {}\r\n\r\n{body}",
        body.len()
    )
}

fn idempotency_keys(requests: &[String]) -> Vec<String> {
    requests
        .iter()
        .map(|r| {
            r.lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("idempotency-key:")
                        .map(|v| v.trim().to_owned())
                })
                .unwrap()
        })
        .collect()
}

#[test]
fn retries_429_and_503_with_one_idempotency_key() {
    let limited = http_response(
        "429 Too Many Requests",
        "retry-after: 1\r\n",
        r#"{"error":{"code":"rate_limit_exceeded","message":"slow down","details":{"resource":"token_burst"}}}"#,
    );
    let busy = http_response("503 Service Unavailable", "retry-after: 1\r\n", "");
    let ok = http_response(
        "200 OK",
        "",
        r#"{"id":"msg_0123456789abcdef0123456789abcdef","delivered_to":[],"warnings":[]}"#,
    );
    let (url, seen) = scripted(vec![limited, busy, ok]);
    let cfg = tempfile::tempdir().unwrap();
    let started = std::time::Instant::now();
    reflecto(cfg.path())
        .args([
            "send",
            "--server",
            &url,
            "--retry-max-wait",
            "10",
            "retry me",
        ])
        .env(
            "REFLECTO_TOKEN",
            "rfk_live_00000000000000000000000000000000",
        )
        .assert()
        .success()
        .stdout(predicate::str::starts_with(
            "msg_0123456789abcdef0123456789abcdef: accepted, no device",
        ));
    assert!(
        started.elapsed() >= std::time::Duration::from_secs(2),
        "Retry-After: 1 was honoured twice"
    );
    let requests = seen.lock().unwrap().clone();
    assert_eq!(requests.len(), 3);
    let keys = idempotency_keys(&requests);
    assert!(keys.iter().all(|k| k == &keys[0]), "{keys:?}");
    assert!(
        requests
            .iter()
            .all(|r| r.contains(r#""message":"retry me""#))
    );
}

#[test]
fn login_without_a_keyring_falls_back_to_a_0600_file_with_a_warning() {
    let cfg = tempfile::tempdir().unwrap();
    let token = "rfk_live_AbCdEfGhIjKlMnOpQrStUvWxYz012345";
    reflecto(cfg.path())
        .args(["login", "--no-verify", "--server", "http://127.0.0.1:9"])
        .write_stdin(format!("{token}\n"))
        .assert()
        .success()
        .stderr(
            predicate::str::contains("warning: no OS keyring reachable")
                .and(predicate::str::contains(token).not()),
        );
    let path = cfg.path().join("credentials.toml");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    assert!(std::fs::read_to_string(&path).unwrap().contains(token));
    reflecto(cfg.path())
        .args(["auth", "status"])
        .assert()
        .success()
        .stdout(
            predicate::str::contains("rfk_live_****2345")
                .and(predicate::str::contains(token).not()),
        );
    reflecto(cfg.path())
        .args(["login", "--no-verify", "--secure-storage-only"])
        .write_stdin(format!("{token}\n"))
        .assert()
        .code(3)
        .stderr(predicate::str::contains("error[keyring_unavailable]"));
    reflecto(cfg.path()).arg("logout").assert().success();
    assert!(!path.exists());
    reflecto(cfg.path())
        .args(["login", "--server", "http://127.0.0.1:9"])
        .write_stdin("not-a-token\n")
        .assert()
        .code(3)
        .stderr(predicate::str::contains("error[invalid_token]"));
}

#[test]
fn explain_covers_every_code_and_help_works() {
    let cfg = tempfile::tempdir().unwrap();
    for code in reflecto::api::ErrorCode::ALL {
        reflecto(cfg.path())
            .args(["explain", code.as_str()])
            .assert()
            .success()
            .stdout(predicate::str::contains(format!(
                "exit code {}",
                code.exit_code()
            )));
    }
    reflecto(cfg.path())
        .args(["explain", "nope"])
        .assert()
        .code(2);
    reflecto(cfg.path())
        .arg("--help")
        .assert()
        .success()
        .stdout(predicate::str::contains("send"));
    reflecto(cfg.path())
        .arg("--version")
        .assert()
        .success()
        .stdout(predicate::str::starts_with("reflecto "));
    reflecto(cfg.path())
        .args(["send", "--priority", "loud", "x"])
        .assert()
        .code(2);
}

/// `send --key` (SPEC §2.3): the key reaches the relay, which supersedes the earlier send's
/// undelivered jobs; a malformed key is the engine's `invalid_key` before the network.
#[tokio::test(flavor = "multi_thread")]
async fn send_key_replaces_and_a_bad_key_never_leaves() {
    let relay = Relay::start(no_limits()).await;
    let (token, phone, _) = relay.alice();
    let cfg = tempfile::tempdir().unwrap();
    let mut ids = Vec::new();
    for text in ["build running", "build passed"] {
        let out = send(cfg.path(), &relay, &token)
            .args([text, "--key", "ci:42", "--json"])
            .assert()
            .success()
            .get_output()
            .stdout
            .clone();
        let reply: serde_json::Value = serde_json::from_slice(&out).unwrap();
        ids.push(reply["id"].as_str().unwrap().to_owned());
    }
    let api = relay.api();
    let first = api.status(&token, &ids[0]).await;
    assert_eq!(first["key"], "ci:42", "{first}");
    assert_eq!(first.delivery(&phone)["state"], "superseded", "{first}");
    let second = api.status(&token, &ids[1]).await;
    assert_eq!(second.delivery(&phone)["state"], "queued", "{second}");
    send(cfg.path(), &relay, &token)
        .args(["x", "--key", "a b"])
        .assert()
        .code(2)
        .stderr(predicate::str::starts_with("error[invalid_key]: "));
    assert_eq!(relay.count("SELECT COUNT(*) FROM messages"), 2);
}
