//! VAPID (RFC 8292): the relay's P-256 identity towards push services. We sign the ES256 JWT
//! ourselves because web-push-native's builder drops a non-default port from `aud` and sets
//! `exp` to the message ttl, and RFC 8292 needs the full origin and at most 24 h.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};
use rand::RngCore;
use std::collections::HashMap;
use std::sync::Mutex;
use url::Url;

/// RFC 8292 §2: push services refuse an `exp` more than 24 hours ahead.
pub const MAX_VALIDITY: chrono::TimeDelta = chrono::TimeDelta::hours(24);
/// What we ask for: a little under the cap, so a push service whose clock runs a few minutes
/// ahead of ours still accepts the token.
pub const VALIDITY: chrono::TimeDelta = chrono::TimeDelta::hours(12);

/// The relay's VAPID key pair.
#[derive(Clone)]
pub struct VapidKey {
    signing: SigningKey,
}

// The private scalar never reaches debug output or logs.
impl std::fmt::Debug for VapidKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VapidKey")
            .field("public_key", &self.public_key_b64())
            .finish()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VapidError {
    #[error("the stored VAPID private key is not a P-256 scalar (32 bytes)")]
    BadPrivateKey,
    #[error("the VAPID subject must be a mailto: or https: URL")]
    BadSubject,
    #[error("the push endpoint has no origin to sign for")]
    OpaqueOrigin,
}

/// A fresh P-256 private key from the OS generator (rand 0.9 here, p256 speaks rand_core 0.6,
/// so the scalar is drawn as bytes; an out-of-range draw has probability ~2^-32 and is redrawn).
pub(crate) fn random_secret() -> p256::SecretKey {
    loop {
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        if let Ok(secret) = p256::SecretKey::from_slice(&bytes) {
            return secret;
        }
    }
}

impl VapidKey {
    pub fn generate() -> VapidKey {
        VapidKey {
            signing: SigningKey::from(random_secret()),
        }
    }

    /// Restores the key from the 32 private-key bytes kept in the store.
    pub fn from_private_bytes(bytes: &[u8]) -> Result<VapidKey, VapidError> {
        // from_slice left-pads a short slice; a stored key is always exactly 32 bytes.
        let bytes: &[u8; 32] = bytes.try_into().map_err(|_| VapidError::BadPrivateKey)?;
        let signing = SigningKey::from_slice(bytes).map_err(|_| VapidError::BadPrivateKey)?;
        Ok(VapidKey { signing })
    }

    /// The 32 private-key bytes to keep in the store.
    pub fn private_bytes(&self) -> [u8; 32] {
        self.signing.to_bytes().into()
    }

    /// The uncompressed public point (65 bytes), as `applicationServerKey` wants it.
    pub fn public_key_bytes(&self) -> Vec<u8> {
        self.signing
            .verifying_key()
            .to_encoded_point(false)
            .as_bytes()
            .to_vec()
    }

    /// `GET /v1/webpush/vapid`'s `public_key` and the header's `k=`.
    pub fn public_key_b64(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.public_key_bytes())
    }

    /// The `Authorization` header value for a POST to `endpoint` at `now`:
    /// `vapid t=<jwt>, k=<public key>`.
    pub fn authorization(
        &self,
        endpoint: &Url,
        subject: &Subject,
        now: DateTime<Utc>,
    ) -> Result<String, VapidError> {
        let jwt = self.jwt(endpoint, subject, now)?;
        Ok(format!("vapid t={jwt}, k={}", self.public_key_b64()))
    }

    /// The ES256 JWT: `aud` = the endpoint's origin with its port, `exp` = now + 12 h.
    pub fn jwt(
        &self,
        endpoint: &Url,
        subject: &Subject,
        now: DateTime<Utc>,
    ) -> Result<String, VapidError> {
        let origin = endpoint.origin();
        if !origin.is_tuple() {
            return Err(VapidError::OpaqueOrigin);
        }
        let header = URL_SAFE_NO_PAD.encode(br#"{"typ":"JWT","alg":"ES256"}"#);
        let claims = serde_json::json!({
            "aud": origin.ascii_serialization(),
            "exp": (now + VALIDITY).timestamp(),
            "sub": subject.as_str(),
        });
        let claims = URL_SAFE_NO_PAD.encode(claims.to_string());
        let signing_input = format!("{header}.{claims}");
        // JWS ES256 is the raw r‖s (64 bytes), not DER.
        let signature: Signature = self.signing.sign(signing_input.as_bytes());
        Ok(format!(
            "{signing_input}.{}",
            URL_SAFE_NO_PAD.encode(signature.to_bytes())
        ))
    }
}

/// Signs for the delivery path. One signature costs a P-256 scalar multiplication (~0.2 ms),
/// and a push service accepts a token until its `exp`, so each origin's header is reused while
/// it is younger than `REUSE`: with `VALIDITY` 12 h it always has ≥ 11 h left, never > 24 h.
pub struct VapidSigner {
    key: VapidKey,
    subject: Subject,
    cache: Mutex<HashMap<String, (DateTime<Utc>, String)>>,
}

impl VapidSigner {
    pub const REUSE: chrono::TimeDelta = chrono::TimeDelta::hours(1);
    /// Push services are few (one per browser vendor, plus distributors); past this many
    /// origins the cache starts over rather than grow.
    const MAX_ORIGINS: usize = 1024;

    pub fn new(key: VapidKey, subject: Subject) -> VapidSigner {
        VapidSigner {
            key,
            subject,
            cache: Mutex::new(HashMap::new()),
        }
    }

    pub fn key(&self) -> &VapidKey {
        &self.key
    }

    /// The `Authorization` value for `endpoint` at `now`, signed afresh when the cached one
    /// is an hour old or from a clock that has since gone backwards.
    pub fn authorization(&self, endpoint: &Url, now: DateTime<Utc>) -> Result<String, VapidError> {
        let origin = endpoint.origin();
        if !origin.is_tuple() {
            return Err(VapidError::OpaqueOrigin);
        }
        let origin = origin.ascii_serialization();
        if let Some((signed_at, header)) = self.cache.lock().expect("vapid cache").get(&origin)
            && *signed_at <= now
            && now - *signed_at < Self::REUSE
        {
            return Ok(header.clone());
        }
        let header = self.key.authorization(endpoint, &self.subject, now)?;
        let mut cache = self.cache.lock().expect("vapid cache");
        if cache.len() >= Self::MAX_ORIGINS {
            cache.clear();
        }
        cache.insert(origin, (now, header.clone()));
        Ok(header)
    }
}

/// The JWT `sub`: a contact for the push service's operator (`--vapid-subject`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subject(String);

impl Subject {
    pub fn parse(text: &str) -> Result<Subject, VapidError> {
        let url = Url::parse(text.trim()).map_err(|_| VapidError::BadSubject)?;
        match url.scheme() {
            "mailto" if url.path().contains('@') => Ok(Subject(url.to_string())),
            "https" if url.host().is_some() => Ok(Subject(url.to_string())),
            _ => Err(VapidError::BadSubject),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use p256::ecdsa::VerifyingKey;
    use p256::ecdsa::signature::Verifier;

    fn decode_json(part: &str) -> serde_json::Value {
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
    }

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 0).unwrap()
    }

    #[test]
    fn jwt_verifies_and_keeps_the_port_in_aud() {
        let key = VapidKey::generate();
        let subject = Subject::parse("mailto:ops@example.org").unwrap();
        let endpoint = Url::parse("https://push.example.net:8443/wpush/v2/abc").unwrap();
        let header = key.authorization(&endpoint, &subject, now()).unwrap();
        let (t, k) = header
            .strip_prefix("vapid t=")
            .unwrap()
            .split_once(", k=")
            .unwrap();
        assert_eq!(k, key.public_key_b64());
        let parts: Vec<&str> = t.split('.').collect();
        assert_eq!(parts.len(), 3);
        assert_eq!(
            decode_json(parts[0]),
            serde_json::json!({"typ":"JWT","alg":"ES256"})
        );
        let claims = decode_json(parts[1]);
        assert_eq!(claims["aud"], "https://push.example.net:8443");
        assert_eq!(claims["sub"], "mailto:ops@example.org");
        let exp = claims["exp"].as_i64().unwrap();
        assert!(exp > now().timestamp() && exp <= (now() + MAX_VALIDITY).timestamp());

        let verifying = VerifyingKey::from_sec1_bytes(&URL_SAFE_NO_PAD.decode(k).unwrap()).unwrap();
        let signature = Signature::from_slice(&URL_SAFE_NO_PAD.decode(parts[2]).unwrap()).unwrap();
        let input = format!("{}.{}", parts[0], parts[1]);
        assert!(verifying.verify(input.as_bytes(), &signature).is_ok());
        assert!(verifying.verify(b"tampered", &signature).is_err());
    }

    #[test]
    fn default_port_is_not_written() {
        let key = VapidKey::generate();
        let subject = Subject::parse("https://ops.example.org/contact").unwrap();
        let jwt = key
            .jwt(
                &Url::parse("https://fcm.googleapis.com:443/fcm/send/x").unwrap(),
                &subject,
                now(),
            )
            .unwrap();
        let claims = decode_json(jwt.split('.').nth(1).unwrap());
        assert_eq!(claims["aud"], "https://fcm.googleapis.com");
    }

    #[test]
    fn private_key_round_trips_through_the_store_bytes() {
        let key = VapidKey::generate();
        let restored = VapidKey::from_private_bytes(&key.private_bytes()).unwrap();
        assert_eq!(restored.public_key_b64(), key.public_key_b64());
        assert_eq!(key.public_key_bytes().len(), 65);
        assert_eq!(key.public_key_bytes()[0], 4);
        assert_eq!(
            VapidKey::from_private_bytes(&[0u8; 32]).unwrap_err(),
            VapidError::BadPrivateKey
        );
        assert_eq!(
            VapidKey::from_private_bytes(&[1u8; 31]).unwrap_err(),
            VapidError::BadPrivateKey
        );
        let shown = format!("{key:?}");
        assert!(!shown.contains(&hex::encode(key.private_bytes())));
    }

    #[test]
    fn signer_reuses_a_header_per_origin_for_an_hour() {
        let key = VapidKey::generate();
        let signer = VapidSigner::new(key, Subject::parse("mailto:ops@example.org").unwrap());
        let a = Url::parse("https://push.example.net/a").unwrap();
        let b = Url::parse("https://push.example.net/b").unwrap();
        let other = Url::parse("https://push.example.net:8443/a").unwrap();
        let first = signer.authorization(&a, now()).unwrap();
        let minute = now() + chrono::TimeDelta::minutes(1);
        assert_eq!(signer.authorization(&b, minute).unwrap(), first);
        let exp = |header: &str| {
            let jwt = header.strip_prefix("vapid t=").unwrap();
            decode_json(jwt.split('.').nth(1).unwrap())["exp"]
                .as_i64()
                .unwrap()
        };
        // Another port is another origin with its own aud.
        let other_header = signer.authorization(&other, minute).unwrap();
        assert_ne!(other_header, first);
        let later = now() + VapidSigner::REUSE;
        let renewed = signer.authorization(&a, later).unwrap();
        assert_eq!(exp(&renewed), (later + VALIDITY).timestamp());
        // A clock that went backwards gets a fresh token, never one whose exp is > 24 h ahead.
        let earlier = now() - chrono::TimeDelta::hours(20);
        let back = signer.authorization(&a, earlier).unwrap();
        assert!(exp(&back) <= (earlier + MAX_VALIDITY).timestamp());
    }

    #[test]
    fn subject_must_be_a_contact() {
        assert!(Subject::parse("mailto:ops@example.org").is_ok());
        assert!(Subject::parse("https://example.org/").is_ok());
        for bad in ["ops@example.org", "http://example.org", "mailto:nobody", ""] {
            assert_eq!(Subject::parse(bad), Err(VapidError::BadSubject), "{bad}");
        }
    }
}
