//! SPEC §3 across relays: several in-process relays on one real PostgreSQL database behave as
//! one relay — migrations race safely, a desktop stream on one relay gets sends accepted by
//! another and an ack anywhere counts, every rate-limit layer and Idempotency-Key is exact
//! across them, and revocations, devices and pairings made anywhere hold on every relay at the
//! next request. The real binary is driven where a process is the point (concurrent admin
//! commands, an unreachable database). Each test takes its own database.

use crate::harness::{
    BIN, Relay, SseEvents, code_of, expect_429, no_limits, pg_admin, pg_database, read_sse_events,
};
use futures_util::future::join_all;
use reflecto::server::limits::Limits;
use serde_json::{Value, json};
use std::process::{Command, Stdio};
use std::time::Duration;
use tokio::time::Instant;

/// A hang guard for anything that should take milliseconds: generous, so a loaded machine
/// never fails a test for being slow.
const PATIENCE: Duration = Duration::from_secs(30);

/// `n` relays started at the same time on the database at `url`.
async fn relays(url: &str, n: usize, limits: Limits) -> Vec<Relay> {
    join_all((0..n).map(|_| Relay::start_on_postgres(url, limits))).await
}

/// A fresh database with `n` relays on it, each with the one limit `set` turns on, and
/// alice's token.
async fn limited(n: usize, set: impl FnOnce(&mut Limits)) -> Option<(String, Vec<Relay>, String)> {
    let url = pg_database()?;
    let mut limits = no_limits();
    set(&mut limits);
    let relays = relays(&url, n, limits).await;
    let (token, _, _) = relays[0].alice();
    Some((url, relays, token))
}

/// One number from the database, read through a connection of the test's own.
async fn pg_number(url: &str, sql: &str) -> i64 {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    client.query_one(sql, &[]).await.unwrap().get(0)
}

/// `count` sends with `token`, all at once, spread round-robin over `relays`. With an
/// Idempotency-Key every one is the same request; without, each has its own message.
async fn sends(
    relays: &[Relay],
    token: &str,
    count: usize,
    key: Option<&str>,
) -> Vec<reqwest::Response> {
    join_all((0..count).map(|i| {
        let relay = &relays[i % relays.len()];
        let mut request = relay.http().post(format!("{}/v1/send", relay.url));
        request = match key {
            Some(key) => request
                .header("idempotency-key", key)
                .json(&json!({"message": "backup done"})),
            None => request.json(&json!({"message": format!("send {i}")})),
        };
        request.bearer_auth(token).send()
    }))
    .await
    .into_iter()
    .map(Result::unwrap)
    .collect()
}

/// How many were accepted; every other response must be `layer`'s 429, headers and all.
async fn accepted_else_429(responses: Vec<reqwest::Response>, layer: &str) -> usize {
    let mut accepted = 0;
    for resp in responses {
        if resp.status() == 200 {
            accepted += 1;
        } else {
            expect_429(resp, layer).await;
        }
    }
    accepted
}

/// `GET path` on `relay`, with `bearer` as the credential if given.
async fn get(relay: &Relay, path: &str, bearer: Option<&str>) -> reqwest::Response {
    let mut request = relay.http().get(format!("{}{path}", relay.url));
    if let Some(bearer) = bearer {
        request = request.bearer_auth(bearer);
    }
    request.send().await.unwrap()
}

/// `POST path` on `relay` with a JSON body, and `bearer` as the credential if given.
async fn post(relay: &Relay, path: &str, bearer: Option<&str>, body: Value) -> reqwest::Response {
    let mut request = relay
        .http()
        .post(format!("{}{path}", relay.url))
        .json(&body);
    if let Some(bearer) = bearer {
        request = request.bearer_auth(bearer);
    }
    request.send().await.unwrap()
}

/// The status and error code of a `/v1/sync` request with `credential` on `relay`.
async fn sync_refusal(relay: &Relay, credential: &str) -> (u16, String) {
    let resp = relay.api().sync(credential, None).await;
    let status = resp.status().as_u16();
    (status, code_of(&resp.json().await.unwrap_or_default()))
}

/// `/health/ready` on `relay` answers 200 with the store ok.
async fn assert_ready(relay: &Relay) {
    let ready = get(relay, "/health/ready", None).await;
    assert_eq!(ready.status(), 200);
    let body: Value = ready.json().await.unwrap();
    assert_eq!(
        (&body["status"], &body["store"]),
        (&json!("ready"), &json!("ok"))
    );
}

/// The 200 reply to a send of `message` with `token` through `relay`.
async fn sent(relay: &Relay, token: &str, message: &str) -> Value {
    let resp = relay.send_json(token, json!({ "message": message })).await;
    assert_eq!(resp.status(), 200);
    resp.json().await.unwrap()
}

/// The device ids a send (or a message status) lists under `list`.
fn device_ids(reply: &Value, list: &str) -> Vec<String> {
    reply[list]
        .as_array()
        .unwrap_or_else(|| panic!("no {list} in {reply}"))
        .iter()
        .map(|d| d["device_id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn three_relays_started_at_once_on_an_empty_database_all_serve() {
    let Some(url) = pg_database() else { return };
    let relays = relays(&url, 3, no_limits()).await;
    assert_eq!(
        pg_number(&url, "SELECT count(*) FROM reflecto_schema").await,
        1,
        "one schema version row, however many relays migrated at once"
    );
    let (token, _, _) = relays[2].alice();
    for relay in &relays {
        assert_ready(relay).await;
        relay.api().send(&token, json!({"message": "up"})).await;
    }
    assert_eq!(pg_number(&url, "SELECT count(*) FROM messages").await, 3);
}

#[test]
fn three_admin_commands_at_once_on_an_empty_database_all_succeed() {
    let Some(url) = pg_database() else { return };
    let children: Vec<_> = (0..3)
        .map(|_| {
            Command::new(BIN)
                .args(["admin", "--database", &url, "user", "list"])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "admin user list failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            "",
            "no users yet"
        );
    }
    pg_admin(&url, &["user", "add", "bob"]);
    assert!(pg_admin(&url, &["user", "list"]).starts_with("bob\t"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stream_on_one_relay_receives_every_send_accepted_by_another() {
    const SENDS: usize = 20;
    let Some((_, relays, token)) = limited(2, |_| {}).await else {
        return;
    };
    let (a, b) = (&relays[0], &relays[1]);
    let (_, credential) = a.extension("desk");
    let mut events = SseEvents::new(b.api().stream(&credential).await);
    let mut latencies = Vec::with_capacity(SENDS);
    for i in 0..SENDS {
        let text = format!("cross-relay {i}");
        let started = Instant::now();
        let id = a
            .api()
            .send(&token, json!({"message": text, "device": "desk"}))
            .await;
        let (seq, data) = events
            .next(Instant::now() + PATIENCE)
            .await
            .unwrap_or_else(|| panic!("send {i} accepted by A never reached the stream on B"));
        latencies.push(started.elapsed());
        let data: Value = serde_json::from_str(&data).unwrap();
        assert_eq!(seq, i as i64 + 1);
        assert_eq!(data["id"], id.as_str());
        assert_eq!(data["envelope"]["payload"]["message"], text.as_str());
    }
    latencies.sort();
    println!(
        "cross-relay stream, send request on A to its event on B, {SENDS} sends: p50 {:?}, max {:?} (target < 1 s)",
        latencies[SENDS / 2],
        latencies[SENDS - 1]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_ack_on_one_relay_counts_for_events_streamed_by_another() {
    let Some((_, relays, token)) = limited(2, |_| {}).await else {
        return;
    };
    let (a, b) = (&relays[0], &relays[1]);
    let (_, credential) = a.extension("desk");
    let mut ids = Vec::new();
    for text in ["one", "two", "three"] {
        ids.push(
            a.api()
                .send(&token, json!({"message": text, "device": "desk"}))
                .await,
        );
    }
    let events = read_sse_events(b.api().stream(&credential).await, 3, PATIENCE).await;
    let seqs: Vec<String> = events.iter().map(|(seq, _)| seq.to_string()).collect();
    assert_eq!(seqs, ["1", "2", "3"]);
    let ack = post(a, "/v1/sync/ack", Some(&credential), json!({ "ids": seqs })).await;
    assert_eq!(ack.json::<Value>().await.unwrap(), json!({"acked": 3}));
    for relay in [a, b] {
        for id in &ids {
            let status = relay.api().status(&token, id).await;
            assert_eq!(status["deliveries"][0]["state"], "delivered", "{status}");
        }
    }
    // Acked on A, so B's next stream starts at the send after them.
    let fourth = a
        .api()
        .send(&token, json!({"message": "four", "device": "desk"}))
        .await;
    let rest = read_sse_events(b.api().stream(&credential).await, 1, PATIENCE).await;
    assert_eq!(rest.len(), 1, "the fourth send reached B's stream");
    assert_eq!(rest[0].0, 4);
    let data: Value = serde_json::from_str(&rest[0].1).unwrap();
    assert_eq!(data["id"], fourth.as_str());
}

#[tokio::test(flavor = "multi_thread")]
async fn token_burst_is_exact_across_two_and_three_relays() {
    for n in [2, 3] {
        let Some((url, relays, token)) = limited(n, |l| l.token_burst = 60).await else {
            return;
        };
        let responses = sends(&relays, &token, 100, None).await;
        let accepted = accepted_else_429(responses, "token_burst").await;
        assert_eq!(accepted, 60, "{n} relays together accept the burst limit");
        assert_eq!(pg_number(&url, "SELECT count(*) FROM messages").await, 60);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn token_monthly_is_exact_across_relays_and_survives_restarting_them() {
    let Some((_, mut relays, token)) = limited(2, |l| l.token_monthly = 7).await else {
        return;
    };
    let responses = sends(&relays, &token, 20, None).await;
    assert_eq!(accepted_else_429(responses, "token_monthly").await, 7);
    for relay in &mut relays {
        relay.restart().await;
    }
    for relay in &relays {
        expect_429(
            relay.send_json(&token, json!({"message": "m"})).await,
            "token_monthly",
        )
        .await;
    }
    // The count is the token's: another token of the same user still sends.
    let other = relays[1].admin(&["token", "create", "--user", "alice", "--label", "other"]);
    relays[0].api().send(&other, json!({"message": "m"})).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_other_rolling_windows_are_exact_across_relays() {
    /// A layer's name, and how to turn on only that layer.
    type Layer = (&'static str, fn(&mut Limits));
    let layers: [Layer; 3] = [
        ("ip_minute", |l| l.ip_minute = 10),
        ("ip_hour", |l| l.ip_hour = 10),
        ("receiver_daily", |l| l.receiver_daily = 10),
    ];
    for (layer, set) in layers {
        let Some((_, relays, token)) = limited(2, set).await else {
            return;
        };
        let responses = sends(&relays, &token, 30, None).await;
        let accepted = accepted_else_429(responses, layer).await;
        assert_eq!(accepted, 10, "both relays together accept {layer}'s limit");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_idempotency_key_replays_on_every_relay_and_is_charged_once() {
    let Some((url, relays, token)) = limited(2, |l| l.token_burst = 10).await else {
        return;
    };
    let mut ids = std::collections::HashSet::new();
    for resp in sends(&relays, &token, 24, Some("nightly-backup-2026-11-22")).await {
        assert_eq!(resp.status(), 200);
        let body: Value = resp.json().await.unwrap();
        ids.insert(body["id"].as_str().unwrap().to_owned());
    }
    assert_eq!(ids.len(), 1, "one message id in every 200: {ids:?}");
    let id = ids.into_iter().next().unwrap();
    for relay in &relays {
        let status = relay.api().status(&token, &id).await;
        assert_eq!(status["id"], id.as_str());
        assert_eq!(device_ids(&status, "deliveries").len(), 2);
    }
    assert_eq!(pg_number(&url, "SELECT count(*) FROM messages").await, 1);
    assert_eq!(pg_number(&url, "SELECT count(*) FROM jobs").await, 2);
    // The burst window was charged once: 9 of its 10 are left.
    let responses = sends(&relays, &token, 12, None).await;
    assert_eq!(accepted_else_429(responses, "token_burst").await, 9);
    // With the window full, the key still replays (a replay charges nothing), on both relays.
    for resp in sends(&relays, &token, 2, Some("nightly-backup-2026-11-22")).await {
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.json::<Value>().await.unwrap()["id"], id.as_str());
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_revoked_token_is_refused_by_every_relay_at_the_next_request() {
    let Some((url, relays, first)) = limited(2, |_| {}).await else {
        return;
    };
    let (a, b) = (&relays[0], &relays[1]);
    let second = b.admin(&["token", "create", "--user", "alice", "--label", "second"]);
    for token in [&first, &second] {
        for relay in [a, b] {
            relay
                .api()
                .send(token, json!({"message": "still good"}))
                .await;
        }
    }
    let store = a.state().store.clone();
    let now = reflecto::store::now_ms();
    // Through relay A's store, then through `reflecto admin --database`.
    let record = store.authenticate_token(&first).await.unwrap().unwrap();
    store.revoke_token(&record.id, now).await.unwrap();
    let record = store.authenticate_token(&second).await.unwrap().unwrap();
    pg_admin(&url, &["token", "revoke", &record.id]);
    for token in [&first, &second] {
        for relay in [b, a] {
            let resp = relay.send_json(token, json!({"message": "m"})).await;
            assert_eq!(resp.status(), 401);
            assert_eq!(code_of(&resp.json().await.unwrap()), "invalid_token");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn devices_added_paired_or_removed_anywhere_hold_on_every_relay() {
    let Some((url, relays, token)) = limited(2, |_| {}).await else {
        return;
    };
    let (a, b) = (&relays[0], &relays[1]);
    a.api().send(&token, json!({"message": "before"})).await;

    // One device added by the admin command, one paired on B with a code the admin created.
    let (added, added_credential) = a.extension("tablet");
    let code = pg_admin(&url, &["pair", "--user", "alice"]);
    let pairing = json!({"code": code, "type": "extension", "label": "paired"});
    let paired = b.api().pair(pairing).await;
    let paired_id = paired.device_id;
    let paired_credential = paired.credential.unwrap();

    let reply = sent(a, &token, "to everyone").await;
    let targets = device_ids(&reply, "delivered_to");
    assert!(targets.contains(&added), "{reply}");
    assert!(targets.contains(&paired_id), "{reply}");
    // Paired on B, streamed on A.
    let got = read_sse_events(a.api().stream(&paired_credential).await, 1, PATIENCE).await;
    let data: Value = serde_json::from_str(&got[0].1).unwrap();
    assert_eq!(data["id"], reply["id"]);

    // Removed through A's store: refused by B, and the stream B holds for it ends (SPEC
    // §1.10: within 15 s; the guard is generous). Removed by the admin command: refused by both.
    let mut held = SseEvents::new(b.api().stream(&paired_credential).await);
    let replayed = held.next(Instant::now() + PATIENCE).await;
    assert_eq!(
        replayed.map(|(seq, _)| seq),
        Some(got[0].0),
        "unacked, so sent again"
    );
    let store = a.state().store.clone();
    store
        .remove_device(&paired_id, reflecto::store::now_ms())
        .await
        .unwrap();
    let refused = (401, "invalid_token".to_owned());
    assert_eq!(sync_refusal(b, &paired_credential).await, refused);
    let ack = post(
        b,
        "/v1/sync/ack",
        Some(&paired_credential),
        json!({"ids": [1]}),
    )
    .await;
    assert_eq!(ack.status(), 401);
    let after = held.next(Instant::now() + 2 * PATIENCE).await;
    assert!(
        after.is_none() && held.ended,
        "B's stream of the removed device stayed open"
    );
    pg_admin(&url, &["device", "remove", &added]);
    for relay in [a, b] {
        assert_eq!(sync_refusal(relay, &added_credential).await, refused);
    }
    let reply = sent(b, &token, "after").await;
    let targets = device_ids(&reply, "delivered_to");
    assert!(
        !targets.contains(&added) && !targets.contains(&paired_id),
        "{reply}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn every_relay_is_ready_and_answers_for_messages_accepted_by_another() {
    let Some(url) = pg_database() else { return };
    let relays = relays(&url, 2, no_limits()).await;
    let (a, b) = (&relays[0], &relays[1]);
    let (token, phone, desk) = a.alice();
    for relay in [a, b] {
        assert_ready(relay).await;
    }
    let id = a.api().send(&token, json!({"message": "m"})).await;
    let status = b.api().status(&token, &id).await;
    assert_eq!(status["id"], id.as_str());
    assert_eq!(device_ids(&status, "deliveries"), [phone, desk]);
    let unknown = format!("/v1/messages/msg_{}", "0".repeat(32));
    assert_eq!(get(b, &unknown, Some(&token)).await.status(), 404);
}

/// It used to open the store first, migrating the very database it was asked to back up,
/// and then refused with `conflict`.
#[tokio::test(flavor = "multi_thread")]
async fn admin_backup_on_postgres_names_pg_dump_and_leaves_the_database_untouched() {
    let Some(url) = pg_database() else { return };
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("copy.db");
    let out = Command::new(BIN)
        .args(["admin", "--database", &url, "backup"])
        .arg(&file)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("usage_error"), "{stderr}");
    assert!(stderr.contains("pg_dump"), "{stderr}");
    assert!(!file.exists());
    let tables = "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'";
    assert_eq!(
        pg_number(&url, tables).await,
        0,
        "the database was written to"
    );
}

/// Needs no PostgreSQL: nothing listens on port 1.
#[test]
fn serve_on_an_unreachable_database_exits_2_without_its_password() {
    const PASSWORD: &str = "pw-never-printed-5e1f";
    let dir = tempfile::tempdir().unwrap();
    let started = std::time::Instant::now();
    let child = Command::new(BIN)
        .arg("serve")
        .arg("--database")
        .arg(format!(
            "postgres://reflecto:{PASSWORD}@127.0.0.1:1/reflecto"
        ))
        .args(["--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (done, finished) = std::sync::mpsc::channel();
    std::thread::spawn(move || done.send(child.wait_with_output()));
    // SPEC: a clear error and exit 2 within 15 s.
    let out = finished
        .recv_timeout(Duration::from_secs(15))
        .expect("serve still running 15 s after it was pointed at an unreachable database")
        .unwrap();
    println!("serve gave up after {:?}", started.elapsed());
    let output = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(2), "{output}");
    assert!(output.contains("store_unreachable"), "{output}");
    assert!(!output.contains(PASSWORD), "{output}");
}

async fn pg_exec(url: &str, sql: &str) {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    client.batch_execute(sql).await.unwrap();
}

/// SPEC §3 / issue 12: a wrong password ends the command with a clear error and exit 2 within
/// 15 s, and prints no password; the right one then works. The test cluster trusts everyone,
/// so one role of its own is made to need a password (scram-sha-256) in `pg_hba.conf`.
#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_password_exits_2_without_printing_it_and_the_right_one_works() {
    const RIGHT: &str = "right-pw-7c2a";
    const WRONG: &str = "wrong-pw-91fe";
    let Some(url) = pg_database() else { return };
    let cluster = reflecto::pg_cluster::shared().unwrap();
    let role = format!("reflecto_pw_{}", std::process::id());
    pg_exec(
        &url,
        &format!("CREATE ROLE {role} LOGIN PASSWORD '{RIGHT}'"),
    )
    .await;
    pg_exec(&url, &format!("CREATE DATABASE {role} OWNER {role}")).await;
    let hba = cluster.dir().join("data").join("pg_hba.conf");
    let rules = std::fs::read_to_string(&hba).unwrap();
    // First match wins: this line, for this role only, goes before the cluster's `trust` lines.
    std::fs::write(
        &hba,
        format!("host all {role} 127.0.0.1/32 scram-sha-256\n{rules}"),
    )
    .unwrap();
    pg_exec(&url, "SELECT pg_reload_conf()").await;
    let at = |password: &str| {
        format!(
            "postgres://{role}:{password}@127.0.0.1:{}/{role}",
            cluster.port()
        )
    };

    let wrong = at(WRONG);
    let started = std::time::Instant::now();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(BIN)
            .args(["admin", "--database", &wrong, "user", "list"])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let output = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(started.elapsed() < Duration::from_secs(15), "{output}");
    assert_eq!(out.status.code(), Some(2), "{output}");
    assert!(output.contains("store_unreachable"), "{output}");
    assert!(
        output.contains("password authentication failed"),
        "{output}"
    );
    assert!(
        !output.contains(WRONG) && !output.contains(RIGHT),
        "{output}"
    );

    let right = at(RIGHT);
    let listed = tokio::task::spawn_blocking(move || {
        pg_admin(&right, &["user", "add", "carol"]);
        pg_admin(&right, &["user", "list"])
    })
    .await
    .unwrap();
    assert!(listed.starts_with("carol\t"), "{listed}");
}
