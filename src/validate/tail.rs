//! Keeping the end of a long text: a message piped from a log (`make 2>&1 | tail | reflecto
//! send`) matters most at its end, so over the cap the CLI keeps the **last** bytes instead of
//! refusing the whole (SPEC §2.5 "Long input"). Also meant for titles from `run` and hooks.

use crate::api::{ApiError, ErrorCode, MAX_MESSAGE_BYTES};

/// A message as read from stdin → what is sent, and the warning when it was cut: the final line
/// break goes (`echo done | reflecto send` sends "done"), an empty one is a usage error, and
/// over 1500 bytes only the tail is kept.
pub fn stdin_message(mut text: String) -> Result<(String, Option<String>), ApiError> {
    if text.ends_with('\n') {
        text.pop();
        if text.ends_with('\r') {
            text.pop();
        }
    }
    if text.is_empty() {
        return Err(ApiError::new(
            ErrorCode::UsageError,
            "nothing to send: stdin was empty",
        ));
    }
    if text.len() <= MAX_MESSAGE_BYTES {
        return Ok((text, None));
    }
    let warning = format!(
        "message from stdin truncated to its last {MAX_MESSAGE_BYTES} bytes (was {})",
        text.len()
    );
    Ok((
        keep_tail(&text, MAX_MESSAGE_BYTES).to_owned(),
        Some(warning),
    ))
}

/// The last at most `max` bytes of `text`, starting at a line boundary when one lies within
/// them (the first whole line of the window), else at the first UTF-8 character boundary.
/// A text of `max` bytes or fewer comes back whole.
pub fn keep_tail(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut start = text.len() - max;
    // The window already begins a line when the byte before it ends one.
    if text.as_bytes()[start - 1] == b'\n' {
        return &text[start..];
    }
    if let Some(newline) = text.as_bytes()[start..].iter().position(|&b| b == b'\n') {
        let after = start + newline + 1;
        // A newline as the very last byte leaves nothing after it: cut by characters instead.
        if after < text.len() {
            return &text[after..];
        }
    }
    while !text.is_char_boundary(start) {
        start += 1;
    }
    &text[start..]
}

#[cfg(test)]
mod tests {
    use super::{keep_tail, stdin_message};
    use crate::api::ErrorCode;

    #[test]
    fn stdin_loses_its_final_line_break_and_may_not_be_empty() {
        assert_eq!(
            stdin_message("done\r\n".into()).unwrap(),
            ("done".into(), None)
        );
        for empty in ["", "\n", "\r\n"] {
            let err = stdin_message(empty.into()).unwrap_err();
            assert_eq!(err.code, ErrorCode::UsageError);
            assert_eq!(err.message, "nothing to send: stdin was empty");
        }
    }

    #[test]
    fn long_stdin_keeps_its_tail_with_a_warning() {
        let exact = format!("{}\n", "x".repeat(1500));
        assert_eq!(stdin_message(exact).unwrap(), ("x".repeat(1500), None));
        let long = format!("{}\n{}\n", "a".repeat(1000), "b".repeat(1000));
        let (kept, warning) = stdin_message(long).unwrap();
        assert_eq!(kept, "b".repeat(1000));
        assert_eq!(
            warning.as_deref(),
            Some("message from stdin truncated to its last 1500 bytes (was 2001)")
        );
    }

    #[test]
    fn short_and_exact_texts_are_kept_whole() {
        assert_eq!(keep_tail("", 1500), "");
        let exact = "x".repeat(1500);
        assert_eq!(keep_tail(&exact, 1500), exact);
    }

    #[test]
    fn a_line_boundary_inside_the_window_starts_the_tail() {
        // "1\n2\n…\n600": the kept part starts with a whole line and ends with "600".
        let text: String = (1..=600)
            .map(|i| i.to_string())
            .collect::<Vec<_>>()
            .join("\n");
        let tail = keep_tail(&text, 1500);
        assert!(tail.len() <= 1500);
        assert!(tail.ends_with("\n599\n600"), "{tail}");
        // It starts right after a newline, and the line before it would not have fitted.
        let dropped = &text[..text.len() - tail.len()];
        assert!(dropped.ends_with('\n'));
        let straddling = dropped.trim_end_matches('\n').rsplit('\n').next().unwrap();
        assert!(tail.len() + straddling.len() + 1 > 1500);
    }

    #[test]
    fn a_window_that_begins_a_line_is_kept_whole() {
        let text = format!("{}\n{}", "a".repeat(10), "b".repeat(20));
        assert_eq!(keep_tail(&text, 20), "b".repeat(20));
    }

    #[test]
    fn no_line_boundary_cuts_at_a_character_boundary() {
        let text = "x".repeat(2000);
        assert_eq!(keep_tail(&text, 1500), "x".repeat(1500));
        // A 3-byte "€" straddles the window's start: it is dropped whole.
        let text = format!("ab€{}", "y".repeat(1499));
        let tail = keep_tail(&text, 1500);
        assert_eq!(tail, "y".repeat(1499));
        // Multi-byte characters throughout: never split, never over the cap.
        let euros = "€".repeat(600);
        let tail = keep_tail(&euros, 1500);
        assert_eq!(tail, "€".repeat(500));
        let text = format!("{}ü", "€".repeat(600));
        let tail = keep_tail(&text, 1500);
        assert!(tail.len() <= 1500 && tail.ends_with('ü'));
        assert_eq!(tail, format!("{}ü", "€".repeat(499)));
    }

    #[test]
    fn a_final_newline_alone_does_not_empty_the_tail() {
        let text = format!("{}\n", "z".repeat(2000));
        let tail = keep_tail(&text, 1500);
        assert_eq!(tail.len(), 1500);
        assert!(tail.ends_with("z\n"));
    }
}
