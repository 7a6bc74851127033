//! Sealed delivery (SPEC §1.12): libsodium's `crypto_box_seal` (ephemeral X25519 +
//! XSalsa20-Poly1305, nonce = BLAKE2b-192(ephemeral_pk ‖ recipient_pk)) through the RustCrypto
//! `crypto_box` crate, so any libsodium binding opens what the relay seals. Keys and sealed
//! boxes travel as base64url.

use base64::Engine;
use base64::engine::general_purpose::{URL_SAFE, URL_SAFE_NO_PAD};
use crypto_box::aead::OsRng;
pub use crypto_box::{PublicKey, SecretKey};

/// Why a key or a box was refused. Carries no key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    #[error("public_key must be 32 bytes of X25519 key, base64url-encoded")]
    BadPublicKey,
    #[error("the private key must be 32 bytes, base64url-encoded")]
    BadSecretKey,
    #[error("the sealed box is not base64url")]
    BadEncoding,
    #[error("the sealed box could not be opened with this device's key")]
    CannotOpen,
}

/// base64url without padding: how keys and boxes are written.
pub fn encode(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// base64url, with or without padding.
pub fn decode(text: &str) -> Option<Vec<u8>> {
    let text = text.trim();
    URL_SAFE_NO_PAD
        .decode(text)
        .or_else(|_| URL_SAFE.decode(text))
        .ok()
}

fn key_bytes(text: &str) -> Option<[u8; 32]> {
    decode(text)?.try_into().ok()
}

/// A device's public key as pairing and `admin device add --public-key` take it.
pub fn parse_public_key(text: &str) -> Result<PublicKey, SealError> {
    key_bytes(text)
        .map(PublicKey::from)
        .ok_or(SealError::BadPublicKey)
}

/// A device's private key as the receiver stores it.
pub fn parse_secret_key(text: &str) -> Result<SecretKey, SealError> {
    key_bytes(text)
        .map(SecretKey::from)
        .ok_or(SealError::BadSecretKey)
}

/// A fresh key pair from the OS CSPRNG: (private, public), both base64url.
pub fn generate_key_pair() -> (String, String) {
    let secret = SecretKey::generate(&mut OsRng);
    let public = encode(secret.public_key().as_bytes());
    (encode(&secret.to_bytes()), public)
}

/// Seals `plaintext` to `recipient`; the result is 48 bytes longer.
pub fn seal(plaintext: &[u8], recipient: &PublicKey) -> Vec<u8> {
    recipient
        .seal(&mut OsRng, plaintext)
        .expect("sealing into a Vec cannot fail")
}

/// What the relay seals for a device: the compact `{"id":"msg_…","envelope":{…}}` (SPEC
/// §1.12), byte for byte the `data:` of a clear stream event, so the id is bound to the content.
/// `envelope_json` is the envelope's compact serialization.
pub fn plaintext(message_id: &str, envelope_json: &str) -> String {
    let id = serde_json::Value::from(message_id);
    format!(r#"{{"id":{id},"envelope":{envelope_json}}}"#)
}

/// Opens a base64url sealed box with the device's private key.
pub fn open(sealed_b64: &str, secret: &SecretKey) -> Result<Vec<u8>, SealError> {
    let sealed = decode(sealed_b64).ok_or(SealError::BadEncoding)?;
    secret.unseal(&sealed).map_err(|_| SealError::CannotOpen)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_then_open_round_trips_and_tampering_fails() {
        let (secret, public) = generate_key_pair();
        let secret = parse_secret_key(&secret).unwrap();
        let public = parse_public_key(&public).unwrap();
        let sealed = seal(b"{\"id\":\"msg_1\"}", &public);
        assert_eq!(sealed.len(), 14 + 48);
        assert_eq!(
            open(&encode(&sealed), &secret).unwrap(),
            b"{\"id\":\"msg_1\"}"
        );
        let mut flipped = sealed.clone();
        flipped[40] ^= 1;
        assert_eq!(open(&encode(&flipped), &secret), Err(SealError::CannotOpen));
        let (other, _) = generate_key_pair();
        let other = parse_secret_key(&other).unwrap();
        assert_eq!(open(&encode(&sealed), &other), Err(SealError::CannotOpen));
    }

    #[test]
    fn public_keys_take_padded_and_unpadded_base64url_only_of_32_bytes() {
        let raw = [7u8; 32];
        assert!(parse_public_key(&URL_SAFE_NO_PAD.encode(raw)).is_ok());
        assert!(parse_public_key(&URL_SAFE.encode(raw)).is_ok());
        assert_eq!(
            parse_public_key(&URL_SAFE_NO_PAD.encode([7u8; 31])),
            Err(SealError::BadPublicKey)
        );
        assert_eq!(
            parse_public_key("not base64!"),
            Err(SealError::BadPublicKey)
        );
    }
}
