//! `AdminAuth`: an admin token (`rfa_live_…`, SPEC §1.19) for `/v1/admin/*`. A live sender
//! token here is 403 `forbidden` (the reverse of `/v1/send`, which refuses an admin token the
//! same way); no, malformed, unknown or revoked tokens are the flat 401s. Its first use from
//! an address is audited (`admin.new_ip`). The per-IP layers come first (SPEC §1.7 step 1).

use super::credential::{Presented, invalid};
use super::ip::{IpChecked, ip_layers};
use crate::api::ErrorCode;
use crate::api::token::{is_admin_token_format, is_token_format};
use crate::server::AppState;
use crate::server::error::Failure;
use crate::store::AdminTokenRecord;
use crate::store::admin::Actor;
use axum::extract::FromRequestParts;
use axum::http::Method;
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

    /// SPEC §1.7 step 1 first: a change (`POST`, `DELETE`) is charged to its address up
    /// front; a read is checked, and charged only when it is refused, as SPEC §1.8's
    /// authenticated reads are, so a console reloading its pages never exhausts the per-IP
    /// layers while a client guessing tokens does.
    async fn from_request_parts(parts: &mut Parts, state: &Arc<AppState>) -> Result<Self, Failure> {
        let change = !matches!(parts.method, Method::GET | Method::HEAD);
        let (ip, statuses, now) = ip_layers(parts, state, change).await?;
        let answer = authenticate(parts, state, ip, now).await;
        if change {
            return answer;
        }
        IpChecked { ip, statuses, now }.settle(state, answer).await
    }
}

/// The live admin token presented, its first use from `ip` audited.
async fn authenticate(
    parts: &mut Parts,
    state: &Arc<AppState>,
    ip: IpAddr,
    now: i64,
) -> Result<AdminAuth, Failure> {
    let Presented(candidate) = Presented::from_request_parts(parts, state)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::extract::testing::{ip_minute, parts};

    /// SPEC §1.7 step 1 on the operator API: reads with a live admin token are checked and
    /// never charged; a change is charged; a refused read is charged; a 429 when none is left.
    #[tokio::test]
    async fn admin_reads_are_checked_and_changes_and_refusals_charged_per_ip() {
        let (_dir, state) = ip_minute(3).await;
        let (_, secret) = state.store.create_admin_token("ops", 0).await.unwrap();
        let live = format!("Bearer {}", secret.expose());
        let unknown = format!("Bearer rfa_live_{}", "x".repeat(32));
        let admin = |method: Method, bearer: &str| {
            let mut parts = parts("/v1/admin/users", &[("authorization", bearer)]);
            parts.method = method;
            let state = state.clone();
            async move { AdminAuth::from_request_parts(&mut parts, &state).await }
        };
        for _ in 0..10 {
            admin(Method::GET, &live)
                .await
                .expect("a read is never charged");
        }
        admin(Method::POST, &live)
            .await
            .expect("a change is charged");
        for method in [Method::GET, Method::DELETE] {
            let refused = admin(method, &unknown).await.err().unwrap();
            assert_eq!(refused.error.code, ErrorCode::InvalidToken);
        }
        let limited = admin(Method::GET, &live).await.err().unwrap();
        assert_eq!(limited.error.code, ErrorCode::RateLimitExceeded);
        assert_eq!(limited.error.details.unwrap()["resource"], "ip_minute");
    }
}
