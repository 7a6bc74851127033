//! Pushover receipts (SPEC §1.17): `GET /1/receipts/{receipt}.json?token=…` shows where an
//! emergency message stands, `POST /1/receipts/{receipt}/cancel.json` stops its repeats. Any
//! token of the message's owner may do both; answers are in Pushover's shape.

use super::AppState;
use super::error::Failure;
use super::extract::{ChargedIp, MessageBody, Presented, authenticate_sender, invalid};
use super::openapi::responses::{
    Refusal, SHIM_INTERNAL_ERROR, SHIM_INVALID_BODY, SHIM_RATE_LIMITED, SHIM_UNAUTHENTICATED,
    documented,
};
use crate::api::{ErrorCode, ShimResponse};
use crate::store::Sender;
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;
use utoipa::IntoResponses;
use utoipa::openapi::{RefOr, Response as Documented};

/// The receipt's state, exactly Pushover's fields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ReceiptResponse {
    /// Always 1
    pub status: u8,
    /// 1 once someone acknowledged it
    pub acknowledged: u8,
    /// Unix seconds, 0 until acknowledged
    pub acknowledged_at: i64,
    /// The reflecto user name of the owner, "" until acknowledged
    pub acknowledged_by: String,
    /// The label of the device that acknowledged, "" until acknowledged
    pub acknowledged_by_device: String,
    /// Unix seconds of the last delivery (first or repeat), 0 before any
    pub last_delivered_at: i64,
    /// 1 once `expire` has passed
    pub expired: u8,
    /// Unix seconds when the repeats stop
    pub expires_at: i64,
    /// 1 once a callback (of either type) was delivered
    pub called_back: u8,
    /// Unix seconds of that delivery, 0 before
    pub called_back_at: i64,
    /// The message id
    pub request: String,
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TokenQuery {
    /// The sending token or any token of the message's owner
    token: Option<String>,
}

/// The sender whose token the request carries: Pushover clients put it in the query, or in a
/// form body (`pushover-complete` does so even on a GET); else the bearer header.
async fn sender_of(
    state: &AppState,
    query: Result<Query<TokenQuery>, axum::extract::rejection::QueryRejection>,
    body: MessageBody,
    header_token: Result<Presented, Failure>,
) -> Result<Sender, Failure> {
    let token = match query.map_err(|_| invalid())?.0.token {
        Some(token) => token,
        None => match body.fields(&["token"]).await?.remove("token") {
            Some(Value::String(token)) => token,
            Some(_) => return Err(invalid()),
            None => header_token?.0,
        },
    };
    authenticate_sender(state, &token).await
}

/// What both receipt routes refuse, in Pushover's shape.
struct ReceiptErrors;

impl IntoResponses for ReceiptErrors {
    fn responses() -> BTreeMap<String, RefOr<Documented>> {
        documented(&[
            SHIM_INVALID_BODY,
            SHIM_UNAUTHENTICATED,
            Refusal::shim(404, "`not_found`"),
            Refusal::shim(413, "`payload_too_large` (a body over 64 KiB)"),
            SHIM_RATE_LIMITED,
            SHIM_INTERNAL_ERROR,
        ])
    }
}

fn unix(ms: i64) -> i64 {
    ms.div_euclid(1000)
}

fn not_found() -> Failure {
    Failure::new(
        ErrorCode::NotFound,
        "no such receipt for this token's owner",
    )
}

#[utoipa::path(get, path = "/1/receipts/{receipt}", tag = "pushover", operation_id = "receipt",
    summary = "Where a Pushover emergency message stands",
    description = "`GET /1/receipts/<receipt>.json?token=…` (the token may also be a form field or the bearer header).",
    params(("receipt" = String, Path, description = "The `receipt` of a priority-2 send, then `.json`", pattern = "^[A-Za-z0-9]{30}\\.json$"), TokenQuery),
    responses(
        (status = 200, description = "The receipt", body = ReceiptResponse),
        ReceiptErrors),
    security((), ("bearer" = [])))]
pub async fn receipt(
    State(state): State<Arc<AppState>>,
    ip: Result<ChargedIp, Failure>,
    header_token: Result<Presented, Failure>,
    Path(file): Path<String>,
    query: Result<Query<TokenQuery>, axum::extract::rejection::QueryRejection>,
    body: MessageBody,
) -> Response {
    let answer = async {
        let ip = ip?;
        let sender = sender_of(&state, query, body, header_token).await?;
        let receipt = file
            .strip_suffix(".json")
            .filter(|r| is_receipt(r))
            .ok_or_else(not_found)?;
        let found = state
            .store
            .receipt(receipt)
            .await?
            .filter(|r| r.user_id == sender.token.user_id)
            .ok_or_else(not_found)?;
        let now = ip.now;
        Ok::<_, Failure>(ReceiptResponse {
            status: 1,
            acknowledged: u8::from(found.acknowledged_at.is_some()),
            acknowledged_at: found.acknowledged_at.map_or(0, unix),
            acknowledged_by: found
                .acknowledged_at
                .map_or_else(String::new, |_| found.user.clone()),
            acknowledged_by_device: found
                .acknowledged_at
                .and(found.acknowledged_by_device.clone())
                .unwrap_or_default(),
            last_delivered_at: found.last_delivered_at.map_or(0, unix),
            expired: u8::from(found.expires_at <= now),
            expires_at: unix(found.expires_at),
            called_back: u8::from(found.called_back_at.is_some()),
            called_back_at: found.called_back_at.map_or(0, unix),
            request: found.message_id,
        })
    };
    match answer.await {
        Ok(body) => Json(body).into_response(),
        Err(failure) => failure.into_shim_response(),
    }
}

#[utoipa::path(post, path = "/1/receipts/{receipt}/cancel.json", tag = "pushover", operation_id = "cancel_receipt",
    summary = "Stop the repeats of a Pushover emergency message",
    description = "The token is the `token` query parameter, else the body's `token` field, else the bearer header.",
    params(("receipt" = String, Path, description = "The `receipt` of a priority-2 send", pattern = "^[A-Za-z0-9]{30}$"), TokenQuery),
    request_body(description = "`token` (JSON, urlencoded or multipart)", content(
        (super::openapi_schemas::ReceiptCancel = "application/json"),
        (super::openapi_schemas::ReceiptCancel = "application/x-www-form-urlencoded"))),
    responses(
        (status = 200, description = "`{\"status\":1}`", body = crate::api::ShimResponse),
        ReceiptErrors),
    security((), ("bearer" = [])))]
pub async fn cancel(
    State(state): State<Arc<AppState>>,
    ip: Result<ChargedIp, Failure>,
    header_token: Result<Presented, Failure>,
    Path(receipt): Path<String>,
    query: Result<Query<TokenQuery>, axum::extract::rejection::QueryRejection>,
    body: MessageBody,
) -> Response {
    let answer = async {
        let ip = ip?;
        let sender = sender_of(&state, query, body, header_token).await?;
        if !is_receipt(&receipt) {
            return Err(not_found());
        }
        if !state
            .store
            .cancel_receipt(&receipt, sender.token.user_id, ip.now)
            .await?
        {
            return Err(not_found());
        }
        Ok(())
    };
    match answer.await {
        Ok(()) => Json(ShimResponse {
            status: 1,
            request: None,
            errors: None,
            receipt: None,
        })
        .into_response(),
        Err(failure) => failure.into_shim_response(),
    }
}

/// A receipt as the relay issues them (30 ASCII letters and digits): anything else names no
/// message, and never reaches the store (a NUL byte is not text PostgreSQL takes).
fn is_receipt(text: &str) -> bool {
    text.len() == 30 && text.bytes().all(|b| b.is_ascii_alphanumeric())
}
