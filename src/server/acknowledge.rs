//! `POST /v1/messages/{id}/acknowledge` (SPEC §1.16): a person saw a message on a device, and
//! perhaps chose one of its responses. The message's first acknowledgement wins and clears it
//! on the other devices; every one is recorded on its own delivery and answered with the
//! first. Authenticated by the device's credential and, like a device's stream acks, not
//! counted against the per-IP limits (SPEC §1.7): a busy receiver makes many.

use super::AppState;
use super::error::Failure;
use super::extract::{CappedJson, PairedDevice};
use super::messages::rfc3339;
use crate::api::ErrorCode;
use crate::api::clear_ack::{AcknowledgeRequest, AcknowledgeResponse};
use crate::store::AckOutcome;
use crate::validate::fields::{is_message_id, is_response};
use axum::Json;
use axum::extract::{Path, State};
use std::sync::Arc;

#[utoipa::path(post, path = "/v1/messages/{id}/acknowledge", tag = "devices", operation_id = "acknowledge_message",
    summary = "Acknowledge a message as a person on this device, with a response or without",
    description = "With the credential of a device that was one of the message's targets (any other device, or an unknown id, is 404 `not_found`); it need not have been delivered first. `response` must be one of the responses the message's actions offer (else 400 `invalid_response`). The answer is always the message's first acknowledgement: the first wins, later ones are recorded on their own deliveries, and repeating one is not an error. The first clears the message on every other device. Not counted against the per-IP limits.",
    params(("id" = String, Path, description = "the `msg_…` id the device received")),
    request_body(content = AcknowledgeRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "Recorded; the message's first acknowledgement", body = AcknowledgeResponse),
        (status = 400, description = "`invalid_body` or `invalid_response`", body = crate::api::NestedErrorBody),
        (status = 401, description = "`missing_token` or `invalid_token` (not a live device credential)", body = crate::api::FlatErrorBody),
        (status = 404, description = "`not_found`", body = crate::api::NestedErrorBody),
        (status = 413, description = "`payload_too_large`: the raw body exceeds 64 KiB", body = crate::api::NestedErrorBody),
        (status = 500, description = "`internal_error`", body = crate::api::NestedErrorBody)),
    security(("device" = [])))]
// `Path` first: a path that does not decode is refused before anything is checked.
pub async fn acknowledge(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    PairedDevice(device): PairedDevice,
    CappedJson(request): CappedJson<AcknowledgeRequest>,
) -> Result<Json<AcknowledgeResponse>, Failure> {
    if let Some(response) = &request.response
        && !is_response(response)
    {
        return Err(invalid_response());
    }
    let not_found = || {
        Failure::new(
            ErrorCode::NotFound,
            format!("no message '{}' was sent to this device", id.escape_debug()),
        )
    };
    if !is_message_id(&id) {
        return Err(not_found());
    }
    let now = state.clock.now_ms();
    match state
        .store
        .acknowledge(&id, &device.id, request.response, now)
        .await?
    {
        AckOutcome::NotFound => Err(not_found()),
        AckOutcome::InvalidResponse => Err(invalid_response()),
        AckOutcome::Acknowledged { first, .. } => Ok(Json(AcknowledgeResponse {
            id,
            acknowledged_at: rfc3339(first.at),
            device_id: first.device_id,
            response: first.response,
        })),
    }
}

fn invalid_response() -> Failure {
    Failure::new(
        ErrorCode::InvalidResponse,
        "response must be one of the responses the message's actions offer",
    )
}
