//! What a push service's answer means for the job (SPEC §1.13). Pure: the client reports a
//! status and Retry-After or a transport failure, this decides. Back-off itself is shared with
//! FCM (`delivery::outcome::retry_delay`), and so is the `Verdict` the worker records.

use super::client::Answer;
use crate::delivery::outcome::Verdict;

/// Classifies one attempt.
pub fn classify(answer: &Answer) -> Verdict {
    match *answer {
        Answer::Status {
            status,
            retry_after,
        } => match status {
            // SPEC names 200/201/202; any other 2xx also means the service took the message.
            200..=299 => Verdict::Delivered,
            // RFC 8030 §7.3: the subscription expired or was removed by the browser.
            404 | 410 => Verdict::Unreachable(format!("HTTP_{status}")),
            429 | 500..=599 => Verdict::Retry {
                error: format!("HTTP_{status}"),
                min_delay: retry_after,
            },
            // 400 (bad headers), 401/403 (VAPID refused), 413 (too large) and the like: the
            // same bytes would fail again. A 3xx lands here too: the client follows no
            // redirects, since that would reach hosts the subscription check never saw.
            _ => Verdict::DeadLetter(format!("HTTP_{status}")),
        },
        Answer::Timeout => Verdict::Retry {
            error: "TIMEOUT".to_owned(),
            min_delay: None,
        },
        Answer::Connection => Verdict::Retry {
            error: "CONNECTION".to_owned(),
            min_delay: None,
        },
        // Retrying would only knock on the same internal address again.
        Answer::NotPublic => Verdict::DeadLetter("ENDPOINT_NOT_PUBLIC".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn status(status: u16, retry_after: Option<u64>) -> Verdict {
        classify(&Answer::Status {
            status,
            retry_after: retry_after.map(Duration::from_secs),
        })
    }

    #[test]
    fn every_outcome_rule() {
        for ok in [200, 201, 202, 204] {
            assert_eq!(status(ok, None), Verdict::Delivered);
        }
        assert_eq!(status(404, None), Verdict::Unreachable("HTTP_404".into()));
        assert_eq!(status(410, None), Verdict::Unreachable("HTTP_410".into()));
        assert_eq!(
            status(429, Some(30)),
            Verdict::Retry {
                error: "HTTP_429".into(),
                min_delay: Some(Duration::from_secs(30))
            }
        );
        assert_eq!(
            status(503, None),
            Verdict::Retry {
                error: "HTTP_503".into(),
                min_delay: None
            }
        );
        assert_eq!(
            status(500, Some(5)),
            Verdict::Retry {
                error: "HTTP_500".into(),
                min_delay: Some(Duration::from_secs(5))
            }
        );
        for dead in [301, 307, 400, 401, 403, 413, 418] {
            assert_eq!(
                status(dead, None),
                Verdict::DeadLetter(format!("HTTP_{dead}"))
            );
        }
        assert_eq!(
            classify(&Answer::Timeout),
            Verdict::Retry {
                error: "TIMEOUT".into(),
                min_delay: None
            }
        );
        assert_eq!(
            classify(&Answer::Connection),
            Verdict::Retry {
                error: "CONNECTION".into(),
                min_delay: None
            }
        );
        assert_eq!(
            classify(&Answer::NotPublic),
            Verdict::DeadLetter("ENDPOINT_NOT_PUBLIC".into())
        );
    }
}
