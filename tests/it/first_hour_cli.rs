//! Issue 17's trips of the first hour that are about what `reflecto send` says and reads (SPEC
//! §2.5 "Feedback at once", "Long input", man pages), each through the real binary: a refused
//! connection is said at once on a terminal (a pseudo-terminal from util-linux `script`), a batch
//! stops at an unreachable relay and says where to resume, `--batch -` streams, long stdin keeps
//! its tail, and the generated man pages describe every flag and only their own variables.

use crate::harness::{
    BIN, Sender, UNKNOWN_TOKEN as UNKNOWN, assert_exit, count, eventually_blocking, isolated,
    lines, no_limits, reflecto_at, required, spawn,
};
use predicates::prelude::*;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A local address where nothing listens: every connection is refused.
fn refused_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{addr}")
}

/// A local address that accepts connections and never answers, while the listener lives.
fn silent_url() -> (std::net::TcpListener, String) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    (listener, url)
}

/// The first line `reflecto send 'typo port' --server URL` writes on a terminal (a
/// pseudo-terminal from util-linux `script`, which copies it to our pipe) and when, or `None`
/// where `script` is missing (outside CI).
fn first_line_on_a_terminal(url: &str) -> Option<(String, Duration)> {
    first_line_of_on_a_terminal("send 'typo port'", url)
}

/// `reflecto ARGS --server URL` under `script`, as [`first_line_on_a_terminal`].
fn first_line_of_on_a_terminal(args: &str, url: &str) -> Option<(String, Duration)> {
    if !required(
        Command::new("script").arg("--version").output().is_ok(),
        "script (util-linux)",
        "apt-get install util-linux",
    ) {
        return None;
    }
    let cfg = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let mut child = isolated(&mut Command::new("script"), cfg.path())
        .args(["-qec"])
        .arg(format!("'{BIN}' {args} --server {url}"))
        .arg("/dev/null")
        .env("REFLECTO_TOKEN", UNKNOWN)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send((line, started.elapsed())).is_err() {
                return;
            }
        }
    });
    let first = rx.recv_timeout(Duration::from_secs(2));
    let _ = child.kill();
    let _ = child.wait();
    let (line, after) = first.expect("no feedback line within 2 s");
    Some((line.trim_end_matches('\r').to_owned(), after))
}

/// The first feedback line came within 2 s.
fn assert_said_at_once(after: Duration) {
    eprintln!("first feedback line after {} ms", after.as_millis());
    assert!(after < Duration::from_secs(2), "{after:?}");
}

/// Trip 3: `reflecto send "typo port" --server http://127.0.0.1:8081` printed nothing for 40–53
/// s. On a terminal the first refused attempt is said within 2 s, with how long it retries.
#[test]
fn a_refused_connection_says_so_at_once_on_a_terminal() {
    let url = refused_url();
    let Some((line, after)) = first_line_on_a_terminal(&url) else {
        return;
    };
    let host = url.trim_start_matches("http://");
    assert_eq!(
        line,
        format!("connection refused by {host}; retrying for up to 60 s — Ctrl-C to stop"),
    );
    assert_said_at_once(after);
}

/// Trip 3, the other silence: a relay that accepts the connection and never answers kept the
/// first attempt quiet until its 30 s timeout. It is said within 2 s too.
#[test]
fn a_relay_that_does_not_answer_is_said_within_2_s_on_a_terminal() {
    let (listener, url) = silent_url();
    let Some((line, after)) = first_line_on_a_terminal(&url) else {
        return;
    };
    drop(listener);
    assert_eq!(
        line,
        format!("no answer from {url} yet; trying for up to 60 s — Ctrl-C to stop")
    );
    assert_said_at_once(after);
}

/// SPEC §2.5: *any* request — `status` and `pair` too, which make one attempt — says a relay
/// that does not answer within 2 s, instead of waiting out the 30 s timeout in silence.
#[test]
fn status_and_pair_say_a_silent_relay_at_once_on_a_terminal() {
    let (listener, url) = silent_url();
    for args in [
        format!("status msg_{}", "0".repeat(32)),
        "pair 123456".to_owned(),
    ] {
        let Some((line, after)) = first_line_of_on_a_terminal(&args, &url) else {
            return;
        };
        assert_eq!(
            line,
            format!("no answer from {url} yet; waiting up to 30 s — Ctrl-C to stop"),
            "{args}"
        );
        assert!(after < Duration::from_secs(2), "{args}: {after:?}");
    }
    drop(listener);
}

/// Trip 6: a batch against a stopped relay waited ~60 s per line and never said where to
/// resume. It ends after the first unreachable line, with the `--skip N` that resumes.
#[test]
fn a_batch_against_a_stopped_relay_stops_and_says_where_to_resume() {
    let url = refused_url();
    let cfg = tempfile::tempdir().unwrap();
    let batch = |skip: &str| {
        let mut args = vec!["--batch", "-", "--retry-max-wait", "1"];
        if !skip.is_empty() {
            args.extend(["--skip", skip]);
        }
        reflecto_at(cfg.path(), "send", &url, UNKNOWN)
            .args(args)
            .write_stdin(lines(3))
            .assert()
            .code(6)
    };
    batch("").stderr(
        predicate::str::contains("line 1: error[relay_unreachable]")
            .and(predicate::str::contains(
                "error[relay_unreachable]: batch stopped at line 1: the relay is unreachable; 0 sent, 1 failed; resume with --skip 0 once it is up",
            ))
            .and(predicate::str::contains("line 2").not()),
    );
    batch("1").stderr(
        predicate::str::contains("batch stopped at line 2")
            .and(predicate::str::contains(
                "resume with --skip 1 once it is up",
            ))
            .and(predicate::str::contains("line 3").not()),
    );
}

/// Trip 6: `--batch -` read all of stdin before sending the first line, so `tail -f log |
/// reflecto send --batch -` sent nothing. A line is delivered while stdin is still open.
#[tokio::test(flavor = "multi_thread")]
async fn batch_from_stdin_sends_each_line_as_it_arrives() {
    let s = Sender::start(no_limits()).await;
    let (relay, cfg) = (&s.relay, s.cfg.path());
    let args = ["send", "--batch", "-", "--server", &relay.url];
    let mut child = spawn(cfg, &s.token, &args, Stdio::piped());
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"{\"message\":\"first\"}\n").unwrap();
    stdin.flush().unwrap();
    let envelopes = tokio::task::spawn_blocking({
        let dir = relay.dir.path().to_path_buf();
        move || {
            eventually_blocking(
                "line 1 delivered while stdin is open",
                Duration::from_secs(10),
                || count(&dir, "SELECT COUNT(*) FROM messages") == 1,
            )
        }
    });
    envelopes.await.unwrap();
    stdin.write_all(b"{\"message\":\"second\"}\n").unwrap();
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("batch: 2 sent, 0 failed, 2 lines"),
        "{stderr}"
    );
    let sent = relay.envelopes();
    assert!(sent[0].contains("\"first\"") && sent[1].contains("\"second\""));
}

/// Trip 5: `seq 1 600 | reflecto send` was refused whole. Its last 1500 bytes are sent, from
/// a line start, with the warning SPEC gives.
#[tokio::test(flavor = "multi_thread")]
async fn long_stdin_keeps_its_tail() {
    let s = Sender::start(no_limits()).await;
    let seq: String = (1..=600).map(|i| format!("{i}\n")).collect();
    assert_eq!(seq.len(), 2292);
    s.command("send")
        .write_stdin(seq.clone())
        .assert()
        .success()
        .stderr(predicate::str::contains(
            "warning: message from stdin truncated to its last 1500 bytes (was 2291)",
        ));
    let envelope: serde_json::Value = serde_json::from_str(&s.relay.envelopes()[0]).unwrap();
    let message = envelope["payload"]["message"].as_str().unwrap();
    assert!(message.len() <= 1500, "{}", message.len());
    assert!(message.ends_with("\n599\n600"), "{message}");
    let first = message.lines().next().unwrap();
    assert!(
        seq.contains(&format!("\n{first}\n")),
        "starts at a line: {first}"
    );
}

/// Trip 5: an empty pipe failed as an invalid message; it is a usage error that says so.
#[test]
fn empty_stdin_is_a_usage_error() {
    let cfg = tempfile::tempdir().unwrap();
    assert_exit(
        reflecto_at(cfg.path(), "send", &refused_url(), UNKNOWN).write_stdin(""),
        2,
        "error[usage_error]: nothing to send: stdin was empty",
    );
}

/// Trip 5: `message_too_long` did not say how long the message was; an argument is never cut.
#[test]
fn an_argument_message_too_long_names_its_size() {
    let cfg = tempfile::tempdir().unwrap();
    let long = "x".repeat(1732);
    assert_exit(
        reflecto_at(cfg.path(), "send", &refused_url(), UNKNOWN).arg(&long),
        2,
        "error[message_too_long]: message must be ≤ 1500 bytes (it is 1732 bytes)",
    );
}

/// The `.TP` items of one `.SH` section of a page: (term line, description lines).
fn section_items(page: &str, title: &str) -> Vec<(String, String)> {
    let mut items = Vec::new();
    let mut inside = false;
    let lines: Vec<&str> = page.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        if line.starts_with(".SH") {
            inside = line.trim_start_matches(".SH ").trim_matches('"') == title;
            continue;
        }
        if inside && *line == ".TP" && i + 1 < lines.len() {
            let body: Vec<&str> = lines[i + 2..]
                .iter()
                .take_while(|l| !l.starts_with(".TP") && !l.starts_with(".SH"))
                .copied()
                .collect();
            items.push((lines[i + 1].to_owned(), body.join("\n")));
        }
    }
    items
}

/// Trip 10: `--title`, `--url`, `--url-title` had empty descriptions, reflecto-send(1) listed
/// ~25 relay variables, and exit 4 was "exceeds 2048 bytes" for a message.
#[test]
fn man_pages_describe_every_flag_and_only_their_own_environment() {
    let dir = tempfile::tempdir().unwrap();
    reflecto::cli::docs::write_man_pages(dir.path()).unwrap();
    let read = |name: &str| std::fs::read_to_string(dir.path().join(name)).unwrap();
    let mut pages = 0;
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        let page = read(&name);
        pages += 1;
        for (term, text) in section_items(&page, "OPTIONS") {
            let described = text
                .lines()
                .any(|l| !l.trim().is_empty() && !l.starts_with('.'));
            assert!(described, "{name}: {term} has no description");
        }
    }
    assert!(pages > 20, "{pages} pages");

    let names = |page: &str| -> Vec<String> {
        section_items(page, "ENVIRONMENT")
            .into_iter()
            .map(|(term, _)| term.replace("\\fB", "").replace("\\fR", ""))
            .collect()
    };
    let send = names(&read("reflecto-send.1"));
    for own in [
        "REFLECTO_TOKEN",
        "REFLECTO_SERVER",
        "REFLECTO_RETRY_MAX_WAIT",
    ] {
        assert!(send.contains(&own.to_owned()), "{own} missing: {send:?}");
    }
    for other in [
        "REFLECTO_LISTEN",
        "REFLECTO_DATA_DIR",
        "REFLECTO_LOG",
        "REFLECTO_DATABASE_URL",
    ] {
        assert!(
            !send.contains(&other.to_owned()),
            "{other} on send: {send:?}"
        );
    }
    assert!(
        send.iter().all(|v| !v.starts_with("REFLECTO_LIMIT_")),
        "{send:?}"
    );
    let serve = names(&read("reflecto-serve.1"));
    assert!(serve.contains(&"REFLECTO_LISTEN".to_owned()), "{serve:?}");
    assert!(!serve.contains(&"REFLECTO_TOKEN".to_owned()), "{serve:?}");

    // Exit statuses said for the command: a message over 1500 bytes is 2, not 4.
    let exits = section_items(&read("reflecto-send.1"), "EXIT STATUS");
    let meaning = |code: &str| {
        exits
            .iter()
            .find(|(term, _)| term.contains(&format!("\\fB{code}\\fR")))
            .map(|(_, text)| text.clone())
            .unwrap_or_else(|| panic!("exit {code} missing"))
    };
    assert!(meaning("2").contains("over 1500 bytes"), "{}", meaning("2"));
    assert!(
        meaning("4").contains("whole notification"),
        "{}",
        meaning("4")
    );
    let serve_exits = section_items(&read("reflecto-serve.1"), "EXIT STATUS");
    assert!(
        serve_exits
            .iter()
            .all(|(term, _)| !term.contains("\\fB7\\fR")),
        "serve never exits 7: {serve_exits:?}"
    );
}
