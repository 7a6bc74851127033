//! The client's address (SPEC §1.8): the peer, or with `--trust-proxy` the last
//! `X-Forwarded-For` entry; and the per-IP layers of SPEC §1.7 step 1 checked and charged, or
//! for an authenticated read checked and charged only when the answer is a failure.

use crate::server::AppState;
use crate::server::error::Failure;
use crate::store::limits::LayerStatus;
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::HeaderMap;
use axum::http::request::Parts;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

/// The client IP, neither checked nor charged (a handler that checks the per-IP layers itself
/// after authenticating, as `GET /v1/token` does).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientIp(pub IpAddr);

/// The client's per-IP layers, charged (429 when one is exhausted): their statuses for the
/// response headers and the moment they were charged at, which the rest of the request goes by.
#[derive(Debug)]
pub struct ChargedIp {
    pub statuses: Vec<LayerStatus>,
    pub now: i64,
}

/// An authenticated read's per-IP layers (SPEC §1.8): checked (429 when one is exhausted),
/// charged only when [`IpChecked::settle`] sees a refusal, so a client that reads what it may
/// read (a `status --wait`) never exhausts them while one probing for ids or tokens does.
/// The handler takes its authentication as `Result<_, Failure>` so that a 401 is settled too.
#[derive(Debug)]
pub struct IpChecked {
    pub ip: IpAddr,
    pub statuses: Vec<LayerStatus>,
    pub now: i64,
}

impl IpChecked {
    /// The handler's answer, after charging the per-IP layers if it is a client error (a
    /// 401 or 404). A store fault is not the client's doing and charges nothing; a charge that
    /// fails or finds the window already full changes nothing about the answer.
    pub async fn settle<T>(
        &self,
        state: &AppState,
        answer: Result<T, Failure>,
    ) -> Result<T, Failure> {
        if let Err(failure) = &answer
            && failure.status().is_client_error()
            && let Err(e) = state.store.charge_ip(self.ip, state.clock.now_ms()).await
        {
            tracing::warn!(error = %e, "charging a failed read to its address failed");
        }
        answer
    }
}

/// The peer address, or with `--trust-proxy` the address the proxy appended to
/// `X-Forwarded-For` (its last entry).
pub fn client_ip(trust_proxy: bool, peer: SocketAddr, headers: &HeaderMap) -> IpAddr {
    if trust_proxy
        && let Some(forwarded) = headers.get("x-forwarded-for").and_then(|v| v.to_str().ok())
        && let Some(ip) = forwarded
            .rsplit(',')
            .next()
            .and_then(|s| s.trim().parse().ok())
    {
        return ip;
    }
    peer.ip()
}

impl FromRequestParts<Arc<AppState>> for ClientIp {
    type Rejection = Failure;

    async fn from_request_parts(parts: &mut Parts, state: &Arc<AppState>) -> Result<Self, Failure> {
        // The relay always serves with connection info; without it there is no client to name.
        let ConnectInfo(peer) = ConnectInfo::<SocketAddr>::from_request_parts(parts, state)
            .await
            .map_err(|_| Failure::from(crate::api::ApiError::internal()))?;
        Ok(ClientIp(client_ip(state.trust_proxy, peer, &parts.headers)))
    }
}

/// The client's IP and its per-IP layers now, charged or only checked (429 when one is
/// exhausted), with the moment they were looked at.
pub(super) async fn ip_layers(
    parts: &mut Parts,
    state: &Arc<AppState>,
    charge: bool,
) -> Result<(IpAddr, Vec<LayerStatus>, i64), Failure> {
    let now = state.clock.now_ms();
    let ClientIp(ip) = ClientIp::from_request_parts(parts, state).await?;
    let looked = if charge {
        state.store.charge_ip(ip, now).await?
    } else {
        state.store.check_ip(ip, now).await?
    };
    let statuses = looked.map_err(|refused| Failure::rate_limited(refused, now))?;
    Ok((ip, statuses, now))
}

impl FromRequestParts<Arc<AppState>> for ChargedIp {
    type Rejection = Failure;

    async fn from_request_parts(parts: &mut Parts, state: &Arc<AppState>) -> Result<Self, Failure> {
        let (_, statuses, now) = ip_layers(parts, state, true).await?;
        Ok(ChargedIp { statuses, now })
    }
}

impl FromRequestParts<Arc<AppState>> for IpChecked {
    type Rejection = Failure;

    async fn from_request_parts(parts: &mut Parts, state: &Arc<AppState>) -> Result<Self, Failure> {
        let (ip, statuses, now) = ip_layers(parts, state, false).await?;
        Ok(IpChecked { ip, statuses, now })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::ErrorCode;
    use crate::server::extract::testing::{ip_minute, parts, relay_state};
    use crate::store::limits::Limits;

    #[tokio::test]
    async fn the_peer_unless_a_trusted_proxy_names_the_client() {
        let forwarded = [("x-forwarded-for", "203.0.113.9, 198.51.100.7")];
        let garbled = [("x-forwarded-for", "not an address")];
        for (trust_proxy, headers, expected, why) in [
            (
                false,
                forwarded,
                "192.0.2.1",
                "an untrusted header is ignored",
            ),
            (
                true,
                forwarded,
                "198.51.100.7",
                "the proxy's own (last) entry",
            ),
            (true, garbled, "192.0.2.1", "a garbled header is ignored"),
        ] {
            let (_dir, state) = relay_state(Limits::default(), trust_proxy).await;
            let ClientIp(ip) = ClientIp::from_request_parts(&mut parts("/", &headers), &state)
                .await
                .unwrap();
            assert_eq!(ip.to_string(), expected, "{why}");
        }
    }

    #[tokio::test]
    async fn charged_ip_counts_each_request_and_refuses_past_the_limit() {
        let (_dir, state) = ip_minute(2).await;
        for remaining in [1, 0] {
            let charged = ChargedIp::from_request_parts(&mut parts("/", &[]), &state)
                .await
                .unwrap();
            let minute = charged
                .statuses
                .iter()
                .find(|s| s.layer.as_str() == "ip_minute")
                .expect("the ip_minute layer");
            assert_eq!(minute.remaining, remaining);
        }
        let refused = ChargedIp::from_request_parts(&mut parts("/", &[]), &state)
            .await
            .unwrap_err();
        assert_eq!(refused.error.code, ErrorCode::RateLimitExceeded);
        assert_eq!(refused.error.details.unwrap()["resource"], "ip_minute");
        assert!(refused.rate.is_some(), "a 429 carries its layer's headers");
    }

    #[tokio::test]
    async fn ip_checked_charges_only_a_refused_answer() {
        let (_dir, state) = ip_minute(2).await;
        let check = || async { IpChecked::from_request_parts(&mut parts("/", &[]), &state).await };
        // Successful reads: checked every time, never charged.
        for _ in 0..10 {
            let checked = check().await.unwrap();
            assert_eq!(checked.statuses[0].remaining, 2);
            assert_eq!(checked.settle(&state, Ok(())).await.unwrap(), ());
        }
        // A store fault is not the client's: not charged either.
        let fault = Failure::from(crate::store::StoreError::Db("down".into()));
        check()
            .await
            .unwrap()
            .settle::<()>(&state, Err(fault))
            .await
            .unwrap_err();
        assert_eq!(check().await.unwrap().statuses[0].remaining, 2);
        // Two refused reads (a 404, a 401) use up the minute; the answer is left as it was.
        for code in [ErrorCode::NotFound, ErrorCode::InvalidToken] {
            let refused = check()
                .await
                .unwrap()
                .settle::<()>(&state, Err(Failure::new(code, "no")))
                .await
                .unwrap_err();
            assert_eq!(refused.error.code, code);
        }
        let limited = check().await.unwrap_err();
        assert_eq!(limited.error.code, ErrorCode::RateLimitExceeded);
        assert_eq!(limited.error.details.unwrap()["resource"], "ip_minute");
    }

    #[tokio::test]
    async fn client_ip_charges_nothing() {
        let (_dir, state) = ip_minute(1).await;
        for _ in 0..3 {
            ClientIp::from_request_parts(&mut parts("/", &[]), &state)
                .await
                .unwrap();
        }
        ChargedIp::from_request_parts(&mut parts("/", &[]), &state)
            .await
            .expect("the one request of the minute is still free");
    }
}
