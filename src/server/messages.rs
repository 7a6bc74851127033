//! `GET /v1/messages/{id}`: per-device delivery state, for any token of the message's owner,
//! with an `ETag` and the long poll of SPEC §2.2: a request naming the current tag with
//! `Prefer: wait=N` is held until the status differs or N seconds pass, so a waiting client
//! makes one request per change or per minute. A successful read is checked against the
//! per-IP layers but not charged (SPEC §1.8).

use super::AppState;
use super::error::{Failure, write_rate_headers};
use super::extract::{IpChecked, LongPoll, TokenAuth};
use super::limits::binding;
use super::openapi::responses::MessageErrors;
use crate::api::ErrorCode;
use crate::api::clear_ack::Acknowledged;
use crate::api::status::{CallbackView, DeliveryView, MessageView, RepeatView};
use crate::store::MessageStatus;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// How often a held request reads the status again on its own. A change made by this relay
/// wakes it at once; one made elsewhere (another relay on the database, `reflecto admin`
/// beside an SQLite relay) sends no wake-up here, so this bounds how late it is seen.
fn recheck(state: &AppState) -> Duration {
    state
        .store
        .poll_interval()
        .unwrap_or(Duration::from_secs(5))
}

pub fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

#[utoipa::path(get, path = "/v1/messages/{id}", tag = "messages", operation_id = "message_status",
    summary = "Per-device delivery state of a message",
    description = "Any token of the message's owner may ask. Besides each delivery's state it says when the message was cleared (`cleared_at`) and its first acknowledgement (`acknowledged`), and each delivery's own `acknowledged_at`. An unknown id, another owner's message, or one pruned after `--retention` is 404 `not_found`. Every 200 carries an `ETag`; with `If-None-Match` naming the current one the answer is 304, and with `Prefer: wait=N` as well (N over 60 counts as 60) the request is held until the status differs (200 with the new `ETag`) or N seconds pass (304). A successful read is checked against the per-IP limits but not charged; a 401 or 404 is charged.",
    params(
        ("id" = String, Path, description = "the `msg_…` id from a send"),
        ("If-None-Match" = Option<String>, Header, description = "the `ETag` of the status the client has: 304 while it is current"),
        ("Prefer" = Option<String>, Header, description = "`wait=N` (RFC 7240): with a current `If-None-Match`, hold the request up to N seconds (at most 60) for a change")),
    responses(
        (status = 200, description = "The message and one entry per target device", body = MessageView,
            headers(("ETag" = String, description = "names this status; send it back in `If-None-Match`"),
                ("X-RateLimit-Limit" = u64), ("X-RateLimit-Remaining" = u64), ("X-RateLimit-Reset" = i64), ("X-RateLimit-Resource" = String))),
        (status = 304, description = "The status is still the one `If-None-Match` names (at once, or after the `Prefer: wait` passed with no change); no body",
            headers(("ETag" = String, description = "the current (unchanged) tag"))),
        MessageErrors),
    security(("bearer" = [])))]
// `Path` first: a path that does not decode is refused before anything is checked.
pub async fn message_status(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    ip: IpChecked,
    poll: LongPoll,
    auth: Result<TokenAuth, Failure>,
) -> Result<Response, Failure> {
    let answer = async {
        let TokenAuth(token) = auth?;
        let mut response = follow(&state, &id, token.user_id, &poll).await?;
        // The per-IP layers as checked: this read charged them nothing.
        if response.status() == StatusCode::OK
            && let Some(status) = binding(&ip.statuses)
        {
            write_rate_headers(response.headers_mut(), &status);
        }
        Ok(response)
    }
    .await;
    ip.settle(&state, answer).await
}

/// The status now, or, when the client holds the current tag and asked to wait, the first
/// different one within its wait; 304 when nothing differs.
async fn follow(
    state: &AppState,
    id: &str,
    user_id: i64,
    poll: &LongPoll,
) -> Result<Response, Failure> {
    let deadline = Instant::now() + poll.wait;
    loop {
        // Registered before the read, so a change committed in between is not missed.
        let changed = state.store.wakeups().statuses();
        let view = read(state, id, user_id).await?;
        let tag = etag(&view);
        if !poll.has(&tag) {
            return Ok(([(header::ETAG, header_value(&tag))], Json(view)).into_response());
        }
        let now = Instant::now();
        if !poll.holds_for(&tag) || now >= deadline || state.is_stopping() {
            return Ok((
                StatusCode::NOT_MODIFIED,
                [(header::ETAG, header_value(&tag))],
            )
                .into_response());
        }
        // The relay stopping ends the wait with the (unchanged) answer, so the drain is quick
        // and the client simply asks again.
        tokio::select! {
            _ = tokio::time::timeout(recheck(state).min(deadline - now), changed) => {}
            () = state.stopping() => {}
        }
    }
}

async fn read(state: &AppState, id: &str, user_id: i64) -> Result<MessageView, Failure> {
    let not_found = || {
        Failure::new(
            ErrorCode::NotFound,
            format!("no message '{}' for this token's owner", id.escape_debug()),
        )
    };
    // An id the relay never issues names no message (and is never shown to the store).
    if !crate::validate::fields::is_message_id(id) {
        return Err(not_found());
    }
    let status = state
        .store
        .message_status(id, user_id)
        .await?
        .ok_or_else(not_found)?;
    Ok(view(status))
}

fn view(status: MessageStatus) -> MessageView {
    MessageView {
        id: status.id,
        created_at: rfc3339(status.created_at),
        key: status.key,
        cleared_at: status.cleared_at.map(rfc3339),
        acknowledged: status.acknowledged.map(|a| Acknowledged {
            at: rfc3339(a.at),
            device_id: a.device_id,
            response: a.response,
        }),
        deliveries: status
            .deliveries
            .into_iter()
            .map(|d| DeliveryView {
                device_id: d.device_id,
                label: d.label,
                device_type: d.device_type,
                state: d.state,
                attempts: d.attempts,
                last_error: d.last_error,
                next_attempt_at: d.next_attempt_at.map(rfc3339),
                acknowledged_at: d.acknowledged_at.map(rfc3339),
            })
            .collect(),
        repeat: status.repeat.map(|r| RepeatView {
            retry: (r.retry_ms / 1000) as u64,
            expire: (r.expire_ms / 1000) as u64,
            expires_at: rfc3339(r.expires_at),
            repeats: r.repeats,
        }),
        callback: status.callback.map(|c| CallbackView {
            state: c.state.as_str().to_owned(),
            at: c.at.map(rfc3339),
        }),
    }
}

/// A strong tag over everything the view says: it changes exactly when the answer would.
pub fn etag(view: &MessageView) -> String {
    let body = serde_json::to_vec(view).unwrap_or_default();
    let digest = Sha256::digest(&body);
    format!("\"{}\"", hex::encode(&digest[..16]))
}

fn header_value(tag: &str) -> HeaderValue {
    // Quoted hex only: always a valid header value.
    HeaderValue::from_str(tag).unwrap_or_else(|_| HeaderValue::from_static("\"\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tag_follows_the_content() {
        let json = r#"{"id":"msg_1","created_at":"2026-01-01T00:00:00.000Z","deliveries":[{"device_id":"dev_1","label":"desk","type":"extension","state":"queued","attempts":0,"last_error":null,"next_attempt_at":null}]}"#;
        let queued: MessageView = serde_json::from_str(json).unwrap();
        let tag = etag(&queued);
        assert_eq!(tag, etag(&queued.clone()), "stable");
        assert!(tag.len() == 34 && tag.starts_with('"') && tag.ends_with('"'));
        let mut delivered = queued.clone();
        delivered.deliveries[0].state = crate::api::status::DeliveryState::Delivered;
        assert_ne!(etag(&delivered), tag);
        let mut retried = queued.clone();
        retried.deliveries[0].attempts = 1;
        assert_ne!(etag(&retried), tag);
        // SPEC §1.15, §1.16: a clear and an acknowledgement are changes a long poll reports.
        let mut cleared = queued.clone();
        cleared.cleared_at = Some("2026-01-01T00:00:01.000Z".into());
        assert_ne!(etag(&cleared), tag);
        let mut acknowledged = queued.clone();
        acknowledged.deliveries[0].acknowledged_at = Some("2026-01-01T00:00:01.000Z".into());
        assert_ne!(etag(&acknowledged), tag);
        acknowledged.acknowledged = Some(Acknowledged {
            at: "2026-01-01T00:00:01.000Z".into(),
            device_id: "dev_1".into(),
            response: None,
        });
        assert_ne!(etag(&acknowledged), etag(&queued));
    }
}
