//! `reflecto ask QUESTION --option LABEL[=RESPONSE]…` (SPEC §2.3): send a question with one
//! response button per option, wait for the first acknowledgement with the status long poll,
//! and print the chosen response alone on stdout, so a CI step can branch on it:
//! `[ "$(reflecto ask 'Deploy?' --option Deploy --option Abort)" = Deploy ] && ./deploy`.
//! Nobody answering within `--wait` is exit 7 (`not_acknowledged`), and the question is
//! cleared from every screen: an answer after the step gave up would be acted on by nobody.

use super::send::{NotifyArgs, client_setup, fields, response_action, validate};
use super::status::{Acknowledgement, Output, Until, follow, parse_wait};
use crate::api::{ApiError, ErrorCode};
use crate::client::answer::ClearTarget;
use crate::client::http::StatusPoll;
use crate::client::{Client, RetryPolicy};
use clap::Args;
use serde::Serialize;
use serde_json::Value;
use std::io::IsTerminal;
use std::time::Duration;

/// Most options: the relay keeps 3 actions.
const MAX_OPTIONS: usize = 3;

#[derive(Debug, Args)]
#[command(
    after_help = "stdout carries only the chosen response (nothing for a click on the notification itself), so `$(reflecto ask …)` is the answer. Exit 0 when someone answered, 7 (not_acknowledged) when nobody did within --wait."
)]
pub struct AskArgs {
    /// The question (up to 1500 bytes)
    pub question: String,
    /// An answer button: 'LABEL[=RESPONSE]' (1–3; RESPONSE, 1–32 of A-Z a-z 0-9 . _ : -,
    /// defaults to LABEL)
    #[arg(long = "option", value_name = "LABEL[=RESPONSE]", required = true)]
    pub options: Vec<String>,
    /// How long to wait for an answer before giving up (exit 7) and clearing the question
    #[arg(long, value_name = "SECONDS", default_value = "600", value_parser = parse_wait)]
    pub wait: f64,
    /// A title above the question (1–100 bytes)
    #[arg(short, long, value_name = "T")]
    pub title: Option<String>,
    #[command(flatten)]
    pub notify: NotifyArgs,
    /// Print {"id","response","device_id","acknowledged_at"} instead of the response alone
    #[arg(long)]
    pub json: bool,
}

/// `--json`'s answer, in SPEC's key order.
#[derive(Debug, Serialize)]
struct Answered<'a> {
    id: &'a str,
    response: Option<&'a str>,
    device_id: &'a str,
    acknowledged_at: &'a str,
}

/// The question's fields: the options first (so the relay's cap of 3 actions never drops
/// one), then any link or response buttons the send flags add.
fn question_fields(args: &AskArgs) -> Result<serde_json::Map<String, Value>, ApiError> {
    if args.options.len() > MAX_OPTIONS {
        return Err(ApiError::new(
            ErrorCode::UsageError,
            format!(
                "at most {MAX_OPTIONS} --option (got {}): a notification has 3 buttons",
                args.options.len()
            ),
        ));
    }
    let mut map = fields(&args.notify, args.title.as_deref(), args.question.clone())?;
    let mut actions: Vec<Value> = args.options.iter().map(|o| response_action(o)).collect();
    if let Some(Value::Array(more)) = map.remove("actions") {
        actions.extend(more);
    }
    map.insert("actions".into(), Value::Array(actions));
    Ok(map)
}

pub fn run(args: AskArgs) -> Result<(), ApiError> {
    let mut validated = validate(&question_fields(&args)?)?;
    let (client, token, max_wait, runtime) = client_setup(&args.notify, None)?;
    let terminal = std::io::stderr().is_terminal();
    let on_retry = |retrying: &crate::client::Retrying<'_>| {
        if terminal && retrying.attempt == 0 {
            eprintln!("{}", retrying.notice());
        }
    };
    let key = Client::new_idempotency_key();
    let sent = runtime.block_on(client.send(
        &token,
        &validated.request,
        &key,
        RetryPolicy::bounded(max_wait),
        &on_retry,
    ))?;
    for warning in validated.warnings.drain(..) {
        eprintln!("warning: {warning}");
    }
    for warning in &sent.response.warnings {
        eprintln!("warning: {warning}");
    }
    let id = sent.response.id.clone();
    let wait = Duration::from_secs_f64(args.wait);
    eprintln!(
        "{id}: asked on {} device(s); waiting up to {}s for an answer",
        sent.response.delivered_to.len(),
        args.wait
    );
    let followed = runtime.block_on(follow(
        &client,
        &token,
        &id,
        wait,
        Output::Quiet,
        Until::Acknowledged,
    ));
    match followed {
        Ok(Some(ack)) => {
            print_answer(&id, &ack, args.json);
            Ok(())
        }
        Ok(None) => unreachable!("following until acknowledged returns the acknowledgement"),
        Err(e) if e.code == ErrorCode::NotAcknowledged => {
            // Nobody will act on a late answer: take the question off every screen.
            let cleared =
                runtime.block_on(client.clear(&token, ClearTarget::Message(&id), max_wait));
            // An answer that came between the deadline and the clear still counts: the person
            // saw their click succeed.
            let late = runtime.block_on(client.message_status(&token, &id, None, Duration::ZERO));
            if let Ok(StatusPoll::Changed { view, .. }) = late
                && let Some(ack) = view.acknowledged
            {
                print_answer(&id, &ack, args.json);
                return Ok(());
            }
            match cleared {
                Ok(_) => Err(ApiError::new(
                    e.code,
                    format!("{}; the question was cleared from every device", e.message),
                )),
                Err(clear) => Err(ApiError::new(
                    e.code,
                    format!(
                        "{}; clearing the question failed too ({}: {})",
                        e.message, clear.code, clear.message
                    ),
                )),
            }
        }
        Err(e) => Err(e),
    }
}

/// The response alone (nothing for a click without one), or `--json`'s object.
fn print_answer(id: &str, ack: &Acknowledgement, json: bool) {
    if json {
        let answered = Answered {
            id,
            response: ack.response.as_deref(),
            device_id: &ack.device_id,
            acknowledged_at: &ack.at,
        };
        super::print_json(&answered);
    } else if let Some(response) = &ack.response {
        println!("{response}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        ask: AskArgs,
    }

    fn parse(argv: &[&str]) -> AskArgs {
        Cli::try_parse_from(std::iter::once("ask").chain(argv.iter().copied()))
            .unwrap()
            .ask
    }

    #[test]
    fn options_come_first_as_response_actions() {
        let args = parse(&[
            "Deploy?",
            "--option",
            "Deploy",
            "--option",
            "Not now=abort",
            "--action",
            "Diff=https://ci.example/diff",
        ]);
        assert_eq!(args.wait, 600.0);
        let map = question_fields(&args).unwrap();
        assert_eq!(
            map["actions"],
            serde_json::json!([
                {"label": "Deploy", "response": "Deploy"},
                {"label": "Not now", "response": "abort"},
                {"label": "Diff", "url": "https://ci.example/diff"}
            ])
        );
        assert_eq!(map["message"], "Deploy?");
    }

    #[test]
    fn four_options_are_a_usage_error_and_none_is_refused_by_the_parser() {
        let args = parse(&[
            "q", "--option", "a", "--option", "b", "--option", "c", "--option", "d",
        ]);
        assert_eq!(
            question_fields(&args).unwrap_err().code,
            ErrorCode::UsageError
        );
        assert!(Cli::try_parse_from(["ask", "q"]).is_err());
    }
}
