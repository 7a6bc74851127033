//! Prometheus Alertmanager's webhook (version 4) → one notification per group (SPEC §1.18):
//! `[FIRING:<n>] <alertname>` or `[RESOLVED] <alertname>`, one message line per alert, the
//! priority of the highest `severity`, and a `key` from the `groupKey` so the resolved group
//! replaces its firing notification on every screen. Grafana's contact point sends the same
//! shape, so [`Group`] serves both.

use super::{Mapped, not_the_shape, one_line, text};
use crate::api::{ApiError, Priority, SendRequest};
use serde_json::Value;
use sha2::{Digest, Sha256};

pub fn map(body: &Value) -> Result<Mapped, ApiError> {
    let group = Group::read(body, "alertmanager")?;
    let title = group.title();
    let message = group.lines().unwrap_or_else(|| title.clone());
    Ok(Mapped::Send(group.request(title, message)))
}

/// One notification's worth of alerts: the webhook body of Alertmanager or Grafana.
pub(super) struct Group<'a> {
    source: &'static str,
    body: &'a Value,
    firing: bool,
    alerts: Vec<&'a Value>,
}

impl<'a> Group<'a> {
    /// The body as a group: an object whose `status` is `firing` or `resolved` and whose
    /// `alerts` is an array of objects; anything else is 400 `invalid_body`.
    pub(super) fn read(body: &'a Value, source: &'static str) -> Result<Group<'a>, ApiError> {
        let shape = "expected an object with \"status\" (\"firing\" or \"resolved\") and \"alerts\" (an array of alert objects)";
        let firing = match text(body, "status") {
            Some("firing") => true,
            Some("resolved") => false,
            _ => return Err(not_the_shape(source, shape)),
        };
        let Some(alerts) = body.get("alerts").and_then(Value::as_array) else {
            return Err(not_the_shape(source, shape));
        };
        if !alerts.iter().all(Value::is_object) {
            return Err(not_the_shape(source, shape));
        }
        Ok(Group {
            source,
            body,
            firing,
            alerts: alerts.iter().collect(),
        })
    }

    /// `[FIRING:<n>] <alertname>` (n: the alerts whose own status is `firing`) or
    /// `[RESOLVED] <alertname>`.
    pub(super) fn title(&self) -> String {
        let name = self.alertname();
        if self.firing {
            let n = self
                .alerts
                .iter()
                .filter(|a| text(a, "status") == Some("firing"))
                .count();
            format!("[FIRING:{n}] {name}")
        } else {
            format!("[RESOLVED] {name}")
        }
    }

    /// The group's `alertname`: the grouping label, else the common one, else the first
    /// alert's, else `alert`.
    fn alertname(&self) -> String {
        let from = |labels: Option<&Value>| {
            labels
                .and_then(|l| text(l, "alertname"))
                .map(one_line)
                .filter(|n| !n.is_empty())
        };
        from(self.body.get("groupLabels"))
            .or_else(|| from(self.body.get("commonLabels")))
            .or_else(|| from(self.alerts.first().and_then(|a| a.get("labels"))))
            .unwrap_or_else(|| "alert".to_owned())
    }

    /// One line per alert from its `summary` annotation, else its `description`, else its
    /// `alertname`; `None` for a group without alerts.
    pub(super) fn lines(&self) -> Option<String> {
        let lines: Vec<String> = self
            .alerts
            .iter()
            .map(|alert| {
                let annotations = alert.get("annotations");
                let labels = alert.get("labels");
                [
                    annotations.and_then(|a| text(a, "summary")),
                    annotations.and_then(|a| text(a, "description")),
                    labels.and_then(|l| text(l, "alertname")),
                ]
                .into_iter()
                .flatten()
                .map(one_line)
                .find(|l| !l.is_empty())
                .unwrap_or_else(|| "alert".to_owned())
            })
            .collect();
        (!lines.is_empty()).then(|| lines.join("\n"))
    }

    /// The send request around `title` and `message`: url, priority, tags and key.
    pub(super) fn request(&self, title: String, message: String) -> SendRequest {
        SendRequest {
            message,
            title: Some(title),
            priority: Some(self.priority()),
            tags: Some(vec![
                self.source.to_owned(),
                if self.firing { "firing" } else { "resolved" }.to_owned(),
            ]),
            url: self.url(),
            key: self.key(),
            ..SendRequest::default()
        }
    }

    /// The first alert's `generatorURL`, else `externalURL`, whichever is an http(s) URL.
    fn url(&self) -> Option<String> {
        let generator = self.alerts.first().and_then(|a| text(a, "generatorURL"));
        [generator, text(self.body, "externalURL")]
            .into_iter()
            .flatten()
            .map(str::trim)
            .find(|u| crate::api::url_rule::accept_http_url(u).is_some())
            .map(str::to_owned)
    }

    /// `low` for a resolved group; else the highest `severity` among the firing alerts
    /// (the common labels when there are none).
    fn priority(&self) -> Priority {
        if !self.firing {
            return Priority::Low;
        }
        let firing: Vec<&Value> = self
            .alerts
            .iter()
            .copied()
            .filter(|a| text(a, "status") == Some("firing"))
            .collect();
        let labels: Vec<Option<&Value>> = if firing.is_empty() {
            vec![self.body.get("commonLabels")]
        } else {
            firing.iter().map(|a| a.get("labels")).collect()
        };
        labels
            .into_iter()
            .flatten()
            .filter_map(|l| text(l, "severity"))
            .map(severity)
            .max()
            .unwrap_or_default()
    }

    /// `am:` + the first 32 hex characters of the SHA-256 of `groupKey`.
    fn key(&self) -> Option<String> {
        let group_key = text(self.body, "groupKey").filter(|k| !k.is_empty())?;
        let digest = hex::encode(Sha256::digest(group_key.as_bytes()));
        Some(format!("am:{}", &digest[..32]))
    }
}

/// A `severity` label's priority: `critical`/`page` → urgent, `error`/`high`/`warning` →
/// high, `info` → low; any other value says nothing (`default`).
fn severity(label: &str) -> Priority {
    match label.trim().to_ascii_lowercase().as_str() {
        "critical" | "page" => Priority::Urgent,
        "error" | "high" | "warning" => Priority::High,
        "info" => Priority::Low,
        _ => Priority::Default,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::ErrorCode;

    /// Alertmanager's documented v4 webhook body, with the values a real group carries.
    pub(crate) const FIRING: &str =
        include_str!("../../tests/fixtures/hooks/alertmanager_firing.json");
    const RESOLVED: &str = include_str!("../../tests/fixtures/hooks/alertmanager_resolved.json");

    fn mapped(body: &str) -> SendRequest {
        match map(&serde_json::from_str(body).unwrap()).unwrap() {
            Mapped::Send(request) => request,
            Mapped::Nothing(w) => panic!("nothing sent: {w:?}"),
        }
    }

    #[test]
    fn a_firing_group_is_one_notification_with_a_line_per_alert() {
        let request = mapped(FIRING);
        assert_eq!(request.title.as_deref(), Some("[FIRING:2] DiskFull"));
        assert_eq!(
            request.message,
            "Disk /var on db-1 is 97% full\nDisk /srv on db-2 is 93% full"
        );
        assert_eq!(
            request.url.as_deref(),
            Some("http://prometheus.example:9090/graph?g0.expr=disk_used_ratio+%3E+0.9&g0.tab=1")
        );
        // One alert is critical, the other a warning: the highest wins.
        assert_eq!(request.priority, Some(Priority::Urgent));
        assert_eq!(
            request.tags,
            Some(vec!["alertmanager".into(), "firing".into()])
        );
        let digest = hex::encode(Sha256::digest(
            "{}/{severity=~\"warning|critical\"}:{alertname=\"DiskFull\"}",
        ));
        assert_eq!(request.key, Some(format!("am:{}", &digest[..32])));
    }

    #[test]
    fn the_resolved_group_is_low_and_keeps_the_key_of_its_firing_one() {
        let firing = mapped(FIRING);
        let resolved = mapped(RESOLVED);
        assert_eq!(resolved.title.as_deref(), Some("[RESOLVED] DiskFull"));
        assert_eq!(resolved.priority, Some(Priority::Low));
        assert_eq!(
            resolved.tags,
            Some(vec!["alertmanager".into(), "resolved".into()])
        );
        assert_eq!(resolved.key, firing.key);
    }

    #[test]
    fn severities_map_as_the_spec_says() {
        for (label, priority) in [
            ("critical", Priority::Urgent),
            ("page", Priority::Urgent),
            ("error", Priority::High),
            ("high", Priority::High),
            ("warning", Priority::High),
            ("info", Priority::Low),
            ("whatever", Priority::Default),
        ] {
            let body = serde_json::json!({"status": "firing", "alerts": [
                {"status": "firing", "labels": {"alertname": "A", "severity": label}}]});
            let Mapped::Send(request) = map(&body).unwrap() else {
                panic!()
            };
            assert_eq!(request.priority, Some(priority), "{label}");
        }
        let none = serde_json::json!({"status": "firing", "alerts": [{"status": "firing"}]});
        let Mapped::Send(request) = map(&none).unwrap() else {
            panic!()
        };
        assert_eq!(request.priority, Some(Priority::Default));
        assert_eq!(request.title.as_deref(), Some("[FIRING:1] alert"));
        assert_eq!(request.message, "alert");
        assert_eq!(request.key, None);
    }

    #[test]
    fn description_stands_in_for_summary_and_external_url_for_generator_url() {
        let body = serde_json::json!({"status": "firing", "externalURL": "http://am.example:9093",
            "groupLabels": {}, "commonLabels": {"alertname": "Load"},
            "alerts": [{"status": "firing", "generatorURL": "",
                "annotations": {"description": "load is high\non web-1"}}]});
        let Mapped::Send(request) = map(&body).unwrap() else {
            panic!()
        };
        assert_eq!(request.message, "load is high on web-1");
        assert_eq!(request.title.as_deref(), Some("[FIRING:1] Load"));
        assert_eq!(request.url.as_deref(), Some("http://am.example:9093"));
    }

    #[test]
    fn a_body_that_is_not_a_group_is_invalid_body() {
        for body in [
            serde_json::json!([]),
            serde_json::json!({"status": "firing"}),
            serde_json::json!({"status": "pending", "alerts": []}),
            serde_json::json!({"status": "firing", "alerts": [1]}),
            serde_json::json!({"message": "hello"}),
        ] {
            let refused = map(&body).unwrap_err();
            assert_eq!(refused.code, ErrorCode::InvalidBody, "{body}");
            assert!(
                refused
                    .message
                    .starts_with("the body is not alertmanager's webhook JSON")
            );
        }
    }
}
