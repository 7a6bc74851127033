//! Web Push delivery (RFC 8030 + RFC 8291 + RFC 8292, SPEC §1.13): a browser's subscription
//! checked at pairing, the relay's VAPID identity, encryption at accept time, the request for
//! one delivery, its sending and the meaning of the answer. [`WebPushChannel::attempt`] is the
//! channel's turn in the worker's claim → send → classify → record.

pub mod client;
pub mod encrypt;
pub mod message;
pub mod outcome;
pub mod subscription;
pub mod vapid;

use super::outcome::Verdict;
use crate::api::clear_ack::ClearPush;
use crate::store::{ClaimedJob, JobKind, PayloadKind, Store, WebPushAddress};
use client::WebPushClient;
use subscription::{SubscriptionJson, SubscriptionKeys};
use vapid::{VapidKey, VapidSigner};

/// The relay's VAPID key from the store, created there on first start.
pub async fn load_vapid_key(store: &Store, now: i64) -> Result<VapidKey, String> {
    let bytes = store
        .vapid_private_key(VapidKey::generate().private_bytes(), now)
        .await
        .map_err(|e| format!("loading the VAPID key: {e}"))?;
    VapidKey::from_private_bytes(&bytes)
        .map_err(|e| format!("the stored VAPID key is unusable: {e}"))
}

/// A stored subscription as the browser sent it, for the checks and for encryption.
pub fn subscription_json(address: &WebPushAddress) -> SubscriptionJson {
    SubscriptionJson {
        endpoint: address.endpoint.clone(),
        expiration_time: None,
        keys: SubscriptionKeys {
            p256dh: address.p256dh.clone(),
            auth: address.auth.clone(),
        },
    }
}

/// The RFC 8291 body of a clear: `{"clear":"msg_…"}`, encrypted to the subscription.
pub fn clear_body(message_id: &str, address: &WebPushAddress) -> Result<Vec<u8>, String> {
    let plaintext = serde_json::to_vec(&ClearPush {
        clear: message_id.to_owned(),
    })
    .map_err(|e| e.to_string())?;
    let subscription = subscription_json(address)
        .parse()
        .map_err(|_| "corrupt_subscription".to_owned())?;
    encrypt::encrypt(&plaintext, &subscription).map_err(|e| format!("encrypting: {e}"))
}

pub struct WebPushChannel {
    client: WebPushClient,
    signer: VapidSigner,
}

impl WebPushChannel {
    pub fn new(client: WebPushClient, signer: VapidSigner) -> WebPushChannel {
        WebPushChannel { client, signer }
    }

    /// Posts the job's stored ciphertext (the same bytes on every attempt) with `TTL` =
    /// `remaining` seconds, and classifies the answer. `now_ms` dates the VAPID token.
    pub async fn attempt(
        &self,
        job: &ClaimedJob,
        address: &WebPushAddress,
        remaining: u64,
        now_ms: i64,
    ) -> Verdict {
        let ciphertext = match job.kind {
            // A clear names only the message (SPEC §1.15): encrypted now, to the subscription
            // as it is now.
            JobKind::Clear => match clear_body(&job.message_id, address) {
                Ok(bytes) => bytes,
                Err(reason) => return Verdict::DeadLetter(reason),
            },
            // A repeat (SPEC §1.17) resends the message's own bytes: the web app shows it
            // again with `renotify` (its envelope carries `retry`).
            JobKind::Message | JobKind::Repeat => match job
                .payload
                .as_ref()
                .filter(|p| p.kind == PayloadKind::WebPush)
            {
                Some(payload) => payload.bytes.clone(),
                None => return Verdict::DeadLetter("corrupt_payload".into()),
            },
        };
        // A scheme other than http(s) was paired before pairing checked it: never sendable.
        let Some(endpoint) = url::Url::parse(&address.endpoint)
            .ok()
            .filter(|url| subscription::check_scheme(url, true).is_ok())
        else {
            return Verdict::DeadLetter("corrupt_subscription".into());
        };
        let now = chrono::DateTime::from_timestamp_millis(now_ms).unwrap_or_default();
        let request = match message::build(
            message::Delivery {
                endpoint: &endpoint,
                ciphertext,
                remaining_ttl: remaining,
                priority: job.priority.unwrap_or_default(),
                // A clear takes no `Topic`: it would replace a newer message of the key still
                // waiting at the push service.
                key: job.key.as_deref().filter(|_| job.kind.is_message()),
            },
            &self.signer,
            now,
        ) {
            Ok(request) => request,
            Err(e) => return Verdict::DeadLetter(format!("VAPID: {e}")),
        };
        outcome::classify(&self.client.send(&request).await)
    }
}
