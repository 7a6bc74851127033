//! The HTTP request for one Web Push delivery (RFC 8030 §5, SPEC §1.13), built as a plain value
//! so that what goes on the wire is unit-tested without a network.

use super::vapid::{VapidError, VapidSigner};
use crate::api::Priority;
use chrono::{DateTime, Utc};
use url::Url;

/// RFC 8030 §5.3 urgency; push services use it to decide whether to wake a phone on battery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Urgency {
    VeryLow,
    Low,
    Normal,
    High,
}

impl Urgency {
    pub fn for_priority(priority: Priority) -> Urgency {
        match priority {
            Priority::Min => Urgency::VeryLow,
            Priority::Low => Urgency::Low,
            Priority::Default => Urgency::Normal,
            Priority::High | Priority::Urgent => Urgency::High,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Urgency::VeryLow => "very-low",
            Urgency::Low => "low",
            Urgency::Normal => "normal",
            Urgency::High => "high",
        }
    }
}

/// One POST to a subscription endpoint.
#[derive(Clone)]
pub struct PushRequest {
    pub url: Url,
    /// Header names in lowercase, as HTTP/2 sends them.
    pub headers: Vec<(&'static str, String)>,
    /// The ciphertext stored at accept time, resent unchanged on a retry.
    pub body: Vec<u8>,
}

// The URL is a capability and the Authorization header a bearer token: keep both out of logs.
impl std::fmt::Debug for PushRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PushRequest")
            .field("origin", &self.url.origin().ascii_serialization())
            .field("body_len", &self.body.len())
            .finish_non_exhaustive()
    }
}

/// What a delivery needs besides the stored ciphertext.
pub struct Delivery<'a> {
    pub endpoint: &'a Url,
    pub ciphertext: Vec<u8>,
    /// Seconds the message may still wait at the push service: the job's remaining ttl.
    pub remaining_ttl: u64,
    pub priority: Priority,
    /// The send's key (SPEC §1.15): the push service keeps only the newest message per topic.
    pub key: Option<&'a str>,
}

/// RFC 8030 §5.4's `Topic` for a key: at most 32 characters of the URL-safe base64 alphabet, so
/// the first 32 of the base64url SHA-256 of the key (the key itself may hold `.` and `:`).
pub fn topic(key: &str) -> String {
    use base64::Engine;
    use sha2::Digest;
    let digest = sha2::Sha256::digest(key.as_bytes());
    let mut encoded = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest);
    encoded.truncate(32);
    encoded
}

/// Builds the request; the VAPID token is signed for `now` (the worker's injectable clock).
pub fn build(
    delivery: Delivery<'_>,
    vapid: &VapidSigner,
    now: DateTime<Utc>,
) -> Result<PushRequest, VapidError> {
    let authorization = vapid.authorization(delivery.endpoint, now)?;
    let mut headers = vec![
        ("content-encoding", "aes128gcm".to_owned()),
        ("content-type", "application/octet-stream".to_owned()),
        ("ttl", delivery.remaining_ttl.to_string()),
        (
            "urgency",
            Urgency::for_priority(delivery.priority).as_str().to_owned(),
        ),
        ("authorization", authorization),
    ];
    if let Some(key) = delivery.key {
        headers.push(("topic", topic(key)));
    }
    Ok(PushRequest {
        url: delivery.endpoint.clone(),
        headers,
        body: delivery.ciphertext,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delivery::webpush::vapid::{Subject, VapidKey};

    fn header<'a>(request: &'a PushRequest, name: &str) -> &'a str {
        request
            .headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or_else(|| panic!("no {name} header"))
    }

    #[test]
    fn request_carries_every_header_push_services_check() {
        let key = VapidKey::generate();
        let subject = Subject::parse("mailto:ops@example.org").unwrap();
        let signer = VapidSigner::new(key.clone(), subject.clone());
        let endpoint = Url::parse("https://push.example.net:8443/p/abc").unwrap();
        let now = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let request = build(
            Delivery {
                endpoint: &endpoint,
                ciphertext: vec![1, 2, 3],
                remaining_ttl: 3599,
                priority: Priority::Urgent,
                key: None,
            },
            &signer,
            now,
        )
        .unwrap();
        assert_eq!(request.url, endpoint);
        assert_eq!(request.body, vec![1, 2, 3]);
        assert_eq!(header(&request, "content-encoding"), "aes128gcm");
        assert_eq!(header(&request, "content-type"), "application/octet-stream");
        assert_eq!(header(&request, "ttl"), "3599");
        assert_eq!(header(&request, "urgency"), "high");
        assert_eq!(
            header(&request, "authorization"),
            key.authorization(&endpoint, &subject, now).unwrap()
        );
        let shown = format!("{request:?}");
        assert!(
            !shown.contains("/p/abc") && !shown.contains("vapid"),
            "{shown}"
        );
    }

    #[test]
    fn urgency_follows_priority() {
        let urgencies: Vec<&str> = Priority::ALL
            .into_iter()
            .map(|p| Urgency::for_priority(p).as_str())
            .collect();
        assert_eq!(urgencies, ["very-low", "low", "normal", "high", "high"]);
    }

    /// SPEC §1.15: a key becomes the `Topic` header, the first 32 characters of the base64url
    /// SHA-256 of the key; no key, no topic.
    #[test]
    fn a_key_is_the_topic() {
        let signer = VapidSigner::new(
            VapidKey::generate(),
            Subject::parse("mailto:ops@example.org").unwrap(),
        );
        let endpoint = Url::parse("https://push.example.net/p/abc").unwrap();
        let now = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let request = |key| {
            build(
                Delivery {
                    endpoint: &endpoint,
                    ciphertext: vec![1],
                    remaining_ttl: 60,
                    priority: Priority::Default,
                    key,
                },
                &signer,
                now,
            )
            .unwrap()
        };
        // sha256("ci:42"), base64url, first 32 characters (computed independently).
        assert_eq!(
            header(&request(Some("ci:42")), "topic"),
            "sy0T9JlonLu3Jyosynb6XRAEWcU-1vPx"
        );
        assert_eq!(topic("ci:42").len(), 32);
        assert!(request(None).headers.iter().all(|(n, _)| *n != "topic"));
    }
}
