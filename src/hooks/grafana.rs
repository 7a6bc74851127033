//! Grafana's webhook contact point → one notification per group (SPEC §1.18): Alertmanager's
//! shape plus Grafana's own rendered `title` and `message`, which are used as they are (the
//! operator shaped them in Grafana's notification templates); priority, url, tags and key as
//! for Alertmanager.

use super::alertmanager::Group;
use super::{Mapped, text};
use crate::api::ApiError;
use serde_json::Value;

pub fn map(body: &Value) -> Result<Mapped, ApiError> {
    let group = Group::read(body, "grafana")?;
    let own = |key: &str| {
        text(body, key)
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(str::to_owned)
    };
    // A title of more than one line would not read as one: its lines are joined.
    let title = own("title")
        .map(|t| super::one_line(&t))
        .unwrap_or_else(|| group.title());
    let message = own("message")
        .or_else(|| group.lines())
        .unwrap_or_else(|| title.clone());
    Ok(Mapped::Send(group.request(title, message)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{ErrorCode, Priority};

    /// Grafana's documented contact-point payload, with severities on its two alerts.
    const FIRING: &str = include_str!("../../tests/fixtures/hooks/grafana_firing.json");

    #[test]
    fn grafana_keeps_its_own_title_and_message() {
        let body: Value = serde_json::from_str(FIRING).unwrap();
        let Mapped::Send(request) = map(&body).unwrap() else {
            panic!("nothing sent")
        };
        assert_eq!(request.title.as_deref(), Some("[FIRING:2]  (blue)"));
        assert!(
            request
                .message
                .starts_with("**Firing**\n\nLabels:\n - alertname = T2")
        );
        assert_eq!(
            request.url.as_deref(),
            Some("https://play.grafana.org/alerting/1afz29v7z/edit")
        );
        assert_eq!(request.priority, Some(Priority::Urgent));
        assert_eq!(request.tags, Some(vec!["grafana".into(), "firing".into()]));
        assert!(request.key.as_deref().unwrap().starts_with("am:"));
    }

    #[test]
    fn without_its_own_texts_grafana_reads_like_alertmanager() {
        let mut body: Value = serde_json::from_str(FIRING).unwrap();
        let object = body.as_object_mut().unwrap();
        object.remove("title");
        object.insert("message".into(), "  ".into());
        let Mapped::Send(request) = map(&body).unwrap() else {
            panic!("nothing sent")
        };
        assert_eq!(
            request.title.as_deref(),
            Some("[FIRING:2] High memory usage")
        );
        assert_eq!(
            request.message,
            "This alert was triggered for zone us-1\nThis alert was triggered for zone eu-1"
        );
    }

    #[test]
    fn a_resolved_grafana_group_is_low() {
        let mut body: Value = serde_json::from_str(FIRING).unwrap();
        body["status"] = "resolved".into();
        let Mapped::Send(request) = map(&body).unwrap() else {
            panic!("nothing sent")
        };
        assert_eq!(request.priority, Some(Priority::Low));
        assert_eq!(
            request.tags,
            Some(vec!["grafana".into(), "resolved".into()])
        );
    }

    #[test]
    fn a_body_that_is_not_grafanas_is_invalid_body() {
        let refused = map(&serde_json::json!({"title": "x", "message": "y"})).unwrap_err();
        assert_eq!(refused.code, ErrorCode::InvalidBody);
        assert!(refused.message.contains("grafana"));
    }
}
