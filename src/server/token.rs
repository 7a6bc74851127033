//! `GET /v1/token`: who the presented token is and how much quota it has left, so `reflecto
//! login` can refuse a token the relay does not know before storing it. A live token costs
//! nothing (checking a token must not cost a send, nor a request of the per-IP layers); an
//! unknown one is charged to the per-IP layers, as every refused read is (SPEC §1.8).

use super::AppState;
use super::error::{Failure, write_rate_headers};
use super::extract::{IpChecked, TokenAuth};
use super::limits::binding;
use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

use crate::api::TokenInfo;

#[utoipa::path(get, path = "/v1/token", tag = "tokens",
    summary = "Describe the presented token",
    description = "The token's id, label, owner and scope, with the X-RateLimit-* headers of its binding layer. A live token charges no quota (the per-IP limits are checked, not charged); a 401 is charged to the per-IP limits.",
    operation_id = "get_token",
    responses(
        (status = 200, body = TokenInfo, description = "the token is live",
            headers(("X-RateLimit-Limit" = u64), ("X-RateLimit-Remaining" = u64), ("X-RateLimit-Reset" = i64), ("X-RateLimit-Resource" = String))),
        (status = 401, body = crate::api::FlatErrorBody, description = "missing, malformed, unknown or revoked token"),
        (status = 403, body = crate::api::NestedErrorBody, description = "`forbidden`: an admin token, which cannot act as a sender (SPEC §1.19)"),
        (status = 429, body = crate::api::NestedErrorBody, description = "a per-IP limit is exhausted"),
        (status = 500, body = crate::api::NestedErrorBody, description = "the relay failed")),
    security(("bearer" = [])))]
pub async fn token_info(
    State(state): State<Arc<AppState>>,
    ip: IpChecked,
    auth: Result<TokenAuth, Failure>,
) -> Result<Response, Failure> {
    let answer = describe(&state, &ip, auth).await;
    ip.settle(&state, answer).await
}

/// The token's description with its binding layer; the per-IP layers were checked already.
async fn describe(
    state: &AppState,
    ip: &IpChecked,
    auth: Result<TokenAuth, Failure>,
) -> Result<Response, Failure> {
    let TokenAuth(token) = auth?;
    let statuses = state
        .store
        .limit_statuses(ip.ip, &token.id, token.user_id, ip.now)
        .await?;
    let info = TokenInfo {
        id: token.id,
        label: token.label,
        user: token.user,
        priority_cap: token.priority_cap,
        scope_devices: token.scope_devices,
        test: token.test,
    };
    let mut out = HeaderMap::new();
    if let Some(status) = binding(&statuses) {
        write_rate_headers(&mut out, &status);
    }
    Ok((out, Json(info)).into_response())
}
