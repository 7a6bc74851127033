//! One typed client for the relay's API as the stories use it: the happy paths go through the
//! crate's own `client::Client` (status, pairing) and `client::stream::StreamClient` (the
//! desktop stream), so a test reads "pair, send, read the stream, ack" rather than HTTP. The
//! `*_reply` methods give any answer as (status code, body) for the tests about refusals; tests
//! about malformed requests keep writing their raw HTTP.

use super::Relay;
use futures_util::StreamExt;
use reflecto::api::status::MessageView;
use reflecto::api::stream::{PairRequest, PairResponse};
use reflecto::api::token::Secret;
use reflecto::client::Client;
use reflecto::client::http::StatusPoll;
use reflecto::client::stream::StreamClient;
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

    /// `POST /v1/send` with `token`, whatever the answer: (status code, body).
    pub async fn send_reply(&self, token: &str, body: Value) -> (u16, Value) {
        let response = self
            .http
            .post(format!("{}/v1/send", self.url))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .unwrap();
        reply(response).await
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

    /// `GET /v1/messages/{id}` with `token`, whatever the answer: (status code, body).
    pub async fn status_reply(&self, token: &str, id: &str) -> (u16, Value) {
        let response = self
            .http
            .get(format!("{}/v1/messages/{id}", self.url))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        reply(response).await
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
            .http
            .post(format!("{}/v1/devices/pair", self.url))
            .json(body);
        if let Some(ip) = ip {
            request = request.header("x-forwarded-for", ip);
        }
        reply(request.send().await.unwrap()).await
    }

    /// `GET /v1/sync` with `credential` (resuming after `last_event_id`), the response as it
    /// came: for tests about its status, headers or end.
    pub async fn sync(&self, credential: &str, last_event_id: Option<i64>) -> reqwest::Response {
        let mut request = self
            .http
            .get(format!("{}/v1/sync", self.url))
            .bearer_auth(credential);
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

    /// `POST /v1/sync/ack` of `ids` with `credential`: the relay's answer (`{"acked": n}`).
    pub async fn ack(&self, credential: &str, ids: &[i64]) -> Value {
        let response = self
            .http
            .post(format!("{}/v1/sync/ack", self.url))
            .bearer_auth(credential)
            .json(&json!({ "ids": ids }))
            .send()
            .await
            .unwrap();
        response.json().await.unwrap()
    }
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
