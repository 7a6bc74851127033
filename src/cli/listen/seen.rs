//! The recent deliveries this computer has shown (message id and event id; a bare message id
//! from older versions), so a notification appears at most once per delivery across
//! reconnects and restarts (a handled event whose ack was lost comes
//! back). A small file in the data dir: one id per line, newest last, bounded, 0600, replaced
//! atomically.

use std::collections::{HashSet, VecDeque};
use std::path::{Path, PathBuf};

/// Ids kept. An event comes back only while unacked, so a few hundred recent ids are plenty;
/// the bound keeps the file small for a listener left running for months.
pub const CAPACITY: usize = 1000;

/// What is recorded for one delivery: the message id and the stream event that carried it.
pub fn delivery_key(message_id: &str, event_id: &str) -> String {
    format!("{message_id}@{event_id}")
}

pub struct Seen {
    path: PathBuf,
    order: VecDeque<String>,
    set: HashSet<String>,
}

/// `$XDG_DATA_HOME/reflecto` (or the platform's data dir).
pub fn data_dir() -> PathBuf {
    directories::ProjectDirs::from("dev", "reflecto", "reflecto")
        .map(|d| d.data_dir().to_path_buf())
        .unwrap_or_else(|| PathBuf::from(".reflecto"))
}

impl Seen {
    /// Loads the file for `profile`; a missing or unreadable file starts empty.
    pub fn load(dir: &Path, profile: &str) -> Seen {
        let path = super::state_file::path(dir, profile, "seen");
        let mut seen = Seen {
            path,
            order: VecDeque::new(),
            set: HashSet::new(),
        };
        if let Ok(text) = std::fs::read_to_string(&seen.path) {
            for id in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
                seen.remember(id);
            }
        }
        seen
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn contains(&self, id: &str) -> bool {
        self.set.contains(id)
    }

    fn remember(&mut self, id: &str) {
        if self.set.insert(id.to_owned()) {
            self.order.push_back(id.to_owned());
        }
        while self.order.len() > CAPACITY {
            if let Some(old) = self.order.pop_front() {
                self.set.remove(&old);
            }
        }
    }

    /// Records `id` and writes the file before the notification is shown, so a crash can
    /// lose a notification but never show one twice.
    pub fn insert(&mut self, id: &str) -> std::io::Result<()> {
        self.remember(id);
        self.save()
    }

    fn save(&self) -> std::io::Result<()> {
        super::state_file::replace(&self.path, self.order.iter().map(String::as_str))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_survive_a_reload_and_the_file_stays_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let mut seen = Seen::load(dir.path(), "default");
        assert!(!seen.contains("msg_0"));
        for i in 0..CAPACITY + 10 {
            seen.remember(&format!("msg_{i}"));
        }
        seen.insert("msg_last").unwrap();
        let again = Seen::load(dir.path(), "default");
        assert!(again.contains("msg_last"));
        assert!(again.contains(&format!("msg_{}", CAPACITY + 9)));
        assert!(!again.contains("msg_0"), "the oldest ids are dropped");
        assert_eq!(again.order.len(), CAPACITY);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(again.path())
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn profiles_do_not_escape_the_data_dir() {
        let dir = tempfile::tempdir().unwrap();
        let seen = Seen::load(dir.path(), "../../etc/x");
        assert_eq!(seen.path().parent().unwrap(), dir.path());
    }
}
