//! Cheap guards that keep the document true as routes are added: every route of the router is
//! documented, every operation is named and says its security, and the statuses every route of
//! a kind can answer are declared. (tests/it/openapi.rs checks the statuses a live relay
//! actually answers, and runs schemathesis.)

use super::document;
use serde_json::Value;

fn doc() -> Value {
    serde_json::from_str(&document()).unwrap()
}

const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// (path, method, operation) for every operation of the document.
fn operations(doc: &Value) -> Vec<(String, String, Value)> {
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in METHODS {
            if let Some(op) = item.get(method) {
                out.push((path.clone(), method.to_owned(), op.clone()));
            }
        }
    }
    out
}

/// Routes that are not API and so not in the document, each with the reason.
const NOT_API: &[(&str, &str)] = &[
    (
        "/app",
        "the web app's static files (HTML, script, manifest, icons), served to browsers",
    ),
    (
        "/admin",
        "the operator console's static files (HTML, script, style), served to browsers",
    ),
    (
        "/",
        "the HTML page a browser opening the relay's address sees",
    ),
];

/// (path, method) of every `.route(…)` in `router`, read from its source so that a route added
/// there without annotations fails this test.
fn router_routes() -> Vec<(String, String)> {
    let source = include_str!("mod.rs");
    let body = &source[source.find("pub fn router(").expect("router is in mod.rs")..];
    let body = &body[..body.find(".fallback(").unwrap_or(body.len())];
    let mut routes = Vec::new();
    for chunk in body.split(".route(").skip(1) {
        let path = chunk.split('"').nth(1).expect("a route path literal");
        for method in METHODS {
            // `get(handler)` or a chained `.post(handler)`
            let calls = chunk.match_indices(&format!("{method}(")).any(|(at, _)| {
                at == 0
                    || !chunk.as_bytes()[at - 1].is_ascii_alphanumeric()
                        && chunk.as_bytes()[at - 1] != b'_'
            });
            // A listed path and what lies below it ("/" is only itself).
            let not_api = NOT_API.iter().any(|(listed, _)| {
                path == *listed || *listed != "/" && path.starts_with(&format!("{listed}/"))
            });
            if calls && !not_api {
                routes.push((path.to_owned(), method.to_owned()));
            }
        }
    }
    routes
}

#[test]
fn every_router_route_is_documented() {
    let doc = doc();
    let routes = router_routes();
    assert!(
        routes.len() >= 14,
        "the route parser found too few: {routes:?}"
    );
    let missing: Vec<_> = routes
        .iter()
        .filter(|(path, method)| doc["paths"][path.as_str()].get(method.as_str()).is_none())
        .collect();
    assert!(
        missing.is_empty(),
        "routes missing from /openapi.json: {missing:?}"
    );
    let documented = operations(&doc);
    let stale: Vec<_> = documented
        .iter()
        .filter(|(p, m, _)| !routes.iter().any(|(rp, rm)| rp == p && rm == m))
        .map(|(p, m, _)| format!("{m} {p}"))
        .collect();
    assert!(stale.is_empty(), "documented but not routed: {stale:?}");
}

#[test]
fn every_operation_has_a_summary_a_unique_id_and_its_security() {
    let doc = doc();
    let schemes = doc["components"]["securitySchemes"].as_object().unwrap();
    let mut ids = std::collections::HashSet::new();
    for (path, method, op) in operations(&doc) {
        let at = format!("{method} {path}");
        assert!(
            op["summary"].as_str().is_some_and(|s| !s.trim().is_empty()),
            "{at} has no summary"
        );
        let id = op["operationId"].as_str().unwrap_or_default();
        assert!(!id.is_empty(), "{at} has no operationId");
        assert!(
            ids.insert(id.to_owned()),
            "{at}: operationId {id} is not unique"
        );
        let security = op["security"].as_array().unwrap_or_else(|| {
            panic!("{at} does not declare security (use `security(())` for none)")
        });
        for requirement in security {
            for name in requirement.as_object().unwrap().keys() {
                assert!(schemes.contains_key(name), "{at}: unknown scheme {name}");
            }
        }
    }
}

fn declares(op: &Value, status: &str) -> bool {
    op["responses"].get(status).is_some()
}

#[test]
fn common_error_statuses_are_declared() {
    let doc = doc();
    for (path, method, op) in operations(&doc) {
        let at = format!("{method} {path}");
        let security = op["security"].as_array().cloned().unwrap_or_default();
        let takes_credential = security.iter().any(|r| !r.as_object().unwrap().is_empty());
        if takes_credential {
            assert!(
                declares(&op, "401"),
                "{at} takes a credential but does not declare 401"
            );
        }
        if op.get("requestBody").is_some() {
            for status in ["400", "413"] {
                assert!(
                    declares(&op, status),
                    "{at} reads a body but does not declare {status}"
                );
            }
        }
        if path.starts_with("/v1/") || path.starts_with("/1/") {
            assert!(
                declares(&op, "500"),
                "{at} touches the store but does not declare 500"
            );
        }
        for (status, response) in op["responses"].as_object().unwrap() {
            assert!(
                response["description"]
                    .as_str()
                    .is_some_and(|d| !d.is_empty()),
                "{at} {status} has no description"
            );
            if status != "200" || path == "/v1/sync" {
                continue;
            }
            assert!(
                response.get("content").is_some(),
                "{at} 200 declares no body"
            );
        }
    }
}

#[test]
fn rate_limited_responses_carry_their_headers() {
    let doc = doc();
    let mut seen = 0;
    for (path, method, op) in operations(&doc) {
        let Some(limited) = op["responses"].get("429") else {
            continue;
        };
        seen += 1;
        for header in [
            "Retry-After",
            "X-RateLimit-Limit",
            "X-RateLimit-Remaining",
            "X-RateLimit-Reset",
            "X-RateLimit-Resource",
        ] {
            assert_eq!(
                limited["headers"][header]["required"],
                Value::Bool(true),
                "{method} {path} 429 lacks {header}"
            );
        }
    }
    assert!(seen >= 5, "only {seen} operations declare 429");
}

#[test]
fn request_rules_the_relay_enforces_are_in_the_schema() {
    let doc = doc();
    let send = &doc["components"]["schemas"]["SendRequest"]["properties"];
    assert_eq!(send["message"]["minLength"], 1);
    assert_eq!(send["message"]["maxLength"], 1500);
    assert_eq!(send["title"]["minLength"], 1);
    assert_eq!(send["url_title"]["maxLength"], 32);
    assert_eq!(send["device"]["maxLength"], 256);
    assert_eq!(send["key"]["pattern"], "^[A-Za-z0-9._:-]{1,64}$");
    // SPEC §1.16: an action is a link or a response, each with the other field null or absent.
    let action = &send["actions"]["prefixItems"][0]["oneOf"];
    assert_eq!(action[0]["required"], serde_json::json!(["label", "url"]));
    assert_eq!(action[0]["properties"]["response"]["type"], "null");
    assert_eq!(
        action[1]["required"],
        serde_json::json!(["label", "response"])
    );
    assert_eq!(action[1]["properties"]["url"]["type"], "null");
    assert_eq!(
        action[1]["properties"]["response"]["pattern"],
        crate::api::RESPONSE_PATTERN
    );
    let ack = &doc["components"]["schemas"]["AcknowledgeRequest"]["properties"]["response"];
    assert_eq!(ack["pattern"], crate::api::RESPONSE_PATTERN);
    // ttl is clamped, not refused: no bounds.
    assert!(send["ttl"].get("minimum").is_none() && send["ttl"].get("maximum").is_none());
    let priority = serde_json::to_string(&doc["components"]["schemas"]["Priority"]).unwrap();
    for name in ["min", "low", "default", "high", "urgent"] {
        assert!(
            priority.contains(&format!("\"{name}\"")),
            "priority enum lacks {name}"
        );
    }
    let shim = &doc["paths"]["/v1/messages.json"]["post"]["requestBody"]["content"];
    for ct in [
        "application/json",
        "application/x-www-form-urlencoded",
        "multipart/form-data",
    ] {
        assert!(shim.get(ct).is_some(), "the shim body lacks {ct}");
    }
    let send_body = &doc["paths"]["/v1/send"]["post"]["requestBody"]["content"];
    assert!(send_body.get("text/plain").is_some());
}

#[test]
fn the_route_parser_sees_chained_methods() {
    // A guard on the guard: the parser must notice every method of a route.
    assert!(router_routes().contains(&("/v1/send".to_owned(), "post".to_owned())));
    assert!(router_routes().contains(&("/health".to_owned(), "get".to_owned())));
}

#[test]
fn links_name_operations_that_exist() {
    let doc = doc();
    let ids: Vec<String> = operations(&doc)
        .into_iter()
        .filter_map(|(_, _, op)| op["operationId"].as_str().map(str::to_owned))
        .collect();
    let mut links = 0;
    for (path, method, op) in operations(&doc) {
        for response in op["responses"].as_object().unwrap().values() {
            for link in response["links"]
                .as_object()
                .into_iter()
                .flat_map(|l| l.values())
            {
                links += 1;
                let target = link["operationId"].as_str().unwrap_or_default();
                assert!(
                    ids.iter().any(|id| id == target),
                    "{method} {path}: link to unknown operation '{target}'"
                );
            }
        }
    }
    assert!(links >= 4, "only {links} links");
}

/// Every URL field of the document carries the relay's own rule, word for word.
#[test]
fn every_url_field_documents_the_relays_url_rule() {
    let doc = doc();
    let schemas = &doc["components"]["schemas"];
    for place in [
        "/SendRequest/properties/url",
        "/SendRequest/properties/actions/prefixItems/2/oneOf/0/properties/url",
        "/SendForm/properties/url",
        "/ShimRequest/properties/url",
        "/ShimForm/properties/url",
    ] {
        let property = schemas.pointer(place).unwrap_or(&Value::Null);
        assert_eq!(
            property["pattern"],
            crate::api::url_rule::HTTP_URL_PATTERN,
            "{place}"
        );
        assert_eq!(property["maxLength"], crate::api::MAX_URL_BYTES, "{place}");
    }
}

/// The document's pattern of each `SendForm` field that has one.
static SEND_FORM_PATTERNS: std::sync::LazyLock<std::collections::HashMap<String, regex::Regex>> =
    std::sync::LazyLock::new(|| {
        let doc = doc();
        let fields = doc["components"]["schemas"]["SendForm"]["properties"]
            .as_object()
            .unwrap();
        fields
            .iter()
            .filter_map(|(name, field)| {
                let pattern = regex::Regex::new(field["pattern"].as_str()?).unwrap();
                Some((name.clone(), pattern))
            })
            .collect()
    });

/// The relay's answer to one form field, sent alone with a message.
fn form_field_accepted(field: &str, value: &str) -> bool {
    let encoded: String = url::form_urlencoded::byte_serialize(value.as_bytes()).collect();
    crate::validate::validate_send(
        Some("application/x-www-form-urlencoded"),
        format!("message=m&{field}={encoded}").as_bytes(),
    )
    .is_ok()
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(3000))]

    /// The form fields whose text the relay reads as a number or a flag: the document's pattern
    /// (what the fuzzers believe) and the relay agree on every value, whitespace included. They
    /// disagreed on `\x1c`–`\x1f` (Python's `\s`, not Rust's `trim`) and on 3-digit exponents.
    #[test]
    fn form_field_patterns_are_exactly_what_the_relay_accepts(
        ttl in "[0-9eE+.\\- \t\n\x0B\x0C\r\x1C\x1Fa-z]{0,8}",
        flag in "[TtRrUuEeFfAaLlSsYyNnOo10 \t\n\x0B\x0C\r\x1C]{0,7}",
        device in "[a,\t\n\x0B\x0C\r \x1C]{1,4}",
    ) {
        for (field, value) in [("ttl", &ttl), ("markdown", &flag), ("device", &device)] {
            let pattern = &SEND_FORM_PATTERNS[field];
            proptest::prop_assert_eq!(
                form_field_accepted(field, value),
                pattern.is_match(value),
                "{} = {:?}", field, value
            );
        }
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2000))]

    /// SPEC §1.15: the `key` pattern the document shows (for JSON and form bodies) is exactly
    /// the relay's rule, at the length boundary and for the characters around the allowed ones.
    #[test]
    fn the_key_pattern_is_exactly_what_the_relay_accepts(
        key in "[A-Za-z0-9._:\\-/ ,;+@~\t\u{e9}]{0,66}",
    ) {
        let json_pattern = {
            let doc = doc();
            regex::Regex::new(doc["components"]["schemas"]["SendRequest"]["properties"]["key"]["pattern"].as_str().unwrap()).unwrap()
        };
        let relay_accepts = crate::validate::validate_send(
            Some("application/json"),
            serde_json::json!({"message": "m", "key": key}).to_string().as_bytes(),
        )
        .is_ok();
        proptest::prop_assert_eq!(relay_accepts, json_pattern.is_match(&key), "json key = {:?}", key);
        proptest::prop_assert_eq!(
            form_field_accepted("key", &key),
            SEND_FORM_PATTERNS["key"].is_match(&key),
            "form key = {:?}", key
        );
    }
}

/// A schema named in a path's parameters is not collected by utoipa by itself: a `$ref` to a
/// component that is not there made schemathesis refuse the hook routes outright.
#[test]
fn every_schema_reference_resolves() {
    let doc = doc();
    let mut refs = Vec::new();
    fn walk(value: &Value, refs: &mut Vec<String>) {
        match value {
            Value::Object(map) => {
                if let Some(Value::String(r)) = map.get("$ref") {
                    refs.push(r.clone());
                }
                map.values().for_each(|v| walk(v, refs));
            }
            Value::Array(items) => items.iter().for_each(|v| walk(v, refs)),
            _ => {}
        }
    }
    walk(&doc, &mut refs);
    assert!(!refs.is_empty());
    for reference in refs {
        let name = reference
            .strip_prefix("#/components/schemas/")
            .unwrap_or_else(|| panic!("unexpected reference {reference}"));
        assert!(
            doc["components"]["schemas"][name].is_object(),
            "{reference} does not resolve"
        );
    }
}

/// Regression (schemathesis_sent_a_nul_byte_as_valid_data): the operator API refuses a NUL
/// byte in a name or cursor (400, before PostgreSQL sees it), so the document says so; without
/// the pattern, schemathesis sent one as valid data and failed the run on the 400 at random.
#[test]
fn operator_names_and_cursors_in_a_query_exclude_the_nul_byte() {
    let doc = doc();
    for (path, name) in [
        ("/v1/admin/tokens", "user"),
        ("/v1/admin/devices", "user"),
        ("/v1/admin/messages", "user"),
        ("/v1/admin/messages", "before"),
    ] {
        let schema = &parameter(&doc, path, "get", name)["schema"];
        assert_nul_free(&format!("{path} {name}"), schema);
    }
}

/// Regression (schemathesis_sent_a_nul_byte_in_a_pairing_body): the same refusal for the names,
/// ids and labels in the operator API's paths and bodies.
#[test]
fn operator_names_ids_and_labels_in_a_path_or_body_exclude_the_nul_byte() {
    let doc = doc();
    for (path, method, name) in [
        ("/v1/admin/users/{name}", "delete", "name"),
        ("/v1/admin/tokens/{id}", "delete", "id"),
        ("/v1/admin/devices/{id}", "delete", "id"),
    ] {
        let schema = &parameter(&doc, path, method, name)["schema"];
        assert_nul_free(&format!("{path} {name}"), schema);
    }
    for (body, field) in [
        ("NewTokenRequest", "user"),
        ("NewTokenRequest", "label"),
        ("NewTokenRequest", "scope_devices"),
        ("NewPairingRequest", "user"),
        ("NewUserRequest", "name"),
    ] {
        let schema = &doc["components"]["schemas"][body]["properties"][field];
        assert_nul_free(&format!("{body}.{field}"), schema);
    }
}

fn parameter<'a>(doc: &'a Value, path: &str, method: &str, name: &str) -> &'a Value {
    doc["paths"][path][method]["parameters"]
        .as_array()
        .unwrap_or_else(|| panic!("{method} {path} has parameters"))
        .iter()
        .find(|p| p["name"] == name)
        .unwrap_or_else(|| panic!("{path} documents {name}"))
}

/// The schema's pattern admits a name, id or label and refuses one with a NUL byte.
fn assert_nul_free(what: &str, schema: &Value) {
    let pattern = schema["pattern"]
        .as_str()
        .unwrap_or_else(|| panic!("{what}: no pattern in {schema}"));
    let documented = regex::Regex::new(pattern).unwrap();
    for value in ["alice", "msg_0123", "Laptop 2"] {
        assert!(documented.is_match(value), "{what} refuses {value:?}");
    }
    assert!(!documented.is_match("ali\0ce"), "{what} admits a NUL byte");
}
