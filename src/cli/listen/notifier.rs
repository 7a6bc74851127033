//! Native desktop notifications through `notify-rust` (Linux: the freedesktop Notifications
//! service over D-Bus). Without a notification service (a server, a container) the first
//! failure prints one warning and later notifications are tried quietly, so a daemon that
//! starts after `listen` (a login session) is picked up.

use super::output::Note;
#[cfg(all(unix, not(target_os = "macos")))]
use super::screen::Screen;
use super::shown_before::ShownBefore;
use crate::api::Priority;
use std::future::Future;
use std::sync::mpsc;
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

/// A click that acknowledges message `id`, with the chosen response or none (SPEC §1.16).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ack {
    pub id: String,
    pub response: Option<String>,
}

/// What the listener asks of the desktop.
#[derive(Debug, Clone)]
pub enum Command {
    Show(Box<Note>),
    /// Close the notification of this message id (a `clear` event, SPEC §1.15).
    Close(String),
}

/// Shows notifications on a thread of its own, in order. The event loop hands a note over and
/// goes on (print, `--exec`, ack): a notification daemon that is slow to answer or hung never
/// holds up the stream, and its slowness does not queue the notes behind it either: `Notify`
/// calls are pipelined, each sent without waiting for the previous reply. Clicks on what it
/// showed come back as [`Ack`]s on the channel given to [`Notifier::new`].
pub struct Notifier {
    queue: queue::UnboundedSender<Command>,
    done: mpsc::Receiver<()>,
}

impl Notifier {
    /// `shown_before`: what earlier runs left on the desktop (closed or replaced from here).
    #[cfg_attr(not(all(unix, not(target_os = "macos"))), allow(unused_variables))]
    pub fn new(acks: queue::UnboundedSender<Ack>, shown_before: ShownBefore) -> Notifier {
        let (queue, commands) = queue::unbounded_channel::<Command>();
        let (finished, done) = mpsc::channel();
        std::thread::spawn(move || {
            // The listener's own runtime is busy with the stream; this one only waits on D-Bus.
            if let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .build()
            {
                #[cfg(all(unix, not(target_os = "macos")))]
                let run = {
                    let screen = Screen::new(acks, shown_before);
                    move |command| run_command(command, screen.clone())
                };
                #[cfg(not(all(unix, not(target_os = "macos"))))]
                let run = run_command;
                runtime.block_on(pump(commands, run, warn_unreachable));
            }
            let _ = finished.send(());
        });
        Notifier { queue, done }
    }

    /// Queues `note` for showing; never fails the caller.
    pub fn show(&self, note: &Note) {
        let _ = self.queue.send(Command::Show(Box::new(note.clone())));
    }

    /// Queues closing the notification of message `id`; never fails the caller.
    pub fn close(&self, id: &str) {
        let _ = self.queue.send(Command::Close(id.to_owned()));
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

/// Starts one `show` per item, in order, each once the previous one was answered or
/// [`STAGGER`] passed, with at most [`MAX_IN_FLIGHT`] unanswered; returns when `items` is
/// closed and every show has ended. `warn` hears the first failure after a success (or at
/// the start), so a missing daemon is reported once and again only after it came and went.
async fn pump<T, S, F>(mut items: queue::UnboundedReceiver<T>, show: S, warn: fn(&str))
where
    S: Fn(T) -> F,
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
            item = items.recv(), if in_flight.len() < MAX_IN_FLIGHT => {
                let Some(item) = item else { break };
                let (answered, answer) = oneshot::channel();
                let showing = show(item);
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

/// `min`/`low` → low, `default`/`high` → normal, `urgent` → critical (SPEC §2.1).
#[cfg(all(unix, not(target_os = "macos")))]
pub fn urgency(priority: Priority) -> notify_rust::Urgency {
    match priority {
        Priority::Min | Priority::Low => notify_rust::Urgency::Low,
        Priority::Default | Priority::High => notify_rust::Urgency::Normal,
        Priority::Urgent => notify_rust::Urgency::Critical,
    }
}

fn notification(note: &Note) -> notify_rust::Notification {
    let mut n = notify_rust::Notification::new();
    n.appname("reflecto")
        .summary(&note.title)
        .body(&note.message);
    #[cfg(all(unix, not(target_os = "macos")))]
    n.urgency(urgency(note.priority));
    n
}

/// One command on the freedesktop service: `Notify` (resolves with the daemon's reply; the
/// clicks are waited for apart) or `CloseNotification`.
#[cfg(all(unix, not(target_os = "macos")))]
async fn run_command(command: Command, screen: Screen) -> Result<(), String> {
    match command {
        Command::Show(note) => screen.show(notification(&note), *note).await,
        Command::Close(id) => {
            screen.close(id).await;
            Ok(())
        }
    }
}

/// Elsewhere notify-rust only blocks (and has no replacing, closing or clicks to wait for); a
/// blocking thread keeps the pipeline going.
#[cfg(not(all(unix, not(target_os = "macos"))))]
async fn run_command(command: Command) -> Result<(), String> {
    let Command::Show(note) = command else {
        return Ok(());
    };
    let n = notification(&note);
    tokio::task::spawn_blocking(move || n.show().map(drop).map_err(|e| e.to_string()))
        .await
        .unwrap_or_else(|e| Err(e.to_string()))
}

/// Opens a url with the desktop's handler, without waiting for it.
pub(super) fn open_url(url: &str) {
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
            responses: vec![],
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
