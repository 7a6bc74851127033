//! Sends one Web Push request over a reused reqwest client and reports what came back, as plain
//! data for `outcome::classify`. It never reads the response body: push services put nothing
//! there a sender needs, and an endpoint chosen by a browser should not make us buffer its text.

use super::message::PushRequest;
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
}

#[derive(Clone)]
pub struct WebPushClient {
    http: reqwest::Client,
}

impl WebPushClient {
    /// `timeout` bounds a whole attempt; push services answer in well under a second.
    pub fn new(timeout: Duration) -> Result<WebPushClient, String> {
        let http = reqwest::Client::builder()
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
            Err(_) => Answer::Connection,
        }
    }
}
