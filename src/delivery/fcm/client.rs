//! FCM HTTP v1 client: OAuth2 access tokens from the service-account key (gcp_auth signs the
//! RS256 JWT, posts it to the key's `token_uri` and caches the token until shortly before it
//! expires), and `messages:send` over one reused reqwest client (HTTP/2 via ALPN on https).

use gcp_auth::{CustomServiceAccount, TokenProvider};
use serde_json::Value;
use std::path::Path;
use std::sync::{Arc, RwLock};
use std::time::Duration;

pub const SCOPE: &str = "https://www.googleapis.com/auth/firebase.messaging";

/// One HTTP answer from `messages:send`.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub body: String,
    pub retry_after: Option<Duration>,
}

pub struct FcmClient {
    http: reqwest::Client,
    send_url: String,
    key_json: String,
    /// Replaced wholesale to force a token refresh (gcp_auth has no invalidate call).
    account: RwLock<Arc<CustomServiceAccount>>,
}

impl FcmClient {
    /// Reads the service-account JSON and prepares the client; nothing is fetched yet.
    pub fn from_key_file(path: &Path, endpoint: &str) -> Result<FcmClient, String> {
        let key_json = std::fs::read_to_string(path)
            .map_err(|e| format!("reading FCM credentials {}: {e}", path.display()))?;
        let account = CustomServiceAccount::from_json(&key_json).map_err(|e| {
            format!(
                "FCM credentials {} are not a service-account key: {e}",
                path.display()
            )
        })?;
        let project = account
            .project_id()
            .ok_or_else(|| format!("FCM credentials {} have no project_id", path.display()))?
            .to_owned();
        let http = reqwest::Client::builder()
            .user_agent(concat!("reflecto/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(30))
            .pool_max_idle_per_host(128)
            .build()
            .map_err(|e| format!("building the FCM HTTP client: {e}"))?;
        Ok(FcmClient {
            http,
            send_url: format!(
                "{}/v1/projects/{project}/messages:send",
                endpoint.trim_end_matches('/')
            ),
            key_json,
            account: RwLock::new(Arc::new(account)),
        })
    }

    async fn access_token(&self) -> Result<String, String> {
        let account = self.account.read().expect("account lock poisoned").clone();
        let token = account
            .token(&[SCOPE])
            .await
            .map_err(|e| format!("OAUTH: {e}"))?;
        Ok(token.as_str().to_owned())
    }

    /// Drops the cached access token; the next send fetches a new one.
    pub fn refresh_auth(&self) {
        if let Ok(fresh) = CustomServiceAccount::from_json(&self.key_json) {
            *self.account.write().expect("account lock poisoned") = Arc::new(fresh);
        }
    }

    /// One `messages:send`. `Err` is a transport or OAuth failure (worth a retry).
    pub async fn send(&self, message: &Value) -> Result<Answer, String> {
        let token = self.access_token().await?;
        let response = self
            .http
            .post(&self.send_url)
            .bearer_auth(token)
            .json(message)
            .send()
            .await
            .map_err(|e| {
                if e.is_timeout() {
                    "TIMEOUT".to_owned()
                } else {
                    "CONNECTION".to_owned()
                }
            })?;
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(crate::client::parse_retry_after);
        let body = response.text().await.map_err(|_| "CONNECTION".to_owned())?;
        Ok(Answer {
            status,
            body,
            retry_after,
        })
    }
}
