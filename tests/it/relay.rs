//! SPEC §1: every error row, warnings, scopes, revocation, the shim, idempotency, pairing and
//! the operational endpoints, each through a real request to a real relay.

use crate::harness::{Relay, UNKNOWN_TOKEN, code_of, no_limits, send_status, too_large};
use serde_json::{Value, json};

async fn status_and_body(resp: reqwest::Response) -> (u16, Value) {
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// `GET path` on `relay`: (status code, body as JSON or else as a string).
async fn get(relay: &Relay, path: &str) -> (u16, Value) {
    status_and_body(
        relay
            .http()
            .get(format!("{}{path}", relay.url))
            .send()
            .await
            .unwrap(),
    )
    .await
}

#[tokio::test]
async fn every_400_code_from_a_real_request() {
    let relay = Relay::start(no_limits()).await;
    let (token, _, _) = relay.alice();
    let cases = [
        (json!({"title": "no message"}), "invalid_message"),
        (json!({"message": ""}), "invalid_message"),
        (json!({"message": "x".repeat(1501)}), "message_too_long"),
        (json!({"message": "m", "title": ""}), "invalid_title"),
        (
            json!({"message": "m", "priority": "emergency"}),
            "invalid_priority",
        ),
        (json!({"message": "m", "url": "ftp://x"}), "invalid_url"),
        (
            json!({"message": "m", "url_title": "u".repeat(33)}),
            "invalid_url_title",
        ),
        (
            json!({"message": "m", "actions": [{"label": "x"}]}),
            "invalid_action",
        ),
        (
            json!({"message": "m", "device": "d".repeat(257)}),
            "invalid_device",
        ),
        (json!({"message": "m", "key": "a/b"}), "invalid_key"),
        (json!({"message": "m", "key": 7}), "invalid_body"),
        (
            json!({"message": "m", "tags": "not-an-array"}),
            "invalid_body",
        ),
    ];
    for (body, code) in cases {
        let (status, reply) = status_and_body(relay.send_json(&token, body.clone()).await).await;
        assert_eq!((status, code_of(&reply).as_str()), (400, code), "{body}");
        assert!(
            reply["error"]["message"].is_string(),
            "nested shape: {reply}"
        );
    }
    let missing = relay.send_json(&token, json!({"title": "t"})).await;
    let (_, body) = status_and_body(missing).await;
    assert_eq!(
        body["error"]["message"],
        "Invalid input: expected string, received undefined"
    );
    let long = status_and_body(
        relay
            .send_json(&token, json!({"message": "x".repeat(1501)}))
            .await,
    )
    .await
    .1;
    assert_eq!(
        long["error"]["details"],
        json!({"bytes": 1501, "max": 1500})
    );
    // Unparseable JSON and unsupported content types.
    let http = relay.http();
    let bad_json = http
        .post(format!("{}/v1/send", relay.url))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body("{")
        .send()
        .await
        .unwrap();
    assert_eq!(code_of(&status_and_body(bad_json).await.1), "invalid_body");
    let xml = http
        .post(format!("{}/v1/send", relay.url))
        .bearer_auth(&token)
        .header("content-type", "application/xml")
        .body("<a/>")
        .send()
        .await
        .unwrap();
    assert_eq!(status_and_body(xml).await.0, 400);
    assert_eq!(
        relay.count("SELECT COUNT(*) FROM messages"),
        0,
        "nothing was accepted"
    );
}

#[tokio::test]
async fn auth_errors_use_the_flat_shape() {
    let relay = Relay::start(no_limits()).await;
    let (token, _, _) = relay.alice();
    let http = relay.http();
    let (status, body) = status_and_body(
        http.post(format!("{}/v1/send", relay.url))
            .body("hi")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, body.clone()),
        (
            401,
            json!({"error": "missing_token", "message": "Authorization: Bearer rfk_live_… required"})
        )
    );
    for bad in ["rfk_live_short", UNKNOWN_TOKEN, "Basic abc"] {
        let resp = http
            .post(format!("{}/v1/send", relay.url))
            .header("authorization", format!("Bearer {bad}"))
            .body("hi")
            .send()
            .await
            .unwrap();
        assert_eq!(
            status_and_body(resp).await,
            (401, json!({"error": "invalid_token"})),
            "{bad}"
        );
    }
    // Revocation takes effect on the next request.
    assert_eq!(
        send_status(&relay, &token, json!({"message": "ok"})).await,
        200
    );
    relay.admin(&["token", "revoke", &relay.token_id("ci")]);
    let (status, body) = status_and_body(
        relay
            .send_json(&token, json!({"message": "after revoke"}))
            .await,
    )
    .await;
    assert_eq!((status, body), (401, json!({"error": "invalid_token"})));
}

#[tokio::test]
async fn priority_cap_is_403_and_payload_limits_are_413() {
    let relay = Relay::start(no_limits()).await;
    relay.alice();
    let capped = relay.capped_token("low", "default");
    let (status, body) = status_and_body(
        relay
            .send_json(&capped, json!({"message": "m", "priority": "high"}))
            .await,
    )
    .await;
    assert_eq!((status, code_of(&body).as_str()), (403, "priority_capped"));
    let default = json!({"message": "m", "priority": "default"});
    assert_eq!(send_status(&relay, &capped, default).await, 200);

    let (status, body) = status_and_body(relay.send_json(&capped, too_large()).await).await;
    assert_eq!(
        (status, code_of(&body).as_str()),
        (413, "payload_too_large")
    );
    assert_eq!(body["error"]["message"], "Payload exceeds 2048 byte limit");
    assert_eq!(body["error"]["details"]["max"], 2048);
    assert!(body["error"]["details"]["size"].as_u64().unwrap() > 2048);

    let raw = relay
        .http()
        .post(format!("{}/v1/send", relay.url))
        .bearer_auth(&capped)
        .body("x".repeat(70 * 1024))
        .send()
        .await
        .unwrap();
    let (status, body) = status_and_body(raw).await;
    assert_eq!(
        (status, code_of(&body).as_str()),
        (413, "payload_too_large")
    );
}

#[tokio::test]
async fn warnings_device_selection_and_scope() {
    let relay = Relay::start(no_limits()).await;
    let (token, phone, desk) = relay.alice();
    let body = status_and_body(relay.send_json(&token, json!({"message": "m", "device": "laptop,tv", "tags": ["a","b","c","d","e","f"], "actions": [{"label":"a","url":"https://a.io"},{"label":"b","url":"https://a.io"},{"label":"c","url":"https://a.io"},{"label":"d","url":"https://a.io"}]})).await).await.1;
    assert_eq!(
        body["delivered_to"],
        json!([{"device_id": desk, "type": "extension"}])
    );
    assert_eq!(
        body["warnings"],
        json!([
            "tags truncated to first 5 (got 6)",
            "actions truncated to first 3 (got 4)",
            "unknown device label: 'tv'"
        ])
    );
    let id = body["id"].as_str().unwrap();
    assert!(id.starts_with("msg_") && id.len() == 36);

    let fallback = status_and_body(
        relay
            .send_json(&token, json!({"message": "m", "device": "tv"}))
            .await,
    )
    .await
    .1;
    assert_eq!(fallback["delivered_to"].as_array().unwrap().len(), 2);
    assert_eq!(
        fallback["warnings"][1],
        "device fallback: all entries unknown, delivering to every paired device"
    );

    let scoped = relay.admin(&[
        "token",
        "create",
        "--user",
        "alice",
        "--label",
        "deploy",
        "--scope-devices",
        "laptop",
    ]);
    let body = status_and_body(relay.send_json(&scoped, json!({"message": "m"})).await)
        .await
        .1;
    assert_eq!(
        body["delivered_to"],
        json!([{"device_id": desk, "type": "extension"}])
    );
    assert_eq!(
        body["warnings"],
        json!([format!(
            "token scope 'deploy' dropped out-of-scope device(s): {phone}"
        )])
    );

    relay.admin(&["user", "add", "bob"]);
    let bobs = relay.admin(&["token", "create", "--user", "bob", "--label", "b"]);
    let body = status_and_body(relay.send_json(&bobs, json!({"message": "m"})).await)
        .await
        .1;
    assert_eq!(body["delivered_to"], json!([]));
    assert_eq!(
        body["warnings"],
        json!(["no paired devices for this token's owner"])
    );
}

#[tokio::test]
async fn encodings_path_token_and_idempotency() {
    let relay = Relay::start(no_limits()).await;
    let (token, _, _) = relay.alice();
    let http = relay.http();
    // curl -d "Backup done"
    let raw = http
        .post(format!("{}/v1/send", relay.url))
        .bearer_auth(&token)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("Backup done")
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status(), 200);
    let form = reqwest::multipart::Form::new()
        .text("message", "from multipart")
        .text("priority", "high");
    assert_eq!(
        http.post(format!("{}/v1/send", relay.url))
            .bearer_auth(&token)
            .multipart(form)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let path = http
        .post(format!("{}/v1/send/{token}", relay.url))
        .body("via path")
        .send()
        .await
        .unwrap();
    assert_eq!(path.status(), 200);
    // A header wins over the path token.
    let both = http
        .post(format!("{}/v1/send/{token}", relay.url))
        .bearer_auth(UNKNOWN_TOKEN)
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(both.status(), 401);
    let envelopes = relay.envelopes();
    assert!(
        envelopes[0].contains(r#""message":"Backup done""#),
        "{}",
        envelopes[0]
    );
    assert!(
        envelopes
            .iter()
            .any(|e| e.contains(r#""message":"from multipart","priority":"high""#))
    );
    assert!(envelopes.iter().all(|e| e.ends_with(r#""source":"ci"}"#)));

    let before = relay.count("SELECT COUNT(*) FROM messages");
    let send = || {
        http.post(format!("{}/v1/send", relay.url))
            .bearer_auth(&token)
            .header("idempotency-key", "retry-1")
            .json(&json!({"message": "once"}))
            .send()
    };
    let first = send().await.unwrap().text().await.unwrap();
    let second = send().await.unwrap().text().await.unwrap();
    assert_eq!(first, second);
    assert_eq!(relay.count("SELECT COUNT(*) FROM messages"), before + 1);
    let bad_key = http
        .post(format!("{}/v1/send", relay.url))
        .bearer_auth(&token)
        .header("idempotency-key", "k".repeat(65))
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(bad_key.status(), 400);
}

#[tokio::test]
async fn pushover_shim_maps_fields_and_wraps_errors() {
    let relay = Relay::start(no_limits()).await;
    let (token, _, _) = relay.alice();
    let http = relay.http();
    for path in ["/v1/messages.json", "/1/messages.json"] {
        let ok = http
            .post(format!("{}{path}", relay.url))
            .form(&[
                ("token", token.as_str()),
                ("user", "u123"),
                ("message", "hi"),
                ("priority", "-1"),
                ("sound", "pop"),
            ])
            .send()
            .await
            .unwrap();
        let (status, body) = status_and_body(ok).await;
        assert_eq!(status, 200);
        assert_eq!(body["status"], 1);
        assert!(body["request"].as_str().unwrap().starts_with("msg_"));
    }
    let envelope = relay.envelopes().remove(0);
    assert!(envelope.contains(r#""priority":"low""#), "{envelope}");
    assert!(!envelope.contains("pop") && !envelope.contains("u123"));

    let cases = [
        (
            json!({"token": token, "message": "m", "priority": 2}),
            400,
            "invalid_repeat",
        ),
        (
            json!({"token": token, "message": "m", "priority": 2, "retry": 10, "expire": 600}),
            400,
            "invalid_repeat",
        ),
        (
            json!({"token": token, "message": "m", "priority": 5}),
            400,
            "invalid_priority",
        ),
        (json!({"token": token}), 400, "invalid_message"),
        (json!({"message": "m"}), 401, "missing_token"),
        (
            json!({"token": "nope", "message": "m"}),
            401,
            "invalid_token",
        ),
    ];
    for (body, status, code) in cases {
        let resp = http
            .post(format!("{}/v1/messages.json", relay.url))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(
            status_and_body(resp).await,
            (status, json!({"status": 0, "errors": [code]})),
            "{body}"
        );
    }
}

#[tokio::test]
async fn message_status_pairing_and_operational_endpoints() {
    let relay = Relay::start(no_limits()).await;
    let (token, phone, _) = relay.alice();
    let http = relay.http();
    let api = relay.api();
    let id = api
        .send(&token, json!({"message": "m", "device": "pixel"}))
        .await;
    let status = api.status(&token, &id).await;
    assert_eq!(status["id"], id.as_str());
    assert_eq!(status["deliveries"][0]["device_id"], phone.as_str());
    assert_eq!(status["deliveries"][0]["state"], "queued");
    assert_eq!(status["deliveries"][0]["attempts"], 0);
    relay.admin(&["user", "add", "bob"]);
    let bobs = relay.admin(&["token", "create", "--user", "bob", "--label", "b"]);
    let (code, body) = api.status_reply(&bobs, &id).await;
    assert_eq!((code, code_of(&body).as_str()), (404, "not_found"));

    let pair_code = relay.admin(&["pair", "--user", "bob"]);
    let desk = json!({"code": pair_code, "type": "extension", "label": "desk"});
    let (code, body) = api.pair_reply(&desk).await;
    assert_eq!(code, 200, "{body}");
    assert!(body["device_id"].as_str().unwrap().starts_with("dev_"));
    assert!(
        body["credential"]
            .as_str()
            .unwrap()
            .starts_with("rfd_live_")
    );
    let (code, body) = api.pair_reply(&desk).await;
    assert_eq!(
        (code, code_of(&body).as_str()),
        (400, "invalid_pairing_code")
    );
    assert!(
        relay
            .admin(&["device", "list", "--user", "bob"])
            .contains("desk")
    );

    assert_eq!(
        get(&relay, "/health/ready").await,
        (
            200,
            json!({"status": "ready", "store": "ok", "fcm": "disabled"})
        )
    );
    assert_eq!(get(&relay, "/health/live").await.0, 200);
    let openapi = get(&relay, "/openapi.json").await.1;
    assert_eq!(openapi["openapi"], "3.1.0");
    for path in [
        "/v1/send",
        "/v1/send/{token}",
        "/v1/messages.json",
        "/v1/messages/{id}",
        "/v1/devices/pair",
        "/v1/sync",
        "/v1/sync/ack",
    ] {
        assert!(
            openapi["paths"][path].is_object(),
            "{path} missing from the OpenAPI document"
        );
    }
    let catalog = http
        .get(format!("{}/.well-known/api-catalog", relay.url))
        .send()
        .await
        .unwrap();
    assert_eq!(
        catalog.headers()["content-type"],
        "application/linkset+json"
    );
    let catalog: Value = catalog.json().await.unwrap();
    assert!(
        catalog["linkset"][0]["service-desc"][0]["href"]
            .as_str()
            .unwrap()
            .ends_with("/openapi.json")
    );
    let metrics = relay.metrics().await;
    assert!(
        metrics.contains("reflecto_sends_accepted_total 1"),
        "{metrics}"
    );
    assert!(metrics.contains("reflecto_http_requests_total{route=\"/v1/send\",status=\"200\"} 1"));
    // The embedded store's log holds the send's commit: no checkpoint runs this early.
    let wal_frames: i64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("reflecto_store_wal_frames "))
        .expect("the embedded store's log size is reported")
        .parse()
        .unwrap();
    assert!(wal_frames > 0, "{metrics}");
    assert!(metrics.contains("reflecto_store_checkpoints_total{kind=\"cap\"} 0"));
    let echoed = http
        .get(format!("{}/health", relay.url))
        .header("x-request-id", "abc-123")
        .send()
        .await
        .unwrap();
    assert_eq!(echoed.headers()["x-request-id"], "abc-123");
    let generated = http
        .get(format!("{}/health", relay.url))
        .header("x-request-id", "bad id with spaces")
        .send()
        .await
        .unwrap();
    assert!(
        generated.headers()["x-request-id"]
            .to_str()
            .unwrap()
            .starts_with("req_")
    );
    let unknown = get(&relay, "/nope").await;
    assert_eq!(
        (unknown.0, code_of(&unknown.1).as_str()),
        (404, "not_found")
    );
}

#[tokio::test]
async fn shim_200_carries_the_rate_limit_headers() {
    let mut limits = no_limits();
    limits.token_burst = 5;
    let relay = Relay::start(limits).await;
    let (token, _, _) = relay.alice();
    let ok = relay
        .http()
        .post(format!("{}/v1/messages.json", relay.url))
        .form(&[("token", token.as_str()), ("message", "hi")])
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    let header = |name: &str| ok.headers()[name].to_str().unwrap().to_owned();
    assert_eq!(header("x-ratelimit-resource"), "token_burst");
    assert_eq!(header("x-ratelimit-limit"), "5");
    assert_eq!(header("x-ratelimit-remaining"), "4");
    assert!(header("x-ratelimit-reset").parse::<i64>().unwrap() > 0);
}
