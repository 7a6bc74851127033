//! The last lines of a command's output, kept while the output streams past (SPEC §2.3 `run`):
//! the notification carries the end of each stream, so memory stays bounded whatever the
//! command prints.

use std::collections::VecDeque;

/// Bytes kept at most (whole lines, oldest dropped first): the message holds 1500 bytes, so
/// more than this can never reach the notification.
const MAX_BYTES: usize = 4 * crate::api::MAX_MESSAGE_BYTES;

/// The last `max` lines seen by [`LastLines::push`], a line being what ends with `\n` (or
/// the unfinished rest at the end).
#[derive(Debug)]
pub struct LastLines {
    max: usize,
    lines: VecDeque<Vec<u8>>,
    /// The line being written (no `\n` yet).
    partial: Vec<u8>,
    /// Bytes in `lines`.
    bytes: usize,
}

impl LastLines {
    pub fn new(max: usize) -> LastLines {
        LastLines {
            max,
            lines: VecDeque::new(),
            partial: Vec::new(),
            bytes: 0,
        }
    }

    /// Takes a chunk of output as it arrived (lines may span chunks; bytes need not be UTF-8).
    pub fn push(&mut self, mut chunk: &[u8]) {
        while let Some(end) = chunk.iter().position(|&b| b == b'\n') {
            self.partial.extend_from_slice(&chunk[..end]);
            let line = std::mem::take(&mut self.partial);
            self.finish_line(line);
            chunk = &chunk[end + 1..];
        }
        self.partial.extend_from_slice(chunk);
        // A line without end (a progress bar, a binary blob) keeps only its own tail.
        if self.partial.len() > 2 * MAX_BYTES {
            self.partial.drain(..self.partial.len() - MAX_BYTES);
        }
    }

    fn finish_line(&mut self, mut line: Vec<u8>) {
        if line.len() > MAX_BYTES {
            line.drain(..line.len() - MAX_BYTES);
        }
        self.bytes += line.len();
        self.lines.push_back(line);
        while self.lines.len() > self.max || (self.bytes > MAX_BYTES && self.lines.len() > 1) {
            let dropped = self.lines.pop_front().expect("not empty");
            self.bytes -= dropped.len();
        }
    }

    /// The kept lines joined by `\n` (no final line break), bytes that are not UTF-8 shown as
    /// U+FFFD; empty when nothing was printed (or `max` is 0).
    pub fn text(&self) -> String {
        let mut lines: Vec<&[u8]> = self.lines.iter().map(Vec::as_slice).collect();
        if !self.partial.is_empty() {
            lines.push(&self.partial);
        }
        let skip = lines.len().saturating_sub(self.max);
        String::from_utf8_lossy(&lines[skip..].join(&b'\n')).into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::LastLines;

    fn keep(max: usize, chunks: &[&[u8]]) -> String {
        let mut kept = LastLines::new(max);
        for chunk in chunks {
            kept.push(chunk);
        }
        kept.text()
    }

    #[test]
    fn keeps_the_last_lines_across_chunks() {
        assert_eq!(keep(2, &[b"one\ntw", b"o\nthree\n"]), "two\nthree");
        assert_eq!(keep(2, &[b"one\ntwo\nthr", b"ee"]), "two\nthree");
        assert_eq!(keep(10, &[b"only\n"]), "only");
        assert_eq!(keep(10, &[b"a\n\nb\n"]), "a\n\nb");
    }

    #[test]
    fn nothing_printed_or_no_lines_wanted_is_empty() {
        assert_eq!(keep(10, &[]), "");
        assert_eq!(keep(0, &[b"a\nb"]), "");
    }

    #[test]
    fn bytes_that_are_not_utf8_become_replacement_characters() {
        assert_eq!(keep(1, &[b"ok\nbad \xff\xfe"]), "bad \u{fffd}\u{fffd}");
        // A character split across chunks is whole again.
        assert_eq!(
            keep(1, &["€".as_bytes()[..1].as_ref(), &"€".as_bytes()[1..]]),
            "€"
        );
    }

    #[test]
    fn memory_stays_bounded() {
        let mut kept = LastLines::new(1_000_000);
        for _ in 0..10_000 {
            kept.push(b"0123456789012345678901234567890123456789\n");
        }
        kept.push(&vec![b'x'; 100_000]);
        assert!(kept.bytes <= super::MAX_BYTES);
        assert!(kept.partial.len() <= 2 * super::MAX_BYTES);
        assert!(kept.text().ends_with("xxxx"));
    }
}
