//! Heartbeat records (SPEC §1.18) and the one rule both backends apply to a ping: what the
//! heartbeat becomes, from what it was and what the ping gives. Pure, so the two backends
//! cannot compute a deadline differently.

pub use crate::api::heartbeat::HeartbeatState;
use crate::validate::heartbeat::{PingSettings, default_grace};

/// One heartbeat of one owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeartbeatRecord {
    pub user_id: i64,
    pub name: String,
    pub every_ms: i64,
    pub grace_ms: i64,
    /// Whether a ping gave `grace` (else it follows `every`: a tenth, at most an hour).
    pub grace_set: bool,
    pub state: HeartbeatState,
    pub last_ping_at: i64,
    /// The token that last pinged it and its label: the source of the late notification.
    pub token_id: String,
    pub source: String,
}

impl HeartbeatRecord {
    /// `last_ping_at + every`.
    pub fn next_due_at(&self) -> i64 {
        self.last_ping_at + self.every_ms
    }

    /// When the late notification falls due: `grace` after `next_due_at`.
    pub fn alarm_at(&self) -> i64 {
        self.next_due_at() + self.grace_ms
    }
}

/// A ping as the store receives it: checked durations and the token that sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ping {
    pub user_id: i64,
    pub name: String,
    pub settings: PingSettings,
    pub token_id: String,
    pub source: String,
    pub now: i64,
}

/// Why a ping was not recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PingRefusal {
    /// The first ping of a heartbeat must say `every`.
    NeedsEvery,
}

impl Ping {
    /// The heartbeat after this ping: `up`, pinged now, with the durations it gives; a
    /// grace that was never given follows `every`.
    pub fn apply(&self, before: Option<&HeartbeatRecord>) -> Result<HeartbeatRecord, PingRefusal> {
        let every_ms = match (self.settings.every_ms, before) {
            (Some(every), _) => every,
            (None, Some(b)) => b.every_ms,
            (None, None) => return Err(PingRefusal::NeedsEvery),
        };
        let (grace_ms, grace_set) = match (self.settings.grace_ms, before) {
            (Some(grace), _) => (grace, true),
            (None, Some(b)) if b.grace_set => (b.grace_ms, true),
            _ => (default_grace(every_ms), false),
        };
        Ok(HeartbeatRecord {
            user_id: self.user_id,
            name: self.name.clone(),
            every_ms,
            grace_ms,
            grace_set,
            state: HeartbeatState::Up,
            last_ping_at: self.now,
            token_id: self.token_id.clone(),
            source: self.source.clone(),
        })
    }
}

/// What a ping did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PingOutcome {
    /// Recorded; `was` is the state before (`None`: a new heartbeat). When it was `late` or
    /// `failed`, the "is back" send was committed with it.
    Pinged {
        heartbeat: HeartbeatRecord,
        was: Option<HeartbeatState>,
    },
    /// Nothing recorded: see the refusal.
    Refused(PingRefusal),
    /// Nothing recorded: the heartbeat is `late` or `failed`, so this ping must carry the
    /// "is back" send (prepare it and ping again).
    NeedsBack(HeartbeatRecord),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validate::heartbeat::{HOUR_MS, MINUTE_MS};

    fn ping(every: Option<i64>, grace: Option<i64>, now: i64) -> Ping {
        Ping {
            user_id: 1,
            name: "backup".into(),
            settings: PingSettings {
                every_ms: every,
                grace_ms: grace,
            },
            token_id: "tok_1".into(),
            source: "cron".into(),
            now,
        }
    }

    #[test]
    fn the_first_ping_needs_every() {
        assert_eq!(
            ping(None, None, 0).apply(None),
            Err(PingRefusal::NeedsEvery)
        );
        let hb = ping(Some(10 * MINUTE_MS), None, 5).apply(None).unwrap();
        assert_eq!((hb.grace_ms, hb.grace_set), (MINUTE_MS, false));
        assert_eq!(hb.next_due_at(), 5 + 10 * MINUTE_MS);
        assert_eq!(hb.alarm_at(), 5 + 11 * MINUTE_MS);
    }

    #[test]
    fn a_default_grace_follows_every_and_a_given_one_stays() {
        let first = ping(Some(10 * MINUTE_MS), None, 0).apply(None).unwrap();
        let longer = ping(Some(100 * HOUR_MS), None, 1)
            .apply(Some(&first))
            .unwrap();
        assert_eq!(longer.grace_ms, HOUR_MS);
        let given = ping(None, Some(5 * MINUTE_MS), 2)
            .apply(Some(&longer))
            .unwrap();
        assert_eq!(
            (given.every_ms, given.grace_ms),
            (100 * HOUR_MS, 5 * MINUTE_MS)
        );
        let changed = ping(Some(MINUTE_MS * 20), None, 3)
            .apply(Some(&given))
            .unwrap();
        assert_eq!(changed.grace_ms, 5 * MINUTE_MS);
    }
}
