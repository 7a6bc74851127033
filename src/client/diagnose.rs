//! What went wrong on the way to a relay, said so a user can act on it: a malformed --server
//! (a usage error, never retried), a network failure classified from reqwest's error chain
//! (DNS, refused, TLS, timeout, each naming the URL tried), a 404 from a wrong `--server` path
//! (a usage error), and the 429 that ends the retries.

use crate::api::{ApiError, ErrorCode};
use std::time::Duration;

/// `--server` as an http(s) base URL (a path prefix is allowed), or a usage error at once:
/// a malformed URL is never retried.
pub fn check_server(server: &str) -> Result<String, ApiError> {
    let usage = |why: &str| {
        ApiError::new(
            ErrorCode::UsageError,
            format!(
                "--server '{server}' {why}; expected an http(s) base URL such as https://relay.example or http://127.0.0.1:8080"
            ),
        )
    };
    let url = url::Url::parse(server.trim()).map_err(|e| usage(&format!("is not a URL ({e})")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(usage(&format!("has scheme '{}'", url.scheme())));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(usage("has no host"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(usage("carries a query or fragment"));
    }
    Ok(url.as_str().trim_end_matches('/').to_owned())
}

/// Who may answer 404 on a route: only a wrong `--server` path (`/v1/send`, `/v1/token`,
/// `/v1/devices/pair` exist on every relay and never answer 404 themselves), or also the relay
/// for an unknown id (`/v1/messages/{id}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum On404 {
    WrongServer,
    UnknownId,
}

/// A 404 said so the user can act on it, naming the URL that answered. On a route every relay
/// has, it is a wrong `--server` path: a usage error (exit 2), whatever answered. Elsewhere the
/// relay's own error (`not_found` for an unknown id) is kept; an answer that is not the
/// relay's still means the path is wrong.
pub fn answered_404(url: &str, relay_error: Option<ApiError>, route: On404) -> ApiError {
    let hint = "is --server the relay's base URL (without /v1)?";
    match relay_error {
        Some(e) if route == On404::UnknownId => ApiError::new(
            e.code,
            format!("{url} answered 404 ({}); {hint}", e.message),
        ),
        Some(e) => ApiError::new(
            ErrorCode::UsageError,
            format!("{url} answered 404 ({}); {hint}", e.message),
        ),
        None => ApiError::new(
            ErrorCode::UsageError,
            format!("{url} answered 404, not as a reflecto relay would; {hint}"),
        ),
    }
}

/// What went wrong on the way to the relay, from reqwest's error chain: each names the URL.
/// The second value says whether another attempt may help.
pub fn describe_network_error(err: &reqwest::Error, url: &str) -> (String, bool) {
    let (what, transient) = network_failure(err, url);
    (format!("{what} (tried {url})"), transient)
}

/// What failed, in a few words that name the host (`connection refused by 127.0.0.1:8081`),
/// without the URL: the line a terminal shows while the CLI retries. The second value says
/// whether another attempt may help.
pub fn network_failure(err: &reqwest::Error, url: &str) -> (String, bool) {
    let parsed = url::Url::parse(url).ok();
    let host_name = parsed
        .as_ref()
        .and_then(|u| u.host_str().map(str::to_owned))
        .unwrap_or_default();
    let host_port = match parsed.as_ref().and_then(url::Url::port_or_known_default) {
        Some(p) => format!("{host_name}:{p}"),
        None => host_name.clone(),
    };
    let mut chain = Vec::new();
    let mut io_kind = None;
    let mut source: Option<&dyn std::error::Error> = Some(err);
    while let Some(e) = source {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            io_kind.get_or_insert(io.kind());
        }
        chain.push(e.to_string().to_ascii_lowercase());
        source = e.source();
    }
    let text = chain.join(": ");
    if text.contains("dns error") || text.contains("failed to lookup address") {
        // "Temporary failure in name resolution" may pass; an unknown name will not.
        let transient = text.contains("temporary failure");
        return (format!("cannot resolve host '{host_name}'"), transient);
    }
    if io_kind == Some(std::io::ErrorKind::ConnectionRefused) {
        return (format!("connection refused by {host_port}"), true);
    }
    let tls = [
        "tls",
        "certificate",
        "handshake",
        "invalidcontenttype",
        "corrupt message",
    ];
    if url.starts_with("https://") && tls.iter().any(|t| text.contains(t)) {
        let hint = if text.contains("certificate") {
            "the relay's certificate is not trusted"
        } else {
            "is the relay serving plain http?"
        };
        return (format!("TLS handshake failed ({hint})"), false);
    }
    if err.is_timeout() || io_kind == Some(std::io::ErrorKind::TimedOut) {
        return ("timed out".to_owned(), true);
    }
    if err.is_connect() {
        return (format!("connection to {host_port} failed"), true);
    }
    ("request failed".to_owned(), true)
}

/// The message of a 429 that ends the retries (SPEC §2.0): which layer, when it frees (a local
/// time and a duration), and who sets the limits that do not reset soon.
pub fn rate_limit_message(
    layer: &str,
    reset_unix: Option<i64>,
    retry_after: Option<Duration>,
) -> String {
    let now = chrono::Utc::now().timestamp();
    let wait = reset_unix
        .map(|r| (r - now).max(0) as u64)
        .or(retry_after.map(|d| d.as_secs()));
    let mut text = format!("rate limit exceeded: {layer}");
    if let Some(secs) = wait {
        let at = chrono::Local::now() + chrono::Duration::seconds(secs as i64);
        text.push_str(&format!(
            "; it frees at {} (in {})",
            at.format("%Y-%m-%d %H:%M:%S %:z"),
            human_duration(secs)
        ));
    }
    if matches!(layer, "token_monthly" | "receiver_daily") {
        text.push_str("; the relay's operator sets this limit (ask them to raise it)");
    }
    text
}

/// `3d 4h`, `2h 5m`, `1m 30s`, `42s`.
pub fn human_duration(secs: u64) -> String {
    let (d, h, m, s) = (secs / 86_400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, _) => format!("{m}m {s}s"),
        (0, _, _) => format!("{h}h {m}m"),
        _ => format!("{d}d {h}h"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_urls_are_checked_before_any_request() {
        assert_eq!(
            check_server("http://127.0.0.1:8080/").unwrap(),
            "http://127.0.0.1:8080"
        );
        assert_eq!(
            check_server("https://example.com/reflecto/").unwrap(),
            "https://example.com/reflecto"
        );
        for bad in [
            "not a url",
            "ftp://x",
            "relay.example",
            "http://",
            "https://x/?a=1",
        ] {
            assert_eq!(
                check_server(bad).unwrap_err().code,
                ErrorCode::UsageError,
                "{bad}"
            );
        }
    }

    #[test]
    fn rate_limit_message_names_layer_time_and_operator() {
        let now = chrono::Utc::now().timestamp();
        let m = rate_limit_message("token_monthly", Some(now + 3 * 86_400 + 7200), None);
        assert!(
            m.starts_with("rate limit exceeded: token_monthly; it frees at "),
            "{m}"
        );
        assert!(m.contains("(in 3d 2h)") || m.contains("(in 3d 1h)"), "{m}");
        assert!(m.contains("operator"), "{m}");
        let m = rate_limit_message("ip_minute", None, Some(Duration::from_secs(42)));
        assert!(m.contains("(in 42s)") && !m.contains("operator"), "{m}");
    }
}
