//! `AdminAuth`: an admin token (`rfa_live_…`, SPEC §1.19) for `/v1/admin/*`. A live sender
//! token here is 403 `forbidden` (the reverse of `/v1/send`, which refuses an admin token the
//! same way); no, malformed, unknown or revoked tokens are the flat 401s. Its first use from
//! an address is audited (`admin.new_ip`).

use super::credential::{Presented, invalid};
use super::ip::ClientIp;
use crate::api::ErrorCode;
use crate::api::token::{is_admin_token_format, is_token_format};
use crate::server::AppState;
use crate::server::error::Failure;
use crate::store::AdminTokenRecord;
use crate::store::admin::Actor;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use std::net::IpAddr;
use std::sync::Arc;

/// A live admin token, where it was presented from, and when.
pub struct AdminAuth {
    pub token: AdminTokenRecord,
    pub ip: IpAddr,
    pub now: i64,
}

impl AdminAuth {
    /// Who the audit log names for what this request changes.
    pub fn actor(&self) -> Actor {
        Actor::Admin {
            label: self.token.label.clone(),
            ip: self.ip.to_string(),
        }
    }
}

/// 403 `forbidden`: a token of the wrong kind for the endpoint.
pub fn forbidden(message: &str) -> Failure {
    Failure::new(ErrorCode::Forbidden, message)
}

fn missing() -> Failure {
    Failure::new(
        ErrorCode::MissingToken,
        "Authorization: Bearer rfa_live_… required",
    )
}

impl FromRequestParts<Arc<AppState>> for AdminAuth {
    type Rejection = Failure;

    async fn from_request_parts(parts: &mut Parts, state: &Arc<AppState>) -> Result<Self, Failure> {
        let now = state.clock.now_ms();
        let ClientIp(ip) = ClientIp::from_request_parts(parts, state).await?;
        let Presented(candidate) =
            Presented::from_request_parts(parts, state)
                .await
                .map_err(|f| {
                    if f.error.code == ErrorCode::MissingToken {
                        missing()
                    } else {
                        f
                    }
                })?;
        if is_token_format(&candidate) {
            // Only a token that is live is told it is the wrong kind: an unknown one learns
            // nothing more than any other stranger.
            return Err(match state.store.authenticate_token(&candidate).await? {
                Some(_) => forbidden(
                    "a sender token cannot use the operator API; use an admin (rfa_live_) token",
                ),
                None => invalid(),
            });
        }
        if !is_admin_token_format(&candidate) {
            return Err(invalid());
        }
        let token = state
            .store
            .authenticate_admin(&candidate)
            .await?
            .ok_or_else(invalid)?;
        let auth = AdminAuth { token, ip, now };
        // Written at most once a minute per token and address (a write per request cost
        // PostgreSQL a commit each); a first use from an address always passes, so it is
        // always audited.
        let used_from = format!("admin:{}:{ip}", auth.token.id);
        if state.should_touch(&used_from, now)
            && state
                .store
                .note_admin_use(&auth.token.id, &ip.to_string(), now)
                .await?
        {
            state
                .store
                .audit(&auth.actor(), "admin.new_ip", &auth.token.id, now)
                .await?;
        }
        Ok(auth)
    }
}
