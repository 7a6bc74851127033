//! Where a batch's lines come from: a file is read whole first (so the progress bar knows its
//! length), stdin is streamed line by line from a reader thread, so `tail -f log | reflecto
//! send --batch -` sends each line as it arrives and Ctrl-C still works while it waits.

use crate::api::{ApiError, ErrorCode};
use std::io::{BufRead, BufReader};
use std::path::Path;

/// A numbered non-blank line (1-based, counting blank lines too, as `--skip` does).
pub type Numbered = (usize, String);

pub enum Lines {
    Read(std::iter::Peekable<std::vec::IntoIter<Numbered>>),
    Streamed(tokio::sync::mpsc::Receiver<Result<Numbered, ApiError>>),
}

fn read_error(number: usize, source: &Path, e: &std::io::Error) -> ApiError {
    ApiError::new(
        ErrorCode::IoError,
        format!("reading line {number} of {}: {e}", source.display()),
    )
}

/// Lines after line `skip` that are not blank, numbered; yields each read error once.
fn numbered(
    reader: impl BufRead,
    source: &Path,
    skip: usize,
) -> impl Iterator<Item = Result<Numbered, ApiError>> {
    let source = source.to_path_buf();
    reader
        .lines()
        .enumerate()
        .map(move |(i, line)| {
            line.map(|l| (i + 1, l))
                .map_err(|e| read_error(i + 1, &source, &e))
        })
        .filter(move |r| {
            r.as_ref()
                .map_or(true, |(n, l)| *n > skip && !l.trim().is_empty())
        })
}

impl Lines {
    /// `-` streams stdin; anything else is a file read now.
    pub fn open(source: &Path, skip: usize) -> Result<Lines, ApiError> {
        if source == Path::new("-") {
            let (tx, rx) = tokio::sync::mpsc::channel(64);
            let source = source.to_path_buf();
            std::thread::spawn(move || {
                let stdin = std::io::stdin().lock();
                for line in numbered(stdin, &source, skip) {
                    let failed = line.is_err();
                    if tx.blocking_send(line).is_err() || failed {
                        return;
                    }
                }
            });
            return Ok(Lines::Streamed(rx));
        }
        let file = std::fs::File::open(source).map_err(|e| {
            ApiError::new(
                ErrorCode::IoError,
                format!("opening batch file {}: {e}", source.display()),
            )
        })?;
        let lines = numbered(BufReader::new(file), source, skip).collect::<Result<Vec<_>, _>>()?;
        Ok(Lines::Read(lines.into_iter().peekable()))
    }

    /// How many lines there are, when known before sending (a file).
    pub fn len(&self) -> Option<usize> {
        match self {
            Lines::Read(lines) => Some(lines.len()),
            Lines::Streamed(_) => None,
        }
    }

    /// The next line, or `None` at the end of the input.
    pub async fn next(&mut self) -> Option<Result<Numbered, ApiError>> {
        match self {
            Lines::Read(lines) => lines.next().map(Ok),
            Lines::Streamed(rx) => rx.recv().await,
        }
    }

    /// The number of the next line: `Some(None)` at the end of a file, `None` when it cannot
    /// be known yet (a stream).
    pub fn peek_number(&mut self) -> Option<Option<usize>> {
        match self {
            Lines::Read(lines) => Some(lines.peek().map(|(n, _)| *n)),
            Lines::Streamed(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::numbered;
    use std::path::Path;

    #[test]
    fn lines_keep_their_file_numbers_past_blanks_and_skips() {
        let input = "a\n\n  \nb\nc\n";
        let lines: Vec<_> = numbered(input.as_bytes(), Path::new("-"), 0)
            .map(Result::unwrap)
            .collect();
        assert_eq!(lines, [(1, "a".into()), (4, "b".into()), (5, "c".into())]);
        let lines: Vec<_> = numbered(input.as_bytes(), Path::new("-"), 4)
            .map(Result::unwrap)
            .collect();
        assert_eq!(lines, [(5, "c".into())]);
    }
}
