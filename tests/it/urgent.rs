//! SPEC §1.17 through the real relay: an urgent message with `retry`/`expire` reaches every
//! channel again every `retry` (a desktop stream, FCM through the fake FCM, Web Push through
//! the fake push service) until a device acknowledges; the relay's injected clock is moved
//! instead of waiting. Two relays on PostgreSQL send one repeat per interval in total, and an
//! acknowledgement on either stops them. A restart mid-repeat neither loses nor doubles one.

use crate::fake_fcm::FakeFcm;
use crate::harness::{ManualClock, Relay, SseEvents, code_of, no_limits, pg_database};
use crate::webpush_core::{FakePush, python_available};
use reflecto::delivery::fcm::{FcmChannel, FcmClient};
use reflecto::delivery::webpush::client::WebPushClient;
use reflecto::delivery::webpush::vapid::{Subject, VapidSigner};
use reflecto::delivery::webpush::{WebPushChannel, load_vapid_key};
use reflecto::delivery::{Channels, Worker, WorkerSettings};
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

async fn acknowledge(relay: &Relay, credential: &str, id: &str) -> (u16, Value) {
    let response = relay
        .http()
        .post(format!("{}/v1/messages/{id}/acknowledge", relay.url))
        .bearer_auth(credential)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// The next `notification` event within `wait`: (event id, message id), skipping nothing.
async fn next_notification(events: &mut SseEvents, wait: Duration) -> Option<(i64, String)> {
    let (seq, name, data) = events.next_event(Instant::now() + wait).await?;
    assert_eq!(name, "notification", "{data}");
    let data: Value = serde_json::from_str(&data).unwrap();
    Some((seq, data["id"].as_str().unwrap().to_owned()))
}

/// A relay on a clock the test moves.
async fn relay_on(
    clock: &Arc<ManualClock>,
    tweak: impl FnOnce(&mut reflecto::relay::ServeConfig),
) -> Relay {
    Relay::start_with(no_limits(), clock.clone(), tweak).await
}

/// Pairs an android device for alice with `fcm_token`: (device id, credential).
async fn pair_android(relay: &Relay, label: &str, fcm_token: &str) -> (String, String) {
    let code = relay.admin(&["pair", "--user", "alice"]);
    let paired = relay
        .api()
        .pair(json!({"code": code, "type": "android", "label": label, "fcm_token": fcm_token}))
        .await;
    (paired.device_id, paired.credential.unwrap())
}

#[tokio::test(flavor = "multi_thread")]
async fn an_urgent_message_reaches_a_desktop_stream_again_every_retry_until_acknowledged() {
    let clock = ManualClock::now();
    let relay = relay_on(&clock, |_| {}).await;
    let (token, _, _) = relay.alice();
    let (_, desk) = relay.extension("desk");
    let api = relay.api();
    let id = api.send(&token, urgent("disk full on db1", "desk")).await;
    let mut events = SseEvents::new(api.stream(&desk).await);
    let (seq, first) = next_notification(&mut events, BEAT_AND_MARGIN)
        .await
        .unwrap();
    assert_eq!(first, id);
    api.ack(&desk, &[seq]).await;
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
    let (status, reply) = acknowledge(&relay, &desk, &id).await;
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

/// The FCM worker of `relay`, sending to `fake`.
fn fcm_worker(relay: &Relay, fake: &FakeFcm, key: &tempfile::NamedTempFile) -> Worker {
    let client = FcmClient::from_key_file(key.path(), &fake.url).unwrap();
    Worker::new(
        relay.state().relay.clone(),
        Channels::fcm(FcmChannel::new(client)),
        WorkerSettings {
            concurrency: 4,
            lease_ms: 30_000,
            max_attempts: 3,
        },
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn fcm_gets_a_new_message_collapsing_on_the_id_every_retry_until_acknowledged() {
    let clock = ManualClock::now();
    let relay = relay_on(&clock, |_| {}).await;
    let (token, _, _) = relay.alice();
    let (phone, credential) = pair_android(&relay, "oncall", "fcm-oncall").await;
    let fake = FakeFcm::start().await;
    let key = fake.key_file();
    let worker = fcm_worker(&relay, &fake, &key);
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
    assert_eq!(acknowledge(&relay, &credential, &id).await.0, 200);
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
    let code = relay.admin(&["pair", "--user", "alice"]);
    let browser = relay
        .api()
        .pair(
            json!({"code": code, "type": "webpush", "label": "browser", "subscription": {
            "endpoint": format!("{}/push/201", fake.origin),
            "keys": {"p256dh": fake.p256dh, "auth": fake.auth}}}),
        )
        .await;
    let state = relay.state();
    let vapid = load_vapid_key(&state.store, reflecto::store::now_ms())
        .await
        .unwrap();
    let worker = Worker::new(
        state.relay.clone(),
        Channels::webpush(WebPushChannel::new(
            WebPushClient::new(Duration::from_secs(10), true).unwrap(),
            VapidSigner::new(vapid, Subject::parse("mailto:ops@example.org").unwrap()),
        )),
        WorkerSettings {
            concurrency: 4,
            lease_ms: 30_000,
            max_attempts: 3,
        },
    );
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
        acknowledge(&relay, browser.credential.as_deref().unwrap(), &id)
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
    let relay = Relay::start(no_limits()).await;
    let (token, _, _) = relay.alice();
    let api = relay.api();
    for body in [
        json!({"message": "m", "priority": "urgent", "retry": 30}),
        json!({"message": "m", "priority": "high", "retry": 30, "expire": 600}),
        json!({"message": "m", "priority": "urgent", "retry": 10, "expire": 600}),
        json!({"message": "m", "priority": "urgent", "retry": 30, "expire": 20000}),
        json!({"message": "m", "priority": "urgent", "retry": 30, "expire": 600, "ttl": 100}),
    ] {
        let (status, reply) = api.send_reply(&token, body.clone()).await;
        assert_eq!(
            (status, code_of(&reply).as_str()),
            (400, "invalid_repeat"),
            "{body}"
        );
    }
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
    let (token, _, _) = relay.alice();
    let (_, desk) = relay.extension("desk");
    let id = relay
        .api()
        .send(&token, urgent("raid degraded", "desk"))
        .await;
    let mut events = SseEvents::new(relay.api().stream(&desk).await);
    let (seq, _) = next_notification(&mut events, BEAT_AND_MARGIN)
        .await
        .unwrap();
    relay.api().ack(&desk, &[seq]).await;
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
    let (token, _, _) = a.alice();
    let (_, desk) = a.extension("desk");
    for ack_on in [&a, &b] {
        let id = a.api().send(&token, urgent("pager", "desk")).await;
        let mut events = SseEvents::new(b.api().stream(&desk).await);
        let (seq, _) = next_notification(&mut events, BEAT_AND_MARGIN)
            .await
            .unwrap();
        b.api().ack(&desk, &[seq]).await;
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
        assert_eq!(acknowledge(ack_on, &desk, &id).await.0, 200);
        clock.advance(RETRY);
        assert_eq!(next_notification(&mut events, BEAT_AND_MARGIN).await, None);
        println!(
            "two relays: no repeat after the acknowledgement ({:?} watched)",
            started.elapsed()
        );
    }
}
