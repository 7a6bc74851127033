//! `POST /v1/send` and `/v1/send/{token}`: the order of checks of SPEC §1.7, shared with the
//! Pushover shim through [`accept`].

mod accept;

pub use accept::{accept, own_notification};

use super::AppState;
use super::error::{Failure, write_rate_headers};
use super::extract::{ChargedIp, IdempotencyKey, MessageBody, SenderAuth};
use super::limits::{LayerStatus, binding};
use super::openapi::responses::{
    Refusal, SEND_INTERNAL_ERROR, SEND_RATE_LIMITED, UNAUTHENTICATED, documented,
};
use crate::api::SendResponse;
use crate::server::observe::LogNote;
use crate::store::{Sender, StoredResponse, TokenRecord};
use crate::validate::{fields::KNOWN_KEYS, normalize};
use axum::extract::{FromRequest, FromRequestParts, Path, Request, State};
use axum::http::{HeaderMap, StatusCode, header::CONTENT_TYPE};
use axum::response::{IntoResponse, Response};
use std::collections::BTreeMap;
use std::sync::Arc;
use utoipa::IntoResponses;
use utoipa::openapi::{RefOr, Response as Documented};

/// A send the relay committed (or an earlier one replayed), with the binding rate-limit layer.
pub struct Accepted {
    pub response_json: String,
    pub id: String,
    pub rate: Option<LayerStatus>,
    /// For the request's log line: the sending token and how many devices the send targets
    /// (not said for a replay).
    pub token_id: String,
    pub devices: Option<usize>,
}

impl Accepted {
    /// What the request's log line says of this send.
    pub fn log_note(&self) -> LogNote {
        LogNote {
            message_id: Some(self.id.clone()),
            token_id: Some(self.token_id.clone()),
            devices: self.devices,
            ..LogNote::default()
        }
    }

    pub fn into_response(self) -> Response {
        let mut headers = HeaderMap::new();
        if let Some(status) = &self.rate {
            write_rate_headers(&mut headers, status);
        }
        headers.insert(
            CONTENT_TYPE,
            "application/json".parse().expect("static header"),
        );
        let note = self.log_note();
        note.attach((StatusCode::OK, headers, self.response_json).into_response())
    }
}

/// What both send routes refuse.
struct SendErrors;

impl IntoResponses for SendErrors {
    fn responses() -> BTreeMap<String, RefOr<Documented>> {
        documented(&[
            Refusal::nested(
                400,
                "A field or the body failed validation; nothing was recorded",
            ),
            UNAUTHENTICATED,
            Refusal::nested(
                403,
                "`priority_capped`: the token may not send this priority; `forbidden`: an admin token (SPEC §1.19)",
            ),
            Refusal::nested(
                413,
                "`payload_too_large`: the envelope exceeds 2048 bytes or the raw body 64 KiB",
            ),
            SEND_RATE_LIMITED,
            SEND_INTERNAL_ERROR,
        ])
    }
}

/// Declares a send route's operation. Both routes read the same bodies and answer the same
/// statuses, declared here once; each route gives its path, name, description, parameters and
/// security, and how its request body is described.
macro_rules! send_operation {
    ({ $($route:tt)* } body = $body:tt; $($handler:tt)*) => {
        #[utoipa::path(post, tag = "send", $($route)*,
            request_body(description = $body,
                content(
                    (crate::api::SendRequest = "application/json"),
                    (crate::server::openapi_schemas::SendForm = "application/x-www-form-urlencoded"),
                    (crate::server::openapi_schemas::SendForm = "multipart/form-data"),
                    (crate::server::openapi_schemas::RawMessage = "text/plain"))),
            responses(
                (status = 200, description = "Accepted: one delivery enqueued per target device", body = SendResponse),
                SendErrors))]
        $($handler)*
    };
}

send_operation! {
    {
        path = "/v1/send", operation_id = "send",
        summary = "Send a notification to the token owner's devices",
        description = "Checks run in SPEC §1.7 order (per-IP limit, token, body, priority cap, envelope size, per-token and per-receiver limits), so a 4xx never burns quota. Every 200 and 429 carries the `X-RateLimit-*` headers of the binding layer when a limit is enabled.",
        params(crate::server::openapi_schemas::IdempotencyKey),
        security(("bearer" = []))
    }
    body = "JSON (the canonical object); urlencoded or multipart (the same fields as form keys; with no known key the whole raw body is the message); text/plain or no Content-Type (the whole body is the message). Anything else is 400 `invalid_body`.";
    pub async fn send(
        State(state): State<Arc<AppState>>,
        args: SendArgs,
    ) -> Result<Response, Failure> {
        args.handle(&state).await
    }
}

send_operation! {
    {
        path = "/v1/send/{token}", operation_id = "send_with_path_token",
        summary = "Send with the token in the path (capability URL)",
        description = "Identical to `POST /v1/send` for clients that cannot set headers. If an `Authorization` header is present too, the header wins. The path token is redacted before anything is logged.",
        params(("token" = String, Path, description = "the sender token `rfk_live_…`"), crate::server::openapi_schemas::IdempotencyKey),
        security((), ("bearer" = []))
    }
    body = "As for `POST /v1/send`";
    // `Path` first, as the route's capture: a path that does not decode is refused before
    // anything is charged. The token itself is read by `SenderAuth` (the header wins).
    pub async fn send_with_path_token(
        State(state): State<Arc<AppState>>,
        Path(_token): Path<String>,
        args: SendArgs,
    ) -> Result<Response, Failure> {
        args.handle(&state).await
    }
}

/// What both send routes read, in SPEC §1.7 order: the per-IP limit (charged), the sender
/// token, the `Idempotency-Key`, then the body (read only after the replay check). Each
/// refusal is its own extractor's, as when axum ran them as separate arguments.
pub struct SendArgs {
    ip: ChargedIp,
    sender: Sender,
    key: Option<String>,
    body: MessageBody,
}

impl FromRequest<Arc<AppState>> for SendArgs {
    type Rejection = Failure;

    async fn from_request(request: Request, state: &Arc<AppState>) -> Result<Self, Failure> {
        let (mut parts, body) = request.into_parts();
        let ip = ChargedIp::from_request_parts(&mut parts, state).await?;
        let SenderAuth(sender) = SenderAuth::from_request_parts(&mut parts, state).await?;
        let IdempotencyKey(key) = IdempotencyKey::from_request_parts(&mut parts, state).await?;
        let Ok(body) = MessageBody::from_request(Request::from_parts(parts, body), state).await;
        Ok(SendArgs {
            ip,
            sender,
            key,
            body,
        })
    }
}

impl SendArgs {
    async fn handle(self, state: &AppState) -> Result<Response, Failure> {
        let SendArgs {
            ip,
            sender,
            key,
            body,
        } = self;
        let key = key.as_deref();
        if let Some(replay) = replay(state, &sender.token, key, &ip.statuses, ip.now).await? {
            return Ok(replay.into_response());
        }
        let validated = normalize(&body.fields(KNOWN_KEYS).await?)?;
        Ok(
            accept(state, sender, validated, ip.statuses, key, None, ip.now)
                .await?
                .into_response(),
        )
    }
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
        .map(|stored| stored_to_accepted(stored, ip, &token.id)))
}

pub(super) fn stored_to_accepted(
    stored: StoredResponse,
    ip: &[LayerStatus],
    token_id: &str,
) -> Accepted {
    let id = serde_json::from_str::<SendResponse>(&stored.body)
        .map(|r| r.id)
        .unwrap_or_default();
    Accepted {
        response_json: stored.body,
        id,
        rate: binding(ip),
        token_id: token_id.to_owned(),
        devices: None,
    }
}
