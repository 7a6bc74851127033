//! Operational endpoints (SPEC §1.11): health, metrics, the RFC 9727 API catalog (the
//! document itself is served by `openapi.rs`), and the JSON answers for unknown routes and methods.

use super::AppState;
use super::error::Failure;
use crate::api::ErrorCode;
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use std::sync::Arc;

#[utoipa::path(get, path = "/health/live", tag = "operations", operation_id = "health_live",
    summary = "Liveness: the process is up",
    responses((status = 200, description = "The process is up", body = super::openapi_schemas::Liveness)),
    security(()))]
pub async fn live() -> Json<serde_json::Value> {
    Json(json!({"status": "ok"}))
}

#[utoipa::path(get, path = "/health/ready", tag = "operations", operation_id = "health_ready",
    summary = "Readiness: the store is reachable",
    description = "A relay without FCM credentials is ready (`fcm` is `disabled`); it holds android jobs.",
    responses(
        (status = 200, description = "Ready", body = super::openapi_schemas::Readiness),
        (status = 503, description = "The store is unreachable or its writes fail", body = super::openapi_schemas::Readiness)),
    security(()))]
pub async fn ready(State(state): State<Arc<AppState>>) -> Response {
    let fcm = state.fcm_health().as_str();
    // A read alone would say ready on a full disk: the probe writes, through the same group
    // commit as sends, so it also clears the failing state once writes succeed again.
    match state.store.probe_write(state.clock.now_ms()).await {
        Ok(()) => Json(json!({"status": "ready", "store": "ok", "fcm": fcm})).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "readiness: store writes failing");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({"status": "unavailable", "store": "failing", "fcm": fcm})),
            )
                .into_response()
        }
    }
}

#[utoipa::path(get, path = "/metrics", tag = "operations", operation_id = "metrics",
    summary = "Prometheus metrics",
    responses((status = 200, description = "Prometheus text exposition format 0.0.4", content_type = "text/plain", body = String)),
    security(()))]
pub async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    let depth = state.store.queue_depth().await.unwrap_or(-1);
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(depth, state.store.checkpoints()),
    )
        .into_response()
}

/// RFC 9727: a linkset pointing at the OpenAPI document.
#[utoipa::path(get, path = "/.well-known/api-catalog", tag = "operations", operation_id = "api_catalog",
    summary = "RFC 9727 API catalog",
    description = "A linkset whose `service-desc` points at `/openapi.json` and `status` at `/health/ready`, on the `Host` the request named.",
    responses((status = 200, description = "The linkset", content_type = "application/linkset+json", body = Object)),
    security(()))]
pub async fn api_catalog(headers: HeaderMap) -> Response {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    let base = format!("http://{host}");
    let body = json!({"linkset": [{
        "anchor": format!("{base}/v1"),
        "service-desc": [{"href": format!("{base}/openapi.json"), "type": "application/vnd.oai.openapi+json;version=3.1"}],
        "status": [{"href": format!("{base}/health/ready"), "type": "application/json"}]
    }]});
    (
        [(header::CONTENT_TYPE, "application/linkset+json")],
        body.to_string(),
    )
        .into_response()
}

pub async fn not_found() -> Failure {
    Failure::new(ErrorCode::NotFound, "no such route; see /openapi.json")
}

pub async fn method_not_allowed() -> Response {
    let mut response = Failure::new(
        ErrorCode::NotFound,
        "method not allowed on this route; see /openapi.json",
    )
    .into_response();
    *response.status_mut() = StatusCode::METHOD_NOT_ALLOWED;
    response
}
