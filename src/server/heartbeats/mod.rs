//! Heartbeats (SPEC §1.18), a dead-man's switch for cron jobs and backups:
//! `POST /v1/heartbeats/{name}` (a ping), `POST /v1/heartbeats/{name}/fail`,
//! `GET /v1/heartbeats` and `DELETE /v1/heartbeats/{name}`. Any token of the owner may use
//! them. A ping is charged to the per-IP layers only; the late, back and failed notifications
//! are the relay's own and charged to no limit. The deadlines live in the store; the
//! maintenance beat sends the late ones ([`notes::send_late`]).

pub mod notes;

use super::AppState;
use super::error::{Failure, write_rate_headers};
use super::extract::{ChargedIp, IpChecked, TokenAuth, read_capped};
use super::limits::binding;
use super::openapi::responses::SenderErrors;
use crate::api::heartbeat::{HeartbeatList, HeartbeatPing, HeartbeatView};
use crate::api::{ApiError, ErrorCode};
use crate::server::messages_rfc3339 as rfc3339;
use crate::store::{HeartbeatRecord, HeartbeatState, Ping, PingOutcome, PingRefusal, TokenRecord};
use crate::validate::body::{BodyKind, parse_kind};
use crate::validate::heartbeat::{self as rules, PingSettings, format_duration};
use axum::Json;
use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value};
use std::sync::Arc;

/// `{name}` in the document: the rule [`rules::name`] applies.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)] // a declaration for the document; the handlers read the path themselves
struct HeartbeatName {
    /// 1–64 bytes of `A-Z a-z 0-9 . _ -`
    #[param(min_length = 1, max_length = 64, pattern = "^[A-Za-z0-9._-]{1,64}$")]
    name: String,
}

/// A ping's query in the document (the query wins over the body).
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // a declaration for the document; `query_durations` reads the query
struct PingQuery {
    /// A duration, 1 minute–31 days (required on the first ping)
    #[param(pattern = "^[0-9]{1,9}[smhd]$", nullable = false, example = "1d")]
    every: Option<String>,
    /// A duration, 0–1 day
    #[param(pattern = "^[0-9]{1,9}[smhd]$", nullable = false, example = "1h")]
    grace: Option<String>,
}

/// The optional text of a failure: any length (cut to 1500 bytes at a UTF-8 boundary).
pub struct FailText;

impl utoipa::PartialSchema for FailText {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::schema::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .description(Some(
                "What went wrong; cut to 1500 UTF-8 bytes. Empty or absent: a line saying when",
            ))
            .into()
    }
}

impl utoipa::ToSchema for FailText {}

/// A heartbeat as the API shows it.
pub fn view(hb: &HeartbeatRecord) -> HeartbeatView {
    HeartbeatView {
        name: hb.name.clone(),
        every: format_duration(hb.every_ms),
        grace: format_duration(hb.grace_ms),
        state: hb.state,
        last_ping_at: rfc3339(hb.last_ping_at),
        next_due_at: rfc3339(hb.next_due_at()),
    }
}

/// The body's fields (JSON, a form or multipart's text fields; an empty body has none).
async fn body_fields(
    headers: &HeaderMap,
    body: Body,
    known: &[&str],
) -> Result<Map<String, Value>, Failure> {
    let content_type = headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok());
    let bytes = read_capped(body).await?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match BodyKind::of(content_type) {
        BodyKind::Multipart(_) => Err(Failure::new(
            ErrorCode::InvalidBody,
            "send the durations as JSON, a form or the query",
        )),
        kind => Ok(parse_kind(&kind, &bytes, known)?),
    }
}

/// `every` and `grace` from the query string (the last of a repeated one).
fn query_durations(query: Option<&str>) -> HeartbeatPing {
    let mut ping = HeartbeatPing::default();
    for (k, v) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        match k.as_ref() {
            "every" => ping.every = Some(v.into_owned()),
            "grace" => ping.grace = Some(v.into_owned()),
            _ => {}
        }
    }
    ping
}

/// A duration field: the query's, else the body's; a string or absent (`null` is absent).
fn duration_text<'a>(
    query: Option<&'a str>,
    body: &'a Map<String, Value>,
    field: &str,
) -> Result<Option<&'a str>, Failure> {
    // The body is checked even when the query gives the field: a bad request is refused
    // whole, never half read.
    let in_body = match body.get(field) {
        None | Some(Value::Null) => None,
        Some(Value::String(text)) => {
            crate::validate::heartbeat::duration(field, text)?;
            Some(text.as_str())
        }
        Some(_) => {
            return Err(Failure::new(
                ErrorCode::InvalidHeartbeat,
                format!("{field} must be a duration string such as 90s, 45m, 12h or 1d"),
            ));
        }
    };
    Ok(query.or(in_body))
}

fn name_of(name: &str) -> Result<(), Failure> {
    rules::name(name).map(|_| ()).map_err(Failure::from)
}

/// The 200 with the per-IP layers as charged.
fn answer(ip: &ChargedIp, body: impl serde::Serialize) -> Response {
    let mut response = Json(body).into_response();
    if let Some(status) = binding(&ip.statuses) {
        write_rate_headers(response.headers_mut(), &status);
    }
    response
}

fn not_found(name: &str) -> Failure {
    Failure::new(
        ErrorCode::NotFound,
        format!("no heartbeat '{name}' for this token's owner"),
    )
}

#[utoipa::path(post, path = "/v1/heartbeats/{name}", tag = "heartbeats", operation_id = "ping_heartbeat",
    summary = "Ping a heartbeat",
    description = "Records a check-in of the owner's heartbeat `name`, creating it on its first ping (which must give `every`). `every` (1 minute–31 days) and `grace` (0–1 day; default a tenth of `every`, at most 1 h, recomputed when `every` changes unless a grace was given) are durations such as `90s`, `45m`, `12h`, `1d`, in the JSON body or the query (the query wins); a ping with new values changes them. When `last_ping_at + every + grace` passes with no ping the owner gets one notification `<name> is late` (priority high, key `hb:<name>`) and the state becomes `late`; the next ping sends `<name> is back` (same key, so it replaces the alarm) and the state becomes `up`. A ping is charged to the per-IP layers only.",
    params(HeartbeatName, PingQuery),
    request_body(description = "Optional: the durations as JSON (or a form); an empty body is fine",
        content = Option<HeartbeatPing>, content_type = "application/json"),
    responses(
        (status = 200, description = "The heartbeat after the ping", body = HeartbeatView,
            headers(("X-RateLimit-Limit" = u64), ("X-RateLimit-Remaining" = u64), ("X-RateLimit-Reset" = i64), ("X-RateLimit-Resource" = String))),
        (status = 400, description = "`invalid_heartbeat` (a bad name, duration or range, or no `every` on the first ping) or `invalid_body`", body = crate::api::NestedErrorBody),
        (status = 413, description = "`payload_too_large`: the body exceeds 64 KiB", body = crate::api::NestedErrorBody),
        SenderErrors),
    security(("bearer" = [])))]
pub async fn ping(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    ip: ChargedIp,
    TokenAuth(token): TokenAuth,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, Failure> {
    name_of(&name)?;
    let query = query_durations(query.as_deref());
    let fields = body_fields(&headers, body, &["every", "grace"]).await?;
    let settings = PingSettings::parse(
        duration_text(query.every.as_deref(), &fields, "every")?,
        duration_text(query.grace.as_deref(), &fields, "grace")?,
    )?;
    let ping = Ping {
        user_id: token.user_id,
        name: name.clone(),
        settings,
        token_id: token.id.clone(),
        source: token.label.clone(),
        now: ip.now,
    };
    let mut back = None;
    // Twice at most: a heartbeat found late or failed is pinged again with its "is back".
    for _ in 0..2 {
        match state
            .store
            .ping_heartbeat(ping.clone(), back.take())
            .await?
        {
            PingOutcome::Pinged { heartbeat, was } => {
                if matches!(was, Some(HeartbeatState::Late | HeartbeatState::Failed)) {
                    state.metrics.send_accepted();
                }
                return Ok(answer(&ip, view(&heartbeat)));
            }
            PingOutcome::Refused(PingRefusal::NeedsEvery) => {
                return Err(Failure::new(
                    ErrorCode::InvalidHeartbeat,
                    format!("'{name}' has never been pinged: its first ping must give every"),
                ));
            }
            PingOutcome::NeedsBack(_) => {
                back = Some(back_notification(&state, &token, &name, ip.now).await?);
            }
        }
    }
    Err(ApiError::internal().into())
}

async fn back_notification(
    state: &AppState,
    token: &TokenRecord,
    name: &str,
    now: i64,
) -> Result<crate::store::NewSend, Failure> {
    notes::notification(
        state,
        token.user_id,
        &token.id,
        &token.label,
        notes::back(name, now),
        now,
    )
    .await
}

#[utoipa::path(post, path = "/v1/heartbeats/{name}/fail", tag = "heartbeats", operation_id = "fail_heartbeat",
    summary = "Report a heartbeat's failure",
    description = "Sends `<name> failed` at once (priority high, key `hb:<name>`) with the body's text as its message (cut to 1500 bytes) and marks the heartbeat `failed`; the next ping sends `<name> is back`. The body is optional: plain text, or `message` in JSON or a form. A heartbeat that was never pinged is 404 `not_found`.",
    params(HeartbeatName),
    request_body(description = "Optional text: what went wrong",
        content = Option<FailText>, content_type = "text/plain"),
    responses(
        (status = 200, description = "The heartbeat, now `failed`", body = HeartbeatView,
            headers(("X-RateLimit-Limit" = u64), ("X-RateLimit-Remaining" = u64), ("X-RateLimit-Reset" = i64), ("X-RateLimit-Resource" = String))),
        (status = 400, description = "`invalid_heartbeat` (a bad name) or `invalid_body`", body = crate::api::NestedErrorBody),
        (status = 404, description = "`not_found`: no heartbeat of that name", body = crate::api::NestedErrorBody),
        (status = 413, description = "`payload_too_large`", body = crate::api::NestedErrorBody),
        SenderErrors),
    security(("bearer" = [])))]
pub async fn fail(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    ip: ChargedIp,
    TokenAuth(token): TokenAuth,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, Failure> {
    name_of(&name)?;
    let fields = body_fields(&headers, body, &["message"]).await?;
    let text = match fields.get("message") {
        None | Some(Value::Null) => None,
        Some(Value::String(text)) => Some(text.as_str()),
        Some(_) => {
            return Err(Failure::new(
                ErrorCode::InvalidBody,
                "message must be a string",
            ));
        }
    };
    if state.store.heartbeat(token.user_id, &name).await?.is_none() {
        return Err(not_found(&name));
    }
    let send = notes::notification(
        &state,
        token.user_id,
        &token.id,
        &token.label,
        notes::failed(&name, text, ip.now),
        ip.now,
    )
    .await?;
    let failed = state
        .store
        .fail_heartbeat(token.user_id, &name, &token.id, &token.label, send)
        .await?
        .ok_or_else(|| not_found(&name))?;
    state.metrics.send_accepted();
    Ok(answer(&ip, view(&failed)))
}

#[utoipa::path(get, path = "/v1/heartbeats", tag = "heartbeats", operation_id = "list_heartbeats",
    summary = "The owner's heartbeats and their states",
    description = "Every heartbeat of the token's owner, by name. Checked against the per-IP limits but not charged; a 401 is charged.",
    responses(
        (status = 200, description = "The heartbeats", body = HeartbeatList),
        SenderErrors),
    security(("bearer" = [])))]
pub async fn list(
    State(state): State<Arc<AppState>>,
    ip: IpChecked,
    auth: Result<TokenAuth, Failure>,
) -> Result<Response, Failure> {
    let answer = async {
        let TokenAuth(token) = auth?;
        let heartbeats = state.store.heartbeats_of(token.user_id).await?;
        let mut response = Json(HeartbeatList {
            heartbeats: heartbeats.iter().map(view).collect(),
        })
        .into_response();
        if let Some(status) = binding(&ip.statuses) {
            write_rate_headers(response.headers_mut(), &status);
        }
        Ok(response)
    }
    .await;
    ip.settle(&state, answer).await
}

#[utoipa::path(delete, path = "/v1/heartbeats/{name}", tag = "heartbeats", operation_id = "delete_heartbeat",
    summary = "Remove a heartbeat",
    description = "Removes the owner's heartbeat: no alarm is sent for it any more. None of that name is 404 `not_found`.",
    params(HeartbeatName),
    responses(
        (status = 200, description = "Removed: the heartbeat as it was", body = HeartbeatView),
        (status = 400, description = "`invalid_heartbeat`: a bad name", body = crate::api::NestedErrorBody),
        (status = 404, description = "`not_found`", body = crate::api::NestedErrorBody),
        SenderErrors),
    security(("bearer" = [])))]
pub async fn delete(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    ip: ChargedIp,
    TokenAuth(token): TokenAuth,
) -> Result<Response, Failure> {
    name_of(&name)?;
    let existing = state
        .store
        .heartbeat(token.user_id, &name)
        .await?
        .ok_or_else(|| not_found(&name))?;
    if !state.store.delete_heartbeat(token.user_id, &name).await? {
        return Err(not_found(&name));
    }
    Ok(answer(&ip, view(&existing)))
}
