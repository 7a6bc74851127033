use super::*;
use proptest::prelude::*;

#[test]
fn urls_people_send_are_accepted() {
    for url in [
        "https://example.com",
        "http://example.com/",
        "HTTPS://Example.COM/Path?q=1#frag",
        "https://ci.example.com:8443/job/42/console",
        "http://localhost:3000",
        "http://my_service:8080/health",
        "http://192.168.1.10/",
        "http://10.0.0.1:65535/x",
        "http://[::1]:8080/",
        "http://[2001:db8::8a2e:370:7334]/",
        "http://[::]/",
        "https://example.com./",
        "https://user:pass@example.com/",
        "https://de.wikipedia.org/wiki/Köln",
        "https://münchen.de/",
        "https://xn--mnchen-3ya.de/",
        "https://example.com/%zz\\x",
        "https://example.com?q",
        "https://example.com#",
    ] {
        assert_eq!(accept_http_url(url), Some(url), "{url}");
    }
}

#[test]
fn a_final_newline_is_dropped_like_pythons_dollar_allows() {
    assert_eq!(
        accept_http_url("https://example.com/\n"),
        Some("https://example.com/")
    );
    assert_eq!(accept_http_url("https://example.com/\n\n"), None);
}

/// Schemathesis found `HTTp://…mSioO6oKDG0iVp-dXhTs5xzKPdUwM6*` accepted although the
/// document's pattern refused it: the WHATWG parser takes a `*` in a host.
#[test]
fn a_host_the_pattern_refuses_is_refused_even_when_whatwg_parses_it() {
    for url in [
        "HTTp://Ms7Rz.qoj.s.mSioO6oKDG0iVp-dXhTs5xzKPdUwM6*",
        "http://a*b/",
        "http://a$b.c/",
        "http://01.2.3.4/",
        "http://example.com:/",
        "http://example.com\\path",
        " http://example.com/",
        "http://example.com/\t",
        "http://exa\nmple.com/",
    ] {
        assert!(url::Url::parse(url).is_ok(), "WHATWG parses {url:?}");
        assert_eq!(accept_http_url(url), None, "{url:?}");
    }
    for url in [
        "http://a b.c/",
        "https://example.com/a b",
        "http://example.com:65536/",
        "http://1.2.3.999/",
        "http://1.2.3.4.5/",
        "http://[1:2:3:4:5:6:7:8:9]/",
        "http://[fe80::1%eth0]/",
    ] {
        assert_eq!(accept_http_url(url), None, "{url:?}");
    }
}

#[test]
fn other_schemes_and_no_host_are_refused() {
    for url in [
        "ftp://example.com",
        "javascript:alert(1)",
        "https://",
        "http:/example.com",
        "not a url",
        "",
        "http://",
        "http://@example.com/",
    ] {
        assert_eq!(accept_http_url(url), None, "{url}");
    }
}

/// The ASCII part of the pattern, without its anchors (a generator needs none): the non-ASCII label range and `xn--` labels are left to IDNA,
/// which the pattern cannot express (the fuzzers generate ASCII only, `generation.codec`).
fn ascii_pattern() -> String {
    let unanchored = HTTP_URL_PATTERN
        .strip_prefix('^')
        .and_then(|p| p.strip_suffix('$'))
        .expect("the pattern is anchored at both ends");
    unanchored.replace(r"\u0080-\uFFFF", "")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// Everything the document calls a URL the relay accepts (the fuzzers' positive cases).
    #[test]
    fn every_ascii_string_the_pattern_matches_is_accepted(
        url in proptest::string::string_regex(&ascii_pattern()).unwrap()
            .prop_filter("xn-- labels are IDNA's to judge", |u| !u.to_ascii_lowercase().contains("xn--"))
    ) {
        let kept = url.strip_suffix('\n').unwrap_or(&url);
        prop_assert_eq!(accept_http_url(&url), Some(kept));
    }

    /// Nothing the document calls invalid is accepted (the fuzzers' negative cases).
    #[test]
    fn nothing_the_pattern_refuses_is_accepted(
        url in "[Hh][Tt][Tt][Pp][Ss]?://[ -~]{0,40}"
    ) {
        let matches = HTTP_URL.is_match(url.strip_suffix('\n').unwrap_or(&url));
        prop_assert_eq!(accept_http_url(&url).is_some(), matches);
    }
}
