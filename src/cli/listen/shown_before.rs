//! The notifications `listen` left on this desktop, kept across its runs: a `clear` closes
//! (SPEC §1.15), and a note of the same key replaces, what an earlier run showed — a
//! `listen --poll` from cron is a new run each time, and a service restarts. A notification id
//! means something only to the daemon that gave it: each is kept with that daemon's identity
//! (the bus's id and the daemon's unique name on it), because a restarted daemon, or the next
//! login session's, gives the same ids to other notifications, and those are never touched.
//!
//! A small file in the data dir, one JSON object a line, newest last, bounded, 0600, replaced
//! atomically (`state_file.rs`). Elsewhere than on the freedesktop service notify-rust can
//! neither replace nor close, and nothing here is used.
#![cfg_attr(not(all(unix, not(target_os = "macos"))), allow(dead_code))]

use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::path::{Path, PathBuf};

/// Notifications kept. A desktop shows a few dozen at most; older ones were long dismissed.
pub const CAPACITY: usize = 256;

/// One notification on the desktop.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// The identity of the daemon that showed it ([`daemon_identity`]).
    pub daemon: String,
    /// That daemon's id of the notification.
    pub notification: u32,
    /// The message it shows.
    pub message: String,
    /// The message's key, if it has one (a newer note of the key replaces it).
    pub key: Option<String>,
}

pub struct ShownBefore {
    path: PathBuf,
    entries: VecDeque<Entry>,
}

impl ShownBefore {
    /// Loads the file for `profile`; a missing or unreadable file, or a line that is not an
    /// entry, is nothing shown.
    pub fn load(dir: &Path, profile: &str) -> ShownBefore {
        let path = super::state_file::path(dir, profile, "shown");
        let entries = std::fs::read_to_string(&path)
            .map(|text| {
                text.lines()
                    .filter_map(|line| serde_json::from_str(line).ok())
                    .collect()
            })
            .unwrap_or_default();
        ShownBefore { path, entries }
    }

    /// The notification of `message` shown by the daemon `daemon`.
    pub fn of_message(&self, daemon: &str, message: &str) -> Option<&Entry> {
        self.entries
            .iter()
            .rev()
            .find(|e| e.daemon == daemon && e.message == message)
    }

    /// The newest notification of key `key` shown by the daemon `daemon`.
    pub fn of_key(&self, daemon: &str, key: &str) -> Option<&Entry> {
        self.entries
            .iter()
            .rev()
            .find(|e| e.daemon == daemon && e.key.as_deref() == Some(key))
    }

    /// Records `entry`, in place of what that notification showed before (a replaced one) and
    /// of an earlier notification of the same message.
    pub fn record(&mut self, entry: Entry) -> std::io::Result<()> {
        self.entries.retain(|e| {
            !(e.daemon == entry.daemon && e.notification == entry.notification)
                && e.message != entry.message
        });
        self.entries.push_back(entry);
        while self.entries.len() > CAPACITY {
            self.entries.pop_front();
        }
        self.save()
    }

    /// Forgets the notification of `message` (closed, or dealt with).
    pub fn forget(&mut self, message: &str) -> std::io::Result<()> {
        let before = self.entries.len();
        self.entries.retain(|e| e.message != message);
        if self.entries.len() == before {
            return Ok(());
        }
        self.save()
    }

    fn save(&self) -> std::io::Result<()> {
        let lines: Vec<String> = self
            .entries
            .iter()
            .map(|e| serde_json::to_string(e).expect("an entry serializes"))
            .collect();
        super::state_file::replace(&self.path, lines.iter().map(String::as_str))
    }
}

/// The session bus's id and the unique name of the notification daemon on it: the same for
/// as long as that daemon runs, and never again after. `None` without a bus or a daemon.
#[cfg(all(unix, not(target_os = "macos")))]
pub async fn daemon_identity(bus: &zbus::Connection) -> Option<String> {
    let dbus = zbus::fdo::DBusProxy::new(bus).await.ok()?;
    let name = zbus::names::BusName::try_from(NOTIFICATIONS).ok()?;
    let owner = dbus.get_name_owner(name).await.ok()?;
    let bus_id = dbus.get_id().await.ok()?;
    Some(format!("{bus_id}/{owner}"))
}

/// The freedesktop notification service's well-known name (and interface).
#[cfg(all(unix, not(target_os = "macos")))]
pub const NOTIFICATIONS: &str = "org.freedesktop.Notifications";

/// Asks the daemon to close its notification `id` (`CloseNotification`).
#[cfg(all(unix, not(target_os = "macos")))]
pub async fn close_notification(bus: &zbus::Connection, id: u32) -> zbus::Result<()> {
    bus.call_method(
        Some(NOTIFICATIONS),
        "/org/freedesktop/Notifications",
        Some(NOTIFICATIONS),
        "CloseNotification",
        &(id,),
    )
    .await
    .map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(daemon: &str, notification: u32, message: &str, key: Option<&str>) -> Entry {
        Entry {
            daemon: daemon.into(),
            notification,
            message: message.into(),
            key: key.map(str::to_owned),
        }
    }

    #[test]
    fn entries_survive_a_reload_by_daemon_and_the_file_stays_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let mut shown = ShownBefore::load(dir.path(), "default");
        shown
            .record(entry("bus/:1.7", 3, "msg_a", Some("ci:42")))
            .unwrap();
        shown.record(entry("bus/:1.7", 4, "msg_b", None)).unwrap();
        let again = ShownBefore::load(dir.path(), "default");
        assert_eq!(
            again.of_message("bus/:1.7", "msg_b").unwrap().notification,
            4
        );
        assert_eq!(again.of_key("bus/:1.7", "ci:42").unwrap().message, "msg_a");
        // Another daemon's ids are not this one's.
        assert!(again.of_message("bus/:1.9", "msg_b").is_none());
        assert!(again.of_key("bus/:1.9", "ci:42").is_none());

        let mut shown = again;
        for i in 0..CAPACITY as u32 + 10 {
            shown
                .record(entry("bus/:1.7", 100 + i, &format!("msg_{i}"), None))
                .unwrap();
        }
        let again = ShownBefore::load(dir.path(), "default");
        assert_eq!(again.entries.len(), CAPACITY);
        assert!(
            again.of_message("bus/:1.7", "msg_a").is_none(),
            "the oldest go"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&again.path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn a_replacement_takes_the_notifications_place_and_forget_removes_a_message() {
        let dir = tempfile::tempdir().unwrap();
        let mut shown = ShownBefore::load(dir.path(), "work");
        shown.record(entry("d", 3, "msg_a", Some("ci:42"))).unwrap();
        shown.record(entry("d", 3, "msg_b", Some("ci:42"))).unwrap();
        assert!(
            shown.of_message("d", "msg_a").is_none(),
            "msg_a's notification shows msg_b"
        );
        assert_eq!(shown.of_key("d", "ci:42").unwrap().message, "msg_b");
        shown.forget("msg_b").unwrap();
        shown.forget("msg_unknown").unwrap();
        assert!(ShownBefore::load(dir.path(), "work").entries.is_empty());
    }

    #[test]
    fn a_damaged_line_is_skipped_and_profiles_stay_in_the_data_dir() {
        let dir = tempfile::tempdir().unwrap();
        let path = super::super::state_file::path(dir.path(), "default", "shown");
        let good = serde_json::to_string(&entry("d", 1, "msg_a", None)).unwrap();
        std::fs::write(&path, format!("{{not json\n{good}\n")).unwrap();
        let shown = ShownBefore::load(dir.path(), "default");
        assert_eq!(shown.entries.len(), 1);
        let elsewhere = ShownBefore::load(dir.path(), "../../etc/x");
        assert_eq!(elsewhere.path.parent().unwrap(), dir.path());
    }
}
