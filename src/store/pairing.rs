//! What adding a device means before either backend writes it: the checks (an android device
//! needs its FCM token, a webpush device its subscription, a public key must parse), the new
//! id and its credential (every type: SPEC §1.16 acknowledgements). Also the pairing rules both backends
//! apply.

use super::model::{DeviceRecord, NewAudit, NewDevice, PairOutcome};
use super::{Result, StoreError};
use crate::api::DeviceType;
use crate::api::sealed::{encode, parse_public_key};
use crate::api::token::{Secret, generate_device_credential, hash_secret, random_id};

/// A pairing code lives this long.
pub const PAIR_CODE_TTL_MS: i64 = 10 * 60 * 1000;
/// Failed redemptions within this window count towards the limit.
pub const PAIR_FAILURE_WINDOW_MS: i64 = 10 * 60 * 1000;
/// At this many failures within the window, every outstanding code is invalidated.
pub const PAIR_FAILURE_LIMIT: i64 = 100;

/// The audit entry of the brute-force rule (SPEC §1.19): no actor made it but the relay.
pub fn invalidation(now: i64) -> NewAudit {
    NewAudit {
        at: now,
        actor: "relay".to_owned(),
        action: "pairing.invalidate",
        target: String::new(),
        ip: None,
    }
}

/// Tells the operator that `failures` wrong guesses invalidated `codes` pairing codes.
pub fn warn_invalidated(failures: i64, codes: u64) {
    tracing::warn!(
        failures,
        codes,
        "too many failed pairing attempts: every outstanding pairing code is invalidated"
    );
}

/// A device checked and ready to insert.
pub struct PreparedDevice {
    pub id: String,
    pub new: NewDevice,
    /// Base64url without padding.
    pub public_key: Option<String>,
    pub credential: Secret,
    pub credential_hash: Vec<u8>,
}

pub fn prepare(new: NewDevice) -> Result<PreparedDevice> {
    if new.device_type == DeviceType::Android && new.fcm_token.as_deref().is_none_or(str::is_empty)
    {
        return Err(StoreError::Conflict(
            "an android device needs an FCM registration token".into(),
        ));
    }
    if new.device_type == DeviceType::Webpush && new.webpush.is_none() {
        return Err(StoreError::Conflict(
            "a webpush device needs a subscription".into(),
        ));
    }
    let public_key = match new.public_key.as_deref() {
        None => None,
        Some(text) => Some(
            parse_public_key(text)
                .map(|k| encode(k.as_bytes()))
                .map_err(|e| StoreError::Conflict(e.to_string()))?,
        ),
    };
    // Every device type gets one (SPEC §1.9, §1.16): a browser or phone acknowledges with it.
    let credential = generate_device_credential();
    let credential_hash = hash_secret(credential.expose()).to_vec();
    Ok(PreparedDevice {
        id: random_id("dev_", 16),
        new,
        public_key,
        credential,
        credential_hash,
    })
}

impl PreparedDevice {
    /// The subscription's endpoint, p256dh and auth columns (all `None` but for webpush).
    pub fn webpush_columns(&self) -> (Option<&str>, Option<&str>, Option<&str>) {
        match &self.new.webpush {
            Some(w) => (Some(&w.endpoint), Some(&w.p256dh), Some(&w.auth)),
            None => (None, None, None),
        }
    }

    /// What pairing hands back once the device is written.
    pub fn paired(self, user_id: i64, user: String, now: i64) -> PairOutcome {
        let device = DeviceRecord {
            id: self.id,
            user_id,
            user,
            label: self.new.label,
            device_type: self.new.device_type,
            fcm_token: self.new.fcm_token,
            webpush: self.new.webpush,
            public_key: self.public_key,
            reachable: true,
            created_at: now,
            last_seen_at: None,
        };
        PairOutcome {
            device,
            credential: self.credential,
        }
    }
}
