//! What `reflecto listen` does with one decoded delivery besides the desktop notification:
//! the stdout line (human or `--json`) and the `--exec` hook with its `REFLECTO_*` variables.

use crate::api::Priority;
use crate::client::stream::Delivery;
use crate::validate::Envelope;
use serde_json::Value;
use std::process::Stdio;
use tokio::io::AsyncWriteExt;

/// One notification, ready to show: the envelope's fields with the defaults applied.
#[derive(Debug, Clone, PartialEq)]
pub struct Note {
    pub event_id: String,
    pub id: String,
    pub title: String,
    pub message: String,
    pub priority: Priority,
    pub tags: Vec<String>,
    pub url: Option<String>,
    pub url_title: Option<String>,
    /// (label, url) buttons
    pub actions: Vec<(String, String)>,
    /// (label, response) buttons (SPEC §1.16): pressing one acknowledges with the response
    pub responses: Vec<(String, String)>,
    pub source: String,
    /// The send's key (SPEC §1.15): a newer note of the key replaces the one shown for it.
    pub key: Option<String>,
    /// The envelope as it arrived, for `--json` and `--exec`'s stdin.
    pub envelope: Value,
}

impl Note {
    /// `None` when the envelope is not a notification this version understands.
    pub fn from_delivery(event_id: &str, delivery: Delivery) -> Option<Note> {
        // Buttons are read apart, so a button of a kind this version does not know costs
        // that button, not the notification.
        let mut rest = delivery.envelope.clone();
        let buttons = rest
            .get_mut("payload")
            .and_then(|p| p.as_object_mut())
            .and_then(|p| p.remove("actions"));
        let (actions, responses) = buttons_of(buttons);
        let envelope: Envelope = serde_json::from_value(rest).ok()?;
        let p = envelope.payload;
        // The relay puts the token's label in `source`; it names the sender when there is
        // no title.
        let title = p
            .title
            .clone()
            .or_else(|| (!envelope.source.is_empty()).then(|| envelope.source.clone()))
            .unwrap_or_else(|| "reflecto".to_owned());
        Some(Note {
            event_id: event_id.to_owned(),
            id: delivery.id,
            title,
            message: p.message.clone(),
            priority: p.priority(),
            tags: p.tags.clone().unwrap_or_default(),
            url: p.url.clone(),
            url_title: p.url_title.clone(),
            actions,
            responses,
            source: envelope.source,
            key: p.key.clone(),
            envelope: delivery.envelope,
        })
    }

    /// The acknowledgement's line: human, or `--json`'s `{"acknowledged","response"}`.
    pub fn acknowledged_line(id: &str, response: Option<&str>, json: bool, time: &str) -> String {
        if json {
            return format!(
                r#"{{"acknowledged":{},"response":{}}}"#,
                Value::String(id.to_owned()),
                response.map_or(Value::Null, |r| Value::String(r.to_owned()))
            );
        }
        match response {
            Some(r) => format!("{time} acknowledged {id}: {r}"),
            None => format!("{time} acknowledged {id}"),
        }
    }

    /// The `--json` line and `--exec`'s stdin: `{"event_id","id","envelope"}`.
    pub fn json(&self) -> String {
        // Written by hand to keep SPEC's key order (serde_json's map would sort them).
        format!(
            r#"{{"event_id":{},"id":{},"envelope":{}}}"#,
            Value::String(self.event_id.clone()),
            Value::String(self.id.clone()),
            self.envelope
        )
    }

    /// `HH:MM:SS [priority] title: message`, on one line whatever the message holds.
    pub fn human_line(&self, time: &str) -> String {
        let flat = |s: &str| {
            s.chars()
                .map(|c| if c.is_control() { ' ' } else { c })
                .collect::<String>()
        };
        format!(
            "{time} [{}] {}: {}",
            self.priority.as_str(),
            flat(&self.title),
            flat(&self.message)
        )
    }

    /// The hook's environment.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("REFLECTO_ID", self.id.clone()),
            ("REFLECTO_TITLE", self.title.clone()),
            ("REFLECTO_MESSAGE", self.message.clone()),
            ("REFLECTO_PRIORITY", self.priority.as_str().to_owned()),
            ("REFLECTO_TAGS", self.tags.join(",")),
            ("REFLECTO_URL", self.url.clone().unwrap_or_default()),
            ("REFLECTO_SOURCE", self.source.clone()),
        ]
    }
}

/// (label, url) links or (label, response) answers.
type Buttons = Vec<(String, String)>;

/// An envelope's `actions` as links and answers.
fn buttons_of(actions: Option<Value>) -> (Buttons, Buttons) {
    let (mut links, mut answers) = (Vec::new(), Vec::new());
    let Some(Value::Array(actions)) = actions else {
        return (links, answers);
    };
    for action in actions {
        let text = |k: &str| action.get(k).and_then(Value::as_str).map(str::to_owned);
        match (text("label"), text("url"), text("response")) {
            (Some(label), Some(url), None) => links.push((label, url)),
            (Some(label), None, Some(response)) => answers.push((label, response)),
            _ => {}
        }
    }
    (links, answers)
}

/// Runs `sh -c CMD` with the note's variables and its JSON on stdin, and waits for it. Its
/// stdout goes to our stderr, so `--json` output stays one object per line.
pub async fn run_hook(command: &str, note: &Note) -> Result<(), String> {
    let stdout = std::io::stderr()
        .as_fd_clone()
        .map_err(|e| format!("cannot start --exec: {e}"))?;
    let mut child = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(command)
        .envs(note.env())
        .stdin(Stdio::piped())
        .stdout(stdout)
        .spawn()
        .map_err(|e| format!("cannot start --exec: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A hook that does not read stdin closes it early: that is not a failure.
        let _ = stdin
            .write_all(format!("{}\n", note.json()).as_bytes())
            .await;
    }
    let status = child
        .wait()
        .await
        .map_err(|e| format!("--exec did not finish: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("--exec exited with {status}"))
    }
}

/// `std::io::Stderr` as an owned handle a child can inherit.
trait FdClone {
    fn as_fd_clone(&self) -> std::io::Result<Stdio>;
}

impl FdClone for std::io::Stderr {
    #[cfg(unix)]
    fn as_fd_clone(&self) -> std::io::Result<Stdio> {
        use std::os::fd::AsFd;
        Ok(Stdio::from(self.as_fd().try_clone_to_owned()?))
    }
    #[cfg(not(unix))]
    fn as_fd_clone(&self) -> std::io::Result<Stdio> {
        Ok(Stdio::inherit())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn note(envelope: Value) -> Note {
        Note::from_delivery(
            "4",
            Delivery {
                id: "msg_1".into(),
                envelope,
            },
        )
        .unwrap()
    }

    #[test]
    fn defaults_fill_title_and_priority() {
        let n =
            note(json!({"type":"notification","payload":{"message":"disk\nfull"},"source":"cron"}));
        assert_eq!(n.title, "cron");
        assert_eq!(n.priority, Priority::Default);
        assert_eq!(
            n.human_line("12:00:00"),
            "12:00:00 [default] cron: disk full"
        );
        let n = note(json!({"type":"notification","payload":{"message":"x"},"source":""}));
        assert_eq!(n.title, "reflecto");
    }

    #[test]
    fn env_and_json_carry_every_field() {
        let n = note(
            json!({"type":"notification","payload":{"message":"m","title":"t","priority":"urgent","tags":["a","b"],"url":"https://x.example/","actions":[{"label":"L","url":"https://y.example/"}]},"source":"ci"}),
        );
        let env: std::collections::HashMap<_, _> = n.env().into_iter().collect();
        assert_eq!(env["REFLECTO_TAGS"], "a,b");
        assert_eq!(env["REFLECTO_PRIORITY"], "urgent");
        assert_eq!(env["REFLECTO_URL"], "https://x.example/");
        assert_eq!(env["REFLECTO_SOURCE"], "ci");
        assert_eq!(
            n.actions,
            [("L".to_owned(), "https://y.example/".to_owned())]
        );
        assert!(
            n.json()
                .starts_with(r#"{"event_id":"4","id":"msg_1","envelope":{"#)
        );
        let back: Value = serde_json::from_str(&n.json()).unwrap();
        assert_eq!(back["event_id"], "4");
        assert_eq!(back["id"], "msg_1");
        assert_eq!(back["envelope"]["payload"]["title"], "t");
    }

    #[test]
    fn response_buttons_are_kept_apart_from_links() {
        let n = note(
            json!({"type":"notification","payload":{"message":"Deploy?","actions":[{"label":"Deploy","response":"deploy"},{"label":"Diff","url":"https://d.example/"},{"label":"odd"}]},"source":"ci"}),
        );
        assert_eq!(n.responses, [("Deploy".to_owned(), "deploy".to_owned())]);
        assert_eq!(
            n.actions,
            [("Diff".to_owned(), "https://d.example/".to_owned())]
        );
        assert_eq!(
            n.envelope["payload"]["actions"][0]["response"], "deploy",
            "--json and --exec still get the envelope as it came"
        );
    }

    #[test]
    fn acknowledgements_print_as_a_line_or_json() {
        assert_eq!(
            Note::acknowledged_line("msg_1", Some("deploy"), true, "12:00:00"),
            r#"{"acknowledged":"msg_1","response":"deploy"}"#
        );
        assert_eq!(
            Note::acknowledged_line("msg_1", None, true, "12:00:00"),
            r#"{"acknowledged":"msg_1","response":null}"#
        );
        assert_eq!(
            Note::acknowledged_line("msg_1", None, false, "12:00:00"),
            "12:00:00 acknowledged msg_1"
        );
    }

    #[test]
    fn other_envelopes_are_not_notes() {
        let bad = Delivery {
            id: "msg_1".into(),
            envelope: json!({"hello": 1}),
        };
        assert!(Note::from_delivery("1", bad).is_none());
    }
}
