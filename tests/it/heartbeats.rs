//! Heartbeats through the real relay (SPEC §1.18, §2.3), with the relay's clock moved by the
//! test: the late notification exactly once, "is back" replacing it (same key), a failure sent
//! at once, a deleted heartbeat silent; a relay stopped before a deadline and started after it
//! sends the alarm once; two relays on one PostgreSQL database send it once in total; and
//! `reflecto ping` / `reflecto heartbeats` through the real binary, including against a relay
//! that is dead or hangs (the ping ends within `--retry-max-wait`).

use crate::harness::{
    ManualClock, Relay, assert_refused, code_of, create_alice_on_postgres, device_via, no_limits,
    pg_admin, pg_database, reflecto, stdout_of,
};
use reflecto::relay::maintenance::maintain_once;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::{Duration, Instant};

const MINUTE: Duration = Duration::from_secs(60);

/// `POST url` with `token` (if any) and a plain-text body (if any): see [`send`].
async fn post(url: &str, token: Option<&str>, body: Option<&str>) -> (u16, Value) {
    let mut request = reqwest::Client::new().post(url);
    if let Some(body) = body {
        request = request
            .header("content-type", "text/plain")
            .body(body.to_owned());
    }
    send(request, token).await
}

/// `request` with `token` (if any): (status, the body as JSON, else as its text).
async fn send(request: reqwest::RequestBuilder, token: Option<&str>) -> (u16, Value) {
    let request = match token {
        Some(token) => request.bearer_auth(token),
        None => request,
    };
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

async fn ping(relay: &Relay, token: &str, query: &str) -> (u16, Value) {
    post(
        &format!("{}/v1/heartbeats/backup{query}", relay.url),
        Some(token),
        None,
    )
    .await
}

async fn list(relay: &Relay, token: &str) -> Value {
    let response = relay.api().get_ok("/v1/heartbeats", Some(token)).await;
    response.json().await.unwrap()
}

/// The stream's pending events after `after` as (sequence number, envelope payload, source),
/// read for at most `wait`.
async fn events(
    relay: &Relay,
    credential: &str,
    after: i64,
    n: usize,
    wait: Duration,
) -> Vec<(i64, Value)> {
    relay
        .api()
        .sync_events(credential, Some(after), n, wait)
        .await
        .into_iter()
        .map(|(seq, data)| {
            let data: Value = serde_json::from_str(&data).unwrap();
            (seq, data["envelope"].clone())
        })
        .collect()
}

fn assert_note(envelope: &Value, title: &str, priority: &str) {
    assert_eq!(envelope["payload"]["title"], title, "{envelope}");
    assert_eq!(envelope["payload"]["priority"], priority, "{envelope}");
    assert_eq!(envelope["payload"]["key"], "hb:backup", "{envelope}");
    assert_eq!(envelope["source"], "ci", "{envelope}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_exactly_once_then_back_replaces_it() {
    let clock = ManualClock::now();
    let relay = Relay::start_with(no_limits(), clock.clone(), |_| {}).await;
    let (token, desk) = relay.alice_with_desk();
    let (status, body) = ping(&relay, &token, "?every=10m").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (
            body["every"].as_str(),
            body["grace"].as_str(),
            body["state"].as_str()
        ),
        (Some("10m"), Some("1m"), Some("up"))
    );
    let pinged_at = body["last_ping_at"].as_str().unwrap().to_owned();
    // One millisecond before the alarm: nothing.
    clock.advance(11 * MINUTE - Duration::from_millis(1));
    maintain_once(&relay.state()).await.unwrap();
    assert_eq!(list(&relay, &token).await["heartbeats"][0]["state"], "up");
    clock.advance(Duration::from_millis(1));
    // Every beat after the deadline (this test's and the relay's own) finds it claimed.
    for _ in 0..3 {
        maintain_once(&relay.state()).await.unwrap();
    }
    let seen = events(&relay, &desk, 0, 2, Duration::from_secs(3)).await;
    assert_eq!(seen.len(), 1, "the alarm exactly once: {seen:?}");
    let (late_seq, late) = &seen[0];
    assert_note(late, "backup is late", "high");
    let since = chrono::DateTime::parse_from_rfc3339(&pinged_at).unwrap();
    let expected = format!(
        "no check-in since {} (expected every 10m)",
        since
            .to_utc()
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    );
    assert_eq!(late["payload"]["message"], expected.as_str());
    assert_eq!(list(&relay, &token).await["heartbeats"][0]["state"], "late");
    // The next ping: "is back", same key, state up again.
    let (status, body) = ping(&relay, &token, "").await;
    assert_eq!((status, body["state"].as_str()), (200, Some("up")));
    let seen = events(&relay, &desk, *late_seq, 2, Duration::from_secs(3)).await;
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_note(&seen[0].1, "backup is back", "default");
    // A device that had not read the alarm yet gets only "is back": it replaced the alarm.
    let late_jobs = relay.count(
        "SELECT count(*) FROM jobs j JOIN messages m ON m.id = j.message_id \
         WHERE m.key = 'hb:backup' AND j.state = 'superseded'",
    );
    assert!(
        late_jobs >= 1,
        "the alarm's undelivered jobs are superseded"
    );
    assert_eq!(
        relay.count("SELECT count(*) FROM messages WHERE key = 'hb:backup'"),
        2
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failure_is_sent_at_once_and_a_deleted_heartbeat_stays_silent() {
    let clock = ManualClock::now();
    let relay = Relay::start_with(no_limits(), clock.clone(), |_| {}).await;
    let (token, desk) = relay.alice_with_desk();
    let fail_url = format!("{}/v1/heartbeats/backup/fail", relay.url);
    let (status, body) = post(&fail_url, Some(&token), Some("disk full")).await;
    assert_eq!(
        (status, code_of(&body).as_str()),
        (404, "not_found"),
        "never pinged"
    );
    assert_eq!(ping(&relay, &token, "?every=1h&grace=5m").await.0, 200);
    let (status, body) = post(&fail_url, Some(&token), Some("disk full")).await;
    assert_eq!(
        (status, body["state"].as_str()),
        (200, Some("failed")),
        "{body}"
    );
    let seen = events(&relay, &desk, 0, 2, Duration::from_secs(3)).await;
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_note(&seen[0].1, "backup failed", "high");
    assert_eq!(seen[0].1["payload"]["message"], "disk full");
    // A failed heartbeat is not also late.
    clock.advance(3 * 60 * MINUTE);
    maintain_once(&relay.state()).await.unwrap();
    assert!(
        events(&relay, &desk, seen[0].0, 1, Duration::from_millis(500))
            .await
            .is_empty()
    );
    // Deleted: gone from the list, no alarm ever, a second delete is 404.
    assert_eq!(ping(&relay, &token, "").await.1["state"], "up");
    let delete = || {
        let url = format!("{}/v1/heartbeats/backup", relay.url);
        send(reqwest::Client::new().delete(url), Some(&token))
    };
    assert_eq!(delete().await.0, 200);
    let (status, body) = delete().await;
    assert_eq!((status, code_of(&body).as_str()), (404, "not_found"));
    assert_eq!(list(&relay, &token).await, json!({"heartbeats": []}));
    let before = relay.count("SELECT count(*) FROM messages");
    clock.advance(2 * 24 * 60 * MINUTE);
    maintain_once(&relay.state()).await.unwrap();
    assert_eq!(relay.count("SELECT count(*) FROM messages"), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_names_durations_and_ranges_are_invalid_heartbeat() {
    let (relay, token) = Relay::with_alice().await;
    let at = |path: &str| format!("{}/v1/heartbeats/{path}", relay.url);
    for (path, why) in [
        ("backup", "no every on the first ping"),
        ("backup?every=30s", "every under a minute"),
        ("backup?every=32d", "every over 31 days"),
        ("backup?every=1d&grace=25h", "grace over a day"),
        ("backup?every=1.5h", "not a whole number"),
        ("backup?every=1w", "an unknown unit"),
        ("a%20b?every=1d", "a space in the name"),
        (
            &format!("{}?every=1d", "x".repeat(65)),
            "a name over 64 bytes",
        ),
    ] {
        let (status, body) = post(&at(path), Some(&token), None).await;
        assert_eq!(
            (status, code_of(&body).as_str()),
            (400, "invalid_heartbeat"),
            "{why}: {body}"
        );
    }
    let json_ping = |body: Value| {
        send(
            reqwest::Client::new().post(at("backup")).json(&body),
            Some(&token),
        )
    };
    let (status, body) = json_ping(json!({"every": 3600})).await;
    assert_eq!(
        (status, code_of(&body).as_str()),
        (400, "invalid_heartbeat"),
        "a number is not a duration"
    );
    let (status, body) = json_ping(json!({"every": "1d", "grace": "10m"})).await;
    assert_eq!(
        (status, body["grace"].as_str()),
        (200, Some("10m")),
        "{body}"
    );
    assert_eq!(post(&at("backup"), None, None).await.0, 401);
    assert_eq!(
        post(
            &at("backup"),
            Some("rfk_live_00000000000000000000000000000000"),
            None
        )
        .await
        .0,
        401
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_stopped_before_the_deadline_sends_the_alarm_once_after_it_starts() {
    let relay = Relay::start(no_limits()).await;
    let (token, desk) = relay.alice_with_desk();
    assert_eq!(ping(&relay, &token, "?every=10m&grace=0s").await.0, 200);
    // Down before the deadline…
    let Relay {
        dir,
        mut running,
        limits,
        ..
    } = relay;
    let old = running.take().unwrap();
    let _ = old.shutdown.send(());
    old.task.await.unwrap().unwrap();
    // …and up again an hour later: the first beat at start sends the alarm.
    let clock = ManualClock::now();
    clock.advance(60 * MINUTE);
    let started = Instant::now();
    let relay = Relay::start_in(dir, limits, clock.clone(), |_| {}).await;
    let seen = events(&relay, &desk, 0, 1, Duration::from_secs(10)).await;
    let waited = started.elapsed();
    assert_eq!(seen.len(), 1, "the alarm within 10 s of the start");
    assert_note(&seen[0].1, "backup is late", "high");
    eprintln!("alarm {waited:?} after the relay started past the deadline");
    for _ in 0..3 {
        maintain_once(&relay.state()).await.unwrap();
    }
    assert_eq!(
        relay.count("SELECT count(*) FROM messages WHERE key = 'hb:backup'"),
        1
    );
    assert!(
        events(&relay, &desk, seen[0].0, 1, Duration::from_millis(500))
            .await
            .is_empty()
    );
}

/// Rows of the PostgreSQL database at `url` matching `sql` (a count).
async fn pg_count(url: &str, sql: &str) -> i64 {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    let connection = tokio::spawn(connection);
    let n: i64 = client.query_one(sql, &[]).await.unwrap().get(0);
    drop(client);
    let _ = connection.await;
    n
}

/// Two relays on the PostgreSQL database at `url`, on one clock the test moves, and alice
/// with a sender token and a desk: (token, the desk's credential, clock, relay A, relay B).
async fn two_relays_with_a_desk(url: &str) -> (String, String, Arc<ManualClock>, Relay, Relay) {
    let (token, _, _) = create_alice_on_postgres(url);
    let (_, desk) = device_via(
        &|args| pg_admin(url, args),
        "alice",
        "desk",
        "extension",
        &[],
    );
    let clock = ManualClock::now();
    let on_pg = |c: &mut reflecto::relay::ServeConfig| c.database = Some(url.to_owned());
    let a = Relay::start_with(no_limits(), clock.clone(), on_pg).await;
    let b = Relay::start_with(no_limits(), clock.clone(), on_pg).await;
    (token, desk, clock, a, b)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_relays_on_postgres_send_the_alarm_once_in_total() {
    let Some(url) = pg_database() else { return };
    let (token, desk, clock, a, b) = two_relays_with_a_desk(&url).await;
    for name in ["backup", "db", "photos"] {
        let (status, _) = post(
            &format!("{}/v1/heartbeats/{name}?every=10m&grace=0s", a.url),
            Some(&token),
            None,
        )
        .await;
        assert_eq!(status, 200);
    }
    clock.advance(10 * MINUTE);
    // Both relays' own beats race for them, and this test's rounds on both at once too.
    let (sa, sb) = (a.state(), b.state());
    for _ in 0..3 {
        let (ra, rb) = tokio::join!(maintain_once(&sa), maintain_once(&sb));
        ra.unwrap();
        rb.unwrap();
    }
    let seen = events(&b, &desk, 0, 4, Duration::from_secs(3)).await;
    assert_eq!(seen.len(), 3, "one alarm per heartbeat: {seen:?}");
    let mut titles: Vec<String> = seen
        .iter()
        .map(|(_, e)| e["payload"]["title"].as_str().unwrap().to_owned())
        .collect();
    titles.sort();
    assert_eq!(titles, ["backup is late", "db is late", "photos is late"]);
    assert_eq!(
        pg_count(&url, "SELECT count(*) FROM messages WHERE key LIKE 'hb:%'").await,
        3
    );
    assert_eq!(
        pg_count(&url, "SELECT count(*) FROM heartbeats WHERE state = 'late'").await,
        3
    );
}

/// Missed deadline → the alarm on a stream, with only the relays' own 5 s beats: one relay on
/// SQLite, and two relays on one PostgreSQL database (the stream held by the other one). The
/// clock jumps to the deadline at a known instant; the wait is real time. SPEC: within 10 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_alarm_reaches_a_stream_within_ten_seconds_of_the_deadline() {
    let clock = ManualClock::now();
    let relay = Relay::start_with(no_limits(), clock.clone(), |_| {}).await;
    let (token, desk) = relay.alice_with_desk();
    // Heartbeat i is due i + 1 minutes on: each minute the clock moves, one more falls due, at
    // a different moment of the relay's 5 s beat (the pause before it varies).
    const SAMPLES: u32 = 5;
    for i in 0..SAMPLES {
        let url = format!(
            "{}/v1/heartbeats/job{i}?every={}m&grace=0s",
            relay.url,
            i + 1
        );
        assert_eq!(post(&url, Some(&token), None).await.0, 200);
    }
    let mut waits = Vec::new();
    let mut last = 0;
    for i in 0..SAMPLES {
        let stream = relay.api();
        let desk = desk.clone();
        let reading = tokio::spawn(async move {
            stream
                .sync_events(&desk, Some(last), 1, Duration::from_secs(10))
                .await
        });
        tokio::time::sleep(Duration::from_millis(200 + 1300 * u64::from(i))).await;
        clock.advance(MINUTE);
        let due = Instant::now();
        let seen = reading.await.unwrap();
        waits.push(due.elapsed());
        assert_eq!(seen.len(), 1, "the alarm of job{i} within 10 s");
        assert!(seen[0].1.contains(&format!("job{i} is late")), "{seen:?}");
        last = seen[0].0;
    }
    waits.sort();
    eprintln!(
        "deadline → alarm on the stream, one relay (SQLite), {SAMPLES} samples: min {:?}, median {:?}, max {:?}",
        waits[0],
        waits[waits.len() / 2],
        waits[waits.len() - 1]
    );

    let Some(url) = pg_database() else { return };
    let (token, desk, clock, a, b) = two_relays_with_a_desk(&url).await;
    assert_eq!(ping(&a, &token, "?every=1m&grace=0s").await.0, 200);
    let stream = b.api();
    let reading = tokio::spawn(async move {
        stream
            .sync_events(&desk, None, 1, Duration::from_secs(10))
            .await
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    clock.advance(MINUTE);
    let due = Instant::now();
    let seen = reading.await.unwrap();
    let two = due.elapsed();
    assert_eq!(seen.len(), 1, "the alarm within 10 s");
    eprintln!(
        "deadline → alarm on the stream, two relays (PostgreSQL, stream on the other relay): {two:?}"
    );
    // Both relays' beats keep running: still one alarm after two more of them.
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert_eq!(
        pg_count(
            &url,
            "SELECT count(*) FROM messages WHERE key = 'hb:backup'"
        )
        .await,
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ping_and_heartbeats_through_the_real_binary() {
    let (relay, token) = Relay::with_alice().await;
    let cfg = tempfile::tempdir().unwrap();
    // The real binary with alice's token against the relay, run to its end.
    let cli = |args: &[&str]| {
        let mut cmd = reflecto(cfg.path());
        cmd.env("REFLECTO_TOKEN", &token)
            .args(args)
            .args(["--server", &relay.url]);
        cmd.output().unwrap()
    };
    let quiet = stdout_of(cli(&["ping", "backup", "--every", "1d", "--grace", "1h"]));
    assert!(
        quiet.is_empty(),
        "silent in a cron job (stdout is not a terminal)"
    );
    let out = cli(&["ping", "backup", "--json"]);
    let body: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (
            body["every"].as_str(),
            body["grace"].as_str(),
            body["state"].as_str()
        ),
        (Some("1d"), Some("1h"), Some("up"))
    );
    let out = cli(&["ping", "backup", "--fail", "disk full"]);
    assert_eq!(out.status.code(), Some(0));
    let out = cli(&["heartbeats", "--json"]);
    let list: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(list["heartbeats"][0]["state"], "failed");
    assert_eq!(list["heartbeats"][0]["name"], "backup");
    let out = cli(&["heartbeats"]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.starts_with("NAME") && text.contains("backup  failed"),
        "{text}"
    );
    let failed = relay
        .envelopes()
        .into_iter()
        .filter(|e| e.contains("backup failed"))
        .count();
    assert_eq!(failed, 1);
    // Checked before any request: exit 2 with the relay's code.
    for bad in [
        &["ping", "a b", "--every", "1d"][..],
        &["ping", "backup", "--every", "30s"],
    ] {
        let out = cli(bad);
        assert_refused(&out, 2, "error[invalid_heartbeat]");
    }
    let out = cli(&["ping", "never", "--fail"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "not_found: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ping_never_waits_past_retry_max_wait() {
    let cfg = tempfile::tempdir().unwrap();
    let token = "rfk_live_abcdefghijklmnopqrstuvwxyz012345";
    // A relay that is gone (connection refused), and one that accepts and never answers.
    let gone = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let gone_url = format!("http://{}", gone.local_addr().unwrap());
    drop(gone);
    let hung = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let hung_url = format!("http://{}", hung.local_addr().unwrap());
    for server in [&gone_url, &hung_url] {
        let started = Instant::now();
        let out = reflecto(cfg.path())
            .env("REFLECTO_TOKEN", token)
            .args([
                "ping",
                "backup",
                "--every",
                "1d",
                "--retry-max-wait",
                "2",
                "--server",
                server,
            ])
            .output()
            .unwrap();
        let took = started.elapsed();
        assert_eq!(
            out.status.code(),
            Some(6),
            "{server}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            took < Duration::from_secs(4),
            "{server}: took {took:?} with --retry-max-wait 2"
        );
        eprintln!("{server}: gave up after {took:?}");
    }
    drop(hung);
}
