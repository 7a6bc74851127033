//! Native desktop notifications through `notify-rust` (Linux: the freedesktop Notifications
//! service over D-Bus). Without a notification service (a server, a container) the first
//! failure prints one warning and later notifications are tried quietly, so a daemon that
//! starts after `listen` (a login session) is picked up.

use super::output::Note;
use crate::api::Priority;
use std::sync::mpsc;
use std::time::Duration;

/// Shows notifications on a thread of its own, in order. The event loop hands a note over and
/// goes on (print, `--exec`, ack): a notification daemon that is slow to answer (dunst takes
/// ~30 ms per Notify) or hung (D-Bus waits 25 s) never holds up the stream.
pub struct Notifier {
    queue: mpsc::Sender<Note>,
    done: mpsc::Receiver<()>,
}

impl Notifier {
    pub fn new() -> Notifier {
        let (queue, notes) = mpsc::channel::<Note>();
        let (finished, done) = mpsc::channel();
        std::thread::spawn(move || {
            // False after a failure was warned about, until a notification gets through again.
            let mut working = true;
            for note in notes {
                match show_blocking(&note) {
                    Ok(()) => working = true,
                    Err(reason) if working => {
                        working = false;
                        eprintln!(
                            "warning: no desktop notification service ({reason}); printing and --exec go on (--no-notify silences this)"
                        );
                    }
                    Err(_) => {}
                }
            }
            let _ = finished.send(());
        });
        Notifier { queue, done }
    }

    /// Queues `note` for showing; never fails the caller.
    pub fn show(&self, note: &Note) {
        let _ = self.queue.send(note.clone());
    }

    /// Shows what is still queued (for at most `wait`), then stops.
    pub async fn finish(self, wait: Duration) {
        let Notifier { queue, done } = self;
        drop(queue);
        let _ = tokio::task::spawn_blocking(move || done.recv_timeout(wait)).await;
    }
}

/// The action key of the url; action buttons are `action-<index>`.
const URL_ACTION: &str = "default";

/// `min`/`low` → low, `default`/`high` → normal, `urgent` → critical (SPEC §2.1).
#[cfg(all(unix, not(target_os = "macos")))]
pub fn urgency(priority: Priority) -> notify_rust::Urgency {
    match priority {
        Priority::Min | Priority::Low => notify_rust::Urgency::Low,
        Priority::Default | Priority::High => notify_rust::Urgency::Normal,
        Priority::Urgent => notify_rust::Urgency::Critical,
    }
}

/// (action key, label, url) for the notification's clickable actions.
fn clickable(note: &Note) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    if let Some(url) = &note.url {
        let label = note.url_title.clone().unwrap_or_else(|| "Open".to_owned());
        out.push((URL_ACTION.to_owned(), label, url.clone()));
    }
    for (i, (label, url)) in note.actions.iter().enumerate() {
        out.push((format!("action-{i}"), label.clone(), url.clone()));
    }
    out
}

fn show_blocking(note: &Note) -> Result<(), String> {
    let mut n = notify_rust::Notification::new();
    n.appname("reflecto")
        .summary(&note.title)
        .body(&note.message);
    #[cfg(all(unix, not(target_os = "macos")))]
    n.urgency(urgency(note.priority));
    let actions = clickable(note);
    for (key, label, _) in &actions {
        n.action(key, label);
    }
    let handle = n.show().map_err(|e| e.to_string())?;
    if !actions.is_empty() {
        // Waiting for a click blocks until the notification closes: its own thread, so the
        // stream goes on. Only the urls we were sent are opened.
        #[cfg(all(unix, not(target_os = "macos")))]
        std::thread::spawn(move || {
            handle.wait_for_action(|key| {
                if let Some((_, _, url)) = actions.iter().find(|(k, _, _)| k == key) {
                    open_url(url);
                }
            })
        });
        #[cfg(not(all(unix, not(target_os = "macos"))))]
        drop(handle);
    }
    Ok(())
}

/// Opens a url with the desktop's handler, without waiting for it.
fn open_url(url: &str) {
    let (program, args): (&str, Vec<&str>) = if cfg!(target_os = "macos") {
        ("open", vec![url])
    } else if cfg!(windows) {
        ("cmd", vec!["/C", "start", "", url])
    } else {
        ("xdg-open", vec![url])
    };
    if let Err(e) = std::process::Command::new(program).args(args).spawn() {
        eprintln!("warning: cannot open the notification's link with {program}: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_and_actions_become_clickable_in_order() {
        let note = Note {
            event_id: "1".into(),
            id: "msg_1".into(),
            title: "t".into(),
            message: "m".into(),
            priority: Priority::Urgent,
            tags: vec![],
            url: Some("https://a.example/".into()),
            url_title: None,
            actions: vec![("Rerun".into(), "https://b.example/".into())],
            source: "ci".into(),
            envelope: serde_json::Value::Null,
        };
        let keys: Vec<_> = clickable(&note)
            .into_iter()
            .map(|(k, l, _)| (k, l))
            .collect();
        assert_eq!(
            keys,
            [
                ("default".to_owned(), "Open".to_owned()),
                ("action-0".to_owned(), "Rerun".to_owned())
            ]
        );
    }

    #[cfg(all(unix, not(target_os = "macos")))]
    #[test]
    fn priorities_map_to_urgencies() {
        use notify_rust::Urgency::*;
        let got: Vec<_> = [
            Priority::Min,
            Priority::Low,
            Priority::Default,
            Priority::High,
            Priority::Urgent,
        ]
        .into_iter()
        .map(urgency)
        .collect();
        assert_eq!(got, [Low, Low, Normal, Normal, Critical]);
    }
}
