//! Reading the raw HTTP a story got back over a bare TCP connection.

/// The value of header `name` (lower case) in the raw HTTP `text`, lower-cased.
pub fn raw_header(text: &str, name: &str) -> Option<String> {
    text.lines().find_map(|l| {
        l.to_ascii_lowercase()
            .strip_prefix(&format!("{name}:"))
            .map(|v| v.trim().to_owned())
    })
}

/// The Content-Length the raw HTTP `text` declares (0 without one).
pub fn content_length(text: &str) -> usize {
    raw_header(text, "content-length").map_or(0, |v| v.parse().unwrap())
}
