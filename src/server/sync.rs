//! The desktop stream: `GET /v1/sync` (Server-Sent Events) and `POST /v1/sync/ack`, for
//! extension devices authenticated by their `rfd_live_` credential. Each undelivered job is one
//! event whose id is the device's sequence number; a job counts as delivered only once acked,
//! so a dropped connection loses nothing.

use super::AppState;
use super::error::Failure;
use crate::api::sealed;
use crate::api::stream::SyncEventData;
use crate::api::stream::{AckRequest, AckResponse};
use crate::api::token::is_device_credential_format;
use crate::api::{DeviceType, ErrorCode};
use crate::store::{DeviceRecord, PayloadKind, StreamEvent};
use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Events fetched per store read.
const PAGE: usize = 100;
/// Re-check the store this often even without a wake-up (a send from another process).
const RECHECK: Duration = Duration::from_secs(5);

async fn device_of(state: &AppState, headers: &HeaderMap) -> Result<DeviceRecord, Failure> {
    let credential = super::auth::presented(headers, None)?;
    if !is_device_credential_format(credential) {
        return Err(super::auth::invalid());
    }
    match state.store.authenticate_device(credential).await? {
        Some(device) if device.device_type == DeviceType::Extension => Ok(device),
        _ => Err(super::auth::invalid()),
    }
}

/// Where a stream starts: after `Last-Event-ID`, or from the first unacked event.
fn resume_after(headers: &HeaderMap) -> Result<i64, Failure> {
    match headers.get("last-event-id") {
        None => Ok(0),
        // Read exactly as an ack id is, so the header takes what its documented pattern says
        // (`-0` and a 19th digit were taken here and refused there).
        Some(v) => v
            .to_str()
            .ok()
            .and_then(crate::api::stream::EventId::seq_of_text)
            .ok_or_else(|| {
                Failure::new(
                    ErrorCode::InvalidBody,
                    "Last-Event-ID must be an event id from this stream",
                )
            }),
    }
}

/// The `data:` of one event (SPEC §1.10, §1.12): the device's sealed box when it has one, else
/// `{"id","envelope"}` in clear — the same bytes a sealed device finds inside its box.
fn event_data(event: &StreamEvent) -> Option<String> {
    match (&event.payload, &event.envelope) {
        (Some(payload), _) => match payload.kind {
            PayloadKind::Sealed => serde_json::to_string(&SyncEventData {
                id: event.message_id.clone(),
                envelope: None,
                sealed: Some(sealed::encode(&payload.bytes)),
            })
            .ok(),
            // Web Push ciphertext is for a push service, never on a desktop stream.
            PayloadKind::WebPush => None,
        },
        (None, Some(envelope)) => Some(sealed::plaintext(&event.message_id, envelope)),
        (None, None) => None,
    }
}

#[utoipa::path(get, path = "/v1/sync", tag = "devices", operation_id = "sync_stream",
    summary = "The desktop stream of undelivered notifications (Server-Sent Events)",
    description = "Each undelivered job is one event: `id:` the device's sequence number, `event: notification`, `data:` `{\"id\":\"msg_…\",\"envelope\":{…}}` (or `{\"id\",\"sealed\"}` for a device with a public key). Keep-alive comments every 15 s. A job counts as delivered only once acked with `POST /v1/sync/ack`.",
    params(("Last-Event-ID" = Option<String>, Header, description = "resume after this event id (a non-negative integer)", pattern = "^[\\t\\n\\f\\r ]*\\+?[0-9]{1,18}[\\t\\n\\f\\r ]*$", nullable = false)),
    responses(
        (status = 200, description = "An endless `text/event-stream`; each event's `data` is this object", content_type = "text/event-stream", body = crate::api::stream::SyncEventData),
        (status = 400, description = "`invalid_body`: `Last-Event-ID` is not an event id", body = crate::api::NestedErrorBody),
        (status = 401, description = "`missing_token` or `invalid_token` (not a live extension device credential)", body = crate::api::FlatErrorBody),
        (status = 500, description = "`internal_error`", body = crate::api::NestedErrorBody)),
    security(("device" = [])))]
pub async fn stream(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, Failure> {
    let device = device_of(&state, &headers).await?;
    let cursor = resume_after(&headers)?;
    let events = futures_util::stream::unfold(
        (state, device.id, cursor, Vec::new(), Instant::now()),
        |(state, device, mut cursor, mut buffered, mut checked)| async move {
            loop {
                // The relay is stopping: end the stream. Unacked events stay queued and are
                // sent again when the device reconnects.
                if state.is_stopping() {
                    return None;
                }
                // SPEC §1.10: removing a device ends its open streams within 15 s (its
                // credential is refused on the next request already).
                if checked.elapsed() >= RECHECK {
                    checked = Instant::now();
                    if matches!(state.store.device(&device).await, Ok(None)) {
                        return None;
                    }
                }
                if !buffered.is_empty() {
                    let event: StreamEvent = buffered.remove(0);
                    cursor = event.seq;
                    let Some(data) = event_data(&event) else {
                        tracing::warn!(device = %device, seq = event.seq, "stream event has nothing to send; skipped");
                        continue;
                    };
                    let sse = Event::default()
                        .id(event.seq.to_string())
                        .event("notification")
                        .data(data);
                    return Some((Ok(sse), (state, device, cursor, buffered, checked)));
                }
                // Register for the wake-up before reading, so a commit in between is not missed.
                let wakeup = state.store.wakeups().stream(&device);
                let woken = wakeup.notified();
                match state.store.stream_events(&device, cursor, PAGE).await {
                    Ok(page) if !page.is_empty() => buffered = page,
                    Ok(_) => {
                        // On a shared database a wake-up from another relay can be lost while
                        // its listener reconnects: then the poll finds the event.
                        let wait = state
                            .store
                            .poll_interval()
                            .map_or(RECHECK, |p| p.min(RECHECK));
                        tokio::select! {
                            _ = tokio::time::timeout(wait, woken) => {}
                            () = state.stopping() => {}
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "reading a device stream failed");
                        tokio::select! {
                            () = tokio::time::sleep(RECHECK) => {}
                            () = state.stopping() => {}
                        }
                    }
                }
            }
        },
    );
    Ok(Sse::new(events).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

#[utoipa::path(post, path = "/v1/sync/ack", tag = "devices", operation_id = "sync_ack",
    summary = "Acknowledge stream events as delivered",
    request_body(content = AckRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "How many were newly marked delivered", body = AckResponse),
        (status = 400, description = "`invalid_body`", body = crate::api::NestedErrorBody),
        (status = 401, description = "`missing_token` or `invalid_token`", body = crate::api::FlatErrorBody),
        (status = 413, description = "`payload_too_large`: the raw body exceeds 64 KiB", body = crate::api::NestedErrorBody),
        (status = 500, description = "`internal_error`", body = crate::api::NestedErrorBody)),
    security(("device" = [])))]
pub async fn ack(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Result<Json<AckResponse>, Failure> {
    let device = device_of(&state, &headers).await?;
    let bytes = super::body::read_capped(body).await?;
    let request: AckRequest = serde_json::from_slice(&bytes).map_err(|_| {
        Failure::new(
            ErrorCode::InvalidBody,
            "expected {\"ids\":[event ids, as the stream's id strings or as numbers]}",
        )
    })?;
    let seqs = request
        .ids
        .iter()
        .map(|id| id.seq())
        .collect::<Option<Vec<i64>>>()
        .ok_or_else(|| {
            Failure::new(
                ErrorCode::InvalidBody,
                "every id must be an event id from this stream",
            )
        })?;
    let acked = state
        .store
        .ack_stream_events(&device.id, seqs, state.clock.now_ms())
        .await?;
    Ok(Json(AckResponse { acked }))
}

#[cfg(test)]
mod tests {
    use super::resume_after;
    use axum::http::{HeaderMap, HeaderValue};

    fn resume(value: &str) -> Option<i64> {
        let mut headers = HeaderMap::new();
        headers.insert("last-event-id", HeaderValue::from_str(value).unwrap());
        resume_after(&headers).ok()
    }

    /// The documented pattern is `\+?[0-9]{1,18}` between tabs and spaces; the header was
    /// parsed as any `i64`, so `-0` and 19 digits were taken though the document refused them.
    #[test]
    fn last_event_id_takes_exactly_what_its_pattern_documents() {
        assert_eq!(resume_after(&HeaderMap::new()).ok(), Some(0));
        assert_eq!(resume(" +42\t"), Some(42));
        assert_eq!(resume(&"9".repeat(18)), Some(999_999_999_999_999_999));
        for refused in ["-0", "-1", &"0".repeat(19), "4 2", "x", ""] {
            assert_eq!(resume(refused), None, "{refused:?}");
        }
    }
}
