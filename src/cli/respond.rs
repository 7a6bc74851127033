//! `reflecto respond MSG_ID [RESPONSE]` (SPEC §2.3): acknowledge a message as this computer's
//! paired device, for a headless machine where nobody clicks a notification. Uses the device
//! credential `reflecto pair` stored for the profile.

use super::patience::said_when_slow;
use super::runtime;
use crate::api::ApiError;
use crate::api::clear_ack::AcknowledgeResponse as Acknowledged;
use crate::client::Client;
use crate::credentials::{Credentials, DEFAULT_PROFILE};
use clap::Args;
use std::time::Duration;

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
    /// Longest total wait for retries on 429, 5xx and connection errors
    #[arg(
        long,
        env = "REFLECTO_RETRY_MAX_WAIT",
        value_name = "SECONDS",
        default_value_t = super::send::DEFAULT_RETRY_MAX_WAIT
    )]
    pub retry_max_wait: f64,
}

pub fn run(args: RespondArgs) -> Result<(), ApiError> {
    let device = Credentials::from_env().device(&args.profile)?;
    let client = Client::new(&device.server)?;
    let budget = Duration::from_secs_f64(args.retry_max_wait.clamp(0.0, 86_400.0));
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
    if args.json {
        println!(
            "{}",
            serde_json::to_string(&acknowledged).expect("plain struct serializes")
        );
    } else {
        println!("{}", human(&acknowledged));
    }
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
    let with = a
        .response
        .as_deref()
        .map_or_else(|| " (no response)".to_owned(), |r| format!(" with {r}"));
    format!(
        "{}: acknowledged on {} at {}{with}",
        a.id, a.device_id, a.acknowledged_at
    )
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
