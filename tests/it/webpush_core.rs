//! Web Push core (SPEC §1.13) against a fake push service written with code that is not ours
//! (`tests/py/fake_push.py`: py_vapid verifies the VAPID signature, http_ece decrypts): every
//! scripted answer is encrypted, signed, sent by our client and classified, and the fake must
//! have decrypted exactly our plaintext. The fake is also shown to refuse what a real push
//! service refuses, so its acceptance means something.

use crate::harness::{Api, KillOnDrop, Relay, python_with, spawn_announcing};
use chrono::{TimeDelta, Utc};
use reflecto::api::Priority;
use reflecto::api::sealed;
use reflecto::api::stream::PairResponse;
use reflecto::delivery::outcome::Verdict;
use reflecto::delivery::webpush::client::{Answer, WebPushClient};
use reflecto::delivery::webpush::message::{Delivery, PushRequest, build};
use reflecto::delivery::webpush::subscription::{
    Subscription, SubscriptionError, SubscriptionJson,
};
use reflecto::delivery::webpush::vapid::{Subject, VapidKey, VapidSigner};
use reflecto::delivery::webpush::{WebPushChannel, encrypt, load_vapid_key, outcome};
use reflecto::delivery::{Channels, Worker, WorkerSettings};
use serde_json::{Value, json};
use std::process::{Command, Stdio};
use std::time::Duration;

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/py/fake_push.py");

/// Whether python3 with http_ece, py_vapid and cryptography is here. Under `CI` their absence
/// fails the test; locally the test is skipped with the reason.
pub fn python_available() -> bool {
    python_with("http_ece, py_vapid, cryptography", "http_ece py_vapid")
}

/// The running fake; killed on drop.
pub struct FakePush {
    _process: KillOnDrop,
    pub origin: String,
    pub p256dh: String,
    pub auth: String,
}

impl FakePush {
    pub fn start() -> FakePush {
        let (process, line) =
            spawn_announcing(Command::new("python3").arg(SCRIPT).stderr(Stdio::inherit()));
        let info: Value = serde_json::from_str(&line).expect("the fake prints its subscription");
        FakePush {
            _process: process,
            origin: info["origin"].as_str().unwrap().to_owned(),
            p256dh: info["p256dh"].as_str().unwrap().to_owned(),
            auth: info["auth"].as_str().unwrap().to_owned(),
        }
    }

    fn subscription_json(&self, script: &str) -> SubscriptionJson {
        serde_json::from_value(json!({
            "endpoint": format!("{}/push/{script}", self.origin),
            "expirationTime": null,
            "keys": {"p256dh": self.p256dh, "auth": self.auth}
        }))
        .unwrap()
    }

    /// The fake's endpoint is plain http on 127.0.0.1, which only `allow_local` lets through.
    async fn subscription(&self, script: &str) -> Subscription {
        self.subscription_json(script).validate(true).await.unwrap()
    }

    /// Pairs alice's `webpush` device "browser" on `relay` (which must allow local endpoints)
    /// with this fake's subscription answering per `script`.
    pub async fn pair_browser(&self, relay: &Relay, script: &str) -> PairResponse {
        let subscription = serde_json::to_value(self.subscription_json(script)).unwrap();
        relay
            .pair(json!({"type": "webpush", "label": "browser", "subscription": subscription}))
            .await
    }

    /// Every request the fake received for `path`, as it recorded them.
    pub async fn received(&self, script: &str) -> Vec<Value> {
        let all: Vec<Value> =
            serde_json::from_value(Api::new(&self.origin).get_json("/_received").await).unwrap();
        let path = format!("/push/{script}");
        all.into_iter().filter(|r| r["path"] == path).collect()
    }
}

/// The Web Push worker of `relay`: the store's VAPID key (made now by the relay's clock if
/// none), the real client with a 10 s timeout that may reach 127.0.0.1, 4 sends at once, 30 s
/// leases and `max_attempts`.
pub async fn webpush_worker(relay: &Relay, max_attempts: i64) -> Worker {
    let state = relay.state();
    let vapid = load_vapid_key(&state.store, state.relay.clock.now_ms())
        .await
        .unwrap();
    Worker::new(
        state.relay.clone(),
        Channels::webpush(WebPushChannel::new(
            WebPushClient::new(Duration::from_secs(10), true).unwrap(),
            VapidSigner::new(vapid, Subject::parse("mailto:ops@example.org").unwrap()),
        )),
        WorkerSettings {
            concurrency: 4,
            lease_ms: 30_000,
            max_attempts,
            ..WorkerSettings::default()
        },
    )
}

struct Sender {
    key: VapidKey,
    subject: Subject,
    signer: VapidSigner,
    client: WebPushClient,
}

impl Sender {
    fn new() -> Sender {
        let key = VapidKey::generate();
        let subject = Subject::parse("mailto:ops@example.org").unwrap();
        Sender {
            signer: VapidSigner::new(key.clone(), subject.clone()),
            key,
            subject,
            // Shorter than the fake's 3 s `delay`, so that script ends as a timeout.
            client: WebPushClient::new(Duration::from_millis(1500), true).unwrap(),
        }
    }

    fn request(
        &self,
        subscription: &Subscription,
        plaintext: &str,
        priority: Priority,
    ) -> PushRequest {
        let ciphertext = encrypt::encrypt(plaintext.as_bytes(), subscription).unwrap();
        build(
            Delivery {
                endpoint: &subscription.endpoint,
                ciphertext,
                remaining_ttl: 3600,
                priority,
                key: None,
            },
            &self.signer,
            Utc::now(),
        )
        .unwrap()
    }
}

/// The fake push service and our sender, where python's push libraries are here.
fn fake_and_sender() -> Option<(FakePush, Sender)> {
    python_available().then(|| (FakePush::start(), Sender::new()))
}

/// The same, and the fake's subscription answering per `script`.
async fn subscribed(script: &str) -> Option<(FakePush, Sender, Subscription)> {
    let (fake, sender) = fake_and_sender()?;
    let subscription = fake.subscription(script).await;
    Some((fake, sender, subscription))
}

fn plaintext(id: &str) -> String {
    sealed::plaintext(
        id,
        r#"{"title":"backup","message":"disk full on \"db1\" — 97 %","priority":"high"}"#,
    )
}

fn retry(error: &str) -> Verdict {
    Verdict::Retry {
        error: error.into(),
        min_delay: None,
    }
}

#[tokio::test]
async fn each_scripted_answer_is_decrypted_by_the_fake_and_classified() {
    let Some((fake, sender)) = fake_and_sender() else {
        return;
    };
    let cases: [(&str, Verdict); 8] = [
        ("201", Verdict::Delivered),
        ("404", Verdict::Unreachable("HTTP_404".into())),
        ("410", Verdict::Unreachable("HTTP_410".into())),
        (
            "429",
            Verdict::Retry {
                error: "HTTP_429".into(),
                min_delay: Some(Duration::from_secs(7)),
            },
        ),
        ("503", retry("HTTP_503")),
        ("400", Verdict::DeadLetter("HTTP_400".into())),
        ("delay", retry("TIMEOUT")),
        ("drop", retry("CONNECTION")),
    ];
    for (i, (script, expected)) in cases.into_iter().enumerate() {
        let subscription = fake.subscription(script).await;
        let text = plaintext(&format!("msg_{i}"));
        let request = sender.request(&subscription, &text, Priority::Min);
        let verdict = outcome::classify(&sender.client.send(&request).await);
        assert_eq!(verdict, expected, "script {script}");

        let received = fake.received(script).await;
        assert!(
            !received.is_empty(),
            "script {script}: the fake saw nothing"
        );
        for record in received {
            assert_eq!(record["ok"], true, "script {script}: {record}");
            assert_eq!(record["plaintext"], text.as_str(), "script {script}");
            assert_eq!(record["aud"], fake.origin.as_str());
            assert_eq!(record["sub"], "mailto:ops@example.org");
            assert_eq!(record["ttl"], 3600);
            assert_eq!(record["urgency"], "very-low");
            assert_eq!(record["rs"], 4096);
        }
    }
}

#[tokio::test]
async fn retry_after_as_an_http_date_is_honoured() {
    let Some((fake, sender, subscription)) = subscribed("429-date").await else {
        return;
    };
    let request = sender.request(&subscription, &plaintext("msg_date"), Priority::High);
    let Verdict::Retry { error, min_delay } =
        outcome::classify(&sender.client.send(&request).await)
    else {
        panic!("429 must be retried");
    };
    assert_eq!(error, "HTTP_429");
    // The fake asked for two minutes from its clock; whatever second we read it in, it is
    // well above the one-minute mark.
    assert!(
        min_delay.is_some_and(|d| d > Duration::from_secs(60)),
        "{min_delay:?}"
    );
    assert_eq!(fake.received("429-date").await[0]["urgency"], "high");
}

#[tokio::test]
async fn a_retry_resends_the_same_ciphertext_and_it_still_decrypts() {
    let Some((fake, sender, subscription)) = subscribed("201").await else {
        return;
    };
    let text = plaintext("msg_again");
    let first = sender.request(&subscription, &text, Priority::Default);
    let again = build(
        Delivery {
            endpoint: &subscription.endpoint,
            ciphertext: first.body.clone(),
            remaining_ttl: 1200,
            priority: Priority::Default,
            key: None,
        },
        &sender.signer,
        Utc::now(),
    )
    .unwrap();
    assert_eq!(
        sender.client.send(&first).await,
        Answer::Status {
            status: 201,
            retry_after: None
        }
    );
    assert_eq!(
        sender.client.send(&again).await,
        Answer::Status {
            status: 201,
            retry_after: None
        }
    );
    let received = fake.received("201").await;
    assert_eq!(received.len(), 2);
    assert!(
        received
            .iter()
            .all(|r| r["ok"] == true && r["plaintext"] == text.as_str())
    );
    assert_eq!(received[1]["ttl"], 1200);
    assert_eq!(received[1]["urgency"], "normal");
}

/// Sends `request` and returns the fake's status and recorded reason.
async fn refused(fake: &FakePush, sender: &Sender, request: &PushRequest) -> (Verdict, String) {
    let verdict = outcome::classify(&sender.client.send(request).await);
    let records = fake.received("201").await;
    let last = records.last().expect("the fake recorded the request");
    assert_eq!(last["ok"], false, "{last}");
    (
        verdict,
        last["reason"].as_str().unwrap_or_default().to_owned(),
    )
}

#[tokio::test]
async fn the_fake_refuses_what_a_real_push_service_refuses() {
    let Some((fake, sender, subscription)) = subscribed("201").await else {
        return;
    };
    let good = sender.request(&subscription, &plaintext("msg_x"), Priority::Default);
    let header = |request: &PushRequest, name: &str| {
        request
            .headers
            .iter()
            .find(|(n, _)| *n == name)
            .unwrap()
            .1
            .clone()
    };
    let with_header = |name: &'static str, value: Option<String>| {
        let mut request = good.clone();
        request.headers.retain(|(n, _)| *n != name);
        if let Some(value) = value {
            request.headers.push((name, value));
        }
        request
    };

    // `k` of another key: the signature no longer verifies.
    let other = VapidKey::generate();
    let auth = header(&good, "authorization");
    let swapped = auth.replace(&sender.key.public_key_b64(), &other.public_key_b64());
    let (verdict, reason) =
        refused(&fake, &sender, &with_header("authorization", Some(swapped))).await;
    assert_eq!(verdict, Verdict::DeadLetter("HTTP_403".into()));
    assert!(reason.contains("signature"), "{reason}");

    // `aud` without the port, as web-push-native's builder would write it.
    let portless = url::Url::parse("http://127.0.0.1/push/201").unwrap();
    let auth = sender
        .key
        .authorization(&portless, &sender.subject, Utc::now())
        .unwrap();
    let (verdict, reason) =
        refused(&fake, &sender, &with_header("authorization", Some(auth))).await;
    assert_eq!(verdict, Verdict::DeadLetter("HTTP_403".into()));
    assert!(reason.contains("aud"), "{reason}");

    // A clock 13 h ahead puts `exp` beyond 24 h from the fake's now.
    let ahead = Utc::now() + TimeDelta::hours(13);
    let auth = sender
        .key
        .authorization(&subscription.endpoint, &sender.subject, ahead)
        .unwrap();
    let (_, reason) = refused(&fake, &sender, &with_header("authorization", Some(auth))).await;
    assert!(reason.contains("exp"), "{reason}");

    let (verdict, reason) = refused(&fake, &sender, &with_header("urgency", None)).await;
    assert_eq!(verdict, Verdict::DeadLetter("HTTP_400".into()));
    assert!(reason.contains("Urgency"), "{reason}");
    let (_, reason) = refused(&fake, &sender, &with_header("ttl", None)).await;
    assert!(reason.contains("TTL"), "{reason}");
    let (_, reason) = refused(
        &fake,
        &sender,
        &with_header("content-encoding", Some("aesgcm".into())),
    )
    .await;
    assert!(reason.contains("Content-Encoding"), "{reason}");
    // SPEC §1.15's Topic must be RFC 8030's: URL-safe base64, at most 32 characters.
    let (verdict, reason) =
        refused(&fake, &sender, &with_header("topic", Some("ci:42".into()))).await;
    assert_eq!(verdict, Verdict::DeadLetter("HTTP_400".into()));
    assert!(reason.contains("Topic"), "{reason}");
    let (_, reason) = refused(&fake, &sender, &with_header("topic", Some("a".repeat(33)))).await;
    assert!(reason.contains("Topic"), "{reason}");

    // Encrypted for another browser: the fake's key cannot open it.
    let stranger = SubscriptionJson {
        keys: reflecto::delivery::webpush::subscription::SubscriptionKeys {
            p256dh: VapidKey::generate().public_key_b64(),
            auth: fake.auth.clone(),
        },
        ..fake.subscription_json("201")
    }
    .validate(true)
    .await
    .unwrap();
    let mut wrong = good.clone();
    wrong.body = encrypt::encrypt(b"{}", &stranger).unwrap();
    let (verdict, reason) = refused(&fake, &sender, &wrong).await;
    assert_eq!(verdict, Verdict::DeadLetter("HTTP_400".into()));
    assert!(reason.contains("decrypt"), "{reason}");
}

#[tokio::test]
async fn a_local_plain_http_endpoint_needs_allow_local() {
    if !python_available() {
        return;
    }
    let fake = FakePush::start();
    let json = fake.subscription_json("201");
    assert_eq!(
        json.validate(false).await.unwrap_err(),
        SubscriptionError::EndpointNotHttps
    );
    let https_local = SubscriptionJson {
        endpoint: fake.origin.replace("http:", "https:") + "/push/201",
        ..json.clone()
    };
    assert!(matches!(
        https_local.validate(false).await.unwrap_err(),
        SubscriptionError::EndpointNotPublic(..)
    ));
    assert!(json.validate(true).await.is_ok());
}

/// Calibration: a sender that is not ours (pywebpush) is accepted and decrypted by the fake, so
/// the fake's checks match what real senders produce.
#[test]
fn the_fake_accepts_and_decrypts_pywebpush() {
    if !python_available() || !python_with("pywebpush", "pywebpush") {
        return;
    }
    let out = Command::new("python3")
        .args([SCRIPT, "calibrate"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "pywebpush was not accepted: {} {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let records: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(records[0]["plaintext"], r#"{"id":"msg_calibrate"}"#);
}

#[tokio::test]
async fn a_host_name_resolving_to_loopback_is_not_contacted_without_allow_local() {
    let Some((fake, sender, subscription)) = subscribed("201").await else {
        return;
    };
    let mut request = sender.request(&subscription, &plaintext("msg_rebind"), Priority::Default);
    // The name passed a pairing-time check once; now it points at the relay's own host.
    request.url = request
        .url
        .as_str()
        .replace("127.0.0.1", "localhost")
        .parse()
        .unwrap();
    let guarded = WebPushClient::new(Duration::from_secs(5), false).unwrap();
    let answer = guarded.send(&request).await;
    assert_eq!(answer, Answer::NotPublic);
    assert_eq!(
        outcome::classify(&answer),
        Verdict::DeadLetter("ENDPOINT_NOT_PUBLIC".into())
    );
    assert!(fake.received("201").await.is_empty());
    // The same request with the flag reaches the fake, so the refusal was the guard's.
    assert_eq!(
        sender.client.send(&request).await,
        Answer::Status {
            status: 201,
            retry_after: None
        }
    );
}
