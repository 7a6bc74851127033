//! The HTTP client side of the CLI: [`http`] is the one place that talks to a relay (retries,
//! `Retry-After`, one `Idempotency-Key` per invocation); commands build on it. [`answer`]
//! acknowledges and clears messages. [`stream`] reads
//! the desktop stream for `reflecto listen`.

pub mod admin;
pub mod answer;
pub mod diagnose;
pub mod heartbeats;
pub mod http;
pub mod stream;

pub use http::{
    Client, REQUEST_TIMEOUT, RateStatus, RetryPolicy, Retrying, SLOW_ANSWER, Sent, backoff,
    parse_retry_after,
};
