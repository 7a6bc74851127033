//! What a notification URL may be (SPEC §1.1 `url`, `actions[].url`): one regular expression
//! that is both the relay's rule and the `pattern` of every URL field in the OpenAPI document,
//! so the document cannot promise more or less than the relay accepts.
//!
//! SPEC says "http/https only, parseable". A parser alone is too lax to document: the WHATWG
//! parser takes `http://a*b/` or `http://a b.c` (a host no DNS will ever answer), and a pattern
//! that is only a subset of it made schemathesis find URLs the document calls invalid and the
//! relay accepted. So the rule is the pattern, and the parser runs after it for what a regular
//! expression cannot say (IDNA validity of a non-ASCII or `xn--` label).
//!
//! The pattern uses only syntax that ECMA-262 (JSON Schema), Python's `re` (the fuzzers) and the
//! `regex` crate read alike: no `\s`, `\d`, look-around or flags.

use std::sync::LazyLock;

/// A host-name label character: ASCII letters, digits, `_`, `-`, and any non-ASCII character
/// of the Basic Multilingual Plane (an internationalized name, checked by IDNA afterwards).
macro_rules! label_char {
    () => {
        r"[A-Za-z0-9_\u0080-\uFFFF-]"
    };
}

/// The last label of a name must not start with a digit: WHATWG parses a host that ends in a
/// number as an IPv4 address, and `1.2.3.999` is then no URL at all.
macro_rules! last_label_start {
    () => {
        r"[A-Za-z_\u0080-\uFFFF-]"
    };
}

macro_rules! octet {
    () => {
        "(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
    };
}

macro_rules! hex4 {
    () => {
        "[0-9A-Fa-f]{1,4}"
    };
}

/// The URL rule, anchored. Parts, in order: scheme (any case), optional `user[:password]@` of
/// unreserved characters, host (a name, a dotted IPv4 address or a bracketed IPv6 address
/// without zone), optional port 0–65535, then an optional path, query or fragment of any
/// characters but controls and spaces.
pub const HTTP_URL_PATTERN: &str = concat!(
    "^[Hh][Tt][Tt][Pp][Ss]?://",
    "([A-Za-z0-9._~-]+(:[A-Za-z0-9._~-]*)?@)?",
    "(",
    // a name: labels, the last one not numeric, an optional root dot
    "(",
    label_char!(),
    r"+\.)*",
    last_label_start!(),
    label_char!(),
    r"*\.?",
    // a dotted IPv4 address
    "|",
    octet!(),
    r"(\.",
    octet!(),
    "){3}",
    // a bracketed IPv6 address (RFC 4291 text forms, without an embedded IPv4 tail)
    r"|\[(",
    "(",
    hex4!(),
    ":){7}",
    hex4!(),
    "|(",
    hex4!(),
    ":){1,7}:",
    "|(",
    hex4!(),
    ":){1,6}:",
    hex4!(),
    "|(",
    hex4!(),
    ":){1,5}(:",
    hex4!(),
    "){1,2}",
    "|(",
    hex4!(),
    ":){1,4}(:",
    hex4!(),
    "){1,3}",
    "|(",
    hex4!(),
    ":){1,3}(:",
    hex4!(),
    "){1,4}",
    "|(",
    hex4!(),
    ":){1,2}(:",
    hex4!(),
    "){1,5}",
    "|",
    hex4!(),
    ":(:",
    hex4!(),
    "){1,6}",
    "|:((:",
    hex4!(),
    "){1,7}|:)",
    r")\]",
    ")",
    "(:(6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[0-9]{1,4}))?",
    r"([/?#][^\x00-\x20\x7F]*)?$",
);

static HTTP_URL: LazyLock<regex::Regex> =
    LazyLock::new(|| regex::Regex::new(HTTP_URL_PATTERN).expect("the URL pattern compiles"));

/// The URL as it will be stored, or `None` when it breaks the rule.
///
/// One final `\n` is dropped first: Python's `$` matches before it, so the fuzzers that read
/// the pattern call such a value valid, and the WHATWG parser drops it too.
pub fn accept_http_url(candidate: &str) -> Option<&str> {
    let candidate = candidate.strip_suffix('\n').unwrap_or(candidate);
    if !HTTP_URL.is_match(candidate) {
        return None;
    }
    let parsed = url::Url::parse(candidate).ok()?;
    (matches!(parsed.scheme(), "http" | "https") && parsed.has_host()).then_some(candidate)
}

#[cfg(test)]
#[path = "url_rule_tests.rs"]
mod tests;
