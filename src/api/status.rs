//! `GET /v1/messages/{id}` (SPEC §1.10): per-device delivery state, shared by the relay that
//! answers it and by `reflecto status` / `send --wait` that follow a message.

use super::DeviceType;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct MessageView {
    #[schema(pattern = "^msg_[0-9a-f]{32}$")]
    pub id: String,
    /// RFC 3339, UTC, milliseconds
    #[schema(format = DateTime)]
    pub created_at: String,
    /// The send's `key` (SPEC §1.15), or null
    #[serde(default)]
    #[schema(pattern = "^[A-Za-z0-9._:-]{1,64}$")]
    pub key: Option<String>,
    /// When the sender cleared it (SPEC §1.15), or null; RFC 3339, UTC, milliseconds
    #[serde(default)]
    #[schema(format = DateTime)]
    pub cleared_at: Option<String>,
    /// The first acknowledgement (SPEC §1.16), or null
    #[serde(default)]
    pub acknowledged: Option<super::clear_ack::Acknowledged>,
    pub deliveries: Vec<DeliveryView>,
    /// The repeats of an urgent message (SPEC §1.17), or null
    #[serde(default)]
    pub repeat: Option<RepeatView>,
    /// The callback's progress (SPEC §1.17), or null when the send named none
    #[serde(default)]
    pub callback: Option<CallbackView>,
}

/// `repeat` of the status (SPEC §1.17).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RepeatView {
    /// Seconds between repeats
    pub retry: u64,
    /// Seconds after the send when repeats stop
    pub expire: u64,
    /// RFC 3339, UTC, milliseconds
    #[schema(format = DateTime)]
    pub expires_at: String,
    /// Deliveries after the first (rounds of repeats so far)
    pub repeats: i64,
}

/// `callback` of the status (SPEC §1.17).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CallbackView {
    /// pending | delivered | failed
    #[schema(pattern = "^(pending|delivered|failed)$")]
    pub state: String,
    /// When it was delivered or given up (RFC 3339), null while pending
    #[schema(format = DateTime)]
    pub at: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DeliveryView {
    #[schema(pattern = "^dev_[0-9a-f]{16}$")]
    pub device_id: String,
    /// The device's label (null once the device was removed), shown beside its id
    pub label: Option<String>,
    #[serde(rename = "type")]
    pub device_type: DeviceType,
    /// queued | delivered | failed | expired | superseded | cancelled
    #[schema(value_type = String, pattern = "^(queued|delivered|failed|expired|superseded|cancelled)$")]
    pub state: DeliveryState,
    pub attempts: i64,
    pub last_error: Option<String>,
    /// RFC 3339, UTC, milliseconds; null once final
    #[schema(format = DateTime)]
    pub next_attempt_at: Option<String>,
    /// When this device acknowledged the message (its first acknowledgement), or null
    #[serde(default)]
    #[schema(format = DateTime)]
    pub acknowledged_at: Option<String>,
}

/// Where one device's delivery of a message stands, as its sender sees it: a job waiting in
/// any form (queued, leased by a worker, pending on a stream) is `queued`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryState {
    Queued,
    Delivered,
    Failed,
    Expired,
    /// A later send with the same key replaced it before delivery (SPEC §1.15).
    Superseded,
    /// The sender cleared the message, or another device acknowledged it, before delivery
    /// (SPEC §1.15, §1.16).
    Cancelled,
}

impl DeliveryState {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Queued => "queued",
            DeliveryState::Delivered => "delivered",
            DeliveryState::Failed => "failed",
            DeliveryState::Expired => "expired",
            DeliveryState::Superseded => "superseded",
            DeliveryState::Cancelled => "cancelled",
        }
    }

    /// Whether the delivery has ended (delivered, failed or expired) and will not change.
    pub fn is_final(self) -> bool {
        self != DeliveryState::Queued
    }
}

impl std::fmt::Display for DeliveryState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl DeliveryView {
    /// Whether this delivery has ended (delivered, failed or expired) and will not change.
    pub fn is_final(&self) -> bool {
        self.state.is_final()
    }
}

impl MessageView {
    /// Every delivery has ended.
    pub fn is_final(&self) -> bool {
        self.deliveries.iter().all(DeliveryView::is_final)
    }

    /// Someone acknowledged the message (`send --wait … --until acknowledged`, `ask`).
    pub fn is_acknowledged(&self) -> bool {
        self.acknowledged.is_some()
    }

    /// Every delivery ended as `delivered` (vacuously true with no target device).
    pub fn all_delivered(&self) -> bool {
        self.deliveries
            .iter()
            .all(|d| d.state == DeliveryState::Delivered)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_shape_is_the_relays() {
        let text = r#"{"id":"msg_1","created_at":"2026-01-01T00:00:00.000Z","key":"build","cleared_at":null,"acknowledged":{"at":"2026-01-01T00:00:01.000Z","device_id":"dev_2","response":"deploy"},"deliveries":[{"device_id":"dev_1","label":"pixel","type":"android","state":"queued","attempts":2,"last_error":"UNAVAILABLE","next_attempt_at":null,"acknowledged_at":null}],"repeat":{"retry":30,"expire":600,"expires_at":"2026-01-01T00:10:00.000Z","repeats":2},"callback":{"state":"pending","at":null}}"#;
        let view: MessageView = serde_json::from_str(text).unwrap();
        assert!(!view.is_final());
        assert_eq!(serde_json::to_string(&view).unwrap(), text);
    }

    #[test]
    fn delivery_states_are_the_wire_words() {
        for (state, word) in [
            (DeliveryState::Queued, "queued"),
            (DeliveryState::Delivered, "delivered"),
            (DeliveryState::Failed, "failed"),
            (DeliveryState::Expired, "expired"),
            (DeliveryState::Superseded, "superseded"),
            (DeliveryState::Cancelled, "cancelled"),
        ] {
            assert_eq!(
                serde_json::to_string(&state).unwrap(),
                format!("\"{word}\"")
            );
            assert_eq!(
                serde_json::from_str::<DeliveryState>(&format!("\"{word}\"")).unwrap(),
                state
            );
            assert_eq!(state.to_string(), word);
            assert_eq!(state.is_final(), word != "queued");
        }
        assert!(serde_json::from_str::<DeliveryState>("\"leased\"").is_err());
    }
}
