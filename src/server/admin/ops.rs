//! The operator's changes, one function each, shared by `/v1/admin/*` and `reflecto admin` on
//! a local store (SPEC §1.19): the same validation, the same codes, and one audit entry per
//! change naming who made it. Reads are here too, so both print the same views.

use super::views;
use crate::api::admin::*;
use crate::api::{ApiError, ErrorCode};
use crate::store::admin::Actor;
use crate::store::{NewDevice, NewToken, Store, StoreError};

/// A refusal the caller words for its side (an [`ApiError`]), or a store fault it reports as
/// its own (the CLI's `cli_internal_error`, the relay's 500 with `Retry-After`).
#[derive(Debug)]
pub enum OpError {
    Api(ApiError),
    Store(StoreError),
}

impl From<StoreError> for OpError {
    fn from(e: StoreError) -> OpError {
        match e {
            StoreError::NotFound(what) => OpError::Api(ApiError::new(
                ErrorCode::NotFound,
                format!("{what} not found"),
            )),
            StoreError::Conflict(why) => OpError::Api(ApiError::new(ErrorCode::Conflict, why)),
            other => OpError::Store(other),
        }
    }
}

impl From<ApiError> for OpError {
    fn from(e: ApiError) -> OpError {
        OpError::Api(e)
    }
}

type Result<T> = std::result::Result<T, OpError>;

/// A name, id or label given to the operator API: never a NUL byte, which no stored name
/// has and PostgreSQL refuses as text (a 400, not a store failure).
fn plain(texts: &[&str]) -> Result<()> {
    if texts.iter().any(|t| t.contains('\0')) {
        return Err(usage("names, ids and labels must not contain a NUL byte"));
    }
    Ok(())
}

/// Longest user name, in bytes (before surrounding spaces are trimmed).
pub const MAX_USER_NAME_BYTES: usize = 64;

/// Most a page holds (SPEC §1.19: at most 100).
pub const MAX_PAGE: usize = 100;

fn usage(message: impl Into<String>) -> OpError {
    OpError::Api(ApiError::new(ErrorCode::UsageError, message))
}

/// One operator at one moment: every change is audited under `actor` at `now`.
pub struct Operator<'a> {
    pub store: &'a Store,
    pub actor: Actor,
    pub now: i64,
}

impl Operator<'_> {
    async fn audit(&self, action: &'static str, target: &str) -> Result<()> {
        Ok(self
            .store
            .audit(&self.actor, action, target, self.now)
            .await?)
    }

    pub async fn add_user(&self, name: &str) -> Result<AdminUser> {
        if name.len() > MAX_USER_NAME_BYTES || name.bytes().any(|b| b < 0x20 || b == 0x7f) {
            return Err(usage(format!(
                "user name must be at most {MAX_USER_NAME_BYTES} bytes, without control characters"
            )));
        }
        let name = name.trim_matches(' ');
        if name.is_empty() {
            return Err(usage("user name must not be empty"));
        }
        let user = self.store.add_user(name, self.now).await?;
        self.audit("user.add", &user.name).await?;
        Ok(views::user(&user))
    }

    pub async fn list_users(&self) -> Result<Vec<AdminUser>> {
        let users = self.store.list_users().await?;
        Ok(users.iter().map(views::user).collect())
    }

    pub async fn remove_user(&self, name: &str) -> Result<()> {
        plain(&[name])?;
        self.store.remove_user(name).await?;
        self.audit("user.remove", name).await
    }

    /// A sender token for a user, or an admin token (`admin`: no user, cap, scope or test).
    pub async fn create_token(&self, req: NewTokenRequest) -> Result<CreatedToken> {
        let mut texts = vec![req.label.as_str()];
        texts.extend(req.user.as_deref());
        texts.extend(req.scope_devices.as_deref());
        plain(&texts)?;
        if req.admin {
            if req.user.is_some()
                || req.priority_cap.is_some()
                || req.scope_devices.is_some()
                || req.test
            {
                return Err(usage(
                    "an admin token has no user, priority_cap, scope_devices or test",
                ));
            }
            let (record, secret) = self.store.create_admin_token(&req.label, self.now).await?;
            self.audit("token.create", &record.id).await?;
            return Ok(CreatedToken {
                token: secret.expose().to_owned(),
                record: views::admin_token(&record),
            });
        }
        let Some(user) = req.user else {
            return Err(usage("a sender token needs a user (or admin: true)"));
        };
        let new = NewToken {
            user,
            label: req.label,
            priority_cap: req.priority_cap,
            scope_devices: req.scope_devices,
            test: req.test,
        };
        let (record, secret) = self.store.create_token(new, self.now).await?;
        self.audit("token.create", &record.id).await?;
        Ok(CreatedToken {
            token: secret.expose().to_owned(),
            record: views::token(&record),
        })
    }

    /// Sender tokens (all, or one user's), then admin tokens when no user is named.
    pub async fn list_tokens(&self, user: Option<&str>) -> Result<Vec<AdminToken>> {
        plain(&[user.unwrap_or_default()])?;
        let mut tokens: Vec<AdminToken> = self
            .store
            .list_tokens(user)
            .await?
            .iter()
            .map(views::token)
            .collect();
        if user.is_none() {
            let admins = self.store.list_admin_tokens().await?;
            tokens.extend(admins.iter().map(views::admin_token));
        }
        Ok(tokens)
    }

    pub async fn revoke_token(&self, id: &str) -> Result<()> {
        plain(&[id])?;
        self.store.revoke_any_token(id, self.now).await?;
        self.audit("token.revoke", id).await
    }

    /// Adds a device directly; returns its id and its credential (shown once).
    pub async fn add_device(&self, user: &str, new: NewDevice) -> Result<(String, String)> {
        plain(&[user])?;
        let paired = self.store.add_device(user, new, self.now).await?;
        self.audit("device.add", &paired.device.id).await?;
        Ok((
            paired.device.id.clone(),
            paired.credential.expose().to_owned(),
        ))
    }

    pub async fn list_devices(&self, user: Option<&str>) -> Result<Vec<AdminDevice>> {
        plain(&[user.unwrap_or_default()])?;
        let devices = self.store.list_devices(user).await?;
        Ok(devices.iter().map(views::device).collect())
    }

    pub async fn remove_device(&self, id: &str) -> Result<()> {
        plain(&[id])?;
        self.store.remove_device(id, self.now).await?;
        self.audit("device.remove", id).await
    }

    /// A pairing code for `user` and when it expires (the code is never audited).
    pub async fn pair(&self, user: &str) -> Result<(String, i64)> {
        plain(&[user])?;
        let code = self.store.create_pair_code(user, self.now).await?;
        self.audit("pairing.create", user).await?;
        Ok((code, self.now + crate::store::pairing::PAIR_CODE_TTL_MS))
    }

    pub async fn audit_page(&self, before: Option<i64>, limit: usize) -> Result<Vec<AuditEntry>> {
        let limit = limit.clamp(1, MAX_PAGE);
        let entries = self.store.list_audit(before, limit).await?;
        Ok(entries.iter().map(views::audit).collect())
    }
}
