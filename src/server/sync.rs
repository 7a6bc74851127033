//! The desktop stream: `GET /v1/sync` (Server-Sent Events) and `POST /v1/sync/ack`, for
//! extension devices authenticated by their `rfd_live_` credential. Each undelivered job is one
//! event whose id is the device's sequence number (a notification, or the clear of one); a job
//! counts as delivered only once acked, so a dropped connection loses nothing.

use super::AppState;
use super::error::Failure;
use super::extract::{CappedJson, DeviceAuth, LastEventId};
use crate::api::ErrorCode;
use crate::api::admin::AdminEvent;
use crate::api::sealed;
use crate::api::stream::SyncEventData;
use crate::api::stream::{AckRequest, AckResponse};
use crate::store::{JobKind, PayloadKind, StreamEvent};
use axum::Json;
use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The desktop stream's label in `reflecto_deliveries_total{channel}`.
const DESKTOP_CHANNEL: &str = "desktop";

/// Events fetched per store read.
const PAGE: usize = 100;
/// Re-check the store this often even without a wake-up (a send from another process).
const RECHECK: Duration = Duration::from_secs(5);

/// The `data:` of one event (SPEC §1.10, §1.12): the device's sealed box when it has one, else
/// `{"id","envelope"}` in clear — the same bytes a sealed device finds inside its box. A clear
/// (SPEC §1.15) names only the message, so it is never sealed: `{"id"}`.
fn event_data(event: &StreamEvent) -> Option<String> {
    if event.kind == JobKind::Clear {
        return serde_json::to_string(&SyncEventData {
            id: event.message_id.clone(),
            envelope: None,
            sealed: None,
        })
        .ok();
    }
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

/// The SSE `event:` of a job.
fn event_name(kind: JobKind) -> &'static str {
    match kind {
        // A repeat (SPEC §1.17) is the notification again, under a new event id.
        JobKind::Message | JobKind::Repeat => "notification",
        JobKind::Clear => "clear",
    }
}

#[utoipa::path(get, path = "/v1/sync", tag = "devices", operation_id = "sync_stream",
    summary = "The desktop stream of undelivered notifications (Server-Sent Events)",
    description = "Each undelivered job is one event: `id:` the device's sequence number, `event: notification`, `data:` `{\"id\":\"msg_…\",\"envelope\":{…}}` (or `{\"id\",\"sealed\"}` for a device with a public key); or `event: clear`, `data:` `{\"id\":\"msg_…\"}` when the message was cleared after this device received it (remove its notification; never sealed). Keep-alive comments every 15 s. Every event, a clear too, counts as delivered only once acked with `POST /v1/sync/ack`.",
    params(("Last-Event-ID" = Option<String>, Header, description = "resume after this event id (a non-negative integer)", pattern = "^[\\t\\n\\f\\r ]*\\+?[0-9]{1,18}[\\t\\n\\f\\r ]*$", nullable = false)),
    responses(
        (status = 200, description = "An endless `text/event-stream`; each event's `data` is this object", content_type = "text/event-stream", body = crate::api::stream::SyncEventData),
        (status = 400, description = "`invalid_body`: `Last-Event-ID` is not an event id", body = crate::api::NestedErrorBody),
        (status = 401, description = "`missing_token` or `invalid_token` (not a live extension device credential)", body = crate::api::FlatErrorBody),
        (status = 500, description = "`internal_error`", body = crate::api::NestedErrorBody)),
    security(("device" = [])))]
pub async fn stream(
    State(state): State<Arc<AppState>>,
    DeviceAuth(device): DeviceAuth,
    LastEventId(cursor): LastEventId,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, Failure> {
    // Best effort: a stream is served even while the store cannot write.
    if let Err(e) = state
        .store
        .mark_seen(&device.id, state.clock.now_ms())
        .await
    {
        tracing::warn!(error = %e, "recording that a device was seen failed");
    }
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
                        .event(event_name(event.kind))
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
    DeviceAuth(device): DeviceAuth,
    CappedJson(request): CappedJson<AckRequest>,
) -> Result<Json<AckResponse>, Failure> {
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
    let now = state.clock.now_ms();
    let delivered = state.store.ack_stream_events(&device.id, seqs, now).await?;
    if !delivered.is_empty() {
        state.store.wakeups().wake_statuses();
    }
    // SPEC §2.5: the desktop stream is a delivery channel like the others in the metrics.
    for acked in &delivered {
        state.metrics.delivery(DESKTOP_CHANNEL, "delivered");
        state
            .metrics
            .dispatch_latency((now - acked.accepted_at).max(0) as f64 / 1000.0);
        // SPEC §1.19: the operator's live views hear of each delivery outcome, a desktop's
        // too (a clear or a repeat is not the message's delivery).
        if acked.kind == JobKind::Message {
            state.publish_admin(AdminEvent::Delivery {
                id: acked.message_id.clone(),
                device_id: device.id.clone(),
                state: "delivered".to_owned(),
            });
        }
    }
    Ok(Json(AckResponse {
        acked: delivered.len(),
    }))
}
