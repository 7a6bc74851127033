//! `POST /v1/send` and `/v1/send/{token}`: the order of checks of SPEC §1.7, shared with the
//! Pushover shim through [`accept`].

use super::error::{Failure, write_rate_headers};
use super::limits::{LayerStatus, binding, month_key};
use super::{AppState, auth, body};
use crate::api::sealed;
use crate::api::{DeliveredTo, ErrorCode, SendResponse, Warning, token::random_id};
use crate::store::{
    AcceptOutcome, DeviceRecord, JobPayload, NewSend, PayloadKind, Sender, StoredResponse, Target,
    TokenRecord, WebPushAddress,
};
use crate::validate::devices::{DeviceRef, select};
use crate::validate::{Validated, build_envelope, fields::KNOWN_KEYS, normalize};
use axum::body::Body;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, StatusCode, header::CONTENT_TYPE};
use axum::response::{IntoResponse, Response};
use std::net::SocketAddr;
use std::sync::Arc;

/// A send the relay committed (or an earlier one replayed), with the binding rate-limit layer.
pub struct Accepted {
    pub response_json: String,
    pub id: String,
    pub rate: Option<LayerStatus>,
}

impl Accepted {
    pub fn into_response(self) -> Response {
        let mut headers = HeaderMap::new();
        if let Some(status) = &self.rate {
            write_rate_headers(&mut headers, status);
        }
        headers.insert(
            CONTENT_TYPE,
            "application/json".parse().expect("static header"),
        );
        (StatusCode::OK, headers, self.response_json).into_response()
    }
}

#[utoipa::path(post, path = "/v1/send", tag = "send", operation_id = "send",
    summary = "Send a notification to the token owner's devices",
    description = "Checks run in SPEC §1.7 order (per-IP limit, token, body, priority cap, envelope size, per-token and per-receiver limits), so a 4xx never burns quota. Every 200 and 429 carries the `X-RateLimit-*` headers of the binding layer when a limit is enabled.",
    request_body(description = "JSON (the canonical object); urlencoded or multipart (the same fields as form keys; with no known key the whole raw body is the message); text/plain or no Content-Type (the whole body is the message). Anything else is 400 `invalid_body`.",
        content(
            (crate::api::SendRequest = "application/json"),
            (super::openapi::SendForm = "application/x-www-form-urlencoded"),
            (super::openapi::SendForm = "multipart/form-data"),
            (super::openapi::RawMessage = "text/plain"))),
    params(super::openapi::IdempotencyKey),
    responses(
        (status = 200, description = "Accepted: one delivery enqueued per target device", body = SendResponse),
        (status = 400, description = "A field or the body failed validation; nothing was recorded", body = crate::api::NestedErrorBody),
        (status = 401, description = "`missing_token` or `invalid_token`", body = crate::api::FlatErrorBody),
        (status = 403, description = "`priority_capped`: the token may not send this priority", body = crate::api::NestedErrorBody),
        (status = 413, description = "`payload_too_large`: the envelope exceeds 2048 bytes or the raw body 64 KiB", body = crate::api::NestedErrorBody),
        (status = 429, description = "`rate_limit_exceeded`; `details.resource` names the layer", body = crate::api::NestedErrorBody),
        (status = 500, description = "`internal_error`: the store failed; nothing was acknowledged", body = crate::api::NestedErrorBody)),
    security(("bearer" = [])))]
pub async fn send(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    handle(&state, peer, headers, None, body)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

#[utoipa::path(post, path = "/v1/send/{token}", tag = "send", operation_id = "send_with_path_token",
    summary = "Send with the token in the path (capability URL)",
    description = "Identical to `POST /v1/send` for clients that cannot set headers. If an `Authorization` header is present too, the header wins. The path token is redacted before anything is logged.",
    params(("token" = String, Path, description = "the sender token `rfk_live_…`"), super::openapi::IdempotencyKey),
    request_body(description = "As for `POST /v1/send`",
        content(
            (crate::api::SendRequest = "application/json"),
            (super::openapi::SendForm = "application/x-www-form-urlencoded"),
            (super::openapi::SendForm = "multipart/form-data"),
            (super::openapi::RawMessage = "text/plain"))),
    responses(
        (status = 200, description = "Accepted: one delivery enqueued per target device", body = SendResponse),
        (status = 400, description = "A field or the body failed validation; nothing was recorded", body = crate::api::NestedErrorBody),
        (status = 401, description = "`missing_token` or `invalid_token`", body = crate::api::FlatErrorBody),
        (status = 403, description = "`priority_capped`: the token may not send this priority", body = crate::api::NestedErrorBody),
        (status = 413, description = "`payload_too_large`: the envelope exceeds 2048 bytes or the raw body 64 KiB", body = crate::api::NestedErrorBody),
        (status = 429, description = "`rate_limit_exceeded`; `details.resource` names the layer", body = crate::api::NestedErrorBody),
        (status = 500, description = "`internal_error`: the store failed; nothing was acknowledged", body = crate::api::NestedErrorBody)),
    security((), ("bearer" = [])))]
pub async fn send_with_path_token(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(token): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    handle(&state, peer, headers, Some(&token), body)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

async fn handle(
    state: &AppState,
    peer: SocketAddr,
    headers: HeaderMap,
    path_token: Option<&str>,
    body: Body,
) -> Result<Response, Failure> {
    let now = state.clock.now_ms();
    let ip_statuses = state.charge_ip(peer, &headers, now).await?;
    let sender = auth::authenticate_sender(state, auth::presented(&headers, path_token)?).await?;
    let key = idempotency_key(&headers)?;
    if let Some(replay) = replay(state, &sender.token, key, &ip_statuses, now).await? {
        return Ok(replay.into_response());
    }
    let bytes = body::read_capped(body).await?;
    let content_type = headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok());
    let fields = body::fields(content_type, bytes, KNOWN_KEYS).await?;
    let validated = normalize(&fields)?;
    Ok(accept(state, sender, validated, ip_statuses, key, now)
        .await?
        .into_response())
}

/// The `Idempotency-Key` header, if sent: 1–64 visible ASCII characters.
pub fn idempotency_key(headers: &HeaderMap) -> Result<Option<&str>, Failure> {
    let Some(value) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let key = value
        .to_str()
        .ok()
        .filter(|k| (1..=64).contains(&k.len()) && k.bytes().all(|b| b.is_ascii_graphic()));
    key.map(Some).ok_or_else(|| {
        Failure::new(
            ErrorCode::InvalidBody,
            "Idempotency-Key must be 1–64 visible ASCII characters",
        )
    })
}

/// The original response for a repeated key (no token limit is charged for it).
pub async fn replay(
    state: &AppState,
    token: &TokenRecord,
    key: Option<&str>,
    ip: &[LayerStatus],
    now: i64,
) -> Result<Option<Accepted>, Failure> {
    let Some(key) = key else { return Ok(None) };
    Ok(state
        .store
        .idempotent_response(&token.id, key, now)
        .await?
        .map(|stored| stored_to_accepted(stored, ip)))
}

fn stored_to_accepted(stored: StoredResponse, ip: &[LayerStatus]) -> Accepted {
    let id = serde_json::from_str::<SendResponse>(&stored.body)
        .map(|r| r.id)
        .unwrap_or_default();
    Accepted {
        response_json: stored.body,
        id,
        rate: binding(ip),
    }
}

/// Steps 4–7 of SPEC §1.7 for an authenticated, validated request.
pub async fn accept(
    state: &AppState,
    sender: Sender,
    validated: Validated,
    ip_statuses: Vec<LayerStatus>,
    key: Option<&str>,
    now: i64,
) -> Result<Accepted, Failure> {
    let Validated {
        request,
        mut warnings,
    } = validated;
    let Sender {
        token,
        devices: records,
    } = sender;
    let token = &token;
    // 4. priority cap
    if let Some(cap) = token.priority_cap
        && request.priority() > cap
    {
        return Err(Failure::new(
            ErrorCode::PriorityCapped,
            format!(
                "this token may send at most priority '{cap}' (requested '{}')",
                request.priority()
            ),
        ));
    }
    let selector = request.device_selector().to_owned();
    let priority = request.priority();
    let ttl_ms = request.ttl_seconds() as i64 * 1000;
    // 5. envelope + size
    let (_, envelope) = build_envelope(request, &token.label)?;
    // 6.–7. targets (the owner's devices, read with the token); then the store checks and
    // charges the token and receiver limits and commits the message in one step (a refusal
    // writes nothing).
    let devices: Vec<DeviceRef> = records
        .iter()
        .map(|d| DeviceRef {
            id: d.id.clone(),
            label: d.label.clone(),
            device_type: d.device_type,
        })
        .collect();
    let targets = select(
        &selector,
        &devices,
        token.scope_devices.as_deref(),
        &token.label,
        &mut warnings,
    );
    let id = random_id("msg_", 32);
    let response = SendResponse {
        id: id.clone(),
        delivered_to: targets
            .iter()
            .map(|d| DeliveredTo {
                device_id: d.id.clone(),
                device_type: d.device_type,
            })
            .collect(),
        warnings: warnings.iter().map(Warning::to_string).collect(),
    };
    let response_json = serde_json::to_string(&response)
        .map_err(|_| Failure::from(crate::api::ApiError::internal()))?;
    let targets = seal_for_targets(&id, &envelope, &targets, &records)?;
    // SPEC §1.12: with no target reading it in clear, the plaintext is not stored at all.
    let envelope = targets
        .iter()
        .any(|t| t.payload.is_none())
        .then_some(envelope);
    let send = NewSend {
        message_id: id.clone(),
        user_id: token.user_id,
        token_id: token.id.clone(),
        envelope,
        targets,
        priority,
        created_at: now,
        expires_at: now + ttl_ms,
        month: month_key(now),
        idempotency: key.map(|k| {
            (
                k.to_owned(),
                StoredResponse {
                    status: 200,
                    body: response_json.clone(),
                },
            )
        }),
        touch_token: state.should_touch(&token.id, now),
    };
    // On its own task: a client that hangs up mid-commit must not stop the metric from
    // counting a send the store committed anyway.
    let relay = state.relay.clone();
    let committed = tokio::spawn(async move {
        let outcome = relay.store.accept_send(send).await;
        if let Ok(AcceptOutcome::Accepted(_)) = &outcome {
            relay.metrics.send_accepted();
        }
        outcome
    })
    .await
    .map_err(|_| Failure::from(crate::api::ApiError::internal()))?;
    match committed? {
        AcceptOutcome::Replayed(stored) => Ok(stored_to_accepted(stored, &ip_statuses)),
        AcceptOutcome::Refused(refusal) => Err(Failure::rate_limited(refusal, now)),
        AcceptOutcome::Accepted(send_statuses) => {
            let all: Vec<LayerStatus> = ip_statuses.into_iter().chain(send_statuses).collect();
            Ok(Accepted {
                response_json,
                id,
                rate: binding(&all),
            })
        }
    }
}

/// One store target per selected device: webpush devices get the RFC 8291 encryption of
/// `{"id","envelope"}` for their subscription (SPEC §1.13), devices with a public key its sealed
/// box (§1.12), each as the job's own payload; the others read the envelope.
fn seal_for_targets(
    message_id: &str,
    envelope: &str,
    selected: &[DeviceRef],
    records: &[DeviceRecord],
) -> Result<Vec<Target>, Failure> {
    let plaintext = sealed::plaintext(message_id, envelope);
    selected
        .iter()
        .map(|d| {
            let record = records.iter().find(|r| r.id == d.id);
            let key = record.and_then(|r| r.public_key.as_deref());
            let webpush = record.and_then(|r| r.webpush.as_ref());
            let payload = match (webpush, key) {
                (Some(address), _) => Some(JobPayload {
                    kind: PayloadKind::WebPush,
                    bytes: encrypt_for(address, plaintext.as_bytes())?,
                }),
                (None, None) => None,
                (None, Some(key)) => {
                    // Stored keys were validated when paired; a corrupt one must not fall
                    // back to delivering in clear.
                    let key = sealed::parse_public_key(key)
                        .map_err(|_| Failure::from(crate::api::ApiError::internal()))?;
                    Some(JobPayload {
                        kind: PayloadKind::Sealed,
                        bytes: sealed::seal(plaintext.as_bytes(), &key),
                    })
                }
            };
            Ok(Target {
                device_id: d.id.clone(),
                device_type: d.device_type,
                payload,
            })
        })
        .collect()
}

/// The Web Push body for one subscription. Its keys were checked when it paired; one that no
/// longer parses must not fall back to delivering in clear.
fn encrypt_for(address: &WebPushAddress, plaintext: &[u8]) -> Result<Vec<u8>, Failure> {
    let subscription = crate::delivery::webpush::subscription_json(address)
        .parse()
        .map_err(|_| Failure::from(crate::api::ApiError::internal()))?;
    crate::delivery::webpush::encrypt::encrypt(plaintext, &subscription)
        .map_err(|_| Failure::from(crate::api::ApiError::internal()))
}
