//! One typed client for the relay's API as the stories use it: the happy paths go through the
//! crate's own `client::Client` (status, pairing) and `client::stream::StreamClient` (the
//! desktop stream), so a test reads "pair, send, read the stream, ack" rather than HTTP. The
//! `*_reply` methods give any answer as (status code, body) for the tests about refusals; tests
//! about malformed requests keep writing their raw HTTP.

use super::Relay;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use futures_util::StreamExt;
use reflecto::api::status::MessageView;
use reflecto::api::stream::{PairRequest, PairResponse};
use reflecto::api::token::Secret;
use reflecto::client::Client;
use reflecto::client::http::StatusPoll;
use reflecto::client::stream::StreamClient;
use reqwest::{Method, RequestBuilder};
use serde_json::{Value, json};
use std::time::Duration;

/// The relay at one base URL, as a client sees it.
pub struct Api {
    pub url: String,
    http: reqwest::Client,
    client: Client,
}

/// `GET /v1/messages/{id}` answered 200: the parsed view and the body as JSON, which the
/// status derefs to so `status["deliveries"][0]["state"]` reads the wire format itself.
#[derive(Debug, Clone)]
pub struct MessageStatus {
    pub view: MessageView,
    json: Value,
}

impl std::ops::Deref for MessageStatus {
    type Target = Value;

    fn deref(&self) -> &Value {
        &self.json
    }
}

impl std::fmt::Display for MessageStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.json.fmt(f)
    }
}

impl MessageStatus {
    /// The delivery row of `device_id` (panics, showing the status, when there is none).
    pub fn delivery(&self, device_id: &str) -> &Value {
        self.json["deliveries"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|d| d["device_id"] == device_id)
            .unwrap_or_else(|| panic!("no delivery to {device_id}: {}", self.json))
    }

    /// Every delivery ended as `delivered`.
    pub fn all_delivered(&self) -> bool {
        self.view.all_delivered()
    }
}

impl Relay {
    /// This relay's API (at its current URL: a restart moves it).
    pub fn api(&self) -> Api {
        Api::new(&self.url)
    }

    /// Pairs a device for alice with a fresh code from `reflecto admin pair`: `request` is the
    /// pairing body without its code.
    pub async fn pair(&self, mut request: Value) -> PairResponse {
        request["code"] = json!(self.admin(&["pair", "--user", "alice"]));
        self.api().pair(request).await
    }
}

impl Api {
    pub fn new(url: &str) -> Api {
        Api {
            url: url.to_owned(),
            http: reqwest::Client::new(),
            client: Client::new(url).unwrap(),
        }
    }

    /// `POST /v1/send` with `token`: the accepted message's id (panics showing the refusal).
    pub async fn send(&self, token: &str, body: Value) -> String {
        let reply = self.send_reply(token, body).await.1;
        reply["id"]
            .as_str()
            .unwrap_or_else(|| panic!("not accepted: {reply}"))
            .to_owned()
    }

    /// A request for `path` on this relay, with `token` as its bearer when given.
    fn request(&self, method: Method, path: &str, token: Option<&str>) -> RequestBuilder {
        let request = self.http.request(method, format!("{}{path}", self.url));
        match token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }

    /// `POST /v1/send` of a plain `message` to alice's device labelled `device`: the id.
    pub async fn send_to(&self, token: &str, device: &str, message: &str) -> String {
        let body = json!({"message": message, "device": device});
        self.send(token, body).await
    }

    /// `POST /v1/send` with `token`, whatever the answer: (status code, body).
    pub async fn send_reply(&self, token: &str, body: Value) -> (u16, Value) {
        let request = self.request(Method::POST, "/v1/send", Some(token));
        reply(request.json(&body).send().await.unwrap()).await
    }

    /// Every one of `bodies` sent with `token` is refused: 400 with the error `code`.
    pub async fn refuses_sends(
        &self,
        token: &str,
        code: &str,
        bodies: impl IntoIterator<Item = Value>,
    ) {
        for body in bodies {
            let (status, reply) = self.send_reply(token, body.clone()).await;
            assert_eq!(
                (status, code_of(&reply).as_str()),
                (400, code),
                "{body}: {reply}"
            );
        }
    }

    /// `GET /v1/messages/{id}` with `token`, which must answer 200.
    pub async fn status(&self, token: &str, id: &str) -> MessageStatus {
        let status = self
            .client
            .message_status(&Secret::new(token), id, None, Duration::ZERO)
            .await
            .unwrap_or_else(|e| panic!("status of {id}: {} ({})", e.code, e.message));
        let StatusPoll::Changed { raw, view, .. } = status else {
            panic!("status of {id}: 304 to a request that named no ETag");
        };
        MessageStatus {
            view,
            json: serde_json::from_str(&raw).unwrap(),
        }
    }

    /// The `ETag` of `GET /v1/messages/{id}` with `token` now.
    pub async fn etag(&self, token: &str, id: &str) -> String {
        let path = format!("/v1/messages/{id}");
        let response = self.request(Method::GET, &path, Some(token)).send();
        let response = response.await.unwrap();
        response.headers()["etag"].to_str().unwrap().to_owned()
    }

    /// `GET /v1/messages/{id}` with `token`, held (`Prefer: wait=30`) while the status still
    /// matches `etag` — the long poll of `reflecto ask`: (status code, its ETag, body or null).
    /// The request is made at once; the future, to spawn, reads the answer.
    pub fn held_status(
        &self,
        token: &str,
        id: &str,
        etag: &str,
    ) -> impl Future<Output = (u16, String, Value)> + Send + use<> {
        let request = self
            .request(Method::GET, &format!("/v1/messages/{id}"), Some(token))
            .header("if-none-match", etag)
            .header("prefer", "wait=30");
        async move {
            let response = request.send().await.unwrap();
            let etag = response.headers()["etag"].to_str().unwrap().to_owned();
            let (status, body) = reply_or_null(response).await;
            (status, etag, body)
        }
    }

    /// `GET /v1/messages/{id}` with `token`, whatever the answer: (status code, body).
    pub async fn status_reply(&self, token: &str, id: &str) -> (u16, Value) {
        let path = format!("/v1/messages/{id}");
        reply(
            self.request(Method::GET, &path, Some(token))
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    /// Redeems a pairing that must succeed: `request` is the JSON body (code included).
    pub async fn pair(&self, request: Value) -> PairResponse {
        let request: PairRequest = serde_json::from_value(request).unwrap();
        self.client
            .pair(&request)
            .await
            .unwrap_or_else(|e| panic!("pairing refused: {} ({})", e.code, e.message))
    }

    /// `POST /v1/devices/pair` with `body`, whatever the answer: (status code, body).
    pub async fn pair_reply(&self, body: &Value) -> (u16, Value) {
        self.pair_reply_from(body, None).await
    }

    /// The same from `ip` when given (through a trusted proxy's `X-Forwarded-For`).
    pub async fn pair_reply_from(&self, body: &Value, ip: Option<&str>) -> (u16, Value) {
        let mut request = self
            .request(Method::POST, "/v1/devices/pair", None)
            .json(body);
        if let Some(ip) = ip {
            request = request.header("x-forwarded-for", ip);
        }
        reply(request.send().await.unwrap()).await
    }

    /// `GET /v1/sync` with `credential` (resuming after `last_event_id`), the response as it
    /// came: for tests about its status, headers or end.
    pub async fn sync(&self, credential: &str, last_event_id: Option<i64>) -> reqwest::Response {
        let mut request = self.request(Method::GET, "/v1/sync", Some(credential));
        if let Some(last) = last_event_id {
            request = request.header("last-event-id", last.to_string());
        }
        request.send().await.unwrap()
    }

    /// The stream's `notification` events, read through the crate's `StreamClient`, until `n`
    /// arrived or `wait` passed: (sequence number, raw `data:`) pairs. The connection must be
    /// accepted.
    pub async fn sync_events(
        &self,
        credential: &str,
        last_event_id: Option<i64>,
        n: usize,
        wait: Duration,
    ) -> Vec<(i64, String)> {
        let client = StreamClient::new(&self.url, Secret::new(credential)).unwrap();
        let last = last_event_id.map(|id| id.to_string());
        let mut events = Vec::new();
        let read = async {
            let mut stream = client.open(last.as_deref()).await.unwrap();
            while events.len() < n {
                match stream.next().await {
                    Some(Ok(event)) => events.push((event.event_id.parse().unwrap(), event.data)),
                    Some(Err(_)) | None => break,
                }
            }
        };
        let _ = tokio::time::timeout(wait, read).await;
        events
    }

    /// The device's stream, open: it must answer 200.
    pub async fn stream(&self, credential: &str) -> reqwest::Response {
        let response = self.sync(credential, None).await;
        assert_eq!(response.status(), 200);
        response
    }

    /// The one event pending on the device's stream, read within 10 s: (sequence number, raw
    /// `data:`). The stream must answer 200.
    pub async fn one_event(&self, credential: &str) -> (i64, String) {
        let response = self.stream(credential).await;
        let mut events = super::read_sse_events(response, 1, Duration::from_secs(10)).await;
        assert_eq!(events.len(), 1, "one event expected on the stream");
        events.remove(0)
    }

    /// `POST /v1/messages/{id}/acknowledge` with a device credential and `body`, whatever the
    /// answer: (status code, body, or null when it is not JSON).
    pub async fn acknowledge(&self, credential: &str, id: &str, body: Value) -> (u16, Value) {
        let path = format!("/v1/messages/{id}/acknowledge");
        self.call("POST", &path, Some(credential), Some(body)).await
    }

    /// `DELETE path` (a clear: `/v1/messages/{id}` or `/v1/keys/{key}`) with `token`, whatever
    /// the answer: (status code, body, or null when it is not JSON).
    pub async fn delete(&self, token: &str, path: &str) -> (u16, Value) {
        self.call("DELETE", path, Some(token), None).await
    }

    /// `GET path` without credentials (a Pushover receipt carries its token in the query): the
    /// JSON body, whatever the status.
    pub async fn get_json(&self, path: &str) -> Value {
        let response = self.request(Method::GET, path, None).send().await.unwrap();
        response.json().await.unwrap()
    }

    /// `POST path` of the HTML form `fields` (the Pushover API's way): the response as it came.
    pub async fn post_form(&self, path: &str, fields: &[(&str, &str)]) -> reqwest::Response {
        let request = self.request(Method::POST, path, None).form(fields);
        request.send().await.unwrap()
    }

    /// `GET path` with `token` (if any), which must answer 200: the response, for its headers
    /// or body.
    pub async fn get_ok(&self, path: &str, token: Option<&str>) -> reqwest::Response {
        let request = self.request(Method::GET, path, token);
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 200);
        response
    }

    /// `METHOD path` with `token` (if any) and a JSON `body` (if any), whatever the answer:
    /// (status code, body or null when it is not JSON).
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut request = self.request(method.parse().unwrap(), path, token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        reply_or_null(request.send().await.unwrap()).await
    }

    /// `POST /v1/sync/ack` of `ids` with `credential`: the relay's answer (`{"acked": n}`).
    pub async fn ack(&self, credential: &str, ids: &[i64]) -> Value {
        let request = self.request(Method::POST, "/v1/sync/ack", Some(credential));
        let response = request.json(&json!({ "ids": ids })).send().await.unwrap();
        response.json().await.unwrap()
    }
}

/// Sends each of `texts` with `token`, with the other fields of `fields`: their ids, in order.
pub async fn send_each(api: &Api, token: &str, texts: &[&str], fields: Value) -> Vec<String> {
    let mut ids = Vec::new();
    for text in texts {
        let mut body = fields.clone();
        body["message"] = json!(text);
        ids.push(api.send(token, body).await);
    }
    ids
}

/// The keys of the JSON `object`, sorted.
pub fn keys_of(object: &Value) -> Vec<&str> {
    let mut keys: Vec<&str> = object
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    keys
}

/// The text `field` of every element of the JSON `array` (panics where one is not text).
pub fn field_of_each<'a>(array: &'a Value, field: &str) -> Vec<&'a str> {
    let elements = array.as_array().unwrap().iter();
    elements.map(|e| e[field].as_str().unwrap()).collect()
}

/// The error code of a nested or flat error body.
pub fn code_of(body: &Value) -> String {
    body["error"]["code"]
        .as_str()
        .or(body["error"].as_str())
        .unwrap_or_default()
        .to_owned()
}

/// Any answer as (status code, JSON body).
async fn reply(response: reqwest::Response) -> (u16, Value) {
    (response.status().as_u16(), response.json().await.unwrap())
}

/// Any answer as (status code, JSON body or null).
async fn reply_or_null(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

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
