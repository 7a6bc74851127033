//! The one validation and normalization engine (SPEC §1.1, §1.4, §1.5). The relay runs every
//! request through it, and `reflecto send` runs its flags through it before any network I/O,
//! so a rule exists exactly once.
//!
//! The pipeline is: body bytes → [`body`] (any encoding → one JSON object) → [`fields`] (the
//! field table: types, byte caps, truncation, defaults) → [`envelope`] (the queued JSON and its
//! size cap). [`devices`] resolves the device selector and token scope against the owner's
//! devices.

pub mod body;
pub mod devices;
pub mod envelope;
pub mod fields;
pub mod heartbeat;
pub mod tail;

pub use crate::api::Envelope;
pub use body::{BodyKind, parse_body};
pub use envelope::build_envelope;
pub use fields::{Validated, normalize};
pub use tail::keep_tail;

use crate::api::ApiError;

/// Body bytes and Content-Type in, a normalized request (with its warnings) out.
pub fn validate_send(content_type: Option<&str>, body: &[u8]) -> Result<Validated, ApiError> {
    let fields = parse_body(content_type, body, fields::KNOWN_KEYS)?;
    normalize(&fields)
}

/// Cuts `s` to at most `max` bytes without splitting a UTF-8 character.
pub fn truncate_utf8(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::truncate_utf8;

    #[test]
    fn truncation_respects_char_boundaries() {
        assert_eq!(truncate_utf8("abc", 5), "abc");
        assert_eq!(truncate_utf8("abcdef", 3), "abc");
        // "é" is two bytes: cutting at 2 would split it.
        assert_eq!(truncate_utf8("aé", 2), "a");
        assert_eq!(truncate_utf8("a€", 3), "a");
        assert_eq!(truncate_utf8("a€", 4), "a€");
    }
}
