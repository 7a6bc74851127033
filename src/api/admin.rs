//! The operator API's wire types (SPEC §1.19): what `/v1/admin/*` answers and takes, shared by
//! the relay and `reflecto admin --server`, so both print the same thing from the same shape.

use super::Priority;
use serde::{Deserialize, Serialize};

/// An audit action (SPEC §1.19): the exact wire names.
pub const AUDIT_ACTIONS: [&str; 10] = [
    "user.add",
    "user.remove",
    "token.create",
    "token.revoke",
    "device.add",
    "device.pair",
    "device.remove",
    "pairing.create",
    "pairing.invalidate",
    "admin.new_ip",
];

/// One audit entry: who changed what, never a secret, code or message text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AuditEntry {
    /// Increasing; pass the last one of a page as `before` for the next page.
    pub id: i64,
    /// RFC 3339.
    pub at: String,
    /// `cli`, `admin:<token label>` or `device:<id>`.
    pub actor: String,
    /// One of `user.add`, `user.remove`, `token.create`, `token.revoke`, `device.add`,
    /// `device.pair`, `device.remove`, `pairing.create`, `pairing.invalidate`, `admin.new_ip`.
    pub action: String,
    /// The user name, token id or device id it concerns (empty when it concerns none).
    pub target: String,
    /// The client address of an API or pairing request; `null` from the CLI.
    pub ip: Option<String>,
}

/// A page of the audit log, newest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AuditPage {
    pub items: Vec<AuditEntry>,
}

/// `POST /v1/admin/users`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct NewUserRequest {
    /// 1–64 bytes without control characters; surrounding spaces are trimmed.
    #[schema(max_length = 64, pattern = r"^ *[^\x00-\x20\x7f][^\x00-\x1f\x7f]*$")]
    pub name: String,
}

/// A user as the operator API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AdminUser {
    pub name: String,
    /// RFC 3339.
    pub created_at: String,
}

/// A sender or admin token as listed (never its secret).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AdminToken {
    /// `tok_…`
    pub id: String,
    /// An admin (`rfa_live_`) token: it has no user.
    pub admin: bool,
    /// The owner of a sender token; `null` for an admin token.
    pub user: Option<String>,
    pub label: String,
    pub priority_cap: Option<Priority>,
    pub scope_devices: Option<String>,
    pub test: bool,
    pub revoked: bool,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339; `null`: never used.
    pub last_used_at: Option<String>,
}

/// `POST /v1/admin/tokens`: a sender token for `user`, or (`admin: true`) an admin token.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, utoipa::ToSchema)]
pub struct NewTokenRequest {
    #[serde(default)]
    pub admin: bool,
    /// No NUL byte, as in every name, id and label the operator API is given: PostgreSQL
    /// refuses one as text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(pattern = r"^[^\x00]*$")]
    pub user: Option<String>,
    #[schema(pattern = r"^[^\x00]*$")]
    pub label: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority_cap: Option<Priority>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(pattern = r"^[^\x00]*$")]
    pub scope_devices: Option<String>,
    #[serde(default)]
    pub test: bool,
}

/// A created token: `token` is its secret, shown this once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CreatedToken {
    /// `rfk_live_…`, `rfk_test_…` or `rfa_live_…`.
    pub token: String,
    #[serde(flatten)]
    pub record: AdminToken,
}

/// A device as the operator API shows it (never its credential or push target).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AdminDevice {
    /// `dev_…`
    pub id: String,
    pub user: String,
    pub label: String,
    /// `android`, `extension` or `webpush`.
    #[serde(rename = "type")]
    pub device_type: String,
    pub public_key: Option<String>,
    pub reachable: bool,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339; `null`: never seen.
    pub last_seen_at: Option<String>,
}

/// `POST /v1/admin/pairings`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct NewPairingRequest {
    #[schema(pattern = r"^[^\x00]*$")]
    pub user: String,
}

/// A pairing code with the link that fills it in and that link as a QR code.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Pairing {
    /// Six digits, single use.
    pub code: String,
    /// RFC 3339: 10 minutes after creation.
    pub expires_at: String,
    /// `<public url>/app/#code=<code>`.
    pub link: String,
    /// An SVG QR code of `link`.
    pub qr_svg: String,
}

/// One device's delivery of a message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AdminDelivery {
    pub device_id: String,
    /// As in `GET /v1/messages/{id}`: `queued`, `leased`, `pending`, `delivered`, `failed`,
    /// `expired`, `superseded`, `cancelled`.
    pub state: String,
    /// RFC 3339: the state's last change.
    pub updated_at: String,
}

/// A message as the operator sees it: where it went and how far, never its text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AdminMessage {
    /// `msg_…`
    pub id: String,
    pub user: String,
    /// The sending token's id (`null` when it was revoked and removed since).
    pub token_id: Option<String>,
    pub key: Option<String>,
    /// RFC 3339.
    pub created_at: String,
    pub cleared_at: Option<String>,
    pub acknowledged_at: Option<String>,
    pub deliveries: Vec<AdminDelivery>,
}

/// A page of messages, newest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct MessagePage {
    pub items: Vec<AdminMessage>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct QueueCounts {
    pub queued: i64,
    pub leased: i64,
    pub pending: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DeliveryCounts {
    pub delivered: i64,
    pub failed: i64,
    pub expired: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AdminCounts {
    pub users: i64,
    pub devices: i64,
    /// Unrevoked sender and admin tokens.
    pub tokens: i64,
    pub messages_24h: i64,
    pub deliveries_24h: DeliveryCounts,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AllowedActions {
    /// `admin backup` works on this store (SQLite).
    pub backup: bool,
    /// `admin copy` works from this store (SQLite).
    pub copy: bool,
    /// Pairing codes can be made.
    pub pair: bool,
}

/// `GET /v1/admin/status`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AdminStatus {
    pub version: String,
    /// RFC 3339: when this relay started.
    pub started_at: String,
    /// `sqlite` or `postgres`.
    pub store: String,
    /// As `GET /health/ready` answers.
    #[schema(value_type = Object)]
    pub health: serde_json::Value,
    pub queue: QueueCounts,
    pub counts: AdminCounts,
    pub allowed_actions: AllowedActions,
}

/// One event of `GET /v1/admin/events` (SPEC §1.19), for live views: an accepted send, or a
/// delivery's outcome. Never a message's text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum AdminEvent {
    /// A send was accepted for these devices.
    Send {
        id: String,
        user: String,
        devices: Vec<String>,
    },
    /// A delivery ended: `delivered`, `failed` or `expired`.
    Delivery {
        id: String,
        device_id: String,
        state: String,
    },
}
