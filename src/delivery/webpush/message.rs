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
}

/// Builds the request; the VAPID token is signed for `now` (the worker's injectable clock).
pub fn build(
    delivery: Delivery<'_>,
    vapid: &VapidSigner,
    now: DateTime<Utc>,
) -> Result<PushRequest, VapidError> {
    let authorization = vapid.authorization(delivery.endpoint, now)?;
    Ok(PushRequest {
        url: delivery.endpoint.clone(),
        headers: vec![
            ("content-encoding", "aes128gcm".to_owned()),
            ("content-type", "application/octet-stream".to_owned()),
            ("ttl", delivery.remaining_ttl.to_string()),
            (
                "urgency",
                Urgency::for_priority(delivery.priority).as_str().to_owned(),
            ),
            ("authorization", authorization),
        ],
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
}
