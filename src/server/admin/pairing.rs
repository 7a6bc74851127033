//! A pairing's link and QR code (SPEC §1.19, §2.4): `<public url>/app/#code=<code>`, where
//! the public URL is `--public-url` when the relay has one, else the request's own origin.

use crate::api::admin::Pairing;
use crate::server::AppState;
use crate::server::messages::rfc3339;
use axum::http::HeaderMap;

/// Where people reach this relay: the configured public URL, else the origin this request
/// was addressed to (`Host`; `X-Forwarded-Proto` only behind a trusted proxy).
pub fn public_url(state: &AppState, headers: &HeaderMap) -> String {
    if let Some(url) = &state.public_url {
        return url.trim_end_matches('/').to_owned();
    }
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let host = header("host").unwrap_or("localhost");
    let scheme = match header("x-forwarded-proto") {
        Some(p) if state.trust_proxy && (p == "https" || p == "http") => p,
        _ => "http",
    };
    format!("{scheme}://{host}")
}

/// The pairing as the API answers it, with the link rendered as an SVG QR code.
pub fn create_pairing(base: &str, code: String, expires_at: i64) -> Pairing {
    let link = format!("{base}/app/#code={code}");
    Pairing {
        qr_svg: qr_svg(&link),
        code,
        expires_at: rfc3339(expires_at),
        link,
    }
}

/// An SVG QR code of `text` (src/qr.rs: error correction M, the standard's quiet zone).
pub fn qr_svg(text: &str) -> String {
    crate::qr::pairing_qr_svg(text)
}
