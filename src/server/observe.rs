//! Per-request bookkeeping: the `X-Request-Id` header, the request metric, and one structured
//! log line with the path token redacted: request id, route, status, client IP, and what the
//! handler noted ([`LogNote`]: for a send the message id, token id and number of devices; for a
//! refusal its code and the 429 layer). Never a secret or message text (SPEC §2.5).

use super::AppState;
use super::extract::client_ip;
use crate::api::token::random_id;
use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

/// Echo the caller's id when it is sane (1–128 of `[A-Za-z0-9._:-]`), else make one.
fn request_id(req: &Request) -> HeaderValue {
    req.headers()
        .get("x-request-id")
        .filter(|v| {
            let b = v.as_bytes();
            (1..=128).contains(&b.len())
                && b.iter()
                    .all(|c| c.is_ascii_alphanumeric() || b"._:-".contains(c))
        })
        .cloned()
        .unwrap_or_else(|| {
            HeaderValue::from_str(&random_id("req_", 24)).expect("hex is a valid header")
        })
}

/// What a handler adds to its request's log line, carried in the response's extensions.
#[derive(Debug, Clone, Default)]
pub struct LogNote {
    pub message_id: Option<String>,
    pub token_id: Option<String>,
    pub devices: Option<usize>,
    /// The error code of a refusal, and for a 429 the layer.
    pub code: Option<&'static str>,
    pub layer: Option<&'static str>,
}

impl LogNote {
    /// Puts the note on `response` for [`observe`] to log.
    pub fn attach(self, mut response: Response) -> Response {
        response.extensions_mut().insert(self);
        response
    }
}

/// `/v1/send/rfk_live_abc…` → `/v1/send/rfk_live_****`, and a hook's
/// `/v1/hooks/{source}/{token}` likewise: tokens never reach a log.
pub fn redact_path(path: &str) -> String {
    let masked = |route: &str, token: &str| {
        let prefix = ["rfk_live_", "rfk_test_"]
            .into_iter()
            .find(|p| token.starts_with(p))
            .unwrap_or("");
        format!("{route}{prefix}****")
    };
    if let Some(token) = path.strip_prefix("/v1/send/") {
        return masked("/v1/send/", token);
    }
    if let Some(rest) = path.strip_prefix("/v1/hooks/")
        && let Some((source, token)) = rest.split_once('/')
    {
        return masked(&format!("/v1/hooks/{source}/"), token);
    }
    path.to_owned()
}

pub async fn observe(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let id = request_id(&req);
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", |m| m.as_str())
        .to_owned();
    let method = req.method().clone();
    let path = redact_path(req.uri().path());
    let client_ip = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(peer)| client_ip(state.trust_proxy, *peer, req.headers()));
    let started = Instant::now();
    let mut response = next.run(req).await;
    let status = response.status().as_u16();
    state.metrics.request(&route, status);
    let note = response
        .extensions_mut()
        .remove::<LogNote>()
        .unwrap_or_default();
    tracing::info!(
        request_id = id.to_str().unwrap_or(""),
        %method,
        route = %route,
        path = %path,
        status,
        client_ip = client_ip.map(tracing::field::display),
        message_id = note.message_id.as_deref(),
        token_id = note.token_id.as_deref(),
        devices = note.devices,
        code = note.code,
        layer = note.layer,
        latency_us = started.elapsed().as_micros() as u64,
        "request"
    );
    response.headers_mut().insert("x-request-id", id);
    response
}

#[cfg(test)]
mod tests {
    use super::redact_path;

    #[test]
    fn path_tokens_are_redacted() {
        assert_eq!(
            redact_path("/v1/send/rfk_live_ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"),
            "/v1/send/rfk_live_****"
        );
        assert_eq!(redact_path("/v1/send/rfk_test_x"), "/v1/send/rfk_test_****");
        assert_eq!(redact_path("/v1/send/garbage"), "/v1/send/****");
        assert_eq!(redact_path("/v1/send"), "/v1/send");
        assert_eq!(
            redact_path("/v1/hooks/github/rfk_live_ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"),
            "/v1/hooks/github/rfk_live_****"
        );
        assert_eq!(redact_path("/v1/hooks/x/secret/more"), "/v1/hooks/x/****");
        assert_eq!(redact_path("/v1/hooks/github"), "/v1/hooks/github");
    }
}
