//! The status long poll's request headers (SPEC §2.2): `If-None-Match` (the ETag the client
//! already has) and `Prefer: wait=N` (RFC 7240; N over 60 counts as 60). Neither refuses a
//! request: a garbled `If-None-Match` matches nothing, and a preference the relay does not
//! understand is ignored, as RFC 7240 asks.

use axum::extract::FromRequestParts;
use axum::http::HeaderMap;
use axum::http::request::Parts;
use std::convert::Infallible;
use std::time::Duration;

/// The longest a request is held.
pub const MAX_WAIT: Duration = Duration::from_secs(60);

/// What the client already has and how long it will wait for something else.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct LongPoll {
    /// The entity tags of `If-None-Match` (weak ones compared by their opaque part, as
    /// RFC 9110 §13.1.2 does); `*` is `["*"]`.
    pub known: Vec<String>,
    /// `Prefer: wait=N`, at most [`MAX_WAIT`]; zero without the preference.
    pub wait: Duration,
}

impl LongPoll {
    /// Whether `etag` (a quoted strong tag) is one the client already has.
    pub fn has(&self, etag: &str) -> bool {
        self.known.iter().any(|k| k == "*" || k == etag)
    }

    /// Whether the client asked to be held while its tag is current: only for a tag it named
    /// (`*` asks nothing to wait for).
    pub fn holds_for(&self, etag: &str) -> bool {
        !self.wait.is_zero() && self.known.iter().any(|k| k == etag)
    }

    fn of(headers: &HeaderMap) -> LongPoll {
        let known = headers
            .get_all("if-none-match")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(|tag| tag.trim().trim_start_matches("W/").to_owned())
            .filter(|tag| {
                tag == "*" || (tag.len() >= 2 && tag.starts_with('"') && tag.ends_with('"'))
            })
            .collect();
        let wait = headers
            .get_all("prefer")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .find_map(wait_preference)
            .unwrap_or_default();
        LongPoll { known, wait }
    }
}

/// `wait=N` (the value may be quoted; parameters after `;` are ignored), capped at [`MAX_WAIT`].
fn wait_preference(preference: &str) -> Option<Duration> {
    let token = preference.split(';').next()?.trim();
    let (name, value) = token.split_once('=')?;
    if !name.trim().eq_ignore_ascii_case("wait") {
        return None;
    }
    let value = value.trim().trim_matches('"');
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // Digits only: too many of them is still "more than 60".
    let seconds = value.parse::<u64>().unwrap_or(u64::MAX);
    Some(Duration::from_secs(seconds).min(MAX_WAIT))
}

impl<S: Send + Sync> FromRequestParts<S> for LongPoll {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Infallible> {
        Ok(LongPoll::of(&parts.headers))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::extract::testing::parts;

    async fn poll(headers: &[(&str, &str)]) -> LongPoll {
        LongPoll::from_request_parts(&mut parts("/", headers), &())
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn wait_is_read_as_rfc_7240_writes_it_and_capped_at_a_minute() {
        assert_eq!(poll(&[]).await, LongPoll::default());
        for (prefer, seconds) in [
            ("wait=10", 10),
            ("WAIT = 5", 5),
            ("respond-async, wait=\"7\"", 7),
            ("wait=30;foo=bar", 30),
            ("wait=61", 60),
            ("wait=99999999999999999999999", 60),
            ("wait=0", 0),
            ("wait=-1", 0),
            ("wait=soon", 0),
            ("handling=lenient", 0),
        ] {
            assert_eq!(
                poll(&[("prefer", prefer)]).await.wait,
                Duration::from_secs(seconds),
                "{prefer}"
            );
        }
    }

    #[tokio::test]
    async fn only_a_named_tag_holds_and_star_matches_without_holding() {
        let tag = "\"0123abcd\"";
        let held = poll(&[("if-none-match", tag), ("prefer", "wait=5")]).await;
        assert!(held.has(tag) && held.holds_for(tag));
        assert!(!held.has("\"other\"") && !held.holds_for("\"other\""));
        let listed = poll(&[("if-none-match", "\"a\", W/\"0123abcd\"")]).await;
        assert!(listed.has(tag) && !listed.holds_for(tag), "no wait asked");
        let star = poll(&[("if-none-match", "*"), ("prefer", "wait=5")]).await;
        assert!(star.has(tag) && !star.holds_for(tag));
        let garbled = poll(&[("if-none-match", "0123abcd")]).await;
        assert!(!garbled.has("\"0123abcd\"") && garbled.known.is_empty());
    }
}
