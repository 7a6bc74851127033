//! A browser's `PushSubscription.toJSON()` (SPEC §1.13 pairing) and the checks that make it safe
//! to POST to: the keys must be usable for RFC 8291, and the endpoint must be a public `https`
//! host so that pairing cannot turn the relay into a request-forgery proxy into its own network.
//! `--webpush-allow-local` lifts the address rule and allows `http`, never another scheme.

use base64::Engine;
use base64::engine::general_purpose::{URL_SAFE, URL_SAFE_NO_PAD};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use url::Url;

pub use crate::api::webpush::{SubscriptionJson, SubscriptionKeys};

/// A subscription whose keys parsed and whose endpoint passed the checks.
#[derive(Clone)]
pub struct Subscription {
    pub endpoint: Url,
    pub p256dh: p256::PublicKey,
    pub auth: [u8; 16],
}

impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription")
            .field("origin", &self.endpoint.origin().ascii_serialization())
            .finish_non_exhaustive()
    }
}

/// Why a subscription is refused; the texts are fit for a 400 `invalid_body` message and never
/// quote the endpoint's path (a capability) or the keys.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubscriptionError {
    #[error("subscription.endpoint is not a valid URL")]
    EndpointNotUrl,
    #[error("subscription.endpoint must use https")]
    EndpointNotHttps,
    /// Even `--webpush-allow-local` allows only `http` besides `https` (SPEC §1.13).
    #[error("subscription.endpoint must use https or http")]
    EndpointNotHttp,
    #[error("subscription.endpoint has no host")]
    EndpointNoHost,
    #[error("subscription.endpoint host '{0}' does not resolve")]
    EndpointUnresolvable(String),
    #[error(
        "subscription.endpoint host '{0}' resolves to a {1} address; only public push services are allowed"
    )]
    EndpointNotPublic(String, AddressClass),
    #[error("subscription.keys.p256dh is not base64url")]
    P256dhNotBase64,
    #[error("subscription.keys.p256dh must be an uncompressed P-256 point (65 bytes)")]
    P256dhNotPoint,
    #[error("subscription.keys.auth is not base64url")]
    AuthNotBase64,
    #[error("subscription.keys.auth must be 16 bytes")]
    AuthWrongLength,
}

/// Where an address points, as far as request forgery is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressClass {
    Public,
    Loopback,
    Private,
    LinkLocal,
    UniqueLocal,
    Unspecified,
    Multicast,
    SharedCgnat,
    Documentation,
    Broadcast,
    Reserved,
}

impl std::fmt::Display for AddressClass {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            AddressClass::Public => "public",
            AddressClass::Loopback => "loopback",
            AddressClass::Private => "private",
            AddressClass::LinkLocal => "link-local",
            AddressClass::UniqueLocal => "unique-local",
            AddressClass::Unspecified => "unspecified",
            AddressClass::Multicast => "multicast",
            AddressClass::SharedCgnat => "shared (CGNAT)",
            AddressClass::Documentation => "documentation",
            AddressClass::Broadcast => "broadcast",
            AddressClass::Reserved => "reserved",
        })
    }
}

fn classify_v4(ip: Ipv4Addr) -> AddressClass {
    let [a, b, c, _] = ip.octets();
    if ip.is_unspecified() || a == 0 {
        AddressClass::Unspecified
    } else if ip.is_loopback() {
        AddressClass::Loopback
    } else if ip.is_private() {
        AddressClass::Private
    } else if ip.is_link_local() {
        AddressClass::LinkLocal
    } else if a == 100 && (64..128).contains(&b) {
        AddressClass::SharedCgnat
    } else if ip.is_documentation() || (a == 198 && (b == 18 || b == 19)) {
        // 198.18/15 (benchmarking) is grouped with documentation: never a real push service.
        AddressClass::Documentation
    } else if ip.is_broadcast() {
        AddressClass::Broadcast
    } else if ip.is_multicast() {
        AddressClass::Multicast
    } else if a >= 240 || (a == 192 && b == 0 && c == 0) {
        AddressClass::Reserved
    } else {
        AddressClass::Public
    }
}

fn classify_v6(ip: Ipv6Addr) -> AddressClass {
    // An IPv4-mapped or IPv4-compatible address reaches the IPv4 host it embeds.
    if let Some(v4) = ip.to_ipv4_mapped() {
        return classify_v4(v4);
    }
    let segments = ip.segments();
    if ip.is_unspecified() {
        AddressClass::Unspecified
    } else if ip.is_loopback() {
        AddressClass::Loopback
    } else if ip.is_multicast() {
        AddressClass::Multicast
    } else if segments[0] & 0xffc0 == 0xfe80 {
        AddressClass::LinkLocal
    } else if segments[0] & 0xfe00 == 0xfc00 {
        AddressClass::UniqueLocal
    } else if segments[0] == 0x2001 && segments[1] == 0x0db8 {
        AddressClass::Documentation
    } else if segments[0] == 0x0064 && segments[1] == 0xff9b {
        // NAT64 (64:ff9b::/96) embeds an IPv4 address in the last 32 bits.
        let [.., hi, lo] = segments;
        classify_v4(Ipv4Addr::from(((hi as u32) << 16) | lo as u32))
    } else if segments[..6] == [0; 6] {
        // Deprecated IPv4-compatible ::a.b.c.d.
        let [.., hi, lo] = segments;
        classify_v4(Ipv4Addr::from(((hi as u32) << 16) | lo as u32))
    } else {
        AddressClass::Public
    }
}

/// Classifies one resolved address. Pure, so every range is unit-tested.
pub fn classify_address(ip: IpAddr) -> AddressClass {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

/// Base64url with or without padding, as browsers and libraries differ.
fn decode_b64url(text: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD
        .decode(text)
        .or_else(|_| URL_SAFE.decode(text))
        .ok()
}

impl SubscriptionJson {
    /// The checks that need no network: keys and URL shape.
    pub fn parse(&self) -> Result<Subscription, SubscriptionError> {
        let endpoint = Url::parse(&self.endpoint).map_err(|_| SubscriptionError::EndpointNotUrl)?;
        let p256dh = decode_b64url(&self.keys.p256dh).ok_or(SubscriptionError::P256dhNotBase64)?;
        // from_sec1_bytes also takes a 33-byte compressed point; browsers send uncompressed.
        if p256dh.len() != 65 || p256dh[0] != 0x04 {
            return Err(SubscriptionError::P256dhNotPoint);
        }
        let p256dh = p256::PublicKey::from_sec1_bytes(&p256dh)
            .map_err(|_| SubscriptionError::P256dhNotPoint)?;
        let auth = decode_b64url(&self.keys.auth).ok_or(SubscriptionError::AuthNotBase64)?;
        let auth: [u8; 16] = auth
            .try_into()
            .map_err(|_| SubscriptionError::AuthWrongLength)?;
        Ok(Subscription {
            endpoint,
            p256dh,
            auth,
        })
    }

    /// Parses, then checks the endpoint: `https`, and every address its host resolves to is
    /// public, unless `allow_local` (`--webpush-allow-local`: a distributor on the LAN, tests)
    /// lifts the address rule and allows `http` as well.
    pub async fn validate(&self, allow_local: bool) -> Result<Subscription, SubscriptionError> {
        let subscription = self.parse()?;
        check_scheme(&subscription.endpoint, allow_local)?;
        if !allow_local {
            check_endpoint(&subscription.endpoint).await?;
        }
        Ok(subscription)
    }
}

/// The scheme rule alone: `https`, or `http` too when `allow_local`; never another scheme
/// (`ftp:`, `file:`, `data:`…), which no push service speaks and the HTTP client cannot send
/// to, so such a device could only ever fail.
pub fn check_scheme(endpoint: &Url, allow_local: bool) -> Result<(), SubscriptionError> {
    match endpoint.scheme() {
        "https" => Ok(()),
        "http" if allow_local => Ok(()),
        _ if allow_local => Err(SubscriptionError::EndpointNotHttp),
        _ => Err(SubscriptionError::EndpointNotHttps),
    }
}

/// Refuses a non-https endpoint or one whose host resolves to any non-public address.
pub async fn check_endpoint(endpoint: &Url) -> Result<(), SubscriptionError> {
    check_scheme(endpoint, false)?;
    let host = match endpoint.host() {
        None => return Err(SubscriptionError::EndpointNoHost),
        Some(url::Host::Ipv4(ip)) => return check_addresses("", [IpAddr::V4(ip)]),
        Some(url::Host::Ipv6(ip)) => return check_addresses("", [IpAddr::V6(ip)]),
        Some(url::Host::Domain(domain)) => domain.to_owned(),
    };
    let port = endpoint.port_or_known_default().unwrap_or(443);
    let resolved: Vec<IpAddr> = tokio::net::lookup_host((host.as_str(), port))
        .await
        .map_err(|_| SubscriptionError::EndpointUnresolvable(host.clone()))?
        .map(|socket| socket.ip())
        .collect();
    if resolved.is_empty() {
        return Err(SubscriptionError::EndpointUnresolvable(host));
    }
    check_addresses(&host, resolved)
}

fn check_addresses(
    host: &str,
    addresses: impl IntoIterator<Item = IpAddr>,
) -> Result<(), SubscriptionError> {
    for ip in addresses {
        let class = classify_address(ip);
        if class != AddressClass::Public {
            let shown = if host.is_empty() {
                ip.to_string()
            } else {
                host.to_owned()
            };
            return Err(SubscriptionError::EndpointNotPublic(shown, class));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use p256::elliptic_curve::sec1::ToEncodedPoint;

    fn class(text: &str) -> AddressClass {
        classify_address(text.parse().unwrap())
    }

    #[test]
    fn forbidden_ranges_are_classified() {
        assert_eq!(class("127.0.0.1"), AddressClass::Loopback);
        assert_eq!(class("127.255.0.9"), AddressClass::Loopback);
        assert_eq!(class("10.0.0.1"), AddressClass::Private);
        assert_eq!(class("172.16.0.1"), AddressClass::Private);
        assert_eq!(class("172.31.255.255"), AddressClass::Private);
        assert_eq!(class("192.168.1.1"), AddressClass::Private);
        assert_eq!(class("169.254.169.254"), AddressClass::LinkLocal);
        assert_eq!(class("100.64.0.1"), AddressClass::SharedCgnat);
        assert_eq!(class("100.127.255.254"), AddressClass::SharedCgnat);
        assert_eq!(class("0.0.0.0"), AddressClass::Unspecified);
        assert_eq!(class("0.1.2.3"), AddressClass::Unspecified);
        assert_eq!(class("224.0.0.1"), AddressClass::Multicast);
        assert_eq!(class("255.255.255.255"), AddressClass::Broadcast);
        assert_eq!(class("192.0.2.10"), AddressClass::Documentation);
        assert_eq!(class("203.0.113.5"), AddressClass::Documentation);
        assert_eq!(class("198.18.0.1"), AddressClass::Documentation);
        assert_eq!(class("240.0.0.1"), AddressClass::Reserved);
        assert_eq!(class("::1"), AddressClass::Loopback);
        assert_eq!(class("::"), AddressClass::Unspecified);
        assert_eq!(class("fe80::1"), AddressClass::LinkLocal);
        assert_eq!(class("fc00::1"), AddressClass::UniqueLocal);
        assert_eq!(class("fd12:3456::1"), AddressClass::UniqueLocal);
        assert_eq!(class("ff02::1"), AddressClass::Multicast);
        assert_eq!(class("2001:db8::1"), AddressClass::Documentation);
        assert_eq!(class("::ffff:10.0.0.1"), AddressClass::Private);
        assert_eq!(class("::ffff:127.0.0.1"), AddressClass::Loopback);
        assert_eq!(class("::ffff:169.254.169.254"), AddressClass::LinkLocal);
        assert_eq!(class("64:ff9b::a00:1"), AddressClass::Private);
        assert_eq!(class("::10.0.0.1"), AddressClass::Private);
    }

    #[test]
    fn public_addresses_pass() {
        for ip in [
            "8.8.8.8",
            "142.250.185.78",
            "100.63.255.255",
            "100.128.0.1",
            "172.32.0.1",
            "11.0.0.1",
            "2a00:1450:4001:80b::200a",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
        ] {
            assert_eq!(class(ip), AddressClass::Public, "{ip}");
        }
    }

    fn keys() -> (String, String) {
        let secret = crate::delivery::webpush::vapid::random_secret();
        let point = secret.public_key().to_encoded_point(false);
        (
            URL_SAFE_NO_PAD.encode(point.as_bytes()),
            URL_SAFE_NO_PAD.encode([7u8; 16]),
        )
    }

    fn subscription(endpoint: &str, p256dh: &str, auth: &str) -> SubscriptionJson {
        serde_json::from_value(serde_json::json!({
            "endpoint": endpoint, "expirationTime": null,
            "keys": {"p256dh": p256dh, "auth": auth}
        }))
        .unwrap()
    }

    #[test]
    fn keys_are_checked() {
        let (p256dh, auth) = keys();
        let ok = subscription("https://push.example.net/x", &p256dh, &auth);
        assert!(ok.parse().is_ok());
        // Padded base64url is accepted as well.
        let padded = format!("{auth}==");
        assert!(
            subscription("https://push.example.net/x", &p256dh, &padded)
                .parse()
                .is_ok()
        );
        let bad = |p: &str, a: &str| {
            subscription("https://push.example.net/x", p, a)
                .parse()
                .unwrap_err()
        };
        assert_eq!(bad("***", &auth), SubscriptionError::P256dhNotBase64);
        assert_eq!(
            bad(&URL_SAFE_NO_PAD.encode([4u8; 65]), &auth),
            SubscriptionError::P256dhNotPoint
        );
        assert_eq!(
            bad(&URL_SAFE_NO_PAD.encode([4u8; 33]), &auth),
            SubscriptionError::P256dhNotPoint
        );
        assert_eq!(
            bad(&p256dh, &URL_SAFE_NO_PAD.encode([1u8; 15])),
            SubscriptionError::AuthWrongLength
        );
        assert_eq!(bad(&p256dh, "%%"), SubscriptionError::AuthNotBase64);
        assert_eq!(
            subscription("not a url", &p256dh, &auth)
                .parse()
                .unwrap_err(),
            SubscriptionError::EndpointNotUrl
        );
    }

    #[tokio::test]
    async fn endpoint_must_be_public_https_unless_allowed() {
        let (p256dh, auth) = keys();
        for endpoint in [
            "https://127.0.0.1/push",
            "https://10.0.0.1/push",
            "https://169.254.169.254/latest",
            "https://[::1]:8443/push",
            "https://[::ffff:10.0.0.1]/push",
            "https://localhost/push",
        ] {
            let sub = subscription(endpoint, &p256dh, &auth);
            let err = sub.validate(false).await.unwrap_err();
            assert!(
                matches!(err, SubscriptionError::EndpointNotPublic(..)),
                "{endpoint}: {err:?}"
            );
            assert!(err.to_string().contains("only public push services"));
            assert!(sub.validate(true).await.is_ok(), "{endpoint}");
        }
        let plain = subscription("http://push.example.net/x", &p256dh, &auth);
        assert_eq!(
            plain.validate(false).await.unwrap_err(),
            SubscriptionError::EndpointNotHttps
        );
        assert!(plain.validate(true).await.is_ok());
        let public_ip = subscription("https://8.8.8.8/push", &p256dh, &auth);
        assert!(public_ip.validate(false).await.is_ok());
    }

    #[tokio::test]
    async fn an_ftp_endpoint_is_refused_even_with_webpush_allow_local() {
        let (p256dh, auth) = keys();
        for endpoint in [
            "ftp://127.0.0.1:2121/push/x",
            "ftp://push.example.net/push/x",
            "file:///etc/passwd",
            "ws://127.0.0.1:9/push/x",
            "gopher://127.0.0.1:70/x",
        ] {
            let sub = subscription(endpoint, &p256dh, &auth);
            assert_eq!(
                sub.validate(true).await.unwrap_err(),
                SubscriptionError::EndpointNotHttp,
                "{endpoint}"
            );
            assert_eq!(
                sub.validate(false).await.unwrap_err(),
                SubscriptionError::EndpointNotHttps,
                "{endpoint}"
            );
        }
        let url = |text: &str| Url::parse(text).unwrap();
        assert_eq!(check_scheme(&url("https://a.example/p"), false), Ok(()));
        assert_eq!(check_scheme(&url("http://a.example/p"), true), Ok(()));
        assert_eq!(
            check_scheme(&url("http://a.example/p"), false),
            Err(SubscriptionError::EndpointNotHttps)
        );
        assert_eq!(
            SubscriptionError::EndpointNotHttp.to_string(),
            "subscription.endpoint must use https or http"
        );
    }

    #[test]
    fn debug_output_hides_the_endpoint_and_keys() {
        let (p256dh, auth) = keys();
        let json = subscription("https://push.example.net/secret-path", &p256dh, &auth);
        let shown = format!("{json:?} {:?}", json.parse().unwrap());
        assert!(
            !shown.contains("secret-path") && !shown.contains(&auth),
            "{shown}"
        );
    }
}
