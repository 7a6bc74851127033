//! Waiting for something that happens in the background (a delivery, a process coming up, a
//! log line) the one way: poll a check at a short interval until it holds, else fail saying
//! what was awaited and what was last seen. Replaces the hand-rolled `loop { … sleep … }`.

use std::fmt::Debug;
use std::future::Future;
use std::time::{Duration, Instant};

/// The first pause between two looks; it doubles up to [`LONGEST_PAUSE`].
const FIRST_PAUSE: Duration = Duration::from_millis(10);
const LONGEST_PAUSE: Duration = Duration::from_millis(100);

/// What one look found: done with a value, or not yet (and what was seen instead).
pub trait Check {
    type Done;
    fn done(self) -> Result<Self::Done, String>;
}

impl Check for bool {
    type Done = ();
    fn done(self) -> Result<(), String> {
        if self { Ok(()) } else { Err("false".into()) }
    }
}

impl<T> Check for Option<T> {
    type Done = T;
    fn done(self) -> Result<T, String> {
        self.ok_or_else(|| "None".into())
    }
}

/// `Err(seen)` reports what the look saw, for the timeout's message.
impl<T, E: Debug> Check for Result<T, E> {
    type Done = T;
    fn done(self) -> Result<T, String> {
        self.map_err(|seen| format!("{seen:?}"))
    }
}

/// Polls `look` until it holds (`true`, `Some`, `Ok`) and returns its value; panics with `what`
/// and the last thing seen once `timeout` passed. Time is real time: a test on a manual clock
/// moves the clock inside `look` instead.
pub async fn eventually<C: Check, F: Future<Output = C>>(
    what: &str,
    timeout: Duration,
    look: impl FnMut() -> F,
) -> C::Done {
    within(timeout, look)
        .await
        .unwrap_or_else(|seen| give_up(what, timeout, &seen))
}

/// [`eventually`] without the panic, for a caller that must clean up first: the value, or
/// what the last look saw.
pub async fn within<C: Check, F: Future<Output = C>>(
    timeout: Duration,
    mut look: impl FnMut() -> F,
) -> Result<C::Done, String> {
    let deadline = Instant::now() + timeout;
    let mut pause = FIRST_PAUSE;
    loop {
        let seen = match look().await.done() {
            Ok(done) => return Ok(done),
            Err(seen) => seen,
        };
        if Instant::now() >= deadline {
            return Err(seen);
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(LONGEST_PAUSE);
    }
}

/// [`eventually`] for a test or a helper that is not async (it blocks its thread).
pub fn eventually_blocking<C: Check>(
    what: &str,
    timeout: Duration,
    look: impl FnMut() -> C,
) -> C::Done {
    within_blocking(timeout, look).unwrap_or_else(|seen| give_up(what, timeout, &seen))
}

/// [`within`] for a caller that is not async.
pub fn within_blocking<C: Check>(
    timeout: Duration,
    mut look: impl FnMut() -> C,
) -> Result<C::Done, String> {
    let deadline = Instant::now() + timeout;
    let mut pause = FIRST_PAUSE;
    loop {
        let seen = match look().done() {
            Ok(done) => return Ok(done),
            Err(seen) => seen,
        };
        if Instant::now() >= deadline {
            return Err(seen);
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(LONGEST_PAUSE);
    }
}

fn give_up(what: &str, timeout: Duration, seen: &str) -> ! {
    panic!("timed out after {timeout:?} waiting for {what}; last seen: {seen}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[tokio::test]
    async fn returns_the_value_once_the_check_holds() {
        let looks = AtomicU32::new(0);
        let got = eventually("the third look", Duration::from_secs(5), || async {
            let n = looks.fetch_add(1, Ordering::SeqCst) + 1;
            (n >= 3).then_some(n)
        })
        .await;
        assert_eq!(got, 3);
        assert_eq!(looks.load(Ordering::SeqCst), 3, "no look after it held");
    }

    #[tokio::test]
    async fn a_bool_check_that_holds_at_once_returns_at_once() {
        let started = Instant::now();
        eventually("true", Duration::from_secs(5), || async { true }).await;
        assert!(started.elapsed() < Duration::from_millis(5));
    }

    #[tokio::test]
    #[should_panic(expected = "waiting for the answer; last seen: \"still 41\"")]
    async fn times_out_naming_what_and_the_last_thing_seen() {
        eventually("the answer", Duration::from_millis(50), || async {
            Err::<(), _>("still 41")
        })
        .await;
    }

    #[tokio::test]
    async fn the_timeout_is_kept_and_looks_keep_coming() {
        let looks = std::sync::Arc::new(AtomicU32::new(0));
        let counted = looks.clone();
        let started = Instant::now();
        let outcome = tokio::spawn(async move {
            eventually("never", Duration::from_millis(200), || async {
                counted.fetch_add(1, Ordering::SeqCst);
                false
            })
            .await
        })
        .await;
        let message = *outcome
            .unwrap_err()
            .into_panic()
            .downcast::<String>()
            .unwrap();
        assert_eq!(
            message,
            "timed out after 200ms waiting for never; last seen: false"
        );
        let waited = started.elapsed();
        assert!(waited >= Duration::from_millis(200), "{waited:?}");
        assert!(waited < Duration::from_secs(2), "{waited:?}");
        assert!(looks.load(Ordering::SeqCst) > 3, "it kept looking");
    }

    #[tokio::test]
    async fn within_hands_back_the_last_thing_seen_instead_of_panicking() {
        let looks = AtomicU32::new(0);
        let outcome = within(Duration::from_millis(50), || async {
            Err::<(), _>(looks.fetch_add(1, Ordering::SeqCst))
        })
        .await;
        let last = looks.load(Ordering::SeqCst) - 1;
        assert_eq!(outcome, Err(last.to_string()));
        assert_eq!(within(Duration::ZERO, || async { Some(7) }).await, Ok(7));
    }

    #[test]
    fn the_blocking_twin_waits_the_same_way() {
        let mut looks = 0;
        let got = eventually_blocking("the second look", Duration::from_secs(5), || {
            looks += 1;
            if looks >= 2 { Ok(looks) } else { Err(looks) }
        });
        assert_eq!(got, 2);
        let none = std::panic::catch_unwind(|| {
            eventually_blocking("nothing", Duration::from_millis(30), || None::<()>)
        });
        let message = *none.unwrap_err().downcast::<String>().unwrap();
        assert!(
            message.ends_with("waiting for nothing; last seen: None"),
            "{message}"
        );
        assert_eq!(
            within_blocking(Duration::from_millis(30), || false),
            Err("false".to_owned())
        );
    }
}
