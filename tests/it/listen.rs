//! The receivers for real: `reflecto pair` redeems a code against a real relay, `reflecto
//! listen` (the real binary) reads the real stream — `--poll`, `--json`, `--exec`, the seen-ids
//! file, a revoked device, SIGTERM, a relay process killed and restarted under it — and
//! `status` / `send --wait` follow the deliveries. No D-Bus session here: `--no-notify`, or the
//! one warning. The desktop notification daemon has its own module (`listen_desktop`).

use crate::harness::{
    Api, BIN, Desk, Relay, assert_refused, create_alice, free_port, no_limits, sigterm, within,
    within_blocking,
};
use serde_json::Value;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

fn job_state(relay: &Relay, message: &str, device: &str) -> String {
    let conn = rusqlite::Connection::open(relay.dir.path().join("reflecto.db")).unwrap();
    conn.query_row(
        "SELECT state FROM jobs WHERE message_id = ?1 AND device_id = ?2",
        [message, device],
        |r| r.get(0),
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn poll_prints_json_runs_exec_with_every_variable_and_acks() {
    let (relay, token, desk) = Desk::on_a_relay().await;
    let a = relay.api().send(&token,
        serde_json::json!({"message": "backup done\nall good", "title": "Backup", "priority": "high",
            "tags": ["nightly", "db"], "url": "https://ci.example/1", "device": "desk"}),
    )
    .await;
    let b = relay.api().send_to(&token, "desk", "second").await;
    let hooks = tempfile::tempdir().unwrap();
    let hook = r#"env | grep '^REFLECTO_' | sort > "$HOOKS/$REFLECTO_ID.env"; cat > "$HOOKS/$REFLECTO_ID.json"; echo hook-stdout"#;
    let out = desk
        .cmd()
        .args(["listen", "--poll", "--json", "--no-notify", "--exec", hook])
        .env("HOOKS", hooks.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "stderr: {stderr}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|_| panic!("not JSON: {l}")))
        .collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    assert_eq!(lines[0]["id"], a.as_str());
    assert_eq!(lines[0]["event_id"], "1");
    assert_eq!(lines[0]["envelope"]["payload"]["title"], "Backup");
    assert_eq!(lines[1]["id"], b.as_str());
    assert!(
        !stderr.contains("notification service"),
        "--no-notify: {stderr}"
    );
    assert!(
        stderr.contains("hook-stdout"),
        "the hook's stdout goes to stderr, not into the JSON lines: {stderr}"
    );
    let env = std::fs::read_to_string(hooks.path().join(format!("{a}.env"))).unwrap();
    for expected in [
        format!("REFLECTO_ID={a}"),
        "REFLECTO_TITLE=Backup".to_owned(),
        "REFLECTO_MESSAGE=backup done".to_owned(),
        "REFLECTO_PRIORITY=high".to_owned(),
        "REFLECTO_TAGS=nightly,db".to_owned(),
        "REFLECTO_URL=https://ci.example/1".to_owned(),
        "REFLECTO_SOURCE=ci".to_owned(),
    ] {
        assert!(
            env.lines().any(|l| l == expected),
            "{expected} not in\n{env}"
        );
    }
    let stdin: Value = serde_json::from_str(
        &std::fs::read_to_string(hooks.path().join(format!("{a}.json"))).unwrap(),
    )
    .unwrap();
    assert_eq!(stdin, lines[0], "the hook's stdin is the JSON line");
    assert_eq!(job_state(&relay, &a, &desk.device), "delivered");
    assert_eq!(job_state(&relay, &b, &desk.device), "delivered");

    // Everything was acked: a second poll has nothing to do.
    assert_eq!(desk.poll(&[]), "");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_message_already_shown_is_not_shown_again_after_a_restart() {
    let (relay, token, desk) = Desk::on_a_relay().await;
    let shown = relay
        .api()
        .send_to(&token, "desk", "shown before the crash")
        .await;
    let fresh = relay.api().send_to(&token, "desk", "new").await;
    // A listener that showed `shown` and died before its ack left this behind.
    std::fs::create_dir_all(desk.seen_file().parent().unwrap()).unwrap();
    std::fs::write(desk.seen_file(), format!("{shown}\n")).unwrap();
    let stdout = desk.poll(&[]);
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    assert!(stdout.contains("[default] ci: new"), "{stdout}");
    // The redelivered one is acked all the same, so it stops coming back.
    assert_eq!(job_state(&relay, &shown, &desk.device), "delivered");
    assert_eq!(job_state(&relay, &fresh, &desk.device), "delivered");
    let seen = std::fs::read_to_string(desk.seen_file()).unwrap();
    assert!(seen.contains(&fresh));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(desk.seen_file()).unwrap().permissions();
        assert_eq!(mode.mode() & 0o777, 0o600);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_removed_device_exits_3_with_invalid_token() {
    let relay = Relay::start(no_limits()).await;
    relay.alice();
    let desk = Desk::pair(relay.dir.path(), &relay.url);
    relay.admin(&["device", "remove", &desk.device]);
    assert_refused(&desk.poll_output(&[]), 3, "error[invalid_token]");
}

#[tokio::test(flavor = "multi_thread")]
async fn listen_without_a_pairing_says_how_to_pair() {
    let relay = Relay::start(no_limits()).await;
    let config = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .args(["listen", "--no-notify"])
        .env("REFLECTO_CONFIG_DIR", config.path())
        .env_remove("DBUS_SESSION_BUS_ADDRESS")
        .output()
        .unwrap();
    drop(relay);
    assert_refused(&out, 3, "reflecto pair");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bad_pairing_code_changes_nothing() {
    let relay = Relay::start(no_limits()).await;
    relay.alice();
    let config = tempfile::tempdir().unwrap();
    for (code, exit) in [("12", 2), ("000000", 2)] {
        let out = Command::new(BIN)
            .args(["pair", code, "--server", &relay.url])
            .env("REFLECTO_CONFIG_DIR", config.path())
            .env_remove("DBUS_SESSION_BUS_ADDRESS")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(exit), "{code}");
        assert!(String::from_utf8_lossy(&out.stderr).contains("error[invalid_pairing_code]"));
    }
    assert_eq!(
        std::fs::read_dir(config.path()).unwrap().count(),
        0,
        "nothing stored"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_exits_0_after_acking_the_event_in_hand() {
    let (relay, token, desk) = Desk::on_a_relay().await;
    let marks = tempfile::tempdir().unwrap();
    // The hook signals that it runs, then holds the event until the test has sent SIGTERM.
    let hook = format!(
        "touch {0}/started; while [ ! -e {0}/go ]; do sleep 0.05; done",
        marks.path().display()
    );
    let mut listening = desk.spawn_listen(&["--no-notify", "--exec", &hook]);
    let id = relay.api().send_to(&token, "desk", "in hand").await;
    listening.take(1);
    let started = marks.path().join("started");
    let ran = within(Duration::from_secs(30), || async { started.exists() }).await;
    assert!(ran.is_ok(), "the hook never ran");
    assert_ne!(
        job_state(&relay, &id, &desk.device),
        "delivered",
        "not acked while its hook runs"
    );
    sigterm(&listening.child);
    std::fs::write(marks.path().join("go"), "").unwrap();
    let status = listening.wait_exit();
    assert_eq!(status.code(), Some(0), "{}", listening.stderr());
    assert_eq!(job_state(&relay, &id, &desk.device), "delivered");
}

#[tokio::test(flavor = "multi_thread")]
async fn send_wait_exits_0_when_listen_acks_and_7_when_a_delivery_cannot_end_well() {
    let (relay, token, desk) = Desk::on_a_relay().await;
    let listening = desk.spawn_listen(&["--no-notify"]);
    let sender = tempfile::tempdir().unwrap();
    let send_wait = |args: &[&str]| {
        Command::new(BIN)
            .arg("send")
            .args(args)
            .args(["--server", &relay.url])
            .env("REFLECTO_TOKEN", &token)
            .env("REFLECTO_CONFIG_DIR", sender.path())
            .output()
            .unwrap()
    };
    let out = send_wait(&["waited for", "--device", "desk", "--wait", "60"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A change line (`queued → delivered`), or, when listen acked before the first status
    // poll, the first table already says `delivered` (a race CI hit once).
    assert!(
        stdout.contains("→ delivered")
            || stdout
                .lines()
                .any(|l| l.starts_with(desk.device.as_str()) && l.contains(" delivered ")),
        "{stdout}"
    );
    listening.take(1);

    // The android device of a relay without FCM: it never gets delivered, so the wait ends 7
    // (expired once the store expires it, or not final at the deadline).
    let out = send_wait(&["never", "--device", "pixel", "--ttl", "1", "--wait", "3"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(7), "{stderr}");
    assert!(stderr.contains("error[not_delivered]"), "{stderr}");

    // `status` without --wait reads the state and exits 0 whatever it is; with --json, the
    // relay's object.
    let id = String::from_utf8_lossy(&out.stdout)
        .split(':')
        .next()
        .unwrap()
        .to_owned();
    let status = Command::new(BIN)
        .args(["status", &id, "--json", "--server", &relay.url])
        .env("REFLECTO_TOKEN", &token)
        .env("REFLECTO_CONFIG_DIR", sender.path())
        .output()
        .unwrap();
    assert_eq!(status.status.code(), Some(0));
    let view: Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(view["id"], id.as_str());
    assert_eq!(view["deliveries"][0]["type"], "android");
}

/// `reflecto serve` as its own process, so it can be killed under a listener.
fn serve(data: &Path, port: u16) -> Child {
    let config = data.join("relay.toml");
    std::fs::write(
        &config,
        "[limits]\ntoken_burst = 0\ntoken_monthly = 0\nreceiver_daily = 0\nip_minute = 0\nip_hour = 0\n",
    )
    .unwrap();
    let mut child = Command::new(BIN)
        .args(["serve", "--config"])
        .arg(&config)
        .arg("--data-dir")
        .arg(data)
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let up = within_blocking(Duration::from_secs(15), || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    if up.is_ok() {
        return child;
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("the relay did not come up on port {port}");
}

#[tokio::test(flavor = "multi_thread")]
async fn listen_rides_out_a_relay_restart_and_shows_each_message_once() {
    let data = tempfile::tempdir().unwrap();
    let (token, _, _) = create_alice(data.path());
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let mut relay = serve(data.path(), port);
    let desk = Desk::pair(data.path(), &url);
    let mut listening = desk.spawn_listen(&["--no-notify", "--json"]);
    let before = Api::new(&url).send_to(&token, "desk", "before").await;
    let first = listening.take(1);
    assert!(first[0].contains(&before));

    // The relay dies (no goodbye on the stream) and comes back on the same port.
    relay.kill().unwrap();
    relay.wait().unwrap();
    // Sleeps on purpose: the relay stays down long enough for listen to find its connection
    // gone and to be refused at least once, so the restart is ridden out, not slipped past.
    std::thread::sleep(Duration::from_millis(300));
    let mut relay = serve(data.path(), port);
    let mut after = Vec::new();
    for text in ["after-1", "after-2"] {
        after.push(Api::new(&url).send_to(&token, "desk", text).await);
    }
    let lines = listening.take(2);
    let ids: Vec<String> = lines
        .iter()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["id"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(ids, after);
    assert!(
        listening.child.try_wait().unwrap().is_none(),
        "listen must not exit on a network error"
    );
    // Nothing more arrives (no duplicate of `before`): poll the seen state through one more
    // message, which must be the next line.
    let last = Api::new(&url).send_to(&token, "desk", "last").await;
    let next = listening.take(1);
    assert!(
        next[0].contains(&last),
        "a duplicate came first: {}",
        next[0]
    );
    // Read once: reading drains what listen has written so far.
    let stderr = listening.stderr();
    assert!(
        stderr.contains("reconnecting"),
        "the lost connection was reported: {stderr}"
    );
    // Trip 10: the warning is not the last word once the stream is back.
    assert!(
        stderr.contains(&format!("connected again to {url}")),
        "the reconnection was reported: {stderr}"
    );
    sigterm(&listening.child);
    assert_eq!(listening.wait_exit().code(), Some(0));
    relay.kill().unwrap();
    relay.wait().unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn without_a_notification_service_one_warning_then_stdout_goes_on() {
    let (relay, token, desk) = Desk::on_a_relay().await;
    let texts = ["quiet-text-1", "quiet-text-2", "quiet-text-3"];
    for text in texts {
        relay.api().send_to(&token, "desk", text).await;
    }
    // No D-Bus session in this environment (Desk::cmd removes it).
    let out = desk.cmd().args(["listen", "--poll"]).output().unwrap();
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stdout.lines().count(), 3, "{stdout}");
    assert_eq!(
        stderr.matches("no desktop notification service").count(),
        1,
        "{stderr}"
    );
    for text in ["one", "two", "three"] {
        assert!(
            stderr.contains("--no-notify") && !stderr.contains(text),
            "{stderr}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn pair_without_a_keyring_falls_back_to_a_0600_file_with_a_warning() {
    let relay = Relay::start(no_limits()).await;
    relay.alice();
    let config = tempfile::tempdir().unwrap();
    let code = relay.admin(&["pair", "--user", "alice"]);
    let out = Command::new(BIN)
        .args(["pair", &code, "--server", &relay.url])
        .env("REFLECTO_CONFIG_DIR", config.path())
        .env_remove("DBUS_SESSION_BUS_ADDRESS")
        .output()
        .unwrap();
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("warning: no OS keyring reachable"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("rfd_live_"),
        "the credential leaked: {stderr}"
    );
    let file = config.path().join("credentials.toml");
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.contains("rfd_live_") && text.contains("private_key"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    // The label defaults to the host name; the relay lists the device under it.
    let device = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let found = relay.count(&format!(
        "SELECT COUNT(*) FROM devices WHERE id = '{device}' AND label != '' AND type = 'extension'"
    ));
    assert_eq!(found, 1);
}
