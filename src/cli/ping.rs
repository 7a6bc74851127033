//! `reflecto ping NAME` and `reflecto heartbeats` (SPEC §1.18, §2.3): a cron job's check-in
//! (or its failure) and the owner's heartbeats. The relay and token are found as `send` finds
//! them; a ping never waits past `--retry-max-wait`, so a dead relay cannot hang the job.

use super::clear::sender;
use super::patience::said_when_slow;
use super::runtime;
use crate::api::ApiError;
use crate::api::heartbeat::{HeartbeatPing, HeartbeatView};
use crate::client::heartbeats::PingKind;
use crate::credentials::DEFAULT_PROFILE;
use crate::validate::heartbeat::{self as rules, PingSettings};
use clap::Args;
use std::io::IsTerminal;
use std::time::Duration;

/// Where the relay is and how long to keep trying it, shared by both commands.
#[derive(Debug, Args)]
pub struct RelayArgs {
    /// Relay URL [default: the profile's server, else https://api.reflecto.dev]
    #[arg(long, env = "REFLECTO_SERVER", value_name = "URL", value_hint = clap::ValueHint::Url)]
    pub server: Option<String>,
    /// Credential profile
    #[arg(long, env = "REFLECTO_PROFILE", default_value = DEFAULT_PROFILE, value_name = "NAME")]
    pub profile: String,
    /// Longest total wait, retries on 429, 5xx and connection errors included (at least 1 s)
    #[arg(
        long,
        env = "REFLECTO_RETRY_MAX_WAIT",
        value_name = "SECONDS",
        default_value_t = 60.0
    )]
    pub retry_max_wait: f64,
}

impl RelayArgs {
    fn budget(&self) -> Duration {
        super::patience::retry_budget(self.retry_max_wait)
    }
}

#[derive(Debug, Args)]
pub struct PingArgs {
    /// The heartbeat: 1–64 bytes of A-Z a-z 0-9 . _ -
    pub name: String,
    /// How often it checks in, e.g. 1d, 12h, 90m (1 minute–31 days; required on the first
    /// ping, then kept)
    #[arg(long, value_name = "D")]
    pub every: Option<String>,
    /// How long past due the alarm waits, e.g. 1h (0–1 day; default a tenth of --every, at
    /// most 1 h)
    #[arg(long, value_name = "D")]
    pub grace: Option<String>,
    /// Report a failure instead: "<NAME> failed" is sent at once, with TEXT as its message
    #[arg(long, value_name = "TEXT", num_args = 0..=1, default_missing_value = "")]
    pub fail: Option<String>,
    /// Print the relay's answer as JSON: {"name","every","grace","state","last_ping_at","next_due_at"}
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub relay: RelayArgs,
}

#[derive(Debug, Args)]
pub struct HeartbeatsArgs {
    /// Print the relay's answer as JSON: {"heartbeats":[…]}
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub relay: RelayArgs,
}

pub fn ping(args: PingArgs) -> Result<(), ApiError> {
    // The engine's rules first: a ping the relay would refuse never leaves the machine.
    rules::name(&args.name)?;
    PingSettings::parse(args.every.as_deref(), args.grace.as_deref())?;
    let durations = HeartbeatPing {
        every: args.every.clone(),
        grace: args.grace.clone(),
    };
    let kind = match &args.fail {
        Some(text) => PingKind::Failed(Some(text.as_str()).filter(|t| !t.is_empty())),
        None => PingKind::Alive(&durations),
    };
    let (client, token) = sender(args.relay.server.as_deref(), &args.relay.profile)?;
    let budget = args.relay.budget();
    let heartbeat = runtime()?.block_on(said_when_slow(
        &client,
        client.ping_heartbeat(&token, &args.name, kind, budget),
    ))?;
    if args.json {
        super::print_json(&heartbeat);
    } else if std::io::stdout().is_terminal() {
        // Silent in a cron job (cron mails whatever a job prints).
        println!("{}", line(&heartbeat));
    }
    Ok(())
}

pub fn heartbeats(args: HeartbeatsArgs) -> Result<(), ApiError> {
    let (client, token) = sender(args.relay.server.as_deref(), &args.relay.profile)?;
    let budget = args.relay.budget();
    let list = runtime()?.block_on(said_when_slow(&client, client.heartbeats(&token, budget)))?;
    if args.json {
        super::print_json(&list);
        return Ok(());
    }
    if list.heartbeats.is_empty() {
        println!("no heartbeats yet: `reflecto ping NAME --every 1d` creates one");
        return Ok(());
    }
    print!("{}", table(&list.heartbeats));
    Ok(())
}

/// One heartbeat in a sentence.
fn line(hb: &HeartbeatView) -> String {
    format!(
        "{}: {} (every {}, grace {}), next check-in due by {}",
        hb.name, hb.state, hb.every, hb.grace, hb.next_due_at
    )
}

/// The heartbeats as aligned columns.
fn table(heartbeats: &[HeartbeatView]) -> String {
    let rows: Vec<[String; 6]> = std::iter::once(
        ["NAME", "STATE", "EVERY", "GRACE", "LAST PING", "NEXT DUE"].map(str::to_owned),
    )
    .chain(heartbeats.iter().map(|hb| {
        [
            hb.name.clone(),
            hb.state.to_string(),
            hb.every.clone(),
            hb.grace.clone(),
            hb.last_ping_at.clone(),
            hb.next_due_at.clone(),
        ]
    }))
    .collect();
    super::columns::columns(&rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::heartbeat::HeartbeatState;

    fn hb() -> HeartbeatView {
        HeartbeatView {
            name: "backup".into(),
            every: "1d".into(),
            grace: "1h".into(),
            state: HeartbeatState::Late,
            last_ping_at: "2026-12-06T03:00:00.000Z".into(),
            next_due_at: "2026-12-07T03:00:00.000Z".into(),
        }
    }

    #[test]
    fn a_table_lines_up() {
        let t = table(&[hb()]);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 2);
        assert!(lines[0].starts_with("NAME    STATE  EVERY"));
        assert!(lines[1].starts_with("backup  late   1d"));
        assert_eq!(
            line(&hb()),
            "backup: late (every 1d, grace 1h), next check-in due by 2026-12-07T03:00:00.000Z"
        );
    }
}
