//! What issuing a sender token means before either backend writes it: a fresh secret (shown
//! once), its SHA-256 (all that is stored) and the record.

use super::model::{NewToken, TokenRecord, UserRecord};
use crate::api::token::{Secret, generate_token, hash_secret, random_id};

/// A token ready to insert.
pub struct IssuedToken {
    pub record: TokenRecord,
    pub secret: Secret,
    pub hash: [u8; 32],
}

pub fn issue(new: NewToken, owner: UserRecord, now: i64) -> IssuedToken {
    let secret = generate_token(new.test);
    let hash = hash_secret(secret.expose());
    IssuedToken {
        record: TokenRecord {
            id: random_id("tok_", 16),
            user_id: owner.id,
            user: owner.name,
            label: new.label,
            priority_cap: new.priority_cap,
            scope_devices: new.scope_devices,
            test: new.test,
            created_at: now,
            last_used_at: None,
            revoked: false,
        },
        secret,
        hash,
    }
}
