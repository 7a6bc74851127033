//! `reflecto send --batch FILE|-`: JSON lines, one request each, sent in order. A 429 is
//! waited out for its Retry-After however long (unless --retry-max-wait is given), so a batch
//! larger than a rate-limit window still finishes; a bad line is reported with its number and
//! skipped; Ctrl-C stops after the line in flight and says where to resume (`--skip N`).
//! The exit code is the highest of the failures'.

use super::send::{SendArgs, client_setup, print_sent, validate_line, with_local_warnings};
use crate::api::{ApiError, ErrorCode};
use crate::client::diagnose::human_duration;
use crate::client::{Client, RetryPolicy};
use futures_util::FutureExt;
use indicatif::{ProgressBar, ProgressStyle};
use std::io::{BufRead, BufReader, IsTerminal, Read};
use std::path::Path;
use std::time::Duration;

fn read_lines(source: &Path) -> Result<Vec<(usize, String)>, ApiError> {
    let reader: Box<dyn Read> = if source == Path::new("-") {
        Box::new(std::io::stdin())
    } else {
        Box::new(std::fs::File::open(source).map_err(|e| {
            ApiError::new(
                ErrorCode::IoError,
                format!("opening batch file {}: {e}", source.display()),
            )
        })?)
    };
    let mut lines = Vec::new();
    for (i, line) in BufReader::new(reader).lines().enumerate() {
        let line = line.map_err(|e| {
            ApiError::new(
                ErrorCode::IoError,
                format!("reading line {} of {}: {e}", i + 1, source.display()),
            )
        })?;
        if !line.trim().is_empty() {
            lines.push((i + 1, line));
        }
    }
    Ok(lines)
}

/// SIGINT as a stream, registered once so a Ctrl-C between two lines is not lost.
struct Interrupts {
    #[cfg(unix)]
    signal: tokio::signal::unix::Signal,
}

impl Interrupts {
    /// Must run inside the runtime.
    fn new() -> Result<Interrupts, ApiError> {
        #[cfg(unix)]
        {
            let signal = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
                .map_err(|e| super::internal("listening for Ctrl-C", e))?;
            Ok(Interrupts { signal })
        }
        #[cfg(not(unix))]
        Ok(Interrupts {})
    }

    async fn recv(&mut self) {
        #[cfg(unix)]
        if self.signal.recv().await.is_none() {
            std::future::pending::<()>().await;
        }
        #[cfg(not(unix))]
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// How one line ended.
enum Outcome {
    Sent(Box<crate::client::Sent>),
    Failed(ApiError),
    /// A second Ctrl-C while the line was still waiting: it was not sent.
    Abandoned,
}

/// Tallies and the worst failure, for the summary and the exit code.
#[derive(Default)]
struct Tally {
    sent: usize,
    failed: usize,
    worst: Option<ApiError>,
}

impl Tally {
    fn fail(&mut self, error: ApiError) {
        self.failed += 1;
        if self
            .worst
            .as_ref()
            .is_none_or(|w| error.code.exit_code() > w.code.exit_code())
        {
            self.worst = Some(error);
        }
    }
}

fn progress_bar(len: usize, show: bool) -> ProgressBar {
    if !show {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len as u64);
    bar.set_style(
        ProgressStyle::with_template("{bar:30} {pos}/{len} sent {msg}").expect("static template"),
    );
    bar
}

pub fn run(args: &SendArgs, source: &Path) -> Result<(), ApiError> {
    let skip = args.skip.unwrap_or(0);
    let lines: Vec<(usize, String)> = read_lines(source)?
        .into_iter()
        .filter(|(n, _)| *n > skip)
        .collect();
    let (client, token, max_wait, runtime) = client_setup(args, None)?;
    let policy = RetryPolicy {
        max_wait,
        wait_out_429: args.retry_max_wait.is_none(),
    };
    let terminal = std::io::stderr().is_terminal() && !args.quiet;
    let bar = progress_bar(lines.len(), terminal);
    let mut interrupts = runtime.block_on(async { Interrupts::new() })?;
    let mut tally = Tally::default();
    let mut stopped = None;
    for (index, (number, line)) in lines.iter().enumerate() {
        let validated = match validate_line(line) {
            Ok(v) => v,
            Err(error) => {
                report_failure(&bar, args.json, *number, &error);
                tally.fail(error);
                bar.inc(1);
                continue;
            }
        };
        let key = Client::new_idempotency_key();
        let line = Line {
            number: *number,
            request: &validated.request,
            key: &key,
        };
        let (outcome, interrupted) = runtime.block_on(send_line(
            &client,
            &token,
            policy,
            line,
            &mut interrupts,
            &bar,
            terminal,
        ));
        let abandoned = matches!(outcome, Outcome::Abandoned);
        match outcome {
            Outcome::Sent(sent) => {
                tally.sent += 1;
                let sent = with_local_warnings(*sent, &validated.warnings);
                bar.suspend(|| print_sent(&sent, args.json, args.quiet, Some(*number)));
            }
            Outcome::Failed(error) => {
                report_failure(&bar, args.json, *number, &error);
                tally.fail(error);
            }
            Outcome::Abandoned => {}
        }
        bar.inc(1);
        if interrupted {
            // The line abandoned mid-wait is the first unsent; else the one after this.
            let next = if abandoned {
                Some(*number)
            } else {
                lines.get(index + 1).map(|(n, _)| *n)
            };
            stopped = Some(next);
            break;
        }
    }
    bar.finish_and_clear();
    summarize(args, &tally, lines.len(), skip, stopped)
}

/// One line to send.
struct Line<'a> {
    number: usize,
    request: &'a crate::api::SendRequest,
    key: &'a str,
}

/// Sends one line, retrying as `policy` allows. Ctrl-C lets an attempt in flight finish (its
/// answer is reported), but a line that is only waiting out a 429 is abandoned at once: it was
/// not sent. Returns the outcome and whether Ctrl-C was pressed.
async fn send_line(
    client: &Client,
    token: &crate::api::token::Secret,
    policy: RetryPolicy,
    line: Line<'_>,
    interrupts: &mut Interrupts,
    bar: &ProgressBar,
    terminal: bool,
) -> (Outcome, bool) {
    let number = line.number;
    let waiting_until = std::cell::Cell::new(None::<std::time::Instant>);
    let wait_began = tokio::sync::Notify::new();
    let on_wait = |error: &ApiError, delay: Duration| {
        waiting_until.set(Some(std::time::Instant::now() + delay));
        wait_began.notify_one();
        if terminal {
            bar.suspend(|| {
                eprintln!(
                    "line {number}: {}; waiting {} as the relay asks",
                    error.message,
                    human_duration(delay.as_secs().max(1))
                );
            });
        }
    };
    let send = client.send(token, line.request, line.key, policy, &on_wait);
    tokio::pin!(send);
    tokio::select! {
        result = &mut send => {
            let interrupted = interrupts.recv().now_or_never().is_some();
            return (outcome_of(result), interrupted);
        }
        () = interrupts.recv() => {}
    }
    bar.suspend(|| {
        eprintln!("interrupted: stopping after line {number} (Ctrl-C again to stop at once)");
    });
    if waiting_until
        .get()
        .is_some_and(|until| until > std::time::Instant::now())
    {
        return (Outcome::Abandoned, true);
    }
    // A permit from a wait that already ended must not count as a new one.
    let _ = wait_began.notified().now_or_never();
    tokio::select! {
        result = &mut send => (outcome_of(result), true),
        () = interrupts.recv() => (Outcome::Abandoned, true),
        () = wait_began.notified() => (Outcome::Abandoned, true),
    }
}

fn outcome_of(result: Result<crate::client::Sent, ApiError>) -> Outcome {
    match result {
        Ok(sent) => Outcome::Sent(Box::new(sent)),
        Err(error) => Outcome::Failed(error),
    }
}

/// A failed line: its number and error on stderr, and with --json as `{"line":N,"error":…}`.
fn report_failure(bar: &ProgressBar, json: bool, number: usize, error: &ApiError) {
    bar.suspend(|| {
        eprintln!("line {number}: {error}");
        if json {
            let mut body = error.to_nested_body();
            body["line"] = serde_json::json!(number);
            println!("{body}");
        }
    });
}

/// The closing line on stderr and the error that sets the exit code. `stopped` is set when
/// Ctrl-C ended the batch: the first line not sent, if any remained.
fn summarize(
    args: &SendArgs,
    tally: &Tally,
    total: usize,
    skip: usize,
    stopped: Option<Option<usize>>,
) -> Result<(), ApiError> {
    let skipped = if skip > 0 {
        format!(" (lines 1–{skip} skipped)")
    } else {
        String::new()
    };
    if let Some(first_unsent) = stopped {
        let resume = match first_unsent {
            Some(n) => format!("; first unsent line: {n} (resume with --skip {})", n - 1),
            None => "; every line was handled".to_owned(),
        };
        let message = format!(
            "batch interrupted: {} sent, {} failed{skipped}{resume}",
            tally.sent, tally.failed
        );
        let details = serde_json::json!({
            "sent": tally.sent,
            "failed": tally.failed,
            "first_unsent_line": first_unsent,
        });
        return Err(ApiError::new(ErrorCode::Interrupted, message).with_details(details));
    }
    if !args.quiet {
        eprintln!(
            "batch: {} sent, {} failed, {total} lines{skipped}",
            tally.sent, tally.failed
        );
    }
    match &tally.worst {
        None => Ok(()),
        Some(w) => Err(ApiError::new(
            w.code,
            format!(
                "{} of {total} requests failed; the worst: {}",
                tally.failed, w.message
            ),
        )
        .with_details(serde_json::json!({"sent": tally.sent, "failed": tally.failed}))),
    }
}
