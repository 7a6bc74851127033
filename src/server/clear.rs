//! `DELETE /v1/messages/{id}` and `DELETE /v1/keys/{key}` (SPEC §1.15): a sender takes a
//! notification off every screen. The message's unfinished jobs are cancelled and each device
//! that received it gets a `clear` event through its own channel (stream, Web Push, FCM), with
//! the queue's guarantees; the worker and the streams send them, never this handler.

use super::AppState;
use super::error::{Failure, write_rate_headers};
use super::extract::{ChargedIp, TokenAuth};
use super::limits::binding;
use super::openapi::responses::MessageErrors;
use crate::api::ErrorCode;
use crate::api::clear_ack::ClearResponse;
use crate::store::{Cleared, MessageRef};
use crate::validate::fields::{is_key, is_message_id};
use axum::Json;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

#[utoipa::path(delete, path = "/v1/messages/{id}", tag = "messages", operation_id = "clear_message",
    summary = "Clear a message from every screen",
    description = "Any token of the message's owner may clear it. Its deliveries that have not ended become `cancelled`; every device that received it gets a `clear` event (stream `event: clear`, Web Push `{\"clear\":\"msg_…\"}`, FCM `{\"type\":\"clear\",\"id\":\"msg_…\"}`) and its receiver removes the notification. Clearing again is not an error: the answer then has zeros. An unknown id or another owner's message is 404 `not_found`.",
    params(("id" = String, Path, description = "the `msg_…` id from a send")),
    responses(
        (status = 200, description = "Cleared", body = ClearResponse,
            headers(("X-RateLimit-Limit" = u64), ("X-RateLimit-Remaining" = u64), ("X-RateLimit-Reset" = i64), ("X-RateLimit-Resource" = String))),
        MessageErrors),
    security(("bearer" = [])))]
pub async fn clear_message(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    ip: ChargedIp,
    TokenAuth(token): TokenAuth,
) -> Result<Response, Failure> {
    // An id the relay never issues names no message (and is never shown to the store).
    let which = is_message_id(&id).then(|| MessageRef::Id(id.clone()));
    let not_found = format!("no message '{}' for this token's owner", id.escape_debug());
    clear(&state, &ip, token.user_id, which, not_found).await
}

#[utoipa::path(delete, path = "/v1/keys/{key}", tag = "messages", operation_id = "clear_key",
    summary = "Clear the newest message with a key from every screen",
    description = "Clears the owner's newest message sent with this `key`, as `DELETE /v1/messages/{id}` does. No message of the owner with that key is 404 `not_found`.",
    params(("key" = String, Path, description = "the send's `key`")),
    responses(
        (status = 200, description = "Cleared", body = ClearResponse,
            headers(("X-RateLimit-Limit" = u64), ("X-RateLimit-Remaining" = u64), ("X-RateLimit-Reset" = i64), ("X-RateLimit-Resource" = String))),
        MessageErrors),
    security(("bearer" = [])))]
pub async fn clear_key(
    State(state): State<Arc<AppState>>,
    Path(key): Path<String>,
    ip: ChargedIp,
    TokenAuth(token): TokenAuth,
) -> Result<Response, Failure> {
    // A key no send could have used names no message (and is never shown to the store).
    let which = is_key(&key).then(|| MessageRef::Key(key.clone()));
    let not_found = format!(
        "no message with key '{}' for this token's owner",
        key.escape_debug()
    );
    clear(&state, &ip, token.user_id, which, not_found).await
}

/// Clears the message `which` names (`None`: a name no message can have), or 404 with
/// `not_found`.
async fn clear(
    state: &AppState,
    ip: &ChargedIp,
    user_id: i64,
    which: Option<MessageRef>,
    not_found: String,
) -> Result<Response, Failure> {
    let cleared = match which {
        Some(which) => state.store.clear_message(user_id, which, ip.now).await?,
        None => None,
    };
    let cleared = cleared.ok_or_else(|| Failure::new(ErrorCode::NotFound, not_found))?;
    Ok(answer(ip, cleared))
}

/// The 200 with the per-IP layers as charged.
fn answer(ip: &ChargedIp, cleared: Cleared) -> Response {
    let mut response = Json(ClearResponse {
        id: cleared.message_id,
        cancelled: cleared.cancelled,
        cleared: cleared.cleared,
    })
    .into_response();
    if let Some(status) = binding(&ip.statuses) {
        write_rate_headers(response.headers_mut(), &status);
    }
    response
}
