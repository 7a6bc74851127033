//! SPEC §1.7–§1.8 through real requests: each layer's 429 and headers, what does not charge
//! quota, persistence across a restart, and no 5xx for any input.

use crate::harness::{Relay, expect_429, header, no_limits, only, send_status, too_large};
use proptest::prelude::*;
use reflecto::server::limits::{Layer, Limits};
use serde_json::{Value, json};

/// A send of `message` with `token` is refused by `layer` (see [`expect_429`]).
async fn expect_send_429(relay: &Relay, token: &str, message: &str, layer: &str) {
    expect_429(
        relay.send_json(token, json!({ "message": message })).await,
        layer,
    )
    .await;
}

#[tokio::test]
async fn each_layer_answers_429_with_its_headers() {
    for binding in [
        Layer::TokenBurst,
        Layer::TokenMonthly,
        Layer::ReceiverDaily,
        Layer::IpMinute,
        Layer::IpHour,
    ] {
        let layer = binding.as_str();
        let relay = Relay::start(only(binding, 2)).await;
        let (token, _, _) = relay.alice();
        // receiver_daily spans all of a user's tokens.
        let second = relay.admin(&["token", "create", "--user", "alice", "--label", "second"]);
        let first = relay.send_json(&token, json!({"message": "1"})).await;
        assert_eq!(first.status(), 200);
        assert_eq!(
            header(&first, "x-ratelimit-resource"),
            layer,
            "binding layer of the 200"
        );
        assert_eq!(
            (
                header(&first, "x-ratelimit-limit"),
                header(&first, "x-ratelimit-remaining")
            ),
            ("2".into(), "1".into())
        );
        let other = if layer == "receiver_daily" {
            &second
        } else {
            &token
        };
        assert_eq!(
            send_status(&relay, other, json!({"message": "2"})).await,
            200
        );
        expect_send_429(&relay, &token, "3", layer).await;
    }
}

/// SPEC §1.7 step 1 on the operator API (regression: `/v1/admin/*` was never counted): reads
/// with a live admin token are checked, not charged, as §1.8's authenticated reads; a change
/// and a refused read are charged; then every admin request from the address is 429.
#[tokio::test]
async fn the_operator_api_is_counted_by_the_per_ip_layers() {
    let relay = Relay::start(only(Layer::IpMinute, 3)).await;
    let admin = relay.admin(&["token", "create", "--admin", "--label", "ops"]);
    let http = reqwest::Client::new();
    let users = format!("{}/v1/admin/users", relay.url);
    for _ in 0..5 {
        let read = http.get(&users).bearer_auth(&admin).send().await.unwrap();
        assert_eq!(read.status(), 200);
    }
    let added = http
        .post(&users)
        .bearer_auth(&admin)
        .json(&json!({"name": "bob"}))
        .send()
        .await
        .unwrap();
    assert_eq!(added.status(), 200);
    let unknown = format!("rfa_live_{}", "x".repeat(32));
    for _ in 0..2 {
        let refused = http.get(&users).bearer_auth(&unknown).send().await.unwrap();
        assert_eq!(refused.status(), 401);
    }
    expect_429(
        http.get(&users).bearer_auth(&admin).send().await.unwrap(),
        "ip_minute",
    )
    .await;
}

#[tokio::test]
async fn rejected_requests_charge_no_token_quota() {
    let relay = Relay::start(Limits {
        token_burst: 1,
        token_monthly: 1,
        ..no_limits()
    })
    .await;
    let (token, _, _) = relay.alice();
    assert_eq!(
        send_status(&relay, &token, json!({"message": ""})).await,
        400
    );
    assert_eq!(send_status(&relay, &token, too_large()).await, 413);
    let capped = relay.capped_token("c", "low");
    for (priority, status) in [("high", 403), ("low", 200)] {
        let body = json!({"message": "m", "priority": priority});
        assert_eq!(send_status(&relay, &capped, body).await, status);
    }
    assert_eq!(
        send_status(&relay, &token, json!({"message": "ok"})).await,
        200,
        "400/413 charged nothing"
    );
}

/// Fills a persistent layer, restarts the relay on the same store, and expects that layer's 429.
async fn full_after_restart(limits: Limits, layer: &str) {
    let mut relay = Relay::start(limits).await;
    let (token, _, _) = relay.alice();
    for _ in 0..2 {
        assert_eq!(
            send_status(&relay, &token, json!({"message": "m"})).await,
            200
        );
    }
    relay.restart().await;
    expect_send_429(&relay, &token, "m", layer).await;
}

#[tokio::test]
async fn monthly_and_daily_counts_survive_a_restart() {
    for layer in [Layer::TokenMonthly, Layer::ReceiverDaily] {
        full_after_restart(only(layer, 2), layer.as_str()).await;
    }
}

fn arb_header() -> impl Strategy<Value = (String, String)> {
    (
        prop::sample::select(vec![
            "content-type",
            "authorization",
            "idempotency-key",
            "x-request-id",
            "x-forwarded-for",
        ]),
        prop_oneof![
            Just("application/json".to_owned()),
            Just("application/x-www-form-urlencoded".to_owned()),
            Just("multipart/form-data; boundary=x".to_owned()),
            "[ -~]{0,80}",
        ],
    )
        .prop_map(|(k, v)| (k.to_owned(), v))
}

fn arb_body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..400),
        "[ -~]{0,300}".prop_map(String::into_bytes),
        (
            ".{0,50}",
            prop::collection::vec(("[a-z_]{1,10}", "[ -~]{0,20}"), 0..6)
        )
            .prop_map(|(m, kv)| {
                let mut obj = serde_json::Map::new();
                obj.insert("message".into(), Value::String(m));
                for (k, v) in kv {
                    obj.insert(k, serde_json::from_str(&v).unwrap_or(Value::String(v)));
                }
                serde_json::to_vec(&obj).unwrap()
            }),
    ]
}

/// Random bodies and headers on every write route: never a 5xx.
#[test]
fn bad_input_never_yields_a_5xx() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let relay = rt.block_on(Relay::start(no_limits()));
    let (token, _, _) = relay.alice();
    let http = relay.http();
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig::with_cases(300));
    runner
        .run(
            &(
                prop::sample::select(vec![
                    "/v1/send",
                    "/v1/messages.json",
                    "/v1/devices/pair",
                    "/v1/send/x",
                ]),
                arb_body(),
                prop::collection::vec(arb_header(), 0..4),
                any::<bool>(),
            ),
            |(path, body, headers, authed)| {
                let status = rt.block_on(async {
                    let mut req = http.post(format!("{}{path}", relay.url)).body(body);
                    if authed {
                        req = req.bearer_auth(&token);
                    }
                    for (k, v) in &headers {
                        if let Ok(v) = reqwest::header::HeaderValue::from_str(v) {
                            req = req.header(k.as_str(), v);
                        }
                    }
                    req.send().await.unwrap().status().as_u16()
                });
                prop_assert!(status < 500, "{path} answered {status}");
                Ok(())
            },
        )
        .unwrap();
}
