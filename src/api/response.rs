//! Success bodies: `/v1/send`'s response and the Pushover shim's.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SendResponse {
    /// `msg_` + 32 lowercase hex
    #[schema(pattern = "^msg_[0-9a-f]{32}$")]
    pub id: String,
    /// Every device a delivery was enqueued for (not yet confirmed on screen)
    pub delivered_to: Vec<DeliveredTo>,
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DeliveredTo {
    #[schema(pattern = "^dev_[0-9a-f]{16}$")]
    pub device_id: String,
    #[serde(rename = "type")]
    pub device_type: DeviceType,
}

/// How a device is reached: FCM for `android`, the relay's own stream for `extension`, Web
/// Push for `webpush` (a browser or UnifiedPush distributor).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum DeviceType {
    Android,
    Extension,
    Webpush,
}

impl DeviceType {
    pub fn as_str(self) -> &'static str {
        match self {
            DeviceType::Android => "android",
            DeviceType::Extension => "extension",
            DeviceType::Webpush => "webpush",
        }
    }

    pub fn parse(s: &str) -> Option<DeviceType> {
        match s.to_ascii_lowercase().as_str() {
            "android" => Some(DeviceType::Android),
            "extension" => Some(DeviceType::Extension),
            "webpush" => Some(DeviceType::Webpush),
            _ => None,
        }
    }
}

impl std::fmt::Display for DeviceType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `POST /v1/messages.json` answers in Pushover's shape: `status` 1 with the request id, or 0
/// with the error codes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ShimResponse {
    /// 1 on success, 0 on failure
    #[schema(maximum = 1)]
    pub status: u8,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errors: Option<Vec<String>>,
    /// Priority 2 only (SPEC §1.17): 30 characters of `A-Z a-z 0-9` for
    /// `GET /1/receipts/{receipt}.json`
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(pattern = "^[A-Za-z0-9]{30}$")]
    pub receipt: Option<String>,
}
