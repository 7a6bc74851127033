//! Operator templates (SPEC §1.18): `[hooks.<name>]` in the relay's config file turns any
//! tool's JSON into a notification with MiniJinja templates, one per field. Compiled once at
//! start-up (a syntax error or a built-in name stops the relay with a clear error); each render
//! runs on a fuel budget and its output is capped, so a template cannot stall the relay or
//! fill its memory, and a template that fails on a body is a 400 naming it, never a 5xx.

use super::BUILT_IN;
use crate::api::{ApiError, ErrorCode, Priority, SendRequest};
use minijinja::{AutoEscape, Environment, Value};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Work one field's render may do: minijinja's fuel, roughly one unit per instruction, so a
/// loop over a 256 KiB body fits and a runaway loop stops within milliseconds.
pub const FUEL: u64 = 200_000;
/// Bytes one field's render may write; the field's own cap then cuts it further, with a warning.
pub const MAX_OUTPUT_BYTES: usize = 8 * 1024;

/// One `[hooks.<name>]` table: MiniJinja templates over the JSON body, whose top-level keys
/// are variables and which is whole as `body`. `message` is required; the others are left out
/// of the notification when absent or rendered empty.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HookTemplateConfig {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    pub message: String,
    /// Renders to a priority name (`min` … `urgent`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub priority: Option<String>,
    /// Renders to a comma list.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tags: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

impl HookTemplateConfig {
    /// (field, template source) for every field the operator wrote.
    fn fields(&self) -> Vec<(&'static str, &str)> {
        [
            ("title", self.title.as_deref()),
            ("message", Some(self.message.as_str())),
            ("priority", self.priority.as_deref()),
            ("tags", self.tags.as_deref()),
            ("url", self.url.as_deref()),
            ("key", self.key.as_deref()),
        ]
        .into_iter()
        .filter_map(|(field, source)| source.map(|s| (field, s)))
        .collect()
    }
}

/// Every operator template, compiled.
pub struct Templates {
    env: Environment<'static>,
    /// Template name → the fields it defines.
    hooks: BTreeMap<String, Vec<&'static str>>,
}

impl Default for Templates {
    fn default() -> Templates {
        Templates {
            env: environment(),
            hooks: BTreeMap::new(),
        }
    }
}

impl std::fmt::Debug for Templates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Templates")
            .field("hooks", &self.hooks.keys().collect::<Vec<_>>())
            .finish()
    }
}

fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_fuel(Some(FUEL));
    // Notifications are text, not HTML.
    env.set_auto_escape_callback(|_| AutoEscape::None);
    env
}

/// A name that is a path segment of `/v1/hooks/{name}` as written: 1–64 of `[A-Za-z0-9._-]`.
fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

impl Templates {
    /// Compiles every `[hooks.<name>]` table; the error names the table and says what is wrong.
    pub fn compile(config: &BTreeMap<String, HookTemplateConfig>) -> Result<Templates, String> {
        let mut templates = Templates::default();
        for (name, hook) in config {
            if BUILT_IN.iter().any(|b| b.eq_ignore_ascii_case(name)) {
                return Err(format!(
                    "[hooks.{name}]: '{name}' is a built-in hook (alertmanager, grafana, github); name the template differently"
                ));
            }
            if !valid_name(name) {
                return Err(format!(
                    "[hooks.{name}]: a hook name is 1–64 characters of A-Z a-z 0-9 . _ -"
                ));
            }
            let mut fields = Vec::new();
            for (field, source) in hook.fields() {
                templates
                    .env
                    .add_template_owned(format!("{name}.{field}"), source.to_owned())
                    .map_err(|e| format!("[hooks.{name}] {field}: {e}"))?;
                fields.push(field);
            }
            templates.hooks.insert(name.clone(), fields);
        }
        Ok(templates)
    }

    /// Whether `name` is an operator template.
    pub fn has(&self, name: &str) -> bool {
        self.hooks.contains_key(name)
    }

    /// Renders template `name` over `body`: the send request before the field rules (which
    /// cut what is too long and check the rest). A field that fails to render, or a message
    /// that renders empty, is 400 `invalid_body` naming the template and the field.
    pub fn render(&self, name: &str, body: &serde_json::Value) -> Result<SendRequest, ApiError> {
        let Some(fields) = self.hooks.get(name) else {
            return Err(ApiError::new(
                ErrorCode::NotFound,
                "no such route; see /openapi.json",
            ));
        };
        let context = context(body);
        let mut request = SendRequest::default();
        for &field in fields {
            let text = self.render_field(name, field, &context)?;
            let text = text.trim();
            if text.is_empty() {
                continue;
            }
            match field {
                "title" => request.title = Some(text.to_owned()),
                "message" => request.message = text.to_owned(),
                "priority" => {
                    request.priority = Some(text.parse::<Priority>().map_err(|()| {
                        failed(
                            name,
                            field,
                            &format!("'{text}' is not one of min, low, default, high, urgent"),
                        )
                    })?)
                }
                "tags" => {
                    request.tags = Some(
                        text.split(',')
                            .map(str::trim)
                            .filter(|t| !t.is_empty())
                            .map(str::to_owned)
                            .collect(),
                    )
                }
                "url" => request.url = Some(text.to_owned()),
                _ => request.key = Some(text.to_owned()),
            }
        }
        if request.message.is_empty() {
            return Err(failed(name, "message", "it rendered empty"));
        }
        Ok(request)
    }

    /// One field, within its fuel and its output cap (what was written up to the cap is kept).
    fn render_field(&self, name: &str, field: &str, context: &Value) -> Result<String, ApiError> {
        let template = self
            .env
            .get_template(&format!("{name}.{field}"))
            .map_err(|e| failed(name, field, &e.to_string()))?;
        let mut out = CappedBuffer::default();
        match template.render_captured_to(context.clone(), &mut out) {
            Ok(_) => {}
            Err(_) if out.full => {}
            Err(e) => return Err(failed(name, field, &describe(&e))),
        }
        Ok(String::from_utf8_lossy(&out.bytes).into_owned())
    }
}

/// The variables a template sees: the body's top-level keys, and the whole body as `body`.
fn context(body: &serde_json::Value) -> Value {
    let mut vars = match body {
        serde_json::Value::Object(map) => map.clone(),
        _ => serde_json::Map::new(),
    };
    vars.insert("body".to_owned(), body.clone());
    Value::from(minijinja::value::Serde(vars))
}

/// What went wrong, without the template engine's debug dump.
fn describe(error: &minijinja::Error) -> String {
    match error.kind() {
        minijinja::ErrorKind::OutOfFuel => "it ran out of fuel (too much work for one body)".into(),
        _ => error.to_string(),
    }
}

fn failed(name: &str, field: &str, why: &str) -> ApiError {
    ApiError::new(
        ErrorCode::InvalidBody,
        format!("hook template '{name}' failed on field '{field}': {why}"),
    )
}

/// Keeps the first [`MAX_OUTPUT_BYTES`] and refuses the rest, which ends the render.
#[derive(Default)]
struct CappedBuffer {
    bytes: Vec<u8>,
    full: bool,
}

impl std::io::Write for CappedBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let room = MAX_OUTPUT_BYTES - self.bytes.len();
        if buf.len() > room {
            self.bytes.extend_from_slice(&buf[..room]);
            self.full = true;
            return Err(std::io::Error::other("output cap reached"));
        }
        self.bytes.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn compile(toml_text: &str) -> Result<Templates, String> {
        #[derive(Deserialize)]
        struct File {
            hooks: BTreeMap<String, HookTemplateConfig>,
        }
        let file: File = toml::from_str(toml_text).unwrap();
        Templates::compile(&file.hooks)
    }

    const UPTIME: &str = r#"
[hooks.uptime]
title = "{{ monitor.name }} is {{ 'up' if heartbeat.status == 1 else 'down' }}"
message = "{{ heartbeat.msg }}"
priority = "{{ 'default' if heartbeat.status == 1 else 'high' }}"
tags = "uptime, {{ monitor.type }}"
url = "{{ monitor.url }}"
key = "kuma:{{ monitor.id }}"
"#;

    #[test]
    fn every_field_renders_over_the_body() {
        let uptime = compile(UPTIME).unwrap();
        assert!(uptime.has("uptime"));
        let body = json!({"heartbeat": {"status": 0, "msg": "timeout after 48 s"},
            "monitor": {"id": 7, "name": "Blog", "type": "http", "url": "https://blog.example"}});
        let request = uptime.render("uptime", &body).unwrap();
        assert_eq!(request.title.as_deref(), Some("Blog is down"));
        assert_eq!(request.message, "timeout after 48 s");
        assert_eq!(request.priority, Some(Priority::High));
        assert_eq!(request.tags, Some(vec!["uptime".into(), "http".into()]));
        assert_eq!(request.url.as_deref(), Some("https://blog.example"));
        assert_eq!(request.key.as_deref(), Some("kuma:7"));
    }

    #[test]
    fn the_whole_body_is_body_and_html_is_not_escaped() {
        let templates =
            compile("[hooks.list]\nmessage = \"{% for x in body %}<{{ x }}>{% endfor %}\"\n")
                .unwrap();
        let request = templates.render("list", &json!(["a&b", "c"])).unwrap();
        assert_eq!(request.message, "<a&b><c>");
    }

    #[test]
    fn a_failing_field_is_invalid_body_naming_template_and_field() {
        let uptime = compile(UPTIME).unwrap();
        let refused = uptime
            .render("uptime", &json!({"monitor": {"name": "Blog"}}))
            .unwrap_err();
        assert_eq!(refused.code, ErrorCode::InvalidBody);
        assert!(
            refused
                .message
                .starts_with("hook template 'uptime' failed on field '"),
            "{}",
            refused.message
        );
        let empty = compile("[hooks.quiet]\nmessage = \"{{ text }}\"\n")
            .unwrap()
            .render("quiet", &json!({"text": "  "}))
            .unwrap_err();
        assert_eq!(
            empty.message,
            "hook template 'quiet' failed on field 'message': it rendered empty"
        );
        let loud = compile("[hooks.p]\nmessage = \"m\"\npriority = \"loud\"\n")
            .unwrap()
            .render("p", &json!({}))
            .unwrap_err();
        assert!(
            loud.message.contains("field 'priority'"),
            "{}",
            loud.message
        );
    }

    #[test]
    fn a_runaway_template_runs_out_of_fuel_and_a_huge_one_is_capped() {
        let runaway = compile(
            "[hooks.spin]\nmessage = \"{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}x\"\n",
        )
        .unwrap();
        let started = std::time::Instant::now();
        let refused = runaway.render("spin", &json!({})).unwrap_err();
        assert!(
            refused.message.contains("out of fuel"),
            "{}",
            refused.message
        );
        assert!(started.elapsed() < std::time::Duration::from_secs(2));
        let huge = compile(
            "[hooks.huge]\nmessage = \"{% for i in range(50000) %}0123456789{% endfor %}\"\n",
        )
        .unwrap();
        match huge.render("huge", &json!({})) {
            Ok(request) => assert_eq!(request.message.len(), MAX_OUTPUT_BYTES),
            Err(refused) => assert!(refused.message.contains("out of fuel")),
        }
    }

    #[test]
    fn a_template_cannot_take_a_built_in_name_or_be_malformed() {
        let shadow = compile("[hooks.github]\nmessage = \"x\"\n").unwrap_err();
        assert!(shadow.contains("'github' is a built-in hook"), "{shadow}");
        let shadow = compile("[hooks.Grafana]\nmessage = \"x\"\n").unwrap_err();
        assert!(shadow.contains("built-in"), "{shadow}");
        let broken = compile("[hooks.b]\nmessage = \"{{ x \"\n").unwrap_err();
        assert!(broken.starts_with("[hooks.b] message: "), "{broken}");
        let named = compile("[hooks.\"a b\"]\nmessage = \"x\"\n").unwrap_err();
        assert!(named.contains("a hook name is"), "{named}");
    }
}
