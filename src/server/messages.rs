//! `GET /v1/messages/{id}`: per-device delivery state, for any token of the message's owner.

use super::error::Failure;
use super::{AppState, auth};
use crate::api::ErrorCode;
use crate::api::status::{DeliveryView, MessageView};
use axum::Json;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::HeaderMap;
use std::net::SocketAddr;
use std::sync::Arc;

pub fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

#[utoipa::path(get, path = "/v1/messages/{id}", tag = "messages", operation_id = "message_status",
    summary = "Per-device delivery state of a message",
    description = "Any token of the message's owner may ask. An unknown id, another owner's message, or one pruned after `--retention` is 404 `not_found`.",
    params(("id" = String, Path, description = "the `msg_…` id from a send")),
    responses(
        (status = 200, description = "The message and one entry per target device", body = MessageView),
        (status = 401, description = "`missing_token` or `invalid_token`", body = crate::api::FlatErrorBody),
        (status = 404, description = "`not_found`", body = crate::api::NestedErrorBody),
        (status = 429, description = "`rate_limit_exceeded` (per-IP layers)", body = crate::api::NestedErrorBody),
        (status = 500, description = "`internal_error`", body = crate::api::NestedErrorBody)),
    security(("bearer" = [])))]
pub async fn message_status(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Json<MessageView>, Failure> {
    let now = state.clock.now_ms();
    state.charge_ip(peer, &headers, now).await?;
    let token = auth::authenticate(&state, auth::presented(&headers, None)?).await?;
    let status = state
        .store
        .message_status(&id, token.user_id)
        .await?
        .ok_or_else(|| {
            Failure::new(
                ErrorCode::NotFound,
                format!("no message '{id}' for this token's owner"),
            )
        })?;
    Ok(Json(MessageView {
        id: status.id,
        created_at: rfc3339(status.created_at),
        deliveries: status
            .deliveries
            .into_iter()
            .map(|d| DeliveryView {
                device_id: d.device_id,
                device_type: d.device_type,
                state: d.state,
                attempts: d.attempts,
                last_error: d.last_error,
                next_attempt_at: d.next_attempt_at.map(rfc3339),
            })
            .collect(),
    }))
}
