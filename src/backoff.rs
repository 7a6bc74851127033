//! Exponential back-off with jitter, the one formula behind the client's retries, the
//! receiver's reconnects and the delivery worker's retries; each caller picks its base and cap.

use rand::Rng;
use std::time::Duration;

/// A random delay between half and all of `base`·2^`exponent`, capped at `cap` (the jitter keeps
/// many waiters from retrying in step).
pub fn jittered(base: Duration, cap: Duration, exponent: u32) -> Duration {
    let ceiling = base.saturating_mul(1u32 << exponent.min(20)).min(cap);
    let ms = ceiling.as_millis() as u64;
    Duration::from_millis(rand::rng().random_range(ms / 2..=ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_with_jitter_and_stops_at_the_cap() {
        let (base, cap) = (Duration::from_millis(500), Duration::from_secs(30));
        for exponent in 0..40 {
            let ceiling = base.saturating_mul(1 << exponent.min(20)).min(cap);
            let d = jittered(base, cap, exponent);
            assert!(d >= ceiling / 2 && d <= ceiling, "{exponent}: {d:?}");
        }
    }
}
