//! A Web Push endpoint is `https`, or `http` on a relay with `--webpush-allow-local`, and never
//! another scheme (SPEC §1.13): tried as a new user would, an `ftp://127.0.0.1:PORT/…`
//! subscription paired on such a relay. Refused at pairing with 400 `invalid_body`, leaving the
//! pairing code unspent; the sending client never connects to a non-http(s) endpoint, and one
//! stored before the check is dead-lettered at once instead of retried until its ttl.

use crate::harness::{ManualClock, Relay, code_of, no_limits, subscription};
use crate::webpush_core::webpush_worker;
use reflecto::delivery::webpush::client::{Answer, WebPushClient};
use reflecto::delivery::webpush::message::PushRequest;
use serde_json::{Value, json};
use std::net::TcpListener;
use std::time::Duration;

/// A port where something listens, so a refusal is the scheme rule's and not a closed port's;
/// `accepted` tells whether anyone connected.
struct Listening(TcpListener);

impl Listening {
    fn start() -> Listening {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        Listening(listener)
    }

    fn port(&self) -> u16 {
        self.0.local_addr().unwrap().port()
    }

    fn accepted(&self) -> bool {
        self.0.accept().is_ok()
    }
}

#[tokio::test]
async fn an_ftp_endpoint_is_refused_even_with_webpush_allow_local() {
    let relay = Relay::start_with(no_limits(), ManualClock::now(), |c| {
        c.webpush_allow_local = true
    })
    .await;
    relay.alice();
    let code = relay.admin(&["pair", "--user", "alice"]);
    let server = Listening::start();
    let port = server.port();
    for endpoint in [
        format!("ftp://127.0.0.1:{port}/push/x"),
        format!("ws://127.0.0.1:{port}/push/x"),
        "file:///push/x".to_owned(),
    ] {
        let (status, body) = pair(
            &relay,
            &code,
            json!({"type": "webpush", "label": "ftp", "subscription": subscription(&endpoint)}),
        )
        .await;
        assert_eq!(status, 400, "{endpoint}: {body}");
        assert_eq!(code_of(&body), "invalid_body", "{endpoint}");
        assert_eq!(
            body["error"]["message"], "subscription.endpoint must use https or http",
            "{endpoint}"
        );
    }
    assert_eq!(
        relay.count("SELECT COUNT(*) FROM devices WHERE type = 'webpush'"),
        0
    );
    assert!(!server.accepted(), "pairing never contacts the endpoint");
    // The refusals left the code unspent, and `http` is what the flag allows.
    let endpoint = format!("http://127.0.0.1:{port}/push/x");
    relay
        .api()
        .pair(json!({"code": code, "type": "webpush", "label": "lan", "subscription": subscription(&endpoint)}))
        .await;
}

/// The send-time path: an endpoint stored before pairing checked the scheme is not contacted
/// by the Web Push client, with or without `--webpush-allow-local`.
#[tokio::test]
async fn the_web_push_client_never_posts_to_an_ftp_endpoint() {
    let server = Listening::start();
    let request = PushRequest {
        url: format!("ftp://127.0.0.1:{}/push/x", server.port())
            .parse()
            .unwrap(),
        headers: vec![("ttl", "60".to_owned())],
        body: b"ciphertext".to_vec(),
    };
    for allow_local in [true, false] {
        let client = WebPushClient::new(Duration::from_secs(5), allow_local).unwrap();
        let answer = client.send(&request).await;
        assert!(
            !matches!(answer, Answer::Status { .. }),
            "allow_local={allow_local}: {answer:?}"
        );
    }
    assert!(!server.accepted(), "nothing connected to the ftp endpoint");
}

/// A device paired before pairing checked the scheme keeps its `ftp://` endpoint in the store:
/// its delivery fails at once (`corrupt_subscription`), with no connection and no retry.
#[tokio::test(flavor = "multi_thread")]
async fn a_stored_ftp_endpoint_is_dead_lettered_without_a_connection() {
    let relay = Relay::start_with(no_limits(), ManualClock::now(), |c| {
        c.webpush_allow_local = true
    })
    .await;
    let (token, _, _) = relay.alice();
    let server = Listening::start();
    let port = server.port();
    let endpoint = format!("http://127.0.0.1:{port}/push/x");
    let paired = relay
        .pair(json!({"type": "webpush", "label": "old", "subscription": subscription(&endpoint)}))
        .await;
    let device = paired.device_id;
    // What an older relay let through.
    rusqlite::Connection::open(relay.dir.path().join("reflecto.db"))
        .unwrap()
        .execute(
            "UPDATE devices SET endpoint = ?1 WHERE id = ?2",
            [format!("ftp://127.0.0.1:{port}/push/x"), device.clone()],
        )
        .unwrap();
    let id = relay
        .api()
        .send(&token, json!({"message": "to ftp", "device": "old"}))
        .await;
    let worker = webpush_worker(&relay, 5).await;
    assert_eq!(worker.run_once().await.unwrap(), 1);
    let status = relay.api().status(&token, &id).await;
    let delivery: &Value = &status["deliveries"][0];
    assert_eq!(delivery["device_id"], device.as_str(), "{status}");
    assert_eq!(delivery["state"], "failed", "{delivery}");
    assert_eq!(delivery["last_error"], "corrupt_subscription", "{delivery}");
    assert!(!server.accepted(), "nothing connected to the ftp endpoint");
}

/// `POST /v1/devices/pair` of `body` with `code`: the status and the relay's answer.
async fn pair(relay: &Relay, code: &str, mut body: Value) -> (u16, Value) {
    body["code"] = json!(code);
    relay.api().pair_reply(&body).await
}
