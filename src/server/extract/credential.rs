//! Who is asking: the presented bearer token (the `Authorization` header, or the
//! capability-URL path token of `/v1/send/{token}`; the header wins), checked for format
//! before the store is asked, and the token, sender or device it names. Never logged.

use crate::api::DeviceType;
use crate::api::ErrorCode;
use crate::api::token::{is_admin_token_format, is_device_credential_format, is_token_format};
use crate::server::AppState;
use crate::server::error::Failure;
use crate::store::{DeviceRecord, Sender, TokenRecord};
use axum::extract::{FromRequestParts, RawPathParams};
use axum::http::request::Parts;
use std::sync::Arc;

/// The presented token, not yet looked up.
#[derive(Debug, PartialEq, Eq)]
pub struct Presented(pub String);

/// A live sender token with its owner's reachable devices: what a send needs (401 otherwise).
pub struct SenderAuth(pub Sender);

/// A live token record (401 otherwise).
pub struct TokenAuth(pub TokenRecord);

/// A live extension device, by its `rfd_live_` stream credential (401 otherwise).
pub struct DeviceAuth(pub DeviceRecord);

/// A paired device of any type, by its `rfd_live_` credential (401 otherwise): who
/// acknowledges a message (SPEC §1.16).
pub struct PairedDevice(pub DeviceRecord);

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

impl<S: Send + Sync> FromRequestParts<S> for Presented {
    type Rejection = Failure;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Failure> {
        match parts.headers.get("authorization") {
            Some(value) => {
                let value = value.to_str().map_err(|_| invalid())?;
                let (scheme, token) = value.trim().split_once(' ').ok_or_else(invalid)?;
                if !scheme.eq_ignore_ascii_case("bearer") {
                    return Err(invalid());
                }
                Ok(Presented(token.trim().to_owned()))
            }
            // Only `/v1/send/{token}` has a `token` capture; a path that does not decode was
            // refused by the handler's `Path` before anything was charged.
            None => RawPathParams::from_request_parts(parts, state)
                .await
                .ok()
                .and_then(|params| {
                    params
                        .iter()
                        .find(|(name, _)| *name == "token")
                        .map(|(_, token)| Presented(token.to_owned()))
                })
                .ok_or_else(missing),
        }
    }
}

/// The live token for `candidate` with its owner's reachable devices, or 401 `invalid_token`.
/// The Pushover shim calls it directly: its token may come in the body.
pub async fn authenticate_sender(state: &AppState, candidate: &str) -> Result<Sender, Failure> {
    if !is_token_format(candidate) {
        return Err(admin_refused(state, candidate).await);
    }
    state
        .store
        .authenticate_sender(candidate)
        .await?
        .ok_or_else(invalid)
}

/// Why a candidate that is not a sender token is refused where one is needed: a live admin
/// token is 403 `forbidden` (SPEC §1.19); anything else, or a store failure while asking, is
/// the flat 401.
async fn admin_refused(state: &AppState, candidate: &str) -> Failure {
    if !is_admin_token_format(candidate) {
        return invalid();
    }
    match state.store.authenticate_admin(candidate).await {
        Ok(Some(_)) => super::admin::forbidden(
            "an admin token cannot send or act as a sender; use a sender (rfk_) token",
        ),
        Ok(None) => invalid(),
        Err(e) => Failure::from(e),
    }
}

impl FromRequestParts<Arc<AppState>> for SenderAuth {
    type Rejection = Failure;

    async fn from_request_parts(parts: &mut Parts, state: &Arc<AppState>) -> Result<Self, Failure> {
        let Presented(candidate) = Presented::from_request_parts(parts, state).await?;
        Ok(SenderAuth(authenticate_sender(state, &candidate).await?))
    }
}

impl FromRequestParts<Arc<AppState>> for TokenAuth {
    type Rejection = Failure;

    async fn from_request_parts(parts: &mut Parts, state: &Arc<AppState>) -> Result<Self, Failure> {
        let Presented(candidate) = Presented::from_request_parts(parts, state).await?;
        if !is_token_format(&candidate) {
            return Err(admin_refused(state, &candidate).await);
        }
        let token = state.store.authenticate_token(&candidate).await?;
        token.map(TokenAuth).ok_or_else(invalid)
    }
}

impl FromRequestParts<Arc<AppState>> for DeviceAuth {
    type Rejection = Failure;

    async fn from_request_parts(parts: &mut Parts, state: &Arc<AppState>) -> Result<Self, Failure> {
        let PairedDevice(device) = PairedDevice::from_request_parts(parts, state).await?;
        if device.device_type != DeviceType::Extension {
            return Err(invalid());
        }
        Ok(DeviceAuth(device))
    }
}

impl FromRequestParts<Arc<AppState>> for PairedDevice {
    type Rejection = Failure;

    async fn from_request_parts(parts: &mut Parts, state: &Arc<AppState>) -> Result<Self, Failure> {
        let Presented(credential) = Presented::from_request_parts(parts, state).await?;
        if !is_device_credential_format(&credential) {
            return Err(invalid());
        }
        match state.store.authenticate_device(&credential).await? {
            Some(device) => Ok(PairedDevice(device)),
            None => Err(invalid()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::extract::testing::{device, parts, relay_state, request, token};
    use crate::store::limits::Limits;
    use axum::Router;
    use axum::routing::post;
    use tower::ServiceExt;

    async fn presented(headers: &[(&str, &str)]) -> Result<Presented, ErrorCode> {
        Presented::from_request_parts(&mut parts("/v1/send", headers), &())
            .await
            .map_err(|f| f.error.code)
    }

    #[tokio::test]
    async fn the_bearer_header_is_read_and_anything_else_refused() {
        let got = presented(&[("authorization", "  BEARER  rfk_live_x ")]).await;
        assert_eq!(got, Ok(Presented("rfk_live_x".into())));
        assert_eq!(presented(&[]).await, Err(ErrorCode::MissingToken));
        for bad in ["Basic abc", "rfk_live_x", "Bearer"] {
            let got = presented(&[("authorization", bad)]).await;
            assert_eq!(got, Err(ErrorCode::InvalidToken), "{bad:?}");
        }
    }

    /// The path token through a real route, since axum fills the captures while routing.
    #[tokio::test]
    async fn the_header_wins_over_the_path_token() {
        async fn echo(Presented(token): Presented) -> String {
            token
        }
        let app = Router::new().route("/v1/send/{token}", post(echo));
        let ask = |headers: &'static [(&'static str, &'static str)]| {
            let mut req = request("/v1/send/rfk_live_path", headers, "");
            *req.method_mut() = axum::http::Method::POST;
            app.clone().oneshot(req)
        };
        let body = |r: axum::response::Response| async move {
            let bytes = axum::body::to_bytes(r.into_body(), 1024).await.unwrap();
            String::from_utf8(bytes.to_vec()).unwrap()
        };
        assert_eq!(body(ask(&[]).await.unwrap()).await, "rfk_live_path");
        let both = ask(&[("authorization", "Bearer rfk_live_header")])
            .await
            .unwrap();
        assert_eq!(body(both).await, "rfk_live_header");
    }

    #[tokio::test]
    async fn tokens_and_devices_are_looked_up_and_strangers_refused() {
        let (_dir, state) = relay_state(Limits::default(), false).await;
        let secret = token(&state).await;
        let credential = device(&state, DeviceType::Extension).await;
        let phone = device(&state, DeviceType::Android).await;
        // The parts of a request presenting `credential` as its bearer.
        let asking = |credential: &str| {
            let header = format!("Bearer {credential}");
            parts("/", &[("authorization", &header)])
        };

        let mut asked = asking(&secret);
        let TokenAuth(record) = TokenAuth::from_request_parts(&mut asked, &state)
            .await
            .unwrap();
        assert_eq!(record.label, "ci");
        let SenderAuth(sender) = SenderAuth::from_request_parts(&mut asked, &state)
            .await
            .unwrap();
        assert_eq!(
            sender.devices.len(),
            2,
            "the owner's reachable devices come along"
        );

        let mut asked = asking(&credential);
        let DeviceAuth(desk) = DeviceAuth::from_request_parts(&mut asked, &state)
            .await
            .unwrap();
        assert_eq!(desk.device_type, DeviceType::Extension);
        let PairedDevice(same) = PairedDevice::from_request_parts(&mut asked, &state)
            .await
            .unwrap();
        assert_eq!(same.id, desk.id);
        // A phone's credential acknowledges (SPEC §1.16) but reads no desktop stream.
        let mut asked = asking(&phone);
        let PairedDevice(pixel) = PairedDevice::from_request_parts(&mut asked, &state)
            .await
            .unwrap();
        assert_eq!(pixel.device_type, DeviceType::Android);
        let refused = DeviceAuth::from_request_parts(&mut asked, &state).await;
        assert_eq!(refused.err().unwrap().error.code, ErrorCode::InvalidToken);
        let mut asked = asking(&credential);
        // A device credential is no sender token, and a sender token no device credential.
        let refused = TokenAuth::from_request_parts(&mut asked, &state).await;
        assert_eq!(refused.err().unwrap().error.code, ErrorCode::InvalidToken);
        let mut asked = asking(&secret);
        let refused = DeviceAuth::from_request_parts(&mut asked, &state).await;
        assert_eq!(refused.err().unwrap().error.code, ErrorCode::InvalidToken);
        // Well-formed but unknown.
        let unknown = format!("rfk_live_{}", "0".repeat(secret.len() - 9));
        let mut asked = asking(&unknown);
        let refused = SenderAuth::from_request_parts(&mut asked, &state).await;
        assert_eq!(refused.err().unwrap().error.code, ErrorCode::InvalidToken);
        let mut asked = parts("/", &[]);
        let refused = SenderAuth::from_request_parts(&mut asked, &state).await;
        assert_eq!(refused.err().unwrap().error.code, ErrorCode::MissingToken);
    }
}
