//! Store records as the operator API shows them (SPEC §1.19): times in RFC 3339, never a
//! secret, credential, push target or message text. `reflecto admin` prints the same views
//! on a local store, so its output is the same as through `--server`.

use crate::api::admin::*;
use crate::server::messages::rfc3339;
use crate::store::{
    AdminMessageRecord, AdminTokenRecord, AuditRecord, DeviceRecord, TokenRecord, UserRecord,
};

pub fn user(u: &UserRecord) -> AdminUser {
    AdminUser {
        name: u.name.clone(),
        created_at: rfc3339(u.created_at),
    }
}

pub fn token(t: &TokenRecord) -> AdminToken {
    AdminToken {
        id: t.id.clone(),
        admin: false,
        user: Some(t.user.clone()),
        label: t.label.clone(),
        priority_cap: t.priority_cap,
        scope_devices: t.scope_devices.clone(),
        test: t.test,
        revoked: t.revoked,
        created_at: rfc3339(t.created_at),
        last_used_at: t.last_used_at.map(rfc3339),
    }
}

pub fn admin_token(t: &AdminTokenRecord) -> AdminToken {
    AdminToken {
        id: t.id.clone(),
        admin: true,
        user: None,
        label: t.label.clone(),
        priority_cap: None,
        scope_devices: None,
        test: false,
        revoked: t.revoked,
        created_at: rfc3339(t.created_at),
        last_used_at: t.last_used_at.map(rfc3339),
    }
}

pub fn device(d: &DeviceRecord) -> AdminDevice {
    AdminDevice {
        id: d.id.clone(),
        user: d.user.clone(),
        label: d.label.clone(),
        device_type: d.device_type.to_string(),
        public_key: d.public_key.clone(),
        reachable: d.reachable,
        created_at: rfc3339(d.created_at),
        last_seen_at: d.last_seen_at.map(rfc3339),
    }
}

pub fn audit(a: &AuditRecord) -> AuditEntry {
    AuditEntry {
        id: a.id,
        at: rfc3339(a.at),
        actor: a.actor.clone(),
        action: a.action.clone(),
        target: a.target.clone(),
        ip: a.ip.clone(),
    }
}

/// A message's metadata and per-device states; its text is never read, so neither a sealed
/// or Web Push payload nor a plaintext envelope can reach the operator.
pub fn message(m: &AdminMessageRecord) -> AdminMessage {
    AdminMessage {
        id: m.id.clone(),
        user: m.user.clone(),
        token_id: m.token_id.clone(),
        key: m.key.clone(),
        created_at: rfc3339(m.created_at),
        cleared_at: m.cleared_at.map(rfc3339),
        acknowledged_at: m.acknowledged_at.map(rfc3339),
        deliveries: m
            .deliveries
            .iter()
            .map(|(device_id, state, at)| AdminDelivery {
                device_id: device_id.clone(),
                state: state.as_str().to_owned(),
                updated_at: rfc3339(*at),
            })
            .collect(),
    }
}
