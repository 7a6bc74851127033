//! SPEC §1.17 through the real relay: an urgent message with `retry`/`expire` reaches every
//! channel again every `retry` (a desktop stream, FCM through the fake FCM, Web Push through
//! the fake push service) until a device acknowledges; the relay's injected clock is moved
//! instead of waiting. Two relays on PostgreSQL send one repeat per interval in total, and an
//! acknowledgement on either stops them. A restart mid-repeat neither loses nor doubles one.

use crate::fake_fcm::FakeFcm;
use crate::harness::{
    Api, KillOnDrop, ManualClock, Relay, SseEvents, assert_refused, json_stdout_of, keys_of,
    no_limits, pg_database, python_with, spawn_announcing, stdout_of,
};
use crate::webpush_core::{FakePush, python_available, webpush_worker};
use reflecto::relay::maintain_once;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

const RETRY: Duration = Duration::from_secs(30);
/// The maintenance beat (5 s) plus a margin: a due repeat arrives within it.
const BEAT_AND_MARGIN: Duration = Duration::from_secs(8);

fn urgent(text: &str, device: &str) -> Value {
    json!({"message": text, "priority": "urgent", "retry": 30, "expire": 600, "device": device})
}

/// The next `notification` event within `wait`: (event id, message id), skipping nothing.
async fn next_notification(events: &mut SseEvents, wait: Duration) -> Option<(i64, String)> {
    let (seq, name, data) = events.next_event(Instant::now() + wait).await?;
    assert_eq!(name, "notification", "{data}");
    let data: Value = serde_json::from_str(&data).unwrap();
    Some((seq, data["id"].as_str().unwrap().to_owned()))
}

/// The desk's stream on `api`, open, with its first notification read and acknowledged: the
/// stream and that notification's message id.
async fn stream_after_first(api: &Api, desk: &str) -> (SseEvents, String) {
    let mut events = SseEvents::new(api.stream(desk).await);
    let id = ack_next(api, &mut events, desk).await;
    (events, id)
}

/// The next notification on `events`, which must come within [`BEAT_AND_MARGIN`], acknowledged
/// on the stream: its message id.
async fn ack_next(api: &Api, events: &mut SseEvents, desk: &str) -> String {
    let (seq, id) = next_notification(events, BEAT_AND_MARGIN).await.unwrap();
    api.ack(desk, &[seq]).await;
    id
}

/// A relay on a clock the test moves.
async fn relay_on(
    clock: &Arc<ManualClock>,
    tweak: impl FnOnce(&mut reflecto::relay::ServeConfig),
) -> Relay {
    Relay::start_with(no_limits(), clock.clone(), tweak).await
}

#[tokio::test(flavor = "multi_thread")]
async fn an_urgent_message_reaches_a_desktop_stream_again_every_retry_until_acknowledged() {
    let clock = ManualClock::now();
    let relay = relay_on(&clock, |_| {}).await;
    let (token, desk) = relay.alice_with_desk();
    let api = relay.api();
    let id = api.send(&token, urgent("disk full on db1", "desk")).await;
    let (mut events, first) = stream_after_first(&api, &desk).await;
    assert_eq!(first, id);
    let status = api.status(&token, &id).await;
    assert_eq!(status["repeat"]["retry"], 30, "{status}");
    assert_eq!(status["repeat"]["expire"], 600);
    assert_eq!(status["repeat"]["repeats"], 0);
    assert!(status["repeat"]["expires_at"].is_string());
    assert_eq!(status["callback"], Value::Null);

    // Nothing before `retry`: the relay's own maintenance beat finds nothing due.
    clock.advance(RETRY - Duration::from_secs(1));
    assert_eq!(
        next_notification(&mut events, Duration::from_secs(6)).await,
        None
    );
    for round in 1..=2 {
        clock.advance(Duration::from_secs(if round == 1 { 1 } else { 30 }));
        let started = Instant::now();
        let (seq, again) = next_notification(&mut events, BEAT_AND_MARGIN)
            .await
            .unwrap_or_else(|| panic!("repeat {round} did not arrive"));
        println!(
            "repeat {round} reached the stream {:?} after the clock passed retry",
            started.elapsed()
        );
        assert_eq!(again, id);
        api.ack(&desk, &[seq]).await;
        assert_eq!(api.status(&token, &id).await["repeat"]["repeats"], round);
    }
    let acked = Instant::now();
    let (status, reply) = relay.api().acknowledge(&desk, &id, json!({})).await;
    assert_eq!(status, 200, "{reply}");
    // No further repeat: two more intervals pass, each with beats to find one.
    for _ in 0..2 {
        clock.advance(RETRY);
        assert_eq!(next_notification(&mut events, BEAT_AND_MARGIN).await, None);
    }
    println!(
        "after the acknowledgement no repeat reached the stream in {:?} (two intervals, clock moved)",
        acked.elapsed()
    );
    assert_eq!(api.status(&token, &id).await["repeat"]["repeats"], 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn fcm_gets_a_new_message_collapsing_on_the_id_every_retry_until_acknowledged() {
    let clock = ManualClock::now();
    let relay = relay_on(&clock, |_| {}).await;
    let (token, _, _) = relay.alice();
    let oncall = relay
        .pair(json!({"type": "android", "label": "oncall", "fcm_token": "fcm-oncall"}))
        .await;
    let (phone, credential) = (oncall.device_id, oncall.credential.unwrap());
    let fake = FakeFcm::start().await;
    let worker = fake.worker(relay.state().relay.clone());
    let api = relay.api();
    let id = api.send(&token, urgent("api down", "oncall")).await;
    assert_eq!(worker.run_once().await.unwrap(), 1);
    let state = relay.state();
    for round in 1..=2 {
        clock.advance(RETRY);
        maintain_once(&state).await.unwrap();
        assert_eq!(worker.run_once().await.unwrap(), 1, "repeat {round}");
    }
    let sends = fake.sends();
    assert_eq!(sends.len(), 3, "{sends:?}");
    assert!(sends[0]["message"]["android"].get("collapse_key").is_none());
    for repeat in &sends[1..] {
        let message = &repeat["message"];
        assert_eq!(message["token"], "fcm-oncall");
        assert_eq!(message["data"]["id"], id.as_str());
        assert_eq!(message["data"]["message"], "api down");
        assert_eq!(message["android"]["priority"], "HIGH");
        assert_eq!(message["android"]["collapse_key"], id.as_str(), "{message}");
    }
    let status = api.status(&token, &id).await;
    assert_eq!(status.delivery(&phone)["state"], "delivered");
    assert_eq!(status["repeat"]["repeats"], 2);
    assert_eq!(
        relay.api().acknowledge(&credential, &id, json!({})).await.0,
        200
    );
    for _ in 0..3 {
        clock.advance(RETRY);
        maintain_once(&state).await.unwrap();
        assert_eq!(worker.run_once().await.unwrap(), 0);
    }
    assert_eq!(fake.sends().len(), 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn web_push_gets_the_message_again_with_its_retry_for_renotify() {
    if !python_available() {
        return;
    }
    let clock = ManualClock::now();
    let relay = relay_on(&clock, |c| c.webpush_allow_local = true).await;
    let (token, _, _) = relay.alice();
    let fake = FakePush::start();
    let browser = fake.pair_browser(&relay, "201").await;
    let state = relay.state();
    let worker = webpush_worker(&relay, 3).await;
    let id = relay
        .api()
        .send(&token, urgent("cert expires", "web"))
        .await;
    assert_eq!(worker.run_once().await.unwrap(), 1);
    for _ in 1..=2 {
        clock.advance(RETRY);
        maintain_once(&state).await.unwrap();
        assert_eq!(worker.run_once().await.unwrap(), 1);
    }
    let received = fake.received("201").await;
    assert_eq!(received.len(), 3, "{received:?}");
    for push in &received {
        assert_eq!(push["ok"], true, "{push}");
        let plain: Value = serde_json::from_str(push["plaintext"].as_str().unwrap()).unwrap();
        assert_eq!(plain["id"], id.as_str());
        // The web app shows it with `tag` = id and `renotify` because the payload repeats.
        assert_eq!(plain["envelope"]["payload"]["retry"], 30, "{plain}");
        assert_eq!(plain["envelope"]["payload"]["priority"], "urgent");
    }
    assert_eq!(
        relay
            .api()
            .acknowledge(browser.credential.as_deref().unwrap(), &id, json!({}))
            .await
            .0,
        200
    );
    clock.advance(RETRY);
    maintain_once(&state).await.unwrap();
    assert_eq!(worker.run_once().await.unwrap(), 0);
    assert_eq!(fake.received("201").await.len(), 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn repeat_fields_are_checked_as_the_spec_says() {
    let (relay, token) = Relay::with_alice().await;
    let api = relay.api();
    let bad = [
        json!({"message": "m", "priority": "urgent", "retry": 30}),
        json!({"message": "m", "priority": "high", "retry": 30, "expire": 600}),
        json!({"message": "m", "priority": "urgent", "retry": 10, "expire": 600}),
        json!({"message": "m", "priority": "urgent", "retry": 30, "expire": 20000}),
        json!({"message": "m", "priority": "urgent", "retry": 30, "expire": 600, "ttl": 100}),
    ];
    api.refuses_sends(&token, "invalid_repeat", bad).await;
    // A send without them has no repeat.
    let id = api
        .send(&token, json!({"message": "m", "priority": "urgent"}))
        .await;
    assert_eq!(api.status(&token, &id).await["repeat"], Value::Null);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_restart_mid_repeat_neither_loses_nor_doubles_a_repeat() {
    let clock = ManualClock::now();
    let mut relay = relay_on(&clock, |_| {}).await;
    let (token, desk) = relay.alice_with_desk();
    let id = relay
        .api()
        .send(&token, urgent("raid degraded", "desk"))
        .await;
    let (events, _) = stream_after_first(&relay.api(), &desk).await;
    drop(events);
    // Stop the relay, move the clock past the due repeat while it is down, start it again on
    // the same data dir and the same clock.
    let old = relay.running.take().unwrap();
    let _ = old.shutdown.send(());
    old.task.await.unwrap().unwrap();
    clock.advance(RETRY);
    let config = {
        let mut c = crate::harness::config(relay.dir.path(), no_limits());
        c.database = relay.database.clone();
        c
    };
    let restarted = Instant::now();
    let running = reflecto::relay::start_with_clock(&config, clock.clone())
        .await
        .unwrap();
    relay.url = format!("http://{}", running.addr);
    relay.running = Some(running);
    let mut events = SseEvents::new(relay.api().stream(&desk).await);
    let (seq, again) = next_notification(&mut events, BEAT_AND_MARGIN)
        .await
        .expect("the repeat that fell due while the relay was down");
    println!(
        "restart: the repeat due while the relay was down arrived {:?} after start",
        restarted.elapsed()
    );
    assert_eq!(again, id);
    relay.api().ack(&desk, &[seq]).await;
    // Once only, and the next one a retry later.
    assert_eq!(
        next_notification(&mut events, Duration::from_secs(6)).await,
        None
    );
    clock.advance(RETRY);
    assert!(
        next_notification(&mut events, BEAT_AND_MARGIN)
            .await
            .is_some()
    );
    assert_eq!(
        relay.api().status(&token, &id).await["repeat"]["repeats"],
        2
    );
}

/// SPEC §3: two relays on one database, both beating on the same clock, send one repeat per
/// interval in total; an acknowledgement on either stops them.
#[tokio::test(flavor = "multi_thread")]
async fn two_relays_on_postgres_send_one_repeat_per_interval_and_either_stops_them() {
    let Some(url) = pg_database() else { return };
    let clock = ManualClock::now();
    let a = relay_on(&clock, |c| c.database = Some(url.clone())).await;
    let b = relay_on(&clock, |c| c.database = Some(url.clone())).await;
    let (token, desk) = a.alice_with_desk();
    for ack_on in [&a, &b] {
        let id = a.api().send(&token, urgent("pager", "desk")).await;
        let (mut events, _) = stream_after_first(&b.api(), &desk).await;
        for round in 1..=2 {
            clock.advance(RETRY);
            // Both beats run on their own; both relays are also pushed at once.
            let (sa, sb) = (a.state(), b.state());
            let (x, y) = tokio::join!(maintain_once(&sa), maintain_once(&sb));
            x.unwrap();
            y.unwrap();
            let (seq, again) = next_notification(&mut events, BEAT_AND_MARGIN)
                .await
                .unwrap_or_else(|| panic!("repeat {round}"));
            assert_eq!(again, id);
            ack_on.api().ack(&desk, &[seq]).await;
            // No second copy of this round from the other relay.
            assert_eq!(
                next_notification(&mut events, Duration::from_secs(6)).await,
                None
            );
            assert_eq!(
                a.api().status(&token, &id).await["repeat"]["repeats"],
                round
            );
        }
        let started = Instant::now();
        assert_eq!(ack_on.api().acknowledge(&desk, &id, json!({})).await.0, 200);
        clock.advance(RETRY);
        assert_eq!(next_notification(&mut events, BEAT_AND_MARGIN).await, None);
        println!(
            "two relays: no repeat after the acknowledgement ({:?} watched)",
            started.elapsed()
        );
    }
}

/// Runs `tests/py/pushover_clients.py ARGS` and parses the one JSON object it prints.
fn pushover_client(args: &[&str]) -> Value {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/py/pushover_clients.py");
    let run = std::process::Command::new("python3")
        .arg(script)
        .args(args)
        .output();
    json_stdout_of(run.unwrap())
}

/// `GET /1/receipts/{receipt}.json` with the Pushover app `token`: the receipt as JSON.
async fn receipt_of(relay: &Relay, receipt: &str, token: &str) -> Value {
    let path = format!("/1/receipts/{receipt}.json?token={token}");
    relay.api().get_json(&path).await
}

/// SPEC §1.3, §1.17: `chump` and `pushover-complete`, unmodified but for their endpoint
/// constant, send an emergency message, read its receipt, see it acknowledged, and cancel.
#[tokio::test(flavor = "multi_thread")]
async fn pushover_client_libraries_send_emergencies_read_receipts_and_cancel() {
    if !python_with("chump, pushover_complete", "chump pushover-complete") {
        return;
    }
    let relay = Relay::start(no_limits()).await;
    let (token, desk) = relay.alice_with_desk();
    let api = relay.api();
    for library in ["chump", "pushover-complete"] {
        let sent = pushover_client(&[library, "send", &relay.url, &token]);
        let (id, receipt) = match library {
            "chump" => {
                assert_eq!(sent["acknowledged"], false, "{sent}");
                assert_eq!(sent["expired"], false, "{sent}");
                (
                    sent["id"].as_str().unwrap().to_owned(),
                    sent["receipt"].as_str().unwrap().to_owned(),
                )
            }
            _ => {
                assert_eq!(sent["status"], 1, "{sent}");
                (
                    sent["request"].as_str().unwrap().to_owned(),
                    sent["receipt"].as_str().unwrap().to_owned(),
                )
            }
        };
        assert_eq!(receipt.len(), 30, "{receipt}");
        assert!(
            receipt.bytes().all(|b| b.is_ascii_alphanumeric()),
            "{receipt}"
        );
        let status = api.status(&token, &id).await;
        assert_eq!(status["repeat"]["retry"], 30, "{status}");
        assert_eq!(status["repeat"]["expire"], 600);
        // The receipt's exact field set, before anyone answers.
        let raw = receipt_of(&relay, &receipt, &token).await;
        assert_eq!(
            keys_of(&raw),
            [
                "acknowledged",
                "acknowledged_at",
                "acknowledged_by",
                "acknowledged_by_device",
                "called_back",
                "called_back_at",
                "expired",
                "expires_at",
                "last_delivered_at",
                "request",
                "status"
            ]
        );
        assert_eq!(
            (raw["acknowledged"].clone(), raw["request"].clone()),
            (json!(0), json!(id))
        );
        assert_eq!(raw["acknowledged_by"], "");
        // The desk receives it and its person acknowledges.
        let (_events, got) = stream_after_first(&api, &desk).await;
        assert_eq!(got, id);
        assert_eq!(relay.api().acknowledge(&desk, &id, json!({})).await.0, 200);
        let polled = pushover_client(&[library, "poll", &relay.url, &token, &receipt]);
        match library {
            "chump" => {
                assert_eq!(polled["acknowledged"], true, "{polled}");
                assert_eq!(polled["ringing"], false, "{polled}");
                assert_eq!(polled["acknowledged_by"], "alice");
                assert!(polled["last_delivered_at"].is_string(), "{polled}");
            }
            _ => {
                assert_eq!(polled["acknowledged"], 1, "{polled}");
                assert_eq!(polled["acknowledged_by"], "alice");
                assert_eq!(polled["acknowledged_by_device"], "desk");
                assert!(polled["acknowledged_at"].as_i64().unwrap() > 0);
                assert!(polled["last_delivered_at"].as_i64().unwrap() > 0);
                assert_eq!(polled["expired"], 0);
                assert_eq!(polled["called_back"], 0);
            }
        }
        let cancelled = pushover_client(&[library, "cancel", &relay.url, &token, &receipt]);
        match library {
            "chump" => assert_eq!(cancelled["cancelled"], true, "{cancelled}"),
            _ => assert_eq!(cancelled, json!({"status": 1})),
        }
    }
    // An unknown receipt, a cancel without repeats left, and another owner's token.
    let missing = relay
        .http()
        .get(format!(
            "{}/1/receipts/{}.json?token={token}",
            relay.url,
            "a".repeat(30)
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    assert_eq!(
        missing.json::<Value>().await.unwrap(),
        json!({"status": 0, "errors": ["not_found"]})
    );
}

/// Pushover's cancel stops the repeats (SPEC §1.17), without an acknowledgement.
#[tokio::test(flavor = "multi_thread")]
async fn a_cancelled_receipt_repeats_no_more() {
    let clock = ManualClock::now();
    let relay = relay_on(&clock, |_| {}).await;
    let (token, desk) = relay.alice_with_desk();
    let emergency = [
        ("token", token.as_str()),
        ("user", "u"),
        ("message", "m"),
        ("priority", "2"),
        ("retry", "30"),
        ("expire", "120"),
        ("device", "desk"),
    ];
    let api = relay.api();
    let sent: Value = api
        .post_form("/1/messages.json", &emergency)
        .await
        .json()
        .await
        .unwrap();
    let receipt = sent["receipt"].as_str().unwrap().to_owned();
    let (mut events, _) = stream_after_first(&relay.api(), &desk).await;
    let cancel_path = format!("/1/receipts/{receipt}/cancel.json");
    let cancel = api.post_form(&cancel_path, &[("token", &token)]).await;
    assert_eq!(cancel.status(), 200);
    clock.advance(RETRY);
    maintain_once(&relay.state()).await.unwrap();
    assert_eq!(
        next_notification(&mut events, Duration::from_secs(6)).await,
        None
    );
    // The expiry shows on the receipt once `expire` passes.
    clock.advance(RETRY * 3);
    let raw = receipt_of(&relay, &receipt, &token).await;
    assert_eq!(
        (raw["expired"].clone(), raw["acknowledged"].clone()),
        (json!(1), json!(0)),
        "{raw}"
    );
}

/// The callback receiver (`tests/py/callback_receiver.py`) on 127.0.0.1: its URL and process.
struct Receiver {
    _process: KillOnDrop,
    url: String,
}

impl Receiver {
    /// Verifies with the signing key of `token`; answers `script` (e.g. "500") first, then 200.
    fn start(token: &str, script: &str) -> Receiver {
        use base64::Engine;
        use sha2::Digest;
        let secret = base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(token));
        let (process, port) = spawn_announcing(
            std::process::Command::new("python3")
                .arg(concat!(
                    env!("CARGO_MANIFEST_DIR"),
                    "/tests/py/callback_receiver.py"
                ))
                .args([secret.as_str(), script]),
        );
        Receiver {
            _process: process,
            url: format!("http://127.0.0.1:{}", port.trim()),
        }
    }

    async fn received(&self) -> Vec<Value> {
        let received = Api::new(&self.url).get_json("/_received").await;
        serde_json::from_value(received).unwrap()
    }
}

/// SPEC §1.17: the signed callback, verified by `standardwebhooks`; a scripted 500 is retried
/// under the same `webhook-id`; `expired` comes when nobody answers; timed from the
/// acknowledgement with the relay's own maintenance beat.
#[tokio::test(flavor = "multi_thread")]
async fn callbacks_are_signed_retried_and_say_acknowledged_or_expired() {
    if !python_with("standardwebhooks", "standardwebhooks") {
        return;
    }
    let clock = ManualClock::now();
    let relay = relay_on(&clock, |c| c.callback_allow_local = true).await;
    let (token, _, _) = relay.alice();
    let (desk_id, desk) = relay.extension("desk");
    let api = relay.api();
    let state = relay.state();

    // 1. Acknowledged, the receiver failing once.
    let receiver = Receiver::start(&token, "500");
    let mut body = urgent("backup failed", "desk");
    body["callback"] = json!(format!("{}/hook", receiver.url));
    let id = api.send(&token, body).await;
    assert_eq!(
        api.status(&token, &id).await["callback"],
        json!({"state": "pending", "at": null})
    );
    assert_eq!(relay.api().acknowledge(&desk, &id, json!({})).await.0, 200);
    maintain_once(&state).await.unwrap();
    let calls = receiver.received().await;
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert_eq!(calls[0]["answered"], 500);
    assert_eq!(
        api.status(&token, &id).await["callback"]["state"],
        "pending"
    );
    // The back-off passes (at most an hour); the retry is delivered.
    clock.advance(Duration::from_secs(3600));
    maintain_once(&state).await.unwrap();
    let calls = receiver.received().await;
    assert_eq!(calls.len(), 2, "{calls:?}");
    for call in &calls {
        assert_eq!(call["verified"], true, "{call}");
        assert_eq!(call["webhook_id"], format!("{id}.acknowledged"));
        let payload = &call["payload"];
        assert_eq!(payload["type"], "acknowledged");
        assert_eq!(payload["id"], id.as_str());
        assert_eq!(payload["device_id"], desk_id.as_str());
        assert_eq!(payload["response"], Value::Null);
        assert!(payload["acknowledged_at"].is_string(), "{payload}");
    }
    let status = api.status(&token, &id).await;
    assert_eq!(status["callback"]["state"], "delivered", "{status}");
    assert!(status["callback"]["at"].is_string());
    // Delivered once: nothing more.
    clock.advance(Duration::from_secs(3600));
    maintain_once(&state).await.unwrap();
    assert_eq!(receiver.received().await.len(), 2);

    // 2. Nobody answers: `expired` once `expire` runs out.
    let quiet = Receiver::start(&token, "");
    let mut body = json!({"message": "cert expiring", "priority": "urgent", "retry": 30,
        "expire": 60, "device": "desk", "callback": format!("{}/hook", quiet.url)});
    body["ttl"] = json!(3600);
    let id = api.send(&token, body).await;
    clock.advance(Duration::from_secs(61));
    maintain_once(&state).await.unwrap();
    let calls = quiet.received().await;
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert_eq!(calls[0]["verified"], true, "{}", calls[0]);
    assert_eq!(calls[0]["webhook_id"], format!("{id}.expired"));
    assert_eq!(
        calls[0]["payload"],
        json!({"type": "expired", "id": id, "acknowledged_at": null, "device_id": null, "response": null})
    );

    // 3. Timed, on the relay's own beat: acknowledgement → callback received.
    let timed = Receiver::start(&token, "");
    let mut body = urgent("timed", "desk");
    body["callback"] = json!(format!("{}/hook", timed.url));
    let id = api.send(&token, body).await;
    let started = Instant::now();
    assert_eq!(relay.api().acknowledge(&desk, &id, json!({})).await.0, 200);
    while timed.received().await.is_empty() {
        assert!(
            started.elapsed() < BEAT_AND_MARGIN,
            "no callback within {BEAT_AND_MARGIN:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    println!(
        "acknowledgement to callback received: {:?} (maintenance beat 5 s)",
        started.elapsed()
    );
}

/// SPEC §1.17: a callback must be https to a public address unless `--callback-allow-local`.
#[tokio::test(flavor = "multi_thread")]
async fn a_callback_to_a_local_or_plain_http_address_is_invalid_url() {
    let (relay, token) = Relay::with_alice().await;
    let api = relay.api();
    let bad = [
        "http://example.com/hook",
        "https://127.0.0.1/hook",
        "https://10.0.0.1/x",
        "ftp://example.com/x",
    ]
    .map(|callback| json!({"message": "m", "callback": callback}));
    api.refuses_sends(&token, "invalid_url", bad).await;
}

/// SPEC §2.3: `reflecto send -p urgent --retry S --expire S --callback URL` through the real
/// binary, and `reflecto status` showing the repeats and the callback; a bad combination is
/// the engine's `invalid_repeat` before anything is sent.
#[tokio::test(flavor = "multi_thread")]
async fn the_cli_sends_a_repeating_page_and_status_shows_it() {
    let clock = ManualClock::now();
    let relay = relay_on(&clock, |c| c.callback_allow_local = true).await;
    let (token, _, _) = relay.alice();
    relay.extension("desk");
    // The real binary, on a blocking thread (the relay runs on this runtime).
    let cli = |args: &[&str]| {
        let mut cmd = std::process::Command::new(crate::harness::BIN);
        cmd.env("REFLECTO_CONFIG_DIR", relay.dir.path().join("cli-config"))
            .env("REFLECTO_SERVER", &relay.url)
            .env("REFLECTO_TOKEN", &token)
            .env_remove("REFLECTO_PROFILE")
            .args(args);
        tokio::task::spawn_blocking(move || cmd.output().unwrap())
    };
    let page = [
        "send",
        "db1 is down",
        "-p",
        "urgent",
        "--retry",
        "30",
        "--expire",
        "600",
        "--callback",
        "http://127.0.0.1:9/hook",
        "--json",
    ];
    let sent = json_stdout_of(cli(&page).await.unwrap());
    let id = sent["id"].as_str().unwrap().to_owned();
    clock.advance(RETRY);
    maintain_once(&relay.state()).await.unwrap();
    let text = stdout_of(cli(&["status", &id]).await.unwrap());
    assert!(text.contains("repeats every 30s until "), "{text}");
    assert!(text.contains("(1 so far)"), "{text}");
    assert!(text.contains("callback pending"), "{text}");
    // Refused by the engine, exit 2, before any request.
    let out = cli(&[
        "send", "m", "-p", "high", "--retry", "30", "--expire", "600",
    ])
    .await
    .unwrap();
    assert_refused(&out, 2, "error[invalid_repeat]");
}

/// SPEC §2.1: `reflecto listen` shows a notification once per delivery, so a repeat of an
/// urgent message (a new event) is shown again, and an event sent again is not.
#[tokio::test(flavor = "multi_thread")]
async fn listen_shows_each_repeat_once() {
    let clock = ManualClock::now();
    let relay = relay_on(&clock, |_| {}).await;
    let (token, _, _) = relay.alice();
    let desk = crate::harness::Desk::pair(relay.dir.path(), &relay.url);
    let id = relay.api().send(&token, urgent("disk full", "desk")).await;
    let poll = || tokio::task::block_in_place(|| desk.poll(&["--json"]));
    let first = poll();
    assert_eq!(first.lines().count(), 1, "{first}");
    assert!(first.contains(&id));
    clock.advance(RETRY);
    maintain_once(&relay.state()).await.unwrap();
    let again = poll();
    assert_eq!(
        again.lines().count(),
        1,
        "the repeat is shown again: {again}"
    );
    assert!(again.contains(&id));
    // Nothing new: nothing shown.
    let none = poll();
    assert_eq!(none.lines().count(), 0, "{none}");
}

/// SPEC §1.17: repeats are not charged to any rate limit: with a monthly and a daily budget,
/// three rounds of repeats leave both where the one send left them.
#[tokio::test(flavor = "multi_thread")]
async fn repeats_are_not_charged_to_any_limit() {
    let clock = ManualClock::now();
    let limits = reflecto::server::limits::Limits {
        token_monthly: 5,
        receiver_daily: 5,
        ..no_limits()
    };
    let relay = Relay::start_with(limits, clock.clone(), |_| {}).await;
    let (token, desk) = relay.alice_with_desk();
    let remaining = || async {
        let response = relay.api().get_ok("/v1/token", Some(&token)).await;
        response.headers()["x-ratelimit-remaining"]
            .to_str()
            .unwrap()
            .to_owned()
    };
    let id = relay.api().send(&token, urgent("page", "desk")).await;
    assert_eq!(remaining().await, "4");
    let mut events = SseEvents::new(relay.api().stream(&desk).await);
    for round in 0..=3 {
        if round > 0 {
            clock.advance(RETRY);
            maintain_once(&relay.state()).await.unwrap();
        }
        let got = ack_next(&relay.api(), &mut events, &desk).await;
        assert_eq!(got, id);
    }
    assert_eq!(
        relay.api().status(&token, &id).await["repeat"]["repeats"],
        3
    );
    assert_eq!(remaining().await, "4");
}
