//! Who is sending: the bearer token (header, or the capability-URL path), checked for format
//! before the store is asked, and never logged.

use super::AppState;
use super::error::Failure;
use crate::api::ErrorCode;
use crate::api::token::is_token_format;
use crate::store::{Sender, TokenRecord};
use axum::http::HeaderMap;

/// The token presented: the `Authorization` header wins over a path token.
pub fn presented<'a>(
    headers: &'a HeaderMap,
    path_token: Option<&'a str>,
) -> Result<&'a str, Failure> {
    match headers.get("authorization") {
        Some(value) => {
            let value = value.to_str().map_err(|_| invalid())?;
            let (scheme, token) = value.trim().split_once(' ').ok_or_else(invalid)?;
            if !scheme.eq_ignore_ascii_case("bearer") {
                return Err(invalid());
            }
            Ok(token.trim())
        }
        None => path_token.ok_or_else(missing),
    }
}

pub fn missing() -> Failure {
    Failure::new(
        ErrorCode::MissingToken,
        "Authorization: Bearer rfk_live_… required",
    )
}

pub fn invalid() -> Failure {
    Failure::new(
        ErrorCode::InvalidToken,
        "token is malformed, unknown or revoked",
    )
}

/// The live token for `candidate` with its owner's reachable devices (what a send needs), or
/// 401 `invalid_token`.
pub async fn authenticate_sender(state: &AppState, candidate: &str) -> Result<Sender, Failure> {
    if !is_token_format(candidate) {
        return Err(invalid());
    }
    state
        .store
        .authenticate_sender(candidate)
        .await?
        .ok_or_else(invalid)
}

/// A live token record for `candidate`, or 401 `invalid_token`.
pub async fn authenticate(state: &AppState, candidate: &str) -> Result<TokenRecord, Failure> {
    if !is_token_format(candidate) {
        return Err(invalid());
    }
    state
        .store
        .authenticate_token(candidate)
        .await?
        .ok_or_else(invalid)
}
