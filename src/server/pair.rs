//! `POST /v1/devices/pair`: a device redeems a one-time code and learns its id and credential
//! (every type: it acknowledges with it; a desktop extension also reads its stream with it). A webpush device brings its browser's
//! subscription, checked here (keys, https, a public address) before the code is spent.

use super::AppState;
use super::error::Failure;
use super::extract::{CappedJson, ChargedIp, ClientIp};
use crate::api::sealed::{encode, parse_public_key};
use crate::api::stream::{PairRequest, PairResponse};
use crate::api::{DeviceType, ErrorCode};
use crate::store::admin::Actor;
use crate::store::{NewDevice, StoreError, WebPushAddress};
use axum::Json;
use axum::extract::State;
use std::sync::Arc;

const MAX_LABEL_BYTES: usize = 64;

#[utoipa::path(post, path = "/v1/devices/pair", tag = "devices", operation_id = "pair_device",
    summary = "Redeem a one-time pairing code for a device",
    description = "The code comes from `reflecto admin pair` and is single-use, valid 10 minutes. A well-formed code that matches no live code is 400 `invalid_pairing_code`; failures are rate limited per IP and across all addresses (SPEC §1.9).",
    request_body(content = PairRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "Paired; `credential` (every device type) is shown once", body = PairResponse),
        (status = 400, description = "`invalid_body` or `invalid_pairing_code`", body = crate::api::NestedErrorBody),
        (status = 413, description = "`payload_too_large`: the raw body exceeds 64 KiB", body = crate::api::NestedErrorBody),
        (status = 429, description = "`rate_limit_exceeded` (per-IP layers)", body = crate::api::NestedErrorBody),
        (status = 500, description = "`internal_error`", body = crate::api::NestedErrorBody)),
    security(()))]
pub async fn pair(
    State(state): State<Arc<AppState>>,
    ClientIp(ip): ClientIp,
    ChargedIp { now, .. }: ChargedIp,
    CappedJson(req): CappedJson<PairRequest>,
) -> Result<Json<PairResponse>, Failure> {
    let device_type = DeviceType::parse(&req.device_type).ok_or_else(|| {
        Failure::new(
            ErrorCode::InvalidBody,
            "type must be android, extension or webpush",
        )
    })?;
    if req.label.trim_ascii().is_empty() || req.label.len() > MAX_LABEL_BYTES {
        return Err(Failure::new(
            ErrorCode::InvalidBody,
            format!("label must be 1–{MAX_LABEL_BYTES} bytes"),
        ));
    }
    if device_type == DeviceType::Android
        && req.fcm_token.as_deref().is_none_or(|t| t.trim().is_empty())
    {
        return Err(Failure::new(
            ErrorCode::InvalidBody,
            "an android device needs fcm_token",
        ));
    }
    // Checked before the code is redeemed: a bad key must not burn it.
    let public_key = req
        .public_key
        .as_deref()
        .map(|k| parse_public_key(k).map(|k| encode(k.as_bytes())))
        .transpose()
        .map_err(|e| Failure::new(ErrorCode::InvalidBody, e.to_string()))?;
    let webpush = subscription_of(&state, device_type, &req).await?;
    if req.code.len() != 6 || !req.code.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid_code());
    }
    let new = NewDevice {
        label: req.label.trim_ascii().to_owned(),
        device_type,
        fcm_token: req.fcm_token,
        public_key,
        webpush,
    };
    let paired = state
        .store
        .redeem_pair_code(&req.code, new, now)
        .await
        .map_err(|e| match e {
            StoreError::NotFound(_) => invalid_code(),
            other => Failure::from(other),
        })?;
    // The audit (SPEC §1.19) names the device and its address, never the code. The device is
    // paired whether or not the entry could be written, so a failure here is only logged.
    let actor = Actor::Device {
        id: paired.device.id.clone(),
        ip: ip.to_string(),
    };
    if let Err(e) = state
        .store
        .audit(&actor, "device.pair", &paired.device.id, now)
        .await
    {
        tracing::warn!(error = %e, "the pairing's audit entry was not written");
    }
    Ok(Json(PairResponse {
        device_id: paired.device.id,
        device_type,
        label: paired.device.label,
        credential: Some(paired.credential.expose().to_owned()),
    }))
}

/// A webpush device's subscription, checked (SPEC §1.13); other types must not send one.
async fn subscription_of(
    state: &AppState,
    device_type: DeviceType,
    req: &PairRequest,
) -> Result<Option<WebPushAddress>, Failure> {
    let invalid = |text: String| Failure::new(ErrorCode::InvalidBody, text);
    match (device_type, &req.subscription) {
        (DeviceType::Webpush, None) => Err(invalid(
            "a webpush device needs subscription (PushSubscription.toJSON())".into(),
        )),
        (DeviceType::Webpush, Some(_)) if req.public_key.is_some() => Err(invalid(
            "a webpush device takes no public_key: Web Push is encrypted to its subscription keys"
                .into(),
        )),
        (DeviceType::Webpush, Some(subscription)) => {
            subscription
                .validate(state.webpush_allow_local)
                .await
                .map_err(|e| invalid(e.to_string()))?;
            Ok(Some(WebPushAddress {
                endpoint: subscription.endpoint.clone(),
                p256dh: subscription.keys.p256dh.clone(),
                auth: subscription.keys.auth.clone(),
            }))
        }
        (_, Some(_)) => Err(invalid("subscription is only for webpush devices".into())),
        (_, None) => Ok(None),
    }
}

fn invalid_code() -> Failure {
    Failure::new(
        ErrorCode::InvalidPairingCode,
        "pairing code is unknown, used or expired",
    )
}
