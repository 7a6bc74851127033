//! The canonical send request: what every body encoding normalizes to, what the envelope's
//! payload is, and what `reflecto send` builds from its flags.

use super::Priority;
use serde::{Deserialize, Serialize};

/// A validated, normalized send request. Absent optional fields stay `None` and are omitted
/// when serialized, so the envelope payload carries only what the sender gave.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SendRequest {
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub priority: Option<Priority>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url_title: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actions: Option<Vec<Action>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub markdown: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ttl: Option<u64>,
}

impl SendRequest {
    pub fn priority(&self) -> Priority {
        self.priority.unwrap_or_default()
    }

    pub fn ttl_seconds(&self) -> u64 {
        self.ttl.unwrap_or(super::MAX_TTL_SECONDS)
    }

    pub fn device_selector(&self) -> &str {
        self.device.as_deref().unwrap_or("all")
    }
}

/// A button on the notification that opens a URL.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Action {
    pub label: String,
    pub url: String,
}
