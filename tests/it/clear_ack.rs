//! SPEC §1.15 (clear) and §1.16 (acknowledgements, responses) through the real relay: clearing
//! by id and by key, the cancelled deliveries, the `clear` event on a desktop stream (acked like
//! any event), on Web Push (the fake push service decrypts `{"clear"}`) and on FCM (the fake
//! checks `{"type":"clear","id"}`), the first acknowledgement winning and clearing the others
//! (across two relays on PostgreSQL too, timed), a credential for every device type, the 404s,
//! `invalid_response`, `invalid_action`, and the status fields with a long poll that notices.

use crate::fake_fcm::FakeFcm;
use crate::harness::{Relay, SseEvents, code_of, no_limits, two_relays_on_postgres};
use crate::webpush_core::{FakePush, python_available, webpush_worker};
use reflecto::server::limits::Limits;
use serde_json::{Value, json};
use std::time::Duration;
use tokio::time::Instant;

/// A hang guard for what should take milliseconds.
const PATIENCE: Duration = Duration::from_secs(30);

/// The next event of any kind on `events`, within [`PATIENCE`]: (id, event name, data).
async fn next_event(events: &mut SseEvents) -> (i64, String, Value) {
    let (id, name, data) = events
        .next_event(Instant::now() + PATIENCE)
        .await
        .expect("an event on the stream");
    (id, name, serde_json::from_str(&data).unwrap())
}

/// The device with `credential` answers the question `id` with `response`; the relay accepts.
async fn answer(relay: &Relay, credential: &str, id: &str, response: &str) {
    let body = json!({ "response": response });
    let (status, reply) = relay.api().acknowledge(credential, id, body).await;
    assert_eq!(status, 200, "{reply}");
}

/// The question of `round` of a timed loop.
fn round_question(round: u32) -> Value {
    question(&format!("round {round}"))
}

/// A question with two response buttons and a link.
fn question(text: &str) -> Value {
    json!({"message": text, "actions": [
        {"label": "Deploy", "response": "deploy"},
        {"label": "Abort", "response": "abort"},
        {"label": "Diff", "url": "https://example.com/diff"},
    ]})
}

#[tokio::test(flavor = "multi_thread")]
async fn a_clear_by_id_cancels_what_waits_and_sends_a_clear_event_to_a_desktop_that_had_it() {
    let relay = Relay::start(no_limits()).await;
    // alice's phone waits (no FCM here) and her first desktop never reads its stream.
    let (token, phone, laptop) = relay.alice();
    let (desk, desk_credential) = relay.extension("desk");
    let (tablet, tablet_credential) = relay.extension("tablet");
    let api = relay.api();
    let id = api.send(&token, json!({"message": "disk full"})).await;
    // The desk reads and acks it; the tablet's stream is opened but its event never acked.
    let mut tablet_events = SseEvents::new(api.stream(&tablet_credential).await);
    assert_eq!(next_event(&mut tablet_events).await.1, "notification");
    let mut desk_events = SseEvents::new(api.stream(&desk_credential).await);
    let (seq, name, data) = next_event(&mut desk_events).await;
    assert_eq!(
        (name.as_str(), data["id"].as_str()),
        ("notification", Some(id.as_str()))
    );
    assert_eq!(api.ack(&desk_credential, &[seq]).await["acked"], 1);
    let before = api.status(&token, &id).await;
    assert_eq!(before["cleared_at"], Value::Null);

    let (status, cleared) = relay
        .api()
        .delete(&token, &format!("/v1/messages/{id}"))
        .await;
    assert_eq!(status, 200, "{cleared}");
    // Cancelled: the phone's queued job, the laptop's unread event and the tablet's event
    // sent but not acked (SPEC §1.15); cleared: the desk, which acked it.
    assert_eq!(cleared, json!({"id": id, "cancelled": 3, "cleared": 1}));
    let (clear_seq, name, data) = next_event(&mut desk_events).await;
    assert_eq!(name, "clear");
    assert_eq!(data, json!({"id": id}), "a clear names the message alone");
    assert_eq!(api.ack(&desk_credential, &[clear_seq]).await["acked"], 1);

    let after = api.status(&token, &id).await;
    assert!(after["cleared_at"].is_string(), "{after}");
    assert_eq!(after["acknowledged"], Value::Null);
    assert_eq!(after.delivery(&desk)["state"], "delivered");
    assert_eq!(after.delivery(&laptop)["state"], "cancelled");
    assert_eq!(after.delivery(&tablet)["state"], "cancelled");
    assert_eq!(after.delivery(&phone)["state"], "cancelled");
    assert_eq!(after.delivery(&phone)["next_attempt_at"], Value::Null);
    assert_eq!(
        after["deliveries"].as_array().unwrap().len(),
        4,
        "a clear is no delivery"
    );
    // The tablet gets no clear, and its late ack changes nothing.
    let deadline = Instant::now() + Duration::from_millis(700);
    assert!(tablet_events.next_event(deadline).await.is_none());
    assert_eq!(api.ack(&tablet_credential, &[1]).await["acked"], 0);
    // Twice is not an error: zeros.
    let (status, again) = relay
        .api()
        .delete(&token, &format!("/v1/messages/{id}"))
        .await;
    assert_eq!(
        (status, again),
        (200, json!({"id": id, "cancelled": 0, "cleared": 0}))
    );
    // Nothing is left on the desk's stream: a reconnect reads nothing.
    let replay = api
        .sync_events(&desk_credential, None, 1, Duration::from_millis(700))
        .await;
    assert!(replay.is_empty(), "{replay:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_clear_is_the_owners_alone_and_by_key_takes_the_newest() {
    let (relay, token) = Relay::with_alice().await;
    relay.admin(&["user", "add", "bob"]);
    let bob = relay.admin(&["token", "create", "--user", "bob", "--label", "ci"]);
    let api = relay.api();
    let first = api
        .send(&token, json!({"message": "running", "key": "ci:7"}))
        .await;
    let newest = api
        .send(&token, json!({"message": "passed", "key": "ci:7"}))
        .await;
    let other = api.send(&token, json!({"message": "plain"})).await;
    for (who, path) in [
        (&bob, format!("/v1/messages/{other}")),
        (&bob, "/v1/keys/ci:7".to_owned()),
        (
            &token,
            "/v1/messages/msg_0123456789abcdef0123456789abcdef".to_owned(),
        ),
        (&token, "/v1/keys/never-sent".to_owned()),
    ] {
        let (status, body) = relay.api().delete(who, &path).await;
        assert_eq!(
            (status, code_of(&body).as_str()),
            (404, "not_found"),
            "{path}"
        );
    }
    let (status, body) = relay
        .api()
        .delete("rfk_live_x", &format!("/v1/messages/{other}"))
        .await;
    assert_eq!((status, code_of(&body).as_str()), (401, "invalid_token"));
    assert_eq!(api.status(&token, &other).await["cleared_at"], Value::Null);

    let (status, cleared) = relay.api().delete(&token, "/v1/keys/ci:7").await;
    assert_eq!(status, 200, "{cleared}");
    assert_eq!(cleared["id"], newest.as_str());
    assert!(api.status(&token, &newest).await["cleared_at"].is_string());
    assert_eq!(api.status(&token, &first).await["cleared_at"], Value::Null);
}

/// The long poll of `reflecto ask` / `send --wait` ends at an acknowledgement and at a clear.
#[tokio::test(flavor = "multi_thread")]
async fn a_held_status_request_returns_at_an_acknowledgement_and_at_a_clear() {
    let relay = Relay::start(no_limits()).await;
    let (token, credential) = relay.alice_with_desk();
    let id = relay.api().send(&token, question("deploy?")).await;
    let api = relay.api();
    let held = |etag: &str| {
        let answer = api.held_status(&token, &id, etag);
        async move {
            let started = Instant::now();
            let (status, etag, body) = answer.await;
            (status, etag, body, started.elapsed())
        }
    };
    let etag = api.etag(&token, &id).await;
    let waiting = tokio::spawn(held(&etag));
    tokio::time::sleep(Duration::from_millis(300)).await;
    answer(&relay, &credential, &id, "deploy").await;
    let (status, acked_tag, body, took) = waiting.await.unwrap();
    assert_eq!(status, 200, "{body}");
    assert_ne!(acked_tag, etag);
    assert_eq!(body["acknowledged"]["response"], "deploy");
    assert!(
        took < Duration::from_secs(5),
        "the wake-up ended it, not the recheck: {took:?}"
    );
    println!("long poll on SQLite: acknowledgement to the held answer {took:?}");

    let waiting = tokio::spawn(held(&acked_tag));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (status, _) = relay
        .api()
        .delete(&token, &format!("/v1/messages/{id}"))
        .await;
    assert_eq!(status, 200);
    let (status, cleared_tag, body, _) = waiting.await.unwrap();
    assert_eq!(status, 200, "{body}");
    assert_ne!(cleared_tag, acked_tag);
    assert!(body["cleared_at"].is_string(), "{body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn response_actions_are_checked_as_the_spec_says() {
    let (relay, token) = Relay::with_alice().await;
    let api = relay.api();
    let bad = [
        json!({"label": "x", "url": "https://e.com", "response": "ok"}),
        json!({"label": "x"}),
        json!({"label": "x", "response": ""}),
        json!({"label": "x", "response": "r".repeat(33)}),
        json!({"label": "x", "response": "with space"}),
        json!({"label": "x", "response": "ä"}),
    ]
    .map(|action| json!({"message": "m", "actions": [action]}));
    api.refuses_sends(&token, "invalid_action", bad).await;
    let (status, body) = api.send_reply(&token, question("ok?")).await;
    assert_eq!(status, 200, "{body}");
    // The envelope carries the response buttons as sent.
    let envelopes = relay.envelopes();
    let envelope: Value = serde_json::from_str(envelopes.last().unwrap()).unwrap();
    assert_eq!(
        envelope["payload"]["actions"][0],
        json!({"label": "Deploy", "response": "deploy"})
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_first_acknowledgement_wins_clears_the_others_and_later_ones_are_recorded() {
    // A relay whose per-IP limit would stop a receiver after two requests: acknowledgements
    // are not counted (SPEC §1.7).
    let relay = Relay::start(Limits {
        ip_minute: 2,
        ..no_limits()
    })
    .await;
    let (token, phone, _) = relay.alice();
    let (desk, desk_credential) = relay.extension("desk");
    let (laptop, laptop_credential) = relay.extension("laptop");
    let api = relay.api();
    let id = api.send(&token, question("deploy v42?")).await;
    let mut laptop_events = SseEvents::new(api.stream(&laptop_credential).await);
    let (seq, _, _) = next_event(&mut laptop_events).await;
    api.ack(&laptop_credential, &[seq]).await;

    // The desk answers without having acked its event (a click can beat the ack).
    let started = Instant::now();
    let (status, first) = relay
        .api()
        .acknowledge(&desk_credential, &id, json!({"response": "deploy"}))
        .await;
    assert_eq!(status, 200, "{first}");
    let (_, name, data) = next_event(&mut laptop_events).await;
    let to_clear = started.elapsed();
    assert_eq!((name.as_str(), &data), ("clear", &json!({"id": id})));
    println!(
        "SQLite, one relay: acknowledgement to the clear on another device's stream: {to_clear:?}"
    );
    assert_eq!(first["id"], id.as_str());
    assert_eq!(first["device_id"], desk.as_str());
    assert_eq!(first["response"], "deploy");
    let at = first["acknowledged_at"].as_str().unwrap();
    chrono::DateTime::parse_from_rfc3339(at).unwrap();

    // Later ones (another response, none, a repeat) answer with the first and change nothing.
    for (credential, body) in [
        (&laptop_credential, json!({"response": "abort"})),
        (&laptop_credential, json!({})),
        (&desk_credential, json!({"response": "deploy"})),
        (&desk_credential, json!({"response": null, "unknown": 1})),
    ] {
        let (status, later) = relay.api().acknowledge(credential, &id, body.clone()).await;
        assert_eq!((status, &later), (200, &first), "{body}");
    }
    let status = api.status(&token, &id).await;
    assert_eq!(
        status["acknowledged"],
        json!({"at": at, "device_id": desk, "response": "deploy"})
    );
    assert_eq!(
        status["cleared_at"],
        Value::Null,
        "an acknowledgement is not a clear"
    );
    assert_eq!(status.delivery(&desk)["acknowledged_at"], at);
    assert!(status.delivery(&laptop)["acknowledged_at"].is_string());
    assert_ne!(status.delivery(&laptop)["acknowledged_at"], at);
    assert_eq!(status.delivery(&phone)["acknowledged_at"], Value::Null);
    assert_eq!(status.delivery(&phone)["state"], "cancelled");
    // The desk's own event is still its to read and ack: the clear went to the others.
    assert_eq!(status.delivery(&desk)["state"], "queued");
    let desk_events = api
        .sync_events(&desk_credential, None, 2, Duration::from_millis(700))
        .await;
    assert_eq!(desk_events.len(), 1, "{desk_events:?}");
    assert!(desk_events[0].1.contains("envelope"));
}

#[tokio::test(flavor = "multi_thread")]
async fn acknowledgements_are_refused_as_the_spec_says() {
    let relay = Relay::start(no_limits()).await;
    let (token, desk) = relay.alice_with_desk();
    let api = relay.api();
    let id = api.send(&token, question("deploy?")).await;
    let plain = api.send(&token, json!({"message": "no buttons"})).await;
    // Paired after the send: not a target.
    let (_, late) = relay.extension("late");
    let unknown = "msg_0123456789abcdef0123456789abcdef";
    for (credential, message, body, want) in [
        (
            &desk,
            id.as_str(),
            json!({"response": "ship"}),
            (400, "invalid_response"),
        ),
        (
            &desk,
            id.as_str(),
            json!({"response": "no spaces"}),
            (400, "invalid_response"),
        ),
        (
            &desk,
            plain.as_str(),
            json!({"response": "deploy"}),
            (400, "invalid_response"),
        ),
        (
            &desk,
            id.as_str(),
            json!({"response": 7}),
            (400, "invalid_body"),
        ),
        (&late, id.as_str(), json!({}), (404, "not_found")),
        (&desk, unknown, json!({}), (404, "not_found")),
        (&token, id.as_str(), json!({}), (401, "invalid_token")),
    ] {
        let (status, reply) = relay
            .api()
            .acknowledge(credential, message, body.clone())
            .await;
        assert_eq!((status, code_of(&reply).as_str()), want, "{body} {reply}");
    }
    let not_json = relay
        .http()
        .post(format!("{}/v1/messages/{id}/acknowledge", relay.url))
        .bearer_auth(&desk)
        .body("deploy")
        .send()
        .await
        .unwrap();
    assert_eq!(not_json.status(), 400);
    // Nothing refused was recorded.
    assert_eq!(api.status(&token, &id).await["acknowledged"], Value::Null);
    // `reflecto explain` knows the new code.
    let explained = std::process::Command::new(crate::harness::BIN)
        .args(["explain", "invalid_response"])
        .output()
        .unwrap();
    assert!(explained.status.success());
    let text = String::from_utf8_lossy(&explained.stdout);
    assert!(text.contains("one of the message's responses"), "{text}");
}

/// SPEC §1.9, §1.16: pairing gives every type a credential, and it acknowledges.
#[tokio::test(flavor = "multi_thread")]
async fn every_device_type_gets_a_credential_that_acknowledges() {
    let relay = Relay::start_allowing_local_webpush().await;
    let (token, _, _) = relay.alice();
    let api = relay.api();
    let phone = relay
        .pair(json!({"type": "android", "label": "phone", "fcm_token": "fcm-x"}))
        .await;
    let browser = relay
        .pair(json!({"type": "webpush", "label": "browser",
            "subscription": crate::harness::subscription("http://127.0.0.1:9/push/x")}))
        .await;
    let added = relay.admin(&[
        "device",
        "add",
        "--user",
        "alice",
        "--label",
        "tablet",
        "--type",
        "android",
        "--fcm-token",
        "fcm-t",
    ]);
    let added: Vec<&str> = added.lines().collect();
    assert_eq!(added.len(), 2, "{added:?}");
    let id = api.send(&token, question("deploy?")).await;
    for (device, credential) in [
        (&phone.device_id, phone.credential.clone().unwrap()),
        (&browser.device_id, browser.credential.clone().unwrap()),
        (&added[0].to_owned(), added[1].to_owned()),
    ] {
        assert!(credential.starts_with("rfd_live_"), "{credential}");
        let (status, reply) = relay.api().acknowledge(&credential, &id, json!({})).await;
        assert_eq!(status, 200, "{reply}");
        let status = api.status(&token, &id).await;
        assert!(
            status.delivery(device)["acknowledged_at"].is_string(),
            "{status}"
        );
        // A phone's or a browser's credential reads no desktop stream.
        assert_eq!(api.sync(&credential, None).await.status(), 401);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn fcm_gets_a_clear_for_a_delivered_message_without_a_collapse_key() {
    let relay = Relay::start(no_limits()).await;
    let (token, phone, _) = relay.alice();
    let fake = FakeFcm::start().await;
    let worker = fake.worker(relay.state().relay.clone());
    let api = relay.api();
    let id = api
        .send(
            &token,
            json!({"message": "build running", "key": "ci:9", "device": "pixel"}),
        )
        .await;
    assert_eq!(worker.run_once().await.unwrap(), 1);
    let (status, cleared) = relay.api().delete(&token, "/v1/keys/ci:9").await;
    assert_eq!(
        (status, &cleared),
        (200, &json!({"id": id, "cancelled": 0, "cleared": 1}))
    );
    assert_eq!(worker.run_once().await.unwrap(), 1);
    let sends = fake.sends();
    assert_eq!(sends.len(), 2, "{sends:?}");
    assert_eq!(sends[0]["message"]["android"]["collapse_key"], "ci:9");
    let clear = &sends[1]["message"];
    assert_eq!(clear["data"], json!({"type": "clear", "id": id}));
    assert_eq!(clear["token"], "fcm-1");
    assert!(clear["android"].get("collapse_key").is_none(), "{clear}");
    assert!(clear["android"]["ttl"].as_str().unwrap().ends_with('s'));
    let status = api.status(&token, &id).await;
    assert_eq!(status.delivery(&phone)["state"], "delivered");
    // Delivered once: nothing more is due.
    assert_eq!(worker.run_once().await.unwrap(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn web_push_gets_an_encrypted_clear_without_a_topic() {
    if !python_available() {
        return;
    }
    let relay = Relay::start_allowing_local_webpush().await;
    let (token, _, _) = relay.alice();
    let fake = FakePush::start();
    fake.pair_browser(&relay, "201").await;
    let worker = webpush_worker(&relay, 3).await;
    let id = relay
        .api()
        .send(
            &token,
            json!({"message": "alert firing", "key": "am:1", "device": "web"}),
        )
        .await;
    assert_eq!(worker.run_once().await.unwrap(), 1);
    let (status, cleared) = relay
        .api()
        .delete(&token, &format!("/v1/messages/{id}"))
        .await;
    assert_eq!((status, cleared["cleared"].as_u64()), (200, Some(1)));
    assert_eq!(worker.run_once().await.unwrap(), 1);
    let received = fake.received("201").await;
    assert_eq!(received.len(), 2, "{received:?}");
    assert!(
        received[0]["topic"].is_string(),
        "the message has its key's Topic"
    );
    let clear = &received[1];
    assert_eq!(clear["ok"], true, "{clear}");
    assert_eq!(clear["clear"], id.as_str());
    assert_eq!(
        serde_json::from_str::<Value>(clear["plaintext"].as_str().unwrap()).unwrap(),
        json!({"clear": id})
    );
    assert!(clear.get("topic").is_none(), "{clear}");
}

/// SPEC §1.16 and §3: an acknowledgement on relay A clears the message on a desktop whose
/// stream relay B holds, within 1 s (the `NOTIFY` wake-up); reported with the time.
#[tokio::test(flavor = "multi_thread")]
async fn an_acknowledgement_on_one_relay_clears_a_stream_held_by_another() {
    let Some((a, b)) = two_relays_on_postgres().await else {
        return;
    };
    let (token, desk) = a.alice_with_desk();
    let (_, laptop) = a.extension("laptop");
    let mut single = Vec::new();
    let mut cross = Vec::new();
    for round in 0..5 {
        let id = a.api().send(&token, round_question(round)).await;
        // The laptop's stream is held by B in odd rounds, by A in even ones.
        let holder = if round % 2 == 1 { &b } else { &a };
        let mut events = SseEvents::new(holder.api().stream(&laptop).await);
        let (seq, name, _) = next_event(&mut events).await;
        assert_eq!(name, "notification");
        holder.api().ack(&laptop, &[seq]).await;
        let started = Instant::now();
        answer(&a, &desk, &id, "abort").await;
        let (seq, name, data) = next_event(&mut events).await;
        let took = started.elapsed();
        assert_eq!((name.as_str(), &data), ("clear", &json!({"id": id})));
        holder.api().ack(&laptop, &[seq]).await;
        if round % 2 == 1 {
            &mut cross
        } else {
            &mut single
        }
        .push(took);
    }
    println!(
        "PostgreSQL: acknowledgement to the clear on another device's stream: same relay {single:?}, across two relays {cross:?} (target < 1 s)"
    );
    // The figures are the measurement (SPEC asks within 1 s); what is asserted is that every
    // clear arrived, which the loop above waited for. Tests never assert on timing.
}

/// A status request held on relay B (`reflecto ask` talking to B) answers with an
/// acknowledgement made on relay A: A's `NOTIFY` wakes it (the 1 s recheck is behind it).
/// Reported with the time, never asserted on it.
#[tokio::test(flavor = "multi_thread")]
async fn a_status_held_on_one_relay_answers_an_acknowledgement_on_another() {
    let Some((a, b)) = two_relays_on_postgres().await else {
        return;
    };
    let (token, desk) = a.alice_with_desk();
    let mut took = Vec::new();
    for round in 0..3 {
        let id = a.api().send(&token, round_question(round)).await;
        let etag = b.api().etag(&token, &id).await;
        let held = b.api().held_status(&token, &id, &etag);
        let waiting = tokio::spawn(async move {
            let (status, _, body) = held.await;
            (status, body, Instant::now())
        });
        // Let B hold the request before the acknowledgement (a change before it would
        // answer at once and measure nothing).
        tokio::time::sleep(Duration::from_millis(200)).await;
        let started = Instant::now();
        answer(&a, &desk, &id, "deploy").await;
        let (status, body, at) = waiting.await.unwrap();
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["acknowledged"]["response"], "deploy");
        took.push(at.saturating_duration_since(started));
    }
    println!("PostgreSQL: acknowledgement on A to the status held on B answering: {took:?}");
}
