//! The SSE reader of the desktop stream (SPEC §1.10): one connection to `GET /v1/sync` with the
//! device credential, parsed by `eventsource-stream`, and `POST /v1/sync/ack`. Reconnecting is
//! the caller's loop (`reflecto listen`), which owns the backoff and the `Last-Event-ID`.

use crate::api::ApiError;
use crate::api::sealed::{self, SecretKey};
use crate::api::stream::{AckRequest, EventId, SyncEventData};
use crate::api::token::Secret;
use eventsource_stream::Eventsource;
use futures_util::{Stream, StreamExt};
use serde_json::Value;
use std::pin::Pin;
use std::time::Duration;

/// The relay sends a keep-alive comment every 15 s; this much silence means the connection is
/// dead (a laptop resumed from sleep, a NAT that forgot us) and must be replaced.
const READ_TIMEOUT: Duration = Duration::from_secs(45);
const FIRST_RETRY: Duration = Duration::from_secs(1);
const LAST_RETRY: Duration = Duration::from_secs(60);

/// One event as it arrived: its kind, its SSE id and its raw `data:`.
#[derive(Debug, Clone, PartialEq)]
pub struct SyncEvent {
    pub kind: EventKind,
    pub event_id: String,
    pub data: String,
}

/// The stream's event types (SPEC §1.10, §1.15); others are skipped unread.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// `event: notification`: a message to show.
    Notification,
    /// `event: clear`: remove the message named by `data: {"id"}` from the screen.
    Clear,
}

/// Why a connection or an ack did not work.
#[derive(Debug, Clone, PartialEq)]
pub enum StreamError {
    /// 401: the device was removed or its credential revoked. Reconnecting cannot help.
    Revoked,
    /// Anything a later attempt may get past: connection, timeout, 5xx, 429, odd answers.
    Lost {
        reason: String,
        retry_after: Option<Duration>,
    },
}

impl StreamError {
    fn lost(reason: impl Into<String>) -> StreamError {
        StreamError::Lost {
            reason: reason.into(),
            retry_after: None,
        }
    }
}

pub type EventStream = Pin<Box<dyn Stream<Item = Result<SyncEvent, StreamError>> + Send>>;

pub struct StreamClient {
    http: reqwest::Client,
    server: String,
    credential: Secret,
}

/// Connection failures in words that name the relay, never the credential.
fn describe(server: &str, e: &reqwest::Error) -> String {
    let why = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else {
        "connection lost"
    };
    format!("{server}: {why}")
}

impl StreamClient {
    pub fn new(server: &str, credential: Secret) -> Result<StreamClient, ApiError> {
        let http = super::http::http_client(|b| b.read_timeout(READ_TIMEOUT))?;
        Ok(StreamClient {
            http,
            server: server.trim_end_matches('/').to_owned(),
            credential,
        })
    }

    pub fn server(&self) -> &str {
        &self.server
    }

    /// Opens the stream, resuming after `last_event_id` when given. Ends (`None`) when the
    /// relay closes it; an `Err` item is a broken connection.
    pub async fn open(&self, last_event_id: Option<&str>) -> Result<EventStream, StreamError> {
        let mut request = self
            .http
            .get(format!("{}/v1/sync", self.server))
            .bearer_auth(self.credential.expose())
            .header("accept", "text/event-stream");
        if let Some(id) = last_event_id {
            request = request.header("last-event-id", id);
        }
        let response = request
            .send()
            .await
            .map_err(|e| StreamError::lost(describe(&self.server, &e)))?;
        check_status(&self.server, &response)?;
        let server = self.server.clone();
        let events = response
            .bytes_stream()
            .eventsource()
            .filter_map(move |item| {
                let kind = |name: &str| match name {
                    "notification" => Some(EventKind::Notification),
                    "clear" => Some(EventKind::Clear),
                    _ => None,
                };
                let out = match item {
                    Ok(event) => kind(&event.event).map(|kind| {
                        Ok(SyncEvent {
                            kind,
                            event_id: event.id,
                            data: event.data,
                        })
                    }),
                    Err(eventsource_stream::EventStreamError::Transport(e)) => {
                        Some(Err(StreamError::lost(describe(&server, &e))))
                    }
                    Err(e) => Some(Err(StreamError::lost(format!(
                        "{server}: unreadable event stream ({e})"
                    )))),
                };
                std::future::ready(out)
            });
        Ok(Box::pin(events))
    }

    /// Acks handled events. Their ids go as numbers: the relay's sequence numbers.
    pub async fn ack(&self, event_ids: &[String]) -> Result<(), StreamError> {
        let ids = event_ids
            .iter()
            .map(|id| match EventId::Text(id.clone()).seq() {
                Some(n) => EventId::Number(n),
                None => EventId::Text(id.clone()),
            })
            .collect();
        let response = self
            .http
            .post(format!("{}/v1/sync/ack", self.server))
            .bearer_auth(self.credential.expose())
            .timeout(Duration::from_secs(30))
            .json(&AckRequest { ids })
            .send()
            .await
            .map_err(|e| StreamError::lost(describe(&self.server, &e)))?;
        check_status(&self.server, &response)
    }
}

fn check_status(server: &str, response: &reqwest::Response) -> Result<(), StreamError> {
    let status = response.status().as_u16();
    match status {
        200..=299 => Ok(()),
        401 => Err(StreamError::Revoked),
        _ => Err(StreamError::Lost {
            reason: format!("{server} answered HTTP {status}"),
            retry_after: response
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(super::parse_retry_after),
        }),
    }
}

/// Delay before reconnect attempt `attempt` (0-based): exponential from 1 s, capped at 60 s,
/// with jitter over the upper half so that many listeners do not reconnect in step.
pub fn reconnect_delay(attempt: u32) -> Duration {
    // The first wait is exactly FIRST_RETRY: half of it would be under SPEC's 1 s.
    crate::backoff::jittered(FIRST_RETRY, LAST_RETRY, attempt).max(FIRST_RETRY)
}

/// An event's content once decoded: the message id and its envelope.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    pub id: String,
    pub envelope: Value,
}

/// Why an event could not be decoded. Carries no content.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("the event is not {{\"id\",\"envelope\"|\"sealed\"}} JSON")]
    Shape,
    #[error("{0}")]
    Sealed(#[from] sealed::SealError),
    #[error("the sealed content names another message than the event")]
    IdMismatch,
}

/// Decodes an event's `data:`: the envelope in clear, or the sealed box opened with `key`.
pub fn decode(data: &str, key: Option<&SecretKey>) -> Result<Delivery, DecodeError> {
    let event: SyncEventData = serde_json::from_str(data).map_err(|_| DecodeError::Shape)?;
    match (event.sealed, event.envelope) {
        (Some(sealed_box), _) => {
            let key = key.ok_or(sealed::SealError::CannotOpen)?;
            let plain = sealed::open(&sealed_box, key)?;
            let inner: SyncEventData =
                serde_json::from_slice(&plain).map_err(|_| DecodeError::Shape)?;
            if inner.id != event.id {
                return Err(DecodeError::IdMismatch);
            }
            let envelope = inner.envelope.ok_or(DecodeError::Shape)?;
            Ok(Delivery {
                id: event.id,
                envelope,
            })
        }
        (None, Some(envelope)) => Ok(Delivery {
            id: event.id,
            envelope,
        }),
        (None, None) => Err(DecodeError::Shape),
    }
}

/// The message id of a `clear` event's `data: {"id":"msg_…"}`.
pub fn decode_clear(data: &str) -> Result<String, DecodeError> {
    #[derive(serde::Deserialize)]
    struct ClearData {
        id: String,
    }
    serde_json::from_str::<ClearData>(data)
        .map(|c| c.id)
        .map_err(|_| DecodeError::Shape)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::sealed::{encode, generate_key_pair, parse_public_key, parse_secret_key, seal};

    #[test]
    fn reconnect_delays_start_at_one_second_and_stop_at_sixty() {
        for attempt in 0..40 {
            let d = reconnect_delay(attempt);
            assert!(d >= FIRST_RETRY && d <= LAST_RETRY, "{attempt}: {d:?}");
        }
        assert!(reconnect_delay(0) <= Duration::from_secs(1));
        assert!(reconnect_delay(30) >= Duration::from_secs(30));
    }

    #[test]
    fn clear_events_decode_without_a_key() {
        let d = decode(r#"{"id":"msg_1","envelope":{"type":"notification"}}"#, None).unwrap();
        assert_eq!(d.id, "msg_1");
        assert_eq!(d.envelope["type"], "notification");
        assert_eq!(decode(r#"{"id":"msg_1"}"#, None), Err(DecodeError::Shape));
        assert_eq!(decode("not json", None), Err(DecodeError::Shape));
    }

    #[test]
    fn clear_events_name_the_message() {
        assert_eq!(decode_clear(r#"{"id":"msg_1"}"#), Ok("msg_1".to_owned()));
        assert_eq!(
            decode_clear(r#"{"clear":"msg_1"}"#),
            Err(DecodeError::Shape)
        );
    }

    fn sealed_event(outer_id: &str, inner: &str, public: &str) -> String {
        let sealed = seal(inner.as_bytes(), &parse_public_key(public).unwrap());
        format!(r#"{{"id":"{outer_id}","sealed":"{}"}}"#, encode(&sealed))
    }

    #[test]
    fn sealed_events_open_with_the_device_key() {
        let (secret, public) = generate_key_pair();
        let key = parse_secret_key(&secret).unwrap();
        let inner = r#"{"id":"msg_7","envelope":{"type":"notification","payload":{"message":"hi"},"source":"ci"}}"#;
        let d = decode(&sealed_event("msg_7", inner, &public), Some(&key)).unwrap();
        assert_eq!(d.id, "msg_7");
        assert_eq!(d.envelope["payload"]["message"], "hi");
    }

    #[test]
    fn sealed_events_refuse_a_wrong_key_a_missing_key_and_a_swapped_id() {
        let (_, public) = generate_key_pair();
        let (other, _) = generate_key_pair();
        let other = parse_secret_key(&other).unwrap();
        let inner = r#"{"id":"msg_7","envelope":{"type":"notification"}}"#;
        let event = sealed_event("msg_7", inner, &public);
        assert_eq!(
            decode(&event, Some(&other)),
            Err(DecodeError::Sealed(sealed::SealError::CannotOpen))
        );
        assert!(decode(&event, None).is_err());
        let (secret, public) = generate_key_pair();
        let key = parse_secret_key(&secret).unwrap();
        let swapped = sealed_event("msg_8", inner, &public);
        assert_eq!(decode(&swapped, Some(&key)), Err(DecodeError::IdMismatch));
    }
}
