//! `reflecto admin --server URL`: the operator API (`/v1/admin/*`, SPEC §1.19) with an admin
//! token. A refusal comes back as the relay's own error, code and message alike, so a command
//! prints the same through `--server` as on a local store.

use super::diagnose::{answered_404, check_server};
use super::http::{REQUEST_TIMEOUT, http_client, unexplained, unreachable};
use crate::api::admin::*;
use crate::api::token::Secret;
use crate::api::{ApiError, ErrorCode};
use reqwest::Method;
use serde::Serialize;
use serde::de::DeserializeOwned;

pub struct AdminClient {
    http: reqwest::Client,
    server: String,
    token: Secret,
}

/// A path segment or query value, percent-encoded.
fn enc(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

impl AdminClient {
    pub fn new(server: &str, token: Secret) -> Result<AdminClient, ApiError> {
        let server = check_server(server)?;
        let http = http_client(|b| b.timeout(REQUEST_TIMEOUT))?;
        Ok(AdminClient {
            http,
            server,
            token,
        })
    }

    pub fn server(&self) -> &str {
        &self.server
    }

    /// One request, not retried (a change is not safe to repeat blindly); `None` for a 204.
    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&(impl Serialize + Sync)>,
    ) -> Result<Option<T>, ApiError> {
        let url = format!("{}{path}", self.server);
        let mut request = self
            .http
            .request(method, &url)
            .bearer_auth(self.token.expose());
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.map_err(|e| unreachable(&url, &e))?;
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        if status == 204 {
            return Ok(None);
        }
        if status == 200 {
            return serde_json::from_str(&text).map(Some).map_err(|_| {
                ApiError::new(
                    ErrorCode::UnexpectedResponse,
                    format!("{url} answered 200 with a body that is not the operator API's; is --server a reflecto relay?"),
                )
            });
        }
        let relay_error = serde_json::from_str(&text)
            .ok()
            .and_then(|v| ApiError::from_body(&v));
        Err(match relay_error {
            Some(e) => e,
            None if status == 404 => answered_404(&url, None, super::diagnose::On404::WrongServer),
            None => unexplained(status, &url),
        })
    }

    async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ApiError> {
        self.call(Method::GET, path, None::<&()>)
            .await?
            .ok_or_else(|| empty(path))
    }

    async fn post<T: DeserializeOwned>(
        &self,
        path: &str,
        body: &(impl Serialize + Sync),
    ) -> Result<T, ApiError> {
        self.call(Method::POST, path, Some(body))
            .await?
            .ok_or_else(|| empty(path))
    }

    async fn delete(&self, path: &str) -> Result<(), ApiError> {
        self.call::<serde_json::Value>(Method::DELETE, path, None::<&()>)
            .await
            .map(|_| ())
    }

    pub async fn add_user(&self, name: &str) -> Result<AdminUser, ApiError> {
        let body = NewUserRequest {
            name: name.to_owned(),
        };
        self.post("/v1/admin/users", &body).await
    }

    pub async fn list_users(&self) -> Result<Vec<AdminUser>, ApiError> {
        self.get("/v1/admin/users").await
    }

    pub async fn remove_user(&self, name: &str) -> Result<(), ApiError> {
        self.delete(&format!("/v1/admin/users/{}", enc(name))).await
    }

    pub async fn create_token(&self, req: &NewTokenRequest) -> Result<CreatedToken, ApiError> {
        self.post("/v1/admin/tokens", req).await
    }

    pub async fn list_tokens(&self, user: Option<&str>) -> Result<Vec<AdminToken>, ApiError> {
        match user {
            Some(u) => self.get(&format!("/v1/admin/tokens?user={}", enc(u))).await,
            None => self.get("/v1/admin/tokens").await,
        }
    }

    pub async fn revoke_token(&self, id: &str) -> Result<(), ApiError> {
        self.delete(&format!("/v1/admin/tokens/{}", enc(id))).await
    }

    pub async fn list_devices(&self, user: Option<&str>) -> Result<Vec<AdminDevice>, ApiError> {
        match user {
            Some(u) => {
                self.get(&format!("/v1/admin/devices?user={}", enc(u)))
                    .await
            }
            None => self.get("/v1/admin/devices").await,
        }
    }

    pub async fn remove_device(&self, id: &str) -> Result<(), ApiError> {
        self.delete(&format!("/v1/admin/devices/{}", enc(id))).await
    }

    pub async fn pair(&self, user: &str) -> Result<Pairing, ApiError> {
        let body = NewPairingRequest {
            user: user.to_owned(),
        };
        self.post("/v1/admin/pairings", &body).await
    }

    pub async fn audit(&self, before: Option<i64>, limit: usize) -> Result<AuditPage, ApiError> {
        let mut path = format!("/v1/admin/audit?limit={limit}");
        if let Some(b) = before {
            path += &format!("&before={b}");
        }
        self.get(&path).await
    }

    pub async fn status(&self) -> Result<AdminStatus, ApiError> {
        self.get("/v1/admin/status").await
    }
}

fn empty(path: &str) -> ApiError {
    ApiError::new(
        ErrorCode::UnexpectedResponse,
        format!("{path} answered without a body"),
    )
}
