//! `GET /v1/messages/{id}` (SPEC §1.10): per-device delivery state, shared by the relay that
//! answers it and by `reflecto status` / `send --wait` that follow a message.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct MessageView {
    #[schema(pattern = "^msg_[0-9a-f]{32}$")]
    pub id: String,
    /// RFC 3339, UTC, milliseconds
    #[schema(format = DateTime)]
    pub created_at: String,
    pub deliveries: Vec<DeliveryView>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DeliveryView {
    #[schema(pattern = "^dev_[0-9a-f]{16}$")]
    pub device_id: String,
    #[serde(rename = "type")]
    #[schema(value_type = crate::api::DeviceType)]
    pub device_type: String,
    /// queued | delivered | failed | expired
    #[schema(pattern = "^(queued|delivered|failed|expired)$")]
    pub state: String,
    pub attempts: i64,
    pub last_error: Option<String>,
    /// RFC 3339, UTC, milliseconds; null once final
    #[schema(format = DateTime)]
    pub next_attempt_at: Option<String>,
}

impl DeliveryView {
    /// Whether this delivery has ended (delivered, failed or expired) and will not change.
    pub fn is_final(&self) -> bool {
        matches!(self.state.as_str(), "delivered" | "failed" | "expired")
    }
}

impl MessageView {
    /// Every delivery has ended.
    pub fn is_final(&self) -> bool {
        self.deliveries.iter().all(DeliveryView::is_final)
    }

    /// Every delivery ended as `delivered` (vacuously true with no target device).
    pub fn all_delivered(&self) -> bool {
        self.deliveries.iter().all(|d| d.state == "delivered")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_shape_is_the_relays() {
        let text = r#"{"id":"msg_1","created_at":"2026-01-01T00:00:00.000Z","deliveries":[{"device_id":"dev_1","type":"android","state":"queued","attempts":2,"last_error":"UNAVAILABLE","next_attempt_at":null}]}"#;
        let view: MessageView = serde_json::from_str(text).unwrap();
        assert!(!view.is_final());
        assert_eq!(serde_json::to_string(&view).unwrap(), text);
    }
}
