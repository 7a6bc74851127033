//! The real `reflecto` binary against a real relay: every exit code, stdin, --json, warnings,
//! batch mode, retries against a scripted server, and the credential-file fallback.

use crate::harness::{
    Sender, UNKNOWN_TOKEN, assert_exit, content_length, no_limits, only, raw_header, reflecto,
    reflecto_at,
};
use predicates::prelude::*;
use reflecto::server::limits::Layer;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

#[tokio::test(flavor = "multi_thread")]
async fn exit_codes_zero_to_four() {
    let s = Sender::start(no_limits()).await;
    s.command("send")
        .args(["Backup done", "--priority", "high", "--tag", "ops"])
        .assert()
        .success()
        .stdout(predicate::str::is_match("^msg_[0-9a-f]{32}: queued for 2 devices").unwrap());
    // 2: invalid input never reaches the network (the relay counts no message for it).
    s.command("send")
        .args(["x", "--url", "ftp://nope"])
        .assert()
        .code(2)
        .stderr(predicate::str::starts_with("error[invalid_url]: "));
    for (args, said) in [
        (
            ["x", "--title", ""],
            "error[invalid_title]: title must not be empty",
        ),
        (["x", "--action", "nolabel"], "error[invalid_action]"),
    ] {
        assert_exit(s.command("send").args(args), 2, said);
    }
    assert_eq!(s.relay.count("SELECT COUNT(*) FROM messages"), 1);
    // 3: unknown token (relay), no stored token (client), priority cap (relay).
    let capped = s.relay.capped_token("c", "low");
    for (token, args, said) in [
        (UNKNOWN_TOKEN, &["x"][..], "error[invalid_token]"),
        (
            capped.as_str(),
            &["x", "-p", "urgent"][..],
            "error[priority_capped]",
        ),
    ] {
        assert_exit(
            s.command("send").env("REFLECTO_TOKEN", token).args(args),
            3,
            said,
        );
    }
    assert_exit(
        s.reflecto().args(["send", "--server", &s.relay.url, "x"]),
        3,
        "error[no_stored_token]",
    );
    // 4: too large, caught before sending.
    let big = "x".repeat(1500);
    let title = "t".repeat(100);
    let url = format!("https://e.com/{}", "p".repeat(490));
    let args = [big.as_str(), "--title", &title, "--url", &url];
    assert_exit(s.command("send").args(args), 4, "error[payload_too_large]");
    // 1: the CLI's own failure (its config dir is a file).
    let file = tempfile::NamedTempFile::new().unwrap();
    assert_exit(
        reflecto(file.path()).args(["send", "--server", &s.relay.url, "x"]),
        1,
        "error[cli_internal_error]",
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn exit_codes_five_and_six() {
    let s = Sender::start(only(Layer::TokenBurst, 1)).await;
    s.command("send").arg("one").assert().success();
    assert_exit(
        s.command("send").args(["two", "--retry-max-wait", "1"]),
        5,
        "error[rate_limit_exceeded]",
    );
    let closed = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let closed = format!("http://{closed}");
    assert_exit(
        reflecto_at(s.cfg.path(), "send", &closed, &s.token).args(["--retry-max-wait", "1", "x"]),
        6,
        "error[relay_unreachable]: cannot reach the relay",
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn stdin_json_and_warnings() {
    let s = Sender::start(no_limits()).await;
    let out = s
        .command("send")
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
    let envelope = s.relay.envelopes().remove(0);
    assert!(
        envelope.contains(r#""message":"from stdin""#),
        "trailing newline stripped: {envelope}"
    );
    s.command("send")
        .args(["-q", "-"])
        .write_stdin("quiet")
        .assert()
        .success()
        .stdout("");
    // --token-stdin: the first stdin line is the token; no stored token or REFLECTO_TOKEN.
    s.reflecto()
        .args(["send", "--server", &s.relay.url])
        .args(["--token-stdin", "token from stdin"])
        .write_stdin(format!("{}\n", s.token))
        .assert()
        .success();
    assert!(
        s.relay
            .envelopes()
            .iter()
            .any(|e| e.contains(r#""message":"token from stdin""#))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn batch_sends_in_order_and_exits_with_the_worst_code() {
    let s = Sender::start(no_limits()).await;
    let lines = "{\"message\":\"one\"}\n\n{\"message\":\"\"}\n{\"message\":\"three\",\"priority\":\"high\"}\n";
    assert_exit(
        s.command("send").args(["--batch", "-"]).write_stdin(lines),
        2,
        "line 3: error[invalid_message]",
    )
    .stderr(predicate::str::contains("batch: 2 sent, 1 failed, 3 lines"));
    let sent = s.relay.envelopes();
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
                    let len = content_length(&text);
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
        .map(|r| raw_header(r, "idempotency-key").unwrap())
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
    reflecto_at(cfg.path(), "send", &url, UNKNOWN_TOKEN)
        .args(["--retry-max-wait", "10", "retry me"])
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
    assert_exit(
        reflecto(cfg.path())
            .args(["login", "--no-verify", "--secure-storage-only"])
            .write_stdin(format!("{token}\n")),
        3,
        "error[keyring_unavailable]",
    );
    reflecto(cfg.path()).arg("logout").assert().success();
    assert!(!path.exists());
    assert_exit(
        reflecto(cfg.path())
            .args(["login", "--server", "http://127.0.0.1:9"])
            .write_stdin("not-a-token\n"),
        3,
        "error[invalid_token]",
    );
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
    let s = Sender::start(no_limits()).await;
    let (relay, token, phone) = (&s.relay, &s.token, &s.phone);
    let mut ids = Vec::new();
    for text in ["build running", "build passed"] {
        let out = s
            .command("send")
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
    let first = api.status(token, &ids[0]).await;
    assert_eq!(first["key"], "ci:42", "{first}");
    assert_eq!(first.delivery(phone)["state"], "superseded", "{first}");
    let second = api.status(token, &ids[1]).await;
    assert_eq!(second.delivery(phone)["state"], "queued", "{second}");
    s.command("send")
        .args(["x", "--key", "a b"])
        .assert()
        .code(2)
        .stderr(predicate::str::starts_with("error[invalid_key]: "));
    assert_eq!(relay.count("SELECT COUNT(*) FROM messages"), 2);
}
