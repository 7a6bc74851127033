//! API tokens and device credentials: their format, generation from the OS CSPRNG, hashing,
//! and a `Secret` wrapper that never prints its contents.

use rand::Rng;
use rand::distr::Alphanumeric;
use sha2::{Digest, Sha256};
use std::fmt;

/// A secret string (token or credential). `Debug` and `Display` print it masked, so it cannot
/// reach a log or an error message by accident; `expose()` is the one way to read it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    /// `rfk_live_AbCd…wxyz`: enough to tell tokens apart, not enough to use one.
    pub fn masked(&self) -> String {
        mask(&self.0)
    }
}

/// Masks a secret for display: the prefix and the last four characters survive.
pub fn mask(secret: &str) -> String {
    let prefix_len = secret
        .rfind('_')
        .map(|i| i + 1)
        .filter(|&i| i <= 9)
        .unwrap_or(0);
    let rest = &secret[prefix_len..];
    if rest.len() <= 8 || !rest.is_ascii() {
        return format!("{}****", &secret[..prefix_len]);
    }
    format!("{}****{}", &secret[..prefix_len], &rest[rest.len() - 4..])
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret({})", self.masked())
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

const SECRET_CHARS: usize = 32;

fn random_alnum(n: usize) -> String {
    rand::rng()
        .sample_iter(&Alphanumeric)
        .take(n)
        .map(char::from)
        .collect()
}

/// A new sender token: `rfk_live_` (or `rfk_test_`) + 32 alphanumerics.
pub fn generate_token(test: bool) -> Secret {
    let prefix = if test { "rfk_test_" } else { "rfk_live_" };
    Secret(format!("{prefix}{}", random_alnum(SECRET_CHARS)))
}

/// A new admin token (SPEC §1.19): `rfa_live_` + 32 alphanumerics.
pub fn generate_admin_token() -> Secret {
    Secret(format!("rfa_live_{}", random_alnum(SECRET_CHARS)))
}

/// A new desktop device credential: `rfd_live_` + 32 alphanumerics.
pub fn generate_device_credential() -> Secret {
    Secret(format!("rfd_live_{}", random_alnum(SECRET_CHARS)))
}

fn has_format(candidate: &str, prefixes: &[&str]) -> bool {
    prefixes.iter().any(|p| {
        candidate.strip_prefix(p).is_some_and(|rest| {
            rest.len() == SECRET_CHARS && rest.bytes().all(|b| b.is_ascii_alphanumeric())
        })
    })
}

/// `^rfk_(live|test)_[A-Za-z0-9]{32}$`
pub fn is_token_format(candidate: &str) -> bool {
    has_format(candidate, &["rfk_live_", "rfk_test_"])
}

/// `^rfa_live_[A-Za-z0-9]{32}$`
pub fn is_admin_token_format(candidate: &str) -> bool {
    has_format(candidate, &["rfa_live_"])
}

/// `^rfd_live_[A-Za-z0-9]{32}$`
pub fn is_device_credential_format(candidate: &str) -> bool {
    has_format(candidate, &["rfd_live_"])
}

/// SHA-256 of a secret: all the relay stores.
pub fn hash_secret(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

/// `prefix` + `hex_chars` lowercase hex from the CSPRNG (`msg_` ids, `dev_` ids).
pub fn random_id(prefix: &str, hex_chars: usize) -> String {
    let mut bytes = vec![0u8; hex_chars.div_ceil(2)];
    rand::rng().fill(bytes.as_mut_slice());
    let mut id = hex::encode(bytes);
    id.truncate(hex_chars);
    format!("{prefix}{id}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_tokens_have_the_documented_format() {
        let live = generate_token(false);
        assert!(live.expose().starts_with("rfk_live_"));
        assert!(is_token_format(live.expose()));
        assert!(is_token_format(generate_token(true).expose()));
        assert!(is_device_credential_format(
            generate_device_credential().expose()
        ));
        assert_ne!(generate_token(false), generate_token(false));
    }

    #[test]
    fn format_check_is_exact() {
        let body = "a".repeat(32);
        assert!(is_token_format(&format!("rfk_live_{body}")));
        assert!(!is_token_format(&format!("rfk_live_{body}a")));
        assert!(!is_token_format(&format!("rfk_prod_{body}")));
        assert!(!is_token_format(&format!("rfk_live_{}-", "a".repeat(31))));
        assert!(!is_token_format(&format!("rfd_live_{body}")));
    }

    #[test]
    fn secrets_never_print_in_full() {
        let token = Secret::new("rfk_live_ABCDEFGHIJKLMNOPQRSTUVWXYZ012345");
        assert_eq!(token.masked(), "rfk_live_****2345");
        assert!(!format!("{token:?} {token}").contains("ABCDEFGH"));
        assert_eq!(mask("short"), "****");
    }

    #[test]
    fn ids() {
        let id = random_id("msg_", 32);
        assert_eq!(id.len(), 36);
        assert!(
            id[4..]
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        );
        assert_eq!(random_id("dev_", 16).len(), 20);
    }
}
