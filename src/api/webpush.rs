//! Wire types of Web Push (SPEC §1.13): the browser's subscription a `webpush` device pairs
//! with, and the relay's VAPID public key the page subscribes with. The checks that make a
//! subscription safe to post to live with the channel (`delivery::webpush::subscription`).

use serde::{Deserialize, Serialize};

/// Exactly what `PushSubscription.toJSON()` produces.
#[derive(Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SubscriptionJson {
    /// The push service URL: `https`, on a public address unless the relay runs with
    /// `--webpush-allow-local`
    pub endpoint: String,
    /// Ignored: the push service says when a subscription is gone (404/410)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expiration_time: Option<f64>,
    pub keys: SubscriptionKeys,
}

#[derive(Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SubscriptionKeys {
    /// The browser's P-256 public key: an uncompressed point, base64url
    pub p256dh: String,
    /// The 16-byte authentication secret, base64url
    pub auth: String,
}

// The endpoint is a capability URL: whoever has it can push to the browser, so it stays out of
// debug output like every other secret.
impl std::fmt::Debug for SubscriptionJson {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SubscriptionJson").finish_non_exhaustive()
    }
}

impl std::fmt::Debug for SubscriptionKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SubscriptionKeys").finish_non_exhaustive()
    }
}

/// `GET /v1/webpush/vapid`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct VapidPublicKey {
    /// The relay's VAPID public key: an uncompressed P-256 point, base64url without padding
    /// (the `applicationServerKey` for `pushManager.subscribe`)
    pub public_key: String,
}
