//! Wire types shared by the client and the relay (SPEC §1.1–§1.6): one definition of every
//! request, response, warning and error code, so the two halves can never drift apart.

pub mod admin;
pub mod clear_ack;
mod envelope;
mod error;
pub mod heartbeat;
mod priority;
mod request;
mod response;
pub mod sealed;
pub mod status;
pub mod stream;
pub mod token;
mod token_info;
pub mod url_rule;
mod warning;
pub mod webpush;

pub use envelope::Envelope;
pub use error::{
    ApiError, EXIT_CODES, ErrorCode, ErrorReply, FlatErrorBody, NestedErrorBody, explain_exit_code,
};
pub use priority::Priority;
pub use request::{Action, RESPONSE_PATTERN, SendRequest, nullable_url_schema, url_schema};
pub use response::{DeliveredTo, DeviceType, SendResponse, ShimResponse};
pub use token_info::TokenInfo;
pub use warning::Warning;

/// Largest message, in UTF-8 bytes.
pub const MAX_MESSAGE_BYTES: usize = 1500;
/// Largest title, in UTF-8 bytes.
pub const MAX_TITLE_BYTES: usize = 100;
/// Largest URL (top-level or in an action), in UTF-8 bytes.
pub const MAX_URL_BYTES: usize = 512;
/// Largest url_title, in UTF-8 bytes.
pub const MAX_URL_TITLE_BYTES: usize = 32;
/// Tags kept; the rest are dropped with a warning.
pub const MAX_TAGS: usize = 5;
/// Largest tag, in UTF-8 bytes; longer tags are cut with a warning.
pub const MAX_TAG_BYTES: usize = 32;
/// Actions kept; the rest are dropped with a warning.
pub const MAX_ACTIONS: usize = 3;
/// Largest action label, in UTF-8 bytes.
pub const MAX_ACTION_LABEL_BYTES: usize = 32;
/// SPEC §1.16: the longest response of an action, in bytes (its characters are ASCII).
pub const MAX_RESPONSE_BYTES: usize = 32;
/// Largest device selector, in characters (not bytes).
pub const MAX_DEVICE_CHARS: usize = 256;
/// SPEC §1.15: the longest `key`, in bytes (its characters are ASCII).
pub const MAX_KEY_BYTES: usize = 64;
/// SPEC §1.17: an urgent message repeats every `retry` seconds within these bounds…
pub const REPEAT_RETRY_SECONDS: std::ops::RangeInclusive<u64> = 30..=3600;
/// …until `expire` seconds after it was accepted (and never past its ttl).
pub const REPEAT_EXPIRE_SECONDS: std::ops::RangeInclusive<u64> = 60..=10800;
/// Largest and default ttl, in seconds (72 h).
pub const MAX_TTL_SECONDS: u64 = 259_200;
/// Largest serialized envelope, in bytes.
pub const MAX_ENVELOPE_BYTES: usize = 2048;
/// Largest raw HTTP body, rejected before parsing.
pub const MAX_RAW_BODY_BYTES: usize = 64 * 1024;
/// Largest body of a hook (SPEC §1.18): a tool's own JSON, rejected before parsing.
pub const MAX_HOOK_BODY_BYTES: usize = 256 * 1024;
