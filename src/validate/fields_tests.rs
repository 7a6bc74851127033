//! Every row of the SPEC §1.1 field table, at its boundaries.

use super::*;
use crate::validate::{build_envelope, validate_send};
use proptest::prelude::*;
use serde_json::json;

fn check(body: Value) -> Result<Validated, ApiError> {
    normalize(body.as_object().expect("test bodies are objects"))
}

fn code(body: Value) -> ErrorCode {
    check(body).expect_err("expected a validation error").code
}

fn warnings(body: Value) -> Vec<String> {
    check(body)
        .unwrap()
        .warnings
        .iter()
        .map(ToString::to_string)
        .collect()
}

#[test]
fn message_byte_boundary() {
    assert!(check(json!({"message": "x".repeat(1500)})).is_ok());
    let err = check(json!({"message": "x".repeat(1501)})).unwrap_err();
    assert_eq!(err.code, ErrorCode::MessageTooLong);
    assert_eq!(err.details, Some(json!({"bytes": 1501, "max": 1500})));
}

#[test]
fn message_counts_bytes_not_characters() {
    // 499 × "€" (3 bytes) = 1497 bytes, + "€" = 1500: passes. One more byte fails.
    let at_cap = format!("{}€", "€".repeat(499));
    assert_eq!(at_cap.len(), 1500);
    assert!(check(json!({ "message": at_cap })).is_ok());
    // 500 characters but 1501 bytes: a multi-byte character sits across the cap.
    let across = format!("x{}", "€".repeat(500));
    assert_eq!(across.chars().count(), 501);
    assert_eq!(
        code(json!({ "message": across })),
        ErrorCode::MessageTooLong
    );
}

#[test]
fn message_missing_wrong_type_or_empty() {
    let missing = check(json!({"title": "t"})).unwrap_err();
    assert_eq!(missing.code, ErrorCode::InvalidMessage);
    assert_eq!(
        missing.message,
        "Invalid input: expected string, received undefined"
    );
    let number = check(json!({"message": 5})).unwrap_err();
    assert_eq!(
        number.message,
        "Invalid input: expected string, received number"
    );
    assert_eq!(code(json!({"message": null})), ErrorCode::InvalidMessage);
    assert_eq!(code(json!({"message": ""})), ErrorCode::InvalidMessage);
}

#[test]
fn title_rules() {
    assert!(check(json!({"message": "m", "title": "t".repeat(100)})).is_ok());
    let long = check(json!({"message": "m", "title": "t".repeat(101)})).unwrap_err();
    assert_eq!(long.code, ErrorCode::InvalidTitle);
    assert_eq!(long.message, "title must be ≤ 100 bytes");
    assert_eq!(long.details, Some(json!({"bytes": 101, "max": 100})));
    let empty = check(json!({"message": "m", "title": ""})).unwrap_err();
    assert_eq!(empty.code, ErrorCode::InvalidTitle);
    assert_eq!(empty.message, "title must not be empty");
    assert_eq!(
        code(json!({"message": "m", "title": 3})),
        ErrorCode::InvalidTitle
    );
    assert_eq!(
        check(json!({"message": "m", "title": null}))
            .unwrap()
            .request
            .title,
        None
    );
}

#[test]
fn priority_rules() {
    for name in ["min", "low", "default", "high", "urgent", "HIGH"] {
        assert!(
            check(json!({"message": "m", "priority": name})).is_ok(),
            "{name}"
        );
    }
    assert_eq!(
        code(json!({"message": "m", "priority": "emergency"})),
        ErrorCode::InvalidPriority
    );
    assert_eq!(
        code(json!({"message": "m", "priority": 1})),
        ErrorCode::InvalidPriority
    );
    let absent = check(json!({"message": "m"})).unwrap().request;
    assert_eq!(absent.priority, None);
    assert_eq!(absent.priority(), Priority::Default);
}

#[test]
fn five_tags_pass_six_are_truncated() {
    let five = check(json!({"message": "m", "tags": ["a", "b", "c", "d", "e"]})).unwrap();
    assert!(five.warnings.is_empty());
    assert_eq!(five.request.tags.unwrap().len(), 5);
    let six = check(json!({"message": "m", "tags": ["a", "b", "c", "d", "e", "f"]})).unwrap();
    assert_eq!(six.request.tags.unwrap(), ["a", "b", "c", "d", "e"]);
    assert_eq!(six.warnings, [Warning::TagsTruncated { got: 6 }]);
    assert_eq!(
        six.warnings[0].to_string(),
        "tags truncated to first 5 (got 6)"
    );
}

#[test]
fn tag_of_32_bytes_passes_33_is_cut() {
    let ok = check(json!({"message": "m", "tags": ["t".repeat(32)]})).unwrap();
    assert!(ok.warnings.is_empty());
    let cut = check(json!({"message": "m", "tags": ["ok", "t".repeat(33)]})).unwrap();
    assert_eq!(cut.request.tags.unwrap()[1], "t".repeat(32));
    assert_eq!(cut.warnings[0].to_string(), "tag #2 truncated to 32 bytes");
}

#[test]
fn tag_cut_never_splits_a_character() {
    // 31 ASCII bytes + "é" (2 bytes) = 33 bytes: the cut falls inside "é" and backs off to 31.
    let tag = format!("{}é", "t".repeat(31));
    let cut = check(json!({"message": "m", "tags": [tag]})).unwrap();
    assert_eq!(cut.request.tags.unwrap()[0], "t".repeat(31));
    assert_eq!(cut.warnings, [Warning::TagTruncated { index: 1 }]);
}

#[test]
fn tags_wrong_type_is_invalid_body() {
    assert_eq!(
        code(json!({"message": "m", "tags": "a,b"})),
        ErrorCode::InvalidBody
    );
    assert_eq!(
        code(json!({"message": "m", "tags": ["a", 1]})),
        ErrorCode::InvalidBody
    );
}

#[test]
fn both_tag_warnings_in_order() {
    let w =
        warnings(json!({"message": "m", "tags": ["t".repeat(40), "b", "c", "d", "e", "f", "g"]}));
    assert_eq!(
        w,
        [
            "tags truncated to first 5 (got 7)",
            "tag #1 truncated to 32 bytes"
        ]
    );
}

#[test]
fn url_rules() {
    assert!(check(json!({"message": "m", "url": "https://example.com/x"})).is_ok());
    assert!(check(json!({"message": "m", "url": "http://example.com"})).is_ok());
    let at_cap = format!("https://e.com/{}", "p".repeat(512 - 14));
    assert_eq!(at_cap.len(), 512);
    assert!(check(json!({"message": "m", "url": at_cap})).is_ok());
    let over = check(json!({"message": "m", "url": format!("{at_cap}p")})).unwrap_err();
    assert_eq!(over.code, ErrorCode::InvalidUrl);
    assert_eq!(over.details, Some(json!({"bytes": 513, "max": 512})));
    for bad in [
        "ftp://example.com",
        "javascript:alert(1)",
        "not a url",
        "",
        "https://",
    ] {
        assert_eq!(
            code(json!({"message": "m", "url": bad})),
            ErrorCode::InvalidUrl,
            "{bad}"
        );
    }
}

#[test]
fn url_title_rules() {
    assert!(check(json!({"message": "m", "url_title": "u".repeat(32)})).is_ok());
    let err = check(json!({"message": "m", "url_title": "u".repeat(33)})).unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidUrlTitle);
    assert_eq!(err.details, Some(json!({"bytes": 33, "max": 32})));
}

#[test]
fn message_id_shape_is_what_the_relay_issues() {
    let id = crate::api::token::random_id("msg_", 32);
    assert!(is_message_id(&id), "{id}");
    for bad in [
        "",
        "msg_",
        "msg_1",
        "MSG_0123456789abcdef0123456789abcdef",
        "msg_0123456789ABCDEF0123456789abcdef",
        "msg_0123456789abcdef0123456789abcde\0",
        "msg_0123456789abcdef0123456789abcdef0",
    ] {
        assert!(!is_message_id(bad), "{bad:?}");
    }
}

#[test]
fn a_response_too_long_says_its_size() {
    let err =
        check(json!({"message": "m", "actions": [{"label": "a", "response": "r".repeat(33)}]}))
            .unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidAction);
    assert_eq!(err.details, Some(json!({"bytes": 33, "max": 32})));
    assert!(
        check(json!({"message": "m", "actions": [{"label": "a", "response": "r".repeat(32)}]}))
            .is_ok()
    );
}

#[test]
fn key_shape_is_the_send_fields_rule() {
    assert!(is_key("build:main.42-x_y"));
    assert!(is_key(&"k".repeat(64)));
    for bad in ["", "a b", "a/b", "a\0b", &"k".repeat(65)] {
        assert!(!is_key(bad), "{bad:?}");
    }
}

fn action(label: &str) -> Value {
    json!({"label": label, "url": "https://example.com"})
}

#[test]
fn three_actions_pass_four_are_truncated() {
    let three =
        check(json!({"message": "m", "actions": [action("a"), action("b"), action("c")]})).unwrap();
    assert!(three.warnings.is_empty());
    let four = check(
        json!({"message": "m", "actions": [action("a"), action("b"), action("c"), action("d")]}),
    )
    .unwrap();
    assert_eq!(four.request.actions.unwrap().len(), 3);
    assert_eq!(
        four.warnings[0].to_string(),
        "actions truncated to first 3 (got 4)"
    );
}

#[test]
fn action_rules() {
    assert!(check(json!({"message": "m", "actions": [action(&"l".repeat(32))]})).is_ok());
    let long = check(json!({"message": "m", "actions": [action(&"l".repeat(33))]})).unwrap_err();
    assert_eq!(long.code, ErrorCode::InvalidAction);
    assert_eq!(long.details, Some(json!({"bytes": 33, "max": 32})));
    for bad in [
        json!({"url": "https://e.com"}),
        json!({"label": "x"}),
        json!({"label": "", "url": "https://e.com"}),
        json!({"label": "x", "url": "ftp://e.com"}),
        json!({"label": "x", "url": format!("https://e.com/{}", "p".repeat(600))}),
        json!("x=https://e.com"),
    ] {
        assert_eq!(
            code(json!({"message": "m", "actions": [bad]})),
            ErrorCode::InvalidAction,
            "{bad}"
        );
    }
    let bad_url =
        check(json!({"message": "m", "actions": [{"label": "x", "url": "nope"}]})).unwrap_err();
    assert!(
        bad_url.message.contains("is not a valid URL"),
        "{}",
        bad_url.message
    );
    assert_eq!(
        code(json!({"message": "m", "actions": {"label": "x"}})),
        ErrorCode::InvalidBody
    );
}

/// SPEC §1.16: an action is a link or a response; both, neither or a bad response is
/// `invalid_action`, and `null` counts as absent.
#[test]
fn response_action_rules() {
    let ok = check(json!({"message": "m", "actions": [
        {"label": "Deploy", "response": "deploy"},
        {"label": "Abort", "response": "A.b_c:d-9", "url": null},
        {"label": "Logs", "url": "https://e.com", "response": null},
    ]}))
    .unwrap();
    let actions = ok.request.actions.unwrap();
    assert_eq!(actions[0], crate::api::Action::reply("Deploy", "deploy"));
    assert_eq!(actions[1].url, None);
    assert_eq!(
        (actions[2].url.is_some(), actions[2].response.as_deref()),
        (true, None)
    );
    assert_eq!(super::responses_of(Some(&actions)), ["deploy", "A.b_c:d-9"]);
    assert!(
        check(json!({"message": "m", "actions": [{"label": "x", "response": "r".repeat(32)}]}))
            .is_ok()
    );
    for bad in [
        json!({"label": "x", "url": "https://e.com", "response": "ok"}),
        json!({"label": "x", "url": null, "response": null}),
        json!({"label": "x", "response": ""}),
        json!({"label": "x", "response": "r".repeat(33)}),
        json!({"label": "x", "response": "no spaces"}),
        json!({"label": "x", "response": "é"}),
        json!({"label": "x", "response": 7}),
        json!({"response": "ok"}),
    ] {
        assert_eq!(
            code(json!({"message": "m", "actions": [bad]})),
            ErrorCode::InvalidAction,
            "{bad}"
        );
    }
    // The pattern the document shows is the rule.
    let pattern = regex::Regex::new(crate::api::RESPONSE_PATTERN).unwrap();
    for text in [
        "ok",
        "A.b_c:d-9",
        "",
        "no spaces",
        "é",
        &"r".repeat(32),
        &"r".repeat(33),
    ] {
        assert_eq!(pattern.is_match(text), super::is_response(text), "{text:?}");
    }
}

#[test]
fn device_character_boundary() {
    assert!(check(json!({"message": "m", "device": "d".repeat(256)})).is_ok());
    assert_eq!(
        code(json!({"message": "m", "device": "d".repeat(257)})),
        ErrorCode::InvalidDevice
    );
    // Characters, not bytes: 256 two-byte characters pass.
    assert!(check(json!({"message": "m", "device": "é".repeat(256)})).is_ok());
    assert_eq!(
        code(json!({"message": "m", "device": ""})),
        ErrorCode::InvalidDevice
    );
    assert_eq!(
        code(json!({"message": "m", "device": " , "})),
        ErrorCode::InvalidDevice
    );
    assert_eq!(
        code(json!({"message": "m", "device": ["a"]})),
        ErrorCode::InvalidDevice
    );
}

#[test]
fn markdown_rules() {
    assert_eq!(
        check(json!({"message": "m", "markdown": true}))
            .unwrap()
            .request
            .markdown,
        Some(true)
    );
    assert_eq!(
        code(json!({"message": "m", "markdown": "yes"})),
        ErrorCode::InvalidBody
    );
}

#[test]
fn ttl_floored_and_clamped() {
    let ttl = |v: Value| {
        check(json!({"message": "m", "ttl": v}))
            .unwrap()
            .request
            .ttl
    };
    assert_eq!(ttl(json!(-5)), Some(0));
    assert_eq!(ttl(json!(1.9)), Some(1));
    assert_eq!(ttl(json!(259200)), Some(259200));
    assert_eq!(ttl(json!(259201)), Some(259200));
    assert_eq!(ttl(json!(1e30)), Some(259200));
    assert_eq!(
        check(json!({"message": "m"}))
            .unwrap()
            .request
            .ttl_seconds(),
        259200
    );
    assert_eq!(
        code(json!({"message": "m", "ttl": "60"})),
        ErrorCode::InvalidBody
    );
}

#[test]
fn key_rules() {
    let key = |v: Value| check(json!({"message": "m", "key": v})).map(|v| v.request.key);
    assert_eq!(key(json!("build-42")).unwrap().as_deref(), Some("build-42"));
    assert_eq!(key(json!("a.B_9:z-")).unwrap().as_deref(), Some("a.B_9:z-"));
    assert_eq!(key(json!("k".repeat(64))).unwrap(), Some("k".repeat(64)));
    assert_eq!(key(Value::Null).unwrap(), None);
    for bad in [
        json!(""),
        json!("k".repeat(65)),
        json!("a b"),
        json!("a/b"),
        json!("é"),
        json!("a\n"),
    ] {
        assert_eq!(
            key(bad.clone()).unwrap_err().code,
            ErrorCode::InvalidKey,
            "{bad}"
        );
    }
    for wrong_type in [json!(42), json!(true), json!(["k"]), json!({"k": 1})] {
        assert_eq!(key(wrong_type).unwrap_err().code, ErrorCode::InvalidBody);
    }
}

/// The key travels in the envelope, so it counts towards the 2048-byte cap with the rest.
#[test]
fn key_is_part_of_the_envelope() {
    let v = check(json!({"message": "m", "key": "backup"})).unwrap();
    let json = build_envelope(&v.request, "relay").unwrap();
    let parsed: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(parsed["payload"]["key"], "backup");
    let without =
        build_envelope(&check(json!({"message": "m"})).unwrap().request, "relay").unwrap();
    assert_eq!(json.len(), without.len() + r#","key":"backup""#.len());
}

#[test]
fn unknown_keys_are_ignored() {
    let v = check(json!({"message": "m", "sound": "pop", "extra": {"nested": true}})).unwrap();
    assert_eq!(
        v.request,
        SendRequest {
            message: "m".into(),
            ..Default::default()
        }
    );
}

#[test]
fn form_body_without_known_key_is_the_message() {
    let v = validate_send(Some("application/x-www-form-urlencoded"), b"Backup done").unwrap();
    assert_eq!(v.request.message, "Backup done");
}

#[test]
fn every_encoding_normalizes_to_one_request() {
    let json = validate_send(
        Some("application/json"),
        br#"{"message":"hi","priority":"high","tags":["a","b"],"markdown":true,"ttl":60}"#,
    )
    .unwrap();
    let form = validate_send(
        Some("application/x-www-form-urlencoded"),
        b"message=hi&priority=high&tags=a,b&markdown=1&ttl=60",
    )
    .unwrap();
    assert_eq!(json, form);
    let text = validate_send(None, b"hi").unwrap();
    assert_eq!(text.request.message, "hi");
}

fn arb_field() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        (-1e7f64..1e7).prop_map(|f| json!(f)),
        ".{0,40}".prop_map(Value::String),
        "https://[a-z]{1,10}\\.com/[a-z€é]{0,600}".prop_map(Value::String),
        prop::collection::vec("[a-zé€ ]{0,40}".prop_map(Value::String), 0..8)
            .prop_map(Value::Array),
        prop::collection::vec(
            ("[a-z€]{0,40}", "https://[a-z]{1,5}\\.io/[a-z]{0,20}"),
            0..5
        )
        .prop_map(|v| Value::Array(
            v.into_iter()
                .map(|(l, u)| json!({"label": l, "url": u}))
                .collect()
        )),
    ]
}

fn arb_body() -> impl Strategy<Value = Map<String, Value>> {
    let message = prop_oneof![".{1,200}", "[a-z€]{1400,1600}"].prop_map(Value::String);
    (
        message,
        prop::collection::vec((prop::sample::select(KNOWN_KEYS), arb_field()), 0..10),
    )
        .prop_map(|(m, fields)| {
            let mut map = Map::new();
            map.insert("message".into(), m);
            for (k, v) in fields {
                if k != "message" {
                    map.insert(k.to_owned(), v);
                }
            }
            map
        })
}

/// SPEC §1.17: `retry`/`expire` together, only urgent, in range, `expire` within the ttl.
#[test]
fn repeat_rules_are_invalid_repeat() {
    let check = |body: Value| check(body).map(|v| v.request);
    let ok = check(json!({"message":"m","priority":"urgent","retry":30,"expire":600})).unwrap();
    assert_eq!((ok.retry, ok.expire), (Some(30), Some(600)));
    for bad in [
        json!({"message":"m","priority":"urgent","retry":30}),
        json!({"message":"m","priority":"urgent","expire":600}),
        json!({"message":"m","priority":"high","retry":30,"expire":600}),
        json!({"message":"m","retry":30,"expire":600}),
        json!({"message":"m","priority":"urgent","retry":29,"expire":600}),
        json!({"message":"m","priority":"urgent","retry":3601,"expire":6000}),
        json!({"message":"m","priority":"urgent","retry":30,"expire":59}),
        json!({"message":"m","priority":"urgent","retry":30,"expire":10801}),
        json!({"message":"m","priority":"urgent","retry":30.5,"expire":600}),
        json!({"message":"m","priority":"urgent","retry":30,"expire":600,"ttl":300}),
    ] {
        assert_eq!(
            check(bad.clone()).unwrap_err().code,
            ErrorCode::InvalidRepeat,
            "{bad}"
        );
    }
    assert_eq!(
        check(json!({"message":"m","priority":"urgent","retry":"x","expire":600}))
            .unwrap_err()
            .code,
        ErrorCode::InvalidBody
    );
    // A form's whole seconds are numbers (Pushover clients send forms).
    let form = validate_send(
        Some("application/x-www-form-urlencoded"),
        b"message=m&priority=urgent&retry=60&expire=3600",
    )
    .unwrap();
    assert_eq!(
        (form.request.retry, form.request.expire),
        (Some(60), Some(3600))
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Normalization is idempotent: what it produces passes again, unchanged and without
    /// warnings; and a size-checked envelope re-serializes within the cap.
    #[test]
    fn normalized_requests_revalidate_cleanly(body in arb_body(), source in "[a-z ]{0,40}") {
        if let Ok(first) = normalize(&body) {
            let reserialized = serde_json::to_value(&first.request).unwrap();
            let second = normalize(reserialized.as_object().unwrap()).unwrap();
            prop_assert_eq!(&second.request, &first.request);
            prop_assert!(second.warnings.is_empty(), "{:?}", second.warnings);
            if let Ok(json) = build_envelope(&first.request, &source) {
                let envelope = crate::validate::Envelope::notification(first.request, &source);
                prop_assert!(json.len() <= crate::api::MAX_ENVELOPE_BYTES);
                let again = serde_json::to_string(&envelope).unwrap();
                prop_assert_eq!(again.len(), json.len());
                let parsed: crate::validate::Envelope = serde_json::from_str(&json).unwrap();
                prop_assert_eq!(parsed, envelope);
            }
        }
    }

    /// Arbitrary bytes under any content type never panic and fail only with a 400 code.
    #[test]
    fn arbitrary_bodies_fail_cleanly(body in prop::collection::vec(any::<u8>(), 0..300),
                                     ct in prop::sample::select(vec![None, Some("application/json"), Some("application/x-www-form-urlencoded"), Some("text/plain"), Some("image/png")])) {
        if let Err(e) = validate_send(ct, &body) {
            prop_assert_eq!(e.code.http_status(), 400);
        }
    }
}
