//! A stored token belongs to the relay its profile was logged in to (SPEC §2.5): it is only
//! ever sent there. A `--server` naming another relay is a usage error before any request,
//! so a typo or a second relay never receives a token it was not given.

use super::{Credentials, Storage};
use crate::api::token::Secret;
use crate::api::{ApiError, ErrorCode};

impl Credentials {
    /// The token a command sends to `server` (its `--server`, `None` for the profile's own):
    /// `REFLECTO_TOKEN` goes wherever the command says; a stored token only to its profile's
    /// server, else a usage error naming both relays and the ways out.
    pub fn token_for(
        &self,
        profile: &str,
        server: Option<&str>,
    ) -> Result<(Secret, Storage), ApiError> {
        let (token, storage) = self.token(profile)?;
        if storage == Storage::Env {
            return Ok((token, storage));
        }
        let home = self.profile(profile)?.map(|p| p.server);
        match (home, server) {
            (Some(home), Some(server)) if !same_server(&home, server) => {
                Err(elsewhere(profile, &home, server))
            }
            (Some(_), _) => Ok((token, storage)),
            (None, _) => Err(ApiError::new(
                ErrorCode::UsageError,
                format!(
                    "profile '{profile}' holds a token but no record of the relay it belongs to, so it is sent nowhere; log in again with `reflecto login --server URL --profile {profile}`, or pass a token in REFLECTO_TOKEN"
                ),
            )),
        }
    }
}

fn elsewhere(profile: &str, home: &str, server: &str) -> ApiError {
    ApiError::new(
        ErrorCode::UsageError,
        format!(
            "the token of profile '{profile}' belongs to {home} and is not sent to --server {server}; use a profile logged in to that relay (--profile NAME), log one in (`reflecto login --server {server} --profile NAME`), or pass its token in REFLECTO_TOKEN"
        ),
    )
}

/// One relay however its URL is spelled: scheme and host case, a default port, a trailing
/// slash. Unparseable URLs compare as written.
fn same_server(a: &str, b: &str) -> bool {
    let canonical =
        |s: &str| crate::client::diagnose::check_server(s).unwrap_or_else(|_| s.trim().to_owned());
    canonical(a) == canonical(b)
}

#[cfg(test)]
mod tests {
    use super::same_server;

    #[test]
    fn one_relay_however_spelled() {
        assert!(same_server(
            "http://127.0.0.1:8080",
            "http://127.0.0.1:8080/"
        ));
        assert!(same_server(
            "HTTPS://Relay.Example:443/",
            "https://relay.example"
        ));
        assert!(same_server(
            "https://x.example/reflecto/",
            "https://x.example/reflecto"
        ));
        assert!(!same_server(
            "http://127.0.0.1:8080",
            "http://127.0.0.1:8081"
        ));
        assert!(!same_server(
            "https://relay.example",
            "http://relay.example"
        ));
        assert!(!same_server("https://x.example/a", "https://x.example/b"));
    }
}
