//! Wire types of heartbeats (SPEC §1.18), shared by the relay that answers them and the CLI
//! that sends them (`reflecto ping`, `reflecto heartbeats`).

use serde::{Deserialize, Serialize};

/// What a heartbeat is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum HeartbeatState {
    /// Pinged in time (or not yet due)
    Up,
    /// Its deadline passed without a ping; the owner was told once
    Late,
    /// It reported a failure (`POST /v1/heartbeats/{name}/fail`)
    Failed,
}

impl HeartbeatState {
    pub fn as_str(self) -> &'static str {
        match self {
            HeartbeatState::Up => "up",
            HeartbeatState::Late => "late",
            HeartbeatState::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<HeartbeatState> {
        match s {
            "up" => Some(HeartbeatState::Up),
            "late" => Some(HeartbeatState::Late),
            "failed" => Some(HeartbeatState::Failed),
            _ => None,
        }
    }
}

impl std::fmt::Display for HeartbeatState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A heartbeat as the relay describes it: the answer to a ping and an entry of the list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct HeartbeatView {
    #[schema(min_length = 1, max_length = 64, pattern = "^[A-Za-z0-9._-]{1,64}$")]
    pub name: String,
    /// The expected interval between pings, as a duration (`90s`, `45m`, `12h`, `1d`)
    #[schema(example = "1d")]
    pub every: String,
    /// How long past `next_due_at` the alarm waits, as a duration
    #[schema(example = "1h")]
    pub grace: String,
    pub state: HeartbeatState,
    /// RFC 3339, UTC, milliseconds
    #[schema(format = DateTime)]
    pub last_ping_at: String,
    /// `last_ping_at + every` (RFC 3339); the alarm is sent `grace` later
    #[schema(format = DateTime)]
    pub next_due_at: String,
}

/// `GET /v1/heartbeats`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct HeartbeatList {
    /// The owner's heartbeats by name
    pub heartbeats: Vec<HeartbeatView>,
}

/// The body of a ping: both durations optional (they may come in the query instead; the
/// query wins). Unknown keys are ignored.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, utoipa::ToSchema)]
pub struct HeartbeatPing {
    /// 1 minute – 31 days; required on the first ping
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(pattern = "^[0-9]{1,9}[smhd]$", example = "1d")]
    pub every: Option<String>,
    /// 0 – 1 day; default a tenth of `every`, at most 1 h
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(pattern = "^[0-9]{1,9}[smhd]$", example = "1h")]
    pub grace: Option<String>,
}
