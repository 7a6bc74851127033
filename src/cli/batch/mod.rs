//! `reflecto send --batch FILE|-`: JSON lines, one request each, sent in order (stdin as each
//! line arrives). A 429 is waited out for its Retry-After however long (unless
//! --retry-max-wait is given), so a batch larger than a rate-limit window still finishes; a bad
//! line is reported with its number and skipped; a relay that cannot be reached ends the batch
//! after that line's retries, and Ctrl-C after the line in flight, each saying where to resume
//! (`--skip N`). The exit code is the highest of the failures'.

mod source;
mod summary;

use super::send::{SendArgs, client_setup, print_sent, validate_line, with_local_warnings};
use crate::api::{ApiError, ErrorCode};
use crate::client::diagnose::human_duration;
use crate::client::{Client, RetryPolicy, Retrying};
use futures_util::FutureExt;
use indicatif::{ProgressBar, ProgressStyle};
use source::Lines;
use std::io::IsTerminal;
use std::path::Path;
use summary::{Resume, Stop, Tally, report_failure, summarize};

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

/// A bar for a file (its length is known), a count for a stream.
fn progress_bar(len: Option<usize>, show: bool) -> ProgressBar {
    if !show {
        return ProgressBar::hidden();
    }
    let (bar, template) = match len {
        Some(len) => (
            ProgressBar::new(len as u64),
            "{bar:30} {pos}/{len} sent {msg}",
        ),
        None => (ProgressBar::no_length(), "{pos} lines handled {msg}"),
    };
    bar.set_style(ProgressStyle::with_template(template).expect("static template"));
    bar
}

pub fn run(args: &SendArgs, source: &Path) -> Result<(), ApiError> {
    let skip = args.skip.unwrap_or(0);
    let mut lines = Lines::open(source, skip)?;
    let (client, token, max_wait, runtime) = client_setup(&args.notify, None)?;
    let policy = RetryPolicy {
        max_wait,
        wait_out_429: args.notify.retry_max_wait.is_none(),
    };
    let terminal = std::io::stderr().is_terminal() && !args.quiet;
    let bar = progress_bar(lines.len(), terminal);
    let mut interrupts = runtime.block_on(async { Interrupts::new() })?;
    let mut tally = Tally::default();
    let (mut total, mut last) = (0, skip);
    let stopped = loop {
        // Waiting for stdin's next line must not make Ctrl-C wait for it too.
        let next = runtime.block_on(async {
            tokio::select! {
                biased;
                () = interrupts.recv() => None,
                next = lines.next() => Some(next),
            }
        });
        let (number, line) = match next {
            None => break Some(Stop::Interrupted(Resume::After(last))),
            Some(None) => break None,
            Some(Some(Err(error))) => {
                bar.finish_and_clear();
                return Err(error);
            }
            Some(Some(Ok(numbered))) => numbered,
        };
        total += 1;
        last = number;
        let validated = match validate_line(&line) {
            Ok(v) => v,
            Err(error) => {
                report_failure(&bar, args.json, number, &error);
                tally.fail(error);
                bar.inc(1);
                continue;
            }
        };
        let key = Client::new_idempotency_key();
        let line = Line {
            number,
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
        let mut unreachable = false;
        match outcome {
            Outcome::Sent(sent) => {
                tally.sent += 1;
                let sent = with_local_warnings(*sent, &validated.warnings);
                bar.suspend(|| print_sent(&sent, args.json, args.quiet, Some(number)));
            }
            Outcome::Failed(error) => {
                report_failure(&bar, args.json, number, &error);
                // The next lines would only wait out the same retries (SPEC §2.5).
                unreachable = error.code == ErrorCode::RelayUnreachable;
                tally.fail(error);
            }
            Outcome::Abandoned => {}
        }
        bar.inc(1);
        if interrupted {
            // The line abandoned mid-wait is the first unsent; else the one after this.
            let resume = match (abandoned, lines.peek_number()) {
                (true, _) => Resume::FirstUnsent(number),
                (false, Some(Some(next))) => Resume::FirstUnsent(next),
                (false, Some(None)) => Resume::Done,
                (false, None) => Resume::After(number),
            };
            break Some(Stop::Interrupted(resume));
        }
        if unreachable {
            break Some(Stop::Unreachable(number));
        }
    };
    bar.finish_and_clear();
    summarize(args.quiet, &tally, total, skip, stopped)
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
    let on_retry = |retrying: &Retrying<'_>| {
        if retrying.rate_limited() {
            waiting_until.set(Some(std::time::Instant::now() + retrying.delay));
            wait_began.notify_one();
            if terminal {
                bar.suspend(|| {
                    eprintln!(
                        "line {number}: {}; waiting {} as the relay asks",
                        retrying.what,
                        human_duration(retrying.delay.as_secs().max(1))
                    );
                });
            }
        } else if terminal && retrying.attempt == 0 {
            // Feedback at once: what failed and how long this line may keep trying.
            bar.suspend(|| eprintln!("line {number}: {}", retrying.notice()));
        }
    };
    let send = client.send(token, line.request, line.key, policy, &on_retry);
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
