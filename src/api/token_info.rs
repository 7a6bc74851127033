//! `GET /v1/token`'s body: what the relay knows about the presented token (never its secret).

use super::Priority;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TokenInfo {
    /// `tok_…`
    pub id: String,
    /// Shown on devices as the notification's source.
    pub label: String,
    /// The owner: the user whose devices receive.
    pub user: String,
    pub priority_cap: Option<Priority>,
    pub scope_devices: Option<String>,
    /// An `rfk_test_` token.
    pub test: bool,
}
