//! `GET /v1/token`: who the presented token is and how much quota it has left, so `reflecto
//! login` can refuse a token the relay does not know before storing it. It charges nothing:
//! checking a token must not cost a send.

use super::error::{Failure, write_rate_headers};
use super::limits::binding;
use super::{AppState, auth, client_ip};
use axum::Json;
use axum::extract::{ConnectInfo, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use std::net::SocketAddr;
use std::sync::Arc;

use crate::api::TokenInfo;

#[utoipa::path(get, path = "/v1/token", tag = "tokens",
    summary = "Describe the presented token",
    description = "The token's id, label, owner and scope, with the X-RateLimit-* headers of its binding layer. Charges no quota.",
    operation_id = "get_token",
    responses(
        (status = 200, body = TokenInfo, description = "the token is live",
            headers(("X-RateLimit-Limit" = u64), ("X-RateLimit-Remaining" = u64), ("X-RateLimit-Reset" = i64), ("X-RateLimit-Resource" = String))),
        (status = 401, body = crate::api::FlatErrorBody, description = "missing, malformed, unknown or revoked token"),
        (status = 429, body = crate::api::NestedErrorBody, description = "a per-IP limit is exhausted"),
        (status = 500, body = crate::api::NestedErrorBody, description = "the relay failed")),
    security(("bearer" = [])))]
pub async fn token_info(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Response {
    handle(&state, peer, &headers)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

async fn handle(
    state: &AppState,
    peer: SocketAddr,
    headers: &HeaderMap,
) -> Result<Response, Failure> {
    let now = state.clock.now_ms();
    let ip = client_ip(state, peer, headers);
    let token = auth::authenticate(state, auth::presented(headers, None)?).await?;
    let statuses = state
        .store
        .limit_statuses(ip, &token.id, token.user_id, now)
        .await?;
    // An exhausted per-IP layer refuses here as it would on a send; token layers only report.
    if let Some(full) = statuses
        .iter()
        .find(|s| s.remaining == 0 && s.layer.is_per_ip())
    {
        return Err(Failure::rate_limited(*full, now));
    }
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
