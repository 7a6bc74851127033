//! RFC 8291 message encryption (aes128gcm, one record) at accept time: the job keeps only these
//! bytes, so no plaintext rests in the store and a retry resends exactly the same body.

use super::subscription::Subscription;
use web_push_native::Auth;

/// The `rs` we announce, as SPEC §1.13 and common senders (pywebpush) do.
pub const RECORD_SIZE: u32 = 4096;
/// The aes128gcm header with a 65-byte key id: salt 16 + rs 4 + idlen 1 + key id 65.
pub const HEADER_LEN: usize = 86;
/// Push services accept a body of at least 4096 bytes (RFC 8030 §7.2); one record adds the
/// padding delimiter and the 16-byte tag to the plaintext.
pub const MAX_PLAINTEXT: usize = 4096 - HEADER_LEN - 17;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncryptError {
    #[error("the Web Push payload is {0} bytes; at most {MAX_PLAINTEXT} fit in one message")]
    TooLarge(usize),
    #[error("Web Push encryption failed")]
    Failed,
}

/// Encrypts `plaintext` (the compact `{"id":"msg_…","envelope":{…}}` of
/// `crate::api::sealed::plaintext`) for one subscription.
pub fn encrypt(plaintext: &[u8], subscription: &Subscription) -> Result<Vec<u8>, EncryptError> {
    if plaintext.len() > MAX_PLAINTEXT {
        return Err(EncryptError::TooLarge(plaintext.len()));
    }
    let auth = Auth::clone_from_slice(&subscription.auth);
    let mut body = web_push_native::encrypt(plaintext.to_vec(), &subscription.p256dh, &auth)
        .map_err(|_| EncryptError::Failed)?;
    // web-push-native announces rs = the record's own length (plaintext + 17), which RFC 8291
    // §4 forbids ("greater than" that sum). The record size is framing only — neither the key
    // nor the nonce derives from it — and the single record is shorter than 4096, so it stays
    // the final record when a receiver splits the body by the announced size.
    body[16..20].copy_from_slice(&RECORD_SIZE.to_be_bytes());
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delivery::webpush::vapid::random_secret;
    use url::Url;

    fn receiver() -> (p256::SecretKey, Subscription) {
        let secret = random_secret();
        let subscription = Subscription {
            endpoint: Url::parse("https://push.example.net/x").unwrap(),
            p256dh: secret.public_key(),
            auth: [9u8; 16],
        };
        (secret, subscription)
    }

    #[test]
    fn encrypts_one_record_announcing_4096_that_decrypts() {
        let (secret, subscription) = receiver();
        let plaintext = crate::api::sealed::plaintext("msg_1", r#"{"message":"disk full"}"#);
        let body = encrypt(plaintext.as_bytes(), &subscription).unwrap();
        assert_eq!(&body[16..20], &4096u32.to_be_bytes());
        assert_eq!(body[20], 65);
        assert_eq!(body.len(), HEADER_LEN + plaintext.len() + 17);
        assert!(!body.windows(9).any(|w| w == b"disk full"));
        let opened =
            web_push_native::decrypt(body, &secret, &Auth::clone_from_slice(&[9u8; 16])).unwrap();
        assert_eq!(opened, plaintext.as_bytes());
    }

    #[test]
    fn each_encryption_is_fresh_and_a_wrong_auth_fails() {
        let (secret, subscription) = receiver();
        let a = encrypt(b"same", &subscription).unwrap();
        let b = encrypt(b"same", &subscription).unwrap();
        assert_ne!(a, b);
        assert!(web_push_native::decrypt(a, &secret, &Auth::clone_from_slice(&[8u8; 16])).is_err());
    }

    #[test]
    fn the_largest_payload_fits_4096_and_one_more_byte_is_refused() {
        let (_, subscription) = receiver();
        let body = encrypt(&vec![b'x'; MAX_PLAINTEXT], &subscription).unwrap();
        assert_eq!(body.len(), 4096);
        assert_eq!(
            encrypt(&vec![b'x'; MAX_PLAINTEXT + 1], &subscription),
            Err(EncryptError::TooLarge(MAX_PLAINTEXT + 1))
        );
    }
}
