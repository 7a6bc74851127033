//! A one-shot request (`status`, `pair`, `login`'s check) that the relay is slow to answer is
//! said at once on a terminal, as `send`'s retries are (SPEC §2.5: a silent wait over 2 s is a
//! bug). Not on a pipe or in a script, where a line nobody reads is noise.

use crate::client::{Client, REQUEST_TIMEOUT, SLOW_ANSWER};
use std::io::IsTerminal;
use std::time::Duration;

/// `--retry-max-wait` of a one-shot command that retries like `send` (`clear`, `respond`).
#[derive(Debug, clap::Args)]
pub struct RetryWait {
    /// Longest total wait for retries on 429, 5xx and connection errors
    #[arg(
        long,
        env = "REFLECTO_RETRY_MAX_WAIT",
        value_name = "SECONDS",
        default_value_t = super::send::DEFAULT_RETRY_MAX_WAIT
    )]
    pub retry_max_wait: f64,
}

impl RetryWait {
    /// The wait as a duration, at most a day.
    pub fn budget(&self) -> Duration {
        retry_budget(self.retry_max_wait)
    }
}

/// `--retry-max-wait` seconds as a duration, at most a day.
pub fn retry_budget(seconds: f64) -> Duration {
    Duration::from_secs_f64(seconds.clamp(0.0, 86_400.0))
}

/// Runs `request`; if it is still unanswered after [`SLOW_ANSWER`], says so on stderr when
/// stderr is a terminal, then waits for it as before.
pub async fn said_when_slow<T>(client: &Client, request: impl Future<Output = T>) -> T {
    tokio::pin!(request);
    tokio::select! {
        answered = &mut request => return answered,
        () = tokio::time::sleep(SLOW_ANSWER) => {}
    }
    if std::io::stderr().is_terminal() {
        eprintln!("{}", slow_line(client.server()));
    }
    request.await
}

fn slow_line(server: &str) -> String {
    format!(
        "no answer from {server} yet; waiting up to {} s — Ctrl-C to stop",
        REQUEST_TIMEOUT.as_secs()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_names_the_relay_and_the_longest_wait() {
        assert_eq!(
            slow_line("http://10.0.0.1:8080"),
            "no answer from http://10.0.0.1:8080 yet; waiting up to 30 s — Ctrl-C to stop"
        );
    }

    #[tokio::test]
    async fn an_answer_in_time_is_simply_returned() {
        let client = Client::new("http://127.0.0.1:9").unwrap();
        let answered = said_when_slow(&client, async { 7 }).await;
        assert_eq!(answered, 7);
        let late = said_when_slow(&client, async {
            tokio::time::sleep(SLOW_ANSWER + std::time::Duration::from_millis(50)).await;
            8
        });
        assert_eq!(late.await, 8, "a slow answer is still awaited");
    }
}
