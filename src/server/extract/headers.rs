//! Request headers with a rule of their own: `Idempotency-Key` (SPEC §1.1) and a desktop
//! stream's `Last-Event-ID` (§1.10).

use crate::api::ErrorCode;
use crate::server::error::Failure;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;

/// The `Idempotency-Key` header, if sent: 1–64 visible ASCII characters (400 otherwise).
#[derive(Debug, PartialEq, Eq)]
pub struct IdempotencyKey(pub Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for IdempotencyKey {
    type Rejection = Failure;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Failure> {
        let Some(value) = parts.headers.get("idempotency-key") else {
            return Ok(IdempotencyKey(None));
        };
        let key = value
            .to_str()
            .ok()
            .filter(|k| (1..=64).contains(&k.len()) && k.bytes().all(|b| b.is_ascii_graphic()));
        match key {
            Some(key) => Ok(IdempotencyKey(Some(key.to_owned()))),
            None => Err(Failure::new(
                ErrorCode::InvalidBody,
                "Idempotency-Key must be 1–64 visible ASCII characters",
            )),
        }
    }
}

/// Where a desktop stream starts: after `Last-Event-ID`, or (0) from the first unacked event.
#[derive(Debug, PartialEq, Eq)]
pub struct LastEventId(pub i64);

impl<S: Send + Sync> FromRequestParts<S> for LastEventId {
    type Rejection = Failure;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Failure> {
        match parts.headers.get("last-event-id") {
            None => Ok(LastEventId(0)),
            // Read exactly as an ack id is, so the header takes what its documented pattern
            // says (`-0` and a 19th digit were taken here and refused there).
            Some(v) => v
                .to_str()
                .ok()
                .and_then(crate::api::stream::EventId::seq_of_text)
                .map(LastEventId)
                .ok_or_else(|| {
                    Failure::new(
                        ErrorCode::InvalidBody,
                        "Last-Event-ID must be an event id from this stream",
                    )
                }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::extract::testing::parts;

    async fn key(value: Option<&str>) -> Result<Option<String>, ErrorCode> {
        let headers: Vec<(&str, &str)> =
            value.map(|v| ("idempotency-key", v)).into_iter().collect();
        IdempotencyKey::from_request_parts(&mut parts("/", &headers), &())
            .await
            .map(|IdempotencyKey(k)| k)
            .map_err(|f| f.error.code)
    }

    #[tokio::test]
    async fn idempotency_keys_are_one_to_64_visible_ascii_characters() {
        assert_eq!(key(None).await, Ok(None));
        assert_eq!(key(Some("k-1")).await, Ok(Some("k-1".into())));
        let longest = "k".repeat(64);
        assert_eq!(key(Some(&longest)).await, Ok(Some(longest.clone())));
        for refused in ["", "a b", &"k".repeat(65), "ключ"] {
            assert_eq!(
                key(Some(refused)).await,
                Err(ErrorCode::InvalidBody),
                "{refused:?}"
            );
        }
    }

    async fn resume(value: Option<&str>) -> Option<i64> {
        let headers: Vec<(&str, &str)> = value.map(|v| ("last-event-id", v)).into_iter().collect();
        LastEventId::from_request_parts(&mut parts("/", &headers), &())
            .await
            .ok()
            .map(|LastEventId(seq)| seq)
    }

    /// The documented pattern is `\+?[0-9]{1,18}` between tabs and spaces; the header was
    /// parsed as any `i64`, so `-0` and 19 digits were taken though the document refused them.
    #[tokio::test]
    async fn last_event_id_takes_exactly_what_its_pattern_documents() {
        assert_eq!(resume(None).await, Some(0));
        assert_eq!(resume(Some(" +42\t")).await, Some(42));
        let most = "9".repeat(18);
        assert_eq!(resume(Some(&most)).await, Some(999_999_999_999_999_999));
        for refused in ["-0", "-1", &"0".repeat(19), "4 2", "x", ""] {
            assert_eq!(resume(Some(refused)).await, None, "{refused:?}");
        }
    }
}
