//! What `listen` has on the desktop (freedesktop Notifications over D-Bus), and the clicks on
//! it: each message's notification handle (to close it on a `clear` event, SPEC §1.15), the
//! notification shown for each key (a newer note of the key replaces it, `replaces_id`), and
//! one waiter per notification for its actions (notify-rust's action handling), which turns a
//! response button into an acknowledgement with that response and a click on the notification
//! itself into one without (SPEC §1.16). Everything runs on the notifier's thread; an
//! acknowledgement is handed to the listener's loop, which posts it. What an earlier run of
//! `listen` (or this one, beyond [`MAX_TRACKED`]) showed is closed or replaced through the
//! notification ids kept in `shown_before.rs`.

use super::notifier::Ack;
use super::output::Note;
use super::shown_before::{self, Entry, ShownBefore};
use notify_rust::{NotificationHandle, NotificationResponse};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio::task::AbortHandle;

/// Messages whose notification stays closable and clickable. Each holds a D-Bus connection
/// (notify-rust's handle) until its notification closes; older ones are let go.
const MAX_TRACKED: usize = 64;

/// How long a clear waits for the `Notify` of its message to be answered.
const CLOSE_WAIT: Duration = Duration::from_secs(30);

/// The action key of a click on the notification itself (freedesktop's "default").
pub const DEFAULT_ACTION: &str = "default";

/// What one action key does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Click {
    /// The notification itself: acknowledge without a response, open the url if any.
    Acknowledge(Option<String>),
    /// A link button: open it.
    Open(String),
    /// A response button: acknowledge with it.
    Answer(String),
}

/// (action key, label, what it does) for every clickable part of `note`, in order.
pub fn buttons(note: &Note) -> Vec<(String, String, Click)> {
    let body_label = match (&note.url, &note.url_title) {
        (Some(_), Some(title)) => title.clone(),
        (Some(_), None) => "Open".to_owned(),
        (None, _) => "Acknowledge".to_owned(),
    };
    let mut out = vec![(
        DEFAULT_ACTION.to_owned(),
        body_label,
        Click::Acknowledge(note.url.clone()),
    )];
    for (i, (label, response)) in note.responses.iter().enumerate() {
        out.push((
            format!("response-{i}"),
            label.clone(),
            Click::Answer(response.clone()),
        ));
    }
    for (i, (label, url)) in note.actions.iter().enumerate() {
        out.push((
            format!("action-{i}"),
            label.clone(),
            Click::Open(url.clone()),
        ));
    }
    out
}

/// A notification on screen: its handle (the connection its actions arrive on) and the task
/// waiting for them.
struct OnScreen {
    handle: NotificationHandle,
    waiter: Mutex<Option<AbortHandle>>,
    /// The identity of the daemon that showed it, when the bus told.
    daemon: Option<String>,
}

impl OnScreen {
    fn stop_waiting(&self) {
        if let Some(waiter) = lock(&self.waiter).take() {
            waiter.abort();
        }
    }
}

type Shown = watch::Sender<Option<Arc<OnScreen>>>;

/// The daemon's id of the notification shown for one key, the message it shows and that
/// daemon's identity, locked while a note of the key is being shown (the next needs the id
/// the daemon gave).
type KeySlot = Arc<tokio::sync::Mutex<Option<(u32, String, Option<String>)>>>;

/// Whether an id the daemon `then` gave may be used on the daemon running `now`: not when
/// both are known and differ, for a restarted daemon gives the same ids to other programs'
/// notifications.
fn same_daemon(then: Option<&str>, now: Option<&str>) -> bool {
    match (then, now) {
        (Some(then), Some(now)) => then == now,
        _ => true,
    }
}

#[derive(Default)]
struct Tracked {
    order: VecDeque<String>,
    by_id: HashMap<String, Shown>,
}

/// The notifier thread's view of the desktop; cheap to clone into each show.
#[derive(Clone)]
pub struct Screen {
    keys: Arc<Mutex<HashMap<String, KeySlot>>>,
    messages: Arc<Mutex<Tracked>>,
    acks: mpsc::UnboundedSender<Ack>,
    shown_before: Arc<Mutex<ShownBefore>>,
    /// The session bus, to ask who the daemon is and to close by id (opened when first
    /// needed, and again after a failure).
    bus: Arc<tokio::sync::Mutex<Option<zbus::Connection>>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Screen {
    pub fn new(acks: mpsc::UnboundedSender<Ack>, shown_before: ShownBefore) -> Screen {
        Screen {
            keys: Arc::default(),
            messages: Arc::default(),
            acks,
            shown_before: Arc::new(Mutex::new(shown_before)),
            bus: Arc::default(),
        }
    }

    /// The session bus and the identity of the notification daemon on it now.
    async fn daemon(&self) -> Option<(zbus::Connection, String)> {
        let mut bus = self.bus.lock().await;
        if bus.is_none() {
            *bus = zbus::Connection::session().await.ok();
        }
        let connection = bus.clone()?;
        match shown_before::daemon_identity(&connection).await {
            Some(identity) => Some((connection, identity)),
            None => {
                // No daemon, or a bus gone away: the next call opens the bus again.
                *bus = None;
                None
            }
        }
    }

    /// The identity of the notification daemon running now, if the bus tells.
    async fn identity(&self) -> Option<String> {
        self.daemon().await.map(|(_, identity)| identity)
    }

    /// What an earlier run showed for `key` on the daemon `daemon`.
    fn shown_before_of_key(&self, daemon: &str, key: &str) -> Option<u32> {
        let kept = lock(&self.shown_before);
        kept.of_key(daemon, key).map(|e| e.notification)
    }

    /// Keeps the daemon's id of the notification of `note` for later runs; the identity of
    /// the daemon that showed it.
    async fn keep(&self, note: &Note, notification: u32) -> Option<String> {
        let (_, daemon) = self.daemon().await?;
        let entry = Entry {
            daemon: daemon.clone(),
            notification,
            message: note.id.clone(),
            key: note.key.clone(),
        };
        if let Err(e) = lock(&self.shown_before).record(entry) {
            tracing::debug!(error = %e, "listen: cannot keep the shown notifications");
        }
        Some(daemon)
    }

    fn forget(&self, id: &str) {
        if let Err(e) = lock(&self.shown_before).forget(id) {
            tracing::debug!(error = %e, "listen: cannot keep the shown notifications");
        }
    }

    /// Closes the notification an earlier run showed for message `id`, if the daemon that
    /// showed it is the one running now (another's ids are other notifications).
    async fn close_shown_before(&self, id: &str) {
        let Some((bus, daemon)) = self.daemon().await else {
            return;
        };
        let notification = lock(&self.shown_before)
            .of_message(&daemon, id)
            .map(|e| e.notification);
        let Some(notification) = notification else {
            tracing::debug!(%id, "clear for a notification not on screen");
            return;
        };
        if let Err(e) = shown_before::close_notification(&bus, notification).await {
            tracing::debug!(error = %e, "listen: CloseNotification failed");
        }
        self.forget(id);
    }

    fn key_slot(&self, key: &str) -> KeySlot {
        lock(&self.keys).entry(key.to_owned()).or_default().clone()
    }

    /// Starts tracking message `id` (before its `Notify`, so a clear that comes right after
    /// waits for it); the oldest beyond [`MAX_TRACKED`] are let go.
    fn track(&self, id: &str) -> Shown {
        let mut tracked = lock(&self.messages);
        let (shown, _) = watch::channel(None);
        if tracked.by_id.insert(id.to_owned(), shown.clone()).is_none() {
            tracked.order.push_back(id.to_owned());
        }
        while tracked.order.len() > MAX_TRACKED {
            if let Some(old) = tracked.order.pop_front()
                && let Some(gone) = tracked.by_id.remove(&old)
                && let Some(on) = gone.borrow().as_ref()
            {
                on.stop_waiting();
            }
        }
        shown
    }

    /// Stops tracking `id` (only if it is still `which`, when given); returns what it showed.
    fn untrack(&self, id: &str, which: Option<&Arc<OnScreen>>) -> Option<Arc<OnScreen>> {
        let mut tracked = lock(&self.messages);
        let current = tracked.by_id.get(id)?.borrow().clone();
        if let Some(which) = which
            && !current.as_ref().is_some_and(|c| Arc::ptr_eq(c, which))
        {
            return None;
        }
        tracked.by_id.remove(id);
        tracked.order.retain(|o| o != id);
        if let Some(on) = &current {
            on.stop_waiting();
        }
        current
    }

    /// Shows `note` (in place of its key's notification), then waits for its actions on a
    /// task of its own. Resolves with the daemon's answer to `Notify`.
    pub async fn show(&self, mut n: notify_rust::Notification, note: Note) -> Result<(), String> {
        let shown = self.track(&note.id);
        let buttons = buttons(&note);
        for (key, label, _) in &buttons {
            n.action(key, label);
        }
        let mut slot = match &note.key {
            Some(key) => Some(self.key_slot(key).lock_owned().await),
            None => None,
        };
        let replaced = slot.as_deref().cloned().flatten();
        let now = match &note.key {
            Some(_) => self.identity().await,
            None => None,
        };
        let in_place_of = match (&replaced, &note.key) {
            (Some((daemon_id, _, then)), _) if same_daemon(then.as_deref(), now.as_deref()) => {
                Some(*daemon_id)
            }
            (_, Some(key)) => now.and_then(|now| self.shown_before_of_key(&now, key)),
            (_, None) => None,
        };
        if let Some(daemon_id) = in_place_of {
            n.id(daemon_id);
        }
        let handle = match n.show_async().await {
            Ok(handle) => handle,
            Err(e) => {
                self.untrack(&note.id, None);
                return Err(e.to_string());
            }
        };
        let daemon = self.keep(&note, handle.id()).await;
        if let Some(slot) = slot.as_deref_mut() {
            *slot = Some((handle.id(), note.id.clone(), daemon.clone()));
        }
        // The replaced message's notification is this one now: its clicks and clears are
        // no longer that message's.
        if let Some((_, old, _)) = replaced.filter(|(_, old, _)| *old != note.id) {
            self.untrack(&old, None);
        }
        let on = Arc::new(OnScreen {
            handle,
            waiter: Mutex::new(None),
            daemon,
        });
        let waiter = tokio::spawn(self.clone().wait(on.clone(), note.id.clone(), buttons));
        *lock(&on.waiter) = Some(waiter.abort_handle());
        shown.send_replace(Some(on));
        Ok(())
    }

    /// Waits for a click on `on` and acts on it; the notification is let go once it closed.
    async fn wait(self, on: Arc<OnScreen>, id: String, buttons: Vec<(String, String, Click)>) {
        let mut response = None;
        on.handle
            .wait_for_action_async(|r| response = Some(r.clone()))
            .await;
        let key = match &response {
            Some(NotificationResponse::Default) => Some(DEFAULT_ACTION),
            Some(NotificationResponse::Action(key)) => Some(key.as_str()),
            _ => None,
        };
        let click = key.and_then(|key| buttons.into_iter().find(|(k, _, _)| k == key));
        // Taken off the map first, so the close below cannot abort this very task.
        let _ = lock(&on.waiter).take();
        self.untrack(&id, Some(&on));
        // Closed or clicked: nothing for a later run to close.
        self.forget(&id);
        let Some((_, _, click)) = click else { return };
        match click {
            Click::Open(url) => super::notifier::open_url(&url),
            Click::Acknowledge(url) => {
                let _ = self.acks.send(Ack { id, response: None });
                if let Some(url) = url {
                    super::notifier::open_url(&url);
                }
            }
            Click::Answer(response) => {
                let _ = self.acks.send(Ack {
                    id,
                    response: Some(response),
                });
            }
        }
        // Dealt with: a daemon that keeps notifications after a click (resident) drops it now.
        on.handle.close_async().await;
    }

    /// Closes the notification of message `id`, once its `Notify` was answered. A message
    /// this run of `listen` does not track is closed by the id an earlier run kept.
    pub async fn close(&self, id: String) {
        let tracked = lock(&self.messages).by_id.get(&id).map(Shown::subscribe);
        let Some(mut shown) = tracked else {
            self.close_shown_before(&id).await;
            return;
        };
        let on = match tokio::time::timeout(CLOSE_WAIT, shown.wait_for(Option::is_some)).await {
            Ok(Ok(on)) => on.clone(),
            _ => return,
        };
        if let Some(on) = on {
            self.untrack(&id, Some(&on));
            if same_daemon(on.daemon.as_deref(), self.identity().await.as_deref()) {
                on.handle.close_async().await;
            }
            self.forget(&id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::Priority;

    #[test]
    fn the_body_acknowledges_and_buttons_answer_or_open() {
        let mut note = Note {
            event_id: "1".into(),
            id: "msg_1".into(),
            title: "t".into(),
            message: "m".into(),
            priority: Priority::Urgent,
            tags: vec![],
            url: Some("https://a.example/".into()),
            url_title: None,
            actions: vec![("Rerun".into(), "https://b.example/".into())],
            responses: vec![("Deploy".into(), "deploy".into())],
            source: "ci".into(),
            key: None,
            envelope: serde_json::Value::Null,
        };
        assert_eq!(
            buttons(&note),
            [
                (
                    "default".to_owned(),
                    "Open".to_owned(),
                    Click::Acknowledge(Some("https://a.example/".into()))
                ),
                (
                    "response-0".to_owned(),
                    "Deploy".to_owned(),
                    Click::Answer("deploy".into())
                ),
                (
                    "action-0".to_owned(),
                    "Rerun".to_owned(),
                    Click::Open("https://b.example/".into())
                ),
            ]
        );
        note.url = None;
        assert_eq!(
            buttons(&note)[0],
            (
                "default".to_owned(),
                "Acknowledge".to_owned(),
                Click::Acknowledge(None)
            )
        );
    }
}
