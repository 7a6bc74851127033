//! Native desktop notifications through `notify-rust` (Linux: the freedesktop Notifications
//! service over D-Bus). Without a notification service (a server, a container) the first
//! failure prints one warning and later notifications are tried quietly, so a daemon that
//! starts after `listen` (a login session) is picked up.

use super::output::Note;
use crate::api::Priority;
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, mpsc};
use std::time::Duration;
use tokio::sync::{mpsc as queue, oneshot};
use tokio::task::JoinSet;

/// How many `Notify` calls may wait for their reply at once. dunst with ~100 notifications on
/// screen answers each in seconds; a hung daemon holds each for D-Bus's 25 s. Beyond this many
/// the notes wait in the queue (acks never do: they do not go through here).
const MAX_IN_FLIGHT: usize = 64;

/// notify-rust opens a D-Bus connection per notification, so two shows started together race
/// to the bus. The next show starts when the previous one is answered or after this long,
/// enough for a connection's handshake and its `Notify` to reach the bus (~1 ms), so the
/// daemon sees them in the order they came while a slow answer holds up nothing.
const STAGGER: Duration = Duration::from_millis(5);

/// Shows notifications on a thread of its own, in order. The event loop hands a note over and
/// goes on (print, `--exec`, ack): a notification daemon that is slow to answer or hung never
/// holds up the stream, and its slowness does not queue the notes behind it either: `Notify`
/// calls are pipelined, each sent without waiting for the previous reply.
pub struct Notifier {
    queue: queue::UnboundedSender<Note>,
    done: mpsc::Receiver<()>,
}

impl Notifier {
    pub fn new() -> Notifier {
        let (queue, notes) = queue::unbounded_channel::<Note>();
        let (finished, done) = mpsc::channel();
        std::thread::spawn(move || {
            // The listener's own runtime is busy with the stream; this one only waits on D-Bus.
            if let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .build()
            {
                let shown = Shown::default();
                let show = move |note| show_async(note, shown.clone());
                runtime.block_on(pump(notes, show, warn_unreachable));
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

fn warn_unreachable(reason: &str) {
    eprintln!(
        "warning: no desktop notification service ({reason}); printing and --exec go on (--no-notify silences this)"
    );
}

/// Starts one `show` per note, in order, each once the previous one was answered or
/// [`STAGGER`] passed, with at most [`MAX_IN_FLIGHT`] unanswered; returns when `notes` is
/// closed and every show has ended. `warn` hears the first failure after a success (or at
/// the start), so a missing daemon is reported once and again only after it came and went.
async fn pump<S, F>(mut notes: queue::UnboundedReceiver<Note>, show: S, warn: fn(&str))
where
    S: Fn(Note) -> F,
    F: Future<Output = Result<(), String>> + Send + 'static,
{
    let mut in_flight = JoinSet::new();
    // False after a failure was warned about, until a notification gets through again.
    let mut working = true;
    let mut record = |result: Result<Result<(), String>, tokio::task::JoinError>| match result {
        Ok(Ok(())) => working = true,
        Ok(Err(reason)) if working => {
            working = false;
            warn(&reason);
        }
        _ => {}
    };
    loop {
        tokio::select! {
            biased;
            Some(result) = in_flight.join_next(), if !in_flight.is_empty() => record(result),
            note = notes.recv(), if in_flight.len() < MAX_IN_FLIGHT => {
                let Some(note) = note else { break };
                let (answered, answer) = oneshot::channel();
                let showing = show(note);
                in_flight.spawn(async move {
                    let result = showing.await;
                    let _ = answered.send(());
                    result
                });
                let _ = tokio::time::timeout(STAGGER, answer).await;
            }
        }
    }
    while let Some(result) = in_flight.join_next().await {
        record(result);
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

/// The notification last shown for each key (SPEC §1.15), so the next note of that key replaces
/// it (D-Bus `replaces_id`). Shows of one key wait for each other, since the second needs the
/// id the daemon gave the first; shows of other keys and without a key are not held up.
#[derive(Clone, Default)]
struct Shown(Arc<std::sync::Mutex<HashMap<String, Slot>>>);

/// The daemon's id of the notification shown for one key, locked while one is being shown.
type Slot = Arc<tokio::sync::Mutex<Option<u32>>>;

impl Shown {
    /// The slot of `key`: held while a note of it is shown, holding the daemon's id after.
    fn slot(&self, key: &str) -> Slot {
        let mut slots = self.0.lock().unwrap_or_else(|e| e.into_inner());
        slots.entry(key.to_owned()).or_default().clone()
    }
}

/// One `Notify` call; resolves with the daemon's reply.
#[cfg_attr(not(all(unix, not(target_os = "macos"))), allow(unused_variables))]
async fn show_async(note: Note, shown: Shown) -> Result<(), String> {
    let mut n = notify_rust::Notification::new();
    n.appname("reflecto")
        .summary(&note.title)
        .body(&note.message);
    let actions = clickable(&note);
    for (key, label, _) in &actions {
        n.action(key, label);
    }
    #[cfg(all(unix, not(target_os = "macos")))]
    {
        n.urgency(urgency(note.priority));
        let slot = match &note.key {
            Some(key) => Some(shown.slot(key).lock_owned().await),
            None => None,
        };
        if let Some(id) = slot.as_deref().copied().flatten() {
            n.id(id);
        }
        let handle = n.show_async().await.map_err(|e| e.to_string())?;
        if let Some(mut slot) = slot {
            *slot = Some(handle.id());
        }
        if !actions.is_empty() {
            // Waiting for a click blocks until the notification closes: its own thread, so
            // the stream goes on. Only the urls we were sent are opened.
            std::thread::spawn(move || {
                handle.wait_for_action(|key| {
                    if let Some((_, _, url)) = actions.iter().find(|(k, _, _)| k == key) {
                        open_url(url);
                    }
                })
            });
        }
        Ok(())
    }
    // Elsewhere notify-rust only blocks; a blocking thread keeps the pipeline going.
    #[cfg(not(all(unix, not(target_os = "macos"))))]
    tokio::task::spawn_blocking(move || n.show().map(drop).map_err(|e| e.to_string()))
        .await
        .unwrap_or_else(|e| Err(e.to_string()))
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
    use futures_util::future::BoxFuture;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};
    use std::time::Instant;

    fn note(id: usize) -> Note {
        Note {
            event_id: id.to_string(),
            id: format!("msg_{id}"),
            title: "t".into(),
            message: "m".into(),
            priority: Priority::Default,
            tags: vec![],
            url: None,
            url_title: None,
            actions: vec![],
            source: "ci".into(),
            key: None,
            envelope: serde_json::Value::Null,
        }
    }

    /// A daemon that never answers: each show records when it started, then waits forever.
    type Started = Arc<Mutex<Vec<(String, Instant)>>>;

    fn hung(started: Started) -> impl Fn(Note) -> BoxFuture<'static, Result<(), String>> {
        move |note: Note| {
            started.lock().unwrap().push((note.id, Instant::now()));
            Box::pin(std::future::pending())
        }
    }

    #[tokio::test]
    async fn a_daemon_that_does_not_answer_does_not_queue_the_next_notes() {
        let started = Arc::new(Mutex::new(Vec::new()));
        let (queue, notes) = queue::unbounded_channel();
        let begin = Instant::now();
        for i in 0..20 {
            queue.send(note(i)).unwrap();
        }
        let pumping = tokio::spawn(pump(notes, hung(started.clone()), |_| {}));
        tokio::time::sleep(Duration::from_millis(500)).await;
        let started = started.lock().unwrap().clone();
        pumping.abort();
        let ids: Vec<_> = started.iter().map(|(id, _)| id.clone()).collect();
        let expected: Vec<_> = (0..20).map(|i| format!("msg_{i}")).collect();
        assert_eq!(ids, expected, "every note started, in order");
        // 20 staggered starts take ~100 ms; a show waiting for its answer would take forever.
        let last = started.last().unwrap().1 - begin;
        assert!(last < Duration::from_millis(400), "{last:?}");
        assert!(
            started.windows(2).all(|w| w[1].1 - w[0].1 >= STAGGER),
            "each show had its head start"
        );
    }

    #[tokio::test]
    async fn at_most_max_in_flight_shows_wait_for_an_answer() {
        let started = Arc::new(Mutex::new(Vec::new()));
        let (queue, notes) = queue::unbounded_channel();
        for i in 0..MAX_IN_FLIGHT + 5 {
            queue.send(note(i)).unwrap();
        }
        let pumping = tokio::spawn(pump(notes, hung(started.clone()), |_| {}));
        let enough = STAGGER * (MAX_IN_FLIGHT as u32 + 5) + Duration::from_millis(300);
        tokio::time::sleep(enough).await;
        pumping.abort();
        assert_eq!(started.lock().unwrap().len(), MAX_IN_FLIGHT);
    }

    static WARNINGS: AtomicUsize = AtomicUsize::new(0);

    #[tokio::test]
    async fn a_missing_daemon_is_warned_about_once_until_it_came_back() {
        let (queue, notes) = queue::unbounded_channel();
        // Fails, fails, works, fails, fails: two warnings, each at the first failure of a run.
        for i in [0, 0, 1, 0, 0] {
            queue.send(note(i)).unwrap();
        }
        drop(queue);
        let show = |note: Note| async move {
            if note.id == "msg_1" {
                Ok(())
            } else {
                Err("no daemon".to_owned())
            }
        };
        pump(notes, show, |reason| {
            assert_eq!(reason, "no daemon");
            WARNINGS.fetch_add(1, Ordering::SeqCst);
        })
        .await;
        assert_eq!(WARNINGS.load(Ordering::SeqCst), 2);
    }

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
            key: None,
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
