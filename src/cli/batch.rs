//! `reflecto send --batch FILE|-`: JSON lines, one request each, sent in order. Each request is
//! retried within --retry-max-wait (waiting out 429s for their Retry-After); a bad line is
//! reported and skipped. The exit code is the highest of the failures'.

use super::send::{SendArgs, client_setup, print_sent, validate_line};
use crate::api::{ApiError, ErrorCode};
use crate::client::Client;
use indicatif::{ProgressBar, ProgressStyle};
use std::io::{BufRead, BufReader, IsTerminal, Read};
use std::path::Path;

fn read_lines(source: &Path) -> Result<Vec<(usize, String)>, ApiError> {
    let reader: Box<dyn Read> = if source == Path::new("-") {
        Box::new(std::io::stdin())
    } else {
        Box::new(std::fs::File::open(source).map_err(|e| {
            ApiError::new(
                ErrorCode::InvalidBody,
                format!("opening {}: {e}", source.display()),
            )
        })?)
    };
    let mut lines = Vec::new();
    for (i, line) in BufReader::new(reader).lines().enumerate() {
        let line = line.map_err(|e| {
            ApiError::new(
                ErrorCode::InvalidBody,
                format!("reading line {}: {e}", i + 1),
            )
        })?;
        if !line.trim().is_empty() {
            lines.push((i + 1, line));
        }
    }
    Ok(lines)
}

pub fn run(args: &SendArgs, source: &Path) -> Result<(), ApiError> {
    let lines = read_lines(source)?;
    let (client, token, max_wait, runtime) = client_setup(args, None)?;
    let bar = if std::io::stderr().is_terminal() && !args.quiet {
        let bar = ProgressBar::new(lines.len() as u64);
        bar.set_style(
            ProgressStyle::with_template("{bar:30} {pos}/{len} sent {msg}")
                .expect("static template"),
        );
        bar
    } else {
        ProgressBar::hidden()
    };
    let mut sent = 0usize;
    let mut worst: Option<ApiError> = None;
    let mut failed = 0usize;
    for (number, line) in &lines {
        let result = validate_line(line).and_then(|v| {
            runtime.block_on(client.send(
                &token,
                &v.request,
                &Client::new_idempotency_key(),
                max_wait,
            ))
        });
        match result {
            Ok(done) => {
                sent += 1;
                bar.suspend(|| print_sent(&done, args.json, args.quiet));
            }
            Err(error) => {
                failed += 1;
                bar.suspend(|| eprintln!("line {number}: {error}"));
                if worst
                    .as_ref()
                    .is_none_or(|w| error.code.exit_code() > w.code.exit_code())
                {
                    worst = Some(error);
                }
            }
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    if !args.quiet {
        eprintln!("batch: {sent} sent, {failed} failed, {} lines", lines.len());
    }
    match worst {
        None => Ok(()),
        Some(w) => Err(ApiError::new(
            w.code,
            format!(
                "{failed} of {} requests failed; the worst: {}",
                lines.len(),
                w.message
            ),
        )),
    }
}
