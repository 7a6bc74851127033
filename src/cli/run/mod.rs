//! `reflecto run [send flags] -- COMMAND`: the one-liner "tell me when this finishes" (SPEC
//! §2.3). COMMAND runs with its stdin, stdout and stderr passed through as they come; the last
//! lines of each output become the message of a notification that says how it ended, and
//! `reflecto run` exits as COMMAND did, so it fits in a script or a cron line unchanged.

mod child;
mod last_lines;
mod outcome;

use super::send::{self, NotifyArgs};
use crate::api::token::Secret;
use crate::api::{ApiError, ErrorCode, MAX_MESSAGE_BYTES};
use crate::client::{Client, RetryPolicy};
use crate::validate::Validated;
use crate::validate::tail::keep_tail;
use clap::Args;
use serde_json::Value;
use std::ffi::OsString;
use std::io::{IsTerminal, Write};
use std::time::Duration;

#[derive(Debug, Args)]
#[command(
    after_help = "COMMAND's output reaches the terminal (or pipe) unchanged. The notification's title is '✔ COMMAND succeeded in DURATION', '✘ COMMAND failed (exit CODE) after DURATION' or '✘ COMMAND killed by signal N after DURATION'; its message is the last --lines lines of COMMAND's stdout, then of its stderr (the command line when it printed nothing). A failure is sent with priority high unless --priority says otherwise.\nreflecto run exits with COMMAND's status (128 + N for signal N; 127 when it cannot be found, 126 when it cannot be executed), whether or not the notification could be sent. SIGINT and SIGTERM are passed on to COMMAND.\nThe sender token comes from the REFLECTO_TOKEN environment variable, else the profile's token stored by `reflecto login`."
)]
pub struct RunArgs {
    #[command(flatten)]
    pub notify: NotifyArgs,
    /// Send only when COMMAND fails (a non-zero status or a signal)
    #[arg(long)]
    pub on_failure: bool,
    /// How many of the last lines of COMMAND's stdout, and of its stderr, the message keeps
    #[arg(long, value_name = "N", default_value_t = 10)]
    pub lines: usize,
    /// The command to run and its arguments, after --
    #[arg(last = true, required = true, value_name = "COMMAND")]
    pub command: Vec<OsString>,
}

type Setup = (Client, Secret, Duration, tokio::runtime::Runtime);

pub fn run(args: RunArgs) -> Result<(), ApiError> {
    // A mistake in the flags (a bad priority or URL, a malformed --server, a token stored for
    // another relay) stops before COMMAND runs. A missing or bad token does not: the command
    // matters more than its notification, so it runs and the send failure is said after it.
    send::validate(&send::fields(&args.notify, Some("run"), "run".into())?)?;
    let setup = match send::client_setup(&args.notify, None) {
        Err(error) if error.code.exit_code() == 2 => return Err(error),
        setup => setup,
    };
    let runtime = super::runtime()?;
    let ended = runtime.block_on(child::supervise(&args.command, args.lines))?;
    drop(runtime);
    if !args.on_failure || ended.outcome.failed() {
        let command = outcome::command_line(&args.command);
        let title = ended.outcome.title(&command, ended.took);
        let text = if ended.text.trim().is_empty() {
            command
        } else {
            ended.text
        };
        if let Err(error) = notify(&args.notify, setup, &title, &text, ended.outcome.failed()) {
            // The send's failure is said, and does not change the exit status (SPEC §2.3).
            eprintln!("{error}");
        }
    }
    let status = ended.outcome.exit_status();
    if status == 0 {
        return Ok(());
    }
    let _ = std::io::stdout().flush();
    std::process::exit(status)
}

/// The notification: the send flags, the title, the message cut to fit, priority high on a
/// failure unless `--priority` was given; sent with send's retries and feedback.
fn notify(
    args: &NotifyArgs,
    setup: Result<Setup, ApiError>,
    title: &str,
    text: &str,
    failed: bool,
) -> Result<(), ApiError> {
    let (client, token, max_wait, runtime) = setup?;
    let mut validated = fit(args, title, text, failed)?;
    let key = Client::new_idempotency_key();
    let terminal = std::io::stderr().is_terminal();
    let on_retry = |retrying: &crate::client::Retrying<'_>| {
        if terminal && retrying.attempt == 0 {
            eprintln!("{}", retrying.notice());
        }
    };
    let policy = RetryPolicy::bounded(max_wait);
    let sending = client.send(&token, &validated.request, &key, policy, &on_retry);
    // COMMAND is over: Ctrl-C or SIGTERM now give up on the notification (their handlers,
    // installed for COMMAND, would otherwise swallow them), not on the exit status.
    let sent = runtime.block_on(async {
        tokio::select! {
            sent = sending => sent.map(Some),
            () = stop() => Ok(None),
        }
    })?;
    let Some(sent) = sent else {
        eprintln!("warning: interrupted: the notification was not sent");
        return Ok(());
    };
    let local: Vec<String> = validated
        .warnings
        .drain(..)
        .map(|w| w.to_string())
        .collect();
    for warning in local.iter().chain(&sent.response.warnings) {
        eprintln!("warning: {warning}");
    }
    Ok(())
}

/// SIGINT or SIGTERM.
async fn stop() {
    #[cfg(unix)]
    if let Ok(mut terminate) =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
    {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = terminate.recv() => {}
        }
        return;
    }
    let _ = tokio::signal::ctrl_c().await;
}

/// The request with the longest tail of `text` that fits: at most 1500 bytes (SPEC §2.5, the
/// end of the output is what matters), and less when the whole envelope would exceed its cap
/// (output full of characters JSON must escape).
fn fit(args: &NotifyArgs, title: &str, text: &str, failed: bool) -> Result<Validated, ApiError> {
    let mut max = MAX_MESSAGE_BYTES;
    loop {
        let mut fields = send::fields(args, Some(title), keep_tail(text, max).to_owned())?;
        if failed && args.priority.is_none() {
            fields.insert("priority".into(), Value::String("high".into()));
        }
        match send::validate(&fields) {
            Err(error) if error.code == ErrorCode::PayloadTooLarge && max > 64 => {
                max -= max / 8;
            }
            validated => return validated,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Flags {
        #[command(flatten)]
        notify: NotifyArgs,
    }

    fn flags(args: &[&str]) -> NotifyArgs {
        Flags::parse_from(std::iter::once("run").chain(args.iter().copied())).notify
    }

    #[test]
    fn a_failure_is_high_unless_a_priority_was_given() {
        let request = |args: &[&str], failed| {
            let validated = fit(&flags(args), "t", "out", failed).unwrap();
            serde_json::to_value(&validated.request).unwrap()
        };
        assert_eq!(request(&[], true)["priority"], "high");
        assert_eq!(request(&["-p", "low"], true)["priority"], "low");
        assert_ne!(request(&[], false)["priority"], "high");
    }

    #[test]
    fn the_message_keeps_the_longest_tail_that_fits_the_envelope() {
        // Control characters are 6 bytes each in JSON: 1500 of them cannot fit in 2048.
        let text = format!("start\n{}end", "\u{1}".repeat(3000));
        let validated = fit(&flags(&[]), "t", &text, true).unwrap();
        let message = validated.request.message.clone();
        assert!(
            message.ends_with("end") && message.len() < 1500,
            "{}",
            message.len()
        );
        let plain = "x".repeat(3000);
        let validated = fit(&flags(&[]), "t", &plain, false).unwrap();
        assert_eq!(validated.request.message.len(), 1500);
    }
}
