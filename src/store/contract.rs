//! The store contract: every operation the relay needs from a backend, one documented
//! signature each, grouped by the chapters of the conformance story (`story/`).
//!
//! [`contract!`] writes each chapter once and derives two things from it: a crate-private trait
//! that both backends implement (a backend whose method drifts from the signature fails to
//! compile), and the [`Store`] method that dispatches to whichever backend this is. Operations
//! under `behind:` are implemented by both backends but reached only through a [`Store`] method
//! written by hand in `mod.rs`, which adds what is the same on every backend (issuing a
//! token's secret, refusing an unknown user, checking a send's payloads) above them.

use super::heartbeats::{HeartbeatRecord, Ping, PingOutcome};
use super::limits::{LayerStatus, Refusal};
use super::model::*;
use super::{Result, Store, Wakeups};
use std::net::IpAddr;

/// Declares the chapters: for each, a trait of `-> impl Future + Send` methods (so the
/// relay's handlers and spawned tasks stay `Send`) and the enum's forwarding methods.
macro_rules! contract {
    ($(
        $(#[$chapter_doc:meta])*
        trait $chapter:ident {
            $( $(#[$doc:meta])* fn $name:ident(&self $(, $arg:ident: $ty:ty)*) -> $ret:ty; )*
            $( behind: $( $(#[$bdoc:meta])* fn $bname:ident(&self $(, $barg:ident: $bty:ty)*) -> $bret:ty; )* )?
        }
    )*) => {
        $(
            $(#[$chapter_doc])*
            pub(crate) trait $chapter {
                $( $(#[$doc])* fn $name(&self $(, $arg: $ty)*) -> impl Future<Output = $ret> + Send; )*
                $($( $(#[$bdoc])* fn $bname(&self $(, $barg: $bty)*) -> impl Future<Output = $bret> + Send; )*)?
            }

            impl Store {
                $(
                    $(#[$doc])*
                    pub async fn $name(&self $(, $arg: $ty)*) -> $ret {
                        match self {
                            Store::Sqlite(b) => $chapter::$name(b $(, $arg)*).await,
                            Store::Postgres(b) => $chapter::$name(b $(, $arg)*).await,
                        }
                    }
                )*
            }
        )*
    };
}

/// What is not an operation on the data: the wake-ups a commit triggers and the health of
/// writes. Both backends implement it; [`Store`] forwards each method by hand.
pub(crate) trait Basics {
    /// What wakes delivery workers and desktop streams after a commit.
    fn wakeups(&self) -> &Wakeups;
    /// Whether the last write failed for a store fault (not for a refused request).
    fn writes_failing(&self) -> bool;
    /// For tests and operations drills: while `on`, every write fails as a full disk would,
    /// before touching the database. Nothing already committed is affected.
    fn inject_write_fault(&self, on: bool);
    /// The embedded store's WAL checkpoint counts (`/metrics`); `None` on a server database.
    fn checkpoints(&self) -> Option<CheckpointCounts>;
}

contract! {
    /// Users and sender tokens (story `users_tokens`).
    trait UsersTokens {
        fn add_user(&self, name: &str, now: i64) -> Result<UserRecord>;
        /// Every user, by name.
        fn list_users(&self) -> Result<Vec<UserRecord>>;
        /// The user with this name, or `NotFound`.
        fn user_by_name(&self, name: &str) -> Result<UserRecord>;
        /// Removes a user with their tokens, devices, codes and messages.
        fn remove_user(&self, name: &str) -> Result<()>;
        /// Marks a token revoked; it stops authenticating at once, on every relay.
        fn revoke_token(&self, id: &str, now: i64) -> Result<()>;
        /// The token with this secret, if any (revoked tokens are returned with `revoked`).
        fn authenticate_token(&self, secret: &str) -> Result<Option<TokenRecord>>;
        /// The live token with this secret and its owner's reachable devices (the send path's
        /// one lookup).
        fn authenticate_sender(&self, secret: &str) -> Result<Option<Sender>>;
        behind:
        /// Writes a token issued by [`super::tokens::issue`] (only its hash is stored).
        fn insert_token(&self, record: &TokenRecord, hash: &[u8; 32]) -> Result<()>;
        /// Every token, or one existing user's, in creation order.
        fn list_tokens(&self, user: Option<&str>) -> Result<Vec<TokenRecord>>;
    }

    /// Devices and pairing (story `devices_pairing`, SPEC §1.9).
    trait DevicesPairing {
        /// Adds a device for `user` directly (`reflecto admin device add`).
        fn add_device(&self, user: &str, new: NewDevice, now: i64) -> Result<PairOutcome>;
        /// The devices a send to this user can target.
        fn reachable_devices_of(&self, user_id: i64) -> Result<Vec<DeviceRecord>>;
        fn device(&self, id: &str) -> Result<Option<DeviceRecord>>;
        /// Records that the device showed it is there (its stream connected).
        fn mark_seen(&self, device_id: &str, now: i64) -> Result<()>;
        /// Removes a device; its open jobs fail and its streams end.
        fn remove_device(&self, id: &str, now: i64) -> Result<()>;
        /// The device whose stream credential this is, compared in constant time.
        fn authenticate_device(&self, credential: &str) -> Result<Option<DeviceRecord>>;
        /// A fresh 6-digit code for `user`, valid 10 minutes.
        fn create_pair_code(&self, user: &str, now: i64) -> Result<String>;
        /// Redeems a code for a new device (SPEC §1.9), counting failures across every relay.
        fn redeem_pair_code(&self, code: &str, new: NewDevice, now: i64) -> Result<PairOutcome>;
        behind:
        /// Every device, or one existing user's, oldest first.
        fn list_devices(&self, user: Option<&str>) -> Result<Vec<DeviceRecord>>;
    }

    /// Accepting sends and the rate limits around them (story `sends_limits`, SPEC §1.7,
    /// §1.8).
    trait SendsLimits {
        /// Step 1 of SPEC §1.7: both per-IP layers, charged together when both have room.
        fn charge_ip(&self, ip: IpAddr, now: i64) -> Result<Result<Vec<LayerStatus>, Refusal>>;
        /// Both per-IP layers' state, charging nothing; refused when one is exhausted (SPEC
        /// §1.8: an authenticated read is checked, and charged with [`Store::charge_ip`] only
        /// if it fails).
        fn check_ip(&self, ip: IpAddr, now: i64) -> Result<Result<Vec<LayerStatus>, Refusal>>;
        /// Every enabled layer's state for one caller, charging nothing (`GET /v1/token`).
        fn limit_statuses(&self, ip: IpAddr, token_id: &str, receiver: i64, now: i64) -> Result<Vec<LayerStatus>>;
        /// The response stored for this token and key within the last 24 h.
        fn idempotent_response(&self, token_id: &str, key: &str, now: i64) -> Result<Option<StoredResponse>>;
        /// Per-device delivery state of a message of this owner (`GET /v1/messages/{id}`).
        fn message_status(&self, id: &str, user_id: i64) -> Result<Option<MessageStatus>>;
        behind:
        /// Steps 6–7 of SPEC §1.7 in one commit: an earlier response for the same
        /// `Idempotency-Key` is replayed; otherwise the token and receiver layers are checked,
        /// all charged only if all pass, and the message with one job per target is committed.
        fn accept_send(&self, send: NewSend) -> Result<AcceptOutcome>;
    }

    /// The delivery queue (story `queue`): claims under a lease, outcomes, expiry.
    trait Queue {
        /// Leases up to `limit` due jobs of the given channels for `lease_ms`; on a shared
        /// database also jobs whose lease expired (their relay died).
        fn claim_due(&self, now: i64, limit: usize, lease_ms: i64, channels: &[Channel]) -> Result<Vec<ClaimedJob>>;
        /// Makes jobs whose lease ended before `lease_cutoff` claimable now.
        fn recover_expired_leases(&self, lease_cutoff: i64, now: i64) -> Result<usize>;
        /// Extends to `until` these leases where the job is still held under them: the worker
        /// working on them is alive, so no other relay may take them over yet.
        fn renew_leases(&self, leases: Vec<Lease>, until: i64) -> Result<()>;
        /// Records the outcomes of a batch of attempts in one commit. An outcome lands only on
        /// a job still held under the lease it was claimed with: a stalled relay's late result
        /// can neither undo a job another relay finished nor land on a lease another relay
        /// holds since.
        fn complete_jobs(&self, outcomes: Vec<(Lease, JobOutcome)>, now: i64) -> Result<()>;
        /// Expires waiting jobs whose ttl ran out.
        fn expire_jobs(&self, now: i64) -> Result<usize>;
        /// When the next job of the given channels falls due, if any is queued.
        fn next_due_at(&self, channels: &[Channel]) -> Result<Option<i64>>;
        /// Jobs not yet final: the queue depth metric.
        fn queue_depth(&self) -> Result<i64>;
    }

    /// Desktop (extension) streams (story `streams`).
    trait Streams {
        /// An extension device's unacknowledged events after `after_seq`, in order.
        fn stream_events(&self, device_id: &str, after_seq: i64, limit: usize) -> Result<Vec<StreamEvent>>;
        /// Marks the device's events with these sequence numbers delivered and the device seen;
        /// returns when each event newly delivered was accepted (the dispatch latency).
        fn ack_stream_events(&self, device_id: &str, seqs: Vec<i64>, now: i64) -> Result<Vec<AckedEvent>>;
    }

    /// Clearing a message and acknowledging it (story `clears_acks`, SPEC §1.15, §1.16).
    /// Both commit in one transaction and wake the streams, workers and status long polls
    /// they gave work to.
    trait ClearsAcks {
        /// Clears the owner's message (by id, or the newest with a key): its jobs that had not
        /// ended become `cancelled`, each device that received it gets one `clear` job (never
        /// two), and `cleared_at` is set by the first clear. `None`: the owner has no such
        /// message.
        fn clear_message(&self, user_id: i64, which: MessageRef, now: i64) -> Result<Option<Cleared>>;
        /// Records a target device's acknowledgement on its own delivery (its first one
        /// counts). The message's first acknowledgement wins: it is kept on the message, and
        /// clears the message on every other device as [`Store::clear_message`] does, without
        /// setting `cleared_at`.
        fn acknowledge(&self, message_id: &str, device_id: &str, response: Option<String>, now: i64) -> Result<AckOutcome>;
    }

    /// Urgent messages (story `urgent`, SPEC §1.17): repeats scheduled by the maintenance
    /// beat of whichever relay gets there first, each exactly once.
    trait Urgent {
        /// For every urgent message whose next repeat is due and that nobody acknowledged or
        /// cleared: one repeat job per device that has the message, and the next repeat
        /// `retry` later; repeats of a message whose `expire` ran out stop. A due message is
        /// taken by one caller only, on any number of relays.
        fn schedule_repeats(&self, now: i64) -> Result<RepeatRound>;
        /// The Pushover receipt's message and where it stands, if the receipt exists.
        fn receipt(&self, receipt: &str) -> Result<Option<ReceiptRecord>>;
        /// The receipt given to a message (for an `Idempotency-Key` replay of the shim).
        fn receipt_of(&self, message_id: &str) -> Result<Option<String>>;
        /// Stops the repeats of the owner's message with this receipt (Pushover's cancel):
        /// none is scheduled any more and those not yet taken are cancelled. `false`: no such
        /// receipt for this owner.
        fn cancel_receipt(&self, receipt: &str, user_id: i64, now: i64) -> Result<bool>;
        /// Leases up to `limit` callbacks that are due (an acknowledgement or an expiry made
        /// them so), each to one caller, for `lease_ms`.
        fn claim_callbacks(&self, now: i64, limit: usize, lease_ms: i64) -> Result<Vec<CallbackJob>>;
        /// Records a callback attempt's outcome: delivered and failed are final.
        fn complete_callback(&self, message_id: &str, outcome: CallbackOutcome, now: i64) -> Result<()>;
    }

    /// The operator API (story `admin`, SPEC §1.19): admin tokens, the audit log, and the
    /// operator's views of messages and counts.
    trait Admin {
        /// The live (unrevoked) admin token with this secret, compared in constant time.
        fn authenticate_admin(&self, secret: &str) -> Result<Option<AdminTokenRecord>>;
        /// Every admin token, in creation order.
        fn list_admin_tokens(&self) -> Result<Vec<AdminTokenRecord>>;
        /// Marks an admin token revoked (`NotFound` if there is none with this id).
        fn revoke_admin_token(&self, id: &str, now: i64) -> Result<()>;
        /// Records that the token was used from `ip` (and when it was last used); true when
        /// this is the first time it is seen from that address.
        fn note_admin_use(&self, token_id: &str, ip: &str, now: i64) -> Result<bool>;
        /// Appends one entry to the audit log.
        fn record_audit(&self, entry: NewAudit) -> Result<()>;
        /// Audit entries with an id below `before` (all when `None`), newest first.
        fn list_audit(&self, before: Option<i64>, limit: usize) -> Result<Vec<AuditRecord>>;
        /// Deletes audit entries at or before `cutoff`.
        fn prune_audit(&self, cutoff: i64) -> Result<usize>;
        /// A page of messages, newest first, with their message jobs' states.
        fn admin_messages(&self, query: MessageQuery) -> Result<Vec<AdminMessageRecord>>;
        /// Counts for the status page; the 24-hour ones since `since`.
        fn admin_counts(&self, since: i64) -> Result<AdminCountsRecord>;
        behind:
        /// Writes an admin token issued by [`super::admin::issue_admin`] (only its hash).
        fn insert_admin_token(&self, record: &AdminTokenRecord, hash: &[u8; 32]) -> Result<()>;
    }

    /// Heartbeats (story `heartbeats`, SPEC §1.18): deadlines kept in the store. Each late,
    /// back and failed notification is committed in the transaction that changes the state
    /// causing it, so it is sent exactly once, by one relay, even across a restart. They are
    /// the relay's own sends: charged to no limit.
    trait Heartbeats {
        /// Records a ping. From `late` or `failed` the "is back" send `back` is committed with
        /// it; without one the answer is `NeedsBack` and nothing is written.
        fn ping_heartbeat(&self, ping: Ping, back: Option<NewSend>) -> Result<PingOutcome>;
        /// Marks the owner's heartbeat `failed` (reported by `token_id`, labelled `source`)
        /// and commits its failed notification `send` with it; `None`: no such heartbeat,
        /// nothing written.
        fn fail_heartbeat(&self, user_id: i64, name: &str, token_id: &str, source: &str, send: NewSend) -> Result<Option<HeartbeatRecord>>;
        /// The owner's heartbeat with this name.
        fn heartbeat(&self, user_id: i64, name: &str) -> Result<Option<HeartbeatRecord>>;
        /// The owner's heartbeats, by name.
        fn heartbeats_of(&self, user_id: i64) -> Result<Vec<HeartbeatRecord>>;
        /// Removes the owner's heartbeat; `false`: there was none.
        fn delete_heartbeat(&self, user_id: i64, name: &str) -> Result<bool>;
        /// Up to `limit` heartbeats still `up` whose alarm fell due at or before `now`, oldest
        /// deadline first.
        fn due_heartbeats(&self, now: i64, limit: usize) -> Result<Vec<HeartbeatRecord>>;
        /// Claims a due heartbeat: `up` becomes `late` only while it is still `up` with the
        /// same deadline, and its late notification `send` is committed in that transaction.
        /// `false`: a ping, a delete or another relay came first, and nothing was written.
        fn claim_late_heartbeat(&self, due: HeartbeatRecord, send: NewSend) -> Result<bool>;
    }

    /// Upkeep and health (story `upkeep`): retention, pruning, the VAPID key, the probes.
    trait Upkeep {
        /// A cheap liveness probe: one read.
        fn ping(&self) -> Result<()>;
        /// The readiness probe of `/health/ready`: a real write, so a full disk or a failing
        /// database shows here, and clears here once it heals.
        fn probe_write(&self, now: i64) -> Result<()>;
        /// Deletes up to `limit` messages finished at or before `cutoff`, with their jobs.
        fn prune_finished(&self, cutoff: i64, limit: usize) -> Result<usize>;
        /// Drops rows no window needs any more (idempotency keys, old sends, pairing failures).
        fn prune(&self, now: i64) -> Result<()>;
        /// Forgets rate-limit windows that emptied.
        fn sweep_limits(&self, now: i64) -> Result<()>;
        /// The relay's VAPID private key: the stored one, or `fresh` stored now if none is.
        fn vapid_private_key(&self, fresh: [u8; 32], now: i64) -> Result<Vec<u8>>;
    }
}
