//! SPEC rows the hardening run found unmet: acks with string event ids, Idempotency-Key per
//! the clarified §1.1, 413's declared size, 400s without parser internals, and the dispatcher's
//! max_attempts dead-letter reached by moving time.

use crate::fake_fcm::{FakeFcm, Reply};
use crate::harness::{ManualClock, Relay, code_of, no_limits};
use reflecto::delivery::fcm::{FcmChannel, FcmClient};
use reflecto::delivery::{Channels, Worker, WorkerSettings};
use reflecto::server::limits::Limits;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread")]
async fn ack_accepts_string_event_ids() {
    let relay = Relay::start(no_limits()).await;
    let (token, _, _) = relay.alice();
    let (_, credential) = relay.extension("desk");
    for text in ["one", "two", "three"] {
        let resp = relay
            .send_json(&token, json!({"message": text, "device": "desk"}))
            .await;
        assert_eq!(resp.status(), 200);
    }
    let ack = |ids: Value| {
        relay
            .http()
            .post(format!("{}/v1/sync/ack", relay.url))
            .bearer_auth(&credential)
            .json(&json!({ "ids": ids }))
            .send()
    };
    // As the SSE `id:` strings, as numbers, mixed.
    let resp = ack(json!(["1"])).await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.json::<Value>().await.unwrap()["acked"], 1);
    let resp = ack(json!([2, "3"])).await.unwrap();
    assert_eq!(resp.json::<Value>().await.unwrap()["acked"], 2);
    // Not an event id of this stream: 400, nothing acked.
    let resp = ack(json!(["one"])).await.unwrap();
    assert_eq!(resp.status(), 400);
    assert_eq!(code_of(&resp.json().await.unwrap()), "invalid_body");
    assert_eq!(
        relay.count("SELECT COUNT(*) FROM jobs WHERE device_type = 'extension' AND state = 'delivered' AND device_id IN (SELECT id FROM devices WHERE label = 'desk')"),
        3
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn oversized_body_413_reports_declared_content_length() {
    let relay = Relay::start(no_limits()).await;
    let (token, _, _) = relay.alice();
    let body = vec![b'x'; 1_000_000];
    let resp = relay
        .http()
        .post(format!("{}/v1/send", relay.url))
        .bearer_auth(&token)
        .header("content-type", "text/plain")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 413);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(code_of(&body), "payload_too_large");
    assert_eq!(body["error"]["details"]["size"], 1_000_000);
    assert_eq!(body["error"]["details"]["max"], 65_536);
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_json_400_does_not_echo_parser_internals() {
    let relay = Relay::start(no_limits()).await;
    let (token, _, _) = relay.alice();
    let post = |path: &str, body: &'static str| {
        relay
            .http()
            .post(format!("{}{path}", relay.url))
            .bearer_auth(&token)
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    for (path, body) in [
        ("/v1/send", r#"{"message": "x", "ttl": 1 2}"#),
        ("/v1/send", r#"{"message": "x", "ttl": "#),
        (
            "/v1/devices/pair",
            r#"{"code": 123456, "type": "extension", "label": "x"}"#,
        ),
        ("/v1/devices/pair", r#"{"code": "123456""#),
    ] {
        let resp = post(path, body).await.unwrap();
        assert_eq!(resp.status(), 400, "{path} {body}");
        let reply: Value = resp.json().await.unwrap();
        assert_eq!(code_of(&reply), "invalid_body");
        let message = reply["error"]["message"].as_str().unwrap();
        for internal in ["line", "column", "expected i64", "invalid type"] {
            assert!(!message.contains(internal), "{path}: {message}");
        }
    }
}

fn limits(token_burst: u64) -> Limits {
    Limits {
        token_burst,
        ..no_limits()
    }
}

async fn send_with_key(relay: &Relay, token: &str, key: &str, body: Value) -> (u16, Value) {
    let resp = relay
        .http()
        .post(format!("{}/v1/send", relay.url))
        .bearer_auth(token)
        .header("idempotency-key", key)
        .json(&body)
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap())
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_requests_with_one_idempotency_key_are_charged_and_enqueued_once() {
    let relay = Arc::new(Relay::start(limits(2)).await);
    let (token, _, _) = relay.alice();
    let handles: Vec<_> = (0..10)
        .map(|_| {
            let (relay, token) = (relay.clone(), token.clone());
            tokio::spawn(async move {
                send_with_key(&relay, &token, "same", json!({"message": "once"})).await
            })
        })
        .collect();
    let mut ids = Vec::new();
    for handle in handles {
        let (status, body) = handle.await.unwrap();
        assert_eq!(status, 200, "a repeat of an accepted key: {body}");
        ids.push(body["id"].as_str().unwrap().to_owned());
    }
    ids.dedup();
    assert_eq!(ids.len(), 1, "one key, one message");
    assert_eq!(relay.count("SELECT COUNT(*) FROM messages"), 1);
    // The burst of 2 was charged once: one more send fits, the next does not.
    assert_eq!(
        send_with_key(&relay, &token, "other", json!({"message": "m"}))
            .await
            .0,
        200
    );
    assert_eq!(
        send_with_key(&relay, &token, "third", json!({"message": "m"}))
            .await
            .0,
        429
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn refused_request_records_nothing_so_corrected_retry_with_same_key_goes_through() {
    let clock = ManualClock::now();
    let relay = Relay::start_with(limits(1), clock.clone(), |_| {}).await;
    let (token, _, _) = relay.alice();
    // A 400, then the corrected retry.
    let (status, body) = send_with_key(&relay, &token, "k1", json!({"message": ""})).await;
    assert_eq!((status, code_of(&body).as_str()), (400, "invalid_message"));
    let (status, first) = send_with_key(&relay, &token, "k1", json!({"message": "fixed"})).await;
    assert_eq!(status, 200);
    // A replay is not charged: the burst of 1 is spent, yet the repeat answers 200, same id.
    let (status, again) = send_with_key(&relay, &token, "k1", json!({"message": "fixed"})).await;
    assert_eq!((status, &again["id"]), (200, &first["id"]));
    // A 429 records nothing either: after the window the same key is a new send.
    let (status, body) = send_with_key(&relay, &token, "k2", json!({"message": "m"})).await;
    assert_eq!(
        (status, code_of(&body).as_str()),
        (429, "rate_limit_exceeded")
    );
    clock.advance(Duration::from_secs(61));
    let (status, later) = send_with_key(&relay, &token, "k2", json!({"message": "m"})).await;
    assert_eq!(status, 200);
    assert_ne!(later["id"], first["id"]);
    assert_eq!(relay.count("SELECT COUNT(*) FROM messages"), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn max_attempts_dead_letters_when_time_moves() {
    let clock = ManualClock::now();
    let relay = Relay::start_with(no_limits(), clock.clone(), |_| {}).await;
    let (token, _, _) = relay.alice();
    let fake = FakeFcm::start().await;
    let key = fake.key_file();
    let unavailable = Reply::Error {
        status: 503,
        code: None,
        retry_after: None,
    };
    fake.script("fcm-1", vec![unavailable; 5]);
    let dispatcher = Worker::new(
        relay.state().relay.clone(),
        Channels::fcm(FcmChannel::new(
            FcmClient::from_key_file(key.path(), &fake.url).unwrap(),
        )),
        WorkerSettings {
            concurrency: 1,
            lease_ms: 30_000,
            max_attempts: 3,
            ..WorkerSettings::default()
        },
    );
    let api = relay.api();
    let id = api
        .send(&token, json!({"message": "m", "device": "pixel"}))
        .await;
    let delivery = || async { api.status(&token, &id).await["deliveries"][0].clone() };
    for attempt in 1..=2 {
        assert_eq!(dispatcher.run_once().await.unwrap(), 1);
        let d = delivery().await;
        assert_eq!(
            (d["state"].as_str(), d["attempts"].as_i64()),
            (Some("queued"), Some(attempt))
        );
        // Not due before its back-off…
        assert_eq!(dispatcher.run_once().await.unwrap(), 0);
        // …and due after it (back-off is capped at an hour).
        clock.advance(Duration::from_secs(3601));
    }
    assert_eq!(dispatcher.run_once().await.unwrap(), 1);
    let d = delivery().await;
    assert_eq!(d["state"], "failed");
    assert_eq!(d["attempts"], 3);
    assert!(
        d["last_error"]
            .as_str()
            .unwrap()
            .starts_with("max_attempts"),
        "{d}"
    );
    assert_eq!(fake.sends().len(), 3);
}
