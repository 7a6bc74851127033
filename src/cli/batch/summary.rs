//! How a batch ends: each failed line with its number, then one closing line on stderr and
//! the error that sets the exit code — the highest of the failures', 130 after Ctrl-C, 6 when
//! the relay could not be reached — with the `--skip N` that resumes when it stopped early.

use crate::api::{ApiError, ErrorCode};
use indicatif::ProgressBar;

/// Tallies and the worst failure, for the summary and the exit code.
#[derive(Default)]
pub struct Tally {
    pub sent: usize,
    pub failed: usize,
    pub worst: Option<ApiError>,
}

impl Tally {
    pub fn fail(&mut self, error: ApiError) {
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

/// Where a batch that stopped early resumes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resume {
    /// The first line not sent is known (a file, or the line in flight).
    FirstUnsent(usize),
    /// Every line up to this one was handled; what follows is not read yet (stdin).
    After(usize),
    /// Nothing was left.
    Done,
}

impl Resume {
    fn text(self) -> String {
        match self {
            Resume::FirstUnsent(n) => {
                format!("first unsent line: {n} (resume with --skip {})", n - 1)
            }
            Resume::After(n) => format!("resume with --skip {n}"),
            Resume::Done => "every line was handled".to_owned(),
        }
    }

    fn first_unsent(self) -> Option<usize> {
        match self {
            Resume::FirstUnsent(n) => Some(n),
            Resume::After(_) | Resume::Done => None,
        }
    }
}

/// Why a batch stopped before its end.
pub enum Stop {
    /// Ctrl-C.
    Interrupted(Resume),
    /// The relay could not be reached at this line, after its retries: the next lines would
    /// only wait the same way.
    Unreachable(usize),
}

/// A failed line: its number and error on stderr, and with --json as `{"line":N,"error":…}`.
pub fn report_failure(bar: &ProgressBar, json: bool, number: usize, error: &ApiError) {
    bar.suspend(|| {
        eprintln!("line {number}: {error}");
        if json {
            let mut body = error.to_nested_body();
            body["line"] = serde_json::json!(number);
            println!("{body}");
        }
    });
}

/// The closing line on stderr and the error that sets the exit code.
pub fn summarize(
    quiet: bool,
    tally: &Tally,
    total: usize,
    skip: usize,
    stopped: Option<Stop>,
) -> Result<(), ApiError> {
    let skipped = if skip > 0 {
        format!(" (lines 1–{skip} skipped)")
    } else {
        String::new()
    };
    let (sent, failed) = (tally.sent, tally.failed);
    match stopped {
        Some(Stop::Interrupted(resume)) => {
            let message = format!(
                "batch interrupted: {sent} sent, {failed} failed{skipped}; {}",
                resume.text()
            );
            let details = serde_json::json!({
                "sent": sent,
                "failed": failed,
                "first_unsent_line": resume.first_unsent(),
            });
            return Err(ApiError::new(ErrorCode::Interrupted, message).with_details(details));
        }
        Some(Stop::Unreachable(line)) => {
            let message = format!(
                "batch stopped at line {line}: the relay is unreachable; {sent} sent, {failed} failed{skipped}; resume with --skip {} once it is up",
                line - 1
            );
            let details = serde_json::json!({
                "sent": sent,
                "failed": failed,
                "first_unsent_line": line,
            });
            return Err(ApiError::new(ErrorCode::RelayUnreachable, message).with_details(details));
        }
        None => {}
    }
    if !quiet {
        eprintln!("batch: {sent} sent, {failed} failed, {total} lines{skipped}");
    }
    match &tally.worst {
        None => Ok(()),
        Some(w) => Err(ApiError::new(
            w.code,
            format!(
                "{failed} of {total} requests failed; the worst: {}",
                w.message
            ),
        )
        .with_details(serde_json::json!({"sent": sent, "failed": failed}))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stop_at_the_first_line_resumes_with_skip_0() {
        let mut tally = Tally::default();
        tally.fail(ApiError::new(ErrorCode::RelayUnreachable, "refused"));
        let err = summarize(true, &tally, 1, 0, Some(Stop::Unreachable(1))).unwrap_err();
        assert_eq!(err.code, ErrorCode::RelayUnreachable);
        assert!(
            err.message.contains("resume with --skip 0"),
            "{}",
            err.message
        );
        assert!(err.message.contains("0 sent, 1 failed"), "{}", err.message);
    }

    #[test]
    fn an_interrupted_stream_resumes_after_the_last_line_handled() {
        let tally = Tally {
            sent: 3,
            ..Tally::default()
        };
        let stop = Some(Stop::Interrupted(Resume::After(4)));
        let err = summarize(true, &tally, 3, 0, stop).unwrap_err();
        assert_eq!(err.code, ErrorCode::Interrupted);
        assert!(
            err.message.ends_with("; resume with --skip 4"),
            "{}",
            err.message
        );
    }
}
