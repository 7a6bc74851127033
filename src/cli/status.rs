//! `reflecto status MSG_ID` and `send --wait` (SPEC §2.2, §2.3): a message's per-device
//! delivery state from `GET /v1/messages/{id}`, once or followed until every delivery has ended
//! (exit 0 when every delivery is `delivered`; 7, `not_delivered`, when one failed or expired,
//! or had not ended by the deadline) or, with `--until acknowledged`, until a person
//! acknowledged it (exit 0; 7, `not_acknowledged`, when nobody did by the deadline).

use super::patience::said_when_slow;
use super::runtime;
use crate::api::status::{DeliveryState, DeliveryView, MessageView};
use crate::api::token::Secret;
use crate::api::{ApiError, ErrorCode};
use crate::client::Client;
use crate::client::http::StatusPoll;
use crate::credentials::{Credentials, DEFAULT_PROFILE, DEFAULT_SERVER};
use clap::Args;
use std::time::Duration;
use tokio::time::Instant;

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// The msg_… id `reflecto send` printed
    pub id: String,
    /// Relay URL [default: the profile's server, else https://api.reflecto.dev]
    #[arg(long, env = "REFLECTO_SERVER", value_name = "URL")]
    pub server: Option<String>,
    /// Credential profile
    #[arg(long, env = "REFLECTO_PROFILE", default_value = DEFAULT_PROFILE, value_name = "NAME")]
    pub profile: String,
    /// Print the relay's JSON (with --wait: one object per change)
    #[arg(long)]
    pub json: bool,
    /// Follow the status until every delivery has ended, at most SECONDS (one request per
    /// change, or per minute); exit 7 unless all were delivered
    #[arg(long, value_name = "SECONDS", value_parser = parse_wait)]
    pub wait: Option<f64>,
    /// With --wait: follow until every delivery ended (delivered), or until a person
    /// acknowledged the message on a device (acknowledged; exit 7 if nobody did in time)
    #[arg(long, value_enum, value_name = "WHAT", default_value_t = Until::Delivered, requires = "wait")]
    pub until: Until,
}

/// What `--wait` waits for (SPEC §2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Until {
    /// Every delivery ended; exit 0 when all were delivered
    Delivered,
    /// A person acknowledged the message on one of the devices
    Acknowledged,
}

/// The first acknowledgement of a message, as `GET /v1/messages/{id}` shows it (SPEC §1.16).
pub use crate::api::clear_ack::Acknowledged as Acknowledgement;

/// `--wait SECONDS`: a finite, non-negative number of seconds.
pub fn parse_wait(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(v) if v.is_finite() && (0.0..=31_536_000.0).contains(&v) => Ok(v),
        _ => Err("a number of seconds, 0 or more".to_owned()),
    }
}

/// The longest a relay holds one request (SPEC §2.2: N over 60 counts as 60).
const MAX_HOLD: Duration = Duration::from_secs(60);
/// How long to wait before asking again after a relay restart or a network blip, and between
/// reads of a relay older than the long poll (it sends no `ETag`).
const RETRY: Duration = Duration::from_secs(1);

pub fn run(args: StatusArgs) -> Result<(), ApiError> {
    let creds = Credentials::from_env();
    let server = match &args.server {
        Some(server) => server.clone(),
        None => creds
            .profile(&args.profile)?
            .map_or_else(|| DEFAULT_SERVER.to_owned(), |p| p.server),
    };
    let token = creds.token_for(&args.profile, args.server.as_deref())?.0;
    let client = Client::new(&server)?;
    let runtime = runtime()?;
    match args.wait {
        None => {
            let status = client.message_status(&token, &args.id, None, Duration::ZERO);
            let (raw, view) = match runtime.block_on(said_when_slow(&client, status))? {
                StatusPoll::Changed { raw, view, .. } => (raw, view),
                // The client names no tag, so only something that is not a relay says this.
                StatusPoll::Unchanged => {
                    return Err(ApiError::new(
                        ErrorCode::CliInternalError,
                        "the relay answered 304 to a request that named no ETag",
                    ));
                }
            };
            if args.json {
                println!("{raw}");
            } else {
                print!("{}", table(&view));
            }
            Ok(())
        }
        Some(wait) => runtime
            .block_on(follow(
                &client,
                &token,
                &args.id,
                Duration::from_secs_f64(wait),
                Output::of(args.json, false),
                args.until,
            ))
            .map(drop),
    }
}

/// What `follow` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    Human,
    Json,
    Quiet,
}

impl Output {
    pub fn of(json: bool, quiet: bool) -> Output {
        match (quiet, json) {
            (true, _) => Output::Quiet,
            (_, true) => Output::Json,
            _ => Output::Human,
        }
    }
}

/// Follows the message with the relay's long poll until every delivery has ended (or, with
/// [`Until::Acknowledged`], until it was acknowledged) or `wait` has passed, printing changes:
/// one request per change, or per minute when nothing changes. Returns the acknowledgement
/// when that is what was awaited.
pub async fn follow(
    client: &Client,
    token: &Secret,
    id: &str,
    wait: Duration,
    output: Output,
    until: Until,
) -> Result<Option<Acknowledgement>, ApiError> {
    let deadline = Instant::now() + wait;
    let mut last: Option<MessageView> = None;
    let mut etag: Option<String> = None;
    loop {
        // Whole seconds, rounded up so the last hold reaches the deadline.
        let left = deadline.saturating_duration_since(Instant::now());
        let hold = Duration::from_secs(left.as_secs_f64().ceil() as u64).min(MAX_HOLD);
        let mut pause = Duration::ZERO;
        let poll = client.message_status(token, id, etag.as_deref(), hold);
        // Only the first look should answer at once; a long poll is meant to be held.
        let answered = match etag {
            None => said_when_slow(client, poll).await,
            Some(_) => poll.await,
        };
        match answered {
            Ok(StatusPoll::Changed {
                raw,
                view,
                etag: tag,
            }) => {
                report_change(last.as_ref(), &view, &raw, output);
                match until {
                    Until::Delivered if view.is_final() => return verdict(&view).map(|()| None),
                    Until::Delivered => {}
                    // A delivered message stays acknowledgeable: only an answer or the
                    // deadline ends this wait.
                    Until::Acknowledged => {
                        if let Some(ack) = view.acknowledged.clone() {
                            report_acknowledged(&ack, output);
                            return Ok(Some(ack));
                        }
                    }
                }
                if tag.is_none() {
                    pause = RETRY;
                }
                last = Some(view);
                etag = tag;
            }
            Ok(StatusPoll::Unchanged) => {}
            // A relay restart or a network blip during the wait is waited out.
            Err(e)
                if matches!(
                    e.code,
                    ErrorCode::RelayUnreachable | ErrorCode::InternalError
                ) =>
            {
                tracing::debug!(code = %e.code, "status request failed; retrying");
                pause = RETRY;
            }
            Err(e) => return Err(e),
        }
        let next = Instant::now() + pause;
        if next >= deadline {
            return Err(match until {
                Until::Delivered => not_final(last.as_ref(), wait),
                Until::Acknowledged => not_acknowledged(id, wait),
            });
        }
        tokio::time::sleep_until(next).await;
    }
}

/// The human line for an acknowledgement (JSON output already printed the status with it).
fn report_acknowledged(ack: &Acknowledgement, output: Output) {
    if output == Output::Human {
        let response = super::respond::response_said(ack.response.as_deref(), ": ");
        println!(
            "{} acknowledged on {}{response}",
            chrono::Local::now().format("%H:%M:%S"),
            ack.device_id
        );
    }
}

/// Nobody acknowledged `id` within `wait` (exit 7).
pub fn not_acknowledged(id: &str, wait: Duration) -> ApiError {
    ApiError::new(
        ErrorCode::NotAcknowledged,
        format!("nobody acknowledged {id} within {}s", wait.as_secs_f64()),
    )
}

/// A device as the sender knows it: its id, and its label beside it when the relay has one.
fn device_name(d: &DeliveryView) -> String {
    match &d.label {
        Some(label) => format!("{} \"{label}\"", d.device_id),
        None => d.device_id.clone(),
    }
}

fn report_change(before: Option<&MessageView>, now: &MessageView, raw: &str, output: Output) {
    match (output, before) {
        (Output::Quiet, _) => {}
        (Output::Json, Some(b)) if b == now => {}
        (Output::Json, _) => println!("{raw}"),
        (Output::Human, None) => print!("{}", table(now)),
        (Output::Human, Some(b)) => {
            for d in &now.deliveries {
                let old = b.deliveries.iter().find(|o| o.device_id == d.device_id);
                if old.is_none_or(|o| o.state != d.state) {
                    println!(
                        "{} {} ({}): {} → {}{}",
                        chrono::Local::now().format("%H:%M:%S"),
                        device_name(d),
                        d.device_type,
                        old.map_or("-", |o| o.state.as_str()),
                        d.state,
                        d.last_error
                            .as_deref()
                            .map(|e| format!(" ({e})"))
                            .unwrap_or_default()
                    );
                }
            }
        }
    }
}

/// Exit 0 when all were delivered, else 7 naming the ones that were not.
fn verdict(view: &MessageView) -> Result<(), ApiError> {
    if view.all_delivered() {
        return Ok(());
    }
    let failed: Vec<String> = view
        .deliveries
        .iter()
        .filter(|d| d.state != DeliveryState::Delivered)
        .map(describe)
        .collect();
    Err(ApiError::new(
        ErrorCode::NotDelivered,
        format!("{} was not delivered to {}", view.id, failed.join(", ")),
    ))
}

fn not_final(last: Option<&MessageView>, wait: Duration) -> ApiError {
    let pending = last.map_or_else(
        || "the relay".to_owned(),
        |v| {
            v.deliveries
                .iter()
                .filter(|d| !d.is_final())
                .map(describe)
                .collect::<Vec<_>>()
                .join(", ")
        },
    );
    ApiError::new(
        ErrorCode::NotDelivered,
        format!(
            "deliveries had not ended after {}s: {pending}",
            wait.as_secs_f64()
        ),
    )
}

fn describe(d: &DeliveryView) -> String {
    match &d.last_error {
        Some(e) => format!("{} ({}, {e})", device_name(d), d.state),
        None => format!("{} ({})", device_name(d), d.state),
    }
}

/// device, label, type, state, attempts, last error, next attempt.
pub fn table(view: &MessageView) -> String {
    let mut rows = vec![[
        "DEVICE".to_owned(),
        "LABEL".to_owned(),
        "TYPE".to_owned(),
        "STATE".to_owned(),
        "ATTEMPTS".to_owned(),
        "LAST ERROR".to_owned(),
        "NEXT ATTEMPT".to_owned(),
    ]];
    for d in &view.deliveries {
        rows.push([
            d.device_id.clone(),
            d.label.clone().unwrap_or_else(|| "-".to_owned()),
            d.device_type.to_string(),
            d.state.to_string(),
            d.attempts.to_string(),
            d.last_error.clone().unwrap_or_else(|| "-".to_owned()),
            d.next_attempt_at.clone().unwrap_or_else(|| "-".to_owned()),
        ]);
    }
    let mut out = format!("{} (created {})\n", view.id, view.created_at);
    // SPEC §1.17: an urgent message's repeats and its callback.
    if let Some(r) = &view.repeat {
        out.push_str(&format!(
            "repeats every {}s until {} ({} so far)\n",
            r.retry, r.expires_at, r.repeats
        ));
    }
    if let Some(c) = &view.callback {
        match &c.at {
            Some(at) => out.push_str(&format!("callback {} at {at}\n", c.state)),
            None => out.push_str(&format!("callback {}\n", c.state)),
        }
    }
    if view.deliveries.is_empty() {
        out.push_str("no target device\n");
        return out;
    }
    out.push_str(&super::columns::columns(&rows));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(states: &[&str]) -> MessageView {
        MessageView {
            id: "msg_1".into(),
            created_at: "2026-01-01T00:00:00.000Z".into(),
            key: None,
            cleared_at: None,
            acknowledged: None,
            repeat: None,
            callback: None,
            deliveries: states
                .iter()
                .enumerate()
                .map(|(i, s)| DeliveryView {
                    device_id: format!("dev_{i}"),
                    label: (i > 0).then(|| format!("desk {i}")),
                    device_type: crate::api::DeviceType::Extension,
                    state: serde_json::from_value(serde_json::json!(s)).unwrap(),
                    attempts: 0,
                    last_error: (*s == "failed").then(|| "UNREGISTERED".into()),
                    next_attempt_at: None,
                    acknowledged_at: None,
                })
                .collect(),
        }
    }

    #[test]
    fn delivered_everywhere_is_success_and_anything_else_is_exit_7() {
        assert!(verdict(&view(&["delivered", "delivered"])).is_ok());
        let err = verdict(&view(&["delivered", "failed"])).unwrap_err();
        assert_eq!(err.code.exit_code(), 7);
        assert!(
            err.message
                .contains("dev_1 \"desk 1\" (failed, UNREGISTERED)"),
            "{}",
            err.message
        );
        assert_eq!(
            verdict(&view(&["expired"])).unwrap_err().code,
            ErrorCode::NotDelivered
        );
        let late = not_final(
            Some(&view(&["delivered", "queued"])),
            Duration::from_secs(3),
        );
        assert_eq!(late.code, ErrorCode::NotDelivered);
        assert!(
            late.message.contains("dev_1 \"desk 1\" (queued)") && !late.message.contains("dev_0")
        );
    }

    #[test]
    fn the_table_has_a_row_per_device() {
        let mut urgent = view(&["delivered"]);
        urgent.repeat = Some(crate::api::status::RepeatView {
            retry: 30,
            expire: 600,
            expires_at: "2026-01-01T00:10:00.000Z".into(),
            repeats: 2,
        });
        urgent.callback = Some(crate::api::status::CallbackView {
            state: "delivered".into(),
            at: Some("2026-01-01T00:01:00.000Z".into()),
        });
        let shown = table(&urgent);
        assert!(
            shown.contains("repeats every 30s until 2026-01-01T00:10:00.000Z (2 so far)"),
            "{shown}"
        );
        assert!(
            shown.contains("callback delivered at 2026-01-01T00:01:00.000Z"),
            "{shown}"
        );
        let text = table(&view(&["delivered", "failed"]));
        let lines: Vec<_> = text.lines().collect();
        assert_eq!(lines.len(), 4);
        assert!(lines[1].starts_with("DEVICE"));
        assert!(lines[3].contains("failed") && lines[3].contains("UNREGISTERED"));
        let cells = |line: &str| -> Vec<String> {
            line.split("  ")
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .map(str::to_owned)
                .take(3)
                .collect()
        };
        assert_eq!(cells(lines[1]), ["DEVICE", "LABEL", "TYPE"]);
        assert_eq!(cells(lines[3]), ["dev_1", "desk 1", "extension"]);
        assert_eq!(cells(lines[2]), ["dev_0", "-", "extension"], "no label");
    }

    #[test]
    fn wait_takes_non_negative_seconds() {
        assert_eq!(parse_wait("2.5"), Ok(2.5));
        assert!(parse_wait("-1").is_err());
        assert!(parse_wait("NaN").is_err());
        assert!(parse_wait("soon").is_err());
    }
}
