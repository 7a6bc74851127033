//! `/v1/admin/*`, the operator API (SPEC §1.19): everything `reflecto admin` does on the store,
//! over HTTP with an admin token ([`AdminAuth`]). Each change goes through [`ops`], the same
//! functions the CLI calls on a local store, so validation, codes and audit entries are the
//! same whichever way an operator works.

pub mod events;
pub mod ops;
mod pairing;
pub mod views;

use super::AppState;
use super::error::Failure;
use super::extract::{AdminAuth, CappedJson, JsonShape};
use super::openapi::responses::AdminErrors;
use crate::api::admin::*;
use crate::api::{ApiError, ErrorCode};
use crate::store::{JobState, MessageQuery, Store};
use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use ops::{MAX_PAGE, OpError, Operator};
use std::collections::HashMap;
use std::sync::Arc;

pub use events::events;
pub use pairing::create_pairing;

impl From<OpError> for Failure {
    fn from(e: OpError) -> Failure {
        match e {
            OpError::Api(e) => Failure::from(e),
            OpError::Store(e) => Failure::from(e),
        }
    }
}

impl JsonShape for NewUserRequest {
    const SHAPE: &'static str = "a JSON object {\"name\"}";
}

impl JsonShape for NewTokenRequest {
    const SHAPE: &'static str = "a JSON object {\"user\",\"label\",\"priority_cap\"?,\"scope_devices\"?,\"test\"?} or {\"admin\":true,\"label\"}";
}

impl JsonShape for NewPairingRequest {
    const SHAPE: &'static str = "a JSON object {\"user\"}";
}

fn operator<'a>(state: &'a AppState, auth: &AdminAuth) -> Operator<'a> {
    Operator {
        store: &state.store,
        actor: auth.actor(),
        now: auth.now,
    }
}

fn usage(message: impl Into<String>) -> Failure {
    Failure::from(ApiError::new(ErrorCode::UsageError, message))
}

/// The query string's parameters: each at most once, only the named ones.
fn query(raw: Option<String>, allowed: &[&str]) -> Result<HashMap<String, String>, Failure> {
    let mut out = HashMap::new();
    for (k, v) in form_urlencoded::parse(raw.unwrap_or_default().as_bytes()) {
        if !allowed.contains(&k.as_ref()) {
            return Err(usage(format!(
                "unknown query parameter '{k}'; this endpoint takes {}",
                allowed.join(", ")
            )));
        }
        // No stored name or id has a NUL byte, and PostgreSQL refuses one as text; the
        // document's `user` and `before` say so with the pattern `^[^\x00]*$`.
        if v.contains('\0') {
            return Err(usage(format!(
                "query parameter '{k}' must not contain a NUL byte"
            )));
        }
        if out.insert(k.to_string(), v.into_owned()).is_some() {
            return Err(usage(format!("query parameter '{k}' given twice")));
        }
    }
    Ok(out)
}

/// `limit`: 1–100, 50 when absent.
fn limit(q: &HashMap<String, String>) -> Result<usize, Failure> {
    match q.get("limit") {
        None => Ok(50),
        Some(v) => v
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_PAGE).contains(n))
            .ok_or_else(|| usage(format!("limit must be a whole number from 1 to {MAX_PAGE}"))),
    }
}

#[utoipa::path(get, path = "/v1/admin/status", tag = "admin", operation_id = "admin_status",
    summary = "The relay's status, health, counts and the actions this store allows",
    responses(
        (status = 200, body = AdminStatus, description = "The status"),
        AdminErrors),
    security(("admin" = [])))]
pub async fn status(
    State(state): State<Arc<AppState>>,
    auth: AdminAuth,
) -> Result<Json<AdminStatus>, Failure> {
    let now = auth.now;
    let writes = state.store.probe_write(now).await.is_ok();
    let health = serde_json::json!({
        "status": if writes { "ready" } else { "unavailable" },
        "store": if writes { "ok" } else { "failing" },
        "fcm": state.fcm_health().as_str(),
    });
    let c = state.store.admin_counts(now - 86_400_000).await?;
    let sqlite = matches!(&state.store, Store::Sqlite(_));
    Ok(Json(AdminStatus {
        version: env!("CARGO_PKG_VERSION").to_owned(),
        started_at: super::messages::rfc3339(state.started_at),
        store: if sqlite { "sqlite" } else { "postgres" }.to_owned(),
        health,
        queue: QueueCounts {
            queued: c.queued,
            leased: c.leased,
            pending: c.pending,
        },
        counts: AdminCounts {
            users: c.users,
            devices: c.devices,
            tokens: c.tokens,
            messages_24h: c.messages_24h,
            deliveries_24h: DeliveryCounts {
                delivered: c.delivered_24h,
                failed: c.failed_24h,
                expired: c.expired_24h,
            },
        },
        allowed_actions: AllowedActions {
            backup: sqlite,
            copy: sqlite,
            pair: true,
        },
    }))
}

#[utoipa::path(get, path = "/v1/admin/users", tag = "admin", operation_id = "admin_list_users",
    summary = "Every user, by name",
    responses(
        (status = 200, body = Vec<AdminUser>, description = "The users"),
        AdminErrors),
    security(("admin" = [])))]
pub async fn list_users(
    State(state): State<Arc<AppState>>,
    auth: AdminAuth,
) -> Result<Json<Vec<AdminUser>>, Failure> {
    Ok(Json(operator(&state, &auth).list_users().await?))
}

#[utoipa::path(post, path = "/v1/admin/users", tag = "admin", operation_id = "admin_add_user",
    summary = "Add a user",
    request_body(content = NewUserRequest, content_type = "application/json"),
    responses(
        (status = 200, body = AdminUser, description = "Added"),
        (status = 400, body = crate::api::NestedErrorBody, description = "`invalid_body`, or `usage_error`: an empty name"),
        (status = 409, body = crate::api::NestedErrorBody, description = "`conflict`: the user exists"),
        (status = 413, body = crate::api::NestedErrorBody, description = "`payload_too_large`: the raw body exceeds 64 KiB"),
        AdminErrors),
    security(("admin" = [])))]
pub async fn add_user(
    State(state): State<Arc<AppState>>,
    auth: AdminAuth,
    CappedJson(req): CappedJson<NewUserRequest>,
) -> Result<Json<AdminUser>, Failure> {
    Ok(Json(operator(&state, &auth).add_user(&req.name).await?))
}

#[utoipa::path(delete, path = "/v1/admin/users/{name}", tag = "admin", operation_id = "admin_remove_user",
    summary = "Remove a user with their tokens, devices and messages",
    params(("name" = String, Path, pattern = "^[^\\x00]*$", description = "the user's name")),
    responses(
        (status = 204, description = "Removed"),
        (status = 404, body = crate::api::NestedErrorBody, description = "`not_found`: no such user"),
        AdminErrors),
    security(("admin" = [])))]
pub async fn remove_user(
    State(state): State<Arc<AppState>>,
    auth: AdminAuth,
    Path(name): Path<String>,
) -> Result<StatusCode, Failure> {
    operator(&state, &auth).remove_user(&name).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/v1/admin/tokens", tag = "admin", operation_id = "admin_list_tokens",
    summary = "Sender tokens (all, or one user's) and, without `user`, admin tokens; never their secrets",
    params(("user" = Option<String>, Query, pattern = "^[^\\x00]*$", description = "only this user's sender tokens")),
    responses(
        (status = 200, body = Vec<AdminToken>, description = "The tokens"),
        (status = 400, body = crate::api::NestedErrorBody, description = "`usage_error`: an unknown query parameter, or a NUL byte in one"),
        (status = 404, body = crate::api::NestedErrorBody, description = "`not_found`: no such user"),
        AdminErrors),
    security(("admin" = [])))]
pub async fn list_tokens(
    State(state): State<Arc<AppState>>,
    auth: AdminAuth,
    RawQuery(raw): RawQuery,
) -> Result<Json<Vec<AdminToken>>, Failure> {
    let q = query(raw, &["user"])?;
    let user = q.get("user").map(String::as_str);
    Ok(Json(operator(&state, &auth).list_tokens(user).await?))
}

#[utoipa::path(post, path = "/v1/admin/tokens", tag = "admin", operation_id = "admin_create_token",
    summary = "Create a sender token for a user, or an admin token; its secret is shown this once",
    request_body(content = NewTokenRequest, content_type = "application/json"),
    responses(
        (status = 200, body = CreatedToken, description = "Created; `token` is the secret, shown once"),
        (status = 400, body = crate::api::NestedErrorBody, description = "`invalid_body`, or `usage_error`: a sender token without a user, an admin token with one"),
        (status = 404, body = crate::api::NestedErrorBody, description = "`not_found`: no such user"),
        (status = 413, body = crate::api::NestedErrorBody, description = "`payload_too_large`: the raw body exceeds 64 KiB"),
        AdminErrors),
    security(("admin" = [])))]
pub async fn create_token(
    State(state): State<Arc<AppState>>,
    auth: AdminAuth,
    CappedJson(req): CappedJson<NewTokenRequest>,
) -> Result<Json<CreatedToken>, Failure> {
    Ok(Json(operator(&state, &auth).create_token(req).await?))
}

#[utoipa::path(delete, path = "/v1/admin/tokens/{id}", tag = "admin", operation_id = "admin_revoke_token",
    summary = "Revoke a sender or admin token; refused from its next request on",
    params(("id" = String, Path, pattern = "^[^\\x00]*$", description = "the token's `tok_` id")),
    responses(
        (status = 204, description = "Revoked"),
        (status = 404, body = crate::api::NestedErrorBody, description = "`not_found`: no such token"),
        (status = 409, body = crate::api::NestedErrorBody, description = "`conflict`: the admin token making the request (revoke it with another one, or on the store)"),
        AdminErrors),
    security(("admin" = [])))]
pub async fn revoke_token(
    State(state): State<Arc<AppState>>,
    auth: AdminAuth,
    Path(id): Path<String>,
) -> Result<StatusCode, Failure> {
    // An operator revoking the token they are signed in with would lock themselves out
    // mid-session (the console's own token): that takes another admin token, or the CLI.
    if id == auth.token.id {
        return Err(Failure::from(ApiError::new(
            ErrorCode::Conflict,
            "this is the admin token making the request; revoke it with another admin token or `reflecto admin token revoke` on the store",
        )));
    }
    operator(&state, &auth).revoke_token(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/v1/admin/devices", tag = "admin", operation_id = "admin_list_devices",
    summary = "Every device, or one user's; never a credential or push target",
    params(("user" = Option<String>, Query, pattern = "^[^\\x00]*$", description = "only this user's devices")),
    responses(
        (status = 200, body = Vec<AdminDevice>, description = "The devices"),
        (status = 400, body = crate::api::NestedErrorBody, description = "`usage_error`: an unknown query parameter, or a NUL byte in one"),
        (status = 404, body = crate::api::NestedErrorBody, description = "`not_found`: no such user"),
        AdminErrors),
    security(("admin" = [])))]
pub async fn list_devices(
    State(state): State<Arc<AppState>>,
    auth: AdminAuth,
    RawQuery(raw): RawQuery,
) -> Result<Json<Vec<AdminDevice>>, Failure> {
    let q = query(raw, &["user"])?;
    let user = q.get("user").map(String::as_str);
    Ok(Json(operator(&state, &auth).list_devices(user).await?))
}

#[utoipa::path(delete, path = "/v1/admin/devices/{id}", tag = "admin", operation_id = "admin_remove_device",
    summary = "Remove a device; its undelivered jobs fail and its credential is refused",
    params(("id" = String, Path, pattern = "^[^\\x00]*$", description = "the device's `dev_` id")),
    responses(
        (status = 204, description = "Removed"),
        (status = 404, body = crate::api::NestedErrorBody, description = "`not_found`: no such device"),
        AdminErrors),
    security(("admin" = [])))]
pub async fn remove_device(
    State(state): State<Arc<AppState>>,
    auth: AdminAuth,
    Path(id): Path<String>,
) -> Result<StatusCode, Failure> {
    operator(&state, &auth).remove_device(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/v1/admin/pairings", tag = "admin", operation_id = "admin_create_pairing",
    summary = "A pairing code for a user, with the link that fills it in and its QR code",
    description = "`link` is `<public url>/app/#code=<code>` (`--public-url`, else this request's own origin); `qr_svg` is an SVG QR code of it. The code is single-use and valid 10 minutes.",
    request_body(content = NewPairingRequest, content_type = "application/json"),
    responses(
        (status = 200, body = Pairing, description = "The code"),
        (status = 400, body = crate::api::NestedErrorBody, description = "`invalid_body`"),
        (status = 404, body = crate::api::NestedErrorBody, description = "`not_found`: no such user"),
        (status = 413, body = crate::api::NestedErrorBody, description = "`payload_too_large`: the raw body exceeds 64 KiB"),
        AdminErrors),
    security(("admin" = [])))]
pub async fn pair(
    State(state): State<Arc<AppState>>,
    auth: AdminAuth,
    headers: HeaderMap,
    CappedJson(req): CappedJson<NewPairingRequest>,
) -> Result<Json<Pairing>, Failure> {
    let (code, expires_at) = operator(&state, &auth).pair(&req.user).await?;
    let base = pairing::public_url(&state, &headers);
    Ok(Json(create_pairing(&base, code, expires_at)))
}

#[utoipa::path(get, path = "/v1/admin/messages", tag = "admin", operation_id = "admin_messages",
    summary = "Messages, newest first, with each device's delivery state; never their text",
    params(
        ("user" = Option<String>, Query, pattern = "^[^\\x00]*$", description = "only this user's messages"),
        ("state" = Option<String>, Query, pattern = "^(queued|leased|pending|delivered|failed|expired|superseded|cancelled)$", description = "only messages with a delivery in this state"),
        ("before" = Option<String>, Query, pattern = "^[^\\x00]*$", description = "the id of the last message of the previous page"),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 100, description = "1–100, default 50")),
    responses(
        (status = 200, body = MessagePage, description = "A page of messages"),
        (status = 400, body = crate::api::NestedErrorBody, description = "`usage_error`: an unknown parameter, state or limit, or a NUL byte in one"),
        (status = 404, body = crate::api::NestedErrorBody, description = "`not_found`: no such user"),
        AdminErrors),
    security(("admin" = [])))]
pub async fn messages(
    State(state): State<Arc<AppState>>,
    _auth: AdminAuth,
    RawQuery(raw): RawQuery,
) -> Result<Json<MessagePage>, Failure> {
    let q = query(raw, &["user", "state", "before", "limit"])?;
    let limit = limit(&q)?;
    let job_state = q
        .get("state")
        .map(|s| {
            JobState::parse(s).ok_or_else(|| {
                usage("state must be one of queued, leased, pending, delivered, failed, expired, superseded, cancelled")
            })
        })
        .transpose()?;
    if let Some(user) = q.get("user") {
        state
            .store
            .user_by_name(user)
            .await
            .map_err(OpError::from)?;
    }
    let records = state
        .store
        .admin_messages(MessageQuery {
            user: q.get("user").cloned(),
            state: job_state,
            before: q.get("before").cloned(),
            limit,
        })
        .await?;
    Ok(Json(MessagePage {
        items: records.iter().map(views::message).collect(),
    }))
}

#[utoipa::path(get, path = "/v1/admin/audit", tag = "admin", operation_id = "admin_audit",
    summary = "The audit log, newest first",
    params(
        ("before" = Option<i64>, Query, description = "the id of the last entry of the previous page"),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 100, description = "1–100, default 50")),
    responses(
        (status = 200, body = AuditPage, description = "A page of entries"),
        (status = 400, body = crate::api::NestedErrorBody, description = "`usage_error`: an unknown parameter, before or limit"),
        AdminErrors),
    security(("admin" = [])))]
pub async fn audit(
    State(state): State<Arc<AppState>>,
    auth: AdminAuth,
    RawQuery(raw): RawQuery,
) -> Result<Json<AuditPage>, Failure> {
    let q = query(raw, &["before", "limit"])?;
    let limit = limit(&q)?;
    let before = q
        .get("before")
        .map(|b| {
            b.parse::<i64>()
                .map_err(|_| usage("before must be an audit entry's id (a whole number)"))
        })
        .transpose()?;
    let items = operator(&state, &auth).audit_page(before, limit).await?;
    Ok(Json(AuditPage { items }))
}
