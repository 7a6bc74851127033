//! Sends one Web Push request over a reused reqwest client and reports what came back, as plain
//! data for `outcome::classify`. It never reads the response body: push services put nothing
//! there a sender needs, and an endpoint chosen by a browser should not make us buffer its text.

use super::message::PushRequest;
use super::subscription::{AddressClass, classify_address};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// How one attempt ended on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    Status {
        status: u16,
        retry_after: Option<Duration>,
    },
    Timeout,
    Connection,
    /// The endpoint's host now resolves to a non-public address (DNS rebinding after the
    /// pairing-time check); nothing was sent.
    NotPublic,
}

/// The refusal the resolver returns; found again in the error chain to tell it apart.
#[derive(Debug)]
struct NotPublic;

impl std::fmt::Display for NotPublic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("push endpoint resolves to a non-public address")
    }
}

impl std::error::Error for NotPublic {}

/// Resolves like the system does, then refuses the connection if any address is not public:
/// the pairing-time check alone would let a host re-point itself at the relay's own network.
struct PublicOnly;

impl reqwest::dns::Resolve for PublicOnly {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addresses: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if addresses
                .iter()
                .any(|a| classify_address(a.ip()) != AddressClass::Public)
            {
                return Err(Box::new(NotPublic) as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(addresses.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

fn refused_as_not_public(error: &reqwest::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = source {
        if e.is::<NotPublic>() {
            return true;
        }
        source = e.source();
    }
    false
}

#[derive(Clone)]
pub struct WebPushClient {
    http: reqwest::Client,
}

impl WebPushClient {
    /// `timeout` bounds a whole attempt; push services answer in well under a second.
    /// Without `allow_local` (`--webpush-allow-local`) a host name that resolves to a
    /// non-public address is not connected to. (An IP-literal endpoint cannot change after the
    /// pairing check, so it needs no resolver.)
    pub fn new(timeout: Duration, allow_local: bool) -> Result<WebPushClient, String> {
        let mut builder = reqwest::Client::builder();
        if !allow_local {
            builder = builder.dns_resolver(Arc::new(PublicOnly));
        }
        let http = builder
            .user_agent(concat!("reflecto/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(10).min(timeout))
            .timeout(timeout)
            .pool_max_idle_per_host(128)
            // A redirect would reach a host the subscription check never saw.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| format!("building the Web Push HTTP client: {e}"))?;
        Ok(WebPushClient { http })
    }

    /// One POST. Transport errors are answers too: they decide a retry.
    pub async fn send(&self, request: &PushRequest) -> Answer {
        let mut builder = self.http.post(request.url.clone());
        for (name, value) in &request.headers {
            builder = builder.header(*name, value);
        }
        match builder.body(request.body.clone()).send().await {
            Ok(response) => Answer::Status {
                status: response.status().as_u16(),
                retry_after: response
                    .headers()
                    .get(reqwest::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(crate::client::parse_retry_after),
            },
            Err(e) if e.is_timeout() => Answer::Timeout,
            Err(e) if refused_as_not_public(&e) => Answer::NotPublic,
            Err(_) => Answer::Connection,
        }
    }
}
