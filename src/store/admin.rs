//! What the operator API adds above both backends (SPEC §1.19): issuing an admin token (a
//! fresh secret shown once, only its SHA-256 stored), revoking a token of either kind by id,
//! and the audit entries every change writes.

use super::contract::{Admin, UsersTokens};
use super::model::{AdminTokenRecord, NewAudit};
use super::{Result, Store, StoreError};
use crate::api::token::{Secret, generate_admin_token, hash_secret, random_id};

/// Who made a change, as the audit log names them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    /// `reflecto admin` on the store.
    Cli,
    /// An admin token through `/v1/admin/*`, by its label, from an address.
    Admin { label: String, ip: String },
    /// A device (pairing itself), from an address.
    Device { id: String, ip: String },
}

impl Actor {
    /// The entry `action` on `target` made by this actor at `at`.
    pub fn entry(&self, action: &'static str, target: &str, at: i64) -> NewAudit {
        let (actor, ip) = match self {
            Actor::Cli => ("cli".to_owned(), None),
            Actor::Admin { label, ip } => (format!("admin:{label}"), Some(ip.clone())),
            Actor::Device { id, ip } => (format!("device:{id}"), Some(ip.clone())),
        };
        NewAudit {
            at,
            actor,
            action,
            target: target.to_owned(),
            ip,
        }
    }
}

impl Store {
    /// Creates an admin token and returns it: the only time its secret exists outside the
    /// caller.
    pub async fn create_admin_token(
        &self,
        label: &str,
        now: i64,
    ) -> Result<(AdminTokenRecord, Secret)> {
        let secret = generate_admin_token();
        let hash = hash_secret(secret.expose());
        let record = AdminTokenRecord {
            id: random_id("tok_", 16),
            label: label.to_owned(),
            created_at: now,
            last_used_at: None,
            revoked: false,
        };
        match self {
            Store::Sqlite(b) => b.insert_admin_token(&record, &hash).await?,
            Store::Postgres(b) => b.insert_admin_token(&record, &hash).await?,
        }
        Ok((record, secret))
    }

    /// Revokes a sender or admin token by its `tok_` id (both kinds share the id space).
    pub async fn revoke_any_token(&self, id: &str, now: i64) -> Result<()> {
        let sender = match self {
            Store::Sqlite(b) => UsersTokens::revoke_token(b, id, now).await,
            Store::Postgres(b) => UsersTokens::revoke_token(b, id, now).await,
        };
        match sender {
            Err(StoreError::NotFound(_)) => self.revoke_admin_token(id, now).await,
            other => other,
        }
    }

    /// Appends one audit entry for `action` on `target` by `actor`.
    pub async fn audit(
        &self,
        actor: &Actor,
        action: &'static str,
        target: &str,
        now: i64,
    ) -> Result<()> {
        self.record_audit(actor.entry(action, target, now)).await
    }
}
