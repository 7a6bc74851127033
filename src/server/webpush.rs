//! `GET /v1/webpush/vapid`: the relay's VAPID public key, the `applicationServerKey` a browser
//! subscribes with before it pairs as a webpush device (SPEC §1.13). No auth: the page that
//! asks has no token yet, and the key is public by design.

use super::AppState;
use super::error::Failure;
use super::extract::ChargedIp;
use crate::api::ErrorCode;
use crate::api::webpush::VapidPublicKey;
use axum::Json;
use axum::extract::State;
use std::sync::Arc;

#[utoipa::path(get, path = "/v1/webpush/vapid", tag = "devices", operation_id = "get_vapid_key",
    summary = "The relay's VAPID public key for Web Push subscriptions",
    description = "The uncompressed P-256 point (base64url) to pass as `applicationServerKey` to `pushManager.subscribe`; the resulting subscription pairs as a `webpush` device (SPEC §1.13).",
    responses(
        (status = 200, description = "The key", body = VapidPublicKey),
        (status = 429, description = "`rate_limit_exceeded` (per-IP layers)", body = crate::api::NestedErrorBody),
        (status = 500, description = "`internal_error`", body = crate::api::NestedErrorBody)),
    security(()))]
pub async fn vapid(
    State(state): State<Arc<AppState>>,
    _ip: ChargedIp,
) -> Result<Json<VapidPublicKey>, Failure> {
    let public_key = state
        .vapid_public_key
        .clone()
        .ok_or_else(|| Failure::new(ErrorCode::InternalError, "the VAPID key is not loaded"))?;
    Ok(Json(VapidPublicKey { public_key }))
}
