//! `reflecto clear MSG_ID | --key KEY` (SPEC §1.15, §2.3): remove a notification from every
//! screen. Jobs not delivered yet are cancelled; devices that have it get a `clear` event.

use super::patience::{RetryWait, said_when_slow};
use super::runtime;
use crate::api::clear_ack::ClearResponse as Cleared;
use crate::api::token::Secret;
use crate::api::{ApiError, ErrorCode};
use crate::client::Client;
use crate::client::answer::ClearTarget;
use crate::credentials::{Credentials, DEFAULT_PROFILE, DEFAULT_SERVER};
use clap::Args;

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("what").required(true).args(["id", "key"])))]
pub struct ClearArgs {
    /// The msg_… id `reflecto send` printed
    pub id: Option<String>,
    /// Clear the newest message sent with this key (`send --key`) instead
    #[arg(long, value_name = "KEY")]
    pub key: Option<String>,
    /// Relay URL [default: the profile's server, else https://api.reflecto.dev]
    #[arg(long, env = "REFLECTO_SERVER", value_name = "URL", value_hint = clap::ValueHint::Url)]
    pub server: Option<String>,
    /// Credential profile
    #[arg(long, env = "REFLECTO_PROFILE", default_value = DEFAULT_PROFILE, value_name = "NAME")]
    pub profile: String,
    /// Print the relay's answer as JSON: {"id","cancelled","cleared"}
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub retry: RetryWait,
}

/// The relay and sender token as `send` finds them: `--server` or the profile's server, and
/// REFLECTO_TOKEN or the profile's stored token (only ever sent to its own server).
pub(crate) fn sender(server: Option<&str>, profile: &str) -> Result<(Client, Secret), ApiError> {
    let creds = Credentials::from_env();
    let url = match server {
        Some(server) => server.to_owned(),
        None => creds
            .profile(profile)?
            .map_or_else(|| DEFAULT_SERVER.to_owned(), |p| p.server),
    };
    let client = Client::new(&url)?;
    let token = creds.token_for(profile, server)?.0;
    super::auth::check_token_format(token.expose())?;
    Ok((client, token))
}

/// A key is checked by the engine's own rule, so a bad one gets `invalid_key` before any
/// request, as `send --key` does.
fn checked_key(key: &str) -> Result<(), ApiError> {
    let mut fields = serde_json::Map::new();
    fields.insert("message".into(), "-".into());
    fields.insert("key".into(), key.into());
    crate::validate::normalize(&fields).map(drop)
}

pub fn run(args: ClearArgs) -> Result<(), ApiError> {
    let target = match (&args.id, &args.key) {
        (Some(id), None) => ClearTarget::Message(id),
        (None, Some(key)) => {
            checked_key(key)?;
            ClearTarget::Key(key)
        }
        _ => {
            return Err(ApiError::new(
                ErrorCode::UsageError,
                "give a MSG_ID or --key KEY, not both",
            ));
        }
    };
    let (client, token) = sender(args.server.as_deref(), &args.profile)?;
    let budget = args.retry.budget();
    let cleared = runtime()?.block_on(said_when_slow(
        &client,
        client.clear(&token, target, budget),
    ))?;
    super::print_answer(args.json, &cleared, human);
    Ok(())
}

fn human(c: &Cleared) -> String {
    if c.cancelled == 0 && c.cleared == 0 {
        return format!("{}: nothing left to clear", c.id);
    }
    format!(
        "{}: cleared ({} undelivered cancelled, {} device(s) told to remove it)",
        c.id, c.cancelled, c.cleared
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_follow_the_engines_rule() {
        assert!(checked_key("ci:42").is_ok());
        assert_eq!(
            checked_key("has space").unwrap_err().code,
            ErrorCode::InvalidKey
        );
        assert_eq!(checked_key("").unwrap_err().code, ErrorCode::InvalidKey);
    }

    #[test]
    fn a_second_clear_says_nothing_was_left() {
        let mut c = Cleared {
            id: "msg_1".into(),
            cancelled: 1,
            cleared: 2,
        };
        assert!(human(&c).contains("1 undelivered cancelled, 2 device(s)"));
        c.cancelled = 0;
        c.cleared = 0;
        assert_eq!(human(&c), "msg_1: nothing left to clear");
    }
}
