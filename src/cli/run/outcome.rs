//! How a command ended, in the words of the notification (SPEC §2.3 `run`): the exact titles,
//! the exit status `reflecto run` passes on, and the command line as a person would type it.

use crate::client::diagnose::human_duration;
use crate::validate::tail::keep_tail;
use std::ffi::OsString;
use std::time::Duration;

/// The end of COMMAND.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// It exited with this status (0 is success; 127 and 126 also stand for "could not be
    /// started", as in a shell).
    Exited(i32),
    /// A signal ended it.
    Killed(i32),
}

impl Outcome {
    pub fn of(status: std::process::ExitStatus) -> Outcome {
        #[cfg(unix)]
        if let Some(signal) = std::os::unix::process::ExitStatusExt::signal(&status) {
            return Outcome::Killed(signal);
        }
        Outcome::Exited(status.code().unwrap_or(1))
    }

    pub fn failed(self) -> bool {
        self != Outcome::Exited(0)
    }

    /// What `reflecto run` exits with: COMMAND's own status, 128 + the signal for a signal (a
    /// shell's convention), so `reflecto run -- make && deploy` reads like `make && deploy`.
    pub fn exit_status(self) -> i32 {
        match self {
            Outcome::Exited(code) => code,
            Outcome::Killed(signal) => 128 + signal,
        }
    }

    /// The notification's title, cut like every long input (SPEC §2.5): its last 100 bytes,
    /// at a UTF-8 boundary, so the outcome and duration at its end survive a long command.
    pub fn title(self, command: &str, took: Duration) -> String {
        let took = human_duration(took.as_secs());
        let title = match self {
            Outcome::Exited(0) => format!("✔ {command} succeeded in {took}"),
            Outcome::Exited(code) => format!("✘ {command} failed (exit {code}) after {took}"),
            Outcome::Killed(signal) => {
                format!("✘ {command} killed by signal {signal} after {took}")
            }
        };
        keep_tail(&title, crate::api::MAX_TITLE_BYTES).to_owned()
    }
}

/// The command line as a shell would take it back: words with spaces or shell characters in
/// single quotes (`sh -c 'kill -TERM $$'`).
pub fn command_line(words: &[OsString]) -> String {
    let quoted: Vec<String> = words
        .iter()
        .map(|word| {
            let word = word.to_string_lossy();
            let plain = |c: char| c.is_alphanumeric() || "-_./=:,+@%".contains(c);
            if !word.is_empty() && word.chars().all(plain) {
                word.into_owned()
            } else {
                format!("'{}'", word.replace('\'', r"'\''"))
            }
        })
        .collect();
    quoted.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECS: fn(u64) -> Duration = Duration::from_secs;

    #[test]
    fn titles_say_how_it_ended_and_how_long_it_took() {
        assert_eq!(
            Outcome::Exited(0).title("make test", SECS(42)),
            "✔ make test succeeded in 42s"
        );
        assert_eq!(
            Outcome::Exited(3).title("make test", SECS(90)),
            "✘ make test failed (exit 3) after 1m 30s"
        );
        assert_eq!(
            Outcome::Killed(15).title("backup", SECS(2 * 3600 + 5 * 60 + 7)),
            "✘ backup killed by signal 15 after 2h 5m"
        );
        // Under a second is 0s, not a fraction.
        assert_eq!(
            Outcome::Exited(0).title("true", Duration::from_millis(300)),
            "✔ true succeeded in 0s"
        );
    }

    #[test]
    fn a_long_title_keeps_its_last_100_bytes() {
        let command = format!("echo {}", "é".repeat(80));
        let title = Outcome::Exited(1).title(&command, SECS(3));
        assert!(title.len() <= 100, "{}", title.len());
        assert!(title.ends_with("é failed (exit 1) after 3s"), "{title}");
        assert!(
            title.starts_with('é'),
            "cut at a character boundary: {title}"
        );
    }

    #[test]
    fn exit_statuses_pass_through_and_signals_add_128() {
        assert_eq!(Outcome::Exited(0).exit_status(), 0);
        assert_eq!(Outcome::Exited(3).exit_status(), 3);
        assert_eq!(Outcome::Killed(15).exit_status(), 143);
        assert!(!Outcome::Exited(0).failed());
        assert!(Outcome::Exited(127).failed() && Outcome::Killed(9).failed());
    }

    #[test]
    fn command_lines_quote_what_a_shell_would_split() {
        let words = |w: &[&str]| w.iter().map(OsString::from).collect::<Vec<_>>();
        assert_eq!(
            command_line(&words(&["make", "-j4", "test"])),
            "make -j4 test"
        );
        assert_eq!(
            command_line(&words(&["sh", "-c", "kill -TERM $$"])),
            "sh -c 'kill -TERM $$'"
        );
        assert_eq!(
            command_line(&words(&["echo", "it's", ""])),
            r"echo 'it'\''s' ''"
        );
    }
}
