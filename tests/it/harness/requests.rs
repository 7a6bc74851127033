//! Requests written out by hand, for the stories about the answer itself: its status code,
//! headers and body as they came (the typed [`Api`](super::Api) hides them), and the 429 a
//! rate-limit layer answers with.

use super::{Relay, code_of};
use serde_json::{Value, json};
use std::time::Duration;

/// `GET /v1/token` with `token`: the answer as it came.
pub async fn token_check(relay: &Relay, token: &str) -> reqwest::Response {
    relay
        .http()
        .get(format!("{}/v1/token", relay.url))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

/// One `GET /v1/messages/{id}`: (status code, ETag, body as JSON or `Null` when empty).
pub async fn get_status(
    url: &str,
    token: &str,
    id: &str,
    headers: &[(&str, &str)],
) -> (u16, Option<String>, Value) {
    let mut request = reqwest::Client::new()
        .get(format!("{url}/v1/messages/{id}"))
        .bearer_auth(token)
        .timeout(Duration::from_secs(90));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let etag = response
        .headers()
        .get("etag")
        .map(|v| v.to_str().unwrap().to_owned());
    let text = response.text().await.unwrap();
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap()
    };
    (status, etag, body)
}

/// The status of `POST /v1/send` with `token` and `body`.
pub async fn send_status(relay: &Relay, token: &str, body: Value) -> u16 {
    relay.send_json(token, body).await.status().as_u16()
}

/// A body within every field's limit whose envelope is over the 2048 bytes a payload may be.
pub fn too_large() -> Value {
    json!({"message": "x".repeat(1500), "title": "t".repeat(100), "url": format!("https://e.com/{}", "p".repeat(490))})
}

/// The value of header `name` in `resp` ("" without one).
pub fn header(resp: &reqwest::Response, name: &str) -> String {
    resp.headers()
        .get(name)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

/// `resp` is `layer`'s 429: its rate-limit headers, a Retry-After of at least a second, a reset
/// not in the past, and the `rate_limit_exceeded` body naming `layer`.
pub async fn expect_429(resp: reqwest::Response, layer: &str) {
    assert_eq!(resp.status(), 429);
    assert_eq!(header(&resp, "x-ratelimit-resource"), layer);
    assert_eq!(header(&resp, "x-ratelimit-remaining"), "0");
    let retry: u64 = header(&resp, "retry-after").parse().unwrap();
    assert!(retry >= 1);
    let reset: i64 = header(&resp, "x-ratelimit-reset").parse().unwrap();
    assert!(reset > chrono::Utc::now().timestamp() - 1);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(code_of(&body), "rate_limit_exceeded");
    assert_eq!(body["error"]["details"]["resource"], layer);
}
