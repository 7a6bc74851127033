//! `POST /v1/messages.json` (and `/1/messages.json`): Pushover's field set mapped onto the
//! canonical request, answered in Pushover's shape with the status /v1/send would give.

use super::AppState;
use super::error::{Failure, write_rate_headers};
use super::extract::{
    ChargedIp, IdempotencyKey, MessageBody, Presented, authenticate_sender, invalid,
};
use super::openapi::responses::ShimErrors;
use super::send::{Accepted, accept, replay};
use crate::api::{ErrorCode, Priority, ShimResponse};
use crate::validate::normalize;
use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value};
use std::sync::Arc;

/// A Pushover receipt's length (SPEC §1.17).
pub(super) const RECEIPT_CHARS: usize = 30;

pub(super) const SHIM_KEYS: &[&str] = &[
    "token",
    "user",
    "message",
    "title",
    "priority",
    "url",
    "url_title",
    "device",
    "ttl",
    "sound",
    "timestamp",
    "html",
    "retry",
    "expire",
    "callback",
];

#[utoipa::path(post, path = "/v1/messages.json", tag = "pushover", operation_id = "messages_json",
    summary = "Send through the Pushover-compatible shim",
    description = "Pushover's field set mapped onto `POST /v1/send`. Every failure answers `{\"status\":0,\"errors\":[\"<code>\"]}` with the status `/v1/send` would give; a 429 keeps `Retry-After` and the `X-RateLimit-*` headers.",
    params(super::openapi_schemas::IdempotencyKey),
    request_body(description = "JSON, urlencoded or multipart; unknown fields are ignored",
        content(
            (super::openapi_schemas::ShimRequest = "application/json"),
            (super::openapi_schemas::ShimForm = "application/x-www-form-urlencoded"),
            (super::openapi_schemas::ShimForm = "multipart/form-data"))),
    responses(
        (status = 200, description = "`{\"status\":1,\"request\":\"msg_…\"}`", body = crate::api::ShimResponse),
        (status = 400, description = "Validation failed (`errors` holds the code, e.g. `invalid_repeat`)", body = crate::api::ShimResponse),
        (status = 403, description = "`priority_capped`, or `forbidden` for an admin token", body = crate::api::ShimResponse),
        (status = 413, description = "`payload_too_large`", body = crate::api::ShimResponse),
        ShimErrors),
    security((), ("bearer" = [])))]
// Each extractor's refusal is kept (`Result`) and answered in Pushover's shape below, in
// SPEC §1.7's order: per-IP, the body (its token may be inside), the token, the key.
pub async fn messages_json(
    State(state): State<Arc<AppState>>,
    ip: Result<ChargedIp, Failure>,
    header_token: Result<Presented, Failure>,
    key: Result<IdempotencyKey, Failure>,
    body: MessageBody,
) -> Response {
    match handle(&state, ip, header_token, key, body).await {
        // SPEC §1.8: every 200 carries the binding layer's headers, the shim's too.
        Ok(accepted) => {
            let mut headers = HeaderMap::new();
            if let Some(status) = &accepted.rate {
                write_rate_headers(&mut headers, status);
            }
            write_pushover_limit_headers(&mut headers, accepted.rate.as_ref());
            let note = accepted.log_note();
            let receipt = match state.store.receipt_of(&accepted.id).await {
                Ok(receipt) => receipt,
                Err(e) => return Failure::from(e).into_shim_response(),
            };
            let body = ShimResponse {
                status: 1,
                request: Some(accepted.id),
                errors: None,
                receipt,
            };
            note.attach((headers, Json(body)).into_response())
        }
        Err(failure) => failure.into_shim_response(),
    }
}

/// Pushover's own limit headers, which its client libraries read after every send (`chump`
/// fails without them): the binding layer's, and with no limit at all the largest count
/// (`i32::MAX`, nothing used, no reset).
fn write_pushover_limit_headers(
    headers: &mut HeaderMap,
    status: Option<&crate::server::limits::LayerStatus>,
) {
    use axum::http::HeaderValue;
    let (limit, remaining, reset) = match status {
        Some(s) => (s.limit, s.remaining, s.reset),
        None => (i32::MAX as u64, i32::MAX as u64, 0),
    };
    headers.insert("x-limit-app-limit", HeaderValue::from(limit));
    headers.insert("x-limit-app-remaining", HeaderValue::from(remaining));
    headers.insert("x-limit-app-reset", HeaderValue::from(reset));
}

async fn handle(
    state: &AppState,
    ip: Result<ChargedIp, Failure>,
    header_token: Result<Presented, Failure>,
    key: Result<IdempotencyKey, Failure>,
    body: MessageBody,
) -> Result<Accepted, Failure> {
    let ip = ip?;
    let mut fields = body.fields(SHIM_KEYS).await?;
    let token = match fields.remove("token") {
        Some(Value::String(token)) => token,
        Some(_) => return Err(invalid()),
        None => header_token?.0,
    };
    let sender = authenticate_sender(state, &token).await?;
    let IdempotencyKey(key) = key?;
    let key = key.as_deref();
    if let Some(replayed) = replay(state, &sender.token, key, &ip.statuses, ip.now).await? {
        return Ok(replayed);
    }
    let validated = normalize(&to_canonical(fields)?)?;
    // Priority 2 (the only way here to an urgent message that repeats) gets a receipt.
    let receipt = validated
        .request
        .retry
        .map(|_| crate::api::token::random_alnum(RECEIPT_CHARS));
    accept(state, sender, validated, ip.statuses, key, receipt, ip.now).await
}

/// Pushover fields → canonical fields. Only `priority` needs translating; `user`, `sound`,
/// `timestamp` and unknown fields are dropped. `retry` and `expire` count only with priority
/// 2 (Pushover ignores them otherwise), which needs both (SPEC §1.17).
fn to_canonical(mut fields: Map<String, Value>) -> Result<Map<String, Value>, Failure> {
    let mut out = Map::new();
    for key in [
        "message",
        "title",
        "url",
        "url_title",
        "device",
        "ttl",
        "callback",
    ] {
        if let Some(v) = fields.remove(key) {
            out.insert(key.to_owned(), v);
        }
    }
    if let Some(p) = fields.remove("priority").filter(|v| !v.is_null()) {
        let priority = pushover_priority(&p)?;
        if priority == Priority::Urgent {
            for key in ["retry", "expire"] {
                match fields.remove(key).filter(|v| !v.is_null()) {
                    Some(v) => out.insert(key.to_owned(), v),
                    None => {
                        return Err(Failure::new(
                            ErrorCode::InvalidRepeat,
                            format!("priority 2 (Emergency) needs {key}"),
                        ));
                    }
                };
            }
        }
        out.insert(
            "priority".into(),
            Value::String(priority.as_str().to_owned()),
        );
    }
    Ok(out)
}

fn pushover_priority(value: &Value) -> Result<Priority, Failure> {
    let number = match value {
        Value::Number(n) => n.as_i64(),
        // Exactly the documented texts: `+1`, `01` or `-0` parse as numbers but the pattern
        // refuses them, and a fuzzer checks that the relay does too.
        Value::String(s) => match s.trim_ascii() {
            text @ ("-2" | "-1" | "0" | "1" | "2") => text.parse::<i64>().ok(),
            _ => None,
        },
        _ => None,
    };
    match number {
        // Emergency (SPEC §1.17): urgent, repeating with the Pushover `retry` and `expire`.
        Some(2) => Ok(Priority::Urgent),
        Some(n) => Priority::from_pushover(n).ok_or_else(|| {
            Failure::new(
                ErrorCode::InvalidPriority,
                format!("priority must be -2, -1, 0 or 1 (got {n})"),
            )
        }),
        None => Err(Failure::new(
            ErrorCode::InvalidPriority,
            "priority must be -2, -1, 0 or 1",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn priorities_map_and_emergency_is_urgent() {
        assert_eq!(pushover_priority(&json!(-2)).unwrap(), Priority::Min);
        assert_eq!(pushover_priority(&json!("-1")).unwrap(), Priority::Low);
        assert_eq!(pushover_priority(&json!("0")).unwrap(), Priority::Default);
        assert_eq!(pushover_priority(&json!(1)).unwrap(), Priority::High);
        assert_eq!(pushover_priority(&json!(2)).unwrap(), Priority::Urgent);
        assert_eq!(
            pushover_priority(&json!("3")).unwrap_err().error.code,
            ErrorCode::InvalidPriority
        );
        assert_eq!(
            pushover_priority(&json!("high")).unwrap_err().error.code,
            ErrorCode::InvalidPriority
        );
        // Numbers the pattern does not spell are refused, not parsed.
        for text in ["+1", "01", "-0", "1.0", "\x0b1"] {
            assert_eq!(
                pushover_priority(&json!(text)).unwrap_err().error.code,
                ErrorCode::InvalidPriority,
                "{text:?}"
            );
        }
        assert_eq!(pushover_priority(&json!(" 1\t")).unwrap(), Priority::High);
    }

    #[test]
    fn ignored_fields_are_dropped() {
        let out = to_canonical(
            json!({"message":"m","user":"u","sound":"pop","timestamp":1,"priority":"1"})
                .as_object()
                .unwrap()
                .clone(),
        )
        .unwrap();
        assert_eq!(Value::Object(out), json!({"message":"m","priority":"high"}));
    }
}
