//! Web Push through the real relay (SPEC §1.13): the VAPID key served and kept across restarts,
//! pairing a `webpush` device with a browser's subscription (keys checked, the SSRF guard
//! without `--webpush-allow-local`, a refused subscription spends no code), and the `web`
//! selector.

use crate::harness::{ManualClock, Relay, code_of, no_limits};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

/// A browser's `PushSubscription.toJSON()` for `endpoint` with fresh, valid keys.
pub fn subscription(endpoint: &str) -> Value {
    // Any P-256 key pair gives a browser-shaped key; this one happens to be at hand.
    let point = reflecto::delivery::webpush::vapid::VapidKey::generate().public_key_bytes();
    json!({
        "endpoint": endpoint,
        "expirationTime": null,
        "keys": {
            "p256dh": URL_SAFE_NO_PAD.encode(point),
            "auth": URL_SAFE_NO_PAD.encode([7u8; 16]),
        }
    })
}

pub async fn pair(relay: &Relay, code: &str, body: Value) -> (u16, Value) {
    let mut body = body;
    body["code"] = json!(code);
    let response = relay
        .http()
        .post(format!("{}/v1/devices/pair", relay.url))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

async fn vapid_key(relay: &Relay) -> String {
    let response = relay
        .http()
        .get(format!("{}/v1/webpush/vapid", relay.url))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    body["public_key"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn vapid_key_is_a_p256_point_and_survives_a_restart() {
    let mut relay = Relay::start(no_limits()).await;
    let key = vapid_key(&relay).await;
    let point = URL_SAFE_NO_PAD.decode(&key).unwrap();
    assert_eq!(point.len(), 65);
    p256::PublicKey::from_sec1_bytes(&point).expect("a valid P-256 point");
    relay.restart().await;
    assert_eq!(
        vapid_key(&relay).await,
        key,
        "subscriptions are bound to this key"
    );
}

#[tokio::test]
async fn local_endpoints_are_refused_without_allow_local_and_spend_no_code() {
    let relay = Relay::start(no_limits()).await;
    relay.alice();
    let code = relay.admin(&["pair", "--user", "alice"]);
    for endpoint in [
        "https://127.0.0.1/push/1",
        "https://10.0.0.1/push/1",
        "https://169.254.169.254/latest/meta-data",
        "https://[::1]/push/1",
        "https://localhost:8443/push/1",
        "http://push.example.com/push/1",
    ] {
        let (status, body) = pair(
            &relay,
            &code,
            json!({"type": "webpush", "label": "phone", "subscription": subscription(endpoint)}),
        )
        .await;
        assert_eq!(status, 400, "{endpoint}: {body}");
        assert_eq!(code_of(&body), "invalid_body", "{endpoint}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(
            !message.contains("/push/1"),
            "the capability path is not echoed: {message}"
        );
    }
    let mut bad_point = subscription("https://127.0.0.1/p");
    bad_point["keys"]["p256dh"] = json!(URL_SAFE_NO_PAD.encode([4u8; 65]));
    let mut short_auth = subscription("https://127.0.0.1/p");
    short_auth["keys"]["auth"] = json!(URL_SAFE_NO_PAD.encode([1u8; 15]));
    for (what, body) in [
        ("no subscription", json!({"type": "webpush", "label": "p"})),
        (
            "bad point",
            json!({"type": "webpush", "label": "p", "subscription": bad_point}),
        ),
        (
            "short auth",
            json!({"type": "webpush", "label": "p", "subscription": short_auth}),
        ),
        (
            "subscription on an extension",
            json!({"type": "extension", "label": "p", "subscription": subscription("https://127.0.0.1/p")}),
        ),
        (
            "not an object",
            json!({"type": "webpush", "label": "p", "subscription": "https://127.0.0.1/p"}),
        ),
    ] {
        let (status, reply) = pair(&relay, &code, body).await;
        assert_eq!(status, 400, "{what}: {reply}");
        assert_eq!(code_of(&reply), "invalid_body", "{what}");
    }
    assert_eq!(
        relay.count("SELECT COUNT(*) FROM devices WHERE type = 'webpush'"),
        0
    );
    // Every refusal above left the code unspent: an extension still pairs with it.
    let (status, body) = pair(&relay, &code, json!({"type": "extension", "label": "desk"})).await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn a_webpush_device_pairs_with_allow_local_and_the_web_selector_reaches_it() {
    let relay = Relay::start_with(no_limits(), ManualClock::now(), |c| {
        c.webpush_allow_local = true
    })
    .await;
    let (token, phone, _) = relay.alice();
    let code = relay.admin(&["pair", "--user", "alice"]);
    let (status, body) = pair(
        &relay,
        &code,
        json!({"type": "WebPush", "label": "browser", "subscription": subscription("http://127.0.0.1:9/push/x")}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["type"], "webpush");
    assert!(body.get("credential").is_none(), "{body}");
    let browser = body["device_id"].as_str().unwrap().to_owned();
    assert_eq!(
        relay.count("SELECT COUNT(*) FROM devices WHERE type = 'webpush' AND endpoint = 'http://127.0.0.1:9/push/x'"),
        1
    );

    let reply: Value = relay
        .send_json(
            &token,
            json!({"message": "to the browser", "device": "web"}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        reply["delivered_to"],
        json!([{"device_id": browser, "type": "webpush"}]),
        "{reply}"
    );
    let reply: Value = relay
        .send_json(&token, json!({"message": "to all"}))
        .await
        .json()
        .await
        .unwrap();
    let types: Vec<&str> = reply["delivered_to"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["type"].as_str().unwrap())
        .collect();
    assert!(
        types.contains(&"webpush") && types.contains(&"android"),
        "{reply}"
    );
    let status: Value = relay
        .http()
        .get(format!(
            "{}/v1/messages/{}",
            relay.url,
            reply["id"].as_str().unwrap()
        ))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let web = status["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["device_id"] == browser.as_str())
        .unwrap();
    assert_eq!(web["type"], "webpush");
    assert_eq!(web["state"], "queued");
    assert_ne!(phone, browser);
}
