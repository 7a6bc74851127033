//! `reflecto respond MSG_ID [RESPONSE]` (SPEC §2.3): acknowledge a message as this computer's
//! paired device, for a headless machine where nobody clicks a notification. Uses the device
//! credential `reflecto pair` stored for the profile.

use super::patience::{RetryWait, said_when_slow};
use super::runtime;
use crate::api::ApiError;
use crate::api::clear_ack::AcknowledgeResponse as Acknowledged;
use crate::client::Client;
use crate::credentials::{Credentials, DEFAULT_PROFILE};
use clap::Args;

#[derive(Debug, Args)]
pub struct RespondArgs {
    /// The msg_… id of the message to acknowledge
    pub id: String,
    /// One of the message's responses (its --action-response or --option values); without
    /// it, the message is acknowledged without a response
    pub response: Option<String>,
    /// Credential profile this computer was paired under (`reflecto pair`)
    #[arg(long, env = "REFLECTO_PROFILE", default_value = DEFAULT_PROFILE, value_name = "NAME")]
    pub profile: String,
    /// Print the relay's answer as JSON: {"id","acknowledged_at","device_id","response"}
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub retry: RetryWait,
}

pub fn run(args: RespondArgs) -> Result<(), ApiError> {
    let device = Credentials::from_env().device(&args.profile)?;
    let client = Client::new(&device.server)?;
    let budget = args.retry.budget();
    let acknowledged = runtime()?.block_on(said_when_slow(
        &client,
        client.acknowledge(
            &device.credential,
            &args.id,
            args.response.as_deref(),
            budget,
        ),
    ))?;
    if acknowledged.device_id != device.device_id {
        eprintln!("warning: {}", someone_else(&acknowledged));
    }
    super::print_answer(args.json, &acknowledged, human);
    Ok(())
}

/// The first acknowledgement won: another device answered before this one.
fn someone_else(first: &Acknowledged) -> String {
    format!(
        "{} was already acknowledged on {} ({}); this device's acknowledgement was recorded too",
        first.id,
        first.device_id,
        first.response.as_deref().unwrap_or("no response")
    )
}

/// `msg_…: acknowledged on dev_… at <time> with Deploy`.
fn human(a: &Acknowledged) -> String {
    let with = response_said(a.response.as_deref(), " with ");
    format!(
        "{}: acknowledged on {} at {}{with}",
        a.id, a.device_id, a.acknowledged_at
    )
}

/// What an acknowledgement answered, after `before` (" with ", ": "), or that it had no
/// response.
pub(super) fn response_said(response: Option<&str>, before: &str) -> String {
    response.map_or_else(|| " (no response)".to_owned(), |r| format!("{before}{r}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_name_the_device_and_the_response() {
        let mut a = Acknowledged {
            id: "msg_1".into(),
            acknowledged_at: "2026-01-01T00:00:00.000Z".into(),
            device_id: "dev_1".into(),
            response: Some("Deploy".into()),
        };
        assert_eq!(
            human(&a),
            "msg_1: acknowledged on dev_1 at 2026-01-01T00:00:00.000Z with Deploy"
        );
        a.response = None;
        assert!(human(&a).ends_with("(no response)"));
        assert!(someone_else(&a).contains("already acknowledged on dev_1"));
    }
}
