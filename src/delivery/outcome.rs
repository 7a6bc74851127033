//! How one delivery attempt ended, whatever the channel, and when to try again. Each channel's
//! `outcome` maps its service's answer to a [`Verdict`]; the worker records it.

use std::time::Duration;

/// How one attempt ended, from the job's point of view.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    Delivered,
    /// The registration token is dead: unpair the device, drop its jobs.
    Unreachable(String),
    /// Try again, no sooner than `min_delay` (Retry-After or a quota floor) if given.
    Retry {
        error: String,
        min_delay: Option<Duration>,
    },
    /// Retrying cannot help (a malformed payload, an unexpected 4xx).
    DeadLetter(String),
}

/// Exponential back-off with jitter for the `attempt`-th retry (1-based): a random delay
/// between half and all of 5 s·2^(attempt-1), capped at one hour.
pub fn backoff(attempt: u32) -> Duration {
    crate::backoff::jittered(
        Duration::from_secs(5),
        Duration::from_secs(3600),
        attempt.saturating_sub(1),
    )
}

/// When to retry: back-off, but never earlier than the answer asked.
pub fn retry_delay(attempt: u32, min_delay: Option<Duration>) -> Duration {
    let delay = backoff(attempt);
    min_delay.map_or(delay, |min| delay.max(min))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_and_is_capped() {
        for attempt in 1..30 {
            let ceiling = Duration::from_secs(5)
                .saturating_mul(1 << (attempt - 1).min(20))
                .min(Duration::from_secs(3600));
            let d = backoff(attempt);
            assert!(d >= ceiling / 2 && d <= ceiling, "{attempt}: {d:?}");
        }
        assert!(retry_delay(1, Some(Duration::from_secs(60))) >= Duration::from_secs(60));
    }
}
