//! The desktop stream: `GET /v1/sync` (Server-Sent Events) and `POST /v1/sync/ack`, for
//! extension devices authenticated by their `rfd_live_` credential. Each undelivered job is one
//! event whose id is the device's sequence number; a job counts as delivered only once acked,
//! so a dropped connection loses nothing.

use super::AppState;
use super::error::Failure;
use crate::api::token::is_device_credential_format;
use crate::api::{DeviceType, ErrorCode};
use crate::store::DeviceRecord;
use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use serde::{Deserialize, Serialize};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

/// Events fetched per store read.
const PAGE: usize = 100;
/// Re-check the store this often even without a wake-up (a send from another process).
const RECHECK: Duration = Duration::from_secs(5);

fn device_of(state: &AppState, headers: &HeaderMap) -> Result<DeviceRecord, Failure> {
    let credential = super::auth::presented(headers, None)?;
    if !is_device_credential_format(credential) {
        return Err(super::auth::invalid());
    }
    match state.store.authenticate_device(credential)? {
        Some(device) if device.device_type == DeviceType::Extension => Ok(device),
        _ => Err(super::auth::invalid()),
    }
}

/// Where a stream starts: after `Last-Event-ID`, or from the first unacked event.
fn resume_after(headers: &HeaderMap) -> Result<i64, Failure> {
    match headers.get("last-event-id") {
        None => Ok(0),
        Some(v) => v
            .to_str()
            .ok()
            .and_then(|s| s.trim().parse::<i64>().ok())
            .filter(|n| *n >= 0)
            .ok_or_else(|| {
                Failure::new(
                    ErrorCode::InvalidBody,
                    "Last-Event-ID must be an event id from this stream",
                )
            }),
    }
}

#[utoipa::path(get, path = "/v1/sync", tag = "devices",
    params(("Last-Event-ID" = Option<i64>, Header, description = "resume after this event")),
    responses((status = 200, description = "text/event-stream of `notification` events: data {\"id\":\"msg_…\",\"envelope\":{…}}"), (status = 401, body = crate::api::FlatErrorBody)),
    security(("bearer" = [])))]
pub async fn stream(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, Failure> {
    let device = device_of(&state, &headers)?;
    let cursor = resume_after(&headers)?;
    let events = futures_util::stream::unfold(
        (state, device.id, cursor, Vec::new()),
        |(state, device, mut cursor, mut buffered)| async move {
            loop {
                // The relay is stopping: end the stream. Unacked events stay queued and are
                // sent again when the device reconnects.
                if state.is_stopping() {
                    return None;
                }
                if !buffered.is_empty() {
                    let event: crate::store::StreamEvent = buffered.remove(0);
                    cursor = event.seq;
                    let data = format!(
                        r#"{{"id":"{}","envelope":{}}}"#,
                        event.message_id, event.envelope
                    );
                    let sse = Event::default()
                        .id(event.seq.to_string())
                        .event("notification")
                        .data(data);
                    return Some((Ok(sse), (state, device, cursor, buffered)));
                }
                // Register for the wake-up before reading, so a commit in between is not missed.
                let woken = state.streams_ready.notified();
                match state.store.stream_events(&device, cursor, PAGE) {
                    Ok(page) if !page.is_empty() => buffered = page,
                    Ok(_) => {
                        tokio::select! {
                            _ = tokio::time::timeout(RECHECK, woken) => {}
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

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct AckRequest {
    /// Event ids (sequence numbers) received on the stream
    ids: Vec<i64>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AckResponse {
    /// How many of them were newly marked delivered
    acked: usize,
}

#[utoipa::path(post, path = "/v1/sync/ack", tag = "devices", request_body = AckRequest,
    responses((status = 200, body = AckResponse), (status = 400, body = crate::api::NestedErrorBody), (status = 401, body = crate::api::FlatErrorBody)),
    security(("bearer" = [])))]
pub async fn ack(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Result<Json<AckResponse>, Failure> {
    let device = device_of(&state, &headers)?;
    let bytes = super::body::read_capped(body).await?;
    let request: AckRequest = serde_json::from_slice(&bytes).map_err(|e| {
        Failure::new(
            ErrorCode::InvalidBody,
            format!("expected {{\"ids\":[event ids]}}: {e}"),
        )
    })?;
    let acked = state
        .store
        .ack_stream_events(&device.id, request.ids, state.clock.now_ms())
        .await?;
    Ok(Json(AckResponse { acked }))
}
